//! A simulated PBX speaking the relay's *generic provider* contract, both ways.
//!
//! # The generic provider contract
//!
//! Any PBX or integration without a dedicated adapter can drive the CTI with two HTTP calls, both
//! authenticated by `X-CTI-Signature: sha256=<hex HMAC-SHA256 of the raw body>` keyed with the
//! tenant's webhook secret (see [`sign`]):
//!
//! **Events, PBX → relay.** `POST {relay}/v1/tenants/{tenant}/telephony/generic`,
//! `Content-Type: application/json`, one normalized event per request:
//!
//! ```json
//! {"id":"call-1a2b-e1","call_id":"call-1a2b","type":"ringing","direction":"inbound",
//!  "from":"044 123 45 67","to":"+41 44 999 00 00","agent":"alice@example.com",
//!  "at":"2026-11-24T10:00:00.000Z","transfer_to":null,"reason":null,"recording_url":null}
//! ```
//!
//! `id` is unique per event and is the relay's idempotency key, so a PBX may resend an event it is
//! unsure about. Events of one call are sent one at a time, in order. A 5xx or a broken connection
//! is retried with the same body; a 4xx is final.
//!
//! **Call controls, relay → PBX.** `POST {control_url}/calls/{call_id}/commands` (this simulator's
//! control URL is `/sim/pbx`), with the rep who asked:
//!
//! ```json
//! {"action":"answer","agent":"alice@example.com"}
//! {"action":"transfer","target":"bob@example.com","agent":"alice@example.com"}
//! ```
//!
//! `action` is one of `answer`, `decline`, `hold`, `resume`, `hangup`, `transfer`, `consult`,
//! `complete_transfer`, `cancel_consult`. The PBX answers `202 {"accepted":true}` as soon as it
//! takes the command, and reports the outcome only through events, exactly as a real switch
//! confirms a state change after the fact: answer → `answered`; decline → `ended` (`declined`);
//! hold → `held`; resume → `resumed`; hangup → `ended` (`completed`); transfer → `transferred`
//! for the current rep, then `ringing` for the target rep under the same `call_id`. A consult
//! transfer: consult → `held` for the rep and `ringing` for the colleague under the same
//! `call_id` (the colleague answers or hangs up with their own `agent`); complete_transfer →
//! `transferred` for the rep, the colleague's leg goes on; cancel_consult → `ended` for the
//! colleague and `resumed` for the rep. Errors: 401 bad or missing signature, 400 a body
//! that is not a command, 404 unknown call, 409 a command the call's state does not allow (hold
//! while ringing, anything after the end, a rep who no longer holds the call).
//!
//! # The simulator's own controls
//!
//! `POST /sim/calls` places an inbound call and answers once the relay accepted the `ringing`
//! event, so a test that got its `call_id` knows the relay has the call. `POST
//! /sim/calls/{id}/hangup` is the caller hanging up; `GET /sim/calls` lists every call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};
use cti_protocol::signature::{self, SignatureError};
use cti_protocol::ws::CallCommand;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::{Sim, SimConfig};

/// Tests and benchmarks sign the webhooks they post by hand under the simulator's name.
pub use cti_protocol::signature::sign;

/// Attempts per event: enough to ride out a relay restart in the tests, few enough that a dead
/// relay fails `POST /sim/calls` within about a second.
const MAX_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Longest number, agent or target the PBX takes; real ones are far shorter.
const MAX_FIELD_LEN: usize = 256;

