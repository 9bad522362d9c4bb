//! The WebSocket to the relay: open it, greet, keep it alive, and come back when it drops.
//!
//! A rep leaves the CTI panel open all day across sleep, VPN switches and relay deployments, and
//! a widget that silently stopped receiving calls is the worst failure it can have. So this
//! module never gives up on its own: a closed, failed or silent socket is replaced after a
//! jittered backoff ([`backoff`]), silence is detected with application-level pings
//! ([`heartbeat`]), and on each reconnect `hello` carries the highest `seq` applied so the relay
//! can replay what was missed. The one exception is the relay refusing the token (close code
//! 4401): retrying cannot fix that, so the rep is shown as signed out.
//!
//! The socket reports to one handler: status changes for the status line, and every well-formed
//! server message. Malformed frames are logged (without their content, which may carry phone
//! numbers) and dropped.

pub mod backoff;
pub mod heartbeat;

use std::cell::RefCell;
use std::fmt;
use std::rc::{Rc, Weak};

use cti_protocol::codes::close;
use cti_protocol::{ClientMessage, ServerMessage};
use gloo::events::EventListener;
use gloo::timers::callback::{Interval, Timeout};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::i18n::Arg;
use crate::time::now_ms;
use backoff::Backoff;
use heartbeat::{Heartbeat, Tick};

/// The relay's WebSocket endpoint, on the origin that served the widget.
pub const PATH: &str = "/v1/agent/ws";
/// How long `welcome` may take after the socket is created, connection set-up included.
const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// How often liveness is checked; well below any heartbeat interval the relay asks for.
const TICK_MS: u32 = 1_000;

/// The WebSocket URL for a page served from `page_protocol` (`https:`) and `page_host`
/// (`host[:port]`), as `window.location` gives them.
pub fn ws_url(page_protocol: &str, page_host: &str) -> String {
    let scheme = if page_protocol.eq_ignore_ascii_case("https:") {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{page_host}{PATH}")
}

/// Where the connection stands, as the status line shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    #[default]
    Connecting,
    Connected,
    /// Disconnected for `reason`; the next attempt starts at `retry_at_ms` (Unix milliseconds).
    Reconnecting {
        retry_at_ms: u64,
        reason: Disconnect,
    },
    /// No usable token: nothing will happen until the host page signs the rep in again.
    SignedOut {
        reason: SignedOut,
    },
}

/// Why the socket is down. A reason rather than words, so each tab says it in its rep's
/// language ([`Disconnect::message`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disconnect {
    /// The socket closed with `code`. `relay_reason` is the relay's own words (English, for
    /// whoever reads the status line's tooltip or a bug report), at most 80 characters.
    Closed {
        code: u16,
        #[serde(default)]
        relay_reason: String,
    },
    /// The browser would not open a socket to the relay's address.
    BadAddress,
    /// The browser went offline.
    Offline,
    /// The relay stopped answering heartbeats.
    NoAnswer,
    /// The relay did not welcome the widget in time.
    NoWelcome,
}

/// Close codes with words of their own; any other reads "closed with code N".
const CLOSE_CODES_WITH_WORDS: [u16; 9] = [1000, 1001, 1006, 1011, 1012, 1013, 4408, 4409, 4429];

