//! A rep's dialog-info documents to the relay's call events (reference 5.1, 5.6).
//!
//! Each NOTIFY of a rep's subscription carries their dialogs; the [`Tracker`] remembers what
//! each leg (a SIP call and a rep) has been through, so a document yields only what changed:
//! `trying`/`proceeding`/`early` ring, `confirmed` answers, the rep's own target with
//! `+sip.rendering=no` holds (and `yes` again resumes), `terminated` ends: `completed` after
//! an answer, else `missed` for an inbound call and `failed` for an outbound one (Kamailio
//! writes no `event=` on a cancelled call, so the absence of `confirmed` is what tells a
//! missed call, reference 5.6).
//!
//! A full-state document is the whole truth: an open leg that it no longer lists ended while
//! nobody told us (a notifier's restart, a lost NOTIFY). Finished dialogs that notifiers keep
//! listing for a while as `terminated` bring nothing new, and a leg first seen terminated
//! (a call that ended before the subscription) brings nothing at all.
//!
//! Transfers: a dialog replacing another (`<replaces>`) rings its rep as any other, and the
//! replaced dialog terminating with `event="replaced"` ends its rep's leg as `transferred`.
//! A blind transfer (REFER) gives the transferee's new call to the target a new Call-ID, so
//! the target's leg is joined to the transferor's call when it first rings: when its dialog
//! names the transferor (`<referred-by>`, RFC 4235 section 4.1.6) and the transferor's
//! answered leg is with the same party, or, for notifiers that report no `<referred-by>`
//! (Kamailio's pua_dialoginfo), when exactly one other rep is talking with the same caller
//! (same identity, and same user agent where both dialogs give a target) — an inference, which
//! a tenant turns off with `sip_infer_transfers: false` where unrelated callers share one
//! number. The transferor's leg then ends as `transferred` to the target when its dialog
//! terminates while the target's leg is still up; a target who never picks up leaves the
//! transferor's call as it was.
//!
//! Event ids come from the SIP Call-ID, the rep and what happened (holds counted), so the
//! same state read twice (a re-subscription's full state, a restart) brings the same ids,
//! which the relay drops.

use std::collections::BTreeMap;

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};

use super::dialog_info::{Completeness, Dialog, DialogInfo, Role, State, user_of};

/// One rep's leg of a SIP call, as seen so far.
#[derive(Debug, Clone, Default)]
struct Leg {
    rang: bool,
    answered: bool,
    held: bool,
    holds: u32,
    ended: bool,
    outbound: bool,
    from: String,
    to: String,
    /// The other party's user agent (its target URI), when the notifier gives it.
    remote_target: Option<String>,
    /// The relay's call this leg belongs to when that is not its own SIP call: the
    /// transferor's call, for a leg a blind transfer brought.
    joined: Option<String>,
    /// The rep this leg is being handed to: a transfer to them rings.
    handing_to: Option<String>,
    /// Ended and kept only to recognise late copies; the order of ending, for letting go.
    ended_at: u64,
}

/// Legs kept before the oldest ended ones are let go.
const KEPT_LEGS: usize = 10_000;

/// The legs seen, per (SIP call, rep).
#[derive(Debug)]
pub struct Tracker {
    legs: BTreeMap<(String, String), Leg>,
    ends: u64,
    infer_transfers: bool,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new(true)
    }
}

impl Tracker {
    /// `infer_transfers`: whether a rep's new call from the caller another rep is talking to
    /// is taken as that rep's blind transfer when the notifier names no referrer.
    pub fn new(infer_transfers: bool) -> Self {
        Tracker {
            legs: BTreeMap::new(),
            ends: 0,
            infer_transfers,
        }
    }

    /// Applies one document of `rep`'s subscription; the events it brings, in order.
    pub fn apply(&mut self, rep: &str, info: &DialogInfo, now: &str) -> Vec<TelephonyEvent> {
        let mut events = Vec::new();
        for dialog in merged(&info.dialogs) {
            self.dialog(rep, &dialog, now, &mut events);
        }
        if info.state == Completeness::Full {
            let listed: Vec<&str> = info.dialogs.iter().map(Dialog::call).collect();
            let gone: Vec<String> = self
                .legs
                .iter()
                .filter(|((call, r), leg)| {
                    r == rep && !leg.ended && !listed.contains(&call.as_str())
                })
                .map(|((call, _), _)| call.clone())
                .collect();
            for call in gone {
                self.end(rep, &call, None, now, &mut events);
            }
        }
        self.let_go();
        events
    }

