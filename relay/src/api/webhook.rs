//! `POST` and `GET /v1/tenants/{tenant}/telephony/{provider}`: telephony events in, and the
//! handshakes some providers make before they send any (`GET` or `POST`, the adapter decides).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header::ALLOW;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::adapters::{AdapterError, Inbound, Ingress};
use crate::error::ApiError;
use crate::pipeline::{self, Outcome};
use crate::state::{AppState, Tenant};

/// The label of requests that reached no adapter: a path segment must not become a metrics
/// series.
const UNKNOWN: &str = "unknown";

pub(super) async fn receive(
    State(state): State<Arc<AppState>>,
    Path((tenant_id, provider)): Path<(String, String)>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received_at_ms = state.clock.now_ms();
    let received = std::time::Instant::now();
    let tenant = state
        .tenant(&tenant_id)
        .filter(|t| t.adapter.provider() == provider);
    let label = tenant.as_ref().map_or(UNKNOWN, |t| t.adapter.provider());
    let Some(tenant) = tenant else {
        let err = match state.tenant(&tenant_id) {
            None => ApiError::UnknownTenant(tenant_id.clone()),
            Some(_) => {
                ApiError::UnknownTenant(format!("{tenant_id}: no provider {provider:?} configured"))
            }
        };
        return refused(&state, &tenant_id, label, err);
    };
    let request = Request {
        method: &method,
        query: query.as_deref(),
        headers: &headers,
        received_at_ms,
        received,
    };
    match handle(&state, &tenant, request, body).await {
        Ok(Answer::Outcome(outcome)) => {
            let (status, word) = match outcome {
                Outcome::Accepted => (StatusCode::ACCEPTED, "accepted"),
                Outcome::Duplicate => (StatusCode::OK, "duplicate"),
            };
            state.metrics.webhook(label, word);
            (status, Json(json!({"status": word}))).into_response()
        }
        Ok(Answer::Reply(response)) => {
            state.metrics.webhook(label, "handshake");
            response
        }
        Err(Refusal::Method(method)) => {
            state.metrics.webhook(label, "method_not_allowed");
            tracing::info!(tenant = ?tenant_id, provider = %label, %method, "webhook method refused");
            (StatusCode::METHOD_NOT_ALLOWED, [(ALLOW, "POST")]).into_response()
        }
        Err(Refusal::Api(err)) => refused(&state, &tenant_id, label, err),
    }
}

/// The tenant id comes from the path, percent-decoded and not yet known to be configured: it is
/// logged Debug-escaped (as is the reason, which may repeat it), so a `%0A` in the URL cannot
/// start a forged log line.
fn refused(state: &AppState, tenant_id: &str, label: &str, err: ApiError) -> Response {
    state.metrics.webhook(label, err.code());
    tracing::info!(
        tenant = ?tenant_id,
        provider = %label,
        code = err.code(),
        reason = ?err.to_string(),
        "webhook rejected"
    );
    err.into_response()
}

#[derive(Debug, Clone, Copy)]
struct Request<'a> {
    method: &'a Method,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    received_at_ms: u64,
    received: std::time::Instant,
}

enum Answer {
    Outcome(Outcome),
    Reply(Response),
}

