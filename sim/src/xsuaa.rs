//! XSUAA with identity zones, for the relay's own sign-in (OAuth 2.0 authorization code with the
//! app's client credentials). A real XSUAA serves each zone at its subdomain
//! (`https://<zone>.<uaadomain>`); here each zone is a path, `/sim/xsuaa/{zone}`, so that tests
//! reach every zone on loopback.
//!
//! - `GET /sim/xsuaa/{zone}/oauth/authorize?response_type=code&client_id&redirect_uri&state
//!   [&login_hint=<user>][&role=admin]`: the user (`login_hint`, else the demo rep) is signed
//!   in at once; 303 to `redirect_uri?code=..&state=..`. `role=admin` signs in an administrator
//!   (the Admin role template's scopes, `cti-relay.Admin` and `cti-relay.Agent`), as
//!   `/sim/authorize` does; a browser session ([`Xsuaa::sign_in_as`]) signs its user in whatever
//!   the request says. [`Xsuaa::deny_next`] makes the next sign-in end with
//!   `error=access_denied`, as a user without a role collection's would.
//! - `POST /sim/xsuaa/{zone}/oauth/token` (form, client as HTTP Basic):
//!   `grant_type=authorization_code` with `code` and `redirect_uri`. Answers
//!   `{"access_token","token_type":"bearer","expires_in","scope","jti"}`. The access token is an
//!   RS256 JWT shaped like XSUAA's (reference: SAP V2 notes 6.4): `iss`
//!   `{base}/sim/xsuaa/{zone}/oauth/token`, `zid` the zone's tenant id, `ext_attr.zdn` the zone,
//!   `aud` the xsappname and the client, `grant_type`, `origin`, `user_name`, `email`, `scope`.
//! - `GET /sim/xsuaa/{zone}/token_keys`: the zone's JWKS.
//!
//! Strict like the real one: an unknown zone is 404; an unknown client, a wrong secret, a code
//! used before or expired, a code of another zone and a `redirect_uri` other than the
//! authorize request's are refused with RFC 6749 errors (`invalid_client`, `invalid_grant`).
//! Inferred rather than published: every zone signs with the simulator's one key (each has its
//! own issuer and key URL, so the relay still fetches and checks per zone), the authorize step
//! allows the relay's callback on any host (as xs-security.json's
//! `https://*.<domain>/**` does), and the error texts.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use parking_lot::Mutex;
use serde_json::json;

use crate::Sim;
use crate::idp::{ADMIN_SCOPE, AGENT_SCOPE, AUDIENCE, DEFAULT_TTL_SECS};
use crate::oauth::{error as oauth_error, now_secs};

/// How long an authorization code may wait for its exchange.
const CODE_TTL_SECS: u64 = 60;
/// The path the relay's sign-in returns to.
const CALLBACK_PATH: &str = "/v1/sign-in/callback";

#[derive(Debug)]
struct Code {
    zone: String,
    user: String,
    admin: bool,
    redirect_uri: String,
    expires_at: u64,
}

/// The zones and the codes handed out.
#[derive(Debug, Default)]
pub struct Xsuaa {
    /// Zone (subdomain) -> its tenant id (`zid`).
    zones: Mutex<HashMap<String, String>>,
    codes: Mutex<HashMap<String, Code>>,
    /// The next sign-in ends with `error=access_denied`.
    deny: Mutex<bool>,
    /// The user the browser is already signed in as (and whether as an administrator), if any.
    session: Mutex<Option<(String, bool)>>,
}

impl Xsuaa {
    /// Creates the identity zone `subdomain` of the subaccount `zid`.
    pub fn add_zone(&self, subdomain: &str, zid: &str) {
        self.zones
            .lock()
            .insert(subdomain.to_string(), zid.to_string());
    }

    /// A browser session: sign-ins from now on are `user`'s (an administrator's with `admin`),
    /// whatever the authorize request hints at, as with single sign-on.
    pub fn sign_in_as(&self, user: &str, admin: bool) {
        *self.session.lock() = Some((user.to_string(), admin));
    }

    /// The next sign-in is refused (`error=access_denied` back at the relay).
    pub fn deny_next(&self) {
        *self.deny.lock() = true;
    }

    fn zid(&self, zone: &str) -> Option<String> {
        self.zones.lock().get(zone).cloned()
    }
}

