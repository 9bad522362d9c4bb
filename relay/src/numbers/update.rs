//! Incremental index updates: V2 said an entity changed, so re-read it and put its numbers right.
//!
//! Change events are treated as "re-read this entity", never as data: whether V2's images hold
//! the whole record is not documented, and events may arrive late, twice or out of order. Reading
//! the current state makes every event idempotent and order-free. A record V2 no longer has was
//! deleted: its numbers leave the index.

use cti_protocol::ws::RecordKind;

use super::build::{BuildError, account_signals, entry_of};
use super::index::IndexError;
use super::{Numbers, TenantNumbers};
use crate::v2::client::Collection;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Read(#[from] BuildError),
    #[error(transparent)]
    Store(#[from] IndexError),
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    /// The record now sits under this many numbers.
    Indexed { numbers: usize },
    /// V2 no longer has it.
    Removed,
}

/// `<kind>:<id>`, how changed entities are noted for re-application after a rebuild.
pub fn entity_key(kind: RecordKind, id: &str) -> String {
    let kind = match kind {
        RecordKind::Contact => "contact",
        RecordKind::IndividualCustomer => "individual_customer",
        _ => "account",
    };
    format!("{kind}:{id}")
}

pub fn parse_entity_key(key: &str) -> Option<(RecordKind, &str)> {
    let (kind, id) = key.split_once(':')?;
    let kind = super::rank::parse_kind(kind).ok()?;
    (!id.is_empty()).then_some((kind, id))
}

fn collection(kind: RecordKind) -> Collection {
    match kind {
        RecordKind::Contact => Collection::ContactPersons,
        RecordKind::IndividualCustomer => Collection::IndividualCustomers,
        _ => Collection::Accounts,
    }
}

/// Re-reads one entity from V2 and replaces its entries in the tenant's index.
pub async fn apply(
    numbers: &Numbers,
    tenant: &TenantNumbers,
    kind: RecordKind,
    id: &str,
) -> Result<Updated, UpdateError> {
    let tid = tenant.id.as_str();
    tenant.budget.spend().map_err(BuildError::from)?;
    let current = tenant
        .v2
        .get(collection(kind), id)
        .await
        .map_err(BuildError::from)?;
    let Some(current) = current else {
        numbers.index.remove(tid, id).await?;
        return Ok(Updated::Removed);
    };
    let entry = entry_of(kind, &current.record, &tenant.region);
    let Some(mut record) = entry.record else {
        // V2 sent a record without an id: nothing to index under it.
        numbers.index.remove(tid, id).await?;
        return Ok(Updated::Removed);
    };
    if let Some(account) = record.account.as_ref().map(|a| a.id.clone()) {
        let since =
            TenantNumbers::activity_since(numbers.clock.now_ms(), numbers.settings.activity_days);
        let (signals, refused) =
            account_signals(&tenant.v2, &account, since.as_deref(), &tenant.budget).await?;
        numbers.report_signals(tenant, &refused, false);
        signals.apply(&mut record);
    }
    let count = entry.numbers.len();
    numbers.index.upsert(tid, record, entry.numbers).await?;
    Ok(Updated::Indexed { numbers: count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_keys_round_trip() {
        for kind in [
            RecordKind::Account,
            RecordKind::Contact,
            RecordKind::IndividualCustomer,
        ] {
            let key = entity_key(kind, "0197a1ea");
            assert_eq!(parse_entity_key(&key), Some((kind, "0197a1ea")));
        }
        assert_eq!(parse_entity_key("lead:1"), None);
        assert_eq!(parse_entity_key("account:"), None);
    }
}
