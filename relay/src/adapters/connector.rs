//! A provider's connector: its held connection (a notification WebSocket, a CTI or SIP link) or
//! its subscription's life (create, validate, renew, recreate), kept running.
//!
//! The adapter writes one run of its connector ([`TelephonyAdapter::connector`]); here that run is
//! started per tenant and started again with a growing, jittered back-off whenever it ends or
//! panics (a dropped link is normal; a tight reconnect loop against a provider that is down, or a
//! fleet of instances reconnecting in the same second, is not). With several instances, only the
//! one holding the tenant's connector lease runs it; the others stand by and take over when the
//! lease expires (its holder died) or is given back (it stopped).
//!
//! What the run hears goes through its [`Link`] to the other end, the [`Inbox`], which the relay
//! drains into the same ingest as a webhook's events; the link also carries the connector's
//! state to `/readyz` and `/metrics`. It is a channel, so an adapter never needs the relay's state,
//! and this module knows nothing above the adapters.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cti_protocol::event::TelephonyEvent;
use futures_util::FutureExt;
use parking_lot::Mutex;
use rand::Rng;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::TelephonyAdapter;
use crate::metrics::{Metrics, ProviderLabels};

/// Events waiting for the relay per tenant; a full queue makes the connector wait, which is the
/// back-pressure a link wants.
const QUEUE: usize = 256;

/// Why a connector's run ended: what was lost, in words for the log and `/readyz` (never a
/// secret or a phone number).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

/// The calls the relay still holds as live, so a connector that was away (a lost socket, a
/// restart, a take-over from another instance) can ask its provider how each one ended: a
/// provider's list of current calls no longer has a call that ended during the gap.
#[async_trait]
pub trait LiveCalls: Send + Sync + std::fmt::Debug {
    /// The ids of the calls on which `rep` has a leg that has not ended.
    async fn of_rep(&self, rep: &str) -> Vec<String>;
}

/// For connectors run without a relay behind them (tests).
#[derive(Debug, Default)]
pub struct NoLiveCalls;

#[async_trait]
impl LiveCalls for NoLiveCalls {
    async fn of_rep(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
}

/// A connector's way to the relay: its events, the calls the relay holds as live, and its
/// state for `/readyz` and `/metrics`.
#[derive(Debug, Clone)]
pub struct Link {
    queue: mpsc::Sender<Delivery>,
    live: Arc<dyn LiveCalls>,
    status: Arc<LinkStatus>,
    metrics: Arc<Metrics>,
    labels: ProviderLabels,
}

/// The relay's end of a [`Link`].
#[derive(Debug)]
pub struct Inbox {
    queue: mpsc::Receiver<Delivery>,
}

/// Why the relay could not apply an event (its store was away, for instance).
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One event from a connector, and the way to tell it whether the relay applied it.
#[derive(Debug)]
pub struct Delivery {
    pub event: TelephonyEvent,
    applied: oneshot::Sender<Result<(), Failure>>,
}

impl Delivery {
    /// Tells the waiting connector the outcome; one that stopped waiting is not told.
    pub fn report(self, outcome: Result<(), Failure>) {
        let _ = self.applied.send(outcome);
    }
}

impl Inbox {
    /// The next event a connector sent, in the order it sent them; None once every link is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.queue.recv().await
    }
}

/// Why an event from a connector was not applied; a connector whose provider redelivers should
/// leave it unacknowledged.
#[derive(Debug, thiserror::Error)]
pub enum Undelivered {
    #[error("the relay could not apply it: {0}")]
    Failed(#[source] Failure),
    #[error("the relay is stopping")]
    Closed,
}

/// A connected link and inbox for `provider`'s connector of `tenant`.
pub fn channel(
    tenant: &str,
    provider: &str,
    live: Arc<dyn LiveCalls>,
    status: Arc<LinkStatus>,
    metrics: Arc<Metrics>,
) -> (Link, Inbox) {
    let (queue, inbox) = mpsc::channel(QUEUE);
    let labels = ProviderLabels {
        tenant: tenant.to_string(),
        provider: provider.to_string(),
    };
    metrics.provider_connected.get_or_create(&labels).set(0);
    let link = Link {
        queue,
        live,
        status,
        metrics,
        labels,
    };
    (link, Inbox { queue: inbox })
}

impl Link {
    /// Hands one event to the relay and waits until it is applied (or known as a duplicate), so
    /// the connector acknowledges to its provider only what the relay has.
    pub async fn deliver(&self, event: TelephonyEvent) -> Result<(), Undelivered> {
        let (applied, outcome) = oneshot::channel();
        // Rep ids follow one rule from here on, as the token's rep does (review F20).
        let event = crate::identity::normalize_event(event);
        self.queue
            .send(Delivery { event, applied })
            .await
            .map_err(|_| Undelivered::Closed)?;
        self.metrics
            .provider_events
            .get_or_create(&self.labels)
            .inc();
        outcome
            .await
            .map_err(|_| Undelivered::Closed)?
            .map_err(Undelivered::Failed)?;
        Ok(())
    }

