//! Cisco Finesse (UCCX, UCCE): call events from the Finesse Notification Service (XMPP pubsub),
//! call controls through the Finesse REST API (shared/reference/telephony.md section 4).
//!
//! A held provider: the [`connector`] logs in to the notification service as an XMPP client
//! ([`xmpp`]) with each agent's account, or with one supervisor account for all of them (the
//! tenant's choice), subscribes to each agent's `/finesse/api/User/{id}/Dialogs` node, and turns
//! the `<Update>`s into events ([`mapping`]). Controls are `PUT /finesse/api/Dialog/{id}` with a
//! `requestedAction` (reference 4.3), as the agent (or the supervisor), with HTTP Basic (id and
//! password) or, for a Finesse in single sign-on mode, an SSO bearer token (the tenant's
//! `finesse_auth`).
//!
//! Inferred (no source in the reference; check against a real Finesse before relying on them):
//! - with the supervisor account, the relay subscribes the supervisor to each agent's Dialogs
//!   node (the subscription request of reference 4.2) and sends controls with the supervisor's
//!   credentials;
//! - completing a consult is `TRANSFER` on the held (first) dialog, and cancelling it is `DROP`
//!   of the consult dialog followed by `RETRIEVE` of the first, as the Finesse desktop does;
//! - declining a ringing call is `DROP`;
//! - with SSO, the notification service takes the same access token in the password's place of
//!   SASL PLAIN (the Finesse EventTunnel, Cisco's own notification client, is handed only an id
//!   and a "password", and a desktop in SSO mode has no password but its token); REST takes it
//!   as `Authorization: Bearer` (reference 4.3). Tokens come from the settings (a tenants file
//!   can read them from the environment, `${NAME}`); the relay does not refresh them.

mod call_facts;
pub(crate) mod connector;
pub mod mapping;
pub mod xml;
pub mod xmpp;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cti_protocol::ws::CallCommand;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use reqwest::Method;
use serde::Deserialize;

use super::{
    AdapterError, CommandError, Context, Inbound, Ingress, Link, LinkError, SettingsError,
    TelephonyAdapter, TenantFacts,
};
use crate::adapters::call_state::AdapterState;
use crate::adapters::is_loopback_host;
use crate::calls::Leg;
use crate::secret::Secret;
use mapping::Tracker;

/// The simulator's demo passwords start with this: published in the README, so only for a
/// simulated Finesse.
const DEMO_PASSWORD_PREFIX: &str = "demo-finesse-";
/// And its demo SSO tokens (public as well: they start with the same prefix).
const DEMO_TOKEN_PREFIX: &str = "demo-finesse-sso-";
/// The resource the Finesse desktop uses: a second login with it would log the agent out there.
const RESERVED_RESOURCE: &str = "desktop";

/// Whose XMPP and REST account the relay uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Login {
    /// Each agent's own account (their Finesse id and password): one XMPP connection each.
    #[default]
    Agent,
    /// One supervisor account for every agent: one XMPP connection.
    Supervisor,
}

/// How the relay authenticates to Finesse (REST and the notification service alike).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// HTTP Basic with the account's id and password; SASL PLAIN with the same.
    #[default]
    Basic,
    /// A Finesse in single sign-on mode: the account's access token from Cisco IdS, as
    /// `Authorization: Bearer` and in SASL PLAIN's password (inferred, see the module).
    Sso,
}

/// What an account proves itself with.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Password(Secret),
    Bearer(Secret),
}

impl Credential {
    /// What goes in SASL PLAIN's password: the password, or the token in its place.
    pub(crate) fn secret(&self) -> &Secret {
        match self {
            Credential::Password(secret) | Credential::Bearer(secret) => secret,
        }
    }
}

/// One agent of the tenant.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentSettings {
    /// The rep's e-mail (their user in the relay).
    pub rep: String,
    /// The agent's Finesse password, for [`Login::Agent`] with [`Auth::Basic`].
    #[serde(default)]
    pub password: Option<Secret>,
    /// The agent's SSO access token, for [`Login::Agent`] with [`Auth::Sso`].
    #[serde(default)]
    pub token: Option<Secret>,
}

