//! Full call snapshots (`v2.users.{id}.conversations.calls`, reference 1.3) to the relay's events.
//!
//! Genesys sends the whole conversation on every change, once per subscribed user's topic,
//! possibly twice or out of order, and carries no sequence number. So every event is derived
//! from the snapshot with an id made of the conversation, the participant and what happened
//! (`gc:{conversationId}:{participantId}:answered`): a duplicate, a replay after a reconnect's
//! catch-up or a relay restart yields only ids the relay already has. Order is judged by
//! progress, since nothing else orders snapshots: one that lacks a participant the last one had,
//! or shows a participant earlier in its life (connected -> alerting, disconnected -> connected,
//! a `connectedTime` or `endTime` gone), is late and dropped (inferred). A late snapshot that
//! differs only in hold state cannot be told from a new one; the connector reads a conversation
//! back a moment after each hold change, which sets two swapped hold changes right.
//!
//! Mapping (reference 1.3's table, inferred there from the enums), for each participant whose
//! user is one of the tenant's reps:
//! - ringing: the participant exists (alerting inbound, dialing/contacting outbound);
//! - answered: `connectedTime` set;
//! - held / resumed: `held` with its `startHoldTime`, or a consultation the rep started (another
//!   live participant whose `consultParticipantId` is the rep's participant; the simulator's
//!   reading, inferred) is a hold of the rep's leg until it ends;
//! - transferred: disconnected after being connected with a `transfer*` `disconnectType`,
//!   `transfer_to` the consulted participant's rep (or number), else the newest other
//!   agent or external participant's;
//! - ended: disconnected otherwise, reason completed when it had been connected, else declined
//!   (`client`: the rep refused it) or missed on an inbound call, failed on an outbound one.

use std::collections::{HashMap, VecDeque};

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};
use serde::Deserialize;

/// How many finished conversations are remembered (to drop their late snapshots).
const REMEMBER_ENDED: usize = 2_000;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct IdRef {
    #[serde(default)]
    pub id: String,
}

/// The participant fields the relay reads (reference 1.3, names exact); the rest is ignored.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Participant {
    pub id: String,
    pub address: Option<String>,
    pub start_time: Option<String>,
    pub connected_time: Option<String>,
    pub end_time: Option<String>,
    pub start_hold_time: Option<String>,
    pub purpose: Option<String>,
    pub state: Option<String>,
    pub direction: Option<String>,
    pub disconnect_type: Option<String>,
    pub held: Option<bool>,
    pub user: Option<IdRef>,
    pub ani: Option<String>,
    pub dnis: Option<String>,
    pub consult_participant_id: Option<String>,
}

/// `eventBody` of a call topic, and the answer of `GET /api/v2/conversations/calls/{id}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Snapshot {
    pub id: String,
    pub participants: Vec<Participant>,
}

impl Participant {
    fn state(&self) -> &str {
        self.state.as_deref().unwrap_or("")
    }

    fn gone(&self) -> bool {
        matches!(self.state(), "disconnected" | "terminated")
    }

    /// How far in its life the participant is: ringing 0, connected 1, gone 2.
    fn stage(&self) -> u8 {
        match self.state() {
            "connected" => 1,
            "disconnected" | "terminated" => 2,
            _ => 0,
        }
    }

    fn user_id(&self) -> Option<&str> {
        self.user
            .as_ref()
            .map(|u| u.id.as_str())
            .filter(|id| !id.is_empty())
    }
}

impl Snapshot {
    /// Whether every conversation participant is gone.
    pub fn ended(&self) -> bool {
        !self.participants.is_empty() && self.participants.iter().all(Participant::gone)
    }

    /// Whether this snapshot is older than `last`, by the progress of its participants.
    fn behind(&self, last: &Snapshot) -> bool {
        last.participants.iter().any(|before| {
            let Some(now) = self.participants.iter().find(|p| p.id == before.id) else {
                return true;
            };
            now.stage() < before.stage()
                || (before.connected_time.is_some() && now.connected_time.is_none())
                || (before.end_time.is_some() && now.end_time.is_none())
        })
    }

    pub fn participant(&self, id: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.id == id)
    }
}

/// A `tel:` URI as the number the relay normalizes (reference: expect `tel:` URIs, tolerate bare
/// E.164).
pub fn strip_tel(uri: &str) -> String {
    uri.trim()
        .strip_prefix("tel:")
        .unwrap_or(uri.trim())
        .to_string()
}

