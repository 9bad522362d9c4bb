//! The org's HTTP face: the login host's token endpoint, the Platform API's routes the relay uses,
//! and the simulator's own controls.
//!
//! Platform API errors are [`GcError`]s; the login host answers OAuth's
//! `{"error","error_description"}`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::calls::{
    ConsultTransfer, ConsultTransferUpdate, CreateCallRequest, MediaParticipantRequest,
    TransferRequest,
};
use super::error::GcError;
use super::{Channel, MAX_TOPICS, Out, known_topic, mask};
use crate::Sim;

type Sh = State<Arc<Sim>>;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/genesys/login/oauth/token", post(token))
        .route("/sim/genesys/api/v2/users", get(users))
        .route("/sim/genesys/api/v2/users/{id}", get(user))
        .route(
            "/sim/genesys/api/v2/notifications/channels",
            post(create_channel).get(list_channels),
        )
        .route(
            "/sim/genesys/api/v2/notifications/channels/{id}/subscriptions",
            get(get_subscriptions)
                .put(put_subscriptions)
                .post(post_subscriptions),
        )
        .route("/sim/genesys/channels/{name}", get(super::socket::upgrade))
        .route("/sim/genesys/api/v2/conversations/calls", post(create_call))
        .route(
            "/sim/genesys/api/v2/conversations/calls/{cid}",
            get(get_call),
        )
        .route(
            "/sim/genesys/api/v2/conversations/calls/{cid}/participants/{pid}",
            axum::routing::patch(patch_participant),
        )
        .route(
            "/sim/genesys/api/v2/conversations/calls/{cid}/participants/{pid}/replace",
            post(replace),
        )
        .route(
            "/sim/genesys/api/v2/conversations/calls/{cid}/participants/{pid}/consult",
            post(consult).patch(consult_patch).delete(consult_cancel),
        )
        .route(
            "/sim/genesys/api/v2/analytics/conversations/details/query",
            post(details_query),
        )
        .route("/sim/genesys/calls", post(sim_ring).get(sim_calls))
        .route("/sim/genesys/calls/{cid}/hangup", post(sim_hangup))
        .route("/sim/genesys/calls/{cid}/answer", post(sim_answer))
        .route("/sim/genesys/faults", post(sim_faults))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "description": description, "error_description": description})),
    )
        .into_response()
}

/// `POST /oauth/token` on the login host: client credentials only, the client authenticated with
/// Basic, the grant in a form body.
async fn token(State(sim): Sh, headers: HeaderMap, body: Bytes) -> Response {
    let gc = &sim.genesys;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let client = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let authenticated = client
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .is_some_and(|(id, secret)| id == gc.client_id && secret == gc.client_secret);
    if !authenticated {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let form: Vec<(String, String)> = url_decode_form(&body);
    let grant = form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str());
    match grant {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "this client has the client credentials grant only",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            );
        }
    }
    let access_token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut state = gc.lock();
    let ttl = state.knobs.token_ttl;
    state
        .tokens
        .insert(access_token.clone(), Instant::now() + ttl);
    state.tokens_issued += 1;
    Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": ttl.as_secs(),
    }))
    .into_response()
}

/// `application/x-www-form-urlencoded` pairs.
fn url_decode_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The bearer token of a request, if it is valid.
fn bearer(sim: &Sim, headers: &HeaderMap) -> Result<String, GcError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(GcError::NoToken)?;
    let mut state = sim.genesys.lock();
    state.sweep();
    if state.token_valid(token) {
        Ok(token.to_string())
    } else {
        Err(GcError::BadToken)
    }
}

fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, GcError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        // Genesys answers 415 here; a 400 with the reason is as strict for the relay (inferred).
        return Err(GcError::BadRequest(format!(
            "Content-Type must be application/json, got {content_type:?}"
        )));
    }
    serde_json::from_slice(body).map_err(|e| GcError::BadRequest(format!("invalid body: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Paging {
    page_size: Option<String>,
    page_number: Option<String>,
}

fn user_json(u: &super::User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "username": u.email,
        "state": "active",
        "selfUri": format!("/api/v2/users/{}", u.id),
    })
}

