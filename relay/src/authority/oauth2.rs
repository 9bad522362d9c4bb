//! The rep's own OAuth sign-in (SAP Cloud Identity Services, authorization code with PKCE).
//!
//! The widget starts it (`POST /v1/agent/v2-connect` with the rep's token, in a new window); the
//! relay sends the browser to the identity provider with a PKCE challenge and a `state` that is
//! the pending sign-in itself, sealed with the token key (so any instance can finish it and
//! nobody can forge or read it); the provider returns to `GET /v1/agent/v2-callback` with a code,
//! which the relay exchanges with the verifier. The refresh token is sealed into the vault; access
//! tokens stay in memory and are refreshed a minute before they expire (a rotated refresh token
//! replaces the old one).

use std::sync::Arc;

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuthorityError;
use crate::config::OAuthSettings;
use crate::secret::Secret;
use crate::state::{AppState, Tenant};

/// How long a started sign-in may take.
const PENDING_MS: u64 = 10 * 60 * 1000;
/// Access tokens are not used in their last minute.
const MARGIN_MS: u64 = 60_000;
/// The vault's owner for sealed `state` values (no rep has this name: it has no `@`... and a NUL).
const STATE_OWNER: &str = "\u{0}oauth-state";

#[derive(Serialize, Deserialize)]
struct Pending {
    tenant: String,
    rep: String,
    verifier: String,
    redirect_uri: String,
    expires_ms: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn settings(tenant: &Tenant) -> Result<&OAuthSettings, AuthorityError> {
    tenant
        .config
        .oauth
        .as_ref()
        .ok_or_else(|| AuthorityError::OAuth("no identity provider is configured".into()))
}

fn sealer(state: &AppState) -> Result<&super::vault::Sealer, AuthorityError> {
    state
        .sealer
        .as_ref()
        .ok_or_else(|| AuthorityError::OAuth("no token key is configured (CTI_TOKEN_KEY)".into()))
}

/// Where to send the rep's browser to sign in; it comes back to `redirect_uri`.
pub fn authorize_url(
    state: &AppState,
    tenant: &Tenant,
    rep: &str,
    redirect_uri: &str,
) -> Result<String, AuthorityError> {
    let settings = settings(tenant)?;
    let verifier = random_b64(32);
    let pending = Pending {
        tenant: tenant.config.id.clone(),
        rep: rep.to_string(),
        verifier: verifier.clone(),
        redirect_uri: redirect_uri.to_string(),
        expires_ms: state.clock.now_ms() + PENDING_MS,
    };
    let json = serde_json::to_string(&pending).map_err(|e| AuthorityError::OAuth(e.to_string()))?;
    let sealed = sealer(state)?
        .seal(STATE_OWNER, "", &json)
        .map_err(|e| AuthorityError::OAuth(e.to_string()))?;
    let url = reqwest::Url::parse_with_params(
        &settings.authorize_url,
        &[
            ("response_type", "code"),
            ("client_id", settings.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", settings.scope.as_str()),
            ("code_challenge", challenge(&verifier).as_str()),
            ("code_challenge_method", "S256"),
            ("state", URL_SAFE_NO_PAD.encode(sealed).as_str()),
            ("login_hint", rep),
        ],
    )
    .map_err(|e| AuthorityError::OAuth(format!("the authorize URL is not a URL: {e}")))?;
    Ok(url.into())
}

/// Finishes a sign-in the provider sent back: exchanges the code, keeps the tokens. Returns the
/// tenant and rep it was for.
pub async fn complete(
    state: &AppState,
    code: &str,
    sealed_state: &str,
) -> Result<(String, String), AuthorityError> {
    let invalid = || AuthorityError::OAuth("the sign-in's state is invalid or expired".into());
    let sealed = URL_SAFE_NO_PAD
        .decode(sealed_state.trim())
        .map_err(|_| invalid())?;
    let json = sealer(state)?
        .open(STATE_OWNER, "", &sealed)
        .map_err(|_| invalid())?;
    let pending: Pending = serde_json::from_str(json.expose()).map_err(|_| invalid())?;
    if pending.expires_ms < state.clock.now_ms() {
        return Err(invalid());
    }
    let tenant = state.tenant(&pending.tenant).ok_or_else(invalid)?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ];
    let answer = token_request(state, tenant, &form).await?;
    keep(state, tenant, &pending.rep, answer).await?;
    tracing::info!(tenant = %pending.tenant, "a rep connected V2 with their own sign-in");
    Ok((pending.tenant, pending.rep))
}

/// Whether the relay holds the rep's sign-in: a current access token or a sealed refresh token.
/// A refresh token the provider later refuses is removed then, so this turns false at the
/// first write that finds out.
pub async fn is_connected(
    state: &AppState,
    tenant: &Tenant,
    rep: &str,
) -> Result<bool, AuthorityError> {
    let tid = tenant.config.id.as_str();
    let now = state.clock.now_ms();
    let cached = state
        .access_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(tid.to_string(), rep.to_lowercase()))
        .is_some_and(|(_, expires)| *expires > now);
    if cached {
        return Ok(true);
    }
    state
        .vault
        .get(tid, rep)
        .await
        .map(|sealed| sealed.is_some())
        .map_err(|e| AuthorityError::OAuth(e.to_string()))
}

