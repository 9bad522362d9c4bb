//! Finesse Dialogs to the relay's call events (reference 4.2).
//!
//! Each `<Update>` on `/finesse/api/User/{id}/Dialogs` carries one or more `<Dialog>`s and a verb:
//! `POST` a new dialog, `PUT` a change, `DELETE` the dialog gone for that user. The rep's leg is
//! their participant (the one whose `mediaAddress` is their extension); its `state` drives the
//! events: `ALERTING` (or `INITIATING`/`INITIATED` when the rep dials) rings, `ACTIVE` answers
//! (or resumes after `HELD`), `HELD` holds, `DROPPED`/`FAILED`/`WRAP_UP` or the dialog's `DELETE`
//! ends the leg: `missed` when it never was active on an inbound call (inferred), `failed` for an
//! outbound one, `transferred` when the rep asked the relay for a transfer of that call, or when
//! the rep's participant dropped from a dialog that lives on with a party other than the rep and
//! the caller (a blind transfer made on the Finesse desktop or the phone: the new party's
//! `mediaAddress` is the target; inferred from the dialog Finesse keeps for the caller).
//!
//! A consult is a second dialog whose `associatedDialogUri` names the first: its events belong
//! to the first dialog's call (the contract's one `call_id` per consult transfer), and the
//! consulting rep's leg stays the one of the first dialog, so their side of the consult dialog
//! is not a leg of its own (inferred from the contract, which has one leg per rep and call).
//! A consult completed outside the relay (`TRANSFER` on the desktop or the phone) is told by
//! what the capture reference 4.2 cites shows: the first dialog lives on with the consulted
//! party beside the caller, the consulting rep's participant DROPPED, callType TRANSFER, and the
//! consult dialog is deleted right after. The consulting rep's leg ends `transferred` to the
//! consulted party (read off the first dialog, or, should their node be sent it without that
//! party, the party of their consult: inferred), and the consulted rep's leg moves onto the first
//! dialog, so the consult dialog's DELETE does not end it.
//!
//! Event ids come from the dialog, the user and the participant's `stateChangeTime`, so the same
//! update read twice (a catch-up after a reconnect) brings the same ids, which the relay drops.

use std::collections::BTreeMap;

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};

use super::xml::{Element, XmlError, parse};

/// A notification's verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Post,
    Put,
    Delete,
}

