//! Calls keep ringing through a Redis outage: the shared store first, this process's memory
//! while it fails.
//!
//! Every leg written through here carries when it was written (`updated_ms`, the relay's clock),
//! so a read returns the newer of what Redis and memory hold: a leg that changed in memory during
//! the outage (the call ended) wins over Redis's older copy (still connected) once Redis answers
//! again. (Revisions cannot tell them apart: memory counts on from the revision it last read,
//! Redis from its own.) The leg returned carries Redis's revision, so saving it goes over Redis's
//! copy like any other save, and a conflict with another instance is the caller's to resolve; it
//! is never taken for an outage.
//!
//! A leg built in memory without its history (Redis unreachable when the call's first event here
//! arrived mid-call, marked `without_history` by the pipeline) takes what it lacks from Redis's
//! older copy (the answer time, the matches, the notes), so an answered call is never logged as
//! missed; until then it does not make the call's activity. When a call is read and Redis
//! answers, or on the activity writer's next round ([`CallStore::write_back`]), the legs memory
//! holds are written back to Redis (where Redis's copy is older) and forgotten here. What this
//! costs is what memory always costs: a crash during the outage loses those legs (the provider's
//! redelivery and the next event rebuild them).

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use cti_protocol::event::EndReason;
use parking_lot::Mutex;

use super::leg::Leg;
use super::store::{CallStore, MemoryCallStore, StoreError, sort_legs};
use crate::clock::SharedClock;

#[derive(Debug)]
pub struct FallbackCallStore<S> {
    shared: S,
    local: MemoryCallStore,
    clock: SharedClock,
    /// Whether the shared store failed last time it was asked.
    failing: AtomicBool,
    /// Legs built without history, completed and written back by a read: their call's activity
    /// was held back and is the writer's to queue ([`CallStore::write_back`]), by tenant.
    completed: Mutex<Vec<(String, Leg)>>,
}

