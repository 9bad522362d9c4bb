//! The simulated Finesse's routes: the REST API under `/sim/finesse/finesse/api` and the
//! simulator's own controls under `/sim/finesse/calls`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use crate::Sim;

type Sh = State<Arc<Sim>>;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/finesse/finesse/api/SystemInfo", get(system_info))
        .route("/sim/finesse/finesse/api/User/{id}", get(user))
        .route(
            "/sim/finesse/finesse/api/User/{id}/Dialogs",
            get(dialogs).post(make_call),
        )
        .route("/sim/finesse/finesse/api/Dialog/{id}", put(act))
        .route("/sim/finesse/calls", post(sim_ring))
        .route("/sim/finesse/calls/{id}/hangup", post(sim_hangup))
        .route("/sim/finesse/calls/{id}/answer", post(sim_answer))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = format!(
            "<ApiErrors><ApiError><ErrorType>{}</ErrorType><ErrorData></ErrorData><ErrorMessage>{}</ErrorMessage></ApiError></ApiErrors>",
            self.kind,
            super::xml::escape(&self.message)
        );
        (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
    }
}

fn xml_ok(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// The Finesse id of the request's credentials: HTTP Basic, or in SSO mode a bearer token; the
/// other scheme is refused as no credentials at all.
fn login(sim: &Sim, headers: &HeaderMap) -> Result<String, ApiError> {
    let sso = sim.finesse.sso();
    let unauthorized = || ApiError {
        status: 401,
        kind: "Authentication Failure",
        message: if sso {
            "this Finesse signs users in with SSO: a bearer access token is required".into()
        } else {
            "HTTP Basic credentials are required".into()
        },
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    if sso {
        let token = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        return sim.finesse.login_bearer(token);
    }
    let value = value.strip_prefix("Basic ").ok_or_else(unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(unauthorized)?;
    let (user, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
    sim.finesse.login(user, password)
}

fn xml_body(headers: &HeaderMap, body: &str) -> Result<(), ApiError> {
    let xml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("xml"));
    if !xml || body.trim().is_empty() {
        return Err(ApiError {
            status: 400,
            kind: "Invalid Input",
            message: "an XML body (Content-Type application/xml) is required".into(),
        });
    }
    Ok(())
}

async fn system_info(State(sim): Sh, headers: HeaderMap) -> Response {
    match login(&sim, &headers) {
        Ok(_) => xml_ok(sim.finesse.system_info_xml()),
        Err(e) => e.into_response(),
    }
}

async fn user(State(sim): Sh, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match login(&sim, &headers).and_then(|who| sim.finesse.user_xml(&who, &id)) {
        Ok(body) => xml_ok(body),
        Err(e) => e.into_response(),
    }
}

async fn dialogs(State(sim): Sh, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match login(&sim, &headers).and_then(|who| sim.finesse.dialogs_xml(&who, &id)) {
        Ok(body) => xml_ok(body),
        Err(e) => e.into_response(),
    }
}

async fn make_call(
    State(sim): Sh,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let outcome = login(&sim, &headers).and_then(|who| {
        xml_body(&headers, &body)?;
        sim.finesse.make_call(&who, &id, &body)
    });
    match outcome {
        Ok(()) => accepted(),
        Err(e) => e.into_response(),
    }
}

async fn act(State(sim): Sh, headers: HeaderMap, Path(id): Path<String>, body: String) -> Response {
    let outcome = login(&sim, &headers).and_then(|who| {
        xml_body(&headers, &body)?;
        sim.finesse.act(&who, &id, &body)
    });
    match outcome {
        Ok(()) => accepted(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct RingRequest {
    from: String,
    agent: Option<String>,
}

/// Simulator control: a customer calls `agent` (an e-mail or Finesse id; the demo rep by default).
async fn sim_ring(State(sim): Sh, body: String) -> Response {
    let request: RingRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("invalid body: {e}")})),
            )
                .into_response();
        }
    };
    if request.from.trim().is_empty() || request.from.len() > 64 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "from must be a phone number"})),
        )
            .into_response();
    }
    let agent = request
        .agent
        .unwrap_or_else(|| sim.config.demo_agent.clone());
    match sim.finesse.ring(&request.from, &agent) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"call_id": id}))).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn sim_hangup(State(sim): Sh, Path(id): Path<String>) -> Response {
    match sim.finesse.hang_up(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn sim_answer(State(sim): Sh, Path(id): Path<String>) -> Response {
    match sim.finesse.answer(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
