//! Activities keep being queued through a Redis outage: the shared outbox first, this process's
//! memory while it fails.
//!
//! An entry queued during the outage is written from memory (the writer claims from both). Once
//! the shared outbox answers again, every entry memory holds moves there ([`Outbox::adopt`]: its
//! log becomes the wanted one, its progress joins what the shared outbox knew), before anything
//! is claimed, so the call has one entry again and every instance can write it. Each claimed
//! entry goes back where it was claimed from, and a round never claims one call twice: were a
//! call in both, the memory copy (the newer log) is the one written. A crash during the outage
//! loses what only memory held, unless memory is journalled ([`MemoryOutbox::durable`]).

use async_trait::async_trait;

use super::outbox::{Entry, Failure, MemoryOutbox, Next, Outbox, OutboxError};
use crate::calls::log::CallLog;

/// How long entries moving to the shared outbox are held in memory against the writer.
const MOVE_LEASE_MS: u64 = 30_000;

#[derive(Debug)]
pub struct FallbackOutbox<S> {
    shared: S,
    local: MemoryOutbox,
}

impl<S> FallbackOutbox<S> {
    pub fn new(shared: S) -> Self {
        Self::with_local(shared, MemoryOutbox::default())
    }

    /// With `local` as the memory it falls back to (a journalled one keeps entries across a
    /// restart during the outage).
    pub fn with_local(shared: S, local: MemoryOutbox) -> Self {
        FallbackOutbox { shared, local }
    }
}

fn fell_back(err: &OutboxError) {
    tracing::warn!(%err, "shared activity outbox unavailable; queueing in memory meanwhile");
}

impl<S: Outbox> FallbackOutbox<S> {
    /// Moves what memory holds of the tenant to the shared outbox; stops at the first failure
    /// (the outage goes on). Entries being written from memory stay until given back.
    async fn move_to_shared(&self, tenant: &str, now_ms: u64) -> Result<(), OutboxError> {
        if self.local.is_empty(tenant) {
            return Ok(());
        }
        let entries = self.local.lease_all(tenant, now_ms, MOVE_LEASE_MS);
        let mut result = Ok(());
        for entry in &entries {
            if result.is_err() {
                self.local.release(tenant, entry).await?;
                continue;
            }
            match self.shared.adopt(tenant, entry, now_ms).await {
                Ok(true) => {
                    self.local.remove(tenant, entry)?;
                    tracing::info!(tenant, call = %entry.call_id, "activity queued during the Redis outage moved to Redis");
                }
                Ok(false) => self.local.release(tenant, entry).await?,
                Err(err) => {
                    self.local.release(tenant, entry).await?;
                    result = Err(err);
                }
            }
        }
        result
    }
}

#[async_trait]
impl<S: Outbox> Outbox for FallbackOutbox<S> {
    async fn put(&self, tenant: &str, log: &CallLog, now_ms: u64) -> Result<u64, OutboxError> {
        if self.local.get(tenant, &log.call_id).await?.is_some() {
            // Memory has the call (it moves to the shared outbox with this newer log).
            return self.local.put(tenant, log, now_ms).await;
        }
        match self.shared.put(tenant, log, now_ms).await {
            Ok(version) => Ok(version),
            Err(err) => {
                fell_back(&err);
                self.local.put(tenant, log, now_ms).await
            }
        }
    }