#[derive(Debug, Default)]
struct Memory {
    last: Snapshot,
    /// The open hold of each of our participants, by its key.
    holds: HashMap<String, String>,
}

/// What the adapter remembers of each conversation between snapshots.
#[derive(Debug, Default)]
pub struct Tracker {
    conversations: HashMap<String, Memory>,
    ended: VecDeque<String>,
}

impl Tracker {
    /// The newest snapshot applied for a conversation.
    pub fn last(&self, conversation: &str) -> Option<&Snapshot> {
        self.conversations.get(conversation).map(|m| &m.last)
    }

    /// Forgets a conversation, so its next snapshot derives every event again (after the relay
    /// could not apply one).
    pub fn forget(&mut self, conversation: &str) {
        self.conversations.remove(conversation);
    }

    /// The conversations seen and not yet ended.
    pub fn open(&self) -> Vec<String> {
        self.conversations
            .iter()
            .filter(|(_, m)| !m.last.ended())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Applies one snapshot; the events it brings, in order. `rep_of` maps a Genesys user to a
    /// rep, `now` is the time for events the snapshot carries no time for.
    pub fn apply(
        &mut self,
        snapshot: Snapshot,
        rep_of: impl Fn(&str) -> Option<String>,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        if snapshot.id.is_empty() {
            return Vec::new();
        }
        let memory = self.conversations.entry(snapshot.id.clone()).or_default();
        let first = memory.last.participants.is_empty();
        if !first && (memory.last == snapshot || snapshot.behind(&memory.last)) {
            return Vec::new();
        }
        let events = derive(&snapshot, memory, &rep_of, now);
        let ended = snapshot.ended();
        let id = snapshot.id.clone();
        memory.last = snapshot;
        if ended && !self.ended.contains(&id) {
            self.ended.push_back(id);
            while self.ended.len() > REMEMBER_ENDED {
                if let Some(old) = self.ended.pop_front() {
                    self.conversations.remove(&old);
                }
            }
        }
        events
    }
}

fn derive(
    snapshot: &Snapshot,
    memory: &mut Memory,
    rep_of: &impl Fn(&str) -> Option<String>,
    now: &str,
) -> Vec<TelephonyEvent> {
    let cid = &snapshot.id;
    let customer = snapshot
        .participants
        .iter()
        .find(|p| matches!(p.purpose.as_deref(), Some("customer" | "external")));
    let mut events = Vec::new();
    for p in &snapshot.participants {
        let Some(agent) = p.user_id().and_then(rep_of) else {
            continue;
        };
        let direction = match p.direction.as_deref() {
            Some("outbound") => Direction::Outbound,
            _ => Direction::Inbound,
        };
        let number = |own: &Option<String>, theirs: Option<&Option<String>>| {
            own.as_deref()
                .filter(|s| !s.trim().is_empty())
                .or_else(|| theirs.and_then(|t| t.as_deref()))
                .map(strip_tel)
                .unwrap_or_default()
        };
        let from = number(&p.ani, customer.map(|c| &c.ani));
        let to = number(&p.dnis, customer.map(|c| &c.dnis));
        let event = |what: EventType, key: &str, at: Option<&String>| TelephonyEvent {
            id: format!("gc:{cid}:{}:{key}", p.id),
            call_id: cid.clone(),
            event_type: what,
            direction,
            from: from.clone(),
            to: to.clone(),
            agent: agent.clone(),
            at: at.cloned().unwrap_or_else(|| now.to_string()),
            transfer_to: None,
            reason: None,
            recording_url: None,
        };
        events.push(event(EventType::Ringing, "ringing", p.start_time.as_ref()));
        if p.connected_time.is_some() {
            events.push(event(
                EventType::Answered,
                "answered",
                p.connected_time.as_ref(),
            ));
        }
        // Holds: the participant's own, or the consultation it started.
        let hold = if p.state() == "connected" {
            if p.held == Some(true) {
                Some(format!(
                    "held:{}",
                    p.start_hold_time.as_deref().unwrap_or("")
                ))
            } else {
                snapshot
                    .participants
                    .iter()
                    .find(|q| {
                        q.consult_participant_id.as_deref() == Some(p.id.as_str()) && !q.gone()
                    })
                    .map(|q| format!("held:consult:{}", q.id))
            }
        } else {
            None
        };
        let open = memory.holds.get(&p.id).cloned();
        if open != hold {
            if let Some(open) = &open
                && !p.gone()
            {
                events.push(event(EventType::Resumed, &format!("resumed:{open}"), None));
            }
            match &hold {
                Some(key) => {
                    let at = p.start_hold_time.clone();
                    events.push(event(EventType::Held, key, at.as_ref()));
                    memory.holds.insert(p.id.clone(), key.clone());
                }
                None => {
                    memory.holds.remove(&p.id);
                }
            }
        }
        if p.gone() {
            let transfer = p
                .disconnect_type
                .as_deref()
                .is_some_and(|t| t.starts_with("transfer"));
            let target = (transfer && p.connected_time.is_some())
                .then(|| transfer_target(snapshot, p, rep_of))
                .flatten();
            match target {
                Some((target, colleague)) => {
                    let mut e = event(EventType::Transferred, "transferred", p.end_time.as_ref());
                    e.transfer_to = Some(target);
                    if !colleague {
                        // Handed outside the relay's reps (a number, or a Genesys user who is
                        // no rep here): no colleague's leg follows, so this ends the call.
                        e.reason = Some(EndReason::Completed);
                    }
                    events.push(e);
                }
                None => {
                    let reason = if p.connected_time.is_some() {
                        EndReason::Completed
                    } else if direction == Direction::Outbound {
                        EndReason::Failed
                    } else if p.disconnect_type.as_deref() == Some("client") {
                        EndReason::Declined
                    } else {
                        EndReason::Missed
                    };
                    let mut e = event(EventType::Ended, "ended", p.end_time.as_ref());
                    e.reason = Some(reason);
                    events.push(e);
                }
            }
        }
    }
    events
}

/// Who a transferred participant handed the call to: the participant it consulted, else the
/// newest agent or external participant after it; their rep (true: a colleague, whose leg
/// follows), else their number (false: outside the relay's reps).
fn transfer_target(
    snapshot: &Snapshot,
    from: &Participant,
    rep_of: &impl Fn(&str) -> Option<String>,
) -> Option<(String, bool)> {
    let consulted = snapshot
        .participants
        .iter()
        .find(|q| q.consult_participant_id.as_deref() == Some(from.id.as_str()));
    let position = snapshot.participants.iter().position(|q| q.id == from.id)?;
    let newest = snapshot.participants[position + 1..]
        .iter()
        .rev()
        .find(|q| matches!(q.purpose.as_deref(), Some("agent" | "external" | "user")));
    let target = consulted.or(newest)?;
    if let Some(rep) = target.user_id().and_then(rep_of) {
        return Some((rep, true));
    }
    target
        .address
        .as_deref()
        .map(strip_tel)
        .filter(|t| !t.is_empty())
        .map(|number| (number, false))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const NOW: &str = "2026-12-02T10:00:09.000Z";

    fn rep_of(user: &str) -> Option<String> {
        match user {
            "U1" => Some("alice@example.com".into()),
            "U2" => Some("bob@example.com".into()),
            _ => None,
        }
    }

    fn customer() -> Value {
        json!({"id": "P-cust", "purpose": "customer", "state": "connected", "direction": "inbound",
            "address": "tel:+13175550100", "ani": "tel:+13175550100", "dnis": "tel:+18005550199",
            "startTime": "2026-12-02T10:00:00.000Z", "held": false})
    }

    fn agent(id: &str, user: &str, state: &str) -> Value {
        json!({"id": id, "purpose": "agent", "state": state, "direction": "inbound",
            "user": {"id": user}, "startTime": "2026-12-02T10:00:01.000Z", "held": false,
            "ani": "tel:+13175550100", "dnis": "tel:+18005550199"})
    }

    fn snap(participants: Vec<Value>) -> Snapshot {
        serde_json::from_value(json!({"id": "C1", "participants": participants})).expect("snapshot")
    }

    fn apply(tracker: &mut Tracker, participants: Vec<Value>) -> Vec<(String, EventType)> {
        tracker
            .apply(snap(participants), rep_of, NOW)
            .into_iter()
            .map(|e| (e.id, e.event_type))
            .collect()
    }

    fn ids(events: &[(String, EventType)]) -> Vec<&str> {
        events.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn ringing() -> Vec<Value> {
        vec![customer(), agent("PA", "U1", "alerting")]
    }

    fn connected() -> Vec<Value> {
        let mut a = agent("PA", "U1", "connected");
        a["connectedTime"] = json!("2026-12-02T10:00:03.000Z");
        vec![customer(), a]
    }

    fn held() -> Vec<Value> {
        let mut p = connected();
        p[1]["held"] = json!(true);
        p[1]["startHoldTime"] = json!("2026-12-02T10:00:05.000Z");
        p
    }

    #[test]
    fn a_ring_answer_hold_resume_hang_up_is_one_event_each_with_stable_ids() {
        let mut t = Tracker::default();
        let e = t.apply(snap(ringing()), rep_of, NOW);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].id, "gc:C1:PA:ringing");
        assert_eq!(e[0].event_type, EventType::Ringing);
        assert_eq!(e[0].from, "+13175550100");
        assert_eq!(e[0].to, "+18005550199");
        assert_eq!(e[0].agent, "alice@example.com");
        assert_eq!(e[0].at, "2026-12-02T10:00:01.000Z");
        // Every snapshot re-derives what it shows; the relay drops ids it has.
        let e = apply(&mut t, connected());
        assert_eq!(ids(&e), ["gc:C1:PA:ringing", "gc:C1:PA:answered"]);
        let e = apply(&mut t, held());
        assert_eq!(
            e.last(),
            Some(&(
                "gc:C1:PA:held:2026-12-02T10:00:05.000Z".to_string(),
                EventType::Held
            ))
        );
        let e = apply(&mut t, connected());
        assert_eq!(
            e.last(),
            Some(&(
                "gc:C1:PA:resumed:held:2026-12-02T10:00:05.000Z".to_string(),
                EventType::Resumed
            ))
        );
        let mut gone = connected();
        gone[1]["state"] = json!("disconnected");
        gone[1]["disconnectType"] = json!("client");
        gone[1]["endTime"] = json!("2026-12-02T10:00:08.000Z");
        gone[0]["state"] = json!("disconnected");
        let events = t.apply(snap(gone), rep_of, NOW);
        let last = events.last().expect("ended");
        assert_eq!(last.id, "gc:C1:PA:ended");
        assert_eq!(last.reason, Some(EndReason::Completed));
        assert_eq!(last.at, "2026-12-02T10:00:08.000Z");
    }

