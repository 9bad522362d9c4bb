//! Asterisk: call events from the Asterisk Manager Interface (AMI), call controls as AMI
//! actions (shared/reference/telephony.md section 5.3).
//!
//! A held provider: the [`connector`] keeps one AMI connection per tenant, logged in as a
//! manager user with `Events: call`, and turns `Newchannel`, `Newstate`, `DialBegin`, `DialEnd`,
//! `Hold`, `Unhold`, `BlindTransfer`, `AttendedTransfer` and `Hangup` into call events
//! ([`mapping`]): the call is the `Linkedid`, a rep's leg their channel (`Uniqueid`), found by
//! its endpoint (`PJSIP/21`) in the tenant's `asterisk_endpoints`. The frames are read by
//! [`ami::AmiCodec`], apart from the connection ([`client`]).
//!
//! Controls are actions, sent on the connector's connection (their `ActionID` brings their
//! response back) or, on an instance that does not hold it, on a connection of their own:
//! `Originate` (click-to-dial: the rep's endpoint is rung, then the number dialled from the
//! tenant's context), `Hangup` (hang up; declining a ringing call is `Hangup` with cause 21,
//! call rejected), `BlindTransfer` (transfer), `Atxfer` (consult), and `Hangup` of the rep's own
//! channel to complete a consult (Asterisk completes an attended transfer when the transferer
//! hangs up) or of the consulted channel to cancel it (the rep goes back to the caller).
//! AMI has no verb to answer or hold a SIP phone's call (reference 5.3): those are done on the
//! phone, and its `Hold`/`Unhold` events still show.
//!
//! Inferred (no capture in the reference): completing and cancelling a consult by `Hangup` as
//! described; the `Atxfer` target's channel carrying the call's `Linkedid`.

pub mod ami;
pub mod client;
mod connector;
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
use ami::Message;
use client::{AmiError, Connection};
use connector::Request;
use mapping::Tracker;

/// The simulator's demo secret: published, so only for an Asterisk on loopback.
pub const DEMO_SECRET: &str = "demo-asterisk-secret";

/// A tenant's Asterisk.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The manager interface's host.
    pub asterisk_host: String,
    /// Its port: 5038 plain, 5039 with TLS (manager.conf `tlsbindport`).
    #[serde(default = "default_port")]
    pub asterisk_port: u16,
    /// TLS to the manager interface (true, the default); false only for a host on loopback.
    #[serde(default = "yes")]
    pub asterisk_tls: bool,
    /// PEM certificates of the CA that signed the manager interface's certificate.
    #[serde(default)]
    pub asterisk_ca_pem: Option<String>,
    /// The manager user (a section of manager.conf) and its secret.
    pub asterisk_username: String,
    pub asterisk_secret: Secret,
    /// The dialplan context numbers are dialled and transfers sent in.
    #[serde(default = "default_context")]
    pub asterisk_context: String,
    /// Endpoint (`PJSIP/21`) -> the rep's e-mail.
    pub asterisk_endpoints: BTreeMap<String, String>,
}

fn default_port() -> u16 {
    5038
}

fn yes() -> bool {
    true
}

fn default_context() -> String {
    "from-internal".into()
}

/// The simulator's endpoints and their reps.
pub const DEMO_ENDPOINTS: [(&str, &str); 4] = [
    ("PJSIP/21", "alice@example.com"),
    ("PJSIP/22", "bob@example.com"),
    ("PJSIP/23", "carol@example.com"),
    ("PJSIP/24", "dave@example.com"),
];

/// Whether a value may go into an AMI line as a dialplan extension or context.
fn is_dialable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '-' | '_' | '.'))
}

impl Settings {
    /// The simulated Asterisk on loopback's AMI port 5038 (tests put their own port).
    pub fn demo(_sim_url: &str) -> Self {
        Settings {
            asterisk_host: "127.0.0.1".into(),
            asterisk_port: 5038,
            asterisk_tls: false,
            asterisk_ca_pem: None,
            asterisk_username: "cti-relay".into(),
            asterisk_secret: Secret::new(DEMO_SECRET),
            asterisk_context: default_context(),
            asterisk_endpoints: DEMO_ENDPOINTS
                .iter()
                .map(|(e, r)| ((*e).to_string(), (*r).to_string()))
                .collect(),
        }
    }

