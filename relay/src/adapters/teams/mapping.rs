//! Comms notifications (reference 3.3) to the relay's events.
//!
//! One Graph call is one rep's leg; the relay's call id is the call's `callChainId` (the legs a
//! transfer or a completed consultation add share it), or, for a consultation the bot placed,
//! the call it consults on. Event ids are `teams:{chain}:{rep}:{kind}`, the same whether the
//! bot's notification or the call record told, so a replay, a duplicate or the record of a call
//! the bot saw is dropped by the relay.

use std::collections::{HashMap, HashSet};

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};
use serde_json::Value;

use crate::adapters::Amendment;

/// A consultation asked for and not yet seen: the colleague's incoming leg from the rep, or the
/// rep's outgoing call to a number (`colleague_user` is then that E.164 number).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PendingConsult {
    pub(crate) chain: String,
    pub(crate) rep_user: String,
    pub(crate) colleague_user: String,
}

/// Whether a transfer target as the relay names it is a phone number (outside the reps: every
/// Teams user of the tenant is taken for a rep, see `learn_user`).
pub(crate) fn is_number(target: &str) -> bool {
    target.starts_with('+') && target.len() > 4 && target[1..].chars().all(|c| c.is_ascii_digit())
}

/// What the adapter knows of one leg.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct LegInfo {
    pub(crate) chain: String,
    pub(crate) rep: String,
    pub(crate) user: String,
    pub(crate) direction: Direction,
    pub(crate) from: String,
    pub(crate) to: String,
    /// The other party's identity as Graph gave it (the transferee of a consultative transfer).
    pub(crate) other: Value,
    pub(crate) rung: bool,
    pub(crate) answered: bool,
    pub(crate) ended: bool,
    /// The leg is a consultation the rep `consult_by` placed to this leg's rep.
    pub(crate) consult_by: Option<String>,
    /// The bot's call is a compliance-recording invitation (`incomingContext`): its
    /// `established` is the bot joining, not the rep answering; the rep's answer is the rep in
    /// the participants.
    pub(crate) recorded: bool,
    /// The bot's recording call is established (the bot answered the invitation in time).
    pub(crate) bot_joined: bool,
    /// The rep's own call to a number they consult (`consult_by` is the rep): part of the
    /// relay's call, with no events of its own (the rep's leg of the call stays theirs).
    #[serde(default)]
    pub(crate) side: bool,
    /// Handed on from the Teams client (Graph's `terminated` after `transferAccepted`) to a
    /// party Graph's notification does not name: a colleague's leg follows, or the call
    /// record tells it went outside (see [`Tracker::outside_handovers`]).
    #[serde(default)]
    pub(crate) handed_unnamed: bool,
    /// Handed on by the relay's own transfer to this colleague: their leg follows if the bot
    /// hears their calls; if they are not under the recording policy it never comes, and the
    /// call record ends the wait (see [`Tracker::outside_handovers`]).
    #[serde(default)]
    pub(crate) handed_to: Option<String>,
    /// When the leg ended, at the relay's clock (the time its end event carried).
    #[serde(default)]
    pub(crate) ended_at: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Graph call id -> leg.
    pub(crate) legs: HashMap<String, LegInfo>,
    pub(crate) pending: Vec<PendingConsult>,
    /// Graph call id -> the rep or number it was transferred or redirected to, by our command.
    pub(crate) transfer_targets: HashMap<String, String>,
    /// Graph call ids the rep declined through the relay.
    pub(crate) declined: HashSet<String>,
    /// Chains the bot told about (their call records add nothing).
    pub(crate) seen_chains: HashSet<String>,
    /// Recording invitations the relay answered (or is answering): answered once.
    pub(crate) answering: HashSet<String>,
    /// (relay call, Graph call id) of transfers Graph reported failed (the call `established`
    /// again with a failing `resultInfo`): their target is forgotten, by every instance.
    pub(crate) failed_transfers: Vec<(String, String)>,
}

