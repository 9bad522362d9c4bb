//! The PBX's HTTP face: the simulator's own controls (`/sim/calls`) and the contract's call-control
//! and click-to-dial endpoints (`/sim/pbx/...`), with one error type for all of them.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cti_protocol::signature::{self, SignatureError};
use cti_protocol::ws::CallCommand;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CallInfo, DeliveryError, MAX_FIELD_LEN};
use crate::Sim;

/// Everything the PBX's routes can refuse, mapped to a response in [`IntoResponse`] below.
#[derive(Debug, thiserror::Error)]
pub enum PbxError {
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// Correctly signed, but not for this request: another call's command, or one already used.
    #[error("{1}")]
    Replayed(&'static str, String),
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid call command: {0}")]
    InvalidCommand(String),
    #[error("no call {0:?}")]
    UnknownCall(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the relay did not accept the event: {0}")]
    Delivery(#[from] DeliveryError),
}

impl PbxError {
    fn status(&self) -> StatusCode {
        match self {
            PbxError::Signature(_) | PbxError::Replayed(..) => StatusCode::UNAUTHORIZED,
            PbxError::MalformedJson(_)
            | PbxError::InvalidRequest(_)
            | PbxError::InvalidCommand(_) => StatusCode::BAD_REQUEST,
            PbxError::UnknownCall(_) => StatusCode::NOT_FOUND,
            PbxError::Conflict(_) => StatusCode::CONFLICT,
            PbxError::Delivery(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            PbxError::Signature(SignatureError::Missing) => "missing_signature",
            PbxError::Signature(SignatureError::MissingTimestamp) => "missing_timestamp",
            PbxError::Signature(SignatureError::Stale { .. }) => "stale_signature",
            PbxError::Replayed(code, _) => code,
            PbxError::Signature(_) => "invalid_signature",
            PbxError::MalformedJson(_) => "malformed_json",
            PbxError::InvalidRequest(_) => "invalid_request",
            PbxError::InvalidCommand(_) => "invalid_command",
            PbxError::UnknownCall(_) => "unknown_call",
            PbxError::Conflict(_) => "invalid_state",
            PbxError::Delivery(DeliveryError::Unreachable(_)) => "relay_unreachable",
            PbxError::Delivery(DeliveryError::Rejected { .. }) => "relay_rejected",
            PbxError::Delivery(DeliveryError::Failing { .. }) => "relay_failing",
            PbxError::Delivery(DeliveryError::Stopped) => "delivery_stopped",
        }
    }
}

impl IntoResponse for PbxError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        (self.status(), Json(body)).into_response()
    }
}

impl From<PathRejection> for PbxError {
    fn from(rejection: PathRejection) -> Self {
        PbxError::InvalidRequest(format!("bad call id in the path: {rejection}"))
    }
}

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/calls", post(place_call).get(list_calls))
        .route("/sim/calls/{id}/hangup", post(hangup))
        .route("/sim/calls/{id}/answer", post(remote_answer))
        .route("/sim/pbx/calls/{id}/commands", post(command))
        .route("/sim/pbx/dial", post(dial))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceCall {
    from: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, PbxError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        PbxError::MalformedJson(format!("{e} (line {}, column {})", e.line(), e.column()))
    })?;
    serde_json::from_value(value).map_err(|e| PbxError::InvalidRequest(e.to_string()))
}

/// A field that is absent or blank means "use the default".
fn optional_field(name: &str, value: Option<String>) -> Result<Option<String>, PbxError> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if v.len() > MAX_FIELD_LEN => Err(PbxError::InvalidRequest(format!(
            "`{name}` is longer than {MAX_FIELD_LEN} characters"
        ))),
        Some(v) if !v.is_empty() => Ok(Some(v)),
        _ => Ok(None),
    }
}

