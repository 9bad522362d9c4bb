//! What an adapter remembers of a provider's calls between one notification and the next, kept
//! where every relay instance finds it.
//!
//! Some providers need the adapter to remember things of a call that the relay's legs do not
//! hold: which provider call is a rep's leg (Teams' Graph call ids, which controls address), a
//! consultation's second session standing for the consulted call, a transfer target to report
//! when the leg ends. With several instances behind one Redis, a call's notifications may land on
//! one instance and the rep's control on another, and a restarted instance remembers nothing:
//! so that state lives here, in Redis when the relay has one, else in this process's memory.
//!
//! The model is a record per key (a small map of fields to strings) in a tenant's and provider's
//! space. Fields are written and removed one by one, so two instances adding different fields to
//! one record (two legs of one call) never undo each other. A record expires a day after it was
//! last written: long enough for any call, short enough that nothing needs cleaning up.
//! Reading is best effort for the adapter: an unreachable store is logged and the adapter goes on
//! with what it knows itself (one instance's view, as without Redis).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::SharedClock;

/// How long a record outlives its last write.
pub const TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// Why the store did not answer.
#[derive(Debug, thiserror::Error)]
pub enum CallStateError {
    #[error("the adapter state store is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Records of fields, per tenant, provider and key, expiring a day after their last write.
#[async_trait]
pub trait CallStateStore: Send + Sync + std::fmt::Debug {
    /// Every field of the record (empty when there is none or it expired).
    async fn read(
        &self,
        tenant: &str,
        provider: &str,
        key: &str,
    ) -> Result<BTreeMap<String, String>, CallStateError>;

    /// Sets these fields (the record's others stay) and moves its expiry a day out.
    async fn write(
        &self,
        tenant: &str,
        provider: &str,
        key: &str,
        fields: &[(&str, &str)],
    ) -> Result<(), CallStateError>;

    /// Removes these fields; how many of them were there. An instance that removes a field and
    /// hears 1 is the one that took it (two instances never both claim one consultation).
    async fn remove(
        &self,
        tenant: &str,
        provider: &str,
        key: &str,
        fields: &[&str],
    ) -> Result<usize, CallStateError>;
    /// Forgets what this process holds of `tenant` (it unsubscribed). Nothing to do for a
    /// shared store: its keys carry the tenant's prefix, which the subscriptions directory's
    /// purge deletes.
    async fn forget_tenant(&self, _tenant: &str) {}
}

#[derive(Debug)]
struct Record {
    fields: BTreeMap<String, String>,
    expires_ms: u64,
}

#[derive(Debug, Default)]
struct Records {
    map: HashMap<(String, String, String), Record>,
    /// The size at which expired records are swept next.
    sweep_at: usize,
}

/// One process's records (no Redis: one instance serves all, and a restart forgets).
#[derive(Debug)]
pub struct MemoryCallState {
    records: Mutex<Records>,
    clock: SharedClock,
}

impl MemoryCallState {
    pub fn new(clock: SharedClock) -> Self {
        MemoryCallState {
            records: Mutex::default(),
            clock,
        }
    }

    fn records(&self) -> parking_lot::MutexGuard<'_, Records> {
        self.records.lock()
    }
}

fn scoped(tenant: &str, provider: &str, key: &str) -> (String, String, String) {
    (tenant.to_string(), provider.to_string(), key.to_string())
}

#[async_trait]
impl CallStateStore for MemoryCallState {
    async fn forget_tenant(&self, tenant: &str) {
        self.records().map.retain(|(t, _, _), _| t != tenant);
    }

    async fn read(
        &self,
        tenant: &str,
        provider: &str,
        key: &str,
    ) -> Result<BTreeMap<String, String>, CallStateError> {
        let now = self.clock.now_ms();
        let mut records = self.records();
        let at = scoped(tenant, provider, key);
        match records.map.get(&at) {
            Some(record) if record.expires_ms > now => Ok(record.fields.clone()),
            Some(_) => {
                records.map.remove(&at);
                Ok(BTreeMap::new())
            }
            None => Ok(BTreeMap::new()),
        }
    }

