//! The generic provider: PBXs and integrations without a dedicated adapter.
//!
//! Inbound: `POST /v1/tenants/{tenant}/telephony/generic` with one normalized event as JSON,
//! signed `X-CTI-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the tenant's webhook
//! secret.
//!
//! Outbound call controls: `POST <control_url>/calls/{call_id}/commands` with
//! `{"action":"answer"|"decline"|"hold"|"resume"|"hangup"|"transfer","target"?:..,"agent":..}`,
//! signed the same way. The PBX answers 2xx when it accepts the command and then reports the new
//! state through the webhook.

use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use cti_protocol::event::{EventType, TelephonyEvent};
use cti_protocol::signature;
use cti_protocol::ws::CallCommand;

use crate::calls::Leg;
use serde_json::Value;

use super::{CommandError, TelephonyAdapter};
use crate::config::TenantConfig;
use crate::error::ApiError;

/// Longest id, number or agent the relay accepts: generous for any provider, small enough that
/// nobody stores megabytes through a field.
const MAX_FIELD_LEN: usize = 256;

#[derive(Debug)]
pub struct GenericAdapter {
    http: reqwest::Client,
}

impl Default for GenericAdapter {
    fn default() -> Self {
        GenericAdapter {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }
}

/// Parses and validates a normalized event body (already authenticated).
pub fn parse_event(body: &[u8]) -> Result<TelephonyEvent, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::MalformedJson(format!("{e} (line {}, column {})", e.line(), e.column()))
    })?;
    if !value.is_object() {
        return Err(ApiError::InvalidEvent(
            "the body must be one JSON object".into(),
        ));
    }
    if let Some(Value::String(found)) = value.get("type")
        && !EventType::ALL.contains(&found.as_str())
    {
        return Err(ApiError::UnknownEventType {
            found: found.clone(),
            expected: EventType::ALL.join(", "),
        });
    }
    let event: TelephonyEvent = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::InvalidEvent(inner.to_string())
        } else {
            ApiError::InvalidEvent(format!("field `{path}`: {inner}"))
        }
    })?;
    validate(&event)?;
    Ok(event)
}

fn validate(event: &TelephonyEvent) -> Result<(), ApiError> {
    let required = [
        ("id", &event.id),
        ("call_id", &event.call_id),
        ("from", &event.from),
        ("to", &event.to),
        ("agent", &event.agent),
    ];
    for (name, value) in required {
        if value.trim().is_empty() {
            return Err(ApiError::InvalidEvent(format!("field `{name}` is empty")));
        }
        if value.len() > MAX_FIELD_LEN {
            return Err(ApiError::InvalidEvent(format!(
                "field `{name}` is longer than {MAX_FIELD_LEN} characters"
            )));
        }
    }
    time::OffsetDateTime::parse(&event.at, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            ApiError::InvalidEvent(format!(
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
        return Err(ApiError::InvalidEvent(
            "field `transfer_to` is required for a `transferred` event".into(),
        ));
    }
    if let Some(url) = &event.recording_url
        && (!(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048)
    {
        return Err(ApiError::InvalidEvent(
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

    fn parse(
        &self,
        tenant: &TenantConfig,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<TelephonyEvent>, ApiError> {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType(content_type.to_string()));
        }
        let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
        signature::verify(tenant.webhook_secret.expose(), body, header)?;
        Ok(vec![parse_event(body)?])
    }

    async fn command(
        &self,
        tenant: &TenantConfig,
        call: &Leg,
        command: &CallCommand,
    ) -> Result<(), CommandError> {
        let mut body = serde_json::to_value(command).unwrap_or_default();
        if let Value::Object(map) = &mut body {
            map.insert("agent".into(), Value::String(call.agent.clone()));
        }
        self.post(
            tenant,
            &["calls", call.id.as_str(), "commands"],
            &body,
            command.name(),
        )
        .await
        .map(drop)
    }

    async fn dial(
        &self,
        tenant: &TenantConfig,
        agent: &str,
        e164: &str,
    ) -> Result<Option<String>, CommandError> {
        let body = serde_json::json!({"agent": agent, "to": e164});
        let answer = self.post(tenant, &["dial"], &body, "dial").await?;
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
        tenant: &TenantConfig,
        segments: &[&str],
        body: &Value,
        action: &'static str,
    ) -> Result<Value, CommandError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let mut url = reqwest::Url::parse(tenant.control_url.trim_end_matches('/'))
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
                signature::sign(tenant.webhook_secret.expose(), &bytes),
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
    use super::*;

    const VALID: &str = r#"{"id":"evt-1","call_id":"call-1","type":"ringing","direction":"inbound",
        "from":"044 123 45 67","to":"+41 44 999 00 00","agent":"alice@example.com",
        "at":"2026-11-24T10:00:00Z"}"#;

    fn code(body: &str) -> String {
        parse_event(body.as_bytes())
            .expect_err("rejected")
            .code()
            .to_string()
    }

    #[test]
    fn valid_event_parses() {
        let e = parse_event(VALID.as_bytes()).expect("valid");
        assert_eq!(e.call_id, "call-1");
    }

    #[test]
    fn each_problem_is_named() {
        assert_eq!(code("{not json"), "malformed_json");
        assert_eq!(code("[1,2]"), "invalid_event");
        let e = parse_event(
            VALID
                .replace("\"type\":\"ringing\"", "\"type\":\"exploded\"")
                .as_bytes(),
        )
        .expect_err("rejected");
        assert_eq!(e.code(), "unknown_event_type");
        assert!(e.to_string().contains("exploded") && e.to_string().contains("ringing"));
        let e = parse_event(VALID.replace("\"call_id\":\"call-1\",", "").as_bytes())
            .expect_err("rejected");
        assert!(e.to_string().contains("call_id"), "{e}");
        let e = parse_event(
            VALID
                .replace("\"agent\":\"alice@example.com\"", "\"agent\":5")
                .as_bytes(),
        )
        .expect_err("rejected");
        assert!(e.to_string().contains("field `agent`"), "{e}");
        let e = parse_event(
            VALID
                .replace("2026-11-24T10:00:00Z", "yesterday")
                .as_bytes(),
        )
        .expect_err("rejected");
        assert!(e.to_string().contains("field `at`"), "{e}");
        let e = parse_event(VALID.replace("\"id\":\"evt-1\"", "\"id\":\" \"").as_bytes())
            .expect_err("rejected");
        assert!(e.to_string().contains("field `id` is empty"), "{e}");
        let e = parse_event(VALID.replace("\"ringing\"", "\"transferred\"").as_bytes())
            .expect_err("rejected");
        assert!(e.to_string().contains("transfer_to"), "{e}");
        let e = parse_event(VALID.replace("}", ",\"extra\":1}").as_bytes()).expect_err("rejected");
        assert!(e.to_string().contains("extra"), "{e}");
    }
}