    /// The relay's calls whose legs of `rep` are still open.
    pub fn open_calls(&self, rep: &str) -> Vec<String> {
        self.legs
            .iter()
            .filter(|((_, r), leg)| r == rep && !leg.ended)
            .map(|((call, _), leg)| leg.relay_call(call).to_string())
            .collect()
    }

    /// Forgets a leg (by the relay's call) whose events did not reach the relay, so the next
    /// document derives them again.
    pub fn forget(&mut self, call: &str, rep: &str) {
        self.legs
            .retain(|(c, r), leg| !(r == rep && leg.relay_call(c) == call));
    }

    fn dialog(&mut self, rep: &str, d: &Dialog, now: &str, events: &mut Vec<TelephonyEvent>) {
        let call = d.call().to_string();
        let key = (call.clone(), rep.to_string());
        if d.state == State::Terminated {
            if self.legs.contains_key(&key) {
                let reason = (d.event.as_deref() == Some("replaced")).then_some(Ending::Replaced);
                self.end(rep, &call, reason, now, events);
            }
            return;
        }
        if d.state == State::Unknown {
            return;
        }
        let joined = if self.legs.contains_key(&key) {
            None
        } else {
            self.transferor(rep, d).map(|transferor| {
                let leg = self
                    .legs
                    .get_mut(&transferor)
                    .expect("the transferor's leg was just found");
                leg.handing_to = Some(rep.to_string());
                leg.relay_call(&transferor.0).to_string()
            })
        };
        let outbound = d.direction == Role::Initiator;
        let (mine, theirs) = (
            d.local.as_deref().map(user_of).unwrap_or_default(),
            d.remote.as_deref().map(user_of).unwrap_or_default(),
        );
        let (from, to) = if outbound {
            (mine, theirs)
        } else {
            (theirs, mine)
        };
        let leg = self.legs.entry(key).or_insert_with(|| Leg {
            outbound,
            from: from.clone(),
            to: to.clone(),
            remote_target: d.remote_target.clone(),
            joined,
            ..Leg::default()
        });
        if leg.ended {
            return;
        }
        if leg.from.is_empty() {
            leg.from = from;
        }
        if leg.to.is_empty() {
            leg.to = to;
        }
        let leg = leg.clone();
        let mut next = leg.clone();
        match d.state {
            State::Trying | State::Proceeding | State::Early => {
                if !leg.rang && !leg.answered {
                    next.rang = true;
                    events.push(event(rep, &call, &leg, EventType::Ringing, "ringing", now));
                }
            }
            State::Confirmed => {
                if !leg.answered {
                    next.answered = true;
                    next.rang = true;
                    events.push(event(
                        rep,
                        &call,
                        &leg,
                        EventType::Answered,
                        "answered",
                        now,
                    ));
                }
                let holding = d.local_rendering == Some(false);
                if holding && !leg.held {
                    next.held = true;
                    next.holds += 1;
                    let id = format!("held-{}", next.holds);
                    events.push(event(rep, &call, &leg, EventType::Held, &id, now));
                } else if !holding && leg.held {
                    next.held = false;
                    let id = format!("resumed-{}", leg.holds);
                    events.push(event(rep, &call, &leg, EventType::Resumed, &id, now));
                }
            }
            State::Terminated | State::Unknown => {}
        }
        self.legs.insert((call, rep.to_string()), next);
    }

