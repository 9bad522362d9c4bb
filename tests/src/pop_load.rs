//! Ring to pop in a real browser, call after call: how long a ringing call takes from the
//! telephony webhook to the V2 host page receiving the widget's `NOTIFY`, the moment V2 pops.
//!
//! The relay and the simulator (V2 tenant, identity provider and host page) run as the demo and
//! the end-to-end tests run them ([`Stack`]), the widget in the simulated V2 host page in headless
//! Chromium, signed in as the demo rep. For each call it posts a signed generic `ringing`
//! webhook for that rep (a caller that is four times in five a number of the tenant's records,
//! otherwise an unknown number), waits (bounded) for the host page to receive the call's
//! `NOTIFY`, then ends the call with an `ended` webhook and waits until the relay holds no call
//! for the rep, so every call rings on an idle widget. The host page stamps when it received
//! each payload ([`HostPop::page_received_ms`]); ring-to-pop is that stamp minus the time the
//! ring began ([`ring_to_pop`]), both from this machine's clock.
//!
//! At the end it counts, over the host page's whole log, the calls popped more than once.
//! The end-to-end test in `tests/tests/integration/browser_flow.rs` takes its ring-to-pop figure
//! with the same functions.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::browser::{Browser, WIDGET_FRAME};
use crate::push_load::{Rng, known_numbers, quantile};
use crate::{Stack, eventually};

/// The demo rep whose widget the host page frames.
const AGENT: &str = "alice@example.com";
/// How long a call may take to pop before it counts as lost.
const POP_BOUND: Duration = Duration::from_secs(10);
/// After the last call, how long the host page's log is still watched for pops sent twice.
const SETTLE: Duration = Duration::from_millis(500);
/// Share of calls from a number of the tenant's records (the rest are unknown numbers).
const KNOWN_SHARE: f64 = 0.8;
/// Calls one run may make: the simulated host page keeps its last 10,000 payloads, and pops
/// sent twice are counted over that log.
pub const MAX_CALLS: usize = 4_000;
/// Page loads one run may make (each starts a widget session and signs it in).
pub const MAX_LOADS: usize = 200;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct PopLoad {
    /// Calls, one after the other.
    pub calls: usize,
    /// Loads of the host page before the calls, each timing the widget's first paint.
    pub loads: usize,
}

impl Default for PopLoad {
    fn default() -> Self {
        PopLoad {
            calls: 100,
            loads: 10,
        }
    }
}

impl PopLoad {
    /// Reads `--calls N` over the default. Arguments cargo adds to a benchmark's (`--bench`)
    /// are ignored.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<PopLoad> {
        let mut load = PopLoad::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--calls" => {
                    load.calls = args
                        .next()
                        .context("--calls needs a value")?
                        .parse()
                        .context("--calls takes a whole number")?;
                }
                "--loads" => {
                    load.loads = args
                        .next()
                        .context("--loads needs a value")?
                        .parse()
                        .context("--loads takes a whole number")?;
                }
                "--bench" => {}
                other => bail!("unknown argument {other:?}; use --calls N and --loads N"),
            }
        }
        if load.calls == 0 || load.calls > MAX_CALLS {
            bail!("--calls must be 1 to {MAX_CALLS}");
        }
        if load.loads == 0 || load.loads > MAX_LOADS {
            bail!("--loads must be 1 to {MAX_LOADS}");
        }
        Ok(load)
    }
}

/// A `NOTIFY` as a host page received it.
#[derive(Debug, Clone)]
pub struct HostPop {
    /// The host page's log entry (`{"page_id","payload","ani_ok",...}`).
    pub entry: Value,
    /// When the page received the widget's `postMessage`, ms since the Unix epoch.
    pub page_received_ms: u64,
}

/// Waits until a host page received the `NOTIFY` of `call_id`.
pub async fn host_pop(stack: &Stack, call_id: &str) -> Result<HostPop> {
    let entry = stack.wait_host_action(call_id, "NOTIFY").await?;
    let page_received_ms = entry["page_received_ms"]
        .as_u64()
        .context("the host page stamps when it received a payload (page_received_ms)")?;
    Ok(HostPop {
        entry,
        page_received_ms,
    })
}