enum Refusal {
    /// Not a method the provider sends: 405, as for any route that does not take it.
    Method(Method),
    Api(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(err: ApiError) -> Self {
        Refusal::Api(err)
    }
}

impl From<AdapterError> for Refusal {
    /// The one place an adapter's refusal becomes the public error code.
    fn from(err: AdapterError) -> Self {
        Refusal::Api(match err {
            AdapterError::MethodNotAllowed(method) => return Refusal::Method(method),
            AdapterError::UnsupportedMediaType(found) => ApiError::UnsupportedMediaType(found),
            AdapterError::Signature(err) => ApiError::Signature(err),
            AdapterError::Unauthenticated(problem) => ApiError::Unauthorized(problem),
            AdapterError::SignedBeforeStart => ApiError::SignedBeforeStart,
            AdapterError::MalformedJson(err) => ApiError::MalformedJson(format!(
                "{err} (line {}, column {})",
                err.line(),
                err.column()
            )),
            AdapterError::InvalidEvent(problem) => ApiError::InvalidEvent(problem),
            AdapterError::UnknownEventType { found, expected } => {
                ApiError::UnknownEventType { found, expected }
            }
        })
    }
}

async fn handle(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    request: Request<'_>,
    body: Body,
) -> Result<Answer, Refusal> {
    let limit = state.config.webhook_max_bytes;
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let ingress = tenant
        .adapter
        .receive(Inbound {
            method: request.method,
            headers: request.headers,
            query: request.query,
            body: &bytes,
        })
        .await?;
    let (events, amendments) = match ingress {
        Ingress::Reply(response) => return Ok(Answer::Reply(response)),
        Ingress::Events(events) => (events, Vec::new()),
        Ingress::Amended { events, amendments } => (events, amendments),
    };
    // A notification without call events (a provider's keep-alive, a record amending calls)
    // is taken, not a duplicate.
    let mut outcome = if events.is_empty() {
        Outcome::Accepted
    } else {
        Outcome::Duplicate
    };
    if !events.is_empty() {
        // Counted beside the connectors' events, so a pushed provider's traffic shows up in the
        // same series as a held one's.
        state
            .metrics
            .provider_events
            .get_or_create(&crate::metrics::ProviderLabels {
                tenant: tenant.config.id.clone(),
                provider: tenant.adapter.provider().to_string(),
            })
            .inc_by(events.len() as u64);
    }
    for event in events {
        // Rep ids follow one rule from here on, as the token's rep does (review F20).
        let event = crate::identity::normalize_event(event);
        let outcome_of_event = pipeline::ingest(
            state,
            tenant,
            event,
            request.received_at_ms,
            request.received,
        )
        .await
        .map_err(|err| ApiError::Unavailable(err.to_string()))?;
        if outcome_of_event == Outcome::Accepted {
            outcome = Outcome::Accepted;
        }
    }
    for amendment in &amendments {
        // Refused as a whole when the store cannot take it, so the provider delivers it again.
        pipeline::amend(state, tenant, amendment)
            .await
            .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    }
    Ok(Answer::Outcome(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review F18: a tenant id with a newline from the URL stays on its log line.
    #[test]
    fn a_tenant_id_from_the_path_cannot_forge_a_log_line() {
        use std::io::Write;

        use parking_lot::Mutex;

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        let clock: crate::clock::SharedClock = Arc::new(crate::clock::SystemClock);
        let state = AppState::with_parts(
            crate::config::Config::demo("http://127.0.0.1:9"),
            crate::state::Stores::memory(clock.clone()),
            clock,
        )
        .expect("state");
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let forged = "x\n2026-01-01T00:00:00Z  INFO cti_relay: fake";
        tracing::subscriber::with_default(subscriber, || {
            refused(
                &state,
                forged,
                UNKNOWN,
                ApiError::UnknownTenant(forged.to_string()),
            );
        });
        let logged = String::from_utf8(buffer.0.lock().clone()).expect("text");
        assert_eq!(logged.lines().count(), 1, "{logged}");
        assert!(logged.contains(r"x\n2026"), "{logged}");
        assert!(
            !logged.contains("\nfake") && !logged.contains("\n2026"),
            "{logged}"
        );
    }

    fn code(err: AdapterError) -> &'static str {
        match Refusal::from(err) {
            Refusal::Api(err) => err.code(),
            Refusal::Method(_) => "method_not_allowed",
        }
    }

    #[test]
    fn adapter_refusals_keep_their_public_codes() {
        use cti_protocol::signature::SignatureError;
        let json = serde_json::from_str::<serde_json::Value>("{oops").expect_err("not json");
        assert_eq!(code(AdapterError::MalformedJson(json)), "malformed_json");
        assert_eq!(
            code(AdapterError::Signature(SignatureError::Missing)),
            "missing_signature"
        );
        assert_eq!(
            code(AdapterError::Signature(SignatureError::Mismatch)),
            "bad_signature"
        );
        assert_eq!(
            code(AdapterError::Signature(SignatureError::Stale {
                skew_secs: 600
            })),
            "stale_signature"
        );
        assert_eq!(
            code(AdapterError::Signature(SignatureError::MissingTimestamp)),
            "missing_timestamp"
        );
        assert_eq!(
            code(AdapterError::Signature(SignatureError::MalformedTimestamp)),
            "bad_signature"
        );
        assert_eq!(
            code(AdapterError::UnsupportedMediaType("text/plain".into())),
            "unsupported_media_type"
        );
        assert_eq!(
            code(AdapterError::InvalidEvent("x".into())),
            "invalid_event"
        );
        assert_eq!(
            code(AdapterError::UnknownEventType {
                found: "x".into(),
                expected: "y".into()
            }),
            "unknown_event_type"
        );
        assert_eq!(
            code(AdapterError::MethodNotAllowed(Method::GET)),
            "method_not_allowed"
        );
        assert_eq!(code(AdapterError::SignedBeforeStart), "signed_before_start");
    }
}