    fn end(
        &mut self,
        rep: &str,
        call: &str,
        how: Option<Ending>,
        now: &str,
        events: &mut Vec<TelephonyEvent>,
    ) {
        self.ends += 1;
        let ends = self.ends;
        let key = (call.to_string(), rep.to_string());
        let Some(leg) = self.legs.get(&key).cloned() else {
            return;
        };
        if leg.ended {
            return;
        }
        let relay_call = leg.relay_call(call).to_string();
        // A transfer seen ringing its target: this leg's end is the hand-over, as long as the
        // target's leg is still up.
        let how = how.or_else(|| {
            leg.handing_to
                .as_ref()
                .filter(|to| self.open_leg(to, &relay_call))
                .map(|to| Ending::TransferredTo(to.clone()))
        });
        // A target's leg ending releases whoever was handing the call to it.
        for ((c, _), other) in self.legs.iter_mut() {
            if !other.ended
                && other.handing_to.as_deref() == Some(rep)
                && other.relay_call(c) == relay_call
            {
                other.handing_to = None;
            }
        }
        let Some(leg) = self.legs.get_mut(&key) else {
            return;
        };
        leg.ended = true;
        leg.ended_at = ends;
        let leg = leg.clone();
        let mut e = match &how {
            Some(Ending::TransferredTo(to)) => {
                let mut e = event(rep, call, &leg, EventType::Transferred, "transferred", now);
                e.transfer_to = Some(to.clone());
                e
            }
            Some(Ending::Replaced) => {
                event(rep, call, &leg, EventType::Transferred, "transferred", now)
            }
            None => {
                let mut e = event(rep, call, &leg, EventType::Ended, "ended", now);
                e.reason = Some(if leg.answered {
                    EndReason::Completed
                } else if leg.outbound {
                    EndReason::Failed
                } else {
                    EndReason::Missed
                });
                e
            }
        };
        if e.event_type == EventType::Transferred && !leg.answered {
            // Only an answered call is handed on; an unanswered one simply stopped ringing here.
            e.event_type = EventType::Ended;
            e.id = format!("sip:{call}:{rep}:ended");
            e.transfer_to = None;
            e.reason = Some(EndReason::Missed);
        }
        events.push(e);
    }

    /// Whether `rep` has a leg still up in the relay's call `relay_call`.
    fn open_leg(&self, rep: &str, relay_call: &str) -> bool {
        self.legs
            .iter()
            .any(|((c, r), leg)| r == rep && !leg.ended && leg.relay_call(c) == relay_call)
    }

    /// The (SIP call, rep) of the leg a new dialog of `rep` was transferred from, if any: a
    /// dialog naming its referrer joins the referrer's answered leg with the same party (or,
    /// for notifiers that keep the Call-ID, of the same call); without a referrer, the one
    /// other rep answered with the same caller and user agent, if inference is on.
    fn transferor(&self, rep: &str, d: &Dialog) -> Option<(String, String)> {
        if d.direction == Role::Initiator
            || d.replaces.is_some()
            || matches!(d.state, State::Terminated | State::Unknown)
        {
            return None;
        }
        let caller = d.remote.as_deref().map(user_of).unwrap_or_default();
        let mut candidates = self.legs.iter().filter(|((_, r), leg)| {
            r != rep && !leg.ended && leg.answered && leg.handing_to.is_none()
        });
        if let Some(referrer) = &d.referred_by {
            let by = user_of(referrer);
            return candidates
                .find(|((c, _), leg)| {
                    leg.own_user() == by
                        && ((!caller.is_empty() && leg.other_user() == caller) || c == d.call())
                })
                .map(|(key, _)| key.clone());
        }
        if !self.infer_transfers || caller.is_empty() || d.direction != Role::Recipient {
            return None;
        }
        let same_party: Vec<&(String, String)> = candidates
            .filter(|(_, leg)| {
                leg.other_user() == caller
                    && match (&leg.remote_target, &d.remote_target) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    }
            })
            .map(|(key, _)| key)
            .collect();
        match same_party.as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        }
    }

    fn let_go(&mut self) {
        if self.legs.len() <= KEPT_LEGS {
            return;
        }
        let mut ended: Vec<(u64, (String, String))> = self
            .legs
            .iter()
            .filter(|(_, l)| l.ended)
            .map(|(k, l)| (l.ended_at, k.clone()))
            .collect();
        ended.sort();
        let surplus = self.legs.len() - KEPT_LEGS;
        for (_, key) in ended.into_iter().take(surplus) {
            self.legs.remove(&key);
        }
    }
}

