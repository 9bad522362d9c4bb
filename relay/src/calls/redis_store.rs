//! Call legs in Redis, so a relay restart or another instance carries a call in flight.
//!
//! Per tenant (keys in the tenant's hash tag): a hash per call (rep -> leg), a set per rep of
//! their calls in progress, and a key per applied event id. A leg and its event id are written in
//! one script, so an event is either applied and remembered or neither. Everything expires:
//! calls after a few days, event ids after the window in which providers redeliver.
//!
//! Events of one call may reach several instances at once, each of which serialises them only
//! among its own tasks. So every write is a compare-and-set on the leg's revision (stored inside
//! the leg's JSON): the script writes only over the revision the leg was read at and says which
//! revision it found otherwise, and the caller reads again and re-applies its change. A stale
//! copy never overwrites a newer one (an ended call never comes back, notes are never dropped).

use super::leg::Leg;
use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::store::{CallStore, StoreError, sort_legs};

/// How long a call's legs outlive their last change (notes and the activity come after the end).
const CALL_TTL_S: i64 = 3 * 24 * 60 * 60;
/// How long an event id is remembered; providers redeliver within hours.
const SEEN_TTL_S: u64 = 3 * 24 * 60 * 60;

#[derive(Clone)]
pub struct RedisCallStore {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisCallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisCallStore")
    }
}

fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Unavailable(err.into())
}

fn call_key(tenant: &str, call_id: &str) -> String {
    format!("cti:{{{tenant}}}:call:{call_id}")
}

fn active_key(tenant: &str, agent: &str) -> String {
    format!("cti:{{{tenant}}}:active:{agent}")
}

fn event_key(tenant: &str, event_id: &str) -> String {
    format!("cti:{{{tenant}}}:event:{event_id}")
}

/// Writes a leg over the revision it was read at.
///
/// KEYS: the call's hash, the rep's set of live calls, and (optionally) the event's key.
/// ARGV: the rep, the revision read, the leg's JSON at its next revision, the call id, "1" when
/// the leg is final, the call's TTL, the event id's TTL.
/// Returns {1, new revision} when written, {0, revision found} when refused. A stored leg
/// without a revision (written before revisions) counts as revision 0, like no leg at all.
const SAVE: &str = r#"
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local found = 0
if stored then
  local ok, leg = pcall(cjson.decode, stored)
  if ok and type(leg) == 'table' and type(leg.rev) == 'number' then
    found = leg.rev
  end
end
if found ~= tonumber(ARGV[2]) then
  return {0, found}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
if ARGV[5] == '1' then
  redis.call('SREM', KEYS[2], ARGV[4])
else
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
if KEYS[3] then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[7])
end
return {1, found + 1}
"#;

static SAVE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(SAVE));

fn decode(json: &str) -> Option<Leg> {
    match serde_json::from_str(json) {
        Ok(view) => Some(view),
        Err(err) => {
            tracing::warn!(%err, "skipping an unreadable call leg in Redis");
            None
        }
    }
}

impl RedisCallStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let conn = crate::shared_store::connect(url)
            .await
            .map_err(unavailable)?;
        Ok(Self::with_connection(conn))
    }

    /// On a connection the process shares with its other stores.
    pub fn with_connection(conn: ConnectionManager) -> Self {
        RedisCallStore { conn }
    }

    /// Writes the leg at its next revision if the stored one is still `view.rev`, marking
    /// `event_id` applied with it.
    async fn swap(
        &self,
        tenant: &str,
        view: &Leg,
        event_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut next = view.clone();
        next.rev = view.rev + 1;
        let json = serde_json::to_string(&next).map_err(unavailable)?;
        let mut invocation = SAVE_SCRIPT.prepare_invoke();
        invocation
            .key(call_key(tenant, &view.id))
            .key(active_key(tenant, &view.agent));
        if let Some(event_id) = event_id {
            invocation.key(event_key(tenant, event_id));
        }
        invocation
            .arg(&view.agent)
            .arg(view.rev)
            .arg(json)
            .arg(&view.id)
            .arg(if view.state.is_final() { "1" } else { "0" })
            .arg(CALL_TTL_S)
            .arg(SEEN_TTL_S);
        let mut conn = self.conn.clone();
        let (written, rev): (i64, u64) = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if written == 1 {
            Ok(rev)
        } else {
            Err(StoreError::conflict(view, rev))
        }
    }
}

#[async_trait]
impl CallStore for RedisCallStore {
    async fn seen(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        conn.exists(event_key(tenant, event_id))
            .await
            .map_err(unavailable)
    }

    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<u64, StoreError> {
        self.swap(tenant, view, Some(event_id)).await
    }

    async fn mark_seen(&self, tenant: &str, event_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        conn.set_ex(event_key(tenant, event_id), 1, SEEN_TTL_S)
            .await
            .map_err(unavailable)
    }

    async fn get(
        &self,
        tenant: &str,
        call_id: &str,
        agent: &str,
    ) -> Result<Option<Leg>, StoreError> {
        let mut conn = self.conn.clone();
        let json: Option<String> = conn
            .hget(call_key(tenant, call_id), agent)
            .await
            .map_err(unavailable)?;
        Ok(json.as_deref().and_then(decode))
    }

    async fn put(&self, tenant: &str, view: &Leg) -> Result<u64, StoreError> {
        self.swap(tenant, view, None).await
    }

    async fn legs(&self, tenant: &str, call_id: &str) -> Result<Vec<Leg>, StoreError> {
        let mut conn = self.conn.clone();
        let values: Vec<String> = conn
            .hvals(call_key(tenant, call_id))
            .await
            .map_err(unavailable)?;
        let mut legs: Vec<Leg> = values.iter().filter_map(|v| decode(v)).collect();
        sort_legs(&mut legs);
        Ok(legs)
    }

    async fn active_for_agent(&self, tenant: &str, agent: &str) -> Result<Vec<Leg>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .smembers(active_key(tenant, agent))
            .await
            .map_err(unavailable)?;
        let mut calls = Vec::new();
        for id in ids {
            if let Some(view) = self.get(tenant, &id, agent).await?
                && !view.state.is_final()
            {
                calls.push(view);
            }
        }
        calls.sort_by_key(|v| v.received_at_ms);
        Ok(calls)
    }
}