/// A tenant's Finesse.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Finesse's base (`https://finesse1.example.com:8445`), serving `/finesse/api/...`.
    pub finesse_url: String,
    /// The notification service's host; the REST host when absent.
    #[serde(default)]
    pub finesse_xmpp_host: Option<String>,
    /// Its XMPP client port (5222; STARTTLS).
    #[serde(default = "default_port")]
    pub finesse_xmpp_port: u16,
    /// The XMPP domain; read from `GET /finesse/api/SystemInfo` (`xmppDomain`) when absent.
    #[serde(default)]
    pub finesse_xmpp_domain: Option<String>,
    /// STARTTLS required (true, the default); false only for a server on loopback.
    #[serde(default = "yes")]
    pub finesse_xmpp_tls: bool,
    /// PEM certificates of the CA that signed the notification service's certificate (or the
    /// self-signed certificate itself), trusted besides the web's roots.
    #[serde(default)]
    pub finesse_xmpp_ca_pem: Option<String>,
    /// The XMPP resource the relay binds (never `desktop`).
    #[serde(default = "default_resource")]
    pub finesse_xmpp_resource: String,
    #[serde(default)]
    pub finesse_login: Login,
    /// Basic (id and password, the default) or SSO (bearer tokens).
    #[serde(default)]
    pub finesse_auth: Auth,
    /// The supervisor's Finesse id and password (or SSO token), for [`Login::Supervisor`].
    #[serde(default)]
    pub finesse_supervisor_id: Option<String>,
    #[serde(default)]
    pub finesse_supervisor_password: Option<Secret>,
    #[serde(default)]
    pub finesse_supervisor_token: Option<Secret>,
    /// Finesse user id -> the agent.
    pub finesse_agents: BTreeMap<String, AgentSettings>,
}

fn default_port() -> u16 {
    5222
}

fn yes() -> bool {
    true
}

fn default_resource() -> String {
    "cti-relay".into()
}

/// Where the demo's notification service listens on loopback: the Prosody `cargo xtask demo`
/// has the simulator start (`SIM_FINESSE_PROSODY`). Not 5222, which a Prosody or Openfire
/// installed on the machine may hold.
pub const DEMO_XMPP_PORT: u16 = 15222;

/// The simulator's agents: Finesse id, rep.
pub const DEMO_AGENTS: [(&str, &str); 4] = [
    ("1001", "alice@example.com"),
    ("1002", "bob@example.com"),
    ("1003", "carol@example.com"),
    ("1004", "dave@example.com"),
];

impl Settings {
    /// The simulated Finesse at `sim_url`, its demo agents logging in with their own accounts
    /// to a notification service on loopback's [`DEMO_XMPP_PORT`] (tests put their Prosody's port).
    pub fn demo(sim_url: &str) -> Self {
        let sim_url = sim_url.trim_end_matches('/');
        Settings {
            finesse_url: format!("{sim_url}/sim/finesse"),
            finesse_xmpp_host: Some("127.0.0.1".into()),
            finesse_xmpp_port: DEMO_XMPP_PORT,
            finesse_xmpp_domain: None,
            finesse_xmpp_tls: false,
            finesse_xmpp_ca_pem: None,
            finesse_xmpp_resource: default_resource(),
            finesse_login: Login::Agent,
            finesse_auth: Auth::Basic,
            finesse_supervisor_id: Some("2001".into()),
            finesse_supervisor_password: Some(Secret::new(format!("{DEMO_PASSWORD_PREFIX}2001"))),
            finesse_supervisor_token: Some(Secret::new(format!("{DEMO_TOKEN_PREFIX}2001"))),
            finesse_agents: DEMO_AGENTS
                .iter()
                .map(|(id, rep)| {
                    (
                        (*id).to_string(),
                        AgentSettings {
                            rep: (*rep).to_string(),
                            password: Some(Secret::new(format!("{DEMO_PASSWORD_PREFIX}{id}"))),
                            token: Some(Secret::new(format!("{DEMO_TOKEN_PREFIX}{id}"))),
                        },
                    )
                })
                .collect(),
        }
    }

