//! Keeping each tenant's number index current: a full build at start-up and on an interval,
//! with incremental updates from V2's change events in between (see `update`).
//!
//! The refresher wakes on a short tick and decides what to do from the store's state, not from
//! its own memory: the last build time and the rebuild lease live in the shared store, so with
//! several relay instances one builds and the others stand by, and a Redis that restarted empty
//! is noticed on the next tick and rebuilt at once.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{BuildLabels, TenantLabels};

use super::build::{BuildError, BuildOptions, Signal, best_effort, build_generation, employees};
use super::index::IndexError;
use super::update;
use super::{Numbers, TenantNumbers};

/// Where a tenant's number index stands, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexStatus {
    Building,
    Ready { numbers: usize },
    Failed { error: String },
}

/// What the tenant's refresher is doing, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshPhase {
    Building,
    /// Up to date; the next full build is due later.
    Idle,
    /// Another relay instance holds the rebuild lease and keeps the shared index.
    Standby,
    /// The last build failed; retrying after a back-off (or V2's Retry-After).
    Retrying,
    /// Today's request budget is spent.
    BudgetExhausted,
}

impl RefreshPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshPhase::Building => "building",
            RefreshPhase::Idle => "idle",
            RefreshPhase::Standby => "standby",
            RefreshPhase::Retrying => "retrying",
            RefreshPhase::BudgetExhausted => "budget_exhausted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshStatus {
    pub phase: RefreshPhase,
    /// Unix ms of this instance's last successful full build.
    pub last_success_ms: Option<u64>,
    pub last_error: Option<String>,
    /// This instance's last completed build, for the admin page.
    pub last_build: Option<LastBuild>,
}

/// What a completed build took and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastBuild {
    /// When it finished (relay clock, Unix ms).
    pub finished_at_ms: u64,
    pub duration_ms: u64,
    /// V2 records read (accounts, contacts, individual customers).
    pub records: usize,
}

/// How long a rebuild lease lasts; a holder renews it while it builds, so it only runs out when
/// the holder died.
const LEASE: Duration = Duration::from_secs(120);

/// What the refresher does on a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Build,
    Wait,
}

/// What a tick knows.
#[derive(Debug, Clone, Copy)]
pub struct TickFacts {
    pub now_ms: u64,
    /// When any instance last completed a build (None: never, or the store forgot).
    pub last_built_ms: Option<u64>,
    /// Not before this (after a failure: back-off or Retry-After).
    pub retry_at_ms: u64,
    /// Numbers in the store now; None when the store is unreachable.
    pub stored_numbers: Option<usize>,
    /// Numbers this tenant's index held after its last build.
    pub built_numbers: Option<usize>,
    pub interval_ms: u64,
}

