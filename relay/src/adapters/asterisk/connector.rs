//! One run of the Asterisk connector: an AMI connection logged in for call events, the
//! channels of the gap read back, then events turned into call events while the rep's controls
//! go out as actions on the same connection.
//!
//! A run: connect, read the banner, `Login` with `Events: call`; report up; send
//! `CoreShowChannels` and reconcile the tracker with the channels it lists (legs that appeared
//! ring, legs that ended while the relay was away end; calls the relay still holds as live that
//! no channel carries any more end too); then serve: events become call events in order, the
//! adapter's actions are written with a fresh `ActionID` and their response handed back by it,
//! a quiet connection is pinged. Events that arrive while the list is read wait for it, so a
//! change is never applied before the snapshot it follows. A block that is not AMI is logged and
//! counted (the provider's error counter) and reading goes on; a connection that ends or stops
//! answering ends the run, and the next run logs in again and catches up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Shared;
use super::ami::{Frame, Message};
use super::client::{AmiError, Connection};
use super::mapping::Listed;
use crate::adapters::connector::Undelivered;
use crate::adapters::{Link, LinkError};
use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};

/// Silence after which the relay pings Asterisk; a second silence as long ends the run.
const SILENCE: Duration = Duration::from_secs(30);

/// An action for the connector to send, and where its response goes.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) action: Message,
    pub(crate) answer: oneshot::Sender<Result<Message, AmiError>>,
}

/// Clears the adapter's way to this run's connection when the run ends, however it ends.
struct Registered<'a>(&'a Shared);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        *self.0.actions() = None;
    }
}

pub(super) async fn run(shared: Arc<Shared>, link: Link) -> Result<(), LinkError> {
    let result = session(&shared, &link).await;
    link.down();
    if let Err(err) = &result {
        link.error(&format!("Asterisk: {err}"));
    }
    result
}

