//! The reps' latest sign-in tokens, for writing on their behalf after the fact.
//!
//! An activity is written when the call ends or later (V2 down, notes after the call); by then the
//! widget's connection may be gone, and with several instances the writer may run on another
//! instance than the one the rep's widget talks to. The token each rep last presented (`hello`) is
//! kept until it expires: in this process, and, with Redis and a token key, sealed in Redis
//! (AES-GCM, expiring with the token) so every instance can act for the rep. Without a key the
//! tokens stay in the process that saw them: a bearer credential is never stored in the clear.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::vault::{Sealer, TokenVault};
use crate::secret::Secret;

/// Tokens are not used in their last minute: the exchange and the write need time.
const MARGIN_MS: u64 = 60_000;

#[derive(Debug, Default)]
pub struct UserTokens {
    tokens: Mutex<HashMap<(String, String), (Secret, u64)>>,
    shared: Option<(Arc<dyn TokenVault>, Sealer)>,
}

impl UserTokens {
    /// Tokens shared with the other instances through `vault`, sealed with `sealer`.
    pub fn shared(vault: Arc<dyn TokenVault>, sealer: Sealer) -> Self {
        UserTokens {
            tokens: Mutex::default(),
            shared: Some((vault, sealer)),
        }
    }

    /// Forgets the tenant's reps' tokens kept here (it unsubscribed).
    pub async fn forget_tenant(&self, tenant: &str) {
        self.tokens.lock().retain(|(t, _), _| t != tenant);
        if let Some((vault, _)) = &self.shared {
            vault.forget_tenant(tenant).await;
        }
    }

    /// Whether other instances see the tokens this one keeps.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Keeps `token` for the rep if it outlives the one kept (`expires_at` in Unix seconds).
    pub async fn remember(
        &self,
        tenant: &str,
        rep: &str,
        token: &str,
        expires_at: u64,
        now_ms: u64,
    ) {
        let expires_ms = expires_at.saturating_mul(1000);
        let newer = {
            let mut tokens = self.tokens.lock();
            let key = (tenant.to_string(), rep.to_lowercase());
            let newer = tokens.get(&key).is_none_or(|(_, kept)| *kept < expires_ms);
            if newer {
                tokens.insert(key, (Secret::new(token), expires_ms));
            }
            newer
        };
        let Some((vault, sealer)) = self.shared.as_ref().filter(|_| newer) else {
            return;
        };
        let ttl_secs = expires_ms.saturating_sub(now_ms) / 1000;
        if ttl_secs == 0 {
            return;
        }
        let put = match sealer.seal(tenant, rep, &format!("{expires_ms} {token}")) {
            Ok(sealed) => vault.put_expiring(tenant, rep, &sealed, ttl_secs).await,
            Err(err) => Err(err),
        };
        if let Err(err) = put {
            // This instance still has it; the others wait until the rep's next hello.
            tracing::warn!(%err, "cannot share a rep's sign-in with the other instances");
        }
    }

