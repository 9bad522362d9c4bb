//! `command`: answer, hold, resume, hang up, transfer, consult — forwarded to the call's provider,
//! whose events then confirm the new state.

use cti_protocol::ws::{CallCommand, Control};

use super::own_leg;
use crate::agent::AgentError;
use crate::state::{AppState, Tenant};

pub(super) async fn apply(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    call_id: &str,
    command: &CallCommand,
) -> Result<(), AgentError> {
    let control = Control::of(command);
    if !tenant.adapter.controls().contains(&control) {
        return Err(AgentError::NotOffered {
            provider: tenant.adapter.provider(),
            control,
        });
    }
    let call = own_leg(app, tenant, call_id, rep).await?;
    // A rep who handed the call on, or whose call ended, has no say over it any more: a phone
    // system that acts on a call id alone must not hear from them.
    if call.state.is_final() {
        return Err(AgentError::CallOver(call_id.to_string()));
    }
    match tenant.adapter.command(&call, command).await {
        Ok(()) => {
            app.metrics.command(command.name(), "ok");
            Ok(())
        }
        Err(err) => {
            app.metrics.command(command.name(), "failed");
            tracing::warn!(%err, call = %call_id, "call control failed");
            Err(AgentError::CommandFailed(err))
        }
    }
}
