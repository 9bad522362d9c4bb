//! AMI events to the relay's call events (reference 5.3).
//!
//! The call is the `Linkedid` every channel of it shares; a rep's leg is their channel (its
//! `Uniqueid`), recognised by its endpoint (`PJSIP/21-0000001b` is endpoint `PJSIP/21`), which the
//! tenant's settings map to the rep. What each event means for a rep's leg:
//! - `DialBegin` with the rep's channel as `DestChannel` and a calling `Channel`: their phone rings
//!   for an inbound call (caller: the `CallerIDNum` of the call's first channel, whose `Uniqueid`
//!   is the `Linkedid`; dialled number: that channel's `Exten`). Without a calling channel (an
//!   `Originate`), it is the rep's own phone rung for a click-to-dial (inferred from how Asterisk
//!   publishes dials it places itself): nothing yet.
//! - `DialBegin` with the rep's channel as `Channel`: the rep calls out (to its `Exten`): ringing,
//!   outbound; its `DialEnd` with `DialStatus: ANSWER` answers it.
//! - `Newstate` 6 (`Up`) of an inbound leg, or its `DialEnd` `ANSWER`: answered.
//! - `Hold` / `Unhold` of the rep's channel: held / resumed.
//! - `BlindTransfer` / `AttendedTransfer` (`Result: Success`) with the rep's channel as the
//!   transferer: their leg is transferred.
//! - `Hangup` of the rep's channel: ended; `completed` when answered, `declined` when the rep
//!   declined it through the relay, `failed` for an outbound call, else `missed`.
//! - A consult: after the rep asked the relay for one (`Atxfer`), the next rep channel ringing
//!   on the same call is the one consulted: the rep's leg is `held` until the target's channel hangs up without
//!   a transfer (then `resumed`), as the contract expresses consults.
//!
//! Caller ids of `<unknown>` are no number. Event ids are the channel's `Uniqueid` and the
//! step (holds counted), each with the call's `Linkedid`, so the same events read twice bring the same ids, which the relay drops.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};

use super::ami::Message;

/// The endpoint of a channel name: `PJSIP/21-0000001b` -> `PJSIP/21`; None for a name without
/// the sequence suffix.
pub fn endpoint_of(channel: &str) -> Option<&str> {
    let (endpoint, suffix) = channel.rsplit_once('-')?;
    (!endpoint.is_empty()
        && endpoint.contains('/')
        && !suffix.is_empty()
        && suffix.chars().all(|c| c.is_ascii_hexdigit()))
    .then_some(endpoint)
}

/// The resource of a channel's endpoint (`PJSIP/21-0000001b` -> `21`): the rep's extension.
fn resource_of(channel: &str) -> String {
    endpoint_of(channel)
        .and_then(|e| e.split_once('/'))
        .map(|(_, r)| r.to_string())
        .unwrap_or_default()
}

/// A caller id as the relay takes it: `<unknown>` (and empty) is no number.
pub fn number(raw: &str) -> String {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("<unknown>") {
        String::new()
    } else {
        raw.to_string()
    }
}

/// A channel Asterisk told of.
#[derive(Debug, Clone, Default)]
struct Channel {
    name: String,
    linkedid: String,
    caller: String,
    exten: String,
}

/// One rep's leg: their channel on a call.
#[derive(Debug, Clone, Default)]
struct Leg {
    uniqueid: String,
    channel: String,
    call: String,
    rep: String,
    outbound: bool,
    from: String,
    to: String,
    rang: bool,
    answered: bool,
    held: bool,
    /// Held because the rep consults this channel (its uniqueid).
    consulting: Option<String>,
    /// The rep asked the relay for a consult that has not rung yet.
    consult_asked: bool,
    holds: u32,
    ended: bool,
}

/// The legs seen, so each event yields only what changed.
#[derive(Debug, Default)]
pub struct Tracker {
    channels: HashMap<String, Channel>,
    /// By the rep channel's uniqueid.
    legs: BTreeMap<String, Leg>,
    /// Transfers asked for through the relay: rep channel uniqueid -> target as the rep named it.
    transfers: HashMap<String, String>,
    /// Ringing rep channels declined through the relay.
    declines: BTreeSet<String>,
}