/// One `<Update>` of a user's Dialogs node.
#[derive(Debug, Clone)]
pub struct Update {
    pub verb: Verb,
    /// The Finesse user the node belongs to, from `<source>`.
    pub user: Option<String>,
    pub dialogs: Vec<Dialog>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialog {
    pub id: String,
    /// The id of the dialog a consult belongs to, from `associatedDialogUri`.
    pub associated: Option<String>,
    pub from: String,
    pub to: String,
    pub dnis: String,
    pub call_type: String,
    pub state: String,
    pub participants: Vec<Participant>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Participant {
    pub address: String,
    pub state: String,
    pub state_cause: String,
    pub start_time: String,
    pub state_change_time: String,
    pub actions: Vec<String>,
}

/// The last path segment of a Finesse URI (`/finesse/api/Dialog/140953817` -> `140953817`).
pub fn last_segment(uri: &str) -> Option<String> {
    let segment = uri.trim().trim_end_matches('/').rsplit('/').next()?.trim();
    (!segment.is_empty()).then(|| segment.to_string())
}

/// The user id in a Dialogs node or source (`/finesse/api/User/{id}/Dialogs`).
pub fn user_of_node(node: &str) -> Option<String> {
    let rest = node.trim().strip_prefix("/finesse/api/User/")?;
    let (user, tail) = rest.split_once('/')?;
    (tail == "Dialogs" && !user.is_empty()).then(|| user.to_string())
}

/// Reads an `<Update>` (the decoded text of a pubsub item's `<notification>`).
pub fn update(text: &str) -> Result<Update, XmlError> {
    let root = parse(text)?;
    if root.name != "Update" {
        return Err(XmlError(format!("expected <Update>, got <{}>", root.name)));
    }
    let verb = match root.text_of("event").as_str() {
        "POST" => Verb::Post,
        "PUT" => Verb::Put,
        "DELETE" => Verb::Delete,
        other => return Err(XmlError(format!("unknown event {other:?}"))),
    };
    let user = user_of_node(&root.text_of("source"));
    let data = root.child("data");
    let mut dialogs = Vec::new();
    if let Some(data) = data {
        for element in data.children_named("Dialog") {
            dialogs.push(dialog(element)?);
        }
        if let Some(list) = data.child("dialogs") {
            for element in list.children_named("Dialog") {
                dialogs.push(dialog(element)?);
            }
        }
    }
    Ok(Update {
        verb,
        user,
        dialogs,
    })
}

/// Reads the answer of `GET /finesse/api/User/{id}/Dialogs`.
pub fn dialogs(text: &str) -> Result<Vec<Dialog>, XmlError> {
    let root = parse(text)?;
    if root.name != "Dialogs" {
        return Err(XmlError(format!("expected <Dialogs>, got <{}>", root.name)));
    }
    root.children_named("Dialog").map(dialog).collect()
}

pub fn dialog(element: &Element) -> Result<Dialog, XmlError> {
    let id = Some(element.text_of("id"))
        .filter(|id| !id.is_empty())
        .or_else(|| last_segment(&element.text_of("uri")))
        .ok_or_else(|| XmlError("a Dialog without id".into()))?;
    let media = element.child("mediaProperties");
    let participants = element
        .child("participants")
        .map(|list| {
            list.children_named("Participant")
                .map(|p| Participant {
                    address: p.text_of("mediaAddress"),
                    state: p.text_of("state"),
                    state_cause: p.text_of("stateCause"),
                    start_time: p.text_of("startTime"),
                    state_change_time: p.text_of("stateChangeTime"),
                    actions: p
                        .child("actions")
                        .map(|a| {
                            a.children_named("action")
                                .map(|x| x.text.trim().to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Dialog {
        associated: last_segment(&element.text_of("associatedDialogUri")),
        from: element.text_of("fromAddress"),
        to: element.text_of("toAddress"),
        dnis: media.map(|m| m.text_of("DNIS")).unwrap_or_default(),
        call_type: media.map(|m| m.text_of("callType")).unwrap_or_default(),
        state: element.text_of("state"),
        participants,
        id,
    })
}

impl Dialog {
    /// The call this dialog belongs to: the dialog a consult is associated with, else itself.
    pub fn call(&self) -> &str {
        self.associated.as_deref().unwrap_or(&self.id)
    }

    pub fn participant(&self, extension: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.address == extension)
    }
}

/// One rep's leg of a call, as seen so far.
#[derive(Debug, Clone, Default)]
struct Leg {
    /// The dialog whose participant is the leg.
    dialog: String,
    rang: bool,
    answered: bool,
    held: bool,
    ended: bool,
    outbound: bool,
    from: String,
    to: String,
}

/// Who a Finesse user is for the relay.
#[derive(Debug, Clone, Copy)]
pub struct Agent<'a> {
    pub user: &'a str,
    pub extension: &'a str,
    pub rep: &'a str,
}

/// The legs seen, so each update yields only what changed.
#[derive(Debug, Default)]
pub struct Tracker {
    legs: BTreeMap<(String, String), Leg>,
    /// Transfers the relay asked for: (call, user) -> target.
    transfers: BTreeMap<(String, String), String>,
    /// The consult dialog a rep opened on a call: (call, user) -> dialog.
    consults: BTreeMap<(String, String), String>,
    /// The party the rep's consult dialog on a call last had besides the rep: (call, user) ->
    /// their address. Kept past the consult dialog's DELETE, for the transfer that joins them.
    consulted: BTreeMap<(String, String), String>,
    /// Ringing legs the rep declined through the relay: (call, user).
    declines: std::collections::BTreeSet<(String, String)>,
}

/// Legs kept before the ended ones are let go (a late copy of their updates is then dropped
/// by the relay, which has seen its event ids).
const KEPT_LEGS: usize = 10_000;

impl Tracker {
    /// Remembers that the rep asked for a transfer of the call, so their leg's end is one.
    pub fn transfer_requested(&mut self, call: &str, user: &str, target: &str) {
        self.transfers
            .insert((call.to_string(), user.to_string()), target.to_string());
    }

    /// Remembers that the rep declined the ringing call, so its end is `declined`.
    pub fn decline_requested(&mut self, call: &str, user: &str) {
        self.declines.insert((call.to_string(), user.to_string()));
    }

    /// The dialog that carries the user's leg of a call, while it lives.
    pub fn dialog_of(&self, call: &str, user: &str) -> Option<String> {
        self.legs
            .get(&(call.to_string(), user.to_string()))
            .filter(|l| !l.ended)
            .map(|l| l.dialog.clone())
    }

    /// The consult dialog the user opened on the call, while it lives.
    pub fn consult_of(&self, call: &str, user: &str) -> Option<String> {
        self.consults
            .get(&(call.to_string(), user.to_string()))
            .cloned()
    }

    /// The calls whose legs are still open, for a catch-up: (call, user, dialog).
    pub fn open(&self) -> Vec<(String, String, String)> {
        self.legs
            .iter()
            .filter(|(_, l)| !l.ended)
            .map(|((call, user), l)| (call.clone(), user.clone(), l.dialog.clone()))
            .collect()
    }

    /// Forgets a leg whose events did not reach the relay, so the next read derives them again.
    pub fn forget(&mut self, call: &str, user: &str) {
        self.legs.remove(&(call.to_string(), user.to_string()));
    }

    /// Applies one dialog as the agent's node reported it; the events it brings.
    pub fn apply(
        &mut self,
        agent: Agent<'_>,
        verb: Verb,
        dialog: &Dialog,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        let call = dialog.call().to_string();
        let key = (call.clone(), agent.user.to_string());
        let participant = dialog.participant(agent.extension);
        let live = participant.is_some_and(|p| LIVE.contains(&p.state.as_str()));
        if let Some(leg) = self.legs.get_mut(&key)
            && leg.dialog != dialog.id
            && !leg.ended
        {
            if dialog.id == call && verb != Verb::Delete && live {
                // The consulted rep joined to the call's own dialog by a completed transfer
                // (Finesse keeps the first dialog and deletes the consult one, reference 4.2's
                // `NormalTransferCall` capture): their leg goes on there, and the consult
                // dialog's DELETE that follows is no longer theirs.
                leg.dialog = dialog.id.clone();
                self.consults.remove(&key);
            } else {
                // The consulting rep's side of a consult: their leg is the first dialog's.
                let gone = verb == Verb::Delete || !live;
                if gone {
                    self.consults.remove(&key);
                    if dialog.call_type != "TRANSFER" {
                        // Cancelled, not handed over: nobody was joined.
                        self.consulted.remove(&key);
                    }
                } else {
                    self.consults.insert(key.clone(), dialog.id.clone());
                    if let Some(other) = dialog.participants.iter().find(|p| {
                        p.address != agent.extension
                            && !p.address.is_empty()
                            && LIVE.contains(&p.state.as_str())
                    }) {
                        self.consulted.insert(key, other.address.clone());
                    }
                }
                return Vec::new();
            }
        }
        let state = match (verb, participant) {
            (Verb::Delete, _) | (_, None) => "DROPPED",
            (_, Some(p)) => p.state.as_str(),
        };
        let fresh = !self.legs.contains_key(&key)
            || self
                .legs
                .get(&key)
                .is_some_and(|l| l.ended && l.dialog != dialog.id);
        if fresh {
            if matches!(state, "DROPPED" | "FAILED" | "WRAP_UP" | "") {
                // A dialog first seen gone: nothing of it reached the rep through us.
                return Vec::new();
            }
            let outbound = dialog.call_type == "OUT"
                || (dialog.from == agent.extension && dialog.associated.is_none());
            let (from, to) = if outbound {
                (agent.extension.to_string(), dialog.to.clone())
            } else {
                let to = if dialog.dnis.is_empty() {
                    dialog.to.clone()
                } else {
                    dialog.dnis.clone()
                };
                (dialog.from.clone(), to)
            };
            self.legs.insert(
                key.clone(),
                Leg {
                    dialog: dialog.id.clone(),
                    outbound,
                    from,
                    to,
                    ..Leg::default()
                },
            );
        }
        // An empty target is a requested transfer that failed (the request was taken back).
        let transfer = self.transfers.get(&key).filter(|t| !t.is_empty()).cloned();
        let Some(leg) = self.legs.get_mut(&key) else {
            return Vec::new();
        };
        if leg.ended {
            return Vec::new();
        }
        let changed = participant
            .map(|p| p.state_change_time.clone())
            .filter(|t| !t.is_empty());
        let at = changed.clone().unwrap_or_else(|| now.to_string());
        let stamp = changed.unwrap_or_else(|| "-".into());
        let mut out = Vec::new();
        let mut push = |leg: &Leg, kind: EventType, id: String, reason, transfer_to| {
            out.push(TelephonyEvent {
                id: format!("finesse:{}:{}:{id}", dialog.id, agent.user),
                call_id: call.clone(),
                event_type: kind,
                direction: if leg.outbound {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                },
                from: leg.from.clone(),
                to: leg.to.clone(),
                agent: agent.rep.to_string(),
                at: at.clone(),
                transfer_to,
                reason,
                recording_url: None,
            });
        };
        match state {
            "ALERTING" | "INITIATING" | "INITIATED" | "ACTIVE" | "HELD" => {
                if !leg.rang {
                    leg.rang = true;
                    push(leg, EventType::Ringing, "ringing".into(), None, None);
                }
                if matches!(state, "ACTIVE" | "HELD") && !leg.answered {
                    leg.answered = true;
                    push(leg, EventType::Answered, "answered".into(), None, None);
                }
                if state == "HELD" && !leg.held {
                    leg.held = true;
                    push(leg, EventType::Held, format!("held:{stamp}"), None, None);
                }
                if state == "ACTIVE" && leg.held {
                    leg.held = false;
                    push(
                        leg,
                        EventType::Resumed,
                        format!("resumed:{stamp}"),
                        None,
                        None,
                    );
                }
            }
            _ => {
                leg.ended = true;
                let handed = transfer
                    .or_else(|| handed_over(dialog, agent.extension, leg))
                    .or_else(|| joined(dialog, self.consulted.get(&key)));
                if let Some(target) = handed.filter(|_| leg.answered) {
                    push(
                        leg,
                        EventType::Transferred,
                        "transferred".into(),
                        None,
                        Some(target),
                    );
                } else {
                    let reason = if leg.answered {
                        EndReason::Completed
                    } else if self.declines.contains(&key) {
                        EndReason::Declined
                    } else if leg.outbound {
                        EndReason::Failed
                    } else {
                        EndReason::Missed
                    };
                    push(leg, EventType::Ended, "ended".into(), Some(reason), None);
                }
            }
        }
        if leg.ended {
            self.transfers.remove(&key);
            self.consults.remove(&key);
            self.consulted.remove(&key);
            self.declines.remove(&key);
        }
        if self.legs.len() > KEPT_LEGS {
            self.legs.retain(|_, l| !l.ended);
        }
        out
    }
}

/// Names each hand-over's target as the relay knows it and tells whether it left the reps.
///
/// The tracker names a target by its address (a desktop or phone transfer gives the extension
/// or number Finesse shows) or as the relay asked for it (a rep's e-mail, or a number). Where
/// `rep_of_address` knows the address (the tenant's agents' extensions), the target is that
/// colleague, whose own leg follows and ends the call. Otherwise (a number, or an extension of
/// no agent the tenant maps to a rep) the call went outside the relay's reps: no colleague's leg
/// follows, so the hand-over carries a reason and ends the call. Whether an extension belongs to
/// a rep is inferred from the tenant's agent mapping: Finesse itself does not say who a
/// transfer's party is beyond its `mediaAddress`.
pub fn settle_transfers(
    events: &mut [TelephonyEvent],
    rep_of_address: impl Fn(&str) -> Option<String>,
    is_rep: impl Fn(&str) -> bool,
) {
    for event in events
        .iter_mut()
        .filter(|e| e.event_type == EventType::Transferred)
    {
        let Some(target) = event.transfer_to.as_mut() else {
            continue;
        };
        if is_rep(target) {
            continue;
        }
        match rep_of_address(target) {
            Some(rep) => *target = rep,
            None => event.reason = Some(EndReason::Completed),
        }
    }
}

/// A participant's states while they are on the call.
const LIVE: [&str; 5] = ["ALERTING", "ACTIVE", "HELD", "INITIATING", "INITIATED"];

/// A consult the rep completed on the desktop or the phone, when the first dialog's last
/// update left out the party it joined (inferred: the capture the reference cites shows the
/// joined party in it, which [`handed_over`] reads; this is the fallback should the rep's own
/// node be sent less): the first dialog lives on as a TRANSFER without the rep, who had a
/// consult with someone.
fn joined(dialog: &Dialog, consulted: Option<&String>) -> Option<String> {
    let lives = !matches!(dialog.state.as_str(), "DROPPED" | "FAILED" | "");
    if lives && dialog.call_type == "TRANSFER" {
        consulted.cloned()
    } else {
        None
    }
}

/// Where a dialog went on without the rep: the address of a live party that is neither the rep
/// nor the remote party (the caller, or the number the rep dialled), when the dialog itself
/// lives on. A dialog that ended for everyone, or a rep still on it, is no handover.
fn handed_over(dialog: &Dialog, extension: &str, leg: &Leg) -> Option<String> {
    if matches!(dialog.state.as_str(), "DROPPED" | "FAILED" | "") {
        return None;
    }
    let remote = if leg.outbound { &leg.to } else { &leg.from };
    let live = |p: &&Participant| {
        matches!(
            p.state.as_str(),
            "ALERTING" | "ACTIVE" | "HELD" | "INITIATING" | "INITIATED"
        )
    };
    if dialog
        .participants
        .iter()
        .filter(live)
        .any(|p| p.address == extension)
    {
        return None;
    }
    dialog
        .participants
        .iter()
        .filter(live)
        .find(|p| p.address != extension && p.address != *remote && !p.address.is_empty())
        .map(|p| p.address.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference 4.2's ringing Dialog (call variables cut), as Finesse's Openfire sends it.
    const ALERT: &str = r#"<Update>
  <data><dialogs><Dialog>
    <associatedDialogUri></associatedDialogUri>
    <fromAddress>01042600114</fromAddress>
    <id>140953817</id>
    <mediaProperties>
      <DNIS>7053</DNIS>
      <callType>PREROUTE_ACD_IN</callType>
      <dialedNumber>813636</dialedNumber>
      <outboundClassification></outboundClassification>
      <callvariables>
        <CallVariable><name>callVariable1</name><value>813636114______</value></CallVariable>
        <CallVariable><name>user.microapp.locale</name><value>en-us</value></CallVariable>
      </callvariables>
    </mediaProperties>
    <mediaType>Voice</mediaType>
    <participants>
      <Participant>
        <actions><action>UPDATE_CALL_DATA</action><action>DROP</action></actions>
        <mediaAddress>01042600114</mediaAddress><mediaAddressType></mediaAddressType>
        <startTime>2020-05-08T01:22:42.009Z</startTime>
        <state>INITIATED</state><stateCause></stateCause>
        <stateChangeTime>2020-05-08T01:22:42.010Z</stateChangeTime>
      </Participant>
      <Participant>
        <actions><action>ANSWER</action></actions>
        <mediaAddress>7053</mediaAddress><mediaAddressType>AGENT_DEVICE</mediaAddressType>
        <startTime>2020-05-08T01:22:42.010Z</startTime>
        <state>ALERTING</state><stateCause></stateCause>
        <stateChangeTime>2020-05-08T01:22:42.010Z</stateChangeTime>
      </Participant>
    </participants>
    <state>ALERTING</state>
    <toAddress>813636</toAddress>
    <uri>/finesse/api/Dialog/140953817</uri>
  </Dialog></dialogs></data>
  <event>POST</event>
  <requestId></requestId>
  <source>/finesse/api/User/900140321/Dialogs</source>
</Update>"#;

    fn with(state: &str, time: &str, event: &str) -> String {
        ALERT
            .replace(
                "<state>ALERTING</state><stateCause></stateCause>\n        <stateChangeTime>2020-05-08T01:22:42.010Z",
                &format!("<state>{state}</state><stateCause></stateCause>\n        <stateChangeTime>{time}"),
            )
            .replace("<event>POST</event>", &format!("<event>{event}</event>"))
    }

    const AGENT: Agent<'static> = Agent {
        user: "900140321",
        extension: "7053",
        rep: "alice@example.com",
    };

    fn run(tracker: &mut Tracker, text: &str) -> Vec<TelephonyEvent> {
        let update = update(text).expect("an update");
        update
            .dialogs
            .iter()
            .flat_map(|d| tracker.apply(AGENT, update.verb, d, "2020-05-08T01:30:00Z"))
            .collect::<Vec<_>>()
    }

    #[test]
    fn the_reference_ringing_dialog_rings_the_rep() {
        let update = update(ALERT).expect("parses");
        assert_eq!(update.verb, Verb::Post);
        assert_eq!(update.user.as_deref(), Some("900140321"));
        let dialog = &update.dialogs[0];
        assert_eq!(dialog.id, "140953817");
        assert_eq!(dialog.associated, None);
        assert_eq!(dialog.dnis, "7053");
        assert_eq!(dialog.participants[1].actions, ["ANSWER"]);
        let mut tracker = Tracker::default();
        let events = run(&mut tracker, ALERT);
        assert_eq!(events.len(), 1);
        let ring = &events[0];
        assert_eq!(ring.event_type, EventType::Ringing);
        assert_eq!(ring.call_id, "140953817");
        assert_eq!(ring.from, "01042600114");
        assert_eq!(ring.to, "7053");
        assert_eq!(ring.direction, Direction::Inbound);
        assert_eq!(ring.agent, "alice@example.com");
        assert_eq!(ring.id, "finesse:140953817:900140321:ringing");
        assert!(run(&mut tracker, ALERT).is_empty(), "the same update twice");
    }

    #[test]
    fn answer_hold_resume_and_drop_follow_the_participant() {
        let mut tracker = Tracker::default();
        run(&mut tracker, ALERT);
        let kinds = |events: Vec<TelephonyEvent>| {
            events
                .into_iter()
                .map(|e| (e.event_type, e.id))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(run(&mut tracker, &with("ACTIVE", "T1", "PUT"))),
            [(
                EventType::Answered,
                "finesse:140953817:900140321:answered".into()
            )]
        );
        assert_eq!(
            kinds(run(&mut tracker, &with("HELD", "T2", "PUT"))),
            [(
                EventType::Held,
                "finesse:140953817:900140321:held:T2".into()
            )]
        );
        assert_eq!(
            kinds(run(&mut tracker, &with("ACTIVE", "T3", "PUT"))),
            [(
                EventType::Resumed,
                "finesse:140953817:900140321:resumed:T3".into()
            )]
        );
        let ended = run(&mut tracker, &with("DROPPED", "T4", "DELETE"));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].event_type, EventType::Ended);
        assert_eq!(ended[0].reason, Some(EndReason::Completed));
        assert_eq!(ended[0].at, "T4");
        assert!(run(&mut tracker, &with("DROPPED", "T4", "DELETE")).is_empty());
        assert!(tracker.open().is_empty());
    }

    #[test]
    fn a_dialog_gone_while_ringing_is_missed_and_a_requested_transfer_is_one() {
        let mut tracker = Tracker::default();
        run(&mut tracker, ALERT);
        let ended = run(&mut tracker, &with("DROPPED", "T9", "DELETE"));
        assert_eq!(ended[0].reason, Some(EndReason::Missed));

        let mut tracker = Tracker::default();
        run(&mut tracker, ALERT);
        tracker.decline_requested("140953817", "900140321");
        let ended = run(&mut tracker, &with("DROPPED", "T9", "DELETE"));
        assert_eq!(ended[0].reason, Some(EndReason::Declined));

        let mut tracker = Tracker::default();
        run(&mut tracker, &with("ACTIVE", "T1", "PUT"));
        tracker.transfer_requested("140953817", "900140321", "+41445550199");
        let ended = run(&mut tracker, &with("DROPPED", "T2", "DELETE"));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].event_type, EventType::Transferred);
        assert_eq!(ended[0].transfer_to.as_deref(), Some("+41445550199"));
    }

    #[test]
    fn a_rep_dropping_off_a_dialog_that_rings_someone_else_transferred_it() {
        // Made on the Finesse desktop: the relay asked for nothing.
        let mut tracker = Tracker::default();
        run(&mut tracker, &with("ACTIVE", "T1", "PUT"));
        let colleague = "<Participant><actions><action>ANSWER</action></actions><mediaAddress>7002</mediaAddress><mediaAddressType>AGENT_DEVICE</mediaAddressType><startTime>T2</startTime><state>ALERTING</state><stateCause></stateCause><stateChangeTime>T2</stateChangeTime></Participant>\n    </participants>";
        let handed = with("DROPPED", "T2", "DELETE").replacen("</participants>", colleague, 1);
        let ended = run(&mut tracker, &handed);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].event_type, EventType::Transferred);
        assert_eq!(ended[0].transfer_to.as_deref(), Some("7002"));
        assert_eq!(ended[0].id, "finesse:140953817:900140321:transferred");

        // The same dialog ended for everyone (the caller hung up): no handover.
        let mut tracker = Tracker::default();
        run(&mut tracker, &with("ACTIVE", "T1", "PUT"));
        let gone = handed.replace(
            "<state>ALERTING</state>\n    <toAddress>",
            "<state>DROPPED</state>\n    <toAddress>",
        );
        assert_ne!(gone, handed);
        let ended = run(&mut tracker, &gone);
        assert_eq!(ended[0].event_type, EventType::Ended);
        assert_eq!(ended[0].reason, Some(EndReason::Completed));

        // Never answered: a transfer it cannot be.
        let mut tracker = Tracker::default();
        run(&mut tracker, ALERT);
        let ended = run(&mut tracker, &handed);
        assert_eq!(ended[0].reason, Some(EndReason::Missed));
    }