/// Whether a call resource is a policy-based recording invitation: Graph names the observed
/// participant in its `incomingContext` (inferred: an ordinary call to the bot has none).
pub(crate) fn is_recording(data: &Value) -> bool {
    data.get("incomingContext").is_some_and(|c| c.is_object())
        && data["direction"].as_str() != Some("outgoing")
}

/// The Entra user id of the rep side of a call resource.
pub(crate) fn rep_user(data: &Value) -> Option<String> {
    let incoming = data["direction"].as_str() != Some("outgoing");
    let pointer = if incoming {
        "/targets/0/identity/user/id"
    } else {
        "/source/identity/user/id"
    };
    data.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_lowercase)
}

/// The number (or, for a Teams user, nothing) of an identity set.
/// The event of a rep's leg; its id is the leg's and the kind, so a repeated notification makes
/// the same event (dropped as a duplicate downstream).
fn leg_event(leg: &LegInfo, kind: &str, event_type: EventType, now: &str) -> TelephonyEvent {
    TelephonyEvent {
        id: format!("teams:{}:{}:{kind}", leg.chain, leg.rep),
        call_id: leg.chain.clone(),
        event_type,
        direction: leg.direction,
        from: leg.from.clone(),
        to: leg.to.clone(),
        agent: leg.rep.clone(),
        at: now.to_string(),
        transfer_to: None,
        reason: None,
        recording_url: None,
    }
}

