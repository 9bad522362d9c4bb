//! The Platform API's error answer, shared by its HTTP routes, its calls and its notification
//! sockets.
//!
//! The body is `{"message","code","status","contextId"}` with the codes Genesys uses
//! (`bad.request`, `not.found`, `conflict`; 401 `authentication.required` without a token and
//! `bad.credentials` for an unknown or expired one, inferred from the public error reference).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A Platform API error.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("No authentication bearer token specified in authorization header.")]
    NoToken,
    #[error("Invalid login credentials.")]
    BadToken,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

impl GcError {
    fn status(&self) -> StatusCode {
        match self {
            GcError::NoToken | GcError::BadToken => StatusCode::UNAUTHORIZED,
            GcError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GcError::NotFound(_) => StatusCode::NOT_FOUND,
            GcError::Conflict(_) => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            GcError::NoToken => "authentication.required",
            GcError::BadToken => "bad.credentials",
            GcError::BadRequest(_) => "bad.request",
            GcError::NotFound(_) => "not.found",
            GcError::Conflict(_) => "conflict",
        }
    }
}

impl IntoResponse for GcError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({
            "message": self.to_string(),
            "code": self.code(),
            "status": status.as_u16(),
            "contextId": uuid::Uuid::new_v4().to_string(),
            "details": [],
            "errors": [],
        });
        (status, Json(body)).into_response()
    }
}
