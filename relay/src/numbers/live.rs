//! Callers the index does not know yet: ask V2 directly, and remember the answer for a while.
//!
//! The index is rebuilt periodically, so a record created minutes ago is missing from it. A miss
//! queries V2 by the normalised phone fields; the answer is cached (a negative one only briefly,
//! so a number entered in V2 right after an unknown call is found on the next call).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::v2::client::{V2Client, V2Error};
use crate::v2::records::{CALLER_COLLECTIONS, caller_record, phone_filter};

use super::index::IndexedRecord;

/// Asks V2 for every record carrying `e164`, all caller collections at once.
pub async fn query(client: &V2Client, e164: &str) -> Result<Vec<IndexedRecord>, V2Error> {
    let requests = CALLER_COLLECTIONS.map(|(collection, kind)| async move {
        let query = [
            ("$filter", phone_filter(kind, e164)),
            ("$top", "50".to_string()),
        ];
        client.list(collection, &query).await.map(|records| {
            records
                .iter()
                .filter_map(|r| caller_record(kind, r).map(IndexedRecord::from))
                .collect::<Vec<_>>()
        })
    });
    let [a, b, c] = requests;
    let (a, b, c) = tokio::join!(a, b, c);
    let mut found: Vec<IndexedRecord> = a?.into_iter().chain(b?).chain(c?).collect();
    // A record matched by two of its fields comes back once; ranking is the caller's.
    found.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    found.dedup_by(|x, y| x.id == y.id && x.kind == y.kind);
    Ok(found)
}

/// (tenant, E.164) -> (expiry in Unix ms, the records V2 returned).
type Entries = HashMap<(String, String), (u64, Vec<IndexedRecord>)>;

/// Answers of live queries, per tenant and number, until they expire.
#[derive(Debug, Default)]
pub struct MissCache {
    entries: Mutex<Entries>,
}

/// Entries kept at most; beyond it the cache starts over (it only saves V2 requests).
const CAPACITY: usize = 50_000;

impl MissCache {
    pub fn get(&self, tenant: &str, e164: &str, now_ms: u64) -> Option<Vec<IndexedRecord>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&(tenant.to_string(), e164.to_string()))
            .filter(|(expires, _)| *expires > now_ms)
            .map(|(_, records)| records.clone())
    }

    pub fn put(&self, tenant: &str, e164: &str, records: Vec<IndexedRecord>, expires_ms: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            (tenant.to_string(), e164.to_string()),
            (expires_ms, records),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_tenants_are_apart() {
        let cache = MissCache::default();
        cache.put("t1", "+41441234567", Vec::new(), 1_000);
        assert_eq!(cache.get("t1", "+41441234567", 999), Some(Vec::new()));
        assert_eq!(cache.get("t1", "+41441234567", 1_000), None);
        assert_eq!(cache.get("t2", "+41441234567", 0), None);
    }
}
