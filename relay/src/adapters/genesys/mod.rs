//! Genesys Cloud: call events from the notification service's WebSocket, call controls through
//! the Conversations API (shared/reference/telephony.md section 1).
//!
//! A held provider: nothing calls in ([`TelephonyAdapter::receive`] refuses every request), the
//! [`connector`] keeps the notification channels and turns their full snapshots into events
//! ([`mapping`]). The relay reaches the org with OAuth client credentials ([`api`]); which rep a
//! Genesys user is comes from the org's user directory (their e-mail) and the tenant's `agents`
//! overrides ([`Reps`]).
//!
//! Inferred (no source in the reference; check against a real org before relying on them):
//! - the consult is posted on the customer's participant with `consultingUserId` naming the rep,
//!   since the token has no user of its own;
//! - click-to-dial names the rep in `CreateCallRequest.participants[0].userId`, for the same
//!   reason (the real API places calls from the token's user);
//! - the catch-up reads the conversations under way of the tenant's reps with the analytics
//!   conversation details query (`conversationEnd` `notExists`), then each one's snapshot.

mod api;
pub(crate) mod connector;
pub mod mapping;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cti_protocol::ws::CallCommand;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::reps::Reps;
use super::{
    AdapterError, CommandError, Context, Inbound, Ingress, Link, LinkError, SettingsError,
    TelephonyAdapter, TenantFacts,
};
use crate::adapters::is_loopback;
use crate::calls::Leg;
use crate::secret::Secret;
use api::{Api, ApiError};
use mapping::{Snapshot, Tracker};

/// The simulator's demo client: published in the README, so only for a simulated org.
const DEMO_CLIENT_SECRET: &str = "demo-genesys-secret";

/// A tenant's Genesys Cloud org.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The region's API base (`https://api.mypurecloud.de`), serving `/api/v2/...`.
    pub genesys_api_url: String,
    /// The region's login base (`https://login.mypurecloud.de`), serving `/oauth/token`.
    pub genesys_login_url: String,
    /// An OAuth client with the client-credentials grant.
    pub genesys_client_id: String,
    pub genesys_client_secret: Secret,
    /// Genesys user id -> rep e-mail, where the user's e-mail in Genesys is not the rep's login.
    #[serde(default)]
    pub agents: BTreeMap<String, String>,
}

/// Asks Genesys Cloud for a client-credentials token with `settings`, as the connector does
/// first: the admin page's connection test. The error names the status and Genesys Cloud's
/// answer, never the secret.
pub(crate) async fn check_credentials(
    settings: &Settings,
    http: reqwest::Client,
) -> Result<(), String> {
    let api = Api::new(
        http,
        &settings.genesys_api_url,
        &settings.genesys_login_url,
        &settings.genesys_client_id,
        settings.genesys_client_secret.clone(),
    );
    api.token().await.map(|_| ()).map_err(|e| e.to_string())
}

impl Settings {
    /// The simulated org at `sim_url`, with the demo's public client.
    pub fn demo(sim_url: &str) -> Self {
        let sim_url = sim_url.trim_end_matches('/');
        Settings {
            genesys_api_url: format!("{sim_url}/sim/genesys"),
            genesys_login_url: format!("{sim_url}/sim/genesys/login"),
            genesys_client_id: "cti-relay-genesys".into(),
            genesys_client_secret: Secret::new(DEMO_CLIENT_SECRET),
            agents: BTreeMap::new(),
        }
    }

