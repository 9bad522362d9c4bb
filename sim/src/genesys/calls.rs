//! One call conversation's state machine, its participants in the shape of
//! `ConversationCallEventTopicCallMediaParticipant` (reference 1.3), and the operations the
//! Conversations API and the simulator's controls perform on it.
//!
//! Inferred where the reference is silent (marked below): which participant a disconnect or a
//! transfer touches, which `disconnectType` each side gets, and 409 for a state change the
//! participant's state does not allow.

use serde::Serialize;
use serde_json::Value;

use super::error::GcError;
use super::{State, User, now_iso};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IdRef {
    pub id: String,
}

/// A participant, serialized with exactly the reference's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub address: String,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_hold_time: Option<String>,
    pub purpose: String,
    pub state: String,
    pub initial_state: String,
    pub direction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect_type: Option<String>,
    pub held: bool,
    pub wrapup_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<IdRef>,
    pub ani: String,
    pub dnis: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consult_participant_id: Option<String>,
    pub muted: bool,
    pub recording: bool,
    pub provider: String,
    pub attributes: serde_json::Map<String, Value>,
}

/// The consultation under way on a conversation.
#[derive(Debug, Clone)]
pub(crate) struct Consult {
    /// The participant being transferred (the one the consult was posted on).
    pub(crate) object: String,
    pub(crate) consulting: String,
    pub(crate) destination: String,
    pub(crate) speak_to: String,
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub participants: Vec<Participant>,
    pub(crate) consult: Option<Consult>,
    pub(crate) created: u64,
}

/// One line of `GET /sim/genesys/calls`.
#[derive(Debug, Clone, Serialize)]
pub struct CallSummary {
    pub call_id: String,
    pub direction: String,
    pub from: String,
    pub to: String,
    /// E-mail of the rep on the newest agent participant.
    pub agent: String,
    /// That participant's state.
    pub state: String,
    pub ended: bool,
}

pub(crate) fn tel(number: &str) -> String {
    if number.starts_with("tel:") {
        number.to_string()
    } else {
        format!("tel:{number}")
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Conversation {
    /// The event body and the `GET /api/v2/conversations/calls/{id}` answer.
    pub fn body(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "maxParticipants": 10,
            "recordingState": "none",
            "participants": self.participants,
        })
    }

    pub fn ended(&self) -> bool {
        self.participants.iter().all(|p| p.state == "disconnected")
    }

    pub(crate) fn summary(&self, users: &[User]) -> CallSummary {
        let customer = self.participants.iter().find(|p| p.purpose != "agent");
        let agent = self
            .participants
            .iter()
            .rev()
            .find(|p| p.purpose == "agent");
        let email = agent
            .and_then(|p| p.user.as_ref())
            .and_then(|u| users.iter().find(|x| x.id == u.id))
            .map(|u| u.email.clone())
            .unwrap_or_default();
        CallSummary {
            call_id: self.id.clone(),
            direction: agent.map(|p| p.direction.clone()).unwrap_or_default(),
            from: customer
                .map(|p| p.ani.trim_start_matches("tel:").to_string())
                .unwrap_or_default(),
            to: customer
                .map(|p| p.dnis.trim_start_matches("tel:").to_string())
                .unwrap_or_default(),
            agent: email,
            state: agent.map(|p| p.state.clone()).unwrap_or_default(),
            ended: self.ended(),
        }
    }

    fn get(&self, pid: &str) -> Result<&Participant, GcError> {
        self.participants
            .iter()
            .find(|p| p.id == pid)
            .ok_or_else(|| GcError::NotFound(format!("participant {pid} not found")))
    }

    fn get_mut(&mut self, pid: &str) -> Result<&mut Participant, GcError> {
        self.participants
            .iter_mut()
            .find(|p| p.id == pid)
            .ok_or_else(|| GcError::NotFound(format!("participant {pid} not found")))
    }

    fn disconnect(&mut self, pid: &str, disconnect_type: &str) {
        let now = now_iso();
        if let Some(p) = self.participants.iter_mut().find(|p| p.id == pid)
            && p.state != "disconnected"
        {
            p.state = "disconnected".into();
            p.disconnect_type = Some(disconnect_type.into());
            p.end_time = Some(now);
            p.held = false;
            p.start_hold_time = None;
        }
    }

    /// Ends the call when nobody but the customer is left on it: the customer hears the other end
    /// go (`peer`, inferred).
    fn end_if_alone(&mut self) {
        let others_live = self
            .participants
            .iter()
            .any(|p| p.purpose == "agent" && p.state != "disconnected");
        if !others_live {
            let live: Vec<String> = self
                .participants
                .iter()
                .filter(|p| p.state != "disconnected")
                .map(|p| p.id.clone())
                .collect();
            for pid in live {
                self.disconnect(&pid, "peer");
            }
            self.consult = None;
        }
    }

    /// The conversation's customer (or external party of an outbound call).
    fn customer_id(&self) -> Option<String> {
        self.participants
            .iter()
            .find(|p| p.purpose == "customer" || p.purpose == "external")
            .map(|p| p.id.clone())
    }

    fn agent_participant(
        &self,
        user: &User,
        state: &str,
        direction: &str,
        ani: &str,
        dnis: &str,
    ) -> Participant {
        Participant {
            id: new_id(),
            name: Some(user.name.clone()),
            address: tel(dnis),
            start_time: now_iso(),
            connected_time: None,
            end_time: None,
            start_hold_time: None,
            purpose: "agent".into(),
            state: state.into(),
            initial_state: state.into(),
            direction: direction.into(),
            disconnect_type: None,
            held: false,
            wrapup_required: true,
            user: Some(IdRef {
                id: user.id.clone(),
            }),
            ani: tel(ani),
            dnis: tel(dnis),
            consult_participant_id: None,
            muted: false,
            recording: false,
            provider: "Edge".into(),
            attributes: serde_json::Map::new(),
        }
    }
}

