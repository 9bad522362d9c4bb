//! The customers subscribed through SAP BTP's SaaS Provisioning service, and the removal of an
//! unsubscribed customer's data.
//!
//! A subscription is the registry's word that a subaccount (a tenant, named by its zone id, the
//! `zid` its users' tokens carry) uses the relay; it is stored here, in Redis where there is one
//! (every instance reads the same list at start and hears of changes on [`CHANNEL`]) and in memory
//! otherwise. A subscribed tenant is unconfigured until its administrator gives it a V2 tenant
//! and a telephony provider: nothing about V2 or the provider is known from the registry.
//!
//! Unsubscribing deletes everything the relay keeps under the tenant's Redis keys
//! (`cti:{<tenant>}:*`: the number index, calls, events, tokens, choices, replay, leases, the
//! adapters' call state) except an activity outbox that still holds activities not written to
//! V2: that is left to expire after [`OUTBOX_GRACE`] rather than deleted under an activity on its
//! way, and is deleted at once when empty.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// How long an unsubscribed tenant's outbox is kept while it still holds activities not in V2.
pub const OUTBOX_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The set of subscribed tenant ids.
const SUBSCRIBED: &str = "cti:subscriptions";

/// Where instances tell each other that a tenant's subscription changed (the message is its id).
pub const CHANNEL: &str = "cti:tenants";

/// Listens on [`CHANNEL`] until the connection ends, handing each changed tenant's id to
/// `changed`; `subscribed` runs once listening (what changed before is read at start).
pub async fn listen(
    url: &str,
    subscribed: impl FnOnce(),
    mut changed: impl FnMut(String),
) -> Result<(), DirectoryError> {
    use futures_util::StreamExt as _;
    let client = redis::Client::open(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    subscribed();
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        if let Ok(tenant) = message.get_payload::<String>() {
            changed(tenant);
        }
    }
    Ok(())
}

/// One subscribed customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The subscriber's zone (subaccount tenant) id: `subscribedTenantId`, and the `zid` (or
    /// `app_tid`) of its users' tokens.
    pub tenant: String,
    /// `subscribedSubdomain`: the subaccount's subdomain, which its URL is made of.
    pub subdomain: String,
    /// The relay URL the registry was given for this subscriber.
    pub url: String,
    /// `globalAccountGUID`, when the registry sent it: for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_account: Option<String>,
    /// When it subscribed (Unix milliseconds).
    pub subscribed_at_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("the subscription store is unavailable: {0}")]
    Unavailable(#[source] redis::RedisError),
    #[error("a stored subscription of tenant {tenant:?} does not read: {problem}")]
    Corrupt { tenant: String, problem: String },
}

impl From<redis::RedisError> for DirectoryError {
    fn from(err: redis::RedisError) -> Self {
        DirectoryError::Unavailable(err)
    }
}

/// What became of an unsubscribed tenant's stored data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Keys deleted.
    pub deleted: u64,
    /// Outbox keys left to expire (it held activities not yet in V2).
    pub expiring: u64,
}

/// The subscriptions, and the removal of a tenant's stored data.
#[async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// Adds or replaces a subscription (the registry may call again for the same tenant).
    async fn put(&self, subscription: &Subscription) -> Result<(), DirectoryError>;
    async fn get(&self, tenant: &str) -> Result<Option<Subscription>, DirectoryError>;
    /// Every subscription, sorted by tenant.
    async fn list(&self) -> Result<Vec<Subscription>, DirectoryError>;
    /// Stores a subscribed tenant's settings, sealed by the caller (they hold its secrets), and
    /// tells the other instances.
    async fn put_settings(&self, tenant: &str, sealed: &[u8]) -> Result<(), DirectoryError>;
    /// A tenant's sealed settings; None while it is unconfigured.
    async fn settings(&self, tenant: &str) -> Result<Option<Vec<u8>>, DirectoryError>;
    /// Removes the subscription and deletes the tenant's stored data; `backlog` is how many of
    /// its activities are not in V2 yet (their outbox then expires instead).
    async fn remove(&self, tenant: &str, backlog: u64) -> Result<Purged, DirectoryError>;
}

/// One instance, no Redis: subscriptions last as long as the process (and so does what the
/// in-memory stores hold of a tenant).
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    subscriptions: RwLock<HashMap<String, Subscription>>,
    settings: RwLock<HashMap<String, Vec<u8>>>,
}

#[async_trait]
impl Directory for MemoryDirectory {
    async fn put(&self, subscription: &Subscription) -> Result<(), DirectoryError> {
        self.subscriptions
            .write()
            .insert(subscription.tenant.clone(), subscription.clone());
        Ok(())
    }

    async fn get(&self, tenant: &str) -> Result<Option<Subscription>, DirectoryError> {
        Ok(self.subscriptions.read().get(tenant).cloned())
    }

    async fn list(&self) -> Result<Vec<Subscription>, DirectoryError> {
        let mut all: Vec<_> = self.subscriptions.read().values().cloned().collect();
        all.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(all)
    }

    async fn put_settings(&self, tenant: &str, sealed: &[u8]) -> Result<(), DirectoryError> {
        self.settings
            .write()
            .insert(tenant.to_string(), sealed.to_vec());
        Ok(())
    }

    async fn settings(&self, tenant: &str) -> Result<Option<Vec<u8>>, DirectoryError> {
        Ok(self.settings.read().get(tenant).cloned())
    }

