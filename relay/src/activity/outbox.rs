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
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::journal::{Journal, Record};
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
    /// This entry asked V2 to create the activity from a log begun mid-call
    /// ([`CallLog::from_mid_call`]): the activity is then its own, and such a log may change
    /// it. Set before the request, so an answer lost on the way does not disown it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_from_mid_call: bool,
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
    /// Claimed from this process's memory while the shared outbox failed, so it goes back there.
    pub local: bool,
}

impl Entry {
    /// Whether V2 holds this entry's latest log.
    pub fn is_written(&self) -> bool {
        self.progress.written_version >= self.version
    }
}

/// An activity V2 has not taken yet after failing at least once: what the tenant's
/// administrator sees (and may retry) on the admin page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub call_id: String,
    /// The last attempt's error, as the writer recorded it.
    pub reason: String,
    /// Failed attempts since the last success.
    pub attempts: u32,
    /// V2 refused it: no more attempts until a retry or a change.
    pub parked: bool,
}

impl Failure {
    /// The entry's failure, if it has one: not written yet and an error recorded.
    pub(crate) fn of(call_id: &str, progress: &Progress, version: u64) -> Option<Failure> {
        if progress.written_version >= version {
            return None;
        }
        let reason = progress.last_error.clone()?;
        Some(Failure {
            call_id: call_id.to_string(),
            reason,
            attempts: progress.attempts,
            parked: progress.parked,
        })
    }
}

/// The most failures one listing returns: the page shows the first ones; the backlog counts all.
pub const MAX_FAILURES_LISTED: usize = 200;

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
    /// Up to `limit` due entries, each leased to the caller for `lease_ms`; at most one per call.
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
    /// Gives a claimed entry back untouched (the writer will not try it this round).
    async fn release(&self, tenant: &str, entry: &Entry) -> Result<(), OutboxError>;
    /// Takes over an entry another outbox held (this process's memory during an outage): its log
    /// becomes the wanted one and its progress joins what is known here ([`merged`]). False when
    /// the entry is being written here right now, so the caller tries again later.
    async fn adopt(&self, tenant: &str, entry: &Entry, now_ms: u64) -> Result<bool, OutboxError>;
    async fn get(&self, tenant: &str, call_id: &str) -> Result<Option<Entry>, OutboxError>;
    /// Makes an entry due now (the rep's retry). False when there is no such entry.
    async fn retry(&self, tenant: &str, call_id: &str, now_ms: u64) -> Result<bool, OutboxError>;
    /// How many entries are due or being written (not yet in V2), for `/metrics`.
    async fn backlog(&self, tenant: &str) -> Result<u64, OutboxError>;
    /// The entries not in V2 whose last attempt failed (parked or waiting to be tried again),
    /// sorted by call id, at most `limit`: for the admin page.
    async fn failed(&self, tenant: &str, limit: usize) -> Result<Vec<Failure>, OutboxError>;
    /// The calls whose activity is not in V2 yet and that only this process holds, where nothing
    /// outlives it: what is lost if it stops now. Empty for a durable outbox.
    async fn at_risk(&self, tenant: &str) -> Vec<String>;
    /// Forgets the tenant's entries V2 holds (it unsubscribed) and keeps those not in V2 yet,
    /// which are the customer's call logs. Nothing to do for a shared outbox: the directory's
    /// purge deletes its keys, or lets them expire while they hold unwritten activities.
    async fn forget_written(&self, _tenant: &str) -> Result<(), OutboxError> {
        Ok(())
    }
}