    async fn write(
        &self,
        tenant: &str,
        provider: &str,
        key: &str,
        fields: &[(&str, &str)],
    ) -> Result<(), CallStateError> {
        let now = self.clock.now_ms();
        let mut records = self.records();
        if records.map.len() >= records.sweep_at {
            records.map.retain(|_, r| r.expires_ms > now);
            records.sweep_at = (records.map.len() * 2).max(1024);
        }
        let record = records
            .map
            .entry(scoped(tenant, provider, key))
            .or_insert_with(|| Record {
                fields: BTreeMap::new(),
                expires_ms: 0,
            });
        if record.expires_ms <= now {
            record.fields.clear();
        }
        for (field, value) in fields {
            record.fields.insert(field.to_string(), value.to_string());
        }
        record.expires_ms = now + TTL_MS;
        Ok(())
    }

    async fn remove(
        &self,
        tenant: &str,
        provider: &str,
        key: &str,
        fields: &[&str],
    ) -> Result<usize, CallStateError> {
        let now = self.clock.now_ms();
        let mut records = self.records();
        let Some(record) = records.map.get_mut(&scoped(tenant, provider, key)) else {
            return Ok(0);
        };
        if record.expires_ms <= now {
            return Ok(0);
        }
        Ok(fields
            .iter()
            .filter(|f| record.fields.remove(**f).is_some())
            .count())
    }
}

/// Records as Redis hashes, `cti:{tenant}:adapter:{provider}:{key}` (in the tenant's hash tag,
/// like the relay's other keys), shared by every instance.
#[derive(Clone)]
pub struct RedisCallState {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisCallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisCallState")
    }
}

impl RedisCallState {
    /// On a connection the process shares with its other stores.
    pub fn with_connection(conn: ConnectionManager) -> Self {
        RedisCallState { conn }
    }
}

fn redis_key(tenant: &str, provider: &str, key: &str) -> String {
    format!("cti:{{{tenant}}}:adapter:{provider}:{key}")
}

fn unavailable(err: redis::RedisError) -> CallStateError {
    CallStateError::Unavailable(Box::new(err))
}

