//! Who is calling: the number index first, V2 itself for a number the index does not know, and
//! the matches in the tenant's order for the rep who takes the call.

use std::sync::Arc;

use cti_protocol::ws::Match;

use super::legs::{self, LegError};
use crate::numbers::IndexedRecord;
use crate::numbers::live;
use crate::numbers::rank::{RankContext, rank};
use crate::state::{AppState, Tenant};

/// A live V2 lookup that outlasted the push budget; it still yields the matches later.
pub(super) type PendingLookup = tokio::task::JoinHandle<Vec<IndexedRecord>>;

/// The index first; on a miss, a cached V2 answer; else V2 itself, waited for at most the
/// configured budget. Returns the matches, or the lookup still running past the budget.
pub(super) async fn lookup_caller(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    e164: &str,
) -> (Vec<IndexedRecord>, Option<PendingLookup>) {
    let tid = tenant.config.id.as_str();
    match state.numbers.index.lookup(tid, e164).await {
        Ok(records) if !records.is_empty() => return (records, None),
        Ok(_) => {}
        Err(err) => tracing::warn!(%err, "number index lookup failed; asking V2"),
    }
    if let Some(records) = state.numbers.misses.get(tid, e164, state.clock.now_ms()) {
        return (records, None);
    }
    let (state2, tenant2, number) = (state.clone(), tenant.clone(), e164.to_string());
    let mut lookup = tokio::spawn(async move {
        let (misses, tid2) = (&state2.numbers.misses, tenant2.config.id.as_str());
        match live::query(&tenant2.v2, misses, tid2, &number, state2.clock.now_ms()).await {
            Ok(records) => {
                let ttl = if records.is_empty() {
                    state2.config.negative_ttl
                } else {
                    state2.config.index_refresh
                };
                let expires = state2.clock.now_ms() + ttl.as_millis() as u64;
                state2
                    .numbers
                    .misses
                    .put(&tenant2.config.id, &number, records.clone(), expires);
                records
            }
            Err(err) => {
                tracing::warn!(%err, "live V2 lookup of an unknown caller failed");
                Vec::new()
            }
        }
    });
    match tokio::time::timeout(state.config.miss_budget, &mut lookup).await {
        Ok(records) => (records.unwrap_or_default(), None),
        Err(_) => (Vec::new(), Some(lookup)),
    }
}

/// Puts the matches in the tenant's order for this rep, the rep's earlier choice first.
pub(super) async fn ranked(
    state: &AppState,
    tenant: &Tenant,
    agent: &str,
    e164: &str,
    mut records: Vec<IndexedRecord>,
) -> Vec<IndexedRecord> {
    if records.len() < 2 {
        return records;
    }
    let remembered = match state
        .numbers
        .choices
        .get(&tenant.config.id, agent, e164)
        .await
    {
        Ok(choice) => choice,
        Err(err) => {
            tracing::warn!(%err, "remembered choices unavailable; ranking without them");
            None
        }
    };
    let employee = tenant.numbers.employee_id(agent);
    let ctx = RankContext {
        rep_employee_id: employee.as_deref(),
        remembered: remembered.as_deref(),
    };
    rank(&mut records, &tenant.rules, &ctx);
    records
}

/// Completes a leg that went out as unknown when V2's answer arrives after the budget.
pub(super) async fn late_match(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    call_id: &str,
    agent: &str,
    pending: PendingLookup,
) {
    let records = pending.await.unwrap_or_default();
    if records.is_empty() {
        return;
    }
    let tid = tenant.config.id.as_str();
    let remote = state
        .calls
        .get(tid, call_id, agent)
        .await
        .ok()
        .flatten()
        .map(|leg| leg.remote().to_string())
        .unwrap_or_default();
    let records = ranked(state, tenant, agent, &remote, records).await;
    let updated = legs::update(state, tenant, call_id, agent, |leg| {
        if !leg.matches.is_empty() || leg.state.is_final() {
            return Ok::<_, LegError>(false);
        }
        leg.matches = records.iter().cloned().map(to_match).collect();
        leg.pop = leg.matches.first().cloned();
        Ok(true)
    })
    .await;
    let account = match updated {
        Ok(leg) => leg.pop.and_then(|m| m.account),
        Err(err) => {
            tracing::warn!(%err, call = %call_id, "late match not saved");
            None
        }
    };
    if let Some(account) = account {
        super::enrich::enrich(state, tenant, call_id, agent, &account.id).await;
    }
}

pub(crate) fn to_match(record: IndexedRecord) -> Match {
    Match {
        kind: record.kind,
        id: record.id,
        display_id: record.display_id,
        name: record.name,
        account: record.account,
        open_opportunities: Vec::new(),
        last_interactions: Vec::new(),
    }
}