impl Disconnect {
    /// The message id and its arguments.
    pub fn message(&self) -> (String, Vec<(&'static str, Arg)>) {
        let id = match self {
            Disconnect::Closed { code, .. } if CLOSE_CODES_WITH_WORDS.contains(code) => {
                return (format!("disconnect-closed-{code}"), Vec::new());
            }
            Disconnect::Closed { code, .. } => {
                return (
                    "disconnect-closed-other".to_owned(),
                    vec![("code", Arg::Text(code.to_string()))],
                );
            }
            Disconnect::BadAddress => "disconnect-bad-address",
            Disconnect::Offline => "disconnect-offline",
            Disconnect::NoAnswer => "disconnect-no-answer",
            Disconnect::NoWelcome => "disconnect-no-welcome",
        };
        (id.to_owned(), Vec::new())
    }

    /// The relay's own words about the close, if it gave any.
    pub fn relay_reason(&self) -> Option<&str> {
        match self {
            Disconnect::Closed { relay_reason, .. } if !relay_reason.is_empty() => {
                Some(relay_reason)
            }
            _ => None,
        }
    }

    /// Every kind of reason, one per message id (for the tests that check each language).
    pub fn examples() -> Vec<Disconnect> {
        let mut all: Vec<Disconnect> = CLOSE_CODES_WITH_WORDS
            .iter()
            .chain(&[4500])
            .map(|code| Disconnect::Closed {
                code: *code,
                relay_reason: String::new(),
            })
            .collect();
        all.extend([
            Disconnect::BadAddress,
            Disconnect::Offline,
            Disconnect::NoAnswer,
            Disconnect::NoWelcome,
        ]);
        all
    }
}

/// Why the rep is signed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedOut {
    /// The page had no token.
    NoToken,
    /// The relay refused the token (close 4401).
    Refused,
}

impl SignedOut {
    pub fn message_id(self) -> &'static str {
        match self {
            SignedOut::NoToken => "signed-out-no-token",
            SignedOut::Refused => "signed-out-refused",
        }
    }
}

impl ConnectionStatus {
    /// The `data-state` of the status line, which end-to-end tests wait on.
    pub fn data_state(&self) -> &'static str {
        match self {
            ConnectionStatus::Connecting => "connecting",
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Reconnecting { .. } => "reconnecting",
            ConnectionStatus::SignedOut { .. } => "signed_out",
        }
    }
}

/// What the connection reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionEvent {
    Status(ConnectionStatus),
    /// Boxed: a call view is large, status changes are frequent and small.
    Message(Box<ServerMessage>),
}

/// Why the socket closed, with the relay's own words (cut to 80 characters) when it gave any.
pub fn close_reason(code: u16, reason: &str) -> Disconnect {
    Disconnect::Closed {
        code,
        relay_reason: reason.trim().chars().take(80).collect(),
    }
}

type Handler = Rc<dyn Fn(ConnectionEvent)>;

/// A self-healing connection to the relay. Cloning shares it.
#[derive(Clone)]
pub struct Connection {
    inner: Rc<RefCell<Inner>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

struct Inner {
    url: String,
    token: String,
    /// Asks the owner, which knows what was applied, for the mark each `hello` carries.
    last_seq: Rc<dyn Fn() -> Option<u64>>,
    handler: Handler,
    backoff: Backoff,
    /// The backoff's exponent: failed attempts since the last connection that stayed up a
    /// minute ([`backoff::attempt_after_drop`]).
    attempt: u32,
    /// When the current socket was welcomed (Unix ms).
    welcomed_at: Option<u64>,
    socket: Option<Socket>,
    welcomed: bool,
    heartbeat: Heartbeat,
    ticker: Option<Interval>,
    retry: Option<Timeout>,
    online: Option<EventListener>,
    offline: Option<EventListener>,
    visible: Option<EventListener>,
    stopped: bool,
}

/// One WebSocket and the callbacks it holds. Dropping it detaches them first, so a socket that
/// was given up on can never report into the connection that replaced it.
struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    fn close(self, code: u16, reason: &str) {
        self.detach();
        // Only fails for codes outside the allowed range, which ours are not.
        let _ = self.ws.close_with_code_and_reason(code, reason);
    }

    fn detach(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
    }