fn customer(number: &str, state: &str, direction: &str, ani: &str, dnis: &str) -> Participant {
    let connected = (state == "connected").then(now_iso);
    Participant {
        id: new_id(),
        name: None,
        address: tel(number),
        start_time: now_iso(),
        connected_time: connected,
        end_time: None,
        start_hold_time: None,
        purpose: if direction == "inbound" {
            "customer".into()
        } else {
            "external".into()
        },
        state: state.into(),
        initial_state: state.into(),
        direction: direction.into(),
        disconnect_type: None,
        held: false,
        wrapup_required: false,
        user: None,
        ani: tel(ani),
        dnis: tel(dnis),
        consult_participant_id: None,
        muted: false,
        recording: false,
        provider: "Edge".into(),
        attributes: serde_json::Map::new(),
    }
}

/// `MediaParticipantRequest`: every documented field, nothing else (inferred strictness).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MediaParticipantRequest {
    pub(crate) wrapup: Option<Value>,
    pub(crate) state: Option<String>,
    pub(crate) recording: Option<bool>,
    pub(crate) muted: Option<bool>,
    pub(crate) confined: Option<bool>,
    pub(crate) held: Option<bool>,
    pub(crate) wrapup_skipped: Option<bool>,
}

/// `TransferRequest`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TransferRequest {
    pub(crate) transfer_type: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) address: Option<String>,
    pub(crate) user_name: Option<String>,
    pub(crate) queue_id: Option<String>,
    pub(crate) voicemail: Option<bool>,
}

/// `Destination` of a `ConsultTransfer`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Destination {
    pub(crate) address: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) queue_id: Option<String>,
}

/// `ConsultTransfer`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConsultTransfer {
    pub(crate) speak_to: Option<String>,
    pub(crate) destination: Destination,
    pub(crate) consulting_user_id: Option<String>,
}

/// `ConsultTransferUpdate`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConsultTransferUpdate {
    pub(crate) speak_to: String,
}

const SPEAK_TO: [&str; 4] = ["DESTINATION", "OBJECT", "BOTH", "CONFERENCE"];

/// `CreateCallRequest` (the fields the simulator takes part in; the others are accepted).
#[derive(Debug, Default, serde::Deserialize)]
#[allow(
    dead_code,
    reason = "documented fields are accepted and ignored, not refused"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateCallRequest {
    pub(crate) phone_number: Option<String>,
    pub(crate) caller_id: Option<String>,
    pub(crate) caller_id_name: Option<String>,
    pub(crate) call_from_queue_id: Option<String>,
    pub(crate) call_queue_id: Option<String>,
    pub(crate) call_user_id: Option<String>,
    pub(crate) priority: Option<i64>,
    pub(crate) language_id: Option<String>,
    pub(crate) routing_skills_ids: Option<Vec<String>>,
    pub(crate) conversation_ids: Option<Vec<String>>,
    pub(crate) participants: Option<Vec<Destination>>,
    pub(crate) uui_data: Option<String>,
    pub(crate) external_contact_id: Option<String>,
}

fn conflict(what: impl Into<String>) -> GcError {
    GcError::Conflict(what.into())
}

