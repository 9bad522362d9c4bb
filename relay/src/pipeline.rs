//! From a telephony event to a call on the rep's screen.
//!
//! Apply the event to its call leg (idempotent, order-tolerant), match the caller on first sight,
//! publish the new view to the rep, and fill in the caller card's details (open opportunities,
//! last interactions) from V2 without holding up the pop.

use std::sync::Arc;

use cti_protocol::event::{Direction, TelephonyEvent};
use cti_protocol::ws::{CallState, CallView, Match};

use crate::activity;
use crate::calls::{self, Transition};
use crate::error::ApiError;
use crate::numbers::rank::{RankContext, rank};
use crate::numbers::{IndexedRecord, live, normalize};
use crate::secret::mask_number;
use crate::state::{AppState, Tenant};
use crate::v2::client::Collection;
use crate::v2::records;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (or acknowledged as stale) for the first time.
    Accepted,
    /// This event id was applied before.
    Duplicate,
}

pub async fn ingest(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    event: TelephonyEvent,
    received_at_ms: u64,
) -> Result<Outcome, ApiError> {
    let tid = tenant.config.id.as_str();
    let unavailable = |e: calls::StoreError| ApiError::Unavailable(e.to_string());
    let _serial = state.stripe(tid, &event.call_id).lock().await;
    if state
        .calls
        .seen(tid, &event.id)
        .await
        .map_err(unavailable)?
    {
        return Ok(Outcome::Duplicate);
    }
    let existing = state
        .calls
        .get(tid, &event.call_id, &event.agent)
        .await
        .map_err(unavailable)?;
    let is_new = existing.is_none();
    let (leg, pending) = match existing {
        Some(leg) => (leg, None),
        None => {
            let earlier = state
                .calls
                .legs(tid, &event.call_id)
                .await
                .map_err(unavailable)?;
            match earlier.last() {
                Some(previous) => (handed_over(previous, &event, received_at_ms), None),
                None => new_leg(state, tenant, &event, received_at_ms).await,
            }
        }
    };
    let was_final = leg.state.is_final();
    let mut view = match calls::apply(leg.clone(), &event) {
        Transition::Changed(view) => *view,
        Transition::Unchanged if is_new => leg,
        Transition::Unchanged => {
            state
                .calls
                .mark_seen(tid, &event.id)
                .await
                .map_err(unavailable)?;
            tracing::debug!(call = %event.call_id, event = %event.id, "stale event acknowledged");
            return Ok(Outcome::Accepted);
        }
    };
    if was_final && !view.state.is_final() {
        // The call came back to this rep: what the colleague it comes from knows comes along.
        let legs = state
            .calls
            .legs(tid, &event.call_id)
            .await
            .map_err(unavailable)?;
        if let Some(from) = came_from(&legs, &view.agent) {
            view.handover = Some(handover_from(from));
        }
    }
    if view.state.is_final()
        && let Some(status) = activity::queue_if_finished(state, tid, &view)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
    {
        // Queued before the leg is saved: a crash in between re-applies the event on redelivery
        // and queues the same call again, which the outbox takes as the same entry.
        view.wrap_up.activity = Some(status);
    }
    state
        .calls
        .save(tid, &view, &event.id)
        .await
        .map_err(unavailable)?;
    publish(state, tid, view.clone()).await;
    show_consultation(state, tid, &view)
        .await
        .map_err(unavailable)?;
    let elapsed_ms = state.clock.now_ms().saturating_sub(received_at_ms);
    state
        .metrics
        .event_to_push_seconds
        .observe(elapsed_ms as f64 / 1000.0);
    tracing::info!(
        call = %view.id, state = ?view.state, caller = %mask_number(view.remote()),
        matches = view.matches.len(), "call updated"
    );
    if let Some(pending) = pending {
        let (state, tenant) = (state.clone(), tenant.clone());
        let (call_id, agent) = (view.id.clone(), view.agent.clone());
        tokio::spawn(async move {
            late_match(&state, &tenant, &call_id, &agent, pending).await;
        });
    } else if is_new
        && view.state == CallState::Ringing
        && let Some(account) = view.pop.as_ref().and_then(|m| m.account.clone())
    {
        let (state, tenant) = (state.clone(), tenant.clone());
        tokio::spawn(async move {
            enrich(&state, &tenant, &view.id, &view.agent, &account.id).await;
        });
    }
    Ok(Outcome::Accepted)
}

pub(crate) async fn publish(state: &AppState, tenant: &str, view: CallView) {
    state.hub.publish(tenant, view).await;
    state.metrics.calls_pushed.inc();
}

/// A live V2 lookup that outlasted the push budget; it still yields the matches later.
type PendingLookup = tokio::task::JoinHandle<Vec<IndexedRecord>>;