    fn send(&self, message: &ClientMessage) -> bool {
        if self.ws.ready_state() != WebSocket::OPEN {
            return false;
        }
        match serde_json::to_string(message) {
            Ok(json) => self.ws.send_with_str(&json).is_ok(),
            Err(_) => false,
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.detach();
        let _ = self.ws.close();
    }
}

impl Connection {
    /// Opens the connection and keeps it open until [`Connection::stop`] or a refused token.
    /// `last_seq` is asked at every `hello`, so a reconnect resumes after what was applied.
    pub fn start(
        url: String,
        token: String,
        last_seq: impl Fn() -> Option<u64> + 'static,
        handler: impl Fn(ConnectionEvent) + 'static,
    ) -> Connection {
        let inner = Rc::new(RefCell::new(Inner {
            url,
            token,
            last_seq: Rc::new(last_seq),
            handler: Rc::new(handler),
            backoff: Backoff::default(),
            attempt: 0,
            welcomed_at: None,
            socket: None,
            welcomed: false,
            heartbeat: Heartbeat::awaiting_welcome(now_ms(), HANDSHAKE_TIMEOUT_MS),
            ticker: None,
            retry: None,
            online: None,
            offline: None,
            visible: None,
            stopped: false,
        }));
        let weak = Rc::downgrade(&inner);
        let ticker = Interval::new(TICK_MS, move || {
            if let Some(rc) = weak.upgrade() {
                on_tick(&rc);
            }
        });
        // Back online after a network change: waiting out the rest of a long backoff would only
        // leave the rep without calls for nothing.
        let weak = Rc::downgrade(&inner);
        let online = EventListener::new(&gloo::utils::window(), "online", move |_| {
            if let Some(rc) = weak.upgrade() {
                let waiting = rc.borrow().retry.is_some();
                if waiting {
                    connect(&rc);
                }
            }
        });
        // The browser says the network is gone: the socket is as good as dead, and waiting for
        // the heartbeat to prove it would show "connected" for seconds longer. Reconnect on
        // `online`.
        let weak = Rc::downgrade(&inner);
        let offline = EventListener::new(&gloo::utils::window(), "offline", move |_| {
            if let Some(rc) = weak.upgrade() {
                went_offline(&rc);
            }
        });
        // A tab coming back from the background (a laptop waking up, a rep returning to V2)
        // reconnects now rather than at the end of a backoff that grew while nobody looked.
        let weak = Rc::downgrade(&inner);
        let visible = EventListener::new(&gloo::utils::document(), "visibilitychange", move |_| {
            let shown =
                gloo::utils::document().visibility_state() == web_sys::VisibilityState::Visible;
            if let Some(rc) = weak.upgrade() {
                let waiting = rc.borrow().retry.is_some();
                if shown && waiting {
                    connect(&rc);
                }
            }
        });
        {
            let mut state = inner.borrow_mut();
            state.ticker = Some(ticker);
            state.online = Some(online);
            state.offline = Some(offline);
            state.visible = Some(visible);
        }
        connect(&inner);
        Connection { inner }
    }

    /// Sends a message once the relay has welcomed this connection; false otherwise, so the
    /// caller can tell the rep instead of losing a click silently.
    pub fn send(&self, message: &ClientMessage) -> bool {
        let inner = self.inner.borrow();
        inner.welcomed
            && inner
                .socket
                .as_ref()
                .is_some_and(|socket| socket.send(message))
    }

    /// "Retry now": ends a backoff wait at once. Does nothing while connected or connecting.
    pub fn retry_now(&self) {
        let waiting = self.inner.borrow().retry.is_some();
        if waiting {
            connect(&self.inner);
        }
    }

