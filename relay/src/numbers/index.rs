//! The number index: E.164 -> every V2 record that carries that number.
//!
//! Behind a trait so the embedded in-memory store and a shared store (Redis, for several relay
//! instances) are interchangeable. A rebuild prepares a complete new generation and swaps it in
//! at once, so a lookup never sees a half-built index.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use super::generation::Generation;
use super::record::IndexedRecord;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("number index store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[async_trait]
pub trait NumberIndex: Send + Sync + std::fmt::Debug {
    /// Every record carrying `e164` in `tenant` (unordered: ranking depends on who asks).
    async fn lookup(&self, tenant: &str, e164: &str) -> Result<Vec<IndexedRecord>, IndexError>;
    /// Atomically replaces the tenant's whole index.
    async fn replace(&self, tenant: &str, generation: Generation) -> Result<(), IndexError>;
    /// Puts one record under exactly `numbers`, taking it off every number it carried before
    /// (an incremental update after V2 reported a change). Atomic per record.
    async fn upsert(
        &self,
        tenant: &str,
        record: IndexedRecord,
        numbers: Vec<String>,
    ) -> Result<(), IndexError>;
    /// Takes a record off every number (V2 deleted it).
    async fn remove(&self, tenant: &str, record_id: &str) -> Result<(), IndexError>;
    /// How many distinct numbers the tenant's index holds.
    async fn len(&self, tenant: &str) -> Result<usize, IndexError>;
    /// Forgets what this process holds of `tenant` (it unsubscribed). Nothing to do for a
    /// shared store: its keys carry the tenant's prefix, which the subscriptions directory's
    /// purge deletes.
    async fn forget_tenant(&self, _tenant: &str) {}
}

/// The embedded default, for a single relay instance.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    tenants: RwLock<HashMap<String, Generation>>,
}

impl MemoryIndex {
    fn read(&self) -> parking_lot::RwLockReadGuard<'_, HashMap<String, Generation>> {
        self.tenants.read()
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, HashMap<String, Generation>> {
        self.tenants.write()
    }
}

#[async_trait]
impl NumberIndex for MemoryIndex {
    async fn forget_tenant(&self, tenant: &str) {
        self.write().remove(tenant);
    }

    async fn lookup(&self, tenant: &str, e164: &str) -> Result<Vec<IndexedRecord>, IndexError> {
        Ok(self
            .read()
            .get(tenant)
            .map(|t| t.get(e164))
            .unwrap_or_default())
    }

    async fn replace(&self, tenant: &str, generation: Generation) -> Result<(), IndexError> {
        self.write().insert(tenant.to_string(), generation);
        Ok(())
    }

    async fn upsert(
        &self,
        tenant: &str,
        record: IndexedRecord,
        numbers: Vec<String>,
    ) -> Result<(), IndexError> {
        self.write()
            .entry(tenant.to_string())
            .or_default()
            .upsert(record, &numbers);
        Ok(())
    }

    async fn remove(&self, tenant: &str, record_id: &str) -> Result<(), IndexError> {
        if let Some(t) = self.write().get_mut(tenant) {
            t.remove(record_id);
        }
        Ok(())
    }

    async fn len(&self, tenant: &str) -> Result<usize, IndexError> {
        Ok(self.read().get(tenant).map_or(0, Generation::len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cti_protocol::ws::RecordKind;

    fn record(id: &str) -> IndexedRecord {
        IndexedRecord {
            kind: RecordKind::Contact,
            id: id.into(),
            display_id: "1".into(),
            name: "Anna".into(),
            account: None,
            owner_id: None,
            open_opportunities: 0,
            last_activity: None,
        }
    }

    #[tokio::test]
    async fn tenants_are_isolated_and_replacement_is_whole() {
        let index = MemoryIndex::default();
        let g = Generation::from_iter([("+41441234567".to_string(), vec![record("a")])]);
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

        let g2 = Generation::from_iter([("+41449999999".to_string(), vec![record("b")])]);
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

    #[tokio::test]
    async fn an_update_moves_a_record_between_numbers_and_a_removal_clears_it() {
        let index = MemoryIndex::default();
        let g =
            Generation::from_iter([("+41441111111".to_string(), vec![record("a"), record("b")])]);
        index.replace("t1", g).await.expect("replace");

        index
            .upsert("t1", record("a"), vec!["+41442222222".into()])
            .await
            .expect("upsert");
        let on_old = index.lookup("t1", "+41441111111").await.expect("lookup");
        assert_eq!(
            on_old.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(
            index
                .lookup("t1", "+41442222222")
                .await
                .expect("lookup")
                .len(),
            1
        );

        index.remove("t1", "b").await.expect("remove");
        assert!(
            index
                .lookup("t1", "+41441111111")
                .await
                .expect("lookup")
                .is_empty()
        );
        assert_eq!(index.len("t1").await.expect("len"), 1);
        index.remove("t1", "a").await.expect("remove");
        assert_eq!(index.len("t1").await.expect("len"), 0);
    }
}