    async fn claim_due(
        &self,
        tenant: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, OutboxError> {
        let shared_up = match self.move_to_shared(tenant, now_ms).await {
            Ok(()) => true,
            Err(err) => {
                fell_back(&err);
                false
            }
        };
        let mut due = self
            .local
            .claim_due(tenant, now_ms, lease_ms, limit)
            .await?;
        for entry in &mut due {
            entry.local = true;
        }
        if due.len() < limit && shared_up {
            match self
                .shared
                .claim_due(tenant, now_ms, lease_ms, limit - due.len())
                .await
            {
                Ok(shared) => {
                    for entry in shared {
                        let in_memory = due.iter().any(|d| d.call_id == entry.call_id)
                            || self.local.get(tenant, &entry.call_id).await?.is_some();
                        if in_memory {
                            // Memory's copy (the newer log) is being written; the shared one
                            // waits until it moved over.
                            if let Err(err) = self.shared.release(tenant, &entry).await {
                                tracing::warn!(%err, call = %entry.call_id, "could not give a claim back; its lease runs out");
                            }
                        } else {
                            due.push(entry);
                        }
                    }
                }
                Err(err) if due.is_empty() => return Err(err),
                Err(err) => fell_back(&err),
            }
        }
        Ok(due)
    }

    async fn finish(
        &self,
        tenant: &str,
        entry: &Entry,
        next: Next,
        now_ms: u64,
    ) -> Result<bool, OutboxError> {
        if entry.local {
            return self.local.finish(tenant, entry, next, now_ms).await;
        }
        self.shared.finish(tenant, entry, next, now_ms).await
    }

    async fn release(&self, tenant: &str, entry: &Entry) -> Result<(), OutboxError> {
        if entry.local {
            return self.local.release(tenant, entry).await;
        }
        self.shared.release(tenant, entry).await
    }

    async fn adopt(&self, tenant: &str, entry: &Entry, now_ms: u64) -> Result<bool, OutboxError> {
        match self.shared.adopt(tenant, entry, now_ms).await {
            Ok(adopted) => Ok(adopted),
            Err(err) => {
                fell_back(&err);
                self.local.adopt(tenant, entry, now_ms).await
            }
        }
    }

    async fn get(&self, tenant: &str, call_id: &str) -> Result<Option<Entry>, OutboxError> {
        if let Some(entry) = self.local.get(tenant, call_id).await? {
            return Ok(Some(entry));
        }
        self.shared.get(tenant, call_id).await
    }

    async fn retry(&self, tenant: &str, call_id: &str, now_ms: u64) -> Result<bool, OutboxError> {
        if self.local.retry(tenant, call_id, now_ms).await? {
            return Ok(true);
        }
        self.shared.retry(tenant, call_id, now_ms).await
    }

    async fn backlog(&self, tenant: &str) -> Result<u64, OutboxError> {
        let local = self.local.backlog(tenant).await?;
        Ok(local + self.shared.backlog(tenant).await.unwrap_or(0))
    }

    /// Both outboxes' failures; a call in both shows memory's copy (the one being written).
    /// With the shared outbox down, memory's alone, as the backlog counts.
    async fn failed(&self, tenant: &str, limit: usize) -> Result<Vec<Failure>, OutboxError> {
        let mut failed = self.local.failed(tenant, limit).await?;
        match self.shared.failed(tenant, limit).await {
            Ok(shared) => {
                for failure in shared {
                    if !failed.iter().any(|f| f.call_id == failure.call_id) {
                        failed.push(failure);
                    }
                }
            }
            Err(err) => fell_back(&err),
        }
        failed.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        failed.truncate(limit);
        Ok(failed)
    }

    async fn at_risk(&self, tenant: &str) -> Vec<String> {
        let mut ids = self.local.at_risk(tenant).await;
        ids.extend(self.shared.at_risk(tenant).await);
        ids
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::activity::outbox::tests::log;

    /// A shared outbox that fails while it is down, as Redis does in an outage.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: MemoryOutbox,
        down: AtomicBool,
    }

    impl Flaky {
        fn check(&self) -> Result<(), OutboxError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(OutboxError::Unavailable("down".into()));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl Outbox for Flaky {
        async fn put(&self, t: &str, log: &CallLog, now: u64) -> Result<u64, OutboxError> {
            self.check()?;
            self.inner.put(t, log, now).await
        }
        async fn claim_due(
            &self,
            t: &str,
            now: u64,
            lease: u64,
            limit: usize,
        ) -> Result<Vec<Entry>, OutboxError> {
            self.check()?;
            self.inner.claim_due(t, now, lease, limit).await
        }
        async fn finish(&self, t: &str, e: &Entry, n: Next, now: u64) -> Result<bool, OutboxError> {
            self.check()?;
            self.inner.finish(t, e, n, now).await
        }
        async fn release(&self, t: &str, e: &Entry) -> Result<(), OutboxError> {
            self.check()?;
            self.inner.release(t, e).await
        }
        async fn adopt(&self, t: &str, e: &Entry, now: u64) -> Result<bool, OutboxError> {
            self.check()?;
            self.inner.adopt(t, e, now).await
        }
        async fn get(&self, t: &str, id: &str) -> Result<Option<Entry>, OutboxError> {
            self.check()?;
            self.inner.get(t, id).await
        }
        async fn retry(&self, t: &str, id: &str, now: u64) -> Result<bool, OutboxError> {
            self.check()?;
            self.inner.retry(t, id, now).await
        }
        async fn backlog(&self, t: &str) -> Result<u64, OutboxError> {
            self.check()?;
            self.inner.backlog(t).await
        }
        async fn failed(&self, t: &str, limit: usize) -> Result<Vec<Failure>, OutboxError> {
            self.check()?;
            self.inner.failed(t, limit).await
        }
        async fn at_risk(&self, _t: &str) -> Vec<String> {
            Vec::new()
        }
    }

    fn outbox() -> FallbackOutbox<Flaky> {
        FallbackOutbox::new(Flaky::default())
    }

    fn down(outbox: &FallbackOutbox<Flaky>, down: bool) {
        outbox.shared.down.store(down, Ordering::SeqCst);
    }

    /// Writes every claimed entry as V2 would take it, returning the call ids claimed.
    async fn write_round(outbox: &FallbackOutbox<Flaky>, now: u64) -> Vec<String> {
        let claimed = outbox.claim_due("t", now, 60_000, 16).await.expect("claim");
        let mut ids = Vec::new();
        for mut entry in claimed {
            entry.progress.written_version = entry.version;
            entry.progress.v2_id.get_or_insert_with(|| "pc-1".into());
            assert!(
                outbox
                    .finish("t", &entry, Next::Done, now)
                    .await
                    .expect("finish")
            );
            ids.push(entry.call_id);
        }
        ids
    }

    #[tokio::test]
    async fn a_call_queued_in_both_is_claimed_once_and_finished_where_it_came_from() {
        let outbox = outbox();
        outbox.put("t", &log("c", ""), 1_000).await.expect("put");
        assert_eq!(
            outbox
                .shared
                .inner
                .get("t", "c")
                .await
                .expect("get")
                .map(|e| e.due),
            Some(true)
        );
        down(&outbox, true);
        outbox
            .put("t", &log("c", "notes in the outage"), 2_000)
            .await
            .expect("put in memory");
        assert!(!outbox.local.is_empty("t"));
        down(&outbox, false);

        assert_eq!(
            write_round(&outbox, 3_000).await,
            ["c"],
            "one claim per call"
        );
        assert!(
            outbox.local.is_empty("t"),
            "memory's entry moved to the shared outbox"
        );
        let shared = outbox
            .shared
            .inner
            .get("t", "c")
            .await
            .expect("get")
            .expect("entry");
        assert!(!shared.due, "the shared entry is written, not due again");
        assert!(shared.is_written());
        assert_eq!(shared.log.notes, "notes in the outage", "the newer log won");
        assert!(
            write_round(&outbox, 100_000).await.is_empty(),
            "nothing is re-claimed"
        );
    }

    #[tokio::test]
    async fn an_entry_written_from_memory_stays_written_when_it_moves() {
        let outbox = outbox();
        down(&outbox, true);
        outbox.put("t", &log("c", "n"), 1_000).await.expect("put");
        assert_eq!(
            write_round(&outbox, 1_000).await,
            ["c"],
            "written from memory"
        );
        down(&outbox, false);
        assert!(
            write_round(&outbox, 2_000).await.is_empty(),
            "not written twice"
        );
        let shared = outbox
            .shared
            .inner
            .get("t", "c")
            .await
            .expect("get")
            .expect("moved");
        assert!(shared.is_written() && !shared.due);
        assert_eq!(shared.progress.v2_id.as_deref(), Some("pc-1"));
    }

    #[tokio::test]
    async fn a_shared_copy_waits_while_memory_writes_the_call() {
        let outbox = outbox();
        outbox.put("t", &log("c", ""), 1_000).await.expect("put");
        down(&outbox, true);
        outbox
            .put("t", &log("c", "n"), 2_000)
            .await
            .expect("put in memory");
        let in_flight = outbox
            .claim_due("t", 2_000, 60_000, 16)
            .await
            .expect("claim");
        assert_eq!(in_flight.len(), 1);
        assert!(in_flight[0].local);
        down(&outbox, false);
        assert!(
            outbox
                .claim_due("t", 2_500, 60_000, 16)
                .await
                .expect("claim")
                .is_empty(),
            "the shared copy is not written beside memory's"
        );
        let mut entry = in_flight[0].clone();
        entry.progress.written_version = entry.version;
        assert!(
            outbox
                .finish("t", &entry, Next::Done, 3_000)
                .await
                .expect("finish")
        );
        assert!(
            write_round(&outbox, 3_000).await.is_empty(),
            "moved over as written"
        );
        assert!(outbox.local.is_empty("t"));
    }

    #[tokio::test]
    async fn failures_come_from_both_outboxes_and_from_memory_alone_in_an_outage() {
        use crate::activity::outbox::tests::fail;
        let outbox = outbox();
        outbox
            .put("t", &log("shared", ""), 1_000)
            .await
            .expect("put");
        fail(&outbox.shared, "t", "shared", true, 1_000).await;
        down(&outbox, true);
        outbox
            .put("t", &log("memory", ""), 2_000)
            .await
            .expect("put in memory");
        fail(&outbox.local, "t", "memory", false, 2_000).await;

        let ids = |failed: Vec<Failure>| failed.into_iter().map(|f| f.call_id).collect::<Vec<_>>();
        assert_eq!(
            ids(outbox.failed("t", 10).await.expect("listed")),
            ["memory"]
        );
        down(&outbox, false);
        assert_eq!(
            ids(outbox.failed("t", 10).await.expect("listed")),
            ["memory", "shared"]
        );
    }
}
