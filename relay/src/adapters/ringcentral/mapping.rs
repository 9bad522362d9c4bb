//! RingCentral's telephony-session notifications (and sessions read back) as the relay's events.
//!
//! A notification carries one session's parties with the session's `sequence`, which is
//! monotonic per party (reference 2.2: the SDK drops an update with a lower sequence, and so do
//! we; an equal one is the same update delivered again). Only parties of our reps count. The
//! status codes map as the reference lists them: `Setup`/`Proceeding` ring, `Answered` answers
//! (or resumes after `Hold`), `Hold` holds, `Disconnected` ends (`missedCall` makes it missed),
//! `Gone` hands the call on (to the party its `peerId` names).
//!
//! Event ids are derived from RingCentral's ids so that a notification delivered twice, or a
//! session read again after a restart or a lost subscription, yields ids the relay already has:
//! `rc:{sessionId}:{partyId}:ringing|answered|transferred|ended` (each happens once per party),
//! and for hold and resume, which may repeat, the party's sequence (`rc:{sid}:{pid}:{seq}`).
//!
//! A consult call is a session of its own at RingCentral (the rep calls the colleague while the
//! caller holds) but one call for the relay: its session is an alias of the rep's call, the
//! colleague's party there is the colleague's leg of that call, and the consulting rep's own
//! party there is not a leg at all.

use std::collections::{HashMap, HashSet};

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};
use serde_json::Value;

/// Party entries kept before the oldest are forgotten (a party ends within hours).
const MAX_PARTIES: usize = 20_000;

/// What the adapter needs to know of the account's users.
pub(crate) trait Directory {
    /// The rep (e-mail) of an extension id.
    fn rep_of(&self, extension_id: &str) -> Option<String>;
    /// The extension id of an extension number.
    fn extension_of_number(&self, number: &str) -> Option<String>;
}

/// One party as last seen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Seen {
    pub(crate) session: String,
    pub(crate) rep: Option<String>,
    pub(crate) code: String,
    pub(crate) sequence: Option<u64>,
    /// The number the party was reached at (its `to`), for a transfer that went to it.
    #[serde(default)]
    pub(crate) reached: Option<String>,
}

/// A consult session standing for the rep's call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Alias {
    pub(crate) call: String,
    /// The consulting rep's extension: their own party there is no leg.
    pub(crate) rep_extension: String,
}

/// A consult the relay asked for whose session RingCentral has not named yet.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PendingConsult {
    pub(crate) call: String,
    pub(crate) rep_extension: String,
    pub(crate) target_extension: String,
}

/// The caller side of a call, kept so the colleague's leg of a consult shows the caller.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CallFacts {
    direction: Direction,
    from: String,
    to: String,
}

/// What the adapter remembers of sessions between notifications.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    pub(crate) parties: HashMap<String, Seen>,
    pub(crate) aliases: HashMap<String, Alias>,
    pub(crate) pending: Vec<PendingConsult>,
    /// The target the relay asked a party's blind transfer to go to (rep or number).
    pub(crate) transfer_targets: HashMap<String, String>,
    /// Parties the relay asked to reject: their end is declined, not missed.
    pub(crate) declined: HashSet<String>,
    pub(crate) calls: HashMap<String, CallFacts>,
}

/// How a notification or a session read back is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Source {
    /// A notification: its sequence orders it.
    Notification,
    /// The session as RingCentral holds it now (start-up, after a lost subscription).
    Snapshot,
}

fn number(side: &Value) -> String {
    let n = side
        .get("phoneNumber")
        .and_then(Value::as_str)
        .or_else(|| side.get("extensionNumber").and_then(Value::as_str))
        .unwrap_or_default();
    n.strip_prefix("tel:").unwrap_or(n).to_string()
}

fn party_extension(party: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    party
        .get("extensionId")
        .and_then(text)
        .or_else(|| party.pointer("/owner/extensionId").and_then(text))
}

