//! Chaos, end to end: calls come in continuously through two relay instances of one deployment
//! sharing a Redis, while one instance is killed (SIGKILL, a process of its own) and started
//! again, Redis is restarted (empty: no persistence), V2 answers 500 and then 429 for a while, and
//! every widget connection is cut by the proxy between the widgets and the relays. At the end
//! every finished call must be exactly one activity in the simulated V2 and must have popped
//! exactly once for its rep; the run prints what it counted.
//!
//! A call is driven as a PBX drives it over the generic webhook: ringing, answered, ended, each
//! event posted to one instance (alternating) and, when that instance does not take it (dead,
//! not ready, erring), to the other, with the same event id, until one does: the relay must turn
//! deliveries that arrive twice into one. The call is answered only once its rep's widget popped
//! it, so a pop that never comes is a lost pop, not a rep who was away.
//!
//! A pop is counted the way the widget decides one (`widget/src/state.rs`): a `call` message
//! with a `seq` above the last applied, ringing, for a round of the call (`returns`) that was not
//! already notified, answered or ended on this rep's page; the page's record of what it posted
//! survives reconnects, as the widget's does. So a replay after a reconnect is no pop, but a call
//! that rings again as a new round is a second one.
//!
//! The short version runs with the suite; `cargo xtask chaos` runs the long one
//! (`CTI_CHAOS_SECS`, `CTI_CHAOS_RATE`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cti_relay::secret::Secret;
use cti_tests::proxy::FaultyProxy;
use cti_tests::redis::RedisServer;
use cti_tests::relay_process::RelayProcess;
use cti_tests::{PATIENCE, Stack, WsClient, eventually};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// How long and how fast a run drives calls.
#[derive(Debug, Clone, Copy)]
struct Plan {
    duration: Duration,
    /// Calls started per second.
    rate: f64,
}

impl Plan {
    /// `CTI_CHAOS_SECS` (default 120) and `CTI_CHAOS_RATE` (calls per second, default 2).
    fn from_env() -> Result<Plan> {
        let number = |var: &str, default: f64| -> Result<f64> {
            match std::env::var(var) {
                Ok(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| *n > 0.0)
                    .with_context(|| format!("{var}={v:?} is not a positive number")),
                Err(_) => Ok(default),
            }
        };
        Ok(Plan {
            duration: Duration::from_secs_f64(number("CTI_CHAOS_SECS", 120.0)?),
            rate: number("CTI_CHAOS_RATE", 2.0)?,
        })
    }
}

/// The short run of the suite: a few calls, each fault once.
#[tokio::test]
async fn calls_through_a_killed_relay_a_restarted_redis_a_failing_v2_and_cut_widgets_are_logged_and_popped_once()
-> Result<()> {
    run(Plan {
        duration: Duration::from_secs(20),
        rate: 1.0,
    })
    .await
}

/// The long run, `cargo xtask chaos`.
#[tokio::test]
#[ignore = "minutes long: run with `cargo xtask chaos`"]
async fn chaos_end_to_end() -> Result<()> {
    run(Plan::from_env()?).await
}

/// What the widgets of the reps saw: pops per call, and the page state that decides them.
#[derive(Debug, Default)]
struct Pops {
    /// Pops per call id, over all its rounds.
    per_call: HashMap<String, u32>,
    /// Ringing messages per call id, replays included (for the report).
    ringing_seen: HashMap<String, u32>,
    /// Connections the widgets opened, the first ones included (for the report).
    connections: usize,
}

/// One rep's page: what it posted to the host (kept across reconnects, as the widget keeps it
/// in storage) and the highest `seq` applied.
#[derive(Debug, Default)]
struct Page {
    last_seq: Option<u64>,
    /// (round, action): "notify", "accept", "end".
    posted: HashSet<(String, &'static str)>,
}

impl Page {
    fn welcome(&mut self, seq: u64) {
        if self.last_seq.is_some_and(|last| seq < last) {
            self.last_seq = None;
        }
    }

