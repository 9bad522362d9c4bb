//! The event socket connection and one run of the FreeSWITCH connector.
//!
//! A connection: TCP, `Content-Type: auth/request` from the server, `auth <password>`
//! answered `+OK accepted` (or `-ERR invalid`, then a disconnect notice). A run: connect,
//! `event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HOLD CHANNEL_UNHOLD CHANNEL_BRIDGE
//! CHANNEL_HANGUP_COMPLETE`, report up, `api show channels as json` and reconcile (events
//! arriving meanwhile wait for it), then serve: events become call events, the adapter's
//! commands are written and their replies handed back in order (the event socket answers
//! commands in the order it got them), a quiet socket is asked `api status`. A frame that is not
//! ESL, or an event whose JSON does not parse, is logged and counted and reading goes on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;

use super::Shared;
use super::esl::{EslCodec, Frame, Message};
use super::mapping::Listed;
use crate::adapters::connector::Undelivered;
use crate::adapters::{Link, LinkError};
use crate::secret::Secret;
use cti_protocol::event::TelephonyEvent;

pub(super) const TIMEOUT: Duration = Duration::from_secs(10);
const SILENCE: Duration = Duration::from_secs(30);

/// The events subscribed to.
pub(super) const EVENTS: &str = "CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HOLD CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE";

#[derive(Debug, Clone, thiserror::Error)]
pub enum EslError {
    #[error("FreeSWITCH is unreachable: {0}")]
    Unreachable(String),
    #[error("FreeSWITCH refused the event socket password: {0}")]
    AuthRefused(String),
    #[error("ESL: {0}")]
    Protocol(String),
    #[error("the event socket closed")]
    Closed,
}

/// A logged-in event socket.
pub struct Connection {
    framed: Framed<TcpStream, EslCodec>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl Connection {
    pub async fn open(host: &str, port: u16, password: &Secret) -> Result<Connection, EslError> {
        let addr = format!("{}:{port}", host.trim_matches(['[', ']']));
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(&addr))
            .await
            .map_err(|_| EslError::Unreachable(format!("connecting to {addr} timed out")))?
            .map_err(|e| EslError::Unreachable(format!("{addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let mut connection = Connection {
            framed: Framed::new(tcp, EslCodec::default()),
        };
        let greeting = connection.reply().await?;
        if greeting.content_type() != "auth/request" {
            return Err(EslError::Protocol(format!(
                "not an event socket (first frame {:?})",
                greeting.content_type()
            )));
        }
        let answer = connection
            .command(&format!("auth {}", password.expose()))
            .await?;
        let text = answer.get("Reply-Text").unwrap_or("");
        if !text.starts_with("+OK") {
            return Err(EslError::AuthRefused(text.to_string()));
        }
        Ok(connection)
    }

    pub async fn send(&mut self, command: &str) -> Result<(), EslError> {
        self.framed.send(command).await.map_err(|e| match e {
            super::esl::CodecError::Io(e) => EslError::Unreachable(e.to_string()),
            other => EslError::Protocol(other.to_string()),
        })
    }

    pub async fn next(&mut self) -> Option<Result<Frame, EslError>> {
        self.framed
            .next()
            .await
            .map(|r| r.map_err(|e| EslError::Unreachable(e.to_string())))
    }

    /// The next reply (`command/reply`, `api/response`, or the greeting), passing over events.
    async fn reply(&mut self) -> Result<Message, EslError> {
        let wait = async {
            loop {
                match self.next().await {
                    None => return Err(EslError::Closed),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(Frame::Message(m)))
                        if matches!(
                            m.content_type(),
                            "auth/request" | "command/reply" | "api/response"
                        ) =>
                    {
                        return Ok(m);
                    }
                    Some(Ok(Frame::Message(m))) if m.content_type() == "text/disconnect-notice" => {
                        return Err(EslError::Closed);
                    }
                    Some(Ok(_)) => continue,
                }
            }
        };
        tokio::time::timeout(TIMEOUT, wait)
            .await
            .map_err(|_| EslError::Protocol("no reply in time".into()))?
    }

    /// Sends a command and waits for its reply (for a connection serving one at a time).
    pub async fn command(&mut self, command: &str) -> Result<Message, EslError> {
        self.send(command).await?;
        self.reply().await
    }

    pub async fn close(mut self) {
        let _ = self.send("exit").await;
    }
}

/// A command for the connector to send, and where its reply goes.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) command: String,
    pub(crate) answer: oneshot::Sender<Result<Message, EslError>>,
}

enum Pending {
    Resync,
    Ping,
    Command(oneshot::Sender<Result<Message, EslError>>),
}

struct Registered<'a>(&'a Shared);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        *self.0.requests() = None;
    }
}

fn lost(e: impl std::fmt::Display) -> LinkError {
    LinkError(e.to_string())
}

pub(super) async fn run(shared: Arc<Shared>, link: Link) -> Result<(), LinkError> {
    let result = session(&shared, &link).await;
    link.down();
    if let Err(err) = &result {
        link.error(&format!("FreeSWITCH: {err}"));
    }
    result
}

