//! Callers the index does not know yet: ask V2 directly, and remember the answer for a while.
//!
//! The index is rebuilt periodically, so a record created minutes ago is missing from it. A miss
//! queries each caller collection on the phone fields its schema has; the answer is cached (a
//! negative one only briefly, so a number entered in V2 right after an unknown call is found on
//! the next call). Collections answer apart: one that refuses the query (its schema differs, the
//! service is not in the communication arrangement) costs only its own matches, and its refusal
//! is remembered, with V2's reason, so an unknown caller does not repeat the refused request on
//! every ring.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::v2::client::{Collection, V2Client, V2Error};
use crate::v2::records::{CALLER_COLLECTIONS, caller_record, phone_filter};

use super::normalize::{DefaultRegion, normalize};
use super::record::IndexedRecord;

/// How long a collection's refusal is believed before the query is tried again (a tenant's
/// administrator may fix the arrangement meanwhile).
const REFUSAL_TTL_MS: u64 = 15 * 60 * 1000;

/// Statuses that mean "this query will not work here", not "try again".
fn is_refusal(err: &V2Error) -> bool {
    matches!(
        err,
        V2Error::Status {
            status: 400 | 403 | 404 | 405 | 415 | 422 | 501,
            ..
        }
    )
}

fn collection_name(collection: Collection) -> &'static str {
    collection.path().rsplit('/').next().unwrap_or_default()
}

/// The spellings a contact's formatted field may hold for `e164`: the bare E.164, the grouped
/// international form, and `+<country code> <national number>` as SAP's samples show it.
fn contact_spellings(e164: &str) -> Vec<String> {
    let mut out = vec![e164.to_string()];
    let region = DefaultRegion::parse("US").ok();
    if let Some(n) = region.and_then(|r| normalize(e164, &r).ok()) {
        if let Some((code, _)) = n.international.split_once(' ') {
            let national = e164.strip_prefix(code).unwrap_or_default();
            out.push(format!("{code} {national}"));
        }
        out.push(n.international);
    }
    out.dedup();
    out
}

/// Asks V2 for every record carrying `e164`, each caller collection apart. A collection that
/// refused before (and not longer ago than it is believed) is not asked. Fails only when no
/// collection answered and at least one failed for a reason other than a refusal (then nothing
/// should be cached as "nobody").
pub async fn query(
    client: &V2Client,
    cache: &MissCache,
    tenant: &str,
    e164: &str,
    now_ms: u64,
) -> Result<Vec<IndexedRecord>, V2Error> {
    let spellings = contact_spellings(e164);
    let requests = CALLER_COLLECTIONS.map(|(collection, kind)| {
        let name = collection_name(collection);
        let skip = cache.refused(tenant, name, now_ms);
        let spellings = &spellings;
        async move {
            if skip {
                return None;
            }
            let query = [
                ("$filter", phone_filter(kind, e164, spellings)),
                ("$top", "50".to_string()),
            ];
            Some(client.list(collection, &query).await.map(|records| {
                records
                    .iter()
                    .filter_map(|r| caller_record(kind, r).map(IndexedRecord::from))
                    .collect::<Vec<_>>()
            }))
        }
    });
    let [a, b, c] = requests;
    let (a, b, c) = tokio::join!(a, b, c);
    let mut found: Vec<IndexedRecord> = Vec::new();
    let mut failure = None;
    for ((collection, kind), answer) in CALLER_COLLECTIONS.iter().zip([a, b, c]) {
        match answer {
            None => {}
            Some(Ok(records)) => found.extend(records),
            Some(Err(err)) if is_refusal(&err) => {
                tracing::warn!(%err, ?kind, "V2 refused the live lookup of a caller collection; not asking it again for a while");
                cache.refuse(
                    tenant,
                    collection_name(*collection),
                    &err.to_string(),
                    now_ms + REFUSAL_TTL_MS,
                );
            }
            Some(Err(err)) => {
                tracing::warn!(%err, ?kind, "live lookup of a caller collection failed");
                failure = Some(err);
            }
        }
    }
    if let (true, Some(err)) = (found.is_empty(), failure) {
        return Err(err);
    }
    // A record matched by two of its fields comes back once; ranking is the caller's.
    found.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    found.dedup_by(|x, y| x.id == y.id && x.kind == y.kind);
    Ok(found)
}

