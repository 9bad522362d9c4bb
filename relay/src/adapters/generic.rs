//! The generic provider: PBXs and integrations without a dedicated adapter.
//!
//! Its contract (the signed webhook body, the signed call controls and dial, the events that
//! confirm them) is public and written once, in the README's "Public contract" section; the body
//! type is [`cti_protocol::event::generic::Body`] and the signature
//! [`cti_protocol::signature`]. This module is that contract on the relay's side, and the
//! pattern for a dedicated provider (see [`super`] for the steps): its [`Settings`] are one arm
//! of [`super::TelephonySettings`], read from the tenant's `webhook_secret` and `control_url`
//! (`CTI_WEBHOOK_SECRET`, `CTI_CONTROL_URL` for a single tenant); the adapter owns them and the
//! shared HTTP client, and nothing of the tenant's beyond that.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use axum::http::Method;
use axum::http::header::CONTENT_TYPE;
use cti_protocol::event::generic::Body;
use cti_protocol::event::{EventType, TelephonyEvent};
use cti_protocol::signature;
use cti_protocol::ws::CallCommand;
use serde::Deserialize;
use serde_json::Value;

use super::{
    AdapterError, CommandError, Context, Inbound, Ingress, SettingsError, TelephonyAdapter,
    TenantFacts,
};
use crate::adapters::is_loopback;
use crate::calls::Leg;
use crate::clock::{SharedClock, instant};
use crate::secret::Secret;

/// Longest id, number or agent the relay accepts: generous for any provider, small enough that
/// nobody stores megabytes through a field.
const MAX_FIELD_LEN: usize = 256;

/// The demo's webhook secret: published in the README, so only for a V2 on this machine.
const DEMO_WEBHOOK_SECRET: &str = "demo-webhook-secret";

/// Until when webhooks signed the old way (an HMAC of the body alone, no `X-CTI-Timestamp`) are
/// still taken, unless the tenant sets `webhook_legacy_signatures_until`: six months after
/// timestamps came, so integrations have time to move (README, "Generic webhook").
pub const LEGACY_SIGNATURES_UNTIL: &str = "2027-06-30T00:00:00Z";

/// A tenant's generic PBX.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Signs the PBX's events, and the relay's call controls unless `controls_secret` is set.
    pub webhook_secret: Secret,
    /// Signs the relay's call controls, so the key a PBX checks commands with is not the one it
    /// signs events with (review F6): one leaked key then forges only one direction. Absent:
    /// `webhook_secret`, as before, for PBXes that check controls with the one secret.
    #[serde(default)]
    pub controls_secret: Option<Secret>,
    /// The secret `webhook_secret` replaces, during a rotation: events signed with it are still
    /// taken (with a warning), so the PBX may switch after the relay; the relay signs only with
    /// `webhook_secret`. Remove it once the PBX signs with the new one.
    #[serde(default)]
    pub webhook_secret_previous: Option<Secret>,
    /// Where the PBX takes call controls (`POST <url>/calls/{id}/commands`, `POST <url>/dial`).
    pub control_url: String,
    /// Until when (RFC 3339) this tenant's webhooks may still come signed the old way, without
    /// `X-CTI-Timestamp`; [`LEGACY_SIGNATURES_UNTIL`] when absent. A past time refuses them now.
    #[serde(default)]
    pub webhook_legacy_signatures_until: Option<String>,
}

impl Settings {
    /// The simulator's PBX at `sim_url`, with the demo's public secret.
    pub fn demo(sim_url: &str) -> Self {
        Settings {
            webhook_secret: Secret::new(DEMO_WEBHOOK_SECRET),
            webhook_secret_previous: None,
            controls_secret: None,
            control_url: format!("{sim_url}/sim/pbx"),
            webhook_legacy_signatures_until: None,
        }
    }

