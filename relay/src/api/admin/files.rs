//! The admin page's files at `/admin/`: trunk's output, framed by nobody.

use axum::http::{HeaderValue, header};
use tower::Layer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::{SetResponseHeader, SetResponseHeaderLayer};

use crate::state::AppState;

/// Serves the built page, with `index.html` for every path it does not have (the page routes
/// in the browser). Unlike the widget, no V2 window frames it: it changes a tenant's settings,
/// so clickjacking is kept out with `frame-ancestors 'none'`.
pub(in crate::api) fn service(
    state: &AppState,
) -> SetResponseHeader<ServeDir<ServeFile>, HeaderValue> {
    let dir = &state.config.admin_dir;
    if !dir.join("index.html").exists() {
        tracing::warn!(dir = %dir.display(), "admin page not built: /admin/ will answer 404 (build admin/ with trunk)");
    }
    let files = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
    SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    )
    .layer(files)
}