    /// Closes the socket for good.
    pub fn stop(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.stopped = true;
        inner.retry = None;
        inner.ticker = None;
        inner.online = None;
        inner.offline = None;
        inner.visible = None;
        if let Some(socket) = inner.socket.take() {
            socket.close(1000, "widget closed");
        }
    }
}

/// Calls the handler outside any borrow, so it may use the connection (to send, or stop).
fn emit(rc: &Rc<RefCell<Inner>>, events: Vec<ConnectionEvent>) {
    if events.is_empty() {
        return;
    }
    let handler = rc.borrow().handler.clone();
    for event in events {
        handler(event);
    }
}

fn connect(rc: &Rc<RefCell<Inner>>) {
    let events = {
        let mut inner = rc.borrow_mut();
        if inner.stopped {
            return;
        }
        inner.retry = None;
        inner.socket = None;
        inner.welcomed = false;
        inner.heartbeat = Heartbeat::awaiting_welcome(now_ms(), HANDSHAKE_TIMEOUT_MS);
        match open_socket(Rc::downgrade(rc), &inner.url) {
            Ok(socket) => {
                inner.socket = Some(socket);
                vec![ConnectionEvent::Status(ConnectionStatus::Connecting)]
            }
            Err(reason) => schedule_retry(rc, &mut inner, reason),
        }
    };
    emit(rc, events);
}

fn open_socket(weak: Weak<RefCell<Inner>>, url: &str) -> Result<Socket, Disconnect> {
    let ws = WebSocket::new(url).map_err(|_| Disconnect::BadAddress)?;

    let on_open = {
        let weak = weak.clone();
        Closure::<dyn FnMut()>::new(move || {
            if let Some(rc) = weak.upgrade() {
                on_open(&rc);
            }
        })
    };
    let on_message = {
        let weak = weak.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(rc) = weak.upgrade() {
                on_message(&rc, &event);
            }
        })
    };
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
        if let Some(rc) = weak.upgrade() {
            on_close(&rc, &event);
        }
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    Ok(Socket {
        ws,
        _on_open: on_open,
        _on_message: on_message,
        _on_close: on_close,
    })
}

fn schedule_retry(
    rc: &Rc<RefCell<Inner>>,
    inner: &mut Inner,
    reason: Disconnect,
) -> Vec<ConnectionEvent> {
    inner.socket = None;
    inner.welcomed = false;
    let connected_for = inner
        .welcomed_at
        .take()
        .map(|at| now_ms().saturating_sub(at));
    let exponent = backoff::exponent_after_drop(inner.attempt, connected_for);
    let delay = inner.backoff.delay_ms(exponent, js_sys::Math::random());
    inner.attempt = exponent.saturating_add(1);
    let weak = Rc::downgrade(rc);
    inner.retry = Some(Timeout::new(
        u32::try_from(delay).unwrap_or(u32::MAX),
        move || {
            if let Some(rc) = weak.upgrade() {
                connect(&rc);
            }
        },
    ));
    vec![ConnectionEvent::Status(ConnectionStatus::Reconnecting {
        retry_at_ms: now_ms().saturating_add(delay),
        reason,
    })]
}

fn on_open(rc: &Rc<RefCell<Inner>>) {
    // Asked outside the borrow: the owner's answer must not depend on this connection's state.
    let last_seq = rc.borrow().last_seq.clone();
    let last_seq = last_seq();
    let inner = rc.borrow();
    let hello = ClientMessage::Hello {
        token: inner.token.clone(),
        last_seq,
    };
    let sent = inner
        .socket
        .as_ref()
        .is_some_and(|socket| socket.send(&hello));
    if !sent {
        // The close that follows schedules the retry.
        gloo::console::warn!("could not send hello to the relay");
    }
}

fn on_message(rc: &Rc<RefCell<Inner>>, event: &MessageEvent) {
    let now = now_ms();
    let events = {
        let mut inner = rc.borrow_mut();
        inner.heartbeat.heard(now);
        let Some(text) = event.data().as_string() else {
            gloo::console::warn!("ignored a binary frame from the relay");
            return;
        };
        match serde_json::from_str::<ServerMessage>(&text) {
            Err(err) => {
                // The frame itself is not logged: it may carry callers' numbers.
                let problem = format!(
                    "ignored a malformed frame from the relay ({:?} error at line {}, column {})",
                    err.classify(),
                    err.line(),
                    err.column()
                );
                gloo::console::warn!(problem);
                Vec::new()
            }
            Ok(ServerMessage::Pong { .. }) => Vec::new(),
            Ok(message @ ServerMessage::Welcome { heartbeat_secs, .. }) => {
                inner.heartbeat.welcomed(now, heartbeat_secs);
                inner.welcomed_at = Some(now);
                inner.welcomed = true;
                vec![
                    ConnectionEvent::Message(Box::new(message)),
                    ConnectionEvent::Status(ConnectionStatus::Connected),
                ]
            }
            Ok(message) => vec![ConnectionEvent::Message(Box::new(message))],
        }
    };
    emit(rc, events);
}

