//! Choosing one leader tab over BroadcastChannel, for browsers without Web Locks.
//!
//! Every tab of one rep hears every other tab's messages. The leader says so every
//! [`HEARTBEAT_MS`]; a tab that has not heard a leader for [`LEADER_TIMEOUT_MS`] (it closed,
//! crashed or froze) claims the role, and takes it when no better claim or leader shows up within
//! [`CLAIM_MS`]. Ties break deterministically: the lower tab id wins, whether two candidates
//! claim at once or two leaders meet after a network partition of the page (a frozen tab waking
//! up). A leader that leaves cleanly resigns, and the others claim at once.
//!
//! Takeover after a crash takes at most `LEADER_TIMEOUT_MS + CLAIM_MS` plus one timer tick, well
//! under three seconds. Pure: the times come in as arguments, the messages go out as values.

use serde::{Deserialize, Serialize};

pub const HEARTBEAT_MS: u64 = 500;
pub const LEADER_TIMEOUT_MS: u64 = 2_000;
pub const CLAIM_MS: u64 = 600;

/// What tabs tell each other about leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Heartbeat { from: u64 },
    Claim { from: u64 },
    Resign { from: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate { since_ms: u64 },
    Leader,
}

/// What the tab must do after a tick or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Send(Signal),
    BecomeLeader,
    BecomeFollower,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    me: u64,
    role: Role,
    last_heard_ms: u64,
    last_sent_ms: u64,
}