    pub(super) fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        let id = tenant.id;
        for (var, url) in [
            ("genesys_api_url", &self.genesys_api_url),
            ("genesys_login_url", &self.genesys_login_url),
        ] {
            let parsed = reqwest::Url::parse(url).map_err(|e| SettingsError {
                var,
                problem: format!("tenant {id:?}: {url:?} is not a URL ({e})"),
            })?;
            if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
                return Err(SettingsError {
                    var,
                    problem: format!("tenant {id:?}: {url:?} must be an http(s) URL with a host"),
                });
            }
        }
        if self.genesys_client_id.trim().is_empty() {
            return Err(SettingsError {
                var: "genesys_client_id",
                problem: format!("tenant {id:?}: the OAuth client id is required"),
            });
        }
        if self.genesys_client_secret.expose().trim().is_empty() {
            return Err(SettingsError {
                var: "genesys_client_secret",
                problem: format!("tenant {id:?}: the OAuth client secret is required"),
            });
        }
        if self.genesys_client_secret.expose() == DEMO_CLIENT_SECRET
            && !is_loopback(&self.genesys_api_url)
        {
            return Err(SettingsError {
                var: "genesys_client_secret",
                problem: format!(
                    "tenant {id:?}: the demo's client secret is public; use your org's client"
                ),
            });
        }
        for (user, rep) in &self.agents {
            if user.trim().is_empty() || !rep.contains('@') {
                return Err(SettingsError {
                    var: "agents",
                    problem: format!(
                        "tenant {id:?}: {user:?} -> {rep:?} must map a Genesys user id to a rep's e-mail"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// What the adapter and its connector runs share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tenant: String,
    pub(crate) api: Api,
    pub(crate) reps: Reps,
    pub(crate) tracker: Mutex<Tracker>,
    pub(crate) context: Context,
    pub(crate) timing: connector::Timing,
}

impl Shared {
    pub(crate) fn tracker(&self) -> parking_lot::MutexGuard<'_, Tracker> {
        self.tracker.lock()
    }

    /// Reads the whole user directory (`GET /api/v2/users`, paged) into the rep map.
    pub(crate) async fn load_directory(&self) -> Result<usize, ApiError> {
        let mut pairs = Vec::new();
        let mut page = 1;
        loop {
            let answer = self
                .api
                .call(
                    Method::GET,
                    &format!("/api/v2/users?pageSize=500&pageNumber={page}"),
                    None,
                )
                .await?;
            for user in answer["entities"].as_array().into_iter().flatten() {
                if let (Some(id), Some(email)) = (user["id"].as_str(), user["email"].as_str()) {
                    pairs.push((id.to_string(), email.to_string()));
                }
            }
            let pages = answer["pageCount"].as_u64().unwrap_or(1);
            if u64::try_from(page).unwrap_or(u64::MAX) >= pages || page >= 1_000 {
                break;
            }
            page += 1;
        }
        let count = pairs.len();
        self.reps.replace_all(pairs);
        Ok(count)
    }

    /// A conversation's current snapshot.
    pub(crate) async fn snapshot(&self, conversation: &str) -> Result<Snapshot, ApiError> {
        let body = self
            .api
            .call(
                Method::GET,
                &format!("/api/v2/conversations/calls/{}", segment(conversation)),
                None,
            )
            .await?;
        serde_json::from_value(body).map_err(|e| ApiError::Status {
            status: 200,
            message: format!("unreadable conversation: {e}"),
        })
    }

    fn now(&self) -> String {
        crate::clock::rfc3339(self.context.clock.now_ms())
    }

    /// Applies a snapshot to the tracker; the events it brings.
    pub(crate) fn apply(&self, snapshot: Snapshot) -> Vec<cti_protocol::event::TelephonyEvent> {
        let now = self.now();
        self.tracker()
            .apply(snapshot, |user| self.reps.rep_of(user), &now)
    }

    /// The Genesys user of a rep, reading the directory again if the rep is not known yet (an
    /// instance that does not run the connector has not read it).
    async fn user_of(&self, rep: &str) -> Result<Option<String>, CommandError> {
        if let Some(user) = self.reps.user_of(rep) {
            return Ok(Some(user));
        }
        self.load_directory()
            .await
            .map_err(command_error("directory"))?;
        Ok(self.reps.user_of(rep))
    }
}

/// A path segment from a provider id (ids are UUIDs; any other byte is percent-encoded).
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn command_error(action: &'static str) -> impl Fn(ApiError) -> CommandError {
    move |e| match e {
        ApiError::Unreachable(message) => CommandError::Unreachable(message),
        ApiError::Status { status, message } => CommandError::Rejected {
            action,
            status,
            message,
        },
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
pub struct GenesysAdapter {
    shared: Arc<Shared>,
}

impl GenesysAdapter {
    pub fn new(settings: Settings, context: Context) -> Self {
        let api = Api::new(
            context.http.clone(),
            &settings.genesys_api_url,
            &settings.genesys_login_url,
            &settings.genesys_client_id,
            settings.genesys_client_secret.clone(),
        );
        GenesysAdapter {
            shared: Arc::new(Shared {
                tenant: context.tenant.clone(),
                api,
                reps: Reps::new(settings.agents.clone()),
                tracker: Mutex::new(Tracker::default()),
                context,
                timing: connector::Timing::default(),
            }),
        }
    }

    /// The rep's newest live participant on the call, from what was seen, else from the
    /// conversation read now (after a restart), and the snapshot it was found in.
    async fn participant_of(
        &self,
        call: &Leg,
        action: &'static str,
    ) -> Result<(String, Snapshot), CommandError> {
        let user =
            self.shared.user_of(&call.agent).await?.ok_or_else(|| {
                rejected(action, 404, format!("{} is no Genesys user", call.agent))
            })?;
        let find = |snapshot: &Snapshot| {
            snapshot
                .participants
                .iter()
                .rev()
                .find(|p| {
                    p.user.as_ref().is_some_and(|u| u.id == user)
                        && !matches!(p.state.as_deref(), Some("disconnected" | "terminated"))
                })
                .map(|p| p.id.clone())
        };
        let seen = self.shared.tracker().last(&call.id).cloned();
        if let Some(snapshot) = seen
            && let Some(pid) = find(&snapshot)
        {
            return Ok((pid, snapshot));
        }
        let snapshot = self
            .shared
            .snapshot(&call.id)
            .await
            .map_err(command_error(action))?;
        let pid = find(&snapshot)
            .ok_or_else(|| rejected(action, 409, "the rep has no live participant on this call"))?;
        Ok((pid, snapshot))
    }

    /// The destination of a transfer or consult: a rep's Genesys user, else a phone number.
    async fn destination(&self, target: &str) -> Result<Value, CommandError> {
        if target.contains('@') {
            let user =
                self.shared.user_of(target).await?.ok_or_else(|| {
                    rejected("transfer", 404, format!("{target} is no Genesys user"))
                })?;
            return Ok(json!({"userId": user}));
        }
        Ok(json!({"address": target}))
    }

    async fn patch(
        &self,
        call: &Leg,
        pid: &str,
        body: Value,
        action: &'static str,
    ) -> Result<(), CommandError> {
        self.shared
            .api
            .call(
                Method::PATCH,
                &format!(
                    "/api/v2/conversations/calls/{}/participants/{}",
                    segment(&call.id),
                    segment(pid)
                ),
                Some(&body),
            )
            .await
            .map(drop)
            .map_err(command_error(action))
    }
}

/// The party a consult transfers: the call's customer (or external party).
fn customer_of(snapshot: &Snapshot) -> Option<String> {
    snapshot
        .participants
        .iter()
        .find(|p| {
            matches!(p.purpose.as_deref(), Some("customer" | "external"))
                && !matches!(p.state.as_deref(), Some("disconnected" | "terminated"))
        })
        .map(|p| p.id.clone())
}

#[async_trait]
impl TelephonyAdapter for GenesysAdapter {
    fn provider(&self) -> &'static str {
        "genesys"
    }

    /// Genesys pushes nothing over HTTP to the relay: its events come over the connector.
    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
        Err(AdapterError::MethodNotAllowed(request.method.clone()))
    }

    fn connector(&self, link: Link) -> Option<BoxFuture<'static, Result<(), LinkError>>> {
        Some(Box::pin(connector::run(self.shared.clone(), link)))
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        let action = command.name();
        let (pid, snapshot) = self.participant_of(call, action).await?;
        let conversation = segment(&call.id);
        match command {
            CallCommand::Answer => {
                self.patch(call, &pid, json!({"state": "connected"}), action)
                    .await
            }
            CallCommand::Decline | CallCommand::Hangup | CallCommand::CompleteTransfer => {
                // The consulting rep leaving completes a consult (the simulator's reading of
                // `transfer.consult`, inferred).
                self.patch(call, &pid, json!({"state": "disconnected"}), action)
                    .await
            }
            CallCommand::Hold => self.patch(call, &pid, json!({"held": true}), action).await,
            CallCommand::Resume => self.patch(call, &pid, json!({"held": false}), action).await,
            CallCommand::Transfer { target } => {
                let body = self.destination(target).await?;
                self.shared
                    .api
                    .call(
                        Method::POST,
                        &format!(
                            "/api/v2/conversations/calls/{conversation}/participants/{}/replace",
                            segment(&pid)
                        ),
                        Some(&body),
                    )
                    .await
                    .map(drop)
                    .map_err(command_error(action))
            }
            CallCommand::Consult { target } => {
                let customer = customer_of(&snapshot)
                    .ok_or_else(|| rejected(action, 409, "the call has no party to transfer"))?;
                let user = self
                    .shared
                    .user_of(&call.agent)
                    .await?
                    .ok_or_else(|| rejected(action, 404, "the rep is no Genesys user"))?;
                let body = json!({
                    "speakTo": "DESTINATION",
                    "destination": self.destination(target).await?,
                    "consultingUserId": user,
                });
                self.shared
                    .api
                    .call(
                        Method::POST,
                        &format!(
                            "/api/v2/conversations/calls/{conversation}/participants/{}/consult",
                            segment(&customer)
                        ),
                        Some(&body),
                    )
                    .await
                    .map(drop)
                    .map_err(command_error(action))
            }
            CallCommand::CancelConsult => {
                let customer = customer_of(&snapshot)
                    .ok_or_else(|| rejected(action, 409, "the call has no party to transfer"))?;
                self.shared
                    .api
                    .call(
                        Method::DELETE,
                        &format!(
                            "/api/v2/conversations/calls/{conversation}/participants/{}/consult",
                            segment(&customer)
                        ),
                        None,
                    )
                    .await
                    .map(drop)
                    .map_err(command_error(action))
            }
            _ => Err(rejected(
                action,
                501,
                "not a call control Genesys Cloud offers here",
            )),
        }
    }

    async fn dial(&self, agent: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let user = self
            .shared
            .user_of(agent)
            .await?
            .ok_or_else(|| rejected("dial", 404, format!("{agent} is no Genesys user")))?;
        // The rep is named as the call's first participant: the token has no user (inferred).
        let body = json!({"phoneNumber": e164, "participants": [{"userId": user}]});
        let answer = self
            .shared
            .api
            .call(Method::POST, "/api/v2/conversations/calls", Some(&body))
            .await
            .map_err(command_error("dial"))?;
        Ok(answer["id"].as_str().map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> TenantFacts<'static> {
        TenantFacts {
            id: "acme",
            v2_url: "https://my1.crm.cloud.sap",
        }
    }

    #[test]
    fn settings_read_from_the_tenants_keys_and_are_checked() {
        let settings: Settings = serde_json::from_value(json!({
            "genesys_api_url": "https://api.mypurecloud.de",
            "genesys_login_url": "https://login.mypurecloud.de",
            "genesys_client_id": "abc",
            "genesys_client_secret": "s3cret-of-acme",
            "agents": {"u-1": "alice@example.com"},
            "v2_url": "ignored: another key of the tenant"
        }))
        .expect("settings");
        assert!(settings.check(&facts()).is_ok());
        assert!(!format!("{settings:?}").contains("s3cret"));

        let mut bad = settings.clone();
        bad.genesys_api_url = "api.mypurecloud.de".into();
        assert_eq!(
            bad.check(&facts()).expect_err("no URL").var,
            "genesys_api_url"
        );
        let mut bad = settings.clone();
        bad.genesys_login_url = "ftp://login".into();
        assert_eq!(
            bad.check(&facts()).expect_err("no http").var,
            "genesys_login_url"
        );
        let mut bad = settings.clone();
        bad.genesys_client_id = " ".into();
        assert_eq!(
            bad.check(&facts()).expect_err("no id").var,
            "genesys_client_id"
        );
        let mut bad = settings.clone();
        bad.genesys_client_secret = Secret::new("");
        assert_eq!(
            bad.check(&facts()).expect_err("no secret").var,
            "genesys_client_secret"
        );
        let mut bad = settings.clone();
        bad.agents.insert("u-2".into(), "not an e-mail".into());
        assert_eq!(bad.check(&facts()).expect_err("bad agent").var, "agents");
        let missing = serde_json::from_value::<Settings>(json!({
            "genesys_api_url": "https://api.mypurecloud.de",
            "genesys_login_url": "https://login.mypurecloud.de",
            "genesys_client_id": "abc"
        }));
        assert!(missing.is_err(), "the secret is required");
    }

    #[test]
    fn a_tenant_chooses_genesys_by_its_provider_key() {
        let settings: crate::adapters::TelephonySettings = serde_json::from_value(json!({
            "provider": "genesys",
            "id": "acme",
            "genesys_api_url": "https://api.mypurecloud.de",
            "genesys_login_url": "https://login.mypurecloud.de",
            "genesys_client_id": "abc",
            "genesys_client_secret": "s3cret-of-acme",
        }))
        .expect("settings");
        assert!(settings.check(&facts()).is_ok());
        assert!(matches!(
            settings,
            crate::adapters::TelephonySettings::Genesys(ref g) if g.agents.is_empty()
        ));
    }

    #[test]
    fn the_demo_client_only_reaches_a_local_simulator() {
        let demo = Settings::demo("http://127.0.0.1:8090");
        assert!(demo.check(&facts()).is_ok());
        assert_eq!(demo.genesys_api_url, "http://127.0.0.1:8090/sim/genesys");
        let mut far = demo.clone();
        far.genesys_api_url = "https://api.mypurecloud.de".into();
        assert_eq!(
            far.check(&facts()).expect_err("public").var,
            "genesys_client_secret"
        );
    }

    #[tokio::test]
    async fn nothing_is_received_over_http() {
        let adapter = GenesysAdapter::new(
            Settings::demo("http://127.0.0.1:1"),
            Context {
                tenant: "demo".into(),
                http: reqwest::Client::new(),
                clock: Arc::new(crate::clock::SystemClock),
                forgets_before_ms: None,
            },
        );
        let headers = axum::http::HeaderMap::new();
        let outcome = adapter
            .receive(Inbound {
                method: &axum::http::Method::POST,
                headers: &headers,
                query: None,
                body: b"{}",
            })
            .await;
        assert!(matches!(outcome, Err(AdapterError::MethodNotAllowed(_))));
        assert_eq!(adapter.provider(), "genesys");
    }

    #[test]
    fn ids_in_paths_are_escaped() {
        assert_eq!(segment("2d3c1a8e-7f41"), "2d3c1a8e-7f41");
        assert_eq!(segment("a/b"), "a%2Fb");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
