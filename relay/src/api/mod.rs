//! The relay's HTTP surface: health, metrics, telephony webhooks, the widget's WebSocket, the
//! widget's files, and the tenant admin page (its API and its files). Paths here are public contract (see the README).

mod admin;
mod browser;
mod client_addr;
mod health;
mod saas;
mod sign_in;
mod v2_connect;
pub(crate) mod v2_events;
mod webhook;
mod widget;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
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
        .route(sign_in::CALLBACK, get(sign_in::callback))
        .route("/v1/agent/v2-connect", post(v2_connect::start))
        .route("/v1/agent/v2-callback", get(v2_connect::callback))
        .route(
            "/callback/v1.0/tenants/{tenant}",
            put(saas::subscribe).delete(saas::unsubscribe),
        )
        .route("/callback/v1.0/dependencies", get(saas::dependencies))
        .route("/v1/admin/tenant", get(admin::get_tenant))
        .route("/v1/admin/tenant/settings", put(admin::put_settings))
        .route("/v1/admin/tenant/test", post(admin::test_connection))
        .route("/v1/admin/status", get(admin::status))
        .route("/v1/admin/activities/{call_id}/retry", post(admin::retry))
        .route("/v1/admin/sign-in", get(admin::sign_in))
        .nest_service("/widget", widget::service(state.clone()))
        .nest_service("/admin", admin::files::service(&state))
        .layer(RequestBodyTimeoutLayer::new(request_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // A 503 from /readyz is an answer, not a failure; real failures are logged where they happen.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .with_state(state)
}

/// Where the identity provider returns a rep's sign-in, with its one-time `code` and `state`.
const V2_CALLBACK: &str = "/v1/agent/v2-callback";

/// The span of one request (logged at `CTI_LOG=debug`): its method, URI and version, as
/// tower-http's default has them, except that the OAuth `code` and `state` of a sign-in (V2's,
/// or the relay's own through XSUAA) never reach the logs.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        uri = %shown_uri(request.uri()),
        version = ?request.version(),
    )
}

/// A request's URI as logs may show it: the sign-ins' returns without their query.
fn shown_uri(uri: &axum::http::Uri) -> std::borrow::Cow<'_, str> {
    match uri.query() {
        Some(_) if uri.path() == V2_CALLBACK || uri.path() == sign_in::CALLBACK => {
            format!("{}?<redacted>", uri.path()).into()
        }
        _ => uri.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;
    use tower::ServiceExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Review F24: at debug level, the request's span names the path of the V2 sign-in's return
    /// but not its `code` or `state`; other requests keep their query.
    #[tokio::test]
    async fn the_sign_in_code_and_state_stay_out_of_debug_logs() {
        let state =
            AppState::new(crate::config::Config::demo("http://127.0.0.1:9")).expect("state");
        let app = router(state);
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(Level::DEBUG)
            .with_ansi(false)
            .finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        for uri in [
            "/v1/agent/v2-callback?code=the-one-time-code&state=the-sealed-state",
            "/v1/sign-in/callback?code=the-one-time-code&state=the-sealed-state",
            "/healthz?probe=visible",
        ] {
            let request = axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .expect("a request");
            app.clone().oneshot(request).await.expect("an answer");
        }
        let logged = String::from_utf8(buffer.0.lock().clone()).expect("text");
        assert!(
            logged.contains("/v1/agent/v2-callback?<redacted>"),
            "{logged}"
        );
        assert!(
            logged.contains("/v1/sign-in/callback?<redacted>"),
            "{logged}"
        );
        assert!(!logged.contains("the-one-time-code"), "{logged}");
        assert!(!logged.contains("the-sealed-state"), "{logged}");
        assert!(logged.contains("/healthz?probe=visible"), "{logged}");
    }
}