impl<S> FallbackCallStore<S> {
    pub fn new(shared: S, clock: SharedClock) -> Self {
        FallbackCallStore {
            shared,
            local: MemoryCallStore::new(clock.clone()),
            clock,
            failing: AtomicBool::new(false),
            completed: Mutex::new(Vec::new()),
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

impl<S> FallbackCallStore<S> {
    /// Notes whether the shared store answered (a refused save is an answer).
    fn heard<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let failed = matches!(result, Err(StoreError::Unavailable(_)));
        self.failing.store(failed, Ordering::Relaxed);
        result
    }
}

/// The newer of the shared and the memory copy of one leg (the shared store answered); memory's
/// filled in from the shared copy where it was built without history. Either way the leg carries
/// the shared store's revision (0 where it has none), so it is saved over the shared copy.
fn newer(shared: Option<Leg>, local: Option<Leg>) -> Option<Leg> {
    let rev = shared.as_ref().map_or(0, |l| l.rev);
    let mut leg = match (shared, local) {
        (Some(shared), Some(mut local)) if local.updated_ms > shared.updated_ms => {
            fill_history(&mut local, &shared);
            local
        }
        (Some(shared), _) => shared,
        (None, local) => local?,
    };
    leg.rev = rev;
    // Completed from the shared copy, or the shared store never had the leg: either way it has
    // all the history there is.
    leg.without_history = false;
    Some(leg)
}

/// What a leg built in memory during an outage could not know and the shared copy from before
/// it does: the answer (a call answered before the outage and ended during it was talked, not
/// missed), the caller's matches and record, the start, the rep's notes and outcome.
fn fill_history(leg: &mut Leg, earlier: &Leg) {
    leg.from_mid_call &= earlier.from_mid_call;
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
    /// Writes `leg` to the shared store; while that fails, keeps it in memory (at its next
    /// revision, as the shared store would have) and marks the event applied there. A conflict
    /// is the caller's to resolve: the leg changed in the shared store since it was read.
    async fn write(
        &self,
        tenant: &str,
        view: &Leg,
        event_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let leg = self.stamped(view);
        // The shared store took it over the revision it was read at (0: it had no such leg), so
        // there is no history it lacks.
        let shared = Leg {
            without_history: false,
            ..leg.clone()
        };
        let written = match event_id {
            Some(event_id) => self.heard(self.shared.save(tenant, &shared, event_id).await),
            None => self.heard(self.shared.put(tenant, &shared).await),
        };
        match written {
            Ok(rev) => {
                self.local.remove(tenant, &leg.id, &leg.agent);
                Ok(rev)
            }
            Err(err @ StoreError::Conflict { .. }) => Err(err),
            Err(err) => {
                fell_back(&err);
                let mut kept = leg;
                kept.rev += 1;
                self.local.keep(tenant, &kept, event_id);
                Ok(kept.rev)
            }
        }
    }

    /// Redis answered for `call_id`: the call's legs memory holds go back to Redis where they are
    /// newer (`merged` then carries their new revision), and memory forgets them. Failures leave
    /// them in memory for the next read.
    async fn write_back_call(&self, tenant: &str, call_id: &str, merged: &mut [Leg]) {
        for local in self.local.legs(tenant, call_id).await.unwrap_or_default() {
            let Some(leg) = merged.iter_mut().find(|l| l.agent == local.agent) else {
                continue;
            };
            if leg.updated_ms != local.updated_ms {
                // Redis's copy is the newer one: memory's is stale.
                self.local.remove(tenant, call_id, &local.agent);
                continue;
            }
            match self.heard(self.shared.put(tenant, leg).await) {
                Ok(rev) => {
                    leg.rev = rev;
                    self.local.remove(tenant, call_id, &local.agent);
                    if local.without_history {
                        self.completed
                            .lock()
                            .push((tenant.to_string(), leg.clone()));
                    }
                    tracing::info!(tenant, call = %call_id, "call leg kept in memory during the Redis outage written back to Redis");
                }
                Err(err @ StoreError::Conflict { .. }) => {
                    tracing::info!(%err, tenant, call = %call_id, "call leg changed in Redis meanwhile; compared again at the next read");
                }
                Err(err) => fell_back(&err),
            }
        }
    }

    /// The call's legs, the newer of memory's and Redis's copy each, with what memory held
    /// written back when Redis answers; also returns whether Redis answered.
    async fn merged_legs(
        &self,
        tenant: &str,
        call_id: &str,
    ) -> Result<(Vec<Leg>, bool), StoreError> {
        let local = self.local.legs(tenant, call_id).await?;
        let shared = match self.heard(self.shared.legs(tenant, call_id).await) {
            Ok(legs) => legs,
            Err(err) => {
                fell_back(&err);
                return Ok((local, false));
            }
        };
        let mut legs: Vec<Leg> = Vec::new();
        for leg in shared {
            let mine = local.iter().find(|l| l.agent == leg.agent).cloned();
            legs.extend(newer(Some(leg), mine));
        }
        for leg in &local {
            if !legs.iter().any(|l| l.agent == leg.agent) {
                legs.extend(newer(None, Some(leg.clone())));
            }
        }
        sort_legs(&mut legs);
        if !local.is_empty() {
            self.write_back_call(tenant, call_id, &mut legs).await;
        }
        Ok((legs, true))
    }
}

#[async_trait]
impl<S: CallStore> CallStore for FallbackCallStore<S> {
    async fn forget_tenant(&self, tenant: &str) {
        self.local.forget_tenant(tenant).await;
        self.shared.forget_tenant(tenant).await;
        self.completed.lock().retain(|(t, _)| t != tenant);
    }

    async fn seen(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError> {
        if self.local.seen(tenant, event_id).await? {
            return Ok(true);
        }
        match self.heard(self.shared.seen(tenant, event_id).await) {
            Ok(seen) => Ok(seen),
            Err(err) => {
                fell_back(&err);
                Ok(false)
            }
        }
    }

    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<u64, StoreError> {
        self.write(tenant, view, Some(event_id)).await
    }

    async fn mark_seen(&self, tenant: &str, event_id: &str) -> Result<(), StoreError> {
        match self.heard(self.shared.mark_seen(tenant, event_id).await) {
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
        match self.heard(self.shared.get(tenant, call_id, agent).await) {
            Ok(shared) => {
                let Some(mut leg) = newer(shared, local.clone()) else {
                    return Ok(None);
                };
                if local.is_some() {
                    self.write_back_call(tenant, call_id, std::slice::from_mut(&mut leg))
                        .await;
                }
                Ok(Some(leg))
            }
            Err(err) => {
                fell_back(&err);
                Ok(local)
            }
        }
    }

    async fn put(&self, tenant: &str, view: &Leg) -> Result<u64, StoreError> {
        self.write(tenant, view, None).await
    }

    async fn legs(&self, tenant: &str, call_id: &str) -> Result<Vec<Leg>, StoreError> {
        Ok(self.merged_legs(tenant, call_id).await?.0)
    }

    async fn active_for_agent(&self, tenant: &str, agent: &str) -> Result<Vec<Leg>, StoreError> {
        let shared = match self.heard(self.shared.active_for_agent(tenant, agent).await) {
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

    fn partial(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    async fn write_back(&self, tenant: &str) -> Vec<Leg> {
        let mut calls: Vec<String> = self.local.all(tenant).into_iter().map(|l| l.id).collect();
        calls.sort();
        calls.dedup();
        for call_id in calls {
            match self.merged_legs(tenant, &call_id).await {
                Ok((_, true)) => {}
                // Still failing: the next round tries again.
                Ok((_, false)) => break,
                Err(err) => {
                    fell_back(&err);
                    break;
                }
            }
        }
        let mut completed = self.completed.lock();
        let (mine, others): (Vec<_>, Vec<_>) = completed.drain(..).partition(|(t, _)| t == tenant);
        *completed = others;
        mine.into_iter().map(|(_, leg)| leg).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::leg::fixtures::ringing;
    use cti_protocol::ws::CallState;
    use std::sync::Arc;

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

    /// A shared store that can be switched off.
    #[derive(Debug, Default)]
    struct Flaky {
        store: MemoryCallStore,
        down: AtomicBool,
    }

    impl Flaky {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::Relaxed) {
                Err(StoreError::Unavailable("down".into()))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait]
    impl CallStore for Flaky {
        async fn seen(&self, t: &str, e: &str) -> Result<bool, StoreError> {
            self.check()?;
            self.store.seen(t, e).await
        }
        async fn save(&self, t: &str, v: &Leg, e: &str) -> Result<u64, StoreError> {
            self.check()?;
            self.store.save(t, v, e).await
        }
        async fn mark_seen(&self, t: &str, e: &str) -> Result<(), StoreError> {
            self.check()?;
            self.store.mark_seen(t, e).await
        }
        async fn get(&self, t: &str, c: &str, a: &str) -> Result<Option<Leg>, StoreError> {
            self.check()?;
            self.store.get(t, c, a).await
        }
        async fn put(&self, t: &str, v: &Leg) -> Result<u64, StoreError> {
            self.check()?;
            self.store.put(t, v).await
        }
        async fn legs(&self, t: &str, c: &str) -> Result<Vec<Leg>, StoreError> {
            self.check()?;
            self.store.legs(t, c).await
        }
        async fn active_for_agent(&self, t: &str, a: &str) -> Result<Vec<Leg>, StoreError> {
            self.check()?;
            self.store.active_for_agent(t, a).await
        }
    }

    fn fallback() -> (FallbackCallStore<Flaky>, crate::clock::ManualClock) {
        let clock = crate::clock::ManualClock::new(1_000);
        (
            FallbackCallStore::new(Flaky::default(), Arc::new(clock.clone())),
            clock,
        )
    }

    #[tokio::test]
    async fn a_stale_save_is_refused_not_taken_for_an_outage() {
        let (store, _) = fallback();
        store
            .save("t", &ringing("c", "alice"), "e-1")
            .await
            .expect("saved");
        let read = store
            .get("t", "c", "alice")
            .await
            .expect("get")
            .expect("leg");
        let mut ended = read.clone();
        ended.state = CallState::Ended;
        store.save("t", &ended, "e-3").await.expect("saved first");
        let mut connected = read;
        connected.state = CallState::Connected;
        assert!(matches!(
            store.save("t", &connected, "e-2").await,
            Err(StoreError::Conflict { .. })
        ));
        assert!(store.local.all("t").is_empty(), "nothing kept in memory");
        let stored = store
            .get("t", "c", "alice")
            .await
            .expect("get")
            .expect("leg");
        assert_eq!(stored.state, CallState::Ended);
    }

    #[tokio::test]
    async fn memory_legs_go_back_to_redis_when_it_answers_completed_from_its_copy() {
        let (store, clock) = fallback();
        let mut answered = ringing("c", "alice");
        answered.state = CallState::Connected;
        answered.answered_at = Some("2026-12-02T10:00:10Z".into());
        store.save("t", &answered, "e-2").await.expect("saved");
        assert!(!store.partial());

        // Redis fails; the end arrives and is built without history.
        store.shared.down.store(true, Ordering::Relaxed);
        assert_eq!(store.get("t", "c", "alice").await.expect("get"), None);
        assert!(store.partial());
        clock.advance_ms(1_000);
        let mut ended = ringing("c", "alice");
        ended.state = CallState::Ended;
        ended.end_reason = Some(EndReason::Missed);
        ended.without_history = true;
        store
            .save("t", &ended, "e-3")
            .await
            .expect("kept in memory");
        assert!(store.write_back("t").await.is_empty(), "Redis still down");

        store.shared.down.store(false, Ordering::Relaxed);
        // A read writes it back; the next round hands it over for its activity.
        let read = store
            .get("t", "c", "alice")
            .await
            .expect("get")
            .expect("leg");
        assert_eq!(read.rev, 2);
        assert!(!read.without_history);
        let written = store.write_back("t").await;
        assert_eq!(written.len(), 1, "{written:?}");
        assert!(store.write_back("t").await.is_empty(), "handed over once");
        assert!(store.local.all("t").is_empty(), "memory forgot it");
        assert!(!store.partial());
        let leg = store
            .shared
            .get("t", "c", "alice")
            .await
            .expect("get")
            .expect("in Redis");
        assert_eq!(leg.state, CallState::Ended);
        assert_eq!(leg.answered_at.as_deref(), Some("2026-12-02T10:00:10Z"));
        assert_eq!(leg.end_reason, Some(EndReason::Completed));
        assert!(!leg.without_history);
        assert_eq!(leg.rev, 2, "saved over Redis's copy");
    }
}