impl State {
    fn conversation_mut(&mut self, cid: &str) -> Result<&mut Conversation, GcError> {
        self.conversations
            .get_mut(cid)
            .ok_or_else(|| GcError::NotFound(format!("conversation {cid} not found")))
    }

    fn user(&self, id_or_email: &str) -> Option<User> {
        self.users
            .iter()
            .find(|u| u.id == id_or_email || u.email.eq_ignore_ascii_case(id_or_email))
            .cloned()
    }

    fn next_created(&mut self) -> u64 {
        self.created += 1;
        self.created
    }

    /// A customer calls the org and the call is offered to `agent` (simulator control).
    pub(crate) fn ring(&mut self, from: &str, agent: &str, did: &str) -> Result<String, GcError> {
        let user = self
            .user(agent)
            .ok_or_else(|| GcError::NotFound(format!("no user {agent:?}")))?;
        let mut conversation = Conversation {
            id: new_id(),
            participants: Vec::new(),
            consult: None,
            created: self.next_created(),
        };
        conversation
            .participants
            .push(customer(from, "connected", "inbound", from, did));
        let agent = conversation.agent_participant(&user, "alerting", "inbound", from, did);
        conversation.participants.push(agent);
        let id = conversation.id.clone();
        self.conversations.insert(id.clone(), conversation);
        self.publish(&id);
        Ok(id)
    }

    /// The customer (or far end) hangs up (simulator control).
    pub(crate) fn customer_hangup(&mut self, cid: &str) -> Result<(), GcError> {
        let conversation = self.conversation_mut(cid)?;
        if conversation.ended() {
            return Err(conflict("the conversation has ended"));
        }
        if let Some(customer) = conversation.customer_id() {
            conversation.disconnect(&customer, "endpoint");
        }
        let live: Vec<String> = conversation
            .participants
            .iter()
            .filter(|p| p.state != "disconnected")
            .map(|p| p.id.clone())
            .collect();
        for pid in live {
            conversation.disconnect(&pid, "peer");
        }
        conversation.consult = None;
        self.publish(cid);
        Ok(())
    }

    /// The far end of an outbound call answers (simulator control).
    pub(crate) fn far_end_answer(&mut self, cid: &str) -> Result<(), GcError> {
        let conversation = self.conversation_mut(cid)?;
        let now = now_iso();
        let mut changed = false;
        for p in &mut conversation.participants {
            if p.direction == "outbound" && (p.state == "dialing" || p.state == "contacting") {
                p.state = "connected".into();
                p.connected_time = Some(now.clone());
                changed = true;
            }
        }
        if !changed {
            return Err(conflict("no outbound call is dialing"));
        }
        self.publish(cid);
        Ok(())
    }

    /// `PATCH /api/v2/conversations/calls/{cid}/participants/{pid}`.
    pub(crate) fn patch_participant(
        &mut self,
        cid: &str,
        pid: &str,
        request: &MediaParticipantRequest,
    ) -> Result<(), GcError> {
        let conversation = self.conversation_mut(cid)?;
        let participant = conversation.get(pid)?.clone();
        if participant.state == "disconnected" {
            return Err(conflict(format!("participant {pid} is disconnected")));
        }
        if let Some(held) = request.held {
            if participant.state != "connected" {
                return Err(conflict(format!(
                    "participant {pid} is {}; only a connected participant can be held",
                    participant.state
                )));
            }
            let p = conversation.get_mut(pid)?;
            if p.held != held {
                p.held = held;
                p.start_hold_time = held.then(now_iso);
            }
        }
        for (flag, value) in [("muted", request.muted), ("recording", request.recording)] {
            if let Some(value) = value {
                let p = conversation.get_mut(pid)?;
                match flag {
                    "muted" => p.muted = value,
                    _ => p.recording = value,
                }
            }
        }
        match request.state.as_deref() {
            None => {}
            Some("connected") => {
                if participant.state != "alerting" {
                    return Err(conflict(format!(
                        "participant {pid} is {}; only an alerting participant can be connected",
                        participant.state
                    )));
                }
                let p = conversation.get_mut(pid)?;
                p.state = "connected".into();
                p.connected_time = Some(now_iso());
            }
            Some("disconnected") => {
                let consulting = conversation
                    .consult
                    .as_ref()
                    .is_some_and(|c| c.consulting == pid);
                let consulted = conversation
                    .consult
                    .as_ref()
                    .is_some_and(|c| c.destination == pid);
                if consulting {
                    // The consulting agent leaving completes the consult: the customer stays
                    // with the destination (`transfer.consult`, reference 1.3's table).
                    let consult = conversation.consult.take();
                    conversation.disconnect(pid, "transfer.consult");
                    if let Some(consult) = consult
                        && let Ok(object) = conversation.get_mut(&consult.object)
                    {
                        object.held = false;
                        object.start_hold_time = None;
                    }
                } else if consulted {
                    // The destination hangs up: the consult is over, the customer is back.
                    let consult = conversation.consult.take();
                    conversation.disconnect(pid, "client");
                    if let Some(consult) = consult
                        && let Ok(object) = conversation.get_mut(&consult.object)
                    {
                        object.held = false;
                        object.start_hold_time = None;
                    }
                } else {
                    conversation.disconnect(pid, "client");
                    conversation.end_if_alone();
                }
            }
            Some(other) => {
                return Err(GcError::BadRequest(format!(
                    "state {other:?} cannot be set on a call participant; use connected or \
                     disconnected"
                )));
            }
        }
        self.publish(cid);
        Ok(())
    }