/// A leg seen for the first time: normalize both numbers, match the remote party.
async fn new_leg(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    event: &TelephonyEvent,
    received_at_ms: u64,
) -> (CallView, Option<PendingLookup>) {
    let from = normalize(&event.from, &tenant.region);
    let to = normalize(&event.to, &tenant.region);
    let remote = match event.direction {
        Direction::Inbound => &from,
        Direction::Outbound => &to,
    };
    let raw_remote = match event.direction {
        Direction::Inbound => &event.from,
        Direction::Outbound => &event.to,
    };
    let (records, pending) = match remote {
        Ok(n) => {
            let (records, pending) = lookup_caller(state, tenant, &n.e164).await;
            (
                ranked(state, tenant, &event.agent, &n.e164, records).await,
                pending,
            )
        }
        Err(_) => (Vec::new(), None),
    };
    let matches: Vec<Match> = records.into_iter().map(to_match).collect();
    let e164_or_raw = |n: &Result<crate::numbers::Normalized, _>, raw: &str| {
        n.as_ref()
            .map_or_else(|_| raw.trim().to_string(), |n| n.e164.clone())
    };
    let view = CallView {
        id: event.call_id.clone(),
        direction: event.direction,
        state: CallState::Ringing,
        from: e164_or_raw(&from, &event.from),
        to: e164_or_raw(&to, &event.to),
        remote_display: remote.as_ref().map_or_else(
            |_| raw_remote.trim().to_string(),
            |n| n.international.clone(),
        ),
        remote_extension: remote.as_ref().ok().and_then(|n| n.extension.clone()),
        agent: event.agent.clone(),
        pop: matches.first().cloned(),
        matches,
        started_at: event.at.clone(),
        answered_at: None,
        ended_at: None,
        end_reason: None,
        received_at_ms,
        recording_url: None,
        handover: None,
        consult: None,
        wrap_up: cti_protocol::ws::WrapUp {
            consent: Some(tenant.consent.decide(
                &tenant.config.default_region,
                remote.as_ref().ok().and_then(|n| n.region.as_deref()),
            )),
            ..Default::default()
        },
        returns: 0,
    };
    (view, pending)
}

/// A consulted rep's leg changed: the rep who consults (whose leg is still live) sees how far the
/// colleague got, to complete the transfer or cancel.
async fn show_consultation(
    state: &AppState,
    tenant: &str,
    leg: &CallView,
) -> Result<(), calls::StoreError> {
    let Some(from) = leg.handover.as_ref().map(|h| h.from.as_str()) else {
        return Ok(());
    };
    let Some(mut consulting) = state.calls.get(tenant, &leg.id, from).await? else {
        return Ok(());
    };
    if consulting.state.is_final() {
        return Ok(());
    }
    let consult = (!leg.state.is_final()).then(|| cti_protocol::ws::ConsultView {
        agent: leg.agent.clone(),
        state: leg.state,
    });
    if consulting.consult != consult {
        consulting.consult = consult;
        state.calls.put(tenant, &consulting).await?;
        publish(state, tenant, consulting).await;
    }
    Ok(())
}

/// The colleague a returning call comes from: the one who had it most recently (ended last, or
/// still has it while consulting back).
fn came_from<'a>(legs: &'a [CallView], agent: &str) -> Option<&'a CallView> {
    legs.iter().filter(|l| l.agent != agent).max_by_key(|l| {
        (
            !l.state.is_final(),
            l.ended_at.as_deref().and_then(crate::clock::instant),
        )
    })
}

/// What a rep hands over with the call: who they are and their notes so far.
fn handover_from(previous: &CallView) -> cti_protocol::ws::Handover {
    cti_protocol::ws::Handover {
        from: previous.agent.clone(),
        notes: previous.wrap_up.notes.clone(),
    }
}

/// A leg for a rep the call was transferred to: the caller's context (matches, the chosen record
/// with its details, the previous rep's notes) comes with it, without matching again.
fn handed_over(previous: &CallView, event: &TelephonyEvent, received_at_ms: u64) -> CallView {
    CallView {
        agent: event.agent.clone(),
        state: CallState::Ringing,
        started_at: event.at.clone(),
        answered_at: None,
        ended_at: None,
        end_reason: None,
        received_at_ms,
        recording_url: None,
        consult: None,
        handover: Some(handover_from(previous)),
        // A caller's consent to recording holds for the whole call.
        wrap_up: cti_protocol::ws::WrapUp {
            consent: previous.wrap_up.consent.clone(),
            ..Default::default()
        },
        ..previous.clone()
    }
}

