//! The account's HTTP face under `/sim/ringcentral`: RingCentral's REST API as the relay calls it
//! (every call needs a valid bearer token; errors in RingCentral's shape
//! `{"errorCode","message","errors":[{"errorCode","message",...}]}`) and the simulator's controls.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Extension, RingCentral, Subscription, now_rfc3339, rfc3339_in};
use crate::Sim;

/// How long the account waits for the validation handshake's answer, and the largest answer it
/// takes (reference 2.1: within 1 s; over 1024 bytes is `SUB-525`).
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(1);
const VALIDATION_MAX_BYTES: usize = 1024;
/// The largest `expiresIn` a webhook subscription may ask for (RingCentral's documented maximum
/// for webhooks is 630720000 s; the simulator caps at its configured life instead).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A refusal in RingCentral's error shape.
#[derive(Debug, thiserror::Error)]
pub enum RcError {
    #[error("{code}: {message}")]
    Api {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// A simulator control that could not reach the relay.
    #[error("the relay did not take the notification: {0}")]
    Undelivered(String),
}

impl RcError {
    pub(crate) fn unauthorized(message: &str) -> Self {
        RcError::Api {
            status: StatusCode::UNAUTHORIZED,
            // Inferred: the code RingCentral's API gateway answers a missing or bad token with.
            code: "AGW-401",
            message: message.into(),
        }
    }

    pub(crate) fn not_found(parameter: &str, value: &str) -> Self {
        RcError::Api {
            status: StatusCode::NOT_FOUND,
            code: "CMN-102",
            message: format!("Resource for parameter [{parameter}] is not found: {value:?}"),
        }
    }

    pub(crate) fn invalid(parameter: &str, value: &str) -> Self {
        RcError::Api {
            status: StatusCode::BAD_REQUEST,
            code: "CMN-101",
            message: format!("Parameter [{parameter}] value is invalid: {value}"),
        }
    }

    pub(crate) fn conflict(message: String) -> Self {
        // Inferred: RingCentral answers a call-control action the party's state does not allow
        // with 409 (TAS-1xx codes).
        RcError::Api {
            status: StatusCode::CONFLICT,
            code: "TAS-102",
            message,
        }
    }

    pub(crate) fn sim(message: String) -> Self {
        RcError::Api {
            status: StatusCode::BAD_REQUEST,
            code: "SIM-400",
            message,
        }
    }

