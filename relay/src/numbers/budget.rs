//! A daily allowance of V2 requests for keeping the index fresh.
//!
//! V2 limits API calls per tenant and day (150,000 plus 1,500 per user; 30,000 on a test tenant)
//! and answers 429 beyond; the same allowance serves every integration of the tenant. The
//! refresher spends from its own share so that a large tenant or a burst of change events cannot
//! starve the calls that matter more (live lookups of callers and activity writes, which never
//! wait on this budget). Days are UTC days, as V2 counts them.

use parking_lot::Mutex;

use crate::clock::SharedClock;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the daily V2 request budget of {limit} for index refresh is spent; it renews in {renews_in_s} s"
)]
pub struct BudgetExhausted {
    pub limit: u64,
    pub renews_in_s: u64,
}

#[derive(Debug)]
pub struct DailyBudget {
    /// None: unlimited.
    limit: Option<u64>,
    clock: SharedClock,
    /// (UTC day number, requests spent that day).
    spent: Mutex<(u64, u64)>,
}

impl DailyBudget {
    pub fn new(limit: Option<u64>, clock: SharedClock) -> Self {
        DailyBudget {
            limit,
            clock,
            spent: Mutex::new((0, 0)),
        }
    }

    /// Takes one request from today's budget, or says when there will be more.
    pub fn spend(&self) -> Result<(), BudgetExhausted> {
        let now = self.clock.now_ms();
        let today = now / DAY_MS;
        let mut spent = self.spent.lock();
        if spent.0 != today {
            *spent = (today, 0);
        }
        if let Some(limit) = self.limit
            && spent.1 >= limit
        {
            return Err(BudgetExhausted {
                limit,
                renews_in_s: ((today + 1) * DAY_MS - now).div_ceil(1000),
            });
        }
        spent.1 += 1;
        Ok(())
    }

    /// Requests spent today.
    pub fn spent_today(&self) -> u64 {
        let today = self.clock.now_ms() / DAY_MS;
        let spent = self.spent.lock();
        if spent.0 == today { spent.1 } else { 0 }
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn the_budget_is_spent_and_renews_at_utc_midnight() {
        let clock = ManualClock::new(3 * DAY_MS + DAY_MS - 10_000);
        let budget = DailyBudget::new(Some(2), Arc::new(clock.clone()));
        budget.spend().expect("first");
        budget.spend().expect("second");
        let err = budget.spend().expect_err("third is over the limit");
        assert_eq!(err.renews_in_s, 10);
        assert_eq!(budget.spent_today(), 2);
        clock.advance_ms(10_000);
        assert_eq!(budget.spent_today(), 0);
        budget.spend().expect("a new day");
    }

    #[test]
    fn no_limit_means_no_limit() {
        let budget = DailyBudget::new(None, Arc::new(ManualClock::new(0)));
        for _ in 0..10_000 {
            budget.spend().expect("unlimited");
        }
        assert_eq!(budget.spent_today(), 10_000);
    }
}