/// The index first; on a miss, a cached V2 answer; else V2 itself, waited for at most the
/// configured budget. Returns the matches, or the lookup still running past the budget.
async fn lookup_caller(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    e164: &str,
) -> (Vec<IndexedRecord>, Option<PendingLookup>) {
    let tid = tenant.config.id.as_str();
    match state.index.lookup(tid, e164).await {
        Ok(records) if !records.is_empty() => return (records, None),
        Ok(_) => {}
        Err(err) => tracing::warn!(%err, "number index lookup failed; asking V2"),
    }
    if let Some(records) = state.misses.get(tid, e164, state.clock.now_ms()) {
        return (records, None);
    }
    let (state2, tenant2, number) = (state.clone(), tenant.clone(), e164.to_string());
    let mut lookup = tokio::spawn(async move {
        match live::query(&tenant2.v2, &number).await {
            Ok(records) => {
                let ttl = if records.is_empty() {
                    state2.config.negative_ttl
                } else {
                    state2.config.index_refresh
                };
                let expires = state2.clock.now_ms() + ttl.as_millis() as u64;
                state2
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
async fn ranked(
    state: &AppState,
    tenant: &Tenant,
    agent: &str,
    e164: &str,
    mut records: Vec<IndexedRecord>,
) -> Vec<IndexedRecord> {
    if records.len() < 2 {
        return records;
    }
    let remembered = match state.choices.get(&tenant.config.id, agent, e164).await {
        Ok(choice) => choice,
        Err(err) => {
            tracing::warn!(%err, "remembered choices unavailable; ranking without them");
            None
        }
    };
    let employee = tenant.employee_id(agent);
    let ctx = RankContext {
        rep_employee_id: employee.as_deref(),
        remembered: remembered.as_deref(),
    };
    rank(&mut records, &tenant.rules, &ctx);
    records
}

/// Completes a leg that went out as unknown when V2's answer arrives after the budget.
async fn late_match(
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
        .map(|v| v.remote().to_string())
        .unwrap_or_default();
    let records = ranked(state, tenant, agent, &remote, records).await;
    let account = {
        let _serial = state.stripe(tid, call_id).lock().await;
        let Ok(Some(mut view)) = state.calls.get(tid, call_id, agent).await else {
            return;
        };
        if !view.matches.is_empty() || view.state.is_final() {
            return;
        }
        view.matches = records.into_iter().map(to_match).collect();
        view.pop = view.matches.first().cloned();
        let account = view.pop.as_ref().and_then(|m| m.account.clone());
        if state.calls.put(tid, &view).await.is_err() {
            return;
        }
        publish(state, tid, view).await;
        account
    };
    if let Some(account) = account {
        enrich(state, tenant, call_id, agent, &account.id).await;
    }
}

fn to_match(record: IndexedRecord) -> Match {
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

/// Reads the pop match's open opportunities and last interactions from V2 and republishes the
/// call with them. Best effort: the card without them is still right.
pub(crate) async fn enrich(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    call_id: &str,
    agent: &str,
    account_id: &str,
) {
    let opportunity_query = [
        ("$filter", records::open_opportunities_filter(account_id)),
        ("$top", "5".to_string()),
    ];
    let (filter, orderby) = records::interactions_query(account_id);
    let interaction_query = [
        ("$filter", filter),
        ("$orderby", orderby),
        ("$top", "3".into()),
    ];
    let opportunities = tenant
        .v2
        .list(Collection::Opportunities, &opportunity_query);
    let interactions = tenant.v2.list(Collection::PhoneCalls, &interaction_query);
    let (opportunities, interactions) = tokio::join!(opportunities, interactions);
    let opportunities: Vec<_> = match opportunities {
        Ok(items) => items.iter().filter_map(records::opportunity).collect(),
        Err(err) => {
            tracing::warn!(%err, "open opportunities unavailable for the caller card");
            Vec::new()
        }
    };
    let interactions: Vec<_> = match interactions {
        Ok(items) => items.iter().filter_map(records::interaction).collect(),
        Err(err) => {
            tracing::warn!(%err, "last interactions unavailable for the caller card");
            Vec::new()
        }
    };
    if opportunities.is_empty() && interactions.is_empty() {
        return;
    }
    let tid = tenant.config.id.as_str();
    let _serial = state.stripe(tid, call_id).lock().await;
    let Ok(Some(mut view)) = state.calls.get(tid, call_id, agent).await else {
        return;
    };
    for m in view.matches.iter_mut().chain(view.pop.iter_mut()) {
        if m.account.as_ref().is_some_and(|a| a.id == account_id) {
            m.open_opportunities = opportunities.clone();
            m.last_interactions = interactions.clone();
        }
    }
    if state.calls.put(tid, &view).await.is_ok() {
        publish(state, tid, view).await;
    }
}
