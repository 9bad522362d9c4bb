//! `choose_match`: the rep says the caller is another of the call's matches. It becomes the
//! call's record (first in the list, in the card, in `Custom_1` of later host payloads), and is
//! remembered for this rep and number so the next call from it starts there.

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
    let tid = tenant.config.id.as_str();
    let mut needs_details = false;
    let leg = legs::update(app, tenant, call_id, rep, |leg| {
        let position = leg
            .matches
            .iter()
            .position(|m| m.id == record_id)
            .ok_or_else(|| AgentError::NotAMatch(record_id.to_string()))?;
        let chosen = leg.matches.remove(position);
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
    tracing::info!(call = %call_id, caller = %mask_number(leg.remote()), "rep chose another match");
    if let Some(account) = leg.pop.and_then(|m| m.account).filter(|_| needs_details) {
        enrich::enrich(app, tenant, call_id, rep, &account.id).await;
    }
    Ok(())
}