    /// Until when (Unix milliseconds) old-style signatures are taken; None: the setting is not
    /// an RFC 3339 time.
    fn legacy_until_ms(&self) -> Option<u64> {
        let at = instant(
            self.webhook_legacy_signatures_until
                .as_deref()
                .unwrap_or(LEGACY_SIGNATURES_UNTIL),
        )?;
        Some(u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
    }

    pub(super) fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        let TenantFacts { id, v2_url } = *tenant;
        let secrets = std::iter::once(("CTI_WEBHOOK_SECRET", &self.webhook_secret))
            .chain(
                self.webhook_secret_previous
                    .iter()
                    .map(|previous| ("CTI_WEBHOOK_SECRET_PREVIOUS", previous)),
            )
            .chain(
                self.controls_secret
                    .iter()
                    .map(|controls| ("CTI_CONTROLS_SECRET", controls)),
            );
        for (var, secret) in secrets {
            let secret = secret.expose();
            if secret == DEMO_WEBHOOK_SECRET && !is_loopback(v2_url) {
                return Err(SettingsError {
                    var,
                    problem: format!(
                        "tenant {id:?} talks to V2 at {v2_url} with the demo's webhook secret, \
                         which is public: anyone could post calls; set a secret of your own"
                    ),
                });
            }
            if secret.len() < 16 {
                return Err(SettingsError {
                    var,
                    problem: format!("tenant {id:?}: the secret must be at least 16 characters"),
                });
            }
        }
        // Review F6: a key of their own for call controls, so one leaked key forges only one
        // direction. Required once V2 or the PBX is off this machine; the demo and set-ups on
        // loopback keep signing controls with the webhook secret.
        let production = !is_loopback(v2_url) || !is_loopback(&self.control_url);
        match &self.controls_secret {
            None if production => {
                return Err(SettingsError {
                    var: "CTI_CONTROLS_SECRET",
                    problem: format!(
                        "tenant {id:?} (V2 at {v2_url}, PBX at {}): call controls need a key of \
                         their own (`controls_secret`), distinct from the webhook secret, when V2 \
                         or the PBX is not on this machine",
                        self.control_url
                    ),
                });
            }
            Some(controls)
                if controls.expose() == self.webhook_secret.expose()
                    || self
                        .webhook_secret_previous
                        .as_ref()
                        .is_some_and(|p| p.expose() == controls.expose()) =>
            {
                return Err(SettingsError {
                    var: "CTI_CONTROLS_SECRET",
                    problem: format!(
                        "tenant {id:?}: `controls_secret` must differ from the webhook secret \
                         (and its previous one), or a key leaked from one direction forges the other"
                    ),
                });
            }
            _ => {}
        }
        if self.legacy_until_ms().is_none() {
            return Err(SettingsError {
                var: "CTI_WEBHOOK_LEGACY_SIGNATURES_UNTIL",
                problem: format!(
                    "tenant {id:?}: webhook_legacy_signatures_until must be an RFC 3339 time \
                     such as 2027-06-30T00:00:00Z"
                ),
            });
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct GenericAdapter {
    settings: Settings,
    tenant: String,
    http: reqwest::Client,
    /// Signing times are checked, and given, on the relay's clock.
    clock: SharedClock,
    /// Until when old-style signatures are taken (Unix milliseconds); 0 refuses them.
    legacy_until_ms: u64,
    /// Whether an old-style signature was already reported in the log (once per process).
    legacy_seen: AtomicBool,
    /// Whether a signature with the previous secret was already reported (once per process).
    previous_seen: AtomicBool,
    /// When nothing remembers the events seen across a restart (no Redis): this process's
    /// start (Unix milliseconds). A request signed before it could be a replay the restart made
    /// possible, so it is refused; a PBX signs each delivery afresh, so its retries pass.
    forgets_before_ms: Option<u64>,
}

impl GenericAdapter {
    pub fn new(settings: Settings, context: Context) -> Self {
        // Start-up refused an unreadable time (`Settings::check`); failing closed otherwise.
        let legacy_until_ms = settings.legacy_until_ms().unwrap_or(0);
        GenericAdapter {
            settings,
            tenant: context.tenant,
            http: context.http,
            clock: context.clock,
            legacy_until_ms,
            legacy_seen: AtomicBool::new(false),
            previous_seen: AtomicBool::new(false),
            forgets_before_ms: context.forgets_before_ms,
        }
    }

    /// The key call controls are signed with: `controls_secret`, else the webhook secret.
    fn controls_secret(&self) -> &Secret {
        self.settings
            .controls_secret
            .as_ref()
            .unwrap_or(&self.settings.webhook_secret)
    }

    /// Refuses an event from before the replay window (review F5): its `at` (the event's own
    /// time, not the call's start: an `ended` of a long call is dated by its end) may be at most
    /// [`signature::WINDOW_SECS`] old, as a signature may. The time is in the signed body, so
    /// this also bounds a body-only signature (grace period) to the window. A time ahead of the
    /// clock is left to the signature's window.
    fn check_time(&self, event: &TelephonyEvent) -> Result<(), AdapterError> {
        let now_ms = self.clock.now_ms();
        // `parse_event` checked the form; an unreadable time would count as very old.
        let at_ms = instant(&event.at)
            .map(|at| at.unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(0);
        let age_secs = (i128::from(now_ms) - at_ms) / 1000;
        if age_secs > i128::from(signature::WINDOW_SECS) {
            return Err(AdapterError::InvalidEvent(format!(
                "field `at`: {:?} is {age_secs} s old; events older than {} s are refused as \
                 replays (send events as they happen)",
                event.at,
                signature::WINDOW_SECS
            )));
        }
        Ok(())
    }

    /// Refuses a request made before this process started when nothing remembers the events
    /// seen before it (see `forgets_before_ms`): dated by its signing time, or, for a body-only
    /// signature (grace period), which has none, by the event's `at`. A PBX signs each delivery
    /// afresh, so its retries pass; a body-only signer's retry of an event from before the
    /// restart does not, which is one more reason to send `X-CTI-Timestamp`.
    fn check_signed_after_start(
        &self,
        request: &Inbound<'_>,
        event: &TelephonyEvent,
    ) -> Result<(), AdapterError> {
        let Some(started_ms) = self.forgets_before_ms else {
            return Ok(());
        };
        let signed_ms = match request
            .headers
            .get(signature::TIMESTAMP_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(timestamp) => signature::parse_timestamp(timestamp)
                .map(|secs| i128::from(secs) * 1000 + 999)
                .unwrap_or(0),
            None => instant(&event.at)
                .map(|at| at.unix_timestamp_nanos() / 1_000_000)
                .unwrap_or(0),
        };
        if signed_ms < i128::from(started_ms) {
            return Err(AdapterError::SignedBeforeStart);
        }
        Ok(())
    }

    /// Checks the request's signature with the tenant's secret, else (during a rotation) the
    /// previous one; a request the previous secret signed is taken with a warning.
    fn authenticate(&self, request: &Inbound<'_>) -> Result<(), signature::SignatureError> {
        let current = self.authenticate_with(self.settings.webhook_secret.expose(), request);
        let (Err(signature::SignatureError::Mismatch), Some(previous)) =
            (&current, &self.settings.webhook_secret_previous)
        else {
            return current;
        };
        self.authenticate_with(previous.expose(), request)?;
        if !self.previous_seen.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                tenant = ?self.tenant,
                "webhook signed with the previous secret (webhook_secret_previous): taken during \
                 the rotation; remove the previous secret once the PBX signs with the new one"
            );
        }
        Ok(())
    }

    /// Checks the request's signature with `secret`: the timed one, or during the grace period
    /// the old one.
    fn authenticate_with(
        &self,
        secret: &str,
        request: &Inbound<'_>,
    ) -> Result<(), signature::SignatureError> {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        let now_ms = self.clock.now_ms();
        let signed = header(signature::HEADER);
        match header(signature::TIMESTAMP_HEADER) {
            Some(timestamp) => {
                signature::verify(secret, request.body, signed, Some(timestamp), now_ms / 1000)
            }
            None if request.headers.contains_key(signature::TIMESTAMP_HEADER) => {
                Err(signature::SignatureError::MalformedTimestamp)
            }
            None if now_ms < self.legacy_until_ms => {
                signature::verify_legacy(secret, request.body, signed)?;
                if !self.legacy_seen.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        tenant = ?self.tenant,
                        until = self.settings.webhook_legacy_signatures_until.as_deref().unwrap_or(LEGACY_SIGNATURES_UNTIL),
                        "webhook signed without X-CTI-Timestamp: taken during the grace period only; \
                         sign \"{{timestamp}}.{{body}}\" and send X-CTI-Timestamp"
                    );
                }
                Ok(())
            }
            None => Err(signature::SignatureError::MissingTimestamp),
        }
    }
}