/// A phone number for log lines: every digit but the last four replaced, so logs can tell calls
/// apart without holding anyone's number.
pub fn mask_number(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if digits - seen >= 4 { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

/// Everything the PBX's routes can refuse, mapped to a response in [`IntoResponse`] below.
#[derive(Debug, thiserror::Error)]
pub enum PbxError {
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid call command: {0}")]
    InvalidCommand(String),
    #[error("no call {0:?}")]
    UnknownCall(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the relay did not accept the event: {0}")]
    Delivery(#[from] DeliveryError),
}

impl PbxError {
    fn status(&self) -> StatusCode {
        match self {
            PbxError::Signature(_) => StatusCode::UNAUTHORIZED,
            PbxError::MalformedJson(_)
            | PbxError::InvalidRequest(_)
            | PbxError::InvalidCommand(_) => StatusCode::BAD_REQUEST,
            PbxError::UnknownCall(_) => StatusCode::NOT_FOUND,
            PbxError::Conflict(_) => StatusCode::CONFLICT,
            PbxError::Delivery(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            PbxError::Signature(SignatureError::Missing) => "missing_signature",
            PbxError::Signature(_) => "invalid_signature",
            PbxError::MalformedJson(_) => "malformed_json",
            PbxError::InvalidRequest(_) => "invalid_request",
            PbxError::InvalidCommand(_) => "invalid_command",
            PbxError::UnknownCall(_) => "unknown_call",
            PbxError::Conflict(_) => "invalid_state",
            PbxError::Delivery(DeliveryError::Unreachable(_)) => "relay_unreachable",
            PbxError::Delivery(DeliveryError::Rejected { .. }) => "relay_rejected",
            PbxError::Delivery(DeliveryError::Failing { .. }) => "relay_failing",
            PbxError::Delivery(DeliveryError::Stopped) => "delivery_stopped",
        }
    }
}

impl IntoResponse for PbxError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        (self.status(), Json(body)).into_response()
    }
}

impl From<PathRejection> for PbxError {
    fn from(rejection: PathRejection) -> Self {
        PbxError::InvalidRequest(format!("bad call id in the path: {rejection}"))
    }
}

/// Why an event did not reach the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("relay unreachable after {MAX_ATTEMPTS} attempts: {0}")]
    Unreachable(String),
    #[error("relay answered {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("relay answered {status} to all {MAX_ATTEMPTS} attempts: {message}")]
    Failing { status: u16, message: String },
    #[error("the call's event queue stopped")]
    Stopped,
}

/// Where one call stands at the PBX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegState {
    Ringing,
    Connected,
    Held,
    Ended,
}

/// One call as `GET /sim/calls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CallInfo {
    pub call_id: String,
    pub from: String,
    pub to: String,
    /// The rep whose leg is current (the transfer target after a transfer).
    pub agent: String,
    pub state: LegState,
    pub end_reason: Option<EndReason>,
    pub started_at: String,
    /// Events created for this call so far.
    pub events: u64,
    /// Events the relay accepted, and events given up on.
    pub delivered: u64,
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
}

struct Outgoing {
    event: TelephonyEvent,
    ack: Option<oneshot::Sender<Result<(), DeliveryError>>>,
}

#[derive(Debug)]
struct Call {
    created: u64,
    id: String,
    direction: Direction,
    from: String,
    to: String,
    agent: String,
    state: LegState,
    end_reason: Option<EndReason>,
    /// Whether the current rep's leg was answered, which decides `completed` over `missed`.
    answered: bool,
    /// A colleague the current rep is consulting (ringing or talking to them, caller on hold).
    consult: Option<Consulted>,
    started_at: String,
    next_event: u64,
    counters: Arc<Counters>,
    /// The call's delivery task; `None` once the call ended and its last event is queued.
    queue: Option<mpsc::UnboundedSender<Outgoing>>,
}

/// The consulted rep's leg of a call.
#[derive(Debug, Clone)]
struct Consulted {
    agent: String,
    answered: bool,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("event", &self.event.id)
            .finish_non_exhaustive()
    }
}

