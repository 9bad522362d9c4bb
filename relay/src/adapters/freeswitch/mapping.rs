//! FreeSWITCH channel events (JSON) to the relay's call events (reference 5.5).
//!
//! The call is `Channel-Call-UUID`, a rep's leg their channel (`Unique-ID`), found by the user
//! of its name (`sofia/internal/1001@10.0.0.5` is user `1001`) in the tenant's
//! `freeswitch_users`. FreeSWITCH names directions from its own side: a leg it places to the
//! rep's phone (`Call-Direction: outbound`) is a call coming in to the rep, a leg from the rep's
//! phone (`inbound`) a call the rep places; a leg the relay originated for click-to-dial carries
//! the channel variable `cti_dial` (the number) and is the rep's outbound call (inferred).
//! - `CHANNEL_CREATE`: ringing (caller `Caller-Caller-ID-Number`, dialled
//!   `Caller-Destination-Number`);
//! - `CHANNEL_ANSWER` of a leg coming in to the rep, `CHANNEL_BRIDGE` of one going out: answered;
//! - `CHANNEL_HOLD` / `CHANNEL_UNHOLD`: held / resumed;
//! - `CHANNEL_HANGUP_COMPLETE`: ended (`completed` when answered, `transferred` when the rep
//!   asked the relay for a transfer, `declined` when the rep declined, `failed` going out, else
//!   `missed`).

use std::collections::{BTreeMap, BTreeSet};

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};
use serde_json::Value;

/// The user of a channel name: `sofia/internal/1001@10.0.0.5:5060` -> `1001`.
pub fn user_of(channel: &str) -> Option<&str> {
    let rest = channel.rsplit('/').next()?;
    let user = rest.split('@').next()?;
    (!user.is_empty() && channel.contains('/')).then_some(user)
}

fn text<'a>(event: &'a Value, key: &str) -> &'a str {
    event.get(key).and_then(Value::as_str).unwrap_or("")
}

#[derive(Debug, Clone, Default)]
struct Leg {
    uuid: String,
    call: String,
    rep: String,
    outbound: bool,
    from: String,
    to: String,
    answered: bool,
    held: bool,
    holds: u32,
    ended: bool,
}

/// The legs seen, so each event yields only what changed.
#[derive(Debug, Default)]
pub struct Tracker {
    legs: BTreeMap<String, Leg>,
    transfers: BTreeMap<String, String>,
    declines: BTreeSet<String>,
}

const KEPT_LEGS: usize = 10_000;

/// One row of `show channels as json`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub uuid: String,
    pub call: String,
    pub name: String,
    pub direction: String,
    pub caller: String,
    pub dest: String,
    pub answered: bool,
    pub dial: Option<String>,
}

impl Listed {
    /// The rows of `show channels as json` (`{"row_count":0}` when there are none).
    pub fn rows(body: &str) -> Result<Vec<Listed>, String> {
        let value: Value =
            serde_json::from_str(body.trim()).map_err(|e| format!("not JSON: {e}"))?;
        let rows = match value.get("rows") {
            Some(Value::Array(rows)) => rows.clone(),
            None if value.get("row_count").is_some() => Vec::new(),
            _ => return Err("no rows".into()),
        };
        Ok(rows
            .iter()
            .filter_map(|r| {
                let uuid = text(r, "uuid").to_string();
                (!uuid.is_empty()).then(|| Listed {
                    call: Some(text(r, "call_uuid"))
                        .filter(|c| !c.is_empty())
                        .unwrap_or(&uuid)
                        .to_string(),
                    name: text(r, "name").to_string(),
                    direction: text(r, "direction").to_string(),
                    caller: text(r, "cid_num").to_string(),
                    dest: text(r, "dest").to_string(),
                    answered: matches!(text(r, "callstate"), "ACTIVE" | "HELD"),
                    dial: None,
                    uuid,
                })
            })
            .collect())
    }
}

impl Tracker {
    pub fn uuid_of(&self, call: &str, rep: &str) -> Option<String> {
        self.legs
            .values()
            .find(|l| l.call == call && l.rep.eq_ignore_ascii_case(rep) && !l.ended)
            .map(|l| l.uuid.clone())
    }

    pub fn transfer_requested(&mut self, leg: &str, target: &str) {
        if target.is_empty() {
            self.transfers.remove(leg);
        } else {
            self.transfers.insert(leg.to_string(), target.to_string());
        }
    }

    pub fn decline_requested(&mut self, leg: &str) {
        self.declines.insert(leg.to_string());
    }

    pub fn forget(&mut self, leg: &str) {
        self.legs.remove(leg);
    }

