//! Changing a leg outside of a provider event, and publishing a leg to its rep.
//!
//! Every change to a leg follows the same steps: take the call's stripe (so events and the
//! rep's requests on one call never interleave in this process), load the leg, change it, queue
//! the call's activity if the leg is final, save, publish. `update` is those steps, once.
//!
//! The stripe serialises one process only; another instance may change the same leg meanwhile.
//! The store then refuses the save (the leg's revision moved on, `StoreError::Conflict`) and the
//! steps run again on the leg as it now is, up to [`SAVE_ATTEMPTS`] times: changes are pure
//! functions of the leg, so applying one again to the newer copy loses neither side's work.

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

/// How often a change is applied to a leg another instance saved meanwhile before giving up
/// (the caller's request or the provider's delivery fails then, and is retried by them).
pub(crate) const SAVE_ATTEMPTS: u32 = 5;

/// Loads the rep's leg of the call under the call's stripe and hands it to `change`, which says
/// whether the leg is to be published (it may refuse with its own error, or leave the leg
/// alone). A leg that changed is queued as the call's activity when final and saved first.
/// `change` runs again on the newer leg when another instance saved it in between. Returns the
/// leg as it now is.
pub(crate) async fn update<E: From<LegError>>(
    app: &AppState,
    tenant: &Tenant,
    call_id: &str,
    rep: &str,
    change: impl FnMut(&mut Leg) -> Result<bool, E>,
) -> Result<Leg, E> {
    let _serial = app.stripe(&tenant.config.id, call_id).lock().await;
    update_held(app, tenant, call_id, rep, change).await
}

/// [`update`] for a caller that holds the call's stripe already.
pub(crate) async fn update_held<E: From<LegError>>(
    app: &AppState,
    tenant: &Tenant,
    call_id: &str,
    rep: &str,
    mut change: impl FnMut(&mut Leg) -> Result<bool, E>,
) -> Result<Leg, E> {
    let tid = tenant.config.id.as_str();
    // An activity queued from a copy that turned out stale is queued again from the stored leg.
    let mut queued_stale = false;
    let mut attempt = 1;
    loop {
        let mut leg = app
            .calls
            .get(tid, call_id, rep)
            .await
            .map_err(LegError::from)?
            .ok_or_else(|| LegError::UnknownCall(call_id.to_string()))?;
        let before = leg.clone();
        let keep = change(&mut leg)?;
        if !keep || leg == before {
            if queued_stale && before.state.is_final() {
                queue(app, tid, &before).await?;
            }
            if keep {
                publish(app, tenant, &leg, None).await;
            }
            return Ok(leg);
        }
        if leg.state.is_final() {
            queue(app, tid, &leg).await?;
        }
        match app.calls.put(tid, &leg).await {
            Ok(rev) => {
                leg.rev = rev;
                publish(app, tenant, &leg, None).await;
                return Ok(leg);
            }
            Err(err @ StoreError::Conflict { .. }) if attempt < SAVE_ATTEMPTS => {
                tracing::debug!(%err, call = %call_id, attempt, "leg saved elsewhere meanwhile; changing it again");
                queued_stale |= leg.state.is_final();
                attempt += 1;
            }
            Err(err) => return Err(LegError::from(err).into()),
        }
    }
}

/// Queues the call's activity with `leg` as its rep's part.
async fn queue(app: &AppState, tenant: &str, leg: &Leg) -> Result<(), LegError> {
    app.activity
        .queue_if_finished(app.calls.as_ref(), tenant, leg, app.clock.now_ms())
        .await?;
    Ok(())
}

/// Sends the leg to its rep's widgets as a view, with where the call's activity stands. A leg
/// still ringing for the first time cannot have an activity, so the outbox is not asked then
/// (that is the pop's path, which waits for nothing it need not).
/// `received`: when the telephony event that changed the leg arrived (for the push latency).
pub(crate) async fn publish(
    app: &AppState,
    tenant: &Tenant,
    leg: &Leg,
    received: Option<std::time::Instant>,
) {
    let tid = tenant.config.id.as_str();
    let activity = if leg.state.is_final() || leg.returns > 0 {
        app.activity
            .status(tid, &leg.id, &tenant.config.v2_url)
            .await
    } else {
        None
    };
    app.hub
        .publish_received(tid, leg.view(activity), received)
        .await;
    app.metrics.calls_pushed.inc();
}