impl Call {
    fn info(&self) -> CallInfo {
        CallInfo {
            call_id: self.id.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            agent: self.agent.clone(),
            state: self.state,
            end_reason: self.end_reason,
            started_at: self.started_at.clone(),
            events: self.next_event,
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }

    /// Builds the call's next event and queues it behind the ones before it. Called with the
    /// PBX's lock held, so the queue order is the order in which state changed.
    fn emit(
        &mut self,
        event_type: EventType,
        agent: &str,
        transfer_to: Option<String>,
        reason: Option<EndReason>,
    ) -> oneshot::Receiver<Result<(), DeliveryError>> {
        self.next_event += 1;
        let recording_url = (event_type == EventType::Ended
            && reason == Some(EndReason::Completed))
        .then(|| format!("https://recordings.example.com/{}.wav", self.id));
        let event = TelephonyEvent {
            id: format!("{}-e{}", self.id, self.next_event),
            call_id: self.id.clone(),
            event_type,
            direction: self.direction,
            from: self.from.clone(),
            to: self.to.clone(),
            agent: agent.to_string(),
            at: now_rfc3339(),
            transfer_to,
            reason,
            recording_url,
        };
        let (tx, rx) = oneshot::channel();
        let outgoing = Outgoing {
            event,
            ack: Some(tx),
        };
        if let Some(queue) = &self.queue {
            // A closed queue drops the ack, which the waiter sees as `Stopped`.
            let _ = queue.send(outgoing);
        }
        if event_type == EventType::Ended && agent == self.agent {
            // Dropping the sender lets the delivery task finish after this last event.
            self.queue = None;
        }
        rx
    }
}

/// The relay's generic webhook as the PBX reaches it.
#[derive(Debug)]
struct RelayLink {
    http: reqwest::Client,
    events_url: String,
    secret: String,
}

impl RelayLink {
    /// Sends one event, retrying what may be transient.
    async fn deliver(&self, event: &TelephonyEvent) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(event).map_err(|e| DeliveryError::Rejected {
            status: 0,
            message: format!("event does not serialize: {e}"),
        })?;
        let signed = sign(&self.secret, &body);
        let mut backoff = FIRST_BACKOFF;
        let mut last = DeliveryError::Stopped;
        for attempt in 1..=MAX_ATTEMPTS {
            let sent = self
                .http
                .post(&self.events_url)
                .header(CONTENT_TYPE, "application/json")
                .header(signature::HEADER, &signed)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(event = %event.id, status = %response.status(), "event delivered");
                    return Ok(());
                }
                Ok(response) => {
                    let status = response.status();
                    let message = error_message(&response.text().await.unwrap_or_default());
                    let retry = status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                    if !retry {
                        return Err(DeliveryError::Rejected {
                            status: status.as_u16(),
                            message,
                        });
                    }
                    tracing::warn!(event = %event.id, %status, attempt, %message, "relay failed the event");
                    last = DeliveryError::Failing {
                        status: status.as_u16(),
                        message,
                    };
                }
                Err(err) => {
                    let err = err.without_url();
                    tracing::warn!(event = %event.id, attempt, %err, "relay unreachable");
                    last = DeliveryError::Unreachable(describe(&err));
                }
            }
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(last)
    }
}

/// A reqwest error with its causes, since "error sending request" alone names no reason.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The `error.message` of a JSON error body, else the start of the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(200).collect())
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    // Milliseconds are all a call log needs, and keep timestamps short.
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The simulated PBX: its calls and its link to the relay.
#[derive(Debug)]
pub struct Pbx {
    link: Arc<RelayLink>,
    default_to: String,
    default_agent: String,
    calls: Mutex<HashMap<String, Call>>,
    created: AtomicU64,
}

