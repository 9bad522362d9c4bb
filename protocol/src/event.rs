//! The normalized telephony event: what a PBX or adapter tells the relay about one call leg.

use serde::{Deserialize, Serialize};

/// One thing that happened to a call at the telephony source.
///
/// Numbers are kept exactly as the provider sent them; the relay normalizes them with the
/// tenant's default region, because only the relay knows that region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelephonyEvent {
    /// Unique per event at the source: the idempotency key.
    pub id: String,
    /// The provider's call or session id.
    pub call_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    /// The rep this leg belongs to (the tenant's user id).
    pub agent: String,
    /// RFC 3339 timestamp from the source's clock.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventType {
    Ringing,
    Answered,
    Held,
    Resumed,
    Transferred,
    Ended,
}

impl EventType {
    /// Every accepted value, for error messages that tell the sender what would have worked.
    pub const ALL: &'static [&'static str] = &[
        "ringing",
        "answered",
        "held",
        "resumed",
        "transferred",
        "ended",
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    Completed,
    Missed,
    Declined,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_example_parses() {
        let body = r#"{ "id": "evt-0001", "call_id": "call-42", "type": "ringing",
            "direction": "inbound", "from": "044 123 45 67", "to": "+41 44 999 00 00",
            "agent": "alice@example.com", "at": "2026-11-24T10:00:00Z",
            "transfer_to": null, "reason": null, "recording_url": null }"#;
        let event: TelephonyEvent = serde_json::from_str(body).expect("parses");
        assert_eq!(event.event_type, EventType::Ringing);
        assert_eq!(event.direction, Direction::Inbound);
        assert_eq!(event.from, "044 123 45 67");
        assert_eq!(event.reason, None);
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let body = r#"{"id":"e","call_id":"c","type":"ended","direction":"outbound",
            "from":"1","to":"2","agent":"a","at":"2026-11-24T10:00:00Z","reason":"missed"}"#;
        let event: TelephonyEvent = serde_json::from_str(body).expect("parses");
        assert_eq!(event.reason, Some(EndReason::Missed));
        assert_eq!(event.transfer_to, None);
    }

    #[test]
    fn unknown_type_is_rejected() {
        let body = r#"{"id":"e","call_id":"c","type":"exploded","direction":"inbound",
            "from":"1","to":"2","agent":"a","at":"2026-11-24T10:00:00Z"}"#;
        let err = serde_json::from_str::<TelephonyEvent>(body).expect_err("rejects");
        assert!(err.to_string().contains("exploded"), "{err}");
    }
}
