//! The widget's files at `/widget/`, with the headers V2 needs to frame it.

use axum::http::{HeaderValue, header};
use tower::Layer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

/// Serves trunk's output; only the tenants' V2 hosts may frame it.
pub(super) fn service(
    state: std::sync::Arc<AppState>,
) -> tower_http::set_header::SetResponseHeader<
    ServeDir<ServeFile>,
    impl tower_http::set_header::MakeHeaderValue<
        axum::http::Response<tower_http::services::fs::ServeFileSystemResponseBody>,
    > + Clone,
> {
    let dir = &state.config.widget_dir;
    if !dir.join("index.html").exists() {
        tracing::warn!(dir = %dir.display(), "widget not built: /widget/ will answer 404 (run `cargo xtask demo`)");
    }
    let files = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
    // Made per response from the tenants served then, so a subscribed tenant configured while
    // the relay runs is framed by its V2 as soon as it is served.
    let csp = move |_: &axum::http::Response<_>| Some(frame_ancestors(&state));
    SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, csp).layer(files)
}

/// `frame-ancestors` with every tenant's V2 host origins: one page for every tenant, served
/// before anyone signs in, so every tenant's V2 may frame it.
fn frame_ancestors(state: &AppState) -> HeaderValue {
    let mut origins: Vec<String> = state
        .tenants
        .all()
        .iter()
        .flat_map(|t| t.config.host_origins.iter().cloned())
        .collect();
    origins.sort_unstable();
    origins.dedup();
    let ancestors = origins.join(" ");
    HeaderValue::from_str(&format!("frame-ancestors 'self' {ancestors}"))
        .unwrap_or_else(|_| HeaderValue::from_static("frame-ancestors 'self'"))
}
