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

/// Extends the lease KEYS[1] to ARGV[2] ms when ARGV[1] holds it, or takes it when free.
const ACQUIRE: &str = r#"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

/// Deletes the lease KEYS[1] when ARGV[1] holds it.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Takes the lease `key` for `ttl` when it is free, or extends it when `holder` has it already.
/// A lease is how instances agree that one of them does a thing (a rebuild, a provider's
/// connection): it expires by itself when its holder dies. False: another holder has it.
pub async fn acquire_lease(
    conn: &mut ConnectionManager,
    key: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, redis::RedisError> {
    let got: i64 = redis::Script::new(ACQUIRE)
        .key(key)
        .arg(holder)
        .arg(ttl.as_millis() as u64)
        .invoke_async(conn)
        .await?;
    Ok(got == 1)
}

/// Gives the lease back if `holder` still has it (compare and delete, so a lease that expired
/// and went to another holder stays theirs).
pub async fn release_lease(
    conn: &mut ConnectionManager,
    key: &str,
    holder: &str,
) -> Result<(), redis::RedisError> {
    let _: i64 = redis::Script::new(RELEASE)
        .key(key)
        .arg(holder)
        .invoke_async(conn)
        .await?;
    Ok(())
}
