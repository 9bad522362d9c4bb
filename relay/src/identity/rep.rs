//! One rule for a rep's id, wherever it comes from.
//!
//! A rep is named by their identity provider's token (`user_name`, `email` or `sub`) and by the
//! phone system's events (`agent`, `transfer_to`). Both are usually the rep's e-mail, but nothing
//! makes the two spell it alike: a PBX may send `Alice@Example.com` for the rep whose token says
//! `alice@example.com`. The relay keys calls, live messages, sealed tokens and record choices by
//! rep, so each id is normalised once, where it enters (token verification and event ingest), and
//! everything behind compares exactly.
//!
//! The rule: surrounding whitespace removed, then lower-cased (Unicode lower case, as the sealed
//! tokens and record choices always keyed reps). Ids that differ only in case are the same rep; an
//! identity provider whose `sub` tells users apart only by case is not supported.

use cti_protocol::event::TelephonyEvent;

/// A rep id as the relay keeps it: trimmed and lower-cased.
pub fn rep_id(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A provider's event with its rep ids (`agent`, `transfer_to`) under [`rep_id`]'s rule.
pub fn normalize_event(mut event: TelephonyEvent) -> TelephonyEvent {
    event.agent = rep_id(&event.agent);
    event.transfer_to = event.transfer_to.as_deref().map(rep_id);
    event
}

#[cfg(test)]
mod tests {
    use cti_protocol::event::{Direction, EventType};

    use super::*;

    #[test]
    fn ids_are_trimmed_and_lower_cased() {
        assert_eq!(rep_id("alice@example.com"), "alice@example.com");
        assert_eq!(rep_id("Alice@Example.COM"), "alice@example.com");
        assert_eq!(rep_id("  alice@example.com\t"), "alice@example.com");
        assert_eq!(rep_id("ÉLODIE@EXAMPLE.COM"), "élodie@example.com");
        assert_eq!(
            rep_id(&rep_id(" Bob ")),
            rep_id(" Bob "),
            "applying it twice changes nothing"
        );
    }

    #[test]
    fn an_event_names_its_reps_by_the_rule() {
        let event = TelephonyEvent {
            id: "evt-1".into(),
            call_id: "Call-A".into(),
            event_type: EventType::Transferred,
            direction: Direction::Inbound,
            from: "+41441234567".into(),
            to: "+41449990000".into(),
            agent: "Alice@Example.com ".into(),
            at: "2026-11-24T10:00:00Z".into(),
            transfer_to: Some("BOB@example.com".into()),
            reason: None,
            recording_url: None,
        };
        let event = normalize_event(event);
        assert_eq!(event.agent, "alice@example.com");
        assert_eq!(event.transfer_to.as_deref(), Some("bob@example.com"));
        assert_eq!(event.call_id, "Call-A", "only rep ids change");
    }
}
