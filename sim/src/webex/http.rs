//! The org's HTTP face under `/sim/webex`: Webex's REST API as the relay calls it (every call
//! needs a valid bearer token; errors in Webex's shape `{"message","errors":[{"description"}],
//! "trackingId"}`) and the simulator's controls.
//!
//! Acting for a user: the reference gives the call-control requests with the user's own token.
//! The relay holds one admin integration per org, so here the user is named by `personId` in the
//! query string (inferred, after the way Webex's admin APIs name a user; a request without it
//! acts for the token's own user, the admin, who has no calls here).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Webex, Webhook, demo_admin_id, now_rfc3339, org_id, spark_id};
use crate::Sim;

/// A refusal in Webex's error shape.
#[derive(Debug, thiserror::Error)]
pub enum WebexError {
    #[error("{status}: {message}")]
    Api { status: StatusCode, message: String },
    /// A simulator control that could not reach the relay.
    #[error("the relay did not take the event: {0}")]
    Undelivered(String),
}

impl WebexError {
    pub(crate) fn unauthorized() -> Self {
        WebexError::Api {
            status: StatusCode::UNAUTHORIZED,
            message: "The request requires a valid access token set in the Authorization \
                      request header."
                .into(),
        }
    }

    pub(crate) fn not_found(what: &str) -> Self {
        WebexError::Api {
            status: StatusCode::NOT_FOUND,
            message: format!("The requested resource could not be found: {what}"),
        }
    }

