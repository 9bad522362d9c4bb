use bytes::BytesMut;
use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};
use serde_json::json;
use tokio_util::codec::Decoder;

use super::ami::{AmiCodec, Frame, Message};
use super::mapping::{Listed, Tracker, endpoint_of, number};
use super::*;

/// Reference 5.3's capture of an internal call 21 -> 1986, answered and hung up
/// (`answered-internal.raw`, the fields the reference keeps; `DialState`, `HangupRequest`,
/// `BridgeLeave` and `SoftHangupRequest` as the reference names them).
const ANSWERED: &str = "Event: Newchannel\r
Privilege: call,all\r
Channel: PJSIP/21-0000001b\r
ChannelState: 4\r
ChannelStateDesc: Ring\r
CallerIDNum: 21\r
CallerIDName: Kitchen\r
ConnectedLineNum: <unknown>\r
Context: from-internal\r
Exten: 1986\r
Priority: 1\r
Uniqueid: 1770888534.43\r
Linkedid: 1770888534.43\r
\r
Event: Newchannel\r
Channel: PJSIP/1986-0000001c\r
ChannelState: 0\r
ChannelStateDesc: Down\r
CallerIDNum: 1986\r
Uniqueid: 1770888534.44\r
Linkedid: 1770888534.43\r
\r
Event: DialBegin\r
Channel: PJSIP/21-0000001b\r
Uniqueid: 1770888534.43\r
Linkedid: 1770888534.43\r
DestChannel: PJSIP/1986-0000001c\r
DestChannelState: 0\r
DestCallerIDNum: 1986\r
DestUniqueid: 1770888534.44\r
DestLinkedid: 1770888534.43\r
DialString: 1986/sip:1986@10.0.0.1:51924;rinstance=fa771505d58758ad\r
\r
Event: Newstate\r
Channel: PJSIP/1986-0000001c\r
ChannelState: 5\r
ChannelStateDesc: Ringing\r
Uniqueid: 1770888534.44\r
Linkedid: 1770888534.43\r
\r
Event: DialState\r
Channel: PJSIP/21-0000001b\r
Uniqueid: 1770888534.43\r
Linkedid: 1770888534.43\r
DestChannel: PJSIP/1986-0000001c\r
DestChannelStateDesc: Ringing\r
DestUniqueid: 1770888534.44\r
DialStatus: RINGING\r
\r
Event: Newstate\r
Channel: PJSIP/1986-0000001c\r
ChannelState: 6\r
ChannelStateDesc: Up\r
Uniqueid: 1770888534.44\r
Linkedid: 1770888534.43\r
\r
Event: DialEnd\r
Channel: PJSIP/21-0000001b\r
Uniqueid: 1770888534.43\r
Linkedid: 1770888534.43\r
DestChannel: PJSIP/1986-0000001c\r
DestChannelState: 6\r
DestUniqueid: 1770888534.44\r
DestLinkedid: 1770888534.43\r
DialStatus: ANSWER\r
\r
Event: Newstate\r
Channel: PJSIP/21-0000001b\r
ChannelState: 6\r
ChannelStateDesc: Up\r
Uniqueid: 1770888534.43\r
Linkedid: 1770888534.43\r
\r
Event: BridgeEnter\r
BridgeUniqueid: 338ab658-f923-4a56-b1ae-ac35b3f2a76a\r
BridgeType: basic\r
BridgeTechnology: simple_bridge\r
BridgeNumChannels: 1\r
Channel: PJSIP/1986-0000001c\r
Uniqueid: 1770888534.44\r
Linkedid: 1770888534.43\r
\r
Event: BridgeEnter\r
BridgeUniqueid: 338ab658-f923-4a56-b1ae-ac35b3f2a76a\r
BridgeNumChannels: 2\r
Channel: PJSIP/21-0000001b\r
Uniqueid: 1770888534.43\r
Linkedid: 1770888534.43\r
\r
Event: HangupRequest\r
Channel: PJSIP/21-0000001b\r
Uniqueid: 1770888534.43\r
Linkedid: 1770888534.43\r
Cause: 16\r
\r
Event: Hangup\r
Channel: PJSIP/1986-0000001c\r
Uniqueid: 1770888534.44\r
Linkedid: 1770888534.43\r
Cause: 16\r
Cause-txt: Normal Clearing\r
\r
Event: Hangup\r
Channel: PJSIP/21-0000001b\r
Uniqueid: 1770888534.43\r
Linkedid: 1770888534.43\r
Cause: 16\r
Cause-txt: Normal Clearing\r
\r
";

