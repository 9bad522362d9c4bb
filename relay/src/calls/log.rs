//! What a finished call amounts to: one record per call, whatever number of legs it had.
//!
//! A call is finished when every leg is final and one of them ended (a transferred leg waits for
//! the rep it went to, unless it went outside: transferred with a reason). The log is derived from the legs each time, so a late recording link or
//! notes written after the call simply give a newer log for the same call.

use cti_protocol::event::{Direction, EndReason};
use cti_protocol::ws::{CallState, Consent, RecordKind};
use serde::{Deserialize, Serialize};

use super::Leg;
use crate::clock::instant;

/// How the call went, as the relay tells it: a missed call is an inbound one nobody answered (V2 has
/// no missed direction; `v2::phone_call` writes it as inbound with its outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogDirection {
    Inbound,
    Outbound,
    Missed,
}

/// The V2 record the call is filed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRecord {
    pub kind: RecordKind,
    pub id: String,
    /// The record's account (itself for an account).
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLog {
    pub call_id: String,
    pub direction: LogDirection,
    pub outcome: EndReason,
    /// RFC 3339, from the provider's clock.
    pub started_at: String,
    pub answered_at: Option<String>,
    pub ended_at: String,
    /// Seconds from answer to end (zero for a call nobody answered).
    pub talk_secs: u64,
    /// Seconds from the first ring to the end.
    pub total_secs: u64,
    /// E.164 where the numbers could be normalized.
    pub from: String,
    pub to: String,
    /// The remote party's number.
    pub remote: String,
    /// Every rep who had the call, in the order they had it.
    pub reps: Vec<String>,
    /// The rep who had it last: the activity's owner.
    pub owner: String,
    pub record: Option<LoggedRecord>,
    /// The reps' notes; with several reps, each rep's under their name.
    pub notes: String,
    pub disposition: Option<String>,
    /// Only where the policy allows it: no consent needed, or the rep confirmed it.
    pub recording_url: Option<String>,
    /// The recording consent the call needed, and who confirmed it when.
    #[serde(default)]
    pub consent: Option<Consent>,
    /// Made from a leg whose first event here was not its ring ([`Leg::from_mid_call`]): the
    /// writer creates the activity from it but never changes one that another life of the call
    /// wrote, which it could only downgrade (review F5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_mid_call: bool,
}

/// The call's log, once all its legs say it is over; None while it is not.
pub fn completed(legs: &[Leg]) -> Option<CallLog> {
    // The leg that ended last (a consulted colleague may have dropped off before the end); a
    // leg handed outside the relay's reps (transferred with a reason) ends the call too.
    let ended = legs
        .iter()
        .filter(|l| ends_the_call(l))
        .max_by_key(|l| l.ended_at.as_deref().and_then(instant))?;
    if legs.iter().any(|l| !l.state.is_final()) {
        return None;
    }
    let first = legs.first()?;
    let answered_at = legs
        .iter()
        .filter_map(|l| l.answered_at.as_deref())
        .min_by_key(|at| instant(at))
        .map(str::to_string);
    let started_at = legs
        .iter()
        .map(|l| l.started_at.as_str())
        .min_by_key(|at| instant(at))
        .unwrap_or(&first.started_at)
        .to_string();
    let ended_at = ended.ended_at.clone().unwrap_or_else(|| started_at.clone());
    let outcome = if answered_at.is_some() {
        ended.end_reason.unwrap_or(EndReason::Completed)
    } else {
        match ended.end_reason {
            Some(EndReason::Completed) | None => EndReason::Missed,
            Some(other) => other,
        }
    };
    let direction = match (first.direction, &answered_at) {
        (Direction::Inbound, None) => LogDirection::Missed,
        (Direction::Inbound, Some(_)) => LogDirection::Inbound,
        (Direction::Outbound, _) => LogDirection::Outbound,
    };
    let mut reps: Vec<String> = Vec::new();
    for leg in legs {
        if !reps.contains(&leg.agent) {
            reps.push(leg.agent.clone());
        }
    }
    let record = legs
        .iter()
        .rev()
        .find_map(|l| l.pop.as_ref())
        .map(|m| LoggedRecord {
            kind: m.kind,
            id: m.id.clone(),
            account_id: m.account.as_ref().map(|a| a.id.clone()),
        });
    let with_notes: Vec<&Leg> = legs
        .iter()
        .filter(|l| !l.wrap_up.notes.trim().is_empty())
        .collect();
    let notes = match with_notes.as_slice() {
        [] => String::new(),
        [one] if reps.len() == 1 => one.wrap_up.notes.trim().to_string(),
        several => several
            .iter()
            .map(|l| format!("{}:\n{}", l.agent, l.wrap_up.notes.trim()))
            .collect::<Vec<_>>()
            .join("\n\n"),
    };
    let consent = legs
        .iter()
        .find_map(|l| l.wrap_up.consent.clone())
        .map(|mut consent| {
            if let Some(confirmed) = legs
                .iter()
                .filter_map(|l| l.wrap_up.consent.as_ref())
                .find(|c| c.confirmed_by.is_some())
            {
                consent.confirmed_by = confirmed.confirmed_by.clone();
                consent.confirmed_at = confirmed.confirmed_at.clone();
            }
            consent
        });
    let recording_url = legs
        .iter()
        .rev()
        .find_map(|l| l.recording_url.clone())
        .filter(|_| consent.as_ref().is_none_or(Consent::allows_recording));
    Some(CallLog {
        call_id: first.id.clone(),
        direction,
        outcome,
        talk_secs: answered_at
            .as_deref()
            .map_or(0, |at| seconds_between(at, &ended_at)),
        total_secs: seconds_between(&started_at, &ended_at),
        started_at,
        answered_at,
        ended_at,
        from: first.from.clone(),
        to: first.to.clone(),
        remote: first.remote().to_string(),
        owner: ended.agent.clone(),
        reps,
        record,
        notes,
        disposition: legs
            .iter()
            .rev()
            .find_map(|l| l.wrap_up.disposition.clone()),
        recording_url,
        consent,
        from_mid_call: legs.iter().any(|l| l.from_mid_call),
    })
}

