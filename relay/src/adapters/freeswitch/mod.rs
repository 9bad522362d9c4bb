//! FreeSWITCH: call events from the event socket (mod_event_socket, ESL), call controls as
//! `api` commands on it (shared/reference/telephony.md section 5.5).
//!
//! A held provider: the connector keeps one event socket per tenant, subscribed to the channel
//! events in JSON, and [`mapping`] turns them into call events (the call is
//! `Channel-Call-UUID`, a rep's leg their channel, found by the user in its name). Controls:
//! `uuid_kill` (hang up; declining is `uuid_kill <uuid> CALL_REJECTED`), `uuid_hold` /
//! `uuid_hold off` (hold, resume), `uuid_transfer <uuid> -bleg <exten> XML <context>` (the
//! rep's party goes to the extension), and `bgapi originate` for click-to-dial (the rep's phone
//! rung as `user/<id>` with the variable `cti_dial`, then the number dialled in the context).
//! No answer (FreeSWITCH cannot pick up a SIP phone) and no consult (that is the `att_xfer`
//! dialplan application, run on the phone's side).
//!
//! Inferred (the reference names the commands, not their effect on a bridged call): `uuid_hold`
//! is given the rep's own leg (FreeSWITCH then plays hold music to its partner and reports
//! `CHANNEL_HOLD` for the rep's leg); `uuid_transfer -bleg` on the rep's leg moves the caller and
//! ends the rep's leg; a leg carrying the `cti_dial` variable is the relay's click-to-dial.
//!
//! The event socket has no TLS: outside loopback, the tenant must say the network to it is
//! private (`freeswitch_private_network`), e.g. a VPN or an stunnel in front of it.

mod connector;
pub mod esl;
pub mod mapping;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cti_protocol::ws::{CallCommand, Control};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::{
    AdapterError, CommandError, Context, Inbound, Ingress, Link, LinkError, SettingsError,
    TelephonyAdapter, TenantFacts,
};
use crate::adapters::is_loopback_host;
use crate::calls::Leg;
use crate::secret::Secret;
use connector::Request;
pub use connector::{Connection, EslError};
use mapping::Tracker;

/// The simulator's password (FreeSWITCH's own default is `ClueCon`).
pub const DEMO_PASSWORD: &str = "demo-freeswitch-secret";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub freeswitch_host: String,
    #[serde(default = "default_port")]
    pub freeswitch_port: u16,
    /// event_socket.conf.xml's `password`.
    pub freeswitch_password: Secret,
    /// The dialplan context (XML dialplan) numbers and transfers go to.
    #[serde(default = "default_context")]
    pub freeswitch_context: String,
    /// The event socket is plain TCP: true when the network to a non-loopback host is private.
    #[serde(default)]
    pub freeswitch_private_network: bool,
    /// Directory user (`1001`) -> the rep's e-mail.
    pub freeswitch_users: BTreeMap<String, String>,
}

fn default_port() -> u16 {
    8021
}

fn default_context() -> String {
    "default".into()
}

pub const DEMO_USERS: [(&str, &str); 4] = [
    ("1001", "alice@example.com"),
    ("1002", "bob@example.com"),
    ("1003", "carol@example.com"),
    ("1004", "dave@example.com"),
];

fn is_dialable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '-' | '_' | '.'))
}

impl Settings {
    /// The simulated FreeSWITCH on loopback's port 8021 (tests put their own port).
    pub fn demo(_sim_url: &str) -> Self {
        Settings {
            freeswitch_host: "127.0.0.1".into(),
            freeswitch_port: 8021,
            freeswitch_password: Secret::new(DEMO_PASSWORD),
            freeswitch_context: default_context(),
            freeswitch_private_network: false,
            freeswitch_users: DEMO_USERS
                .iter()
                .map(|(u, r)| ((*u).to_string(), (*r).to_string()))
                .collect(),
        }
    }

    /// The admin page's connection test: connects to the event socket and authenticates as
    /// the connector does, then leaves. The error says what failed (unreachable, not an event
    /// socket, password refused), never the password.
    pub(crate) async fn check_connection(&self) -> Result<(), String> {
        let connection = Connection::open(
            self.freeswitch_host.trim(),
            self.freeswitch_port,
            &self.freeswitch_password,
        )
        .await
        .map_err(|e| e.to_string())?;
        connection.close().await;
        Ok(())
    }