    /// Applies a `call` message; whether it is a pop.
    fn call(&mut self, seq: u64, call: &Value) -> bool {
        if self.last_seq.is_some_and(|last| seq <= last) {
            return false;
        }
        self.last_seq = Some(seq);
        let id = call["id"].as_str().unwrap_or_default();
        let round = match call["returns"].as_u64().unwrap_or(0) {
            0 => id.to_string(),
            n => format!("{id}#{n}"),
        };
        let posted = |page: &Page, action| page.posted.contains(&(round.clone(), action));
        let action = match call["state"].as_str().unwrap_or_default() {
            "ringing" if !posted(self, "accept") && !posted(self, "end") => Some("notify"),
            "connected" | "held" if !posted(self, "end") => Some("accept"),
            "ended" | "transferred" if posted(self, "notify") || posted(self, "accept") => {
                Some("end")
            }
            _ => None,
        };
        action.is_some_and(|action| self.posted.insert((round, action)) && action == "notify")
    }
}

/// A rep's widget: connects through `proxy_ws` and reconnects whenever the connection ends,
/// counting pops into `pops`, until `stop` turns true.
async fn widget(
    proxy_ws: String,
    token: String,
    pops: Arc<Mutex<Pops>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut page = Page::default();
    while !*stop.borrow() {
        let Ok(mut ws) = WsClient::connect(&proxy_ws).await else {
            // The instance behind the proxy is down or restarting: try again shortly, as the
            // widget's reconnect loop does.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        pops.lock().unwrap_or_else(|p| p.into_inner()).connections += 1;
        let hello = json!({"type": "hello", "token": token, "last_seq": page.last_seq});
        if ws.send_json(&hello).await.is_err() {
            continue;
        }
        loop {
            let message = tokio::select! {
                _ = stop.changed() => return,
                message = ws.recv_json() => message,
            };
            let Ok(message) = message else { break };
            match message["type"].as_str() {
                Some("welcome") => page.welcome(message["seq"].as_u64().unwrap_or(0)),
                Some("call") => {
                    let call = &message["call"];
                    let id = call["id"].as_str().unwrap_or_default().to_string();
                    let popped = page.call(message["seq"].as_u64().unwrap_or(0), call);
                    let mut pops = pops.lock().unwrap_or_else(|p| p.into_inner());
                    if call["state"] == "ringing" {
                        *pops.ringing_seen.entry(id.clone()).or_default() += 1;
                    }
                    if popped {
                        *pops.per_call.entry(id).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Posts webhook events as a PBX behind a router does: to the preferred instance, else the other.
#[derive(Debug, Clone)]
struct Pbx {
    http: reqwest::Client,
    instances: [String; 2],
    /// Deliveries that went again (to the other instance or later) because one failed.
    redelivered: Arc<AtomicUsize>,
}

impl Pbx {
    /// Delivers `body` until an instance accepts it (202) or calls it a repeat (200).
    async fn deliver(&self, body: &str, preferred: usize) -> Result<()> {
        let deadline = Instant::now() + PATIENCE * 2;
        let mut last = String::new();
        while Instant::now() < deadline {
            for n in [preferred, 1 - preferred] {
                let signed = cti_sim::pbx::sign_now("demo-webhook-secret", body.as_bytes());
                let sent = self
                    .http
                    .post(format!(
                        "{}/v1/tenants/demo/telephony/generic",
                        self.instances[n]
                    ))
                    .header("content-type", "application/json")
                    .header("x-cti-timestamp", signed.0)
                    .header("x-cti-signature", signed.1)
                    .body(body.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 || r.status() == 202 => return Ok(()),
                    Ok(r) if r.status().is_client_error() => {
                        bail!("{} refused {body}: {}", self.instances[n], r.status())
                    }
                    Ok(r) => last = format!("{}: {}", self.instances[n], r.status()),
                    Err(err) => last = format!("{}: {err}", self.instances[n]),
                }
                self.redelivered.fetch_add(1, Ordering::Relaxed);
            }
            // Both instances are out (one killed, the other waiting for Redis): a PBX retries.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("no instance took {body}; last: {last}")
    }
}

fn event(call: &str, kind: &str, rep: &str, from: &str, at: &str) -> String {
    json!({"id": format!("{call}-{kind}"), "call_id": call, "type": kind,
        "direction": "inbound", "from": from, "to": "+41 44 999 00 00", "agent": rep, "at": at})
    .to_string()
}

/// One call: rings, waits for the rep's pop, is answered and ends. Ok(()) once the end was taken.
async fn call(
    pbx: Pbx,
    pops: Arc<Mutex<Pops>>,
    id: String,
    rep: &'static str,
    from: String,
    preferred: usize,
) -> Result<()> {
    pbx.deliver(
        &event(&id, "ringing", rep, &from, &cti_tests::now_rfc3339()),
        preferred,
    )
    .await?;
    // A pop that never comes is counted as lost at the end; the call goes on all the same.
    let _ = eventually(&format!("{rep}'s widget to pop {id}"), || async {
        let pops = pops.lock().unwrap_or_else(|p| p.into_inner());
        pops.per_call.contains_key(&id).then_some(())
    })
    .await;
    pbx.deliver(
        &event(&id, "answered", rep, &from, &cti_tests::now_rfc3339()),
        1 - preferred,
    )
    .await?;
    pbx.deliver(
        &event(&id, "ended", rep, &from, &cti_tests::now_rfc3339()),
        preferred,
    )
    .await?;
    Ok(())
}

/// Prints a phase change with the time since the run started.
fn phase(started: Instant, what: &str) {
    println!("chaos [{:6.1}s] {what}", started.elapsed().as_secs_f64());
}

/// The activities an instance still has to write, from its metrics.
async fn backlog(http: &reqwest::Client, relay: &str) -> Option<u64> {
    let metrics = http
        .get(format!("{relay}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("cti_activity_backlog{tenant=\"demo\"} "))?
        .trim()
        .parse()
        .ok()
}

async fn run(plan: Plan) -> Result<()> {
    let mut redis = RedisServer::start().await?;
    let redis_url = redis.url();
    let stack = Stack::start_with(|c| {
        c.redis_url = Some(Secret::new(redis_url.clone()));
        // Retries in milliseconds, so an outage of seconds is caught up within the run.
        c.activity_retry_base = Duration::from_millis(20);
        c.activity_retry_max = Duration::from_secs(1);
        c.drain = Duration::ZERO;
    })
    .await?;
    let mut other = RelayProcess::start(&stack).await?;
    let proxies = [
        FaultyProxy::start(stack.relay.addr).await?,
        FaultyProxy::start(other.addr).await?,
    ];
    let (number, _, _) = stack.single_match_caller()?;
    let pops = Arc::new(Mutex::new(Pops::default()));
    let (stop, stopped) = watch::channel(false);
    // Alice's widget reaches the in-process instance, Bob's the one that gets killed.
    let reps = [ALICE, BOB];
    let widgets: Vec<_> = reps
        .iter()
        .zip(&proxies)
        .map(|(rep, proxy)| {
            tokio::spawn(widget(
                format!("ws://{}/v1/agent/ws", proxy.addr),
                stack.token(rep),
                pops.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    let pbx = Pbx {
        http: reqwest::Client::builder().timeout(PATIENCE).build()?,
        instances: [stack.relay.url(), other.url()],
        redelivered: Arc::new(AtomicUsize::new(0)),
    };

    let started = Instant::now();
    let end = started + plan.duration;
    let at = |fraction: f64| started + plan.duration.mul_f64(fraction);
    println!(
        "chaos: {:.0} s at {} calls/s through two instances ({} in process, {} a process of its own)",
        plan.duration.as_secs_f64(),
        plan.rate,
        stack.relay.url(),
        other.url()
    );
    let period = Duration::from_secs_f64(1.0 / plan.rate);
    let run_id = std::process::id();
    let mut calls = tokio::task::JoinSet::new();
    let mut ids = Vec::new();
    let mut next_call = started;
    // The faults, in order, each at its fraction of the run. The killed instance stays down for
    // at most 10 s, well within the time a call waits for its rep's pop.
    let restart = 0.10 + 0.08_f64.min(10.0 / plan.duration.as_secs_f64());
    let mut faults: Vec<(f64, &str)> = vec![
        (0.10, "kill"),
        (restart, "restart"),
        (0.30, "redis"),
        (0.45, "v2-500"),
        (0.55, "v2-429"),
        (0.65, "v2-ok"),
        (0.80, "cut"),
    ];
    faults.reverse();
    while Instant::now() < end {
        let next_fault = faults.last().map(|(f, _)| at(*f));
        if let Some(when) = next_fault.filter(|when| *when <= next_call) {
            tokio::time::sleep_until(when).await;
            let Some((_, fault)) = faults.pop() else {
                continue;
            };
            match fault {
                "kill" => {
                    other.kill()?;
                    phase(started, "relay instance 2 killed (SIGKILL)");
                }
                "restart" => {
                    other.start_again(&stack).await?;
                    phase(started, "relay instance 2 started again and ready");
                }
                "redis" => {
                    redis.restart().await?;
                    phase(started, "Redis restarted (empty)");
                }
                "v2-500" => {
                    stack
                        .v2_fault(&json!({"status": 500, "count": 1_000_000}))
                        .await?;
                    phase(started, "V2 answers 500");
                }
                "v2-429" => {
                    stack
                        .v2_fault(&json!({"status": 429, "count": 1_000_000}))
                        .await?;
                    phase(started, "V2 answers 429");
                }
                "v2-ok" => {
                    stack
                        .http
                        .delete(format!("{}/sim/faults", stack.sim.url()))
                        .send()
                        .await?
                        .error_for_status()?;
                    phase(started, "V2 answers again");
                }
                _ => {
                    for proxy in &proxies {
                        proxy.cut();
                    }
                    phase(started, "widget connections cut at the proxy");
                }
            }
            continue;
        }
        tokio::time::sleep_until(next_call).await;
        let n = ids.len();
        let id = format!("chaos-{run_id}-{n}");
        ids.push(id.clone());
        calls.spawn(call(
            pbx.clone(),
            pops.clone(),
            id,
            reps[n % 2],
            number.clone(),
            n % 2,
        ));
        next_call += period;
    }
    phase(
        started,
        "no more new calls; waiting for the calls in progress",
    );
    let mut unfinished = Vec::new();
    while let Some(done) = calls.join_next().await {
        if let Err(err) = done.context("a call task")? {
            unfinished.push(format!("{err:#}"));
        }
    }
    stop.send_replace(true);
    for widget in widgets {
        let _ = widget.await;
    }

    phase(started, "waiting for the activity writers to settle");
    // Every call's activity written, then both writers idle, before counting duplicates.
    let settle = Instant::now() + PATIENCE * 4;
    for id in &ids {
        while Instant::now() < settle {
            if stack.activities(id).await.is_ok_and(|a| !a.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // An instance whose backlog does not empty is reported with the counts, not instead of them.
    let mut stuck = Vec::new();
    for relay in [stack.relay.url(), other.url()] {
        let empty = eventually("the activity backlog to empty", || async {
            (backlog(&stack.http, &relay).await? == 0).then_some(())
        })
        .await;
        if empty.is_err() {
            let left = backlog(&stack.http, &relay).await;
            stuck.push(format!("{relay} still has {left:?} activities to write"));
        }
    }

    let mut activities = HashMap::new();
    for id in &ids {
        activities.insert(id.clone(), stack.activities(id).await?.len());
    }
    let pops = std::mem::take(&mut *pops.lock().unwrap_or_else(|p| p.into_inner()));
    let count = |f: &dyn Fn(&str) -> bool| ids.iter().filter(|id| f(id)).count();
    let lost_activities = count(&|id| activities[id] == 0);
    let doubled_activities = count(&|id| activities[id] > 1);
    let popped = |id: &str| pops.per_call.get(id).copied().unwrap_or(0);
    let lost_pops = count(&|id| popped(id) == 0);
    let doubled_pops = count(&|id| popped(id) > 1);
    let ringing: u32 = pops.ringing_seen.values().sum();
    println!(
        "chaos: {} calls finished, {} not finished\n\
         chaos:                 lost  duplicated\n\
         chaos:   activities  {lost_activities:>6}  {doubled_activities:>10}\n\
         chaos:   pops        {lost_pops:>6}  {doubled_pops:>10}\n\
         chaos: ({} activities in V2, {} pops, {ringing} ringing messages incl. replays, \
         {} widget connections, {} event deliveries repeated after a failed one)",
        ids.len() - unfinished.len(),
        unfinished.len(),
        activities.values().sum::<usize>(),
        pops.per_call.values().sum::<u32>(),
        pops.connections,
        pbx.redelivered.load(Ordering::Relaxed),
    );
    let odd: Vec<String> = ids
        .iter()
        .filter(|id| activities[*id] != 1 || popped(id) != 1)
        .map(|id| {
            let ringing = pops.ringing_seen.get(id).copied().unwrap_or(0);
            format!(
                "{id}: {} activities, {} pops ({ringing} ringing messages)",
                activities[id],
                popped(id)
            )
        })
        .collect();
    for line in odd.iter().chain(&unfinished).chain(&stuck) {
        println!("chaos:   {line}");
    }
    drop(other);
    if !unfinished.is_empty() || !odd.is_empty() || !stuck.is_empty() {
        bail!(
            "{} calls not finished, {lost_activities} activities lost, {doubled_activities} duplicated, {lost_pops} pops lost, {doubled_pops} duplicated, {} instances with activities left to write",
            unfinished.len(),
            stuck.len()
        );
    }
    Ok(())
}
