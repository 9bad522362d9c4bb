//! The record a rep picked for a number, so the next call from that number opens it first.
//!
//! A shared main line matches the account and several contacts; when the rep says "this is
//! actually Anna", that should stick for that rep (another rep may know the line as someone
//! else's). Kept per (tenant, rep, number), in memory or in Redis beside the index.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::index::IndexError;

#[async_trait]
pub trait ChoiceStore: Send + Sync + std::fmt::Debug {
    async fn get(&self, tenant: &str, rep: &str, e164: &str) -> Result<Option<String>, IndexError>;
    async fn put(
        &self,
        tenant: &str,
        rep: &str,
        e164: &str,
        record_id: &str,
    ) -> Result<(), IndexError>;
    /// Forgets what this process holds of `tenant` (it unsubscribed). Nothing to do for a
    /// shared store: its keys carry the tenant's prefix, which the subscriptions directory's
    /// purge deletes.
    async fn forget_tenant(&self, _tenant: &str) {}
}

/// Choices kept at most per process; beyond it the oldest half is forgotten (they only reorder).
const CAPACITY: usize = 100_000;

/// (tenant, rep, number).
type Key = (String, String, String);

#[derive(Debug, Default)]
pub struct MemoryChoices {
    /// Key -> (record id, insertion counter).
    entries: Mutex<HashMap<Key, (String, u64)>>,
    counter: std::sync::atomic::AtomicU64,
}

#[async_trait]
impl ChoiceStore for MemoryChoices {
    async fn forget_tenant(&self, tenant: &str) {
        self.entries.lock().retain(|(t, _, _), _| t != tenant);
    }

    async fn get(&self, tenant: &str, rep: &str, e164: &str) -> Result<Option<String>, IndexError> {
        let entries = self.entries.lock();
        Ok(entries
            .get(&(tenant.to_string(), rep.to_lowercase(), e164.to_string()))
            .map(|(id, _)| id.clone()))
    }

    async fn put(
        &self,
        tenant: &str,
        rep: &str,
        e164: &str,
        record_id: &str,
    ) -> Result<(), IndexError> {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY {
            let cutoff = n.saturating_sub(CAPACITY as u64 / 2);
            entries.retain(|_, (_, at)| *at >= cutoff);
        }
        entries.insert(
            (tenant.to_string(), rep.to_lowercase(), e164.to_string()),
            (record_id.to_string(), n),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn choices_are_per_tenant_rep_and_number() {
        let store = MemoryChoices::default();
        store
            .put("t", "Alice@example.com", "+41441234567", "c1")
            .await
            .expect("put");
        assert_eq!(
            store
                .get("t", "alice@example.com", "+41441234567")
                .await
                .expect("get"),
            Some("c1".into())
        );
        assert_eq!(
            store
                .get("t", "bob@example.com", "+41441234567")
                .await
                .expect("get"),
            None
        );
        assert_eq!(
            store
                .get("u", "alice@example.com", "+41441234567")
                .await
                .expect("get"),
            None
        );
        assert_eq!(
            store
                .get("t", "alice@example.com", "+41440000000")
                .await
                .expect("get"),
            None
        );
    }
}
