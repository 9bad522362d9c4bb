//! Calls keep ringing through a Redis outage: the shared store first, this process's memory
//! while it fails.
//!
//! A leg written during an outage lives in memory until the call's next change reaches Redis
//! again; reads prefer what Redis has and fill in from memory. What this costs is what memory
//! always costs: a crash during the outage loses those legs (the provider's redelivery and the
//! next event rebuild them).

use super::leg::Leg;
use async_trait::async_trait;

use super::store::{CallStore, MemoryCallStore, StoreError, sort_legs};

#[derive(Debug)]
pub struct FallbackCallStore<S> {
    shared: S,
    local: MemoryCallStore,
}

impl<S> FallbackCallStore<S> {
    pub fn new(shared: S) -> Self {
        FallbackCallStore {
            shared,
            local: MemoryCallStore::default(),
        }
    }
}

fn fell_back(err: &StoreError) {
    tracing::warn!(%err, "shared call store unavailable; keeping calls in memory meanwhile");
}

#[async_trait]
impl<S: CallStore> CallStore for FallbackCallStore<S> {
    async fn seen(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError> {
        if self.local.seen(tenant, event_id).await? {
            return Ok(true);
        }
        match self.shared.seen(tenant, event_id).await {
            Ok(seen) => Ok(seen),
            Err(err) => {
                fell_back(&err);
                Ok(false)
            }
        }
    }

    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<(), StoreError> {
        match self.shared.save(tenant, view, event_id).await {
            Ok(()) => Ok(()),
            Err(err) => {
                fell_back(&err);
                self.local.save(tenant, view, event_id).await
            }
        }
    }

    async fn mark_seen(&self, tenant: &str, event_id: &str) -> Result<(), StoreError> {
        match self.shared.mark_seen(tenant, event_id).await {
            Ok(()) => Ok(()),
            Err(err) => {
                fell_back(&err);
                self.local.mark_seen(tenant, event_id).await
            }
        }
    }

    async fn get(
        &self,
        tenant: &str,
        call_id: &str,
        agent: &str,
    ) -> Result<Option<Leg>, StoreError> {
        match self.shared.get(tenant, call_id, agent).await {
            Ok(Some(view)) => Ok(Some(view)),
            Ok(None) => self.local.get(tenant, call_id, agent).await,
            Err(err) => {
                fell_back(&err);
                self.local.get(tenant, call_id, agent).await
            }
        }
    }

    async fn put(&self, tenant: &str, view: &Leg) -> Result<(), StoreError> {
        match self.shared.put(tenant, view).await {
            Ok(()) => Ok(()),
            Err(err) => {
                fell_back(&err);
                self.local.put(tenant, view).await
            }
        }
    }

    async fn legs(&self, tenant: &str, call_id: &str) -> Result<Vec<Leg>, StoreError> {
        let mut legs = match self.shared.legs(tenant, call_id).await {
            Ok(legs) => legs,
            Err(err) => {
                fell_back(&err);
                Vec::new()
            }
        };
        for leg in self.local.legs(tenant, call_id).await? {
            if !legs.iter().any(|l| l.agent == leg.agent) {
                legs.push(leg);
            }
        }
        sort_legs(&mut legs);
        Ok(legs)
    }

    async fn active_for_agent(&self, tenant: &str, agent: &str) -> Result<Vec<Leg>, StoreError> {
        let mut calls = match self.shared.active_for_agent(tenant, agent).await {
            Ok(calls) => calls,
            Err(err) => {
                fell_back(&err);
                Vec::new()
            }
        };
        for call in self.local.active_for_agent(tenant, agent).await? {
            if !calls.iter().any(|c| c.id == call.id) {
                calls.push(call);
            }
        }
        calls.sort_by_key(|v| v.received_at_ms);
        Ok(calls)
    }
}
