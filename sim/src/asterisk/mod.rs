//! A simulated Asterisk: its Manager Interface (AMI) over TCP on `SimConfig::asterisk_listen`
//! (the demo's `127.0.0.1:5038`, AMI's port), replaying what shared/reference/telephony.md
//! section 5.3 captured, and HTTP controls under `/sim/asterisk` to place and drive calls.
//!
//! The AMI side ([`server`]): the banner `Asterisk Call Manager/9.0.0`; `Login` checked
//! against the configured manager user (`Response: Error`, `Message: Authentication failed`, and
//! the connection closed, as Asterisk does); every other action before a login refused with
//! `Permission denied`; `Logoff`, `Ping`, `CoreShowChannels` (a list of `CoreShowChannel` events
//! ending in `CoreShowChannelsComplete`), `Originate`, `Hangup`, `Redirect`, `BlindTransfer` and
//! `Atxfer`, their refusals in Asterisk's words (`No such channel`, `Transfer invalid`); any
//! other action is `Invalid/unknown command`. Events go to every logged-in connection that asked
//! for them (`Events: on` or a class list with `call`), each with its channel's snapshot fields
//! as in the capture.
//!
//! The calls: the demo's phones are endpoints `PJSIP/21`..`PJSIP/24` (alice, bob, carol, dave),
//! the outside world a trunk `PJSIP/trunk`. A call rings as the capture shows (`Newchannel` of
//! the caller, `Newchannel` of the phone, `DialBegin`, `Newstate` Ringing, `DialState`), is
//! answered (`Newstate` Up, `DialEnd` ANSWER, `BridgeEnter` twice), held on the phone
//! (`Hold`/`Unhold`), and ends (`HangupRequest`, `BridgeLeave`, `Hangup` with its cause; while
//! ringing `DialEnd` CANCEL and cause 127, as in `unanswered-cancel.raw`).
//!
//! Inferred where the reference has no capture: an `Originate` rings the rep's phone, which
//! answers at once (as phones with auto-answer for click-to-dial do), then dials the number from
//! the given context; `Atxfer` dials the target through a `Local/<exten>@<context>` channel pair
//! while the caller hears music on hold; hanging up the transferer completes it
//! (`AttendedTransfer`), hanging up the target cancels it; every channel of a call keeps the
//! call's `Linkedid`.
//!
//! Simulator controls (not Asterisk): `POST /sim/asterisk/calls {"from","agent"}` rings an
//! agent (201 `{"call_id"}`, the `Linkedid`), `.../{id}/answer` is the ringing phone picked up
//! (or the far end answering a click-to-dial), `.../{id}/hangup` the caller hanging up,
//! `.../{id}/hold` and `.../{id}/unhold` the rep's phone's hold key; `POST
//! /sim/asterisk/connections/drop` closes every AMI connection and refuses new ones until
//! `.../restore`; `.../malformed` sends every connection a block that is not AMI.

pub(crate) mod server;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use crate::SimConfig;

/// The demo phones: endpoint, rep.
pub const ENDPOINTS: [(&str, &str); 4] = [
    ("PJSIP/21", "alice@example.com"),
    ("PJSIP/22", "bob@example.com"),
    ("PJSIP/23", "carol@example.com"),
    ("PJSIP/24", "dave@example.com"),
];

/// The greeting, AMI 9.0.0 being Asterisk 20's.
pub const BANNER: &str = "Asterisk Call Manager/9.0.0";

/// A block no AMI server sends: a line without `Key: Value`.
pub const MALFORMED: &str =
    "Event: Newstate\r\nPrivilege: call,all\r\nthis line is no header\r\nUniqueid: 0\r\n\r\n";

pub use crate::pbx_controls::SimError;

fn sim_error(status: u16, message: impl Into<String>) -> SimError {
    SimError {
        status,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Default)]
struct Chan {
    name: String,
    uniqueid: String,
    linkedid: String,
    state: u8,
    caller: String,
    caller_name: String,
    connected: String,
    context: String,
    exten: String,
    bridge: Option<String>,
    /// The channel that dials this one, while it rings.
    dialed_by: Option<String>,
    /// The rep's phone.
    rep: bool,
}