    #[test]
    fn a_consult_dialog_belongs_to_the_first_call_and_not_to_the_consulting_leg() {
        let mut tracker = Tracker::default();
        run(&mut tracker, &with("HELD", "T2", "PUT"));
        let consult = ALERT
            .replace("<id>140953817</id>", "<id>140953818</id>")
            .replace(
                "<associatedDialogUri></associatedDialogUri>",
                "<associatedDialogUri>/finesse/api/Dialog/140953817</associatedDialogUri>",
            );
        // The consulting rep's own side of the consult: no leg of its own.
        assert!(run(&mut tracker, &consult).is_empty());
        // The colleague rings on the first call's id.
        let colleague = Agent {
            user: "900140322",
            extension: "7053",
            rep: "bob@example.com",
        };
        let update = update(&consult).expect("parses");
        let events = tracker.apply(colleague, Verb::Post, &update.dialogs[0], "now");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].call_id, "140953817");
        assert_eq!(events[0].id, "finesse:140953818:900140322:ringing");
    }

    fn party(address: &str, state: &str, at: &str) -> Participant {
        Participant {
            address: address.into(),
            state: state.into(),
            state_change_time: at.into(),
            ..Participant::default()
        }
    }

    fn dialog(id: &str, associated: Option<&str>, state: &str, parties: &[(&str, &str)]) -> Dialog {
        Dialog {
            id: id.into(),
            associated: associated.map(str::to_string),
            from: "+41445550100".into(),
            to: "8000".into(),
            dnis: "7001".into(),
            call_type: "ACD_IN".into(),
            state: state.into(),
            participants: parties
                .iter()
                .map(|(address, state)| party(address, state, "T"))
                .collect(),
        }
    }

    /// A consult completed on the Finesse desktop, in the sequence of the capture reference 4.2
    /// cites (`NormalTransferCall`): the first dialog lives on with the consulted agent and the
    /// caller, the consulting agent's participant dropped, and the consult dialog is deleted.
    #[test]
    fn a_consult_completed_on_the_desktop_hands_the_call_to_the_consulted_agent() {
        let alice = Agent {
            user: "1001",
            extension: "7001",
            rep: "alice@example.com",
        };
        let bob = Agent {
            user: "1002",
            extension: "7002",
            rep: "bob@example.com",
        };
        let caller = "+41445550100";
        let mut t = Tracker::default();
        let mut run = |agent, verb, d: &Dialog| t.apply(agent, verb, d, "now");
        let first = dialog(
            "10",
            None,
            "ACTIVE",
            &[(caller, "ACTIVE"), ("7001", "HELD")],
        );
        assert_eq!(
            run(alice, Verb::Put, &first).len(),
            3,
            "rang, answered, held"
        );
        let mut consult = dialog(
            "11",
            Some("10"),
            "ACTIVE",
            &[("7001", "ACTIVE"), ("7002", "ACTIVE")],
        );
        consult.call_type = "CONSULT".into();
        assert!(run(alice, Verb::Post, &consult).is_empty(), "alice's side");
        assert_eq!(
            run(bob, Verb::Post, &consult).len(),
            2,
            "bob rang, answered"
        );

        // TRANSFER on the desktop: the first dialog with bob in it and alice dropped.
        let mut handed = dialog(
            "10",
            None,
            "ACTIVE",
            &[("7002", "ACTIVE"), (caller, "ACTIVE"), ("7001", "DROPPED")],
        );
        handed.call_type = "TRANSFER".into();
        let ended = run(alice, Verb::Delete, &handed);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].event_type, EventType::Transferred);
        assert_eq!(ended[0].transfer_to.as_deref(), Some("7002"));
        assert_eq!(ended[0].call_id, "10");
        // Bob gets the first dialog: his leg goes on there, and the consult's end is not his.
        assert!(run(bob, Verb::Post, &handed).is_empty());
        let mut gone = dialog(
            "11",
            Some("10"),
            "DROPPED",
            &[("7001", "DROPPED"), ("7002", "DROPPED")],
        );
        gone.call_type = "TRANSFER".into();
        assert!(run(alice, Verb::Delete, &gone).is_empty());
        assert!(run(bob, Verb::Delete, &gone).is_empty(), "bob is still on");
        assert_eq!(t.dialog_of("10", "1002").as_deref(), Some("10"));
        // The caller hangs up on bob.
        let over = dialog(
            "10",
            None,
            "DROPPED",
            &[("7002", "DROPPED"), (caller, "DROPPED")],
        );
        let ended = t.apply(bob, Verb::Delete, &over, "now");
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].reason, Some(EndReason::Completed));
        assert_eq!(ended[0].call_id, "10");
    }

    /// Should the consulting rep's node be sent the first dialog without the party it joined,
    /// the consult they had names the target.
    #[test]
    fn a_transfer_dialog_without_the_joined_party_names_the_consulted_one() {
        let mut t = Tracker::default();
        let alice = Agent {
            user: "1001",
            extension: "7001",
            rep: "alice@example.com",
        };
        let first = dialog(
            "10",
            None,
            "ACTIVE",
            &[("+41445550100", "ACTIVE"), ("7001", "HELD")],
        );
        t.apply(alice, Verb::Put, &first, "now");
        let consult = dialog(
            "11",
            Some("10"),
            "ACTIVE",
            &[("7001", "ACTIVE"), ("+41445550177", "ACTIVE")],
        );
        t.apply(alice, Verb::Post, &consult, "now");
        // The consult's DELETE first, then the first dialog without alice.
        let mut gone = dialog("11", Some("10"), "DROPPED", &[("7001", "DROPPED")]);
        gone.call_type = "TRANSFER".into();
        assert!(t.apply(alice, Verb::Delete, &gone, "now").is_empty());
        let mut handed = dialog("10", None, "ACTIVE", &[("7001", "DROPPED")]);
        handed.call_type = "TRANSFER".into();
        let ended = t.apply(alice, Verb::Delete, &handed, "now");
        assert_eq!(ended[0].event_type, EventType::Transferred);
        assert_eq!(ended[0].transfer_to.as_deref(), Some("+41445550177"));

        // A cancelled consult names nobody: the caller hanging up later is a completed call.
        let mut t = Tracker::default();
        t.apply(alice, Verb::Put, &first, "now");
        t.apply(alice, Verb::Post, &consult, "now");
        let cancelled = dialog("11", Some("10"), "DROPPED", &[("7001", "DROPPED")]);
        t.apply(alice, Verb::Delete, &cancelled, "now");
        let mut back = dialog(
            "10",
            None,
            "ACTIVE",
            &[("+41445550100", "ACTIVE"), ("7001", "DROPPED")],
        );
        back.call_type = "TRANSFER".into();
        let ended = t.apply(alice, Verb::Delete, &back, "now");
        assert_eq!(ended[0].event_type, EventType::Ended);
    }

    #[test]
    fn a_hand_over_to_a_colleague_names_them_and_one_outside_ends_the_call() {
        let transferred = |to: &str| TelephonyEvent {
            id: format!("finesse:10:1001:{to}"),
            call_id: "10".into(),
            event_type: EventType::Transferred,
            direction: Direction::Inbound,
            from: "+41445550100".into(),
            to: "7053".into(),
            agent: "alice@example.com".into(),
            at: "now".into(),
            transfer_to: Some(to.into()),
            reason: None,
            recording_url: None,
        };
        let mut events = vec![
            transferred("7002"),
            transferred("bob@example.com"),
            transferred("+41445550199"),
            transferred("7999"),
        ];
        let mut ended = events[0].clone();
        ended.event_type = EventType::Ended;
        events.push(ended);
        settle_transfers(
            &mut events,
            |address| (address == "7002").then(|| "bob@example.com".to_string()),
            |target| target == "bob@example.com",
        );
        let seen: Vec<_> = events
            .iter()
            .map(|e| (e.transfer_to.as_deref(), e.reason))
            .collect();
        assert_eq!(
            seen,
            [
                (Some("bob@example.com"), None),
                (Some("bob@example.com"), None),
                (Some("+41445550199"), Some(EndReason::Completed)),
                (Some("7999"), Some(EndReason::Completed)),
                (Some("7002"), None),
            ]
        );
    }

    #[test]
    fn a_failed_transfer_request_leaves_a_plain_end() {
        let mut t = Tracker::default();
        run(&mut t, &with("ACTIVE", "T1", "PUT"));
        // The request failed: the adapter took it back with an empty target.
        t.transfer_requested("140953817", "900140321", "");
        let ended = run(&mut t, &with("DROPPED", "T2", "PUT"));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].event_type, EventType::Ended);
        assert_eq!(ended[0].reason, Some(EndReason::Completed));
    }

    #[test]
    fn a_first_sight_of_an_active_call_rings_and_answers_and_garbage_is_refused() {
        let mut tracker = Tracker::default();
        let events = run(&mut tracker, &with("ACTIVE", "T1", "PUT"));
        let kinds: Vec<_> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(kinds, [EventType::Ringing, EventType::Answered]);
        assert!(update("<Update><event>PATCH</event></Update>").is_err());
        assert!(update("<Other/>").is_err());
        assert!(update("&lt;Update&gt;").is_err());
        assert_eq!(
            user_of_node("/finesse/api/User/1001/Dialogs").as_deref(),
            Some("1001")
        );
        assert_eq!(user_of_node("/finesse/api/User/1001"), None);
    }
}
