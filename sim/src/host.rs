//! The V2 host stand-in: a page playing SAP Sales Cloud V2 Agent Desktop around the widget.
//!
//! V2 frames the CTI widget in a side-panel iframe and reacts to the CTI payloads the widget
//! posts to `window.parent`: on `NOTIFY` or `ACCEPT` it searches accounts, contacts and
//! individual customers by `ANI` and pops the match (or "Unknown Customer" when `ANI` is not
//! E.164 with a leading `+`). The stand-in page does the same in the browser and reports every
//! payload here, tagged with the page's id, so tests can tell which tab popped and how often.
//! Like Agent Desktop, the simulated V2 then keeps a phone call for the call under its
//! `ExternalReferenceID`, which the relay's activity finds and updates.
//!
//! A payload V2 would refuse is still logged, marked `refused` with the reason, so a test sees
//! it rather than a payload that silently went missing: an `ExternalReferenceID` (or
//! `ExternalOriginalReferenceID`) longer than 35 characters or with anything but letters and
//! digits (KBA 3481409 says so for the reference; that V2 refuses the whole payload rather than
//! storing it is inferred).
//!
//! Routes (the page and its assets are compiled in, so the binary needs no files next to it):
//!
//! - `GET /` and `GET /sim/host` redirect to `GET /sim/host/`, the page; `/sim/host/host.js`,
//!   `/sim/host/host.css` its assets.
//! - `GET /sim/host/config.json`: `{"relay_url","agent","tenant","agent_number","providers"}`,
//!   `providers` being `[{"name","tenant","calls"}]`: the telephony the page rings through (the
//!   first by default, another with `?provider=<name>`), the relay tenant that uses it (the
//!   widget signs in to that tenant) and the simulator's route that places its calls.
//! - `GET /sim/host/callers`: the tenant's sample callers `[{"label","number"}]`.
//! - `GET /sim/host/lookup?ani=+E164`: `{"ani","ani_ok","owners":[{"kind","id","display_id","name"}]}`,
//!   what V2 would pop for that ANI.
//! - `POST /sim/host/payloads` `{"page_id","payload",<"encoding">,<"page_received_ms">}` → 204;
//!   `GET` lists `[{"seq","page_id","received_at",<"page_received_ms">,"payload","ani_ok","encoding",
//!   <"refused">}]` in arrival order;
//!   `DELETE` empties the log (sequence numbers keep counting, so an old `seq` never reappears).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use cti_protocol::host::{MAX_REFERENCE_LEN, is_v2_reference};

use crate::Sim;
use crate::pbx::mask_number;

const INDEX_HTML: &str = include_str!("../../static/host/index.html");
const HOST_JS: &str = include_str!("../../static/host/host.js");
const HOST_CSS: &str = include_str!("../../static/host/host.css");

/// Payloads kept: far more than any test produces, few enough that a forgotten demo tab cannot
/// grow the process without bound.
const MAX_ENTRIES: usize = 10_000;
const MAX_PAGE_ID_LEN: usize = 100;

/// Everything the host routes can refuse, mapped to a response in [`IntoResponse`] below.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidQuery(String),
}

impl HostError {
    fn code(&self) -> &'static str {
        match self {
            HostError::MalformedJson(_) => "malformed_json",
            HostError::InvalidBody(_) => "invalid_body",
            HostError::InvalidQuery(_) => "invalid_query",
        }
    }
}

impl IntoResponse for HostError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

/// One CTI payload as a host page received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostPayload {
    /// 1, 2, 3, ... in arrival order across all pages.
    pub seq: u64,
    pub page_id: String,
    /// RFC 3339, the simulator's clock.
    pub received_at: String,
    /// When the page received the widget's `postMessage` (milliseconds since the Unix epoch, the
    /// browser's clock), as the page stamped it: the moment V2 would pop, without the page's
    /// report to the simulator in between (`cargo xtask bench pop` measures to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_received_ms: Option<u64>,
    /// The CTI parameters (`Type`, `EventType`, `Action`, `ANI`, ...) as the page decoded them.
    pub payload: Value,
    /// False when an `ANI` is present but not `+` followed by digits: V2 would not identify the
    /// caller from it.
    pub ani_ok: bool,
    /// How the widget encoded the message, as the page saw it: `object`, `json-string` or `xml`.
    pub encoding: Option<String>,
    /// Why V2 would refuse this payload; absent when it would take it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

#[derive(Debug, Default)]
struct LogInner {
    last_seq: u64,
    entries: VecDeque<HostPayload>,
}

/// Every CTI payload the stand-in pages received, in order.
#[derive(Debug, Default)]
pub struct HostLog {
    inner: Mutex<LogInner>,
}

