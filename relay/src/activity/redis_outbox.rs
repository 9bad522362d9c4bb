//! The activity outbox in Redis: it survives relay restarts and is shared by every instance.
//!
//! Per tenant (keys in the tenant's hash tag): hashes of wanted logs, their versions and the
//! delivery progress; a sorted set of due entries (score: due time); a sorted set of written or
//! parked ones (score: when), so they are forgotten after a week; a lease key per entry being
//! written. Each operation is one Lua script, so a claim, a put and a give-back never interleave.

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::outbox::{Entry, Failure, Next, Outbox, OutboxError, Progress};
use crate::calls::log::CallLog;

/// How long a written entry is kept for notes after the call.
const KEEP_WRITTEN_MS: u64 = 7 * 24 * 60 * 60 * 1000;

const PUT: &str = r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local version = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
local old = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[4], 'LIMIT', 0, 100)
for _, id in ipairs(old) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[5], id)
end
return version
"#;

const CLAIM: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]) * 4)
local out = {}
local taken = 0
for _, id in ipairs(ids) do
  if taken >= tonumber(ARGV[3]) then break end
  if redis.call('SET', ARGV[4] .. id, ARGV[5], 'NX', 'PX', ARGV[2]) then
    taken = taken + 1
    table.insert(out, id)
    table.insert(out, redis.call('HGET', KEYS[1], id) or '')
    table.insert(out, redis.call('HGET', KEYS[2], id) or '0')
    table.insert(out, redis.call('HGET', KEYS[3], id) or '')
  end
end
return out
"#;

/// Gives an entry back, only while the caller's claim still holds its lease: a writer whose
/// lease ran out (slow V2) must not overwrite the progress of the writer that took the entry over.
const FINISH: &str = r#"
if redis.call('GET', ARGV[6] .. ARGV[1]) ~= ARGV[7] then return 0 end
redis.call('DEL', ARGV[6] .. ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
local version = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if version > tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
elseif ARGV[4] == '-1' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
else
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
end
return 1
"#;

/// Deletes the entry's lease when the caller's claim holds it.
const RELEASE: &str = r#"
if redis.call('GET', ARGV[2] .. ARGV[1]) == ARGV[3] then
  redis.call('DEL', ARGV[2] .. ARGV[1])
end
return 1
"#;

/// Takes over an entry from elsewhere, unless it is leased here or changed since the caller read
/// it (ARGV[4], the version then): the caller merged the progress against that read.
const ADOPT: &str = r#"
if redis.call('EXISTS', ARGV[6] .. ARGV[1]) == 1 then return 0 end
local version = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if version ~= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if ARGV[5] == '-1' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])
else
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
end
return 1
"#;

const RETRY: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
"#;

#[derive(Clone)]
pub struct RedisOutbox {
    conn: ConnectionManager,
    /// Names this process's leases, so a slow writer never releases a lease another took over.
    owner: String,
}

impl std::fmt::Debug for RedisOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisOutbox")
    }
}

fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> OutboxError {
    OutboxError::Unavailable(err.into())
}

/// log, version, progress, due, done.
fn keys(tenant: &str) -> [String; 5] {
    ["log", "ver", "progress", "due", "done"].map(|k| format!("cti:{{{tenant}}}:outbox:{k}"))
}

fn lease_prefix(tenant: &str) -> String {
    format!("cti:{{{tenant}}}:outbox:lease:")
}

type Lazy = std::sync::LazyLock<redis::Script>;
static PUT_SCRIPT: Lazy = Lazy::new(|| redis::Script::new(PUT));
static CLAIM_SCRIPT: Lazy = Lazy::new(|| redis::Script::new(CLAIM));
static FINISH_SCRIPT: Lazy = Lazy::new(|| redis::Script::new(FINISH));
static RETRY_SCRIPT: Lazy = Lazy::new(|| redis::Script::new(RETRY));
static RELEASE_SCRIPT: Lazy = Lazy::new(|| redis::Script::new(RELEASE));
static ADOPT_SCRIPT: Lazy = Lazy::new(|| redis::Script::new(ADOPT));

