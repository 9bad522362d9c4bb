//! Presence-only mode: for tenants without a calling bot, a rep's Teams presence tells that a
//! call is on, not who calls (reference 3.1: presence `activity` such as `InACall`).
//!
//! When a rep's activity becomes `InACall` the widget is told of a call with no caller: a
//! `ringing` and an `answered` event (Graph does not say whether it rang, nor which way it goes;
//! inbound is assumed, inferred) with an empty `from`, so the card shows an unknown caller and no
//! record is matched. When the activity leaves `InACall` the rep's leg ends, and the call is
//! logged as it is known then (an unknown party, the relay's times): a call is logged even if
//! its record never comes, and under the presence call's id, which is the reference the widget
//! gave V2 (Agent Desktop made its phone call record with it). The call's record
//! (`callRecords`, written by Graph after the call) then amends that call: the other party (and
//! the V2 record it matches), the direction and the exact times, in the same activity. The
//! record's session is joined to the presence call of its rep whose time it overlaps (inferred:
//! Graph links a presence change to no call), whether the presence call is still shown (the
//! record closes it) or already ended (the adapter keeps ended ones for a day, shared across
//! instances). A record no presence call overlaps is logged as a call of its own.
//!
//! `InAConferenceCall` (a meeting) is not a phone call and is ignored (decided here: its call
//! record is a group call the relay logs only where a rep's session has a number).

use std::collections::HashMap;

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};

/// The prefix of the relay's call ids of presence calls (never a Graph id: those are GUIDs).
pub(crate) const CALL_PREFIX: &str = "teams-presence-";

/// The activities that mean a (non-meeting) call is on.
pub(crate) fn in_a_call(activity: &str) -> bool {
    activity.eq_ignore_ascii_case("InACall")
}

/// How far a call record's session may lie from a presence call and still be that call:
/// presence is read after Graph notifies its change, seconds after the call began or ended
/// (inferred; Graph publishes no bound).
pub(crate) const RECORD_SLACK_MS: u64 = 120_000;

/// One rep's presence call as the relay shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PresenceCall {
    pub(crate) call_id: String,
    pub(crate) rep: String,
}

impl PresenceCall {
    /// When the relay showed the call (Unix ms, its clock): the call id ends with it.
    pub(crate) fn started_ms(&self) -> Option<u64> {
        self.call_id.rsplit('-').next()?.parse().ok()
    }
}

/// A presence call that ended, waiting for its call record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndedCall {
    pub(crate) user: String,
    pub(crate) call: PresenceCall,
    pub(crate) ended_ms: u64,
}

/// How far apart a call record's session (`start_ms`..`end_ms`) and a presence call are: 0 when
/// they overlap, else the gap; `None` beyond [`RECORD_SLACK_MS`].
pub(crate) fn distance(
    session: (u64, u64),
    call_started_ms: u64,
    call_ended_ms: Option<u64>,
) -> Option<u64> {
    let (start, end) = session;
    let call_end = call_ended_ms.unwrap_or(u64::MAX);
    // At most one of the two is not 0: the session lies before the call, after it, or on it.
    let gap = call_started_ms.saturating_sub(end) + start.saturating_sub(call_end);
    (gap <= RECORD_SLACK_MS).then_some(gap)
}

/// Users in a call by their presence, with the relay's call shown for each.
#[derive(Debug, Default)]
pub(crate) struct PresenceTracker {
    calls: HashMap<String, PresenceCall>,
    /// Calls ended since the adapter last took them (to keep them for their records).
    ended: Vec<EndedCall>,
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

    /// Forgets the user's call: its record closed it.
    pub(crate) fn remove(&mut self, user: &str) -> Option<PresenceCall> {
        self.calls.remove(user)
    }

    /// The calls ended since the last time this was asked.
    pub(crate) fn take_ended(&mut self) -> Vec<EndedCall> {
        std::mem::take(&mut self.ended)
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
            (false, Some(_)) => match self.calls.remove(&user) {
                Some(call) => {
                    let events = vec![closed(&call, now)];
                    self.ended.push(EndedCall {
                        user,
                        call,
                        ended_ms: now_ms,
                    });
                    events
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

/// The end of a presence call: talked to its end, as far as presence knows.
pub(crate) fn closed(call: &PresenceCall, now: &str) -> TelephonyEvent {
    let mut ended = event(call, "closed", EventType::Ended, now);
    ended.reason = Some(EndReason::Completed);
    ended
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
        let ended = tracker.take_ended();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].call.call_id, on[0].call_id);
        assert_eq!(ended[0].call.started_ms(), Some(2));
        assert_eq!(ended[0].ended_ms, 4);
        assert!(tracker.take_ended().is_empty());
        let again = tracker.apply("u1", "alice@example.com", "InACall", now, 6);
        assert_ne!(again[0].call_id, on[0].call_id, "a new call");
    }

    #[test]
    fn a_record_session_is_the_presence_call_whose_time_it_overlaps_or_nearly() {
        let call = (100_000, Some(200_000));
        assert_eq!(distance((150_000, 190_000), call.0, call.1), Some(0));
        assert_eq!(distance((90_000, 110_000), call.0, call.1), Some(0));
        assert_eq!(distance((210_000, 250_000), call.0, call.1), Some(10_000));
        assert_eq!(distance((0, 99_000), call.0, call.1), Some(1_000));
        assert_eq!(distance((400_000, 500_000), call.0, call.1), None);
        assert_eq!(
            distance((900_000, 950_000), call.0, None),
            Some(0),
            "a call still shown lasts until now"
        );
    }
}
