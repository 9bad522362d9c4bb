//! One call at the PBX and the rules it moves by: which command is allowed in which state, and
//! which events confirm it. Every change happens under the PBX's lock and queues its events in the
//! same step, so the relay sees them in the order the state changed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cti_protocol::event::generic::Body;
use cti_protocol::event::{Direction, EndReason, EventType};
use cti_protocol::ws::CallCommand;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::delivery::{Counters, DeliveryError, Outgoing};
use super::{MAX_FIELD_LEN, Pbx, PbxError, now_rfc3339};

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

#[derive(Debug)]
pub(super) struct Call {
    pub(super) created: u64,
    pub(super) id: String,
    pub(super) direction: Direction,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) agent: String,
    pub(super) state: LegState,
    pub(super) end_reason: Option<EndReason>,
    /// Whether the current rep's leg was answered, which decides `completed` over `missed`.
    pub(super) answered: bool,
    /// A colleague the current rep is consulting (ringing or talking to them, caller on hold).
    pub(super) consult: Option<Consulted>,
    pub(super) started_at: String,
    pub(super) next_event: u64,
    pub(super) counters: Arc<Counters>,
    /// The call's delivery task; `None` once the call ended and its last event is queued.
    pub(super) queue: Option<mpsc::UnboundedSender<Outgoing>>,
}

/// The consulted rep's leg of a call.
#[derive(Debug, Clone)]
pub(super) struct Consulted {
    agent: String,
    answered: bool,
}

impl Call {
    pub(super) fn info(&self) -> CallInfo {
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
    pub(super) fn emit(
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
        let event = Body {
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

    /// Ends the consulted rep's leg, if there is one.
    pub(super) fn end_consult(&mut self) {
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

impl Pbx {
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