impl Pbx {
    pub fn new(config: &SimConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let events_url = format!(
            "{}/v1/tenants/{}/telephony/generic",
            config.relay_url.trim_end_matches('/'),
            config.tenant
        );
        Pbx {
            link: Arc::new(RelayLink {
                http,
                events_url,
                secret: config.webhook_secret.clone(),
            }),
            default_to: config.demo_agent_number.clone(),
            default_agent: config.demo_agent.clone(),
            calls: Mutex::new(HashMap::new()),
            created: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Call>> {
        // A panic elsewhere while holding the lock leaves the map consistent (every update is a
        // plain assignment), so a poisoned lock is still usable.
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call, oldest first.
    pub fn calls(&self) -> Vec<CallInfo> {
        let calls = self.lock();
        let mut list: Vec<&Call> = calls.values().collect();
        list.sort_by_key(|c| c.created);
        list.into_iter().map(Call::info).collect()
    }

    /// Places an inbound call and waits until the relay took its `ringing` event.
    pub async fn place_call(
        &self,
        from: String,
        to: Option<String>,
        agent: Option<String>,
    ) -> Result<String, PbxError> {
        let to = to.unwrap_or_else(|| self.default_to.clone());
        let agent = agent.unwrap_or_else(|| self.default_agent.clone());
        self.start_call(Direction::Inbound, from, to, agent).await
    }

    /// Click-to-dial: the rep's line calls `to`; the far end rings until it answers
    /// (`POST /sim/calls/{id}/answer`) or the rep hangs up.
    pub async fn dial(&self, agent: String, to: String) -> Result<String, PbxError> {
        let from = self.default_to.clone();
        self.start_call(Direction::Outbound, from, to, agent).await
    }

    async fn start_call(
        &self,
        direction: Direction,
        from: String,
        to: String,
        agent: String,
    ) -> Result<String, PbxError> {
        let id = format!("call-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_queue(self.link.clone(), counters.clone(), rx));
        let call = Call {
            created: self.created.fetch_add(1, Ordering::Relaxed),
            id: id.clone(),
            direction,
            from,
            to,
            agent: agent.clone(),
            state: LegState::Ringing,
            end_reason: None,
            answered: false,
            consult: None,
            started_at: now_rfc3339(),
            next_event: 0,
            counters,
            queue: Some(tx),
        };
        tracing::info!(
            call = %id, ?direction, from = %mask_number(&call.from), to = %mask_number(&call.to),
            %agent, "call placed"
        );
        let ack = {
            // Registered before the ringing goes out, so a relay that answers at once finds it.
            let mut calls = self.lock();
            let call = calls.entry(id.clone()).insert_entry(call).into_mut();
            call.emit(EventType::Ringing, &agent, None, None)
        };
        match ack.await.unwrap_or(Err(DeliveryError::Stopped)) {
            Ok(()) => Ok(id),
            Err(err) => {
                tracing::warn!(call = %id, %err, "the relay did not take the call");
                if let Some(call) = self.lock().get_mut(&id)
                    && call.state != LegState::Ended
                {
                    call.state = LegState::Ended;
                    call.end_reason = Some(EndReason::Failed);
                    call.queue = None;
                }
                Err(err.into())
            }
        }
    }

    /// The called party picks up an outbound call; waits until the relay took `answered`.
    pub async fn remote_answer(&self, call_id: &str) -> Result<(), PbxError> {
        let ack = {
            let mut calls = self.lock();
            let call = calls
                .get_mut(call_id)
                .ok_or_else(|| PbxError::UnknownCall(call_id.to_string()))?;
            if call.direction != Direction::Outbound || call.state != LegState::Ringing {
                return Err(PbxError::Conflict(format!(
                    "call {call_id:?} is not an outbound call that rings"
                )));
            }
            call.state = LegState::Connected;
            call.answered = true;
            let agent = call.agent.clone();
            call.emit(EventType::Answered, &agent, None, None)
        };
        ack.await.unwrap_or(Err(DeliveryError::Stopped))?;
        Ok(())
    }

    /// The caller hangs up; waits until the relay took the `ended` event.
    pub async fn caller_hangup(&self, call_id: &str) -> Result<EndReason, PbxError> {
        let (reason, ack) = {
            let mut calls = self.lock();
            let call = calls
                .get_mut(call_id)
                .ok_or_else(|| PbxError::UnknownCall(call_id.to_string()))?;
            let reason = match call.state {
                LegState::Ringing => EndReason::Missed,
                LegState::Connected | LegState::Held => EndReason::Completed,
                LegState::Ended => {
                    return Err(PbxError::Conflict(format!(
                        "call {call_id:?} already ended"
                    )));
                }
            };
            call.state = LegState::Ended;
            call.end_reason = Some(reason);
            call.end_consult();
            let agent = call.agent.clone();
            let ack = call.emit(EventType::Ended, &agent, None, Some(reason));
            (reason, ack)
        };
        tracing::info!(call = %call_id, ?reason, "caller hung up");
        ack.await.unwrap_or(Err(DeliveryError::Stopped))?;
        Ok(reason)
    }

    /// Applies a call control from the relay. The confirming events are queued for the call's
    /// delivery task and reach the relay after this returns, as a real switch's would.
    pub fn command(
        &self,
        call_id: &str,
        command: &CallCommand,
        by: Option<&str>,
    ) -> Result<(), PbxError> {
        let mut calls = self.lock();
        let call = calls
            .get_mut(call_id)
            .ok_or_else(|| PbxError::UnknownCall(call_id.to_string()))?;
        let action = command.name();
        if call.state == LegState::Ended {
            return Err(PbxError::Conflict(format!(
                "cannot {action} call {call_id:?}: it has ended"
            )));
        }
        if let Some(by) = by.filter(|b| call.consult.as_ref().is_some_and(|c| c.agent == *b)) {
            return call.consulted_command(command, by);
        }
        if let Some(by) = by.filter(|b| *b != call.agent) {
            return Err(PbxError::Conflict(format!(
                "cannot {action} call {call_id:?} for {by}: the call is with {}",
                call.agent
            )));
        }
        let not_now = |state: LegState| {
            PbxError::Conflict(format!(
                "cannot {action} call {call_id:?} while it is {}",
                match state {
                    LegState::Ringing => "ringing",
                    LegState::Connected => "connected",
                    LegState::Held => "on hold",
                    LegState::Ended => "ended",
                }
            ))
        };
        let agent = call.agent.clone();
        // The acks are dropped: the relay learns the outcome from the events themselves.
        let outbound = call.direction == Direction::Outbound;
        match (command, call.state) {
            // The rep cannot answer a call they placed; they can give up on it.
            (CallCommand::Answer | CallCommand::Decline, LegState::Ringing) if outbound => {
                return Err(PbxError::Conflict(format!(
                    "cannot {action} call {call_id:?}: it is the rep's own outbound call"
                )));
            }
            (CallCommand::Hangup, LegState::Ringing) if outbound => {
                call.state = LegState::Ended;
                call.end_reason = Some(EndReason::Missed);
                call.emit(EventType::Ended, &agent, None, Some(EndReason::Missed));
            }
            (CallCommand::Answer, LegState::Ringing) => {
                call.state = LegState::Connected;
                call.answered = true;
                call.emit(EventType::Answered, &agent, None, None);
            }
            (CallCommand::Decline, LegState::Ringing) => {
                call.state = LegState::Ended;
                call.end_reason = Some(EndReason::Declined);
                call.emit(EventType::Ended, &agent, None, Some(EndReason::Declined));
            }
            (CallCommand::Hold, LegState::Connected) => {
                call.state = LegState::Held;
                call.emit(EventType::Held, &agent, None, None);
            }
            (CallCommand::Resume, LegState::Held) => {
                call.state = LegState::Connected;
                call.emit(EventType::Resumed, &agent, None, None);
            }
            (CallCommand::Consult { target }, LegState::Connected | LegState::Held) => {
                let target = valid_target(target, &agent, call_id)?;
                if call.consult.is_some() {
                    return Err(PbxError::Conflict(format!(
                        "call {call_id:?} is already in a consultation"
                    )));
                }
                if call.state == LegState::Connected {
                    call.state = LegState::Held;
                    call.emit(EventType::Held, &agent, None, None);
                }
                call.consult = Some(Consulted {
                    agent: target.clone(),
                    answered: false,
                });
                call.emit(EventType::Ringing, &target, None, None);
            }
            (CallCommand::CompleteTransfer, _) => {
                let Some(consulted) = call.consult.take() else {
                    return Err(PbxError::Conflict(format!(
                        "call {call_id:?} has no consultation to complete"
                    )));
                };
                call.emit(
                    EventType::Transferred,
                    &agent,
                    Some(consulted.agent.clone()),
                    None,
                );
                call.agent = consulted.agent;
                call.answered = consulted.answered;
                call.state = if consulted.answered {
                    LegState::Connected
                } else {
                    LegState::Ringing
                };
            }
            (CallCommand::CancelConsult, _) => {
                if call.consult.is_none() {
                    return Err(PbxError::Conflict(format!(
                        "call {call_id:?} has no consultation to cancel"
                    )));
                }
                call.end_consult();
                call.state = LegState::Connected;
                call.emit(EventType::Resumed, &agent, None, None);
            }
            (CallCommand::Hangup, LegState::Connected | LegState::Held) => {
                call.end_consult();
                call.state = LegState::Ended;
                call.end_reason = Some(EndReason::Completed);
                call.emit(EventType::Ended, &agent, None, Some(EndReason::Completed));
            }
            (CallCommand::Transfer { target }, LegState::Connected | LegState::Held)
                if call.consult.is_none() =>
            {
                let target = valid_target(target, &agent, call_id)?;
                let target = target.as_str();
                call.emit(
                    EventType::Transferred,
                    &agent,
                    Some(target.to_string()),
                    None,
                );
                call.agent = target.to_string();
                call.state = LegState::Ringing;
                call.answered = false;
                call.emit(EventType::Ringing, target, None, None);
            }
            (_, state) => return Err(not_now(state)),
        }
        tracing::info!(call = %call_id, %action, %agent, "call control accepted");
        Ok(())
    }
}

/// A transfer or consult target: a rep id, not the rep who has the call.
fn valid_target(target: &str, agent: &str, call_id: &str) -> Result<String, PbxError> {
    let target = target.trim();
    if target.is_empty() || target.len() > MAX_FIELD_LEN {
        return Err(PbxError::InvalidCommand(format!(
            "`target` must be a rep id of 1 to {MAX_FIELD_LEN} characters"
        )));
    }
    if target == agent {
        return Err(PbxError::Conflict(format!(
            "cannot transfer call {call_id:?} to {target}: it is already with them"
        )));
    }
    Ok(target.to_string())
}

impl Call {
    /// Ends the consulted rep's leg, if there is one.
    fn end_consult(&mut self) {
        if let Some(consulted) = self.consult.take() {
            let reason = if consulted.answered {
                EndReason::Completed
            } else {
                EndReason::Missed
            };
            self.emit(EventType::Ended, &consulted.agent, None, Some(reason));
        }
    }

    /// A call control from the consulted rep: answer, or leave the consultation.
    fn consulted_command(&mut self, command: &CallCommand, by: &str) -> Result<(), PbxError> {
        let Some(consulted) = self.consult.as_mut() else {
            return Ok(());
        };
        match command {
            CallCommand::Answer if !consulted.answered => {
                consulted.answered = true;
                self.emit(EventType::Answered, by, None, None);
            }
            CallCommand::Hangup | CallCommand::Decline => {
                let reason = if consulted.answered {
                    EndReason::Completed
                } else {
                    EndReason::Declined
                };
                self.consult = None;
                self.emit(EventType::Ended, by, None, Some(reason));
            }
            other => {
                return Err(PbxError::Conflict(format!(
                    "cannot {} call {:?}: {by} is being consulted about it",
                    other.name(),
                    self.id
                )));
            }
        }
        tracing::info!(call = %self.id, action = %command.name(), agent = %by, "consulted rep's control accepted");
        Ok(())
    }
}

/// Delivers one call's events strictly one after another, so the relay sees them in the order
/// the call went through its states even when a retry is under way.
async fn run_queue(
    link: Arc<RelayLink>,
    counters: Arc<Counters>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(Outgoing { event, ack }) = queue.recv().await {
        let result = link.deliver(&event).await;
        match &result {
            Ok(()) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::info!(event = %event.id, kind = ?event.event_type, agent = %event.agent, "event delivered to the relay");
            }
            Err(err) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(event = %event.id, kind = ?event.event_type, %err, "event not delivered");
            }
        }
        if let Some(ack) = ack {
            // The waiter may have gone (a command's events are not awaited).
            let _ = ack.send(result);
        }
    }
}

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/calls", post(place_call).get(list_calls))
        .route("/sim/calls/{id}/hangup", post(hangup))
        .route("/sim/calls/{id}/answer", post(remote_answer))
        .route("/sim/pbx/calls/{id}/commands", post(command))
        .route("/sim/pbx/dial", post(dial))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceCall {
    from: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, PbxError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        PbxError::MalformedJson(format!("{e} (line {}, column {})", e.line(), e.column()))
    })?;
    serde_json::from_value(value).map_err(|e| PbxError::InvalidRequest(e.to_string()))
}