/// An entry adopted from another outbox, as the adopting one is to hold it: its progress and
/// whether it is due. `here` is what the adopting outbox held of the call (if anything) and
/// `version` the version the adopted log gets there. The activity V2 holds is the one either
/// side found or created; an entry written from memory stays written, anything else is due now
/// (parked stays parked) and the writer finds the activity by its call id.
pub fn merged(here: Option<&Entry>, adopted: &Entry, version: u64) -> (Progress, bool) {
    let theirs = &adopted.progress;
    let ours = here.map(|e| e.progress.clone()).unwrap_or_default();
    let written = adopted.is_written();
    let mut progress = Progress {
        v2_id: theirs.v2_id.clone().or(ours.v2_id),
        display_id: theirs.display_id.clone().or(ours.display_id),
        written_version: 0,
        written_notes: theirs.written_notes.clone().or(ours.written_notes),
        attempts: theirs.attempts,
        last_error: theirs.last_error.clone(),
        parked: theirs.parked && !written,
        created_from_mid_call: theirs.created_from_mid_call || ours.created_from_mid_call,
    };
    if written {
        progress.written_version = version;
    } else if theirs.written_version > 0 || ours.written_version > 0 {
        // V2 holds an older log: the link shows while the newer one is on its way.
        progress.written_version = version.saturating_sub(1);
    }
    let due = !written && (!progress.parked || adopted.due);
    (progress, due)
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Slot {
    pub(crate) log: Option<CallLog>,
    pub(crate) version: u64,
    pub(crate) progress: Progress,
    pub(crate) due_at: Option<u64>,
    #[serde(skip)]
    leased_until: u64,
    #[serde(skip)]
    lease: String,
    /// When the entry last changed, so written entries can be forgotten after a while.
    pub(crate) touched_ms: u64,
}

/// How long a written entry is kept for notes after the call.
const KEEP_WRITTEN_MS: u64 = 7 * 24 * 60 * 60 * 1000;

type Slots = HashMap<String, HashMap<String, Slot>>;

/// The embedded default. Without a journal it survives nothing but a V2 outage, like every
/// memory store; with one ([`MemoryOutbox::durable`]) every change is on disk before it is
/// acknowledged and the entries come back when the relay starts again. With Redis configured the
/// outbox survives restarts and is shared.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    tenants: Mutex<Slots>,
    journal: Option<Mutex<Journal>>,
    /// Names claims, so a give-back from a claim whose lease ran out is told apart.
    claims: AtomicU64,
}

impl MemoryOutbox {
    /// An outbox journalled in `dir` (created if missing): what the journal holds is read back
    /// now, and every change is appended (and synced) before it is acknowledged.
    pub fn durable(dir: &std::path::Path) -> Result<Self, OutboxError> {
        let (journal, slots) =
            Journal::open::<Slot>(dir).map_err(|e| OutboxError::Unavailable(e.into()))?;
        let pending: usize = slots
            .values()
            .flat_map(|t| t.values())
            .filter(|s| s.due_at.is_some())
            .count();
        if pending > 0 {
            tracing::info!(
                pending,
                "activities from before the restart are queued again"
            );
        }
        Ok(MemoryOutbox {
            tenants: Mutex::new(slots),
            journal: Some(Mutex::new(journal)),
            claims: AtomicU64::new(0),
        })
    }

    /// Whether changes outlive the process.
    pub fn is_durable(&self) -> bool {
        self.journal.is_some()
    }

    /// Runs `f` on the tenant's slots and journals the slots it names as changed, all under the
    /// lock so the journal's order is the changes' order. Fails (and changes nothing) when the
    /// journal cannot be written.
    fn change<R>(
        &self,
        tenant: &str,
        f: impl FnOnce(&mut HashMap<String, Slot>) -> (R, Vec<String>),
    ) -> Result<R, OutboxError> {
        let mut tenants = self.tenants.lock();
        let slots = tenants.entry(tenant.to_string()).or_default();
        let Some(journal) = &self.journal else {
            return Ok(f(slots).0);
        };
        let before = slots.clone();
        let (out, changed) = f(slots);
        let records: Vec<Record<Slot>> = changed
            .iter()
            .map(|id| Record {
                tenant: tenant.to_string(),
                call_id: id.clone(),
                slot: slots.get(id).cloned(),
            })
            .collect();
        let mut journal = journal.lock();
        if let Err(err) = journal.append(&records) {
            *slots = before;
            return Err(OutboxError::Unavailable(err.into()));
        }
        if journal.wants_compaction(tenants.values().map(HashMap::len).sum())
            && let Err(err) = journal.compact(&tenants)
        {
            tracing::warn!(%err, "could not compact the activity journal; it keeps growing");
        }
        Ok(out)
    }