/// `GET /api/v2/users?pageSize&pageNumber` (page size 1..=500, default 25).
async fn users(State(sim): Sh, headers: HeaderMap, Query(paging): Query<Paging>) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    let parse = |v: &Option<String>, default: usize, name: &str| -> Result<usize, GcError> {
        match v {
            None => Ok(default),
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| GcError::BadRequest(format!("{name} must be a number"))),
        }
    };
    let (size, number) = match (
        parse(&paging.page_size, 25, "pageSize"),
        parse(&paging.page_number, 1, "pageNumber"),
    ) {
        (Ok(s), Ok(n)) => (s, n),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    if !(1..=500).contains(&size) || number < 1 {
        return GcError::BadRequest("pageSize must be 1..500 and pageNumber at least 1".into())
            .into_response();
    }
    let users = sim.genesys.users();
    let total = users.len();
    let entities: Vec<Value> = users
        .iter()
        .skip((number - 1) * size)
        .take(size)
        .map(user_json)
        .collect();
    let page_count = total.div_ceil(size);
    let mut body = json!({
        "entities": entities,
        "pageSize": size,
        "pageNumber": number,
        "total": total,
        "pageCount": page_count,
        "selfUri": format!("/api/v2/users?pageSize={size}&pageNumber={number}"),
    });
    if number < page_count {
        body["nextUri"] = json!(format!(
            "/api/v2/users?pageSize={size}&pageNumber={}",
            number + 1
        ));
    }
    Json(body).into_response()
}

async fn user(State(sim): Sh, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    match sim.genesys.users().iter().find(|u| u.id == id) {
        Some(u) => Json(user_json(u)).into_response(),
        None => GcError::NotFound(format!("user {id} not found")).into_response(),
    }
}

fn channel_json(sim: &Sim, headers: &HeaderMap, channel: &Channel) -> Value {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let remaining = channel.expires.saturating_duration_since(Instant::now());
    let expires = time::OffsetDateTime::now_utc()
        + time::Duration::try_from(remaining).unwrap_or(time::Duration::ZERO);
    let _ = sim;
    json!({
        "connectUri": format!("ws://{host}/sim/genesys/channels/streaming-0-{}", channel.id),
        "id": channel.id,
        "expires": expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    })
}

/// `POST /api/v2/notifications/channels`.
async fn create_channel(State(sim): Sh, headers: HeaderMap) -> Response {
    let token = match bearer(&sim, &headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut state = sim.genesys.lock();
    let channel = Channel {
        id: uuid::Uuid::new_v4().simple().to_string(),
        expires: Instant::now() + state.knobs.channel_ttl,
        topics: BTreeSet::new(),
        token,
        socket: None,
    };
    let body = channel_json(&sim, &headers, &channel);
    state.channels.insert(channel.id.clone(), channel);
    Json(body).into_response()
}

/// `GET /api/v2/notifications/channels`: the live channels.
async fn list_channels(State(sim): Sh, headers: HeaderMap) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    let state = sim.genesys.lock();
    let entities: Vec<Value> = state
        .channels
        .values()
        .map(|c| channel_json(&sim, &headers, c))
        .collect();
    Json(json!({"entities": entities})).into_response()
}

fn topics_json(channel: &Channel) -> Value {
    let entities: Vec<Value> = channel.topics.iter().map(|t| json!({"id": t})).collect();
    json!({"entities": entities})
}

async fn get_subscriptions(State(sim): Sh, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    let mut state = sim.genesys.lock();
    state.sweep();
    match state.channels.get(&id) {
        Some(channel) => Json(topics_json(channel)).into_response(),
        None => GcError::NotFound(format!("channel {id} not found")).into_response(),
    }
}