/// From `rang_at_ms` (ms since the Unix epoch: when the webhook was sent or received) to the host
/// page receiving the pop; zero where the clocks' millisecond rounding puts the pop first.
pub fn ring_to_pop(rang_at_ms: u64, pop: &HostPop) -> Duration {
    Duration::from_millis(pop.page_received_ms.saturating_sub(rang_at_ms))
}

/// Now, in ms since the Unix epoch (the clock the browser's `Date.now()` reads).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct PopReport {
    pub load: PopLoad,
    pub cores: usize,
    /// Webhooks posted, and those the relay did not answer 202.
    pub posted: usize,
    pub refused: usize,
    /// Webhook sent -> `NOTIFY` at the host page, per popped call, sorted.
    pub latencies: Vec<Duration>,
    /// Accepted calls that did not pop within [`POP_BOUND`].
    pub lost: usize,
    /// Calls whose `NOTIFY` the host page received more than once.
    pub duplicated: usize,
    /// The widget's first contentful paint in its frame, from the frame's navigation start,
    /// per page load the browser reported one for, sorted.
    pub first_paints: Vec<Duration>,
    /// How long the run took.
    pub elapsed: Duration,
}

impl fmt::Display for PopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |q: f64| {
            quantile(&self.latencies, q)
                .map_or_else(|| "-".into(), |d| format!("{} ms", d.as_millis()))
        };
        writeln!(
            f,
            "pop: {} calls one after the other to one widget in headless Chromium, {} cores, {:.1} s",
            self.load.calls,
            self.cores,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "webhook sent -> NOTIFY at the V2 host page: n={} p50={} p90={} p99={} max={}",
            self.latencies.len(),
            ms(0.50),
            ms(0.90),
            ms(0.99),
            ms(1.0)
        )?;
        let paint = |q: f64| {
            quantile(&self.first_paints, q)
                .map_or_else(|| "-".into(), |d| format!("{} ms", d.as_millis()))
        };
        writeln!(
            f,
            "widget first contentful paint in its frame (from the frame's navigation start): \
             loads={} reported={} p50={} p90={} max={}",
            self.load.loads,
            self.first_paints.len(),
            paint(0.50),
            paint(0.90),
            paint(1.0)
        )?;
        writeln!(
            f,
            "calls: {} posted, {} refused, {} popped, {} lost, {} popped more than once",
            self.posted,
            self.refused,
            self.latencies.len(),
            self.lost,
            self.duplicated
        )
    }
}

fn event(call_id: &str, kind: &str, from: &str) -> String {
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "id": format!("{call_id}-{kind}"), "call_id": call_id, "type": kind,
        "direction": "inbound", "from": from, "to": "+41449990000", "agent": AGENT, "at": at,
    })
    .to_string()
}