/// The rep's access token, refreshed when it is about to expire.
pub async fn access_token(
    state: &Arc<AppState>,
    tenant: &Tenant,
    rep: &str,
) -> Result<Secret, AuthorityError> {
    let tid = tenant.config.id.as_str();
    let now = state.clock.now_ms();
    let key = (tid.to_string(), rep.to_lowercase());
    if let Some((token, expires)) = state
        .access_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        && *expires > now + MARGIN_MS
    {
        return Ok(token.clone());
    }
    let not_connected = || AuthorityError::NotConnected {
        rep: rep.to_string(),
    };
    let sealed = state
        .vault
        .get(tid, rep)
        .await
        .map_err(|e| AuthorityError::OAuth(e.to_string()))?
        .ok_or_else(not_connected)?;
    let refresh = sealer(state)?
        .open(tid, rep, &sealed)
        .map_err(|e| AuthorityError::OAuth(e.to_string()))?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.expose()),
    ];
    match token_request(state, tenant, &form).await {
        Ok(answer) => keep(state, tenant, rep, answer).await,
        Err(AuthorityError::Refused(reason)) => {
            // The provider no longer honours it (revoked, expired): the rep must sign in again.
            let _ = state.vault.remove(tid, rep).await;
            tracing::info!(%reason, "a rep's V2 sign-in was refused; they need to connect again");
            Err(not_connected())
        }
        Err(err) => Err(err),
    }
}

/// Seals the refresh token (when the provider sent one), caches the access token.
async fn keep(
    state: &AppState,
    tenant: &Tenant,
    rep: &str,
    answer: TokenAnswer,
) -> Result<Secret, AuthorityError> {
    let tid = tenant.config.id.as_str();
    if let Some(refresh) = &answer.refresh_token {
        let sealed = sealer(state)?
            .seal(tid, rep, refresh)
            .map_err(|e| AuthorityError::OAuth(e.to_string()))?;
        state
            .vault
            .put(tid, rep, &sealed)
            .await
            .map_err(|e| AuthorityError::OAuth(e.to_string()))?;
    }
    let token = Secret::new(answer.access_token);
    let expires = state.clock.now_ms() + answer.expires_in.unwrap_or(300) * 1000;
    state
        .access_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            (tid.to_string(), rep.to_lowercase()),
            (token.clone(), expires),
        );
    Ok(token)
}

async fn token_request(
    state: &AppState,
    tenant: &Tenant,
    form: &[(&str, &str)],
) -> Result<TokenAnswer, AuthorityError> {
    let settings = settings(tenant)?;
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    fields.push(("client_id", settings.client_id.as_str()));
    let mut request = state.oauth_http.post(&settings.token_url).form(&fields);
    if let Some(secret) = &settings.client_secret {
        request = request.basic_auth(&settings.client_id, Some(secret.expose()));
    }
    let response = request.send().await.map_err(|e| {
        AuthorityError::OAuth(format!("token endpoint unreachable: {}", e.without_url()))
    })?;
    let status = response.status();
    if status.is_client_error() {
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let reason = body["error_description"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("refused")
            .to_string();
        return Err(AuthorityError::Refused(format!("{status}: {reason}")));
    }
    if !status.is_success() {
        return Err(AuthorityError::OAuth(format!(
            "token endpoint answered {status}"
        )));
    }
    response
        .json()
        .await
        .map_err(|e| AuthorityError::OAuth(format!("token endpoint: {}", e.without_url())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_the_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_ne!(random_b64(32), random_b64(32));
    }
}
