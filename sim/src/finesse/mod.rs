//! A simulated Cisco Finesse, under `/sim/finesse`: the relay is configured with the base
//! `{sim}/sim/finesse` (serving `/finesse/api/...`), exactly as with `https://<fqdn>:8445`.
//!
//! What it plays, after shared/reference/telephony.md section 4:
//! - the REST API in XML with HTTP Basic (agent id and password; a supervisor's account acts on
//!   every agent's dialogs, inferred), or in single sign-on mode (`SimConfig::finesse_sso`) with
//!   bearer tokens only, refusing the other scheme with 401 (reference 4.3; the refusal's
//!   wording inferred): `SystemInfo` (`xmppDomain`, `xmppPubSubDomain`),
//!   `User/{id}` (its `extension`), `User/{id}/Dialogs` (`GET`, and `POST` with `MAKE_CALL`),
//!   `Dialog/{id}` (`PUT` with `requestedAction` ANSWER, HOLD, RETRIEVE, DROP, TRANSFER_SST,
//!   CONSULT_CALL, TRANSFER), refusing what Finesse refuses with its `<ApiErrors>` shape (401,
//!   403, 404, 400 `Invalid State` when the participant's `actions` do not allow it, 400
//!   `Invalid Input`); answers 202 and tells the outcome as notifications;
//! - the Notification Service's side: each change is published as an `<Update>` (verb POST, PUT
//!   or DELETE) to every agent who sees the dialog, into their `/finesse/api/User/{id}/Dialogs`
//!   node of a real XMPP server's pubsub service, XML-escaped inside `<notification>`, as
//!   Finesse's Openfire sends it (`xmpp.rs`). No server configured: nothing is published.
//!
//! Completing a consult (`TRANSFER` on either dialog) follows the capture the reference cites
//! (`NormalTransferCall`): the first dialog lives on with the consulted party and the caller
//! (callType TRANSFER, the consulting agent's participant DROPPED), and the consult dialog is
//! deleted right after; handed to a number, the first dialog lives on with no agent to tell of
//! it until the caller or the number hangs up. Inferred where the reference is silent: a blind transfer to an agent keeps
//! the dialog's id (the new agent gets it as a `POST`), the transferring agent's participant
//! first HELD as in the same public capture's `TRANSFER_SST` scenario; a consult is a new dialog
//! (`callType` CONSULT, `associatedDialogUri` the first) seen by both agents; what the consulting
//! agent's own node is sent of a transfer (the same updates as the others', as DELETEs).
//!
//! A transfer made on the Finesse desktop (or the phone) is the same REST request the relay
//! sends: a test makes it as the agent, straight to `/sim/finesse/finesse/api/Dialog/{id}`.
//!
//! Simulator controls (not Finesse): `POST /sim/finesse/calls {"from","agent"}` rings an agent
//! (201 `{"call_id"}`), `.../{id}/hangup` is the caller hanging up, `.../{id}/answer` the agent
//! picking up on their phone (or, on an outbound call, the far end answering).

mod http;
pub mod xml;
pub(crate) mod xmpp;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::SimConfig;
pub use http::routes;
use xmpp::Publish;

/// The demo agents: Finesse id, extension, rep. Passwords are `demo-finesse-{id}`.
pub const AGENTS: [(&str, &str, &str); 4] = [
    ("1001", "7001", "alice@example.com"),
    ("1002", "7002", "bob@example.com"),
    ("1003", "7003", "carol@example.com"),
    ("1004", "7004", "dave@example.com"),
];
/// The demo supervisor's Finesse id.
pub const SUPERVISOR: &str = "2001";
/// The account the simulated Finesse publishes with on the notification service.
pub const NOTIFIER: &str = "finesse-notifier";

pub fn password_of(id: &str) -> String {
    format!("demo-finesse-{id}")
}

/// A demo account's SSO access token, for a Finesse in SSO mode (`SimConfig::finesse_sso`).
pub fn token_of(id: &str) -> String {
    format!("demo-finesse-sso-{id}")
}

/// What the notification service's account of `id` signs in with: its password, or in SSO
/// mode its token (inferred: see the relay's Finesse adapter).
pub fn xmpp_secret_of(config: &SimConfig, id: &str) -> String {
    if config.finesse_sso {
        token_of(id)
    } else {
        password_of(id)
    }
}