/// Whether the leg's end is the call's: it ended, or it was transferred to someone outside the
/// relay's reps (a number), which the adapter tells with a reason on the `transferred`; a leg
/// transferred to a rep waits for that rep's leg.
fn ends_the_call(leg: &Leg) -> bool {
    match leg.state {
        CallState::Ended => true,
        CallState::Transferred => leg.end_reason.is_some(),
        _ => false,
    }
}

/// Whole seconds from `a` to `b`; zero when either is unreadable or `b` comes first.
fn seconds_between(a: &str, b: &str) -> u64 {
    match (instant(a), instant(b)) {
        (Some(a), Some(b)) if b > a => (b - a).whole_seconds() as u64,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cti_protocol::ws::{AccountRef, Match};

    fn leg(agent: &str, state: CallState) -> Leg {
        Leg {
            id: "call-1".into(),
            state,
            remote_display: String::new(),
            started_at: "2026-11-25T10:00:00Z".into(),
            received_at_ms: 1,
            ..crate::calls::leg::fixtures::ringing("call-1", agent)
        }
    }

    fn contact(id: &str) -> Match {
        Match {
            kind: RecordKind::Contact,
            id: id.into(),
            display_id: String::new(),
            name: "Anna".into(),
            account: Some(AccountRef {
                id: "acc-1".into(),
                name: "Acme".into(),
            }),
            open_opportunities: vec![],
            last_interactions: vec![],
        }
    }

    #[test]
    fn an_answered_call_has_its_times_and_talk_time() {
        let mut l = leg("alice", CallState::Ended);
        l.answered_at = Some("2026-11-25T10:00:10Z".into());
        l.ended_at = Some("2026-11-25T10:03:48Z".into());
        l.pop = Some(contact("c-1"));
        l.wrap_up.notes = "  wants a quote  ".into();
        let log = completed(&[l]).expect("finished");
        assert_eq!(log.direction, LogDirection::Inbound);
        assert_eq!(log.outcome, EndReason::Completed);
        assert_eq!((log.talk_secs, log.total_secs), (218, 228));
        assert_eq!(log.reps, ["alice"]);
        assert_eq!(log.notes, "wants a quote");
        let record = log.record.expect("matched");
        assert_eq!(
            (record.id.as_str(), record.account_id.as_deref()),
            ("c-1", Some("acc-1"))
        );
    }

    #[test]
    fn an_unanswered_inbound_call_is_missed() {
        let mut l = leg("alice", CallState::Ended);
        l.ended_at = Some("2026-11-25T10:00:20Z".into());
        l.end_reason = Some(EndReason::Completed);
        let log = completed(&[l]).expect("finished");
        assert_eq!(log.direction, LogDirection::Missed);
        assert_eq!(log.outcome, EndReason::Missed);
        assert_eq!(log.talk_secs, 0);
    }

    #[test]
    fn a_recording_needing_consent_waits_for_the_reps_confirmation() {
        let mut l = leg("alice", CallState::Ended);
        l.ended_at = Some("2026-11-25T10:00:20Z".into());
        l.recording_url = Some("https://rec.example/1.wav".into());
        l.wrap_up.consent = Some(Consent {
            required: true,
            jurisdiction: "CH".into(),
            confirmed_by: None,
            confirmed_at: None,
        });
        let log = completed(std::slice::from_ref(&l)).expect("finished");
        assert_eq!(log.recording_url, None, "withheld without consent");
        assert!(log.consent.as_ref().is_some_and(|c| c.required));
        if let Some(c) = l.wrap_up.consent.as_mut() {
            c.confirmed_by = Some("alice".into());
            c.confirmed_at = Some("2026-11-25T10:00:15Z".into());
        }
        let log = completed(&[l]).expect("finished");
        assert_eq!(
            log.recording_url.as_deref(),
            Some("https://rec.example/1.wav")
        );
        assert_eq!(
            log.consent.and_then(|c| c.confirmed_by).as_deref(),
            Some("alice")
        );
    }

    #[test]
    fn a_cancelled_consultation_is_part_of_the_call_but_not_its_end() {
        let mut a = leg("alice", CallState::Ended);
        a.answered_at = Some("2026-11-25T10:00:05Z".into());
        a.ended_at = Some("2026-11-25T10:09:00Z".into());
        let mut b = leg("bob", CallState::Ended);
        b.received_at_ms = 2;
        b.answered_at = Some("2026-11-25T10:02:00Z".into());
        b.ended_at = Some("2026-11-25T10:03:00Z".into());
        let log = completed(&[a, b]).expect("finished");
        assert_eq!(log.owner, "alice");
        assert_eq!(log.ended_at, "2026-11-25T10:09:00Z");
        assert_eq!(log.reps, ["alice", "bob"]);
    }

    #[test]
    fn a_call_in_progress_or_in_transfer_is_not_finished() {
        assert_eq!(completed(&[leg("alice", CallState::Connected)]), None);
        assert_eq!(completed(&[leg("alice", CallState::Transferred)]), None);
        assert_eq!(
            completed(&[
                leg("alice", CallState::Transferred),
                leg("bob", CallState::Ringing)
            ]),
            None
        );
        assert_eq!(completed(&[]), None);
    }

    #[test]
    fn a_call_that_came_back_belongs_to_the_rep_who_ended_it() {
        let mut a = leg("alice", CallState::Ended);
        a.answered_at = Some("2026-11-25T10:00:05Z".into());
        a.ended_at = Some("2026-11-25T10:06:00Z".into());
        a.returns = 1;
        let mut b = leg("bob", CallState::Transferred);
        b.received_at_ms = 2;
        b.answered_at = Some("2026-11-25T10:01:10Z".into());
        b.ended_at = Some("2026-11-25T10:03:00Z".into());
        let log = completed(&[a, b]).expect("finished");
        assert_eq!(log.reps, ["alice", "bob"]);
        assert_eq!(log.owner, "alice");
        assert_eq!(log.talk_secs, 355, "from the first answer to the end");
    }

    #[test]
    fn a_call_transferred_outside_is_finished_with_its_rep() {
        let mut a = leg("alice", CallState::Transferred);
        a.answered_at = Some("2026-11-25T10:00:05Z".into());
        a.ended_at = Some("2026-11-25T10:02:00Z".into());
        assert_eq!(completed(std::slice::from_ref(&a)), None, "to a rep: waits");
        a.end_reason = Some(EndReason::Completed);
        let log = completed(&[a]).expect("went outside: finished");
        assert_eq!(log.owner, "alice");
        assert_eq!(log.outcome, EndReason::Completed);
        assert_eq!(log.ended_at, "2026-11-25T10:02:00Z");
        assert_eq!(log.talk_secs, 115);
    }

    #[test]
    fn a_transferred_call_lists_both_reps_and_both_notes() {
        let mut a = leg("alice", CallState::Transferred);
        a.answered_at = Some("2026-11-25T10:00:05Z".into());
        a.ended_at = Some("2026-11-25T10:01:00Z".into());
        a.pop = Some(contact("c-1"));
        a.wrap_up.notes = "asked for billing".into();
        let mut b = leg("bob", CallState::Ended);
        b.received_at_ms = 2;
        b.started_at = "2026-11-25T10:01:00Z".into();
        b.answered_at = Some("2026-11-25T10:01:04Z".into());
        b.ended_at = Some("2026-11-25T10:05:05Z".into());
        b.pop = Some(contact("c-2"));
        b.wrap_up.notes = "refund agreed".into();
        b.wrap_up.disposition = Some("Interested".into());
        let log = completed(&[a, b]).expect("finished");
        assert_eq!(log.reps, ["alice", "bob"]);
        assert_eq!(log.owner, "bob");
        assert_eq!(log.started_at, "2026-11-25T10:00:00Z");
        assert_eq!(log.talk_secs, 300);
        assert_eq!(
            log.record.expect("matched").id,
            "c-2",
            "the last rep's choice"
        );
        assert_eq!(
            log.notes,
            "alice:\nasked for billing\n\nbob:\nrefund agreed"
        );
        assert_eq!(log.disposition.as_deref(), Some("Interested"));
    }
}
