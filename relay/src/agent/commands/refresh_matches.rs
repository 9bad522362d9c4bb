//! `refresh_matches`: the rep created the caller's record in V2 itself (or a colleague did) while
//! the card still says "unknown caller". The number is looked up again in the index (which V2's
//! change events keep current) and in V2 itself, past the cache of numbers V2 did not know; what
//! is found joins the call's matches, and a call without a record gets the best one as its record
//! through the same path as `choose_match`.

use crate::agent::AgentError;
use crate::numbers::live;
use crate::pipeline::legs;
use crate::pipeline::matching::to_match;
use crate::secret::mask_number;
use crate::state::{AppState, Tenant};

pub(super) async fn apply(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    call_id: &str,
) -> Result<(), AgentError> {
    let tid = tenant.config.id.as_str();
    let leg = super::own_leg(app, tenant, call_id, rep).await?;
    let number = leg.remote().to_string();
    let mut found = match app.numbers.index.lookup(tid, &number).await {
        Ok(records) => records,
        Err(err) => {
            tracing::warn!(%err, "number index lookup failed; asking V2 only");
            Vec::new()
        }
    };
    let now = app.clock.now_ms();
    let live = live::query(&tenant.v2, &app.numbers.misses, tid, &number, now)
        .await
        .map_err(AgentError::unavailable)?;
    // What V2 said now replaces a remembered "nobody" for the number.
    let expires = now + app.config.index_refresh.as_millis() as u64;
    app.numbers.misses.put(tid, &number, live.clone(), expires);
    for record in live {
        if !found.iter().any(|f| f.id == record.id) {
            found.push(record);
        }
    }
    let found: Vec<_> = found.into_iter().map(to_match).collect();
    let leg = legs::update(app, tenant, call_id, rep, |leg| {
        let before = leg.matches.len();
        for record in &found {
            if !leg.matches.iter().any(|m| m.id == record.id) {
                leg.matches.push(record.clone());
            }
        }
        Ok::<_, AgentError>(leg.matches.len() != before)
    })
    .await?;
    tracing::info!(call = %call_id, caller = %mask_number(&number), matches = leg.matches.len(), "matches refreshed");
    match (&leg.pop, leg.matches.first()) {
        (None, Some(first)) => {
            let id = first.id.clone();
            super::choose_match::make_call_record(app, tenant, rep, call_id, &id, None).await
        }
        _ => Ok(()),
    }
}