/// A refusal in Finesse's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

fn refuse(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        kind,
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
struct Participant {
    address: String,
    agent: Option<String>,
    state: String,
    cause: String,
    start: String,
    changed: String,
}

#[derive(Debug, Clone)]
struct Dialog {
    id: String,
    associated: Option<String>,
    from: String,
    to: String,
    dnis: String,
    call_type: String,
    state: String,
    participants: Vec<Participant>,
    /// Agents who have the dialog (got its POST and no DELETE yet).
    viewers: BTreeSet<String>,
}

impl Dialog {
    fn agent(&self, id: &str) -> Option<&Participant> {
        self.participants
            .iter()
            .find(|p| p.agent.as_deref() == Some(id))
    }

    fn agent_mut(&mut self, id: &str) -> Option<&mut Participant> {
        self.participants
            .iter_mut()
            .find(|p| p.agent.as_deref() == Some(id))
    }
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    dialogs: BTreeMap<String, Dialog>,
    last_ms: u64,
}

impl State {
    /// A timestamp later than every one before, so each state change has its own.
    fn stamp(&mut self) -> String {
        let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(0);
        self.last_ms = now.max(self.last_ms + 1);
        let at =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.last_ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.millisecond()
        )
    }

    fn new_id(&mut self) -> String {
        self.next += 1;
        format!("{}", 140_953_816 + self.next)
    }
}

/// The simulated Finesse.
#[derive(Debug)]
pub struct Finesse {
    domain: String,
    /// Single sign-on mode: bearer tokens only.
    sso: bool,
    state: Mutex<State>,
    outbox: mpsc::UnboundedSender<Publish>,
    published: AtomicU64,
}