fn messages(wire: &str) -> Vec<Message> {
    let mut codec = AmiCodec::greeted();
    let mut buf = BytesMut::from(wire.as_bytes());
    let mut out = Vec::new();
    while let Some(frame) = codec.decode(&mut buf).expect("decodes") {
        match frame {
            Frame::Message(m) => out.push(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

fn reps(endpoint: &str) -> Option<String> {
    match endpoint {
        "PJSIP/1986" => Some("alice@example.com".into()),
        "PJSIP/21" => Some("bob@example.com".into()),
        _ => None,
    }
}

fn run(tracker: &mut Tracker, wire: &str) -> Vec<TelephonyEvent> {
    messages(wire)
        .iter()
        .flat_map(|m| tracker.apply(m, &reps, "2026-12-02T10:00:00Z"))
        .collect()
}

fn kinds(events: &[TelephonyEvent], rep: &str) -> Vec<EventType> {
    events
        .iter()
        .filter(|e| e.agent == rep)
        .map(|e| e.event_type)
        .collect()
}

#[test]
fn the_reference_answered_call_rings_answers_and_ends_both_legs() {
    let mut tracker = Tracker::default();
    let events = run(&mut tracker, ANSWERED);
    assert_eq!(
        kinds(&events, "alice@example.com"),
        [EventType::Ringing, EventType::Answered, EventType::Ended]
    );
    let ring = &events[events
        .iter()
        .position(|e| e.agent == "alice@example.com")
        .expect("alice")];
    assert_eq!(ring.call_id, "1770888534.43");
    assert_eq!(ring.direction, Direction::Inbound);
    assert_eq!(ring.from, "21");
    assert_eq!(ring.to, "1986");
    assert_eq!(ring.id, "asterisk:1770888534.43:1770888534.44:ringing");
    // The caller's side is a rep too: an outbound call to 1986.
    assert_eq!(
        kinds(&events, "bob@example.com"),
        [EventType::Ringing, EventType::Answered, EventType::Ended]
    );
    let out = events
        .iter()
        .find(|e| e.agent == "bob@example.com")
        .expect("bob");
    assert_eq!(out.direction, Direction::Outbound);
    assert_eq!(out.to, "1986");
    assert_eq!(out.from, "21");
    let ends: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == EventType::Ended)
        .collect();
    assert!(ends.iter().all(|e| e.reason == Some(EndReason::Completed)));
    // The same events again (a replay) bring nothing new.
    assert!(run(&mut tracker, ANSWERED).is_empty());
    assert!(tracker.open_calls().is_empty());
}

#[test]
fn a_caller_cancelling_while_it_rings_is_missed_and_unknown_callers_have_no_number() {
    // Reference 5.3's `unanswered-cancel.raw` steps: HangupRequest 127/487, DialEnd CANCEL,
    // Hangup 127 "Interworking, unspecified".
    let cut = ANSWERED
        .split("Event: Newstate\r\nChannel: PJSIP/1986-0000001c\r\nChannelState: 6")
        .next()
        .expect("the ringing part")
        .replace("CallerIDNum: 21\r\n", "CallerIDNum: <unknown>\r\n");
    let wire = format!(
        "{cut}Event: HangupRequest\r\nChannel: PJSIP/21-0000001b\r\nUniqueid: 1770888534.43\r\nLinkedid: 1770888534.43\r\nCause: 127\r\nTechCause: 487\r\n\r\nEvent: DialEnd\r\nChannel: PJSIP/21-0000001b\r\nUniqueid: 1770888534.43\r\nLinkedid: 1770888534.43\r\nDestChannel: PJSIP/1986-0000001c\r\nDestChannelStateDesc: Ringing\r\nDestUniqueid: 1770888534.44\r\nDialStatus: CANCEL\r\n\r\nEvent: Hangup\r\nChannel: PJSIP/1986-0000001c\r\nUniqueid: 1770888534.44\r\nLinkedid: 1770888534.43\r\nCause: 127\r\nCause-txt: Interworking, unspecified\r\nTechCause: 487\r\n\r\n"
    );
    let mut tracker = Tracker::default();
    let events = run(&mut tracker, &wire);
    let alice: Vec<_> = events
        .iter()
        .filter(|e| e.agent == "alice@example.com")
        .collect();
    assert_eq!(alice.len(), 2, "{alice:?}");
    assert_eq!(alice[0].from, "", "<unknown> is no number");
    assert_eq!(alice[1].event_type, EventType::Ended);
    assert_eq!(alice[1].reason, Some(EndReason::Missed));
    assert_eq!(number("<unknown>"), "");
    assert_eq!(number(" 0441234567 "), "0441234567");
}

#[test]
fn endpoints_are_channel_names_without_their_sequence() {
    assert_eq!(endpoint_of("PJSIP/21-0000001b"), Some("PJSIP/21"));
    assert_eq!(endpoint_of("PJSIP/trunk-a-00000001"), Some("PJSIP/trunk-a"));
    assert_eq!(endpoint_of("PJSIP/21"), None);
    assert_eq!(endpoint_of("Local/22@from-internal-0000000a;1"), None);
    assert_eq!(endpoint_of("-0001"), None);
}

#[test]
fn hold_transfers_and_consults_follow_the_rep_channels() {
    let mut tracker = Tracker::default();
    let answered: String = ANSWERED
        .split("Event: HangupRequest")
        .next()
        .expect("talk")
        .into();
    run(&mut tracker, &answered);
    let hold = "Event: Hold\r\nChannel: PJSIP/1986-0000001c\r\nUniqueid: 1770888534.44\r\nLinkedid: 1770888534.43\r\n\r\nEvent: Unhold\r\nChannel: PJSIP/1986-0000001c\r\nUniqueid: 1770888534.44\r\nLinkedid: 1770888534.43\r\n\r\n";
    let events = run(&mut tracker, hold);
    let ids: Vec<_> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "asterisk:1770888534.43:1770888534.44:held:1",
            "asterisk:1770888534.43:1770888534.44:resumed:1"
        ]
    );
    // Alice consults carol (PJSIP/1990): held while carol's phone rings on the same call.
    let carol = |endpoint: &str| match endpoint {
        "PJSIP/1990" => Some("carol@example.com".into()),
        other => reps(other),
    };
    tracker.consult_requested("1770888534.44");
    let consult = "Event: DialBegin\r\nChannel: Local/1990@from-internal-00000001;2\r\nUniqueid: 1770888534.46\r\nLinkedid: 1770888534.43\r\nDestChannel: PJSIP/1990-0000001e\r\nDestUniqueid: 1770888534.47\r\nDestLinkedid: 1770888534.43\r\n\r\n";
    let events: Vec<_> = messages(consult)
        .iter()
        .flat_map(|m| tracker.apply(m, &carol, "t"))
        .collect();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.agent.as_str(), e.event_type))
        .collect();
    assert_eq!(
        seen,
        [
            ("alice@example.com", EventType::Held),
            ("carol@example.com", EventType::Ringing)
        ]
    );
    assert_eq!(
        events[1].from, "21",
        "the caller of the call, not the consulting rep"
    );
    let (_, target) = tracker.consult_of("1770888534.44").expect("a consult");
    assert_eq!(target, "PJSIP/1990-0000001e");
    // The transfer completes: alice's leg is transferred to carol.
    let done = "Event: AttendedTransfer\r\nResult: Success\r\nOrigTransfererChannel: PJSIP/1986-0000001c\r\nOrigTransfererUniqueid: 1770888534.44\r\nSecondTransfererChannel: Local/1990@from-internal-00000001;1\r\nSecondTransfererUniqueid: 1770888534.45\r\nTransferTargetChannel: PJSIP/1990-0000001e\r\nTransferTargetUniqueid: 1770888534.47\r\nDestType: Bridge\r\n\r\nEvent: Hangup\r\nChannel: PJSIP/1986-0000001c\r\nUniqueid: 1770888534.44\r\nLinkedid: 1770888534.43\r\nCause: 16\r\n\r\n";
    let events: Vec<_> = messages(done)
        .iter()
        .flat_map(|m| tracker.apply(m, &carol, "t"))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type, EventType::Transferred);
    assert_eq!(events[0].transfer_to.as_deref(), Some("carol@example.com"));
}