/// Parses and validates a webhook body (already authenticated).
pub fn parse_event(body: &[u8]) -> Result<TelephonyEvent, AdapterError> {
    let value: Value = serde_json::from_slice(body).map_err(AdapterError::MalformedJson)?;
    if !value.is_object() {
        return Err(AdapterError::InvalidEvent(
            "the body must be one JSON object".into(),
        ));
    }
    if let Some(Value::String(found)) = value.get("type")
        && !EventType::ALL.contains(&found.as_str())
    {
        return Err(AdapterError::UnknownEventType {
            found: found.clone(),
            expected: EventType::ALL.join(", "),
        });
    }
    let event: Body = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            AdapterError::InvalidEvent(inner.to_string())
        } else {
            AdapterError::InvalidEvent(format!("field `{path}`: {inner}"))
        }
    })?;
    validate(&event)?;
    Ok(event.into())
}

fn validate(event: &Body) -> Result<(), AdapterError> {
    let required = [
        ("id", &event.id),
        ("call_id", &event.call_id),
        ("from", &event.from),
        ("to", &event.to),
        ("agent", &event.agent),
    ];
    for (name, value) in required {
        if value.trim().is_empty() {
            return Err(AdapterError::InvalidEvent(format!(
                "field `{name}` is empty"
            )));
        }
        if value.len() > MAX_FIELD_LEN {
            return Err(AdapterError::InvalidEvent(format!(
                "field `{name}` is longer than {MAX_FIELD_LEN} characters"
            )));
        }
    }
    time::OffsetDateTime::parse(&event.at, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            AdapterError::InvalidEvent(format!(
                "field `at`: {:?} is not an RFC 3339 timestamp ({e})",
                event.at
            ))
        })?;
    if event.event_type == EventType::Transferred
        && event
            .transfer_to
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
    {
        return Err(AdapterError::InvalidEvent(
            "field `transfer_to` is required for a `transferred` event".into(),
        ));
    }
    if let Some(url) = &event.recording_url
        && (!(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048)
    {
        return Err(AdapterError::InvalidEvent(
            "field `recording_url` must be an http(s) URL of at most 2048 characters".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl TelephonyAdapter for GenericAdapter {
    fn provider(&self) -> &'static str {
        "generic"
    }

    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
        if request.method != Method::POST {
            return Err(AdapterError::MethodNotAllowed(request.method.clone()));
        }
        let content_type = request
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            return Err(AdapterError::UnsupportedMediaType(content_type.to_string()));
        }
        self.authenticate(&request)?;
        let event = parse_event(request.body)?;
        self.check_time(&event)?;
        self.check_signed_after_start(&request, &event)?;
        Ok(Ingress::Events(vec![event]))
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        let mut body = serde_json::to_value(command).unwrap_or_default();
        if let Value::Object(map) = &mut body {
            map.insert("agent".into(), Value::String(call.agent.clone()));
            // Signed with the body, so a captured command cannot be aimed at another call.
            map.insert("call_id".into(), Value::String(call.id.clone()));
            map.insert("nonce".into(), Value::String(nonce()));
        }
        self.post(
            &["calls", call.id.as_str(), "commands"],
            &body,
            command.name(),
        )
        .await
        .map(drop)
    }

    async fn dial(&self, agent: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let body = serde_json::json!({"agent": agent, "to": e164, "nonce": nonce()});
        let answer = self.post(&["dial"], &body, "dial").await?;
        Ok(answer
            .get("call_id")
            .and_then(Value::as_str)
            .map(str::to_string))
    }
}

impl GenericAdapter {
    /// POSTs a signed JSON body to `<control_url>/<segments>`; the provider's JSON answer.
    async fn post(
        &self,
        segments: &[&str],
        body: &Value,
        action: &'static str,
    ) -> Result<Value, CommandError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let timestamp = self.clock.now_ms() / 1000;
        let mut url = reqwest::Url::parse(self.settings.control_url.trim_end_matches('/'))
            .map_err(|e| CommandError::Unreachable(format!("control URL is invalid: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| CommandError::Unreachable("control URL cannot take a path".into()))?
            .extend(segments);
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(signature::TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                signature::HEADER,
                signature::sign(self.controls_secret().expose(), timestamp, &bytes),
            )
            .body(bytes)
            .send()
            .await
            .map_err(|e| CommandError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(CommandError::Rejected {
            action,
            status: status.as_u16(),
            message,
        })
    }
}

/// A fresh value per control request, so a PBX can refuse a repeat within the signature's
/// window as well as after it.
fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::HeaderMap;

    use super::*;
    use crate::clock::Clock;

    const VALID: &str = r#"{"id":"evt-1","call_id":"call-1","type":"ringing","direction":"inbound",
        "from":"044 123 45 67","to":"+41 44 999 00 00","agent":"alice@example.com",
        "at":"2026-12-01T00:00:00Z"}"#;

    fn refused(body: &str) -> AdapterError {
        parse_event(body.as_bytes()).expect_err("rejected")
    }

    fn invalid(body: String) -> String {
        match refused(&body) {
            AdapterError::InvalidEvent(message) => message,
            other => panic!("not an invalid event: {other}"),
        }
    }

    #[test]
    fn valid_event_parses() {
        let e = parse_event(VALID.as_bytes()).expect("valid");
        assert_eq!(e.call_id, "call-1");
    }

    #[test]
    fn each_problem_is_named() {
        assert!(matches!(
            refused("{not json"),
            AdapterError::MalformedJson(_)
        ));
        assert!(matches!(refused("[1,2]"), AdapterError::InvalidEvent(_)));
        let e = refused(&VALID.replace("\"type\":\"ringing\"", "\"type\":\"exploded\""));
        assert!(matches!(e, AdapterError::UnknownEventType { .. }), "{e}");
        assert!(e.to_string().contains("exploded") && e.to_string().contains("ringing"));
        let e = invalid(VALID.replace("\"call_id\":\"call-1\",", ""));
        assert!(e.contains("call_id"), "{e}");
        let e = invalid(VALID.replace("\"agent\":\"alice@example.com\"", "\"agent\":5"));
        assert!(e.contains("field `agent`"), "{e}");
        let e = invalid(VALID.replace("2026-12-01T00:00:00Z", "yesterday"));
        assert!(e.contains("field `at`"), "{e}");
        let e = invalid(VALID.replace("\"id\":\"evt-1\"", "\"id\":\" \""));
        assert!(e.contains("field `id` is empty"), "{e}");
        let e = invalid(VALID.replace("\"ringing\"", "\"transferred\""));
        assert!(e.contains("transfer_to"), "{e}");
        let e = invalid(VALID.replace("}", ",\"extra\":1}"));
        assert!(e.contains("extra"), "{e}");
    }

    /// 2026-12-01T00:00:00Z: inside the default grace period for old-style signatures.
    const NOW_MS: u64 = 1_796_083_200_000;

    fn adapter_with(settings: Settings, clock: &crate::clock::ManualClock) -> GenericAdapter {
        GenericAdapter::new(
            settings,
            Context {
                tenant: "demo".into(),
                http: reqwest::Client::new(),
                clock: Arc::new(clock.clone()),
                forgets_before_ms: None,
            },
        )
    }

    fn adapter() -> GenericAdapter {
        adapter_with(
            Settings::demo("http://127.0.0.1:1"),
            &crate::clock::ManualClock::new(NOW_MS),
        )
    }

    fn receive_by(
        adapter: &GenericAdapter,
        method: Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Ingress, AdapterError> {
        futures_util::FutureExt::now_or_never(adapter.receive(Inbound {
            method: &method,
            headers,
            query: None,
            body,
        }))
        .expect("the generic adapter reads a request without waiting")
    }

    fn receive(method: Method, headers: &HeaderMap, body: &[u8]) -> Result<Ingress, AdapterError> {
        receive_by(&adapter(), method, headers, body)
    }

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "application/json; charset=utf-8".parse().expect("value"),
        );
        headers
    }

    /// Headers of a body signed at `at_secs` with the demo secret.
    fn signed_at(at_secs: u64, body: &[u8]) -> HeaderMap {
        let mut headers = json_headers();
        let signed = signature::sign(DEMO_WEBHOOK_SECRET, at_secs, body);
        headers.insert(signature::HEADER, signed.parse().expect("value"));
        headers.insert(
            signature::TIMESTAMP_HEADER,
            at_secs.to_string().parse().expect("value"),
        );
        headers
    }

    fn signature_error(result: Result<Ingress, AdapterError>) -> signature::SignatureError {
        match result {
            Err(AdapterError::Signature(err)) => err,
            other => panic!("not a signature refusal: {other:?}"),
        }
    }

    #[test]
    fn only_a_signed_json_post_is_an_event() {
        let body = VALID.as_bytes();
        let mut headers = HeaderMap::new();
        assert!(matches!(
            receive(Method::POST, &headers, body),
            Err(AdapterError::UnsupportedMediaType(_))
        ));
        headers.insert(
            CONTENT_TYPE,
            "application/json; charset=utf-8".parse().expect("value"),
        );
        assert!(matches!(
            receive(Method::POST, &headers, body),
            Err(AdapterError::Signature(signature::SignatureError::Missing))
        ));
        let headers = signed_at(NOW_MS / 1000, body);
        assert!(matches!(
            receive(Method::GET, &headers, body),
            Err(AdapterError::MethodNotAllowed(_))
        ));
        match receive(Method::POST, &headers, body) {
            Ok(Ingress::Events(events)) => assert_eq!(events[0].id, "evt-1"),
            other => panic!("not the event: {other:?}"),
        }
    }

    /// Review F5: a correctly signed event replayed ten minutes later (by the relay's clock) is
    /// refused as stale, not applied again.
    #[test]
    fn a_signed_event_is_taken_only_within_the_window_of_its_timestamp() {
        let body = VALID.as_bytes();
        let clock = crate::clock::ManualClock::new(NOW_MS);
        let adapter = adapter_with(Settings::demo("http://127.0.0.1:1"), &clock);
        let headers = signed_at(NOW_MS / 1000, body);
        assert!(receive_by(&adapter, Method::POST, &headers, body).is_ok());
        clock.advance_ms(signature::WINDOW_SECS * 1000);
        assert!(receive_by(&adapter, Method::POST, &headers, body).is_ok());
        clock.advance_ms(1000);
        assert_eq!(
            signature_error(receive_by(&adapter, Method::POST, &headers, body)),
            signature::SignatureError::Stale {
                skew_secs: signature::WINDOW_SECS as i64 + 1
            }
        );
        // A fresh timestamp on the old signature does not help: the time is signed.
        let mut moved = headers.clone();
        moved.insert(
            signature::TIMESTAMP_HEADER,
            (clock.now_ms() / 1000).to_string().parse().expect("value"),
        );
        assert_eq!(
            signature_error(receive_by(&adapter, Method::POST, &moved, body)),
            signature::SignatureError::Mismatch
        );
    }

    /// Review F5: an event whose own time (`at`) is older than the signature's window is
    /// refused with a 4xx naming `at`, however freshly it was signed: a capture re-signed by
    /// nobody cannot be played again later, and a body-only signature (grace period) is bounded
    /// by it too. An `ended` of a long call is dated by its end, so it passes.
    #[test]
    fn an_event_older_than_the_window_is_refused_naming_the_field_at() {
        let clock = crate::clock::ManualClock::new(NOW_MS);
        let adapter = adapter_with(Settings::demo("http://127.0.0.1:1"), &clock);
        let ended_at = |at: &str| {
            VALID
                .replace("\"ringing\"", "\"ended\"")
                .replace("2026-12-01T00:00:00Z", at)
        };
        let now_secs = NOW_MS / 1000;
        let on_time = ended_at("2026-11-30T23:55:00Z");
        let headers = signed_at(now_secs, on_time.as_bytes());
        assert!(
            receive_by(&adapter, Method::POST, &headers, on_time.as_bytes()).is_ok(),
            "exactly the window old"
        );
        for body in [
            ended_at("2026-11-30T23:54:59Z"),
            ended_at("2026-11-24T10:00:00Z"),
        ] {
            let headers = signed_at(now_secs, body.as_bytes());
            match receive_by(&adapter, Method::POST, &headers, body.as_bytes()) {
                Err(AdapterError::InvalidEvent(message)) => {
                    assert!(message.starts_with("field `at`"), "{message}")
                }
                other => panic!("not refused for its time: {other:?}"),
            }
        }
        // A body-only signature is held to the same bound.
        let old = ended_at("2026-11-30T23:50:00Z");
        let mut headers = json_headers();
        let legacy = signature::sign_legacy(DEMO_WEBHOOK_SECRET, old.as_bytes());
        headers.insert(signature::HEADER, legacy.parse().expect("value"));
        assert!(matches!(
            receive_by(&adapter, Method::POST, &headers, old.as_bytes()),
            Err(AdapterError::InvalidEvent(message)) if message.starts_with("field `at`")
        ));
    }

    /// Review F5: a relay that remembers no event across a restart (no Redis) refuses what was
    /// signed before it started, so a whole call captured before the restart cannot be played
    /// again within its window; a delivery signed afresh passes. A body-only signature is dated
    /// by its `at`. With a memory of events, the window is the only bound.
    #[test]
    fn without_a_memory_of_events_what_was_signed_before_the_start_is_refused() {
        let clock = crate::clock::ManualClock::new(NOW_MS);
        let started = GenericAdapter::new(
            Settings::demo("http://127.0.0.1:1"),
            Context {
                tenant: "demo".into(),
                http: reqwest::Client::new(),
                clock: Arc::new(clock.clone()),
                forgets_before_ms: Some(NOW_MS),
            },
        );
        let body = VALID.as_bytes();
        let before = signed_at(NOW_MS / 1000 - 1, body);
        assert!(matches!(
            receive_by(&started, Method::POST, &before, body),
            Err(AdapterError::SignedBeforeStart)
        ));
        assert!(
            receive_by(
                &adapter_with(Settings::demo("unused"), &clock),
                Method::POST,
                &before,
                body
            )
            .is_ok(),
            "remembered events: the window alone"
        );
        assert!(
            receive_by(
                &started,
                Method::POST,
                &signed_at(NOW_MS / 1000, body),
                body
            )
            .is_ok()
        );

        let mut legacy = json_headers();
        let old = VALID.replace("2026-12-01T00:00:00Z", "2026-11-30T23:59:59Z");
        let signed = signature::sign_legacy(DEMO_WEBHOOK_SECRET, old.as_bytes());
        legacy.insert(signature::HEADER, signed.parse().expect("value"));
        assert!(matches!(
            receive_by(&started, Method::POST, &legacy, old.as_bytes()),
            Err(AdapterError::SignedBeforeStart)
        ));
        let signed = signature::sign_legacy(DEMO_WEBHOOK_SECRET, body);
        legacy.insert(signature::HEADER, signed.parse().expect("value"));
        assert!(receive_by(&started, Method::POST, &legacy, body).is_ok());
    }

    /// Secret rotation: with `webhook_secret_previous` set, events signed with the previous
    /// secret are taken beside those signed with the new one (still within the time window);
    /// without it, or with a third secret, they are refused.
    #[test]
    fn during_a_rotation_the_previous_webhook_secret_is_still_taken() {
        const NEW_SECRET: &str = "the-new-secret-of-this-tenant";
        let body = VALID.as_bytes();
        let signed_with = |secret: &str, at_secs: u64| {
            let mut headers = signed_at(at_secs, body);
            let signed = signature::sign(secret, at_secs, body);
            headers.insert(signature::HEADER, signed.parse().expect("value"));
            headers
        };
        let now_secs = NOW_MS / 1000;
        let clock = crate::clock::ManualClock::new(NOW_MS);
        let mut settings = Settings::demo("http://127.0.0.1:1");
        settings.webhook_secret = Secret::new(NEW_SECRET);
        let rotated = adapter_with(settings.clone(), &clock);
        assert_eq!(
            signature_error(receive_by(
                &rotated,
                Method::POST,
                &signed_with(DEMO_WEBHOOK_SECRET, now_secs),
                body
            )),
            signature::SignatureError::Mismatch,
            "no previous secret configured"
        );

        settings.webhook_secret_previous = Some(Secret::new(DEMO_WEBHOOK_SECRET));
        let rotating = adapter_with(settings, &clock);
        for secret in [NEW_SECRET, DEMO_WEBHOOK_SECRET] {
            let headers = signed_with(secret, now_secs);
            assert!(
                receive_by(&rotating, Method::POST, &headers, body).is_ok(),
                "{secret}"
            );
        }
        assert_eq!(
            signature_error(receive_by(
                &rotating,
                Method::POST,
                &signed_with("a-third-secret-nobody-set", now_secs),
                body
            )),
            signature::SignatureError::Mismatch
        );
        let late = now_secs - signature::WINDOW_SECS - 1;
        assert!(
            matches!(
                signature_error(receive_by(
                    &rotating,
                    Method::POST,
                    &signed_with(DEMO_WEBHOOK_SECRET, late),
                    body
                )),
                signature::SignatureError::Stale { .. }
            ),
            "the previous secret is held to the same window"
        );
    }

    #[test]
    fn a_previous_webhook_secret_is_checked_like_the_secret() {
        let facts = TenantFacts {
            id: "acme",
            v2_url: "https://acme.crm.cloud.sap",
        };
        let mut settings = Settings::demo("http://127.0.0.1:1");
        settings.webhook_secret = Secret::new("the-new-secret-of-acme");
        settings.controls_secret = Some(Secret::new("the-controls-key-of-acme"));
        assert!(settings.check(&facts).is_ok());
        settings.webhook_secret_previous = Some(Secret::new("short"));
        let err = settings.check(&facts).expect_err("too short");
        assert_eq!(err.var, "CTI_WEBHOOK_SECRET_PREVIOUS");
        settings.webhook_secret_previous = Some(Secret::new(DEMO_WEBHOOK_SECRET));
        let err = settings.check(&facts).expect_err("the public demo secret");
        assert_eq!(err.var, "CTI_WEBHOOK_SECRET_PREVIOUS");
        settings.webhook_secret_previous = Some(Secret::new("the-old-secret-of-acme"));
        assert!(settings.check(&facts).is_ok());
    }

    /// Old-style signatures (no timestamp) are taken until the grace period ends, the default
    /// one or the tenant's own, and never after.
    #[test]
    fn old_style_signatures_are_taken_only_during_the_grace_period() {
        let body = VALID.as_bytes();
        let mut headers = json_headers();
        let legacy = signature::sign_legacy(DEMO_WEBHOOK_SECRET, body);
        headers.insert(signature::HEADER, legacy.parse().expect("value"));

        let clock = crate::clock::ManualClock::new(NOW_MS);
        let adapter = adapter_with(Settings::demo("http://127.0.0.1:1"), &clock);
        assert!(receive_by(&adapter, Method::POST, &headers, body).is_ok());
        let end = instant(LEGACY_SIGNATURES_UNTIL).expect("a time");
        let end_ms = u64::try_from(end.unix_timestamp()).expect("after 1970") * 1000;
        clock.advance_ms(end_ms - clock.now_ms());
        assert_eq!(
            signature_error(receive_by(&adapter, Method::POST, &headers, body)),
            signature::SignatureError::MissingTimestamp
        );

        let mut settings = Settings::demo("http://127.0.0.1:1");
        settings.webhook_legacy_signatures_until = Some("2026-11-30T00:00:00Z".into());
        let strict = adapter_with(settings, &crate::clock::ManualClock::new(NOW_MS));
        assert_eq!(
            signature_error(receive_by(&strict, Method::POST, &headers, body)),
            signature::SignatureError::MissingTimestamp
        );
        let mut headers = headers;
        headers.insert(signature::TIMESTAMP_HEADER, "soon".parse().expect("value"));
        assert_eq!(
            signature_error(receive_by(&strict, Method::POST, &headers, body)),
            signature::SignatureError::MalformedTimestamp
        );
    }

    #[test]
    fn an_unreadable_grace_period_is_refused_at_start_up() {
        let mut settings = Settings::demo("http://127.0.0.1:1");
        settings.webhook_legacy_signatures_until = Some("next summer".into());
        let facts = TenantFacts {
            id: "demo",
            v2_url: "http://127.0.0.1:2",
        };
        let err = settings.check(&facts).expect_err("refused");
        assert_eq!(err.var, "CTI_WEBHOOK_LEGACY_SIGNATURES_UNTIL");
    }

    /// Review F6: what the relay sends the PBX names the call, a nonce and the time, all under
    /// the signature, so a captured command neither works for another call nor later.
    /// Review F6: with `controls_secret` set, call controls are signed with it, not with the
    /// webhook secret the PBX signs its events with; a previous webhook secret plays no part.
    #[tokio::test]
    async fn call_controls_are_signed_with_their_own_key_when_one_is_set() {
        const CONTROLS: &str = "the-controls-key-of-this-tenant";
        type Seen = Arc<parking_lot::Mutex<Vec<(HeaderMap, Vec<u8>)>>>;
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let app =
            axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    record.lock().push((headers, body.to_vec()));
                    axum::Json(serde_json::json!({"call_id": "out-1"}))
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let clock = crate::clock::ManualClock::new(NOW_MS);
        let mut settings = Settings::demo("unused");
        settings.control_url = url;
        settings.controls_secret = Some(Secret::new(CONTROLS));
        settings.webhook_secret_previous = Some(Secret::new("the-old-webhook-secret"));
        let adapter = adapter_with(settings, &clock);
        let leg = crate::calls::leg::fixtures::ringing("call-a", "alice@example.com");
        adapter
            .command(&leg, &CallCommand::Hangup)
            .await
            .expect("taken");
        adapter
            .dial("alice@example.com", "+41441234567")
            .await
            .expect("taken");
        server.abort();

        let seen = seen.lock().clone();
        assert_eq!(seen.len(), 2);
        for (headers, body) in &seen {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            let verify = |key: &str| {
                signature::verify(
                    key,
                    body,
                    header(signature::HEADER),
                    header(signature::TIMESTAMP_HEADER),
                    NOW_MS / 1000,
                )
            };
            verify(CONTROLS).expect("signed with the controls key");
            assert_eq!(
                verify(DEMO_WEBHOOK_SECRET),
                Err(signature::SignatureError::Mismatch),
                "not with the webhook secret"
            );
        }
    }

    /// Review F6: once V2 or the PBX is off this machine, a generic tenant needs a controls
    /// key, and one distinct from its webhook secrets; the demo and loopback set-ups do not.
    #[test]
    fn off_this_machine_call_controls_need_a_key_of_their_own() {
        let real = TenantFacts {
            id: "acme",
            v2_url: "https://acme.crm.cloud.sap",
        };
        let local = TenantFacts {
            id: "demo",
            v2_url: "http://127.0.0.1:8090",
        };
        assert!(
            Settings::demo("http://127.0.0.1:8090")
                .check(&local)
                .is_ok()
        );
        let mut settings = Settings::demo("http://127.0.0.1:1");
        settings.webhook_secret = Secret::new("the-webhook-secret-of-acme");
        settings.webhook_secret_previous = Some(Secret::new("the-old-webhook-secret-of-acme"));
        let err = settings.check(&real).expect_err("no controls key");
        assert_eq!(err.var, "CTI_CONTROLS_SECRET");
        assert!(err.problem.contains("controls_secret"), "{}", err.problem);
        let mut remote_pbx = settings.clone();
        remote_pbx.control_url = "https://pbx.acme.example".into();
        let err = remote_pbx.check(&local).expect_err("the PBX is elsewhere");
        assert_eq!(err.var, "CTI_CONTROLS_SECRET");
        for same in [
            "the-webhook-secret-of-acme",
            "the-old-webhook-secret-of-acme",
        ] {
            settings.controls_secret = Some(Secret::new(same));
            let err = settings.check(&real).expect_err(same);
            assert_eq!(err.var, "CTI_CONTROLS_SECRET");
            assert!(err.problem.contains("differ"), "{}", err.problem);
            assert!(settings.check(&local).is_err(), "not even on this machine");
        }
        settings.controls_secret = Some(Secret::new("the-controls-key-of-acme"));
        assert!(settings.check(&real).is_ok());
    }

    #[test]
    fn a_controls_secret_is_checked_like_the_webhook_secret() {
        let facts = TenantFacts {
            id: "acme",
            v2_url: "https://acme.crm.cloud.sap",
        };
        let mut settings = Settings::demo("http://127.0.0.1:1");
        settings.webhook_secret = Secret::new("the-new-secret-of-acme");
        for bad in ["short", DEMO_WEBHOOK_SECRET] {
            settings.controls_secret = Some(Secret::new(bad));
            let err = settings.check(&facts).expect_err(bad);
            assert_eq!(err.var, "CTI_CONTROLS_SECRET", "{bad}");
        }
        settings.controls_secret = Some(Secret::new("the-controls-key-of-acme"));
        assert!(settings.check(&facts).is_ok());
    }

    #[tokio::test]
    async fn call_controls_sign_the_call_a_nonce_and_the_time() {
        use parking_lot::Mutex;

        type Seen = Arc<Mutex<Vec<(String, HeaderMap, Vec<u8>)>>>;
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    record
                        .lock()
                        .push((uri.path().to_string(), headers, body.to_vec()));
                    axum::Json(serde_json::json!({"call_id": "out-1"}))
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let clock = crate::clock::ManualClock::new(NOW_MS);
        let mut settings = Settings::demo("unused");
        settings.control_url = url;
        let adapter = adapter_with(settings, &clock);
        let leg = crate::calls::leg::fixtures::ringing("call-a", "alice@example.com");
        adapter
            .command(&leg, &CallCommand::Hangup)
            .await
            .expect("taken");
        adapter
            .command(&leg, &CallCommand::Hangup)
            .await
            .expect("taken");
        adapter
            .dial("alice@example.com", "+41441234567")
            .await
            .expect("taken");
        server.abort();

        let seen = seen.lock().clone();
        assert_eq!(seen.len(), 3);
        let mut nonces = Vec::new();
        for (path, headers, body) in &seen {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            assert_eq!(
                header(signature::TIMESTAMP_HEADER),
                Some((NOW_MS / 1000).to_string().as_str())
            );
            signature::verify(
                DEMO_WEBHOOK_SECRET,
                body,
                header(signature::HEADER),
                header(signature::TIMESTAMP_HEADER),
                NOW_MS / 1000,
            )
            .unwrap_or_else(|e| panic!("{path}: {e}"));
            let body: Value = serde_json::from_slice(body).expect("JSON");
            nonces.push(body["nonce"].as_str().expect("a nonce").to_string());
            if path.ends_with("/commands") {
                assert_eq!(path, "/calls/call-a/commands");
                assert_eq!(body["call_id"], "call-a");
                assert_eq!(body["action"], "hangup");
                assert_eq!(body["agent"], "alice@example.com");
            } else {
                assert_eq!(path, "/dial");
                assert_eq!(body["to"], "+41441234567");
            }
        }
        nonces.sort();
        nonces.dedup();
        assert_eq!(nonces.len(), 3, "every request has its own nonce");
    }
}