/// The document's dialogs, one per SIP call: a presence server that aggregates several
/// publishers (its proxy's view and the phone's own, which alone knows about hold) lists the
/// same call more than once. The call is as far as its furthest report (`terminated` beyond
/// `confirmed` beyond `early`), held when any confirmed report says the rep's side does not
/// render, and carries whatever identities and transfer marks any report has.
fn merged(dialogs: &[Dialog]) -> Vec<Dialog> {
    fn rank(state: State) -> u8 {
        match state {
            State::Unknown => 0,
            State::Trying => 1,
            State::Proceeding => 2,
            State::Early => 3,
            State::Confirmed => 4,
            State::Terminated => 5,
        }
    }
    let mut calls: Vec<Dialog> = Vec::new();
    for d in dialogs {
        let Some(call) = calls.iter_mut().find(|c| c.call() == d.call()) else {
            calls.push(d.clone());
            continue;
        };
        let holding = [call.clone(), d.clone()]
            .iter()
            .any(|x| x.state == State::Confirmed && x.local_rendering == Some(false));
        if rank(d.state) > rank(call.state) {
            call.state = d.state;
            call.event = d.event.clone().or(call.event.take());
            call.code = d.code.or(call.code);
        }
        if call.direction == Role::Unknown {
            call.direction = d.direction;
        }
        call.remote = call.remote.take().or_else(|| d.remote.clone());
        call.remote_target = call
            .remote_target
            .take()
            .or_else(|| d.remote_target.clone());
        call.local = call.local.take().or_else(|| d.local.clone());
        call.replaces = call.replaces.take().or_else(|| d.replaces.clone());
        call.referred_by = call.referred_by.take().or_else(|| d.referred_by.clone());
        call.local_rendering = if holding {
            Some(false)
        } else {
            call.local_rendering.or(d.local_rendering)
        };
    }
    calls
}

/// How a leg ended besides hanging up.
#[derive(Debug, Clone)]
enum Ending {
    /// Its dialog was replaced (an attended transfer completed).
    Replaced,
    /// A REFER sent the call to this rep.
    TransferredTo(String),
}

impl Leg {
    /// The rep's own user part on this leg.
    fn own_user(&self) -> &str {
        if self.outbound { &self.from } else { &self.to }
    }

    /// The other party's user part (the caller of an inbound call).
    fn other_user(&self) -> &str {
        if self.outbound { &self.to } else { &self.from }
    }

    /// The relay's call of this leg, whose SIP call is `sip_call`.
    fn relay_call<'a>(&'a self, sip_call: &'a str) -> &'a str {
        self.joined.as_deref().unwrap_or(sip_call)
    }
}