#[test]
fn a_cancelled_consult_resumes_and_a_blind_transfer_names_its_target() {
    let mut tracker = Tracker::default();
    let answered: String = ANSWERED
        .split("Event: HangupRequest")
        .next()
        .expect("talk")
        .into();
    run(&mut tracker, &answered);
    let carol = |endpoint: &str| match endpoint {
        "PJSIP/1990" => Some("carol@example.com".into()),
        other => reps(other),
    };
    tracker.consult_requested("1770888534.44");
    let wire = "Event: DialBegin\r\nChannel: Local/1990@from-internal-00000001;2\r\nUniqueid: 1770888534.46\r\nLinkedid: 1770888534.43\r\nDestChannel: PJSIP/1990-0000001e\r\nDestUniqueid: 1770888534.47\r\nDestLinkedid: 1770888534.43\r\n\r\nEvent: Hangup\r\nChannel: PJSIP/1990-0000001e\r\nUniqueid: 1770888534.47\r\nLinkedid: 1770888534.43\r\nCause: 16\r\n\r\n";
    let events: Vec<_> = messages(wire)
        .iter()
        .flat_map(|m| tracker.apply(m, &carol, "t"))
        .map(|e| (e.agent, e.event_type, e.reason))
        .collect();
    assert_eq!(
        events,
        [
            ("alice@example.com".to_string(), EventType::Held, None),
            ("carol@example.com".to_string(), EventType::Ringing, None),
            (
                "carol@example.com".to_string(),
                EventType::Ended,
                Some(EndReason::Missed)
            ),
            ("alice@example.com".to_string(), EventType::Resumed, None),
        ]
    );
    tracker.transfer_requested("1770888534.44", "dave@example.com");
    let blind = "Event: BlindTransfer\r\nResult: Success\r\nTransfererChannel: PJSIP/1986-0000001c\r\nTransfererUniqueid: 1770888534.44\r\nTransfereeChannel: PJSIP/21-0000001b\r\nTransfereeUniqueid: 1770888534.43\r\nIsExternal: No\r\nContext: from-internal\r\nExtension: 24\r\n\r\n";
    let events = run(&mut tracker, blind);
    let alice: Vec<_> = events
        .iter()
        .filter(|e| e.agent == "alice@example.com")
        .collect();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].event_type, EventType::Transferred);
    assert_eq!(alice[0].transfer_to.as_deref(), Some("dave@example.com"));
}

