//! The call-leg state machine, as a pure function.
//!
//! Providers deliver events late, twice and out of order. The rules: a leg only moves forward
//! (ringing -> connected <-> held -> ended/transferred); a late event never resurrects a final
//! leg; an event that arrives before its predecessor (answered before ringing) still lands in the
//! right state. The one way back is the call coming back to the rep (transferred back to them,
//! consulted again): it rings for them after their leg ended, which opens a new round of the leg.
//! One final state gives way to another: an `ended` leg turns `transferred` when a hand-over
//! timed at or before its end arrives after it (what the end was is sometimes told only later).

use cti_protocol::event::{EndReason, EventType, TelephonyEvent};
use cti_protocol::ws::CallState;

use super::leg::Leg;

use crate::clock::instant;

/// What an event did to a leg.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The leg changed; push the new view.
    Changed(Box<Leg>),
    /// The event is stale or redundant for this leg (a late ringing after answer, a hold of an
    /// ended call); it is acknowledged but changes nothing.
    Unchanged,
}

/// Applies `event` to the leg `view` (already created for the event's call and agent).
pub fn apply(mut view: Leg, event: &TelephonyEvent) -> Transition {
    let before = view.clone();
    let returned = match event.event_type {
        EventType::Ringing => true,
        // A call handed on and then answered by this rep again, its ringing still on the way.
        EventType::Answered | EventType::Held | EventType::Resumed => {
            view.state == CallState::Transferred
        }
        _ => false,
    };
    if view.state.is_final() && returned && after_end(&event.at, view.ended_at.as_deref()) {
        // The first answer stays, so the call's talk time still starts there; notes and
        // consent carry on.
        view.state = CallState::Ringing;
        view.ended_at = None;
        view.end_reason = None;
        view.consult = None;
        view.returns += 1;
    }
    if view.state == CallState::Ended
        && event.event_type == EventType::Transferred
        && before_end(&event.at, view.ended_at.as_deref())
    {
        // The leg's end was heard before what it was: a hand-over made at or before it (the
        // provider's events came the other way round, or the sign of the hand-over came only
        // with the colleague's leg). The leg was handed on, not ended; the end's time stays,
        // and the call now waits for whoever it went to, unless it went outside (`reason`).
        // A hand-over timed after the end, or at an unreadable time, is not believed.
        view.state = CallState::Transferred;
        view.end_reason = event.reason;
        if view.recording_url.is_none() && event.recording_url.is_some() {
            view.recording_url = event.recording_url.clone();
        }
        return Transition::Changed(Box::new(view));
    }
    if view.state == CallState::Transferred
        && view.end_reason.is_none()
        && event.event_type == EventType::Transferred
        && event.reason.is_some()
        && before_end(&event.at, view.ended_at.as_deref())
    {
        // The hand-over was heard before where it went: the provider told only later (Teams:
        // the call record) that it went outside the relay's reps. No colleague's leg follows,
        // so the hand-over now ends the call; its time stays.
        view.end_reason = event.reason;
        return Transition::Changed(Box::new(view));
    }
    if view.state.is_final() {
        // Final is final: what may still arrive is a recording link, a hand-over that happened
        // at or before the end (above), and an answer that happened before the end but was
        // delivered after it (the call was talked, not missed).
        if event.event_type == EventType::Ended
            && view.recording_url.is_none()
            && event.recording_url.is_some()
        {
            view.recording_url = event.recording_url.clone();
            return Transition::Changed(Box::new(view));
        }
        if matches!(
            event.event_type,
            EventType::Answered | EventType::Held | EventType::Resumed
        ) && view.answered_at.is_none()
            && view.state == CallState::Ended
            && before_end(&event.at, view.ended_at.as_deref())
        {
            view.answered_at = Some(event.at.clone());
            if view.end_reason == Some(EndReason::Missed) {
                view.end_reason = Some(EndReason::Completed);
            }
            return Transition::Changed(Box::new(view));
        }
        return Transition::Unchanged;
    }
    match event.event_type {
        EventType::Ringing => {}
        EventType::Answered | EventType::Resumed => {
            if view.state == CallState::Ringing && view.answered_at.is_none() {
                view.answered_at = Some(event.at.clone());
            }
            view.state = CallState::Connected;
        }
        EventType::Held => {
            if view.answered_at.is_none() {
                view.answered_at = Some(event.at.clone());
            }
            view.state = CallState::Held;
        }
        EventType::Transferred => {
            view.state = CallState::Transferred;
            view.ended_at = Some(event.at.clone());
            // With a reason the call went outside the relay's reps (a number): no colleague's
            // leg follows, so this hand-over is the call's end (`log::completed`).
            view.end_reason = event.reason;
        }
        EventType::Ended => {
            view.state = CallState::Ended;
            view.ended_at = Some(event.at.clone());
            view.end_reason = Some(event.reason.unwrap_or(if view.answered_at.is_some() {
                EndReason::Completed
            } else {
                EndReason::Missed
            }));
        }
        _ => return Transition::Unchanged,
    }
    if event.recording_url.is_some() {
        view.recording_url = event.recording_url.clone();
    }
    if view == before {
        Transition::Unchanged
    } else {
        Transition::Changed(Box::new(view))
    }
}

