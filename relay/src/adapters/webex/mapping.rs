//! `telephony_calls` events (and calls read back from `GET /v1/telephony/calls`) to the relay's
//! events.
//!
//! Webex gives every user their own call (`callId`) and ties the users' calls of one
//! conversation together with `callSessionId`, which is the relay's call id. The reference
//! (4.4) warns that `eventType` is named differently by different sources (`received` in a
//! capture, `alerting` elsewhere), so the mapping goes by `state` and takes `eventType` only
//! where the state alone cannot tell (a `connected` after a hold is a resume). Event ids come
//! from Webex's data (callId, what happened, `eventTimestamp`), so a delivery Webex repeats or a
//! call read back after a gap is dropped by the relay as seen.
//!
//! A consultation is a second call the rep places to a colleague (Webex has no consult verb);
//! its session stands for the consulted call (`aliases`), the rep's own leg of it is not shown
//! (the rep is on the consulted call already) and the colleague's leg is a leg of the consulted
//! call, as the relay's contract expresses a consult.

use std::collections::{HashMap, HashSet};

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};
use serde_json::Value;

/// Where a call's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A webhook delivery (`{"data": {...}, "actorId"}`).
    Webhook,
    /// One item of `GET /v1/telephony/calls`, read after a gap.
    Snapshot,
}

/// What the mapping needs of the directory.
pub(crate) trait Directory {
    /// The rep behind a Webex person id.
    fn rep_of(&self, person: &str) -> Option<String>;
    /// The person's own number (work number, else extension), the far end's `to` of an inbound
    /// call (DNIS is not in the event; inferred from the reference's note).
    fn number_of(&self, person: &str) -> Option<String>;
}

/// One user's call as the adapter saw it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SeenLeg {
    pub(crate) rep: String,
    /// The relay's call id (the callSessionId, or the consulted call's).
    pub(crate) call: String,
    /// The callSessionId it was last seen in.
    pub(crate) session: String,
    /// The rep's own second call of a consultation (not shown).
    pub(crate) consult_own: bool,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) state: String,
    /// Who handed the call to this user: the person ids and numbers of its
    /// `redirections[].redirectingParty`.
    pub(crate) redirected_by: Vec<String>,
}

/// A consultation asked for and not yet answered by Webex with its call ids.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PendingConsult {
    pub(crate) call: String,
    pub(crate) rep_person: String,
    pub(crate) target_person: String,
}

/// A consultation's session: the call it stands for, and whose second call it is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Alias {
    pub(crate) call: String,
    pub(crate) rep_person: String,
}

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// callId -> the leg.
    pub(crate) legs: HashMap<String, SeenLeg>,
    /// A consultation's callSessionId -> the consulted call and the consulting rep.
    pub(crate) aliases: HashMap<String, Alias>,
    pub(crate) pending: Vec<PendingConsult>,
    /// callId -> the rep (or number) it was handed to, for the `transferred` at its end.
    pub(crate) transfer_targets: HashMap<String, String>,
    /// callIds the rep declined.
    pub(crate) declined: HashSet<String>,
}

