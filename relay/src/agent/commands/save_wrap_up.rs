//! `save_wrap_up`: the rep's notes and disposition on their leg, during or after the call.
//!
//! Saved on the leg (so every tab of the rep, and a rep the call is transferred to, sees them)
//! and, once the call is over, queued as a newer log for the call's activity, which the writer
//! turns into a PATCH of the activity already in V2.

use std::sync::Arc;

use super::own_leg;
use crate::agent::AgentError;
use crate::state::{AppState, Tenant};

/// Notes longer than this are refused rather than cut (a rep would lose the end silently).
pub const MAX_NOTES_CHARS: usize = 20_000;

pub(super) async fn apply(
    app: &Arc<AppState>,
    tenant: &Arc<Tenant>,
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
    let tid = tenant.config.id.as_str();
    let _serial = app.stripe(tid, call_id).lock().await;
    let mut leg = own_leg(app, tenant, call_id, rep).await?;
    if leg.wrap_up.notes == notes && leg.wrap_up.disposition == disposition {
        // A resend after a reconnect: publish anyway, so the widget learns it is saved.
        app.hub.publish(tid, leg).await;
        return Ok(());
    }
    leg.wrap_up.notes = notes;
    leg.wrap_up.disposition = disposition;
    if leg.state.is_final()
        && let Some(status) = crate::activity::queue_if_finished(app, tid, &leg)
            .await
            .map_err(AgentError::unavailable)?
    {
        leg.wrap_up.activity = Some(status);
    }
    app.calls
        .put(tid, &leg)
        .await
        .map_err(AgentError::unavailable)?;
    tracing::info!(call = %call_id, "wrap-up saved");
    let notes = leg.wrap_up.notes.clone();
    app.hub.publish(tid, leg).await;
    // The rep the call went to reads these notes in their handover.
    let later = app
        .calls
        .legs(tid, call_id)
        .await
        .map_err(AgentError::unavailable)?;
    for mut other in later {
        if let Some(handover) = other.handover.as_mut()
            && handover.from == rep
            && handover.notes != notes
        {
            handover.notes = notes.clone();
            app.calls
                .put(tid, &other)
                .await
                .map_err(AgentError::unavailable)?;
            app.hub.publish(tid, other).await;
        }
    }
    Ok(())
}
