//! The reps' refresh tokens at rest: sealed with AES-256-GCM under the configured key.
//!
//! Each sealed value is a fresh 96-bit nonce followed by the ciphertext, and its owner (tenant and
//! rep) is the associated data, so a value copied to another rep's key does not open. The key
//! (`CTI_TOKEN_KEY`, 32 bytes in base64) never leaves the relay's memory; whoever reads Redis sees
//! nothing usable. Stores: memory (embedded default) and Redis (shared by instances, surviving
//! restarts).

use std::collections::HashMap;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use parking_lot::Mutex;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::config::TokenKey;
use crate::secret::Secret;

#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    #[error("a stored token does not open with this key (was CTI_TOKEN_KEY changed?)")]
    Sealed,
    #[error("token store unavailable: {0}")]
    Unavailable(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

/// Seals and opens tokens.
///
/// Keys are rotated with an overlap: the new key seals, and the previous one
/// (`CTI_TOKEN_KEY_PREVIOUS`) still opens what it sealed. A value opened with the previous key
/// is [`Opened::stale`]: its reader seals it again under the new key, so the stores move to the
/// new key as they are used and the previous one can be dropped once nothing needs it.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    previous: Option<Aes256Gcm>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

/// A value [`Sealer::unseal`] opened.
#[derive(Debug)]
pub struct Opened {
    pub secret: Secret,
    /// Sealed under the previous key: seal it again under the current one.
    pub stale: bool,
}

const NONCE_LEN: usize = 12;

fn owner(tenant: &str, rep: &str) -> Vec<u8> {
    format!("{tenant}\u{0}{}", rep.to_lowercase()).into_bytes()
}

fn cipher(key: &TokenKey) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key.expose()))
}

fn decrypt(cipher: &Aes256Gcm, aad: &[u8], nonce: [u8; NONCE_LEN], msg: &[u8]) -> Option<Vec<u8>> {
    cipher
        .decrypt(&Nonce::from(nonce), Payload { msg, aad })
        .ok()
}

impl Sealer {
    /// With the configured key (checked when the configuration was read).
    pub fn new(key: &TokenKey) -> Self {
        Self::rotated(key, None)
    }

    /// With the configured key, and the key it replaces still opening (not sealing) values.
    pub fn rotated(key: &TokenKey, previous: Option<&TokenKey>) -> Self {
        Sealer {
            cipher: cipher(key),
            previous: previous.filter(|p| *p != key).map(cipher),
        }
    }

    pub fn seal(&self, tenant: &str, rep: &str, token: &str) -> Result<Vec<u8>, VaultError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = owner(tenant, rep);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: token.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Sealed)?;
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        Ok(sealed)
    }

    /// The value, under the current key or else the previous one.
    pub fn open(&self, tenant: &str, rep: &str, sealed: &[u8]) -> Result<Secret, VaultError> {
        self.unseal(tenant, rep, sealed).map(|opened| opened.secret)
    }

    /// The value and whether it was sealed under the previous key.
    pub fn unseal(&self, tenant: &str, rep: &str, sealed: &[u8]) -> Result<Opened, VaultError> {
        if sealed.len() <= NONCE_LEN {
            return Err(VaultError::Sealed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Sealed)?;
        let aad = owner(tenant, rep);
        let (plain, stale) = match decrypt(&self.cipher, &aad, nonce, ciphertext) {
            Some(plain) => (plain, false),
            None => {
                let previous = self.previous.as_ref().ok_or(VaultError::Sealed)?;
                let plain = decrypt(previous, &aad, nonce, ciphertext).ok_or(VaultError::Sealed)?;
                (plain, true)
            }
        };
        let secret = String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| VaultError::Sealed)?;
        Ok(Opened { secret, stale })
    }
}

