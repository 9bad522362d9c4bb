//! A simulated identity provider: RS256 agent tokens and the JWKS that verifies them.
//!
//! The tokens carry the claims the relay reads from XSUAA and IAS tokens in production (`zid` for
//! the tenant, `user_name`/`email` for the rep), so the relay verifies them with the same code
//! path, configured with this JWKS URL, issuer `cti-sim` and audience `cti-relay`.
//!
//! - `GET /sim/jwks.json`: `{"keys":[{"kty":"RSA","kid":"sim-1","use":"sig","alg":"RS256","n","e"}]}`
//! - `GET /sim/token?agent=<id>[&tenant=<t>][&ttl=<seconds>][&role=admin]`:
//!   `{"token":"<jwt>","agent":"...","tenant":"...","expires_at":<unix seconds>}`; with
//!   `role=admin` the token carries the tenant administrator's scope (`cti-relay.Admin`)
//!   instead of the agent's, as XSUAA's token for a user with the `Admin` role would.
//! - `GET /sim/authorize?redirect_uri=<relay>/widget/|<relay>/admin/[&login_hint=<id>]`: the
//!   sign-in, back to the widget with an agent's token or to the admin page with an admin's.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde_json::json;

use crate::{Sim, SimConfig};

/// The one key id this provider signs with.
pub const KEY_ID: &str = "sim-1";
pub const ISSUER: &str = "cti-sim";
pub const AUDIENCE: &str = "cti-relay";
/// The scope XSUAA puts in a rep's token for the `Agent` role (`$XSAPPNAME.Agent` in
/// xs-security.json), which the relay requires by default (`<audience>.Agent`).
pub const AGENT_SCOPE: &str = "cti-relay.Agent";
/// The scope XSUAA puts in a tenant administrator's token for the `Admin` role
/// (`$XSAPPNAME.Admin`), which the relay's `/v1/admin/*` requires by default.
pub const ADMIN_SCOPE: &str = "cti-relay.Admin";
/// A working day, like an interactive XSUAA session.
pub const DEFAULT_TTL_SECS: u64 = 8 * 3600;
/// Longer-lived tokens are refused: nothing legitimate needs them, and they hide expiry bugs.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

const MAX_ID_LEN: usize = 256;

/// The private key as jsonwebtoken wants it and the public half as the JWKS shows it.
struct KeyMaterial {
    encoding: EncodingKey,
    n: String,
    e: String,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key, not even in a debug dump.
        f.debug_struct("KeyMaterial")
            .field("n", &self.n)
            .field("e", &self.e)
            .finish_non_exhaustive()
    }
}

/// Generating an RSA-2048 key takes seconds, and a test binary starts dozens of simulators: one
/// key per process serves them all. A failure is kept too, so every request reports it.
static KEY: OnceLock<Result<KeyMaterial, String>> = OnceLock::new();

fn generate() -> Result<KeyMaterial, String> {
    let mut rng = rand::thread_rng();
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048)
        .map_err(|e| format!("RSA key generation failed: {e}"))?;
    let der = private
        .to_pkcs1_der()
        .map_err(|e| format!("RSA key encoding failed: {e}"))?;
    let public = private.to_public_key();
    Ok(KeyMaterial {
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    })
}

fn key() -> Result<&'static KeyMaterial, IdpError> {
    KEY.get_or_init(generate)
        .as_ref()
        .map_err(|e| IdpError::KeyUnavailable(e.clone()))
}

/// Creates the signing key now, on a blocking thread, so that the first token request does not
/// stall a runtime thread for the seconds key generation takes.
pub async fn warm_up() {
    if KEY.get().is_none() {
        let _ = tokio::task::spawn_blocking(|| KEY.get_or_init(generate).is_ok()).await;
    }
}