fn number(identity: &Value) -> String {
    identity
        .pointer("/phone/id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Tracker {
    /// Graph's call id of the rep's live leg in `chain` (the latest one).
    pub(crate) fn leg_of(&self, chain: &str, rep: &str, consult: bool) -> Option<String> {
        self.legs
            .iter()
            .filter(|(_, l)| {
                l.chain == chain
                    && !l.ended
                    && if consult {
                        l.consult_by.as_deref() == Some(rep)
                    } else {
                        l.rep == rep && !l.side
                    }
            })
            .map(|(id, _)| id.clone())
            .next()
    }

    /// Applies one comms notification item (`resourceData` of call `id`); `rep_of` names the
    /// rep of an Entra user id (None: not a rep, the leg is ignored).
    pub(crate) fn apply(
        &mut self,
        id: &str,
        data: &Value,
        rep_of: &dyn Fn(&str) -> Option<String>,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        let state = data["state"].as_str().unwrap_or_default();
        // A leg already known is taken by its id alone: Graph's notifications of a transfer
        // carry the call's `state` (and `resultInfo` or `terminationReason`) and nothing of
        // its parties (reference 3.3; `call-transfer` examples).
        if !self.legs.contains_key(id) {
            let Some(user) = rep_user(data) else {
                return Vec::new();
            };
            let Some(rep) = rep_of(&user) else {
                return Vec::new();
            };
            let outgoing = data["direction"].as_str() == Some("outgoing");
            let target_number = data
                .pointer("/targets/0/identity/phone/id")
                .and_then(Value::as_str)
                .map(str::to_string);
            let source_user = data
                .pointer("/source/identity/user/id")
                .and_then(Value::as_str)
                .map(str::to_lowercase);
            let consult = self
                .pending
                .iter()
                .position(|p| {
                    if outgoing {
                        // The rep's own call to the number they consult.
                        p.rep_user == user && Some(&p.colleague_user) == target_number.as_ref()
                    } else {
                        p.colleague_user == user && Some(&p.rep_user) == source_user.as_ref()
                    }
                })
                .map(|at| self.pending.remove(at));
            let side = outgoing && consult.is_some();
            let (chain, consult_by, from) = match consult {
                Some(p) if side => (p.chain, Some(rep.clone()), String::new()),
                Some(p) => {
                    let caller = self
                        .legs
                        .values()
                        .find(|l| l.chain == p.chain && l.direction == Direction::Inbound)
                        .map(|l| l.from.clone())
                        .unwrap_or_default();
                    let by = rep_of(&p.rep_user);
                    (p.chain, by, caller)
                }
                None => (
                    data["callChainId"]
                        .as_str()
                        .filter(|c| !c.is_empty())
                        .unwrap_or(id)
                        .to_string(),
                    None,
                    number(&data["source"]["identity"]),
                ),
            };
            let (direction, from, to, other) = if outgoing {
                let target = data
                    .pointer("/targets/0/identity")
                    .cloned()
                    .unwrap_or_default();
                (Direction::Outbound, String::new(), number(&target), target)
            } else {
                (
                    Direction::Inbound,
                    from,
                    String::new(),
                    data["source"]["identity"].clone(),
                )
            };
            if consult_by.is_none() {
                // A colleague's leg of the call: a hand-over from the Teams client went to them.
                for earlier in self.legs.values_mut().filter(|l| l.chain == chain) {
                    earlier.handed_unnamed = false;
                }
            }
            self.seen_chains.insert(chain.clone());
            // A consultation's own chain too: its record is the bot's call with a colleague,
            // part of the consulted call, never a call of its own to log.
            if let Some(own) = data["callChainId"].as_str().filter(|c| !c.is_empty()) {
                self.seen_chains.insert(own.to_string());
            }
            self.legs.insert(
                id.to_string(),
                LegInfo {
                    chain,
                    rep: rep.clone(),
                    user,
                    direction,
                    from,
                    to,
                    other,
                    rung: false,
                    answered: false,
                    ended: false,
                    recorded: is_recording(data),
                    bot_joined: false,
                    consult_by,
                    side,
                    handed_unnamed: false,
                    handed_to: None,
                    ended_at: None,
                },
            );
        }
        // An empty target is a transfer Graph reported failed.
        let target = self
            .transfer_targets
            .get(id)
            .filter(|t| !t.is_empty())
            .cloned();
        let declined = self.declined.contains(id);
        let Some(leg) = self.legs.get_mut(id) else {
            return Vec::new();
        };
        if leg.ended {
            return Vec::new();
        }
        if leg.side {
            // The rep's consultation of a number: the relay's call is the rep's other leg.
            leg.ended = state == "terminated";
            return Vec::new();
        }
        let failing = data
            .pointer("/resultInfo/code")
            .and_then(Value::as_u64)
            .is_some_and(|code| code >= 400);
        if state == "established" && leg.answered && failing && target.is_some() {
            // Graph: "when a call transfer fails, the call state will be `established`" with a
            // failing `resultInfo` (reference 3.3). The call goes on with the rep; a later end
            // is no hand-over to the target asked for.
            self.transfer_targets.insert(id.to_string(), String::new());
            self.failed_transfers
                .push((leg.chain.clone(), id.to_string()));
            return Vec::new();
        }
        let event = |leg: &LegInfo, kind: &str, event_type: EventType| {
            leg_event(leg, kind, event_type, now)
        };
        let mut events = Vec::new();
        // Heard of for the first time at its end (the relay restarted meanwhile): whether it
        // was answered is not known here, only how Graph says it ended.
        let unseen_before = !leg.rung;
        // Whatever came first (notifications may be reordered), the leg rang.
        if !leg.rung {
            leg.rung = true;
            events.push(event(leg, "ringing", EventType::Ringing));
        }
        match state {
            // The bot joined the recording; the rep's phone may still ring.
            "established" if leg.recorded => leg.bot_joined = true,
            "terminated"
                if leg.recorded
                    && !leg.bot_joined
                    && data.pointer("/resultInfo/code").and_then(Value::as_u64) == Some(408) =>
            {
                // The invitation was dropped unanswered (the answer failed or came late): the
                // call goes on without the bot, which hears nothing more of it. Nothing is said
                // of the rep's call here; its call record logs it, and closes the card.
                leg.ended = true;
                let chain = leg.chain.clone();
                let others = self
                    .legs
                    .iter()
                    .any(|(other, l)| other != id && l.chain == chain && l.bot_joined);
                if !others {
                    self.seen_chains.remove(&chain);
                }
                return events;
            }
            "established" if !leg.answered => {
                leg.answered = true;
                events.push(event(leg, "answered", EventType::Answered));
            }
            "terminated" => {
                leg.ended = true;
                leg.ended_at = Some(now.to_string());
                let code = data.pointer("/resultInfo/code").and_then(Value::as_u64);
                let subcode = data.pointer("/resultInfo/subcode").and_then(Value::as_u64);
                let transferred = subcode == Some(7015)
                    || data["terminationReason"].as_str() == Some("AppTransferred")
                    // Inferred: a redirected leg ends with 302.
                    || code == Some(302);
                if transferred {
                    let mut e = event(leg, "transferred", EventType::Transferred);
                    match &target {
                        // The relay's own transfer (blind, redirect or consultative) to a
                        // number: no colleague's leg follows, so the hand-over ends the call.
                        Some(number) if is_number(number) => {
                            e.reason = Some(EndReason::Completed);
                        }
                        Some(colleague) => leg.handed_to = Some(colleague.clone()),
                        // Made in the Teams client: Graph names no target (inferred from the
                        // `call-transfer` examples, whose notifications carry only the state).
                        None => leg.handed_unnamed = true,
                    }
                    e.transfer_to = target;
                    events.push(e);
                } else {
                    let reason = if leg.answered {
                        EndReason::Completed
                    } else if declined || code == Some(603) {
                        EndReason::Declined
                    } else if unseen_before && !matches!(code, Some(408 | 480 | 486 | 487)) {
                        // Inferred: an end that is not a SIP-like no-answer, cancel or busy
                        // code ends a call that was talking; a relay that lost the call
                        // hears it was answered (the same id, dropped by one that has it).
                        leg.answered = true;
                        events.push(event(leg, "answered", EventType::Answered));
                        EndReason::Completed
                    } else {
                        EndReason::Missed
                    };
                    let mut e = event(leg, "ended", EventType::Ended);
                    e.reason = Some(reason);
                    events.push(e);
                }
            }
            _ => {}
        }
        events
    }
}

impl Tracker {
    /// Whether the relay is to answer the bot's call `id` now: a recording invitation still
    /// `incoming`, not answered before (a duplicate or a replay asks once).
    pub(crate) fn should_answer(&mut self, id: &str, data: &Value) -> bool {
        let known = self.legs.get(id).is_some_and(|l| l.recorded && !l.ended);
        known && data["state"].as_str() == Some("incoming") && self.answering.insert(id.into())
    }

    /// A participants update of the bot's recording call `id` (the call's roster): the rep in it
    /// means the rep answered (inferred: a rep whose phone rings is not in the call yet).
    pub(crate) fn participants(
        &mut self,
        id: &str,
        roster: &Value,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        let Some(leg) = self.legs.get_mut(id) else {
            return Vec::new();
        };
        if !leg.recorded || leg.ended || leg.answered {
            return Vec::new();
        }
        let joined = roster.as_array().into_iter().flatten().any(|p| {
            p.pointer("/info/identity/user/id")
                .and_then(Value::as_str)
                .is_some_and(|u| u.eq_ignore_ascii_case(&leg.user))
        });
        if !joined {
            return Vec::new();
        }
        let event = |leg: &LegInfo, kind: &str, event_type: EventType| {
            leg_event(leg, kind, event_type, now)
        };
        let mut events = Vec::new();
        if !leg.rung {
            leg.rung = true;
            events.push(event(leg, "ringing", EventType::Ringing));
        }
        leg.answered = true;
        events.push(event(leg, "answered", EventType::Answered));
        events
    }
}

impl Tracker {
    /// Hand-overs the call's record shows went where the bot hears nothing, so no colleague's
    /// leg will ever end the wait. Graph writes the record once the call is over (reference
    /// 3.1), by which time every leg the bot was to hear has come. Two kinds wait:
    /// - made in the Teams client (`handed_unnamed`): Graph's notifications of such a transfer
    ///   name no target. If no leg of another rep was live when this one ended, it went to a
    ///   number outside, or to a Teams user outside the recording policy (inferred: a recorded
    ///   colleague's leg would have come before the record);
    /// - made by the relay to a colleague (`handed_to`) whose leg never came: a Teams user who
    ///   is not under the policy (the relay takes every Teams user for a rep, since Graph does
    ///   not say who is under a policy).
    ///
    /// Each becomes a `transferred` with a reason, at the leg's own end, naming the number the
    /// record shows the caller went to (or the colleague asked for): the call is logged as
    /// handed out of the relay's sight.
    pub(crate) fn outside_handovers(&mut self, record: &Value) -> Vec<TelephonyEvent> {
        let Some(chain) = record["id"].as_str() else {
            return Vec::new();
        };
        let outside: Vec<String> = self
            .legs
            .iter()
            .filter(|(_, l)| l.chain == chain && (l.handed_unnamed || l.handed_to.is_some()))
            .filter(|(_, l)| !self.colleague_heard(l))
            .map(|(id, _)| id.clone())
            .collect();
        let mut events = Vec::new();
        for id in outside {
            let Some(leg) = self.legs.get_mut(&id) else {
                continue;
            };
            leg.handed_unnamed = false;
            let colleague = leg.handed_to.take();
            let remote = match leg.direction {
                Direction::Inbound => leg.from.clone(),
                Direction::Outbound => leg.to.clone(),
            };
            let at = leg
                .ended_at
                .clone()
                .or_else(|| record["endDateTime"].as_str().map(str::to_string))
                .unwrap_or_default();
            let mut e = leg_event(leg, "outside", EventType::Transferred, &at);
            e.transfer_to = colleague.or_else(|| outside_party(record, &remote));
            e.reason = Some(EndReason::Completed);
            events.push(e);
        }
        events
    }

    /// Whether the bot heard the leg of whoever `leg` was handed to: the colleague it was
    /// transferred to, or (not named) another rep's leg still live when `leg` ended.
    fn colleague_heard(&self, leg: &LegInfo) -> bool {
        let ended = leg.ended_at.as_deref().and_then(crate::clock::instant);
        self.legs.values().any(|other| {
            other.chain == leg.chain
                && !other.side
                && !other.rep.eq_ignore_ascii_case(&leg.rep)
                && match &leg.handed_to {
                    Some(colleague) => other.rep.eq_ignore_ascii_case(colleague),
                    None => match (
                        ended,
                        other.ended_at.as_deref().and_then(crate::clock::instant),
                    ) {
                        (Some(ended), Some(other_ended)) => other_ended >= ended,
                        _ => !other.ended,
                    },
                }
        })
    }
}

/// The number a call record shows on a session besides the call's own remote party: where the
/// call went outside the reps.
fn outside_party(record: &Value, remote: &str) -> Option<String> {
    record["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| [&s["callee"]["identity"], &s["caller"]["identity"]])
        .map(number)
        .find(|n| !n.is_empty() && n != remote)
}

/// One session of a call record with a rep on one side, as the relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordSession {
    /// The record's id: the call's `callChainId`.
    pub(crate) chain: String,
    pub(crate) rep: String,
    /// The rep's Entra user id.
    pub(crate) user: String,
    pub(crate) direction: Direction,
    pub(crate) from: String,
    pub(crate) to: String,
    /// The session's start and end (the record's where the session has none).
    pub(crate) start: String,
    pub(crate) end: String,
    /// The session failed at set-up (inferred: a leg nobody answered).
    pub(crate) failed: bool,
}

impl RecordSession {
    /// The other party's number.
    pub(crate) fn remote(&self) -> &str {
        match self.direction {
            Direction::Inbound => &self.from,
            Direction::Outbound => &self.to,
        }
    }
}

/// The sessions of a call record that have a rep on one side (the callee first: a call to a
/// rep is inbound for them).
pub(crate) fn record_sessions(
    record: &Value,
    rep_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<RecordSession> {
    let Some(chain) = record["id"].as_str() else {
        return Vec::new();
    };
    let user_of = |identity: &Value| {
        identity
            .pointer("/user/id")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
    };
    let mut sessions = Vec::new();
    for session in record["sessions"].as_array().into_iter().flatten() {
        let caller = &session["caller"]["identity"];
        let callee = &session["callee"]["identity"];
        let rep_side = |identity: &Value| user_of(identity).and_then(|u| Some((rep_of(&u)?, u)));
        let ((rep, user), direction, from, to) = if let Some(rep) = rep_side(callee) {
            (rep, Direction::Inbound, number(caller), String::new())
        } else if let Some(rep) = rep_side(caller) {
            (rep, Direction::Outbound, String::new(), number(callee))
        } else {
            continue;
        };
        let start = session["startDateTime"]
            .as_str()
            .or(record["startDateTime"].as_str())
            .unwrap_or_default()
            .to_string();
        let end = session["endDateTime"]
            .as_str()
            .or(record["endDateTime"].as_str())
            .unwrap_or(&start)
            .to_string();
        sessions.push(RecordSession {
            chain: chain.to_string(),
            rep,
            user,
            direction,
            from,
            to,
            start,
            end,
            failed: session.get("failureInfo").is_some_and(|f| !f.is_null()),
        });
    }
    sessions
}

/// The events of a call record for a call the bot never told about (a rep outside the
/// compliance-recording policy, a notification lost for good): per session with a rep, ringing
/// and, unless the session failed at set-up (inferred: a missed leg), answered; then the end,
/// at the session's exact times.
pub(crate) fn record_events(
    record: &Value,
    rep_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<TelephonyEvent> {
    record_sessions(record, rep_of)
        .iter()
        .flat_map(session_events)
        .collect()
}

/// One record session's events (see [`record_events`]).
pub(crate) fn session_events(session: &RecordSession) -> Vec<TelephonyEvent> {
    let event = |kind: &str, event_type: EventType, at: &str| TelephonyEvent {
        id: format!("teams:{}:{}:{kind}", session.chain, session.rep),
        call_id: session.chain.clone(),
        event_type,
        direction: session.direction,
        from: session.from.clone(),
        to: session.to.clone(),
        agent: session.rep.clone(),
        at: at.to_string(),
        transfer_to: None,
        reason: None,
        recording_url: None,
    };
    let mut events = vec![event("ringing", EventType::Ringing, &session.start)];
    if !session.failed {
        events.push(event("answered", EventType::Answered, &session.start));
    }
    let mut end_event = event("ended", EventType::Ended, &session.end);
    end_event.reason = Some(if session.failed {
        EndReason::Missed
    } else {
        EndReason::Completed
    });
    events.push(end_event);
    events
}

/// What the call record of a call the bot told about says more exactly than the bot's
/// notifications (heard at the relay's clock, with the caller hidden where Graph keeps the
/// source encrypted): per rep, the answer (the start of their first session that did not fail:
/// inferred, a session starts when its callee joins) and the end of their last, the other
/// party's number; the call's start (the record's) for the rep of its first session.
pub(crate) fn record_amendments(
    record: &Value,
    rep_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<Amendment> {
    let sessions = record_sessions(record, rep_of);
    let first = sessions
        .iter()
        .min_by_key(|s| crate::clock::instant(&s.start))
        .map(|s| s.rep.clone());
    let mut amendments: Vec<Amendment> = Vec::new();
    for session in &sessions {
        let at = amendments.iter().position(|a| a.agent == session.rep);
        let amendment = match at {
            Some(at) => &mut amendments[at],
            None => {
                amendments.push(Amendment {
                    call_id: session.chain.clone(),
                    agent: session.rep.clone(),
                    started_at: (first.as_deref() == Some(session.rep.as_str()))
                        .then(|| record["startDateTime"].as_str().map(str::to_string))
                        .flatten(),
                    direction: Some(session.direction),
                    remote: Some(session.remote().to_string()).filter(|r| !r.is_empty()),
                    ..Amendment::default()
                });
                let last = amendments.len() - 1;
                &mut amendments[last]
            }
        };
        let earlier = |a: &str, b: &str| crate::clock::instant(a) < crate::clock::instant(b);
        if !session.failed
            && amendment
                .answered_at
                .as_deref()
                .is_none_or(|at| earlier(&session.start, at))
        {
            amendment.answered_at = Some(session.start.clone());
        }
        if amendment
            .ended_at
            .as_deref()
            .is_none_or(|at| earlier(at, &session.end))
        {
            amendment.ended_at = Some(session.end.clone());
        }
    }
    amendments
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rep_of(user: &str) -> Option<String> {
        match user {
            "u-alice" => Some("alice@example.com".into()),
            "u-bob" => Some("bob@example.com".into()),
            _ => None,
        }
    }

    /// A call to alice, handed to bob, as Graph records it.
    fn transferred_call() -> Value {
        let caller = json!({"phone": {"id": "+41446681800"}});
        json!({"id": "chain-1", "startDateTime": "2026-12-02T10:00:00.125Z",
        "endDateTime": "2026-12-02T10:05:00.400Z",
        "sessions": [
            {"startDateTime": "2026-12-02T10:00:04.250Z", "endDateTime": "2026-12-02T10:02:00.010Z",
             "caller": {"identity": caller}, "callee": {"identity": {"user": {"id": "U-Alice"}}}},
            {"startDateTime": "2026-12-02T10:02:03.500Z", "endDateTime": "2026-12-02T10:05:00.400Z",
             "caller": {"identity": caller}, "callee": {"identity": {"user": {"id": "u-bob"}}}},
            {"startDateTime": "2026-12-02T10:02:01Z", "endDateTime": "2026-12-02T10:02:02Z",
             "caller": {"identity": caller}, "callee": {"identity": {"user": {"id": "u-carol"}}},
             "failureInfo": {"stage": "callSetup", "reason": "NoAnswer"}}
        ]})
    }

    #[test]
    fn a_record_of_a_call_the_bot_heard_gives_each_rep_the_exact_times_and_the_caller() {
        let amendments = record_amendments(&transferred_call(), &rep_of);
        assert_eq!(amendments.len(), 2, "carol is no rep: {amendments:?}");
        let alice = &amendments[0];
        assert_eq!(alice.agent, "alice@example.com");
        assert_eq!(alice.call_id, "chain-1");
        assert_eq!(
            alice.started_at.as_deref(),
            Some("2026-12-02T10:00:00.125Z"),
            "the call's start is the first rep's"
        );
        assert_eq!(
            alice.answered_at.as_deref(),
            Some("2026-12-02T10:00:04.250Z")
        );
        assert_eq!(alice.ended_at.as_deref(), Some("2026-12-02T10:02:00.010Z"));
        assert_eq!(alice.remote.as_deref(), Some("+41446681800"));
        assert_eq!(alice.direction, Some(Direction::Inbound));
        let bob = &amendments[1];
        assert_eq!(bob.started_at, None, "bob's leg began at the transfer");
        assert_eq!(bob.answered_at.as_deref(), Some("2026-12-02T10:02:03.500Z"));
        assert_eq!(bob.ended_at.as_deref(), Some("2026-12-02T10:05:00.400Z"));
    }

    #[test]
    fn a_rep_with_two_sessions_is_answered_at_the_first_and_ends_with_the_last() {
        let mut record = transferred_call();
        record["sessions"][1]["callee"]["identity"]["user"]["id"] = json!("u-alice");
        let amendments = record_amendments(&record, &rep_of);
        assert_eq!(amendments.len(), 1);
        assert_eq!(
            amendments[0].answered_at.as_deref(),
            Some("2026-12-02T10:00:04.250Z")
        );
        assert_eq!(
            amendments[0].ended_at.as_deref(),
            Some("2026-12-02T10:05:00.400Z")
        );
    }

    #[test]
    fn a_failed_session_is_a_missed_leg_and_a_record_without_an_id_is_nothing() {
        let mut record = transferred_call();
        record["sessions"][0]["failureInfo"] = json!({"stage": "callSetup"});
        let amendments = record_amendments(&record, &rep_of);
        assert_eq!(amendments[0].answered_at, None);
        let events = record_events(&record, &rep_of);
        let alice: Vec<_> = events
            .iter()
            .filter(|e| e.agent == "alice@example.com")
            .map(|e| e.event_type)
            .collect();
        assert_eq!(alice, [EventType::Ringing, EventType::Ended]);
        record["id"] = Value::Null;
        assert!(record_amendments(&record, &rep_of).is_empty());
        assert!(record_events(&record, &rep_of).is_empty());
    }
}