impl Finesse {
    pub fn new(config: &SimConfig) -> Self {
        let (outbox, receiver) = mpsc::unbounded_channel();
        if let Some(addr) = &config.finesse_xmpp {
            let target = xmpp::Target {
                addr: addr.clone(),
                domain: config.finesse_xmpp_domain.clone(),
                user: NOTIFIER.into(),
                password: config.finesse_notifier_password.clone(),
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(xmpp::publisher(target, receiver))),
                Err(_) => {
                    tracing::warn!("simulated Finesse: no runtime, nothing will be published")
                }
            }
        }
        Finesse {
            domain: config.finesse_xmpp_domain.clone(),
            sso: config.finesse_sso,
            state: Mutex::new(State::default()),
            outbox,
            published: AtomicU64::new(0),
        }
    }

    fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Updates handed to the notification service so far.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::SeqCst)
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    fn publish(&self, dialog: &Dialog, agent: &str, verb: &str) {
        let source = format!("/finesse/api/User/{agent}/Dialogs");
        let update = format!(
            "<Update><data><dialogs>{}</dialogs></data><event>{verb}</event><requestId></requestId><source>{source}</source></Update>",
            dialog_xml(dialog)
        );
        self.published.fetch_add(1, Ordering::SeqCst);
        let _ = self.outbox.send(Publish {
            node: source,
            update,
        });
    }

    /// Tells every viewer the dialog's new state; viewers whose participant is gone get DELETE.
    fn tell(&self, dialog: &mut Dialog, newcomers: &[String]) {
        for agent in newcomers {
            if dialog.viewers.insert(agent.clone()) {
                self.publish(dialog, agent, "POST");
            }
        }
        let viewers: Vec<String> = dialog.viewers.iter().cloned().collect();
        for agent in viewers {
            if newcomers.contains(&agent) {
                continue;
            }
            let gone = dialog.state == "DROPPED"
                || dialog
                    .agent(&agent)
                    .is_none_or(|p| matches!(p.state.as_str(), "DROPPED" | "FAILED"));
            if gone {
                self.publish(dialog, &agent, "DELETE");
                dialog.viewers.remove(&agent);
            } else {
                self.publish(dialog, &agent, "PUT");
            }
        }
    }

    /// Stores the dialog, or forgets it when nobody sees it any more.
    fn keep(state: &mut State, dialog: Dialog) {
        if dialog.viewers.is_empty() {
            state.dialogs.remove(&dialog.id);
        } else {
            state.dialogs.insert(dialog.id.clone(), dialog);
        }
    }

    /// Rings an agent (by rep e-mail or Finesse id) from `from`: a new ACD dialog.
    pub fn ring(&self, from: &str, agent: &str) -> Result<String, ApiError> {
        let (id, ext, _) =
            agent_by(agent).ok_or_else(|| refuse(404, "Not Found", "no such agent"))?;
        let mut state = self.state();
        let stamp = state.stamp();
        let mut dialog = Dialog {
            id: state.new_id(),
            associated: None,
            from: from.to_string(),
            to: "8000".into(),
            dnis: ext.into(),
            call_type: "ACD_IN".into(),
            state: "ALERTING".into(),
            participants: vec![
                Participant {
                    address: from.to_string(),
                    agent: None,
                    state: "INITIATED".into(),
                    cause: String::new(),
                    start: stamp.clone(),
                    changed: stamp.clone(),
                },
                Participant {
                    address: ext.into(),
                    agent: Some(id.into()),
                    state: "ALERTING".into(),
                    cause: String::new(),
                    start: stamp.clone(),
                    changed: stamp,
                },
            ],
            viewers: BTreeSet::new(),
        };
        self.tell(&mut dialog, &[id.to_string()]);
        let call = dialog.id.clone();
        Self::keep(&mut state, dialog);
        Ok(call)
    }

    /// The caller (or far end) hangs up: the dialog ends for everyone.
    pub fn hang_up(&self, call: &str) -> Result<(), ApiError> {
        let mut state = self.state();
        let mut dialog = state
            .dialogs
            .remove(call)
            .ok_or_else(|| refuse(404, "Not Found", "no such dialog"))?;
        let stamp = state.stamp();
        for p in &mut dialog.participants {
            p.state = "DROPPED".into();
            p.cause = "OTHER".into();
            p.changed = stamp.clone();
        }
        dialog.state = "DROPPED".into();
        self.tell(&mut dialog, &[]);
        Ok(())
    }

    /// The ringing agent picks up on their phone, or the far end of an outbound call answers.
    pub fn answer(&self, call: &str) -> Result<(), ApiError> {
        let mut state = self.state();
        let mut dialog = state
            .dialogs
            .remove(call)
            .ok_or_else(|| refuse(404, "Not Found", "no such dialog"))?;
        let stamp = state.stamp();
        let ringing = dialog
            .participants
            .iter()
            .position(|p| p.agent.is_some() && p.state == "ALERTING");
        match ringing {
            Some(index) => dialog.participants[index].state = "ACTIVE".into(),
            None => {
                for p in &mut dialog.participants {
                    if matches!(p.state.as_str(), "ALERTING" | "INITIATED" | "INITIATING") {
                        p.state = "ACTIVE".into();
                        p.changed = stamp.clone();
                    }
                }
            }
        }
        for p in &mut dialog.participants {
            if p.agent.is_none() && p.state == "INITIATED" {
                p.state = "ACTIVE".into();
            }
            p.changed = stamp.clone();
        }
        dialog.state = "ACTIVE".into();
        self.tell(&mut dialog, &[]);
        Self::keep(&mut state, dialog);
        Ok(())
    }

    /// Whether it runs in single sign-on mode.
    pub fn sso(&self) -> bool {
        self.sso
    }

    /// Checks an SSO bearer token: the Finesse id it was issued to.
    pub fn login_bearer(&self, token: &str) -> Result<String, ApiError> {
        let user = token.strip_prefix("demo-finesse-sso-").unwrap_or("");
        let known = AGENTS.iter().any(|(id, _, _)| *id == user) || user == SUPERVISOR;
        if known {
            return Ok(user.to_string());
        }
        Err(refuse(
            401,
            "Authentication Failure",
            "invalid or expired access token",
        ))
    }

    /// Checks Basic credentials: the Finesse id they belong to.
    pub fn login(&self, user: &str, password: &str) -> Result<String, ApiError> {
        let known = AGENTS.iter().any(|(id, _, _)| *id == user) || user == SUPERVISOR;
        if known && password == password_of(user) {
            return Ok(user.to_string());
        }
        Err(refuse(
            401,
            "Authentication Failure",
            "invalid user id or password",
        ))
    }

    fn may_act_for(login: &str, agent: &str) -> Result<(), ApiError> {
        if login == agent || login == SUPERVISOR {
            return Ok(());
        }
        Err(refuse(
            403,
            "Authorization Failure",
            "the user may not act for another agent",
        ))
    }

    /// `GET /finesse/api/User/{id}/Dialogs`: the dialogs the agent is on.
    pub fn dialogs_xml(&self, login: &str, user: &str) -> Result<String, ApiError> {
        Self::may_act_for(login, user)?;
        agent_by(user).ok_or_else(|| refuse(404, "Not Found", "no such user"))?;
        let state = self.state();
        let body: String = state
            .dialogs
            .values()
            .filter(|d| d.viewers.contains(user))
            .map(dialog_xml)
            .collect();
        Ok(format!("<Dialogs>{body}</Dialogs>"))
    }

    pub fn user_xml(&self, login: &str, user: &str) -> Result<String, ApiError> {
        Self::may_act_for(login, user)?;
        let (id, ext, rep) =
            agent_by(user).ok_or_else(|| refuse(404, "Not Found", "no such user"))?;
        let first = rep.split('@').next().unwrap_or(rep);
        Ok(format!(
            "<User><dialogs>/finesse/api/User/{id}/Dialogs</dialogs><extension>{ext}</extension><firstName>{first}</firstName><lastName>Demo</lastName><loginId>{id}</loginId><loginName>{first}</loginName><roles><role>Agent</role></roles><state>READY</state><teamId>1</teamId><teamName>Demo</teamName><uri>/finesse/api/User/{id}</uri></User>"
        ))
    }

    pub fn system_info_xml(&self) -> String {
        format!(
            "<SystemInfo><currentTimestamp>{}</currentTimestamp><deploymentType>UCCX</deploymentType><status>IN_SERVICE</status><xmppDomain>{}</xmppDomain><xmppPubSubDomain>pubsub.{}</xmppPubSubDomain></SystemInfo>",
            self.state().stamp(),
            self.domain,
            self.domain
        )
    }

    /// `POST /finesse/api/User/{id}/Dialogs` with MAKE_CALL.
    pub fn make_call(&self, login: &str, user: &str, body: &str) -> Result<(), ApiError> {
        Self::may_act_for(login, user)?;
        let (id, ext, _) =
            agent_by(user).ok_or_else(|| refuse(404, "Not Found", "no such user"))?;
        let request = xml::parse(body).map_err(|e| refuse(400, "Invalid Input", e.to_string()))?;
        if request.name != "Dialog" || request.text_of("requestedAction") != "MAKE_CALL" {
            return Err(refuse(
                400,
                "Invalid Input",
                "requestedAction must be MAKE_CALL",
            ));
        }
        if request.text_of("fromAddress") != ext {
            return Err(refuse(
                400,
                "Invalid Input",
                "fromAddress must be the agent's extension",
            ));
        }
        let to = request.text_of("toAddress");
        if to.is_empty() {
            return Err(refuse(400, "Invalid Input", "toAddress is required"));
        }
        let mut state = self.state();
        if state
            .dialogs
            .values()
            .any(|d| d.agent(id).is_some_and(|p| p.state != "DROPPED"))
        {
            return Err(refuse(400, "Invalid State", "the agent is on a call"));
        }
        let stamp = state.stamp();
        let mut dialog = Dialog {
            id: state.new_id(),
            associated: None,
            from: ext.into(),
            to: to.clone(),
            dnis: String::new(),
            call_type: "OUT".into(),
            state: "INITIATED".into(),
            participants: vec![
                Participant {
                    address: ext.into(),
                    agent: Some(id.into()),
                    state: "INITIATED".into(),
                    cause: String::new(),
                    start: stamp.clone(),
                    changed: stamp.clone(),
                },
                Participant {
                    address: to,
                    agent: None,
                    state: "ALERTING".into(),
                    cause: String::new(),
                    start: stamp.clone(),
                    changed: stamp,
                },
            ],
            viewers: BTreeSet::new(),
        };
        self.tell(&mut dialog, &[id.to_string()]);
        Self::keep(&mut state, dialog);
        Ok(())
    }

    /// `PUT /finesse/api/Dialog/{id}` with a requested action.
    pub fn act(&self, login: &str, dialog_id: &str, body: &str) -> Result<(), ApiError> {
        let request = xml::parse(body).map_err(|e| refuse(400, "Invalid Input", e.to_string()))?;
        if request.name != "Dialog" {
            return Err(refuse(400, "Invalid Input", "the body must be a <Dialog>"));
        }
        let action = request.text_of("requestedAction");
        let target = request.text_of("targetMediaAddress");
        let to = request.text_of("toAddress");
        let mut state = self.state();
        let dialog = state
            .dialogs
            .get(dialog_id)
            .cloned()
            .ok_or_else(|| refuse(404, "Not Found", format!("no dialog {dialog_id}")))?;
        let agent = dialog
            .participants
            .iter()
            .find(|p| p.address == target && p.agent.is_some())
            .and_then(|p| p.agent.clone())
            .ok_or_else(|| {
                refuse(
                    400,
                    "Invalid Input",
                    "targetMediaAddress is no agent on this dialog",
                )
            })?;
        Self::may_act_for(login, &agent)?;
        let current = dialog
            .agent(&agent)
            .map(|p| p.state.clone())
            .unwrap_or_default();
        let invalid = || {
            refuse(
                400,
                "Invalid State",
                format!("{action} is not allowed while the participant is {current}"),
            )
        };
        let stamp = state.stamp();
        let mut dialog = dialog;
        let set = |dialog: &mut Dialog, agent: &str, to: &str, stamp: &str| {
            if let Some(p) = dialog.agent_mut(agent) {
                p.state = to.into();
                p.changed = stamp.into();
            }
        };
        match action.as_str() {
            "ANSWER" => {
                if current != "ALERTING" {
                    return Err(invalid());
                }
                set(&mut dialog, &agent, "ACTIVE", &stamp);
                for p in &mut dialog.participants {
                    if p.state == "INITIATED" {
                        p.state = "ACTIVE".into();
                        p.changed = stamp.clone();
                    }
                }
                dialog.state = "ACTIVE".into();
                self.tell(&mut dialog, &[]);
            }
            "HOLD" | "RETRIEVE" => {
                let (from, next) = if action == "HOLD" {
                    ("ACTIVE", "HELD")
                } else {
                    ("HELD", "ACTIVE")
                };
                if current != from {
                    return Err(invalid());
                }
                set(&mut dialog, &agent, next, &stamp);
                self.tell(&mut dialog, &[]);
            }
            "DROP" => {
                if !matches!(
                    current.as_str(),
                    "ALERTING" | "ACTIVE" | "HELD" | "INITIATED" | "INITIATING"
                ) {
                    return Err(invalid());
                }
                for p in &mut dialog.participants {
                    p.state = "DROPPED".into();
                    p.cause = "OTHER".into();
                    p.changed = stamp.clone();
                }
                dialog.state = "DROPPED".into();
                self.tell(&mut dialog, &[]);
            }
            "TRANSFER_SST" => {
                if current != "ACTIVE" || to.is_empty() {
                    return Err(invalid());
                }
                // The public capture of a TRANSFER_SST (NodeSimFinesse's `TRANSFER_SST`) shows
                // the transferring agent's participant HELD first; then it drops.
                set(&mut dialog, &agent, "HELD", &stamp);
                self.tell(&mut dialog, &[]);
                let stamp = state.stamp();
                set(&mut dialog, &agent, "DROPPED", &stamp);
                if let Some(p) = dialog.agent_mut(&agent) {
                    p.cause = "OTHER".into();
                }
                dialog.call_type = "TRANSFER".into();
                let mut newcomers = Vec::new();
                match agent_by_extension(&to) {
                    Some((other, ext, _)) => {
                        dialog.participants.push(Participant {
                            address: ext.into(),
                            agent: Some(other.into()),
                            state: "ALERTING".into(),
                            cause: String::new(),
                            start: stamp.clone(),
                            changed: stamp.clone(),
                        });
                        dialog.state = "ALERTING".into();
                        newcomers.push(other.to_string());
                    }
                    None => {
                        dialog.participants.push(Participant {
                            address: to.clone(),
                            agent: None,
                            state: "ALERTING".into(),
                            cause: String::new(),
                            start: stamp.clone(),
                            changed: stamp.clone(),
                        });
                    }
                }
                self.tell(&mut dialog, &newcomers);
                // The dropped agent's participant leaves the dialog for good.
                dialog
                    .participants
                    .retain(|p| p.agent.as_deref() != Some(agent.as_str()));
            }
            "CONSULT_CALL" => {
                if current != "ACTIVE" || to.is_empty() || dialog.associated.is_some() {
                    return Err(invalid());
                }
                set(&mut dialog, &agent, "HELD", &stamp);
                self.tell(&mut dialog, &[]);
                let ext = target.clone();
                let mut consult = Dialog {
                    id: state.new_id(),
                    associated: Some(format!("/finesse/api/Dialog/{}", dialog.id)),
                    from: ext.clone(),
                    to: to.clone(),
                    dnis: to.clone(),
                    call_type: "CONSULT".into(),
                    state: "INITIATED".into(),
                    participants: vec![Participant {
                        address: ext,
                        agent: Some(agent.clone()),
                        state: "INITIATED".into(),
                        cause: String::new(),
                        start: stamp.clone(),
                        changed: stamp.clone(),
                    }],
                    viewers: BTreeSet::new(),
                };
                let other = agent_by_extension(&to);
                consult.participants.push(Participant {
                    address: to.clone(),
                    agent: other.map(|(id, _, _)| id.to_string()),
                    state: "ALERTING".into(),
                    cause: String::new(),
                    start: stamp.clone(),
                    changed: stamp.clone(),
                });
                let mut newcomers = vec![agent.clone()];
                newcomers.extend(other.map(|(id, _, _)| id.to_string()));
                self.tell(&mut consult, &newcomers);
                Self::keep(&mut state, consult);
            }
            "TRANSFER" => {
                // Either dialog of the consult, by the consulting agent.
                let (first_id, consult_id) = match &dialog.associated {
                    Some(uri) => (last_segment(uri), dialog.id.clone()),
                    None => {
                        let consult = state
                            .dialogs
                            .values()
                            .find(|d| {
                                d.associated.as_deref().map(last_segment).as_deref()
                                    == Some(dialog.id.as_str())
                                    && d.agent(&agent).is_some()
                            })
                            .map(|d| d.id.clone())
                            .ok_or_else(invalid)?;
                        (dialog.id.clone(), consult)
                    }
                };
                let (Some(first), Some(consult)) = (
                    state.dialogs.get(&first_id).cloned(),
                    state.dialogs.get(&consult_id).cloned(),
                ) else {
                    return Err(invalid());
                };
                // Answered or still ringing: the capture shows the consulted agent ALERTING on
                // the first dialog right after the transfer.
                let consulted_ready = consult.participants.iter().any(|p| {
                    p.agent.as_deref() != Some(agent.as_str())
                        && matches!(p.state.as_str(), "ACTIVE" | "ALERTING")
                });
                if first.agent(&agent).map(|p| p.state.as_str()) != Some("HELD") || !consulted_ready
                {
                    return Err(invalid());
                }
                // The sequence of the capture the reference cites (NodeSimFinesse's
                // `NormalTransferCall`, seen from the consulted agent's node): the dialog that
                // lives on is the first one, now holding the consulted party beside the caller,
                // with the consulting agent's participant DROPPED (stateCause OTHER) and callType
                // TRANSFER; the consult dialog goes right after, callType TRANSFER, every
                // participant DROPPED, as a DELETE. Inferred: the consulting agent's own node
                // gets the same two updates, the first as a DELETE since their participant
                // dropped; the consulted party keeps the state it had on the consult.
                let mut first = first;
                let mut consult = consult;
                let joining = consult
                    .participants
                    .iter()
                    .find(|p| p.agent.as_deref() != Some(agent.as_str()) && p.state != "DROPPED")
                    .cloned();
                set(&mut first, &agent, "DROPPED", &stamp);
                if let Some(p) = first.agent_mut(&agent) {
                    p.cause = "OTHER".into();
                }
                let mut newcomers = Vec::new();
                if let Some(mut joining) = joining {
                    joining.start = stamp.clone();
                    joining.changed = stamp.clone();
                    newcomers.extend(joining.agent.clone());
                    first.participants.insert(0, joining);
                }
                first.call_type = "TRANSFER".into();
                first.state = "ACTIVE".into();
                self.tell(&mut first, &newcomers);
                first
                    .participants
                    .retain(|p| p.agent.as_deref() != Some(agent.as_str()));
                for p in &mut consult.participants {
                    p.state = "DROPPED".into();
                    p.cause = "OTHER".into();
                    p.changed = stamp.clone();
                }
                consult.call_type = "TRANSFER".into();
                consult.state = "DROPPED".into();
                self.tell(&mut consult, &[]);
                state.dialogs.remove(&consult.id);
                if first.viewers.is_empty()
                    && first.participants.iter().any(|p| p.state != "DROPPED")
                {
                    // Handed to a number: no agent is left to be told of the dialog, yet it
                    // lives on (as in the capture) while the caller and the party consulted
                    // talk, and ends when either hangs up.
                    state.dialogs.insert(first.id.clone(), first);
                } else {
                    Self::keep(&mut state, first);
                }
                return Ok(());
            }
            _ => {
                return Err(refuse(
                    400,
                    "Invalid Input",
                    format!("unknown requestedAction {action:?}"),
                ));
            }
        }
        Self::keep(&mut state, dialog);
        Ok(())
    }

    /// The ids of the dialogs under way (for tests).
    pub fn dialog_ids(&self) -> Vec<String> {
        self.state().dialogs.keys().cloned().collect()
    }
}