fn state_desc(state: u8) -> &'static str {
    match state {
        0 => "Down",
        4 => "Ring",
        5 => "Ringing",
        6 => "Up",
        _ => "Unknown",
    }
}

/// An attended transfer under way.
#[derive(Debug, Clone)]
struct Atxfer {
    transferer: String,
    transferee: String,
    target: String,
    locals: (String, String),
    bridge: String,
}

/// An AMI event: its lines.
pub(crate) type Event = Vec<(String, String)>;

#[derive(Debug, Default)]
struct State {
    base: u64,
    next_uid: u64,
    next_seq: u64,
    next_bridge: u64,
    channels: BTreeMap<String, Chan>,
    atxfers: Vec<Atxfer>,
}

impl State {
    fn uid(&mut self) -> String {
        self.next_uid += 1;
        format!("{}.{}", self.base, self.next_uid)
    }

    fn seq(&mut self) -> String {
        self.next_seq += 1;
        format!("{:08x}", self.next_seq)
    }

    fn bridge_id(&mut self) -> String {
        self.next_bridge += 1;
        format!("338ab658-f923-4a56-b1ae-{:012x}", self.next_bridge)
    }

    fn chan(&self, uid: &str) -> Chan {
        self.channels.get(uid).cloned().unwrap_or_default()
    }

    fn by_name(&self, name: &str) -> Option<Chan> {
        self.channels.values().find(|c| c.name == name).cloned()
    }

    fn peer(&self, uid: &str) -> Option<Chan> {
        let bridge = self.channels.get(uid)?.bridge.clone()?;
        self.channels
            .values()
            .find(|c| c.uniqueid != uid && c.bridge.as_deref() == Some(bridge.as_str()))
            .cloned()
    }

    fn new_chan(&mut self, name: String, linkedid: Option<&str>, chan: Chan) -> Chan {
        let uid = self.uid();
        let chan = Chan {
            name,
            linkedid: linkedid.map(str::to_string).unwrap_or_else(|| uid.clone()),
            uniqueid: uid.clone(),
            ..chan
        };
        self.channels.insert(uid, chan.clone());
        chan
    }

    fn set_state(&mut self, uid: &str, state: u8) -> Chan {
        if let Some(c) = self.channels.get_mut(uid) {
            c.state = state;
        }
        self.chan(uid)
    }
}

/// A channel's snapshot fields, under `prefix` (`""` or `Dest`, `Transferer`…).
fn snapshot(prefix: &str, c: &Chan) -> Event {
    let f = |k: &str, v: &str| (format!("{prefix}{k}"), v.to_string());
    let or_unknown = |v: &str| {
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        f("Channel", &c.name),
        f("ChannelState", &c.state.to_string()),
        f("ChannelStateDesc", state_desc(c.state)),
        f("CallerIDNum", &or_unknown(&c.caller)),
        f("CallerIDName", &or_unknown(&c.caller_name)),
        f("ConnectedLineNum", &or_unknown(&c.connected)),
        f("ConnectedLineName", "<unknown>"),
        f("Language", "en"),
        f("AccountCode", ""),
        f("Context", &c.context),
        f("Exten", &c.exten),
        f("Priority", "1"),
        f("Uniqueid", &c.uniqueid),
        f("Linkedid", &c.linkedid),
    ]
}

fn event(name: &str, parts: Vec<Event>, extra: &[(&str, &str)]) -> Event {
    let mut lines = vec![
        ("Event".to_string(), name.to_string()),
        ("Privilege".to_string(), "call,all".to_string()),
    ];
    for part in parts {
        lines.extend(part);
    }
    lines.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
    );
    lines
}