    fn subscription(code: &'static str, message: &str) -> Self {
        // Inferred status: the reference names the codes, not the HTTP status; 400 as for other
        // refused subscription requests.
        RcError::Api {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for RcError {
    fn into_response(self) -> Response {
        match self {
            RcError::Api {
                status,
                code,
                message,
            } => (
                status,
                Json(json!({"errorCode": code, "message": message,
                            "errors": [{"errorCode": code, "message": message}]})),
            )
                .into_response(),
            RcError::Undelivered(message) => (
                StatusCode::BAD_GATEWAY,
                Json(json!({"error": {"code": "relay_unreachable", "message": message}})),
            )
                .into_response(),
        }
    }
}

pub fn routes() -> Router<Arc<Sim>> {
    let api = Router::new()
        .route("/restapi/oauth/token", post(token))
        .route("/restapi/v1.0/account/~/extension", get(extensions))
        .route("/restapi/v1.0/account/~/extension/{ext}", get(extension))
        .route(
            "/restapi/v1.0/account/~/extension/{ext}/presence",
            get(presence),
        )
        .route(
            "/restapi/v1.0/account/~/extension/{ext}/ring-out",
            post(ring_out),
        )
        .route(
            "/restapi/v1.0/subscription",
            post(create_subscription).get(list_subscriptions),
        )
        .route(
            "/restapi/v1.0/subscription/{id}",
            get(get_subscription)
                .put(update_subscription)
                .delete(delete_subscription),
        )
        .route(
            "/restapi/v1.0/subscription/{id}/renew",
            post(renew_subscription),
        )
        .route("/restapi/v1.0/account/~/telephony/call-out", post(call_out))
        .route(
            "/restapi/v1.0/account/~/telephony/sessions/{sid}",
            get(get_session).delete(delete_session),
        )
        .route(
            "/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/{pid}",
            axum::routing::delete(drop_party),
        )
        .route(
            "/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/{pid}/{action}",
            post(party_action),
        )
        .route("/calls", post(place_call).get(list_calls))
        .route("/calls/{id}/hangup", post(hangup))
        .route("/calls/{id}/answer", post(remote_answer))
        .route("/subscriptions", get(live_subscriptions))
        .route("/faults", post(faults));
    Router::new().nest("/sim/ringcentral", api)
}

fn rc(sim: &Sim) -> &RingCentral {
    &sim.ringcentral
}

/// Every API call: a bearer token the account issued and that has not expired.
fn authorize(sim: &Sim, headers: &HeaderMap) -> Result<(), RcError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| RcError::unauthorized("Authorization header is not specified"))?;
    if rc(sim).token_valid(token) {
        Ok(())
    } else {
        Err(RcError::unauthorized("Invalid token"))
    }
}

fn json_body(body: &[u8]) -> Result<Value, RcError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RcError::invalid("body", &format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(RcError::invalid("body", "must be a JSON object"));
    }
    Ok(value)
}

/// OAuth errors have their own shape (`error`, `error_description`, `errors`).
fn oauth_error(status: StatusCode, error: &str, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": message,
                    "errors": [{"errorCode": code, "message": message}]})),
    )
        .into_response()
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let rc = rc(&sim);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", rc.client_id, rc.client_secret))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "OAU-123",
            "Invalid client",
        );
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "OAU-250",
            "Unsupported content type",
        );
    }
    let form: HashMap<String, String> = match serde_urlencoded_pairs(&body) {
        Some(form) => form,
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "OAU-250",
                "Malformed form",
            );
        }
    };
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(JWT_BEARER) => {
            if form.get("assertion").map(String::as_str) != Some(rc.jwt.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "OAU-140",
                    "Invalid assertion",
                );
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "OAU-251",
                "Unsupported grant type",
            );
        }
    }
    let (access, ttl) = rc.issue_token();
    Json(
        json!({"access_token": access, "token_type": "bearer", "expires_in": ttl,
                "scope": "ReadAccounts CallControl WebhookSubscriptions RingOut ReadPresence",
                "owner_id": rc.extensions.first().map(|e| e.id.as_str()), "endpoint_id": "sim-endpoint"}),
    )
    .into_response()
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
fn serde_urlencoded_pairs(body: &[u8]) -> Option<HashMap<String, String>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut form = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        form.insert(decode(key)?, decode(value)?);
    }
    Some(form)
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn extension_json(ext: &Extension) -> Value {
    json!({
        "id": ext.id.parse::<u64>().unwrap_or_default(),
        "uri": format!("/restapi/v1.0/account/{}/extension/{}", super::ACCOUNT_ID, ext.id),
        "extensionNumber": ext.number,
        "name": ext.name,
        "type": "User",
        "status": "Enabled",
        "contact": {"firstName": ext.name, "lastName": "Example", "email": ext.email,
                    "businessPhone": ext.direct_number},
    })
}

fn find_extension<'a>(rc: &'a RingCentral, ext: &str) -> Result<&'a Extension, RcError> {
    // `~` is the token's owner; the simulator's tokens belong to the first extension (inferred:
    // for a client-credentials token RingCentral names the account's main extension).
    if ext == "~" {
        return rc
            .extensions
            .first()
            .ok_or_else(|| RcError::not_found("extensionId", ext));
    }
    rc.extension_by_id(ext)
        .ok_or_else(|| RcError::not_found("extensionId", ext))
}

async fn extensions(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    let number = |name: &str, default: usize| -> Result<usize, RcError> {
        match query.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1 && *n <= 1000)
                .ok_or_else(|| RcError::invalid(name, v)),
        }
    };
    let page = number("page", 1)?;
    let per_page = number("perPage", 100)?;
    let all = &rc(&sim).extensions;
    let records: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(extension_json)
        .collect();
    let total_pages = all.len().div_ceil(per_page).max(1);
    let start = (page - 1) * per_page;
    Ok(Json(json!({
        "uri": format!("/restapi/v1.0/account/{}/extension?page={page}&perPage={per_page}", super::ACCOUNT_ID),
        "records": records,
        "paging": {"page": page, "perPage": per_page, "totalPages": total_pages,
                   "totalElements": all.len(), "pageStart": start,
                   "pageEnd": (start + records.len()).saturating_sub(1)},
        "navigation": {},
    }))
    .into_response())
}

async fn extension(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(ext): Path<String>,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    Ok(Json(extension_json(find_extension(rc(&sim), &ext)?)).into_response())
}

async fn presence(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(ext): Path<String>,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    let rc = rc(&sim);
    let ext = find_extension(rc, &ext)?;
    Ok(Json(rc.presence(ext)).into_response())
}