async fn place_call(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, PbxError> {
    let request: PlaceCall = parse_json(&body)?;
    let from = optional_field("from", Some(request.from))?
        .ok_or_else(|| PbxError::InvalidRequest("`from` must not be empty".into()))?;
    let to = optional_field("to", request.to)?;
    let agent = optional_field("agent", request.agent)?;
    let call_id = sim.pbx.place_call(from, to, agent).await?;
    Ok((StatusCode::CREATED, Json(json!({"call_id": call_id}))).into_response())
}

async fn list_calls(State(sim): State<Arc<Sim>>) -> Json<Vec<CallInfo>> {
    Json(sim.pbx.calls())
}

async fn hangup(
    State(sim): State<Arc<Sim>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, PbxError> {
    let Path(id) = id?;
    let reason = sim.pbx.caller_hangup(&id).await?;
    Ok(Json(json!({"call_id": id, "state": "ended", "reason": reason})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialBody {
    agent: String,
    to: String,
    /// Checked in [`authenticate`].
    #[serde(rename = "nonce")]
    _nonce: String,
}

/// Checks a control request of the relay's: the timed signature against this machine's clock.
/// Answers its nonce and signing time, taken once the request is known to be for this call.
fn authenticate(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Result<(String, u64), PbxError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = super::now_secs();
    let key = sim
        .config
        .controls_secret
        .as_deref()
        .unwrap_or(&sim.config.webhook_secret);
    signature::verify(
        key,
        body,
        header(signature::HEADER),
        header(signature::TIMESTAMP_HEADER),
        now,
    )?;
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        PbxError::MalformedJson(format!("{e} (line {}, column {})", e.line(), e.column()))
    })?;
    let nonce = value
        .get("nonce")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty() && n.len() <= MAX_FIELD_LEN)
        .ok_or_else(|| PbxError::InvalidCommand("`nonce` is required".into()))?;
    let signed_at = header(signature::TIMESTAMP_HEADER)
        .and_then(|t| signature::parse_timestamp(t).ok())
        .unwrap_or(now);
    Ok((nonce.to_string(), signed_at))
}

/// Takes a signed request's nonce, refusing one already used within the window: a replay.
fn first_use(sim: &Sim, (nonce, signed_at): (String, u64)) -> Result<(), PbxError> {
    if !sim.pbx.first_use(&nonce, signed_at, super::now_secs()) {
        return Err(PbxError::Replayed(
            "replayed_request",
            "this request's nonce was already used".into(),
        ));
    }
    Ok(())
}

/// `POST /sim/pbx/dial`, signed like commands: `{"agent","to"}` -> 201 `{"call_id"}` once the
/// relay took the call's `ringing`.
async fn dial(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PbxError> {
    let nonce = authenticate(&sim, &headers, &body)?;
    first_use(&sim, nonce)?;
    let request: DialBody = parse_json(&body)?;
    let agent = optional_field("agent", Some(request.agent))?
        .ok_or_else(|| PbxError::InvalidCommand("`agent` is required".into()))?;
    let to = optional_field("to", Some(request.to))?
        .ok_or_else(|| PbxError::InvalidCommand("`to` is required".into()))?;
    let call_id = sim.pbx.dial(agent, to).await?;
    Ok((StatusCode::CREATED, Json(json!({"call_id": call_id}))).into_response())
}

async fn remote_answer(
    State(sim): State<Arc<Sim>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, PbxError> {
    let Path(id) = id?;
    sim.pbx.remote_answer(&id).await?;
    Ok((StatusCode::OK, Json(json!({"answered": true}))).into_response())
}

#[derive(Debug, Deserialize)]
struct CommandBody {
    #[serde(flatten)]
    command: CallCommand,
    #[serde(default)]
    agent: Option<String>,
    /// The call the signature is for; it must be the path's.
    call_id: String,
}

async fn command(
    State(sim): State<Arc<Sim>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PbxError> {
    // Authenticate before looking at anything else, so unsigned requests learn nothing.
    let nonce = authenticate(&sim, &headers, &body)?;
    let Path(id) = id?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        PbxError::MalformedJson(format!("{e} (line {}, column {})", e.line(), e.column()))
    })?;
    let request: CommandBody =
        serde_json::from_value(value).map_err(|e| PbxError::InvalidCommand(e.to_string()))?;
    if request.call_id != id {
        return Err(PbxError::Replayed(
            "invalid_signature",
            format!(
                "the request is signed for call {:?}, not this one",
                request.call_id
            ),
        ));
    }
    first_use(&sim, nonce)?;
    let by = optional_field("agent", request.agent)?;
    sim.pbx.command(&id, &request.command, by.as_deref())?;
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response())
}