#[test]
fn a_resync_rings_new_legs_and_ends_the_ones_gone() {
    let mut tracker = Tracker::default();
    let ringing: String = ANSWERED
        .split("Event: Newstate\r\nChannel: PJSIP/1986-0000001c\r\nChannelState: 6")
        .next()
        .expect("ringing")
        .into();
    run(&mut tracker, &ringing);
    // Back after a gap: alice's call is gone; a new call to alice is up.
    let listed = [
        Listed {
            channel: "PJSIP/trunk-00000030".into(),
            uniqueid: "1770889000.90".into(),
            linkedid: "1770889000.90".into(),
            state: 6,
            caller: "+41441234567".into(),
            connected: "1986".into(),
            exten: "1986".into(),
            bridged: true,
        },
        Listed {
            channel: "PJSIP/1986-00000031".into(),
            uniqueid: "1770889000.91".into(),
            linkedid: "1770889000.90".into(),
            state: 6,
            caller: "1986".into(),
            connected: "+41441234567".into(),
            exten: "".into(),
            bridged: true,
        },
    ];
    let events = tracker.resync(&listed, &reps, "t");
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.call_id.as_str(), e.agent.as_str(), e.event_type, e.reason))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "1770889000.90",
                "alice@example.com",
                EventType::Ringing,
                None
            ),
            (
                "1770889000.90",
                "alice@example.com",
                EventType::Answered,
                None
            ),
            (
                "1770888534.43",
                "bob@example.com",
                EventType::Ended,
                Some(EndReason::Failed)
            ),
            (
                "1770888534.43",
                "alice@example.com",
                EventType::Ended,
                Some(EndReason::Missed)
            ),
        ]
    );
    assert_eq!(events[0].from, "+41441234567");
    // The same list again: nothing new.
    assert!(tracker.resync(&listed, &reps, "t").is_empty());
}

