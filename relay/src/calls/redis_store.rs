//! Call legs in Redis, so a relay restart or another instance carries a call in flight.
//!
//! Per tenant (keys in the tenant's hash tag): a hash per call (rep -> leg), a set per rep of
//! their calls in progress, and a key per applied event id. A leg and its event id are written in
//! one transaction, so an event is either applied and remembered or neither. Everything expires:
//! calls after a few days, event ids after the window in which providers redeliver.

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

    /// The leg's writes, to be queued in a transaction.
    fn queue_leg(pipe: &mut redis::Pipeline, tenant: &str, view: &Leg) -> Result<(), StoreError> {
        let json = serde_json::to_string(view).map_err(unavailable)?;
        let call = call_key(tenant, &view.id);
        let active = active_key(tenant, &view.agent);
        pipe.hset(&call, &view.agent, json)
            .ignore()
            .expire(&call, CALL_TTL_S)
            .ignore();
        if view.state.is_final() {
            pipe.srem(&active, &view.id).ignore();
        } else {
            pipe.sadd(&active, &view.id)
                .ignore()
                .expire(&active, CALL_TTL_S)
                .ignore();
        }
        Ok(())
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

    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        Self::queue_leg(&mut pipe, tenant, view)?;
        pipe.set_ex(event_key(tenant, event_id), 1, SEEN_TTL_S)
            .ignore();
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
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

    async fn put(&self, tenant: &str, view: &Leg) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        Self::queue_leg(&mut pipe, tenant, view)?;
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
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
