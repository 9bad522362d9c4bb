//! Calls keep ringing through a Redis outage: the shared store first, this process's memory
//! while it fails.
//!
//! Every leg written through here carries when it was written (`updated_ms`, the relay's clock),
//! so a read returns the newer of what Redis and memory hold: a leg that changed in memory during
//! the outage (the call ended) wins over Redis's older copy (still connected) once Redis answers
//! again. A leg built in memory without its history (Redis unreachable when the call's first event
//! here arrived mid-call) takes what it lacks from Redis's older copy (the answer time, the
//! matches, the notes), so an answered call is never logged as missed. When a call is read and
//! Redis answers, its legs memory holds are written back to Redis (where Redis's copy is older)
//! and forgotten here. What this costs is what memory always costs: a crash during the outage
//! loses those legs (the provider's redelivery and the next event rebuild them).

use super::leg::Leg;
use async_trait::async_trait;
use cti_protocol::event::EndReason;

use super::store::{CallStore, MemoryCallStore, StoreError, sort_legs};
use crate::clock::SharedClock;

#[derive(Debug)]
pub struct FallbackCallStore<S> {
    shared: S,
    local: MemoryCallStore,
    clock: SharedClock,
}

impl<S> FallbackCallStore<S> {
    pub fn new(shared: S, clock: SharedClock) -> Self {
        FallbackCallStore {
            shared,
            local: MemoryCallStore::default(),
            clock,
        }
    }

    /// The leg as it is to be stored: stamped with the time of this write.
    fn stamped(&self, view: &Leg) -> Leg {
        let mut leg = view.clone();
        leg.updated_ms = self.clock.now_ms().max(view.updated_ms + 1);
        leg
    }
}

fn fell_back(err: &StoreError) {
    tracing::warn!(%err, "shared call store unavailable; keeping calls in memory meanwhile");
}

/// The newer of the shared and the memory copy of one leg; memory's filled in from the shared
/// copy where it was built without history.
fn newer(shared: Option<Leg>, local: Option<Leg>) -> Option<Leg> {
    match (shared, local) {
        (Some(shared), Some(mut local)) if local.updated_ms > shared.updated_ms => {
            fill_history(&mut local, &shared);
            Some(local)
        }
        (Some(shared), _) => Some(shared),
        (None, local) => local,
    }
}

/// What a leg built in memory during an outage could not know and the shared copy from before
/// it does: the answer (a call answered before the outage and ended during it was talked, not
/// missed), the caller's matches and record, the start, the rep's notes and outcome.
fn fill_history(leg: &mut Leg, earlier: &Leg) {
    if leg.answered_at.is_none() && earlier.answered_at.is_some() {
        leg.answered_at = earlier.answered_at.clone();
        if leg.end_reason == Some(EndReason::Missed) {
            leg.end_reason = Some(EndReason::Completed);
        }
    }
    if leg.matches.is_empty() {
        leg.matches = earlier.matches.clone();
    }
    if leg.pop.is_none() {
        leg.pop = earlier.pop.clone();
    }
    if earlier.received_at_ms > 0 && earlier.received_at_ms < leg.received_at_ms {
        leg.received_at_ms = earlier.received_at_ms;
        leg.started_at = earlier.started_at.clone();
    }
    if leg.wrap_up.notes.is_empty() {
        leg.wrap_up.notes = earlier.wrap_up.notes.clone();
    }
    if leg.wrap_up.disposition.is_none() {
        leg.wrap_up.disposition = earlier.wrap_up.disposition.clone();
    }
    if leg.handover.is_none() {
        leg.handover = earlier.handover.clone();
    }
}

