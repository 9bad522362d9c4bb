//! One provider event applied to its call leg: idempotent by event id, tolerant of disorder,
//! matched on first sight, queued as an activity when it finishes the call, then published.

use std::sync::Arc;

use cti_protocol::event::{Direction, EventType, TelephonyEvent};
use cti_protocol::ws::{CallState, Match};

use super::legs::LegError;
use super::matching::{self, PendingLookup};
use super::{enrich, legs};
use crate::activity::QueueError;
use crate::calls::{self, AfterCall, Leg, Transition};
use crate::numbers::normalize;
use crate::secret::mask_number;
use crate::state::{AppState, Tenant};

/// Why an event could not be applied; the provider should deliver it again later.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("call store unavailable: {0}")]
    Calls(#[from] calls::StoreError),
    #[error("activity outbox unavailable: {0}")]
    Queue(#[from] QueueError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (or acknowledged as stale) for the first time.
    Accepted,
    /// This event id was applied before.
    Duplicate,
}

/// What applying an event to the stored leg came to.
enum Applied {
    Duplicate,
    /// The event changed nothing (it is older than what the leg knows).
    Stale,
    Saved {
        view: Box<Leg>,
        is_new: bool,
        pending: Option<PendingLookup>,
    },
}

pub async fn ingest(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    event: TelephonyEvent,
    received_at_ms: u64,
    received: std::time::Instant,
) -> Result<Outcome, IngestError> {
    let tid = tenant.config.id.as_str();
    let _serial = state.stripe(tid, &event.call_id).lock().await;
    // Another instance may save the leg between this one's read and save (the stripe serialises
    // only this process): the store refuses the save then, and the event is applied again to the
    // leg as it now is. An activity queued from the stale copy is queued again from the newer.
    let mut queued_stale = false;
    let mut attempt = 1;
    let (view, is_new, pending) = loop {
        match apply_once(state, tenant, &event, received_at_ms, queued_stale).await {
            Ok(Applied::Duplicate) => return Ok(Outcome::Duplicate),
            Ok(Applied::Stale) => return Ok(Outcome::Accepted),
            Ok(Applied::Saved {
                view,
                is_new,
                pending,
            }) => break (*view, is_new, pending),
            Err((err @ IngestError::Calls(calls::StoreError::Conflict { .. }), queued))
                if attempt < legs::SAVE_ATTEMPTS =>
            {
                tracing::debug!(%err, call = %event.call_id, event = %event.id, attempt,
                    "leg saved elsewhere meanwhile; applying the event again");
                queued_stale |= queued;
                attempt += 1;
            }
            Err((err, _)) => return Err(err),
        }
    };
    legs::publish(state, tenant, &view, Some(received)).await;
    show_consultation(state, tenant, &view).await?;
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
            matching::late_match(&state, &tenant, &call_id, &agent, pending).await;
        });
    } else if is_new
        && view.state == CallState::Ringing
        && let Some(account) = view.pop.as_ref().and_then(|m| m.account.clone())
    {
        let (state, tenant) = (state.clone(), tenant.clone());
        tokio::spawn(async move {
            enrich::enrich(&state, &tenant, &view.id, &view.agent, &account.id).await;
        });
    }
    Ok(Outcome::Accepted)
}

