//! Activities keep being queued through a Redis outage: the shared outbox first, this process's
//! memory while it fails.
//!
//! An entry queued during the outage is written from memory (the writer claims from both); a later
//! change that reaches Redis becomes an entry there, and the writer finds the activity already in
//! V2 by the call id and updates it. A crash during the outage loses what only memory held.

use async_trait::async_trait;

use super::outbox::{Entry, MemoryOutbox, Next, Outbox, OutboxError};
use crate::calls::log::CallLog;

#[derive(Debug)]
pub struct FallbackOutbox<S> {
    shared: S,
    local: MemoryOutbox,
}

impl<S> FallbackOutbox<S> {
    pub fn new(shared: S) -> Self {
        FallbackOutbox {
            shared,
            local: MemoryOutbox::default(),
        }
    }
}

fn fell_back(err: &OutboxError) {
    tracing::warn!(%err, "shared activity outbox unavailable; queueing in memory meanwhile");
}

#[async_trait]
impl<S: Outbox> Outbox for FallbackOutbox<S> {
    async fn put(&self, tenant: &str, log: &CallLog, now_ms: u64) -> Result<u64, OutboxError> {
        if self.local.get(tenant, &log.call_id).await?.is_some() {
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
        let mut due = self
            .local
            .claim_due(tenant, now_ms, lease_ms, limit)
            .await?;
        if due.len() < limit {
            match self
                .shared
                .claim_due(tenant, now_ms, lease_ms, limit - due.len())
                .await
            {
                Ok(shared) => due.extend(shared),
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
        if self.local.get(tenant, &entry.call_id).await?.is_some() {
            return self.local.finish(tenant, entry, next, now_ms).await;
        }
        self.shared.finish(tenant, entry, next, now_ms).await
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
}
