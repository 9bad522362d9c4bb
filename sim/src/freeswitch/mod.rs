//! A simulated FreeSWITCH: its event socket (mod_event_socket) over TCP on
//! `SimConfig::freeswitch_listen` (the demo's `127.0.0.1:8021`), framed as
//! shared/reference/telephony.md section 5.5 describes, and HTTP controls under
//! `/sim/freeswitch` to place and drive calls.
//!
//! The socket: `Content-Type: auth/request` first; `auth <password>` answered `+OK accepted`,
//! or `-ERR invalid` followed by a `text/disconnect-notice` and the connection closed; before
//! that every other command is `-ERR command not found`. Then `event json <names>` (`+OK event
//! listener enabled json`), `api <command>` (answered in an `api/response` body), `bgapi
//! <command>` (`+OK Job-UUID: …`), `exit`. The API commands played: `show channels as json`,
//! `status`, `originate`, `uuid_kill`, `uuid_hold [off]`, `uuid_transfer`; any other is
//! `-ERR <name> Command not found!`, an unknown uuid `-ERR No such channel!`. Events are
//! `text/event-json` bodies with a `Content-Length`, carrying the fields the reference's
//! captures show (`Event-Name`, `Unique-ID`, `Channel-Call-UUID`, `Channel-Name`,
//! `Call-Direction`, `Answer-State`, `Channel-Call-State`, `Caller-Caller-ID-Number`,
//! `Caller-ANI`, `Caller-Destination-Number`, `Hangup-Cause`) and channel variables as
//! `variable_<name>`.
//!
//! Calls: the demo's phones are users 1001..1004 (`sofia/internal/<user>@127.0.0.1`), the
//! outside world `sofia/external/<number>@gateway`. Inferred where the reference is silent:
//! `CHANNEL_BRIDGE` carries `Bridge-A-Unique-ID` / `Bridge-B-Unique-ID`; `originate` rings the
//! rep's phone, which answers at once, then bridges to the number; `uuid_transfer -bleg` sends
//! the rep's partner to the extension and hangs the rep's leg up (`NORMAL_CLEARING`).
//!
//! Simulator controls (not FreeSWITCH): `POST /sim/freeswitch/calls {"from","agent"}` (201
//! `{"call_id"}`), `.../{id}/answer`, `.../{id}/hangup`, `.../{id}/hold`, `.../{id}/unhold`
//! (the rep's phone's key); `POST /sim/freeswitch/connections/drop` (closes every socket and
//! refuses new ones until `.../restore`) and `.../malformed`.

pub(crate) mod server;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::SimConfig;

pub const USERS: [(&str, &str); 4] = [
    ("1001", "alice@example.com"),
    ("1002", "bob@example.com"),
    ("1003", "carol@example.com"),
    ("1004", "dave@example.com"),
];

/// A frame no event socket sends: a header line without `: `.
pub const MALFORMED: &str = "Content-Type text/event-json\nnot a header\n\n";

pub use crate::pbx_controls::SimError;

fn sim_error(status: u16, message: impl Into<String>) -> SimError {
    SimError {
        status,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Default)]
struct Chan {
    uuid: String,
    call: String,
    name: String,
    direction: &'static str,
    caller: String,
    dest: String,
    answered: bool,
    held: bool,
    partner: Option<String>,
    /// The leg that placed this one, while it rings.
    placed_by: Option<String>,
    dial: Option<String>,
    created: u64,
}

impl Chan {
    fn callstate(&self) -> &'static str {
        match (self.answered, self.held) {
            (true, true) => "HELD",
            (true, false) => "ACTIVE",
            _ => "RINGING",
        }
    }
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    channels: BTreeMap<String, Chan>,
}

#[derive(Debug)]
pub struct Freeswitch {
    pub(crate) password: String,
    state: Mutex<State>,
    /// Events as (Event-Name, rendered frame), to the sockets subscribed to that name.
    pub(crate) events: broadcast::Sender<(String, String)>,
    pub(crate) drops: watch::Sender<u64>,
    pub(crate) refusing: AtomicBool,
    logins: AtomicU64,
}

