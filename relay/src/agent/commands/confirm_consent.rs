//! `confirm_consent`: the rep confirms the caller agreed to the recording. Stamped with who and
//! when, after which the recording link may reach the activity.

use crate::agent::AgentError;
use crate::pipeline::legs;
use crate::state::{AppState, Tenant};

pub(super) async fn apply(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    call_id: &str,
) -> Result<(), AgentError> {
    let now = crate::clock::rfc3339(app.clock.now_ms());
    legs::update(app, tenant, call_id, rep, |leg| {
        let consent = leg
            .wrap_up
            .consent
            .as_mut()
            .ok_or(AgentError::NoConsentNeeded)?;
        if consent.confirmed_by.is_none() {
            consent.confirmed_by = Some(rep.to_string());
            consent.confirmed_at = Some(now.clone());
            tracing::info!(call = %call_id, jurisdiction = %consent.jurisdiction, "recording consent confirmed");
        }
        Ok::<_, AgentError>(true)
    })
    .await?;
    Ok(())
}