    pub(super) fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        let id = tenant.id;
        let bad = |var: &'static str, problem: String| SettingsError {
            var,
            problem: format!("tenant {id:?}: {problem}"),
        };
        let host = self.freeswitch_host.trim();
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(bad("freeswitch_host", format!("{host:?} must be a host")));
        }
        let loopback = is_loopback_host(host);
        if !loopback && !self.freeswitch_private_network {
            return Err(bad(
                "freeswitch_private_network",
                format!(
                    "the event socket has no TLS; set it to true only if the network to {host:?} is private (VPN, stunnel)"
                ),
            ));
        }
        let password = self.freeswitch_password.expose();
        if password.is_empty() || password.contains(['\r', '\n']) {
            return Err(bad("freeswitch_password", "required (one line)".into()));
        }
        if password == DEMO_PASSWORD && !loopback {
            return Err(bad(
                "freeswitch_password",
                "the demo's password is public".into(),
            ));
        }
        if !is_dialable(&self.freeswitch_context) {
            return Err(bad("freeswitch_context", "not a dialplan context".into()));
        }
        if self.freeswitch_users.is_empty() {
            return Err(bad(
                "freeswitch_users",
                "at least one user is required".into(),
            ));
        }
        for (user, rep) in &self.freeswitch_users {
            if !is_dialable(user) || !rep.contains('@') {
                return Err(bad(
                    "freeswitch_users",
                    format!("{user:?} -> {rep:?} must map a directory user to a rep's e-mail"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tenant: String,
    settings: Settings,
    context: Context,
    tracker: Mutex<Tracker>,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
}

impl Shared {
    fn tracker(&self) -> parking_lot::MutexGuard<'_, Tracker> {
        self.tracker.lock()
    }

    fn requests(&self) -> parking_lot::MutexGuard<'_, Option<mpsc::Sender<Request>>> {
        self.requests.lock()
    }

    fn now(&self) -> String {
        crate::clock::rfc3339(self.context.clock.now_ms())
    }

    fn rep_of(&self, user: &str) -> Option<String> {
        self.settings
            .freeswitch_users
            .get(user)
            .map(|r| r.trim().to_lowercase())
    }

    fn user_of(&self, rep: &str) -> Option<String> {
        self.settings
            .freeswitch_users
            .iter()
            .find(|(_, r)| r.trim().eq_ignore_ascii_case(rep.trim()))
            .map(|(u, _)| u.clone())
    }

    fn reps(&self) -> Vec<String> {
        let mut reps: Vec<String> = self
            .settings
            .freeswitch_users
            .values()
            .map(|r| r.trim().to_lowercase())
            .collect();
        reps.sort();
        reps.dedup();
        reps
    }

    /// Sends a command (on the connector's socket, else on one of its own); its reply's text.
    async fn send(&self, command: String, name: &'static str) -> Result<String, CommandError> {
        let held = self.requests().clone();
        let reply = match held {
            Some(sender) => {
                let (answer, reply) = oneshot::channel();
                sender
                    .send(Request { command, answer })
                    .await
                    .map_err(|_| CommandError::Unreachable("the event socket closed".into()))?;
                tokio::time::timeout(connector::TIMEOUT, reply)
                    .await
                    .map_err(|_| {
                        CommandError::Unreachable("FreeSWITCH did not answer in time".into())
                    })?
                    .map_err(|_| CommandError::Unreachable("the event socket closed".into()))?
            }
            None => {
                let s = &self.settings;
                match Connection::open(
                    &s.freeswitch_host,
                    s.freeswitch_port,
                    &s.freeswitch_password,
                )
                .await
                {
                    Ok(mut c) => {
                        let reply = c.command(&command).await;
                        c.close().await;
                        reply
                    }
                    Err(e) => Err(e),
                }
            }
        }
        .map_err(|e| match e {
            EslError::Protocol(m) => rejected(name, 400, m),
            other => CommandError::Unreachable(other.to_string()),
        })?;
        // `api` answers in the body, `bgapi` (and errors before it) in Reply-Text.
        let text = if reply.content_type() == "api/response" {
            reply.body.trim().to_string()
        } else {
            reply.get("Reply-Text").unwrap_or("").to_string()
        };
        if text.starts_with("+OK") {
            Ok(text)
        } else {
            Err(rejected(name, 400, text))
        }
    }

    fn extension_of(&self, target: &str, action: &'static str) -> Result<String, CommandError> {
        let target = target.trim();
        if target.contains('@') {
            return self
                .user_of(target)
                .ok_or_else(|| rejected(action, 404, format!("{target} has no FreeSWITCH user")));
        }
        let exten: String = target
            .chars()
            .filter(|c| !matches!(c, ' ' | '(' | ')'))
            .collect();
        if !is_dialable(&exten) {
            return Err(rejected(
                action,
                400,
                format!("{target:?} is not a number or extension"),
            ));
        }
        Ok(exten)
    }
}

fn rejected(action: &'static str, status: u16, message: impl Into<String>) -> CommandError {
    CommandError::Rejected {
        action,
        status,
        message: message.into(),
    }
}

#[derive(Debug)]
pub struct FreeswitchAdapter {
    shared: Arc<Shared>,
}

impl FreeswitchAdapter {
    pub fn new(settings: Settings, context: Context) -> Self {
        FreeswitchAdapter {
            shared: Arc::new(Shared {
                tenant: context.tenant.clone(),
                settings,
                context,
                tracker: Mutex::new(Tracker::default()),
                requests: Mutex::new(None),
            }),
        }
    }
}

#[async_trait]
impl TelephonyAdapter for FreeswitchAdapter {
    fn provider(&self) -> &'static str {
        "freeswitch"
    }

    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
        Err(AdapterError::MethodNotAllowed(request.method.clone()))
    }

    fn connector(&self, link: Link) -> Option<BoxFuture<'static, Result<(), LinkError>>> {
        Some(Box::pin(connector::run(self.shared.clone(), link)))
    }

    /// No answer (a SIP phone picks up itself) and no consult (`att_xfer` runs on the phone's
    /// side of the dialplan).
    fn controls(&self) -> &'static [Control] {
        &[
            Control::Decline,
            Control::Hold,
            Control::Hangup,
            Control::Transfer,
            Control::Dial,
        ]
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        let action = command.name();
        let shared = &self.shared;
        let uuid = shared
            .tracker()
            .uuid_of(&call.id, &call.agent)
            .ok_or_else(|| rejected(action, 404, "the rep has no channel on this call"))?;
        let context = shared.settings.freeswitch_context.clone();
        match command {
            CallCommand::Hangup => {
                shared.send(format!("api uuid_kill {uuid}"), action).await?;
            }
            CallCommand::Decline => {
                shared.tracker().decline_requested(&uuid);
                shared
                    .send(format!("api uuid_kill {uuid} CALL_REJECTED"), action)
                    .await?;
            }
            CallCommand::Hold => {
                shared.send(format!("api uuid_hold {uuid}"), action).await?;
            }
            CallCommand::Resume => {
                shared
                    .send(format!("api uuid_hold off {uuid}"), action)
                    .await?;
            }
            CallCommand::Transfer { target } => {
                let exten = shared.extension_of(target, action)?;
                shared.tracker().transfer_requested(&uuid, target);
                let sent = shared
                    .send(
                        format!("api uuid_transfer {uuid} -bleg {exten} XML {context}"),
                        action,
                    )
                    .await;
                if sent.is_err() {
                    shared.tracker().transfer_requested(&uuid, "");
                }
                sent?;
            }
            _ => {
                return Err(rejected(
                    action,
                    501,
                    "the event socket cannot do this for a phone: use the phone's own button",
                ));
            }
        }
        Ok(())
    }

    async fn dial(&self, agent: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let shared = &self.shared;
        let user = shared
            .user_of(agent)
            .ok_or_else(|| rejected("dial", 404, format!("{agent} has no FreeSWITCH user")))?;
        if !is_dialable(e164) {
            return Err(rejected("dial", 400, format!("{e164:?} is not a number")));
        }
        let context = &shared.settings.freeswitch_context;
        shared
            .send(
                format!(
                    "bgapi originate {{cti_dial={e164},origination_caller_id_number={e164}}}user/{user} {e164} XML {context}"
                ),
                "dial",
            )
            .await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_are_read_and_checked() {
        let facts = TenantFacts {
            id: "acme",
            v2_url: "https://my1.crm.cloud.sap",
        };
        let settings: crate::adapters::TelephonySettings = serde_json::from_value(json!({
            "provider": "freeswitch",
            "freeswitch_host": "10.0.0.5",
            "freeswitch_password": "s3cret-esl",
            "freeswitch_private_network": true,
            "freeswitch_users": {"1001": "alice@example.com"},
        }))
        .expect("settings");
        assert!(settings.check(&facts).is_ok());
        assert!(!format!("{settings:?}").contains("s3cret"));
        let crate::adapters::TelephonySettings::Freeswitch(settings) = settings else {
            panic!("freeswitch")
        };
        assert_eq!(settings.freeswitch_port, 8021);
        let mut bad = settings.clone();
        bad.freeswitch_private_network = false;
        assert_eq!(
            bad.check(&facts).expect_err("plain").var,
            "freeswitch_private_network"
        );
        let mut bad = settings.clone();
        bad.freeswitch_users
            .insert("1 2".into(), "x@example.com".into());
        assert_eq!(bad.check(&facts).expect_err("user").var, "freeswitch_users");
        assert!(Settings::demo("").check(&facts).is_ok());
    }
}