    fn read<R>(&self, tenant: &str, f: impl FnOnce(&HashMap<String, Slot>) -> R) -> R {
        let mut tenants = self.tenants.lock();
        f(tenants.entry(tenant.to_string()).or_default())
    }

    /// Leases every entry of the tenant that nobody is writing, due or not (to move them
    /// elsewhere); give each back with [`Outbox::release`] or drop it with
    /// [`MemoryOutbox::remove`].
    pub fn lease_all(&self, tenant: &str, now_ms: u64, lease_ms: u64) -> Vec<Entry> {
        let claim = self.next_claim();
        let mut tenants = self.tenants.lock();
        let slots = tenants.entry(tenant.to_string()).or_default();
        slots
            .iter_mut()
            .filter(|(_, s)| s.leased_until <= now_ms && s.log.is_some())
            .filter_map(|(id, slot)| {
                slot.leased_until = now_ms + lease_ms;
                slot.lease = claim.clone();
                entry_of(id, slot, &claim)
            })
            .collect()
    }

    /// Forgets an entry (it moved to another outbox), if `entry`'s lease still holds it.
    pub fn remove(&self, tenant: &str, entry: &Entry) -> Result<(), OutboxError> {
        self.change(tenant, |slots| {
            let held = slots
                .get(&entry.call_id)
                .is_some_and(|s| s.lease == entry.lease);
            if held {
                slots.remove(&entry.call_id);
                ((), vec![entry.call_id.clone()])
            } else {
                ((), Vec::new())
            }
        })
    }