async fn session(shared: &Shared, link: &Link) -> Result<(), LinkError> {
    let mut ami = Connection::open(&shared.account(), "call")
        .await
        .map_err(|e| LinkError(e.to_string()))?;
    let (requests, mut inbox) = mpsc::channel::<Request>(64);
    *shared.actions() = Some(requests);
    let _registered = Registered(shared);
    link.up();
    tracing::info!(tenant = %shared.tenant, banner = %ami.banner, "Asterisk manager interface connected");

    let mut pending: HashMap<String, oneshot::Sender<Result<Message, AmiError>>> = HashMap::new();
    // The resync under way: its ActionID, the channels listed so far, the events held back.
    let resync_id = ami.action_id();
    let mut resync: Option<(Vec<Listed>, Vec<Message>)> = Some((Vec::new(), Vec::new()));
    let mut list = Message::action("CoreShowChannels", &[]);
    list.set("ActionID", &resync_id);
    ami.send(&list).await.map_err(lost)?;
    let mut ping: Option<String> = None;

    loop {
        tokio::select! {
            frame = tokio::time::timeout(SILENCE, ami.next()) => {
                let frame = match frame {
                    Err(_) => {
                        if ping.is_some() {
                            return Err(LinkError("Asterisk stopped answering (no answer to Ping)".into()));
                        }
                        let id = ami.action_id();
                        let mut action = Message::action("Ping", &[]);
                        action.set("ActionID", &id);
                        ami.send(&action).await.map_err(lost)?;
                        ping = Some(id);
                        continue;
                    }
                    Ok(None) => return Err(LinkError("Asterisk closed the connection".into())),
                    Ok(Some(Err(e))) => return Err(lost(e)),
                    Ok(Some(Ok(frame))) => frame,
                };
                let message = match frame {
                    Frame::Message(message) => message,
                    Frame::Malformed { reason, bytes } => {
                        link.error(&format!("Asterisk: skipped a malformed AMI message ({bytes} bytes): {reason}"));
                        continue;
                    }
                    Frame::Banner(_) => continue,
                };
                let action_id = message.get("ActionID").map(str::to_string);
                if message.response().is_some() {
                    let Some(id) = action_id else { continue };
                    if ping.as_deref() == Some(id.as_str()) {
                        ping = None;
                    } else if id == resync_id {
                        if message.response() != Some("Success") {
                            return Err(LinkError(format!(
                                "Asterisk refused CoreShowChannels: {} (the manager user needs write permission `reporting`)",
                                message.text("Message")
                            )));
                        }
                    } else if let Some(answer) = pending.remove(&id) {
                        let _ = answer.send(Ok(message));
                    }
                    continue;
                }
                ping = None;
                if action_id.as_deref() == Some(resync_id.as_str()) {
                    let Some((listed, held)) = resync.as_mut() else { continue };
                    match message.event() {
                        Some("CoreShowChannel") => listed.extend(Listed::from_event(&message)),
                        Some("CoreShowChannelsComplete") => {
                            let (listed, held) = (std::mem::take(listed), std::mem::take(held));
                            resync = None;
                            catch_up(shared, link, &listed).await?;
                            for event in held {
                                apply(shared, link, &event).await?;
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                match resync.as_mut() {
                    Some((_, held)) => held.push(message),
                    None => apply(shared, link, &message).await?,
                }
            }
            request = inbox.recv() => {
                let Some(Request { mut action, answer }) = request else { continue };
                let id = ami.action_id();
                action.set("ActionID", &id);
                match ami.send(&action).await {
                    Ok(()) => {
                        pending.insert(id, answer);
                    }
                    Err(AmiError::Protocol(e)) => {
                        let _ = answer.send(Err(AmiError::Protocol(e)));
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

fn lost(e: impl std::fmt::Display) -> LinkError {
    LinkError(e.to_string())
}

/// Applies one event and hands its call events to the relay, in order.
async fn apply(shared: &Shared, link: &Link, event: &Message) -> Result<(), LinkError> {
    let now = shared.now();
    let events = shared
        .tracker()
        .apply(event, &|endpoint| shared.rep_of(endpoint), &now);
    deliver(shared, link, events).await
}

async fn deliver(
    shared: &Shared,
    link: &Link,
    events: Vec<TelephonyEvent>,
) -> Result<(), LinkError> {
    for event in events {
        let leg = event.id.clone();
        match link.deliver(event).await {
            Ok(()) => {}
            Err(Undelivered::Closed) => return Err(LinkError("the relay is stopping".into())),
            Err(Undelivered::Failed(e)) => {
                // The next run's catch-up derives this leg's events again.
                if let Some(uniqueid) = leg.split(':').nth(2) {
                    shared.tracker().forget(uniqueid);
                }
                return Err(LinkError(format!(
                    "the relay could not apply a call event: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Reconciles with the listed channels; ends the calls the relay holds live that none carries.
async fn catch_up(shared: &Shared, link: &Link, listed: &[Listed]) -> Result<(), LinkError> {
    let now = shared.now();
    let events = shared
        .tracker()
        .resync(listed, &|endpoint| shared.rep_of(endpoint), &now);
    deliver(shared, link, events).await?;
    let reps = shared.reps();
    let open = shared.tracker().open_calls();
    for (call, rep) in link.live_calls(&reps).await {
        let carried = listed.iter().any(|l| l.linkedid == call)
            || open
                .iter()
                .any(|(c, r)| *c == call && r.eq_ignore_ascii_case(&rep));
        if carried {
            continue;
        }
        let event = TelephonyEvent {
            id: format!("asterisk:{call}:{rep}:gone"),
            call_id: call.clone(),
            event_type: EventType::Ended,
            direction: Direction::Inbound,
            from: String::new(),
            to: String::new(),
            agent: rep,
            at: now.clone(),
            transfer_to: None,
            reason: Some(EndReason::Completed),
            recording_url: None,
        };
        deliver(shared, link, vec![event]).await?;
    }
    Ok(())
}
