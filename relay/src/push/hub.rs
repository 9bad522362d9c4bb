//! Fan-out of call views to every connection of a rep, with sequence numbers and replay.
//!
//! Each rep has one channel: every published view gets the next sequence number, lands in a
//! bounded replay buffer and goes to every live subscriber. A reconnecting widget names the last
//! sequence number it applied and gets exactly what came after it, or, when the gap is no longer
//! in the buffer, the current view of every call still in progress.
//!
//! Sequence numbers start at the channel's creation time in Unix milliseconds, so numbers issued
//! after a relay restart are still larger than those a widget saw before it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use cti_protocol::ws::CallView;
use tokio::sync::broadcast;

use crate::clock::SharedClock;

#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub seq: u64,
    pub call: CallView,
}

/// A new subscriber's starting point.
#[derive(Debug)]
pub struct Subscription {
    /// The rep's newest sequence number at subscription time.
    pub newest: u64,
    /// What the subscriber must be sent before live messages, in order.
    pub backlog: Vec<Pushed>,
    pub live: broadcast::Receiver<Pushed>,
}

#[derive(Debug)]
struct RepChannel {
    newest: u64,
    buffer: VecDeque<Pushed>,
    /// The latest view of each call not yet final, for widgets that cannot replay.
    in_progress: HashMap<String, Pushed>,
    tx: broadcast::Sender<Pushed>,
}

#[derive(Debug)]
pub struct Hub {
    capacity: usize,
    clock: SharedClock,
    reps: Mutex<HashMap<(String, String), RepChannel>>,
}

impl Hub {
    /// `capacity`: how many messages per rep can be replayed after a disconnect.
    pub fn new(capacity: usize, clock: SharedClock) -> Self {
        Hub {
            capacity: capacity.max(1),
            clock,
            reps: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, tenant: &str, agent: &str, f: impl FnOnce(&mut RepChannel) -> R) -> R {
        let mut reps = self.reps.lock().unwrap_or_else(|p| p.into_inner());
        let channel = reps
            .entry((tenant.to_string(), agent.to_string()))
            .or_insert_with(|| RepChannel {
                newest: self.clock.now_ms(),
                buffer: VecDeque::new(),
                in_progress: HashMap::new(),
                tx: broadcast::channel(self.capacity).0,
            });
        f(channel)
    }

    /// Sends `call` to every connection of its rep; returns its sequence number.
    pub fn publish(&self, tenant: &str, call: CallView) -> u64 {
        let agent = call.agent.clone();
        self.with(tenant, &agent, |ch| {
            ch.newest += 1;
            let pushed = Pushed {
                seq: ch.newest,
                call,
            };
            if pushed.call.state.is_final() {
                ch.in_progress.remove(&pushed.call.id);
            } else {
                ch.in_progress
                    .insert(pushed.call.id.clone(), pushed.clone());
            }
            ch.buffer.push_back(pushed.clone());
            while ch.buffer.len() > self.capacity {
                ch.buffer.pop_front();
            }
            // No receivers is normal: the rep has no widget open right now.
            let _ = ch.tx.send(pushed);
            ch.newest
        })
    }

    /// Starts a subscription for a widget that has applied everything up to `last_seq`.
    pub fn subscribe(&self, tenant: &str, agent: &str, last_seq: Option<u64>) -> Subscription {
        self.with(tenant, agent, |ch| {
            let live = ch.tx.subscribe();
            let oldest_kept = ch.buffer.front().map_or(ch.newest + 1, |p| p.seq);
            let backlog = match last_seq {
                // Everything after `last` is still in the buffer: exact replay.
                Some(last) if last + 1 >= oldest_kept && last <= ch.newest => {
                    ch.buffer.iter().filter(|p| p.seq > last).cloned().collect()
                }
                // First connection, or a gap the buffer no longer covers: current state.
                _ => {
                    let mut current: Vec<Pushed> = ch.in_progress.values().cloned().collect();
                    current.sort_by_key(|p| p.seq);
                    current
                }
            };
            Subscription {
                newest: ch.newest,
                backlog,
                live,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use cti_protocol::event::Direction;
    use cti_protocol::ws::CallState;

    fn view(id: &str, state: CallState) -> CallView {
        CallView {
            id: id.into(),
            direction: Direction::Inbound,
            state,
            from: "+41441234567".into(),
            to: "+41449990000".into(),
            remote_display: String::new(),
            remote_extension: None,
            agent: "alice".into(),
            matches: vec![],
            pop: None,
            started_at: String::new(),
            answered_at: None,
            ended_at: None,
            end_reason: None,
            received_at_ms: 0,
            recording_url: None,
        }
    }

    fn hub(capacity: usize) -> Hub {
        Hub::new(capacity, Arc::new(ManualClock::new(1_000)))
    }

    #[test]
    fn replays_exactly_what_was_missed() {
        let hub = hub(10);
        let s1 = hub.publish("t", view("a", CallState::Ringing));
        let s2 = hub.publish("t", view("a", CallState::Connected));
        let s3 = hub.publish("t", view("b", CallState::Ringing));
        assert_eq!((s1, s2, s3), (1_001, 1_002, 1_003));
        let sub = hub.subscribe("t", "alice", Some(s1));
        let seqs: Vec<u64> = sub.backlog.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![s2, s3]);
        assert_eq!(sub.newest, s3);
        assert!(hub.subscribe("t", "alice", Some(s3)).backlog.is_empty());
    }

    #[test]
    fn a_gap_beyond_the_buffer_gets_current_calls() {
        let hub = hub(2);
        let s1 = hub.publish("t", view("a", CallState::Ringing));
        hub.publish("t", view("a", CallState::Ended));
        hub.publish("t", view("b", CallState::Ringing));
        hub.publish("t", view("b", CallState::Connected));
        let sub = hub.subscribe("t", "alice", Some(s1));
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(sub.backlog[0].call.id, "b");
        assert_eq!(sub.backlog[0].call.state, CallState::Connected);
        let fresh = hub.subscribe("t", "alice", None);
        assert_eq!(fresh.backlog, sub.backlog);
    }

    #[tokio::test]
    async fn live_messages_follow_the_backlog() {
        let hub = hub(10);
        let mut sub = hub.subscribe("t", "alice", None);
        let seq = hub.publish("t", view("a", CallState::Ringing));
        let got = sub.live.recv().await.expect("live message");
        assert_eq!(got.seq, seq);
        // Another rep and another tenant see nothing of it.
        assert!(hub.subscribe("t", "bob", None).backlog.is_empty());
        assert!(hub.subscribe("u", "alice", None).backlog.is_empty());
    }
}