/// Where sealed tokens live, per tenant and rep.
#[async_trait]
pub trait TokenVault: Send + Sync + std::fmt::Debug {
    async fn put(&self, tenant: &str, rep: &str, sealed: &[u8]) -> Result<(), VaultError>;
    /// Kept for `ttl_secs` only (a token that expires then). The memory vault keeps it; its
    /// reader checks the expiry it sealed in.
    async fn put_expiring(
        &self,
        tenant: &str,
        rep: &str,
        sealed: &[u8],
        _ttl_secs: u64,
    ) -> Result<(), VaultError> {
        self.put(tenant, rep, sealed).await
    }
    async fn get(&self, tenant: &str, rep: &str) -> Result<Option<Vec<u8>>, VaultError>;
    async fn remove(&self, tenant: &str, rep: &str) -> Result<(), VaultError>;
    /// Removes the rep's value only if it still is `sealed`: a refresh token the provider refused
    /// goes, one another instance stored since stays. True when it was removed.
    async fn remove_if(&self, tenant: &str, rep: &str, sealed: &[u8]) -> Result<bool, VaultError>;
    /// Takes the rep's refresh lease for `ttl_ms` under `holder`, if nobody holds it: one
    /// refresh per rep at a time across instances. False when another holder has it.
    async fn lease(
        &self,
        tenant: &str,
        rep: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> Result<bool, VaultError>;
    /// Gives the lease back, if `holder` still has it.
    async fn release(&self, tenant: &str, rep: &str, holder: &str) -> Result<(), VaultError>;
    /// Forgets what this process holds of `tenant` (it unsubscribed). Nothing to do for a
    /// shared store: its keys carry the tenant's prefix, which the subscriptions directory's
    /// purge deletes.
    async fn forget_tenant(&self, _tenant: &str) {}
}

#[derive(Debug, Default)]
pub struct MemoryVault {
    sealed: Mutex<HashMap<(String, String), Vec<u8>>>,
}

#[async_trait]
impl TokenVault for MemoryVault {
    async fn forget_tenant(&self, tenant: &str) {
        self.sealed.lock().retain(|(t, _), _| t != tenant);
    }

    async fn put(&self, tenant: &str, rep: &str, sealed: &[u8]) -> Result<(), VaultError> {
        self.sealed
            .lock()
            .insert((tenant.to_string(), rep.to_lowercase()), sealed.to_vec());
        Ok(())
    }

    async fn get(&self, tenant: &str, rep: &str) -> Result<Option<Vec<u8>>, VaultError> {
        Ok(self
            .sealed
            .lock()
            .get(&(tenant.to_string(), rep.to_lowercase()))
            .cloned())
    }

    async fn remove(&self, tenant: &str, rep: &str) -> Result<(), VaultError> {
        self.sealed
            .lock()
            .remove(&(tenant.to_string(), rep.to_lowercase()));
        Ok(())
    }

    async fn remove_if(&self, tenant: &str, rep: &str, sealed: &[u8]) -> Result<bool, VaultError> {
        let mut stored = self.sealed.lock();
        let key = (tenant.to_string(), rep.to_lowercase());
        let same = stored.get(&key).is_some_and(|s| s == sealed);
        if same {
            stored.remove(&key);
        }
        Ok(same)
    }

    /// Only this process uses a memory vault, and it refreshes one rep at a time already.
    async fn lease(&self, _: &str, _: &str, _: &str, _: u64) -> Result<bool, VaultError> {
        Ok(true)
    }

    async fn release(&self, _: &str, _: &str, _: &str) -> Result<(), VaultError> {
        Ok(())
    }
}

/// Sealed tokens in Redis, one key per rep (base64), kept until replaced, removed or expired.
#[derive(Clone)]
pub struct RedisVault {
    conn: ConnectionManager,
    /// What the vault holds, in its keys: `vault` (refresh tokens), `signin` (agent tokens).
    kind: &'static str,
}

impl std::fmt::Debug for RedisVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisVault")
    }
}

fn key(kind: &str, tenant: &str, rep: &str) -> String {
    format!("cti:{{{tenant}}}:{kind}:{}", rep.to_lowercase())
}

/// Deletes KEYS[1] if it holds ARGV[1]: compare and delete in one step, so nothing another
/// instance wrote in between is lost.
const DELETE_IF_SAME: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> VaultError {
    VaultError::Unavailable(std::sync::Arc::from(err.into()))
}

impl RedisVault {
    /// The reps' refresh tokens (`cti:{t}:vault:<rep>`).
    pub async fn connect(url: &str) -> Result<Self, VaultError> {
        Self::connect_for(url, "vault").await
    }

    /// A vault of another kind of token, in keys `cti:{t}:<kind>:<rep>`.
    pub async fn connect_for(url: &str, kind: &'static str) -> Result<Self, VaultError> {
        let conn = crate::shared_store::connect(url)
            .await
            .map_err(unavailable)?;
        Ok(Self::with_connection(conn, kind))
    }

    /// A vault of `kind` on a connection the process shares with its other stores.
    pub fn with_connection(conn: redis::aio::ConnectionManager, kind: &'static str) -> Self {
        RedisVault { conn, kind }
    }
}

#[async_trait]
impl TokenVault for RedisVault {
    async fn put(&self, tenant: &str, rep: &str, sealed: &[u8]) -> Result<(), VaultError> {
        let mut conn = self.conn.clone();
        conn.set(key(self.kind, tenant, rep), STANDARD.encode(sealed))
            .await
            .map_err(unavailable)
    }