    /// The calls the relay holds as live for any of `reps`, as (call id, rep), each call once:
    /// after a gap, the connector reads each from its provider so an end it missed arrives.
    pub async fn live_calls(&self, reps: &[String]) -> Vec<(String, String)> {
        let mut calls: Vec<(String, String)> = Vec::new();
        for rep in reps {
            for call in self.live.of_rep(&crate::identity::rep_id(rep)).await {
                if !calls.iter().any(|(known, _)| *known == call) {
                    calls.push((call, rep.clone()));
                }
            }
        }
        calls
    }

    /// The tenant this link serves (for the connector's log lines).
    pub fn tenant(&self) -> &str {
        &self.labels.tenant
    }

    /// Connected and subscribed: events flow.
    pub fn up(&self) {
        self.metrics
            .provider_connected
            .get_or_create(&self.labels)
            .set(1);
        self.status.update(|s| s.connected = true);
    }

    /// The connection is gone (the run is about to end, or is waiting to reconnect inside).
    pub fn down(&self) {
        self.metrics
            .provider_connected
            .get_or_create(&self.labels)
            .set(0);
        self.status.update(|s| s.connected = false);
    }

    /// Something the connector met and got past or is about to end on: counted, and the last
    /// one shown in `/readyz`.
    pub fn error(&self, what: &str) {
        self.metrics
            .provider_errors
            .get_or_create(&self.labels)
            .inc();
        let what: String = what.chars().take(300).collect();
        tracing::warn!(tenant = %self.labels.tenant, provider = %self.labels.provider, "{what}");
        self.status.update(|s| s.last_error = Some(what));
    }

    fn reconnecting(&self) {
        self.metrics
            .provider_reconnects
            .get_or_create(&self.labels)
            .inc();
        self.status.update(|s| s.reconnects += 1);
    }

    fn role(&self, role: Role) {
        self.status.update(|s| s.role = role);
    }
}

/// Where this instance stands with a tenant's connector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The provider only calls in: there is nothing to hold.
    #[default]
    None,
    /// Waiting for the lease (another instance holds it, or the store is away).
    Standby,
    /// This instance runs the connector.
    Holder,
}

/// A connector's state as `/readyz` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkState {
    pub role: Role,
    pub connected: bool,
    pub reconnects: u64,
    pub last_error: Option<String>,
}

/// The shared, current [`LinkState`] of one tenant's connector.
#[derive(Debug, Default)]
pub struct LinkStatus {
    state: Mutex<LinkState>,
}

impl LinkStatus {
    pub fn get(&self) -> LinkState {
        self.state.lock().clone()
    }

    fn update(&self, change: impl FnOnce(&mut LinkState)) {
        change(&mut self.state.lock());
    }
}

/// Why a lease could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the lease store is unavailable: {0}")]
pub struct LeaseError(String);

/// Who runs a tenant's connector when several instances could. The lease expires by itself, so
/// a holder that dies hands over within `ttl`.
#[async_trait]
pub trait ConnectorLeases: Send + Sync + std::fmt::Debug {
    /// Takes `key` for `ttl` when it is free or already `holder`'s (then it is extended).
    async fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, LeaseError>;
    /// Gives `key` back if `holder` still holds it.
    async fn release(&self, key: &str, holder: &str) -> Result<(), LeaseError>;
}

/// One instance alone (stores in memory): it always holds every connector.
#[derive(Debug, Default)]
pub struct SoleInstance;

#[async_trait]
impl ConnectorLeases for SoleInstance {
    async fn acquire(&self, _: &str, _: &str, _: Duration) -> Result<bool, LeaseError> {
        Ok(true)
    }

    async fn release(&self, _: &str, _: &str) -> Result<(), LeaseError> {
        Ok(())
    }
}

