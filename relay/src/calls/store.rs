//! Where call legs and the ids of processed events live.
//!
//! Behind a trait so a shared store (Redis) can carry calls across relay restarts and instances;
//! the in-memory store is the embedded default for a single instance.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use super::leg::Leg;
use crate::clock::{SharedClock, SystemClock};
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
    /// Forgets what this process holds of `tenant` (it unsubscribed). Nothing to do for a
    /// shared store: its keys carry the tenant's prefix, which the subscriptions directory's
    /// purge deletes.
    async fn forget_tenant(&self, _tenant: &str) {}
}

/// How many event ids a tenant remembers; providers redeliver within minutes, not days.
const SEEN_CAPACITY: usize = 200_000;

/// Legs kept per tenant; past it the oldest finished ones go (their activity is in the outbox).
const LEG_CAPACITY: usize = 100_000;

/// How long a leg that is not final is kept without a change: a phone system that drops `ended`
/// events, or throw-away agent ids, would otherwise leave legs in memory for good. No call rings
/// or is talked through for a day without a single event.
const STALE_AFTER_MS: u64 = 24 * 60 * 60 * 1000;

/// How often a tenant's legs are looked through for stale ones (on a write, so an idle tenant
/// costs nothing).
const SWEEP_EVERY_MS: u64 = 60 * 60 * 1000;

/// A leg and when this store last wrote it (its clock), which is what staleness is measured
/// from: `Leg::updated_ms` is stamped only where a shared store sits in front of this one.
#[derive(Debug)]
struct Kept {
    leg: Leg,
    changed_ms: u64,
}

#[derive(Debug)]
struct TenantCalls {
    /// Legs by call id, then by rep: a call's legs are found without looking at the others.
    calls: HashMap<String, HashMap<String, Kept>>,
    /// How many legs `calls` holds.
    count: usize,
    capacity: usize,
    /// When stale legs are next looked for.
    next_sweep_ms: u64,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

impl TenantCalls {
    fn new(capacity: usize) -> Self {
        TenantCalls {
            calls: HashMap::new(),
            count: 0,
            capacity,
            next_sweep_ms: 0,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
        }
    }

    fn get(&self, call_id: &str, agent: &str) -> Option<&Leg> {
        self.calls
            .get(call_id)
            .and_then(|legs| legs.get(agent))
            .map(|k| &k.leg)
    }

    fn legs(&self) -> impl Iterator<Item = &Kept> {
        self.calls.values().flat_map(|legs| legs.values())
    }

    fn remove(&mut self, call_id: &str, agent: &str) {
        if let Some(legs) = self.calls.get_mut(call_id) {
            if legs.remove(agent).is_some() {
                self.count -= 1;
            }
            if legs.is_empty() {
                self.calls.remove(call_id);
            }
        }
    }

    /// Stores the leg as changed at `now_ms`; from time to time, and past the capacity, lets go
    /// of legs that stayed unfinished and unchanged for a day, then of the oldest finished ones.
    fn insert(&mut self, view: &Leg, now_ms: u64) {
        let kept = Kept {
            leg: view.clone(),
            changed_ms: now_ms,
        };
        let legs = self.calls.entry(view.id.clone()).or_default();
        if legs.insert(view.agent.clone(), kept).is_none() {
            self.count += 1;
        }
        if now_ms >= self.next_sweep_ms || self.count > self.capacity {
            self.next_sweep_ms = now_ms.saturating_add(SWEEP_EVERY_MS);
            let stale: Vec<(String, String)> = self
                .legs()
                .filter(|k| {
                    !k.leg.state.is_final() && now_ms.saturating_sub(k.changed_ms) > STALE_AFTER_MS
                })
                .map(|k| (k.leg.id.clone(), k.leg.agent.clone()))
                .collect();
            for (call_id, agent) in stale {
                self.remove(&call_id, &agent);
            }
        }
        if self.count > self.capacity {
            let mut finished: Vec<(u64, String, String)> = self
                .legs()
                .filter(|k| k.leg.state.is_final())
                .map(|k| (k.leg.received_at_ms, k.leg.id.clone(), k.leg.agent.clone()))
                .collect();
            finished.sort();
            for (_, call_id, agent) in finished.into_iter().take(self.capacity / 2) {
                self.remove(&call_id, &agent);
            }
        }
    }