/// Ended legs kept (to ignore their late events) before they are let go.
const KEPT_LEGS: usize = 10_000;

/// One listed channel of a `CoreShowChannels` answer.
#[derive(Debug, Clone)]
pub struct Listed {
    pub channel: String,
    pub uniqueid: String,
    pub linkedid: String,
    pub state: u8,
    pub caller: String,
    pub connected: String,
    pub exten: String,
    pub bridged: bool,
}

impl Listed {
    pub fn from_event(event: &Message) -> Option<Listed> {
        let uniqueid = event.text("Uniqueid").to_string();
        if uniqueid.is_empty() {
            return None;
        }
        Some(Listed {
            channel: event.text("Channel").to_string(),
            linkedid: Some(event.text("Linkedid"))
                .filter(|l| !l.is_empty())
                .unwrap_or(&uniqueid)
                .to_string(),
            state: event.text("ChannelState").parse().unwrap_or(0),
            caller: number(event.text("CallerIDNum")),
            connected: number(event.text("ConnectedLineNum")),
            exten: event.text("Exten").to_string(),
            bridged: !event.text("BridgeId").is_empty(),
            uniqueid,
        })
    }
}

impl Tracker {
    /// The rep's live channel on a call: (uniqueid, channel name).
    pub fn channel_of(&self, call: &str, rep: &str) -> Option<(String, String)> {
        self.legs
            .iter()
            .find(|(_, l)| l.call == call && l.rep.eq_ignore_ascii_case(rep) && !l.ended)
            .map(|(id, l)| (id.clone(), l.channel.clone()))
    }

    /// The channel a rep's leg consults, while it does: (uniqueid, channel name).
    pub fn consult_of(&self, leg: &str) -> Option<(String, String)> {
        let target = self.legs.get(leg)?.consulting.clone()?;
        let name = self.channels.get(&target)?.name.clone();
        Some((target, name))
    }

    /// Remembers that the rep asked for a transfer, so their leg's end names its target.
    pub fn transfer_requested(&mut self, leg: &str, target: &str) {
        if target.is_empty() {
            self.transfers.remove(leg);
        } else {
            self.transfers.insert(leg.to_string(), target.to_string());
        }
    }

    /// Remembers that the rep asked for a consult: the next rep channel to ring on the call is
    /// the one consulted.
    pub fn consult_requested(&mut self, leg: &str) {
        if let Some(leg) = self.legs.get_mut(leg) {
            leg.consult_asked = true;
        }
    }

    /// The consult the rep asked for did not start (Asterisk refused it).
    pub fn consult_withdrawn(&mut self, leg: &str) {
        if let Some(leg) = self.legs.get_mut(leg) {
            leg.consult_asked = false;
        }
    }

    /// Remembers that the rep declined the ringing leg.
    pub fn decline_requested(&mut self, leg: &str) {
        self.declines.insert(leg.to_string());
    }

    /// Forgets a leg whose events did not reach the relay, so a catch-up derives them again.
    pub fn forget(&mut self, leg: &str) {
        self.legs.remove(leg);
    }

    /// The calls of the rep legs still open: (call, rep).
    pub fn open_calls(&self) -> Vec<(String, String)> {
        self.legs
            .values()
            .filter(|l| !l.ended)
            .map(|l| (l.call.clone(), l.rep.clone()))
            .collect()
    }

    /// The first channel of a call (whose uniqueid is the Linkedid): who called.
    fn origin(&self, call: &str) -> Option<&Channel> {
        self.channels.get(call)
    }