    /// The admin page's connection test: logs in to the manager interface as the connector
    /// does (without events) and logs off; the banner names the server. The error says what
    /// failed (unreachable, TLS, not AMI, login refused), never the secret.
    pub(crate) async fn check_connection(&self) -> Result<String, String> {
        let connection = Connection::open(&self.account(), "off")
            .await
            .map_err(|e| e.to_string())?;
        let banner = connection.banner.clone();
        connection.close().await;
        Ok(banner)
    }

    fn account(&self) -> client::Account {
        client::Account {
            host: self.asterisk_host.trim().to_string(),
            port: self.asterisk_port,
            tls: self.asterisk_tls,
            ca_pem: self.asterisk_ca_pem.clone(),
            username: self.asterisk_username.trim().to_string(),
            secret: self.asterisk_secret.clone(),
        }
    }

    pub(super) fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        let id = tenant.id;
        let bad = |var: &'static str, problem: String| SettingsError {
            var,
            problem: format!("tenant {id:?}: {problem}"),
        };
        let host = self.asterisk_host.trim();
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(bad(
                "asterisk_host",
                format!("{host:?} must be a host name or address"),
            ));
        }
        if self.asterisk_port == 0 {
            return Err(bad("asterisk_port", "must not be 0".into()));
        }
        let loopback = is_loopback_host(host);
        if !self.asterisk_tls && !loopback {
            return Err(bad(
                "asterisk_tls",
                format!(
                    "AMI without TLS sends the secret in the clear; only allowed on loopback, not {host:?}"
                ),
            ));
        }
        if let Some(pem) = &self.asterisk_ca_pem {
            use rustls::pki_types::pem::PemObject;
            let certs: Result<Vec<_>, _> =
                rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
            if !certs.is_ok_and(|c| !c.is_empty()) {
                return Err(bad(
                    "asterisk_ca_pem",
                    "must hold PEM certificates (-----BEGIN CERTIFICATE-----)".into(),
                ));
            }
        }
        let user = self.asterisk_username.trim();
        if user.is_empty() || user.contains(['\r', '\n']) {
            return Err(bad(
                "asterisk_username",
                "a manager user is required".into(),
            ));
        }
        let secret = self.asterisk_secret.expose();
        if secret.is_empty() || secret.contains(['\r', '\n']) {
            return Err(bad(
                "asterisk_secret",
                "the manager user's secret is required (one line)".into(),
            ));
        }
        if secret == DEMO_SECRET && !loopback {
            return Err(bad(
                "asterisk_secret",
                "the demo's secret is public; use the manager user's own".into(),
            ));
        }
        if !is_dialable(&self.asterisk_context) {
            return Err(bad(
                "asterisk_context",
                format!("{:?} is not a dialplan context", self.asterisk_context),
            ));
        }
        if self.asterisk_endpoints.is_empty() {
            return Err(bad(
                "asterisk_endpoints",
                "at least one endpoint (\"PJSIP/21\": \"rep@example.com\") is required".into(),
            ));
        }
        for (endpoint, rep) in &self.asterisk_endpoints {
            let valid = endpoint
                .split_once('/')
                .is_some_and(|(tech, res)| !tech.is_empty() && is_dialable(res));
            if !valid || !rep.contains('@') {
                return Err(bad(
                    "asterisk_endpoints",
                    format!(
                        "{endpoint:?} -> {rep:?} must map an endpoint like PJSIP/21 to a rep's e-mail"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What the adapter and its connector runs share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tenant: String,
    settings: Settings,
    context: Context,
    tracker: Mutex<Tracker>,
    /// The connector's connection, while it has one on this instance.
    actions: Mutex<Option<mpsc::Sender<Request>>>,
}

impl Shared {
    pub(crate) fn tracker(&self) -> parking_lot::MutexGuard<'_, Tracker> {
        self.tracker.lock()
    }

    fn actions(&self) -> parking_lot::MutexGuard<'_, Option<mpsc::Sender<Request>>> {
        self.actions.lock()
    }

    pub(crate) fn now(&self) -> String {
        crate::clock::rfc3339(self.context.clock.now_ms())
    }

    fn account(&self) -> client::Account {
        self.settings.account()
    }

    /// The rep of an endpoint (`PJSIP/21`), compared without case as Asterisk names them.
    pub(crate) fn rep_of(&self, endpoint: &str) -> Option<String> {
        self.settings
            .asterisk_endpoints
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(endpoint))
            .map(|(_, rep)| rep.trim().to_lowercase())
    }

    /// The endpoint of a rep.
    fn endpoint_of(&self, rep: &str) -> Option<String> {
        self.settings
            .asterisk_endpoints
            .iter()
            .find(|(_, r)| r.trim().eq_ignore_ascii_case(rep.trim()))
            .map(|(e, _)| e.clone())
    }

    fn reps(&self) -> Vec<String> {
        let mut reps: Vec<String> = self
            .settings
            .asterisk_endpoints
            .values()
            .map(|r| r.trim().to_lowercase())
            .collect();
        reps.sort();
        reps.dedup();
        reps
    }

    /// Sends an action and returns its response: on the connector's connection when this
    /// instance holds it, else on a connection of its own (logged in without events).
    async fn act(&self, action: Message, name: &'static str) -> Result<Message, CommandError> {
        let held = self.actions().clone();
        let answer = match held {
            Some(sender) => {
                let (answer, response) = oneshot::channel();
                sender
                    .send(Request { action, answer })
                    .await
                    .map_err(|_| CommandError::Unreachable("the AMI connection closed".into()))?;
                tokio::time::timeout(client::TIMEOUT, response)
                    .await
                    .map_err(|_| {
                        CommandError::Unreachable("Asterisk did not answer in time".into())
                    })?
                    .map_err(|_| CommandError::Unreachable("the AMI connection closed".into()))?
            }
            None => match Connection::open(&self.account(), "off").await {
                Ok(mut connection) => {
                    let answer = connection.request(action).await;
                    connection.close().await;
                    answer
                }
                Err(e) => Err(e),
            },
        };
        let response = answer.map_err(|e| match e {
            AmiError::Protocol(message) => rejected(name, 400, message),
            other => CommandError::Unreachable(other.to_string()),
        })?;
        if response.response() == Some("Success") {
            Ok(response)
        } else {
            Err(rejected(name, 400, response.text("Message")))
        }
    }

    /// Where a transfer or consult goes: a rep's endpoint's extension, else the number as given.
    fn extension_of(&self, target: &str, action: &'static str) -> Result<String, CommandError> {
        let target = target.trim();
        if target.contains('@') {
            let endpoint = self.endpoint_of(target).ok_or_else(|| {
                rejected(action, 404, format!("{target} has no Asterisk endpoint"))
            })?;
            let (_, resource) = endpoint.split_once('/').unwrap_or(("", &endpoint));
            return Ok(resource.to_string());
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
pub struct AsteriskAdapter {
    shared: Arc<Shared>,
}

impl AsteriskAdapter {
    pub fn new(settings: Settings, context: Context) -> Self {
        AsteriskAdapter {
            shared: Arc::new(Shared {
                tenant: context.tenant.clone(),
                settings,
                context,
                tracker: Mutex::new(Tracker::default()),
                actions: Mutex::new(None),
            }),
        }
    }
}

#[async_trait]
impl TelephonyAdapter for AsteriskAdapter {
    fn provider(&self) -> &'static str {
        "asterisk"
    }

    /// Asterisk calls nothing over HTTP: its events come over AMI.
    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
        Err(AdapterError::MethodNotAllowed(request.method.clone()))
    }

    fn connector(&self, link: Link) -> Option<BoxFuture<'static, Result<(), LinkError>>> {
        Some(Box::pin(connector::run(self.shared.clone(), link)))
    }

    /// No answer and no hold: AMI has no verb for them on a SIP phone (the phone's own buttons
    /// do them, and their events still show).
    fn controls(&self) -> &'static [Control] {
        &[
            Control::Decline,
            Control::Hangup,
            Control::Transfer,
            Control::Consult,
            Control::Dial,
        ]
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        let action = command.name();
        let shared = &self.shared;
        let context = shared.settings.asterisk_context.clone();
        let (leg, channel) = shared
            .tracker()
            .channel_of(&call.id, &call.agent)
            .ok_or_else(|| rejected(action, 404, "the rep has no channel on this call"))?;
        match command {
            CallCommand::Hangup => {
                shared
                    .act(
                        Message::action("Hangup", &[("Channel", &channel), ("Cause", "16")]),
                        action,
                    )
                    .await?;
            }
            CallCommand::Decline => {
                shared.tracker().decline_requested(&leg);
                shared
                    .act(
                        Message::action("Hangup", &[("Channel", &channel), ("Cause", "21")]),
                        action,
                    )
                    .await?;
            }
            CallCommand::Transfer { target } => {
                let exten = shared.extension_of(target, action)?;
                shared.tracker().transfer_requested(&leg, target);
                let sent = shared
                    .act(
                        Message::action(
                            "BlindTransfer",
                            &[
                                ("Channel", &channel),
                                ("Exten", &exten),
                                ("Context", &context),
                            ],
                        ),
                        action,
                    )
                    .await;
                if sent.is_err() {
                    shared.tracker().transfer_requested(&leg, "");
                }
                sent?;
            }
            CallCommand::Consult { target } => {
                let exten = shared.extension_of(target, action)?;
                shared.tracker().consult_requested(&leg);
                let sent = shared
                    .act(
                        Message::action(
                            "Atxfer",
                            &[
                                ("Channel", &channel),
                                ("Exten", &exten),
                                ("Context", &context),
                            ],
                        ),
                        action,
                    )
                    .await;
                if sent.is_err() {
                    shared.tracker().consult_withdrawn(&leg);
                }
                sent?;
            }
            CallCommand::CompleteTransfer => {
                shared
                    .tracker()
                    .consult_of(&leg)
                    .ok_or_else(|| rejected(action, 409, "no consult under way on this call"))?;
                shared
                    .act(
                        Message::action("Hangup", &[("Channel", &channel), ("Cause", "16")]),
                        action,
                    )
                    .await?;
            }
            CallCommand::CancelConsult => {
                let (_, target) = shared
                    .tracker()
                    .consult_of(&leg)
                    .ok_or_else(|| rejected(action, 409, "no consult under way on this call"))?;
                shared
                    .act(
                        Message::action("Hangup", &[("Channel", &target), ("Cause", "16")]),
                        action,
                    )
                    .await?;
            }
            _ => {
                return Err(rejected(
                    action,
                    501,
                    "AMI cannot do this for a phone: use the phone's own button",
                ));
            }
        }
        Ok(())
    }

    async fn dial(&self, agent: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let shared = &self.shared;
        let endpoint = shared
            .endpoint_of(agent)
            .ok_or_else(|| rejected("dial", 404, format!("{agent} has no Asterisk endpoint")))?;
        if !is_dialable(e164) {
            return Err(rejected("dial", 400, format!("{e164:?} is not a number")));
        }
        let context = shared.settings.asterisk_context.clone();
        shared
            .act(
                Message::action(
                    "Originate",
                    &[
                        ("Channel", &endpoint),
                        ("Context", &context),
                        ("Exten", e164),
                        ("Priority", "1"),
                        ("CallerID", e164),
                        ("Async", "true"),
                    ],
                ),
                "dial",
            )
            .await?;
        // The call's Linkedid comes with its events.
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
