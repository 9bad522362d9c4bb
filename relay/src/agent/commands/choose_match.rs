//! `choose_match`: the rep says the caller is another of the call's matches. It becomes the
//! call's record (first in the list, in the card, in `Custom_1` of later host payloads), and is
//! remembered for this rep and number so the next call from it starts there.

use std::sync::Arc;

use super::own_leg;
use crate::agent::AgentError;
use crate::secret::mask_number;
use crate::state::{AppState, Tenant};

pub(super) async fn apply(
    app: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    rep: &str,
    call_id: &str,
    record_id: &str,
) -> Result<(), AgentError> {
    let tid = tenant.config.id.as_str();
    let account = {
        let _serial = app.stripe(tid, call_id).lock().await;
        let mut view = own_leg(app, tenant, call_id, rep).await?;
        let position = view
            .matches
            .iter()
            .position(|m| m.id == record_id)
            .ok_or_else(|| AgentError::NotAMatch(record_id.to_string()))?;
        let chosen = view.matches.remove(position);
        view.matches.insert(0, chosen.clone());
        let needs_details =
            chosen.open_opportunities.is_empty() && chosen.last_interactions.is_empty();
        let account = chosen.account.clone().filter(|_| needs_details);
        view.pop = Some(chosen);
        app.calls
            .put(tid, &view)
            .await
            .map_err(AgentError::unavailable)?;
        app.choices
            .put(tid, rep, view.remote(), record_id)
            .await
            .map_err(AgentError::unavailable)?;
        tracing::info!(call = %call_id, caller = %mask_number(view.remote()), "rep chose another match");
        crate::pipeline::publish(app, tid, view).await;
        account
    };
    if let Some(account) = account {
        crate::pipeline::enrich(app, tenant, call_id, rep, &account.id).await;
    }
    Ok(())
}