async fn put_subscriptions(
    State(sim): Sh,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    subscribe(&sim, &headers, &id, &body, true)
}

async fn post_subscriptions(
    State(sim): Sh,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    subscribe(&sim, &headers, &id, &body, false)
}

#[derive(Debug, Deserialize)]
struct TopicRef {
    id: String,
}

/// PUT (replace) or POST (add) a channel's topics; re-binds the channel to this token and extends
/// its life (see the module's notes).
fn subscribe(sim: &Sim, headers: &HeaderMap, id: &str, body: &[u8], replace: bool) -> Response {
    let token = match bearer(sim, headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let topics: Vec<TopicRef> = match json_body(headers, body) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut state = sim.genesys.lock();
    state.sweep();
    let users = state.users.clone();
    if let Some(bad) = topics.iter().find(|t| !known_topic(&users, &t.id)) {
        return GcError::BadRequest(format!("topic {:?} is not valid", bad.id)).into_response();
    }
    let ttl = state.knobs.channel_ttl;
    let Some(channel) = state.channels.get_mut(id) else {
        return GcError::NotFound(format!("channel {id} not found")).into_response();
    };
    let mut next = if replace {
        BTreeSet::new()
    } else {
        channel.topics.clone()
    };
    next.extend(topics.into_iter().map(|t| t.id));
    if next.len() > MAX_TOPICS {
        return GcError::BadRequest(format!(
            "a channel takes at most {MAX_TOPICS} topics, this would make {}",
            next.len()
        ))
        .into_response();
    }
    channel.topics = next;
    channel.token = token;
    channel.expires = Instant::now() + ttl;
    Json(topics_json(channel)).into_response()
}

async fn get_call(State(sim): Sh, headers: HeaderMap, Path(cid): Path<String>) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    match sim.genesys.conversation(&cid) {
        Some(body) => Json(body).into_response(),
        None => GcError::NotFound(format!("conversation {cid} not found")).into_response(),
    }
}

