//! The number index in Redis, shared by every relay instance of a deployment.
//!
//! One hash per tenant (`cti:{<tenant>}:numbers`, field = E.164, value = the records as JSON), so
//! a lookup is one `HGET`. A rebuild writes a complete new hash under a key of its own and swaps it
//! in with `RENAME`, which is atomic: a lookup sees the old index or the new one, never a mix. The
//! tenant sits in a hash tag, so one tenant's keys stay on one node of a Redis cluster.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::index::{Generation, IndexError, IndexedRecord, NumberIndex};

/// Fields written per round trip while building.
const BATCH: usize = 1_000;

#[derive(Clone)]
pub struct RedisIndex {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisIndex")
    }
}

fn unavailable(err: impl std::fmt::Display) -> IndexError {
    IndexError::Unavailable(err.to_string())
}

fn key(tenant: &str) -> String {
    format!("cti:{{{tenant}}}:numbers")
}

impl RedisIndex {
    /// Connects (and later reconnects by itself). Commands give up after a second, so a Redis that
    /// went away costs a call a second at most before the relay falls back to asking V2.
    pub async fn connect(url: &str) -> Result<Self, IndexError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(RedisIndex { conn })
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
        let target = key(tenant);
        if generation.is_empty() {
            let _: () = conn.del(&target).await.map_err(unavailable)?;
            return Ok(());
        }
        let building = format!("{target}:building:{}", uuid::Uuid::new_v4());
        let entries: Vec<(String, String)> = generation
            .into_iter()
            .map(|(number, records)| {
                let json = serde_json::to_string(&records).unwrap_or_else(|_| "[]".into());
                (number, json)
            })
            .collect();
        for chunk in entries.chunks(BATCH) {
            let mut pipe = redis::pipe();
            pipe.hset_multiple(&building, chunk)
                .ignore()
                // A build that dies half-way leaves nothing behind for long.
                .expire(&building, 3_600)
                .ignore();
            let _: () = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        }
        let _: () = conn.rename(&building, &target).await.map_err(unavailable)?;
        let _: () = conn.persist(&target).await.map_err(unavailable)?;
        Ok(())
    }

    async fn len(&self, tenant: &str) -> Result<usize, IndexError> {
        let mut conn = self.conn.clone();
        conn.hlen(key(tenant)).await.map_err(unavailable)
    }
}
