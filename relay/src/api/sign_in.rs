//! `GET /v1/agent/sign-in`: where a signed-out widget sends the rep.
//!
//! The relay redirects to the configured identity provider's sign-in page with
//! `redirect_uri=<this relay>/widget/`; the provider signs the rep in and returns to the widget with
//! a token in the URL fragment, which the widget takes from there as it does from the host page.
//! The relay's own address is taken from the request (`Host`, and `X-Forwarded-Proto` behind the
//! Cloud Foundry router), since that is the address the browser used.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::state::AppState;

/// This relay's address as the browser used it: `Host`, and `X-Forwarded-Proto` behind the Cloud
/// Foundry router.
pub(super) fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
        })
        .map(str::to_string)
        .unwrap_or_else(|| state.config.listen.to_string());
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

pub(super) async fn redirect(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    redirect_to(&state, &headers, "/widget/")
}

/// To the sign-in page, returning to `path` on this relay (the widget, or the admin page).
pub(super) fn redirect_to(state: &AppState, headers: &HeaderMap, path: &str) -> Response {
    let Some(signin) = state.config.signin_url.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "sign_in_not_configured",
                "message": "no sign-in page is configured (CTI_SIGNIN_URL)"}})),
        )
            .into_response();
    };
    let back = format!("{}{path}", public_base(state, headers));
    match reqwest::Url::parse_with_params(signin, &[("redirect_uri", back.as_str())]) {
        Ok(target) => Redirect::to(target.as_str()).into_response(),
        Err(err) => {
            tracing::error!(%err, "CTI_SIGNIN_URL is not a URL");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"error": {"code": "sign_in_misconfigured",
                    "message": "the configured sign-in page is not a URL"}})),
            )
                .into_response()
        }
    }
}
