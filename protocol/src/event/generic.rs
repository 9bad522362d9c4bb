//! The generic webhook's body: one event as a PBX without a dedicated adapter posts it to
//! `/v1/tenants/{tenant}/telephony/generic`.
//!
//! This is public contract (the README's "Public contract" section describes it, with the
//! signature and the answers): its fields and its strictness change only with a version bump.
//! It is kept apart from the relay's [`TelephonyEvent`] so that what the relay carries inside can
//! grow without integrators noticing. Unknown fields are refused, so a typo in an integration is
//! an error at once instead of a field silently ignored.

use serde::{Deserialize, Serialize};

use super::{Direction, EndReason, EventType, TelephonyEvent};

/// One thing that happened to a call, as the generic provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// Unique per event at the source: the idempotency key.
    pub id: String,
    /// The PBX's call id; every leg of a call (a transfer's, a consult's) shares it.
    pub call_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub direction: Direction,
    /// As the PBX dialled or received it, national or international.
    pub from: String,
    pub to: String,
    /// The rep this leg belongs to (the tenant's user id).
    pub agent: String,
    /// RFC 3339 timestamp from the PBX's clock.
    pub at: String,
    /// The receiving rep, for `transferred`.
    #[serde(default)]
    pub transfer_to: Option<String>,
    /// Why the call ended, for `ended`.
    #[serde(default)]
    pub reason: Option<EndReason>,
    #[serde(default)]
    pub recording_url: Option<String>,
}

impl From<Body> for TelephonyEvent {
    fn from(body: Body) -> Self {
        TelephonyEvent {
            id: body.id,
            call_id: body.call_id,
            event_type: body.event_type,
            direction: body.direction,
            from: body.from,
            to: body.to,
            agent: body.agent,
            at: body.at,
            transfer_to: body.transfer_to,
            reason: body.reason,
            recording_url: body.recording_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_example_parses() {
        let body = r#"{ "id": "evt-0001", "call_id": "call-42", "type": "ringing",
            "direction": "inbound", "from": "044 123 45 67", "to": "+41 44 999 00 00",
            "agent": "alice@example.com", "at": "2026-11-24T10:00:00Z",
            "transfer_to": null, "reason": null, "recording_url": null }"#;
        let event: Body = serde_json::from_str(body).expect("parses");
        assert_eq!(event.event_type, EventType::Ringing);
        assert_eq!(event.direction, Direction::Inbound);
        assert_eq!(event.from, "044 123 45 67");
        assert_eq!(event.reason, None);
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let body = r#"{"id":"e","call_id":"c","type":"ended","direction":"outbound",
            "from":"1","to":"2","agent":"a","at":"2026-11-24T10:00:00Z","reason":"missed"}"#;
        let event: Body = serde_json::from_str(body).expect("parses");
        assert_eq!(event.reason, Some(EndReason::Missed));
        assert_eq!(event.transfer_to, None);
    }

    #[test]
    fn unknown_types_and_fields_are_refused() {
        let body = r#"{"id":"e","call_id":"c","type":"exploded","direction":"inbound",
            "from":"1","to":"2","agent":"a","at":"2026-11-24T10:00:00Z"}"#;
        let err = serde_json::from_str::<Body>(body).expect_err("rejects");
        assert!(err.to_string().contains("exploded"), "{err}");
        let body = r#"{"id":"e","call_id":"c","type":"held","direction":"inbound",
            "from":"1","to":"2","agent":"a","at":"2026-11-24T10:00:00Z","extra":1}"#;
        let err = serde_json::from_str::<Body>(body).expect_err("rejects");
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn it_becomes_the_same_event_inside() {
        let body = r#"{"id":"e","call_id":"c","type":"transferred","direction":"inbound",
            "from":"1","to":"2","agent":"a","at":"2026-11-24T10:00:00Z","transfer_to":"b",
            "recording_url":"https://r.example/1.wav"}"#;
        let event = TelephonyEvent::from(serde_json::from_str::<Body>(body).expect("parses"));
        assert_eq!(event.event_type, EventType::Transferred);
        assert_eq!(event.transfer_to.as_deref(), Some("b"));
        assert_eq!(
            event.recording_url.as_deref(),
            Some("https://r.example/1.wav")
        );
    }
}