/// Whether `at` comes before the leg's end (both RFC 3339; unreadable means no).
fn before_end(at: &str, ended_at: Option<&str>) -> bool {
    match (instant(at), ended_at.and_then(instant)) {
        (Some(at), Some(end)) => at <= end,
        _ => false,
    }
}

/// Whether `at` comes strictly after the leg's end (unreadable means no: a late event is never
/// taken for a return).
fn after_end(at: &str, ended_at: Option<&str>) -> bool {
    match (instant(at), ended_at.and_then(instant)) {
        (Some(at), Some(end)) => at > end,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cti_protocol::event::Direction;

    fn ringing_view() -> Leg {
        Leg {
            started_at: "2026-11-24T10:00:00Z".into(),
            received_at_ms: 1,
            ..crate::calls::leg::fixtures::ringing("c1", "alice")
        }
    }

    fn event(kind: EventType, at: &str) -> TelephonyEvent {
        TelephonyEvent {
            id: format!("e-{at}"),
            call_id: "c1".into(),
            event_type: kind,
            direction: Direction::Inbound,
            from: "044 123 45 67".into(),
            to: "+41449990000".into(),
            agent: "alice".into(),
            at: at.into(),
            transfer_to: None,
            reason: None,
            recording_url: None,
        }
    }

    fn changed(t: Transition) -> Leg {
        match t {
            Transition::Changed(v) => *v,
            Transition::Unchanged => panic!("expected a change"),
        }
    }

    #[test]
    fn answer_hold_resume_end() {
        let v = changed(apply(ringing_view(), &event(EventType::Answered, "t1")));
        assert_eq!(v.state, CallState::Connected);
        assert_eq!(v.answered_at.as_deref(), Some("t1"));
        let v = changed(apply(v, &event(EventType::Held, "t2")));
        assert_eq!(v.state, CallState::Held);
        let v = changed(apply(v, &event(EventType::Resumed, "t3")));
        assert_eq!(v.state, CallState::Connected);
        assert_eq!(
            v.answered_at.as_deref(),
            Some("t1"),
            "resume keeps the answer time"
        );
        let v = changed(apply(v, &event(EventType::Ended, "t4")));
        assert_eq!(v.state, CallState::Ended);
        assert_eq!(v.end_reason, Some(EndReason::Completed));
    }

    #[test]
    fn late_ringing_never_resurrects() {
        let v = changed(apply(ringing_view(), &event(EventType::Ended, "t1")));
        assert_eq!(v.end_reason, Some(EndReason::Missed));
        assert_eq!(
            apply(v.clone(), &event(EventType::Ringing, "t0")),
            Transition::Unchanged
        );
        assert_eq!(
            apply(v, &event(EventType::Answered, "t0")),
            Transition::Unchanged
        );
    }

    #[test]
    fn an_answer_delivered_after_the_end_makes_it_a_talked_call() {
        let v = changed(apply(
            ringing_view(),
            &event(EventType::Ended, "2026-11-24T10:05:00Z"),
        ));
        assert_eq!(v.end_reason, Some(EndReason::Missed));
        let v = changed(apply(
            v,
            &event(EventType::Answered, "2026-11-24T10:00:09Z"),
        ));
        assert_eq!(v.state, CallState::Ended);
        assert_eq!(v.answered_at.as_deref(), Some("2026-11-24T10:00:09Z"));
        assert_eq!(v.end_reason, Some(EndReason::Completed));
        assert_eq!(
            apply(v, &event(EventType::Answered, "2026-11-24T10:00:09Z")),
            Transition::Unchanged,
            "once is enough"
        );
        let v = changed(apply(
            ringing_view(),
            &event(EventType::Ended, "2026-11-24T10:05:00Z"),
        ));
        assert_eq!(
            apply(v, &event(EventType::Answered, "2026-11-24T10:06:00Z")),
            Transition::Unchanged,
            "an answer after the end is not believed"
        );
    }

    #[test]
    fn late_ringing_after_answer_changes_nothing() {
        let v = changed(apply(ringing_view(), &event(EventType::Answered, "t1")));
        assert_eq!(
            apply(v, &event(EventType::Ringing, "t0")),
            Transition::Unchanged
        );
    }

    #[test]
    fn explicit_reason_wins_and_recording_arrives_late() {
        let mut e = event(EventType::Ended, "t1");
        e.reason = Some(EndReason::Declined);
        let v = changed(apply(ringing_view(), &e));
        assert_eq!(v.end_reason, Some(EndReason::Declined));
        let mut late = event(EventType::Ended, "t2");
        late.recording_url = Some("https://rec/1.wav".into());
        let v = changed(apply(v, &late));
        assert_eq!(v.recording_url.as_deref(), Some("https://rec/1.wav"));
        assert_eq!(v.ended_at.as_deref(), Some("t1"));
    }

    #[test]
    fn a_call_that_comes_back_rings_again_and_keeps_its_first_answer() {
        let v = changed(apply(
            ringing_view(),
            &event(EventType::Answered, "2026-11-24T10:00:05Z"),
        ));
        let handed_on = changed(apply(
            v,
            &event(EventType::Transferred, "2026-11-24T10:01:00Z"),
        ));
        // Late news from before the transfer is still stale.
        assert_eq!(
            apply(
                handed_on.clone(),
                &event(EventType::Ringing, "2026-11-24T10:00:59Z")
            ),
            Transition::Unchanged
        );
        // Transferred back: a new round.
        let back = changed(apply(
            handed_on.clone(),
            &event(EventType::Ringing, "2026-11-24T10:03:00Z"),
        ));
        assert_eq!(back.state, CallState::Ringing);
        assert_eq!(back.returns, 1);
        assert_eq!(back.ended_at, None);
        assert_eq!(back.answered_at.as_deref(), Some("2026-11-24T10:00:05Z"));
        let ended = changed(apply(
            back,
            &event(EventType::Ended, "2026-11-24T10:04:00Z"),
        ));
        assert_eq!(ended.end_reason, Some(EndReason::Completed));
        // Its answer arriving before its ringing is a return too.
        let answered = changed(apply(
            handed_on,
            &event(EventType::Answered, "2026-11-24T10:03:10Z"),
        ));
        assert_eq!(
            (answered.state, answered.returns),
            (CallState::Connected, 1)
        );
    }

    #[test]
    fn a_hand_over_heard_after_the_end_it_came_before_turns_the_leg_transferred() {
        let answered = changed(apply(
            ringing_view(),
            &event(EventType::Answered, "2026-11-24T10:00:05Z"),
        ));
        let ended = changed(apply(
            answered,
            &event(EventType::Ended, "2026-11-24T10:01:00Z"),
        ));
        assert_eq!(ended.end_reason, Some(EndReason::Completed));
        assert_eq!(
            apply(
                ended.clone(),
                &event(EventType::Transferred, "2026-11-24T10:01:01Z")
            ),
            Transition::Unchanged,
            "a hand-over after the end is not believed"
        );
        assert_eq!(
            apply(ended.clone(), &event(EventType::Transferred, "soon")),
            Transition::Unchanged,
            "nor one at an unreadable time"
        );
        let handed = changed(apply(
            ended.clone(),
            &event(EventType::Transferred, "2026-11-24T10:01:00Z"),
        ));
        assert_eq!(handed.state, CallState::Transferred);
        assert_eq!(handed.end_reason, None, "the call waits for the colleague");
        assert_eq!(handed.ended_at.as_deref(), Some("2026-11-24T10:01:00Z"));
        assert_eq!(
            apply(handed, &event(EventType::Ended, "2026-11-24T10:01:00Z")),
            Transition::Unchanged,
            "and the end, heard again, does not undo it"
        );
        let mut outside = event(EventType::Transferred, "2026-11-24T10:00:59Z");
        outside.reason = Some(EndReason::Completed);
        let gone = changed(apply(ended, &outside));
        assert_eq!(
            (gone.state, gone.end_reason),
            (CallState::Transferred, Some(EndReason::Completed))
        );
    }

    #[test]
    fn a_hand_over_told_later_to_have_gone_outside_ends_the_call() {
        let v = changed(apply(
            ringing_view(),
            &event(EventType::Answered, "2026-11-24T10:00:10Z"),
        ));
        let handed = changed(apply(
            v,
            &event(EventType::Transferred, "2026-11-24T10:01:00Z"),
        ));
        assert_eq!(handed.end_reason, None, "the call waits for a colleague");
        let mut outside = event(EventType::Transferred, "2026-11-24T10:01:01Z");
        outside.reason = Some(EndReason::Completed);
        assert_eq!(
            apply(handed.clone(), &outside),
            Transition::Unchanged,
            "a hand-over after the leg's end is another"
        );
        outside.at = "2026-11-24T10:01:00Z".into();
        let gone = changed(apply(handed, &outside));
        assert_eq!(gone.state, CallState::Transferred);
        assert_eq!(gone.end_reason, Some(EndReason::Completed));
        assert_eq!(gone.ended_at.as_deref(), Some("2026-11-24T10:01:00Z"));
        assert_eq!(apply(gone, &outside), Transition::Unchanged);
    }

    #[test]
    fn a_transfer_outside_keeps_its_reason() {
        let v = changed(apply(ringing_view(), &event(EventType::Answered, "t1")));
        let mut outside = event(EventType::Transferred, "t2");
        outside.reason = Some(EndReason::Completed);
        let v = changed(apply(v, &outside));
        assert_eq!(v.state, CallState::Transferred);
        assert_eq!(v.end_reason, Some(EndReason::Completed));
    }

    #[test]
    fn transfer_is_final_for_this_leg() {
        let v = changed(apply(ringing_view(), &event(EventType::Answered, "t1")));
        let v = changed(apply(v, &event(EventType::Transferred, "t2")));
        assert_eq!(v.state, CallState::Transferred);
        assert_eq!(
            apply(v, &event(EventType::Held, "t3")),
            Transition::Unchanged
        );
    }
}
