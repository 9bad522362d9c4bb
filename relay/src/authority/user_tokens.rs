//! The reps' latest sign-in tokens, for writing on their behalf after the fact.
//!
//! An activity is written when the call ends or later (V2 down, notes after the call); by then the
//! widget's connection may be gone. The token each rep last presented (`hello`) is kept until it
//! expires, in this process only: it is a bearer credential, and a relay restart costs no more
//! than waiting for the rep's widget to reconnect, which it does at once.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::secret::Secret;

/// Tokens are not used in their last minute: the exchange and the write need time.
const MARGIN_MS: u64 = 60_000;

#[derive(Debug, Default)]
pub struct UserTokens {
    tokens: Mutex<HashMap<(String, String), (Secret, u64)>>,
}

impl UserTokens {
    /// Keeps `token` for the rep if it outlives the one kept (`expires_at` in Unix seconds).
    pub fn remember(&self, tenant: &str, rep: &str, token: &str, expires_at: u64) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.to_string(), rep.to_lowercase());
        let expires_ms = expires_at.saturating_mul(1000);
        if tokens.get(&key).is_none_or(|(_, kept)| *kept < expires_ms) {
            tokens.insert(key, (Secret::new(token), expires_ms));
        }
    }

    /// The rep's token, if it is valid for a while yet.
    pub fn get(&self, tenant: &str, rep: &str, now_ms: u64) -> Option<Secret> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|_, (_, expires)| *expires > now_ms);
        tokens
            .get(&(tenant.to_string(), rep.to_lowercase()))
            .filter(|(_, expires)| *expires > now_ms + MARGIN_MS)
            .map(|(token, _)| token.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_lived_token_is_kept_until_shortly_before_it_expires() {
        let tokens = UserTokens::default();
        tokens.remember("t", "Alice@x", "a1", 1_000);
        tokens.remember("t", "alice@x", "a0", 500);
        assert_eq!(
            tokens
                .get("t", "alice@x", 0)
                .map(|s| s.expose().to_string()),
            Some("a1".into())
        );
        assert!(tokens.get("t", "alice@x", 1_000_000 - MARGIN_MS).is_none());
        assert!(tokens.get("u", "alice@x", 0).is_none(), "tenants apart");
    }
}
