//! The number index in Redis, shared by every relay instance of a deployment.
//!
//! Per tenant, one hash from number to records (`cti:{<tenant>}:numbers`, field = E.164, value =
//! the records as JSON), so a lookup is one `HGET`, and one from record id to its numbers
//! (`cti:{<tenant>}:records`) for incremental updates. A rebuild writes both complete under keys of
//! their own and swaps them in with two `RENAME`s in one transaction: a lookup sees the old index
//! or the new one, never a mix. An incremental update is a Lua script, atomic like any script. The
//! tenant sits in a hash tag, so one tenant's keys stay on one node of a Redis cluster.
//!
//! The same connection serves the refresh coordination: the rebuild lease (`SET NX PX`, released
//! and extended only by its holder), the last build time, and the recent changes (a sorted set
//! scored by time); and the reps' remembered choices, one key each that expires when unused
//! (`cti:{<tenant>}:choice:<rep>|<number>`, [`CHOICE_TTL`]).

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::Serialize;

use super::choices::ChoiceStore;
use super::coordination::{CHANGES_KEPT_MS, RefreshCoordination};
use super::generation::Generation;
use super::index::{IndexError, NumberIndex};
use super::record::IndexedRecord;

/// Fields written per round trip while building.
const BATCH: usize = 1_000;

#[derive(Clone)]
pub struct RedisIndex {
    conn: ConnectionManager,
    /// How long a remembered choice lasts without use.
    choice_ttl: Duration,
}

impl std::fmt::Debug for RedisIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisIndex")
    }
}

fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> IndexError {
    IndexError::Unavailable(err.into())
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

/// Writes `fields` into the hash `target`, [`BATCH`] at a time.
async fn store_in_batches(
    conn: &mut ConnectionManager,
    target: &str,
    fields: impl Iterator<Item = (String, String)>,
) -> Result<(), IndexError> {
    let mut fields = fields.peekable();
    while fields.peek().is_some() {
        let chunk: Vec<(String, String)> = fields.by_ref().take(BATCH).collect();
        let mut pipe = redis::pipe();
        pipe.hset_multiple(target, &chunk)
            .ignore()
            // A build that dies half-way leaves nothing behind for long.
            .expire(target, 3_600)
            .ignore();
        let _: () = pipe.query_async(conn).await.map_err(unavailable)?;
    }
    Ok(())
}

fn key(tenant: &str) -> String {
    format!("cti:{{{tenant}}}:numbers")
}

fn records_key(tenant: &str) -> String {
    format!("cti:{{{tenant}}}:records")
}

fn tenant_key(tenant: &str, what: &str) -> String {
    format!("cti:{{{tenant}}}:{what}")
}

/// Takes record ARGV[1] off the numbers it carried and, when numbers follow its JSON (ARGV[2]),
/// puts it under them. KEYS: the numbers hash, the records hash.
const UPSERT: &str = r#"
local id = ARGV[1]
local old = redis.call('HGET', KEYS[2], id)
if old then
  for _, number in ipairs(cjson.decode(old)) do
    local list = redis.call('HGET', KEYS[1], number)
    if list then
      local keep = {}
      for _, record in ipairs(cjson.decode(list)) do
        if record.id ~= id then table.insert(keep, record) end
      end
      if #keep == 0 then
        redis.call('HDEL', KEYS[1], number)
      else
        redis.call('HSET', KEYS[1], number, cjson.encode(keep))
      end
    end
  end
  redis.call('HDEL', KEYS[2], id)
end
if #ARGV < 3 then return 0 end
local record = cjson.decode(ARGV[2])
local numbers = {}
for i = 3, #ARGV do
  local number = ARGV[i]
  table.insert(numbers, number)
  local list = redis.call('HGET', KEYS[1], number)
  local records = {}
  if list then records = cjson.decode(list) end
  table.insert(records, record)
  redis.call('HSET', KEYS[1], number, cjson.encode(records))
end
redis.call('HSET', KEYS[2], id, cjson.encode(numbers))
return #numbers
"#;

impl RedisIndex {
    /// Connects (and later reconnects by itself; see [`crate::shared_store`]).
    pub async fn connect(url: &str) -> Result<Self, IndexError> {
        let conn = crate::shared_store::connect(url)
            .await
            .map_err(unavailable)?;
        Ok(Self::with_connection(conn))
    }

    /// On a connection the process shares with its other stores.
    pub fn with_connection(conn: ConnectionManager) -> Self {
        RedisIndex {
            conn,
            choice_ttl: CHOICE_TTL,
        }
    }
}

#[async_trait]
impl NumberIndex for RedisIndex {
    async fn lookup(&self, tenant: &str, e164: &str) -> Result<Vec<IndexedRecord>, IndexError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = conn.hget(key(tenant), e164).await.map_err(unavailable)?;
        match value {
            None => Ok(Vec::new()),
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| unavailable(format!("corrupt index entry for a number: {e}"))),
        }
    }

    async fn replace(&self, tenant: &str, generation: Generation) -> Result<(), IndexError> {
        let mut conn = self.conn.clone();
        let (numbers_key, records_key) = (key(tenant), records_key(tenant));
        if generation.is_empty() {
            let _: () = conn
                .del(&[&numbers_key, &records_key])
                .await
                .map_err(unavailable)?;
            return Ok(());
        }
        let build = uuid::Uuid::new_v4();
        let building_numbers = format!("{numbers_key}:building:{build}");
        let building_records = format!("{records_key}:building:{build}");
        // Written a batch at a time, so a large tenant's index is never all JSON at once.
        let numbers = generation
            .entries()
            .map(|(number, records)| (number, to_json(&records)));
        let reverse = generation
            .numbers_by_record()
            .map(|(id, numbers)| (id, to_json(&numbers)));
        store_in_batches(&mut conn, &building_numbers, numbers).await?;
        store_in_batches(&mut conn, &building_records, reverse).await?;
        let _: () = redis::pipe()
            .atomic()
            .rename(&building_numbers, &numbers_key)
            .ignore()
            .rename(&building_records, &records_key)
            .ignore()
            .persist(&numbers_key)
            .ignore()
            .persist(&records_key)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn upsert(
        &self,
        tenant: &str,
        record: IndexedRecord,
        numbers: Vec<String>,
    ) -> Result<(), IndexError> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(&record).map_err(unavailable)?;
        let _: i64 = redis::Script::new(UPSERT)
            .key(key(tenant))
            .key(records_key(tenant))
            .arg(&record.id)
            .arg(json)
            .arg(numbers)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn remove(&self, tenant: &str, record_id: &str) -> Result<(), IndexError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::Script::new(UPSERT)
            .key(key(tenant))
            .key(records_key(tenant))
            .arg(record_id)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn len(&self, tenant: &str) -> Result<usize, IndexError> {
        let mut conn = self.conn.clone();
        conn.hlen(key(tenant)).await.map_err(unavailable)
    }
}

#[async_trait]
impl RefreshCoordination for RedisIndex {
    async fn acquire(&self, tenant: &str, holder: &str, ttl: Duration) -> Result<bool, IndexError> {
        let mut conn = self.conn.clone();
        crate::shared_store::acquire_lease(
            &mut conn,
            &tenant_key(tenant, "rebuild-lease"),
            holder,
            ttl,
        )
        .await
        .map_err(unavailable)
    }

    async fn release(&self, tenant: &str, holder: &str) -> Result<(), IndexError> {
        let mut conn = self.conn.clone();
        crate::shared_store::release_lease(&mut conn, &tenant_key(tenant, "rebuild-lease"), holder)
            .await
            .map_err(unavailable)
    }

    async fn last_built(&self, tenant: &str) -> Result<Option<u64>, IndexError> {
        let mut conn = self.conn.clone();
        conn.get(tenant_key(tenant, "built-at"))
            .await
            .map_err(unavailable)
    }

    async fn set_last_built(&self, tenant: &str, at_ms: u64) -> Result<(), IndexError> {
        let mut conn = self.conn.clone();
        conn.set(tenant_key(tenant, "built-at"), at_ms)
            .await
            .map_err(unavailable)
    }