    pub(crate) fn bad_request(message: &str) -> Self {
        WebexError::Api {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub(crate) fn sim(message: String) -> Self {
        WebexError::Api {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

fn tracking_id() -> String {
    format!("ROUTER_{}", uuid::Uuid::new_v4().simple())
}

impl IntoResponse for WebexError {
    fn into_response(self) -> Response {
        match self {
            WebexError::Api { status, message } => (
                status,
                Json(
                    json!({"message": message, "errors": [{"description": message}],
                            "trackingId": tracking_id()}),
                ),
            )
                .into_response(),
            WebexError::Undelivered(message) => (
                StatusCode::BAD_GATEWAY,
                Json(json!({"error": {"code": "relay_unreachable", "message": message}})),
            )
                .into_response(),
        }
    }
}

pub fn routes() -> Router<Arc<Sim>> {
    let api = Router::new()
        .route("/v1/access_token", post(token))
        .route("/v1/people", get(people))
        .route("/v1/webhooks", post(create_webhook).get(list_webhooks))
        .route("/v1/webhooks/{id}", get(get_webhook).delete(delete_webhook))
        .route("/v1/telephony/calls", get(list_calls))
        .route("/v1/telephony/calls/{action}", post(call_action))
        .route("/calls", post(place_call).get(sim_calls))
        .route("/calls/{id}/hangup", post(hangup))
        .route("/calls/{id}/answer", post(remote_answer))
        .route("/calls/{id}/transfer", post(phone_transfer))
        .route("/calls/{id}/consult", post(phone_consult))
        .route("/webhooks", get(sim_webhooks))
        .route("/faults", post(faults));
    Router::new().nest("/sim/webex", api)
}

fn wx(sim: &Sim) -> &Webex {
    &sim.webex
}

/// Every API call: a bearer token the org issued and that has not expired.
fn authorize(sim: &Sim, headers: &HeaderMap) -> Result<(), WebexError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(WebexError::unauthorized)?;
    if wx(sim).token_valid(token) {
        Ok(())
    } else {
        Err(WebexError::unauthorized())
    }
}

fn json_body(body: &[u8]) -> Result<Value, WebexError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WebexError::bad_request(&format!("The request body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(WebexError::bad_request(
            "The request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// `POST /v1/access_token`, form-encoded: the refresh-token grant (the authorization-code grant
/// happens once in the admin's browser, outside the relay).
async fn token(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let wx = wx(&sim);
    let text = String::from_utf8_lossy(&body);
    let form: HashMap<String, String> = reqwest::Url::parse(&format!("http://form/?{text}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "refresh_token" {
        return WebexError::bad_request("unsupported grant_type").into_response();
    }
    if field("client_id") != wx.client_id || field("client_secret") != wx.client_secret {
        return WebexError::Api {
            status: StatusCode::UNAUTHORIZED,
            message: "Invalid client_id or client_secret".into(),
        }
        .into_response();
    }
    if field("refresh_token") != wx.refresh_token {
        return WebexError::bad_request("Invalid refresh token").into_response();
    }
    let (access, ttl) = wx.issue_token();
    Json(json!({"access_token": access, "expires_in": ttl,
                "refresh_token": wx.refresh_token, "refresh_token_expires_in": 7_776_000,
                "token_type": "Bearer"}))
    .into_response()
}

/// `GET /v1/people` (`email`, `id`, `callingData`): the org's users; an admin's token lists
/// them all.
async fn people(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebexError> {
    authorize(&sim, &headers)?;
    let calling = query.get("callingData").is_some_and(|v| v == "true");
    let items: Vec<Value> = wx(&sim)
        .people
        .iter()
        .filter(|p| {
            query
                .get("email")
                .is_none_or(|e| p.email.eq_ignore_ascii_case(e))
                && query.get("id").is_none_or(|id| p.id == *id)
        })
        .map(|p| {
            let mut person = json!({"id": p.id, "emails": [p.email], "displayName": p.display_name,
                                    "orgId": org_id(), "type": "person"});
            if calling {
                person["phoneNumbers"] = json!([{"type": "work", "value": p.number}]);
                person["extension"] = p.extension.clone().into();
            }
            person
        })
        .collect();
    Ok(Json(json!({"notFoundIds": null, "items": items})).into_response())
}

async fn create_webhook(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebexError> {
    authorize(&sim, &headers)?;
    let body = json_body(&body)?;
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let name = text("name").ok_or_else(|| WebexError::bad_request("name is required"))?;
    let target_url =
        text("targetUrl").ok_or_else(|| WebexError::bad_request("targetUrl is required"))?;
    if reqwest::Url::parse(&target_url).is_err() {
        return Err(WebexError::bad_request("targetUrl is not a URL"));
    }
    let resource =
        text("resource").ok_or_else(|| WebexError::bad_request("resource is required"))?;
    let event = text("event").ok_or_else(|| WebexError::bad_request("event is required"))?;
    if resource != "telephony_calls" {
        return Err(WebexError::bad_request(&format!(
            "resource {resource:?} is not simulated"
        )));
    }
    if !matches!(event.as_str(), "all" | "created" | "updated" | "deleted") {
        return Err(WebexError::bad_request("event is invalid"));
    }
    let webhook = Webhook {
        id: spark_id("WEBHOOK", &uuid::Uuid::new_v4().to_string()),
        name,
        target_url,
        resource,
        event,
        secret: text("secret"),
        owned_by: text("ownedBy").unwrap_or_else(|| "creator".into()),
        created: now_rfc3339(),
    };
    if webhook.owned_by != "org" && webhook.owned_by != "creator" {
        return Err(WebexError::bad_request("ownedBy is invalid"));
    }
    let answer = webhook.json();
    wx(&sim).lock().webhooks.push(webhook);
    wx(&sim).created_webhooks.fetch_add(1, Ordering::Relaxed);
    Ok((StatusCode::OK, Json(answer)).into_response())
}

async fn list_webhooks(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
) -> Result<Response, WebexError> {
    authorize(&sim, &headers)?;
    let items: Vec<Value> = wx(&sim).lock().webhooks.iter().map(Webhook::json).collect();
    Ok(Json(json!({"items": items})).into_response())
}

async fn get_webhook(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebexError> {
    authorize(&sim, &headers)?;
    let found = wx(&sim)
        .lock()
        .webhooks
        .iter()
        .find(|w| w.id == id)
        .map(Webhook::json);
    found
        .map(|w| Json(w).into_response())
        .ok_or_else(|| WebexError::not_found("webhook"))
}

async fn delete_webhook(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebexError> {
    authorize(&sim, &headers)?;
    let mut state = wx(&sim).lock();
    let before = state.webhooks.len();
    state.webhooks.retain(|w| w.id != id);
    if state.webhooks.len() == before {
        return Err(WebexError::not_found("webhook"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The user the request acts for: `personId`, else the token's own user (the admin).
fn person(query: &HashMap<String, String>) -> String {
    query.get("personId").cloned().unwrap_or_else(demo_admin_id)
}

/// `GET /v1/telephony/calls`: the user's calls under way.
async fn list_calls(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebexError> {
    authorize(&sim, &headers)?;
    let person = person(&query);
    let items: Vec<Value> = wx(&sim)
        .live_legs_of(&person)
        .iter()
        .map(Webex::call_json)
        .collect();
    Ok(Json(json!({"items": items})).into_response())
}

/// `POST /v1/telephony/calls/{dial,answer,hold,resume,hangup,transfer}`.
async fn call_action(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(action): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, WebexError> {
    authorize(&sim, &headers)?;
    let body = json_body(&body)?;
    let person = person(&query);
    let wx = wx(&sim);
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    match action.as_str() {
        "dial" => {
            let destination = text("destination")
                .ok_or_else(|| WebexError::bad_request("destination is required"))?;
            let leg = wx.dial(&person, destination)?;
            Ok((
                StatusCode::CREATED,
                Json(json!({"callId": leg.call_id, "callSessionId": leg.session})),
            )
                .into_response())
        }
        "answer" | "hold" | "resume" | "hangup" => {
            let call =
                text("callId").ok_or_else(|| WebexError::bad_request("callId is required"))?;
            wx.act(&person, &action, call)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "transfer" => {
            let call1 =
                text("callId1").ok_or_else(|| WebexError::bad_request("callId1 is required"))?;
            let call2 = text("callId2");
            let destination = text("destination");
            wx.transfer(&person, call1, call2, destination)?;
            // Reference 4.4: the blind ("mute") transfer answers 201; the attended one, inferred,
            // 204 like the other actions.
            Ok(if destination.is_some() {
                StatusCode::CREATED.into_response()
            } else {
                StatusCode::NO_CONTENT.into_response()
            })
        }
        _ => Err(WebexError::not_found(&action)),
    }
}

async fn place_call(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, WebexError> {
    let body = json_body(&body)?;
    let from = body
        .get("from")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|f| !f.is_empty() && f.len() <= 64)
        .ok_or_else(|| WebexError::sim("`from` is required".into()))?;
    let agent = body
        .get("agent")
        .and_then(Value::as_str)
        .unwrap_or(&sim.config.demo_agent);
    // `also`: more users rung at once (a hunt group), for `completedElsewhere`.
    let mut agents = vec![agent];
    agents.extend(
        body.get("also")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    );
    let call_id = wx(&sim).place_group_call(from, &agents).await?;
    Ok((StatusCode::CREATED, Json(json!({"call_id": call_id}))).into_response())
}

async fn sim_calls(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!(wx(&sim).legs())).into_response()
}

async fn hangup(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
) -> Result<Response, WebexError> {
    wx(&sim).caller_hangup(&id).await?;
    Ok(Json(json!({"call_id": id, "state": "ended"})).into_response())
}

async fn remote_answer(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
) -> Result<Response, WebexError> {
    wx(&sim).remote_answer(&id).await?;
    Ok(Json(json!({"answered": true})).into_response())
}

/// The rep's phone transfers the call: `{"agent", "destination"?, "reordered"?}` (without a
/// destination, to the consultation placed on the phone).
async fn phone_transfer(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebexError> {
    let body = json_body(&body)?;
    let agent = required(&body, "agent")?;
    let destination = match body.get("destination") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.as_str()),
        Some(_) => return Err(WebexError::sim("`destination` must be a string".into())),
    };
    wx(&sim).phone_transfer(&id, agent, destination, reordered(&body)?)?;
    Ok(Json(json!({"transferred": true})).into_response())
}

/// The rep's phone consults: `{"agent", "destination", "reordered"?}`; answers the
/// consultation's callSessionId.
async fn phone_consult(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebexError> {
    let body = json_body(&body)?;
    let leg = wx(&sim).phone_consult(
        &id,
        required(&body, "agent")?,
        required(&body, "destination")?,
        reordered(&body)?,
    )?;
    Ok(Json(json!({"consulting": true, "call_id": leg.session})).into_response())
}

/// A simulator control's `reordered` flag (the events of what the phone did delivered the other
/// way round).
fn reordered(body: &Value) -> Result<bool, WebexError> {
    match body.get("reordered") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(on)) => Ok(*on),
        Some(_) => Err(WebexError::sim("`reordered` must be true or false".into())),
    }
}

/// A simulator control's string field.
fn required<'a>(body: &'a Value, key: &str) -> Result<&'a str, WebexError> {
    body.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| WebexError::sim(format!("`{key}` is required")))
}

async fn sim_webhooks(State(sim): State<Arc<Sim>>) -> Response {
    let wx = wx(&sim);
    Json(json!({"live": wx.webhooks(),
                "created": wx.created_webhooks.load(Ordering::Relaxed)}))
    .into_response()
}

async fn faults(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, WebexError> {
    let body = json_body(&body)?;
    let wx = wx(&sim);
    let mut done = json!({});
    for (key, value) in body.as_object().into_iter().flatten() {
        let on = value
            .as_bool()
            .ok_or_else(|| WebexError::sim(format!("`{key}` must be true or false")))?;
        match key.as_str() {
            "delete_webhooks" if on => done["deleted"] = wx.delete_webhooks().into(),
            "delete_webhooks" => {}
            "revoke_tokens" if on => {
                let mut state = wx.lock();
                done["revoked"] = state.tokens.len().into();
                state.tokens.clear();
            }
            "revoke_tokens" => {}
            "duplicate" => wx.duplicate.store(on, Ordering::Relaxed),
            "reorder" => wx.reorder.store(on, Ordering::Relaxed),
            other => return Err(WebexError::sim(format!("unknown fault `{other}`"))),
        }
    }
    Ok(Json(done).into_response())
}
