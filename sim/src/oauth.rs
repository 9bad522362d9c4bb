//! What the simulated OAuth authorization servers (XSUAA's zones, IAS) answer alike: RFC 6749's
//! error answer and the clock their tokens are issued by.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Unix seconds now: a token's `iat`, and the base of its `exp`.
pub(crate) fn now_secs() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

/// An OAuth error answer (RFC 6749 5.2): `error` and its description, never cached.
pub(crate) fn error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}
