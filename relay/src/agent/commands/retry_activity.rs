//! `retry_activity`: the rep asks for another attempt at a call's activity after V2 refused it.

use super::own_leg;
use crate::agent::AgentError;
use crate::pipeline::legs;
use crate::state::{AppState, Tenant};

pub(super) async fn apply(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    call_id: &str,
) -> Result<(), AgentError> {
    let tid = tenant.config.id.as_str();
    own_leg(app, tenant, call_id, rep).await?;
    if !app
        .activity
        .outbox
        .retry(tid, call_id, app.clock.now_ms())
        .await
        .map_err(AgentError::unavailable)?
    {
        return Err(AgentError::UnknownCall(call_id.to_string()));
    }
    app.activity.wake();
    // Every rep who had the call sees it pending again.
    let others = app
        .calls
        .legs(tid, call_id)
        .await
        .map_err(AgentError::unavailable)?;
    for leg in others {
        legs::update(app, tenant, call_id, &leg.agent, |_| {
            Ok::<_, AgentError>(true)
        })
        .await?;
    }
    Ok(())
}