    fn remember_channel(&mut self, event: &Message, prefix: &str) -> Option<String> {
        let uniqueid = event.text(&format!("{prefix}Uniqueid")).to_string();
        if uniqueid.is_empty() {
            return None;
        }
        let name = event.text(&format!("{prefix}Channel"));
        let linkedid = event.text(&format!("{prefix}Linkedid"));
        let entry = self.channels.entry(uniqueid.clone()).or_default();
        if !name.is_empty() {
            entry.name = name.to_string();
        }
        if !linkedid.is_empty() {
            entry.linkedid = linkedid.to_string();
        } else if entry.linkedid.is_empty() {
            entry.linkedid = uniqueid.clone();
        }
        let caller = event.get(&format!("{prefix}CallerIDNum"));
        if let Some(caller) = caller {
            entry.caller = number(caller);
        }
        let exten = event.text(&format!("{prefix}Exten"));
        if !exten.is_empty() {
            entry.exten = exten.to_string();
        }
        Some(uniqueid)
    }

    /// The leg of a rep's channel, created on first sight.
    fn leg_for(&mut self, uniqueid: &str, rep_of: &dyn Fn(&str) -> Option<String>) -> bool {
        if self.legs.contains_key(uniqueid) {
            return true;
        }
        let Some(channel) = self.channels.get(uniqueid) else {
            return false;
        };
        let Some(rep) = endpoint_of(&channel.name).and_then(rep_of) else {
            return false;
        };
        self.legs.insert(
            uniqueid.to_string(),
            Leg {
                uniqueid: uniqueid.to_string(),
                channel: channel.name.clone(),
                call: channel.linkedid.clone(),
                rep,
                ..Leg::default()
            },
        );
        true
    }

    /// Applies one AMI event; the call events it brings, in order.
    pub fn apply(
        &mut self,
        event: &Message,
        rep_of: &dyn Fn(&str) -> Option<String>,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        let mut out = Vec::new();
        let name = event.event().unwrap_or("");
        match name {
            "Newchannel" | "Newstate" | "NewCallerid" | "NewConnectedLine" => {
                let Some(id) = self.remember_channel(event, "") else {
                    return out;
                };
                let up = event.text("ChannelState") == "6";
                if up && self.leg_for(&id, rep_of) {
                    self.answer_inbound(&id, now, &mut out);
                }
            }
            "DialBegin" => {
                let caller = self.remember_channel(event, "");
                let Some(dest) = self.remember_channel(event, "Dest") else {
                    return out;
                };
                if let Some(caller) = &caller
                    && self.leg_for(caller, rep_of)
                {
                    self.ring_outbound(caller, event, now, &mut out);
                }
                if caller.is_some() && self.leg_for(&dest, rep_of) {
                    self.ring_inbound(&dest, now, &mut out);
                }
            }
            "DialEnd" => {
                let caller = self.remember_channel(event, "");
                let dest = self.remember_channel(event, "Dest");
                if event.text("DialStatus") != "ANSWER" {
                    return out;
                }
                if let Some(caller) = caller
                    && self.legs.get(&caller).is_some_and(|l| l.outbound)
                {
                    self.answer(&caller, now, &mut out);
                }
                if let Some(dest) = dest
                    && self.legs.get(&dest).is_some_and(|l| !l.outbound && l.rang)
                {
                    self.answer(&dest, now, &mut out);
                }
            }
            "Hold" | "Unhold" => {
                let id = event.text("Uniqueid").to_string();
                let hold = name == "Hold";
                if let Some(leg) = self.legs.get_mut(&id)
                    && leg.answered
                    && !leg.ended
                    && leg.held != hold
                {
                    leg.held = hold;
                    if hold {
                        leg.holds += 1;
                        let n = leg.holds;
                        push(&mut out, leg, EventType::Held, &format!("held:{n}"), now);
                    } else {
                        let n = leg.holds;
                        push(
                            &mut out,
                            leg,
                            EventType::Resumed,
                            &format!("resumed:{n}"),
                            now,
                        );
                    }
                }
            }
            "BlindTransfer" | "AttendedTransfer" => {
                if event.text("Result") != "Success" {
                    return out;
                }
                let transferers = [
                    event.text("TransfererUniqueid"),
                    event.text("OrigTransfererUniqueid"),
                    event.text("SecondTransfererUniqueid"),
                ];
                let target = if name == "BlindTransfer" {
                    event.text("Extension").to_string()
                } else {
                    self.channels
                        .get(event.text("TransferTargetUniqueid"))
                        .and_then(|c| endpoint_of(&c.name))
                        .and_then(rep_of)
                        .unwrap_or_else(|| number(event.text("TransferTargetCallerIDNum")))
                };
                for id in transferers.iter().filter(|id| !id.is_empty()) {
                    self.transferred(id, &target, now, &mut out);
                }
            }
            "Hangup" => {
                let id = event.text("Uniqueid").to_string();
                self.hung_up(&id, now, &mut out);
                self.channels.remove(&id);
            }
            _ => {}
        }
        if self.legs.len() > KEPT_LEGS {
            self.legs.retain(|_, l| !l.ended);
        }
        out
    }

