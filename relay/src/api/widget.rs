//! The widget's files at `/widget/`, with the headers V2 needs to frame it.

use axum::http::{HeaderValue, header};
use tower::Layer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

/// Serves trunk's output; only the configured V2 hosts may frame it.
pub(super) fn service(
    state: &AppState,
) -> tower_http::set_header::SetResponseHeader<ServeDir<ServeFile>, HeaderValue> {
    let dir = &state.config.widget_dir;
    if !dir.join("index.html").exists() {
        tracing::warn!(dir = %dir.display(), "widget not built: /widget/ will answer 404 (run `cargo xtask demo`)");
    }
    // One page for every tenant, served before anyone signs in: every tenant's V2 may frame it.
    // Read once, when the routes are built: a tenant subscribed later is framed only from the
    // origins known at start (see docs/security.md, "SaaS subscriptions").
    let mut origins: Vec<String> = state
        .tenants
        .all()
        .iter()
        .flat_map(|t| t.config.host_origins.iter().cloned())
        .collect();
    origins.sort_unstable();
    origins.dedup();
    let ancestors = origins.join(" ");
    let csp = HeaderValue::from_str(&format!("frame-ancestors 'self' {ancestors}"))
        .unwrap_or_else(|_| HeaderValue::from_static("frame-ancestors 'self'"));
    let files = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
    SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, csp).layer(files)
}