/// Everything the provider's routes can refuse, mapped to a response in [`IntoResponse`] below.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("bad query string: {0}")]
    InvalidQuery(String),
    #[error("`{field}` must be 1 to {MAX_ID_LEN} printable characters")]
    InvalidId { field: &'static str },
    #[error("`ttl` must be a whole number of seconds from 1 to {MAX_TTL_SECS}, not {0:?}")]
    InvalidTtl(String),
    #[error(
        "`redirect_uri` must be the relay's widget or admin page ({0}/widget/... or {0}/admin/...)"
    )]
    InvalidRedirect(String),
    #[error("`role` must be agent or admin, not {0:?}")]
    InvalidRole(String),
    #[error("signing key unavailable: {0}")]
    KeyUnavailable(String),
    #[error("token signing failed: {0}")]
    Signing(String),
}

impl IdpError {
    fn status(&self) -> StatusCode {
        match self {
            IdpError::InvalidQuery(_)
            | IdpError::InvalidId { .. }
            | IdpError::InvalidTtl(_)
            | IdpError::InvalidRedirect(_)
            | IdpError::InvalidRole(_) => StatusCode::BAD_REQUEST,
            IdpError::KeyUnavailable(_) | IdpError::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            IdpError::InvalidQuery(_) => "invalid_query",
            IdpError::InvalidId { field: "tenant" } => "invalid_tenant",
            IdpError::InvalidId { .. } => "invalid_agent",
            IdpError::InvalidTtl(_) => "invalid_ttl",
            IdpError::InvalidRedirect(_) => "invalid_redirect_uri",
            IdpError::InvalidRole(_) => "invalid_role",
            IdpError::KeyUnavailable(_) => "key_unavailable",
            IdpError::Signing(_) => "signing_failed",
        }
    }
}

impl IntoResponse for IdpError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        (self.status(), Json(body)).into_response()
    }
}

/// The claims of an agent token, shaped like the XSUAA claims the relay reads.
#[derive(Debug, Clone, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    user_name: &'a str,
    email: &'a str,
    zid: &'a str,
    given_name: String,
    family_name: String,
    scope: [&'a str; 2],
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

/// A signed token and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub agent: String,
    pub tenant: String,
    pub expires_at: u64,
}

/// The simulated identity provider.
#[derive(Debug)]
pub struct Idp {
    default_agent: String,
    default_tenant: String,
    /// Where sign-ins may return to: the widget on the relay's public origin.
    widget_origin: Option<String>,
}

impl Idp {
    pub fn new(config: &SimConfig) -> Self {
        Idp {
            default_agent: config.demo_agent.clone(),
            default_tenant: config.tenant.clone(),
            widget_origin: reqwest::Url::parse(&config.relay_public_url)
                .ok()
                .map(|u| u.origin().ascii_serialization()),
        }
    }

    /// A token for `agent` in `tenant`, valid for `ttl_secs`.
    ///
    /// # Panics
    /// Only if this process could not create its RSA key, which leaves tests nothing to test.
    pub fn issue(&self, agent: &str, tenant: &str, ttl_secs: u64) -> String {
        match self.try_issue(agent, tenant, ttl_secs) {
            Ok(issued) => issued.token,
            Err(err) => panic!("the simulated identity provider cannot sign: {err}"),
        }
    }

    /// A token for `agent` in `tenant`, valid for `ttl_secs`, or why not.
    pub fn try_issue(
        &self,
        agent: &str,
        tenant: &str,
        ttl_secs: u64,
    ) -> Result<IssuedToken, IdpError> {
        self.try_issue_scoped(agent, tenant, ttl_secs, AGENT_SCOPE)
    }

    /// A tenant administrator's token (the admin scope, not the agent's), valid for
    /// `ttl_secs`.
    ///
    /// # Panics
    /// Only if this process could not create its RSA key, which leaves tests nothing to test.
    pub fn issue_admin(&self, user: &str, tenant: &str, ttl_secs: u64) -> String {
        match self.try_issue_scoped(user, tenant, ttl_secs, ADMIN_SCOPE) {
            Ok(issued) => issued.token,
            Err(err) => panic!("the simulated identity provider cannot sign: {err}"),
        }
    }