    async fn put_expiring(
        &self,
        tenant: &str,
        rep: &str,
        sealed: &[u8],
        ttl_secs: u64,
    ) -> Result<(), VaultError> {
        let mut conn = self.conn.clone();
        conn.set_ex(
            key(self.kind, tenant, rep),
            STANDARD.encode(sealed),
            ttl_secs.max(1),
        )
        .await
        .map_err(unavailable)
    }

    async fn get(&self, tenant: &str, rep: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = conn
            .get(key(self.kind, tenant, rep))
            .await
            .map_err(unavailable)?;
        Ok(value.and_then(|v| STANDARD.decode(v).ok()))
    }

    async fn remove(&self, tenant: &str, rep: &str) -> Result<(), VaultError> {
        let mut conn = self.conn.clone();
        conn.del(key(self.kind, tenant, rep))
            .await
            .map_err(unavailable)
    }

    async fn remove_if(&self, tenant: &str, rep: &str, sealed: &[u8]) -> Result<bool, VaultError> {
        let mut conn = self.conn.clone();
        let removed: i64 = redis::Script::new(DELETE_IF_SAME)
            .key(key(self.kind, tenant, rep))
            .arg(STANDARD.encode(sealed))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(removed == 1)
    }

    async fn lease(
        &self,
        tenant: &str,
        rep: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> Result<bool, VaultError> {
        let mut conn = self.conn.clone();
        let taken: Option<String> = redis::cmd("SET")
            .arg(key(&format!("{}-lease", self.kind), tenant, rep))
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(taken.is_some())
    }

    async fn release(&self, tenant: &str, rep: &str, holder: &str) -> Result<(), VaultError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::Script::new(DELETE_IF_SAME)
            .key(key(&format!("{}-lease", self.kind), tenant, rep))
            .arg(holder)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer_with(byte: u8) -> Sealer {
        Sealer::new(&TokenKey::from_base64(&STANDARD.encode([byte; 32])).expect("a 32-byte key"))
    }

    fn sealer() -> Sealer {
        sealer_with(7)
    }

    #[test]
    fn a_sealed_token_opens_only_for_its_owner_and_key() {
        let s = sealer();
        let sealed = s.seal("t", "Alice@x", "refresh-123").expect("sealed");
        assert!(!String::from_utf8_lossy(&sealed).contains("refresh-123"));
        assert_eq!(
            s.open("t", "alice@x", &sealed).expect("opens").expose(),
            "refresh-123"
        );
        assert!(s.open("t", "bob@x", &sealed).is_err(), "another rep");
        assert!(s.open("u", "alice@x", &sealed).is_err(), "another tenant");
        let other = sealer_with(8);
        assert!(other.open("t", "alice@x", &sealed).is_err(), "another key");
        let again = s.seal("t", "alice@x", "refresh-123").expect("sealed");
        assert_ne!(sealed, again, "a fresh nonce every time");
    }

    fn key(byte: u8) -> TokenKey {
        TokenKey::from_base64(&STANDARD.encode([byte; 32])).expect("a 32-byte key")
    }

    /// Key rotation: the new key seals; what the previous one sealed still opens, marked stale
    /// so it is sealed again; a key that is neither opens nothing.
    #[test]
    fn during_a_rotation_the_previous_key_still_opens_and_its_values_are_sealed_again() {
        let old = sealer_with(7);
        let sealed_before = old.seal("t", "alice@x", "refresh-1").expect("sealed");
        let rotated = Sealer::rotated(&key(8), Some(&key(7)));
        let opened = rotated
            .unseal("t", "alice@x", &sealed_before)
            .expect("opens with the previous key");
        assert_eq!(opened.secret.expose(), "refresh-1");
        assert!(opened.stale, "to be sealed again");
        let sealed_after = rotated
            .seal("t", "alice@x", opened.secret.expose())
            .expect("sealed");
        let again = rotated
            .unseal("t", "alice@x", &sealed_after)
            .expect("opens");
        assert!(!again.stale, "sealed under the new key");
        assert!(
            old.open("t", "alice@x", &sealed_after).is_err(),
            "the new key seals, not the previous one"
        );
        assert!(
            rotated.open("t", "bob@x", &sealed_before).is_err(),
            "the owner still binds"
        );
        assert!(
            sealer_with(8).open("t", "alice@x", &sealed_before).is_err(),
            "without the previous key the old value stays shut"
        );
        let third = Sealer::rotated(&key(9), Some(&key(8)));
        assert!(third.open("t", "alice@x", &sealed_before).is_err());
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(TokenKey::from_base64("not base64!").is_err());
        assert!(TokenKey::from_base64(&STANDARD.encode([1u8; 16])).is_err());
    }
}
