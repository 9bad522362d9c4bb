//! This instance's part of the admin page's view of the deployment: its report on each tenant
//! it serves, made from its state, and the loop that publishes it for the other instances
//! (the reports and their store are [`crate::reports`]).

use std::sync::Arc;

use crate::reports::{InstanceReport, LinkReport};
use crate::state::AppState;

/// What this instance knows of `tenant` now.
pub fn report_of(state: &AppState, tenant: &str) -> InstanceReport {
    let served = state.tenant(tenant);
    InstanceReport {
        reps: state.hub.sessions(tenant).into_iter().collect(),
        link: served
            .as_ref()
            .and_then(|t| LinkReport::held(&t.link.get())),
        last_build: served.and_then(|t| t.numbers.refresh_status().last_build),
    }
}

/// Publishes this instance's report on every tenant it serves, each interval, until the relay
/// stops; a tenant it has nothing to say about loses its report at once.
pub async fn run(state: Arc<AppState>) {
    let interval = state.config.report_interval;
    let ttl = interval * 3;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = std::pin::pin!(state.stopping());
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut stopping => break,
        }
        for tenant in state.tenants.all() {
            let report = report_of(&state, &tenant.config.id);
            let report = (!report.is_empty()).then_some(&report);
            if let Err(err) = state
                .reports
                .publish(&tenant.config.id, &state.instance_id, report, ttl)
                .await
            {
                tracing::debug!(%err, tenant = %tenant.config.id, "publishing this instance's report");
            }
        }
    }
    // Leaving: the others should not count this instance's reps any longer.
    for tenant in state.tenants.all() {
        let _ = state
            .reports
            .publish(&tenant.config.id, &state.instance_id, None, ttl)
            .await;
    }
}
