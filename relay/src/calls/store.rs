//! Where call legs and the ids of processed events live.
//!
//! Behind a trait so a shared store (Redis) can carry calls across relay restarts and instances;
//! the in-memory store is the embedded default for a single instance.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use super::leg::Leg;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("call store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The leg was saved by someone else (another instance, another task) since it was read:
    /// nothing was written. The caller reads the leg again and re-applies its change.
    #[error(
        "call leg {call_id:?} of {agent:?} changed since it was read (revision {expected} read, {found} stored)"
    )]
    Conflict {
        call_id: String,
        agent: String,
        expected: u64,
        found: u64,
    },
}

impl StoreError {
    /// The refusal of a save over `view`'s revision when the store holds `found`.
    pub fn conflict(view: &Leg, found: u64) -> Self {
        StoreError::Conflict {
            call_id: view.id.clone(),
            agent: view.agent.clone(),
            expected: view.rev,
            found,
        }
    }
}

#[async_trait]
pub trait CallStore: Send + Sync + std::fmt::Debug {
    /// Whether the provider event `event_id` was already applied in `tenant`.
    async fn seen(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError>;
    /// Saves the leg and marks the event applied, as one step, if the stored leg is still at the
    /// revision `view` was read at (`view.rev`; no stored leg counts as revision 0). Otherwise
    /// nothing is written and the answer is [`StoreError::Conflict`]. Returns the leg's new
    /// revision (`view.rev + 1`).
    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<u64, StoreError>;
    /// Marks an event applied that changed nothing (so its redelivery is a duplicate).
    async fn mark_seen(&self, tenant: &str, event_id: &str) -> Result<(), StoreError>;
    async fn get(
        &self,
        tenant: &str,
        call_id: &str,
        agent: &str,
    ) -> Result<Option<Leg>, StoreError>;
    /// Updates a leg without an event (the rep's requests, the caller card), over the revision it
    /// was read at like [`CallStore::save`].
    async fn put(&self, tenant: &str, view: &Leg) -> Result<u64, StoreError>;
    /// Every leg of a call (the first rep's, a transfer target's), oldest first: the call's
    /// context for a rep it is handed to, and what its activity is made of.
    async fn legs(&self, tenant: &str, call_id: &str) -> Result<Vec<Leg>, StoreError>;
    /// The rep's legs that are not final, for a widget that connects mid-call.
    async fn active_for_agent(&self, tenant: &str, agent: &str) -> Result<Vec<Leg>, StoreError>;
    /// Whether legs this store holds may be missing from its answers right now (a shared store
    /// that fails, memory standing in): a leg it has no copy of may still exist.
    fn partial(&self) -> bool {
        false
    }
    /// Writes legs kept aside while the shared store failed back to it, once it answers; returns
    /// the legs built without history that were completed and written back since last asked
    /// (here or by a read), whose call's activity was held back for them. Nothing to do for a
    /// store that never keeps legs aside.
    async fn write_back(&self, _tenant: &str) -> Vec<Leg> {
        Vec::new()
    }
}

/// How many event ids a tenant remembers; providers redeliver within minutes, not days.
const SEEN_CAPACITY: usize = 200_000;

#[derive(Debug, Default)]
struct TenantCalls {
    legs: HashMap<(String, String), Leg>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

/// Legs kept per tenant; past it the oldest finished ones go (their activity is in the outbox).
const LEG_CAPACITY: usize = 100_000;

impl TenantCalls {
    fn insert(&mut self, view: &Leg) {
        self.legs.insert(key(view), view.clone());
        if self.legs.len() > LEG_CAPACITY {
            let mut finished: Vec<(u64, (String, String))> = self
                .legs
                .iter()
                .filter(|(_, v)| v.state.is_final())
                .map(|(k, v)| (v.received_at_ms, k.clone()))
                .collect();
            finished.sort();
            for (_, k) in finished.into_iter().take(LEG_CAPACITY / 2) {
                self.legs.remove(&k);
            }
        }
    }

    /// Refuses a save over another revision than the stored one.
    fn check(&self, view: &Leg) -> Result<(), StoreError> {
        let found = self.legs.get(&key(view)).map_or(0, |l| l.rev);
        if found == view.rev {
            Ok(())
        } else {
            Err(StoreError::conflict(view, found))
        }
    }

    /// Stores `view` as its next revision, if it was read at the stored one.
    fn swap(&mut self, view: &Leg) -> Result<u64, StoreError> {
        self.check(view)?;
        let mut next = view.clone();
        next.rev = view.rev + 1;
        self.insert(&next);
        Ok(next.rev)
    }

