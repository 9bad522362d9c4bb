//! A load generator for the push path: how long a ringing call takes from the telephony
//! webhook to the rep's WebSocket, and what connected reps cost the relay.
//!
//! It starts the simulator (V2 and the identity provider) in this process and one or two
//! `cti-relay` processes configured for the demo tenant on the generic webhook, as a deployment
//! configures them (optionally sharing a Redis of its own). It connects `agents` widget sessions
//! as a widget does (a real agent token from the simulated identity provider, `hello`, a ping
//! every heartbeat), then posts signed `ringing` webhooks at `rate` calls per second for `secs`
//! seconds, each to a rep picked at random among the connected ones, with a unique call id and
//! a caller that is, about four times in five, a number of the tenant's records (some of them
//! shared between records) and otherwise an unknown number. Per call it measures the time from
//! sending the webhook to the rep's socket receiving the first `call` frame of that call.
//!
//! Besides the latency percentiles it reports the rate achieved, calls whose frame never came,
//! frames received twice (the same sequence number on one socket) or by another rep, each relay
//! process's resident memory (`VmRSS`) before and after the reps connected, and its CPU time
//! (user + system, from `/proc/<pid>/stat`) per 1,000 calls during the webhook phase.
//!
//! The generator, the simulator and the relay share one machine: read the figures with the
//! core count printed beside them, as orders of magnitude on a busy machine.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cti_relay::Config;
use cti_sim::SimConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::redis::RedisServer;
use crate::relay_process::RelayProcess;

/// Widget sessions signing in at once (the relay lets one client address have 32 pending).
const CONNECT_CONCURRENCY: usize = 16;
/// How long after the last webhook the generator waits for the frames still missing.
const DRAIN: Duration = Duration::from_secs(10);
/// After every call arrived, how long the reps' sockets are still watched for frames sent twice.
const SETTLE: Duration = Duration::from_millis(300);
/// Share of calls from a number of the tenant's records (the rest are unknown numbers).
const KNOWN_SHARE: f64 = 0.8;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct PushLoad {
    /// Widget sessions connected (one rep each).
    pub agents: usize,
    /// Ringing webhooks per second.
    pub rate: f64,
    /// Seconds of webhooks.
    pub secs: f64,
    /// A redis-server of its own for the relays' shared state.
    pub redis: bool,
    /// Relay processes (more than one needs Redis); reps are spread over all.
    pub instances: usize,
    /// Webhooks spread over the instances in turn, as a load balancer in front of them spreads
    /// them (what horizontal scale is about); otherwise they all go to the first instance, which
    /// shows what reaching reps on another instance costs.
    pub spread: bool,
}

impl Default for PushLoad {
    /// A run that finishes in well under two minutes on a small machine.
    fn default() -> Self {
        PushLoad {
            agents: 1_000,
            rate: 200.0,
            secs: 20.0,
            redis: false,
            instances: 1,
            spread: false,
        }
    }
}

impl PushLoad {
    /// Reads `--agents N --rate R --secs D --redis --instances K --spread` over the defaults. Arguments
    /// cargo adds to a benchmark's (`--bench`) are ignored.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<PushLoad> {
        let mut load = PushLoad::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--agents" => load.agents = value("--agents")?.parse()?,
                "--rate" => load.rate = value("--rate")?.parse()?,
                "--secs" => load.secs = value("--secs")?.parse()?,
                "--instances" => load.instances = value("--instances")?.parse()?,
                "--redis" => load.redis = true,
                "--spread" => load.spread = true,
                "--bench" => {}
                other => bail!(
                    "unknown argument {other:?}; use --agents N --rate CALLS_PER_SEC --secs S \
                     [--redis] [--instances K [--spread]]"
                ),
            }
        }
        if load.agents == 0 || load.rate <= 0.0 || load.secs <= 0.0 || load.instances == 0 {
            bail!("--agents, --rate, --secs and --instances must be above zero");
        }
        if load.instances > 1 {
            // Instances of one deployment share their state through Redis.
            load.redis = true;
        }
        Ok(load)
    }

    /// Calls the run posts.
    pub fn calls(&self) -> usize {
        ((self.rate * self.secs).round() as usize).max(1)
    }
}