fn unknown_zone(zone: &str) -> Response {
    oauth_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no identity zone {zone:?}"),
    )
}

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/xsuaa/{zone}/oauth/authorize", get(authorize))
        .route("/sim/xsuaa/{zone}/oauth/token", post(token))
        .route("/sim/xsuaa/{zone}/token_keys", get(token_keys))
}

fn redirect(target: &reqwest::Url) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, target.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

async fn authorize(
    State(sim): State<Arc<Sim>>,
    Path(zone): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if sim.xsuaa.zid(&zone).is_none() {
        return unknown_zone(&zone);
    }
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    if param("client_id") != sim.config.xsuaa_client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown client_id",
        );
    }
    let Some(mut target) = reqwest::Url::parse(param("redirect_uri"))
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.path() == CALLBACK_PATH)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not one the app's xs-security.json allows",
        );
    };
    if param("response_type") != "code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "only response_type=code is offered to this client",
        );
    }
    let denied = std::mem::take(&mut *sim.xsuaa.deny.lock());
    if denied {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "User denied access")
            .append_pair("state", param("state"));
        return redirect(&target);
    }
    let session = sim.xsuaa.session.lock().clone();
    let (user, admin) = session.unwrap_or_else(|| {
        let hinted = query
            .get("login_hint")
            .map(|u| u.trim())
            .filter(|u| !u.is_empty() && u.len() <= 256 && !u.chars().any(char::is_control))
            .map_or_else(|| sim.config.demo_agent.clone(), str::to_string);
        (hinted, param("role") == "admin")
    });
    let code = uuid::Uuid::new_v4().simple().to_string();
    let now = now_secs();
    let mut codes = sim.xsuaa.codes.lock();
    codes.retain(|_, c| c.expires_at > now);
    codes.insert(
        code.clone(),
        Code {
            zone,
            user,
            admin,
            redirect_uri: param("redirect_uri").to_string(),
            expires_at: now + CODE_TTL_SECS,
        },
    );
    drop(codes);
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", param("state"));
    redirect(&target)
}

fn form(body: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://form/?{body}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

async fn token(
    State(sim): State<Arc<Sim>>,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(zid) = sim.xsuaa.zid(&zone) else {
        return unknown_zone(&zone);
    };
    let client = sim.config.xsuaa_client_id.as_str();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{client}:{}", sim.config.xsuaa_client_secret))
    );
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Bad credentials",
        );
    }
    let form = form(&body);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "authorization_code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code is offered here",
        );
    }
    // Single use: taken out whether or not the rest holds.
    let code = sim.xsuaa.codes.lock().remove(field("code"));
    let Some(code) = code.filter(|c| c.expires_at > now_secs() && c.zone == zone) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid authorization code",
        );
    };
    if field("redirect_uri") != code.redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Redirect mismatch",
        );
    }
    crate::idp::warm_up().await;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8090");
    let issuer = format!("http://{host}/sim/xsuaa/{zone}/oauth/token");
    let now = now_secs();
    let scopes: Vec<&str> = if code.admin {
        vec!["openid", ADMIN_SCOPE, AGENT_SCOPE]
    } else {
        vec!["openid", AGENT_SCOPE]
    };
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let claims = json!({
        "iss": issuer,
        "aud": [AUDIENCE, client],
        "sub": format!("user-{}", code.user),
        "user_id": format!("user-{}", code.user),
        "user_name": code.user,
        "email": code.user,
        "origin": "sap.default",
        "zid": zid,
        "ext_attr": {"enhancer": "XSUAA", "subaccountid": zid, "zdn": zone},
        "client_id": client,
        "cid": client,
        "azp": client,
        "grant_type": "authorization_code",
        "scope": scopes,
        "iat": now,
        "exp": now + DEFAULT_TTL_SECS,
        "jti": jti,
    });
    match sim.idp.sign(&claims) {
        Ok(access) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({"access_token": access, "token_type": "bearer",
                "expires_in": DEFAULT_TTL_SECS, "scope": scopes.join(" "), "jti": jti})),
        )
            .into_response(),
        Err(err) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &err.to_string(),
        ),
    }
}

async fn token_keys(State(sim): State<Arc<Sim>>, Path(zone): Path<String>) -> Response {
    if sim.xsuaa.zid(&zone).is_none() {
        return unknown_zone(&zone);
    }
    crate::idp::warm_up().await;
    match sim.idp.jwks() {
        Ok(keys) => Json(keys).into_response(),
        Err(err) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &err.to_string(),
        ),
    }
}
