//! What the pages a browser is sent through during a sign-in share: a small page that says
//! what happened, and the cookie that binds a sign-in to the browser that started it.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// A small page with text people can act on; `testid` names its paragraph for the browser
/// tests.
pub(super) fn page(status: StatusCode, testid: &str, title: &str, text: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{}</title>\
         <body style=\"font-family:sans-serif;margin:2rem\"><h1>{}</h1><p data-testid=\"{}\">{}</p></body></html>",
        escape(title),
        escape(title),
        escape(testid),
        escape(text)
    );
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        Html(body),
    )
        .into_response()
}

/// The value of the cookie `name` in a request, if present.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// Sets the browser-binding cookie `name` on `response`, sent back only to `path` for ten
/// minutes (a sign-in's time), never to scripts; `Secure` when the relay is reached over
/// https. Lax: the identity provider's redirect back is a top-level navigation, which carries
/// it. An empty `value` removes it.
pub(super) fn set_binding_cookie(
    response: &mut Response,
    name: &str,
    value: &str,
    path: &str,
    secure: bool,
) {
    let max_age = if value.is_empty() { 0 } else { 600 };
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}