/// The event filters the simulator can deliver: telephony sessions account-wide or of one
/// extension, and presence (accepted, never delivered). Anything else is refused.
fn filter_ok(rc: &RingCentral, filter: &str) -> bool {
    let path = filter.split('?').next().unwrap_or_default();
    if path == "/restapi/v1.0/account/~/telephony/sessions" {
        return true;
    }
    let Some(rest) = path.strip_prefix("/restapi/v1.0/account/~/extension/") else {
        return false;
    };
    let (ext, tail) = rest.split_once('/').unwrap_or((rest, ""));
    (ext == "~" || rc.extension_by_id(ext).is_some())
        && matches!(tail, "telephony/sessions" | "presence")
}

/// Where RingCentral may deliver: an https URL (http only to this machine, for the simulator).
fn address_ok(address: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(address) else {
        return false;
    };
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    url.host_str().is_some() && (url.scheme() == "https" || (url.scheme() == "http" && local))
}

fn subscription_json(sub: &Subscription) -> Value {
    // Whole seconds left, rounded up (a subscription made this instant has all of its life).
    let remaining = sub
        .expires_at
        .saturating_duration_since(Instant::now())
        .as_millis()
        .div_ceil(1000);
    json!({
        "id": sub.id,
        "uri": format!("/restapi/v1.0/subscription/{}", sub.id),
        "eventFilters": sub.filters,
        "creationTime": sub.creation_time,
        "expirationTime": sub.expiration_time,
        "expiresIn": remaining,
        "status": "Active",
        "deliveryMode": {"transportType": "WebHook", "address": sub.address, "encryption": false},
    })
}

/// Reads `eventFilters`, `deliveryMode` and `expiresIn` of a create or update body.
struct SubscriptionBody {
    filters: Option<Vec<String>>,
    address: Option<String>,
    verification_token: Option<String>,
    expires_in: Option<u64>,
}

fn subscription_body(rc: &RingCentral, body: &Value) -> Result<SubscriptionBody, RcError> {
    let filters = match body.get("eventFilters") {
        None => None,
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut filters = Vec::new();
            for item in items {
                let filter = item
                    .as_str()
                    .filter(|f| filter_ok(rc, f))
                    .ok_or_else(|| RcError::invalid("eventFilters", &item.to_string()))?;
                filters.push(filter.to_string());
            }
            Some(filters)
        }
        Some(other) => return Err(RcError::invalid("eventFilters", &other.to_string())),
    };
    let (address, verification_token) = match body.get("deliveryMode") {
        None => (None, None),
        Some(mode) => {
            if mode.get("transportType").and_then(Value::as_str) != Some("WebHook") {
                return Err(RcError::invalid(
                    "deliveryMode.transportType",
                    &mode["transportType"].to_string(),
                ));
            }
            let address = mode
                .get("address")
                .and_then(Value::as_str)
                .filter(|a| address_ok(a))
                .ok_or_else(|| {
                    RcError::invalid("deliveryMode.address", &mode["address"].to_string())
                })?;
            let token = match mode.get("verificationToken") {
                None => None,
                // Inferred limit: RingCentral documents a token of up to 64 characters.
                Some(Value::String(t)) if !t.is_empty() && t.len() <= 64 => Some(t.clone()),
                Some(other) => {
                    return Err(RcError::invalid(
                        "deliveryMode.verificationToken",
                        &other.to_string(),
                    ));
                }
            };
            (Some(address.to_string()), token)
        }
    };
    let expires_in = match body.get("expiresIn") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n >= 1)
                .ok_or_else(|| RcError::invalid("expiresIn", &v.to_string()))?,
        ),
    };
    Ok(SubscriptionBody {
        filters,
        address,
        verification_token,
        expires_in,
    })
}

/// The validation handshake: the address must echo `Validation-Token` within a second with a small
/// answer.
async fn validate(rc: &RingCentral, address: &str) -> Result<(), RcError> {
    let token = uuid::Uuid::new_v4().to_string();
    let sent = rc
        .http
        .post(address)
        .header("Validation-Token", &token)
        .header("user-agent", "RingCentral-Webhook/8.3")
        .header("content-type", "application/json; charset=UTF-8")
        .timeout(VALIDATION_TIMEOUT)
        .send()
        .await;
    let refused = || {
        RcError::subscription(
            "SUB-520",
            "WebHook responded with invalid status code or Validation Token is not returned",
        )
    };
    let response = sent.map_err(|_| refused())?;
    let echoed = response
        .headers()
        .get("Validation-Token")
        .and_then(|v| v.to_str().ok())
        == Some(token.as_str());
    if !response.status().is_success() || !echoed {
        return Err(refused());
    }
    let body = tokio::time::timeout(VALIDATION_TIMEOUT, response.bytes())
        .await
        .map_err(|_| refused())?
        .map_err(|_| refused())?;
    if body.len() > VALIDATION_MAX_BYTES {
        return Err(RcError::subscription(
            "SUB-525",
            "WebHook response is too large",
        ));
    }
    Ok(())
}

