//! Fan-out of call views to every connection of a rep, with sequence numbers and replay.
//!
//! Every published view is numbered and kept by the replay store ([`super::replay`]); a
//! reconnecting widget names the last number it applied and gets what came after it, or the
//! calls in progress when the gap is too old. Live messages go to each of the rep's sessions on
//! this instance through a bounded queue of its own, holding shared copies of the message: an idle
//! session holds a few hundred bytes, not a slot per message of the replay capacity (a broadcast
//! channel per rep allocates all its slots up front, about 200 KB at the default capacity). With Redis, the store also publishes every
//! message to all instances and each instance delivers what it hears (its own messages
//! included), so a call reaches the rep's widget whichever instance took the provider's webhook.
//! When Redis fails, the hub keeps working alone, in memory, until it returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use cti_protocol::ws::CallView;
use parking_lot::Mutex;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

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
    pub live: Live,
    /// Changes when live delivery may have missed messages: the session should make its widget
    /// reconnect (and so fetch the gap).
    pub resync: watch::Receiver<u64>,
}

/// A live message as a session gets it: shared by all the rep's sessions here, with the moment
/// this instance received the telephony event behind it when it did (for the push latency).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveMessage {
    pub pushed: Pushed,
    pub received: Option<Instant>,
}

/// Why a session's live messages stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveEnd {
    /// The session fell a whole replay capacity behind: messages were dropped for it, and its
    /// widget must reconnect (with its last number) to get them from the replay store.
    Lagged,
    /// The hub let the session go.
    Closed,
}

/// One session's live messages.
#[derive(Debug)]
pub struct Live {
    queue: mpsc::Receiver<Arc<LiveMessage>>,
    lagged: Arc<AtomicBool>,
}

impl Live {
    /// The next live message; once messages were dropped for this session it gets
    /// [`LiveEnd::Lagged`] (at once, not after what is still queued), as a widget that missed
    /// some must fetch them before applying later ones.
    pub async fn recv(&mut self) -> Result<Arc<LiveMessage>, LiveEnd> {
        if self.lagged.load(Ordering::Acquire) {
            return Err(LiveEnd::Lagged);
        }
        match self.queue.recv().await {
            Some(message) if !self.lagged.load(Ordering::Acquire) => Ok(message),
            Some(_) => Err(LiveEnd::Lagged),
            None if self.lagged.load(Ordering::Acquire) => Err(LiveEnd::Lagged),
            None => Err(LiveEnd::Closed),
        }
    }
}

/// The hub's end of one session's queue.
#[derive(Debug)]
struct Feed {
    queue: mpsc::Sender<Arc<LiveMessage>>,
    lagged: Arc<AtomicBool>,
}

/// Messages this instance numbered for a telephony event while the shared store delivers them:
/// when one comes back from the store, its receipt time goes with it to the sessions here.
/// Bounded: entries whose message never came back (the channel broke) are let go in bulk.
const MAX_AWAITED: usize = 10_000;

type RepKey = (String, String);

#[derive(Debug)]
pub struct Hub {
    store: Arc<dyn ReplayStore>,
    /// Whether the store publishes to all instances (then live delivery comes back from it).
    shared: bool,
    /// Where messages go while the store is unreachable.
    fallback: MemoryReplay,
    capacity: usize,
    /// The feeds of each rep with a session on this instance: added when a session subscribes,
    /// and dropped when a message finds the session gone (or when another session of the rep
    /// subscribes), so reps who came and went (or agent ids a phone system made up) leave
    /// nothing behind.
    local: Mutex<HashMap<RepKey, Vec<Feed>>>,
    /// Receipt times of messages numbered here that the shared store has yet to deliver.
    awaited: Mutex<HashMap<(String, String, u64), Instant>>,
    resync: watch::Sender<u64>,
}