impl HostLog {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock()
    }

    /// Appends a payload and returns it as stored.
    pub fn record(&self, page_id: &str, payload: Value, encoding: Option<String>) -> HostPayload {
        self.record_stamped(page_id, payload, encoding, None)
    }

    /// [`HostLog::record`], with the time the page stamped on receiving the payload.
    pub fn record_stamped(
        &self,
        page_id: &str,
        payload: Value,
        encoding: Option<String>,
        page_received_ms: Option<u64>,
    ) -> HostPayload {
        let ani_ok = match payload.get("ANI") {
            None | Some(Value::Null) => true,
            Some(Value::String(ani)) => is_e164(ani),
            Some(_) => false,
        };
        let refused = refusal(&payload);
        let mut inner = self.lock();
        inner.last_seq += 1;
        let entry = HostPayload {
            seq: inner.last_seq,
            page_id: page_id.to_string(),
            received_at: now_rfc3339(),
            page_received_ms,
            payload,
            ani_ok,
            encoding,
            refused,
        };
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.pop_front();
        }
        inner.entries.push_back(entry.clone());
        entry
    }

    /// Every payload still kept, oldest first.
    pub fn entries(&self) -> Vec<HostPayload> {
        self.lock().entries.iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().entries.clear();
    }
}

/// Why V2 would refuse the references of `payload`, if it would.
fn refusal(payload: &Value) -> Option<String> {
    ["ExternalReferenceID", "ExternalOriginalReferenceID"]
        .into_iter()
        .find_map(|key| match payload.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(reference)) if is_v2_reference(reference) => None,
            Some(other) => Some(format!(
                "{key} {other} is not 1 to {MAX_REFERENCE_LEN} letters and digits"
            )),
        })
}

/// `+` followed by digits only, the form V2's customer search needs.
pub fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The origin the widget iframe loads from, for the page's Content-Security-Policy.
fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/sim/host/") }))
        .route("/sim/host", get(|| async { Redirect::to("/sim/host/") }))
        .route("/sim/host/", get(index))
        .route("/sim/host/host.js", get(script))
        .route("/sim/host/host.css", get(style))
        .route("/sim/host/config.json", get(config))
        .route("/sim/host/callers", get(callers))
        .route("/sim/host/lookup", get(lookup))
        .route(
            "/sim/host/payloads",
            get(list_payloads).post(add_payload).delete(clear_payloads),
        )
}

async fn index(State(sim): State<Arc<Sim>>) -> Response {
    // Like V2's own CSP settings, only the configured widget origin may be framed: a widget
    // served from anywhere else fails here as it would in the tenant.
    // The relay's origin, and this one: the simulated identity provider that signs the rep in
    // inside the frame lives here (a tenant lists its identity provider the same way).
    let frame_src = origin_of(&sim.config.relay_public_url)
        .map(|relay| format!("{relay} 'self'"))
        .unwrap_or_else(|| "'none'".into());
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-src {frame_src}; object-src 'none'; base-uri 'none'"
    );
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (CACHE_CONTROL, "no-store".to_string()),
            (CONTENT_SECURITY_POLICY, csp),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        HOST_JS,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        HOST_CSS,
    )
        .into_response()
}

async fn config(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let c = &sim.config;
    let providers: Vec<Value> = c
        .providers
        .iter()
        .map(|p| {
            let calls = match p.name.as_str() {
                "generic" => "/sim/calls".to_string(),
                other => format!("/sim/{other}/calls"),
            };
            json!({"name": p.name, "tenant": p.tenant, "calls": calls})
        })
        .collect();
    Json(json!({
        "relay_url": c.relay_public_url.trim_end_matches('/'),
        "agent": c.demo_agent,
        "tenant": c.tenant,
        "agent_number": c.demo_agent_number,
        "providers": providers,
    }))
}

async fn callers(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.v2.sample_callers()).into_response()
}

async fn lookup(
    State(sim): State<Arc<Sim>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, HostError> {
    let Query(query) = query.map_err(|e| HostError::InvalidQuery(e.body_text()))?;
    let raw = query.get("ani").ok_or_else(|| {
        HostError::InvalidQuery("`ani` is required, e.g. ?ani=%2B41441234567".into())
    })?;
    // An unencoded `+` arrives as a space; that is a URL slip, not a different number.
    let ani = match raw.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
        _ => raw.trim().to_string(),
    };
    let ani_ok = is_e164(&ani);
    // V2 identifies callers only from E.164 ANIs; anything else is "Unknown Customer".
    let owners = if ani_ok {
        sim.v2.lookup_phone(&ani)
    } else {
        Vec::new()
    };
    tracing::debug!(ani = %mask_number(&ani), owners = owners.len(), "host lookup");
    Ok(Json(json!({"ani": ani, "ani_ok": ani_ok, "owners": owners})).into_response())
}

