//! The durable queue between "the call ended" and "the activity is in V2".
//!
//! Each finished call has one entry, keyed by call id, in two halves with one writer each: the
//! wanted log (written by whoever saw the call change: the last event, notes after the call) with
//! a version that grows on every write, and the delivery progress (written only by the writer that
//! holds the entry's lease). Entries are due at a time; a writer claims due entries with a lease
//! so two relay instances never write the same call at once, and gives them back with the outcome.
//! A give-back from a writer whose lease ran out is discarded: another writer has the entry. An
//! entry whose wanted version moved on while it was being written is due again at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::calls::log::CallLog;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("activity outbox unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What the writer knows of an entry's way into V2.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The activity's V2 id and display id, once created (or found).
    pub v2_id: Option<String>,
    pub display_id: Option<String>,
    /// The wanted version V2 holds.
    pub written_version: u64,
    /// The notes text V2 holds from the relay, so newer notes replace it.
    pub written_notes: Option<String>,
    /// Failed attempts since the last success.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// V2 refused the activity: no more attempts until the rep retries or the log changes.
    pub parked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub call_id: String,
    pub log: CallLog,
    pub version: u64,
    pub progress: Progress,
    /// Whether a writer will try it (now or at a set time) without anyone asking: false once
    /// written or parked.
    pub due: bool,
    /// The lease a claim gave this copy (empty when read, not claimed): a give-back counts only
    /// while it still holds the entry.
    pub lease: String,
}

impl Entry {
    /// Whether V2 holds this entry's latest log.
    pub fn is_written(&self) -> bool {
        self.progress.written_version >= self.version
    }
}

/// When a given-back entry is due next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Written; due again only if the log changes.
    Done,
    /// Try again at this Unix ms.
    RetryAt(u64),
    /// Refused by V2; due again only on a retry or a change.
    Parked,
}

#[async_trait]
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// Records the wanted log for its call (a newer version of an existing entry, or a new one)
    /// and makes it due now. Returns the new version.
    async fn put(&self, tenant: &str, log: &CallLog, now_ms: u64) -> Result<u64, OutboxError>;
    /// Up to `limit` due entries, each leased to the caller for `lease_ms`.
    async fn claim_due(
        &self,
        tenant: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, OutboxError>;
    /// Gives a claimed entry back with the attempt's progress and when it is due next. False
    /// (and nothing recorded) when the entry's lease ran out: it may be another writer's now.
    async fn finish(
        &self,
        tenant: &str,
        entry: &Entry,
        next: Next,
        now_ms: u64,
    ) -> Result<bool, OutboxError>;
    async fn get(&self, tenant: &str, call_id: &str) -> Result<Option<Entry>, OutboxError>;
    /// Makes an entry due now (the rep's retry). False when there is no such entry.
    async fn retry(&self, tenant: &str, call_id: &str, now_ms: u64) -> Result<bool, OutboxError>;
    /// How many entries are due or being written (not yet in V2), for `/metrics`.
    async fn backlog(&self, tenant: &str) -> Result<u64, OutboxError>;
}

#[derive(Debug, Default)]
struct Slot {
    log: Option<CallLog>,
    version: u64,
    progress: Progress,
    due_at: Option<u64>,
    leased_until: u64,
    lease: String,
    /// When the entry last changed, so written entries can be forgotten after a while.
    touched_ms: u64,
}

/// How long a written entry is kept for notes after the call.
const KEEP_WRITTEN_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The embedded default: survives nothing but a V2 outage, like every memory store; with Redis
/// configured the outbox survives restarts.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    tenants: Mutex<HashMap<String, HashMap<String, Slot>>>,
    /// Names claims, so a give-back from a claim whose lease ran out is told apart.
    claims: AtomicU64,
}

impl MemoryOutbox {
    fn with<R>(&self, tenant: &str, f: impl FnOnce(&mut HashMap<String, Slot>) -> R) -> R {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        f(tenants.entry(tenant.to_string()).or_default())
    }