    #[test]
    fn duplicates_and_late_snapshots_bring_nothing() {
        let mut t = Tracker::default();
        apply(&mut t, ringing());
        assert!(apply(&mut t, ringing()).is_empty(), "a duplicate");
        apply(&mut t, connected());
        assert!(apply(&mut t, ringing()).is_empty(), "a late ringing");
        assert!(apply(&mut t, connected()).is_empty(), "the same again");
    }

    #[test]
    fn reordered_snapshots_still_give_every_event_once_in_a_sensible_order() {
        let mut t = Tracker::default();
        // The answered snapshot overtakes the ringing one.
        let e = apply(&mut t, connected());
        assert_eq!(ids(&e), ["gc:C1:PA:ringing", "gc:C1:PA:answered"]);
        assert!(apply(&mut t, ringing()).is_empty());
    }

    #[test]
    fn a_customer_hanging_up_while_it_rings_is_a_missed_call_and_a_refusal_is_declined() {
        let mut t = Tracker::default();
        apply(&mut t, ringing());
        let mut gone = ringing();
        gone[0]["state"] = json!("disconnected");
        gone[0]["disconnectType"] = json!("endpoint");
        gone[1]["state"] = json!("disconnected");
        gone[1]["disconnectType"] = json!("peer");
        gone[1]["endTime"] = json!("2026-12-02T10:00:04.000Z");
        let e = t.apply(snap(gone.clone()), rep_of, NOW);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].event_type, EventType::Ended);
        assert_eq!(e[1].reason, Some(EndReason::Missed));
        let mut t = Tracker::default();
        gone[1]["disconnectType"] = json!("client");
        let e = t.apply(snap(gone), rep_of, NOW);
        assert_eq!(e[1].reason, Some(EndReason::Declined));
    }

    #[test]
    fn a_blind_transfer_is_transferred_for_the_rep_and_ringing_for_the_colleague() {
        let mut t = Tracker::default();
        apply(&mut t, connected());
        let mut p = connected();
        p[1]["state"] = json!("disconnected");
        p[1]["disconnectType"] = json!("transfer");
        p[1]["endTime"] = json!("2026-12-02T10:00:06.000Z");
        p.push(agent("PB", "U2", "alerting"));
        let e = t.apply(snap(p), rep_of, NOW);
        let transferred = e
            .iter()
            .find(|e| e.event_type == EventType::Transferred)
            .expect("transferred");
        assert_eq!(transferred.id, "gc:C1:PA:transferred");
        assert_eq!(transferred.agent, "alice@example.com");
        assert_eq!(transferred.transfer_to.as_deref(), Some("bob@example.com"));
        assert_eq!(transferred.reason, None, "the call waits for the colleague");
        let ring = e
            .iter()
            .find(|e| e.agent == "bob@example.com")
            .expect("bob rings");
        assert_eq!(ring.id, "gc:C1:PB:ringing");
        assert!(!e.iter().any(|e| e.event_type == EventType::Ended));
    }

    #[test]
    fn a_transfer_to_a_number_names_the_number() {
        let mut t = Tracker::default();
        let mut p = connected();
        p[1]["state"] = json!("disconnected");
        p[1]["disconnectType"] = json!("transfer");
        p.push(
            json!({"id": "PX", "purpose": "external", "state": "contacting",
            "address": "tel:+41445550000"}),
        );
        let e = t.apply(snap(p), rep_of, NOW);
        let transferred = e.last().expect("transferred");
        assert_eq!(transferred.transfer_to.as_deref(), Some("+41445550000"));
        assert_eq!(
            transferred.reason,
            Some(EndReason::Completed),
            "outside the reps: the hand-over ends the call"
        );
    }

    fn consulting() -> Vec<Value> {
        let mut p = connected();
        p[0]["held"] = json!(true);
        let mut bob = agent("PB", "U2", "alerting");
        bob["consultParticipantId"] = json!("PA");
        p.push(bob);
        p
    }

    #[test]
    fn a_consult_holds_the_rep_rings_the_colleague_and_completes_as_a_transfer() {
        let mut t = Tracker::default();
        apply(&mut t, connected());
        let e = apply(&mut t, consulting());
        assert!(e.contains(&("gc:C1:PA:held:consult:PB".to_string(), EventType::Held)));
        assert!(e.contains(&("gc:C1:PB:ringing".to_string(), EventType::Ringing)));
        let mut p = consulting();
        p[2]["state"] = json!("connected");
        p[2]["connectedTime"] = json!("2026-12-02T10:00:07.000Z");
        let e = apply(&mut t, p.clone());
        assert!(e.contains(&("gc:C1:PB:answered".to_string(), EventType::Answered)));
        assert!(!e.iter().any(|(_, what)| *what == EventType::Resumed));
        p[0]["held"] = json!(false);
        p[1]["state"] = json!("disconnected");
        p[1]["disconnectType"] = json!("transfer.consult");
        p[1]["endTime"] = json!("2026-12-02T10:00:08.000Z");
        let events = t.apply(snap(p), rep_of, NOW);
        let transferred = events
            .iter()
            .find(|e| e.event_type == EventType::Transferred)
            .expect("transferred");
        assert_eq!(transferred.agent, "alice@example.com");
        assert_eq!(transferred.transfer_to.as_deref(), Some("bob@example.com"));
        assert!(!events.iter().any(|e| e.event_type == EventType::Resumed));
    }

    #[test]
    fn a_cancelled_consult_ends_the_colleague_and_resumes_the_rep() {
        let mut t = Tracker::default();
        apply(&mut t, consulting());
        let mut p = consulting();
        p[0]["held"] = json!(false);
        p[2]["state"] = json!("disconnected");
        p[2]["disconnectType"] = json!("peer");
        let events = t.apply(snap(p), rep_of, NOW);
        let bob = events
            .iter()
            .find(|e| e.agent == "bob@example.com" && e.event_type == EventType::Ended)
            .expect("bob's leg ends");
        assert_eq!(bob.reason, Some(EndReason::Missed));
        assert!(
            events
                .iter()
                .any(|e| e.id == "gc:C1:PA:resumed:held:consult:PB")
        );
    }

    #[test]
    fn users_who_are_not_reps_and_snapshots_without_an_id_are_ignored() {
        let mut t = Tracker::default();
        assert!(apply(&mut t, vec![customer(), agent("PZ", "U9", "alerting")]).is_empty());
        assert!(t.apply(Snapshot::default(), rep_of, NOW).is_empty());
    }

    #[test]
    fn numbers_lose_their_tel_scheme() {
        assert_eq!(strip_tel("tel:+491604697810"), "+491604697810");
        assert_eq!(strip_tel("+493070016507"), "+493070016507");
    }
}