/// Renders lines as an AMI block.
pub(crate) fn render(lines: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in lines {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out
}

/// The simulated Asterisk.
#[derive(Debug)]
pub struct Asterisk {
    pub(crate) username: String,
    pub(crate) secret: String,
    state: Mutex<State>,
    /// Every event block, to every connection that wants events.
    pub(crate) events: broadcast::Sender<String>,
    /// Bumped to close every connection.
    pub(crate) drops: watch::Sender<u64>,
    pub(crate) refusing: AtomicBool,
    /// Logins accepted so far.
    logins: AtomicU64,
}

/// An action's outcome: the response's `Message`, or Asterisk's refusal.
pub(crate) type Outcome = Result<&'static str, &'static str>;

impl Asterisk {
    pub fn new(config: &SimConfig) -> Self {
        let base = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
        Asterisk {
            username: config.asterisk_username.clone(),
            secret: config.asterisk_secret.clone(),
            state: Mutex::new(State {
                base,
                ..State::default()
            }),
            events: broadcast::channel(4096).0,
            drops: watch::channel(0).0,
            refusing: AtomicBool::new(false),
            logins: AtomicU64::new(0),
        }
    }

    fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    fn emit(&self, events: Vec<Event>) {
        for e in events {
            let _ = self.events.send(render(&e));
        }
    }

    /// Logins accepted since start.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::SeqCst)
    }

    pub(crate) fn logged_in(&self) {
        self.logins.fetch_add(1, Ordering::SeqCst);
    }

    /// The calls (Linkedids) that have channels.
    pub fn calls(&self) -> Vec<String> {
        let calls: std::collections::BTreeSet<String> = self
            .state()
            .channels
            .values()
            .map(|c| c.linkedid.clone())
            .collect();
        calls.into_iter().collect()
    }

    /// The channel names alive.
    pub fn channel_names(&self) -> Vec<String> {
        self.state()
            .channels
            .values()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Closes every AMI connection and refuses new ones until [`Asterisk::restore`].
    pub fn drop_connections(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.drops.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }

    /// Sends every connection a block that is not AMI.
    pub fn send_malformed(&self) {
        let _ = self.events.send(MALFORMED.to_string());
    }

    /// The endpoint of a rep (or an endpoint named as such).
    fn endpoint(agent: &str) -> Option<&'static str> {
        ENDPOINTS
            .iter()
            .find(|(e, r)| {
                r.eq_ignore_ascii_case(agent.trim()) || e.eq_ignore_ascii_case(agent.trim())
            })
            .map(|(e, _)| *e)
    }

    /// A phone or the trunk for a dialled extension, dialled by `from` on its call.
    fn dial(
        &self,
        s: &mut State,
        from: &Chan,
        exten: &str,
        context: &str,
        out: &mut Vec<Event>,
    ) -> Chan {
        let phone = ENDPOINTS
            .iter()
            .find(|(e, _)| e.split_once('/').is_some_and(|(_, r)| r == exten));
        let (name, rep, caller) = match phone {
            Some((endpoint, _)) => (format!("{endpoint}-{}", s.seq()), true, exten.to_string()),
            None => (format!("PJSIP/trunk-{}", s.seq()), false, exten.to_string()),
        };
        let dest = s.new_chan(
            name,
            Some(&from.linkedid),
            Chan {
                state: 0,
                caller,
                connected: from.caller.clone(),
                context: context.to_string(),
                exten: exten.to_string(),
                dialed_by: Some(from.uniqueid.clone()),
                rep,
                ..Chan::default()
            },
        );
        out.push(event("Newchannel", vec![snapshot("", &dest)], &[]));
        let dial_string = if rep {
            exten.to_string()
        } else {
            format!("trunk/{exten}")
        };
        out.push(event(
            "DialBegin",
            vec![snapshot("", from), snapshot("Dest", &dest)],
            &[("DialString", &dial_string)],
        ));
        let dest = s.set_state(&dest.uniqueid, 5);
        out.push(event("Newstate", vec![snapshot("", &dest)], &[]));
        out.push(event(
            "DialState",
            vec![snapshot("", from), snapshot("Dest", &dest)],
            &[("DialStatus", "RINGING")],
        ));
        dest
    }

    /// A caller from outside rings `agent`'s phone; the call's Linkedid.
    pub fn ring(&self, from: &str, agent: &str) -> Result<String, SimError> {
        let endpoint = Self::endpoint(agent)
            .ok_or_else(|| sim_error(404, format!("{agent} has no phone here")))?;
        let exten = endpoint.split_once('/').map(|(_, r)| r).unwrap_or(endpoint);
        let mut s = self.state();
        let mut out = Vec::new();
        let name = format!("PJSIP/trunk-{}", s.seq());
        let trunk = s.new_chan(
            name,
            None,
            Chan {
                state: 4,
                caller: from.trim().to_string(),
                context: "from-trunk".into(),
                exten: exten.to_string(),
                ..Chan::default()
            },
        );
        out.push(event("Newchannel", vec![snapshot("", &trunk)], &[]));
        self.dial(&mut s, &trunk, exten, "from-internal", &mut out);
        drop(s);
        self.emit(out);
        Ok(trunk.linkedid)
    }

    /// Bridges two channels in a new bridge.
    fn bridge(s: &mut State, a: &str, b: &str, out: &mut Vec<Event>) {
        let id = s.bridge_id();
        for (n, uid) in [b, a].iter().enumerate() {
            if let Some(c) = s.channels.get_mut(*uid) {
                c.bridge = Some(id.clone());
            }
            let c = s.chan(uid);
            out.push(event(
                "BridgeEnter",
                vec![
                    vec![
                        ("BridgeUniqueid".into(), id.clone()),
                        ("BridgeType".into(), "basic".into()),
                        ("BridgeTechnology".into(), "simple_bridge".into()),
                        ("BridgeNumChannels".into(), (n + 1).to_string()),
                    ],
                    snapshot("", &c),
                ],
                &[],
            ));
        }
    }

    fn leave_bridge(s: &mut State, uid: &str, out: &mut Vec<Event>) {
        let c = s.chan(uid);
        if let Some(bridge) = &c.bridge {
            out.push(event(
                "BridgeLeave",
                vec![
                    vec![
                        ("BridgeUniqueid".into(), bridge.clone()),
                        ("BridgeType".into(), "basic".into()),
                    ],
                    snapshot("", &c),
                ],
                &[],
            ));
        }
        if let Some(c) = s.channels.get_mut(uid) {
            c.bridge = None;
        }
    }

    fn hangup_chan(s: &mut State, uid: &str, cause: u16, out: &mut Vec<Event>) {
        let Some(c) = s.channels.get(uid).cloned() else {
            return;
        };
        if c.bridge.is_some() {
            Self::leave_bridge(s, uid, out);
        }
        let text = cause_text(cause);
        let mut extra: Vec<(&str, String)> =
            vec![("Cause", cause.to_string()), ("Cause-txt", text.into())];
        if cause == 127 {
            extra.push(("TechCause", "487".into()));
        }
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        out.push(event("Hangup", vec![snapshot("", &c)], &extra));
        s.channels.remove(uid);
    }

    /// The ringing phone (or far end) of the call answers.
    pub fn answer(&self, call: &str) -> Result<(), SimError> {
        let mut s = self.state();
        let ringing = s
            .channels
            .values()
            .find(|c| c.linkedid == call && c.state == 5 && c.dialed_by.is_some())
            .cloned()
            .ok_or_else(|| sim_error(409, format!("nothing rings on {call}")))?;
        let mut out = Vec::new();
        let dest = s.set_state(&ringing.uniqueid, 6);
        out.push(event("Newstate", vec![snapshot("", &dest)], &[]));
        let caller_uid = ringing.dialed_by.clone().unwrap_or_default();
        let caller = s.chan(&caller_uid);
        out.push(event(
            "DialEnd",
            vec![snapshot("", &caller), snapshot("Dest", &dest)],
            &[("DialStatus", "ANSWER")],
        ));
        if let Some(c) = s.channels.get_mut(&ringing.uniqueid) {
            c.dialed_by = None;
        }
        // A consult's target is bridged with the transferer; any other with its caller.
        let consult = s
            .atxfers
            .iter()
            .find(|x| x.target == ringing.uniqueid)
            .cloned();
        match consult {
            Some(x) => Self::bridge(&mut s, &x.transferer, &ringing.uniqueid, &mut out),
            None => {
                if caller.state != 6 {
                    let caller = s.set_state(&caller_uid, 6);
                    out.push(event("Newstate", vec![snapshot("", &caller)], &[]));
                }
                Self::bridge(&mut s, &caller_uid, &ringing.uniqueid, &mut out);
            }
        }
        drop(s);
        self.emit(out);
        Ok(())
    }

    /// The caller (or far end) hangs up: every channel of the call goes.
    pub fn hang_up(&self, call: &str) -> Result<(), SimError> {
        let mut s = self.state();
        let chans: Vec<Chan> = s
            .channels
            .values()
            .filter(|c| c.linkedid == call)
            .cloned()
            .collect();
        if chans.is_empty() {
            return Err(sim_error(404, format!("no call {call}")));
        }
        let mut out = Vec::new();
        let origin = chans
            .iter()
            .find(|c| !c.rep && !c.name.starts_with("Local/"))
            .unwrap_or(&chans[0]);
        let ringing = chans.iter().any(|c| c.state == 5 && c.dialed_by.is_some());
        out.push(event(
            "HangupRequest",
            vec![snapshot("", origin)],
            &[("Cause", if ringing { "127" } else { "16" })],
        ));
        for c in &chans {
            if c.state == 5
                && let Some(by) = &c.dialed_by
            {
                let caller = s.chan(by);
                out.push(event(
                    "DialEnd",
                    vec![snapshot("", &caller), snapshot("Dest", c)],
                    &[("DialStatus", "CANCEL")],
                ));
            }
        }
        for c in &chans {
            let cause = if c.state == 5 && c.dialed_by.is_some() {
                127
            } else {
                16
            };
            Self::hangup_chan(&mut s, &c.uniqueid, cause, &mut out);
        }
        let State {
            atxfers, channels, ..
        } = &mut *s;
        atxfers.retain(|x| channels.contains_key(&x.transferer));
        drop(s);
        self.emit(out);
        Ok(())
    }

    /// The rep's phone's hold key.
    pub fn hold(&self, call: &str, hold: bool) -> Result<(), SimError> {
        let s = self.state();
        let phone = s
            .channels
            .values()
            .find(|c| c.linkedid == call && c.rep && c.state == 6 && c.bridge.is_some())
            .cloned()
            .ok_or_else(|| sim_error(409, format!("no phone talks on {call}")))?;
        drop(s);
        let name = if hold { "Hold" } else { "Unhold" };
        self.emit(vec![event(name, vec![snapshot("", &phone)], &[])]);
        Ok(())
    }

    /// The channels as `CoreShowChannel` events (without ActionID).
    pub(crate) fn listing(&self) -> Vec<Event> {
        let s = self.state();
        s.channels
            .values()
            .map(|c| {
                event(
                    "CoreShowChannel",
                    vec![snapshot("", c)],
                    &[
                        (
                            "Application",
                            if c.dialed_by.is_some() {
                                "AppDial"
                            } else {
                                "Dial"
                            },
                        ),
                        ("ApplicationData", ""),
                        ("Duration", "00:00:05"),
                        ("BridgeId", c.bridge.as_deref().unwrap_or("")),
                    ],
                )
            })
            .collect()
    }

    /// `Originate`: the rep's phone rings and answers, then dials `exten` in `context`.
    pub(crate) fn originate(&self, action: &BTreeMap<String, String>) -> Outcome {
        let get = |k: &str| {
            action
                .get(&k.to_ascii_lowercase())
                .map(String::as_str)
                .unwrap_or("")
        };
        let channel = get("Channel");
        if channel.is_empty() {
            return Err("Channel not specified");
        }
        let exten = get("Exten");
        let context = get("Context");
        if exten.is_empty() || context.is_empty() {
            return Err("Exten and Context must be specified");
        }
        let action_id = get("ActionID").to_string();
        let Some((endpoint, _)) = ENDPOINTS
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(channel))
        else {
            // Asterisk queues it and tells the failure in OriginateResponse.
            self.emit(vec![event(
                "OriginateResponse",
                vec![],
                &[
                    ("ActionID", &action_id),
                    ("Response", "Failure"),
                    ("Channel", channel),
                    ("Context", context),
                    ("Exten", exten),
                    ("Reason", "0"),
                    ("Uniqueid", "<null>"),
                ],
            )]);
            return Ok("Originate successfully queued");
        };
        let mut s = self.state();
        let mut out = Vec::new();
        let name = format!("{endpoint}-{}", s.seq());
        let phone = s.new_chan(
            name,
            None,
            Chan {
                caller: get("CallerID").to_string(),
                rep: true,
                ..Chan::default()
            },
        );
        out.push(event("Newchannel", vec![snapshot("", &phone)], &[]));
        let resource = endpoint.split_once('/').map(|(_, r)| r).unwrap_or("");
        out.push(event(
            "DialBegin",
            vec![snapshot("Dest", &phone)],
            &[("DialString", resource)],
        ));
        let phone = s.set_state(&phone.uniqueid, 5);
        out.push(event("Newstate", vec![snapshot("", &phone)], &[]));
        let phone = s.set_state(&phone.uniqueid, 6);
        out.push(event("Newstate", vec![snapshot("", &phone)], &[]));
        out.push(event(
            "DialEnd",
            vec![snapshot("Dest", &phone)],
            &[("DialStatus", "ANSWER")],
        ));
        out.push(event(
            "OriginateResponse",
            vec![],
            &[
                ("ActionID", &action_id),
                ("Response", "Success"),
                ("Channel", &phone.name),
                ("Context", context),
                ("Exten", exten),
                ("Reason", "4"),
                ("Uniqueid", &phone.uniqueid),
                ("CallerIDNum", &phone.caller),
                ("CallerIDName", "<unknown>"),
            ],
        ));
        if let Some(c) = s.channels.get_mut(&phone.uniqueid) {
            c.context = context.to_string();
            c.exten = exten.to_string();
        }
        let phone = s.chan(&phone.uniqueid);
        self.dial(&mut s, &phone, exten, context, &mut out);
        drop(s);
        self.emit(out);
        Ok("Originate successfully queued")
    }

    /// `Hangup`: the channel goes; what else goes with it depends on what it is doing.
    pub(crate) fn hangup_action(&self, channel: &str, cause: u16) -> Outcome {
        let mut s = self.state();
        let Some(c) = s.by_name(channel) else {
            return Err("No such channel");
        };
        let mut out = Vec::new();
        if let Some(x) = s
            .atxfers
            .iter()
            .find(|x| x.transferer == c.uniqueid)
            .cloned()
        {
            // The transferer hangs up: the attended transfer completes.
            let transferee = s.chan(&x.transferee);
            let target = s.chan(&x.target);
            let second = s.chan(&x.locals.0);
            let mut parts = vec![
                vec![("Result".to_string(), "Success".to_string())],
                snapshot("OrigTransferer", &c),
                vec![("OrigBridgeUniqueid".into(), x.bridge.clone())],
                snapshot("SecondTransferer", &second),
                snapshot("Transferee", &transferee),
                snapshot("TransferTarget", &target),
            ];
            parts.push(vec![
                ("IsExternal".into(), "No".into()),
                ("DestType".into(), "Bridge".into()),
                (
                    "DestBridgeUniqueid".into(),
                    target.bridge.clone().unwrap_or_default(),
                ),
            ]);
            out.push(event("AttendedTransfer", parts, &[]));
            out.push(event(
                "MusicOnHoldStop",
                vec![snapshot("", &transferee)],
                &[],
            ));
            s.atxfers.retain(|a| a.transferer != c.uniqueid);
            Self::hangup_chan(&mut s, &c.uniqueid, 16, &mut out);
            Self::hangup_chan(&mut s, &x.locals.1, 16, &mut out);
            Self::hangup_chan(&mut s, &x.locals.0, 16, &mut out);
            if target.state == 6 {
                Self::bridge(&mut s, &x.transferee, &x.target, &mut out);
            } else if let Some(t) = s.channels.get_mut(&x.target) {
                t.dialed_by = Some(x.transferee.clone());
            }
        } else if let Some(x) = s.atxfers.iter().find(|x| x.target == c.uniqueid).cloned() {
            // The target goes: the consult is over, the transferer back with the caller.
            if c.state == 5 {
                let local = s.chan(&x.locals.1);
                out.push(event(
                    "DialEnd",
                    vec![snapshot("", &local), snapshot("Dest", &c)],
                    &[("DialStatus", "CANCEL")],
                ));
            }
            s.atxfers.retain(|a| a.target != c.uniqueid);
            Self::hangup_chan(&mut s, &c.uniqueid, cause, &mut out);
            Self::hangup_chan(&mut s, &x.locals.1, 16, &mut out);
            Self::hangup_chan(&mut s, &x.locals.0, 16, &mut out);
            let transferee = s.chan(&x.transferee);
            out.push(event(
                "MusicOnHoldStop",
                vec![snapshot("", &transferee)],
                &[],
            ));
            if let Some(t) = s.channels.get_mut(&x.transferer) {
                t.bridge = None;
            }
            // Back into the call's bridge.
            if let Some(t) = s.channels.get_mut(&x.transferer) {
                t.bridge = Some(x.bridge.clone());
            }
            let t = s.chan(&x.transferer);
            out.push(event(
                "BridgeEnter",
                vec![
                    vec![
                        ("BridgeUniqueid".into(), x.bridge.clone()),
                        ("BridgeType".into(), "basic".into()),
                        ("BridgeNumChannels".into(), "2".into()),
                    ],
                    snapshot("", &t),
                ],
                &[],
            ));
        } else if c.state == 5 && c.dialed_by.is_some() {
            // A ringing phone refuses: the dial fails and its caller goes too.
            let by = c.dialed_by.clone().unwrap_or_default();
            let caller = s.chan(&by);
            out.push(event(
                "DialEnd",
                vec![snapshot("", &caller), snapshot("Dest", &c)],
                &[("DialStatus", "BUSY")],
            ));
            Self::hangup_chan(&mut s, &c.uniqueid, cause, &mut out);
            Self::hangup_chan(&mut s, &by, cause, &mut out);
        } else {
            // A two-party call ends for both; what this channel dials goes too.
            let peer = s.peer(&c.uniqueid);
            let dialled: Vec<String> = s
                .channels
                .values()
                .filter(|d| d.dialed_by.as_deref() == Some(c.uniqueid.as_str()))
                .map(|d| d.uniqueid.clone())
                .collect();
            out.push(event(
                "HangupRequest",
                vec![snapshot("", &c)],
                &[("Cause", &cause.to_string())],
            ));
            Self::hangup_chan(&mut s, &c.uniqueid, cause, &mut out);
            for d in dialled {
                Self::hangup_chan(&mut s, &d, cause, &mut out);
            }
            if let Some(p) = peer {
                Self::hangup_chan(&mut s, &p.uniqueid, 16, &mut out);
            }
        }
        drop(s);
        self.emit(out);
        Ok("Channel Hungup")
    }

    /// `BlindTransfer` (the transferer's channel) and `Redirect` (the channel redirected): the
    /// party that stays dials `exten`; the other one goes.
    pub(crate) fn transfer(
        &self,
        channel: &str,
        exten: &str,
        context: &str,
        redirect: bool,
    ) -> Outcome {
        if channel.is_empty() {
            return Err("No channel specified");
        }
        if exten.is_empty() {
            return Err("No extension specified");
        }
        let mut s = self.state();
        let Some(c) = s.by_name(channel) else {
            return Err("No such channel");
        };
        let mut out = Vec::new();
        let (stays, goes) = if redirect {
            (Some(c.clone()), s.peer(&c.uniqueid))
        } else {
            let Some(peer) = s.peer(&c.uniqueid) else {
                return Err("Transfer invalid");
            };
            (Some(peer), Some(c.clone()))
        };
        let Some(stays) = stays else {
            return Err("No such channel");
        };
        if !redirect && let Some(goes) = &goes {
            let bridge = goes.bridge.clone().unwrap_or_default();
            out.push(event(
                "BlindTransfer",
                vec![
                    vec![("Result".into(), "Success".into())],
                    snapshot("Transferer", goes),
                    snapshot("Transferee", &stays),
                    vec![
                        ("BridgeUniqueid".into(), bridge),
                        ("BridgeType".into(), "basic".into()),
                    ],
                ],
                &[
                    ("IsExternal", "No"),
                    ("Context", context),
                    ("Extension", exten),
                ],
            ));
        }
        Self::leave_bridge(&mut s, &stays.uniqueid, &mut out);
        if let Some(goes) = goes {
            Self::hangup_chan(&mut s, &goes.uniqueid, 16, &mut out);
        }
        let stays = s.chan(&stays.uniqueid);
        self.dial(&mut s, &stays, exten, context, &mut out);
        drop(s);
        self.emit(out);
        Ok(if redirect {
            "Redirect successful"
        } else {
            "Transfer succeeded"
        })
    }

    /// `Atxfer`: the transferer's bridge-mate hears music while a Local channel dials `exten`.
    pub(crate) fn atxfer(&self, channel: &str, exten: &str, context: &str) -> Outcome {
        if exten.is_empty() {
            return Err("No extension specified");
        }
        let mut s = self.state();
        let Some(c) = s.by_name(channel) else {
            return Err("No such channel");
        };
        if s.atxfers.iter().any(|x| x.transferer == c.uniqueid) {
            return Err("Transfer already in progress");
        }
        let Some(peer) = s.peer(&c.uniqueid) else {
            return Err("Channel specified does not exist");
        };
        let bridge = c.bridge.clone().unwrap_or_default();
        let mut out = Vec::new();
        Self::leave_bridge(&mut s, &c.uniqueid, &mut out);
        // The caller stays in the bridge, hearing music.
        if let Some(p) = s.channels.get_mut(&peer.uniqueid) {
            p.bridge = Some(bridge.clone());
        }
        out.push(event(
            "MusicOnHoldStart",
            vec![snapshot("", &peer)],
            &[("Class", "default")],
        ));
        let seq = s.seq();
        let base = format!("Local/{exten}@{context}-{seq}");
        let local = Chan {
            state: 0,
            caller: c.caller.clone(),
            context: context.to_string(),
            exten: exten.to_string(),
            ..Chan::default()
        };
        let one = s.new_chan(format!("{base};1"), Some(&c.linkedid), local.clone());
        let two = s.new_chan(format!("{base};2"), Some(&c.linkedid), local);
        out.push(event("Newchannel", vec![snapshot("", &one)], &[]));
        out.push(event("Newchannel", vec![snapshot("", &two)], &[]));
        let two = s.set_state(&two.uniqueid, 4);
        let target = self.dial(&mut s, &two, exten, context, &mut out);
        s.atxfers.push(Atxfer {
            transferer: c.uniqueid.clone(),
            transferee: peer.uniqueid.clone(),
            target: target.uniqueid.clone(),
            locals: (one.uniqueid.clone(), two.uniqueid.clone()),
            bridge,
        });
        drop(s);
        self.emit(out);
        Ok("Atxfer successfully queued")
    }
}

