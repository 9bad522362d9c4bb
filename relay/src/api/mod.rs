//! The relay's HTTP surface: health, metrics, telephony webhooks, the widget's WebSocket and
//! the widget's files. Paths here are public contract (see the README).

mod client_addr;
mod health;
mod sign_in;
mod v2_connect;
mod v2_events;
mod webhook;
mod widget;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::state::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    // A request (body included) that takes longer is cut off: a slow sender holds no socket for
    // ever. WebSocket upgrades answer at once, so the limit never touches an open session.
    let request_timeout = state.config.limits.request_timeout;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/v1/tenants/{tenant}/telephony/{provider}",
            post(webhook::receive).get(webhook::receive),
        )
        .route("/v1/tenants/{tenant}/v2-events", post(v2_events::receive))
        .route("/v1/agent/ws", get(ws::upgrade))
        .route("/v1/agent/sign-in", get(sign_in::redirect))
        .route("/v1/agent/v2-connect", post(v2_connect::start))
        .route("/v1/agent/v2-callback", get(v2_connect::callback))
        .nest_service("/widget", widget::service(&state))
        .layer(RequestBodyTimeoutLayer::new(request_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // A 503 from /readyz is an answer, not a failure; real failures are logged where they happen.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .with_state(state)
}
