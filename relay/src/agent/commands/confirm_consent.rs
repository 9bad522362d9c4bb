//! `confirm_consent`: the rep confirms the caller agreed to the recording. Stamped with who and
//! when, after which the recording link may reach the activity.

use std::sync::Arc;

use super::own_leg;
use crate::agent::AgentError;
use crate::state::{AppState, Tenant};

pub(super) async fn apply(
    app: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    rep: &str,
    call_id: &str,
) -> Result<(), AgentError> {
    let tid = tenant.config.id.as_str();
    let _serial = app.stripe(tid, call_id).lock().await;
    let mut leg = own_leg(app, tenant, call_id, rep).await?;
    let Some(consent) = leg.wrap_up.consent.as_mut() else {
        return Err(AgentError::NoConsentNeeded);
    };
    if consent.confirmed_by.is_none() {
        consent.confirmed_by = Some(rep.to_string());
        consent.confirmed_at = Some(crate::clock::rfc3339(app.clock.now_ms()));
        tracing::info!(call = %call_id, jurisdiction = %consent.jurisdiction, "recording consent confirmed");
    }
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
    app.hub.publish(tid, leg).await;
    Ok(())
}
