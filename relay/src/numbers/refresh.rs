//! Keeping each tenant's number index current: a full rebuild at start-up and then periodically.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{BuildLabels, TenantLabels};
use crate::state::{AppState, IndexStatus, Tenant};
use crate::v2::V2Error;

use super::build::build_generation;

/// Rebuilds the tenant's index once; the new generation replaces the old one whole.
pub async fn rebuild(state: &AppState, tenant: &Tenant) -> Result<usize, V2Error> {
    let started = std::time::Instant::now();
    let (generation, stats) = build_generation(&tenant.v2, &tenant.region).await?;
    let numbers = generation.len();
    if let Err(err) = state.index.replace(&tenant.config.id, generation).await {
        tracing::error!(%err, tenant = %tenant.config.id, "storing the number index failed");
        return Err(V2Error::Transport {
            path: "number index store".into(),
            reason: err.to_string(),
        });
    }
    tracing::info!(
        tenant = %tenant.config.id, records = stats.records, numbers,
        unusable_numbers = stats.unusable_numbers, elapsed_ms = started.elapsed().as_millis() as u64,
        "number index built"
    );
    Ok(numbers)
}

/// Runs forever: build now, retry failures with backoff (honouring V2's Retry-After), rebuild on
/// the configured interval.
pub async fn run(state: Arc<AppState>, tenant: Arc<Tenant>) {
    let mut failures: u32 = 0;
    loop {
        let wait = match rebuild(&state, &tenant).await {
            Ok(numbers) => {
                failures = 0;
                tenant.set_index_status(IndexStatus::Ready { numbers });
                record(&state, &tenant, "ok", Some(numbers));
                state.config.index_refresh
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%err, tenant = %tenant.config.id, failures, "number index build failed");
                record(&state, &tenant, "failed", None);
                // Keep serving the previous generation if there is one.
                if !matches!(tenant.index_status(), IndexStatus::Ready { .. }) {
                    tenant.set_index_status(IndexStatus::Failed {
                        error: err.to_string(),
                    });
                }
                let retry_after = match &err {
                    V2Error::Status { retry_after, .. } => *retry_after,
                    _ => None,
                };
                retry_after.map(Duration::from_secs).unwrap_or_else(|| {
                    Duration::from_millis(500u64.saturating_mul(1 << failures.min(7)))
                })
            }
        };
        tokio::time::sleep(wait).await;
    }
}

fn record(state: &AppState, tenant: &Tenant, outcome: &str, numbers: Option<usize>) {
    state
        .metrics
        .index_builds
        .get_or_create(&BuildLabels {
            tenant: tenant.config.id.clone(),
            outcome: outcome.into(),
        })
        .inc();
    if let Some(n) = numbers {
        state
            .metrics
            .index_numbers
            .get_or_create(&TenantLabels {
                tenant: tenant.config.id.clone(),
            })
            .set(n as i64);
    }
}