/// Runs the calls and measures them.
pub async fn run(load: &PopLoad) -> Result<PopReport> {
    let started = std::time::Instant::now();
    let stack = Stack::start().await?;
    let browser = Browser::start().await?;
    let outcome = calls(load, &stack, &browser).await;
    browser.close().await;
    let mut report = outcome?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The widget's first contentful paint in its frame over `loads` loads of the host page, as
/// the browser's paint timing reports it (relative to the frame's own navigation start: the
/// host page's time before it is V2's, not the widget's).
async fn first_paints(stack: &Stack, browser: &Browser, loads: usize) -> Result<Vec<Duration>> {
    const PAINT: &str = "const e = performance.getEntriesByName('first-contentful-paint')[0]; \
                         return e ? e.startTime : null;";
    let mut paints = Vec::with_capacity(loads);
    for _ in 0..loads {
        browser.open_host(&stack.sim.url(), AGENT).await?;
        browser.enter_frame(WIDGET_FRAME).await?;
        let reported = browser.client.execute(PAINT, Vec::new()).await;
        browser.leave_frame().await?;
        if let Some(ms) = reported
            .context("reading the widget's paint timing")?
            .as_f64()
        {
            paints.push(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
        }
    }
    paints.sort();
    Ok(paints)
}

async fn calls(load: &PopLoad, stack: &Stack, browser: &Browser) -> Result<PopReport> {
    let first_paints = first_paints(stack, browser, load.loads).await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;
    let numbers = known_numbers(&stack.sim);
    if numbers.is_empty() {
        bail!("the simulated tenant has no phone numbers");
    }
    let run_id = format!("{:x}", now_ms());
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut posted, mut refused, mut lost) = (0, 0, 0);
    let mut latencies = Vec::with_capacity(load.calls);
    let mut call_ids = Vec::with_capacity(load.calls);
    for n in 0..load.calls {
        let from = if rng.chance(KNOWN_SHARE) {
            numbers[rng.below(numbers.len())].0.clone()
        } else {
            // A Swiss mobile range the simulated records do not use.
            format!("+4179{:07}", 9_000_000 + rng.below(1_000_000))
        };
        let call_id = format!("pop-{run_id}-{n}");
        let ringing = event(&call_id, "ringing", &from);
        let sent_ms = now_ms();
        let status = stack.post_event(&ringing).await?;
        posted += 1;
        if status != 202 {
            refused += 1;
            continue;
        }
        call_ids.push(call_id.clone());
        match tokio::time::timeout(POP_BOUND, host_pop(stack, &call_id)).await {
            Ok(Ok(pop)) => latencies.push(ring_to_pop(sent_ms, &pop)),
            Ok(Err(err)) => return Err(err),
            Err(_) => lost += 1,
        }
        let status = stack.post_event(&event(&call_id, "ended", &from)).await?;
        if status != 202 {
            bail!("the relay answered {status} to ending {call_id}");
        }
        eventually(&format!("{call_id} to end at the relay"), || async {
            let active = stack
                .relay
                .state
                .calls
                .active_for_agent("demo", AGENT)
                .await
                .ok()?;
            active.is_empty().then_some(())
        })
        .await?;
    }
    tokio::time::sleep(SETTLE).await;
    let payloads = stack.host_payloads().await?;
    let duplicated = call_ids
        .iter()
        .filter(|id| {
            let reference = cti_protocol::host::external_reference(id);
            payloads
                .iter()
                .filter(|p| {
                    p["payload"]["Action"] == "NOTIFY"
                        && p["payload"]["ExternalReferenceID"] == reference
                })
                .count()
                > 1
        })
        .count();
    latencies.sort();
    Ok(PopReport {
        load: load.clone(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        posted,
        refused,
        latencies,
        lost,
        duplicated,
        first_paints,
        elapsed: Duration::ZERO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_size_the_run() {
        assert_eq!(PopLoad::from_args(Vec::new()).expect("defaults").calls, 100);
        let load = PopLoad::from_args(["--calls", "250", "--bench"].map(String::from));
        assert_eq!(load.expect("valid").calls, 250);
        assert!(PopLoad::from_args(["--calls".to_string()]).is_err());
        assert!(PopLoad::from_args(["--calls", "0"].map(String::from)).is_err());
        assert!(PopLoad::from_args(["--calls", "4001"].map(String::from)).is_err());
        assert!(PopLoad::from_args(["--fast".to_string()]).is_err());
        let load = PopLoad::from_args(["--loads", "3"].map(String::from)).expect("valid");
        assert_eq!((load.calls, load.loads), (100, 3));
        assert!(PopLoad::from_args(["--loads", "0"].map(String::from)).is_err());
    }

    #[test]
    fn ring_to_pop_never_goes_below_zero() {
        let pop = HostPop {
            entry: Value::Null,
            page_received_ms: 1_000,
        };
        assert_eq!(ring_to_pop(880, &pop), Duration::from_millis(120));
        assert_eq!(ring_to_pop(1_001, &pop), Duration::ZERO);
    }
}
