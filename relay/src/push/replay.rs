//! Where each rep's recent call messages are kept, so a widget that reconnects gets exactly what
//! it missed.
//!
//! Per rep: the newest sequence number, a bounded buffer of the latest messages, and the latest
//! view of every call still in progress (for a widget whose gap the buffer no longer covers). In
//! memory by default; in Redis when configured, so the buffer survives a relay restart and a widget
//! may reconnect to any instance.
//!
//! A sequence number is never below the Unix millisecond it was issued in: numbers keep growing
//! across restarts and across the two stores (a relay that fell back to memory while Redis was
//! away, then returned to it), and a widget's "last applied" stays meaningful.

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use cti_protocol::ws::CallView;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pushed {
    pub seq: u64,
    pub call: CallView,
}

/// What a reconnecting widget must be sent before live messages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Backlog {
    /// The rep's newest sequence number now.
    pub newest: u64,
    pub messages: Vec<Pushed>,
}

#[derive(Debug, thiserror::Error)]
#[error("replay store unavailable: {0}")]
pub struct ReplayError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

#[async_trait]
pub trait ReplayStore: Send + Sync + std::fmt::Debug {
    /// Gives `call` its rep's next sequence number and keeps it.
    async fn append(&self, tenant: &str, call: CallView) -> Result<Pushed, ReplayError>;
    /// What a widget that applied everything up to `last_seq` is missing: exactly the messages
    /// after it when the buffer still holds them, else the calls in progress.
    async fn since(
        &self,
        tenant: &str,
        agent: &str,
        last_seq: Option<u64>,
    ) -> Result<Backlog, ReplayError>;
    /// Forgets what this process holds of `tenant` (it unsubscribed). Nothing to do for a
    /// shared store: its keys carry the tenant's prefix, which the subscriptions directory's
    /// purge deletes.
    async fn forget_tenant(&self, _tenant: &str) {}
}

/// The next sequence number after `newest` at `now_ms`.
pub fn next_seq(newest: u64, now_ms: u64) -> u64 {
    (newest + 1).max(now_ms)
}

/// The backlog rule shared by both stores: `buffer` holds the latest messages in order,
/// `evicted` is the highest number dropped from it (0: none), `in_progress` the latest view of
/// each unfinished call.
pub fn backlog(
    newest: u64,
    evicted: u64,
    buffer: &[Pushed],
    in_progress: Vec<Pushed>,
    last_seq: Option<u64>,
) -> Backlog {
    let messages = match last_seq {
        // Nothing after `last` was dropped: exact replay.
        Some(last) if last >= evicted && last <= newest => {
            buffer.iter().filter(|p| p.seq > last).cloned().collect()
        }
        _ => {
            let mut current = in_progress;
            current.sort_by_key(|p| p.seq);
            current
        }
    };
    Backlog { newest, messages }
}

#[derive(Debug, Default)]
struct RepLog {
    newest: u64,
    evicted: u64,
    buffer: VecDeque<Pushed>,
    in_progress: HashMap<String, Pushed>,
}

/// How long the memory store keeps what nothing was published about: a rep's log after their
/// last message, and a call still in progress after its last view. A call silent for a day is
/// one whose end the phone system never sent, and a rep silent for a day (or an agent id a phone
/// system made up) needs no replay; without this, both would stay for the life of the process.
pub const IDLE_MS: u64 = 24 * 60 * 60 * 1000;

/// How often appends look for what [`IDLE_MS`] lets go.
const SWEEP_EVERY_MS: u64 = 60 * 1000;

#[derive(Debug, Default)]
struct Logs {
    reps: HashMap<(String, String), RepLog>,
    /// When the next append sweeps (relay clock, Unix milliseconds).
    next_sweep_ms: u64,
}

