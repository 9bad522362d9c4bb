//! The caller card's details: the pop's open opportunities and last interactions, read from V2
//! after the first push so the pop never waits for them.

use super::legs::{self, LegError};
use crate::state::{AppState, Tenant};
use crate::v2::client::Collection;
use crate::v2::records;

/// Reads the pop match's open opportunities and last interactions from V2 and republishes the
/// call with them. Best effort: the card without them is still right.
pub(crate) async fn enrich(
    state: &AppState,
    tenant: &Tenant,
    call_id: &str,
    agent: &str,
    account_id: &str,
) {
    let opportunity_query = [
        ("$filter", records::open_opportunities_filter(account_id)),
        ("$top", "5".to_string()),
    ];
    let (filter, orderby) = records::interactions_query(account_id);
    let interaction_query = [
        ("$filter", filter),
        ("$orderby", orderby),
        ("$top", "3".into()),
    ];
    let opportunities = tenant
        .v2
        .list(Collection::Opportunities, &opportunity_query);
    let interactions = tenant.v2.list(Collection::PhoneCalls, &interaction_query);
    let (opportunities, interactions) = tokio::join!(opportunities, interactions);
    let opportunities: Vec<_> = match opportunities {
        Ok(items) => items.iter().filter_map(records::opportunity).collect(),
        Err(err) => {
            tracing::warn!(%err, "open opportunities unavailable for the caller card");
            Vec::new()
        }
    };
    let interactions: Vec<_> = match interactions {
        Ok(items) => items.iter().filter_map(records::interaction).collect(),
        Err(err) => {
            tracing::warn!(%err, "last interactions unavailable for the caller card");
            Vec::new()
        }
    };
    if opportunities.is_empty() && interactions.is_empty() {
        return;
    }
    let updated = legs::update(state, tenant, call_id, agent, |leg| {
        for m in leg.matches.iter_mut().chain(leg.pop.iter_mut()) {
            if m.account.as_ref().is_some_and(|a| a.id == account_id) {
                m.open_opportunities = opportunities.clone();
                m.last_interactions = interactions.clone();
            }
        }
        Ok::<_, LegError>(true)
    })
    .await;
    if let Err(err) = updated {
        tracing::debug!(%err, call = %call_id, "caller card details not saved");
    }
}