/// The script with the tenant's keys.
fn script(script: &'static Lazy, tenant: &str) -> redis::ScriptInvocation<'static> {
    let mut invocation = script.prepare_invoke();
    for key in keys(tenant) {
        invocation.key(key);
    }
    invocation
}

fn decode_entry(
    call_id: String,
    log: &str,
    version: &str,
    progress: &str,
    due: bool,
    lease: &str,
) -> Option<Entry> {
    let log: CallLog = match serde_json::from_str(log) {
        Ok(log) => log,
        Err(err) => {
            tracing::warn!(%err, call = %call_id, "skipping an unreadable outbox entry");
            return None;
        }
    };
    Some(Entry {
        call_id,
        log,
        version: version.parse().unwrap_or(0),
        progress: serde_json::from_str(progress).unwrap_or_else(|_| Progress::default()),
        due,
        lease: lease.to_string(),
        local: false,
    })
}

impl RedisOutbox {
    pub async fn connect(url: &str, owner: &str) -> Result<Self, OutboxError> {
        let conn = crate::shared_store::connect(url)
            .await
            .map_err(unavailable)?;
        Ok(Self::with_connection(conn, owner))
    }

    /// On a connection the process shares with its other stores.
    pub fn with_connection(conn: ConnectionManager, owner: &str) -> Self {
        RedisOutbox {
            conn,
            owner: owner.to_string(),
        }
    }
}

#[async_trait]
impl Outbox for RedisOutbox {
    async fn put(&self, tenant: &str, log: &CallLog, now_ms: u64) -> Result<u64, OutboxError> {
        let json = serde_json::to_string(log).map_err(unavailable)?;
        let mut conn = self.conn.clone();
        script(&PUT_SCRIPT, tenant)
            .arg(&log.call_id)
            .arg(json)
            .arg(now_ms)
            .arg(now_ms.saturating_sub(KEEP_WRITTEN_MS))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn claim_due(
        &self,
        tenant: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, OutboxError> {
        let mut conn = self.conn.clone();
        // Each claim holds its leases under its own name: a give-back from an earlier claim of
        // this process whose lease ran out is told apart from the current one.
        let lease = format!("{}:{}", self.owner, uuid::Uuid::new_v4());
        let flat: Vec<String> = script(&CLAIM_SCRIPT, tenant)
            .arg(now_ms)
            .arg(lease_ms.max(1))
            .arg(limit.max(1))
            .arg(lease_prefix(tenant))
            .arg(&lease)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(flat
            .chunks_exact(4)
            .filter_map(|c| decode_entry(c[0].clone(), &c[1], &c[2], &c[3], true, &lease))
            .collect())
    }

    async fn finish(
        &self,
        tenant: &str,
        entry: &Entry,
        next: Next,
        now_ms: u64,
    ) -> Result<bool, OutboxError> {
        let progress = serde_json::to_string(&entry.progress).map_err(unavailable)?;
        let due = match next {
            Next::Done | Next::Parked => "-1".to_string(),
            Next::RetryAt(at) => at.to_string(),
        };
        let mut conn = self.conn.clone();
        script(&FINISH_SCRIPT, tenant)
            .arg(&entry.call_id)
            .arg(progress)
            .arg(entry.version)
            .arg(due)
            .arg(now_ms)
            .arg(lease_prefix(tenant))
            .arg(&entry.lease)
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(unavailable)
            .map(|recorded| recorded == 1)
    }

    async fn release(&self, tenant: &str, entry: &Entry) -> Result<(), OutboxError> {
        let mut conn = self.conn.clone();
        script(&RELEASE_SCRIPT, tenant)
            .arg(&entry.call_id)
            .arg(lease_prefix(tenant))
            .arg(&entry.lease)
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn adopt(&self, tenant: &str, entry: &Entry, now_ms: u64) -> Result<bool, OutboxError> {
        let here = self.get(tenant, &entry.call_id).await?;
        let seen = here.as_ref().map_or(0, |e| e.version);
        let (progress, due) = super::outbox::merged(here.as_ref(), entry, seen + 1);
        let log = serde_json::to_string(&entry.log).map_err(unavailable)?;
        let progress = serde_json::to_string(&progress).map_err(unavailable)?;
        let due = if due {
            now_ms.to_string()
        } else {
            "-1".to_string()
        };
        let mut conn = self.conn.clone();
        let adopted: i64 = script(&ADOPT_SCRIPT, tenant)
            .arg(&entry.call_id)
            .arg(log)
            .arg(progress)
            .arg(seen)
            .arg(due)
            .arg(lease_prefix(tenant))
            .arg(now_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(adopted == 1)
    }

    async fn get(&self, tenant: &str, call_id: &str) -> Result<Option<Entry>, OutboxError> {
        let [log, ver, progress, due, _] = keys(tenant);
        let mut conn = self.conn.clone();
        type Fields = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let (log, ver, progress, due): Fields = redis::pipe()
            .hget(log, call_id)
            .hget(ver, call_id)
            .hget(progress, call_id)
            .zscore(due, call_id)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(log.and_then(|log| {
            decode_entry(
                call_id.to_string(),
                &log,
                ver.as_deref().unwrap_or("0"),
                progress.as_deref().unwrap_or(""),
                due.is_some(),
                "",
            )
        }))
    }

    async fn retry(&self, tenant: &str, call_id: &str, now_ms: u64) -> Result<bool, OutboxError> {
        let mut conn = self.conn.clone();
        let found: i64 = script(&RETRY_SCRIPT, tenant)
            .arg(call_id)
            .arg(now_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(found == 1)
    }

    async fn backlog(&self, tenant: &str) -> Result<u64, OutboxError> {
        let mut conn = self.conn.clone();
        redis::cmd("ZCARD")
            .arg(&keys(tenant)[3])
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// Reads the tenant's progress and version hashes whole: they hold one field per entry
    /// kept (a week of written ones at most), which an admin's page view can afford.
    async fn failed(&self, tenant: &str, limit: usize) -> Result<Vec<Failure>, OutboxError> {
        let [_, ver, progress, _, _] = keys(tenant);
        let mut conn = self.conn.clone();
        type Hashes = (
            std::collections::HashMap<String, String>,
            std::collections::HashMap<String, String>,
        );
        let (progress, versions): Hashes = redis::pipe()
            .hgetall(progress)
            .hgetall(ver)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut failed: Vec<Failure> = progress
            .iter()
            .filter_map(|(id, text)| {
                let progress: Progress = serde_json::from_str(text).ok()?;
                let version = versions.get(id)?.parse().ok()?;
                Failure::of(id, &progress, version)
            })
            .collect();
        failed.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        failed.truncate(limit);
        Ok(failed)
    }

    async fn at_risk(&self, _tenant: &str) -> Vec<String> {
        Vec::new()
    }
}