fn cause_text(cause: u16) -> &'static str {
    match cause {
        16 => "Normal Clearing",
        17 => "User busy",
        19 => "No user responding",
        21 => "Call Rejected",
        127 => "Interworking, unspecified",
        _ => "Unknown",
    }
}

/// The simulator's HTTP controls of this system (`/sim/asterisk/...`).
pub fn routes() -> axum::Router<std::sync::Arc<crate::Sim>> {
    crate::pbx_controls::routes("asterisk", |sim| &*sim.asterisk)
}

impl crate::pbx_controls::PhoneSystem for Asterisk {
    fn ring(&self, from: &str, agent: &str) -> Result<String, SimError> {
        Asterisk::ring(self, from, agent)
    }

    fn answer(&self, call: &str) -> Result<(), SimError> {
        Asterisk::answer(self, call)
    }

    fn hang_up(&self, call: &str) -> Result<(), SimError> {
        Asterisk::hang_up(self, call)
    }

    fn hold(&self, call: &str, hold: bool) -> Result<(), SimError> {
        Asterisk::hold(self, call, hold)
    }

    fn drop_connections(&self) {
        Asterisk::drop_connections(self);
    }

    fn restore(&self) {
        Asterisk::restore(self);
    }

    fn send_malformed(&self) {
        Asterisk::send_malformed(self);
    }
}
