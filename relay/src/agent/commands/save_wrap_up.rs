//! `save_wrap_up`: the rep's notes and disposition on their leg, during or after the call.
//!
//! Saved on the leg (so every tab of the rep, and a rep the call is transferred to, sees them)
//! and, once the call is over, queued as a newer log for the call's activity, which the writer
//! turns into a PATCH of the activity already in V2.

use crate::agent::AgentError;
use crate::pipeline::legs;
use crate::state::{AppState, Tenant};

/// Notes longer than this are refused rather than cut (a rep would lose the end silently).
pub const MAX_NOTES_CHARS: usize = 20_000;

pub(super) async fn apply(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    call_id: &str,
    notes: String,
    disposition: Option<String>,
) -> Result<(), AgentError> {
    let length = notes.chars().count();
    if length > MAX_NOTES_CHARS {
        return Err(AgentError::NotesTooLong(length));
    }
    let disposition = disposition.filter(|d| !d.trim().is_empty());
    if let Some(d) = &disposition
        && !tenant.config.dispositions.contains(d)
    {
        return Err(AgentError::UnknownDisposition(d.clone()));
    }
    // A resend after a reconnect changes nothing but is published anyway, so the widget learns
    // it is saved.
    legs::update(app, tenant, call_id, rep, |leg| {
        leg.wrap_up.notes = notes.clone();
        leg.wrap_up.disposition = disposition.clone();
        Ok::<_, AgentError>(true)
    })
    .await?;
    tracing::info!(call = %call_id, "wrap-up saved");
    // The rep the call went to reads these notes in their handover.
    let later = app
        .calls
        .legs(&tenant.config.id, call_id)
        .await
        .map_err(AgentError::unavailable)?;
    for other in later.iter().filter(|l| l.agent != rep) {
        legs::update(app, tenant, call_id, &other.agent, |other| {
            let Some(handover) = other.handover.as_mut() else {
                return Ok::<_, AgentError>(false);
            };
            let stale = handover.from == rep && handover.notes != notes;
            if stale {
                handover.notes = notes.clone();
            }
            Ok(stale)
        })
        .await?;
    }
    Ok(())
}