/// Build when the interval has passed, when no build ever completed, or when the store lost a
/// non-empty index (a Redis restarted without persistence); never before a retry time.
pub fn decide(f: &TickFacts) -> Decision {
    if f.now_ms < f.retry_at_ms {
        return Decision::Wait;
    }
    let store_lost_index = f.stored_numbers == Some(0) && f.built_numbers.is_some_and(|n| n > 0);
    let due = match f.last_built_ms {
        None => true,
        Some(at) => f.now_ms >= at.saturating_add(f.interval_ms),
    };
    if due || store_lost_index {
        Decision::Build
    } else {
        Decision::Wait
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Store(#[from] IndexError),
}

/// Builds the tenant's index once and swaps it in whole; then re-applies the changes V2 reported
/// while the crawl ran (the crawl may have read some of those records before they changed).
pub async fn rebuild(numbers: &Numbers, tenant: &TenantNumbers) -> Result<usize, RefreshError> {
    let tid = tenant.id.as_str();
    let started_ms = numbers.clock.now_ms();
    let started = std::time::Instant::now();
    let options = BuildOptions {
        region: tenant.region.clone(),
        activity_since: TenantNumbers::activity_since(started_ms, numbers.settings.activity_days),
    };
    let build = build_generation(&tenant.v2, &options, &tenant.budget);
    // Renew the lease while the crawl runs, so a long build keeps it and a dead one loses it.
    let renew = async {
        loop {
            tokio::time::sleep(LEASE / 3).await;
            if let Err(err) = numbers
                .coordination
                .acquire(tid, &numbers.instance_id, LEASE)
                .await
            {
                tracing::warn!(%err, tenant = %tid, "renewing the rebuild lease failed");
            }
        }
    };
    let (generation, mut stats) = tokio::select! {
        built = build => built?,
        never = renew => never,
    };
    let count = generation.len();
    numbers.index.replace(tid, generation).await?;
    best_effort(
        Signal::Employees,
        refresh_employees(tenant).await,
        &mut stats.refused,
    )?;
    numbers.report_signals(tenant, &stats.refused, true);
    let changed = numbers.coordination.changes_since(tid, started_ms).await?;
    for key in &changed {
        if let Some((kind, id)) = update::parse_entity_key(key)
            && let Err(err) = update::apply(numbers, tenant, kind, id).await
        {
            tracing::warn!(%err, tenant = %tid, "re-applying a change after the rebuild failed");
        }
    }
    numbers
        .coordination
        .set_last_built(tid, numbers.clock.now_ms())
        .await?;
    let finished_at_ms = numbers.clock.now_ms();
    tenant.update_refresh(|r| {
        r.last_build = Some(LastBuild {
            finished_at_ms,
            duration_ms: finished_at_ms.saturating_sub(started_ms),
            records: stats.records,
        });
    });
    tracing::info!(
        tenant = %tid, records = stats.records, numbers = count,
        unusable_numbers = stats.unusable_numbers, requests = stats.requests,
        reapplied_changes = changed.len(), elapsed_ms = started.elapsed().as_millis() as u64,
        "number index built"
    );
    Ok(count)
}

/// Reads the tenant's employees, for recognising reps as owners.
async fn refresh_employees(tenant: &TenantNumbers) -> Result<(), BuildError> {
    let map = employees(&tenant.v2, &tenant.budget).await?;
    tenant.set_employees(map);
    Ok(())
}

/// Runs forever: on every tick, decide from the store's state whether to build.
pub async fn run(numbers: Arc<Numbers>, tenant: Arc<TenantNumbers>) {
    let tid = tenant.id.clone();
    let mut failures: u32 = 0;
    let mut retry_at_ms = 0;
    let mut built_numbers: Option<usize> = None;
    loop {
        let stored_numbers = numbers.index.len(&tid).await.ok();
        let last_built_ms = numbers.coordination.last_built(&tid).await.unwrap_or(None);
        let facts = TickFacts {
            now_ms: numbers.clock.now_ms(),
            last_built_ms,
            retry_at_ms,
            stored_numbers,
            built_numbers,
            interval_ms: numbers.settings.index_refresh.as_millis() as u64,
        };
        if decide(&facts) == Decision::Build {
            match numbers
                .coordination
                .acquire(&tid, &numbers.instance_id, LEASE)
                .await
            {
                Ok(true) => {
                    tenant.update_refresh(|r| r.phase = RefreshPhase::Building);
                    let outcome = rebuild(&numbers, &tenant).await;
                    let _ = numbers
                        .coordination
                        .release(&tid, &numbers.instance_id)
                        .await;
                    match outcome {
                        Ok(count) => {
                            failures = 0;
                            built_numbers = Some(count);
                            tenant.set_index_status(IndexStatus::Ready { numbers: count });
                            let now = numbers.clock.now_ms();
                            tenant.update_refresh(|r| {
                                r.phase = RefreshPhase::Idle;
                                r.last_success_ms = Some(now);
                                r.last_error = None;
                            });
                            record(&numbers, &tenant, "ok", Some(count));
                        }
                        Err(err) => {
                            failures = failures.saturating_add(1);
                            let wait = retry_wait(&err, failures);
                            retry_at_ms = numbers.clock.now_ms() + wait.as_millis() as u64;
                            failed(&numbers, &tenant, &err, failures, wait);
                        }
                    }
                }
                Ok(false) => {
                    standby(&tenant, stored_numbers);
                    if let Err(err) = refresh_employees(&tenant).await {
                        tracing::warn!(%err, tenant = %tid, "reading employees failed");
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, tenant = %tid, "rebuild lease unavailable");
                }
            }
        } else if tenant.refresh_status().phase == RefreshPhase::Standby
            || built_numbers.is_none() && stored_numbers.is_some_and(|n| n > 0)
        {
            // Another instance built the shared index (this one started after it did).
            standby(&tenant, stored_numbers);
            if !tenant.knows_employees()
                && let Err(err) = refresh_employees(&tenant).await
            {
                tracing::warn!(%err, tenant = %tid, "reading employees failed");
            }
        }
        tokio::time::sleep(numbers.settings.index_check).await;
    }
}

/// Another instance keeps the shared index: serve it as soon as it holds anything.
fn standby(tenant: &TenantNumbers, stored_numbers: Option<usize>) {
    tenant.update_refresh(|r| r.phase = RefreshPhase::Standby);
    if let Some(numbers) = stored_numbers.filter(|n| *n > 0) {
        tenant.set_index_status(IndexStatus::Ready { numbers });
    }
}

/// V2's Retry-After (or the budget's renewal) when given, else exponential back-off from 0.5 s
/// to about a minute.
fn retry_wait(err: &RefreshError, failures: u32) -> Duration {
    let told = match err {
        RefreshError::Build(b) => b.retry_after(),
        RefreshError::Store(_) => None,
    };
    told.map(Duration::from_secs)
        .unwrap_or_else(|| Duration::from_millis(500u64.saturating_mul(1 << failures.min(7))))
}

fn failed(
    numbers: &Numbers,
    tenant: &TenantNumbers,
    err: &RefreshError,
    failures: u32,
    wait: Duration,
) {
    let budget = matches!(err, RefreshError::Build(BuildError::Budget(_)));
    tracing::warn!(
        %err, tenant = %tenant.id, failures, retry_in_s = wait.as_secs(),
        "number index build failed"
    );
    record(
        numbers,
        tenant,
        if budget { "budget_exhausted" } else { "failed" },
        None,
    );
    tenant.update_refresh(|r| {
        r.phase = if budget {
            RefreshPhase::BudgetExhausted
        } else {
            RefreshPhase::Retrying
        };
        r.last_error = Some(err.to_string());
    });
    // Keep serving the previous generation if there is one.
    if !matches!(tenant.index_status(), IndexStatus::Ready { .. }) {
        tenant.set_index_status(IndexStatus::Failed {
            error: err.to_string(),
        });
    }
}

fn record(numbers: &Numbers, tenant: &TenantNumbers, outcome: &str, count: Option<usize>) {
    let labels = TenantLabels {
        tenant: tenant.id.clone(),
    };
    numbers
        .metrics
        .index_builds
        .get_or_create(&BuildLabels {
            tenant: tenant.id.clone(),
            outcome: outcome.into(),
        })
        .inc();
    if let Some(n) = count {
        numbers
            .metrics
            .index_numbers
            .get_or_create(&labels)
            .set(n as i64);
        numbers
            .metrics
            .index_last_success
            .get_or_create(&labels)
            .set((numbers.clock.now_ms() / 1000) as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> TickFacts {
        TickFacts {
            now_ms: 1_000_000,
            last_built_ms: Some(900_000),
            retry_at_ms: 0,
            stored_numbers: Some(10),
            built_numbers: Some(10),
            interval_ms: 900_000,
        }
    }

    #[test]
    fn builds_when_due_never_built_or_the_store_lost_the_index() {
        assert_eq!(decide(&facts()), Decision::Wait);
        let due = TickFacts {
            now_ms: 1_800_000,
            ..facts()
        };
        assert_eq!(decide(&due), Decision::Build);
        let never = TickFacts {
            last_built_ms: None,
            built_numbers: None,
            ..facts()
        };
        assert_eq!(decide(&never), Decision::Build);
        let lost = TickFacts {
            stored_numbers: Some(0),
            ..facts()
        };
        assert_eq!(decide(&lost), Decision::Build);
        let unreachable = TickFacts {
            stored_numbers: None,
            ..facts()
        };
        assert_eq!(decide(&unreachable), Decision::Wait);
        let empty_tenant = TickFacts {
            stored_numbers: Some(0),
            built_numbers: Some(0),
            ..facts()
        };
        assert_eq!(decide(&empty_tenant), Decision::Wait);
    }

    #[test]
    fn never_before_the_retry_time() {
        let backing_off = TickFacts {
            last_built_ms: None,
            retry_at_ms: 1_000_001,
            ..facts()
        };
        assert_eq!(decide(&backing_off), Decision::Wait);
    }
}