    fn remember(&mut self, event_id: &str) {
        if self.seen.insert(event_id.to_string()) {
            self.seen_order.push_back(event_id.to_string());
            while self.seen_order.len() > SEEN_CAPACITY {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct MemoryCallStore {
    tenants: Mutex<HashMap<String, TenantCalls>>,
}

impl MemoryCallStore {
    fn with<R>(&self, tenant: &str, f: impl FnOnce(&mut TenantCalls) -> R) -> R {
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(tenants.entry(tenant.to_string()).or_default())
    }
}

/// Oldest first: the order the call went from rep to rep.
pub(crate) fn sort_legs(legs: &mut [Leg]) {
    legs.sort_by(|a, b| {
        (a.received_at_ms, &a.started_at, &a.agent).cmp(&(
            b.received_at_ms,
            &b.started_at,
            &b.agent,
        ))
    });
}

impl MemoryCallStore {
    /// Forgets a leg (it is stored elsewhere now).
    pub fn remove(&self, tenant: &str, call_id: &str, agent: &str) {
        self.with(tenant, |t| {
            t.legs.remove(&(call_id.to_string(), agent.to_string()));
        });
    }

    /// Keeps the leg as it is, whatever revision memory held (memory standing in for a shared
    /// store that failed: the revision to check against is the shared store's), and marks the
    /// event applied.
    pub fn keep(&self, tenant: &str, view: &Leg, event_id: Option<&str>) {
        self.with(tenant, |t| {
            t.insert(view);
            if let Some(event_id) = event_id {
                t.remember(event_id);
            }
        });
    }

    /// The tenant's legs memory holds.
    pub fn all(&self, tenant: &str) -> Vec<Leg> {
        self.with(tenant, |t| t.legs.values().cloned().collect())
    }
}

fn key(view: &Leg) -> (String, String) {
    (view.id.clone(), view.agent.clone())
}

#[async_trait]
impl CallStore for MemoryCallStore {
    async fn seen(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(tenant, |t| t.seen.contains(event_id)))
    }

    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<u64, StoreError> {
        self.with(tenant, |t| {
            let rev = t.swap(view)?;
            t.remember(event_id);
            Ok(rev)
        })
    }

    async fn mark_seen(&self, tenant: &str, event_id: &str) -> Result<(), StoreError> {
        self.with(tenant, |t| t.remember(event_id));
        Ok(())
    }

    async fn get(
        &self,
        tenant: &str,
        call_id: &str,
        agent: &str,
    ) -> Result<Option<Leg>, StoreError> {
        Ok(self.with(tenant, |t| {
            t.legs
                .get(&(call_id.to_string(), agent.to_string()))
                .cloned()
        }))
    }

    async fn put(&self, tenant: &str, view: &Leg) -> Result<u64, StoreError> {
        self.with(tenant, |t| t.swap(view))
    }

    async fn legs(&self, tenant: &str, call_id: &str) -> Result<Vec<Leg>, StoreError> {
        Ok(self.with(tenant, |t| {
            let mut legs: Vec<Leg> = t
                .legs
                .values()
                .filter(|v| v.id == call_id)
                .cloned()
                .collect();
            sort_legs(&mut legs);
            legs
        }))
    }

    async fn active_for_agent(&self, tenant: &str, agent: &str) -> Result<Vec<Leg>, StoreError> {
        Ok(self.with(tenant, |t| {
            let mut calls: Vec<Leg> = t
                .legs
                .values()
                .filter(|v| v.agent == agent && !v.state.is_final())
                .cloned()
                .collect();
            calls.sort_by_key(|v| v.received_at_ms);
            calls
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::leg::fixtures::ringing;
    use cti_protocol::ws::CallState;

    #[tokio::test]
    async fn a_save_over_a_stale_revision_is_refused_and_changes_nothing() {
        let store = MemoryCallStore::default();
        let leg = ringing("c", "alice");
        assert_eq!(store.save("t", &leg, "e-1").await.expect("first"), 1);
        let read_by_a = store
            .get("t", "c", "alice")
            .await
            .expect("get")
            .expect("leg");
        let read_by_b = read_by_a.clone();
        assert_eq!(read_by_a.rev, 1);

        let mut ended = read_by_b;
        ended.state = CallState::Ended;
        assert_eq!(store.save("t", &ended, "e-3").await.expect("B first"), 2);
        let mut connected = read_by_a;
        connected.state = CallState::Connected;
        let refused = store.save("t", &connected, "e-2").await;
        assert!(
            matches!(
                refused,
                Err(StoreError::Conflict {
                    expected: 1,
                    found: 2,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(
            !store.seen("t", "e-2").await.expect("seen"),
            "the refused event is not applied"
        );
        let stored = store
            .get("t", "c", "alice")
            .await
            .expect("get")
            .expect("leg");
        assert_eq!(stored.state, CallState::Ended);
        assert!(matches!(
            store.put("t", &connected).await,
            Err(StoreError::Conflict { .. })
        ));

        // A leg nobody stored yet is created over revision 0 only.
        let mut twice = ringing("d", "alice");
        twice.rev = 3;
        assert!(store.put("t", &twice).await.is_err());
        twice.rev = 0;
        assert_eq!(store.put("t", &twice).await.expect("created"), 1);
        assert!(
            store.put("t", &twice).await.is_err(),
            "created by someone else first"
        );
    }
}
