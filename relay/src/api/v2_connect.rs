//! The rep connects V2 with their own sign-in (tenants in `oauth2` mode).
//!
//! - `POST /v1/agent/v2-connect` (form field `token` = the rep's agent JWT, posted by the widget
//!   into a new window, so the token never appears in a URL): 303 to the identity provider's
//!   authorize page with a PKCE challenge. Only the relay's own pages may post here (`Origin`),
//!   and the answer sets a cookie that binds the sign-in to this browser.
//! - `GET /v1/agent/v2-callback?code=..&state=..`: where the provider returns; in the browser
//!   holding that cookie, the relay exchanges the code, checks who signed in, and says, in a
//!   small page, that V2 is connected (or why not).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::sign_in::public_base;
use crate::authority::AuthMode;
use crate::state::AppState;

/// The cookie that ties a sign-in to the browser that started it; sent back only to the callback.
const BROWSER_COOKIE: &str = "cti_v2_connect";

/// A small page for the sign-in window, with text people can act on.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    super::browser::page(status, "v2-connect-result", title, text)
}

pub(super) async fn start(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    // The widget's form comes from the relay's own page; a form on any other site is refused,
    // so no page elsewhere can start a sign-in with a token it got hold of.
    let base = public_base(&state, &headers);
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if origin != Some(base.as_str()) {
        return page(
            StatusCode::FORBIDDEN,
            "Cannot connect V2",
            "Connect V2 from the widget's own button.",
        );
    }
    let token = body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "token").then(|| value.to_string())
    });
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Cannot connect V2",
            "The request carried no sign-in token. Start again from the widget.",
        );
    };
    let identity = match state.jwt.verify(&token).await {
        Ok(identity) => identity,
        Err(err) => {
            return page(
                StatusCode::UNAUTHORIZED,
                "Cannot connect V2",
                &format!("Your sign-in is not valid ({err}). Sign in to the widget again."),
            );
        }
    };
    let Some(tenant) = state
        .tenant(&identity.tenant)
        .filter(|t| t.auth == AuthMode::OAuth2)
    else {
        return page(
            StatusCode::NOT_FOUND,
            "Nothing to connect",
            "This tenant does not write to V2 with the reps' own sign-in.",
        );
    };
    let back = format!("{base}/v1/agent/v2-callback");
    let browser = crate::authority::Authority::browser_binding();
    match state
        .authority
        .authorize_url(&tenant.config.id, &identity.agent, &back, &browser)
    {
        Ok(url) => {
            let mut response = Redirect::to(&url).into_response();
            super::browser::set_binding_cookie(
                &mut response,
                BROWSER_COOKIE,
                &browser,
                "/v1/agent/v2-callback",
                base.starts_with("https://"),
            );
            response
        }
        Err(err) => {
            tracing::error!(%err, "cannot start a V2 sign-in");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cannot connect V2",
                &err.to_string(),
            )
        }
    }
}

pub(super) async fn callback(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(error) = query.get("error") {
        let detail = query
            .get("error_description")
            .map_or(String::new(), |d| format!(": {d}"));
        return page(
            StatusCode::BAD_REQUEST,
            "V2 not connected",
            &format!("The identity provider answered {error}{detail}."),
        );
    }
    let (Some(code), Some(sealed)) = (query.get("code"), query.get("state")) else {
        return page(
            StatusCode::BAD_REQUEST,
            "V2 not connected",
            "The identity provider's answer had no code or state. Start again from the widget.",
        );
    };
    let browser = super::browser::cookie(&headers, BROWSER_COOKIE);
    match state
        .authority
        .complete(code, sealed, browser.as_deref())
        .await
    {
        Ok((_, rep)) => {
            // Activities waiting for this rep's authority go now.
            state.activity.wake();
            page(
                StatusCode::OK,
                "V2 connected",
                &format!("V2 is connected for {rep}. You can close this window."),
            )
        }
        Err(err) => page(
            StatusCode::BAD_REQUEST,
            "V2 not connected",
            &err.to_string(),
        ),
    }
}
