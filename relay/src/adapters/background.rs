//! An adapter's long-lived work ([`TelephonyAdapter::background`]), kept running.
//!
//! Providers that do not call in (a notification WebSocket, a CTI or SIP link) or whose
//! subscriptions expire need a task that lives as long as the relay. The adapter only writes the
//! future; here it is started per tenant, started again with a growing back-off whenever it ends
//! or panics (a dropped link is normal, a tight reconnect loop against a provider that is down is
//! not). What it sends into its [`EventSink`] arrives at the other end, the [`Inbox`], which the
//! relay drains into the same ingest as a webhook's events. The sink is a channel, so an adapter
//! never needs the relay's state, and this module knows nothing above the adapters.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use cti_protocol::event::TelephonyEvent;
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::TelephonyAdapter;

/// Events waiting for the relay per tenant; a full queue makes the adapter wait, which is the
/// back-pressure a link wants.
const QUEUE: usize = 256;

/// Where a background link hands its events to the relay.
#[derive(Debug, Clone)]
pub struct EventSink {
    queue: mpsc::Sender<Delivery>,
}

/// The relay's end of an [`EventSink`].
#[derive(Debug)]
pub struct Inbox {
    queue: mpsc::Receiver<Delivery>,
}

/// Why the relay could not apply an event (its store was away, for instance).
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One event from a link, and the way to tell the link whether the relay applied it.
#[derive(Debug)]
pub struct Delivery {
    pub event: TelephonyEvent,
    applied: oneshot::Sender<Result<(), Failure>>,
}

impl Delivery {
    /// Tells the waiting link the outcome; a link that stopped waiting is not told.
    pub fn report(self, outcome: Result<(), Failure>) {
        let _ = self.applied.send(outcome);
    }
}

impl Inbox {
    /// The next event a link sent, in the order it sent them; None once every sink is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.queue.recv().await
    }
}

/// Why an event from a background link was not applied; a link whose provider redelivers should
/// leave it unacknowledged.
#[derive(Debug, thiserror::Error)]
pub enum Undelivered {
    #[error("the relay could not apply it: {0}")]
    Failed(#[source] Failure),
    #[error("the relay is stopping")]
    Closed,
}

/// A connected sink and inbox.
pub fn channel() -> (EventSink, Inbox) {
    let (queue, inbox) = mpsc::channel(QUEUE);
    (EventSink { queue }, Inbox { queue: inbox })
}

impl EventSink {
    /// Hands one event to the relay and waits until it is applied (or known as a duplicate), so
    /// the adapter acknowledges to its provider only what the relay has.
    pub async fn deliver(&self, event: TelephonyEvent) -> Result<(), Undelivered> {
        let (applied, outcome) = oneshot::channel();
        self.queue
            .send(Delivery { event, applied })
            .await
            .map_err(|_| Undelivered::Closed)?;
        outcome
            .await
            .map_err(|_| Undelivered::Closed)?
            .map_err(Undelivered::Failed)?;
        Ok(())
    }
}

/// How long to wait before starting a link again: doubling from `first` up to `max`, and from
/// `first` again after a run that lasted longer than `max` (it was up, then dropped).
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

/// The adapter's background work, started again whenever it ends; None when it has none.
pub fn supervise(
    adapter: Arc<dyn TelephonyAdapter>,
    events: EventSink,
    backoff: Backoff,
) -> Option<impl Future<Output = ()> + Send + 'static> {
    let first = adapter.background(events.clone())?;
    Some(async move {
        let mut run = first;
        let mut wait = backoff.first;
        loop {
            let started = Instant::now();
            if AssertUnwindSafe(run).catch_unwind().await.is_err() {
                tracing::error!(
                    provider = adapter.provider(),
                    "the provider's link panicked"
                );
            }
            if started.elapsed() > backoff.max {
                wait = backoff.first;
            }
            tracing::warn!(
                provider = adapter.provider(),
                retry_in = ?wait,
                "the provider's link ended; starting it again"
            );
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(backoff.max);
            match adapter.background(events.clone()) {
                Some(next) => run = next,
                None => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use cti_protocol::event::{Direction, EventType};
    use cti_protocol::ws::CallCommand;
    use futures_util::future::BoxFuture;

    use super::*;
    use crate::adapters::{AdapterError, CommandError, Inbound, Ingress};
    use crate::calls::Leg;

    /// A provider whose link sends one event per run and then drops; its second run panics.
    #[derive(Debug, Default)]
    struct Flaky {
        starts: Arc<Mutex<Vec<Instant>>>,
    }

    #[async_trait]
    impl TelephonyAdapter for Flaky {
        fn provider(&self) -> &'static str {
            "flaky"
        }

        fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
            Err(AdapterError::MethodNotAllowed(request.method.clone()))
        }

        fn background(&self, events: EventSink) -> Option<BoxFuture<'static, ()>> {
            let starts = self.starts.clone();
            Some(Box::pin(async move {
                let run = {
                    let mut starts = starts.lock().unwrap_or_else(|p| p.into_inner());
                    starts.push(Instant::now());
                    starts.len()
                };
                assert_ne!(run, 2, "the link breaks badly once");
                let _ = events.deliver(event(run)).await;
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

        fn receive(&self, _: Inbound<'_>) -> Result<Ingress, AdapterError> {
            Ok(Ingress::Events(Vec::new()))
        }

        async fn command(&self, _: &Leg, _: &CallCommand) -> Result<(), CommandError> {
            Ok(())
        }

        async fn dial(&self, _: &str, _: &str) -> Result<Option<String>, CommandError> {
            Ok(None)
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

    #[tokio::test(start_paused = true)]
    async fn a_link_that_ends_or_panics_is_started_again_later_each_time() {
        let adapter = Arc::new(Flaky::default());
        let (events, mut inbox) = channel();
        let backoff = Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(4),
        };
        let link = supervise(adapter.clone(), events, backoff).expect("a link");
        let link = tokio::spawn(link);
        let t0 = Instant::now();
        let mut delivered = Vec::new();
        while delivered.len() < 4 {
            let delivery = inbox.next().await.expect("the link sends");
            delivered.push(delivery.event.id.clone());
            delivery.report(Ok(()));
        }
        link.abort();
        // Run 2 panicked before sending; the others each delivered their event.
        assert_eq!(delivered, ["e1", "e3", "e4", "e5"]);
        let starts: Vec<u64> = adapter
            .starts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|at| at.duration_since(t0).as_secs())
            .collect();
        // Waits of 1, 2, 4 and then 4 again: doubling, capped.
        assert_eq!(starts, [0, 1, 3, 7, 11]);
    }

    #[tokio::test]
    async fn a_provider_without_a_link_gets_no_task() {
        let (events, _inbox) = channel();
        assert!(supervise(Arc::new(Webhooks), events, Backoff::default()).is_none());
    }

    #[tokio::test]
    async fn the_link_hears_whether_its_event_was_applied() {
        let (events, mut inbox) = channel();
        let relay = tokio::spawn(async move {
            inbox.next().await.expect("an event").report(Ok(()));
        });
        events.deliver(event(1)).await.expect("applied");
        relay.await.expect("relay side");
        assert!(matches!(
            events.deliver(event(2)).await,
            Err(Undelivered::Closed)
        ));
    }
}