    async fn note_change(&self, tenant: &str, entity: &str, at_ms: u64) -> Result<(), IndexError> {
        let mut conn = self.conn.clone();
        let changes = tenant_key(tenant, "changes");
        let _: () = redis::pipe()
            .zadd(&changes, entity, at_ms)
            .ignore()
            .zrembyscore(&changes, 0, at_ms.saturating_sub(CHANGES_KEPT_MS))
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn changes_since(&self, tenant: &str, since_ms: u64) -> Result<Vec<String>, IndexError> {
        let mut conn = self.conn.clone();
        conn.zrangebyscore(tenant_key(tenant, "changes"), since_ms, "+inf")
            .await
            .map_err(unavailable)
    }
}

/// How long a remembered choice lasts without being used: a rep who picked a record for a
/// number and never took a call from it again, or a tenant that stopped using the relay, leaves
/// nothing behind for longer than this. Reading a choice (a call from that number) renews it.
pub const CHOICE_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// A choice's key: one key per (tenant, rep, number), so each expires by itself (Redis before
/// 7.4 cannot expire a hash field). The tenant is the hash tag, as for every tenant key; the
/// number comes last and has no `|`, so the key names one rep and one number.
fn choice_key(tenant: &str, rep: &str, e164: &str) -> String {
    format!("cti:{{{tenant}}}:choice:{}|{e164}", rep.to_lowercase())
}

/// Before choices expired they lived in one hash per tenant (`cti:{<tenant>}:choices`, field
/// `<rep>|<number>`, no expiry); a choice it still holds is moved to a key of its own when it
/// is read, and the hash is given [`CHOICE_TTL`] the first time a choice of its tenant is read
/// or written, so it goes too.
fn legacy_choices_key(tenant: &str) -> String {
    tenant_key(tenant, "choices")
}

/// Reads a choice and renews its life. KEYS: the choice's key, the old per-tenant hash.
/// ARGV: the hash field, the life in milliseconds.
const GET_CHOICE: &str = r#"
if redis.call('PTTL', KEYS[2]) == -1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
local id = redis.call('GETEX', KEYS[1], 'PX', ARGV[2])
if id then return id end
id = redis.call('HGET', KEYS[2], ARGV[1])
if id then
  redis.call('SET', KEYS[1], id, 'PX', ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return id
"#;

/// Writes a choice with its life, and drops the same choice from the old hash (else it would
/// come back once the new key expires). KEYS as for [`GET_CHOICE`]; ARGV: the hash field, the
/// record id, the life in milliseconds.
const PUT_CHOICE: &str = r#"
if redis.call('PTTL', KEYS[2]) == -1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"#;

impl RedisIndex {
    /// Remembered choices last `ttl` without use instead of [`CHOICE_TTL`] (tests see one
    /// expire without waiting for months).
    pub fn with_choice_ttl(mut self, ttl: Duration) -> Self {
        self.choice_ttl = ttl;
        self
    }

    fn choice_ttl_ms(&self) -> u64 {
        u64::try_from(self.choice_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// Choices live one key per (tenant, rep, number), each with its life ([`CHOICE_TTL`]).
#[async_trait]
impl ChoiceStore for RedisIndex {
    async fn get(&self, tenant: &str, rep: &str, e164: &str) -> Result<Option<String>, IndexError> {
        let mut conn = self.conn.clone();
        redis::Script::new(GET_CHOICE)
            .key(choice_key(tenant, rep, e164))
            .key(legacy_choices_key(tenant))
            .arg(format!("{}|{e164}", rep.to_lowercase()))
            .arg(self.choice_ttl_ms())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn put(
        &self,
        tenant: &str,
        rep: &str,
        e164: &str,
        record_id: &str,
    ) -> Result<(), IndexError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::Script::new(PUT_CHOICE)
            .key(choice_key(tenant, rep, e164))
            .key(legacy_choices_key(tenant))
            .arg(format!("{}|{e164}", rep.to_lowercase()))
            .arg(record_id)
            .arg(self.choice_ttl_ms())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