/// A caller collection V2 refused to search, and why, as `/readyz` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub collection: String,
    pub reason: String,
}

/// (tenant, collection) -> (expiry in Unix ms, V2's reason).
type Refusals = HashMap<(String, String), (u64, String)>;

/// (tenant, E.164) -> (expiry in Unix ms, the records V2 returned).
type Entries = HashMap<(String, String), (u64, Vec<IndexedRecord>)>;

/// Answers of live queries, per tenant and number, until they expire.
#[derive(Debug, Default)]
pub struct MissCache {
    entries: Mutex<Entries>,
    refusals: Mutex<Refusals>,
}

/// Entries kept at most; beyond it the cache starts over (it only saves V2 requests).
const CAPACITY: usize = 50_000;

impl MissCache {
    /// Forgets the tenant's cached answers and refusals (it unsubscribed).
    pub fn forget_tenant(&self, tenant: &str) {
        self.entries.lock().retain(|(t, _), _| t != tenant);
        self.refusals.lock().retain(|(t, _), _| t != tenant);
    }

    /// The caller collections V2 currently refuses to search for `tenant`, with its reasons.
    pub fn refusals(&self, tenant: &str, now_ms: u64) -> Vec<Refusal> {
        let refusals = self.refusals.lock();
        let mut out: Vec<Refusal> = refusals
            .iter()
            .filter(|((t, _), (expires, _))| t == tenant && *expires > now_ms)
            .map(|((_, collection), (_, reason))| Refusal {
                collection: collection.clone(),
                reason: reason.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.collection.cmp(&b.collection));
        out
    }

    fn refused(&self, tenant: &str, collection: &str, now_ms: u64) -> bool {
        let refusals = self.refusals.lock();
        refusals
            .get(&(tenant.to_string(), collection.to_string()))
            .is_some_and(|(expires, _)| *expires > now_ms)
    }

    fn refuse(&self, tenant: &str, collection: &str, reason: &str, expires_ms: u64) {
        let mut refusals = self.refusals.lock();
        refusals.insert(
            (tenant.to_string(), collection.to_string()),
            (expires_ms, reason.to_string()),
        );
    }

    pub fn get(&self, tenant: &str, e164: &str, now_ms: u64) -> Option<Vec<IndexedRecord>> {
        let entries = self.entries.lock();
        entries
            .get(&(tenant.to_string(), e164.to_string()))
            .filter(|(expires, _)| *expires > now_ms)
            .map(|(_, records)| records.clone())
    }

    pub fn put(&self, tenant: &str, e164: &str, records: Vec<IndexedRecord>, expires_ms: u64) {
        let mut entries = self.entries.lock();
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
    fn contacts_are_asked_for_every_spelling_of_a_number() {
        assert_eq!(
            contact_spellings("+41441234567"),
            ["+41441234567", "+41 441234567", "+41 44 123 45 67"]
        );
    }

    #[test]
    fn refusals_expire_and_tenants_are_apart() {
        let cache = MissCache::default();
        cache.refuse("t1", "contactPersons", "400", 1_000);
        assert!(cache.refused("t1", "contactPersons", 999));
        assert!(!cache.refused("t1", "contactPersons", 1_000));
        assert!(!cache.refused("t2", "contactPersons", 0));
        assert_eq!(cache.refusals("t1", 0)[0].reason, "400");
    }

    #[test]
    fn entries_expire_and_tenants_are_apart() {
        let cache = MissCache::default();
        cache.put("t1", "+41441234567", Vec::new(), 1_000);
        assert_eq!(cache.get("t1", "+41441234567", 999), Some(Vec::new()));
        assert_eq!(cache.get("t1", "+41441234567", 1_000), None);
        assert_eq!(cache.get("t2", "+41441234567", 0), None);
    }
}