    /// Refuses a save over another revision than the stored one.
    fn check(&self, view: &Leg) -> Result<(), StoreError> {
        let found = self.get(&view.id, &view.agent).map_or(0, |l| l.rev);
        if found == view.rev {
            Ok(())
        } else {
            Err(StoreError::conflict(view, found))
        }
    }

    /// Stores `view` as its next revision, if it was read at the stored one.
    fn swap(&mut self, view: &Leg, now_ms: u64) -> Result<u64, StoreError> {
        self.check(view)?;
        let mut next = view.clone();
        next.rev = view.rev + 1;
        self.insert(&next, now_ms);
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

/// Calls in this process's memory, each tenant behind its own lock, so a large tenant's work
/// never waits on, or holds up, another's; the map of tenants is locked only to find one.
#[derive(Debug)]
pub struct MemoryCallStore {
    tenants: Mutex<HashMap<String, Arc<Mutex<TenantCalls>>>>,
    /// What "no change for a day" is measured with.
    clock: SharedClock,
    capacity: usize,
}

impl Default for MemoryCallStore {
    fn default() -> Self {
        MemoryCallStore::new(Arc::new(SystemClock))
    }
}

impl MemoryCallStore {
    pub fn new(clock: SharedClock) -> Self {
        MemoryCallStore {
            tenants: Mutex::new(HashMap::new()),
            clock,
            capacity: LEG_CAPACITY,
        }
    }

    /// A store that keeps `capacity` legs per tenant, so eviction is tested without 100 000 legs.
    #[cfg(test)]
    fn with_capacity(clock: SharedClock, capacity: usize) -> Self {
        MemoryCallStore {
            capacity,
            ..MemoryCallStore::new(clock)
        }
    }

    fn tenant(&self, tenant: &str) -> Arc<Mutex<TenantCalls>> {
        let mut tenants = self.tenants.lock();
        if let Some(calls) = tenants.get(tenant) {
            return calls.clone();
        }
        let calls = Arc::new(Mutex::new(TenantCalls::new(self.capacity)));
        tenants.insert(tenant.to_string(), calls.clone());
        calls
    }

    fn with<R>(&self, tenant: &str, f: impl FnOnce(&mut TenantCalls) -> R) -> R {
        let calls = self.tenant(tenant);
        let mut calls = calls.lock();
        f(&mut calls)
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
        self.with(tenant, |t| t.remove(call_id, agent));
    }

    /// Keeps the leg as it is, whatever revision memory held (memory standing in for a shared
    /// store that failed: the revision to check against is the shared store's), and marks the
    /// event applied.
    pub fn keep(&self, tenant: &str, view: &Leg, event_id: Option<&str>) {
        let now_ms = self.clock.now_ms();
        self.with(tenant, |t| {
            t.insert(view, now_ms);
            if let Some(event_id) = event_id {
                t.remember(event_id);
            }
        });
    }

    /// The tenant's legs memory holds.
    pub fn all(&self, tenant: &str) -> Vec<Leg> {
        self.with(tenant, |t| t.legs().map(|k| k.leg.clone()).collect())
    }
}

#[async_trait]
impl CallStore for MemoryCallStore {
    async fn forget_tenant(&self, tenant: &str) {
        self.tenants.lock().remove(tenant);
    }

    async fn seen(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(tenant, |t| t.seen.contains(event_id)))
    }

    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<u64, StoreError> {
        let now_ms = self.clock.now_ms();
        self.with(tenant, |t| {
            let rev = t.swap(view, now_ms)?;
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
        Ok(self.with(tenant, |t| t.get(call_id, agent).cloned()))
    }

    async fn put(&self, tenant: &str, view: &Leg) -> Result<u64, StoreError> {
        let now_ms = self.clock.now_ms();
        self.with(tenant, |t| t.swap(view, now_ms))
    }

    async fn legs(&self, tenant: &str, call_id: &str) -> Result<Vec<Leg>, StoreError> {
        Ok(self.with(tenant, |t| {
            let mut legs: Vec<Leg> = t
                .calls
                .get(call_id)
                .map(|legs| legs.values().map(|k| k.leg.clone()).collect())
                .unwrap_or_default();
            sort_legs(&mut legs);
            legs
        }))
    }

    async fn active_for_agent(&self, tenant: &str, agent: &str) -> Result<Vec<Leg>, StoreError> {
        Ok(self.with(tenant, |t| {
            let mut calls: Vec<Leg> = t
                .legs()
                .map(|k| &k.leg)
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
    use crate::clock::ManualClock;
    use cti_protocol::ws::CallState;

    const HOUR_MS: u64 = 60 * 60 * 1000;

    async fn leg(store: &MemoryCallStore, tenant: &str, call_id: &str, agent: &str) -> Option<Leg> {
        store.get(tenant, call_id, agent).await.expect("get")
    }

    #[tokio::test]
    async fn a_leg_that_never_ends_goes_after_a_day_without_a_change() {
        let clock = ManualClock::new(1_000);
        let store = MemoryCallStore::new(Arc::new(clock.clone()));
        store
            .save("t", &ringing("lost", "alice"), "e-1")
            .await
            .expect("lost");
        store
            .save("t", &ringing("long", "alice"), "e-2")
            .await
            .expect("long");
        let mut done = ringing("done", "alice");
        done.state = CallState::Ended;
        store.save("t", &done, "e-3").await.expect("done");

        clock.advance_ms(12 * HOUR_MS);
        store
            .save("t", &ringing("recent", "bob"), "e-4")
            .await
            .expect("recent");
        let mut long = leg(&store, "t", "long", "alice").await.expect("long");
        long.state = CallState::Connected;
        store.put("t", &long).await.expect("a change half a day in");

        clock.advance_ms(12 * HOUR_MS + 1);
        store
            .save("t", &ringing("new", "carol"), "e-5")
            .await
            .expect("new");

        assert_eq!(
            leg(&store, "t", "lost", "alice").await,
            None,
            "a day without a change"
        );
        assert!(store.legs("t", "lost").await.expect("legs").is_empty());
        assert!(
            leg(&store, "t", "long", "alice").await.is_some(),
            "changed half a day ago: kept"
        );
        assert!(leg(&store, "t", "recent", "bob").await.is_some());
        assert!(
            leg(&store, "t", "done", "alice").await.is_some(),
            "finished legs go by capacity, not age"
        );
        let active: Vec<String> = store
            .active_for_agent("t", "alice")
            .await
            .expect("active")
            .into_iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(active, ["long"]);
    }

    #[tokio::test]
    async fn past_capacity_the_oldest_finished_legs_go() {
        let store = MemoryCallStore::with_capacity(Arc::new(ManualClock::new(1_000)), 4);
        for (n, received_at_ms) in [(1, 300), (2, 100), (3, 400), (4, 200)] {
            let mut done = ringing(&format!("done-{n}"), "alice");
            done.state = CallState::Ended;
            done.received_at_ms = received_at_ms;
            store.keep("t", &done, None);
        }
        let mut ringing_early = ringing("ringing", "bob");
        ringing_early.received_at_ms = 50;
        store.keep("t", &ringing_early, None);

        let mut left: Vec<String> = store.all("t").into_iter().map(|l| l.id).collect();
        left.sort();
        assert_eq!(left, ["done-1", "done-3", "ringing"]);
    }

    #[tokio::test]
    async fn tenants_do_not_see_each_others_legs() {
        let store = MemoryCallStore::new(Arc::new(ManualClock::new(1_000)));
        let mut a = ringing("c", "alice");
        a.from = "+41440000001".into();
        assert_eq!(store.save("a", &a, "e-1").await.expect("a"), 1);
        store
            .save("a", &ringing("c", "bob"), "e-2")
            .await
            .expect("a's bob");
        let mut b = ringing("c", "alice");
        b.from = "+41440000002".into();
        assert_eq!(
            store.save("b", &b, "e-1").await.expect("b"),
            1,
            "revisions and event ids are the tenant's own"
        );

        let of_a: Vec<(String, String)> = store
            .legs("a", "c")
            .await
            .expect("a's legs")
            .into_iter()
            .map(|l| (l.agent, l.from))
            .collect();
        assert_eq!(
            of_a,
            [
                ("alice".to_string(), "+41440000001".to_string()),
                ("bob".to_string(), "+41441234567".to_string())
            ]
        );
        let of_b = store.legs("b", "c").await.expect("b's legs");
        assert_eq!(of_b.len(), 1);
        assert_eq!(of_b[0].from, "+41440000002");
        assert!(
            store
                .active_for_agent("b", "bob")
                .await
                .expect("b")
                .is_empty()
        );
        assert!(store.all("c").is_empty());

        store.remove("b", "c", "alice");
        assert!(leg(&store, "b", "c", "alice").await.is_none());
        assert!(leg(&store, "a", "c", "alice").await.is_some());
        assert!(store.seen("a", "e-2").await.expect("seen"));
        assert!(!store.seen("b", "e-2").await.expect("seen"));
    }

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
