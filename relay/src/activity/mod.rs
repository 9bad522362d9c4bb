//! Phone-call activities: every finished call ends as exactly one activity in V2.
//!
//! [`log`] derives what a call amounts to from its legs; [`outbox`] keeps it durably until V2
//! has it (memory, or Redis in [`redis_outbox`]); [`writer`] writes it on the tenant's
//! authority. The field names V2 sees live in `v2::phone_call`.

pub mod fallback;
pub mod log;
pub mod outbox;
pub mod redis_outbox;
pub mod writer;

use std::sync::Arc;

use cti_protocol::ws::{ActivityState, ActivityStatus, CallView};

pub use fallback::FallbackOutbox;
pub use outbox::{MemoryOutbox, Outbox, OutboxError};
pub use redis_outbox::RedisOutbox;

use crate::state::{AppState, Tenant};

/// Queues the call's activity if its legs (with `changed` replacing its stored version) say the
/// call is over; a call already queued gets its newer log. Returns the status to show on the
/// legs, or None while the call goes on. Must succeed before the change is acknowledged, so an
/// ended call is never forgotten.
pub async fn queue_if_finished(
    state: &AppState,
    tenant: &str,
    changed: &CallView,
) -> Result<Option<ActivityStatus>, OutboxError> {
    let mut legs = state
        .calls
        .legs(tenant, &changed.id)
        .await
        .map_err(|e| OutboxError::Unavailable(e.to_string()))?;
    match legs.iter_mut().find(|l| l.agent == changed.agent) {
        Some(leg) => *leg = changed.clone(),
        None => {
            legs.push(changed.clone());
            crate::calls::store::sort_legs(&mut legs);
        }
    }
    let Some(log) = log::completed(&legs) else {
        return Ok(None);
    };
    state.outbox.put(tenant, &log, state.clock.now_ms()).await?;
    state.activity_wake.notify_one();
    let status = match changed.wrap_up.activity.clone() {
        // Keep what the rep knows (the link) while the update is on its way.
        Some(mut known) if known.state == ActivityState::Logged => {
            known.state = ActivityState::Pending;
            known
        }
        Some(known) if known.state == ActivityState::Pending => known,
        _ => ActivityStatus::pending(),
    };
    Ok(Some(status))
}

/// Shows `status` on every leg of the call (each rep who had it sees where its activity stands).
pub async fn report(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    call_id: &str,
    status: ActivityStatus,
) {
    let tid = tenant.config.id.as_str();
    let _serial = state.stripe(tid, call_id).lock().await;
    let legs = match state.calls.legs(tid, call_id).await {
        Ok(legs) => legs,
        Err(err) => {
            tracing::warn!(%err, call = %call_id, "cannot show the activity's status");
            return;
        }
    };
    for mut leg in legs {
        if leg.wrap_up.activity.as_ref() == Some(&status) {
            continue;
        }
        leg.wrap_up.activity = Some(status.clone());
        if state.calls.put(tid, &leg).await.is_ok() {
            state.hub.publish(tid, leg).await;
        }
    }
}