/// `POST /api/v2/conversations/calls`. The real API places the call from the token's user; a
/// client-credentials token has none, so the simulator takes the calling user from the first
/// `participants` entry with a `userId` (a `Destination` field of `CreateCallRequest`) and dials
/// `phoneNumber` from their line (inferred; a tenant whose org refuses this needs a user token).
async fn create_call(State(sim): Sh, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    let request: CreateCallRequest = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(number) = request
        .phone_number
        .as_deref()
        .filter(|n| !n.trim().is_empty())
    else {
        return GcError::BadRequest("phoneNumber is required".into()).into_response();
    };
    let digits = number.trim_start_matches("tel:").trim_start_matches('+');
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return GcError::BadRequest(format!("phoneNumber {number:?} is not a phone number"))
            .into_response();
    }
    let Some(user_id) = request
        .participants
        .iter()
        .flatten()
        .find_map(|p| p.user_id.clone())
    else {
        return GcError::BadRequest(
            "the token has no user: name the calling user in participants[].userId".into(),
        )
        .into_response();
    };
    let gc = &sim.genesys;
    let Some(user) = gc.users().into_iter().find(|u| u.id == user_id) else {
        return GcError::BadRequest(format!("userId {user_id:?} is not a user")).into_response();
    };
    let number = number.trim_start_matches("tel:").to_string();
    let result = gc.lock().create_call(&user, &number, &gc.did);
    match result {
        Ok(id) => {
            tracing::info!(conversation = %id, to = %mask(&number), "genesys: outbound call");
            Json(json!({"id": id, "selfUri": format!("/api/v2/conversations/calls/{id}")}))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn patch_participant(
    State(sim): Sh,
    headers: HeaderMap,
    Path((cid, pid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    let request: MediaParticipantRequest = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let _ = (&request.wrapup, request.confined, request.wrapup_skipped);
    match sim.genesys.lock().patch_participant(&cid, &pid, &request) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn replace(
    State(sim): Sh,
    headers: HeaderMap,
    Path((cid, pid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    let request: TransferRequest = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let _ = (&request.queue_id, request.voicemail);
    match sim.genesys.lock().replace(&cid, &pid, &request) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn consult(
    State(sim): Sh,
    headers: HeaderMap,
    Path((cid, pid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    let request: ConsultTransfer = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let _ = (&request.destination.name, &request.destination.queue_id);
    match sim.genesys.lock().consult(&cid, &pid, &request) {
        Ok(()) => Json(json!({"destinationParticipantId": null})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn consult_patch(
    State(sim): Sh,
    headers: HeaderMap,
    Path((cid, pid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    let request: ConsultTransferUpdate = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match sim.genesys.lock().consult_speak_to(&cid, &pid, &request) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn consult_cancel(
    State(sim): Sh,
    headers: HeaderMap,
    Path((cid, pid)): Path<(String, String)>,
) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    match sim.genesys.lock().consult_cancel(&cid, &pid) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /api/v2/analytics/conversations/details/query`, as much as a catch-up needs: an
/// `interval` (required), `conversationFilters` whose predicate `conversationEnd` `notExists`
/// keeps only conversations under way, and `segmentFilters` with `userId` `matches` predicates
/// keeping conversations one of those users took part in. Answers `conversations[]` with
/// `conversationId`, `conversationStart` and `participants[]` (`participantId`, `purpose`,
/// `userId`). The reference names no catch-up; this documented query is our choice (inferred).
async fn details_query(State(sim): Sh, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = bearer(&sim, &headers) {
        return e.into_response();
    }
    let query: Value = match json_body(&headers, &body) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    if !query["interval"].as_str().is_some_and(|i| i.contains('/')) {
        return GcError::BadRequest("interval is required (start/end, ISO-8601)".into())
            .into_response();
    }
    let predicates = |key: &str| -> Vec<Value> {
        query[key]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|f| f["predicates"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let open_only = predicates("conversationFilters")
        .iter()
        .any(|p| p["dimension"] == "conversationEnd" && p["operator"] == "notExists");
    let users: Vec<String> = predicates("segmentFilters")
        .iter()
        .filter(|p| p["dimension"] == "userId")
        .filter_map(|p| p["value"].as_str().map(str::to_string))
        .collect();
    let state = sim.genesys.lock();
    let mut list: Vec<&super::Conversation> = state
        .conversations
        .values()
        .filter(|c| !open_only || !c.ended())
        .filter(|c| {
            users.is_empty()
                || c.participants
                    .iter()
                    .any(|p| p.user.as_ref().is_some_and(|u| users.contains(&u.id)))
        })
        .collect();
    list.sort_by_key(|c| c.created);
    let conversations: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({
                "conversationId": c.id,
                "conversationStart": c.participants.first().map(|p| p.start_time.clone()),
                "participants": c.participants.iter().map(|p| json!({
                    "participantId": p.id,
                    "purpose": p.purpose,
                    "userId": p.user.as_ref().map(|u| u.id.clone()),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({"conversations": conversations, "totalHits": list.len()})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RingRequest {
    from: String,
    agent: Option<String>,
}

/// Simulator control: a customer calls `agent` (an e-mail or user id; the demo rep by default).
async fn sim_ring(State(sim): Sh, body: Bytes) -> Response {
    let request: RingRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return GcError::BadRequest(format!("invalid body: {e}")).into_response(),
    };
    if request.from.trim().is_empty() || request.from.len() > 64 {
        return GcError::BadRequest("from must be a phone number".into()).into_response();
    }
    let gc = &sim.genesys;
    let agent = request.agent.unwrap_or_else(|| gc.default_agent.clone());
    let result = gc.ring(&request.from, &agent);
    match result {
        Ok(id) => {
            tracing::info!(conversation = %id, from = %mask(&request.from), "genesys: ringing");
            (StatusCode::CREATED, Json(json!({"call_id": id}))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn sim_calls(State(sim): Sh) -> Response {
    Json(sim.genesys.calls()).into_response()
}

async fn sim_hangup(State(sim): Sh, Path(cid): Path<String>) -> Response {
    match sim.genesys.lock().customer_hangup(&cid) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn sim_answer(State(sim): Sh, Path(cid): Path<String>) -> Response {
    match sim.genesys.lock().far_end_answer(&cid) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    /// Closes every socket now (the channels stay).
    close_sockets: Option<bool>,
    /// Sends `v2.system.socket_closing` on every socket, then closes it after the grace.
    socket_closing: Option<bool>,
    /// Every channel expires now: sockets closed, channels gone.
    expire_channels: Option<bool>,
    /// Every token issued so far expires now (and the channels that live with them).
    expire_tokens: Option<bool>,
    duplicate: Option<bool>,
    reorder: Option<bool>,
    /// Sockets stop sending heartbeats and answering pings.
    mute: Option<bool>,
    token_ttl_secs: Option<u64>,
    heartbeat_ms: Option<u64>,
    channel_ttl_secs: Option<u64>,
}

/// Simulator control: faults and lifetimes.
async fn sim_faults(State(sim): Sh, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return GcError::BadRequest(format!("invalid body: {e}")).into_response(),
    };
    let mut state = sim.genesys.lock();
    if let Some(on) = faults.duplicate {
        state.knobs.duplicate = on;
    }
    if let Some(on) = faults.reorder {
        state.knobs.reorder = on;
    }
    if let Some(on) = faults.mute {
        state.knobs.mute = on;
    }
    if let Some(secs) = faults.token_ttl_secs {
        state.knobs.token_ttl = std::time::Duration::from_secs(secs);
    }
    if let Some(ms) = faults.heartbeat_ms {
        state.knobs.heartbeat = std::time::Duration::from_millis(ms.max(1));
    }
    if let Some(secs) = faults.channel_ttl_secs {
        state.knobs.channel_ttl = std::time::Duration::from_secs(secs);
    }
    let mut affected = 0;
    if faults.close_sockets == Some(true) {
        for channel in state.channels.values_mut() {
            if let Some((_, tx)) = channel.socket.take() {
                affected += usize::from(tx.send(Out::Close).is_ok());
            }
        }
    }
    if faults.socket_closing == Some(true) {
        for channel in state.channels.values() {
            if let Some((_, tx)) = &channel.socket {
                affected += usize::from(tx.send(Out::Closing).is_ok());
            }
        }
    }
    if faults.expire_tokens == Some(true) {
        let now = Instant::now();
        for expires in state.tokens.values_mut() {
            *expires = now;
        }
        affected += state.tokens.len();
        state.sweep();
    }
    if faults.expire_channels == Some(true) {
        let now = Instant::now();
        for channel in state.channels.values_mut() {
            channel.expires = now;
        }
        affected += state.channels.len();
        state.sweep();
    }
    Json(json!({"ok": true, "affected": affected})).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::SimConfig;

    async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
        let response = app.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn app() -> (Router, Arc<Sim>) {
        let sim = Sim::new(SimConfig::default());
        (crate::router(sim.clone()), sim)
    }

    fn token_request(basic: &str, form: &str) -> Request<Body> {
        Request::post("/sim/genesys/login/oauth/token")
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_string()))
            .expect("request")
    }

    async fn token(app: &Router) -> String {
        let basic = base64::engine::general_purpose::STANDARD
            .encode("cti-relay-genesys:demo-genesys-secret");
        let (status, body) =
            call(app, token_request(&basic, "grant_type=client_credentials")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "bearer");
        body["access_token"].as_str().expect("token").to_string()
    }

    fn authed(method: &str, uri: &str, token: &str, body: Option<Value>) -> Request<Body> {
        let builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"));
        match body {
            Some(b) => builder
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => builder.body(Body::empty()),
        }
        .expect("request")
    }

    #[tokio::test]
    async fn the_token_endpoint_takes_only_the_client_with_client_credentials() {
        let (app, _) = app();
        let wrong = base64::engine::general_purpose::STANDARD.encode("cti-relay-genesys:nope");
        let (status, body) =
            call(&app, token_request(&wrong, "grant_type=client_credentials")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_client");
        let right = base64::engine::general_purpose::STANDARD
            .encode("cti-relay-genesys:demo-genesys-secret");
        let (status, body) = call(&app, token_request(&right, "grant_type=password")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "unsupported_grant_type");
        let _ = token(&app).await;
    }

    #[tokio::test]
    async fn the_api_wants_a_valid_bearer() {
        let (app, _) = app();
        let (status, body) = call(
            &app,
            Request::get("/sim/genesys/api/v2/users")
                .body(Body::empty())
                .expect("r"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "authentication.required");
        assert_eq!(body["status"], 401);
        let (status, body) = call(
            &app,
            authed("GET", "/sim/genesys/api/v2/users", "forged", None),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "bad.credentials");
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_and_takes_its_channel_with_it() {
        let (app, sim) = app();
        sim.genesys.lock().knobs.token_ttl = std::time::Duration::from_secs(60);
        let token = token(&app).await;
        let (status, channel) = call(
            &app,
            authed(
                "POST",
                "/sim/genesys/api/v2/notifications/channels",
                &token,
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let id = channel["id"].as_str().expect("id").to_string();
        assert!(
            channel["connectUri"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/sim/genesys/channels/streaming-0-{id}")))
        );
        // The token's life runs out (the tokio clock is not paused in this crate's tests).
        for expires in sim.genesys.lock().tokens.values_mut() {
            *expires = Instant::now();
        }
        let (status, _) = call(
            &app,
            authed("GET", "/sim/genesys/api/v2/users", &token, None),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let fresh = self::token(&app).await;
        let uri = format!("/sim/genesys/api/v2/notifications/channels/{id}/subscriptions");
        let (status, body) = call(&app, authed("GET", &uri, &fresh, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["code"], "not.found");
    }

    #[tokio::test]
    async fn users_are_paged_and_unknown_ones_are_404() {
        let (app, _) = app();
        let token = token(&app).await;
        let (status, page) = call(
            &app,
            authed(
                "GET",
                "/sim/genesys/api/v2/users?pageSize=3&pageNumber=1",
                &token,
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["entities"].as_array().map(Vec::len), Some(3));
        assert_eq!(page["total"], 4);
        assert_eq!(page["pageCount"], 2);
        assert_eq!(page["entities"][0]["email"], "alice@example.com");
        let (_, page2) = call(
            &app,
            authed(
                "GET",
                "/sim/genesys/api/v2/users?pageSize=3&pageNumber=2",
                &token,
                None,
            ),
        )
        .await;
        assert_eq!(page2["entities"][0]["email"], "dave@example.com");
        let (status, _) = call(
            &app,
            authed("GET", "/sim/genesys/api/v2/users?pageSize=0", &token, None),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body) = call(
            &app,
            authed(
                "GET",
                "/sim/genesys/api/v2/users/00000000-0000-0000-0000-000000000000",
                &token,
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "not.found");
    }

    #[tokio::test]
    async fn subscriptions_take_known_topics_up_to_the_limit() {
        let (app, sim) = app();
        let token = token(&app).await;
        let (_, channel) = call(
            &app,
            authed(
                "POST",
                "/sim/genesys/api/v2/notifications/channels",
                &token,
                None,
            ),
        )
        .await;
        let id = channel["id"].as_str().expect("id");
        let uri = format!("/sim/genesys/api/v2/notifications/channels/{id}/subscriptions");
        let alice = sim.genesys.user_id("alice@example.com").expect("alice");
        let topic = format!("v2.users.{alice}.conversations.calls");
        let (status, body) = call(
            &app,
            authed("PUT", &uri, &token, Some(json!([{"id": topic}]))),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["entities"][0]["id"], topic.as_str());
        let (status, _) = call(
            &app,
            authed("PUT", &uri, &token, Some(json!({"id": topic}))),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &app,
            authed(
                "POST",
                &uri,
                &token,
                Some(json!([{"id": "v2.users.nobody.conversations.calls"}])),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &app,
            authed(
                "PUT",
                "/sim/genesys/api/v2/notifications/channels/nochannel/subscriptions",
                &token,
                Some(json!([{"id": topic}])),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // 1,001 topics: the directory is widened so every topic is one the org knows.
        {
            let mut state = sim.genesys.lock();
            for n in 0..1_001 {
                state.users.push(super::super::User {
                    id: format!("u{n}"),
                    name: format!("User {n}"),
                    email: format!("u{n}@example.com"),
                });
            }
        }
        let many: Vec<Value> = (0..1_001)
            .map(|n| json!({"id": format!("v2.users.u{n}.conversations.calls")}))
            .collect();
        let (status, body) =
            call(&app, authed("PUT", &uri, &token, Some(Value::Array(many)))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("1000")));
    }

    #[tokio::test]
    async fn call_controls_refuse_bad_bodies_unknown_ids_and_wrong_states() {
        let (app, sim) = app();
        let token = token(&app).await;
        let (status, created) = call(
            &app,
            Request::post("/sim/genesys/calls")
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"from": "+41445556677", "agent": "alice@example.com"}).to_string(),
                ))
                .expect("r"),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let cid = created["call_id"].as_str().expect("id").to_string();
        let body = sim.genesys.conversation(&cid).expect("conversation");
        assert_eq!(body["participants"][0]["ani"], "tel:+41445556677");
        assert_eq!(body["participants"][1]["state"], "alerting");
        let agent = body["participants"][1]["id"]
            .as_str()
            .expect("pid")
            .to_string();
        let uri = format!("/sim/genesys/api/v2/conversations/calls/{cid}/participants/{agent}");
        // Held while alerting: refused.
        let (status, body) = call(
            &app,
            authed("PATCH", &uri, &token, Some(json!({"held": true}))),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, _) = call(
            &app,
            authed("PATCH", &uri, &token, Some(json!({"state": "ringing"}))),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &app,
            authed("PATCH", &uri, &token, Some(json!({"action": "answer"}))),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let bad = format!("/sim/genesys/api/v2/conversations/calls/{cid}/participants/nope");
        let (status, _) = call(
            &app,
            authed("PATCH", &bad, &token, Some(json!({"state": "connected"}))),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(
            &app,
            authed(
                "GET",
                "/sim/genesys/api/v2/conversations/calls/nope",
                &token,
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(
            &app,
            authed("PATCH", &uri, &token, Some(json!({"state": "connected"}))),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let (status, _) = call(
            &app,
            authed("POST", &format!("{uri}/replace"), &token, Some(json!({}))),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let bob = sim.genesys.user_id("bob@example.com").expect("bob");
        let (status, _) = call(
            &app,
            authed(
                "POST",
                &format!("{uri}/replace"),
                &token,
                Some(json!({"userId": bob})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let body = sim.genesys.conversation(&cid).expect("conversation");
        assert_eq!(body["participants"][1]["disconnectType"], "transfer");
        assert_eq!(body["participants"][2]["user"]["id"], bob.as_str());
        assert_eq!(body["participants"][2]["state"], "alerting");
        // The call is no longer the transferred agent's to hang up.
        let (status, _) = call(
            &app,
            authed(
                "PATCH",
                &uri,
                &token,
                Some(json!({"state": "disconnected"})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn consults_and_the_catch_up_query_refuse_what_genesys_would() {
        let (app, sim) = app();
        let token = token(&app).await;
        let cid = sim
            .genesys
            .ring("+41445556677", "alice@example.com")
            .expect("rings");
        let body = sim.genesys.conversation(&cid).expect("conversation");
        let customer = body["participants"][0]["id"]
            .as_str()
            .expect("pid")
            .to_string();
        let agent = body["participants"][1]["id"]
            .as_str()
            .expect("pid")
            .to_string();
        let base = format!("/sim/genesys/api/v2/conversations/calls/{cid}/participants");
        let (status, _) = call(
            &app,
            authed(
                "PATCH",
                &format!("{base}/{agent}"),
                &token,
                Some(json!({"state": "connected"})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let alice = sim.genesys.user_id("alice@example.com").expect("alice");
        let bob = sim.genesys.user_id("bob@example.com").expect("bob");
        let consult = format!("{base}/{customer}/consult");
        // No consulting user: the token has none.
        let (status, _) = call(
            &app,
            authed(
                "POST",
                &consult,
                &token,
                Some(json!({"destination": {"userId": bob}})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Posted on the agent instead of the party to transfer.
        let (status, _) = call(
            &app,
            authed(
                "POST",
                &format!("{base}/{agent}/consult"),
                &token,
                Some(json!({"destination": {"userId": bob}, "consultingUserId": alice})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = call(&app, authed("DELETE", &consult, &token, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "no consult to cancel");
        let (status, _) = call(
            &app,
            authed(
                "POST",
                &consult,
                &token,
                Some(json!({"speakTo": "DESTINATION", "destination": {"userId": bob}, "consultingUserId": alice})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let body = sim.genesys.conversation(&cid).expect("conversation");
        assert_eq!(body["participants"][0]["held"], true);
        assert_eq!(
            body["participants"][2]["consultParticipantId"],
            agent.as_str()
        );
        let (status, _) = call(
            &app,
            authed(
                "PATCH",
                &consult,
                &token,
                Some(json!({"speakTo": "EVERYONE"})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(&app, authed("DELETE", &consult, &token, None)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let body = sim.genesys.conversation(&cid).expect("conversation");
        assert_eq!(body["participants"][2]["state"], "disconnected");
        assert_eq!(body["participants"][0]["held"], false);

        let query = "/sim/genesys/api/v2/analytics/conversations/details/query";
        let (status, _) = call(&app, authed("POST", query, &token, Some(json!({})))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "an interval is required");
        let (status, found) = call(
            &app,
            authed(
                "POST",
                query,
                &token,
                Some(json!({
                    "interval": "2020-01-01T00:00:00Z/2100-01-01T00:00:00Z",
                    "conversationFilters": [{"type": "and", "predicates": [
                        {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}]}],
                    "segmentFilters": [{"type": "or", "predicates": [
                        {"type": "dimension", "dimension": "userId", "operator": "matches", "value": alice}]}],
                })),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(found["conversations"][0]["conversationId"], cid.as_str());
        // The token endpoint takes a form, not JSON.
        let (status, body) = call(
            &app,
            Request::post("/sim/genesys/login/oauth/token")
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
    }

    #[tokio::test]
    async fn click_to_dial_needs_the_calling_user_and_a_number() {
        let (app, sim) = app();
        let token = token(&app).await;
        let uri = "/sim/genesys/api/v2/conversations/calls";
        let (status, _) = call(
            &app,
            authed(
                "POST",
                uri,
                &token,
                Some(json!({"phoneNumber": "+41445556677"})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let alice = sim.genesys.user_id("alice@example.com").expect("alice");
        let (status, _) = call(
            &app,
            authed(
                "POST",
                uri,
                &token,
                Some(json!({"phoneNumber": "call me", "participants": [{"userId": alice}]})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body) = call(
            &app,
            authed(
                "POST",
                uri,
                &token,
                Some(json!({"phoneNumber": "+41445556677", "participants": [{"userId": alice}]})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let cid = body["id"].as_str().expect("id");
        let conversation = sim.genesys.conversation(cid).expect("conversation");
        assert_eq!(conversation["participants"][0]["state"], "dialing");
        assert_eq!(conversation["participants"][0]["dnis"], "tel:+41445556677");
    }
}