/// Leases in the Redis the instances share.
#[derive(Debug, Clone)]
pub struct RedisLeases {
    conn: redis::aio::ConnectionManager,
}

impl RedisLeases {
    pub fn new(conn: redis::aio::ConnectionManager) -> Self {
        RedisLeases { conn }
    }
}

#[async_trait]
impl ConnectorLeases for RedisLeases {
    async fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, LeaseError> {
        let mut conn = self.conn.clone();
        crate::shared_store::acquire_lease(&mut conn, key, holder, ttl)
            .await
            .map_err(|e| LeaseError(e.to_string()))
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), LeaseError> {
        let mut conn = self.conn.clone();
        crate::shared_store::release_lease(&mut conn, key, holder)
            .await
            .map_err(|e| LeaseError(e.to_string()))
    }
}

/// The lease name of a tenant's connector to a provider.
pub fn lease_key(tenant: &str, provider: &str) -> String {
    format!("cti:{{{tenant}}}:connector:{provider}")
}

/// How long to wait before starting a connector again: doubling from `first` up to `max`, and
/// from `first` again after a run that lasted longer than `max` (it was up, then dropped); each
/// wait is lengthened by up to a quarter at random.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// `wait` plus up to a quarter of it.
fn jittered(wait: Duration) -> Duration {
    let quarter = wait.as_millis() as u64 / 4;
    wait + Duration::from_millis(rand::thread_rng().gen_range(0..=quarter))
}

/// Everything a tenant's connector runs with.
#[derive(Debug, Clone)]
pub struct Supervision {
    pub adapter: Arc<dyn TelephonyAdapter>,
    pub link: Link,
    pub leases: Arc<dyn ConnectorLeases>,
    /// This instance, as a lease holder.
    pub holder: String,
    pub backoff: Backoff,
    /// How long a lease lasts unless renewed (renewed every third of it).
    pub lease_ttl: Duration,
}

/// How a run ended.
enum Ended {
    Run(Result<(), LinkError>),
    Panicked,
    LeaseLost,
}

/// The adapter's connector, run while this instance holds its lease and started again whenever
/// it ends; None when the provider has no connector.
pub fn supervise(s: Supervision) -> Option<impl Future<Output = ()> + Send + 'static> {
    let first = s.adapter.connector(s.link.clone())?;
    Some(async move {
        let provider = s.adapter.provider();
        let key = lease_key(s.link.tenant(), provider);
        let mut next = Some(first);
        let mut wait = s.backoff.first;
        loop {
            match s.leases.acquire(&key, &s.holder, s.lease_ttl).await {
                Ok(true) => {}
                outcome => {
                    if let Err(err) = outcome {
                        s.link.error(&format!("connector lease: {err}"));
                    }
                    s.link.role(Role::Standby);
                    s.link.down();
                    tokio::time::sleep(jittered(s.lease_ttl / 2)).await;
                    continue;
                }
            }
            s.link.role(Role::Holder);
            let Some(run) = next.take().or_else(|| s.adapter.connector(s.link.clone())) else {
                return;
            };
            let started = Instant::now();
            let ended = tokio::select! {
                outcome = AssertUnwindSafe(run).catch_unwind() => match outcome {
                    Ok(outcome) => Ended::Run(outcome),
                    Err(_) => Ended::Panicked,
                },
                () = keep_lease(&*s.leases, &key, &s.holder, s.lease_ttl) => Ended::LeaseLost,
            };
            s.link.down();
            match ended {
                Ended::Run(Ok(())) => {
                    tracing::info!(tenant = %s.link.tenant(), provider, "the connector ended")
                }
                Ended::Run(Err(err)) => s.link.error(&format!("the connection was lost: {err}")),
                Ended::Panicked => s.link.error("the connector panicked"),
                Ended::LeaseLost => {
                    // Another instance runs it now; no back-off, just stand by.
                    tracing::warn!(tenant = %s.link.tenant(), provider, "the connector's lease went to another instance");
                    s.link.role(Role::Standby);
                    continue;
                }
            }
            s.link.reconnecting();
            if started.elapsed() > s.backoff.max {
                wait = s.backoff.first;
            }
            let pause = jittered(wait);
            tracing::warn!(tenant = %s.link.tenant(), provider, retry_in = ?pause, "starting the connector again");
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(s.backoff.max);
        }
    })
}