fn event(
    rep: &str,
    call: &str,
    leg: &Leg,
    event_type: EventType,
    what: &str,
    now: &str,
) -> TelephonyEvent {
    TelephonyEvent {
        id: format!("sip:{call}:{rep}:{what}"),
        call_id: leg.relay_call(call).to_string(),
        event_type,
        direction: if leg.outbound {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        from: leg.from.clone(),
        to: leg.to.clone(),
        agent: rep.to_string(),
        at: now.to_string(),
        transfer_to: None,
        reason: None,
        recording_url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::dialog_info::parse;
    use super::*;

    const ALICE: &str = "alice@example.com";
    const NOW: &str = "2026-12-02T08:00:00Z";

    fn doc(version: u64, dialogs: &str) -> DialogInfo {
        parse(&format!(
            r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" state="full" entity="sip:1001@pbx">{dialogs}</dialog-info>"#
        ))
        .expect("parses")
    }

    fn inbound(state: &str, rendering: &str) -> String {
        format!(
            r#"<dialog id="padi-1" call-id="c1@pbx" direction="recipient">{state}<remote><identity>sip:+41441234567@pbx</identity></remote><local><identity>sip:1001@pbx</identity><target uri="sip:1001@pbx">{rendering}</target></local></dialog>"#
        )
    }

    fn kinds(events: &[TelephonyEvent]) -> Vec<(EventType, Option<EndReason>)> {
        events.iter().map(|e| (e.event_type, e.reason)).collect()
    }

    #[test]
    fn a_call_rings_is_answered_held_resumed_and_ends_once() {
        let mut t = Tracker::default();
        let ring = t.apply(ALICE, &doc(1, &inbound("<state>early</state>", "")), NOW);
        assert_eq!(kinds(&ring), [(EventType::Ringing, None)]);
        assert_eq!(ring[0].from, "+41441234567");
        assert_eq!(ring[0].to, "1001");
        assert_eq!(ring[0].direction, Direction::Inbound);
        assert_eq!(ring[0].call_id, "c1@pbx");
        assert_eq!(ring[0].id, "sip:c1@pbx:alice@example.com:ringing");
        // The same state again (a re-subscription's full state) brings nothing.
        assert!(
            t.apply(ALICE, &doc(2, &inbound("<state>early</state>", "")), NOW)
                .is_empty()
        );
        let answer = t.apply(
            ALICE,
            &doc(3, &inbound("<state>confirmed</state>", "")),
            NOW,
        );
        assert_eq!(kinds(&answer), [(EventType::Answered, None)]);
        let no = r#"<param pname="+sip.rendering" pvalue="no"/>"#;
        let yes = r#"<param pname="+sip.rendering" pvalue="yes"/>"#;
        let held = t.apply(
            ALICE,
            &doc(4, &inbound("<state>confirmed</state>", no)),
            NOW,
        );
        assert_eq!(kinds(&held), [(EventType::Held, None)]);
        let resumed = t.apply(
            ALICE,
            &doc(5, &inbound("<state>confirmed</state>", yes)),
            NOW,
        );
        assert_eq!(kinds(&resumed), [(EventType::Resumed, None)]);
        let held = t.apply(
            ALICE,
            &doc(6, &inbound("<state>confirmed</state>", no)),
            NOW,
        );
        assert_eq!(held[0].id, "sip:c1@pbx:alice@example.com:held-2");
        let end = t.apply(
            ALICE,
            &doc(
                7,
                &inbound("<state event=\"remote-bye\">terminated</state>", ""),
            ),
            NOW,
        );
        assert_eq!(
            kinds(&end),
            [(EventType::Ended, Some(EndReason::Completed))]
        );
        // Kamailio keeps listing the finished dialog, then sends an empty NOTIFY: nothing more.
        assert!(
            t.apply(
                ALICE,
                &doc(8, &inbound("<state>terminated</state>", "")),
                NOW
            )
            .is_empty()
        );
        assert!(t.apply(ALICE, &DialogInfo::idle(), NOW).is_empty());
        assert!(t.open_calls(ALICE).is_empty());
    }

    #[test]
    fn a_call_reported_by_the_proxy_and_the_phone_is_one_call_held_by_the_phone() {
        let mut t = Tracker::default();
        t.apply(
            ALICE,
            &doc(1, &inbound("<state>confirmed</state>", "")),
            NOW,
        );
        let phone = |rendering: &str| {
            format!(
                r#"<dialog id="phone-1" call-id="c1@pbx" direction="recipient"><state>confirmed</state><local><target uri="sip:1001@10.0.0.7"><param pname="+sip.rendering" pvalue="{rendering}"/></target></local></dialog>"#
            )
        };
        let both = |rendering: &str| {
            doc(
                2,
                &format!(
                    "{}{}",
                    inbound("<state>confirmed</state>", ""),
                    phone(rendering)
                ),
            )
        };
        assert_eq!(
            kinds(&t.apply(ALICE, &both("no"), NOW)),
            [(EventType::Held, None)]
        );
        assert!(t.apply(ALICE, &both("no"), NOW).is_empty());
        assert_eq!(
            kinds(&t.apply(ALICE, &both("yes"), NOW)),
            [(EventType::Resumed, None)]
        );
        // The proxy's terminated report ends the call whatever the phone last published.
        let end = doc(
            3,
            &format!(
                "{}{}",
                inbound("<state>terminated</state>", ""),
                phone("no")
            ),
        );
        assert_eq!(
            kinds(&t.apply(ALICE, &end, NOW)),
            [(EventType::Ended, Some(EndReason::Completed))]
        );
    }

    #[test]
    fn a_call_that_never_was_confirmed_is_missed() {
        let mut t = Tracker::default();
        t.apply(ALICE, &doc(1, &inbound("<state>early</state>", "")), NOW);
        let end = t.apply(
            ALICE,
            &doc(2, &inbound("<state>terminated</state>", "")),
            NOW,
        );
        assert_eq!(kinds(&end), [(EventType::Ended, Some(EndReason::Missed))]);
    }

    #[test]
    fn an_open_leg_missing_from_a_full_document_ended() {
        let mut t = Tracker::default();
        t.apply(
            ALICE,
            &doc(1, &inbound("<state>confirmed</state>", "")),
            NOW,
        );
        assert_eq!(t.open_calls(ALICE), ["c1@pbx"]);
        let end = t.apply(ALICE, &DialogInfo::idle(), NOW);
        assert_eq!(
            kinds(&end),
            [(EventType::Ended, Some(EndReason::Completed))]
        );
        // A leg first seen terminated is a call that ended before we looked.
        let mut t = Tracker::default();
        assert!(
            t.apply(
                ALICE,
                &doc(1, &inbound("<state>terminated</state>", "")),
                NOW
            )
            .is_empty()
        );
    }

    #[test]
    fn outbound_calls_ring_from_the_rep_and_fail_unanswered() {
        let mut t = Tracker::default();
        let d = r#"<dialog id="x" call-id="c2@pbx" direction="initiator"><state>Trying</state><remote><identity>sip:0441234567@pbx</identity></remote><local><identity>sip:1001@pbx</identity></local></dialog>"#;
        let ring = t.apply(ALICE, &doc(1, d), NOW);
        assert_eq!(ring[0].direction, Direction::Outbound);
        assert_eq!(
            (ring[0].from.as_str(), ring[0].to.as_str()),
            ("1001", "0441234567")
        );
        let end = t.apply(ALICE, &DialogInfo::idle(), NOW);
        assert_eq!(kinds(&end), [(EventType::Ended, Some(EndReason::Failed))]);
    }

    const BOB: &str = "bob@example.com";
    const CAROL: &str = "carol@example.com";

    /// Bob's dialog of a new SIP call from the same caller (a REFER's new INVITE).
    fn bobs(call: &str, state: &str, extra: &str) -> DialogInfo {
        parse(&format!(
            r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:1002@pbx"><dialog id="{call}" call-id="{call}" direction="recipient"><state>{state}</state>{extra}<remote><identity>sip:+41441234567@pbx</identity><target uri="sip:+41441234567@198.51.100.7:5060"/></remote><local><identity>sip:1002@pbx</identity></local></dialog></dialog-info>"#
        ))
        .expect("parses")
    }

    fn alice_talking(t: &mut Tracker) {
        let d = r#"<dialog id="c1@pbx" call-id="c1@pbx" direction="recipient"><state>confirmed</state><remote><identity>sip:+41441234567@pbx</identity><target uri="sip:+41441234567@198.51.100.7:5060"/></remote><local><identity>sip:1001@pbx</identity></local></dialog>"#;
        t.apply(ALICE, &doc(1, d), NOW);
    }

    #[test]
    fn a_referred_dialog_joins_the_referrers_call_and_its_end_is_the_transfer() {
        let mut t = Tracker::new(false);
        alice_talking(&mut t);
        let referred = "<referred-by>sip:1001@pbx</referred-by>";
        let events = t.apply(BOB, &bobs("c9@pbx", "early", referred), NOW);
        assert_eq!(kinds(&events), [(EventType::Ringing, None)]);
        assert_eq!(events[0].agent, BOB);
        // Bob's leg is part of Alice's call, with ids of its own SIP call.
        assert_eq!(events[0].call_id, "c1@pbx");
        assert_eq!(events[0].id, "sip:c9@pbx:bob@example.com:ringing");
        assert_eq!(t.open_calls(BOB), ["c1@pbx"]);
        // Alice's phone hangs up once the transfer is under way: that is the hand-over.
        let events = t.apply(ALICE, &DialogInfo::idle(), NOW);
        assert_eq!(kinds(&events), [(EventType::Transferred, None)]);
        assert_eq!(events[0].transfer_to.as_deref(), Some(BOB));
        assert_eq!(events[0].call_id, "c1@pbx");
        let events = t.apply(BOB, &bobs("c9@pbx", "confirmed", referred), NOW);
        assert_eq!(kinds(&events), [(EventType::Answered, None)]);
        assert_eq!(events[0].call_id, "c1@pbx");
        let events = t.apply(BOB, &DialogInfo::idle(), NOW);
        assert_eq!(
            kinds(&events),
            [(EventType::Ended, Some(EndReason::Completed))]
        );
        assert_eq!(events[0].call_id, "c1@pbx");
        // A lost delivery forgets Bob's leg by the relay's call.
        let mut t = Tracker::new(false);
        alice_talking(&mut t);
        t.apply(BOB, &bobs("c9@pbx", "early", referred), NOW);
        t.forget("c1@pbx", BOB);
        assert!(t.open_calls(BOB).is_empty());
        assert_eq!(t.open_calls(ALICE), ["c1@pbx"]);
    }

    #[test]
    fn without_a_referrer_the_one_rep_talking_with_the_caller_is_inferred_as_transferor() {
        let mut t = Tracker::new(true);
        alice_talking(&mut t);
        let events = t.apply(BOB, &bobs("c9@pbx", "early", ""), NOW);
        assert_eq!(events[0].call_id, "c1@pbx");
        let events = t.apply(ALICE, &DialogInfo::idle(), NOW);
        assert_eq!(kinds(&events), [(EventType::Transferred, None)]);
        assert_eq!(events[0].transfer_to.as_deref(), Some(BOB));

        // Off: the same dialogs are two calls, Alice's completed.
        let mut t = Tracker::new(false);
        alice_talking(&mut t);
        let events = t.apply(BOB, &bobs("c9@pbx", "early", ""), NOW);
        assert_eq!(events[0].call_id, "c9@pbx");
        let events = t.apply(ALICE, &DialogInfo::idle(), NOW);
        assert_eq!(
            kinds(&events),
            [(EventType::Ended, Some(EndReason::Completed))]
        );
    }

    #[test]
    fn no_transfer_is_inferred_from_another_user_agent_or_an_ambiguous_caller() {
        // The same number from another user agent (a company line's second phone).
        let mut t = Tracker::new(true);
        alice_talking(&mut t);
        let other_ua = parse(
            r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:1002@pbx"><dialog id="c9@pbx" call-id="c9@pbx" direction="recipient"><state>early</state><remote><identity>sip:+41441234567@pbx</identity><target uri="sip:+41441234567@203.0.113.9:5060"/></remote><local><identity>sip:1002@pbx</identity></local></dialog></dialog-info>"#,
        )
        .expect("parses");
        let events = t.apply(BOB, &other_ua, NOW);
        assert_eq!(events[0].call_id, "c9@pbx");

        // Two reps talking with the caller (from two of its user agents), and a call to a
        // third whose notifier gives no target: which one transferred is unknown.
        let mut t = Tracker::new(true);
        alice_talking(&mut t);
        let carols = r#"<dialog id="c5@pbx" call-id="c5@pbx" direction="recipient"><state>confirmed</state><remote><identity>sip:+41441234567@pbx</identity><target uri="sip:+41441234567@203.0.113.9:5060"/></remote><local><identity>sip:1003@pbx</identity></local></dialog>"#;
        let events = t.apply(CAROL, &doc(1, carols), NOW);
        assert_eq!(events[0].call_id, "c5@pbx");
        let no_target = parse(
            r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:1002@pbx"><dialog id="c9@pbx" call-id="c9@pbx" direction="recipient"><state>early</state><remote><identity>sip:+41441234567@pbx</identity></remote><local><identity>sip:1002@pbx</identity></local></dialog></dialog-info>"#,
        )
        .expect("parses");
        let events = t.apply(BOB, &no_target, NOW);
        assert_eq!(events[0].call_id, "c9@pbx");
    }

    #[test]
    fn a_transfer_target_who_never_answers_leaves_the_transferor_with_the_call() {
        let mut t = Tracker::new(true);
        alice_talking(&mut t);
        t.apply(BOB, &bobs("c9@pbx", "early", ""), NOW);
        let events = t.apply(BOB, &bobs("c9@pbx", "terminated", ""), NOW);
        assert_eq!(
            kinds(&events),
            [(EventType::Ended, Some(EndReason::Missed))]
        );
        assert_eq!(events[0].call_id, "c1@pbx");
        let events = t.apply(ALICE, &DialogInfo::idle(), NOW);
        assert_eq!(
            kinds(&events),
            [(EventType::Ended, Some(EndReason::Completed))]
        );
    }
}