impl Hub {
    /// Forgets the tenant's replay buffers held here (it unsubscribed).
    pub async fn forget_tenant(&self, tenant: &str) {
        self.store.forget_tenant(tenant).await;
        self.fallback.forget_tenant(tenant).await;
    }

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
            awaited: Mutex::new(HashMap::new()),
            resync: watch::channel(0).0,
        }
    }

    fn local(&self) -> parking_lot::MutexGuard<'_, HashMap<RepKey, Vec<Feed>>> {
        self.local.lock()
    }

    /// A new feed for a session of the rep. Under the lock, so a delivery that found no
    /// sessions cannot remove the rep's entry between its lookup and the subscription. Feeds of
    /// sessions that ended go now, so a rep who reconnects often without calls leaves nothing.
    fn receiver(&self, tenant: &str, agent: &str) -> Live {
        let (queue, receiver) = mpsc::channel(self.capacity);
        let lagged = Arc::new(AtomicBool::new(false));
        let mut local = self.local();
        let feeds = local
            .entry((tenant.to_string(), agent.to_string()))
            .or_default();
        feeds.retain(|feed| !feed.queue.is_closed());
        feeds.push(Feed {
            queue,
            lagged: lagged.clone(),
        });
        Live {
            queue: receiver,
            lagged,
        }
    }

    /// The reps of `tenant` with an open session on this instance and how many each has,
    /// sorted by rep: this instance's part of what the admin page shows as connected (the
    /// others' parts come from their reports, which the application layer gathers).
    pub fn sessions(&self, tenant: &str) -> Vec<(String, usize)> {
        let local = self.local();
        let mut reps: Vec<(String, usize)> = local
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, rep), feeds)| {
                (
                    rep.clone(),
                    feeds.iter().filter(|f| !f.queue.is_closed()).count(),
                )
            })
            .filter(|(_, open)| *open > 0)
            .collect();
        reps.sort();
        reps
    }

    /// Numbers and keeps `call`, and sends it to every connection of its rep; its number.
    pub async fn publish(&self, tenant: &str, call: CallView) -> u64 {
        self.publish_received(tenant, call, None).await
    }

    /// [`Hub::publish`] for a change a telephony event made, `received` when this instance
    /// received the event: the sessions that write the message measure the push latency from it.
    pub async fn publish_received(
        &self,
        tenant: &str,
        call: CallView,
        received: Option<Instant>,
    ) -> u64 {
        let agent = call.agent.clone();
        match self.store.append(tenant, call.clone()).await {
            Ok(pushed) => {
                let seq = pushed.seq;
                if !self.shared {
                    self.deliver_received(tenant, pushed, received);
                } else if let Some(received) = received {
                    let mut awaited = self.awaited.lock();
                    if awaited.len() >= MAX_AWAITED {
                        awaited.clear();
                    }
                    awaited.insert((tenant.to_string(), agent, seq), received);
                }
                seq
            }
            Err(err) => {
                tracing::warn!(%err, "replay store unavailable; delivering from memory");
                // Memory never fails.
                match self.fallback.append(tenant, call).await {
                    Ok(pushed) => {
                        let seq = pushed.seq;
                        self.deliver_received(tenant, pushed, received);
                        seq
                    }
                    Err(_) => 0,
                }
            }
        }
    }

    /// Hands a numbered message to this instance's sessions of its rep.
    pub fn deliver(&self, tenant: &str, pushed: Pushed) {
        let received = {
            let mut awaited = self.awaited.lock();
            if awaited.is_empty() {
                None
            } else {
                awaited.remove(&(tenant.to_string(), pushed.call.agent.clone(), pushed.seq))
            }
        };
        self.deliver_received(tenant, pushed, received);
    }

    fn deliver_received(&self, tenant: &str, pushed: Pushed, received: Option<Instant>) {
        let key = (tenant.to_string(), pushed.call.agent.clone());
        let mut local = self.local();
        // No entry, or no sessions left, is normal: the rep has no widget open here right now.
        // An entry whose sessions all ended goes, so the map holds only reps with sessions.
        let Some(feeds) = local.get_mut(&key) else {
            return;
        };
        let message = Arc::new(LiveMessage { pushed, received });
        feeds.retain(|feed| match feed.queue.try_send(message.clone()) {
            Ok(()) => true,
            // A whole replay capacity is waiting for this session: it is told it lagged (its
            // widget reconnects and fetches the gap), and gets nothing more.
            Err(TrySendError::Full(_)) => {
                feed.lagged.store(true, Ordering::Release);
                false
            }
            Err(TrySendError::Closed(_)) => false,
        });
        if feeds.is_empty() {
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
        assert_eq!(got.pushed.seq, seq);
        assert!(seq > first);
        assert!(hub.subscribe("t", "bob", None).await.backlog.is_empty());
        assert!(hub.subscribe("u", "alice", None).await.backlog.is_empty());
    }

    #[tokio::test]
    async fn sessions_count_the_open_ones_per_rep_of_the_tenant() {
        let hub = Hub::new(10, Arc::new(ManualClock::new(1_000)));
        let _a1 = hub.subscribe("t", "alice", None).await;
        let _a2 = hub.subscribe("t", "alice", None).await;
        let bob = hub.subscribe("t", "bob", None).await;
        let _other = hub.subscribe("u", "carol", None).await;
        assert_eq!(
            hub.sessions("t"),
            [("alice".to_string(), 2), ("bob".to_string(), 1)]
        );
        drop(bob);
        assert_eq!(hub.sessions("t"), [("alice".to_string(), 2)]);
        assert_eq!(hub.sessions("u"), [("carol".to_string(), 1)]);
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
        assert_eq!(
            second.live.recv().await.expect("delivered").pushed.call.id,
            "a"
        );
        drop(second);
        hub.publish("t", view("a", CallState::Connected)).await;
        assert_eq!(hub.channels(), 0, "the last session went");

        // A rep who comes back gets a new channel, and live messages on it.
        let mut again = hub.subscribe("t", "alice", None).await;
        let seq = hub.publish("t", view("a", CallState::Ended)).await;
        assert_eq!(again.live.recv().await.expect("delivered").pushed.seq, seq);
    }

    /// A session that falls a whole capacity behind is told so at its next receive, and the
    /// rep's other sessions keep getting messages.
    #[tokio::test]
    async fn a_session_a_capacity_behind_is_told_it_lagged() {
        let hub = Hub::new(4, Arc::new(ManualClock::new(1_000)));
        let mut slow = hub.subscribe("t", "alice", None).await;
        let mut keeping_up = hub.subscribe("t", "alice", None).await;
        for n in 0..5 {
            hub.publish("t", view(&format!("c{n}"), CallState::Ringing))
                .await;
            let got = keeping_up.live.recv().await.expect("delivered");
            assert_eq!(got.pushed.call.id, format!("c{n}"));
        }
        assert_eq!(slow.live.recv().await, Err(LiveEnd::Lagged));
        hub.publish("t", view("c5", CallState::Ringing)).await;
        assert_eq!(
            keeping_up
                .live
                .recv()
                .await
                .expect("delivered")
                .pushed
                .call
                .id,
            "c5"
        );
    }

    /// An idle session's queue holds no slot per message of the capacity: what a connected rep
    /// costs does not grow with `CTI_REPLAY_CAPACITY`.
    #[tokio::test]
    async fn sessions_of_a_rep_who_reconnects_do_not_pile_up() {
        let hub = Hub::new(256, Arc::new(ManualClock::new(1_000)));
        for _ in 0..100 {
            drop(hub.subscribe("t", "alice", None).await);
        }
        let _open = hub.subscribe("t", "alice", None).await;
        assert_eq!(
            hub.local().get(&("t".into(), "alice".into())).map(Vec::len),
            Some(1)
        );
    }

    /// With a shared store, the receipt time of an event numbered here comes back with the
    /// message the store delivers.
    #[tokio::test]
    async fn the_receipt_time_follows_a_message_through_the_shared_store() {
        let clock = Arc::new(ManualClock::new(1_000));
        let store = Arc::new(MemoryReplay::new(8, clock.clone()));
        let hub = Hub::with_store(store.clone(), true, 8, clock);
        let mut sub = hub.subscribe("t", "alice", None).await;
        let received = Instant::now();
        let seq = hub
            .publish_received("t", view("a", CallState::Ringing), Some(received))
            .await;
        let backlog = store
            .since("t", "alice", Some(seq - 1))
            .await
            .expect("kept");
        // What the shared channel would hand back.
        hub.deliver("t", backlog.messages[0].clone());
        let got = sub.live.recv().await.expect("delivered");
        assert_eq!(got.received, Some(received));
        hub.deliver("t", backlog.messages[0].clone());
        assert_eq!(sub.live.recv().await.expect("again").received, None);
    }
}