/// Renews the lease every third of its life; returns once another holder has it. A store that
/// does not answer is not a lost lease: nobody else can take it while the store is away.
async fn keep_lease(leases: &dyn ConnectorLeases, key: &str, holder: &str, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match leases.acquire(key, holder, ttl).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => tracing::warn!(%err, "the connector lease could not be renewed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use async_trait::async_trait;
    use cti_protocol::event::{Direction, EventType};
    use cti_protocol::ws::CallCommand;
    use futures_util::future::BoxFuture;

    use super::*;
    use crate::adapters::{AdapterError, CommandError, Inbound, Ingress};
    use crate::calls::Leg;

    /// A provider whose connector sends one event per run and then drops; its second run
    /// panics. With `hold`, a run stays connected until aborted instead.
    #[derive(Debug, Default)]
    struct Flaky {
        starts: Arc<Mutex<Vec<Instant>>>,
        hold: bool,
    }

    #[async_trait]
    impl TelephonyAdapter for Flaky {
        fn provider(&self) -> &'static str {
            "flaky"
        }

        async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
            Err(AdapterError::MethodNotAllowed(request.method.clone()))
        }

        fn connector(&self, link: Link) -> Option<BoxFuture<'static, Result<(), LinkError>>> {
            let starts = self.starts.clone();
            let hold = self.hold;
            Some(Box::pin(async move {
                let run = {
                    let mut starts = starts.lock();
                    starts.push(Instant::now());
                    starts.len()
                };
                link.up();
                if hold {
                    let _ = link.deliver(event(run)).await;
                    std::future::pending::<()>().await;
                }
                assert_ne!(run, 2, "the link breaks badly once");
                let _ = link.deliver(event(run)).await;
                Err(LinkError("dropped".into()))
            }))
        }

        async fn command(&self, _: &Leg, _: &CallCommand) -> Result<(), CommandError> {
            Ok(())
        }

        async fn dial(&self, _: &str, _: &str) -> Result<Option<String>, CommandError> {
            Ok(None)
        }
    }

    /// A provider that only calls in.
    #[derive(Debug)]
    struct Webhooks;

    #[async_trait]
    impl TelephonyAdapter for Webhooks {
        fn provider(&self) -> &'static str {
            "webhooks"
        }

        async fn receive(&self, _: Inbound<'_>) -> Result<Ingress, AdapterError> {
            Ok(Ingress::Events(Vec::new()))
        }

        async fn command(&self, _: &Leg, _: &CallCommand) -> Result<(), CommandError> {
            Ok(())
        }

        async fn dial(&self, _: &str, _: &str) -> Result<Option<String>, CommandError> {
            Ok(None)
        }
    }

    /// Leases shared by the "instances" of a test, expiring on tokio's (paused) clock.
    #[derive(Debug, Default)]
    struct SharedLeases {
        held: Mutex<HashMap<String, (String, Instant)>>,
    }

    #[async_trait]
    impl ConnectorLeases for SharedLeases {
        async fn acquire(
            &self,
            key: &str,
            holder: &str,
            ttl: Duration,
        ) -> Result<bool, LeaseError> {
            let mut held = self.held.lock();
            let now = Instant::now();
            let free = held
                .get(key)
                .is_none_or(|(h, until)| h == holder || *until <= now);
            if free {
                held.insert(key.to_string(), (holder.to_string(), now + ttl));
            }
            Ok(free)
        }

        async fn release(&self, key: &str, holder: &str) -> Result<(), LeaseError> {
            let mut held = self.held.lock();
            if held.get(key).is_some_and(|(h, _)| h == holder) {
                held.remove(key);
            }
            Ok(())
        }
    }

    fn event(run: usize) -> TelephonyEvent {
        TelephonyEvent {
            id: format!("e{run}"),
            call_id: "c".into(),
            event_type: EventType::Ringing,
            direction: Direction::Inbound,
            from: "1".into(),
            to: "2".into(),
            agent: "a".into(),
            at: "2026-11-24T10:00:00Z".into(),
            transfer_to: None,
            reason: None,
            recording_url: None,
        }
    }

    fn supervision(
        adapter: Arc<dyn TelephonyAdapter>,
        leases: Arc<dyn ConnectorLeases>,
        holder: &str,
        backoff: Backoff,
    ) -> (Supervision, Inbox, Arc<LinkStatus>, Arc<Metrics>) {
        let status = Arc::new(LinkStatus::default());
        let metrics = Arc::new(Metrics::default());
        let (link, inbox) = channel(
            "t",
            adapter.provider(),
            Arc::new(NoLiveCalls),
            status.clone(),
            metrics.clone(),
        );
        let s = Supervision {
            adapter,
            link,
            leases,
            holder: holder.into(),
            backoff,
            lease_ttl: Duration::from_secs(15),
        };
        (s, inbox, status, metrics)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connector_that_ends_or_panics_is_started_again_later_each_time() {
        let adapter = Arc::new(Flaky::default());
        let backoff = Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(4),
        };
        let (s, mut inbox, status, metrics) =
            supervision(adapter.clone(), Arc::new(SoleInstance), "me", backoff);
        let link = tokio::spawn(supervise(s).expect("a connector"));
        let t0 = Instant::now();
        let mut delivered = Vec::new();
        while delivered.len() < 4 {
            let delivery = inbox.next().await.expect("the connector sends");
            delivered.push(delivery.event.id.clone());
            delivery.report(Ok(()));
        }
        link.abort();
        // Run 2 panicked before sending; the others each delivered their event.
        assert_eq!(delivered, ["e1", "e3", "e4", "e5"]);
        let starts: Vec<u64> = adapter
            .starts
            .lock()
            .iter()
            .map(|at| at.duration_since(t0).as_millis() as u64)
            .collect();
        // Waits of 1, 2, 4 and then 4 again (doubling, capped), each up to a quarter longer.
        let waits: Vec<u64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        for (wait, base) in waits.iter().zip([1_000, 2_000, 4_000, 4_000]) {
            assert!((base..=base + base / 4).contains(wait), "{waits:?}");
        }
        let state = status.get();
        assert_eq!(state.role, Role::Holder);
        assert_eq!(state.reconnects, 4);
        assert!(state.last_error.is_some());
        let text = metrics.encode();
        assert!(
            text.contains(r#"cti_provider_reconnects_total{tenant="t",provider="flaky"} 4"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_provider_without_a_connector_gets_no_task() {
        let (s, _inbox, status, _) = supervision(
            Arc::new(Webhooks),
            Arc::new(SoleInstance),
            "me",
            Backoff::default(),
        );
        assert!(supervise(s).is_none());
        assert_eq!(status.get().role, Role::None);
    }

    #[tokio::test]
    async fn the_connector_hears_whether_its_event_was_applied() {
        let (s, mut inbox, _, _) = supervision(
            Arc::new(Webhooks),
            Arc::new(SoleInstance),
            "me",
            Backoff::default(),
        );
        let relay = tokio::spawn(async move {
            inbox.next().await.expect("an event").report(Ok(()));
        });
        s.link.deliver(event(1)).await.expect("applied");
        relay.await.expect("relay side");
        assert!(matches!(
            s.link.deliver(event(2)).await,
            Err(Undelivered::Closed)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn one_instance_holds_the_connector_and_another_takes_over_when_it_dies() {
        let leases: Arc<dyn ConnectorLeases> = Arc::new(SharedLeases::default());
        let adapter = Arc::new(Flaky {
            hold: true,
            ..Flaky::default()
        });
        let (a, mut inbox_a, status_a, _) =
            supervision(adapter.clone(), leases.clone(), "a", Backoff::default());
        let (b, mut inbox_b, status_b, _) =
            supervision(adapter.clone(), leases.clone(), "b", Backoff::default());
        let a = tokio::spawn(supervise(a).expect("a connector"));
        inbox_a.next().await.expect("a connects").report(Ok(()));
        let b = tokio::spawn(supervise(b).expect("a connector"));
        // A minute later, a still holds it and b has stood by all along.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(adapter.starts.lock().len(), 1);
        assert_eq!(status_a.get().role, Role::Holder);
        assert_eq!(status_b.get().role, Role::Standby);
        assert!(!status_b.get().connected);
        // a dies without giving the lease back: b connects once the lease has expired.
        a.abort();
        let died = Instant::now();
        inbox_b.next().await.expect("b connects").report(Ok(()));
        let after = died.elapsed();
        assert!(after <= Duration::from_secs(15 + 10), "{after:?}");
        assert_eq!(status_b.get().role, Role::Holder);
        assert!(status_b.get().connected);
        assert_eq!(adapter.starts.lock().len(), 2);
        b.abort();
    }
}