    async fn remove(&self, tenant: &str, _backlog: u64) -> Result<Purged, DirectoryError> {
        self.settings.write().remove(tenant);
        let removed = self.subscriptions.write().remove(tenant);
        Ok(Purged {
            deleted: u64::from(removed.is_some()),
            expiring: 0,
        })
    }
}

/// Subscriptions shared by every instance: a set of ids and a key per subscription, under the
/// tenant's own prefix (so the purge that deletes its data deletes it too).
#[derive(Clone)]
pub struct RedisDirectory {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisDirectory")
    }
}

fn subscription_key(tenant: &str) -> String {
    format!("cti:{{{tenant}}}:subscription")
}

fn settings_key(tenant: &str) -> String {
    format!("cti:{{{tenant}}}:settings")
}

/// The pattern that matches every key of `tenant` and no other tenant's. Tenant ids that reach
/// here passed [`valid_tenant_id`], so they hold no glob characters; escaping anyway keeps a
/// mistake elsewhere from widening the match to other tenants.
pub fn tenant_pattern(tenant: &str) -> String {
    let mut escaped = String::with_capacity(tenant.len());
    for c in tenant.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    format!("cti:{{{escaped}}}:*")
}

/// Whether `id` may name a subscribed tenant: XSUAA's zone ids are GUIDs; letters, digits, `-`,
/// `_` and `.`, up to 64, are accepted (Redis keys and log lines carry it as it is).
pub fn valid_tenant_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether `subdomain` is one DNS label (a BTP subaccount's subdomain is).
pub fn valid_subdomain(subdomain: &str) -> bool {
    !subdomain.is_empty()
        && subdomain.len() <= 63
        && !subdomain.starts_with('-')
        && !subdomain.ends_with('-')
        && subdomain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl RedisDirectory {
    pub fn with_connection(conn: ConnectionManager) -> Self {
        RedisDirectory { conn }
    }

    /// Tells the other instances that `tenant`'s subscription changed.
    async fn announce(&self, tenant: &str) -> Result<(), DirectoryError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.publish(CHANNEL, tenant).await?;
        Ok(())
    }
}

#[async_trait]
impl Directory for RedisDirectory {
    async fn put(&self, subscription: &Subscription) -> Result<(), DirectoryError> {
        let text = serde_json::to_string(subscription).map_err(|e| DirectoryError::Corrupt {
            tenant: subscription.tenant.clone(),
            problem: e.to_string(),
        })?;
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .set(subscription_key(&subscription.tenant), text)
            .sadd(SUBSCRIBED, &subscription.tenant)
            .query_async(&mut conn)
            .await?;
        self.announce(&subscription.tenant).await
    }

    async fn get(&self, tenant: &str) -> Result<Option<Subscription>, DirectoryError> {
        let mut conn = self.conn.clone();
        let text: Option<String> = conn.get(subscription_key(tenant)).await?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| DirectoryError::Corrupt {
                tenant: tenant.to_string(),
                problem: e.to_string(),
            })
        })
        .transpose()
    }

    async fn list(&self) -> Result<Vec<Subscription>, DirectoryError> {
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> = conn.smembers(SUBSCRIBED).await?;
        ids.sort();
        let mut all = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(subscription) = self.get(&id).await? {
                all.push(subscription);
            }
        }
        Ok(all)
    }

    async fn put_settings(&self, tenant: &str, sealed: &[u8]) -> Result<(), DirectoryError> {
        let mut conn = self.conn.clone();
        let _: () = conn.set(settings_key(tenant), sealed).await?;
        self.announce(tenant).await
    }

    async fn settings(&self, tenant: &str) -> Result<Option<Vec<u8>>, DirectoryError> {
        let mut conn = self.conn.clone();
        Ok(conn.get(settings_key(tenant)).await?)
    }

    async fn remove(&self, tenant: &str, backlog: u64) -> Result<Purged, DirectoryError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.srem(SUBSCRIBED, tenant).await?;
        let outbox = format!("cti:{{{tenant}}}:outbox:");
        let mut purged = Purged::default();
        // SCAN, not KEYS: a tenant's keys can be many, and KEYS would hold Redis for all of them.
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(tenant_pattern(tenant))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await?;
            for key in keys {
                if backlog > 0 && key.starts_with(&outbox) {
                    let set: bool = conn.expire(&key, OUTBOX_GRACE.as_secs() as i64).await?;
                    purged.expiring += u64::from(set);
                } else {
                    let gone: u64 = conn.del(&key).await?;
                    purged.deleted += gone;
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        self.announce(tenant).await?;
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_of_a_tenant_matches_only_its_own_keys() {
        assert_eq!(tenant_pattern("acme"), "cti:{acme}:*");
        assert_eq!(tenant_pattern("a*b"), "cti:{a\\*b}:*");
    }

    #[test]
    fn tenant_ids_and_subdomains_are_checked() {
        assert!(valid_tenant_id("2c8b3f2e-6f1a-4c1e-9d55-5c1b0f6d7a10"));
        assert!(!valid_tenant_id(""));
        assert!(!valid_tenant_id("a*"));
        assert!(!valid_tenant_id("a}b"));
        assert!(!valid_tenant_id(&"a".repeat(65)));
        assert!(valid_subdomain("acme-prod"));
        assert!(!valid_subdomain("-acme"));
        assert!(!valid_subdomain("acme.prod"));
        assert!(!valid_subdomain(""));
    }
}
