//! The V2 CTI channel: what the widget posts to the host window, and what the host posts back.
//!
//! V2 (Agent Desktop) searches accounts, contacts and individual customers by `ANI` and pops the
//! record itself, so the payload is the screen pop. `ANI` must be E.164 with a leading `+`, or V2
//! shows "Unknown Customer". `ExternalReferenceID` becomes the phone call's `externalId.displayId`,
//! which is how the relay later finds the interaction V2 created.

use serde::{Deserialize, Serialize};

use crate::event::Direction;
use crate::ws::CallView;

/// `{"payload": {...}}`, the JSON encoding V2 accepts from `window.parent.postMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMessage {
    pub payload: CtiPayload,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtiPayload {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "EventType")]
    pub event_type: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "ANI", default, skip_serializing_if = "Option::is_none")]
    pub ani: Option<String>,
    #[serde(rename = "DNIS", default, skip_serializing_if = "Option::is_none")]
    pub dnis: Option<String>,
    #[serde(rename = "ExternalReferenceID")]
    pub external_reference_id: String,
    /// Call attached data: the display id of the record the relay ranked first (or the rep
    /// chose). With V2's customer identification set to `Custom_1`, V2 opens exactly this record
    /// instead of searching by ANI.
    #[serde(rename = "Custom_1", default, skip_serializing_if = "Option::is_none")]
    pub custom_1: Option<String>,
}

/// The moments of a call the host is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostAction {
    /// Ringing: V2 identifies the caller and pops.
    Notify,
    /// The rep answered.
    Accept,
    /// The call ended: V2 closes the interaction.
    End,
}

impl HostMessage {
    /// Builds the payload for one moment of a call.
    pub fn for_call(call: &CallView, action: HostAction) -> Self {
        let direction = match call.direction {
            Direction::Inbound => "INBOUND",
            Direction::Outbound => "OUTBOUND",
        };
        let (event_type, action, with_numbers) = match action {
            HostAction::Notify => (direction, "NOTIFY", true),
            HostAction::Accept => (direction, "ACCEPT", true),
            HostAction::End => ("UPDATEACTIVITY", "END", false),
        };
        // V2 wants the customer's number in ANI whichever way the call goes.
        let (ani, dnis) = match call.direction {
            Direction::Inbound => (&call.from, &call.to),
            Direction::Outbound => (&call.to, &call.from),
        };
        HostMessage {
            payload: CtiPayload {
                kind: "CALL".into(),
                event_type: event_type.into(),
                action: action.into(),
                ani: with_numbers.then(|| ani.clone()),
                dnis: with_numbers.then(|| dnis.clone()),
                external_reference_id: call.id.clone(),
                custom_1: with_numbers
                    .then(|| call.pop.as_ref().map(|m| m.display_id.clone()))
                    .flatten()
                    .filter(|d| !d.is_empty()),
            },
        }
    }
}

/// Click-to-dial and other requests V2 posts into the widget iframe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRequest {
    #[serde(rename = "Direction", default)]
    pub direction: Option<String>,
    #[serde(rename = "PhoneNumber", default)]
    pub phone_number: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::CallState;

    fn call() -> CallView {
        CallView {
            id: "call-42".into(),
            direction: Direction::Inbound,
            state: CallState::Ringing,
            from: "+41441234567".into(),
            to: "+41449990000".into(),
            remote_display: "+41 44 123 45 67".into(),
            remote_extension: None,
            agent: "alice@example.com".into(),
            matches: vec![],
            pop: None,
            started_at: "2026-11-24T10:00:00Z".into(),
            answered_at: None,
            ended_at: None,
            end_reason: None,
            received_at_ms: 0,
            recording_url: None,
            handover: None,
            consult: None,
            wrap_up: Default::default(),
            returns: 0,
        }
    }

    #[test]
    fn notify_matches_the_v2_example() {
        let msg = HostMessage::for_call(&call(), HostAction::Notify);
        assert_eq!(
            serde_json::to_value(&msg).expect("serializes"),
            serde_json::json!({"payload":{"Type":"CALL","EventType":"INBOUND","Action":"NOTIFY",
                "ANI":"+41441234567","DNIS":"+41449990000","ExternalReferenceID":"call-42"}})
        );
    }

    #[test]
    fn end_is_an_activity_update_without_numbers() {
        let msg = HostMessage::for_call(&call(), HostAction::End);
        assert_eq!(
            serde_json::to_value(&msg).expect("serializes"),
            serde_json::json!({"payload":{"Type":"CALL","EventType":"UPDATEACTIVITY",
                "Action":"END","ExternalReferenceID":"call-42"}})
        );
    }

    #[test]
    fn outbound_puts_the_customer_in_ani() {
        let mut c = call();
        c.direction = Direction::Outbound;
        c.from = "+41449990000".into();
        c.to = "+41441234567".into();
        let msg = HostMessage::for_call(&c, HostAction::Accept);
        assert_eq!(msg.payload.ani.as_deref(), Some("+41441234567"));
        assert_eq!(msg.payload.event_type, "OUTBOUND");
    }
}