async fn create_subscription(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    let rc = rc(&sim);
    let body = subscription_body(rc, &json_body(&body)?)?;
    let filters = body
        .filters
        .ok_or_else(|| RcError::invalid("eventFilters", "missing"))?;
    let address = body
        .address
        .ok_or_else(|| RcError::invalid("deliveryMode", "missing"))?;
    validate(rc, &address).await?;
    let ttl = body
        .expires_in
        .unwrap_or(u64::MAX)
        .min(rc.subscription_ttl());
    let sub = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        filters,
        address,
        verification_token: body.verification_token,
        expires_in: ttl,
        expires_at: Instant::now() + Duration::from_secs(ttl),
        creation_time: now_rfc3339(),
        expiration_time: rfc3339_in(ttl),
    };
    let json = subscription_json(&sub);
    rc.lock().subscriptions.insert(sub.id.clone(), sub);
    rc.created_subscriptions.fetch_add(1, Ordering::Relaxed);
    Ok(Json(json).into_response())
}

fn live_subscription(rc: &RingCentral, id: &str) -> Result<Subscription, RcError> {
    let now = Instant::now();
    let mut state = rc.lock();
    state.subscriptions.retain(|_, s| s.live(now));
    state
        .subscriptions
        .get(id)
        .cloned()
        .ok_or_else(|| RcError::not_found("subscriptionId", id))
}

async fn list_subscriptions(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    let rc = rc(&sim);
    let records: Vec<Value> = rc
        .subscriptions()
        .iter()
        .filter_map(|id| live_subscription(rc, id).ok())
        .map(|s| subscription_json(&s))
        .collect();
    Ok(Json(json!({"records": records})).into_response())
}

async fn get_subscription(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    Ok(Json(subscription_json(&live_subscription(rc(&sim), &id)?)).into_response())
}

/// Renews (and, for PUT, updates) a live subscription.
fn renew(rc: &RingCentral, id: &str, update: Option<SubscriptionBody>) -> Result<Value, RcError> {
    live_subscription(rc, id)?;
    let mut state = rc.lock();
    let sub = state
        .subscriptions
        .get_mut(id)
        .ok_or_else(|| RcError::not_found("subscriptionId", id))?;
    let mut ttl = sub.expires_in.min(rc.subscription_ttl());
    if let Some(update) = update {
        if let Some(filters) = update.filters {
            sub.filters = filters;
        }
        if let Some(address) = update.address {
            sub.address = address;
            sub.verification_token = update.verification_token;
        }
        if let Some(expires_in) = update.expires_in {
            ttl = expires_in.min(rc.subscription_ttl());
        }
    }
    sub.expires_in = ttl;
    rc.renewed_subscriptions.fetch_add(1, Ordering::Relaxed);
    sub.expires_at = Instant::now() + Duration::from_secs(ttl);
    sub.expiration_time = rfc3339_in(ttl);
    Ok(subscription_json(sub))
}

async fn renew_subscription(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    Ok(Json(renew(rc(&sim), &id, None)?).into_response())
}

async fn update_subscription(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    let rc = rc(&sim);
    let update = subscription_body(rc, &json_body(&body)?)?;
    live_subscription(rc, &id)?;
    if let Some(address) = &update.address {
        validate(rc, address).await?;
    }
    Ok(Json(renew(rc, &id, Some(update))?).into_response())
}

