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
    /// The reference of the interaction a transferred or returning call continues; sent only
    /// with `EventType` `TRANSFER`.
    #[serde(
        rename = "ExternalOriginalReferenceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_original_reference_id: Option<String>,
    /// Call attached data: the display id of the record the relay ranked first (or the rep
    /// chose), only for tenants that opted in. SAP documents customer identification by call
    /// attached data, but not which identifier it matches (a contact's display id may not be
    /// what V2 expects), so it is unverified and V2's own ANI search is the default.
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

/// What a tenant chose for its payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostSettings {
    /// Send `Custom_1` for V2's customer identification by call attached data.
    pub custom_1: bool,
}

/// Longest `ExternalReferenceID` V2 takes (KBA 3481409: up to 35 alphanumeric characters).
pub const MAX_REFERENCE_LEN: usize = 35;

/// The `ExternalReferenceID` for a provider's call id: the id itself when V2 takes it (at most
/// 35 ASCII letters and digits), else `X` and the 128-bit FNV-1a hash of the id in hex (33
/// characters). The mapping depends on the id alone, so every payload of a call, every tab and
/// the relay (looking up V2's phone call by `externalId.displayId`) arrive at the same value.
pub fn external_reference(call_id: &str) -> String {
    if is_v2_reference(call_id) {
        return call_id.to_string();
    }
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in call_id.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    format!("X{hash:032x}")
}

/// Whether V2 takes `reference` as an `ExternalReferenceID` as it is.
pub fn is_v2_reference(reference: &str) -> bool {
    (1..=MAX_REFERENCE_LEN).contains(&reference.len())
        && reference.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The leg of a call the rep is on: the call itself, or (transferred to them, or back to them)
/// a continuation of it that V2 records as its own interaction.
fn leg_key(call: &CallView) -> Option<String> {
    let mut key = call.id.clone();
    if call.handover.is_some() {
        key = format!("{key}/{}", call.agent);
    }
    if call.returns > 0 {
        key = format!("{key}#{}", call.returns);
    }
    (key != call.id).then_some(key)
}

impl HostMessage {
    /// Builds the payload for one moment of a call, as the first payloads were (the provider's
    /// id, `Custom_1` when a record was ranked first); see [`HostMessage::for_leg`].
    pub fn for_call(call: &CallView, action: HostAction) -> Self {
        let mut msg = Self::build(call, action, true);
        msg.payload.external_reference_id = call.id.clone();
        msg
    }

    /// Builds the payload for one moment of the rep's leg of a call: a V2-safe reference, and
    /// for a transferred or returning call `TRANSFER` with the reference of the call it
    /// continues (SAP lists both; whether Agent Desktop links the two interactions is not
    /// published).
    pub fn for_leg(call: &CallView, action: HostAction, settings: HostSettings) -> Self {
        let mut msg = Self::build(call, action, settings.custom_1);
        let original = external_reference(&call.id);
        match leg_key(call) {
            Some(leg) => {
                msg.payload.external_reference_id = external_reference(&leg);
                if action != HostAction::End {
                    msg.payload.event_type = "TRANSFER".into();
                    msg.payload.external_original_reference_id = Some(original);
                }
            }
            None => msg.payload.external_reference_id = original,
        }
        msg
    }

    fn build(call: &CallView, action: HostAction, custom_1: bool) -> Self {
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
                external_reference_id: String::new(),
                external_original_reference_id: None,
                custom_1: (with_numbers && custom_1)
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

    #[test]
    fn a_reference_v2_takes_is_kept_and_others_are_mapped_stably() {
        assert_eq!(external_reference("call42"), "call42");
        let long = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let mapped = external_reference(long);
        assert!(is_v2_reference(&mapped), "{mapped}");
        assert_eq!(mapped.len(), 33);
        assert_eq!(mapped, external_reference(long));
        assert_ne!(
            mapped,
            external_reference("0f8fad5b-d9cb-469f-a165-70867728950f")
        );
        assert!(!is_v2_reference("call-42"));
        assert!(!is_v2_reference(&"a".repeat(36)));
    }

    #[test]
    fn every_payload_of_a_leg_carries_the_same_safe_reference() {
        let mut c = call();
        c.id = "a-provider-call-id-far-longer-than-v2-takes-1234567890".into();
        let refs: Vec<String> = [HostAction::Notify, HostAction::Accept, HostAction::End]
            .into_iter()
            .map(|a| HostMessage::for_leg(&c, a, HostSettings::default()))
            .map(|m| m.payload.external_reference_id)
            .collect();
        assert!(is_v2_reference(&refs[0]), "{refs:?}");
        assert!(refs.iter().all(|r| r == &refs[0]), "{refs:?}");
    }

    #[test]
    fn a_transferred_or_returning_leg_is_a_transfer_of_the_original() {
        let mut c = call();
        c.id = "call42".into();
        c.handover = Some(crate::ws::Handover {
            from: "bob@example.com".into(),
            notes: String::new(),
        });
        let notify = HostMessage::for_leg(&c, HostAction::Notify, HostSettings::default());
        assert_eq!(notify.payload.event_type, "TRANSFER");
        assert_eq!(notify.payload.action, "NOTIFY");
        assert_eq!(
            notify.payload.external_original_reference_id.as_deref(),
            Some("call42")
        );
        assert_ne!(notify.payload.external_reference_id, "call42");
        assert!(is_v2_reference(&notify.payload.external_reference_id));
        let end = HostMessage::for_leg(&c, HostAction::End, HostSettings::default());
        assert_eq!(end.payload.event_type, "UPDATEACTIVITY");
        assert_eq!(
            end.payload.external_reference_id,
            notify.payload.external_reference_id
        );
        assert_eq!(end.payload.external_original_reference_id, None);

        let mut back = call();
        back.id = "call42".into();
        back.returns = 1;
        let again = HostMessage::for_leg(&back, HostAction::Notify, HostSettings::default());
        assert_eq!(again.payload.event_type, "TRANSFER");
        assert_ne!(again.payload.external_reference_id, "call42");
    }

    #[test]
    fn custom_1_only_for_a_tenant_that_opted_in() {
        let mut c = call();
        c.id = "call42".into();
        c.pop = Some(
            serde_json::from_value(serde_json::json!({"kind": "contact", "id": "u1",
                "display_id": "1000290", "name": "Anna"}))
            .expect("a match"),
        );
        let off = HostMessage::for_leg(&c, HostAction::Notify, HostSettings::default());
        assert_eq!(off.payload.custom_1, None);
        let on = HostMessage::for_leg(&c, HostAction::Notify, HostSettings { custom_1: true });
        assert_eq!(on.payload.custom_1.as_deref(), Some("1000290"));
        // A first leg on a safe id posts what it always did.
        assert_eq!(on, HostMessage::for_call(&c, HostAction::Notify));
    }
}