    fn xmpp_host(&self) -> String {
        self.finesse_xmpp_host.clone().unwrap_or_else(|| {
            reqwest::Url::parse(&self.finesse_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default()
        })
    }

    pub(super) fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        let id = tenant.id;
        let bad = |var: &'static str, problem: String| SettingsError {
            var,
            problem: format!("tenant {id:?}: {problem}"),
        };
        let url = &self.finesse_url;
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| bad("finesse_url", format!("{url:?} is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(bad(
                "finesse_url",
                format!("{url:?} must be an http(s) URL with a host"),
            ));
        }
        let host = self.xmpp_host();
        if host.trim().is_empty() {
            return Err(bad("finesse_xmpp_host", "no host".into()));
        }
        if !self.finesse_xmpp_tls && !is_loopback_host(&host) {
            return Err(bad(
                "finesse_xmpp_tls",
                format!("XMPP without TLS is only allowed on loopback, not {host:?}"),
            ));
        }
        let resource = self.finesse_xmpp_resource.trim();
        if resource.is_empty() || resource.eq_ignore_ascii_case(RESERVED_RESOURCE) {
            return Err(bad(
                "finesse_xmpp_resource",
                format!(
                    "{resource:?}: choose a resource other than `desktop` (the Finesse desktop's)"
                ),
            ));
        }
        if let Some(pem) = &self.finesse_xmpp_ca_pem {
            use rustls::pki_types::pem::PemObject;
            let certs: Result<Vec<_>, _> =
                rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
            if !certs.is_ok_and(|c| !c.is_empty()) {
                return Err(bad(
                    "finesse_xmpp_ca_pem",
                    "must hold PEM certificates (-----BEGIN CERTIFICATE-----)".into(),
                ));
            }
        }
        if self.finesse_agents.is_empty() {
            return Err(bad(
                "finesse_agents",
                "at least one agent is required".into(),
            ));
        }
        let rest_loopback = is_loopback_host(parsed.host_str().unwrap_or(""));
        let demo = |secret: &Secret| secret.expose().starts_with(DEMO_PASSWORD_PREFIX);
        for (user, agent) in &self.finesse_agents {
            if user.trim().is_empty() || !agent.rep.contains('@') {
                return Err(bad(
                    "finesse_agents",
                    format!(
                        "{user:?} -> {:?} must map a Finesse id to a rep's e-mail",
                        agent.rep
                    ),
                ));
            }
            if self.finesse_login == Login::Agent {
                let (secret, what) = match self.finesse_auth {
                    Auth::Basic => (&agent.password, "a password"),
                    Auth::Sso => (&agent.token, "an SSO token"),
                };
                let Some(secret) = secret.as_ref().filter(|p| !p.expose().is_empty()) else {
                    return Err(bad(
                        "finesse_agents",
                        format!(
                            "agent {user:?} needs {what} with finesse_login \"agent\" and finesse_auth {:?}",
                            self.auth_name()
                        ),
                    ));
                };
                if demo(secret) && !rest_loopback {
                    return Err(bad(
                        "finesse_agents",
                        "the demo's passwords and tokens are public; use the agents' own".into(),
                    ));
                }
            }
        }
        if self.finesse_login == Login::Supervisor {
            if self
                .finesse_supervisor_id
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
            {
                return Err(bad(
                    "finesse_supervisor_id",
                    "required with finesse_login \"supervisor\"".into(),
                ));
            }
            let (secret, var) = match self.finesse_auth {
                Auth::Basic => (
                    &self.finesse_supervisor_password,
                    "finesse_supervisor_password",
                ),
                Auth::Sso => (&self.finesse_supervisor_token, "finesse_supervisor_token"),
            };
            match secret {
                Some(p) if !p.expose().is_empty() => {
                    if demo(p) && !rest_loopback {
                        return Err(bad(var, "the demo's secrets are public".into()));
                    }
                }
                _ => {
                    return Err(bad(
                        var,
                        format!(
                            "required with finesse_login \"supervisor\" and finesse_auth {:?}",
                            self.auth_name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// One REST call as `user` (or the supervisor); the answer's body.
    async fn rest(
        &self,
        http: &reqwest::Client,
        method: Method,
        path: &str,
        user: &str,
        body: Option<String>,
    ) -> Result<String, RestError> {
        let (login, credential) = self.credentials(user).ok_or_else(|| RestError::Status {
            status: 401,
            message: format!("no credentials for Finesse user {user:?}"),
        })?;
        let url = format!("{}{path}", self.finesse_url.trim_end_matches('/'));
        let request = http.request(method, &url);
        let mut request = match &credential {
            Credential::Password(password) => request.basic_auth(login, Some(password.expose())),
            Credential::Bearer(token) => request.bearer_auth(token.expose()),
        }
        .timeout(std::time::Duration::from_secs(15));
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/xml")
                .body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RestError::Unreachable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| RestError::Unreachable(e.without_url().to_string()))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        // Finesse's errors: <ApiErrors><ApiError><ErrorType/><ErrorMessage/></ApiError></ApiErrors>.
        let message = xml::parse(&text)
            .ok()
            .and_then(|root| {
                root.child("ApiError")
                    .map(|e| format!("{}: {}", e.text_of("ErrorType"), e.text_of("ErrorMessage")))
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(RestError::Status { status, message })
    }

    /// The XMPP domain and the pubsub service's: from the settings, else Finesse's
    /// `SystemInfo` read as `user`.
    pub(crate) async fn xmpp_domains(
        &self,
        http: &reqwest::Client,
        user: &str,
    ) -> Result<(String, String), String> {
        if let Some(domain) = &self.finesse_xmpp_domain {
            return Ok((domain.clone(), format!("pubsub.{domain}")));
        }
        let body = self
            .rest(http, Method::GET, "/finesse/api/SystemInfo", user, None)
            .await
            .map_err(|e| format!("reading SystemInfo: {e}"))?;
        let info = xml::parse(&body).map_err(|e| format!("reading SystemInfo: {e}"))?;
        let domain = info.text_of("xmppDomain");
        if domain.is_empty() {
            return Err("SystemInfo has no xmppDomain".into());
        }
        let pubsub = Some(info.text_of("xmppPubSubDomain"))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| format!("pubsub.{domain}"));
        Ok((domain, pubsub))
    }

    /// The notification service account `user` logs in with (the supervisor's, with that
    /// login), bound to the configured resource.
    pub(crate) fn xmpp_account(&self, user: &str, domain: &str) -> Option<xmpp::Account> {
        let (login, credential) = self.credentials(user)?;
        Some(xmpp::Account {
            host: self.xmpp_host(),
            port: self.finesse_xmpp_port,
            domain: domain.to_string(),
            user: login,
            password: credential.secret().clone(),
            resource: self.finesse_xmpp_resource.clone(),
            tls: self.finesse_xmpp_tls,
            ca_pem: self.finesse_xmpp_ca_pem.clone(),
        })
    }

    /// The admin page's connection test, as the connector starts: the first agent read over
    /// REST (as the agent, or the supervisor), the XMPP domain found, and a login to the
    /// notification service with the same account. The login binds a resource of its own
    /// (the configured one with `-test`), so it neither ends the connector's session nor the
    /// desktop's. The error says which step failed, never a password or token.
    pub(crate) async fn check_connection(&self, http: &reqwest::Client) -> Result<String, String> {
        let first = self
            .finesse_agents
            .keys()
            .next()
            .ok_or("no agents are configured")?;
        let (login, _) = self
            .credentials(first)
            .ok_or_else(|| format!("no credentials for Finesse user {first:?}"))?;
        self.rest(
            http,
            Method::GET,
            &format!("/finesse/api/User/{}", segment(first)),
            first,
            None,
        )
        .await
        .map_err(|e| format!("reading agent {first} as {login:?}: {e}"))?;
        let (domain, _) = self.xmpp_domains(http, first).await?;
        let mut account = self
            .xmpp_account(first, &domain)
            .ok_or_else(|| format!("no credentials for Finesse user {first:?}"))?;
        account.resource = format!("{}-test", account.resource);
        let (host, port) = (account.host.clone(), account.port);
        let session = xmpp::Session::connect(&account)
            .await
            .map_err(|e| format!("logging in to the notification service at {host}:{port}: {e}"))?;
        session.close().await;
        Ok(format!(
            "the REST API read agent {first} as {login:?}, and the notification service at \
             {host}:{port} (domain {domain}) accepted the same account's login"
        ))
    }

    fn auth_name(&self) -> &'static str {
        match self.finesse_auth {
            Auth::Basic => "basic",
            Auth::Sso => "sso",
        }
    }

    /// The account a user's REST calls (and, for agents, XMPP login) use: its id and what it
    /// proves itself with.
    fn credentials(&self, user: &str) -> Option<(String, Credential)> {
        let (id, password, token) = match self.finesse_login {
            Login::Agent => {
                let agent = self.finesse_agents.get(user)?;
                (user.to_string(), &agent.password, &agent.token)
            }
            Login::Supervisor => (
                self.finesse_supervisor_id.clone()?,
                &self.finesse_supervisor_password,
                &self.finesse_supervisor_token,
            ),
        };
        let credential = match self.finesse_auth {
            Auth::Basic => Credential::Password(password.clone()?),
            Auth::Sso => Credential::Bearer(token.clone()?),
        };
        Some((id, credential))
    }
}

/// Why a REST call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RestError {
    #[error("Finesse is unreachable: {0}")]
    Unreachable(String),
    #[error("Finesse answered {status}: {message}")]
    Status { status: u16, message: String },
}

/// What the adapter and its connector runs share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tenant: String,
    pub(crate) settings: Settings,
    pub(crate) context: Context,
    pub(crate) tracker: Mutex<Tracker>,
    /// Finesse user id -> extension, read from `GET /finesse/api/User/{id}`.
    extensions: Mutex<BTreeMap<String, String>>,
    /// (call, user) -> the consult's target, until it completes or is cancelled.
    consults: Mutex<BTreeMap<(String, String), String>>,
    /// The facts of a call the controls need, for every instance (see `call_facts`).
    pub(crate) call_state: AdapterState,
}

impl Shared {
    pub(crate) fn tracker(&self) -> parking_lot::MutexGuard<'_, Tracker> {
        self.tracker.lock()
    }

    pub(crate) fn now(&self) -> String {
        crate::clock::rfc3339(self.context.clock.now_ms())
    }

    /// One REST call as `user` (or the supervisor); the answer's body.
    pub(crate) async fn rest(
        &self,
        method: Method,
        path: &str,
        user: &str,
        body: Option<String>,
    ) -> Result<String, RestError> {
        self.settings
            .rest(&self.context.http, method, path, user, body)
            .await
    }

    /// The agent's extension (their device's `mediaAddress`), read once.
    pub(crate) async fn extension_of(&self, user: &str) -> Result<String, RestError> {
        if let Some(ext) = self.extensions.lock().get(user) {
            return Ok(ext.clone());
        }
        let body = self
            .rest(
                Method::GET,
                &format!("/finesse/api/User/{}", segment(user)),
                user,
                None,
            )
            .await?;
        let ext = xml::parse(&body)
            .ok()
            .map(|u| u.text_of("extension"))
            .filter(|e| !e.is_empty())
            .ok_or_else(|| RestError::Status {
                status: 200,
                message: format!("user {user:?} has no extension"),
            })?;
        self.extensions.lock().insert(user.to_string(), ext.clone());
        Ok(ext)
    }

    /// The Finesse user of a rep.
    fn user_of(&self, rep: &str) -> Option<String> {
        self.settings
            .finesse_agents
            .iter()
            .find(|(_, a)| a.rep.eq_ignore_ascii_case(rep))
            .map(|(id, _)| id.clone())
    }

    /// The rep whose agent has this extension (among those read so far).
    pub(crate) fn rep_of_extension(&self, extension: &str) -> Option<String> {
        let user = self
            .extensions
            .lock()
            .iter()
            .find(|(_, ext)| *ext == extension)
            .map(|(user, _)| user.clone())?;
        self.rep_of(&user)
    }

    /// Whether `target` is one of the tenant's reps (a transfer the relay asked for names them).
    pub(crate) fn is_rep(&self, target: &str) -> bool {
        self.user_of(target).is_some()
    }

    pub(crate) fn rep_of(&self, user: &str) -> Option<String> {
        self.settings
            .finesse_agents
            .get(user)
            .map(|a| a.rep.clone())
    }
}

/// A path segment from an id (digits and letters; anything else percent-encoded).
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn rejected(action: &'static str, status: u16, message: impl Into<String>) -> CommandError {
    CommandError::Rejected {
        action,
        status,
        message: message.into(),
    }
}

fn command_error(action: &'static str) -> impl Fn(RestError) -> CommandError {
    move |e| match e {
        RestError::Unreachable(message) => CommandError::Unreachable(message),
        RestError::Status { status, message } => rejected(action, status, message),
    }
}

#[derive(Debug)]
pub struct FinesseAdapter {
    shared: Arc<Shared>,
}

impl FinesseAdapter {
    pub fn new(settings: Settings, context: Context) -> Self {
        FinesseAdapter {
            shared: Arc::new(Shared {
                tenant: context.tenant.clone(),
                settings,
                tracker: Mutex::new(Tracker::default()),
                extensions: Mutex::default(),
                consults: Mutex::default(),
                call_state: AdapterState::local(context.clock.clone(), &context.tenant, "finesse"),
                context,
            }),
        }
    }

    /// Keeps the facts the controls need in `call_state` (the relay's store), so a rep whose
    /// widget talks to another instance than the one holding the XMPP connection is served.
    pub fn with_call_state(mut self, call_state: AdapterState) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.call_state = call_state;
        }
        self
    }

    /// `PUT /finesse/api/Dialog/{id}` with a requested action.
    async fn act(
        &self,
        user: &str,
        dialog: &str,
        requested: &str,
        to: Option<&str>,
        action: &'static str,
    ) -> Result<(), CommandError> {
        let ext = self
            .shared
            .extension_of(user)
            .await
            .map_err(command_error(action))?;
        let to = to
            .map(|to| format!("<toAddress>{}</toAddress>", xml::escape(to)))
            .unwrap_or_default();
        let body = format!(
            "<Dialog><requestedAction>{requested}</requestedAction><targetMediaAddress>{}</targetMediaAddress>{to}</Dialog>",
            xml::escape(&ext)
        );
        self.shared
            .rest(
                Method::PUT,
                &format!("/finesse/api/Dialog/{}", segment(dialog)),
                user,
                Some(body),
            )
            .await
            .map(drop)
            .map_err(command_error(action))
    }

    /// Where a transfer or consult goes: a rep's extension, else the number as given.
    async fn address_of(&self, target: &str, action: &'static str) -> Result<String, CommandError> {
        if target.contains('@') {
            let user = self
                .shared
                .user_of(target)
                .ok_or_else(|| rejected(action, 404, format!("{target} is no Finesse agent")))?;
            return self
                .shared
                .extension_of(&user)
                .await
                .map_err(command_error(action));
        }
        Ok(target.to_string())
    }
}

