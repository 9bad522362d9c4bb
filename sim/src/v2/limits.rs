//! What makes the simulated tenant misbehave on purpose: the daily request budget (429 with
//! Retry-After) and injected faults (`POST /sim/faults`).

use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::OffsetDateTime;

/// The tenant's notion of now, replaceable in tests.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// What the next requests suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", untagged)]
pub enum Fault {
    Status {
        status: u16,
        count: u32,
    },
    Delay {
        delay_ms: u64,
        count: u32,
    },
    /// The next `count` writes are carried out, but the caller gets `status` instead of the
    /// answer (a gateway timing out after V2 committed): the case that duplicates naive clients.
    AfterWrite {
        status: u16,
        count: u32,
        after_write: bool,
    },
}

/// The verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Serve,
    Delay(u64),
    Fail(u16),
    /// Over budget: retry after this many seconds (the next UTC day).
    OverBudget(u64),
}

pub struct Limits {
    budget: Option<u64>,
    clock: Clock,
    used: Mutex<(i64, u64)>,
    fault: Mutex<Option<Fault>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("budget", &self.budget)
            .finish()
    }
}

impl Limits {
    pub fn new(budget: Option<u64>, clock: Clock) -> Self {
        Limits {
            budget,
            clock,
            used: Mutex::new((0, 0)),
            fault: Mutex::new(None),
        }
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    pub fn fault(&self) -> Option<Fault> {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For a write just carried out: the status to answer instead, if an after-write fault is set.
    pub fn lose_answer(&self) -> Option<u16> {
        let mut fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        match fault.as_mut() {
            Some(Fault::AfterWrite { status, count, .. }) if *count > 0 => {
                *count -= 1;
                let status = *status;
                if *count == 0 {
                    *fault = None;
                }
                Some(status)
            }
            _ => None,
        }
    }

    /// Decides one request's fate; faults come before the budget, like a proxy in front of V2.
    pub fn admit(&self) -> Admission {
        {
            let mut fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
            let verdict = match fault.as_mut() {
                Some(Fault::Status { status, count }) if *count > 0 => {
                    *count -= 1;
                    Some(Admission::Fail(*status))
                }
                Some(Fault::Delay { delay_ms, count }) if *count > 0 => {
                    *count -= 1;
                    Some(Admission::Delay(*delay_ms))
                }
                _ => None,
            };
            if matches!(
                *fault,
                Some(Fault::Status { count: 0, .. } | Fault::Delay { count: 0, .. })
            ) {
                *fault = None;
            }
            if let Some(Admission::Fail(status)) = verdict {
                return Admission::Fail(status);
            }
            if let Some(Admission::Delay(ms)) = verdict {
                return self
                    .count()
                    .map_or(Admission::Delay(ms), Admission::OverBudget);
            }
        }
        self.count().map_or(Admission::Serve, Admission::OverBudget)
    }

    /// Counts a request against today's budget; Some(retry-after) when it is spent.
    fn count(&self) -> Option<u64> {
        let budget = self.budget?;
        let now = (self.clock)();
        let day = now.unix_timestamp().div_euclid(86_400);
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.0 != day {
            *used = (day, 0);
        }
        if used.1 >= budget {
            let next_day = (day + 1) * 86_400;
            return Some((next_day - now.unix_timestamp()).max(1) as u64);
        }
        used.1 += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    #[test]
    fn budget_resets_on_the_next_day() {
        let now = Arc::new(AtomicI64::new(86_400 * 20_000 + 3_600));
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || {
            OffsetDateTime::from_unix_timestamp(clock_now.load(Ordering::SeqCst))
                .expect("valid time")
        });
        let limits = Limits::new(Some(2), clock);
        assert_eq!(limits.admit(), Admission::Serve);
        assert_eq!(limits.admit(), Admission::Serve);
        assert_eq!(limits.admit(), Admission::OverBudget(86_400 - 3_600));
        now.fetch_add(86_400, Ordering::SeqCst);
        assert_eq!(limits.admit(), Admission::Serve);
    }

    #[test]
    fn faults_apply_to_the_next_requests_only() {
        let limits = Limits::new(None, system_clock());
        limits.set_fault(Some(Fault::Status {
            status: 503,
            count: 2,
        }));
        assert_eq!(limits.admit(), Admission::Fail(503));
        assert_eq!(limits.admit(), Admission::Fail(503));
        assert_eq!(limits.admit(), Admission::Serve);
        assert_eq!(limits.fault(), None);
        limits.set_fault(Some(Fault::Delay {
            delay_ms: 5,
            count: 1,
        }));
        assert_eq!(limits.admit(), Admission::Delay(5));
        assert_eq!(limits.admit(), Admission::Serve);
    }
}
