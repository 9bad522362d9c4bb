//! `search_records`: the rep types a name to find the caller's record (an unknown caller, or
//! none of the matches is right). V2 is searched with `$search` on the three caller collections
//! at once, read with the tenant's technical user like every other caller lookup (a read on the
//! tenant's behalf; what the rep then does with the record is written on their authority).

use cti_protocol::lookup::{RESULTS_PER_KIND, check_query};
use cti_protocol::ws::{Match, ServerMessage};

use crate::agent::AgentError;
use crate::pipeline::matching::to_match;
use crate::state::Tenant;
use crate::v2::lookup::{collection, search_query};
use crate::v2::records::{CALLER_COLLECTIONS, caller_record};

pub(super) async fn apply(
    tenant: &Tenant,
    request_id: u64,
    query: &str,
) -> Result<ServerMessage, AgentError> {
    let words = check_query(query).map_err(AgentError::InvalidRecord)?;
    let query = search_query(words, RESULTS_PER_KIND);
    let searches = CALLER_COLLECTIONS.map(|(_, kind)| {
        let query = &query;
        async move {
            let found = tenant.v2.list(collection(kind), query).await?;
            Ok::<_, crate::v2::V2Error>(
                found
                    .iter()
                    .filter_map(|record| caller_record(kind, record))
                    .take(RESULTS_PER_KIND)
                    .map(|record| to_match(record.into()))
                    .collect::<Vec<Match>>(),
            )
        }
    });
    let [accounts, contacts, individuals] = searches;
    let (accounts, contacts, individuals) = tokio::join!(accounts, contacts, individuals);
    let mut records = Vec::new();
    for found in [contacts, individuals, accounts] {
        records.extend(found.map_err(AgentError::unavailable)?);
    }
    Ok(ServerMessage::SearchResults {
        request_id,
        records,
    })
}
