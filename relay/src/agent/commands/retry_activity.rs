//! `retry_activity`: the rep asks for another attempt at a call's activity after V2 refused it.

use std::sync::Arc;

use cti_protocol::ws::{ActivityState, ActivityStatus};

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
    let leg = own_leg(app, tenant, call_id, rep).await?;
    if !app
        .outbox
        .retry(tid, call_id, app.clock.now_ms())
        .await
        .map_err(AgentError::unavailable)?
    {
        return Err(AgentError::UnknownCall(call_id.to_string()));
    }
    app.activity_wake.notify_one();
    let mut status = leg.wrap_up.activity.unwrap_or_else(ActivityStatus::pending);
    status.state = ActivityState::Pending;
    crate::activity::report(app, tenant, call_id, status).await;
    Ok(())
}
