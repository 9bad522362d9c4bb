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
    AdapterError, CommandError, Inbound, Ingress, SettingsError, TelephonyAdapter, TenantFacts,
};
use crate::adapters::is_loopback;
use crate::calls::Leg;
use crate::secret::Secret;

/// Longest id, number or agent the relay accepts: generous for any provider, small enough that
/// nobody stores megabytes through a field.
const MAX_FIELD_LEN: usize = 256;

/// The demo's webhook secret: published in the README, so only for a V2 on this machine.
const DEMO_WEBHOOK_SECRET: &str = "demo-webhook-secret";

/// A tenant's generic PBX.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Signs both ways: the PBX's events and the relay's call controls.
    pub webhook_secret: Secret,
    /// Where the PBX takes call controls (`POST <url>/calls/{id}/commands`, `POST <url>/dial`).
    pub control_url: String,
}

impl Settings {
    /// The simulator's PBX at `sim_url`, with the demo's public secret.
    pub fn demo(sim_url: &str) -> Self {
        Settings {
            webhook_secret: Secret::new(DEMO_WEBHOOK_SECRET),
            control_url: format!("{sim_url}/sim/pbx"),
        }
    }

    pub(super) fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        let TenantFacts { id, v2_url } = *tenant;
        let secret = self.webhook_secret.expose();
        if secret == DEMO_WEBHOOK_SECRET && !is_loopback(v2_url) {
            return Err(SettingsError {
                var: "CTI_WEBHOOK_SECRET",
                problem: format!(
                    "tenant {id:?} talks to V2 at {v2_url} with the demo's webhook secret, which \
                     is public: anyone could post calls; set a secret of your own"
                ),
            });
        }
        if secret.len() < 16 {
            return Err(SettingsError {
                var: "CTI_WEBHOOK_SECRET",
                problem: format!("tenant {id:?}: the secret must be at least 16 characters"),
            });
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct GenericAdapter {
    settings: Settings,
    http: reqwest::Client,
}

impl GenericAdapter {
    pub fn new(settings: Settings, http: reqwest::Client) -> Self {
        GenericAdapter { settings, http }
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
        let header = request
            .headers
            .get(signature::HEADER)
            .and_then(|v| v.to_str().ok());
        signature::verify(self.settings.webhook_secret.expose(), request.body, header)?;
        Ok(Ingress::Events(vec![parse_event(request.body)?]))
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        let mut body = serde_json::to_value(command).unwrap_or_default();
        if let Value::Object(map) = &mut body {
            map.insert("agent".into(), Value::String(call.agent.clone()));
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
        let body = serde_json::json!({"agent": agent, "to": e164});
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
        let mut url = reqwest::Url::parse(self.settings.control_url.trim_end_matches('/'))
            .map_err(|e| CommandError::Unreachable(format!("control URL is invalid: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| CommandError::Unreachable("control URL cannot take a path".into()))?
            .extend(segments);
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(
                signature::HEADER,
                signature::sign(self.settings.webhook_secret.expose(), &bytes),
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    const VALID: &str = r#"{"id":"evt-1","call_id":"call-1","type":"ringing","direction":"inbound",
        "from":"044 123 45 67","to":"+41 44 999 00 00","agent":"alice@example.com",
        "at":"2026-11-24T10:00:00Z"}"#;

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
        let e = invalid(VALID.replace("2026-11-24T10:00:00Z", "yesterday"));
        assert!(e.contains("field `at`"), "{e}");
        let e = invalid(VALID.replace("\"id\":\"evt-1\"", "\"id\":\" \""));
        assert!(e.contains("field `id` is empty"), "{e}");
        let e = invalid(VALID.replace("\"ringing\"", "\"transferred\""));
        assert!(e.contains("transfer_to"), "{e}");
        let e = invalid(VALID.replace("}", ",\"extra\":1}"));
        assert!(e.contains("extra"), "{e}");
    }

    fn adapter() -> GenericAdapter {
        GenericAdapter::new(Settings::demo("http://127.0.0.1:1"), reqwest::Client::new())
    }

    fn receive(method: Method, headers: &HeaderMap, body: &[u8]) -> Result<Ingress, AdapterError> {
        futures_util::FutureExt::now_or_never(adapter().receive(Inbound {
            method: &method,
            headers,
            query: None,
            body,
        }))
        .expect("the generic adapter reads a request without waiting")
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
        let signed = signature::sign(DEMO_WEBHOOK_SECRET, body);
        headers.insert(signature::HEADER, signed.parse().expect("value"));
        assert!(matches!(
            receive(Method::GET, &headers, body),
            Err(AdapterError::MethodNotAllowed(_))
        ));
        match receive(Method::POST, &headers, body) {
            Ok(Ingress::Events(events)) => assert_eq!(events[0].id, "evt-1"),
            other => panic!("not the event: {other:?}"),
        }
    }
}