/// An event frame: `Content-Length`, `Content-Type: text/event-json`, the JSON body.
pub(crate) fn event_frame(body: &Value) -> String {
    let body = body.to_string();
    format!(
        "Content-Length: {}\nContent-Type: text/event-json\n\n{body}",
        body.len()
    )
}

impl Freeswitch {
    pub fn new(config: &SimConfig) -> Self {
        Freeswitch {
            password: config.freeswitch_password.clone(),
            state: Mutex::new(State::default()),
            events: broadcast::channel(4096).0,
            drops: watch::channel(0).0,
            refusing: AtomicBool::new(false),
            logins: AtomicU64::new(0),
        }
    }

    fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::SeqCst)
    }

    pub(crate) fn logged_in(&self) {
        self.logins.fetch_add(1, Ordering::SeqCst);
    }

    pub fn calls(&self) -> Vec<String> {
        let calls: std::collections::BTreeSet<String> = self
            .state()
            .channels
            .values()
            .map(|c| c.call.clone())
            .collect();
        calls.into_iter().collect()
    }

    pub fn drop_connections(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.drops.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }

    pub fn send_malformed(&self) {
        let _ = self.events.send(("*".into(), MALFORMED.to_string()));
    }

    fn emit(&self, events: Vec<Value>) {
        for e in events {
            let name = e["Event-Name"].as_str().unwrap_or("").to_string();
            let _ = self.events.send((name, event_frame(&e)));
        }
    }

    fn body(name: &str, c: &Chan, extra: Value) -> Value {
        let mut e = json!({
            "Event-Name": name,
            "Core-UUID": "7610dcfe-e294-11e8-b372-4b084ebbf04f",
            "Event-Date-Timestamp": (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).to_string(),
            "Channel-Name": c.name,
            "Unique-ID": c.uuid,
            "Channel-Call-UUID": c.call,
            "Call-Direction": c.direction,
            "Channel-Call-State": if name == "CHANNEL_CREATE" { "DOWN" } else { c.callstate() },
            "Answer-State": if c.answered { "answered" } else { "ringing" },
            "Caller-Caller-ID-Number": c.caller,
            "Caller-ANI": c.caller,
            "Caller-Caller-ID-Name": "unknown",
            "Caller-Destination-Number": c.dest,
            "Caller-Unique-ID": c.uuid,
        });
        if let Some(dial) = &c.dial {
            e["variable_cti_dial"] = json!(dial);
        }
        if let (Some(map), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                map.insert(k.clone(), v.clone());
            }
        }
        e
    }

    fn uuid(s: &mut State) -> String {
        s.next += 1;
        format!("102037b6-e2a6-11e8-b44d-{:012x}", s.next)
    }

    fn user_chan(user: &str) -> String {
        format!("sofia/internal/{user}@127.0.0.1")
    }

    /// A new leg placed by `from` to `dest` (a user, else the gateway).
    fn place(&self, s: &mut State, from: &Chan, dest: &str, out: &mut Vec<Value>) -> Chan {
        let uuid = Self::uuid(s);
        let user = USERS.iter().any(|(u, _)| *u == dest);
        let name = if user {
            Self::user_chan(dest)
        } else {
            format!("sofia/external/{dest}@gateway")
        };
        s.next += 1;
        let c = Chan {
            uuid: uuid.clone(),
            call: from.call.clone(),
            name,
            direction: "outbound",
            caller: from.caller.clone(),
            dest: dest.to_string(),
            placed_by: Some(from.uuid.clone()),
            created: s.next,
            ..Chan::default()
        };
        out.push(Self::body("CHANNEL_CREATE", &c, json!({})));
        s.channels.insert(uuid, c.clone());
        c
    }

    pub fn ring(&self, from: &str, agent: &str) -> Result<String, SimError> {
        let user = USERS
            .iter()
            .find(|(u, r)| r.eq_ignore_ascii_case(agent.trim()) || *u == agent.trim())
            .map(|(u, _)| *u)
            .ok_or_else(|| sim_error(404, format!("{agent} has no phone here")))?;
        let mut s = self.state();
        let mut out = Vec::new();
        let uuid = Self::uuid(&mut s);
        let a = Chan {
            uuid: uuid.clone(),
            call: uuid.clone(),
            name: format!("sofia/external/{}@gateway", from.trim()),
            direction: "inbound",
            caller: from.trim().to_string(),
            dest: user.to_string(),
            ..Chan::default()
        };
        out.push(Self::body("CHANNEL_CREATE", &a, json!({})));
        s.channels.insert(uuid.clone(), a.clone());
        self.place(&mut s, &a, user, &mut out);
        drop(s);
        self.emit(out);
        Ok(uuid)
    }

    fn bridge(s: &mut State, a: &str, b: &str, out: &mut Vec<Value>) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(c) = s.channels.get_mut(x) {
                c.partner = Some(y.to_string());
                c.placed_by = None;
            }
        }
        if let Some(c) = s.channels.get(a) {
            out.push(Self::body(
                "CHANNEL_BRIDGE",
                c,
                json!({"Bridge-A-Unique-ID": a, "Bridge-B-Unique-ID": b, "Other-Leg-Unique-ID": b}),
            ));
        }
    }

    fn answer_chan(s: &mut State, uuid: &str, out: &mut Vec<Value>) {
        if let Some(c) = s.channels.get_mut(uuid)
            && !c.answered
        {
            c.answered = true;
            let c = c.clone();
            out.push(Self::body("CHANNEL_ANSWER", &c, json!({})));
        }
    }

    /// The ringing leg of the call answers (the rep's phone, or the far end).
    pub fn answer(&self, call: &str) -> Result<(), SimError> {
        let mut s = self.state();
        let ringing = s
            .channels
            .values()
            .find(|c| c.call == call && !c.answered && c.placed_by.is_some())
            .cloned()
            .ok_or_else(|| sim_error(409, format!("nothing rings on {call}")))?;
        let mut out = Vec::new();
        let by = ringing.placed_by.clone().unwrap_or_default();
        Self::answer_chan(&mut s, &ringing.uuid, &mut out);
        Self::answer_chan(&mut s, &by, &mut out);
        Self::bridge(&mut s, &by, &ringing.uuid, &mut out);
        drop(s);
        self.emit(out);
        Ok(())
    }

    fn hangup_chan(s: &mut State, uuid: &str, cause: &str, out: &mut Vec<Value>) {
        if let Some(c) = s.channels.remove(uuid) {
            out.push(Self::body(
                "CHANNEL_HANGUP_COMPLETE",
                &c,
                json!({"Hangup-Cause": cause, "Channel-Call-State": "HANGUP"}),
            ));
        }
    }

    /// The caller (or far end) hangs up: the call's legs go.
    pub fn hang_up(&self, call: &str) -> Result<(), SimError> {
        let mut s = self.state();
        let legs: Vec<Chan> = s
            .channels
            .values()
            .filter(|c| c.call == call)
            .cloned()
            .collect();
        if legs.is_empty() {
            return Err(sim_error(404, format!("no call {call}")));
        }
        let mut out = Vec::new();
        for c in &legs {
            let cause = if c.answered {
                "NORMAL_CLEARING"
            } else {
                "ORIGINATOR_CANCEL"
            };
            Self::hangup_chan(&mut s, &c.uuid, cause, &mut out);
        }
        drop(s);
        self.emit(out);
        Ok(())
    }

    /// The rep's phone's hold key (a re-INVITE to FreeSWITCH).
    pub fn hold(&self, call: &str, hold: bool) -> Result<(), SimError> {
        let mut s = self.state();
        let phone = s
            .channels
            .values()
            .find(|c| {
                c.call == call
                    && c.answered
                    && c.partner.is_some()
                    && c.name.starts_with("sofia/internal/")
            })
            .map(|c| c.uuid.clone())
            .ok_or_else(|| sim_error(409, format!("no phone talks on {call}")))?;
        let mut out = Vec::new();
        Self::set_hold(&mut s, &phone, hold, &mut out);
        drop(s);
        self.emit(out);
        Ok(())
    }

    fn set_hold(s: &mut State, uuid: &str, hold: bool, out: &mut Vec<Value>) {
        if let Some(c) = s.channels.get_mut(uuid)
            && c.held != hold
        {
            c.held = hold;
            let c = c.clone();
            let name = if hold {
                "CHANNEL_HOLD"
            } else {
                "CHANNEL_UNHOLD"
            };
            out.push(Self::body(name, &c, json!({})));
        }
    }

    /// `show channels as json`.
    pub(crate) fn show_channels(&self) -> String {
        let s = self.state();
        let mut chans: Vec<&Chan> = s.channels.values().collect();
        chans.sort_by_key(|c| c.created);
        if chans.is_empty() {
            return "{\"row_count\":0}\n".into();
        }
        let rows: Vec<Value> = chans
            .iter()
            .map(|c| {
                json!({
                    "uuid": c.uuid, "direction": c.direction, "name": c.name,
                    "state": if c.answered { "CS_EXCHANGE_MEDIA" } else { "CS_ROUTING" },
                    "cid_name": "unknown", "cid_num": c.caller, "dest": c.dest,
                    "application": "", "dialplan": "XML", "context": "default",
                    "callstate": c.callstate(), "call_uuid": c.call,
                })
            })
            .collect();
        format!("{}\n", json!({"row_count": rows.len(), "rows": rows}))
    }

    /// One API command's answer (`+OK …` or `-ERR …`).
    pub(crate) fn api(&self, line: &str) -> String {
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        match command {
            "show" if args == ["channels", "as", "json"] => self.show_channels(),
            "status" => {
                "UP 0 years, 0 days, 0 hours\nFreeSWITCH (Version 1.10.12) is ready\n".into()
            }
            "uuid_kill" => match args.first() {
                None => "-USAGE: <uuid> [cause]\n".into(),
                Some(uuid) => self.kill(uuid, args.get(1).copied().unwrap_or("NORMAL_CLEARING")),
            },
            "uuid_hold" => {
                let (hold, uuid) = match args.as_slice() {
                    ["off", uuid] => (false, *uuid),
                    [uuid] => (true, *uuid),
                    _ => return "-USAGE: [off|toggle] <uuid> [<display>]\n".into(),
                };
                let mut s = self.state();
                if !s.channels.contains_key(uuid) {
                    return "-ERR No such channel!\n".into();
                }
                let mut out = Vec::new();
                Self::set_hold(&mut s, uuid, hold, &mut out);
                drop(s);
                self.emit(out);
                "+OK Success\n".into()
            }
            "uuid_transfer" => match args.as_slice() {
                [uuid, "-bleg", dest, ..] => self.transfer(uuid, dest),
                [_, dest, ..] if !dest.starts_with('-') => {
                    "-ERR only -bleg transfers are simulated\n".into()
                }
                _ => "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n".into(),
            },
            "originate" => self.originate(&args),
            other => format!("-ERR {other} Command not found!\n"),
        }
    }

    fn kill(&self, uuid: &str, cause: &str) -> String {
        let mut s = self.state();
        let Some(c) = s.channels.get(uuid).cloned() else {
            return "-ERR No such channel!\n".into();
        };
        let mut out = Vec::new();
        Self::hangup_chan(&mut s, uuid, cause, &mut out);
        // Its partner, or the leg that was placing it, goes too.
        for other in [c.partner.clone(), c.placed_by.clone()]
            .into_iter()
            .flatten()
        {
            Self::hangup_chan(&mut s, &other, "NORMAL_CLEARING", &mut out);
        }
        let placed: Vec<String> = s
            .channels
            .values()
            .filter(|d| d.placed_by.as_deref() == Some(uuid))
            .map(|d| d.uuid.clone())
            .collect();
        for d in placed {
            Self::hangup_chan(&mut s, &d, "ORIGINATOR_CANCEL", &mut out);
        }
        drop(s);
        self.emit(out);
        "+OK\n".into()
    }

    fn transfer(&self, uuid: &str, dest: &str) -> String {
        let mut s = self.state();
        let Some(c) = s.channels.get(uuid).cloned() else {
            return "-ERR No such channel!\n".into();
        };
        let Some(partner) = c.partner.clone() else {
            return "-ERR No such channel!\n".into();
        };
        let mut out = Vec::new();
        if let Some(p) = s.channels.get_mut(&partner) {
            p.partner = None;
        }
        Self::hangup_chan(&mut s, uuid, "NORMAL_CLEARING", &mut out);
        let from = s.channels.get(&partner).cloned().unwrap_or_default();
        self.place(&mut s, &from, dest, &mut out);
        drop(s);
        self.emit(out);
        "+OK\n".into()
    }

    /// `originate {vars}user/<id> <exten> [XML <context>]`.
    fn originate(&self, args: &[&str]) -> String {
        let Some(target) = args.first() else {
            return "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n".into();
        };
        let Some(exten) = args.get(1) else {
            return "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n".into();
        };
        let (vars, url) = match target.strip_prefix('{').and_then(|t| t.split_once('}')) {
            Some((vars, url)) => (vars, url),
            None => ("", *target),
        };
        let Some(user) = url
            .strip_prefix("user/")
            .map(|u| u.split('@').next().unwrap_or(u))
        else {
            return "-ERR INVALID_GATEWAY\n".into();
        };
        if !USERS.iter().any(|(u, _)| *u == user) {
            return "-ERR SUBSCRIBER_ABSENT\n".into();
        }
        let dial = vars
            .split(',')
            .find_map(|kv| kv.strip_prefix("cti_dial="))
            .map(str::to_string);
        let mut s = self.state();
        let mut out = Vec::new();
        let uuid = Self::uuid(&mut s);
        s.next += 1;
        let phone = Chan {
            uuid: uuid.clone(),
            call: uuid.clone(),
            name: Self::user_chan(user),
            direction: "outbound",
            caller: exten.to_string(),
            dest: user.to_string(),
            dial,
            created: s.next,
            ..Chan::default()
        };
        out.push(Self::body("CHANNEL_CREATE", &phone, json!({})));
        s.channels.insert(uuid.clone(), phone.clone());
        // The phone answers at once, then the dialplan dials the number.
        Self::answer_chan(&mut s, &uuid, &mut out);
        let phone = s.channels.get(&uuid).cloned().unwrap_or(phone);
        self.place(&mut s, &phone, exten, &mut out);
        drop(s);
        self.emit(out);
        format!("+OK {uuid}\n")
    }
}

/// The simulator's HTTP controls of this system (`/sim/freeswitch/...`).
pub fn routes() -> axum::Router<std::sync::Arc<crate::Sim>> {
    crate::pbx_controls::routes("freeswitch", |sim| &*sim.freeswitch)
}

impl crate::pbx_controls::PhoneSystem for Freeswitch {
    fn ring(&self, from: &str, agent: &str) -> Result<String, SimError> {
        Freeswitch::ring(self, from, agent)
    }

    fn answer(&self, call: &str) -> Result<(), SimError> {
        Freeswitch::answer(self, call)
    }

    fn hang_up(&self, call: &str) -> Result<(), SimError> {
        Freeswitch::hang_up(self, call)
    }

    fn hold(&self, call: &str, hold: bool) -> Result<(), SimError> {
        Freeswitch::hold(self, call, hold)
    }

    fn drop_connections(&self) {
        Freeswitch::drop_connections(self);
    }

    fn restore(&self) {
        Freeswitch::restore(self);
    }

    fn send_malformed(&self) {
        Freeswitch::send_malformed(self);
    }
}
