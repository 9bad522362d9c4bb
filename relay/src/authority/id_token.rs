//! Who actually signed in at the identity provider, from the OpenID Connect ID token of a code
//! exchange (OpenID Connect Core 3.1.3.7).
//!
//! The relay asks the provider to sign in one rep (`login_hint`), but a provider with a single
//! sign-on session signs in whoever holds that session: a colleague who opened someone else's
//! link, or a shared workstation. Storing that sign-in under the rep who asked would write the
//! rep's activities as somebody else. So the ID token is checked (RS256 against the provider's
//! keys, `iss`, `aud` = the relay's client, `exp`, and the `nonce` sealed in the sign-in's
//! state) and its subject, read in the same claim order as agent tokens (`user_name`, `email`,
//! `sub`), must be the rep.

use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::AuthorityError;
use crate::config::OAuthSettings;

/// A key set is fetched again for an unknown key id at most this often.
const REFETCH_MS: u64 = 30_000;

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    sub: Option<String>,
}

/// The providers' key sets, by JWKS URL, with when each was fetched (Unix ms).
#[derive(Debug, Default)]
pub(super) struct ProviderKeys {
    sets: tokio::sync::Mutex<HashMap<String, (u64, JwkSet)>>,
}

impl ProviderKeys {
    /// The rep `token` says signed in, after every check; `nonce` is the one the sign-in sent.
    pub(super) async fn subject(
        &self,
        http: &reqwest::Client,
        settings: &OAuthSettings,
        token: &str,
        nonce: &str,
        now_ms: u64,
    ) -> Result<String, AuthorityError> {
        let invalid = |why: String| AuthorityError::IdToken(why);
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid(format!("signed with {:?}, not RS256", header.alg)));
        }
        let kid = header.kid.unwrap_or_default();
        let key = self.key(http, &settings.jwks_url(), &kid, now_ms).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[settings.issuer()]);
        validation.set_audience(&[settings.client_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| invalid(e.to_string()))?
            .claims;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(invalid("the nonce is not this sign-in's".into()));
        }
        [claims.user_name, claims.email, claims.sub]
            .into_iter()
            .flatten()
            .find(|s| !s.trim().is_empty())
            .ok_or_else(|| invalid("it names nobody".into()))
    }

    async fn key(
        &self,
        http: &reqwest::Client,
        url: &str,
        kid: &str,
        now_ms: u64,
    ) -> Result<DecodingKey, AuthorityError> {
        let mut sets = self.sets.lock().await;
        let known = |set: &JwkSet| {
            set.find(kid)
                .and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
        };
        if let Some((fetched, set)) = sets.get(url) {
            if let Some(key) = known(set) {
                return Ok(key);
            }
            if now_ms.saturating_sub(*fetched) < REFETCH_MS {
                return Err(AuthorityError::IdToken(format!("unknown key {kid:?}")));
            }
        }
        let set: JwkSet = http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| AuthorityError::IdTokenKeys(e.without_url()))?
            .json()
            .await
            .map_err(|e| AuthorityError::IdTokenKeys(e.without_url()))?;
        let key = known(&set);
        sets.insert(url.to_string(), (now_ms, set));
        key.ok_or_else(|| AuthorityError::IdToken(format!("unknown key {kid:?}")))
    }
}