/// One relay process's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceFigures {
    /// Widget sessions connected to it.
    pub reps: usize,
    /// Resident memory with the index built and no rep connected, KiB.
    pub rss_before_kib: u64,
    /// Resident memory with every rep connected, KiB.
    pub rss_connected_kib: u64,
    /// Resident memory after the webhooks, KiB.
    pub rss_after_kib: u64,
    /// User + system CPU seconds during the webhook phase.
    pub cpu_secs: f64,
    /// What its `/metrics` said: widget sessions open with every rep connected
    /// (`cti_ws_connections`), and call frames timed in the push histogram after the run
    /// (`cti_push_seconds_count`). None where the figure was missing.
    pub metrics_connections: Option<f64>,
    pub metrics_pushes: Option<f64>,
}

impl InstanceFigures {
    /// What one more connected rep cost, in bytes.
    pub fn bytes_per_rep(&self) -> f64 {
        let grown = self.rss_connected_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0;
        grown / self.reps.max(1) as f64
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct PushReport {
    pub load: PushLoad,
    pub cores: usize,
    /// Webhooks posted, and those the relay did not answer 202.
    pub posted: usize,
    pub refused: usize,
    /// Calls per second actually posted.
    pub achieved_rate: f64,
    /// Webhook sent -> first `call` frame of the call at the rep, sorted; all calls, then those
    /// from known and from unknown numbers.
    pub latencies: Vec<Duration>,
    pub known: Vec<Duration>,
    pub unknown: Vec<Duration>,
    /// Accepted calls whose frame never reached their rep.
    pub lost: usize,
    /// Frames a socket received a second time (same sequence number).
    pub duplicated: usize,
    /// Frames of a call that reached a rep the call was not for.
    pub misdelivered: usize,
    /// `call` frames in all (a call may be updated after it first rang, e.g. with the caller's
    /// details).
    pub frames: usize,
    /// Distinct known numbers used, and how many of them belong to more than one record.
    pub known_numbers: usize,
    pub shared_numbers: usize,
    pub instances: Vec<InstanceFigures>,
}

/// The sample at quantile `q` of sorted `samples` (nearest rank).
pub fn quantile(samples: &[Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    Some(samples[rank - 1])
}

fn millis(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".into(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    )
}

fn percentiles(samples: &[Duration]) -> String {
    format!(
        "n={} p50={} p90={} p99={} p99.9={} max={}",
        samples.len(),
        millis(quantile(samples, 0.50)),
        millis(quantile(samples, 0.90)),
        millis(quantile(samples, 0.99)),
        millis(quantile(samples, 0.999)),
        millis(samples.last().copied()),
    )
}

impl fmt::Display for PushReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.load;
        writeln!(
            f,
            "push: {} reps, {} calls/s asked for {} s, {} relay instance(s){}, {} stores, {} cores",
            l.agents,
            l.rate,
            l.secs,
            l.instances,
            match (l.instances > 1, l.spread) {
                (true, true) => " (webhooks spread over them)",
                (true, false) => " (webhooks to the first)",
                _ => "",
            },
            if l.redis { "redis" } else { "memory" },
            self.cores
        )?;
        writeln!(
            f,
            "webhooks: {} posted, {} refused, {:.1} calls/s achieved",
            self.posted, self.refused, self.achieved_rate
        )?;
        writeln!(
            f,
            "webhook sent -> call frame at the rep: {}",
            percentiles(&self.latencies)
        )?;
        writeln!(
            f,
            "  known callers ({} numbers, {} shared by records): {}",
            self.known_numbers,
            self.shared_numbers,
            percentiles(&self.known)
        )?;
        writeln!(f, "  unknown callers: {}", percentiles(&self.unknown))?;
        writeln!(
            f,
            "frames: {} call frames, {} lost, {} duplicated, {} to the wrong rep",
            self.frames, self.lost, self.duplicated, self.misdelivered
        )?;
        for (n, i) in self.instances.iter().enumerate() {
            writeln!(
                f,
                "relay {n}: {} reps; RSS {} KiB before, {} KiB connected ({:.1} KiB per rep), \
                 {} KiB after; CPU {:.2} s ({:.2} s per 1,000 calls); /metrics: {} sessions \
                 connected, {} pushes timed",
                i.reps,
                i.rss_before_kib,
                i.rss_connected_kib,
                i.bytes_per_rep() / 1024.0,
                i.rss_after_kib,
                i.cpu_secs,
                i.cpu_secs * 1000.0 / self.posted.max(1) as f64,
                i.metrics_connections
                    .map_or_else(|| "?".to_string(), |v| v.to_string()),
                i.metrics_pushes
                    .map_or_else(|| "?".to_string(), |v| v.to_string()),
            )?;
        }
        Ok(())
    }
}

/// A `call` frame as a rep's socket received it.
#[derive(Debug)]
struct Frame {
    rep: usize,
    call_id: String,
    seq: u64,
    at: Instant,
}

/// A webhook as the generator sent it.
#[derive(Debug)]
struct Sent {
    rep: usize,
    call_id: String,
    known: bool,
    at: Instant,
    accepted: bool,
}

/// Resident memory of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

/// User + system CPU seconds process `pid` has used.
pub fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are
    // fixed: utime and stime are the 14th and 15th of the line.
    let rest = stat
        .rsplit_once(')')
        .context("malformed /proc/<pid>/stat")?
        .1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("short /proc/<pid>/stat")?
            .parse()
            .context("malformed /proc/<pid>/stat")
    };
    // Field 3 is the first after the name: utime (14) is at 14 - 3 = 11.
    Ok((ticks(11)? + ticks(12)?) as f64 / clock_ticks_per_sec() as f64)
}