/// Reads the leg, applies the event, queues the activity of a call it finishes, saves. On an
/// error, also says whether an activity was queued from this (possibly stale) copy.
async fn apply_once(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    event: &TelephonyEvent,
    received_at_ms: u64,
    queued_stale: bool,
) -> Result<Applied, (IngestError, bool)> {
    let tid = tenant.config.id.as_str();
    let fail = |err: IngestError| (err, false);
    if state
        .calls
        .seen(tid, &event.id)
        .await
        .map_err(|e| fail(e.into()))?
    {
        if queued_stale {
            // Applied elsewhere meanwhile: the activity is queued again from the stored leg.
            let stored = state
                .calls
                .get(tid, &event.call_id, &event.agent)
                .await
                .map_err(|e| fail(e.into()))?;
            if let Some(leg) = stored.filter(|l| l.state.is_final()) {
                queue(state, tid, &leg).await.map_err(fail)?;
            }
        }
        return Ok(Applied::Duplicate);
    }
    let existing = state
        .calls
        .get(tid, &event.call_id, &event.agent)
        .await
        .map_err(|e| fail(e.into()))?;
    let is_new = existing.is_none();
    let (leg, pending) = match existing {
        Some(leg) => (leg, None),
        None => {
            let earlier = state
                .calls
                .legs(tid, &event.call_id)
                .await
                .map_err(|e| fail(e.into()))?;
            match earlier.last() {
                Some(previous) => (handed_over(previous, event, received_at_ms), None),
                None => {
                    let (mut leg, pending) = new_leg(state, tenant, event, received_at_ms).await;
                    // A call's first event here that is not its first at all, while the store
                    // may be missing the call's legs: what it knew before is unknown.
                    let mid_call = event.event_type != EventType::Ringing;
                    leg.without_history = mid_call && state.calls.partial();
                    leg.from_mid_call = mid_call;
                    (leg, pending)
                }
            }
        }
    };
    let was_final = leg.state.is_final();
    let mut view = match calls::apply(leg.clone(), event) {
        Transition::Changed(view) => *view,
        Transition::Unchanged if is_new => leg,
        Transition::Unchanged => {
            if queued_stale && leg.state.is_final() {
                queue(state, tid, &leg).await.map_err(fail)?;
            }
            state
                .calls
                .mark_seen(tid, &event.id)
                .await
                .map_err(|e| fail(e.into()))?;
            tracing::debug!(call = %event.call_id, event = %event.id, "stale event acknowledged");
            return Ok(Applied::Stale);
        }
    };
    if was_final && !view.state.is_final() {
        // The call came back to this rep: what the colleague it comes from knows comes along.
        let legs = state
            .calls
            .legs(tid, &event.call_id)
            .await
            .map_err(|e| fail(e.into()))?;
        if let Some(from) = came_from(&legs, &view.agent) {
            view.handover = Some(handover_from(from));
        }
    }
    let queued = view.state.is_final();
    if queued {
        // Queued before the leg is saved: a crash in between re-applies the event on redelivery
        // and queues the same call again, which the outbox takes as the same entry.
        queue(state, tid, &view).await.map_err(fail)?;
    }
    match state.calls.save(tid, &view, &event.id).await {
        Ok(rev) => view.rev = rev,
        Err(err) => return Err((err.into(), queued)),
    }
    if view.without_history && !state.calls.partial() {
        // The shared store answered the save after all, over no leg of its own: there was no
        // history to miss, and the activity held back for it is queued now.
        view.without_history = false;
        if view.state.is_final() {
            queue(state, tid, &view).await.map_err(fail)?;
        }
    }
    Ok(Applied::Saved {
        view: Box::new(view),
        is_new,
        pending,
    })
}

/// Queues the call's activity with `leg` as its rep's part.
async fn queue(state: &AppState, tenant: &str, leg: &Leg) -> Result<(), IngestError> {
    state
        .activity
        .queue_if_finished(state.calls.as_ref(), tenant, leg, state.clock.now_ms())
        .await?;
    Ok(())
}

/// A leg seen for the first time: normalize both numbers, match the remote party.
async fn new_leg(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    event: &TelephonyEvent,
    received_at_ms: u64,
) -> (Leg, Option<PendingLookup>) {
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
            let (records, pending) = matching::lookup_caller(state, tenant, &n.e164).await;
            (
                matching::ranked(state, tenant, &event.agent, &n.e164, records).await,
                pending,
            )
        }
        Err(_) => (Vec::new(), None),
    };
    let matches: Vec<Match> = records.into_iter().map(matching::to_match).collect();
    let e164_or_raw = |n: &Result<crate::numbers::Normalized, _>, raw: &str| {
        n.as_ref()
            .map_or_else(|_| raw.trim().to_string(), |n| n.e164.clone())
    };
    let view = Leg {
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
        wrap_up: AfterCall {
            consent: Some(tenant.consent.decide(
                &tenant.config.default_region,
                remote.as_ref().ok().and_then(|n| n.region.as_deref()),
            )),
            ..Default::default()
        },
        returns: 0,
        updated_ms: 0,
        rev: 0,
        without_history: false,
        from_mid_call: false,
    };
    (view, pending)
}