    fn ring_inbound(&mut self, id: &str, now: &str, out: &mut Vec<TelephonyEvent>) {
        let Some(leg) = self.legs.get(id) else {
            return;
        };
        if leg.rang || leg.ended {
            return;
        }
        let (from, to) = match self.origin(&leg.call) {
            Some(origin) => (origin.caller.clone(), origin.exten.clone()),
            None => (String::new(), String::new()),
        };
        self.consult_starts(id, now, out);
        let Some(leg) = self.legs.get_mut(id) else {
            return;
        };
        leg.rang = true;
        leg.from = from;
        leg.to = to;
        push(out, leg, EventType::Ringing, "ringing", now);
    }

    fn ring_outbound(
        &mut self,
        id: &str,
        event: &Message,
        now: &str,
        out: &mut Vec<TelephonyEvent>,
    ) {
        let Some(leg) = self.legs.get_mut(id) else {
            return;
        };
        if leg.rang || leg.ended {
            return;
        }
        let channel = self.channels.get(id);
        let to = Some(event.text("Exten"))
            .filter(|e| !e.is_empty() && *e != "s")
            .map(str::to_string)
            .or_else(|| channel.map(|c| c.exten.clone()))
            .unwrap_or_default();
        leg.outbound = true;
        leg.rang = true;
        // The channel's own caller id may be what an Originate set for the phone's display:
        // the rep's number is their endpoint's.
        leg.from = resource_of(&leg.channel);
        leg.to = to;
        push(out, leg, EventType::Ringing, "ringing", now);
    }

    /// The rep's leg that asked for a consult on this call consults this new one: held.
    fn consult_starts(&mut self, id: &str, now: &str, out: &mut Vec<TelephonyEvent>) {
        let Some(call) = self.legs.get(id).map(|l| l.call.clone()) else {
            return;
        };
        for (other, leg) in self.legs.iter_mut() {
            if other == id || leg.call != call || leg.ended || !leg.answered || !leg.consult_asked {
                continue;
            }
            if leg.consulting.is_none() {
                leg.consult_asked = false;
                leg.consulting = Some(id.to_string());
                if !leg.held {
                    leg.held = true;
                    leg.holds += 1;
                    let n = leg.holds;
                    push(out, leg, EventType::Held, &format!("held:{n}"), now);
                }
            }
        }
    }

    fn answer_inbound(&mut self, id: &str, now: &str, out: &mut Vec<TelephonyEvent>) {
        if self.legs.get(id).is_some_and(|l| !l.outbound && l.rang) {
            self.answer(id, now, out);
        }
    }

    fn answer(&mut self, id: &str, now: &str, out: &mut Vec<TelephonyEvent>) {
        if let Some(leg) = self.legs.get_mut(id)
            && !leg.answered
            && !leg.ended
        {
            leg.answered = true;
            push(out, leg, EventType::Answered, "answered", now);
        }
    }

    fn transferred(&mut self, id: &str, target: &str, now: &str, out: &mut Vec<TelephonyEvent>) {
        let requested = self.transfers.remove(id);
        let Some(leg) = self.legs.get_mut(id) else {
            return;
        };
        if leg.ended || !leg.answered {
            return;
        }
        leg.ended = true;
        leg.consulting = None;
        let target = requested.unwrap_or_else(|| target.to_string());
        let mut event = event_of(leg, EventType::Transferred, "transferred", now);
        event.transfer_to = Some(target);
        out.push(event);
    }