    /// The rep's token, if it is valid for a while yet: this instance's, else the shared one.
    pub async fn get(&self, tenant: &str, rep: &str, now_ms: u64) -> Option<Secret> {
        let key = (tenant.to_string(), rep.to_lowercase());
        let usable = |expires: u64| expires > now_ms + MARGIN_MS;
        {
            let mut tokens = self.tokens.lock();
            tokens.retain(|_, (_, expires)| *expires > now_ms);
            if let Some((token, _)) = tokens.get(&key).filter(|(_, e)| usable(*e)) {
                return Some(token.clone());
            }
        }
        let (vault, sealer) = self.shared.as_ref()?;
        let sealed = match vault.get(tenant, rep).await {
            Ok(sealed) => sealed?,
            Err(err) => {
                tracing::warn!(%err, "cannot read a rep's shared sign-in");
                return None;
            }
        };
        let opened = sealer.unseal(tenant, rep, &sealed).ok()?;
        let (expires, token) = opened.secret.expose().split_once(' ')?;
        let expires: u64 = expires.parse().ok()?;
        if !usable(expires) {
            return None;
        }
        if opened.stale {
            // Sealed under the key being rotated out: sealed again under the new one.
            let ttl_secs = expires.saturating_sub(now_ms) / 1000;
            let put = match sealer.seal(tenant, rep, opened.secret.expose()) {
                Ok(resealed) => vault.put_expiring(tenant, rep, &resealed, ttl_secs).await,
                Err(err) => Err(err),
            };
            if let Err(err) = put {
                tracing::warn!(%err, "cannot seal a rep's shared sign-in again under the new key");
            }
        }
        let token = Secret::new(token);
        self.tokens.lock().insert(key, (token.clone(), expires));
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::vault::MemoryVault;
    use base64::Engine;

    fn sealer_with(byte: u8) -> Sealer {
        let key = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        Sealer::new(&crate::config::TokenKey::from_base64(&key).expect("key"))
    }

    fn sealer() -> Sealer {
        sealer_with(3)
    }

    fn text(token: Option<Secret>) -> Option<String> {
        token.map(|s| s.expose().to_string())
    }

    #[tokio::test]
    async fn the_longest_lived_token_is_kept_until_shortly_before_it_expires() {
        let tokens = UserTokens::default();
        tokens.remember("t", "Alice@x", "a1", 1_000, 0).await;
        tokens.remember("t", "alice@x", "a0", 500, 0).await;
        assert_eq!(text(tokens.get("t", "alice@x", 0).await), Some("a1".into()));
        assert!(
            tokens
                .get("t", "alice@x", 1_000_000 - MARGIN_MS)
                .await
                .is_none()
        );
        assert!(
            tokens.get("u", "alice@x", 0).await.is_none(),
            "tenants apart"
        );
    }

    #[tokio::test]
    async fn another_instance_reads_the_shared_token_sealed() {
        let vault: Arc<dyn TokenVault> = Arc::new(MemoryVault::default());
        let here = UserTokens::shared(vault.clone(), sealer());
        let there = UserTokens::shared(vault.clone(), sealer());
        here.remember("t", "alice@x", "jwt-1", 1_000, 0).await;
        let stored = vault
            .get("t", "alice@x")
            .await
            .expect("vault")
            .expect("kept");
        assert!(
            !String::from_utf8_lossy(&stored).contains("jwt-1"),
            "sealed"
        );
        assert_eq!(
            text(there.get("t", "alice@x", 0).await),
            Some("jwt-1".into())
        );
        assert!(
            there
                .get("t", "alice@x", 1_000_000 - MARGIN_MS)
                .await
                .is_none(),
            "not past its expiry"
        );
        assert!(there.get("t", "bob@x", 0).await.is_none());
        let other_key = UserTokens::shared(vault, sealer_with(4));
        assert!(other_key.get("t", "alice@x", 0).await.is_none());
    }

    /// Key rotation: a sign-in sealed under the previous key is read, and sealed again under
    /// the new key, so it still opens once the previous key is gone.
    #[tokio::test]
    async fn a_sign_in_sealed_under_the_previous_key_is_read_and_sealed_again() {
        let key = |byte: u8| {
            let key = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
            crate::config::TokenKey::from_base64(&key).expect("key")
        };
        let vault: Arc<dyn TokenVault> = Arc::new(MemoryVault::default());
        let before = UserTokens::shared(vault.clone(), sealer_with(3));
        before.remember("t", "alice@x", "jwt-1", 1_000, 0).await;

        let rotating = UserTokens::shared(vault.clone(), Sealer::rotated(&key(4), Some(&key(3))));
        assert_eq!(
            text(rotating.get("t", "alice@x", 0).await),
            Some("jwt-1".into())
        );
        let after = UserTokens::shared(vault, sealer_with(4));
        assert_eq!(
            text(after.get("t", "alice@x", 0).await),
            Some("jwt-1".into()),
            "sealed again under the new key"
        );
    }
}
