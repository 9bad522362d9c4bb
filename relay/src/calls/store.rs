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
}

#[async_trait]
pub trait CallStore: Send + Sync + std::fmt::Debug {
    /// Whether the provider event `event_id` was already applied in `tenant`.
    async fn seen(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError>;
    /// Saves the leg and marks the event applied, as one step.
    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<(), StoreError>;
    /// Marks an event applied that changed nothing (so its redelivery is a duplicate).
    async fn mark_seen(&self, tenant: &str, event_id: &str) -> Result<(), StoreError>;
    async fn get(
        &self,
        tenant: &str,
        call_id: &str,
        agent: &str,
    ) -> Result<Option<Leg>, StoreError>;
    /// Updates a leg without an event (enrichment of the caller card).
    async fn put(&self, tenant: &str, view: &Leg) -> Result<(), StoreError>;
    /// Every leg of a call (the first rep's, a transfer target's), oldest first: the call's
    /// context for a rep it is handed to, and what its activity is made of.
    async fn legs(&self, tenant: &str, call_id: &str) -> Result<Vec<Leg>, StoreError>;
    /// The rep's legs that are not final, for a widget that connects mid-call.
    async fn active_for_agent(&self, tenant: &str, agent: &str) -> Result<Vec<Leg>, StoreError>;
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
}

fn key(view: &Leg) -> (String, String) {
    (view.id.clone(), view.agent.clone())
}

#[async_trait]
impl CallStore for MemoryCallStore {
    async fn seen(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(tenant, |t| t.seen.contains(event_id)))
    }

    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<(), StoreError> {
        self.with(tenant, |t| {
            t.insert(view);
            t.remember(event_id);
        });
        Ok(())
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

    async fn put(&self, tenant: &str, view: &Leg) -> Result<(), StoreError> {
        self.with(tenant, |t| t.insert(view));
        Ok(())
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
