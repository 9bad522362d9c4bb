//! Presence-only mode: for tenants without a calling bot, a rep's Teams presence tells that a
//! call is on, not who calls (reference 3.1: presence `activity` such as `InACall`).
//!
//! When a rep's activity becomes `InACall` the widget is told of a call with no caller: a
//! `ringing` and an `answered` event (Graph does not say whether it rang, nor which way it goes;
//! inbound is assumed, inferred) with an empty `from`, so the card shows an unknown caller and no
//! record is matched. When the activity leaves `InACall` the rep's leg closes as handed on
//! (`transferred`, to nobody): a leg that closes so writes no activity by itself (the relay logs
//! a call once one of its legs *ended*), because the relay cannot log it right yet. The call's
//! record (`callRecords`, written by Graph after the call) then logs the call once, under the
//! record's id, with the caller and the exact times. So the presence card and the record are
//! two views of the call and one activity.
//!
//! `InAConferenceCall` (a meeting) is not a phone call and is ignored (decided here: its call
//! record is a group call the relay logs only where a rep's session has a number).

use std::collections::HashMap;

use cti_protocol::event::{Direction, EventType, TelephonyEvent};

/// The prefix of the relay's call ids of presence calls (never a Graph id: those are GUIDs).
pub(crate) const CALL_PREFIX: &str = "teams-presence-";

/// The activities that mean a (non-meeting) call is on.
pub(crate) fn in_a_call(activity: &str) -> bool {
    activity.eq_ignore_ascii_case("InACall")
}

/// One rep's presence call as the relay shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PresenceCall {
    pub(crate) call_id: String,
    pub(crate) rep: String,
}

/// Users in a call by their presence, with the relay's call shown for each.
#[derive(Debug, Default)]
pub(crate) struct PresenceTracker {
    calls: HashMap<String, PresenceCall>,
}

fn event(call: &PresenceCall, kind: &str, event_type: EventType, at: &str) -> TelephonyEvent {
    TelephonyEvent {
        id: format!("teams:{}:{}:{kind}", call.call_id, call.rep),
        call_id: call.call_id.clone(),
        event_type,
        direction: Direction::Inbound,
        from: String::new(),
        to: String::new(),
        agent: call.rep.clone(),
        at: at.to_string(),
        transfer_to: None,
        reason: None,
        recording_url: None,
    }
}

impl PresenceTracker {
    /// Takes over a presence call the relay still shows as live (after a restart), so its end
    /// closes that call rather than a new one.
    pub(crate) fn adopt(&mut self, user: &str, call: PresenceCall) {
        self.calls.entry(user.to_string()).or_insert(call);
    }

    pub(crate) fn call_of(&self, user: &str) -> Option<&PresenceCall> {
        self.calls.get(user)
    }

    /// The user's activity now (`rep` their rep): the events it means. `now_ms` names a new
    /// call (the relay's clock; unique per user since one user has one call at a time here).
    pub(crate) fn apply(
        &mut self,
        user: &str,
        rep: &str,
        activity: &str,
        now: &str,
        now_ms: u64,
    ) -> Vec<TelephonyEvent> {
        let user = user.to_lowercase();
        match (in_a_call(activity), self.calls.get(&user)) {
            (true, None) => {
                let call = PresenceCall {
                    call_id: format!("{CALL_PREFIX}{user}-{now_ms}"),
                    rep: rep.to_string(),
                };
                let events = vec![
                    event(&call, "ringing", EventType::Ringing, now),
                    event(&call, "answered", EventType::Answered, now),
                ];
                self.calls.insert(user, call);
                events
            }
            (false, Some(_)) => self
                .calls
                .remove(&user)
                .map(|call| vec![closed(&call, now)])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// The end of a presence call: its leg closes without an activity of its own (see the module).
pub(crate) fn closed(call: &PresenceCall, now: &str) -> TelephonyEvent {
    event(call, "closed", EventType::Transferred, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_a_call_shows_a_call_with_no_caller_and_leaving_it_closes_that_call_once() {
        let mut tracker = PresenceTracker::default();
        let now = "2026-12-02T10:00:00Z";
        assert!(
            tracker
                .apply("U1", "alice@example.com", "Available", now, 1)
                .is_empty()
        );
        let on = tracker.apply("U1", "alice@example.com", "InACall", now, 2);
        let kinds: Vec<EventType> = on.iter().map(|e| e.event_type).collect();
        assert_eq!(kinds, [EventType::Ringing, EventType::Answered]);
        assert_eq!(on[0].from, "");
        assert!(on[0].call_id.starts_with(CALL_PREFIX));
        assert!(
            tracker
                .apply("u1", "alice@example.com", "InACall", now, 3)
                .is_empty(),
            "still the same call"
        );
        assert!(
            tracker
                .apply("u1", "alice@example.com", "InAConferenceCall", now, 4)
                .len()
                == 1,
            "a meeting is not a phone call: the call is over"
        );
        let off = tracker.apply("u1", "alice@example.com", "Available", now, 5);
        assert!(off.is_empty(), "closed once");
        let again = tracker.apply("u1", "alice@example.com", "InACall", now, 6);
        assert_ne!(again[0].call_id, on[0].call_id, "a new call");
    }
}