    pub fn open_calls(&self) -> Vec<(String, String)> {
        self.legs
            .values()
            .filter(|l| !l.ended)
            .map(|l| (l.call.clone(), l.rep.clone()))
            .collect()
    }

    fn create(&mut self, listed: &Listed, rep: String, now: &str, out: &mut Vec<TelephonyEvent>) {
        if self.legs.contains_key(&listed.uuid) {
            return;
        }
        let outbound = listed.dial.is_some() || listed.direction == "inbound";
        let (from, to) = match (&listed.dial, outbound) {
            (Some(number), _) => (
                user_of(&listed.name).unwrap_or("").to_string(),
                number.clone(),
            ),
            (None, true) => (listed.caller.clone(), listed.dest.clone()),
            (None, false) => (listed.caller.clone(), listed.dest.clone()),
        };
        let leg = Leg {
            uuid: listed.uuid.clone(),
            call: listed.call.clone(),
            rep,
            outbound,
            from,
            to,
            ..Leg::default()
        };
        out.push(event_of(&leg, EventType::Ringing, "ringing", now));
        self.legs.insert(listed.uuid.clone(), leg);
    }

    /// Applies one event (the JSON body of a `text/event-json` frame).
    pub fn apply(
        &mut self,
        event: &Value,
        rep_of: &dyn Fn(&str) -> Option<String>,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        let mut out = Vec::new();
        let uuid = text(event, "Unique-ID").to_string();
        if uuid.is_empty() {
            return out;
        }
        let name = text(event, "Channel-Name");
        match text(event, "Event-Name") {
            "CHANNEL_CREATE" => {
                let Some(rep) = user_of(name).and_then(rep_of) else {
                    return out;
                };
                let listed = Listed {
                    uuid: uuid.clone(),
                    call: Some(text(event, "Channel-Call-UUID"))
                        .filter(|c| !c.is_empty())
                        .unwrap_or(&uuid)
                        .to_string(),
                    name: name.to_string(),
                    direction: text(event, "Call-Direction").to_string(),
                    caller: text(event, "Caller-Caller-ID-Number").to_string(),
                    dest: text(event, "Caller-Destination-Number").to_string(),
                    answered: false,
                    dial: Some(text(event, "variable_cti_dial"))
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                };
                self.create(&listed, rep, now, &mut out);
            }
            "CHANNEL_ANSWER" if self.legs.get(&uuid).is_some_and(|l| !l.outbound) => {
                self.answer(&uuid, now, &mut out);
            }
            "CHANNEL_BRIDGE" => {
                for id in [
                    uuid.clone(),
                    text(event, "Bridge-A-Unique-ID").to_string(),
                    text(event, "Bridge-B-Unique-ID").to_string(),
                    text(event, "Other-Leg-Unique-ID").to_string(),
                ] {
                    if self.legs.get(&id).is_some_and(|l| l.outbound) {
                        self.answer(&id, now, &mut out);
                    }
                }
            }
            "CHANNEL_HOLD" | "CHANNEL_UNHOLD" => {
                let hold = text(event, "Event-Name") == "CHANNEL_HOLD";
                if let Some(leg) = self.legs.get_mut(&uuid)
                    && leg.answered
                    && !leg.ended
                    && leg.held != hold
                {
                    leg.held = hold;
                    if hold {
                        leg.holds += 1;
                    }
                    let n = leg.holds;
                    let (kind, step) = if hold {
                        (EventType::Held, format!("held:{n}"))
                    } else {
                        (EventType::Resumed, format!("resumed:{n}"))
                    };
                    out.push(event_of(leg, kind, &step, now));
                }
            }
            "CHANNEL_HANGUP_COMPLETE" => self.hung_up(&uuid, now, &mut out),
            _ => {}
        }
        if self.legs.len() > KEPT_LEGS {
            self.legs.retain(|_, l| !l.ended);
        }
        out
    }

    fn answer(&mut self, uuid: &str, now: &str, out: &mut Vec<TelephonyEvent>) {
        if let Some(leg) = self.legs.get_mut(uuid)
            && !leg.answered
            && !leg.ended
        {
            leg.answered = true;
            out.push(event_of(leg, EventType::Answered, "answered", now));
        }
    }

    fn hung_up(&mut self, uuid: &str, now: &str, out: &mut Vec<TelephonyEvent>) {
        let transfer = self.transfers.remove(uuid);
        let declined = self.declines.remove(uuid);
        let Some(leg) = self.legs.get_mut(uuid) else {
            return;
        };
        if leg.ended {
            return;
        }
        leg.ended = true;
        if let Some(target) = transfer.filter(|_| leg.answered) {
            let mut e = event_of(leg, EventType::Transferred, "transferred", now);
            e.transfer_to = Some(target);
            out.push(e);
            return;
        }
        let reason = if leg.answered {
            EndReason::Completed
        } else if declined {
            EndReason::Declined
        } else if leg.outbound {
            EndReason::Failed
        } else {
            EndReason::Missed
        };
        let mut e = event_of(leg, EventType::Ended, "ended", now);
        e.reason = Some(reason);
        out.push(e);
    }