fn last_segment(uri: &str) -> String {
    uri.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
}

fn agent_by(key: &str) -> Option<(&'static str, &'static str, &'static str)> {
    AGENTS
        .iter()
        .copied()
        .find(|(id, _, rep)| *id == key || rep.eq_ignore_ascii_case(key))
}

fn agent_by_extension(ext: &str) -> Option<(&'static str, &'static str, &'static str)> {
    AGENTS.iter().copied().find(|(_, e, _)| *e == ext)
}

fn actions_of(p: &Participant) -> &'static [&'static str] {
    match (p.agent.is_some(), p.state.as_str()) {
        (true, "ALERTING") => &["ANSWER"],
        (true, "ACTIVE") => &["HOLD", "DROP", "TRANSFER_SST", "CONSULT_CALL", "SEND_DTMF"],
        (true, "HELD") => &["RETRIEVE", "DROP", "TRANSFER", "CONFERENCE"],
        (true, "INITIATED" | "INITIATING") => &["DROP"],
        (false, "DROPPED") | (true, _) => &[],
        (false, _) => &["UPDATE_CALL_DATA", "DROP"],
    }
}

fn dialog_xml(d: &Dialog) -> String {
    let e = xml::escape;
    let participants: String = d
        .participants
        .iter()
        .map(|p| {
            let actions: String = actions_of(p)
                .iter()
                .map(|a| format!("<action>{a}</action>"))
                .collect();
            format!(
                "<Participant><actions>{actions}</actions><mediaAddress>{}</mediaAddress><mediaAddressType>{}</mediaAddressType><startTime>{}</startTime><state>{}</state><stateCause>{}</stateCause><stateChangeTime>{}</stateChangeTime></Participant>",
                e(&p.address),
                if p.agent.is_some() { "AGENT_DEVICE" } else { "" },
                p.start,
                p.state,
                p.cause,
                p.changed
            )
        })
        .collect();
    format!(
        "<Dialog><associatedDialogUri>{}</associatedDialogUri><fromAddress>{}</fromAddress><id>{}</id><mediaProperties><DNIS>{}</DNIS><callType>{}</callType><dialedNumber>{}</dialedNumber><outboundClassification></outboundClassification><callvariables><CallVariable><name>callVariable1</name><value></value></CallVariable></callvariables></mediaProperties><mediaType>Voice</mediaType><participants>{participants}</participants><state>{}</state><toAddress>{}</toAddress><uri>/finesse/api/Dialog/{}</uri></Dialog>",
        e(d.associated.as_deref().unwrap_or("")),
        e(&d.from),
        d.id,
        e(&d.dnis),
        d.call_type,
        e(&d.to),
        d.state,
        e(&d.to),
        d.id
    )
}
