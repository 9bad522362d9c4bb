//! Every error the relay's HTTP API returns, and the one place they become responses.
//!
//! The body is always `{"error":{"code":"...","message":"..."}}`: the code is stable for
//! programs, the message tells a person what was wrong and where.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cti_protocol::signature::SignatureError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unknown tenant {0:?}")]
    UnknownTenant(String),
    #[error("body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("Content-Type must be application/json, got {0:?}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("unknown event type {found:?}; expected one of: {expected}")]
    UnknownEventType { found: String, expected: String },
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed this (a token without the scope the route needs).
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// What is asked is switched off in this deployment's configuration.
    #[error("not enabled: {0}")]
    NotEnabled(String),
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A tenant's settings refused on the admin page: `field` names the setting (a key of the
    /// tenants file's shape), so the page can point at it.
    #[error("invalid settings: {field}: {message}")]
    InvalidSettings { field: String, message: String },
    /// What the path names does not exist (an activity the outbox does not hold).
    #[error("not found: {0}")]
    NotFound(String),
    /// A limit on connections waiting to sign in; the widget's back-off retries.
    #[error("too many connections waiting to sign in ({0}); retry shortly")]
    Busy(&'static str),
}

impl ApiError {
    /// The stable, machine-readable code (also the `/metrics` label).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownTenant(_) => "unknown_tenant",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Signature(SignatureError::Missing) => "missing_signature",
            ApiError::Signature(SignatureError::MissingTimestamp) => "missing_timestamp",
            ApiError::Signature(SignatureError::Stale { .. }) => "stale_signature",
            ApiError::Signature(_) => "bad_signature",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidEvent(_) => "invalid_event",
            ApiError::UnknownEventType { .. } => "unknown_event_type",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Conflict(_) => "conflict",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::NotEnabled(_) => "not_enabled",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Busy(_) => "busy",
            ApiError::InvalidSettings { .. } => "invalid_settings",
            ApiError::NotFound(_) => "not_found",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownTenant(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Signature(_) | ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::MalformedJson(_) | ApiError::InvalidSettings { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::InvalidRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotEnabled(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidEvent(_) | ApiError::UnknownEventType { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        if let ApiError::InvalidSettings { field, .. } = &self {
            body["error"]["field"] = json!(field);
        }
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, ApiError::Busy(_)) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