async fn session(shared: &Shared, link: &Link) -> Result<(), LinkError> {
    let s = &shared.settings;
    let mut esl = Connection::open(
        &s.freeswitch_host,
        s.freeswitch_port,
        &s.freeswitch_password,
    )
    .await
    .map_err(lost)?;
    let answer = esl
        .command(&format!("event json {EVENTS}"))
        .await
        .map_err(lost)?;
    if !answer.get("Reply-Text").unwrap_or("").starts_with("+OK") {
        return Err(LinkError(format!(
            "FreeSWITCH refused the event subscription: {}",
            answer.get("Reply-Text").unwrap_or("")
        )));
    }
    let (requests, mut inbox) = mpsc::channel::<Request>(64);
    *shared.requests() = Some(requests);
    let _registered = Registered(shared);
    link.up();
    tracing::info!(tenant = %shared.tenant, "FreeSWITCH event socket connected");

    let mut pending: VecDeque<Pending> = VecDeque::new();
    esl.send("api show channels as json").await.map_err(lost)?;
    pending.push_back(Pending::Resync);
    let mut held: Option<Vec<serde_json::Value>> = Some(Vec::new());
    let mut pinged = false;
    loop {
        tokio::select! {
            frame = tokio::time::timeout(SILENCE, esl.next()) => {
                let frame = match frame {
                    Err(_) => {
                        if pinged {
                            return Err(LinkError("FreeSWITCH stopped answering".into()));
                        }
                        esl.send("api status").await.map_err(lost)?;
                        pending.push_back(Pending::Ping);
                        pinged = true;
                        continue;
                    }
                    Ok(None) => return Err(LinkError("FreeSWITCH closed the event socket".into())),
                    Ok(Some(Err(e))) => return Err(lost(e)),
                    Ok(Some(Ok(frame))) => frame,
                };
                pinged = false;
                let message = match frame {
                    Frame::Message(m) => m,
                    Frame::Malformed { reason, bytes } => {
                        link.error(&format!("FreeSWITCH: skipped a malformed ESL frame ({bytes} bytes): {reason}"));
                        continue;
                    }
                };
                match message.content_type() {
                    "command/reply" | "api/response" => match pending.pop_front() {
                        Some(Pending::Resync) => {
                            let rows = Listed::rows(&message.body).map_err(|e| {
                                LinkError(format!("reading `show channels as json`: {e}"))
                            })?;
                            catch_up(shared, link, &rows).await?;
                            for event in held.take().unwrap_or_default() {
                                apply(shared, link, &event).await?;
                            }
                        }
                        Some(Pending::Command(answer)) => {
                            let _ = answer.send(Ok(message));
                        }
                        Some(Pending::Ping) | None => {}
                    },
                    "text/event-json" => {
                        let event: serde_json::Value = match serde_json::from_str(&message.body) {
                            Ok(event) => event,
                            Err(e) => {
                                link.error(&format!("FreeSWITCH: skipped an event that is not JSON: {e}"));
                                continue;
                            }
                        };
                        match held.as_mut() {
                            Some(held) => held.push(event),
                            None => apply(shared, link, &event).await?,
                        }
                    }
                    "text/disconnect-notice" => {
                        return Err(LinkError("FreeSWITCH disconnected the event socket".into()));
                    }
                    _ => {}
                }
            }
            request = inbox.recv() => {
                let Some(Request { command, answer }) = request else { continue };
                match esl.send(&command).await {
                    Ok(()) => pending.push_back(Pending::Command(answer)),
                    Err(EslError::Protocol(e)) => {
                        let _ = answer.send(Err(EslError::Protocol(e)));
                    }
                    Err(e) => {
                        let _ = answer.send(Err(e.clone()));
                        return Err(lost(e));
                    }
                }
            }
        }
    }
}

async fn apply(shared: &Shared, link: &Link, event: &serde_json::Value) -> Result<(), LinkError> {
    let now = shared.now();
    let events = shared
        .tracker()
        .apply(event, &|user| shared.rep_of(user), &now);
    deliver(shared, link, events).await
}

async fn deliver(
    shared: &Shared,
    link: &Link,
    events: Vec<TelephonyEvent>,
) -> Result<(), LinkError> {
    for event in events {
        let id = event.id.clone();
        match link.deliver(event).await {
            Ok(()) => {}
            Err(Undelivered::Closed) => return Err(LinkError("the relay is stopping".into())),
            Err(Undelivered::Failed(e)) => {
                if let Some(uuid) = id.split(':').nth(2) {
                    shared.tracker().forget(uuid);
                }
                return Err(LinkError(format!(
                    "the relay could not apply a call event: {e}"
                )));
            }
        }
    }
    Ok(())
}

async fn catch_up(shared: &Shared, link: &Link, rows: &[Listed]) -> Result<(), LinkError> {
    let now = shared.now();
    let events = shared
        .tracker()
        .resync(rows, &|user| shared.rep_of(user), &now);
    deliver(shared, link, events).await?;
    let reps = shared.reps();
    let open = shared.tracker().open_calls();
    for (call, rep) in link.live_calls(&reps).await {
        if rows.iter().any(|r| r.call == call)
            || open
                .iter()
                .any(|(c, r)| *c == call && r.eq_ignore_ascii_case(&rep))
        {
            continue;
        }
        let event = TelephonyEvent {
            id: format!("freeswitch:{call}:{rep}:gone"),
            call_id: call.clone(),
            event_type: cti_protocol::event::EventType::Ended,
            direction: cti_protocol::event::Direction::Inbound,
            from: String::new(),
            to: String::new(),
            agent: rep,
            at: now.clone(),
            transfer_to: None,
            reason: Some(cti_protocol::event::EndReason::Completed),
            recording_url: None,
        };
        deliver(shared, link, vec![event]).await?;
    }
    Ok(())
}
