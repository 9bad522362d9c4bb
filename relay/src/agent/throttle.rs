//! How fast one widget connection may ask for things.
//!
//! Every action a rep sends becomes work elsewhere: a dial is a call the tenant pays for, notes
//! are a write to the shared store and a message to every instance. A widget in a loop (a bug,
//! or a stolen token) would otherwise turn one socket into thousands of dials. Each connection
//! gets a token bucket for actions, slower ones for dials and for record searches (each search is
//! three V2 requests on the tenant's daily quota), and a cap on actions in progress;
//! what is over gets `rate_limited` and is dropped, and a connection that keeps on being refused
//! is closed (4429) so the widget backs off. Pings are not actions. Time comes from the relay's
//! clock, so tests move it by hand.

use std::sync::Arc;

use cti_protocol::ws::ClientMessage;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::SharedClock;
use crate::config::Limits;

/// Searches one connection may make at once before [`SEARCH_INTERVAL_MS`] paces them: enough for
/// a rep who corrects a name a few times, not for a widget in a loop.
pub const SEARCH_BURST: u32 = 5;
/// Milliseconds between two searches of one connection on average, past the burst.
pub const SEARCH_INTERVAL_MS: u64 = 2_000;

/// Refusals in a row after which the connection is closed.
pub const REFUSALS_BEFORE_CLOSE: u32 = 50;

/// Which limit an action ran into (the metric's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// Actions per second.
    Actions,
    /// Dials per interval.
    Dials,
    /// Record searches per interval.
    Searches,
    /// Actions in progress at once.
    InFlight,
}

impl Over {
    pub fn label(self) -> &'static str {
        match self {
            Over::Actions => "actions",
            Over::Dials => "dials",
            Over::Searches => "searches",
            Over::InFlight => "actions_in_flight",
        }
    }
}

/// Tokens refilled at a steady rate up to a burst; one spent per action.
#[derive(Debug)]
struct Bucket {
    burst: f64,
    per_ms: f64,
    tokens: f64,
    at_ms: u64,
}

impl Bucket {
    fn new(burst: u32, per_ms: f64, now_ms: u64) -> Self {
        Bucket {
            burst: f64::from(burst),
            per_ms,
            tokens: f64::from(burst),
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.burst);
        self.at_ms = self.at_ms.max(now_ms);
    }

    fn has(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        self.tokens >= 1.0
    }

    fn spend(&mut self) {
        self.tokens -= 1.0;
    }
}

/// One connection's limits.
#[derive(Debug)]
pub struct Throttle {
    clock: SharedClock,
    actions: Bucket,
    dials: Bucket,
    searches: Bucket,
    in_flight: Arc<Semaphore>,
    refused_in_a_row: u32,
}

impl Throttle {
    pub fn new(limits: &Limits, clock: SharedClock) -> Self {
        let now = clock.now_ms();
        let dial_ms = limits.dial_interval.as_millis().max(1) as f64;
        Throttle {
            actions: Bucket::new(
                limits.actions_burst,
                f64::from(limits.actions_per_sec) / 1000.0,
                now,
            ),
            dials: Bucket::new(2, 1.0 / dial_ms, now),
            searches: Bucket::new(SEARCH_BURST, 1.0 / SEARCH_INTERVAL_MS as f64, now),
            in_flight: Arc::new(Semaphore::new(limits.actions_in_flight)),
            clock,
            refused_in_a_row: 0,
        }
    }

    /// A permit to carry out `message` (held until it is done), or the limit it is over.
    pub fn admit(&mut self, message: &ClientMessage) -> Result<OwnedSemaphorePermit, Over> {
        let now = self.clock.now_ms();
        let dial = matches!(message, ClientMessage::Dial { .. });
        let search = matches!(message, ClientMessage::SearchRecords { .. });
        let verdict = if !self.actions.has(now) {
            Err(Over::Actions)
        } else if dial && !self.dials.has(now) {
            Err(Over::Dials)
        } else if search && !self.searches.has(now) {
            Err(Over::Searches)
        } else {
            self.in_flight
                .clone()
                .try_acquire_owned()
                .map_err(|_| Over::InFlight)
        };
        match verdict {
            Ok(permit) => {
                self.actions.spend();
                if dial {
                    self.dials.spend();
                }
                if search {
                    self.searches.spend();
                }
                self.refused_in_a_row = 0;
                Ok(permit)
            }
            Err(over) => {
                self.refused_in_a_row = self.refused_in_a_row.saturating_add(1);
                Err(over)
            }
        }
    }

    /// Whether the connection has been refused so often in a row that it should be closed.
    pub fn abusive(&self) -> bool {
        self.refused_in_a_row >= REFUSALS_BEFORE_CLOSE
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    fn dial() -> ClientMessage {
        ClientMessage::Dial {
            number: "+41441234567".into(),
        }
    }

    fn notes() -> ClientMessage {
        ClientMessage::SaveWrapUp {
            call_id: "c1".into(),
            notes: "n".into(),
            disposition: None,
        }
    }

    fn throttle(clock: &ManualClock) -> Throttle {
        let limits = Limits {
            actions_per_sec: 5,
            actions_burst: 10,
            actions_in_flight: 100,
            dial_interval: Duration::from_secs(5),
            ..Limits::default()
        };
        Throttle::new(&limits, Arc::new(clock.clone()))
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let clock = ManualClock::new(1_000_000);
        let mut throttle = throttle(&clock);
        let passed = (0..100)
            .filter(|_| throttle.admit(&notes()).is_ok())
            .count();
        assert_eq!(passed, 10, "the burst");
        clock.advance_ms(1_000);
        let passed = (0..100)
            .filter(|_| throttle.admit(&notes()).is_ok())
            .count();
        assert_eq!(passed, 5, "one second's worth");
        assert!(throttle.abusive(), "95 refusals in a row");
    }

    #[test]
    fn dials_have_their_own_slower_pace() {
        let clock = ManualClock::new(0);
        let mut throttle = throttle(&clock);
        assert!(throttle.admit(&dial()).is_ok());
        assert!(throttle.admit(&dial()).is_ok(), "a redial at once");
        assert_eq!(throttle.admit(&dial()).err(), Some(Over::Dials));
        assert!(throttle.admit(&notes()).is_ok(), "other actions go on");
        clock.advance_ms(5_000);
        assert!(throttle.admit(&dial()).is_ok());
        assert!(!throttle.abusive());
    }

    #[test]
    fn searches_have_their_own_pace() {
        let clock = ManualClock::new(0);
        let mut throttle = throttle(&clock);
        let search = ClientMessage::SearchRecords {
            request_id: 1,
            query: "Anna".into(),
        };
        for _ in 0..SEARCH_BURST {
            assert!(throttle.admit(&search).is_ok());
        }
        assert_eq!(throttle.admit(&search).err(), Some(Over::Searches));
        assert!(throttle.admit(&notes()).is_ok(), "other actions go on");
        clock.advance_ms(SEARCH_INTERVAL_MS);
        assert!(throttle.admit(&search).is_ok());
    }

    #[test]
    fn actions_in_progress_are_capped_until_one_finishes() {
        let clock = ManualClock::new(0);
        let limits = Limits {
            actions_in_flight: 2,
            ..Limits::default()
        };
        let mut throttle = Throttle::new(&limits, Arc::new(clock.clone()));
        let first = throttle.admit(&notes()).expect("first");
        let _second = throttle.admit(&notes()).expect("second");
        assert_eq!(throttle.admit(&notes()).err(), Some(Over::InFlight));
        drop(first);
        assert!(throttle.admit(&notes()).is_ok());
    }
}
