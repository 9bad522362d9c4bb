//! Who is calling: E.164 normalization and the index from numbers to V2 records.
//!
//! [`Numbers`] holds what every tenant shares (the index and its coordination between
//! instances, the reps' remembered choices, the cache of live answers); [`TenantNumbers`] holds a
//! tenant's side (its V2, region, request budget, the employees the last build saw, and where
//! its index stands). The refresher and the change-event updates take those two and nothing
//! else, so this module calls nothing above it.
//!
//! Ranking signals (open opportunities, latest calls, employees) read V2 fields nobody has
//! confirmed, so a tenant may refuse them; [`SignalsStatus`] says whether the index has them.

pub mod audit;
pub mod batch;
pub mod budget;
pub mod build;
pub mod choices;
pub mod coordination;
pub mod generation;
pub mod index;
pub mod live;
pub mod normalize;
pub mod rank;
pub mod record;
pub mod redis_index;
pub mod refresh;
pub mod update;

pub use index::{MemoryIndex, NumberIndex};
pub use normalize::{DefaultRegion, InvalidNumber, Normalized, normalize, to_e164};
pub use record::IndexedRecord;
pub use refresh::{IndexStatus, RefreshPhase, RefreshStatus};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::SharedClock;
use crate::metrics::{Metrics, SignalLabels};

use build::SignalRefusal;

/// The number services every tenant shares.
#[derive(Debug)]
pub struct Numbers {
    pub index: Arc<dyn NumberIndex>,
    /// How relay instances share the work of keeping indexes fresh.
    pub coordination: Arc<dyn coordination::RefreshCoordination>,
    /// The records reps picked for numbers.
    pub choices: Arc<dyn choices::ChoiceStore>,
    /// Live V2 answers for numbers the index missed.
    pub misses: live::MissCache,
    pub settings: Settings,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    /// This process, as the holder of rebuild leases.
    pub instance_id: String,
}

/// How often indexes are rebuilt and looked at, and how far back activity counts for ranking.
#[derive(Debug, Clone)]
pub struct Settings {
    pub index_refresh: Duration,
    pub index_check: Duration,
    /// Days of phone calls read for the "latest call" ranking signal; 0 reads none.
    pub activity_days: u64,
}

/// One tenant's side of the numbers.
#[derive(Debug)]
pub struct TenantNumbers {
    pub id: String,
    pub v2: crate::v2::V2Client,
    pub region: DefaultRegion,
    /// V2 requests the index refresher may still spend today.
    pub budget: budget::DailyBudget,
    /// Reps' e-mail addresses (lower case) to their V2 employee ids, for the "owned by the rep"
    /// rule; read with each full build.
    employees: Mutex<HashMap<String, String>>,
    index_status: Mutex<IndexStatus>,
    refresh: Mutex<RefreshStatus>,
    signals: Mutex<SignalsStatus>,
}

/// Whether the index carries the ranking signals, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalsStatus {
    /// No build has finished yet.
    Pending,
    Available,
    /// V2 refused at least one signal; the index is served without it.
    Unavailable {
        reason: String,
    },
}

impl TenantNumbers {
    pub fn new(
        id: &str,
        v2: crate::v2::V2Client,
        region: DefaultRegion,
        budget: budget::DailyBudget,
    ) -> Self {
        TenantNumbers {
            id: id.to_string(),
            v2,
            region,
            budget,
            employees: Mutex::new(HashMap::new()),
            index_status: Mutex::new(IndexStatus::Building),
            refresh: Mutex::new(RefreshStatus {
                phase: RefreshPhase::Building,
                last_success_ms: None,
                last_error: None,
                last_build: None,
            }),
            signals: Mutex::new(SignalsStatus::Pending),
        }
    }

    pub fn signals_status(&self) -> SignalsStatus {
        self.signals.lock().clone()
    }

    /// The RFC 3339 instant `days` before `now_ms`; None when activity is not read.
    pub fn activity_since(now_ms: u64, days: u64) -> Option<String> {
        if days == 0 {
            return None;
        }
        let since_ms = now_ms.saturating_sub(days * 24 * 60 * 60 * 1000);
        let at = time::OffsetDateTime::from_unix_timestamp((since_ms / 1000) as i64).ok()?;
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    }

    /// The rep's V2 employee id, when the last build saw them.
    pub fn employee_id(&self, agent: &str) -> Option<String> {
        self.employees.lock().get(&agent.to_lowercase()).cloned()
    }

    pub fn knows_employees(&self) -> bool {
        !self.employees.lock().is_empty()
    }

    pub fn set_employees(&self, employees: HashMap<String, String>) {
        *self.employees.lock() = employees;
    }

    pub fn refresh_status(&self) -> RefreshStatus {
        self.refresh.lock().clone()
    }

    pub fn update_refresh(&self, f: impl FnOnce(&mut RefreshStatus)) {
        f(&mut self.refresh.lock());
    }

    pub fn index_status(&self) -> IndexStatus {
        self.index_status.lock().clone()
    }

    pub fn set_index_status(&self, status: IndexStatus) {
        *self.index_status.lock() = status;
    }
}

impl Numbers {
    /// Forgets what this process holds of the tenant's numbers (it unsubscribed): its index,
    /// the reps' choices and the live answers cached.
    pub async fn forget_tenant(&self, tenant: &str) {
        self.index.forget_tenant(tenant).await;
        self.choices.forget_tenant(tenant).await;
        self.misses.forget_tenant(tenant);
    }

    /// Counts each refused signal and records where the tenant's signals stand. A full build
    /// (`whole`) says all there is to know, so it also clears an earlier refusal; an update only
    /// adds to it. Only a change is logged, so a refusal that stays is not logged on every build.
    pub fn report_signals(&self, tenant: &TenantNumbers, refused: &[SignalRefusal], whole: bool) {
        for refusal in refused {
            self.metrics
                .index_signal_refusals
                .get_or_create(&SignalLabels {
                    tenant: tenant.id.clone(),
                    signal: refusal.signal.as_str().into(),
                })
                .inc();
        }
        let next = if refused.is_empty() {
            if !whole {
                return;
            }
            SignalsStatus::Available
        } else {
            let reason = refused
                .iter()
                .map(|r| format!("{}: {}", r.signal.as_str(), r.reason))
                .collect::<Vec<_>>()
                .join("; ");
            SignalsStatus::Unavailable { reason }
        };
        let previous = std::mem::replace(&mut *tenant.signals.lock(), next.clone());
        if previous == next {
            return;
        }
        match next {
            SignalsStatus::Unavailable { reason } => tracing::warn!(
                tenant = %tenant.id, %reason,
                "V2 refused ranking signals; the number index is served without them"
            ),
            _ if matches!(previous, SignalsStatus::Unavailable { .. }) => {
                tracing::info!(tenant = %tenant.id, "ranking signals are available again");
            }
            _ => {}
        }
    }
}
