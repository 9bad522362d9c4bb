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
    /// The rep whose work number or extension `number` is (a call forwarded to a colleague).
    fn rep_of_number(&self, number: &str) -> Option<String>;
    /// Whether `rep` is one of the relay's reps here (a transfer target that is not a number).
    fn is_rep(&self, rep: &str) -> bool;
}

/// One user's call as the adapter saw it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SeenLeg {
    pub(crate) rep: String,
    /// The Webex person whose call it is.
    #[serde(default)]
    pub(crate) person: String,
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
    /// `redirections[].redirectingParty`, and the rep whose consultation it was when it joined
    /// the consulted call (an attended transfer).
    pub(crate) redirected_by: Vec<String>,
    /// The user was on it (connected or held at some point).
    #[serde(default)]
    pub(crate) answered: bool,
    #[serde(default)]
    pub(crate) outbound: bool,
    /// When it was disconnected (the event's time), for a hand-over heard only after it.
    #[serde(default)]
    pub(crate) ended_at: Option<String>,
    /// Its end was told as a transfer already (so it is told once).
    #[serde(default)]
    pub(crate) handed: bool,
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
            None => self.alias_for(session, person, text(data, "personality")),
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
        let seen = self.legs.get(call_id).cloned();
        // Forwarded (inferred: the reference names no such state; taken from Webex's call
        // details, where a call the user sends on shows the party it went to as `remoteParty`):
        // the far end is no longer the caller, so the leg keeps the numbers it had.
        let forwarded =
            text(data, "state") == "forwarded" || text(data, "eventType") == "forwarded";
        let own = directory.number_of(person).unwrap_or_default();
        let (mut from, mut to) = match (&seen, direction) {
            (Some(seen), _) if forwarded => (seen.from.clone(), seen.to.clone()),
            (_, Direction::Inbound) => (remote.clone(), own),
            (_, Direction::Outbound) => (own, remote.clone()),
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
                "forwarded" => "forwarded",
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
        let previous = seen.as_ref().map(|l| l.state.clone());
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
            && let Some(seen) = &seen
        {
            redirected_by = seen.redirected_by.clone();
        }
        if let Some(seen) = &seen
            && seen.session != session
            && session == call
            && let Some(consulting) = self.aliases.get(&seen.session)
            && consulting.rep_person != person
            && !redirected_by.contains(&consulting.rep_person)
        {
            // The colleague's call left the consultation's session for the consulted call's: the
            // consulting rep handed them the caller (an attended transfer, made through the
            // relay or on the phone; inferred from how the call's session moves).
            redirected_by.push(consulting.rep_person.clone());
        }
        // A late event never brings a disconnected call back (a forward heard after the end).
        let kept = match previous.as_deref() {
            Some("disconnected") => "disconnected".to_string(),
            _ => state.clone(),
        };
        let mut leg = SeenLeg {
            rep: rep.clone(),
            person: person.to_string(),
            call: call.clone(),
            session: session.to_string(),
            consult_own,
            from: from.clone(),
            to: to.clone(),
            state: kept,
            redirected_by,
            answered: seen.as_ref().is_some_and(|l| l.answered)
                || matches!(state.as_str(), "connected" | "held"),
            outbound: direction == Direction::Outbound,
            ended_at: seen.as_ref().and_then(|l| l.ended_at.clone()),
            handed: seen.as_ref().is_some_and(|l| l.handed),
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
        if forwarded {
            // Handed on by the user's phone: to a colleague (whose leg follows and ends the
            // call), or to a number outside the relay's reps (the hand-over ends the call). Told
            // once, for a call the user was on; a ringing call sent on was not talked here.
            let target = directory
                .rep_of_number(&remote)
                .map(|rep| (rep, None))
                .or_else(|| {
                    (!remote.is_empty()).then(|| (remote.clone(), Some(EndReason::Completed)))
                });
            if let Some((target, reason)) = target.filter(|_| leg.answered && !leg.handed) {
                leg.handed = true;
                let mut e = event(
                    EventType::Transferred,
                    format!("webex:{call_id}:transferred"),
                );
                e.transfer_to = Some(target);
                e.reason = reason;
                events.push(e);
            }
        }
        match state.as_str() {
            _ if forwarded => {}
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
            // Its hand-over (a forward) told how it ended.
            "disconnected" if leg.handed => {}
            "disconnected" => {
                leg.ended_at.get_or_insert_with(|| at.clone());
                let mut handed = self.transfer_targets.remove(call_id);
                if handed.is_none() && leg.answered {
                    handed = self.handed_on(call_id, &call, person, directory);
                }
                if let Some(target) = handed {
                    leg.handed = true;
                    let mut e = event(
                        EventType::Transferred,
                        format!("webex:{call_id}:transferred"),
                    );
                    // Sent to a number rather than a rep (a transfer the relay asked for): no
                    // colleague's leg follows, so this ends the call.
                    if !directory.is_rep(&target) && directory.rep_of_number(&target).is_none() {
                        e.reason = Some(EndReason::Completed);
                    }
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
        let known = !state.is_empty() || forwarded;
        let (handed_by, rep_on_it) = (leg.redirected_by.clone(), !consult_own && known);
        if known {
            self.legs.insert(call_id.to_string(), leg);
        }
        let late = if rep_on_it {
            self.handed_late(call_id, &call, &rep, &handed_by, directory)
        } else {
            Vec::new()
        };
        self.prune();
        if consult_own {
            return Vec::new();
        }
        events.extend(late);
        events
    }

    /// The transfers this colleague's leg tells of after the fact: another rep's leg of the call
    /// that was disconnected after they talked, told as ended, and that the colleague's leg names
    /// as who handed it over (its `redirections`, or the consultation it joined from). Each is
    /// told as a `transferred` timed at that leg's end, which turns the ended leg transferred
    /// (`calls::transitions`): the events came the other way round (the end first), or the sign
    /// of the hand-over came only with the colleague's leg (an attended transfer).
    fn handed_late(
        &mut self,
        call_id: &str,
        call: &str,
        rep: &str,
        handed_by: &[String],
        directory: &dyn Directory,
    ) -> Vec<TelephonyEvent> {
        if handed_by.is_empty() {
            return Vec::new();
        }
        let mut events = Vec::new();
        for (id, leg) in self.legs.iter_mut() {
            let named = !leg.person.is_empty()
                && handed_by.iter().any(|h| {
                    *h == leg.person || Some(h) == directory.number_of(&leg.person).as_ref()
                });
            if id.as_str() == call_id
                || leg.call != call
                || leg.rep == rep
                || leg.consult_own
                || leg.state != "disconnected"
                || !leg.answered
                || leg.handed
                || !named
            {
                continue;
            }
            let Some(at) = leg.ended_at.clone() else {
                continue;
            };
            leg.handed = true;
            events.push(TelephonyEvent {
                id: format!("webex:{id}:transferred"),
                call_id: call.to_string(),
                event_type: EventType::Transferred,
                direction: if leg.outbound {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                },
                from: leg.from.clone(),
                to: leg.to.clone(),
                agent: leg.rep.clone(),
                at,
                transfer_to: Some(rep.to_string()),
                reason: None,
                recording_url: None,
            });
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
    ///
    /// A consultation made on the phone (no pending one: the relay asked for nothing) is a call
    /// the rep places while they hold another: it stands for the held call, as a consultation the
    /// relay dialled does (inferred from how the phone's consult key works, hold then dial; the
    /// reference has no consult field). So a call the rep dials while holding one, through the
    /// relay too, is taken as consulting about it. Webex may deliver the placed call's events
    /// before the held call's `held`: a phone places a call only with the one it talks on held,
    /// so a call placed while another still looks connected is taken as consulting about that
    /// one, its hold still on the way (inferred likewise).
    fn alias_for(&mut self, session: &str, person: &str, personality: &str) -> String {
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
        let placed = matches!(personality, "originator" | "clickToDial");
        let on = |state: &'static str| {
            move |l: &&SeenLeg| {
                l.person == person && !l.consult_own && l.state == state && l.call != session
            }
        };
        if !seen
            && placed
            && let Some(held) = self
                .legs
                .values()
                .find(on("held"))
                .or_else(|| self.legs.values().find(on("connected")))
        {
            let call = held.call.clone();
            let alias = Alias {
                call: call.clone(),
                rep_person: person.to_string(),
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
        fn rep_of_number(&self, number: &str) -> Option<String> {
            match number {
                "+14085550101" => Some("alice@example.com".into()),
                "+14085550102" => Some("bob@example.com".into()),
                _ => None,
            }
        }
        fn is_rep(&self, rep: &str) -> bool {
            rep.ends_with("@example.com")
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

    /// Alice answers, then her phone sends the call on.
    fn talking() -> Tracker {
        let mut t = Tracker::default();
        for (e, s, ts) in [
            ("received", "alerting", "2026-12-02T10:00:00.000Z"),
            ("connected", "connected", "2026-12-02T10:00:05.000Z"),
        ] {
            t.apply(
                &delivery("C1", "p-alice", e, s, ts),
                Source::Webhook,
                &Dir,
                "now",
            );
        }
        t
    }

    fn forwarded_to(number: &str, ts: &str) -> Value {
        let mut d = delivery("C1", "p-alice", "forwarded", "forwarded", ts);
        d["data"]["remoteParty"] = json!({"number": number, "callType": "external"});
        d
    }

    #[test]
    fn a_call_forwarded_to_a_number_outside_is_transferred_there_and_ends_the_call() {
        for reordered in [false, true] {
            let mut t = talking();
            let forward = forwarded_to("+41445550199", "2026-12-02T10:01:00.000Z");
            let gone = delivery(
                "C1",
                "p-alice",
                "disconnected",
                "disconnected",
                "2026-12-02T10:01:00.010Z",
            );
            let (first, second) = if reordered {
                (&gone, &forward)
            } else {
                (&forward, &gone)
            };
            let mut events = t.apply(first, Source::Webhook, &Dir, "now");
            events.extend(t.apply(second, Source::Webhook, &Dir, "now"));
            let handed: Vec<_> = events
                .iter()
                .filter(|e| e.event_type == EventType::Transferred)
                .collect();
            assert_eq!(handed.len(), 1, "{events:?}");
            assert_eq!(handed[0].transfer_to.as_deref(), Some("+41445550199"));
            assert_eq!(handed[0].reason, Some(EndReason::Completed), "went outside");
            assert_eq!(handed[0].at, "2026-12-02T10:01:00.000Z", "when it happened");
            assert_eq!(handed[0].from, "+41446681800", "still the caller's number");
            // Heard first, the end comes before the hand-over; heard second, it tells nothing.
            let ended = events
                .iter()
                .filter(|e| e.event_type == EventType::Ended)
                .count();
            assert_eq!(ended, usize::from(reordered), "{events:?}");
        }
        // Forwarded to a colleague's number: a transfer to them, waiting for their leg.
        let mut t = talking();
        let events = t.apply(
            &forwarded_to("+14085550102", "2026-12-02T10:01:00.000Z"),
            Source::Webhook,
            &Dir,
            "now",
        );
        assert_eq!(events[0].transfer_to.as_deref(), Some("bob@example.com"));
        assert_eq!(events[0].reason, None);
    }

    #[test]
    fn the_targets_call_naming_the_rep_after_her_end_tells_her_transfer_late() {
        let mut t = talking();
        let gone = t.apply(
            &delivery(
                "C1",
                "p-alice",
                "disconnected",
                "disconnected",
                "2026-12-02T10:01:00.000Z",
            ),
            Source::Webhook,
            &Dir,
            "now",
        );
        assert_eq!(gone[0].event_type, EventType::Ended);
        let mut bob = delivery(
            "C2",
            "p-bob",
            "received",
            "alerting",
            "2026-12-02T10:00:59.990Z",
        );
        bob["data"]["redirections"] =
            json!([{"reason": "unknown", "redirectingParty": {"personId": "p-alice"}}]);
        let events = t.apply(&bob, Source::Webhook, &Dir, "now");
        let kinds: Vec<_> = events
            .iter()
            .map(|e| (e.event_type, e.agent.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (EventType::Ringing, "bob@example.com"),
                (EventType::Transferred, "alice@example.com")
            ]
        );
        assert_eq!(events[1].at, "2026-12-02T10:01:00.000Z", "at her end");
        assert_eq!(events[1].transfer_to.as_deref(), Some("bob@example.com"));
        assert_eq!(events[1].id, "webex:C1:transferred");
        assert_eq!(events[1].call_id, "S1");
        // Told once.
        let again = t.apply(
            &delivery(
                "C2",
                "p-bob",
                "connected",
                "connected",
                "2026-12-02T10:01:03.000Z",
            ),
            Source::Webhook,
            &Dir,
            "now",
        );
        assert!(again.iter().all(|e| e.event_type != EventType::Transferred));
    }

    #[test]
    fn a_call_placed_on_the_phone_while_holding_one_is_its_consultation() {
        let mut t = talking();
        t.apply(
            &delivery("C1", "p-alice", "held", "held", "2026-12-02T10:01:00.000Z"),
            Source::Webhook,
            &Dir,
            "now",
        );
        let mut own = delivery(
            "C2",
            "p-alice",
            "originated",
            "alerting",
            "2026-12-02T10:01:01.000Z",
        );
        own["data"]["callSessionId"] = json!("S2");
        own["data"]["personality"] = json!("originator");
        assert!(
            t.apply(&own, Source::Webhook, &Dir, "now").is_empty(),
            "not shown"
        );
        let mut bob = delivery(
            "C3",
            "p-bob",
            "received",
            "alerting",
            "2026-12-02T10:01:01.100Z",
        );
        bob["data"]["callSessionId"] = json!("S2");
        let rung = t.apply(&bob, Source::Webhook, &Dir, "now");
        assert_eq!(
            (rung[0].call_id.as_str(), rung[0].event_type),
            ("S1", EventType::Ringing)
        );
        assert_eq!(rung[0].from, "+41446681800", "the caller's number");
        let mut answered = bob.clone();
        answered["data"]["eventType"] = json!("connected");
        answered["data"]["state"] = json!("connected");
        answered["data"]["eventTimestamp"] = json!("2026-12-02T10:01:04.000Z");
        t.apply(&answered, Source::Webhook, &Dir, "now");
        // Completed on the phone: alice's calls end, bob's joins the consulted call's session.
        let gone = t.apply(
            &delivery(
                "C1",
                "p-alice",
                "disconnected",
                "disconnected",
                "2026-12-02T10:01:10.000Z",
            ),
            Source::Webhook,
            &Dir,
            "now",
        );
        assert_eq!(gone[0].event_type, EventType::Ended, "nothing tells it yet");
        let mut own_gone = own.clone();
        own_gone["data"]["eventType"] = json!("disconnected");
        own_gone["data"]["state"] = json!("disconnected");
        assert!(t.apply(&own_gone, Source::Webhook, &Dir, "now").is_empty());
        let mut joined = answered.clone();
        joined["data"]["callSessionId"] = json!("S1");
        joined["data"]["eventTimestamp"] = json!("2026-12-02T10:01:10.020Z");
        let events = t.apply(&joined, Source::Webhook, &Dir, "now");
        let handed = events
            .iter()
            .find(|e| e.event_type == EventType::Transferred)
            .expect("alice's transfer, told late");
        assert_eq!(handed.agent, "alice@example.com");
        assert_eq!(handed.transfer_to.as_deref(), Some("bob@example.com"));
        assert_eq!(handed.at, "2026-12-02T10:01:10.000Z");
        assert_eq!(handed.call_id, "S1");
    }

    #[test]
    fn a_call_placed_before_the_hold_it_follows_is_heard_is_still_its_consultation() {
        let mut t = talking();
        let mut own = delivery(
            "C2",
            "p-alice",
            "originated",
            "alerting",
            "2026-12-02T10:01:01.000Z",
        );
        own["data"]["callSessionId"] = json!("S2");
        own["data"]["personality"] = json!("originator");
        assert!(
            t.apply(&own, Source::Webhook, &Dir, "now").is_empty(),
            "not shown"
        );
        let mut bob = delivery(
            "C3",
            "p-bob",
            "received",
            "alerting",
            "2026-12-02T10:01:01.100Z",
        );
        bob["data"]["callSessionId"] = json!("S2");
        let rung = t.apply(&bob, Source::Webhook, &Dir, "now");
        assert_eq!(
            (rung[0].call_id.as_str(), rung[0].event_type),
            ("S1", EventType::Ringing)
        );
        // The hold, timed before the consultation, comes last.
        let held = t.apply(
            &delivery("C1", "p-alice", "held", "held", "2026-12-02T10:01:00.000Z"),
            Source::Webhook,
            &Dir,
            "now",
        );
        assert_eq!(
            (held[0].call_id.as_str(), held[0].event_type),
            ("S1", EventType::Held)
        );
        assert_eq!(
            t.leg_of("S1", "alice@example.com", true).as_deref(),
            Some("C2")
        );
    }

    #[test]
    fn a_call_placed_while_on_no_other_is_a_call_of_its_own() {
        let mut t = talking();
        t.apply(
            &delivery(
                "C1",
                "p-alice",
                "disconnected",
                "disconnected",
                "2026-12-02T10:01:00.000Z",
            ),
            Source::Webhook,
            &Dir,
            "now",
        );
        let mut own = delivery(
            "C2",
            "p-alice",
            "originated",
            "alerting",
            "2026-12-02T10:01:01.000Z",
        );
        own["data"]["callSessionId"] = json!("S2");
        own["data"]["personality"] = json!("originator");
        let events = t.apply(&own, Source::Webhook, &Dir, "now");
        assert_eq!(events[0].call_id, "S2");
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
