//! Liveness, readiness and metrics for the platform (Cloud Foundry health checks, Prometheus).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::state::{AppState, IndexStatus};

/// 200 while the process serves requests.
pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 once every tenant's number index was built from V2 (so calls can be matched); 503 with
/// the reason per tenant before that. With Redis unreachable the relay still serves (lookups fall
/// back to V2), so it stays 200 and says `degraded`.
pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut ready = true;
    let mut degraded = false;
    let mut tenants = serde_json::Map::new();
    for (id, tenant) in &state.tenants {
        if let Err(err) = state.index.len(id).await {
            degraded = true;
            tracing::warn!(%err, tenant = %id, "number index store unreachable");
        }
        let status = match tenant.index_status() {
            IndexStatus::Ready { numbers } => json!({"index": "ready", "numbers": numbers}),
            IndexStatus::Building => {
                ready = false;
                json!({"index": "building"})
            }
            IndexStatus::Failed { error } => {
                ready = false;
                json!({"index": "failed", "error": error})
            }
        };
        tenants.insert(id.clone(), status);
    }
    let status = match (ready, degraded) {
        (false, _) => "not_ready",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    let body: Value = json!({
        "status": status,
        "stores": if state.config.redis_url.is_some() { "redis" } else { "memory" },
        "tenants": tenants,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
