//! What relay instances agree on while keeping one tenant's index fresh.
//!
//! Several instances behind one route share the Redis index; each runs a refresher, but one
//! rebuild per tenant and interval is enough (V2's daily call budget is shared), so a rebuild
//! takes a lease that expires by itself if its holder dies. A change event that arrives while a
//! rebuild crawls may be older than what the crawl read or newer; the rebuild re-applies the
//! changes noted since it started, after its swap, so the newer state always wins.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::index::IndexError;
use crate::clock::SharedClock;

/// How long noted changes are kept (longer than any rebuild takes).
pub const CHANGES_KEPT_MS: u64 = 6 * 60 * 60 * 1000;

#[async_trait]
pub trait RefreshCoordination: Send + Sync + std::fmt::Debug {
    /// Takes the tenant's rebuild lease for `ttl` when it is free or already `holder`'s (then
    /// it is extended). False: another instance holds it.
    async fn acquire(&self, tenant: &str, holder: &str, ttl: Duration) -> Result<bool, IndexError>;
    /// Gives the lease back if `holder` still holds it.
    async fn release(&self, tenant: &str, holder: &str) -> Result<(), IndexError>;
    /// When any instance last completed a full build of the tenant's index (Unix ms).
    async fn last_built(&self, tenant: &str) -> Result<Option<u64>, IndexError>;
    async fn set_last_built(&self, tenant: &str, at_ms: u64) -> Result<(), IndexError>;
    /// Notes that V2 reported `entity` (`<kind>:<id>`) changed at `at_ms`.
    async fn note_change(&self, tenant: &str, entity: &str, at_ms: u64) -> Result<(), IndexError>;
    /// The entities noted as changed at or after `since_ms`.
    async fn changes_since(&self, tenant: &str, since_ms: u64) -> Result<Vec<String>, IndexError>;
}

#[derive(Debug, Default)]
struct TenantState {
    lease: Option<(String, u64)>,
    last_built: Option<u64>,
    changes: HashMap<String, u64>,
}

/// For a single instance: the lease is always this instance's unless a rebuild is running.
#[derive(Debug)]
pub struct MemoryCoordination {
    clock: SharedClock,
    tenants: Mutex<HashMap<String, TenantState>>,
}

impl MemoryCoordination {
    pub fn new(clock: SharedClock) -> Self {
        MemoryCoordination {
            clock,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, tenant: &str, f: impl FnOnce(&mut TenantState, u64) -> T) -> T {
        let now = self.clock.now_ms();
        let mut tenants = self.tenants.lock();
        f(tenants.entry(tenant.to_string()).or_default(), now)
    }
}

#[async_trait]
impl RefreshCoordination for MemoryCoordination {
    async fn acquire(&self, tenant: &str, holder: &str, ttl: Duration) -> Result<bool, IndexError> {
        Ok(self.with(tenant, |t, now| {
            let free = match &t.lease {
                None => true,
                Some((h, expires)) => h == holder || *expires <= now,
            };
            if free {
                t.lease = Some((holder.to_string(), now + ttl.as_millis() as u64));
            }
            free
        }))
    }

    async fn release(&self, tenant: &str, holder: &str) -> Result<(), IndexError> {
        self.with(tenant, |t, _| {
            if t.lease.as_ref().is_some_and(|(h, _)| h == holder) {
                t.lease = None;
            }
        });
        Ok(())
    }

    async fn last_built(&self, tenant: &str) -> Result<Option<u64>, IndexError> {
        Ok(self.with(tenant, |t, _| t.last_built))
    }

    async fn set_last_built(&self, tenant: &str, at_ms: u64) -> Result<(), IndexError> {
        self.with(tenant, |t, _| t.last_built = Some(at_ms));
        Ok(())
    }

    async fn note_change(&self, tenant: &str, entity: &str, at_ms: u64) -> Result<(), IndexError> {
        self.with(tenant, |t, now| {
            t.changes.retain(|_, at| *at + CHANGES_KEPT_MS > now);
            t.changes.insert(entity.to_string(), at_ms);
        });
        Ok(())
    }

    async fn changes_since(&self, tenant: &str, since_ms: u64) -> Result<Vec<String>, IndexError> {
        Ok(self.with(tenant, |t, _| {
            let mut changed: Vec<String> = t
                .changes
                .iter()
                .filter(|(_, at)| **at >= since_ms)
                .map(|(entity, _)| entity.clone())
                .collect();
            changed.sort();
            changed
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn the_lease_is_exclusive_until_released_or_expired() {
        let clock = ManualClock::new(1_000);
        let c = MemoryCoordination::new(Arc::new(clock.clone()));
        let ttl = Duration::from_secs(60);
        assert!(c.acquire("t", "a", ttl).await.expect("acquire"));
        assert!(!c.acquire("t", "b", ttl).await.expect("acquire"));
        assert!(c.acquire("t", "a", ttl).await.expect("renew"));
        assert!(c.acquire("u", "b", ttl).await.expect("another tenant"));
        c.release("t", "b").await.expect("not b's to release");
        assert!(!c.acquire("t", "b", ttl).await.expect("acquire"));
        clock.advance_ms(60_000);
        assert!(
            c.acquire("t", "b", ttl)
                .await
                .expect("expired lease is free")
        );
        c.release("t", "b").await.expect("release");
        assert!(
            c.acquire("t", "a", ttl)
                .await
                .expect("released lease is free")
        );
    }

    #[tokio::test]
    async fn changes_are_listed_since_a_moment() {
        let c = MemoryCoordination::new(Arc::new(ManualClock::new(10_000)));
        c.note_change("t", "account:1", 5_000).await.expect("note");
        c.note_change("t", "contact:2", 9_000).await.expect("note");
        assert_eq!(
            c.changes_since("t", 6_000).await.expect("since"),
            ["contact:2"]
        );
        assert!(c.changes_since("u", 0).await.expect("since").is_empty());
    }
}
