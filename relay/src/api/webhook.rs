//! `POST /v1/tenants/{tenant}/telephony/{provider}`: telephony events in.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::pipeline::{self, Outcome};
use crate::state::AppState;

pub(super) async fn receive(
    State(state): State<Arc<AppState>>,
    Path((tenant_id, provider)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received_at_ms = state.clock.now_ms();
    let label = if provider == "generic" {
        "generic"
    } else {
        "unknown"
    };
    match handle(
        &state,
        &tenant_id,
        &provider,
        &headers,
        body,
        received_at_ms,
    )
    .await
    {
        Ok(outcome) => {
            let (status, word) = match outcome {
                Outcome::Accepted => (StatusCode::ACCEPTED, "accepted"),
                Outcome::Duplicate => (StatusCode::OK, "duplicate"),
            };
            state.metrics.webhook(label, word);
            (status, Json(json!({"status": word}))).into_response()
        }
        Err(err) => {
            state.metrics.webhook(label, err.code());
            tracing::info!(tenant = %tenant_id, provider = %label, code = err.code(), "webhook rejected: {err}");
            err.into_response()
        }
    }
}

async fn handle(
    state: &Arc<AppState>,
    tenant_id: &str,
    provider: &str,
    headers: &HeaderMap,
    body: Body,
    received_at_ms: u64,
) -> Result<Outcome, ApiError> {
    let tenant = state
        .tenant(tenant_id)
        .ok_or_else(|| ApiError::UnknownTenant(tenant_id.to_string()))?;
    if provider != tenant.adapter.provider() {
        return Err(ApiError::UnknownTenant(format!(
            "{tenant_id}: no provider {provider:?} configured"
        )));
    }
    let limit = state.config.webhook_max_bytes;
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let events = tenant.adapter.parse(&tenant.config, headers, &bytes)?;
    let mut outcome = Outcome::Duplicate;
    for event in events {
        let outcome_of_event = pipeline::ingest(state, tenant, event, received_at_ms)
            .await
            .map_err(|err| ApiError::Unavailable(err.to_string()))?;
        if outcome_of_event == Outcome::Accepted {
            outcome = Outcome::Accepted;
        }
    }
    Ok(outcome)
}
