//! Changing a leg outside of a provider event, and publishing a leg to its rep.
//!
//! Every change to a leg follows the same steps: take the call's stripe (so events and the
//! rep's requests on one call never interleave), load the leg, change it, queue the call's
//! activity if the leg is final, save, publish. `update` is those steps, once.

use crate::activity::QueueError;
use crate::calls::{Leg, StoreError};
use crate::state::{AppState, Tenant};

/// Why a leg could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum LegError {
    #[error("no call {0:?} for this rep")]
    UnknownCall(String),
    #[error("call store unavailable: {0}")]
    Calls(#[from] StoreError),
    #[error("activity outbox unavailable: {0}")]
    Queue(#[from] QueueError),
}

/// Loads the rep's leg of the call under the call's stripe and hands it to `change`, which says
/// whether the leg is to be published (it may refuse with its own error, or leave the leg
/// alone). A leg that changed is queued as the call's activity when final and saved first.
/// Returns the leg as it now is.
pub(crate) async fn update<E: From<LegError>>(
    app: &AppState,
    tenant: &Tenant,
    call_id: &str,
    rep: &str,
    change: impl FnOnce(&mut Leg) -> Result<bool, E>,
) -> Result<Leg, E> {
    let tid = tenant.config.id.as_str();
    let _serial = app.stripe(tid, call_id).lock().await;
    let mut leg = app
        .calls
        .get(tid, call_id, rep)
        .await
        .map_err(LegError::from)?
        .ok_or_else(|| LegError::UnknownCall(call_id.to_string()))?;
    let before = leg.clone();
    if !change(&mut leg)? {
        return Ok(leg);
    }
    if leg != before {
        if leg.state.is_final() {
            app.activity
                .queue_if_finished(app.calls.as_ref(), tid, &leg, app.clock.now_ms())
                .await
                .map_err(LegError::from)?;
        }
        app.calls.put(tid, &leg).await.map_err(LegError::from)?;
    }
    publish(app, tenant, &leg).await;
    Ok(leg)
}

/// Sends the leg to its rep's widgets as a view, with where the call's activity stands. A leg
/// still ringing for the first time cannot have an activity, so the outbox is not asked then
/// (that is the pop's path, which waits for nothing it need not).
pub(crate) async fn publish(app: &AppState, tenant: &Tenant, leg: &Leg) {
    let tid = tenant.config.id.as_str();
    let activity = if leg.state.is_final() || leg.returns > 0 {
        app.activity
            .status(tid, &leg.id, &tenant.config.v2_url)
            .await
    } else {
        None
    };
    app.hub.publish(tid, leg.view(activity)).await;
    app.metrics.calls_pushed.inc();
}
