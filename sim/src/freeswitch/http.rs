//! The simulated FreeSWITCH's HTTP controls under `/sim/freeswitch` (the calls' parties and the
//! faults; FreeSWITCH itself speaks its event socket only).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use super::SimError;
use crate::Sim;

type Sh = State<Arc<Sim>>;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/freeswitch/calls", post(ring))
        .route("/sim/freeswitch/calls/{id}/answer", post(answer))
        .route("/sim/freeswitch/calls/{id}/hangup", post(hang_up))
        .route("/sim/freeswitch/calls/{id}/hold", post(hold))
        .route("/sim/freeswitch/calls/{id}/unhold", post(unhold))
        .route("/sim/freeswitch/connections/drop", post(drop_connections))
        .route("/sim/freeswitch/connections/restore", post(restore))
        .route("/sim/freeswitch/connections/malformed", post(malformed))
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(json!({"error": self.message}))).into_response()
    }
}

fn done(outcome: Result<(), SimError>) -> Response {
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct RingRequest {
    from: String,
    agent: Option<String>,
}

/// A customer calls `agent` (a rep's e-mail or a user id; the demo rep by default).
async fn ring(State(sim): Sh, body: String) -> Response {
    let request: RingRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => {
            return SimError {
                status: 400,
                message: format!("invalid body: {e}"),
            }
            .into_response();
        }
    };
    if request.from.trim().is_empty()
        || request.from.len() > 64
        || request.from.contains(['\r', '\n'])
    {
        return SimError {
            status: 400,
            message: "from must be a phone number".into(),
        }
        .into_response();
    }
    let agent = request
        .agent
        .unwrap_or_else(|| sim.config.demo_agent.clone());
    match sim.freeswitch.ring(&request.from, &agent) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"call_id": id}))).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn answer(State(sim): Sh, Path(id): Path<String>) -> Response {
    done(sim.freeswitch.answer(&id))
}

async fn hang_up(State(sim): Sh, Path(id): Path<String>) -> Response {
    done(sim.freeswitch.hang_up(&id))
}

async fn hold(State(sim): Sh, Path(id): Path<String>) -> Response {
    done(sim.freeswitch.hold(&id, true))
}

async fn unhold(State(sim): Sh, Path(id): Path<String>) -> Response {
    done(sim.freeswitch.hold(&id, false))
}

async fn drop_connections(State(sim): Sh) -> Response {
    sim.freeswitch.drop_connections();
    StatusCode::NO_CONTENT.into_response()
}

async fn restore(State(sim): Sh) -> Response {
    sim.freeswitch.restore();
    StatusCode::NO_CONTENT.into_response()
}

async fn malformed(State(sim): Sh) -> Response {
    sim.freeswitch.send_malformed();
    StatusCode::NO_CONTENT.into_response()
}