impl Election {
    /// A new tab claims at once: if a leader exists its heartbeat (or its answer to the claim)
    /// arrives well within the claim window.
    pub fn start(me: u64, now_ms: u64) -> (Election, Vec<Effect>) {
        let election = Election {
            me,
            role: Role::Candidate { since_ms: now_ms },
            last_heard_ms: now_ms,
            last_sent_ms: now_ms,
        };
        (election, vec![Effect::Send(Signal::Claim { from: me })])
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// Called on a timer (every few hundred milliseconds).
    pub fn tick(&mut self, now_ms: u64) -> Vec<Effect> {
        match self.role {
            Role::Leader if now_ms.saturating_sub(self.last_sent_ms) >= HEARTBEAT_MS => {
                self.last_sent_ms = now_ms;
                vec![Effect::Send(Signal::Heartbeat { from: self.me })]
            }
            Role::Leader => Vec::new(),
            Role::Follower if now_ms.saturating_sub(self.last_heard_ms) > LEADER_TIMEOUT_MS => {
                self.claim(now_ms)
            }
            Role::Follower => Vec::new(),
            Role::Candidate { since_ms } if now_ms.saturating_sub(since_ms) >= CLAIM_MS => {
                self.role = Role::Leader;
                self.last_sent_ms = now_ms;
                vec![
                    Effect::BecomeLeader,
                    Effect::Send(Signal::Heartbeat { from: self.me }),
                ]
            }
            Role::Candidate { .. } => Vec::new(),
        }
    }

    /// Another tab's signal.
    pub fn receive(&mut self, signal: Signal, now_ms: u64) -> Vec<Effect> {
        match signal {
            Signal::Heartbeat { from } | Signal::Claim { from } | Signal::Resign { from }
                if from == self.me =>
            {
                Vec::new()
            }
            Signal::Heartbeat { from } => match self.role {
                // Two leaders (a frozen tab woke up): the lower id keeps the role.
                Role::Leader if from < self.me => self.follow(now_ms, true),
                Role::Leader => {
                    self.last_sent_ms = now_ms;
                    vec![Effect::Send(Signal::Heartbeat { from: self.me })]
                }
                _ => self.follow(now_ms, false),
            },
            Signal::Claim { from } => match self.role {
                // A leader answers a claim at once, so the claimant gives up.
                Role::Leader => {
                    self.last_sent_ms = now_ms;
                    vec![Effect::Send(Signal::Heartbeat { from: self.me })]
                }
                Role::Candidate { .. } if from < self.me => self.follow(now_ms, false),
                // Tell the weaker claimant it lost, so it never leads even for a moment.
                Role::Candidate { .. } => vec![Effect::Send(Signal::Claim { from: self.me })],
                // Someone is taking over: give them their window before claiming too.
                Role::Follower => {
                    self.last_heard_ms = now_ms;
                    Vec::new()
                }
            },
            Signal::Resign { .. } => match self.role {
                Role::Follower => self.claim(now_ms),
                _ => Vec::new(),
            },
        }
    }

    /// The tab is closing: let the others take over without waiting for the timeout.
    pub fn leave(&mut self) -> Vec<Effect> {
        let was_leader = self.is_leader();
        self.role = Role::Follower;
        if was_leader {
            vec![Effect::Send(Signal::Resign { from: self.me })]
        } else {
            Vec::new()
        }
    }

    fn claim(&mut self, now_ms: u64) -> Vec<Effect> {
        self.role = Role::Candidate { since_ms: now_ms };
        self.last_sent_ms = now_ms;
        vec![Effect::Send(Signal::Claim { from: self.me })]
    }

    fn follow(&mut self, now_ms: u64, was_leader: bool) -> Vec<Effect> {
        self.role = Role::Follower;
        self.last_heard_ms = now_ms;
        if was_leader {
            vec![Effect::BecomeFollower]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Tabs on one channel with a clock the test moves: every sent signal reaches every other
    /// tab at once.
    struct Bus {
        tabs: Vec<(Election, bool)>,
        now: u64,
    }

    impl Bus {
        fn new(ids: &[u64]) -> Bus {
            let mut bus = Bus {
                tabs: Vec::new(),
                now: 1_000,
            };
            for id in ids {
                let (election, effects) = Election::start(*id, bus.now);
                bus.tabs.push((election, true));
                bus.deliver(bus.tabs.len() - 1, effects);
            }
            bus
        }

        fn deliver(&mut self, from: usize, effects: Vec<Effect>) {
            let mut queue: Vec<(usize, Effect)> = effects.into_iter().map(|e| (from, e)).collect();
            while let Some((sender, effect)) = queue.pop() {
                if let Effect::Send(signal) = effect {
                    for i in 0..self.tabs.len() {
                        if i != sender && self.tabs[i].1 {
                            let out = self.tabs[i].0.receive(signal, self.now);
                            queue.extend(out.into_iter().map(|e| (i, e)));
                        }
                    }
                }
            }
        }

        /// Moves the clock in 100 ms ticks.
        fn run(&mut self, ms: u64) {
            for _ in 0..ms / 100 {
                self.now += 100;
                for i in 0..self.tabs.len() {
                    if self.tabs[i].1 {
                        let out = self.tabs[i].0.tick(self.now);
                        self.deliver(i, out);
                    }
                }
            }
        }

        fn leaders(&self) -> Vec<u64> {
            self.tabs
                .iter()
                .filter(|(e, alive)| *alive && e.is_leader())
                .map(|(e, _)| e.me)
                .collect()
        }

        /// Time until some live tab leads, in ms.
        fn time_to_leader(&mut self) -> u64 {
            let start = self.now;
            while self.leaders().is_empty() {
                self.run(100);
                assert!(self.now - start < 10_000, "no leader after 10 s");
            }
            self.now - start
        }
    }

    #[wasm_bindgen_test]
    fn three_tabs_agree_on_one_leader_the_lowest_id() {
        let mut bus = Bus::new(&[30, 10, 20]);
        for _ in 0..10 {
            bus.run(100);
            assert!(
                bus.leaders().len() <= 1,
                "never two leaders: {:?}",
                bus.leaders()
            );
        }
        assert_eq!(bus.leaders(), vec![10]);
        bus.run(10_000);
        assert_eq!(bus.leaders(), vec![10], "stable while the leader lives");
    }

    #[wasm_bindgen_test]
    fn a_late_tab_follows_the_existing_leader_even_with_a_lower_id() {
        let mut bus = Bus::new(&[50]);
        bus.run(1_000);
        assert_eq!(bus.leaders(), vec![50]);
        let (late, effects) = Election::start(5, bus.now);
        bus.tabs.push((late, true));
        bus.deliver(1, effects);
        bus.run(5_000);
        assert_eq!(
            bus.leaders(),
            vec![50],
            "a leader is not replaced just for a lower id"
        );
    }

    #[wasm_bindgen_test]
    fn a_crashed_leader_is_replaced_within_three_seconds() {
        let mut bus = Bus::new(&[1, 2, 3]);
        bus.run(1_000);
        assert_eq!(bus.leaders(), vec![1]);
        bus.tabs[0].1 = false; // crashed: no resignation
        let took = bus.time_to_leader();
        assert!(took <= 3_000, "took {took} ms");
        assert_eq!(bus.leaders(), vec![2]);
    }

    #[wasm_bindgen_test]
    fn a_closing_leader_resigns_and_is_replaced_at_once() {
        let mut bus = Bus::new(&[1, 2, 3]);
        bus.run(1_000);
        let effects = bus.tabs[0].0.leave();
        bus.deliver(0, effects);
        bus.tabs[0].1 = false;
        let took = bus.time_to_leader();
        assert!(took <= CLAIM_MS + 100, "took {took} ms");
        assert_eq!(bus.leaders(), vec![2]);
    }

    #[wasm_bindgen_test]
    fn two_leaders_meeting_settle_on_the_lower_id() {
        let mut a = Election::start(7, 0).0;
        let mut b = Election::start(3, 0).0;
        a.tick(CLAIM_MS);
        b.tick(CLAIM_MS);
        assert!(a.is_leader() && b.is_leader());
        assert_eq!(
            a.receive(Signal::Heartbeat { from: 3 }, CLAIM_MS + 1),
            vec![Effect::BecomeFollower]
        );
        assert!(!a.is_leader());
        let answer = b.receive(Signal::Heartbeat { from: 7 }, CLAIM_MS + 1);
        assert!(b.is_leader());
        assert_eq!(answer, vec![Effect::Send(Signal::Heartbeat { from: 3 })]);
    }
}
