//! Liveness, readiness and metrics for the platform (Cloud Foundry health checks, Prometheus).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::metrics::{PhaseLabels, TenantLabels};
use crate::numbers::{IndexStatus, RefreshPhase, SignalsStatus};
use crate::push::FanoutState;
use crate::state::{AppState, Tenant};

/// 200 while the process serves requests.
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// Whether the caller may see the tenants' details and the metrics: with `CTI_OPS_TOKEN`, who
/// presents it as a bearer token; without, anyone, but only while every tenant's V2 is on this
/// machine (the demo). A production relay never shows its customers and their errors to the
/// internet by default.
fn operator(state: &AppState, headers: &HeaderMap) -> bool {
    match &state.config.ops_token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|presented| {
                subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), token.expose().as_bytes())
                    .into()
            }),
        None => state
            .tenants
            .all()
            .iter()
            .all(|t| crate::adapters::is_loopback(&t.config.v2_url)),
    }
}

/// 200 once every tenant's number index was built from V2 (so calls can be matched); 503 with
/// the reason per tenant before that. With Redis unreachable the relay still serves (lookups fall
/// back to V2), so it stays 200 and says `degraded`.
pub(super) async fn readyz(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut ready = true;
    let mut degraded = false;
    let mut tenants = serde_json::Map::new();
    for tenant in state.tenants.all() {
        let id = &tenant.config.id;
        if let Err(err) = state.numbers.index.len(id).await {
            degraded = true;
            tracing::warn!(%err, tenant = %id, "number index store unreachable");
        }
        let mut status = match tenant.numbers.index_status() {
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
        status["refresh"] = refresh_json(&state, &tenant);
        // Ranking without signals still matches every caller, so this never holds readiness.
        status["signals"] = match tenant.numbers.signals_status() {
            SignalsStatus::Pending => json!({"state": "pending"}),
            SignalsStatus::Available => json!({"state": "available"}),
            SignalsStatus::Unavailable { reason } => {
                json!({"state": "unavailable", "reason": reason})
            }
        };
        // Collections V2 refused live lookups on (skipped for a while); the others still answer.
        let refused: serde_json::Map<String, Value> = state
            .numbers
            .misses
            .refusals(id, state.clock.now_ms())
            .into_iter()
            .map(|r| (r.collection, Value::String(r.reason)))
            .collect();
        status["live_lookup"] = if refused.is_empty() {
            json!({"state": "available"})
        } else {
            json!({"state": "partly_refused", "refused": refused})
        };
        // A provider's connection is shown, never held against readiness: widgets still need
        // this instance while the provider is away, and another instance may hold the connector.
        let link = tenant.link.get();
        status["provider"] = json!({
            "name": tenant.adapter.provider(),
            "connector": link.role,
            "connected": link.connected,
            "reconnects": link.reconnects,
            "last_error": link.last_error,
        });
        tenants.insert(id.clone(), status);
    }
    // With Redis, an instance is ready once it hears the other instances' call messages.
    let fanout = if state.config.redis_url.is_some() {
        match state.fanout.state() {
            FanoutState::Connecting => {
                ready = false;
                "connecting"
            }
            FanoutState::Listening => "listening",
            FanoutState::Reconnecting => {
                degraded = true;
                "reconnecting"
            }
        }
    } else {
        "local"
    };
    let status = match (ready, degraded) {
        (false, _) => "not_ready",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if !operator(&state, &headers) {
        return (code, Json(json!({"status": status}))).into_response();
    }
    let body: Value = json!({
        "status": status,
        "stores": if state.config.redis_url.is_some() { "redis" } else { "memory" },
        "fanout": fanout,
        "tenants": tenants,
    });
    (code, Json(body)).into_response()
}

/// The refresher's state: phase, last success, last error, today's requests and budget.
fn refresh_json(state: &AppState, tenant: &Tenant) -> Value {
    let refresh = tenant.numbers.refresh_status();
    let age_s = refresh
        .last_success_ms
        .map(|at| state.clock.now_ms().saturating_sub(at) / 1000);
    json!({
        "phase": refresh.phase.as_str(),
        "last_success_age_s": age_s,
        "last_error": refresh.last_error,
        "requests_today": tenant.numbers.budget.spent_today(),
        "daily_budget": tenant.numbers.budget.limit(),
    })
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !operator(&state, &headers) {
        return crate::error::ApiError::Unauthorized(
            "the metrics need the operators' bearer token (CTI_OPS_TOKEN)".into(),
        )
        .into_response();
    }
    // Gauges of state that lives elsewhere are read at scrape time.
    for tenant in state.tenants.all() {
        let id = &tenant.config.id;
        let current = tenant.numbers.refresh_status().phase;
        for phase in [
            RefreshPhase::Building,
            RefreshPhase::Idle,
            RefreshPhase::Standby,
            RefreshPhase::Retrying,
            RefreshPhase::BudgetExhausted,
        ] {
            state
                .metrics
                .refresh_phase
                .get_or_create(&PhaseLabels {
                    tenant: id.clone(),
                    phase: phase.as_str().into(),
                })
                .set(i64::from(phase == current));
        }
        state
            .metrics
            .refresh_requests_today
            .get_or_create(&TenantLabels { tenant: id.clone() })
            .set(tenant.numbers.budget.spent_today() as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{SharedClock, SystemClock};
    use crate::config::Config;
    use crate::secret::Secret;
    use crate::state::Stores;

    fn state(tweak: impl FnOnce(&mut Config)) -> Arc<AppState> {
        let clock: SharedClock = Arc::new(SystemClock);
        let mut config = Config::demo("http://127.0.0.1:9");
        tweak(&mut config);
        AppState::with_parts(config, Stores::memory(clock.clone()), clock).expect("state")
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("a header"),
        );
        headers
    }

    #[test]
    fn the_demo_shows_its_details_and_a_real_tenant_hides_them() {
        assert!(operator(&state(|_| {}), &HeaderMap::new()));
        let real = state(|c| c.tenants[0].v2_url = "https://my123.crm.cloud.sap".into());
        assert!(!operator(&real, &HeaderMap::new()));
        assert!(!operator(&real, &bearer("anything")));
    }

    #[test]
    fn the_operators_token_opens_them_and_nothing_else_does() {
        let token = "an-operators-token-of-32-chars!!";
        let guarded = state(|c| c.ops_token = Some(Secret::new(token)));
        assert!(operator(&guarded, &bearer(token)));
        assert!(!operator(
            &guarded,
            &bearer("an-operators-token-of-32-chars!?")
        ));
        assert!(!operator(&guarded, &HeaderMap::new()));
    }

    #[tokio::test]
    async fn without_the_token_readiness_is_a_bare_status_and_metrics_are_refused() {
        let guarded =
            state(|c| c.ops_token = Some(Secret::new("an-operators-token-of-32-chars!!")));
        let response = readyz(State(guarded.clone()), HeaderMap::new()).await;
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert!(body.get("tenants").is_none(), "{body}");
        assert!(body.get("status").is_some(), "{body}");
        let response = metrics(State(guarded), HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}
