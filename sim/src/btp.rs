//! The SAP BTP services a relay deployed on Cloud Foundry binds: the XSUAA token endpoint of a
//! Destination service instance, and the Destination service's "find destination" API with user
//! propagation through an `OAuth2SAMLBearerAssertion` destination.
//!
//! - `POST /sim/btp/oauth/token` (`grant_type=client_credentials`, the binding's client id and
//!   secret as Basic auth): `{"access_token","token_type":"bearer","expires_in"}`.
//! - `GET /sim/btp/destination-configuration/v1/destinations/{name}` with
//!   `Authorization: Bearer <that token>` and `X-user-token: <the user's JWT>`:
//!   `{"owner":{..},"destinationConfiguration":{"Name","Type":"HTTP","URL",
//!   "Authentication":"OAuth2SAMLBearerAssertion",..},"authTokens":[{"type":"Bearer","value",
//!   "http_header":{"key":"Authorization","value":"Bearer .."},"expires_in":"3600"}]}`. As the real
//!   service does, a user token it cannot exchange still gives 200, with the reason in
//!   `authTokens[0].error` and no value. An unknown destination is 404.
//!
//! - `POST /sim/btp/saas-registry/oauth/token` (`grant_type=client_credentials`, the SaaS
//!   Provisioning service's client as Basic auth): `{"access_token","token_type":"bearer",
//!   "expires_in","scope"}`, the access token a JWT signed by the simulated XSUAA (the identity
//!   provider's key, [`crate::idp`]) with `grant_type: client_credentials`, the registry's client
//!   as `sub`, `cid` and `client_id`, the provider's zone as `zid`, and the scope
//!   `cti-relay.Callback`, which xs-security.json grants the registry as an authority. This is
//!   what the registry presents to the relay's subscription callbacks. The claim set is inferred
//!   from XSUAA's client-credentials tokens as SAP's samples decode them, not published as a
//!   contract.
//!
//! The exchanged token is a V2 bearer token for the user in the JWT: V2 calls made with it are
//! recorded as that user's (`adminData.createdBy`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use parking_lot::Mutex;
use serde_json::json;

use crate::Sim;
use crate::oauth::now_secs;

/// How long the simulated services' tokens live.
const TOKEN_TTL_SECS: u64 = 3600;

/// Client-credentials tokens handed out, with their expiry (Unix seconds).
#[derive(Debug, Default)]
pub struct Btp {
    tokens: Mutex<HashMap<String, u64>>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": message})),
    )
        .into_response()
}

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/btp/oauth/token", post(token))
        .route(
            "/sim/btp/saas-registry/oauth/token",
            post(saas_registry_token),
        )
        .route(
            "/sim/btp/destination-configuration/v1/destinations/{name}",
            get(find_destination),
        )
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: String) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            sim.config.destination_client_id, sim.config.destination_client_secret
        ))
    );
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials");
    }
    let grant = form_value(&body, "grant_type");
    if grant.as_deref() != Some("client_credentials") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is offered here",
        );
    }
    let access = format!("btpcc-{}", uuid::Uuid::new_v4().simple());
    let mut tokens = sim.btp.tokens.lock();
    let now = now_secs();
    tokens.retain(|_, exp| *exp > now);
    tokens.insert(access.clone(), now + TOKEN_TTL_SECS);
    Json(json!({"access_token": access, "token_type": "bearer",
                "expires_in": TOKEN_TTL_SECS, "scope": "uaa.resource"}))
    .into_response()
}

/// The scope the SaaS Provisioning service's token carries: `$XSAPPNAME.Callback` with the
/// simulated xsappname (the identity provider's audience).
pub const CALLBACK_SCOPE: &str = "cti-relay.Callback";

/// The zone (subaccount) the relay is deployed in: the provider's, in whose name the registry's
/// token is issued.
pub const PROVIDER_ZONE: &str = "provider-zone";

async fn saas_registry_token(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            sim.config.saas_client_id, sim.config.saas_client_secret
        ))
    );
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials");
    }
    if form_value(&body, "grant_type").as_deref() != Some("client_credentials") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is offered here",
        );
    }
    crate::idp::warm_up().await;
    let now = now_secs();
    let client = sim.config.saas_client_id.as_str();
    let claims = json!({
        "iss": crate::idp::ISSUER,
        "aud": [crate::idp::AUDIENCE],
        "sub": client,
        "cid": client,
        "client_id": client,
        "azp": client,
        "grant_type": "client_credentials",
        "zid": PROVIDER_ZONE,
        "scope": [CALLBACK_SCOPE],
        "iat": now,
        "exp": now + TOKEN_TTL_SECS,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    match sim.idp.sign(&claims) {
        Ok(access) => Json(json!({"access_token": access, "token_type": "bearer",
                                  "expires_in": TOKEN_TTL_SECS, "scope": CALLBACK_SCOPE}))
        .into_response(),
        Err(err) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &err.to_string(),
        ),
    }
}

fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.replace('+', " "))
    })
}

async fn find_destination(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let valid = bearer.is_some_and(|t| {
        sim.btp
            .tokens
            .lock()
            .get(t)
            .is_some_and(|exp| *exp > now_secs())
    });
    if !valid {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a valid client-credentials token of the destination service binding is required",
        );
    }
    if name != sim.config.destination_name {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Configuration with the name {name} could not be found"),
        );
    }
    // The V2 tenant is this simulator, reached the way the caller reached us.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8090");
    let v2_url = format!("http://{host}");
    let auth_token = match headers
        .get("x-user-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None => json!({"type": "", "value": "",
            "error": "Retrieval of OAuthToken failed due to: no user token (X-user-token) was given for a SAML bearer assertion"}),
        Some(user_token) => match sim.idp.verify(user_token) {
            None => json!({"type": "", "value": "",
                "error": "Retrieval of OAuthToken failed due to: the user token is invalid or expired"}),
            Some(user) => {
                let value = sim.v2.issue_bearer(&user.agent, TOKEN_TTL_SECS);
                json!({"type": "Bearer", "value": value,
                    "http_header": {"key": "Authorization", "value": format!("Bearer {value}")},
                    "expires_in": TOKEN_TTL_SECS.to_string()})
            }
        },
    };
    Json(json!({
        "owner": {"SubaccountId": "sim-subaccount", "InstanceId": null},
        "destinationConfiguration": {
            "Name": name, "Type": "HTTP", "URL": v2_url,
            "Authentication": "OAuth2SAMLBearerAssertion", "ProxyType": "Internet",
            "audience": v2_url, "tokenServiceURL": format!("{v2_url}/sap/bc/sec/oauth2/token")
        },
        "authTokens": [auth_token]
    }))
    .into_response()
}