/// A consulted rep's leg changed: the rep who consults (whose leg is still live) sees how far the
/// colleague got, to complete the transfer or cancel. The caller holds the call's stripe.
async fn show_consultation(
    state: &AppState,
    tenant: &Tenant,
    leg: &Leg,
) -> Result<(), IngestError> {
    let Some(from) = leg.handover.as_ref().map(|h| h.from.as_str()) else {
        return Ok(());
    };
    let consult = (!leg.state.is_final()).then(|| cti_protocol::ws::ConsultView {
        agent: leg.agent.clone(),
        state: leg.state,
    });
    let shown = legs::update_held(state, tenant, &leg.id, from, |consulting| {
        if consulting.state.is_final() || consulting.consult == consult {
            return Ok::<_, LegError>(false);
        }
        consulting.consult = consult.clone();
        Ok(true)
    })
    .await;
    match shown {
        Ok(_) | Err(LegError::UnknownCall(_)) => Ok(()),
        Err(LegError::Calls(err)) => Err(err.into()),
        Err(LegError::Queue(err)) => Err(err.into()),
    }
}

/// The colleague a returning call comes from: the one who had it most recently (ended last, or
/// still has it while consulting back).
fn came_from<'a>(legs: &'a [Leg], agent: &str) -> Option<&'a Leg> {
    legs.iter().filter(|l| l.agent != agent).max_by_key(|l| {
        (
            !l.state.is_final(),
            l.ended_at.as_deref().and_then(crate::clock::instant),
        )
    })
}

/// What a rep hands over with the call: who they are and their notes so far.
fn handover_from(previous: &Leg) -> cti_protocol::ws::Handover {
    cti_protocol::ws::Handover {
        from: previous.agent.clone(),
        notes: previous.wrap_up.notes.clone(),
    }
}

/// A leg for a rep the call was transferred to: the caller's context (matches, the chosen record
/// with its details, the previous rep's notes) comes with it, without matching again.
fn handed_over(previous: &Leg, event: &TelephonyEvent, received_at_ms: u64) -> Leg {
    Leg {
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
        wrap_up: AfterCall {
            consent: previous.wrap_up.consent.clone(),
            ..Default::default()
        },
        // A leg of its own: nothing stored for this rep yet.
        rev: 0,
        updated_ms: 0,
        without_history: false,
        ..previous.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::leg::fixtures::ringing;

    #[test]
    fn a_leg_handed_over_is_new_in_the_store() {
        let mut previous = ringing("c", "alice");
        previous.rev = 4;
        previous.updated_ms = 9_000;
        previous.wrap_up.notes = "wants a quote".into();
        let event = TelephonyEvent {
            id: "e-bob".into(),
            call_id: "c".into(),
            event_type: EventType::Ringing,
            direction: previous.direction,
            from: previous.from.clone(),
            to: previous.to.clone(),
            agent: "bob".into(),
            at: "2026-12-02T10:01:00Z".into(),
            transfer_to: None,
            reason: None,
            recording_url: None,
        };
        let leg = handed_over(&previous, &event, 10_000);
        assert_eq!(leg.agent, "bob");
        assert_eq!(leg.rev, 0, "saved as a leg nobody stored yet");
        assert_eq!(leg.updated_ms, 0);
        assert_eq!(
            leg.handover.map(|h| h.notes).as_deref(),
            Some("wants a quote")
        );
    }
}
