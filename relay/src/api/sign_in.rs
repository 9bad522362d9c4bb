//! `GET /v1/agent/sign-in` and `GET /v1/admin/sign-in`: where a signed-out widget or admin page
//! sends its user; `GET /v1/sign-in/callback`: where XSUAA sends them back.
//!
//! With XSUAA configured (`CTI_SIGNIN_CLIENT_ID`, or an `xsuaa` binding) the relay signs them in
//! with the authorization code grant: it sends the browser to the zone's
//! `/oauth/authorize` with a sealed `state` and a cookie binding that state to this browser; at
//! the callback it checks both, exchanges the code ([`crate::authority::sign_in`]), checks the
//! token as every request's token is checked (for the admin page, the admin scope; its zone must
//! be the one the sign-in started at), and sends the browser to `/widget/#token=<jwt>` or
//! `/admin/#token=<jwt>`, where the page takes it from the fragment as it does from a host page.
//! The zone is the one configured, or, for a relay serving subscribers, the subdomain the
//! request's host names through `CTI_SAAS_TENANT_URL`.
//!
//! Without XSUAA, the relay redirects to the configured sign-in page (`CTI_SIGNIN_URL`, the
//! simulator's in the demo) with `redirect_uri=<this relay>/widget/` (or `/admin/`), and that page
//! returns the token in the fragment itself.
//!
//! The relay's own address is taken from the request (`Host`, and `X-Forwarded-Proto` behind the
//! Cloud Foundry router), since that is the address the browser used.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::browser;
use crate::authority::sealed_state::browser_binding;
use crate::authority::{SignInError, SignInPage};
use crate::identity::AuthError;
use crate::state::AppState;

/// Where XSUAA returns a sign-in, with its one-time `code` and `state`; the redirect URI
/// xs-security.json's `oauth2-configuration` must allow.
pub(super) const CALLBACK: &str = "/v1/sign-in/callback";

/// The cookie that ties a sign-in to the browser that started it; sent back only to the callback.
const BROWSER_COOKIE: &str = "cti_sign_in";

/// The `data-testid` of the paragraph of the sign-in's pages.
const RESULT: &str = "sign-in-result";

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
    start(&state, &headers, SignInPage::Widget).await
}

/// Starts a sign-in for `page`: through XSUAA when it is configured, else at `CTI_SIGNIN_URL`.
pub(super) async fn start(state: &AppState, headers: &HeaderMap, page: SignInPage) -> Response {
    if state.config.xsuaa_sign_in.is_none() {
        return redirect_to(state, headers, page.path());
    }
    let zone = match zone(state, headers).await {
        Ok(zone) => zone,
        Err(response) => return response,
    };
    let base = public_base(state, headers);
    let back = format!("{base}{CALLBACK}");
    let binding = browser_binding();
    match state.authority.sign_in_url(page, &zone, &back, &binding) {
        Ok(url) => {
            let mut response = Redirect::to(&url).into_response();
            browser::set_binding_cookie(
                &mut response,
                BROWSER_COOKIE,
                &binding,
                CALLBACK,
                base.starts_with("https://"),
            );
            response
        }
        Err(err) => {
            tracing::error!(%err, "cannot start a sign-in");
            browser::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                RESULT,
                "Cannot sign in",
                &err.to_string(),
            )
        }
    }
}

/// The identity zone this request signs in at: the configured one, or the subscriber's whose
/// subdomain the request's host names (a clear 400 for any other host).
async fn zone(state: &AppState, headers: &HeaderMap) -> Result<String, Response> {
    let settings = state.config.xsuaa_sign_in.as_ref();
    let by_host = settings.is_some_and(|s| s.zones_by_host);
    let (Some(saas), true) = (state.config.saas.as_ref(), by_host) else {
        return settings.and_then(|s| s.zone.clone()).ok_or_else(|| {
            browser::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                RESULT,
                "Cannot sign in",
                "no identity zone is configured (CTI_SIGNIN_ZONE)",
            )
        });
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let unknown = |why: String| {
        browser::page(
            StatusCode::BAD_REQUEST,
            RESULT,
            "Cannot sign in",
            &format!("{why}: open the CTI at the address your subscription shows."),
        )
    };
    let Some(subdomain) = saas.subdomain_of_host(host) else {
        let shown: String = host.chars().take(100).collect();
        return Err(unknown(format!(
            "this address ({shown}) is not a subscriber's"
        )));
    };
    let subscriptions = state.directory.list().await.map_err(|err| {
        browser::page(
            StatusCode::SERVICE_UNAVAILABLE,
            RESULT,
            "Cannot sign in",
            &format!("{err}; try again shortly."),
        )
    })?;
    if !subscriptions.iter().any(|s| s.subdomain == subdomain) {
        return Err(unknown(format!(
            "no subscriber has the subdomain {subdomain:?}"
        )));
    }
    Ok(subdomain)
}