fn on_close(rc: &Rc<RefCell<Inner>>, event: &CloseEvent) {
    let events = {
        let mut inner = rc.borrow_mut();
        if inner.stopped {
            return;
        }
        inner.socket = None;
        if event.code() == close::BAD_TOKEN {
            inner.stopped = true;
            inner.welcomed = false;
            inner.retry = None;
            inner.ticker = None;
            inner.online = None;
            inner.offline = None;
            inner.visible = None;
            vec![ConnectionEvent::Status(ConnectionStatus::SignedOut {
                reason: SignedOut::Refused,
            })]
        } else {
            let reason = close_reason(event.code(), &event.reason());
            schedule_retry(rc, &mut inner, reason)
        }
    };
    emit(rc, events);
}

fn went_offline(rc: &Rc<RefCell<Inner>>) {
    let events = {
        let mut inner = rc.borrow_mut();
        if inner.stopped {
            return;
        }
        if let Some(socket) = inner.socket.take() {
            socket.close(close::SILENT, "browser offline");
        }
        schedule_retry(rc, &mut inner, Disconnect::Offline)
    };
    emit(rc, events);
}

fn on_tick(rc: &Rc<RefCell<Inner>>) {
    let now = now_ms();
    let events = {
        let mut inner = rc.borrow_mut();
        if inner.stopped || inner.socket.is_none() {
            return;
        }
        match inner.heartbeat.tick(now) {
            Tick::Wait => Vec::new(),
            Tick::Ping(nonce) => {
                if let Some(socket) = inner.socket.as_ref() {
                    socket.send(&ClientMessage::Ping { nonce });
                }
                Vec::new()
            }
            Tick::Dead => {
                if let Some(socket) = inner.socket.take() {
                    socket.close(close::SILENT, "no heartbeat");
                }
                let reason = if inner.welcomed {
                    Disconnect::NoAnswer
                } else {
                    Disconnect::NoWelcome
                };
                schedule_retry(rc, &mut inner, reason)
            }
        }
    };
    emit(rc, events);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn socket_url_follows_the_page() {
        assert_eq!(
            ws_url("https:", "cti.example.com"),
            "wss://cti.example.com/v1/agent/ws"
        );
        assert_eq!(
            ws_url("http:", "127.0.0.1:8080"),
            "ws://127.0.0.1:8080/v1/agent/ws"
        );
    }

    #[wasm_bindgen_test]
    fn close_reasons_read_well_in_every_language() {
        let say = |lang, reason: &Disconnect| {
            let (id, args) = reason.message();
            crate::i18n::I18n::get(lang).t_args(&id, &args)
        };
        assert_eq!(say(Lang::En, &close_reason(1006, "")), "connection lost");
        assert_eq!(
            say(Lang::De, &close_reason(1012, "  ")),
            "das Relay startet neu"
        );
        assert_eq!(
            say(Lang::Fr, &close_reason(4500, "")),
            "fermée avec le code 4500"
        );
        // The relay's words are kept, but the rep reads them in their language.
        let relay = close_reason(1000, "shutting down");
        assert_eq!(relay.relay_reason(), Some("shutting down"));
        assert_eq!(say(Lang::En, &relay), "closed by the relay");
        let long = close_reason(1000, &"x".repeat(200));
        assert_eq!(long.relay_reason().map(str::len), Some(80));
        for lang in Lang::ALL {
            let known = crate::i18n::message_ids(lang.resource()).expect("parses");
            for reason in Disconnect::examples() {
                let (id, _) = reason.message();
                assert!(known.contains(&id), "{}.ftl lacks {id}", lang.code());
            }
            for signed_out in [SignedOut::NoToken, SignedOut::Refused] {
                let id = signed_out.message_id().to_owned();
                assert!(known.contains(&id), "{}.ftl lacks {id}", lang.code());
            }
        }
    }

    /// A connection as `start` leaves it, without a socket yet, reporting into `seen`.
    fn idle(seen: Rc<RefCell<Vec<ConnectionEvent>>>) -> Rc<RefCell<Inner>> {
        Rc::new(RefCell::new(Inner {
            url: "ws://127.0.0.1:9/v1/agent/ws".into(),
            token: "the-reps-token".into(),
            last_seq: Rc::new(|| None),
            handler: Rc::new(move |event| seen.borrow_mut().push(event)),
            backoff: Backoff::default(),
            attempt: 0,
            welcomed_at: None,
            socket: None,
            welcomed: false,
            heartbeat: Heartbeat::awaiting_welcome(now_ms(), HANDSHAKE_TIMEOUT_MS),
            ticker: None,
            retry: None,
            online: None,
            offline: None,
            visible: None,
            stopped: false,
        }))
    }

    fn closed_with(code: u16) -> CloseEvent {
        let init = web_sys::CloseEventInit::new();
        init.set_code(code);
        init.set_reason("from the test");
        CloseEvent::new_with_event_init_dict("close", &init).expect("a close event")
    }

    /// Review F8: a close with 1013 (the relay cannot check tokens now: its identity provider's
    /// keys are unreachable or not fetched yet) schedules a retry with the same token and does
    /// not sign the rep out; only 4401 does, and stops retrying.
    #[wasm_bindgen_test]
    fn a_try_again_close_retries_with_the_token_and_only_4401_signs_out() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let rc = idle(seen.clone());
        on_close(&rc, &closed_with(close::TRY_AGAIN));
        {
            let events = seen.borrow();
            assert_eq!(events.len(), 1);
            let ConnectionEvent::Status(ConnectionStatus::Reconnecting { reason, .. }) = &events[0]
            else {
                panic!("a retry, not {:?}", events[0]);
            };
            assert_eq!(reason.relay_reason(), Some("from the test"));
        }
        {
            let inner = rc.borrow();
            assert!(!inner.stopped, "still trying");
            assert!(inner.retry.is_some(), "a retry is scheduled");
            assert_eq!(inner.token, "the-reps-token", "the same token goes again");
        }
        // Stop the scheduled attempt: this test has no relay to reach.
        rc.borrow_mut().retry = None;

        let seen = Rc::new(RefCell::new(Vec::new()));
        let rc = idle(seen.clone());
        on_close(&rc, &closed_with(close::BAD_TOKEN));
        assert!(matches!(
            seen.borrow().as_slice(),
            [ConnectionEvent::Status(ConnectionStatus::SignedOut { .. })]
        ));
        let inner = rc.borrow();
        assert!(
            inner.stopped && inner.retry.is_none(),
            "no retry after 4401"
        );
    }

    #[wasm_bindgen_test]
    fn status_states_match_the_dom_contract() {
        let states: Vec<_> = [
            ConnectionStatus::Connecting,
            ConnectionStatus::Connected,
            ConnectionStatus::Reconnecting {
                retry_at_ms: 0,
                reason: Disconnect::Offline,
            },
            ConnectionStatus::SignedOut {
                reason: SignedOut::Refused,
            },
        ]
        .iter()
        .map(ConnectionStatus::data_state)
        .collect();
        assert_eq!(
            states,
            vec!["connecting", "connected", "reconnecting", "signed_out"]
        );
    }
}