impl<S: CallStore> FallbackCallStore<S> {
    /// Redis answered for `call_id`: the call's legs memory holds go back to Redis where they are
    /// newer, and memory forgets them. Failures leave them in memory for the next read.
    async fn write_back(&self, tenant: &str, call_id: &str, merged: &[Leg]) {
        for local in self.local.legs(tenant, call_id).await.unwrap_or_default() {
            let Some(leg) = merged.iter().find(|l| l.agent == local.agent) else {
                continue;
            };
            let result = if leg.updated_ms == local.updated_ms || leg == &local {
                self.shared.put(tenant, leg).await
            } else {
                Ok(())
            };
            match result {
                Ok(()) => {
                    self.local.remove(tenant, call_id, &local.agent);
                    tracing::info!(tenant, call = %call_id, "call leg kept in memory during the Redis outage written back to Redis");
                }
                Err(err) => fell_back(&err),
            }
        }
    }
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
        let leg = self.stamped(view);
        match self.shared.save(tenant, &leg, event_id).await {
            Ok(()) => {
                self.local.remove(tenant, &leg.id, &leg.agent);
                Ok(())
            }
            Err(err) => {
                fell_back(&err);
                self.local.save(tenant, &leg, event_id).await
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
        let local = self.local.get(tenant, call_id, agent).await?;
        match self.shared.get(tenant, call_id, agent).await {
            Ok(shared) => {
                let leg = newer(shared, local.clone());
                if local.is_some()
                    && let Some(leg) = &leg
                {
                    self.write_back(tenant, call_id, std::slice::from_ref(leg))
                        .await;
                }
                Ok(leg)
            }
            Err(err) => {
                fell_back(&err);
                Ok(local)
            }
        }
    }

    async fn put(&self, tenant: &str, view: &Leg) -> Result<(), StoreError> {
        let leg = self.stamped(view);
        match self.shared.put(tenant, &leg).await {
            Ok(()) => {
                self.local.remove(tenant, &leg.id, &leg.agent);
                Ok(())
            }
            Err(err) => {
                fell_back(&err);
                self.local.put(tenant, &leg).await
            }
        }
    }

    async fn legs(&self, tenant: &str, call_id: &str) -> Result<Vec<Leg>, StoreError> {
        let local = self.local.legs(tenant, call_id).await?;
        let (shared, reachable) = match self.shared.legs(tenant, call_id).await {
            Ok(legs) => (legs, true),
            Err(err) => {
                fell_back(&err);
                (Vec::new(), false)
            }
        };
        let mut legs: Vec<Leg> = Vec::new();
        for leg in shared {
            let mine = local.iter().find(|l| l.agent == leg.agent).cloned();
            legs.extend(newer(Some(leg), mine));
        }
        for leg in &local {
            if !legs.iter().any(|l| l.agent == leg.agent) {
                legs.push(leg.clone());
            }
        }
        sort_legs(&mut legs);
        if reachable && !local.is_empty() {
            self.write_back(tenant, call_id, &legs).await;
        }
        Ok(legs)
    }

    async fn active_for_agent(&self, tenant: &str, agent: &str) -> Result<Vec<Leg>, StoreError> {
        let shared = match self.shared.active_for_agent(tenant, agent).await {
            Ok(calls) => calls,
            Err(err) => {
                fell_back(&err);
                Vec::new()
            }
        };
        let mut calls = Vec::new();
        for call in shared {
            // Memory may know the call ended meanwhile.
            let mine = self.local.get(tenant, &call.id, agent).await?;
            if let Some(leg) = newer(Some(call), mine)
                && !leg.state.is_final()
            {
                calls.push(leg);
            }
        }
        for call in self.local.active_for_agent(tenant, agent).await? {
            if !calls.iter().any(|c| c.id == call.id) {
                calls.push(call);
            }
        }
        calls.sort_by_key(|v| v.received_at_ms);
        Ok(calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::leg::fixtures::ringing;
    use cti_protocol::ws::CallState;

    #[test]
    fn the_newer_copy_wins_and_a_leg_without_history_is_not_downgraded() {
        let mut before = ringing("c", "alice");
        before.state = CallState::Connected;
        before.answered_at = Some("2026-12-02T10:00:10Z".into());
        before.wrap_up.notes = "asked for a quote".into();
        before.received_at_ms = 1_000;
        before.updated_ms = 2_000;
        // Built in memory from the end alone while Redis was away.
        let mut ended = ringing("c", "alice");
        ended.state = CallState::Ended;
        ended.ended_at = Some("2026-12-02T10:02:10Z".into());
        ended.end_reason = Some(EndReason::Missed);
        ended.received_at_ms = 5_000;
        ended.updated_ms = 5_000;

        let leg = newer(Some(before.clone()), Some(ended.clone())).expect("a leg");
        assert_eq!(leg.state, CallState::Ended, "the newer copy");
        assert_eq!(
            leg.answered_at, before.answered_at,
            "answered before the outage"
        );
        assert_eq!(
            leg.end_reason,
            Some(EndReason::Completed),
            "talked, not missed"
        );
        assert_eq!(leg.wrap_up.notes, "asked for a quote");
        assert_eq!(leg.received_at_ms, 1_000);

        let mut stale = ended;
        stale.updated_ms = 1_500;
        assert_eq!(newer(Some(before.clone()), Some(stale)), Some(before));
    }
}