    fn next_claim(&self) -> String {
        format!("claim-{}", self.claims.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

fn entry_of(call_id: &str, slot: &Slot, lease: &str) -> Option<Entry> {
    Some(Entry {
        call_id: call_id.to_string(),
        log: slot.log.clone()?,
        version: slot.version,
        progress: slot.progress.clone(),
        due: slot.due_at.is_some(),
        lease: lease.to_string(),
    })
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn put(&self, tenant: &str, log: &CallLog, now_ms: u64) -> Result<u64, OutboxError> {
        Ok(self.with(tenant, |slots| {
            slots.retain(|_, s| {
                s.due_at.is_some() || now_ms.saturating_sub(s.touched_ms) < KEEP_WRITTEN_MS
            });
            let slot = slots.entry(log.call_id.clone()).or_default();
            slot.log = Some(log.clone());
            slot.version += 1;
            slot.due_at = Some(now_ms);
            slot.touched_ms = now_ms;
            slot.version
        }))
    }

    async fn claim_due(
        &self,
        tenant: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, OutboxError> {
        let claim = self.next_claim();
        Ok(self.with(tenant, |slots| {
            let mut due: Vec<(&String, &mut Slot)> = slots
                .iter_mut()
                .filter(|(_, s)| {
                    s.due_at.is_some_and(|at| at <= now_ms) && s.leased_until <= now_ms
                })
                .collect();
            due.sort_by_key(|(_, s)| s.due_at);
            due.into_iter()
                .take(limit)
                .filter_map(|(id, slot)| {
                    slot.leased_until = now_ms + lease_ms;
                    slot.lease = claim.clone();
                    entry_of(id, slot, &claim)
                })
                .collect()
        }))
    }

    async fn finish(
        &self,
        tenant: &str,
        entry: &Entry,
        next: Next,
        now_ms: u64,
    ) -> Result<bool, OutboxError> {
        Ok(self.with(tenant, |slots| {
            let Some(slot) = slots.get_mut(&entry.call_id) else {
                return false;
            };
            if slot.lease != entry.lease || slot.leased_until < now_ms {
                return false;
            }
            slot.progress = entry.progress.clone();
            slot.leased_until = 0;
            slot.lease.clear();
            slot.touched_ms = now_ms;
            slot.due_at = if slot.version > entry.version {
                Some(now_ms)
            } else {
                match next {
                    Next::Done | Next::Parked => None,
                    Next::RetryAt(at) => Some(at),
                }
            };
            true
        }))
    }

    async fn get(&self, tenant: &str, call_id: &str) -> Result<Option<Entry>, OutboxError> {
        Ok(self.with(tenant, |slots| {
            slots.get(call_id).and_then(|s| entry_of(call_id, s, ""))
        }))
    }

    async fn retry(&self, tenant: &str, call_id: &str, now_ms: u64) -> Result<bool, OutboxError> {
        Ok(self.with(tenant, |slots| match slots.get_mut(call_id) {
            Some(slot) if slot.log.is_some() => {
                slot.due_at = Some(now_ms);
                true
            }
            _ => false,
        }))
    }

    async fn backlog(&self, tenant: &str) -> Result<u64, OutboxError> {
        Ok(self.with(tenant, |slots| {
            slots
                .values()
                .filter(|s| s.progress.written_version < s.version && !s.progress.parked)
                .count() as u64
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::log::LogDirection;
    use cti_protocol::event::EndReason;

    pub(crate) fn log(call_id: &str, notes: &str) -> CallLog {
        CallLog {
            call_id: call_id.into(),
            direction: LogDirection::Inbound,
            outcome: EndReason::Completed,
            started_at: "2026-11-25T10:00:00Z".into(),
            answered_at: None,
            ended_at: "2026-11-25T10:01:00Z".into(),
            talk_secs: 0,
            total_secs: 60,
            from: "+41441234567".into(),
            to: "+41449990000".into(),
            remote: "+41441234567".into(),
            reps: vec!["alice".into()],
            owner: "alice".into(),
            record: None,
            notes: notes.into(),
            disposition: None,
            recording_url: None,
            consent: None,
        }
    }

    #[tokio::test]
    async fn a_claimed_entry_is_leased_until_given_back() {
        let outbox = MemoryOutbox::default();
        assert_eq!(
            outbox.put("t", &log("c1", ""), 1_000).await.expect("put"),
            1
        );
        let claimed = outbox
            .claim_due("t", 1_000, 60_000, 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        assert!(
            outbox
                .claim_due("t", 2_000, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        let mut entry = claimed[0].clone();
        entry.progress.attempts = 1;
        outbox
            .finish("t", &entry, Next::RetryAt(5_000), 2_000)
            .await
            .expect("finish");
        assert!(
            outbox
                .claim_due("t", 4_999, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        assert_eq!(
            outbox
                .claim_due("t", 5_000, 60_000, 10)
                .await
                .expect("claim")
                .len(),
            1
        );
        assert_eq!(outbox.backlog("t").await.expect("backlog"), 1);
        assert!(
            outbox
                .claim_due("u", 5_000, 60_000, 10)
                .await
                .expect("claim")
                .is_empty(),
            "tenants apart"
        );
    }

    #[tokio::test]
    async fn a_newer_log_written_during_an_attempt_makes_the_entry_due_again() {
        let outbox = MemoryOutbox::default();
        outbox.put("t", &log("c1", ""), 1_000).await.expect("put");
        let mut entry = outbox
            .claim_due("t", 1_000, 60_000, 10)
            .await
            .expect("claim")
            .remove(0);
        outbox
            .put("t", &log("c1", "notes"), 1_500)
            .await
            .expect("put");
        entry.progress.written_version = entry.version;
        outbox
            .finish("t", &entry, Next::Done, 2_000)
            .await
            .expect("finish");
        let again = outbox
            .claim_due("t", 2_000, 60_000, 10)
            .await
            .expect("claim");
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].version, again[0].log.notes.as_str()),
            (2, "notes")
        );
        assert!(!again[0].is_written());
    }

    #[tokio::test]
    async fn parked_entries_wait_for_a_retry() {
        let outbox = MemoryOutbox::default();
        outbox.put("t", &log("c1", ""), 1_000).await.expect("put");
        let mut entry = outbox
            .claim_due("t", 1_000, 60_000, 10)
            .await
            .expect("claim")
            .remove(0);
        entry.progress.parked = true;
        outbox
            .finish("t", &entry, Next::Parked, 1_000)
            .await
            .expect("finish");
        assert!(
            outbox
                .claim_due("t", 99_000, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        assert!(outbox.retry("t", "c1", 100_000).await.expect("retry"));
        assert!(!outbox.retry("t", "nope", 100_000).await.expect("retry"));
        assert_eq!(
            outbox
                .claim_due("t", 100_000, 60_000, 10)
                .await
                .expect("claim")
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_give_back_after_the_lease_ran_out_is_discarded() {
        let outbox = MemoryOutbox::default();
        outbox.put("t", &log("c1", ""), 1_000).await.expect("put");
        let mut late = outbox
            .claim_due("t", 1_000, 10, 10)
            .await
            .expect("claim")
            .remove(0);
        let current = outbox
            .claim_due("t", 1_011, 60_000, 10)
            .await
            .expect("claim")
            .remove(0);
        late.progress.v2_id = Some("pc-late".into());
        late.progress.written_version = late.version;
        assert!(
            !outbox
                .finish("t", &late, Next::Done, 1_020)
                .await
                .expect("finish")
        );
        let entry = outbox.get("t", "c1").await.expect("get").expect("entry");
        assert_eq!(entry.progress, Progress::default(), "progress unchanged");
        assert!(
            outbox
                .finish("t", &current, Next::RetryAt(9_000), 1_030)
                .await
                .expect("finish")
        );
    }
}