#[derive(Debug, Deserialize)]
struct NewPayload {
    #[serde(default)]
    page_id: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    page_received_ms: Option<u64>,
}

async fn add_payload(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<StatusCode, HostError> {
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        HostError::MalformedJson(format!("{e} (line {}, column {})", e.line(), e.column()))
    })?;
    let request: NewPayload = serde_json::from_value(value).map_err(|e| {
        HostError::InvalidBody(format!("expected {{\"page_id\",\"payload\"}}: {e}"))
    })?;
    let page_id = request
        .page_id
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty() && p.len() <= MAX_PAGE_ID_LEN && !p.chars().any(char::is_control))
        .ok_or_else(|| {
            HostError::InvalidBody(format!(
                "`page_id` must be 1 to {MAX_PAGE_ID_LEN} printable characters"
            ))
        })?;
    let payload = request
        .payload
        .filter(|p| !p.is_null())
        .ok_or_else(|| HostError::InvalidBody("`payload` is required".into()))?;
    let encoding = request.encoding.filter(|e| !e.is_empty() && e.len() <= 32);
    let entry = sim
        .host
        .record_stamped(&page_id, payload, encoding, request.page_received_ms);
    agent_desktop_logs(&sim, &entry);
    let field = |name: &str| {
        entry
            .payload
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_string()
    };
    tracing::info!(
        seq = entry.seq,
        page = %entry.page_id,
        action = %field("Action"),
        event_type = %field("EventType"),
        ani = %mask_number(&field("ANI")),
        ani_ok = entry.ani_ok,
        refused = entry.refused.as_deref().unwrap_or("-"),
        "host received a CTI payload"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// What Agent Desktop does with a call it is told about: it creates the phone call itself, under
/// the payload's `ExternalReferenceID` as `externalId.displayId` (KBA 3481409), so the relay
/// finds V2's own record rather than creating one. That this happens on the first `NOTIFY` or
/// `ACCEPT` of an inbound or outbound call, and not for a `TRANSFER` (which refers to the
/// original's record), is inferred.
fn agent_desktop_logs(sim: &Sim, entry: &HostPayload) {
    let field = |name: &str| entry.payload.get(name).and_then(Value::as_str);
    let announced = matches!(field("Action"), Some("NOTIFY" | "ACCEPT"))
        && matches!(field("EventType"), Some("INBOUND" | "OUTBOUND"));
    if entry.refused.is_none()
        && announced
        && let Some(reference) = field("ExternalReferenceID")
    {
        sim.v2.agent_desktop_call(reference);
    }
}

async fn list_payloads(State(sim): State<Arc<Sim>>) -> Json<Vec<HostPayload>> {
    Json(sim.host.entries())
}

async fn clear_payloads(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.host.clear();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_is_plus_and_digits() {
        assert!(is_e164("+41441234567"));
        assert!(!is_e164("41441234567"));
        assert!(!is_e164("+41 44 123 45 67"));
        assert!(!is_e164("+"));
    }

    #[test]
    fn a_reference_v2_would_not_take_is_recorded_as_refused() {
        let log = HostLog::default();
        let taken = log.record(
            "p1",
            json!({"Action": "NOTIFY", "ExternalReferenceID": "Xabc123",
                "ExternalOriginalReferenceID": "call42"}),
            None,
        );
        assert_eq!(taken.refused, None);
        let dashed = log.record(
            "p1",
            json!({"Action": "NOTIFY", "ExternalReferenceID": "call-42"}),
            None,
        );
        assert!(
            dashed
                .refused
                .as_deref()
                .is_some_and(|r| r.starts_with("ExternalReferenceID")),
            "{dashed:?}"
        );
        let long = log.record(
            "p1",
            json!({"Action": "NOTIFY", "ExternalReferenceID": "a".repeat(36)}),
            None,
        );
        assert!(long.refused.is_some());
        let original = log.record(
            "p1",
            json!({"Action": "NOTIFY", "ExternalReferenceID": "abc",
                "ExternalOriginalReferenceID": "call-42"}),
            None,
        );
        assert!(
            original
                .refused
                .as_deref()
                .is_some_and(|r| r.starts_with("ExternalOriginalReferenceID"))
        );
        assert_eq!(log.entries().len(), 4, "refused payloads are still logged");
    }

    #[test]
    fn origin_drops_the_path() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/widget/").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("not a url"), None);
    }
}
