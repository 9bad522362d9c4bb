//! Agent tokens: RS256 JWTs verified against the identity provider's JWKS.
//!
//! The same code checks XSUAA/IAS tokens in production and the simulator's tokens in the demo;
//! only the JWKS URL, issuer and audience differ. The tenant is `app_tid`, else `zid` (XSUAA's
//! identity zone); the rep is `user_name`, else `email`, else `sub`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub tenant: String,
    pub agent: String,
    /// When the token stops being valid (Unix seconds).
    pub expires_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token is not a JWT: {0}")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    #[error("token signed with unknown key {0:?}")]
    UnknownKey(String),
    #[error("token rejected: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("token names no tenant (app_tid or zid) or no user")]
    MissingIdentity,
    #[error("identity provider keys unavailable: {0}")]
    KeysUnavailable(#[source] reqwest::Error),
}

#[derive(Debug, Deserialize)]
struct Claims {
    app_tid: Option<String>,
    zid: Option<String>,
    user_name: Option<String>,
    email: Option<String>,
    sub: Option<String>,
    exp: u64,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

/// Refetching keys for an unknown `kid` at most this often keeps forged tokens from turning the
/// relay into a load generator against the identity provider.
const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct JwtVerifier {
    jwks_url: String,
    validation: Validation,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl JwtVerifier {
    /// `http` is the process's client (with its timeouts).
    pub fn new(http: reqwest::Client, jwks_url: &str, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.leeway = 30;
        JwtVerifier {
            jwks_url: jwks_url.to_string(),
            validation,
            http,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<AgentIdentity, AuthError> {
        let header = decode_header(token).map_err(AuthError::Malformed)?;
        let kid = header.kid.unwrap_or_default();
        let key = match self.key(&kid).await {
            Some(key) => key,
            None => {
                self.refresh().await?;
                self.key(&kid)
                    .await
                    .ok_or_else(|| AuthError::UnknownKey(kid.clone()))?
            }
        };
        let data = decode::<Claims>(token, &key, &self.validation).map_err(AuthError::Invalid)?;
        let claims = data.claims;
        let tenant = claims.app_tid.or(claims.zid).filter(|t| !t.is_empty());
        let agent = claims
            .user_name
            .or(claims.email)
            .or(claims.sub)
            .filter(|a| !a.is_empty());
        match (tenant, agent) {
            (Some(tenant), Some(agent)) => Ok(AgentIdentity {
                tenant,
                agent,
                expires_at: claims.exp,
            }),
            _ => Err(AuthError::MissingIdentity),
        }
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().await.get(kid).cloned()
    }

    /// Fetches the JWKS, unless it was fetched moments ago.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL)
            && !self.keys.read().await.is_empty()
        {
            return Ok(());
        }
        let unavailable = |e: reqwest::Error| AuthError::KeysUnavailable(e.without_url());
        let jwks: Jwks = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys.into_iter().filter(|k| k.kty == "RSA") {
            if let (Some(n), Some(e)) = (&jwk.n, &jwk.e)
                && let Ok(key) = DecodingKey::from_rsa_components(n, e)
            {
                keys.insert(jwk.kid.clone().unwrap_or_default(), key);
            }
        }
        *self.keys.write().await = keys;
        *last = Some(Instant::now());
        Ok(())
    }
}