async fn delete_subscription(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    let rc = rc(&sim);
    live_subscription(rc, &id)?;
    rc.lock().subscriptions.remove(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_session(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    Ok(Json(rc(&sim).session_json(&sid)?).into_response())
}

async fn delete_session(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    rc(&sim).drop_session(&sid)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn drop_party(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((sid, pid)): Path<(String, String)>,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    rc(&sim).party_action(&sid, &pid, "drop", &Value::Null)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn party_action(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((sid, pid, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    if !matches!(
        action.as_str(),
        "answer" | "hold" | "unhold" | "transfer" | "bridge" | "reject"
    ) {
        return Err(RcError::not_found("action", &action));
    }
    let body = if body.is_empty() {
        json!({})
    } else {
        json_body(&body)?
    };
    let party = rc(&sim).party_action(&sid, &pid, &action, &body)?;
    Ok(Json(party).into_response())
}

async fn call_out(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    let rc = rc(&sim);
    let body = json_body(&body)?;
    let device = body
        .pointer("/from/deviceId")
        .and_then(Value::as_str)
        .ok_or_else(|| RcError::invalid("from.deviceId", "missing"))?;
    let ext = rc
        .extensions
        .iter()
        .find(|e| e.device_id == device)
        .cloned()
        .ok_or_else(|| RcError::invalid("from.deviceId", device))?;
    let (number, extension) = target(&body)?;
    let session = rc.place_outbound(&ext, number.as_deref(), extension.as_deref(), Some(device))?;
    Ok((StatusCode::OK, Json(json!({"session": session}))).into_response())
}

/// `to` of call-out and RingOut: a phone number (E.164) or an extension number, exactly one.
fn target(body: &Value) -> Result<(Option<String>, Option<String>), RcError> {
    let number = body.pointer("/to/phoneNumber").and_then(Value::as_str);
    let extension = body.pointer("/to/extensionNumber").and_then(Value::as_str);
    match (number, extension) {
        (Some(n), None) if n.starts_with('+') && n.len() > 4 && n.len() <= 20 => {
            Ok((Some(n.to_string()), None))
        }
        (None, Some(e)) => Ok((None, Some(e.to_string()))),
        _ => Err(RcError::invalid("to", &body["to"].to_string())),
    }
}

async fn ring_out(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(ext): Path<String>,
    body: Bytes,
) -> Result<Response, RcError> {
    authorize(&sim, &headers)?;
    let rc = rc(&sim);
    let ext = find_extension(rc, &ext)?.clone();
    let body = json_body(&body)?;
    // RingOut first calls the rep at `from` (their own phone), then connects `to`.
    body.pointer("/from/phoneNumber")
        .and_then(Value::as_str)
        .filter(|n| n.starts_with('+'))
        .ok_or_else(|| RcError::invalid("from.phoneNumber", &body["from"].to_string()))?;
    let (number, extension) = target(&body)?;
    if extension.is_some() {
        return Err(RcError::invalid("to.phoneNumber", "missing"));
    }
    rc.place_outbound(&ext, number.as_deref(), None, None)?;
    let id = format!("{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000);
    Ok(Json(json!({
        "id": id,
        "uri": format!("/restapi/v1.0/account/{}/extension/{}/ring-out/{id}", super::ACCOUNT_ID, ext.id),
        "status": {"callStatus": "InProgress", "callerStatus": "InProgress", "calleeStatus": "InProgress"},
    }))
    .into_response())
}

// --- the simulator's controls ---

async fn place_call(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, RcError> {
    let body = json_body(&body)?;
    let from = body
        .get("from")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|f| !f.is_empty() && f.len() <= 64)
        .ok_or_else(|| RcError::sim("`from` is required".into()))?;
    let agent = body
        .get("agent")
        .and_then(Value::as_str)
        .unwrap_or(&sim.config.demo_agent);
    let call_id = rc(&sim).place_call(from, agent).await?;
    Ok((StatusCode::CREATED, Json(json!({"call_id": call_id}))).into_response())
}

async fn list_calls(State(sim): State<Arc<Sim>>) -> Response {
    Json(rc(&sim).calls()).into_response()
}

async fn hangup(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Result<Response, RcError> {
    rc(&sim).caller_hangup(&id).await?;
    Ok(Json(json!({"call_id": id, "state": "ended"})).into_response())
}

async fn remote_answer(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
) -> Result<Response, RcError> {
    rc(&sim).remote_answer(&id).await?;
    Ok(Json(json!({"answered": true})).into_response())
}

async fn live_subscriptions(State(sim): State<Arc<Sim>>) -> Response {
    let rc = rc(&sim);
    Json(json!({"live": rc.subscriptions(),
                "created": rc.created_subscriptions.load(Ordering::Relaxed),
                "renewed": rc.renewed_subscriptions.load(Ordering::Relaxed)}))
    .into_response()
}

async fn faults(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, RcError> {
    let body = json_body(&body)?;
    let rc = rc(&sim);
    let mut done = json!({});
    for (key, value) in body.as_object().into_iter().flatten() {
        let on = value
            .as_bool()
            .ok_or_else(|| RcError::sim(format!("`{key}` must be true or false")))?;
        match key.as_str() {
            "delete_subscriptions" if on => {
                done["deleted"] = rc.delete_subscriptions().into();
            }
            "delete_subscriptions" => {}
            "duplicate" => rc.duplicate.store(on, Ordering::Relaxed),
            "reorder" => rc.reorder.store(on, Ordering::Relaxed),
            other => return Err(RcError::sim(format!("unknown fault `{other}`"))),
        }
    }
    Ok(Json(done).into_response())
}