#[async_trait]
impl CallStateStore for RedisCallState {
    async fn read(
        &self,
        tenant: &str,
        provider: &str,
        key: &str,
    ) -> Result<BTreeMap<String, String>, CallStateError> {
        let mut conn = self.conn.clone();
        redis::cmd("HGETALL")
            .arg(redis_key(tenant, provider, key))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn write(
        &self,
        tenant: &str,
        provider: &str,
        key: &str,
        fields: &[(&str, &str)],
    ) -> Result<(), CallStateError> {
        if fields.is_empty() {
            return Ok(());
        }
        let key = redis_key(tenant, provider, key);
        let mut conn = self.conn.clone();
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for (field, value) in fields {
            hset.arg(*field).arg(*value);
        }
        redis::pipe()
            .atomic()
            .add_command(hset)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(TTL_MS)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn remove(
        &self,
        tenant: &str,
        provider: &str,
        key: &str,
        fields: &[&str],
    ) -> Result<usize, CallStateError> {
        if fields.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let mut hdel = redis::cmd("HDEL");
        hdel.arg(redis_key(tenant, provider, key));
        for field in fields {
            hdel.arg(*field);
        }
        hdel.query_async(&mut conn).await.map_err(unavailable)
    }
}

/// One adapter's view of the store: its tenant and provider fixed, failures logged rather than
/// returned (an adapter goes on with what it knows itself), values as JSON where they are
/// structured.
#[derive(Debug, Clone)]
pub struct AdapterState {
    store: Arc<dyn CallStateStore>,
    tenant: String,
    provider: &'static str,
}

impl AdapterState {
    pub fn new(store: Arc<dyn CallStateStore>, tenant: &str, provider: &'static str) -> Self {
        AdapterState {
            store,
            tenant: tenant.to_string(),
            provider,
        }
    }

    /// This process's memory only: an adapter built without the relay's stores (its unit tests).
    pub fn local(clock: SharedClock, tenant: &str, provider: &'static str) -> Self {
        Self::new(Arc::new(MemoryCallState::new(clock)), tenant, provider)
    }

    fn failed(&self, what: &str, err: &CallStateError) {
        tracing::warn!(tenant = %self.tenant, provider = self.provider, %err, "{what}");
    }

    /// The record's fields; empty when there is none or the store did not answer.
    pub async fn read(&self, key: &str) -> BTreeMap<String, String> {
        match self.store.read(&self.tenant, self.provider, key).await {
            Ok(fields) => fields,
            Err(err) => {
                self.failed("reading a call's shared state failed", &err);
                BTreeMap::new()
            }
        }
    }

    /// One field of the record.
    pub async fn field(&self, key: &str, field: &str) -> Option<String> {
        self.read(key).await.remove(field)
    }

    pub async fn write(&self, key: &str, fields: &[(&str, &str)]) {
        if let Err(err) = self
            .store
            .write(&self.tenant, self.provider, key, fields)
            .await
        {
            self.failed("writing a call's shared state failed", &err);
        }
    }

    /// Writes one field as JSON.
    pub async fn write_json(&self, key: &str, field: &str, value: &impl Serialize) {
        match serde_json::to_string(value) {
            Ok(json) => self.write(key, &[(field, &json)]).await,
            Err(err) => tracing::warn!(%err, "a call's state does not serialize"),
        }
    }

    /// Removes fields; how many were there (0 too when the store did not answer).
    pub async fn remove(&self, key: &str, fields: &[&str]) -> usize {
        match self
            .store
            .remove(&self.tenant, self.provider, key, fields)
            .await
        {
            Ok(n) => n,
            Err(err) => {
                self.failed("removing a call's shared state failed", &err);
                0
            }
        }
    }
}

/// A field's JSON read back; None (logged) when it is not what this version writes.
pub fn decode<T: DeserializeOwned>(json: &str) -> Option<T> {
    match serde_json::from_str(json) {
        Ok(value) => Some(value),
        Err(err) => {
            tracing::warn!(%err, "skipping unreadable shared call state");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn memory() -> (MemoryCallState, ManualClock) {
        let clock = ManualClock::new(1_000);
        (MemoryCallState::new(Arc::new(clock.clone())), clock)
    }

    #[tokio::test]
    async fn fields_add_up_and_tenants_and_providers_do_not_see_each_other() {
        let (store, _) = memory();
        store
            .write("t1", "teams", "k", &[("a", "1")])
            .await
            .expect("memory answers");
        store
            .write("t1", "teams", "k", &[("b", "2")])
            .await
            .expect("memory answers");
        let got = store
            .read("t1", "teams", "k")
            .await
            .expect("memory answers");
        assert_eq!(got.get("a").map(String::as_str), Some("1"));
        assert_eq!(got.get("b").map(String::as_str), Some("2"));
        assert!(
            store
                .read("t2", "teams", "k")
                .await
                .expect("memory answers")
                .is_empty()
        );
        assert!(
            store
                .read("t1", "webex", "k")
                .await
                .expect("memory answers")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_field_is_removed_once_so_one_remover_takes_it() {
        let (store, _) = memory();
        store
            .write("t", "p", "k", &[("a", "1")])
            .await
            .expect("memory answers");
        assert_eq!(
            store
                .remove("t", "p", "k", &["a"])
                .await
                .expect("memory answers"),
            1
        );
        assert_eq!(
            store
                .remove("t", "p", "k", &["a"])
                .await
                .expect("memory answers"),
            0
        );
    }

    #[tokio::test]
    async fn a_record_expires_a_day_after_its_last_write() {
        let (store, clock) = memory();
        store
            .write("t", "p", "k", &[("a", "1")])
            .await
            .expect("memory answers");
        clock.advance_ms(TTL_MS - 1);
        store
            .write("t", "p", "k", &[("b", "2")])
            .await
            .expect("memory answers");
        clock.advance_ms(TTL_MS - 1);
        assert_eq!(
            store
                .read("t", "p", "k")
                .await
                .expect("memory answers")
                .len(),
            2
        );
        clock.advance_ms(1);
        assert!(
            store
                .read("t", "p", "k")
                .await
                .expect("memory answers")
                .is_empty()
        );
        assert_eq!(
            store
                .remove("t", "p", "k", &["a"])
                .await
                .expect("memory answers"),
            0
        );
    }
}