    /// Reconciles with `show channels as json` after a gap: new rep legs ring (and answer),
    /// open legs no longer listed end.
    pub fn resync(
        &mut self,
        listed: &[Listed],
        rep_of: &dyn Fn(&str) -> Option<String>,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        let mut out = Vec::new();
        for l in listed {
            let Some(rep) = user_of(&l.name).and_then(rep_of) else {
                continue;
            };
            self.create(l, rep, now, &mut out);
            if l.answered {
                self.answer(&l.uuid, now, &mut out);
            }
        }
        let gone: Vec<String> = self
            .legs
            .iter()
            .filter(|(id, leg)| !leg.ended && !listed.iter().any(|l| &l.uuid == *id))
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
        id: format!("freeswitch:{}:{}:{step}", leg.call, leg.uuid),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reps(user: &str) -> Option<String> {
        (user == "1002").then(|| "bob@example.com".to_string())
    }

    /// Reference 5.5's JSON CHANNEL_CREATE (the leg FreeSWITCH places to user 1002).
    fn create() -> Value {
        json!({
            "Event-Name": "CHANNEL_CREATE",
            "Channel-Call-State": "DOWN",
            "Answer-State": "ringing",
            "Caller-ANI": "02473001403",
            "Caller-Caller-ID-Number": "02473001403",
            "Caller-Destination-Number": "1002",
            "Call-Direction": "outbound",
            "Channel-Name": "sofia/internal/1002@10.0.0.5:5060",
            "Unique-ID": "b-1",
            "Channel-Call-UUID": "a-1",
        })
    }

    #[test]
    fn the_reference_create_rings_the_rep_and_the_call_runs_its_course() {
        let mut t = Tracker::default();
        let ring = t.apply(&create(), &reps, "t");
        assert_eq!(ring.len(), 1);
        assert_eq!(ring[0].call_id, "a-1");
        assert_eq!(ring[0].from, "02473001403");
        assert_eq!(ring[0].to, "1002");
        assert_eq!(ring[0].direction, Direction::Inbound);
        assert!(t.apply(&create(), &reps, "t").is_empty(), "twice");
        let step = |t: &mut Tracker, name: &str| {
            t.apply(&json!({"Event-Name": name, "Unique-ID": "b-1"}), &reps, "t")
                .into_iter()
                .map(|e| e.event_type)
                .collect::<Vec<_>>()
        };
        assert_eq!(step(&mut t, "CHANNEL_ANSWER"), [EventType::Answered]);
        assert_eq!(step(&mut t, "CHANNEL_HOLD"), [EventType::Held]);
        assert_eq!(step(&mut t, "CHANNEL_UNHOLD"), [EventType::Resumed]);
        let end = t.apply(
            &json!({"Event-Name": "CHANNEL_HANGUP_COMPLETE", "Unique-ID": "b-1", "Hangup-Cause": "NORMAL_CLEARING"}),
            &reps,
            "t",
        );
        assert_eq!(end[0].reason, Some(EndReason::Completed));
        assert!(t.open_calls().is_empty());
    }

    #[test]
    fn a_cancelled_ring_is_missed_and_a_resync_ends_what_is_gone() {
        let mut t = Tracker::default();
        t.apply(&create(), &reps, "t");
        let end = t.resync(&[], &reps, "t");
        assert_eq!(end[0].reason, Some(EndReason::Missed));
        let rows = Listed::rows(r#"{"row_count":1,"rows":[{"uuid":"b-2","direction":"outbound","name":"sofia/internal/1002@x","cid_num":"+41441234567","dest":"1002","callstate":"ACTIVE","call_uuid":"a-2"}]}"#).expect("rows");
        let events = t.resync(&rows, &reps, "t");
        let kinds: Vec<_> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(kinds, [EventType::Ringing, EventType::Answered]);
        assert_eq!(events[0].call_id, "a-2");
        assert!(Listed::rows(r#"{"row_count":0}"#).expect("none").is_empty());
        assert!(Listed::rows("-ERR").is_err());
        assert_eq!(user_of("sofia/internal/1001@10.0.0.5:5060"), Some("1001"));
        assert_eq!(user_of("loopback/1001"), Some("1001"));
    }
}