impl Tracker {
    /// The relay's call a session belongs to.
    pub(crate) fn call_of(&self, session: &str) -> String {
        self.aliases
            .get(session)
            .map(|a| a.call.clone())
            .unwrap_or_else(|| session.to_string())
    }

    /// The live party of `rep` on the relay's call `call`: in its own session first, then in a
    /// consult session standing for it.
    pub(crate) fn party_of(
        &self,
        call: &str,
        rep: &str,
        own_session: bool,
    ) -> Option<(String, String)> {
        let mut found: Vec<(&String, &Seen)> = self
            .parties
            .iter()
            .filter(|(_, s)| s.rep.as_deref() == Some(rep))
            .filter(|(_, s)| !matches!(s.code.as_str(), "Disconnected" | "Gone"))
            .filter(|(_, s)| {
                if own_session {
                    s.session == call
                } else {
                    s.session != call && self.call_of(&s.session) == call
                }
            })
            .collect();
        found.sort_by_key(|(pid, _)| pid.as_str());
        found
            .first()
            .map(|(pid, s)| (s.session.clone(), (*pid).clone()))
    }

    /// The peers named by `Gone` parties of a notification that have not been seen yet:
    /// `(telephonySessionId, partyId)`.
    pub(crate) fn unknown_peers(&self, body: &Value) -> Vec<(String, String)> {
        body.get("parties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.pointer("/status/code").and_then(Value::as_str) == Some("Gone"))
            .filter_map(|p| {
                let sid = p.pointer("/status/peerId/telephonySessionId")?.as_str()?;
                let pid = p.pointer("/status/peerId/partyId")?.as_str()?;
                (!self.parties.contains_key(pid)).then(|| (sid.to_string(), pid.to_string()))
            })
            .collect()
    }

    /// What a session read for a `Gone` party's peer said of that peer: its rep, so the transfer
    /// names them, or else the number it was reached at (a transfer outside the reps). No
    /// events: the peer's own notifications bring its leg.
    pub(crate) fn note_peer(
        &mut self,
        session: &str,
        pid: &str,
        peer: &Value,
        rep: Option<String>,
    ) {
        self.parties.entry(pid.to_string()).or_insert(Seen {
            session: session.to_string(),
            rep,
            code: String::new(),
            sequence: None,
            reached: Some(number(&peer["to"])).filter(|n| !n.is_empty()),
        });
    }

    /// The consult session of `call` opened by the rep of `extension`.
    pub(crate) fn consult_of(&self, call: &str, extension: &str) -> Option<String> {
        self.aliases
            .iter()
            .find(|(_, a)| a.call == call && a.rep_extension == extension)
            .map(|(sid, _)| sid.clone())
    }

    /// Applies one notification's `body` (or a session read back, with `id` and `parties`).
    pub(crate) fn apply(
        &mut self,
        body: &Value,
        source: Source,
        directory: &dyn Directory,
        now: &str,
    ) -> Vec<TelephonyEvent> {
        let Some(sid) = body
            .get("telephonySessionId")
            .or_else(|| body.get("id"))
            .and_then(Value::as_str)
        else {
            return Vec::new();
        };
        let sequence = body.get("sequence").and_then(Value::as_u64);
        let at = body
            .get("eventTime")
            .and_then(Value::as_str)
            .filter(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .is_ok()
            })
            .unwrap_or(now)
            .to_string();
        let parties = body
            .get("parties")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if self.parties.len() > MAX_PARTIES {
            // Forgetting is safe: ids are derived from RingCentral's, so an update of a forgotten
            // party gives ids the relay drops or states it already has.
            self.parties.clear();
            self.calls.clear();
            self.transfer_targets.clear();
            self.declined.clear();
        }
        if self.aliases.len() > MAX_PARTIES {
            self.aliases.clear();
        }
        let mut events = Vec::new();
        for party in &parties {
            events.extend(self.party(sid, party, sequence, source, directory, &at));
        }
        events
    }