/// XSUAA's error text as a page may show it: short, printable.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

pub(super) async fn callback(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let failed =
        |status: StatusCode, text: &str| browser::page(status, RESULT, "Not signed in", text);
    if let Some(error) = query.get("error") {
        let detail = query
            .get("error_description")
            .map_or(String::new(), |d| format!(": {}", shown(d)));
        return failed(
            StatusCode::BAD_REQUEST,
            &format!(
                "XSUAA answered {}{detail}. Ask your administrator for the CTI role, or sign in again.",
                shown(error)
            ),
        );
    }
    let (Some(code), Some(sealed)) = (query.get("code"), query.get("state")) else {
        return failed(
            StatusCode::BAD_REQUEST,
            "XSUAA's answer had no code or state. Open the CTI again to sign in.",
        );
    };
    let binding = browser::cookie(&headers, BROWSER_COOKIE);
    let signed_in = match state
        .authority
        .finish_sign_in(code, sealed, binding.as_deref())
        .await
    {
        Ok(signed_in) => signed_in,
        Err(err) => {
            let status = match &err {
                SignInError::NotConfigured => StatusCode::NOT_FOUND,
                SignInError::NoTokenKey | SignInError::Seal(_) | SignInError::AuthorizeUrl(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                SignInError::Unreachable(_) | SignInError::Failed(_) | SignInError::Answer(_) => {
                    StatusCode::BAD_GATEWAY
                }
                SignInError::InvalidState
                | SignInError::Expired
                | SignInError::OtherBrowser
                | SignInError::Refused(_) => StatusCode::BAD_REQUEST,
            };
            tracing::info!(%err, "a sign-in was refused");
            return failed(status, &err.to_string());
        }
    };
    let token = signed_in.token.expose();
    let checked = match signed_in.page {
        SignInPage::Widget => state.jwt.verify(token).await,
        SignInPage::Admin => {
            let scope = state.config.jwt.admin_scope();
            state.jwt.verify_scoped(token, &scope).await
        }
    };
    if let Err(err) = checked {
        tracing::info!(%err, "a sign-in's token was refused");
        let (status, text) = match &err {
            AuthError::MissingScope(_) | AuthError::MissingClientScope(_) => (
                StatusCode::FORBIDDEN,
                match signed_in.page {
                    SignInPage::Admin => format!(
                        "{err}: the admin page is for the tenant's administrators (the Admin role)."
                    ),
                    SignInPage::Widget => {
                        format!("{err}: the widget is for reps (the Agent role).")
                    }
                },
            ),
            err if err.is_transient() => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{err}. Sign in again shortly."),
            ),
            err => (
                StatusCode::UNAUTHORIZED,
                format!("XSUAA's token is not one this relay takes: {err}."),
            ),
        };
        return failed(status, &text);
    }
    // Zones sign their own tokens; the token must be of the zone the sign-in started at.
    if let Some(zone) = state.jwt.zone_of(token)
        && zone != signed_in.zone
    {
        tracing::warn!(started = %signed_in.zone, %zone, "a sign-in came back from another zone");
        return failed(
            StatusCode::UNAUTHORIZED,
            "XSUAA's token is of another zone than the sign-in started at. Open the CTI again to sign in.",
        );
    }
    let target = format!("{}#token={token}", signed_in.page.path());
    let mut response = (
        StatusCode::SEE_OTHER,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
        .into_response();
    match HeaderValue::from_str(&target) {
        Ok(location) => {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Err(_) => {
            return failed(
                StatusCode::BAD_GATEWAY,
                "XSUAA's token cannot be handed to the page.",
            );
        }
    }
    let secure = public_base(&state, &headers).starts_with("https://");
    browser::set_binding_cookie(&mut response, BROWSER_COOKIE, "", CALLBACK, secure);
    response
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