    /// Whether the tenant has any entry here.
    pub fn is_empty(&self, tenant: &str) -> bool {
        self.read(tenant, HashMap::is_empty)
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
        local: false,
    })
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn forget_written(&self, tenant: &str) -> Result<(), OutboxError> {
        self.change(tenant, |slots| {
            let written: Vec<String> = slots
                .iter()
                .filter(|(_, s)| {
                    s.due_at.is_none() && s.progress.written_version >= s.version && s.version > 0
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in &written {
                slots.remove(id);
            }
            ((), written)
        })
    }

    async fn put(&self, tenant: &str, log: &CallLog, now_ms: u64) -> Result<u64, OutboxError> {
        self.change(tenant, |slots| {
            slots.retain(|_, s| {
                s.due_at.is_some() || now_ms.saturating_sub(s.touched_ms) < KEEP_WRITTEN_MS
            });
            let slot = slots.entry(log.call_id.clone()).or_default();
            slot.log = Some(log.clone());
            slot.version += 1;
            slot.due_at = Some(now_ms);
            slot.touched_ms = now_ms;
            (slot.version, vec![log.call_id.clone()])
        })
    }

    async fn claim_due(
        &self,
        tenant: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, OutboxError> {
        let claim = self.next_claim();
        let mut tenants = self.tenants.lock();
        let slots = tenants.entry(tenant.to_string()).or_default();
        let mut due: Vec<(&String, &mut Slot)> = slots
            .iter_mut()
            .filter(|(_, s)| s.due_at.is_some_and(|at| at <= now_ms) && s.leased_until <= now_ms)
            .collect();
        due.sort_by_key(|(_, s)| s.due_at);
        Ok(due
            .into_iter()
            .take(limit)
            .filter_map(|(id, slot)| {
                slot.leased_until = now_ms + lease_ms;
                slot.lease = claim.clone();
                entry_of(id, slot, &claim)
            })
            .collect())
    }

    async fn finish(
        &self,
        tenant: &str,
        entry: &Entry,
        next: Next,
        now_ms: u64,
    ) -> Result<bool, OutboxError> {
        self.change(tenant, |slots| {
            let Some(slot) = slots.get_mut(&entry.call_id) else {
                return (false, Vec::new());
            };
            if slot.lease != entry.lease || slot.leased_until < now_ms {
                return (false, Vec::new());
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
            (true, vec![entry.call_id.clone()])
        })
    }

    async fn release(&self, tenant: &str, entry: &Entry) -> Result<(), OutboxError> {
        let mut tenants = self.tenants.lock();
        if let Some(slot) = tenants
            .entry(tenant.to_string())
            .or_default()
            .get_mut(&entry.call_id)
            && slot.lease == entry.lease
        {
            slot.leased_until = 0;
            slot.lease.clear();
        }
        Ok(())
    }

    async fn adopt(&self, tenant: &str, entry: &Entry, now_ms: u64) -> Result<bool, OutboxError> {
        self.change(tenant, |slots| {
            let here = slots.get(&entry.call_id);
            if here.is_some_and(|s| s.leased_until > now_ms) {
                return (false, Vec::new());
            }
            let held = here.and_then(|s| entry_of(&entry.call_id, s, ""));
            let version = here.map_or(0, |s| s.version) + 1;
            let (progress, due) = merged(held.as_ref(), entry, version);
            slots.insert(
                entry.call_id.clone(),
                Slot {
                    log: Some(entry.log.clone()),
                    version,
                    progress,
                    due_at: due.then_some(now_ms),
                    touched_ms: now_ms,
                    ..Slot::default()
                },
            );
            (true, vec![entry.call_id.clone()])
        })
    }

    async fn get(&self, tenant: &str, call_id: &str) -> Result<Option<Entry>, OutboxError> {
        Ok(self.read(tenant, |slots| {
            slots.get(call_id).and_then(|s| entry_of(call_id, s, ""))
        }))
    }

    async fn retry(&self, tenant: &str, call_id: &str, now_ms: u64) -> Result<bool, OutboxError> {
        self.change(tenant, |slots| match slots.get_mut(call_id) {
            Some(slot) if slot.log.is_some() => {
                slot.due_at = Some(now_ms);
                (true, vec![call_id.to_string()])
            }
            _ => (false, Vec::new()),
        })
    }

    async fn backlog(&self, tenant: &str) -> Result<u64, OutboxError> {
        Ok(self.read(tenant, |slots| {
            slots
                .values()
                .filter(|s| s.progress.written_version < s.version && !s.progress.parked)
                .count() as u64
        }))
    }

    async fn failed(&self, tenant: &str, limit: usize) -> Result<Vec<Failure>, OutboxError> {
        Ok(self.read(tenant, |slots| {
            let mut failed: Vec<Failure> = slots
                .iter()
                .filter(|(_, s)| s.log.is_some())
                .filter_map(|(id, s)| Failure::of(id, &s.progress, s.version))
                .collect();
            failed.sort_by(|a, b| a.call_id.cmp(&b.call_id));
            failed.truncate(limit);
            failed
        }))
    }

    async fn at_risk(&self, tenant: &str) -> Vec<String> {
        if self.journal.is_some() {
            return Vec::new();
        }
        self.read(tenant, |slots| {
            let mut ids: Vec<String> = slots
                .iter()
                .filter(|(_, s)| s.log.is_some() && s.progress.written_version < s.version)
                .map(|(id, _)| id.clone())
                .collect();
            ids.sort();
            ids
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
            from_mid_call: false,
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

    /// A directory of its own under the system's temporary one, removed when dropped.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("cti-journal-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn a_journalled_outbox_comes_back_after_a_restart() {
        let dir = TempDir::new();
        {
            let outbox = MemoryOutbox::durable(&dir.0).expect("journal");
            assert!(
                outbox.at_risk("t").await.is_empty(),
                "nothing at risk on disk"
            );
            outbox
                .put("t", &log("pending", ""), 1_000)
                .await
                .expect("put");
            outbox
                .put("t", &log("written", ""), 1_000)
                .await
                .expect("put");
            outbox
                .put("u", &log("other", "n"), 1_000)
                .await
                .expect("put");
            let claimed = outbox
                .claim_due("t", 1_000, 60_000, 10)
                .await
                .expect("claim");
            for mut entry in claimed {
                if entry.call_id == "written" {
                    entry.progress.written_version = entry.version;
                    entry.progress.v2_id = Some("pc-1".into());
                    outbox
                        .finish("t", &entry, Next::Done, 2_000)
                        .await
                        .expect("finish");
                } else {
                    entry.progress.attempts = 1;
                    outbox
                        .finish("t", &entry, Next::RetryAt(5_000), 2_000)
                        .await
                        .expect("finish");
                }
            }
            // The process dies here, with a line cut short by the crash.
        }
        let file = dir.0.join("activity-outbox.jsonl");
        let mut text = std::fs::read_to_string(&file).expect("journal");
        text.push_str("{\"tenant\":\"t\",\"call_");
        std::fs::write(&file, text).expect("torn line");

        let outbox = MemoryOutbox::durable(&dir.0).expect("journal again");
        let written = outbox
            .get("t", "written")
            .await
            .expect("get")
            .expect("kept");
        assert!(written.is_written() && !written.due);
        assert_eq!(written.progress.v2_id.as_deref(), Some("pc-1"));
        let pending = outbox
            .get("t", "pending")
            .await
            .expect("get")
            .expect("kept");
        assert_eq!((pending.due, pending.progress.attempts), (true, 1));
        let due = outbox
            .claim_due("t", 5_000, 60_000, 10)
            .await
            .expect("claim after restart");
        assert_eq!(
            due.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(),
            ["pending"]
        );
        assert_eq!(
            outbox
                .claim_due("u", 5_000, 60_000, 10)
                .await
                .expect("claim")
                .len(),
            1
        );
    }

    /// Gives `call_id`'s claimed entry back failed: `parked` as V2's refusal, else to retry.
    pub(crate) async fn fail(
        outbox: &dyn Outbox,
        tenant: &str,
        call_id: &str,
        parked: bool,
        now: u64,
    ) {
        let claimed = outbox
            .claim_due(tenant, now, 60_000, 16)
            .await
            .expect("claim");
        let mut found = None;
        for entry in claimed {
            if entry.call_id == call_id {
                found = Some(entry);
            } else {
                outbox.release(tenant, &entry).await.expect("released");
            }
        }
        let mut entry = found.expect("the entry claimed");
        entry.progress.attempts += 1;
        entry.progress.last_error = Some(format!("V2 refused {call_id}"));
        entry.progress.parked = parked;
        let next = if parked {
            Next::Parked
        } else {
            Next::RetryAt(now + 60_000)
        };
        assert!(
            outbox
                .finish(tenant, &entry, next, now)
                .await
                .expect("finish")
        );
    }

    #[tokio::test]
    async fn failures_are_listed_until_written_and_only_the_tenants_own() {
        let outbox = MemoryOutbox::default();
        for id in ["c2", "c1", "c3"] {
            outbox.put("t", &log(id, ""), 1_000).await.expect("put");
        }
        outbox.put("u", &log("c9", ""), 1_000).await.expect("put");
        fail(&outbox, "t", "c1", true, 1_000).await;
        fail(&outbox, "t", "c2", false, 1_000).await;
        fail(&outbox, "u", "c9", true, 1_000).await;

        let failed = outbox.failed("t", 10).await.expect("listed");
        assert_eq!(
            failed,
            [
                Failure {
                    call_id: "c1".into(),
                    reason: "V2 refused c1".into(),
                    attempts: 1,
                    parked: true,
                },
                Failure {
                    call_id: "c2".into(),
                    reason: "V2 refused c2".into(),
                    attempts: 1,
                    parked: false,
                },
            ]
        );
        assert_eq!(outbox.failed("t", 1).await.expect("listed").len(), 1);

        // Retried and written: no longer a failure.
        assert!(outbox.retry("t", "c1", 2_000).await.expect("retry"));
        let mut entry = outbox
            .claim_due("t", 2_000, 60_000, 16)
            .await
            .expect("claim")
            .into_iter()
            .find(|e| e.call_id == "c1")
            .expect("due again");
        entry.progress.written_version = entry.version;
        entry.progress.parked = false;
        assert!(
            outbox
                .finish("t", &entry, Next::Done, 2_000)
                .await
                .expect("finish")
        );
        let ids: Vec<String> = outbox
            .failed("t", 10)
            .await
            .expect("listed")
            .into_iter()
            .map(|f| f.call_id)
            .collect();
        assert_eq!(ids, ["c2"]);
    }
}