#[async_trait]
impl TelephonyAdapter for FinesseAdapter {
    fn provider(&self) -> &'static str {
        "finesse"
    }

    /// Finesse pushes nothing over HTTP to the relay: its events come over XMPP.
    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
        Err(AdapterError::MethodNotAllowed(request.method.clone()))
    }

    fn connector(&self, link: Link) -> Option<BoxFuture<'static, Result<(), LinkError>>> {
        Some(Box::pin(connector::run(self.shared.clone(), link)))
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        let action = command.name();
        let user = self
            .shared
            .user_of(&call.agent)
            .ok_or_else(|| rejected(action, 404, format!("{} is no Finesse agent", call.agent)))?;
        // The rep's dialog of the call (as the instance holding the connection saw it); the
        // call's id is its first dialog's.
        let known = self.shared.tracker().dialog_of(&call.id, &user);
        let dialog = match known {
            Some(dialog) => dialog,
            None => call_facts::fact(&self.shared, &call.id, "dialog", &user)
                .await
                .unwrap_or_else(|| call.id.clone()),
        };
        let key = (call.id.clone(), user.clone());
        match command {
            CallCommand::Answer => self.act(&user, &dialog, "ANSWER", None, action).await,
            CallCommand::Decline => {
                self.shared.tracker().decline_requested(&call.id, &user);
                call_facts::note(&self.shared, &call.id, "decline", &user, Some("1")).await;
                self.act(&user, &dialog, "DROP", None, action).await
            }
            CallCommand::Hangup => self.act(&user, &dialog, "DROP", None, action).await,
            CallCommand::Hold => self.act(&user, &dialog, "HOLD", None, action).await,
            CallCommand::Resume => self.act(&user, &dialog, "RETRIEVE", None, action).await,
            CallCommand::Transfer { target } => {
                let to = self.address_of(target, action).await?;
                self.shared
                    .tracker()
                    .transfer_requested(&call.id, &user, target);
                call_facts::note(&self.shared, &call.id, "transfer", &user, Some(target)).await;
                let outcome = self
                    .act(&user, &dialog, "TRANSFER_SST", Some(&to), action)
                    .await;
                if outcome.is_err() {
                    self.shared
                        .tracker()
                        .transfer_requested(&call.id, &user, "");
                    call_facts::note(&self.shared, &call.id, "transfer", &user, None).await;
                }
                outcome
            }
            CallCommand::Consult { target } => {
                let to = self.address_of(target, action).await?;
                self.act(&user, &dialog, "CONSULT_CALL", Some(&to), action)
                    .await?;
                self.shared.consults.lock().insert(key, target.clone());
                call_facts::note(
                    &self.shared,
                    &call.id,
                    "consult_target",
                    &user,
                    Some(target),
                )
                .await;
                Ok(())
            }
            CallCommand::CompleteTransfer => {
                let target = self.shared.consults.lock().get(&key).cloned();
                let target = match target {
                    Some(target) => target,
                    None => call_facts::fact(&self.shared, &call.id, "consult_target", &user)
                        .await
                        .unwrap_or_default(),
                };
                self.shared
                    .tracker()
                    .transfer_requested(&call.id, &user, &target);
                call_facts::note(&self.shared, &call.id, "transfer", &user, Some(&target)).await;
                self.act(&user, &dialog, "TRANSFER", None, action).await?;
                self.shared.consults.lock().remove(&key);
                Ok(())
            }
            CallCommand::CancelConsult => {
                let known = self.shared.tracker().consult_of(&call.id, &user);
                let consult = match known {
                    Some(consult) => Some(consult),
                    None => call_facts::fact(&self.shared, &call.id, "consult", &user).await,
                }
                .ok_or_else(|| rejected(action, 409, "no consult under way on this call"))?;
                self.act(&user, &consult, "DROP", None, action).await?;
                self.shared.consults.lock().remove(&key);
                self.act(&user, &dialog, "RETRIEVE", None, action).await
            }
            _ => Err(rejected(
                action,
                501,
                "not a call control Finesse offers here",
            )),
        }
    }

    async fn dial(&self, agent: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let user = self
            .shared
            .user_of(agent)
            .ok_or_else(|| rejected("dial", 404, format!("{agent} is no Finesse agent")))?;
        let ext = self
            .shared
            .extension_of(&user)
            .await
            .map_err(command_error("dial"))?;
        let body = format!(
            "<Dialog><requestedAction>MAKE_CALL</requestedAction><fromAddress>{}</fromAddress><toAddress>{}</toAddress></Dialog>",
            xml::escape(&ext),
            xml::escape(e164)
        );
        self.shared
            .rest(
                Method::POST,
                &format!("/finesse/api/User/{}/Dialogs", segment(&user)),
                &user,
                Some(body),
            )
            .await
            .map_err(command_error("dial"))?;
        // The dialog's id comes with its notification.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> TenantFacts<'static> {
        TenantFacts {
            id: "acme",
            v2_url: "https://my1.crm.cloud.sap",
        }
    }

    #[test]
    fn settings_read_from_the_tenants_keys_and_are_checked() {
        let settings: crate::adapters::TelephonySettings = serde_json::from_value(json!({
            "provider": "finesse",
            "finesse_url": "https://finesse1.example.com:8445",
            "finesse_agents": {"1001": {"rep": "alice@example.com", "password": "s3cret-1001"}},
        }))
        .expect("settings");
        assert!(settings.check(&facts()).is_ok());
        assert!(!format!("{settings:?}").contains("s3cret"));
        let crate::adapters::TelephonySettings::Finesse(settings) = settings else {
            panic!("finesse")
        };
        assert_eq!(settings.finesse_xmpp_port, 5222);
        assert!(settings.finesse_xmpp_tls);
        assert_eq!(settings.xmpp_host(), "finesse1.example.com");

        let mut bad = settings.clone();
        bad.finesse_xmpp_tls = false;
        assert_eq!(
            bad.check(&facts()).expect_err("plain").var,
            "finesse_xmpp_tls"
        );
        let mut bad = settings.clone();
        bad.finesse_xmpp_resource = "desktop".into();
        assert_eq!(
            bad.check(&facts()).expect_err("reserved").var,
            "finesse_xmpp_resource"
        );
        let mut bad = settings.clone();
        bad.finesse_agents.insert(
            "1002".into(),
            AgentSettings {
                rep: "bob@example.com".into(),
                password: None,
                token: None,
            },
        );
        assert_eq!(
            bad.check(&facts()).expect_err("no password").var,
            "finesse_agents"
        );
        bad.finesse_login = Login::Supervisor;
        assert_eq!(
            bad.check(&facts()).expect_err("no supervisor").var,
            "finesse_supervisor_id"
        );
        bad.finesse_supervisor_id = Some("2001".into());
        bad.finesse_supervisor_password = Some(Secret::new("x"));
        assert!(bad.check(&facts()).is_ok());
        let mut bad = settings.clone();
        bad.finesse_xmpp_ca_pem = Some("not a certificate".into());
        assert_eq!(
            bad.check(&facts()).expect_err("pem").var,
            "finesse_xmpp_ca_pem"
        );
        let mut bad = settings.clone();
        bad.finesse_url = "finesse1".into();
        assert_eq!(bad.check(&facts()).expect_err("url").var, "finesse_url");
    }

    #[test]
    fn the_demo_accounts_only_reach_a_local_simulator() {
        let demo = Settings::demo("http://127.0.0.1:8090");
        assert!(demo.check(&facts()).is_ok());
        assert_eq!(demo.finesse_url, "http://127.0.0.1:8090/sim/finesse");
        let mut far = demo.clone();
        far.finesse_url = "https://finesse1.example.com:8445".into();
        assert_eq!(
            far.check(&facts()).expect_err("public").var,
            "finesse_agents"
        );
    }

    #[test]
    fn an_sso_tenant_proves_itself_with_tokens_not_passwords() {
        let settings: crate::adapters::TelephonySettings = serde_json::from_value(json!({
            "provider": "finesse",
            "finesse_url": "https://finesse1.example.com:8445",
            "finesse_auth": "sso",
            "finesse_agents": {"1001": {"rep": "alice@example.com", "token": "eyJ-access-1001"}},
        }))
        .expect("settings");
        assert!(settings.check(&facts()).is_ok());
        assert!(!format!("{settings:?}").contains("eyJ-access"));
        let crate::adapters::TelephonySettings::Finesse(settings) = settings else {
            panic!("finesse")
        };
        let (id, credential) = settings.credentials("1001").expect("credentials");
        assert_eq!(id, "1001");
        assert!(
            matches!(&credential, Credential::Bearer(t) if t.expose() == "eyJ-access-1001"),
            "{credential:?}"
        );
        assert_eq!(credential.secret().expose(), "eyJ-access-1001");

        // A password is no token.
        let mut bad = settings.clone();
        bad.finesse_agents.insert(
            "1002".into(),
            AgentSettings {
                rep: "bob@example.com".into(),
                password: Some(Secret::new("s3cret")),
                token: None,
            },
        );
        let err = bad.check(&facts()).expect_err("no token");
        assert_eq!(err.var, "finesse_agents");
        assert!(err.problem.contains("SSO token"), "{}", err.problem);
        // The supervisor's token, not its password.
        bad.finesse_login = Login::Supervisor;
        bad.finesse_supervisor_id = Some("2001".into());
        bad.finesse_supervisor_password = Some(Secret::new("x"));
        assert_eq!(
            bad.check(&facts()).expect_err("no supervisor token").var,
            "finesse_supervisor_token"
        );
        bad.finesse_supervisor_token = Some(Secret::new("eyJ-access-2001"));
        assert!(bad.check(&facts()).is_ok());
        assert!(matches!(
            bad.credentials("1002"),
            Some((id, Credential::Bearer(_))) if id == "2001"
        ));
        // The demo's tokens are as public as its passwords.
        let mut demo = Settings::demo("http://127.0.0.1:8090");
        demo.finesse_auth = Auth::Sso;
        assert!(demo.check(&facts()).is_ok());
        demo.finesse_url = "https://finesse1.example.com:8445".into();
        assert_eq!(
            demo.check(&facts()).expect_err("public").var,
            "finesse_agents"
        );
        // Basic stays the default.
        assert!(matches!(
            Settings::demo("http://127.0.0.1:8090").credentials("1001"),
            Some((_, Credential::Password(_)))
        ));
    }

    #[test]
    fn ids_in_paths_are_escaped() {
        assert_eq!(segment("140953817"), "140953817");
        assert_eq!(segment("a/b"), "a%2Fb");
    }
}