/// The kernel's clock ticks per second for /proc times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_sec() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// Numbers of the simulated tenant's records as E.164 (with how many records carry each),
/// shared numbers first.
pub(crate) fn known_numbers(sim: &cti_sim::SimHandle) -> Vec<(String, usize)> {
    fn collect(value: &Value, out: &mut HashSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match v {
                        Value::String(s)
                            if key.ends_with("NormalisedNumber") && s.starts_with('+') =>
                        {
                            out.insert(s.clone());
                        }
                        _ => collect(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut numbers = HashSet::new();
    for collection in ["accounts", "contacts", "individualCustomers"] {
        for record in sim.sim.v2.records(collection) {
            collect(&record, &mut numbers);
        }
    }
    let mut numbers: Vec<(String, usize)> = numbers
        .into_iter()
        .map(|n| {
            let owners = sim.sim.v2.lookup_phone(&n).len();
            (n, owners)
        })
        .filter(|(_, owners)| *owners > 0)
        .collect();
    numbers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    numbers
}

/// A small pseudo-random generator (xorshift), seeded per run, so the generator needs no
/// randomness crate and a run can be repeated.
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Runs the load and measures it.
pub async fn run(load: &PushLoad) -> Result<PushReport> {
    // The generator holds a socket per rep: as many as the system lets it.
    if let Err(err) = cti_relay::server::raise_open_file_limit() {
        eprintln!("push: {err}");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let mut redis = match load.redis {
        true => Some(
            RedisServer::start()
                .await
                .context("starting redis-server")?,
        ),
        false => None,
    };
    let addrs = (0..load.instances)
        .map(|_| Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?))
        .collect::<Result<Vec<_>>>()?;
    let relay_url = format!("http://{}", addrs[0]);
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_url = format!("http://{}", sim_listener.local_addr()?);
    let sim = cti_sim::spawn_on(
        sim_listener,
        SimConfig {
            relay_url: relay_url.clone(),
            relay_public_url: relay_url.clone(),
            ..SimConfig::default()
        },
    )?;
    let config = Config::demo(&sim_url);
    let extra = [("CTI_MAX_CONNECTIONS", (load.agents + 20_000).to_string())];
    let mut relays = Vec::new();
    for addr in &addrs {
        relays.push(
            RelayProcess::start_configured(
                &config,
                *addr,
                redis.as_ref().map(RedisServer::url).as_deref(),
                &extra,
                &http,
            )
            .await?,
        );
    }
    let pids = relays
        .iter()
        .map(|r| r.pid().context("the relay process is not running"))
        .collect::<Result<Vec<_>>>()?;
    let rss_before = pids
        .iter()
        .map(|p| rss_kib(*p))
        .collect::<Result<Vec<_>>>()?;

    // Tokens for every rep, signed by the simulated identity provider (RSA: spread over cores).
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let agent = |i: usize| format!("rep{i:05}-{run_id}@bench.example");
    let token_ttl = (load.secs as u64).saturating_add(3_600);
    let mut tokens = Vec::with_capacity(load.agents);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = load.agents.div_ceil(workers);
    let mut signing = Vec::new();
    for start in (0..load.agents).step_by(chunk.max(1)) {
        let sim = sim.sim.clone();
        let names: Vec<String> = (start..(start + chunk).min(load.agents))
            .map(agent)
            .collect();
        signing.push(tokio::task::spawn_blocking(move || {
            names
                .iter()
                .map(|name| sim.idp.issue(name, "demo", token_ttl))
                .collect::<Vec<_>>()
        }));
    }
    for part in signing {
        tokens.extend(part.await?);
    }

    // Connect the reps.
    let (frames_tx, mut frames_rx) = mpsc::unbounded_channel::<Frame>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let ws_urls: Vec<String> = addrs
        .iter()
        .map(|a| format!("ws://{a}/v1/agent/ws"))
        .collect();
    let connected: Vec<tokio::task::JoinHandle<()>> =
        futures_util::stream::iter(tokens.into_iter().enumerate())
            .map(|(rep, token)| {
                let url = ws_urls[rep % ws_urls.len()].clone();
                let (frames, stop) = (frames_tx.clone(), stop_rx.clone());
                async move {
                    let session = connect(&url, &token)
                        .await
                        .with_context(|| format!("rep {rep} signing in"))?;
                    Ok::<_, anyhow::Error>(tokio::spawn(session.run(rep, frames, stop)))
                }
            })
            .buffer_unordered(CONNECT_CONCURRENCY)
            .collect::<Vec<Result<_>>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
    drop(frames_tx);
    let rss_connected = pids
        .iter()
        .map(|p| rss_kib(*p))
        .collect::<Result<Vec<_>>>()?;
    let mut connections_seen = Vec::with_capacity(addrs.len());
    for addr in &addrs {
        let metrics = metrics_of(&http, *addr).await?;
        connections_seen.push(sample(&metrics, "cti_ws_connections"));
    }

    // Collect frames as they come, and count calls that have arrived.
    let (arrived_tx, mut arrived_rx) = watch::channel(0usize);
    let collector = tokio::spawn(async move {
        let mut frames = Vec::new();
        let mut calls = HashSet::new();
        while let Some(frame) = frames_rx.recv().await {
            if calls.insert(frame.call_id.clone()) {
                let _ = arrived_tx.send(calls.len());
            }
            frames.push(frame);
        }
        frames
    });

    // The webhooks, open loop: each call at its time whatever the answers to earlier ones.
    let numbers = known_numbers(&sim);
    if numbers.is_empty() {
        bail!("the simulated tenant has no phone numbers");
    }
    let shared_numbers = numbers.iter().filter(|(_, owners)| *owners > 1).count();
    let webhooks: Vec<String> = addrs
        .iter()
        .map(|addr| format!("http://{addr}/v1/tenants/demo/telephony/generic"))
        .collect();
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::new(Mutex::new(Vec::with_capacity(load.calls())));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ load.agents as u64);
    let cpu_start = pids
        .iter()
        .map(|p| cpu_secs(*p))
        .collect::<Result<Vec<_>>>()?;
    let interval = Duration::from_secs_f64(1.0 / load.rate);
    let started = tokio::time::Instant::now();
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..load.calls() {
        let rep = rng.below(load.agents);
        let known = rng.chance(KNOWN_SHARE);
        let from = if known {
            numbers[rng.below(numbers.len())].0.clone()
        } else {
            // A Swiss mobile range the simulated records do not use.
            format!("+4179{:07}", 9_000_000 + rng.below(1_000_000))
        };
        let call_id = format!("push-{run_id}-{n}");
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let body = json!({
            "id": format!("{call_id}-ringing"), "call_id": call_id, "type": "ringing",
            "direction": "inbound", "from": from, "to": "+41449990000", "agent": agent(rep),
            "at": at,
        })
        .to_string();
        tokio::time::sleep_until(started + interval.mul_f64(n as f64)).await;
        let webhook = match load.spread {
            true => webhooks[n % webhooks.len()].clone(),
            false => webhooks[0].clone(),
        };
        let (http, sent) = (http.clone(), sent.clone());
        posts.spawn(async move {
            let (timestamp, signature) =
                cti_sim::pbx::sign_now("demo-webhook-secret", body.as_bytes());
            let at = Instant::now();
            let status = http
                .post(&webhook)
                .header("content-type", "application/json")
                .header("x-cti-timestamp", timestamp)
                .header("x-cti-signature", signature)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16());
            let record = Sent {
                rep,
                call_id,
                known,
                at,
                accepted: matches!(status, Ok(202)),
            };
            sent.lock().unwrap_or_else(|p| p.into_inner()).push(record);
        });
    }
    let send_phase = started.elapsed();
    while posts.join_next().await.is_some() {}
    let sent = std::mem::take(&mut *sent.lock().unwrap_or_else(|p| p.into_inner()));
    let accepted = sent.iter().filter(|s| s.accepted).count();

    // Wait (bounded) for every accepted call's frame, then watch a moment for extra frames.
    let _ = tokio::time::timeout(DRAIN, arrived_rx.wait_for(|n| *n >= accepted)).await;
    tokio::time::sleep(SETTLE).await;
    let cpu_end = pids
        .iter()
        .map(|p| cpu_secs(*p))
        .collect::<Result<Vec<_>>>()?;
    let rss_after = pids
        .iter()
        .map(|p| rss_kib(*p))
        .collect::<Result<Vec<_>>>()?;
    let mut pushes_seen = Vec::with_capacity(addrs.len());
    for addr in &addrs {
        let metrics = metrics_of(&http, *addr).await?;
        pushes_seen.push(sample(&metrics, "cti_push_seconds_count"));
    }
    let _ = stop_tx.send(true);
    for session in connected {
        let _ = session.await;
    }
    let frames = collector.await?;
    drop(relays);
    if let Some(redis) = redis.as_mut() {
        redis.stop();
    }
    drop(sim);

    let mut report = analyse(load, &sent, &frames);
    report.achieved_rate = sent.len() as f64 / send_phase.as_secs_f64().max(interval.as_secs_f64());
    report.known_numbers = numbers.len();
    report.shared_numbers = shared_numbers;
    report.instances = (0..pids.len())
        .map(|i| InstanceFigures {
            reps: (i..load.agents).step_by(pids.len()).count(),
            rss_before_kib: rss_before[i],
            rss_connected_kib: rss_connected[i],
            rss_after_kib: rss_after[i],
            cpu_secs: cpu_end[i] - cpu_start[i],
            metrics_connections: connections_seen[i],
            metrics_pushes: pushes_seen[i],
        })
        .collect();
    Ok(report)
}

/// A relay instance's `/metrics` text.
async fn metrics_of(http: &reqwest::Client, addr: std::net::SocketAddr) -> Result<String> {
    let response = http.get(format!("http://{addr}/metrics")).send().await?;
    if !response.status().is_success() {
        bail!("GET /metrics at {addr} answered {}", response.status());
    }
    Ok(response.text().await?)
}

/// The value of an unlabelled sample `name` in Prometheus text.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Joins what was sent with what arrived.
fn analyse(load: &PushLoad, sent: &[Sent], frames: &[Frame]) -> PushReport {
    let by_call: HashMap<&str, &Sent> = sent.iter().map(|s| (s.call_id.as_str(), s)).collect();
    let mut first: HashMap<&str, Instant> = HashMap::new();
    let mut seen: HashSet<(usize, u64)> = HashSet::new();
    let (mut duplicated, mut misdelivered) = (0, 0);
    for frame in frames {
        if !seen.insert((frame.rep, frame.seq)) {
            duplicated += 1;
            continue;
        }
        let Some(call) = by_call.get(frame.call_id.as_str()) else {
            continue;
        };
        if call.rep != frame.rep {
            misdelivered += 1;
            continue;
        }
        first
            .entry(call.call_id.as_str())
            .and_modify(|t| *t = (*t).min(frame.at))
            .or_insert(frame.at);
    }
    let (mut latencies, mut known, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    let mut lost = 0;
    for call in sent.iter().filter(|s| s.accepted) {
        match first.get(call.call_id.as_str()) {
            Some(at) => {
                let latency = at.saturating_duration_since(call.at);
                latencies.push(latency);
                if call.known {
                    known.push(latency);
                } else {
                    unknown.push(latency);
                }
            }
            None => lost += 1,
        }
    }
    for samples in [&mut latencies, &mut known, &mut unknown] {
        samples.sort();
    }
    PushReport {
        load: load.clone(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        posted: sent.len(),
        refused: sent.iter().filter(|s| !s.accepted).count(),
        achieved_rate: 0.0,
        latencies,
        known,
        unknown,
        lost,
        duplicated,
        misdelivered,
        frames: frames.len(),
        known_numbers: 0,
        shared_numbers: 0,
        instances: Vec::new(),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A signed-in widget session.
struct Session {
    socket: Socket,
    heartbeat: Duration,
}

/// Connects and says `hello`; returns once the relay welcomed the rep.
async fn connect(url: &str, token: &str) -> Result<Session> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    let hello = json!({"type": "hello", "token": token, "last_seq": null});
    socket.send(Message::Text(hello.to_string().into())).await?;
    loop {
        let message = tokio::time::timeout(crate::PATIENCE, socket.next())
            .await
            .context("no welcome")?
            .context("closed before the welcome")??;
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text)?;
            if value["type"] == "welcome" {
                let secs = value["heartbeat_secs"].as_u64().unwrap_or(25).max(1);
                return Ok(Session {
                    socket,
                    heartbeat: Duration::from_secs(secs),
                });
            }
            bail!("expected welcome, got {value}");
        }
    }
}

impl Session {
    /// Reads frames until told to stop, pinging every heartbeat as the widget does.
    async fn run(
        mut self,
        rep: usize,
        frames: mpsc::UnboundedSender<Frame>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ping = tokio::time::interval(self.heartbeat);
        ping.tick().await;
        let mut nonce = 0u64;
        loop {
            tokio::select! {
                message = self.socket.next() => {
                    let at = Instant::now();
                    let Some(Ok(message)) = message else { return };
                    if let Message::Text(text) = message
                        && let Ok(value) = serde_json::from_str::<Value>(&text)
                        && value["type"] == "call"
                    {
                        let _ = frames.send(Frame {
                            rep,
                            call_id: value["call"]["id"].as_str().unwrap_or_default().to_string(),
                            seq: value["seq"].as_u64().unwrap_or(0),
                            at,
                        });
                    }
                }
                _ = ping.tick() => {
                    nonce += 1;
                    let ping = json!({"type": "ping", "nonce": nonce}).to_string();
                    if self.socket.send(Message::Text(ping.into())).await.is_err() {
                        return;
                    }
                }
                // The generator only ever says stop (or goes away).
                _ = stop.changed() => {
                    let _ = self.socket.close(None).await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        assert_eq!(quantile(&samples, 0.5), Some(Duration::from_millis(500)));
        assert_eq!(quantile(&samples, 0.999), Some(Duration::from_millis(999)));
        assert_eq!(quantile(&samples, 1.0), Some(Duration::from_millis(1000)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn arguments_scale_the_run() {
        let load = PushLoad::from_args(
            [
                "--agents",
                "10000",
                "--rate",
                "1000",
                "--secs",
                "30",
                "--instances",
                "2",
                "--spread",
                "--bench",
            ]
            .map(String::from),
        )
        .expect("valid");
        assert_eq!(load.agents, 10_000);
        assert_eq!(load.calls(), 30_000);
        assert!(load.redis, "two instances share Redis");
        assert!(load.spread);
        assert!(PushLoad::from_args(["--agents".to_string()]).is_err());
        assert!(PushLoad::from_args(["--fast".to_string()]).is_err());
    }
}
