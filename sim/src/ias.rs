//! SAP Cloud Identity Services as the reps' own V2 sign-in: OAuth 2.0 authorization code with
//! PKCE (S256), and refresh tokens that rotate.
//!
//! - `GET /sim/ias/oauth2/authorize?response_type=code&client_id&redirect_uri&code_challenge&
//!   code_challenge_method=S256&state[&scope][&login_hint]`: the rep (`login_hint`, else the demo
//!   rep) is signed in at once; 303 to `redirect_uri?code=..&state=..`. The return address must be
//!   the relay's `/v1/agent/v2-callback`.
//!   With a browser session ([`Ias::sign_in_as`]) the session's user is signed in whatever the
//!   hint says, as identity providers with single sign-on do.
//! - `POST /sim/ias/oauth2/token` (form): `grant_type=authorization_code` with `code`,
//!   `redirect_uri`, `code_verifier`, `client_id`; or `grant_type=refresh_token` with
//!   `refresh_token`, `client_id`. Answers `{"access_token","token_type":"Bearer","expires_in",
//!   "refresh_token"}`, and for a code also the OpenID Connect `id_token` (RS256; `iss` the
//!   service's base, `{host}/sim/ias`; `aud` the client; `sub` and `email` the user; the
//!   authorize request's `nonce`); the access token is a V2 bearer token for the rep; every
//!   refresh hands out a new refresh token and retires the old one. Errors follow RFC 6749
//!   (`invalid_grant`, ...).
//! - `GET /sim/ias/oauth2/certs`: the keys of the ID tokens (a JWKS).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Sim;
use crate::oauth::{error as oauth_error, now_secs};

/// How long an authorization code may wait for its exchange.
const CODE_TTL_SECS: u64 = 60;

#[derive(Debug)]
struct Code {
    user: String,
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
    expires_at: u64,
}

#[derive(Debug, Default)]
pub struct Ias {
    codes: Mutex<HashMap<String, Code>>,
    /// Refresh token -> user.
    refresh_tokens: Mutex<HashMap<String, String>>,
    refreshes: AtomicU64,
    /// Seconds; 0 keeps the configured lifetime. Tests shorten it to see tokens renewed.
    access_ttl: AtomicU64,
    /// The user the browser is already signed in as, if any.
    session: Mutex<Option<String>>,
}

impl Ias {
    /// How many refresh grants were served (tests check access tokens are renewed).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Makes the access tokens issued from now on live `secs`.
    pub fn set_access_ttl(&self, secs: u64) {
        self.access_ttl.store(secs, Ordering::Relaxed);
    }

    /// A browser session for `user`: sign-ins from now on are `user`'s, whoever the relay hinted
    /// at (a shared workstation, or a colleague opening someone else's link).
    pub fn sign_in_as(&self, user: &str) {
        *self.session.lock() = Some(user.to_string());
    }

    /// Retires every refresh token of `user` (an administrator revoking the rep's sessions).
    pub fn revoke(&self, user: &str) {
        self.refresh_tokens.lock().retain(|_, u| u != user);
    }
}

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/ias/oauth2/authorize", get(authorize))
        .route("/sim/ias/oauth2/token", post(token))
        .route("/sim/ias/oauth2/certs", get(certs))
}

async fn authorize(
    State(sim): State<Arc<Sim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    if param("client_id") != sim.config.ias_client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown client_id",
        );
    }
    let relay_origin = reqwest::Url::parse(&sim.config.relay_public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let Some(redirect) = reqwest::Url::parse(param("redirect_uri")).ok().filter(|u| {
        u.origin().ascii_serialization() == relay_origin && u.path() == "/v1/agent/v2-callback"
    }) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri must be the relay's /v1/agent/v2-callback",
        );
    };
    if param("response_type") != "code"
        || param("code_challenge_method") != "S256"
        || param("code_challenge").len() < 43
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "response_type=code with an S256 code_challenge is required",
        );
    }
    let session = sim.ias.session.lock().clone();
    let user = session.unwrap_or_else(|| {
        query
            .get("login_hint")
            .filter(|u| !u.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| sim.config.demo_agent.clone())
    });
    let code = format!("iascode-{}", uuid::Uuid::new_v4().simple());
    sim.ias.codes.lock().insert(
        code.clone(),
        Code {
            user,
            nonce: query.get("nonce").cloned(),
            challenge: param("code_challenge").to_string(),
            redirect_uri: param("redirect_uri").to_string(),
            expires_at: now_secs() + CODE_TTL_SECS,
        },
    );
    let mut target = redirect;
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", param("state"));
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, target.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

fn form(body: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://form/?{body}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

async fn certs(State(sim): State<Arc<Sim>>) -> Response {
    match sim.idp.jwks() {
        Ok(keys) => Json(keys).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: String) -> Response {
    let form = form(&body);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("client_id") != sim.config.ias_client_id {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id",
        );
    }
    let mut nonce = None;
    let user = match field("grant_type") {
        "authorization_code" => {
            let code = sim.ias.codes.lock().remove(field("code"));
            let Some(code) = code.filter(|c| c.expires_at > now_secs()) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code is unknown, used or expired",
                );
            };
            if code.redirect_uri != field("redirect_uri") {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri differs from the authorization request",
                );
            }
            let derived = URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier").as_bytes()));
            if derived != code.challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            nonce = Some(code.nonce);
            code.user
        }
        "refresh_token" => {
            let user = sim.ias.refresh_tokens.lock().remove(field("refresh_token"));
            let Some(user) = user else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token is unknown, revoked or already used",
                );
            };
            sim.ias.refreshes.fetch_add(1, Ordering::Relaxed);
            user
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("{other:?} is not offered"),
            );
        }
    };
    let ttl = match sim.ias.access_ttl.load(Ordering::Relaxed) {
        0 => sim.config.ias_access_ttl_secs,
        secs => secs,
    };
    let access = sim.v2.issue_bearer(&user, ttl);
    let refresh = format!("iasrt-{}", uuid::Uuid::new_v4().simple());
    sim.ias
        .refresh_tokens
        .lock()
        .insert(refresh.clone(), user.clone());
    let mut answer = json!({"access_token": access, "token_type": "Bearer", "expires_in": ttl,
                            "refresh_token": refresh, "scope": "openid offline_access"});
    // A code grant with `openid` proves who signed in (OpenID Connect Core 3.1.3.3).
    if let Some(nonce) = nonce {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let iat = now_secs();
        let mut claims = json!({
            "iss": format!("http://{host}/sim/ias"),
            "aud": sim.config.ias_client_id,
            "sub": user,
            "email": user,
            "iat": iat,
            "exp": iat + 3600,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        match sim.idp.sign(&claims) {
            Ok(id_token) => answer["id_token"] = json!(id_token),
            Err(err) => {
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    &err.to_string(),
                );
            }
        }
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}
