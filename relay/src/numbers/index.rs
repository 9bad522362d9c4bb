//! The number index: E.164 -> every V2 record that carries that number.
//!
//! Behind a trait so the embedded in-memory store and a shared store (Redis, for several relay
//! instances) are interchangeable. A rebuild prepares a complete new generation and swaps it in
//! at once, so a lookup never sees a half-built index.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use cti_protocol::ws::{AccountRef, RecordKind};
use serde::{Deserialize, Serialize};

/// What the index keeps about a record: enough to show a caller card before V2 answers anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedRecord {
    pub kind: RecordKind,
    pub id: String,
    pub display_id: String,
    pub name: String,
    pub account: Option<AccountRef>,
}

/// Puts the records of one number in match order: contacts, then individual customers, then
/// accounts (the person on the line before the company), by name within a kind.
pub fn rank(records: &mut [IndexedRecord]) {
    records.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.name.cmp(&b.name)));
}

/// One tenant's complete mapping, as produced by a full crawl.
pub type Generation = HashMap<String, Vec<IndexedRecord>>;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("number index store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait NumberIndex: Send + Sync + std::fmt::Debug {
    /// Every record carrying `e164` in `tenant`, in match order.
    async fn lookup(&self, tenant: &str, e164: &str) -> Result<Vec<IndexedRecord>, IndexError>;
    /// Atomically replaces the tenant's whole index.
    async fn replace(&self, tenant: &str, generation: Generation) -> Result<(), IndexError>;
    /// How many distinct numbers the tenant's index holds.
    async fn len(&self, tenant: &str) -> Result<usize, IndexError>;
}

/// The embedded default: one immutable map per tenant, swapped by pointer.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    tenants: RwLock<HashMap<String, Arc<Generation>>>,
}

impl MemoryIndex {
    fn generation(&self, tenant: &str) -> Option<Arc<Generation>> {
        self.tenants
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(tenant)
            .cloned()
    }
}

#[async_trait]
impl NumberIndex for MemoryIndex {
    async fn lookup(&self, tenant: &str, e164: &str) -> Result<Vec<IndexedRecord>, IndexError> {
        Ok(self
            .generation(tenant)
            .and_then(|g| g.get(e164).cloned())
            .unwrap_or_default())
    }

    async fn replace(&self, tenant: &str, generation: Generation) -> Result<(), IndexError> {
        self.tenants
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(tenant.to_string(), Arc::new(generation));
        Ok(())
    }

    async fn len(&self, tenant: &str) -> Result<usize, IndexError> {
        Ok(self.generation(tenant).map_or(0, |g| g.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> IndexedRecord {
        IndexedRecord {
            kind: RecordKind::Contact,
            id: id.into(),
            display_id: "1".into(),
            name: "Anna".into(),
            account: None,
        }
    }

    #[tokio::test]
    async fn tenants_are_isolated_and_replacement_is_whole() {
        let index = MemoryIndex::default();
        let mut g = Generation::new();
        g.insert("+41441234567".into(), vec![record("a")]);
        index.replace("t1", g).await.expect("replace");
        assert_eq!(
            index
                .lookup("t1", "+41441234567")
                .await
                .expect("lookup")
                .len(),
            1
        );
        assert!(
            index
                .lookup("t2", "+41441234567")
                .await
                .expect("lookup")
                .is_empty()
        );

        let mut g2 = Generation::new();
        g2.insert("+41449999999".into(), vec![record("b")]);
        index.replace("t1", g2).await.expect("replace");
        assert!(
            index
                .lookup("t1", "+41441234567")
                .await
                .expect("lookup")
                .is_empty()
        );
        assert_eq!(index.len("t1").await.expect("len"), 1);
    }
}
