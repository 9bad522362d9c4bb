//! `choose_match`: the rep says the caller is another of the call's matches. It becomes the
//! call's record (first in the list, in the card, in `Custom_1` of later host payloads), and is
//! remembered for this rep and number so the next call from it starts there.
//!
//! [`make_call_record`] is that one path, also for a record the rep picked by search or just
//! created: the leg changes through `legs::update`, which re-queues the call's activity when the
//! call is over, so the activity (one per call) is filed under the new record exactly once.

use cti_protocol::ws::Match;

use crate::agent::AgentError;
use crate::pipeline::{enrich, legs};
use crate::secret::mask_number;
use crate::state::{AppState, Tenant};

pub(super) async fn apply(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    call_id: &str,
    record_id: &str,
) -> Result<(), AgentError> {
    make_call_record(app, tenant, rep, call_id, record_id, None).await
}

/// Makes `record_id` the call's record: one of its matches, else `found` (a record read from V2
/// that the matches did not have, added to them).
pub(super) async fn make_call_record(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    call_id: &str,
    record_id: &str,
    found: Option<Match>,
) -> Result<(), AgentError> {
    let tid = tenant.config.id.as_str();
    let mut needs_details = false;
    let leg = legs::update(app, tenant, call_id, rep, |leg| {
        let chosen = match leg.matches.iter().position(|m| m.id == record_id) {
            Some(position) => leg.matches.remove(position),
            None => found
                .clone()
                .ok_or_else(|| AgentError::NotAMatch(record_id.to_string()))?,
        };
        needs_details = chosen.open_opportunities.is_empty() && chosen.last_interactions.is_empty();
        leg.matches.insert(0, chosen.clone());
        leg.pop = Some(chosen);
        Ok::<_, AgentError>(true)
    })
    .await?;
    app.numbers
        .choices
        .put(tid, rep, leg.remote(), record_id)
        .await
        .map_err(AgentError::unavailable)?;
    tracing::info!(call = %call_id, caller = %mask_number(leg.remote()), "the call has another record");
    if let Some(account) = leg.pop.and_then(|m| m.account).filter(|_| needs_details) {
        enrich::enrich(app, tenant, call_id, rep, &account.id).await;
    }
    Ok(())
}
