//! The connection every Redis-backed store uses.
//!
//! It reconnects by itself, and a command gives up after a second: a Redis that went away costs
//! a call a second at most before the relay falls back (to V2 for lookups, to memory for replay).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub async fn connect(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, config).await
}