    fn hung_up(&mut self, id: &str, now: &str, out: &mut Vec<TelephonyEvent>) {
        let declined = self.declines.remove(id);
        self.transfers.remove(id);
        if let Some(leg) = self.legs.get_mut(id)
            && !leg.ended
        {
            leg.ended = true;
            if leg.rang {
                let reason = if leg.answered {
                    EndReason::Completed
                } else if declined {
                    EndReason::Declined
                } else if leg.outbound {
                    EndReason::Failed
                } else {
                    EndReason::Missed
                };
                let mut event = event_of(leg, EventType::Ended, "ended", now);
                event.reason = Some(reason);
                out.push(event);
            }
        }
        // A consulted channel gone without a transfer: the consulting rep is back with the caller.
        for leg in self.legs.values_mut() {
            if leg.consulting.as_deref() == Some(id) && !leg.ended {
                leg.consulting = None;
                if leg.held {
                    leg.held = false;
                    let n = leg.holds;
                    push(out, leg, EventType::Resumed, &format!("resumed:{n}"), now);
                }
            }
        }
    }

    /// Reconciles with the channels Asterisk lists now (`CoreShowChannels`, after a gap): legs
    /// seen for the first time ring (and answer), legs that moved on answer, open legs no longer
    /// listed end. The events it brings, in order.
    pub fn resync(
        &mut self,
        listed: &[Listed],
        rep_of: &dyn Fn(&str) -> Option<String>,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        let mut out = Vec::new();
        self.channels = listed
            .iter()
            .map(|l| {
                (
                    l.uniqueid.clone(),
                    Channel {
                        name: l.channel.clone(),
                        linkedid: l.linkedid.clone(),
                        caller: l.caller.clone(),
                        exten: l.exten.clone(),
                    },
                )
            })
            .collect();
        // In Asterisk's order (the order channels were made), so a consult comes after the leg
        // it consults.
        for l in listed {
            if !self.leg_for(&l.uniqueid, rep_of) {
                continue;
            }
            let Some(leg) = self.legs.get(&l.uniqueid) else {
                continue;
            };
            if leg.ended {
                continue;
            }
            if !leg.rang {
                if l.uniqueid == l.linkedid {
                    // The rep's own call; its number is the channel's extension.
                    let to = if l.exten.is_empty() || l.exten == "s" {
                        l.connected.clone()
                    } else {
                        l.exten.clone()
                    };
                    if let Some(leg) = self.legs.get_mut(&l.uniqueid) {
                        leg.outbound = true;
                        leg.rang = true;
                        leg.from = resource_of(&leg.channel);
                        leg.to = to;
                        push(&mut out, leg, EventType::Ringing, "ringing", now);
                    }
                } else {
                    self.ring_inbound(&l.uniqueid, now, &mut out);
                }
            }
            let answered = match self.legs.get(&l.uniqueid) {
                Some(leg) if leg.outbound => l.bridged,
                Some(_) => l.state == 6,
                None => false,
            };
            if answered {
                self.answer(&l.uniqueid, now, &mut out);
            }
        }
        let gone: Vec<String> = self
            .legs
            .iter()
            .filter(|(id, l)| !l.ended && !self.channels.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.hung_up(&id, now, &mut out);
        }
        out
    }
}

fn event_of(leg: &Leg, kind: EventType, step: &str, now: &str) -> TelephonyEvent {
    TelephonyEvent {
        id: format!("asterisk:{}:{}:{step}", leg.call, leg.uniqueid),
        call_id: leg.call.clone(),
        event_type: kind,
        direction: if leg.outbound {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        from: leg.from.clone(),
        to: leg.to.clone(),
        agent: leg.rep.clone(),
        at: now.to_string(),
        transfer_to: None,
        reason: None,
        recording_url: None,
    }
}

fn push(out: &mut Vec<TelephonyEvent>, leg: &Leg, kind: EventType, step: &str, now: &str) {
    out.push(event_of(leg, kind, step, now));
}
