//! Fan-out of call views to every connection of a rep, with sequence numbers and replay.
//!
//! Every published view is numbered and kept by the replay store ([`super::replay`]); a
//! reconnecting widget names the last number it applied and gets what came after it, or the
//! calls in progress when the gap is too old. Live messages go to the rep's sessions on this
//! instance through a broadcast channel per rep. With Redis, the store also publishes every
//! message to all instances and each instance delivers what it hears (its own messages
//! included), so a call reaches the rep's widget whichever instance took the provider's webhook.
//! When Redis fails, the hub keeps working alone, in memory, until it returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cti_protocol::ws::CallView;
use tokio::sync::{broadcast, watch};

use super::replay::{MemoryReplay, ReplayStore};
use crate::clock::SharedClock;

pub use super::replay::Pushed;

/// A new subscriber's starting point.
#[derive(Debug)]
pub struct Subscription {
    /// The rep's newest sequence number at subscription time.
    pub newest: u64,
    /// What the subscriber must be sent before live messages, in order.
    pub backlog: Vec<Pushed>,
    pub live: broadcast::Receiver<Pushed>,
    /// Changes when live delivery may have missed messages: the session should make its widget
    /// reconnect (and so fetch the gap).
    pub resync: watch::Receiver<u64>,
}

#[derive(Debug)]
pub struct Hub {
    store: Arc<dyn ReplayStore>,
    /// Whether the store publishes to all instances (then live delivery comes back from it).
    shared: bool,
    /// Where messages go while the store is unreachable.
    fallback: MemoryReplay,
    capacity: usize,
    /// A channel per rep with a session on this instance: made when a session subscribes, and
    /// removed when a message finds no session left, so reps who came and went (or agent ids
    /// a phone system made up) leave nothing behind.
    local: Mutex<HashMap<(String, String), broadcast::Sender<Pushed>>>,
    resync: watch::Sender<u64>,
}

impl Hub {
    /// The embedded default: one instance, memory.
    pub fn new(capacity: usize, clock: SharedClock) -> Self {
        Self::with_store(
            Arc::new(MemoryReplay::new(capacity, clock.clone())),
            false,
            capacity,
            clock,
        )
    }

    /// `shared`: the store delivers every message to all instances' [`Hub::deliver`].
    pub fn with_store(
        store: Arc<dyn ReplayStore>,
        shared: bool,
        capacity: usize,
        clock: SharedClock,
    ) -> Self {
        Hub {
            store,
            shared,
            fallback: MemoryReplay::new(capacity, clock),
            capacity: capacity.max(1),
            local: Mutex::new(HashMap::new()),
            resync: watch::channel(0).0,
        }
    }

    fn local(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), broadcast::Sender<Pushed>>> {
        // Every change is one insert or remove, so a poisoned map is still consistent.
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new receiver on the rep's channel, made if need be. Under the lock, so a delivery that
    /// found no receivers cannot remove the channel between its lookup and the subscription.
    fn receiver(&self, tenant: &str, agent: &str) -> broadcast::Receiver<Pushed> {
        self.local()
            .entry((tenant.to_string(), agent.to_string()))
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Numbers and keeps `call`, and sends it to every connection of its rep; its number.
    pub async fn publish(&self, tenant: &str, call: CallView) -> u64 {
        match self.store.append(tenant, call.clone()).await {
            Ok(pushed) => {
                let seq = pushed.seq;
                if !self.shared {
                    self.deliver(tenant, pushed);
                }
                seq
            }
            Err(err) => {
                tracing::warn!(%err, "replay store unavailable; delivering from memory");
                // Memory never fails.
                match self.fallback.append(tenant, call).await {
                    Ok(pushed) => {
                        let seq = pushed.seq;
                        self.deliver(tenant, pushed);
                        seq
                    }
                    Err(_) => 0,
                }
            }
        }
    }

    /// Hands a numbered message to this instance's sessions of its rep.
    pub fn deliver(&self, tenant: &str, pushed: Pushed) {
        let key = (tenant.to_string(), pushed.call.agent.clone());
        let mut local = self.local();
        // No channel, or no receivers, is normal: the rep has no widget open here right now.
        // A channel whose sessions all ended goes, so the map holds only reps with sessions.
        if let Some(sender) = local.get(&key)
            && sender.send(pushed).is_err()
        {
            local.remove(&key);
        }
    }

    /// How many reps have a channel on this instance (for tests of its upkeep).
    #[cfg(test)]
    fn channels(&self) -> usize {
        self.local().len()
    }

    /// Live delivery may have missed messages (the shared channel broke): every session should
    /// have its widget reconnect.
    pub fn resync_all(&self) {
        self.resync.send_modify(|n| *n += 1);
    }

    /// Starts a subscription for a widget that has applied everything up to `last_seq`.
    pub async fn subscribe(
        &self,
        tenant: &str,
        agent: &str,
        last_seq: Option<u64>,
    ) -> Subscription {
        // Live first, so nothing published while the backlog is read falls between the two;
        // the session drops what it receives twice.
        let live = self.receiver(tenant, agent);
        let resync = self.resync.subscribe();
        let backlog = match self.store.since(tenant, agent, last_seq).await {
            Ok(backlog) => backlog,
            Err(err) => {
                tracing::warn!(%err, "replay store unavailable; replaying from memory");
                self.fallback
                    .since(tenant, agent, last_seq)
                    .await
                    .unwrap_or_default()
            }
        };
        Subscription {
            newest: backlog.newest,
            backlog: backlog.messages,
            live,
            resync,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::push::replay::tests::view;
    use cti_protocol::ws::CallState;

    #[tokio::test]
    async fn live_messages_follow_the_backlog_and_stay_with_their_rep() {
        let hub = Hub::new(10, Arc::new(ManualClock::new(1_000)));
        let first = hub.publish("t", view("a", CallState::Ringing)).await;
        let mut sub = hub.subscribe("t", "alice", None).await;
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(sub.newest, first);
        let seq = hub.publish("t", view("a", CallState::Connected)).await;
        let got = sub.live.recv().await.expect("live message");
        assert_eq!(got.seq, seq);
        assert!(seq > first);
        assert!(hub.subscribe("t", "bob", None).await.backlog.is_empty());
        assert!(hub.subscribe("u", "alice", None).await.backlog.is_empty());
    }

    /// Review F16: a rep's channel goes with their last session, and a message for a rep with
    /// no session here leaves nothing behind.
    #[tokio::test]
    async fn channels_are_kept_only_for_reps_with_sessions() {
        let hub = Hub::new(10, Arc::new(ManualClock::new(1_000)));
        for n in 0..50 {
            let mut call = view(&format!("c{n}"), CallState::Ringing);
            call.agent = format!("made-up-{n}");
            hub.publish("t", call).await;
        }
        assert_eq!(hub.channels(), 0, "nobody subscribed");

        let first = hub.subscribe("t", "alice", None).await;
        let mut second = hub.subscribe("t", "alice", None).await;
        assert_eq!(hub.channels(), 1);
        drop(first);
        hub.publish("t", view("a", CallState::Ringing)).await;
        assert_eq!(hub.channels(), 1, "one session is left");
        assert_eq!(second.live.recv().await.expect("delivered").call.id, "a");
        drop(second);
        hub.publish("t", view("a", CallState::Connected)).await;
        assert_eq!(hub.channels(), 0, "the last session went");

        // A rep who comes back gets a new channel, and live messages on it.
        let mut again = hub.subscribe("t", "alice", None).await;
        let seq = hub.publish("t", view("a", CallState::Ended)).await;
        assert_eq!(again.live.recv().await.expect("delivered").seq, seq);
    }
}