    /// A token for `agent` in `tenant` carrying `scope` (besides `openid`), or why not.
    pub fn try_issue_scoped(
        &self,
        agent: &str,
        tenant: &str,
        ttl_secs: u64,
        scope: &str,
    ) -> Result<IssuedToken, IdpError> {
        let key = key()?;
        let iat = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let exp = iat.saturating_add(ttl_secs);
        let (given_name, family_name) = names_from(agent);
        let claims = Claims {
            iss: ISSUER,
            aud: AUDIENCE,
            sub: agent,
            user_name: agent,
            email: agent,
            zid: tenant,
            given_name,
            family_name,
            scope: ["openid", scope],
            iat,
            nbf: iat,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KEY_ID.to_string());
        header.typ = Some("JWT".to_string());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| IdpError::Signing(e.to_string()))?;
        Ok(IssuedToken {
            token,
            agent: agent.to_string(),
            tenant: tenant.to_string(),
            expires_at: exp,
        })
    }

    /// Any claims, signed with this provider's key: for tests of what a verifier refuses.
    ///
    /// # Panics
    /// Only if this process could not create its RSA key, which leaves tests nothing to test.
    pub fn sign_claims(&self, claims: &serde_json::Value) -> String {
        let signed = key().and_then(|key| {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(KEY_ID.to_string());
            jsonwebtoken::encode(&header, claims, &key.encoding)
                .map_err(|e| IdpError::Signing(e.to_string()))
        });
        match signed {
            Ok(token) => token,
            Err(err) => panic!("the simulated identity provider cannot sign: {err}"),
        }
    }

    /// Checks a token this provider issued (signature, issuer, audience, expiry); what it says.
    pub fn verify(&self, token: &str) -> Option<IssuedToken> {
        #[derive(serde::Deserialize)]
        struct Read {
            user_name: String,
            zid: String,
            exp: u64,
        }
        let key = key().ok()?;
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&key.n, &key.e).ok()?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let read = jsonwebtoken::decode::<Read>(token, &decoding, &validation).ok()?;
        Some(IssuedToken {
            token: token.to_string(),
            agent: read.claims.user_name,
            tenant: read.claims.zid,
            expires_at: read.claims.exp,
        })
    }

    /// Any claims, signed with the provider's key (the identity service's ID tokens).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, IdpError> {
        let key = key()?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KEY_ID.to_string());
        header.typ = Some("JWT".to_string());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| IdpError::Signing(e.to_string()))
    }

    /// The JWKS document with the provider's one public key.
    pub fn jwks(&self) -> Result<serde_json::Value, IdpError> {
        let key = key()?;
        Ok(json!({"keys": [{
            "kty": "RSA",
            "kid": KEY_ID,
            "use": "sig",
            "alg": "RS256",
            "n": key.n,
            "e": key.e,
        }]}))
    }
}

/// Given and family name from an e-mail-like id: `anna.maria.schmidt@x` gives `Anna` and
/// `Maria Schmidt`; a single-word local part takes the domain's first label as family name, so
/// the widget always has two names to show.
fn names_from(agent: &str) -> (String, String) {
    let (local, domain) = agent.split_once('@').unwrap_or((agent, ""));
    let mut parts = local
        .split(['.', '_', '-', '+'])
        .filter(|p| !p.is_empty())
        .map(capitalize);
    let given = parts.next().unwrap_or_default();
    let rest: Vec<String> = parts.collect();
    let family = if rest.is_empty() {
        domain.split('.').next().map(capitalize).unwrap_or_default()
    } else {
        rest.join(" ")
    };
    (given, family)
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn checked_id(field: &'static str, value: &str) -> Result<String, IdpError> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(IdpError::InvalidId { field });
    }
    Ok(value.to_string())
}

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/jwks.json", get(jwks))
        .route("/sim/token", get(token))
        .route("/sim/authorize", get(authorize))
}

