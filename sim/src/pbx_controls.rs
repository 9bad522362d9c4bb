//! The HTTP controls of a simulated phone system that speaks its own TCP protocol (Asterisk's
//! AMI, FreeSWITCH's event socket), under `/sim/<name>`: the calls' parties and the faults. The
//! systems themselves speak only their protocol; these routes are the same for each.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use crate::Sim;

/// A refusal of a simulator control, with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    pub status: u16,
    pub message: String,
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(json!({"error": self.message}))).into_response()
    }
}

/// What the controls ask of a simulated phone system.
pub trait PhoneSystem: Send + Sync + 'static {
    /// A customer calls `agent`; the call's id.
    fn ring(&self, from: &str, agent: &str) -> Result<String, SimError>;
    fn answer(&self, call: &str) -> Result<(), SimError>;
    fn hang_up(&self, call: &str) -> Result<(), SimError>;
    fn hold(&self, call: &str, hold: bool) -> Result<(), SimError>;
    /// Drops every protocol connection, and refuses new ones until [`PhoneSystem::restore`].
    fn drop_connections(&self);
    fn restore(&self);
    /// Sends a frame the real system never sends.
    fn send_malformed(&self);
}

/// The routes under `/sim/{name}`, acting on the system `pick` finds in the simulator.
pub fn routes<P: PhoneSystem>(name: &str, pick: fn(&Sim) -> &P) -> Router<Arc<Sim>> {
    let on_call = move |act: fn(&P, &str) -> Result<(), SimError>| {
        post(
            move |State(sim): State<Arc<Sim>>, Path(id): Path<String>| async move {
                done(act(pick(&sim), &id))
            },
        )
    };
    let fault = move |act: fn(&P)| {
        post(move |State(sim): State<Arc<Sim>>| async move {
            act(pick(&sim));
            StatusCode::NO_CONTENT.into_response()
        })
    };
    Router::new()
        .route(
            &format!("/sim/{name}/calls"),
            post(
                move |State(sim): State<Arc<Sim>>, body: String| async move {
                    ring(&sim, pick(&sim), &body)
                },
            ),
        )
        .route(
            &format!("/sim/{name}/calls/{{id}}/answer"),
            on_call(P::answer),
        )
        .route(
            &format!("/sim/{name}/calls/{{id}}/hangup"),
            on_call(P::hang_up),
        )
        .route(
            &format!("/sim/{name}/calls/{{id}}/hold"),
            on_call(|p, id| p.hold(id, true)),
        )
        .route(
            &format!("/sim/{name}/calls/{{id}}/unhold"),
            on_call(|p, id| p.hold(id, false)),
        )
        .route(
            &format!("/sim/{name}/connections/drop"),
            fault(P::drop_connections),
        )
        .route(
            &format!("/sim/{name}/connections/restore"),
            fault(P::restore),
        )
        .route(
            &format!("/sim/{name}/connections/malformed"),
            fault(P::send_malformed),
        )
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

/// A customer calls `agent` (a rep's e-mail or the system's own name for the rep's phone; the
/// demo rep by default).
fn ring<P: PhoneSystem>(sim: &Sim, pbx: &P, body: &str) -> Response {
    let request: RingRequest = match serde_json::from_str(body) {
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
    match pbx.ring(&request.from, &agent) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"call_id": id}))).into_response(),
        Err(e) => e.into_response(),
    }
}