    /// `POST .../participants/{pid}/replace`: a blind transfer of the agent's side to a user or
    /// an address; the agent leaves with `disconnectType` `transfer`.
    pub(crate) fn replace(
        &mut self,
        cid: &str,
        pid: &str,
        request: &TransferRequest,
    ) -> Result<(), GcError> {
        if let Some(kind) = &request.transfer_type
            && kind != "Attended"
            && kind != "Unattended"
        {
            return Err(GcError::BadRequest(format!(
                "transferType {kind:?} is not Attended or Unattended"
            )));
        }
        let target_user = match (&request.user_id, &request.user_name, &request.address) {
            (Some(id), _, _) => Some(
                self.user(id)
                    .ok_or_else(|| GcError::BadRequest(format!("userId {id:?} is not a user")))?,
            ),
            (None, Some(name), _) => Some(
                self.users
                    .iter()
                    .find(|u| u.name == *name || u.email.eq_ignore_ascii_case(name))
                    .cloned()
                    .ok_or_else(|| GcError::BadRequest(format!("userName {name:?} not found")))?,
            ),
            (None, None, Some(_)) => None,
            (None, None, None) => {
                return Err(GcError::BadRequest(
                    "a transfer needs userId, userName, address or queueId".into(),
                ));
            }
        };
        let conversation = self.conversation_mut(cid)?;
        let participant = conversation.get(pid)?.clone();
        if participant.state != "connected" {
            return Err(conflict(format!(
                "participant {pid} is {}; only a connected participant can be transferred",
                participant.state
            )));
        }
        let customer = conversation
            .customer_id()
            .and_then(|c| conversation.get(&c).ok().cloned());
        let (ani, dnis) = customer
            .map(|c| (c.ani.clone(), c.dnis.clone()))
            .unwrap_or((participant.ani.clone(), participant.dnis.clone()));
        conversation.disconnect(pid, "transfer");
        let new = match (target_user, &request.address) {
            (Some(user), _) => {
                conversation.agent_participant(&user, "alerting", "inbound", &ani, &dnis)
            }
            (None, Some(address)) => {
                let mut p = customer_like(address, &ani, &dnis);
                p.state = "contacting".into();
                p.initial_state = "contacting".into();
                p
            }
            (None, None) => return Err(GcError::BadRequest("no transfer target".into())),
        };
        conversation.participants.push(new);
        self.publish(cid);
        Ok(())
    }