    fn party(
        &mut self,
        sid: &str,
        party: &Value,
        sequence: Option<u64>,
        source: Source,
        directory: &dyn Directory,
        at: &str,
    ) -> Vec<TelephonyEvent> {
        let Some(pid) = party.get("id").and_then(Value::as_str) else {
            return Vec::new();
        };
        let extension = party_extension(party);
        let rep = extension.as_deref().and_then(|e| directory.rep_of(e));
        let code = party
            .pointer("/status/code")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let before = self.parties.get(pid).cloned();
        if source == Source::Notification
            && let (Some(new), Some(old)) = (sequence, before.as_ref().and_then(|b| b.sequence))
            && new <= old
        {
            // Lower: an older update overtaken by a newer one; equal: the same one again.
            return Vec::new();
        }
        self.link_consult(sid, party, extension.as_deref(), directory);
        self.parties.insert(
            pid.to_string(),
            Seen {
                session: sid.to_string(),
                rep: rep.clone(),
                code: code.clone(),
                sequence: sequence.or(before.as_ref().and_then(|b| b.sequence)),
                reached: Some(number(&party["to"])).filter(|n| !n.is_empty()),
            },
        );
        let Some(rep) = rep else {
            return Vec::new();
        };
        let call = self.call_of(sid);
        if let Some(alias) = self.aliases.get(sid)
            && Some(alias.rep_extension.as_str()) == extension.as_deref()
        {
            // The consulting rep's own line to the colleague: not a leg of the call.
            return Vec::new();
        }
        let direction = match party.get("direction").and_then(Value::as_str) {
            Some("Outbound") => Direction::Outbound,
            _ => Direction::Inbound,
        };
        let facts = self
            .calls
            .entry(call.clone())
            .or_insert_with(|| CallFacts {
                direction,
                from: number(&party["from"]),
                to: number(&party["to"]),
            })
            .clone();
        let (direction, from, to) = if call != sid {
            (facts.direction, facts.from.clone(), facts.to.clone())
        } else {
            (direction, number(&party["from"]), number(&party["to"]))
        };
        let make = |kind: EventType, id: String| TelephonyEvent {
            id,
            call_id: call.clone(),
            event_type: kind,
            direction,
            from: from.clone(),
            to: to.clone(),
            agent: rep.clone(),
            at: at.to_string(),
            transfer_to: None,
            reason: None,
            recording_url: None,
        };
        let base = format!("rc:{sid}:{pid}");
        let repeatable = |kind: &str| match (source, sequence) {
            (Source::Notification, Some(seq)) => format!("{base}:{seq}"),
            // A session read back has no sequence: a hold or resume it shows gets an id of that
            // reading; applied to a leg already in that state it changes nothing.
            _ => format!("{base}:{kind}@{at}"),
        };
        let was = before.map(|b| b.code).unwrap_or_default();
        let mut events = Vec::new();
        match code.as_str() {
            "Setup" | "Proceeding" => {
                events.push(make(EventType::Ringing, format!("{base}:ringing")));
            }
            "Answered" => {
                if source == Source::Snapshot {
                    events.push(make(EventType::Ringing, format!("{base}:ringing")));
                }
                events.push(make(EventType::Answered, format!("{base}:answered")));
                if was == "Hold" || (source == Source::Snapshot && was.is_empty()) {
                    events.push(make(EventType::Resumed, repeatable("resumed")));
                }
            }
            "Hold" => {
                if source == Source::Snapshot {
                    events.push(make(EventType::Ringing, format!("{base}:ringing")));
                    events.push(make(EventType::Answered, format!("{base}:answered")));
                }
                events.push(make(EventType::Held, repeatable("held")));
            }
            "Disconnected" | "VoiceMail" => {
                let missed = party.get("missedCall").and_then(Value::as_bool) == Some(true)
                    || code == "VoiceMail";
                let mut ended = make(EventType::Ended, format!("{base}:ended"));
                ended.reason = if missed {
                    Some(EndReason::Missed)
                } else if self.declined.contains(pid) && was == "Proceeding" {
                    Some(EndReason::Declined)
                } else {
                    None
                };
                events.push(ended);
            }
            "Gone" => {
                let peer = party
                    .pointer("/status/peerId/partyId")
                    .and_then(Value::as_str)
                    .and_then(|peer| self.parties.get(peer));
                // Reference 2.2 lists Gone's reasons: `AttendedTransfer`, `Conference`,
                // `Supervising`, `Pickup`, `Undefined`; the three in the middle are no hand-over
                // of the call. That any other reason (a blind transfer's is not published) is
                // one, when the rep had been talking, is inferred.
                let handed = !matches!(
                    party.pointer("/status/reason").and_then(Value::as_str),
                    Some("Conference" | "Supervising" | "Pickup")
                ) && matches!(was.as_str(), "Answered" | "Hold");
                // (target, whether it is a colleague whose own leg follows).
                let target = match (
                    peer.and_then(|p| p.rep.clone()),
                    self.transfer_targets.get(pid),
                ) {
                    (Some(rep), _) => Some((rep, true)),
                    // The relay's own transfer: to a rep (by e-mail) or to a number.
                    (None, Some(asked)) => Some((asked.clone(), asked.contains('@'))),
                    // Made on the phone to a party no rep has: a number outside.
                    (None, None) => peer
                        .and_then(|p| p.reached.clone())
                        .filter(|_| handed)
                        .map(|number| (number, false)),
                };
                match target {
                    Some((target, colleague)) => {
                        let mut transferred =
                            make(EventType::Transferred, format!("{base}:transferred"));
                        transferred.transfer_to = Some(target);
                        if !colleague {
                            // No colleague's leg follows: this hand-over ends the call.
                            transferred.reason = Some(EndReason::Completed);
                        }
                        events.push(transferred);
                    }
                    // Gone to nobody we know (answered elsewhere, a conference): the rep's
                    // part of the call is over.
                    None => events.push(make(EventType::Ended, format!("{base}:ended"))),
                }
            }
            // Parked, fax, voicemail screening: nothing the rep's widget shows.
            _ => {}
        }
        events
    }