/// The sign-in page, reduced to what the widget needs: the rep (here always signed in, as
/// `login_hint` or the demo rep) is sent back to `redirect_uri` with a token in the fragment. The
/// return address must be the relay's widget, or any page could collect tokens.
async fn authorize(
    State(sim): State<Arc<Sim>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, IdpError> {
    let Query(query) = query.map_err(|e| IdpError::InvalidQuery(e.body_text()))?;
    let expected = sim.idp.widget_origin.clone().unwrap_or_default();
    let redirect = query
        .get("redirect_uri")
        .and_then(|r| reqwest::Url::parse(r).ok())
        .filter(|u| {
            u.origin().ascii_serialization() == expected
                && (u.path().starts_with("/widget/") || u.path().starts_with("/admin/"))
        })
        .ok_or_else(|| IdpError::InvalidRedirect(expected.clone()))?;
    let agent = match query.get("login_hint") {
        Some(agent) => checked_id("login_hint", agent)?,
        None => sim.idp.default_agent.clone(),
    };
    warm_up().await;
    // The admin page signs its administrator in; the widget its rep.
    let scope = if redirect.path().starts_with("/admin/") {
        ADMIN_SCOPE
    } else {
        AGENT_SCOPE
    };
    let issued =
        sim.idp
            .try_issue_scoped(&agent, &sim.idp.default_tenant, DEFAULT_TTL_SECS, scope)?;
    let token = issued.token;
    let mut target = redirect;
    target.set_fragment(Some(&format!("token={token}")));
    tracing::info!(%agent, "agent signed in");
    Ok((
        StatusCode::SEE_OTHER,
        [
            (axum::http::header::LOCATION, target.to_string()),
            (CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response())
}

async fn jwks(State(sim): State<Arc<Sim>>) -> Result<Json<serde_json::Value>, IdpError> {
    warm_up().await;
    Ok(Json(sim.idp.jwks()?))
}

async fn token(
    State(sim): State<Arc<Sim>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, IdpError> {
    let Query(query) = query.map_err(|e| IdpError::InvalidQuery(e.body_text()))?;
    let agent = match query.get("agent") {
        Some(agent) => checked_id("agent", agent)?,
        None => sim.idp.default_agent.clone(),
    };
    let tenant = match query.get("tenant") {
        Some(tenant) => checked_id("tenant", tenant)?,
        None => sim.idp.default_tenant.clone(),
    };
    let ttl = match query.get("ttl") {
        Some(ttl) => ttl
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|t| (1..=MAX_TTL_SECS).contains(t))
            .ok_or_else(|| IdpError::InvalidTtl(ttl.clone()))?,
        None => DEFAULT_TTL_SECS,
    };
    let scope = match query.get("role").map(|r| r.trim()) {
        None | Some("agent") => AGENT_SCOPE,
        Some("admin") => ADMIN_SCOPE,
        Some(other) => return Err(IdpError::InvalidRole(other.to_string())),
    };
    warm_up().await;
    let issued = sim.idp.try_issue_scoped(&agent, &tenant, ttl, scope)?;
    tracing::info!(%agent, %tenant, ttl, %scope, "token issued");
    // A token is a credential: no cache may keep it.
    Ok(([(CACHE_CONTROL, "no-store")], Json(issued)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_local_part() {
        assert_eq!(
            names_from("anna.maria.schmidt@example.com"),
            ("Anna".into(), "Maria Schmidt".into())
        );
        assert_eq!(
            names_from("alice@example.com"),
            ("Alice".into(), "Example".into())
        );
        assert_eq!(names_from("bob"), ("Bob".into(), String::new()));
        assert_eq!(names_from("@"), (String::new(), String::new()));
    }
}