    /// `POST .../participants/{pid}/consult`: `pid` is the participant to be transferred (the
    /// customer); the consulting user is named in the body, since a client-credentials token has
    /// none (inferred). The customer is held (speakTo DESTINATION) and the destination alerts with
    /// `consultParticipantId` naming the consulting agent's participant (inferred).
    pub(crate) fn consult(
        &mut self,
        cid: &str,
        pid: &str,
        request: &ConsultTransfer,
    ) -> Result<(), GcError> {
        let speak_to = request
            .speak_to
            .clone()
            .unwrap_or_else(|| "DESTINATION".into());
        if !SPEAK_TO.contains(&speak_to.as_str()) {
            return Err(GcError::BadRequest(format!(
                "speakTo {speak_to:?} is not one of {}",
                SPEAK_TO.join(", ")
            )));
        }
        let Some(consulting_user) = request.consulting_user_id.clone() else {
            return Err(GcError::BadRequest(
                "consultingUserId is required with a token of no user".into(),
            ));
        };
        let destination = &request.destination;
        let dest_user = match (&destination.user_id, &destination.address) {
            (Some(id), _) => Some(
                self.user(id)
                    .ok_or_else(|| GcError::BadRequest(format!("userId {id:?} is not a user")))?,
            ),
            (None, Some(address)) => self.user(address.trim_start_matches("tel:")),
            (None, None) => {
                return Err(GcError::BadRequest(
                    "destination needs an address or a userId".into(),
                ));
            }
        };
        let conversation = self.conversation_mut(cid)?;
        if conversation.consult.is_some() {
            return Err(conflict("a consult is already under way"));
        }
        let object = conversation.get(pid)?.clone();
        if object.state != "connected" || object.purpose == "agent" {
            return Err(conflict(format!(
                "participant {pid} is not a connected party that can be transferred"
            )));
        }
        let consulting = conversation
            .participants
            .iter()
            .find(|p| {
                p.state == "connected" && p.user.as_ref().is_some_and(|u| u.id == consulting_user)
            })
            .cloned()
            .ok_or_else(|| conflict("the consulting user is not connected on this call"))?;
        let mut new = match dest_user {
            Some(user) => conversation.agent_participant(
                &user,
                "alerting",
                "inbound",
                &object.ani,
                &object.dnis,
            ),
            None => {
                let address = destination.address.clone().unwrap_or_default();
                let mut p = customer_like(&address, &object.ani, &object.dnis);
                p.state = "contacting".into();
                p.initial_state = "contacting".into();
                p
            }
        };
        new.consult_participant_id = Some(consulting.id.clone());
        let destination_id = new.id.clone();
        conversation.participants.push(new);
        if let Ok(object) = conversation.get_mut(pid) {
            object.held = speak_to == "DESTINATION";
            object.start_hold_time = object.held.then(now_iso);
        }
        conversation.consult = Some(Consult {
            object: pid.to_string(),
            consulting: consulting.id,
            destination: destination_id,
            speak_to,
        });
        self.publish(cid);
        Ok(())
    }

    /// `PATCH .../participants/{pid}/consult`.
    pub(crate) fn consult_speak_to(
        &mut self,
        cid: &str,
        pid: &str,
        request: &ConsultTransferUpdate,
    ) -> Result<(), GcError> {
        if !SPEAK_TO.contains(&request.speak_to.as_str()) {
            return Err(GcError::BadRequest(format!(
                "speakTo {:?} is not one of {}",
                request.speak_to,
                SPEAK_TO.join(", ")
            )));
        }
        let conversation = self.conversation_mut(cid)?;
        conversation.get(pid)?;
        let Some(consult) = conversation.consult.as_mut().filter(|c| c.object == pid) else {
            return Err(GcError::NotFound(format!(
                "no consult on participant {pid}"
            )));
        };
        consult.speak_to = request.speak_to.clone();
        let held = consult.speak_to == "DESTINATION";
        if let Ok(object) = conversation.get_mut(pid) {
            object.held = held;
            object.start_hold_time = held.then(now_iso);
        }
        self.publish(cid);
        Ok(())
    }

    /// `DELETE .../participants/{pid}/consult`: the destination is dropped, the customer is back.
    pub(crate) fn consult_cancel(&mut self, cid: &str, pid: &str) -> Result<(), GcError> {
        let conversation = self.conversation_mut(cid)?;
        conversation.get(pid)?;
        let Some(consult) = conversation.consult.take_if(|c| c.object == pid) else {
            return Err(GcError::NotFound(format!(
                "no consult on participant {pid}"
            )));
        };
        conversation.disconnect(&consult.destination, "peer");
        if let Ok(object) = conversation.get_mut(pid) {
            object.held = false;
            object.start_hold_time = None;
        }
        self.publish(cid);
        Ok(())
    }

    /// `POST /api/v2/conversations/calls` on behalf of `user`: the user's side connects at once
    /// (their phone is off hook, inferred) and dials; the far end is `contacting` until the
    /// simulator's answer control.
    pub(crate) fn create_call(
        &mut self,
        user: &User,
        number: &str,
        did: &str,
    ) -> Result<String, GcError> {
        let mut conversation = Conversation {
            id: new_id(),
            participants: Vec::new(),
            consult: None,
            created: self.next_created(),
        };
        let agent = conversation.agent_participant(user, "dialing", "outbound", did, number);
        conversation.participants.push(agent);
        conversation
            .participants
            .push(customer(number, "contacting", "outbound", did, number));
        let id = conversation.id.clone();
        self.conversations.insert(id.clone(), conversation);
        self.publish(&id);
        Ok(id)
    }
}

fn customer_like(address: &str, ani: &str, dnis: &str) -> Participant {
    let mut p = customer(address, "contacting", "outbound", ani, dnis);
    p.purpose = "external".into();
    p
}