    /// Recognises a consult session the relay asked for when one of its parties first shows up:
    /// the colleague rung from the rep, or the rep's line ringing the colleague.
    fn link_consult(
        &mut self,
        sid: &str,
        party: &Value,
        extension: Option<&str>,
        directory: &dyn Directory,
    ) {
        if self.aliases.contains_key(sid) || self.parties.values().any(|p| p.session == sid) {
            return;
        }
        let from_ext = party_extension(&party["from"]);
        let to_ext = party_extension(&party["to"]).or_else(|| {
            party
                .pointer("/to/extensionNumber")
                .and_then(Value::as_str)
                .and_then(|n| directory.extension_of_number(n))
        });
        let Some(index) = self.pending.iter().position(|p| {
            (extension == Some(p.target_extension.as_str())
                && from_ext.as_deref() == Some(p.rep_extension.as_str()))
                || (extension == Some(p.rep_extension.as_str())
                    && to_ext.as_deref() == Some(p.target_extension.as_str()))
        }) else {
            return;
        };
        let pending = self.pending.remove(index);
        self.aliases.insert(
            sid.to_string(),
            Alias {
                call: pending.call,
                rep_extension: pending.rep_extension,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Reps;
    impl Directory for Reps {
        fn rep_of(&self, extension_id: &str) -> Option<String> {
            match extension_id {
                "101" => Some("alice@example.com".into()),
                "102" => Some("bob@example.com".into()),
                _ => None,
            }
        }
        fn extension_of_number(&self, number: &str) -> Option<String> {
            Some(number.to_string())
        }
    }

    const NOW: &str = "2026-12-02T10:00:00Z";

    fn note(seq: u64, pid: &str, ext: Option<&str>, status: Value, missed: bool) -> Value {
        let mut party = json!({"id": pid, "direction": "Inbound",
            "from": {"phoneNumber": "tel:+41446681800"}, "to": {"phoneNumber": "+16505550101"},
            "status": status, "missedCall": missed});
        if let Some(ext) = ext {
            party["extensionId"] = ext.into();
        }
        json!({"sequence": seq, "telephonySessionId": "s-1", "eventTime": "2026-12-02T09:00:00Z",
               "parties": [party]})
    }

    fn kinds(events: &[TelephonyEvent]) -> Vec<(EventType, String)> {
        events
            .iter()
            .map(|e| (e.event_type, e.id.clone()))
            .collect()
    }

    #[test]
    fn a_call_maps_status_by_status_and_a_lower_or_repeated_sequence_is_ignored() {
        let mut t = Tracker::default();
        let n = Source::Notification;
        let ring = t.apply(
            &note(1, "p-1", Some("101"), json!({"code": "Proceeding"}), false),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(
            kinds(&ring),
            [(EventType::Ringing, "rc:s-1:p-1:ringing".into())]
        );
        assert_eq!(ring[0].from, "+41446681800", "tel: is stripped");
        assert_eq!(ring[0].agent, "alice@example.com");
        assert_eq!(ring[0].at, "2026-12-02T09:00:00Z");
        let answered = t.apply(
            &note(3, "p-1", Some("101"), json!({"code": "Answered"}), false),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(
            kinds(&answered),
            [(EventType::Answered, "rc:s-1:p-1:answered".into())]
        );
        // Sequence 2 came late (overtaken), 3 again is a duplicate: both ignored.
        assert!(
            t.apply(
                &note(2, "p-1", Some("101"), json!({"code": "Proceeding"}), false),
                n,
                &Reps,
                NOW
            )
            .is_empty()
        );
        assert!(
            t.apply(
                &note(3, "p-1", Some("101"), json!({"code": "Answered"}), false),
                n,
                &Reps,
                NOW
            )
            .is_empty()
        );
        let held = t.apply(
            &note(4, "p-1", Some("101"), json!({"code": "Hold"}), false),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(kinds(&held), [(EventType::Held, "rc:s-1:p-1:4".into())]);
        let resumed = t.apply(
            &note(5, "p-1", Some("101"), json!({"code": "Answered"}), false),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(
            kinds(&resumed),
            [
                (EventType::Answered, "rc:s-1:p-1:answered".into()),
                (EventType::Resumed, "rc:s-1:p-1:5".into())
            ]
        );
        let ended = t.apply(
            &note(
                6,
                "p-1",
                Some("101"),
                json!({"code": "Disconnected"}),
                false,
            ),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(
            kinds(&ended),
            [(EventType::Ended, "rc:s-1:p-1:ended".into())]
        );
        assert_eq!(
            ended[0].reason, None,
            "the relay decides completed from the answer"
        );
    }

    #[test]
    fn a_party_disconnected_with_missed_call_is_a_missed_call() {
        let mut t = Tracker::default();
        let n = Source::Notification;
        t.apply(
            &note(1, "p-1", Some("101"), json!({"code": "Proceeding"}), false),
            n,
            &Reps,
            NOW,
        );
        let ended = t.apply(
            &note(2, "p-1", Some("101"), json!({"code": "Disconnected"}), true),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(ended[0].event_type, EventType::Ended);
        assert_eq!(ended[0].reason, Some(EndReason::Missed));
    }

    #[test]
    fn a_ringing_party_the_relay_rejected_ends_declined() {
        let mut t = Tracker::default();
        let n = Source::Notification;
        t.apply(
            &note(1, "p-1", Some("101"), json!({"code": "Proceeding"}), false),
            n,
            &Reps,
            NOW,
        );
        t.declined.insert("p-1".into());
        let ended = t.apply(
            &note(
                2,
                "p-1",
                Some("101"),
                json!({"code": "Disconnected"}),
                false,
            ),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(ended[0].reason, Some(EndReason::Declined));
    }

    #[test]
    fn parties_of_no_rep_are_not_legs() {
        let mut t = Tracker::default();
        let n = Source::Notification;
        assert!(
            t.apply(
                &note(1, "p-9", None, json!({"code": "Answered"}), false),
                n,
                &Reps,
                NOW
            )
            .is_empty()
        );
        assert!(
            t.apply(
                &note(1, "p-8", Some("999"), json!({"code": "Proceeding"}), false),
                n,
                &Reps,
                NOW
            )
            .is_empty()
        );
    }

    #[test]
    fn gone_with_a_peer_id_is_a_transfer_to_the_peers_rep() {
        let mut t = Tracker::default();
        let n = Source::Notification;
        t.apply(
            &note(1, "p-1", Some("101"), json!({"code": "Answered"}), false),
            n,
            &Reps,
            NOW,
        );
        let bob = t.apply(
            &note(1, "p-2", Some("102"), json!({"code": "Proceeding"}), false),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(bob[0].agent, "bob@example.com");
        let gone = t.apply(
            &note(
                2,
                "p-1",
                Some("101"),
                json!({"code": "Gone", "reason": "AttendedTransfer",
                "peerId": {"telephonySessionId": "s-1", "sessionId": "1", "partyId": "p-2"}}),
                false,
            ),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(
            kinds(&gone),
            [(EventType::Transferred, "rc:s-1:p-1:transferred".into())]
        );
        assert_eq!(gone[0].transfer_to.as_deref(), Some("bob@example.com"));
        // A peer not seen yet: the target the relay asked for.
        let mut t = Tracker::default();
        t.apply(
            &note(1, "p-1", Some("101"), json!({"code": "Answered"}), false),
            n,
            &Reps,
            NOW,
        );
        t.transfer_targets
            .insert("p-1".into(), "bob@example.com".into());
        let gone = t.apply(
            &note(
                2,
                "p-1",
                Some("101"),
                json!({"code": "Gone", "peerId": {"partyId": "p-7"}}),
                false,
            ),
            n,
            &Reps,
            NOW,
        );
        assert_eq!(gone[0].transfer_to.as_deref(), Some("bob@example.com"));
        assert_eq!(gone[0].reason, None, "the call waits for bob");
    }

    #[test]
    fn gone_to_a_number_outside_ends_the_call() {
        let n = Source::Notification;
        let answered = |t: &mut Tracker| {
            t.apply(
                &note(1, "p-1", Some("101"), json!({"code": "Answered"}), false),
                n,
                &Reps,
                NOW,
            )
        };
        let gone = |t: &mut Tracker, reason: &str| {
            t.apply(
                &note(
                    2,
                    "p-1",
                    Some("101"),
                    json!({"code": "Gone", "reason": reason,
                        "peerId": {"telephonySessionId": "s-1", "partyId": "p-3"}}),
                    false,
                ),
                n,
                &Reps,
                NOW,
            )
        };
        // Made on the phone: the peer, read back, is no rep's party but a number.
        let mut t = Tracker::default();
        answered(&mut t);
        t.note_peer(
            "s-1",
            "p-3",
            &json!({"id": "p-3", "to": {"phoneNumber": "+41445550199"}}),
            None,
        );
        let handed = gone(&mut t, "BlindTransfer");
        assert_eq!(
            kinds(&handed),
            [(EventType::Transferred, "rc:s-1:p-1:transferred".into())]
        );
        assert_eq!(handed[0].transfer_to.as_deref(), Some("+41445550199"));
        assert_eq!(handed[0].reason, Some(EndReason::Completed));
        // Asked for by the relay, the peer not read.
        let mut t = Tracker::default();
        answered(&mut t);
        t.transfer_targets
            .insert("p-1".into(), "+41445550198".into());
        let handed = gone(&mut t, "BlindTransfer");
        assert_eq!(handed[0].transfer_to.as_deref(), Some("+41445550198"));
        assert_eq!(handed[0].reason, Some(EndReason::Completed));
        // Picked up elsewhere is no hand-over: the leg ends.
        let mut t = Tracker::default();
        answered(&mut t);
        t.note_peer(
            "s-1",
            "p-3",
            &json!({"id": "p-3", "to": {"phoneNumber": "+41445550199"}}),
            None,
        );
        assert_eq!(gone(&mut t, "Pickup")[0].event_type, EventType::Ended);
    }

    #[test]
    fn a_session_read_again_yields_the_ids_its_notifications_gave() {
        let mut t = Tracker::default();
        let n = Source::Notification;
        let mut ids: Vec<String> = Vec::new();
        for (seq, code) in [(1, "Proceeding"), (2, "Answered")] {
            ids.extend(
                t.apply(
                    &note(seq, "p-1", Some("101"), json!({"code": code}), false),
                    n,
                    &Reps,
                    NOW,
                )
                .into_iter()
                .map(|e| e.id),
            );
        }
        // After a restart: nothing remembered, the session as RingCentral holds it.
        let mut fresh = Tracker::default();
        let session = json!({"id": "s-1", "parties": [{"id": "p-1", "extensionId": "101",
            "direction": "Inbound", "from": {"phoneNumber": "+41446681800"}, "to": {},
            "status": {"code": "Answered"}}]});
        let again = fresh.apply(&session, Source::Snapshot, &Reps, NOW);
        let again: Vec<(EventType, String)> = kinds(&again);
        assert_eq!(again[0], (EventType::Ringing, ids[0].clone()));
        assert_eq!(again[1], (EventType::Answered, ids[1].clone()));
        // The resume a reading adds only puts a held leg back in talk.
        assert_eq!(again[2].0, EventType::Resumed);
    }

    #[test]
    fn a_consult_session_is_the_colleagues_leg_of_the_reps_call() {
        let mut t = Tracker::default();
        let n = Source::Notification;
        t.apply(
            &note(1, "p-1", Some("101"), json!({"code": "Answered"}), false),
            n,
            &Reps,
            NOW,
        );
        t.pending.push(PendingConsult {
            call: "s-1".into(),
            rep_extension: "101".into(),
            target_extension: "102".into(),
        });
        let colleague = json!({"sequence": 1, "telephonySessionId": "s-2", "parties": [{
            "id": "p-21", "extensionId": "102", "direction": "Inbound",
            "from": {"phoneNumber": "+16505550101", "extensionId": "101"},
            "to": {"extensionNumber": "102"}, "status": {"code": "Proceeding"}}]});
        let events = t.apply(&colleague, n, &Reps, NOW);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].call_id, "s-1");
        assert_eq!(events[0].agent, "bob@example.com");
        assert_eq!(
            events[0].from, "+41446681800",
            "the caller, not the rep's line"
        );
        let own = json!({"sequence": 2, "telephonySessionId": "s-2", "parties": [{
            "id": "p-20", "extensionId": "101", "direction": "Outbound",
            "from": {"extensionId": "101"}, "to": {"extensionNumber": "102"},
            "status": {"code": "Answered"}}]});
        assert!(
            t.apply(&own, n, &Reps, NOW).is_empty(),
            "the rep's own consult line"
        );
        assert_eq!(
            t.party_of("s-1", "alice@example.com", false),
            Some(("s-2".into(), "p-20".into()))
        );
        assert_eq!(t.consult_of("s-1", "101"), Some("s-2".into()));
    }
}
