//! The rep's after-call work: notes and a disposition on their leg of a call, during or after it.
//!
//! Saved on the leg (so every tab of the rep, and a rep the call is transferred to, sees them)
//! and, once the call is over, queued as a newer log for the call's activity, which the writer
//! turns into a PATCH of the activity already in V2.

use std::sync::Arc;

use cti_protocol::ws::{ActivityState, ActivityStatus};

use crate::state::{AppState, Tenant};

/// Notes longer than this are refused rather than cut (a rep would lose the end silently).
pub const MAX_NOTES_CHARS: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum WrapUpError {
    #[error("no call {0:?} for this rep")]
    UnknownCall(String),
    #[error("notes are limited to {MAX_NOTES_CHARS} characters; these have {0}")]
    NotesTooLong(usize),
    #[error("{0:?} is not one of this tenant's dispositions")]
    UnknownDisposition(String),
    #[error("this call's recording needs no consent")]
    NoConsentNeeded,
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

impl WrapUpError {
    pub fn code(&self) -> &'static str {
        match self {
            WrapUpError::UnknownCall(_) => "unknown_call",
            WrapUpError::NotesTooLong(_) => "notes_too_long",
            WrapUpError::UnknownDisposition(_) => "unknown_disposition",
            WrapUpError::NoConsentNeeded => "no_consent_needed",
            WrapUpError::Unavailable(_) => "unavailable",
        }
    }
}

fn unavailable(err: impl std::fmt::Display) -> WrapUpError {
    WrapUpError::Unavailable(err.to_string())
}

/// The rep's leg of the call: a rep acts only on calls they had.
async fn own_leg(
    state: &AppState,
    tenant: &str,
    call_id: &str,
    agent: &str,
) -> Result<cti_protocol::ws::CallView, WrapUpError> {
    state
        .calls
        .get(tenant, call_id, agent)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| WrapUpError::UnknownCall(call_id.to_string()))
}

/// Saves the rep's notes and disposition for a call and publishes the leg.
pub async fn save(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    agent: &str,
    call_id: &str,
    notes: String,
    disposition: Option<String>,
) -> Result<(), WrapUpError> {
    let length = notes.chars().count();
    if length > MAX_NOTES_CHARS {
        return Err(WrapUpError::NotesTooLong(length));
    }
    let disposition = disposition.filter(|d| !d.trim().is_empty());
    if let Some(d) = &disposition
        && !tenant.config.dispositions.contains(d)
    {
        return Err(WrapUpError::UnknownDisposition(d.clone()));
    }
    let tid = tenant.config.id.as_str();
    let _serial = state.stripe(tid, call_id).lock().await;
    let mut leg = own_leg(state, tid, call_id, agent).await?;
    if leg.wrap_up.notes == notes && leg.wrap_up.disposition == disposition {
        // A resend after a reconnect: publish anyway, so the widget learns it is saved.
        state.hub.publish(tid, leg).await;
        return Ok(());
    }
    leg.wrap_up.notes = notes;
    leg.wrap_up.disposition = disposition;
    if leg.state.is_final()
        && let Some(status) = super::queue_if_finished(state, tid, &leg)
            .await
            .map_err(unavailable)?
    {
        leg.wrap_up.activity = Some(status);
    }
    state.calls.put(tid, &leg).await.map_err(unavailable)?;
    tracing::info!(call = %call_id, "wrap-up saved");
    let notes = leg.wrap_up.notes.clone();
    state.hub.publish(tid, leg).await;
    // The rep the call went to reads these notes in their handover.
    let later = state.calls.legs(tid, call_id).await.map_err(unavailable)?;
    for mut other in later {
        if let Some(handover) = other.handover.as_mut()
            && handover.from == agent
            && handover.notes != notes
        {
            handover.notes = notes.clone();
            state.calls.put(tid, &other).await.map_err(unavailable)?;
            state.hub.publish(tid, other).await;
        }
    }
    Ok(())
}

/// The rep confirms the caller agreed to the recording: stamped with who and when, and the
/// recording link may now reach the activity.
pub async fn confirm_consent(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    agent: &str,
    call_id: &str,
) -> Result<(), WrapUpError> {
    let tid = tenant.config.id.as_str();
    let _serial = state.stripe(tid, call_id).lock().await;
    let mut leg = own_leg(state, tid, call_id, agent).await?;
    let Some(consent) = leg.wrap_up.consent.as_mut() else {
        return Err(WrapUpError::NoConsentNeeded);
    };
    if consent.confirmed_by.is_none() {
        consent.confirmed_by = Some(agent.to_string());
        consent.confirmed_at = Some(rfc3339(state.clock.now_ms()));
        tracing::info!(call = %call_id, jurisdiction = %consent.jurisdiction, "recording consent confirmed");
    }
    if leg.state.is_final()
        && let Some(status) = super::queue_if_finished(state, tid, &leg)
            .await
            .map_err(unavailable)?
    {
        leg.wrap_up.activity = Some(status);
    }
    state.calls.put(tid, &leg).await.map_err(unavailable)?;
    state.hub.publish(tid, leg).await;
    Ok(())
}

fn rfc3339(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The rep asks for another attempt at a call's activity (after V2 refused it).
pub async fn retry(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    agent: &str,
    call_id: &str,
) -> Result<(), WrapUpError> {
    let tid = tenant.config.id.as_str();
    let leg = own_leg(state, tid, call_id, agent).await?;
    if !state
        .outbox
        .retry(tid, call_id, state.clock.now_ms())
        .await
        .map_err(unavailable)?
    {
        return Err(WrapUpError::UnknownCall(call_id.to_string()));
    }
    state.activity_wake.notify_one();
    let mut status = leg.wrap_up.activity.unwrap_or(ActivityStatus {
        state: ActivityState::Pending,
        v2_id: None,
        display_id: None,
        link: None,
        reason: None,
    });
    status.state = ActivityState::Pending;
    super::report(state, tenant, call_id, status).await;
    Ok(())
}