impl Logs {
    /// Drops the logs of reps, and the calls in progress, with nothing published for
    /// [`IDLE_MS`]. A sequence number is never below the millisecond it was issued in, so one
    /// older than `now - IDLE_MS` was issued longer ago than that.
    fn sweep(&mut self, now_ms: u64) {
        let Some(cut) = now_ms.checked_sub(IDLE_MS) else {
            return;
        };
        self.reps.retain(|_, log| {
            log.in_progress.retain(|_, view| view.seq > cut);
            log.newest > cut
        });
    }
}

/// The embedded default, for one relay instance.
#[derive(Debug)]
pub struct MemoryReplay {
    capacity: usize,
    clock: SharedClock,
    logs: Mutex<Logs>,
}

impl MemoryReplay {
    pub fn new(capacity: usize, clock: SharedClock) -> Self {
        MemoryReplay {
            capacity: capacity.max(1),
            clock,
            logs: Mutex::new(Logs::default()),
        }
    }

    fn logs(&self) -> parking_lot::MutexGuard<'_, Logs> {
        self.logs.lock()
    }

    /// How many reps have a log (for tests of its upkeep).
    #[cfg(test)]
    fn reps(&self) -> usize {
        self.logs().reps.len()
    }
}

#[async_trait]
impl ReplayStore for MemoryReplay {
    async fn forget_tenant(&self, tenant: &str) {
        self.logs.lock().reps.retain(|(t, _), _| t != tenant);
    }

    async fn append(&self, tenant: &str, call: CallView) -> Result<Pushed, ReplayError> {
        let now = self.clock.now_ms();
        let mut logs = self.logs();
        if now >= logs.next_sweep_ms {
            logs.sweep(now);
            logs.next_sweep_ms = now.saturating_add(SWEEP_EVERY_MS);
        }
        let log = logs
            .reps
            .entry((tenant.to_string(), call.agent.clone()))
            .or_default();
        log.newest = next_seq(log.newest, now);
        let pushed = Pushed {
            seq: log.newest,
            call,
        };
        if pushed.call.state.is_final() {
            log.in_progress.remove(&pushed.call.id);
        } else {
            log.in_progress
                .insert(pushed.call.id.clone(), pushed.clone());
        }
        log.buffer.push_back(pushed.clone());
        while log.buffer.len() > self.capacity {
            if let Some(dropped) = log.buffer.pop_front() {
                log.evicted = dropped.seq;
            }
        }
        Ok(pushed)
    }

    async fn since(
        &self,
        tenant: &str,
        agent: &str,
        last_seq: Option<u64>,
    ) -> Result<Backlog, ReplayError> {
        let logs = self.logs();
        let Some(log) = logs.reps.get(&(tenant.to_string(), agent.to_string())) else {
            return Ok(Backlog {
                newest: self.clock.now_ms(),
                messages: Vec::new(),
            });
        };
        let buffer: Vec<Pushed> = log.buffer.iter().cloned().collect();
        Ok(backlog(
            log.newest,
            log.evicted,
            &buffer,
            log.in_progress.values().cloned().collect(),
            last_seq,
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use cti_protocol::event::Direction;
    use cti_protocol::ws::CallState;

    pub(crate) fn view(id: &str, state: CallState) -> CallView {
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
            handover: None,
            consult: None,
            wrap_up: Default::default(),
            returns: 0,
        }
    }

    #[test]
    fn numbers_follow_the_clock_and_never_go_back() {
        assert_eq!(next_seq(0, 1_000), 1_000);
        assert_eq!(next_seq(1_000, 1_000), 1_001);
        assert_eq!(
            next_seq(5_000, 1_000),
            5_001,
            "a clock that went back changes nothing"
        );
    }

    #[tokio::test]
    async fn replays_exactly_what_was_missed() {
        let store = MemoryReplay::new(10, Arc::new(ManualClock::new(1_000)));
        let s1 = store
            .append("t", view("a", CallState::Ringing))
            .await
            .expect("append")
            .seq;
        let s2 = store
            .append("t", view("a", CallState::Connected))
            .await
            .expect("append")
            .seq;
        let s3 = store
            .append("t", view("b", CallState::Ringing))
            .await
            .expect("append")
            .seq;
        assert_eq!((s1, s2, s3), (1_000, 1_001, 1_002));
        let backlog = store.since("t", "alice", Some(s1)).await.expect("since");
        let seqs: Vec<u64> = backlog.messages.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![s2, s3]);
        assert_eq!(backlog.newest, s3);
        assert!(
            store
                .since("t", "alice", Some(s3))
                .await
                .expect("since")
                .messages
                .is_empty()
        );
    }

    /// An unsubscribed tenant's buffers go; another tenant's stay.
    #[tokio::test]
    async fn a_forgotten_tenant_has_nothing_to_replay() {
        let store = MemoryReplay::new(10, Arc::new(ManualClock::new(1_000)));
        for tenant in ["gone", "kept"] {
            store
                .append(tenant, view("a", CallState::Ringing))
                .await
                .expect("append");
        }
        store.forget_tenant("gone").await;
        let held = |tenant: &'static str| {
            let store = &store;
            async move {
                let backlog = store.since(tenant, "alice", Some(0)).await.expect("since");
                backlog.messages.len()
            }
        };
        assert_eq!(held("gone").await, 0);
        assert_eq!(held("kept").await, 1);
    }