fn facts() -> TenantFacts<'static> {
    TenantFacts {
        id: "acme",
        v2_url: "https://my1.crm.cloud.sap",
    }
}

#[test]
fn settings_are_read_from_the_tenants_keys_and_checked() {
    let settings: crate::adapters::TelephonySettings = serde_json::from_value(json!({
        "provider": "asterisk",
        "asterisk_host": "pbx.example.com",
        "asterisk_port": 5039,
        "asterisk_username": "cti-relay",
        "asterisk_secret": "s3cret-ami",
        "asterisk_endpoints": {"PJSIP/21": "alice@example.com"},
    }))
    .expect("settings");
    assert!(settings.check(&facts()).is_ok());
    assert!(!format!("{settings:?}").contains("s3cret"));
    let crate::adapters::TelephonySettings::Asterisk(settings) = settings else {
        panic!("asterisk")
    };
    assert!(settings.asterisk_tls);
    assert_eq!(settings.asterisk_context, "from-internal");

    let mut bad = settings.clone();
    bad.asterisk_tls = false;
    assert_eq!(bad.check(&facts()).expect_err("plain").var, "asterisk_tls");
    let mut bad = settings.clone();
    bad.asterisk_endpoints
        .insert("21".into(), "carol@example.com".into());
    assert_eq!(
        bad.check(&facts()).expect_err("endpoint").var,
        "asterisk_endpoints"
    );
    let mut bad = settings.clone();
    bad.asterisk_secret = Secret::new(DEMO_SECRET);
    assert_eq!(
        bad.check(&facts()).expect_err("demo").var,
        "asterisk_secret"
    );
    let mut bad = settings.clone();
    bad.asterisk_context = "from\r\ninternal".into();
    assert_eq!(
        bad.check(&facts()).expect_err("context").var,
        "asterisk_context"
    );
    assert!(
        Settings::demo("http://127.0.0.1:8090")
            .check(&facts())
            .is_ok()
    );
}

#[test]
fn transfer_targets_are_rep_extensions_or_numbers_and_nothing_else() {
    let adapter = AsteriskAdapter::new(
        Settings::demo(""),
        Context {
            tenant: "t".into(),
            http: reqwest::Client::new(),
            clock: Arc::new(crate::clock::SystemClock),
            forgets_before_ms: None,
        },
    );
    let shared = &adapter.shared;
    assert_eq!(
        shared
            .extension_of("bob@example.com", "transfer")
            .expect("bob"),
        "22"
    );
    assert_eq!(
        shared
            .extension_of("+41 44 555 01 99", "transfer")
            .expect("a number"),
        "+41445550199"
    );
    assert!(
        shared
            .extension_of("1\r\nAction: Originate", "transfer")
            .is_err()
    );
    assert!(
        shared
            .extension_of("nobody@example.com", "transfer")
            .is_err()
    );
    assert_eq!(
        shared.rep_of("pjsip/21").as_deref(),
        Some("alice@example.com")
    );
}