/// Legs kept before ended ones are forgotten.
const MAX_LEGS: usize = 4096;

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Tracker {
    /// The relay's call id of a callSessionId.
    pub(crate) fn call_of(&self, session: &str) -> String {
        self.aliases
            .get(session)
            .map(|a| a.call.clone())
            .unwrap_or_else(|| session.to_string())
    }

    /// The rep's callId on `call`: their own leg, or (`consult_own`) their consultation's.
    pub(crate) fn leg_of(&self, call: &str, rep: &str, consult_own: bool) -> Option<String> {
        self.legs
            .iter()
            .filter(|(_, l)| {
                l.call == call
                    && l.rep == rep
                    && l.consult_own == consult_own
                    && l.state != "disconnected"
            })
            .map(|(id, _)| id.clone())
            .next()
    }

    /// Maps one event (a delivery's whole body, or a listed call with the user it is of).
    pub(crate) fn apply(
        &mut self,
        body: &Value,
        source: Source,
        directory: &dyn Directory,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        let (data, person) = match source {
            Source::Webhook => (
                body.get("data").unwrap_or(&Value::Null),
                text(body, "actorId"),
            ),
            Source::Snapshot => (body, text(body, "personId")),
        };
        let call_id = match source {
            Source::Webhook => text(data, "callId"),
            Source::Snapshot => text(data, "id"),
        };
        if call_id.is_empty() || person.is_empty() {
            return Vec::new();
        }
        let Some(rep) = directory.rep_of(person) else {
            // Not a rep of this relay (another user of the org): nothing to show.
            return Vec::new();
        };
        let session = match text(data, "callSessionId") {
            "" => call_id,
            s => s,
        };
        // A leg keeps its call, even when Webex moves it into another session (the colleague's
        // leg after an attended transfer joins the consulted call's session; inferred).
        let call = match self.legs.get(call_id) {
            Some(leg) => leg.call.clone(),
            None => self.alias_for(session, person),
        };
        let consult_own = self
            .legs
            .get(call_id)
            .map(|l| l.consult_own)
            .unwrap_or_else(|| {
                self.aliases
                    .get(session)
                    .is_some_and(|a| a.rep_person == person)
            });
        let personality = text(data, "personality");
        let direction = if personality == "terminator" {
            Direction::Inbound
        } else {
            // originator, clickToDial
            Direction::Outbound
        };
        let remote = data
            .pointer("/remoteParty/number")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let own = directory.number_of(person).unwrap_or_default();
        let (mut from, mut to) = match direction {
            Direction::Inbound => (remote, own),
            Direction::Outbound => (own, remote),
        };
        if call != session {
            // A consultation's leg shows the consulted call's numbers (the caller), not the
            // internal call between the two reps.
            if let Some(first) = self
                .legs
                .values()
                .find(|l| l.call == call && l.session == call && !l.consult_own)
            {
                from = first.from.clone();
                to = first.to.clone();
            }
        }
        let state = match text(data, "state") {
            "" => match text(data, "eventType") {
                "received" | "alerting" | "originated" => "alerting",
                "connected" | "answered" | "resumed" => "connected",
                "held" => "held",
                "disconnected" => "disconnected",
                _ if text(body, "event") == "deleted" => "disconnected",
                _ => "",
            },
            s => s,
        }
        .to_string();
        let event_type = text(data, "eventType");
        let at = match text(data, "eventTimestamp") {
            "" => now.to_string(),
            t => t.to_string(),
        };
        let stamp = match source {
            Source::Webhook if !text(data, "eventTimestamp").is_empty() => at.clone(),
            _ => format!("read-{now}"),
        };
        let previous = self.legs.get(call_id).map(|l| l.state.clone());
        let mut redirected_by: Vec<String> = data
            .get("redirections")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("redirectingParty"))
            .flat_map(|p| ["personId", "number"].map(|k| text(p, k).to_string()))
            .filter(|v| !v.is_empty())
            .collect();
        if redirected_by.is_empty()
            && let Some(seen) = self.legs.get(call_id)
        {
            redirected_by = seen.redirected_by.clone();
        }
        let leg = SeenLeg {
            rep: rep.clone(),
            call: call.clone(),
            session: session.to_string(),
            consult_own,
            from: from.clone(),
            to: to.clone(),
            state: state.clone(),
            redirected_by,
        };
        let event = |kind: EventType, id: String| TelephonyEvent {
            id,
            call_id: call.clone(),
            event_type: kind,
            direction,
            from: from.clone(),
            to: to.clone(),
            agent: rep.clone(),
            at: at.clone(),
            transfer_to: None,
            reason: None,
            recording_url: None,
        };
        let mut events = Vec::new();
        match state.as_str() {
            "alerting" => events.push(event(
                EventType::Ringing,
                format!("webex:{call_id}:ringing"),
            )),
            "connected" => {
                let resumed = event_type == "resumed" || previous.as_deref() == Some("held");
                if resumed {
                    events.push(event(
                        EventType::Resumed,
                        format!("webex:{call_id}:resumed:{stamp}"),
                    ));
                } else {
                    events.push(event(
                        EventType::Answered,
                        format!("webex:{call_id}:answered"),
                    ));
                }
            }
            "held" => {
                if source == Source::Snapshot && previous.is_none() {
                    events.push(event(
                        EventType::Answered,
                        format!("webex:{call_id}:answered"),
                    ));
                }
                if !(source == Source::Snapshot && previous.as_deref() == Some("held")) {
                    events.push(event(
                        EventType::Held,
                        format!("webex:{call_id}:held:{stamp}"),
                    ));
                }
            }
            "disconnected" => {
                let answered = matches!(previous.as_deref(), Some("connected" | "held"));
                let mut handed = self.transfer_targets.remove(call_id);
                if handed.is_none() && answered {
                    handed = self.handed_on(call_id, &call, person, directory);
                }
                if let Some(target) = handed {
                    let mut e = event(
                        EventType::Transferred,
                        format!("webex:{call_id}:transferred"),
                    );
                    e.transfer_to = Some(target);
                    events.push(e);
                } else {
                    let mut e = event(EventType::Ended, format!("webex:{call_id}:ended"));
                    e.reason = if self.declined.remove(call_id) {
                        Some(EndReason::Declined)
                    } else if data.get("completedElsewhere").and_then(Value::as_bool) == Some(true)
                    {
                        // Answered on another of the user's devices, or by another member of
                        // the line's group: not missed (inferred from the field's name and the
                        // reference's note).
                        Some(EndReason::Completed)
                    } else {
                        // The relay tells missed from completed by whether the leg was answered.
                        None
                    };
                    events.push(e);
                }
            }
            // remoteHeld (the far end holds), and states not known to this mapping: nothing to
            // show.
            _ => {}
        }
        // An ended leg is kept too, so a late duplicate of an earlier state is known as its own.
        if !state.is_empty() {
            self.legs.insert(call_id.to_string(), leg);
        }
        self.prune();
        if consult_own {
            return Vec::new();
        }
        events
    }

    /// The rep a transfer made on the user's phone handed the call to: another rep's live call
    /// of the same call whose `redirections` name the user (by person id or number). Inferred:
    /// the reference lists no transfer fields; Webex's call details name who redirected a call
    /// to its user, and the target's call is taken to come before the transferring user's
    /// `disconnected` (a transfer to someone outside the relay's reps, or a delivery that comes
    /// late, ends the leg as a call, not a transfer).
    fn handed_on(
        &self,
        call_id: &str,
        call: &str,
        person: &str,
        directory: &dyn Directory,
    ) -> Option<String> {
        let number = directory.number_of(person);
        self.legs
            .iter()
            .find(|(id, l)| {
                id.as_str() != call_id
                    && l.call == call
                    && l.state != "disconnected"
                    && l.redirected_by
                        .iter()
                        .any(|r| r == person || Some(r) == number.as_ref())
            })
            .map(|(_, l)| l.rep.clone())
    }

    /// Forgets ended calls once many are kept: a late duplicate of a call that long over would
    /// bring nothing new to the relay anyway (its event ids are seen).
    fn prune(&mut self) {
        if self.legs.len() <= MAX_LEGS {
            return;
        }
        self.legs.retain(|_, l| l.state != "disconnected");
        let live: HashSet<String> = self.legs.values().map(|l| l.call.clone()).collect();
        self.aliases.retain(|_, a| live.contains(&a.call));
        self.transfer_targets
            .retain(|leg, _| self.legs.contains_key(leg));
        self.declined.retain(|leg| self.legs.contains_key(leg));
    }

    /// The call a session belongs to: an alias, or a pending consultation's second call (by its
    /// users: the consulting rep or the colleague, in a session not seen before), else itself.
    fn alias_for(&mut self, session: &str, person: &str) -> String {
        if let Some(alias) = self.aliases.get(session) {
            return alias.call.clone();
        }
        let seen = self.legs.values().any(|l| l.call == session);
        if !seen
            && let Some(pending) = self.pending.iter().find(|p| {
                p.call != session && (p.rep_person == person || p.target_person == person)
            })
        {
            let call = pending.call.clone();
            let alias = Alias {
                call: call.clone(),
                rep_person: pending.rep_person.clone(),
            };
            self.aliases.insert(session.to_string(), alias);
            return call;
        }
        session.to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Dir;
    impl Directory for Dir {
        fn rep_of(&self, person: &str) -> Option<String> {
            match person {
                "p-alice" => Some("alice@example.com".into()),
                "p-bob" => Some("bob@example.com".into()),
                _ => None,
            }
        }
        fn number_of(&self, person: &str) -> Option<String> {
            (person == "p-alice").then(|| "+14085550101".into())
        }
    }

    fn delivery(call: &str, person: &str, event_type: &str, state: &str, ts: &str) -> Value {
        json!({"resource": "telephony_calls", "event": "updated", "actorId": person,
               "data": {"callId": call, "callSessionId": "S1", "personality": "terminator",
                        "eventType": event_type, "state": state, "eventTimestamp": ts,
                        "remoteParty": {"number": "+41446681800", "callType": "external"},
                        "completedElsewhere": false}})
    }

    #[test]
    fn received_and_alerting_both_ring_and_the_session_is_the_call() {
        let mut t = Tracker::default();
        for event_type in ["received", "alerting"] {
            let events = t.apply(
                &delivery(
                    "C1",
                    "p-alice",
                    event_type,
                    "alerting",
                    "2026-12-02T10:00:00.000Z",
                ),
                Source::Webhook,
                &Dir,
                "now",
            );
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].event_type, EventType::Ringing);
            assert_eq!(events[0].id, "webex:C1:ringing", "same id: a duplicate");
            assert_eq!(events[0].call_id, "S1");
            assert_eq!(events[0].direction, Direction::Inbound);
            assert_eq!(events[0].from, "+41446681800");
            assert_eq!(events[0].to, "+14085550101");
        }
    }

    #[test]
    fn a_connected_after_a_hold_is_a_resume_and_each_hold_has_its_own_id() {
        let mut t = Tracker::default();
        let kinds: Vec<(EventType, String)> = [
            ("received", "alerting", "t1"),
            ("connected", "connected", "t2"),
            ("held", "held", "t3"),
            ("connected", "connected", "t4"),
            ("held", "held", "t5"),
        ]
        .iter()
        .flat_map(|(e, s, ts)| {
            t.apply(
                &delivery("C1", "p-alice", e, s, ts),
                Source::Webhook,
                &Dir,
                "now",
            )
        })
        .map(|e| (e.event_type, e.id))
        .collect();
        assert_eq!(kinds[1].0, EventType::Answered);
        assert_eq!(kinds[3].0, EventType::Resumed);
        assert_ne!(kinds[2].1, kinds[4].1);
    }

    #[test]
    fn completed_elsewhere_is_not_a_missed_call_and_strangers_are_ignored() {
        let mut t = Tracker::default();
        let mut gone = delivery("C1", "p-alice", "disconnected", "disconnected", "t9");
        gone["data"]["completedElsewhere"] = json!(true);
        let events = t.apply(&gone, Source::Webhook, &Dir, "now");
        assert_eq!(events[0].event_type, EventType::Ended);
        assert_eq!(events[0].reason, Some(EndReason::Completed));
        let other = delivery("C2", "p-nobody", "received", "alerting", "t1");
        assert!(t.apply(&other, Source::Webhook, &Dir, "now").is_empty());
    }

    /// A blind transfer made on alice's phone: bob's call of the same session names alice as
    /// who redirected it, then alice's call is disconnected.
    #[test]
    fn a_transfer_made_on_the_phone_is_told_by_the_targets_redirections() {
        for (redirecting, handed) in [
            (json!({"personId": "p-alice"}), true),
            (json!({"number": "+14085550101", "name": "Alice"}), true),
            (json!({"personId": "p-carol"}), false),
            (Value::Null, false),
        ] {
            let mut t = Tracker::default();
            for (e, s, ts) in [
                ("received", "alerting", "t1"),
                ("connected", "connected", "t2"),
            ] {
                t.apply(
                    &delivery("C1", "p-alice", e, s, ts),
                    Source::Webhook,
                    &Dir,
                    "now",
                );
            }
            let mut bob = delivery("C2", "p-bob", "received", "alerting", "t3");
            if !redirecting.is_null() {
                bob["data"]["redirections"] =
                    json!([{"reason": "unknown", "redirectingParty": redirecting}]);
            }
            let rung = t.apply(&bob, Source::Webhook, &Dir, "now");
            assert_eq!(rung[0].call_id, "S1", "the same call");
            // Later events of bob's call need not repeat the redirections.
            t.apply(
                &delivery("C2", "p-bob", "connected", "connected", "t4"),
                Source::Webhook,
                &Dir,
                "now",
            );
            let gone = t.apply(
                &delivery("C1", "p-alice", "disconnected", "disconnected", "t5"),
                Source::Webhook,
                &Dir,
                "now",
            );
            if handed {
                assert_eq!(gone[0].event_type, EventType::Transferred, "{redirecting}");
                assert_eq!(gone[0].transfer_to.as_deref(), Some("bob@example.com"));
            } else {
                assert_eq!(gone[0].event_type, EventType::Ended, "{redirecting}");
            }
        }
    }

    #[test]
    fn a_consultation_is_a_leg_of_the_consulted_call() {
        let mut t = Tracker::default();
        t.apply(
            &delivery("C1", "p-alice", "received", "alerting", "t1"),
            Source::Webhook,
            &Dir,
            "now",
        );
        t.pending.push(PendingConsult {
            call: "S1".into(),
            rep_person: "p-alice".into(),
            target_person: "p-bob".into(),
        });
        let mut own = delivery("C2", "p-alice", "originated", "alerting", "t2");
        own["data"]["callSessionId"] = json!("S2");
        own["data"]["personality"] = json!("clickToDial");
        assert!(
            t.apply(&own, Source::Webhook, &Dir, "now").is_empty(),
            "not shown"
        );
        let mut bob = delivery("C3", "p-bob", "received", "alerting", "t3");
        bob["data"]["callSessionId"] = json!("S2");
        let events = t.apply(&bob, Source::Webhook, &Dir, "now");
        assert_eq!(events[0].call_id, "S1");
        assert_eq!(events[0].agent, "bob@example.com");
        assert_eq!(events[0].from, "+41446681800", "the caller's number");
        assert_eq!(
            t.leg_of("S1", "alice@example.com", true).as_deref(),
            Some("C2")
        );
    }

    #[test]
    fn the_reps_own_consult_call_stays_hidden_when_webex_answered_the_dial_first() {
        let mut t = Tracker::default();
        t.apply(
            &delivery("C1", "p-alice", "received", "alerting", "t1"),
            Source::Webhook,
            &Dir,
            "now",
        );
        t.aliases.insert(
            "S2".into(),
            Alias {
                call: "S1".into(),
                rep_person: "p-alice".into(),
            },
        );
        let mut own = delivery("C2", "p-alice", "originated", "alerting", "t2");
        own["data"]["callSessionId"] = json!("S2");
        own["data"]["personality"] = json!("clickToDial");
        assert!(t.apply(&own, Source::Webhook, &Dir, "now").is_empty());
        assert_eq!(
            t.leg_of("S1", "alice@example.com", false).as_deref(),
            Some("C1")
        );
        assert_eq!(
            t.leg_of("S1", "alice@example.com", true).as_deref(),
            Some("C2")
        );
    }
}