    /// Review F16: a rep with nothing published for a day leaves no log, and a call with no
    /// view for a day (its end never came) leaves the calls in progress; newer ones stay.
    #[tokio::test]
    async fn what_stays_silent_for_a_day_is_let_go() {
        let clock = ManualClock::new(1_000);
        let store = MemoryReplay::new(10, Arc::new(clock.clone()));
        let mut bob = view("b", CallState::Ringing);
        bob.agent = "bob".into();
        store.append("t", bob).await.expect("append");
        store
            .append("t", view("forgotten", CallState::Connected))
            .await
            .expect("append");
        clock.advance_ms(IDLE_MS - 60_000);
        store
            .append("t", view("recent", CallState::Ringing))
            .await
            .expect("append");
        assert_eq!(store.reps(), 2, "nothing is a day old yet");

        clock.advance_ms(120_000);
        store
            .append("t", view("recent", CallState::Connected))
            .await
            .expect("append");
        assert_eq!(store.reps(), 1, "bob's log went");
        let current = store.since("t", "alice", None).await.expect("since");
        let ids: Vec<&str> = current
            .messages
            .iter()
            .map(|p| p.call.id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["recent"],
            "the silent call went, the recent one stayed"
        );
        let bob = store.since("t", "bob", None).await.expect("since");
        assert!(bob.messages.is_empty());
        assert!(
            bob.newest >= crate::clock::Clock::now_ms(&clock),
            "numbers still only grow"
        );
    }

    #[tokio::test]
    async fn a_gap_beyond_the_buffer_gets_current_calls() {
        let store = MemoryReplay::new(2, Arc::new(ManualClock::new(1_000)));
        let s1 = store
            .append("t", view("a", CallState::Ringing))
            .await
            .expect("append")
            .seq;
        for (id, state) in [
            ("a", CallState::Ended),
            ("b", CallState::Ringing),
            ("b", CallState::Connected),
        ] {
            store.append("t", view(id, state)).await.expect("append");
        }
        let backlog = store.since("t", "alice", Some(s1)).await.expect("since");
        assert_eq!(backlog.messages.len(), 1);
        assert_eq!(backlog.messages[0].call.id, "b");
        assert_eq!(backlog.messages[0].call.state, CallState::Connected);
        let fresh = store.since("t", "alice", None).await.expect("since");
        assert_eq!(fresh.messages, backlog.messages);
        // Other reps and tenants see nothing of it.
        assert!(
            store
                .since("t", "bob", None)
                .await
                .expect("since")
                .messages
                .is_empty()
        );
        assert!(
            store
                .since("u", "alice", None)
                .await
                .expect("since")
                .messages
                .is_empty()
        );
    }
}
