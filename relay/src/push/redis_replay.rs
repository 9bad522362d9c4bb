//! The replay store in Redis, and the fan-out that gets a call to the rep's widget whichever
//! relay instance holds its WebSocket.
//!
//! Per rep (keys in the tenant's hash tag): the sequence counter, the message log (a capped list),
//! the highest number dropped from it, and the latest view of each call in progress. One Lua script
//! numbers a message, stores it and publishes it on `cti:push`, so the numbers on the channel come
//! in order. Every instance subscribes to `cti:push` and hands each message to its own sessions of
//! that rep. When the subscription breaks, messages may have been missed: the instance tells its
//! sessions to resync (the widgets reconnect and get the gap from the log).

use async_trait::async_trait;
use cti_protocol::ws::CallView;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde::Deserialize;

use super::replay::{Backlog, Pushed, ReplayError, ReplayStore, backlog};
use crate::clock::SharedClock;

/// The channel every instance listens on.
pub const CHANNEL: &str = "cti:push";
/// A quiet rep's log is forgotten after a day.
const TTL_S: u64 = 24 * 60 * 60;

const APPEND: &str = r#"
local seq = redis.call('INCR', KEYS[1])
local now = tonumber(ARGV[1])
if seq < now then
  redis.call('SET', KEYS[1], ARGV[1])
  seq = now
end
local entry = '{"seq":' .. string.format('%d', seq) .. ',"call":' .. ARGV[4] .. '}'
redis.call('RPUSH', KEYS[2], entry)
local cap = tonumber(ARGV[2])
local len = redis.call('LLEN', KEYS[2])
if len > cap then
  local dropped = redis.call('LRANGE', KEYS[2], len - cap - 1, len - cap - 1)
  local last = string.match(dropped[1], '^{"seq":(%d+),')
  redis.call('SET', KEYS[3], last)
  redis.call('LTRIM', KEYS[2], len - cap, -1)
end
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[4], ARGV[5])
else
  redis.call('HSET', KEYS[4], ARGV[5], entry)
end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
redis.call('PUBLISH', ARGV[8], '{"tenant":' .. ARGV[6] .. ',"pushed":' .. entry .. '}')
return seq
"#;

#[derive(Clone)]
pub struct RedisReplay {
    conn: ConnectionManager,
    capacity: usize,
    clock: SharedClock,
}

impl std::fmt::Debug for RedisReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisReplay")
    }
}

fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ReplayError {
    ReplayError(err.into())
}

fn keys(tenant: &str, agent: &str) -> [String; 4] {
    ["seq", "log", "evicted", "live"].map(|what| format!("cti:{{{tenant}}}:push:{what}:{agent}"))
}

/// One message as it travels on the channel.
#[derive(Debug, Deserialize)]
pub struct Published {
    pub tenant: String,
    pub pushed: Pushed,
}

impl RedisReplay {
    pub async fn connect(
        url: &str,
        capacity: usize,
        clock: SharedClock,
    ) -> Result<Self, ReplayError> {
        let conn = crate::shared_store::connect(url)
            .await
            .map_err(unavailable)?;
        Ok(Self::with_connection(conn, capacity, clock))
    }

    /// On a connection the process shares with its other stores.
    pub fn with_connection(
        conn: redis::aio::ConnectionManager,
        capacity: usize,
        clock: SharedClock,
    ) -> Self {
        RedisReplay {
            conn,
            capacity: capacity.max(1),
            clock,
        }
    }
}

#[async_trait]
impl ReplayStore for RedisReplay {
    async fn append(&self, tenant: &str, call: CallView) -> Result<Pushed, ReplayError> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(&call).map_err(unavailable)?;
        let tenant_json = serde_json::to_string(tenant).map_err(unavailable)?;
        let [seq, log, evicted, live] = keys(tenant, &call.agent);
        let seq: u64 = redis::Script::new(APPEND)
            .key(seq)
            .key(log)
            .key(evicted)
            .key(live)
            .arg(self.clock.now_ms())
            .arg(self.capacity)
            .arg(if call.state.is_final() { "1" } else { "0" })
            .arg(json)
            .arg(&call.id)
            .arg(tenant_json)
            .arg(TTL_S)
            .arg(CHANNEL)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(Pushed { seq, call })
    }

    async fn since(
        &self,
        tenant: &str,
        agent: &str,
        last_seq: Option<u64>,
    ) -> Result<Backlog, ReplayError> {
        let mut conn = self.conn.clone();
        let [seq, log, evicted, live] = keys(tenant, agent);
        let (newest, dropped, entries, current): (
            Option<u64>,
            Option<u64>,
            Vec<String>,
            Vec<String>,
        ) = redis::pipe()
            .atomic()
            .get(seq)
            .get(evicted)
            .lrange(log, 0, -1)
            .hvals(live)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let parse = |json: &String| serde_json::from_str::<Pushed>(json).ok();
        let buffer: Vec<Pushed> = entries.iter().filter_map(parse).collect();
        let in_progress: Vec<Pushed> = current.iter().filter_map(parse).collect();
        let newest = newest.unwrap_or_else(|| self.clock.now_ms());
        Ok(backlog(
            newest,
            dropped.unwrap_or(0),
            &buffer,
            in_progress,
            last_seq,
        ))
    }
}

/// Listens on [`CHANNEL`] for as long as it can, handing every message to `deliver`; calls
/// `subscribed` once listening; returns when the subscription breaks (the caller calls again).
pub async fn listen(
    url: &str,
    subscribed: impl FnOnce(),
    mut deliver: impl FnMut(Published),
) -> Result<(), ReplayError> {
    let client = redis::Client::open(url).map_err(unavailable)?;
    let mut pubsub = client.get_async_pubsub().await.map_err(unavailable)?;
    pubsub.subscribe(CHANNEL).await.map_err(unavailable)?;
    subscribed();
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let Ok(payload) = message.get_payload::<String>() else {
            continue;
        };
        match serde_json::from_str::<Published>(&payload) {
            Ok(published) => deliver(published),
            Err(err) => tracing::warn!(%err, "ignored an unreadable message on the push channel"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_in_the_tenants_hash_slot() {
        let keys = keys("acme", "alice@example.com");
        assert!(keys.iter().all(|k| k.starts_with("cti:{acme}:push:")));
        assert_eq!(keys[1], "cti:{acme}:push:log:alice@example.com");
    }

    #[tokio::test]
    async fn the_log_entry_format_is_what_pushed_reads() {
        // The script writes entries by string concatenation; make sure serde reads them.
        let call = crate::push::replay::tests::view("a", cti_protocol::ws::CallState::Ringing);
        let entry = format!(
            "{{\"seq\":{},\"call\":{}}}",
            1_764_000_000_123u64,
            serde_json::to_string(&call).expect("json")
        );
        let pushed: Pushed = serde_json::from_str(&entry).expect("readable");
        assert_eq!(pushed.seq, 1_764_000_000_123);
        assert_eq!(pushed.call, call);
    }
}