/// A field that is absent or blank means "use the default".
fn optional_field(name: &str, value: Option<String>) -> Result<Option<String>, PbxError> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if v.len() > MAX_FIELD_LEN => Err(PbxError::InvalidRequest(format!(
            "`{name}` is longer than {MAX_FIELD_LEN} characters"
        ))),
        Some(v) if !v.is_empty() => Ok(Some(v)),
        _ => Ok(None),
    }
}

async fn place_call(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, PbxError> {
    let request: PlaceCall = parse_json(&body)?;
    let from = optional_field("from", Some(request.from))?
        .ok_or_else(|| PbxError::InvalidRequest("`from` must not be empty".into()))?;
    let to = optional_field("to", request.to)?;
    let agent = optional_field("agent", request.agent)?;
    let call_id = sim.pbx.place_call(from, to, agent).await?;
    Ok((StatusCode::CREATED, Json(json!({"call_id": call_id}))).into_response())
}

async fn list_calls(State(sim): State<Arc<Sim>>) -> Json<Vec<CallInfo>> {
    Json(sim.pbx.calls())
}

async fn hangup(
    State(sim): State<Arc<Sim>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, PbxError> {
    let Path(id) = id?;
    let reason = sim.pbx.caller_hangup(&id).await?;
    Ok(Json(json!({"call_id": id, "state": "ended", "reason": reason})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialBody {
    agent: String,
    to: String,
}

/// `POST /sim/pbx/dial`, signed like commands: `{"agent","to"}` -> 201 `{"call_id"}` once the
/// relay took the call's `ringing`.
async fn dial(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PbxError> {
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    signature::verify(&sim.config.webhook_secret, &body, header)?;
    let request: DialBody = parse_json(&body)?;
    let agent = optional_field("agent", Some(request.agent))?
        .ok_or_else(|| PbxError::InvalidCommand("`agent` is required".into()))?;
    let to = optional_field("to", Some(request.to))?
        .ok_or_else(|| PbxError::InvalidCommand("`to` is required".into()))?;
    let call_id = sim.pbx.dial(agent, to).await?;
    Ok((StatusCode::CREATED, Json(json!({"call_id": call_id}))).into_response())
}

async fn remote_answer(
    State(sim): State<Arc<Sim>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, PbxError> {
    let Path(id) = id?;
    sim.pbx.remote_answer(&id).await?;
    Ok((StatusCode::OK, Json(json!({"answered": true}))).into_response())
}

#[derive(Debug, Deserialize)]
struct CommandBody {
    #[serde(flatten)]
    command: CallCommand,
    #[serde(default)]
    agent: Option<String>,
}

async fn command(
    State(sim): State<Arc<Sim>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PbxError> {
    // Authenticate before looking at anything else, so unsigned requests learn nothing.
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    signature::verify(&sim.config.webhook_secret, &body, header)?;
    let Path(id) = id?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        PbxError::MalformedJson(format!("{e} (line {}, column {})", e.line(), e.column()))
    })?;
    let request: CommandBody =
        serde_json::from_value(value).map_err(|e| PbxError::InvalidCommand(e.to_string()))?;
    let by = optional_field("agent", request.agent)?;
    sim.pbx.command(&id, &request.command, by.as_deref())?;
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_digits() {
        assert_eq!(mask_number("+41 44 123 45 67"), "+** ** *** 45 67");
        assert_eq!(mask_number("123"), "123");
        assert_eq!(mask_number(""), "");
    }
}
