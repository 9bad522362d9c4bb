//! Microsoft Teams: a calling bot's comms notifications in real time, call records after the
//! call, call control through Microsoft Graph v1.0 (reference section 3).
//!
//! Graph streams no ringing for ordinary users' Teams Phone calls (3.1). What works in
//! production is a calling bot under a policy-based compliance-recording policy: it receives an
//! `incoming` notification for every call of the users under the policy (an invitation to record
//! it, naming the observed rep in `incomingContext`), then the call's states (`established`,
//! `transferring`, `transferAccepted`, `terminated` with `resultInfo`). The invitation must be
//! answered within 5 s (3.4), so the relay answers it at once (`answer_invitation`), whatever
//! the rep does; the bot's call being established is then the bot joining, and the rep's own
//! answer is the rep appearing in the call's participants (a `.../participants` notification).
//! An invitation dropped unanswered (the answer failed or came late) leaves the call to its
//! call record. Those arrive at `POST /v1/tenants/{t}/telephony/teams` with a Bot Framework
//! JWT (checked: its OpenID keys, `iss`, `aud` = the bot's app id, `tid`). The same endpoint is
//! the `notificationUrl` (and `lifecycleNotificationUrl`) of a `/communications/callRecords`
//! change-notification subscription, whose `validationToken` handshake it answers and whose
//! `clientState` it checks; a call record of a call the bot never heard of is logged from the
//! record's sessions. The connector keeps that subscription: created, renewed at two thirds of
//! its life, looked at every `teams_watch_secs`, reauthorized and recreated when Graph says.
//!
//! Presence mode (`teams_mode: presence`) is for tenants without such a bot: the connector also
//! keeps a presence subscription for the watched reps (delegated, through a service account's
//! refresh token, because Graph takes presence subscriptions from users only; at most an hour,
//! renewed) and reads each notified presence; `InACall` shows the rep a call with no caller, and
//! the call record logs it (see `presence`). No controls and no click-to-dial in that mode.
//!
//! Controls: decline (reject), hang up (DELETE the call), blind transfer (`transfer`, or
//! `redirect` while it rings), consult (a call placed to the colleague, or from the rep to a
//! number) and its completion (a consultative `transfer` with `replacesCallId`) or cancel (the
//! consultation hung up),
//! click-to-dial (`POST /communications/calls`). Graph v1.0 has no hold: hold and resume are
//! refused, and the widget offers only what the provider has. Nor does it answer a user's call
//! for them (the bot's answer is its recording's): the rep answers in Teams.
//!
//! A transfer to a number (blind, redirected or consultative, through the relay) ends the call:
//! the rep's `transferred` carries a reason, so no colleague's leg is awaited. One made in the
//! Teams client names no target in Graph's notifications; the call waits for a colleague's leg,
//! and the call record, written once the call is over, tells when none came: it went to a
//! number (`Tracker::outside_handovers`, inferred). So does a transfer to a colleague who is not
//! under the recording policy (Graph does not say who is, so every Teams user is taken for a
//! rep): their leg never comes, and the record ends the wait; the call is logged as the rep's,
//! handed on.

mod graph;
mod mapping;
mod presence;
mod shared;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use cti_protocol::ws::{CallCommand, Control};
use futures_util::future::BoxFuture;
use parking_lot::{Mutex, MutexGuard};
use serde::Deserialize;
use serde_json::{Value, json};

use super::reps::Reps;
use super::rotation;
use super::{
    AdapterError, Amendment, CommandError, Context, Inbound, Ingress, Link, LinkError,
    SettingsError, TelephonyAdapter, TenantFacts,
};
use crate::adapters::call_state::AdapterState;
use crate::adapters::is_loopback;
use crate::calls::Leg;
use crate::clock::SharedClock;
use crate::secret::{Secret, mask_number};
use graph::{ApiError, BotAuth, Graph, Who};
use mapping::{PendingConsult, Tracker};
use presence::{CALL_PREFIX, PresenceCall, PresenceTracker};

/// The demo's app registration, bot and tenant at the simulator (public: only for a V2 on
/// this machine). They are the simulator's (`sim/src/teams`).
const DEMO_TENANT_ID: &str = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f";
const DEMO_CLIENT_ID: &str = "0d9a7c55-1b2e-4f3a-9c8d-7e6f5a4b3c2d";
const DEMO_CLIENT_SECRET: &str = "demo-teams-client-secret";
const DEMO_BOT_APP_ID: &str = "b07a9b1e-5c4d-4e3f-8a2b-1c0d9e8f7a6b";
const DEMO_CLIENT_STATE: &str = "demo-teams-client-state";
/// The demo service account's refresh token at the simulator (presence mode).
const DEMO_REFRESH_TOKEN: &str = "demo-teams-presence-refresh-token";

const LOGIN_URL: &str = "https://login.microsoftonline.com";
const GRAPH_URL: &str = "https://graph.microsoft.com";
/// The Bot Framework's OpenID configuration for calls to a calling bot (reference 3.3).
const OPENID_URL: &str = "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration";
const DEFAULT_WATCH_SECS: u64 = 60;
/// Graph's longest life for a callRecords subscription is 4,230 minutes; a little less.
const DEFAULT_SUBSCRIPTION_MINUTES: u64 = 4200;
/// Graph's longest life for a presence subscription is an hour; a little less.
const PRESENCE_SUBSCRIPTION_MINUTES: u64 = 55;
/// Graph's most users in one presence subscription (`$filter=id in (...)`).
const MAX_PRESENCE_USERS: usize = 650;
const MAX_FAILURES: u32 = 3;

fn default_login_url() -> String {
    LOGIN_URL.into()
}
fn default_graph_url() -> String {
    GRAPH_URL.into()
}
fn default_openid_url() -> String {
    OPENID_URL.into()
}
fn default_mode() -> String {
    "bot".into()
}

/// A tenant's Microsoft Teams, flat among the tenant's keys (`"provider": "teams"`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The customer's Entra ID tenant (directory) id.
    pub teams_tenant_id: String,
    /// The app registration's client id, and its credential: a secret, or a certificate
    /// uploaded to the registration (its PEM) with its PEM private key.
    pub teams_client_id: String,
    #[serde(default)]
    pub teams_client_secret: Secret,
    #[serde(default)]
    pub teams_client_certificate: Option<String>,
    #[serde(default)]
    pub teams_client_private_key: Option<Secret>,
    /// The calling bot's Microsoft App id: the `aud` of the Bot Framework tokens (bot mode).
    #[serde(default)]
    pub teams_bot_app_id: String,
    #[serde(default = "default_login_url")]
    pub teams_login_url: String,
    #[serde(default = "default_graph_url")]
    pub teams_graph_url: String,
    #[serde(default = "default_openid_url")]
    pub teams_openid_url: String,
    /// This relay's public URL of `POST /v1/tenants/{tenant}/telephony/teams`: the bot's
    /// calling webhook and the subscription's notification URL.
    pub teams_notification_url: String,
    /// The subscription's `clientState`, checked on every change notification.
    pub teams_client_state: Secret,
    /// The `clientState` `teams_client_state` replaces, during a rotation: notifications of a
    /// subscription made with it are still taken (with a warning) until new subscriptions
    /// replace it.
    #[serde(default)]
    pub teams_client_state_previous: Option<Secret>,
    /// `bot` (a calling bot under a compliance-recording policy: real time, controls) or
    /// `presence` (no bot: presence tells a call is on, the call record who it was).
    #[serde(default = "default_mode")]
    pub teams_mode: String,
    /// Presence mode: the reps whose presence is watched (their UPN or e-mail, or Entra user
    /// id), besides the users of `agents`.
    #[serde(default)]
    pub teams_presence_users: Vec<String>,
    /// Presence mode: the refresh token of a service account holding the delegated
    /// `Presence.Read.All` (Graph takes presence subscriptions with delegated permission only).
    #[serde(default)]
    pub teams_presence_refresh_token: Option<Secret>,
    /// Seconds between looks at the subscription.
    #[serde(default)]
    pub teams_watch_secs: Option<u64>,
    /// The subscription's life asked for, in minutes (at most 4,230).
    #[serde(default)]
    pub teams_subscription_minutes: Option<u64>,
    /// Entra user id -> rep e-mail, where a user's mail/UPN is not the rep's login.
    #[serde(default)]
    pub agents: BTreeMap<String, String>,
}

impl Settings {
    /// The simulator's tenant at `sim_url`, calling the relay at `relay_url` for `tenant`.
    pub fn demo(sim_url: &str, relay_url: &str, tenant: &str) -> Self {
        let sim = sim_url.trim_end_matches('/');
        Settings {
            teams_tenant_id: DEMO_TENANT_ID.into(),
            teams_client_id: DEMO_CLIENT_ID.into(),
            teams_client_secret: Secret::new(DEMO_CLIENT_SECRET),
            teams_client_certificate: None,
            teams_client_private_key: None,
            teams_bot_app_id: DEMO_BOT_APP_ID.into(),
            teams_login_url: format!("{sim}/sim/teams"),
            teams_graph_url: format!("{sim}/sim/teams/graph"),
            teams_openid_url: format!(
                "{sim}/sim/teams/botframework/.well-known/openidconfiguration"
            ),
            teams_notification_url: format!(
                "{}/v1/tenants/{tenant}/telephony/teams",
                relay_url.trim_end_matches('/')
            ),
            teams_client_state: Secret::new(DEMO_CLIENT_STATE),
            teams_client_state_previous: None,
            teams_mode: "bot".into(),
            teams_presence_users: Vec::new(),
            teams_presence_refresh_token: None,
            teams_watch_secs: Some(2),
            teams_subscription_minutes: None,
            agents: BTreeMap::new(),
        }
    }

    /// The demo tenant in presence mode: no bot, the demo's service account, `reps` watched.
    pub fn demo_presence(sim_url: &str, relay_url: &str, tenant: &str, reps: &[&str]) -> Self {
        Settings {
            teams_mode: "presence".into(),
            teams_bot_app_id: String::new(),
            teams_presence_users: reps.iter().map(|r| r.to_string()).collect(),
            teams_presence_refresh_token: Some(Secret::new(DEMO_REFRESH_TOKEN)),
            ..Settings::demo(sim_url, relay_url, tenant)
        }
    }

    fn presence(&self) -> bool {
        self.teams_mode == "presence"
    }

    /// The app's credential: the secret, or the certificate with its key (one of them).
    fn credential(&self) -> Result<graph::Credential, String> {
        let secret = !self.teams_client_secret.expose().is_empty();
        match (
            secret,
            &self.teams_client_certificate,
            &self.teams_client_private_key,
        ) {
            (false, Some(certificate), Some(key)) => {
                graph::Certificate::from_pem(certificate, key.expose())
                    .map(graph::Credential::Certificate)
                    .map_err(|e| format!("teams_client_certificate: {e}"))
            }
            (true, None, None) => Ok(graph::Credential::Secret(self.teams_client_secret.clone())),
            (true, _, _) => Err(
                "give a secret or a certificate (teams_client_certificate and \
                 teams_client_private_key), not both"
                    .into(),
            ),
            (false, None, None) => Err("must not be empty (or give teams_client_certificate and \
                 teams_client_private_key)"
                .into()),
            (false, _, _) => Err(
                "a certificate credential needs both teams_client_certificate and \
                 teams_client_private_key"
                    .into(),
            ),
        }
    }

    pub(super) fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        let TenantFacts { id, v2_url } = *tenant;
        let refuse = |var: &'static str, problem: String| {
            Err(SettingsError {
                var,
                problem: format!("tenant {id:?}: {problem}"),
            })
        };
        for (var, url) in [
            ("teams_login_url", &self.teams_login_url),
            ("teams_graph_url", &self.teams_graph_url),
            ("teams_openid_url", &self.teams_openid_url),
            ("teams_notification_url", &self.teams_notification_url),
        ] {
            match reqwest::Url::parse(url) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
                Ok(u) if u.scheme() == "http" && is_loopback(url) => {}
                _ => return refuse(var, format!("{url:?} is not an https URL")),
            }
        }
        let path = format!("/v1/tenants/{id}/telephony/teams");
        let own = reqwest::Url::parse(&self.teams_notification_url)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        if !own.ends_with(&path) {
            return refuse(
                "teams_notification_url",
                format!("must be this relay's public URL of {path}"),
            );
        }
        for (var, value) in [
            ("teams_tenant_id", &self.teams_tenant_id),
            ("teams_client_id", &self.teams_client_id),
        ] {
            if value.trim().is_empty() {
                return refuse(var, "must not be empty".into());
            }
        }
        match self.teams_mode.as_str() {
            "bot" if self.teams_bot_app_id.trim().is_empty() => {
                return refuse("teams_bot_app_id", "must not be empty in bot mode".into());
            }
            "bot" => {}
            "presence" => {
                if self
                    .teams_presence_refresh_token
                    .as_ref()
                    .is_none_or(|t| t.expose().is_empty())
                {
                    return refuse(
                        "teams_presence_refresh_token",
                        "presence mode needs a service account's refresh token (Graph takes \
                         presence subscriptions with delegated Presence.Read.All only)"
                            .into(),
                    );
                }
                let watched = self.teams_presence_users.len() + self.agents.len();
                if watched == 0 {
                    return refuse(
                        "teams_presence_users",
                        "presence mode watches the reps listed here (or in agents); none given"
                            .into(),
                    );
                }
                if watched > MAX_PRESENCE_USERS {
                    return refuse(
                        "teams_presence_users",
                        format!("Graph watches at most {MAX_PRESENCE_USERS} users' presence"),
                    );
                }
            }
            other => {
                return refuse(
                    "teams_mode",
                    format!(
                        "{other:?} is not a mode: \"bot\" (a calling bot under a \
                         compliance-recording policy) or \"presence\""
                    ),
                );
            }
        }
        if let Err(problem) = self.credential() {
            return refuse("teams_client_secret", problem);
        }
        let states = std::iter::once(("teams_client_state", &self.teams_client_state)).chain(
            self.teams_client_state_previous
                .iter()
                .map(|previous| ("teams_client_state_previous", previous)),
        );
        for (var, state) in states {
            let state = state.expose();
            // Graph takes a clientState of up to 128 characters; 16 is our floor for a secret.
            if state.len() < 16 || state.len() > 128 {
                return refuse(var, "must be 16 to 128 characters".into());
            }
            let demo = state == DEMO_CLIENT_STATE
                || self.teams_client_secret.expose() == DEMO_CLIENT_SECRET;
            if demo && !is_loopback(v2_url) {
                return refuse(
                    var,
                    format!(
                        "talks to V2 at {v2_url} with the demo's public Teams secrets; set your \
                         own"
                    ),
                );
            }
        }
        if self.teams_watch_secs == Some(0) {
            return refuse("teams_watch_secs", "must be at least 1".into());
        }
        if self
            .teams_subscription_minutes
            .is_some_and(|m| m == 0 || m > 4230)
        {
            return refuse("teams_subscription_minutes", "must be 1 to 4230".into());
        }
        Ok(())
    }
}

/// The user of a presence change notification: `resourceData.id`, else the id in
/// `resource` (`communications/presences('{id}')` or `.../presences/{id}`); None for another
/// resource.
fn presence_user(item: &Value) -> Option<String> {
    let resource = item["resource"].as_str().unwrap_or_default();
    let typed = item
        .pointer("/resourceData/@odata.type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.to_ascii_lowercase().ends_with(".presence"));
    let path = resource.trim_start_matches('/');
    if !typed && !path.starts_with("communications/presences") {
        return None;
    }
    item.pointer("/resourceData/id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            let rest = path.strip_prefix("communications/presences")?;
            let id = rest
                .trim_start_matches('/')
                .trim_start_matches("('")
                .trim_end_matches("')");
            (!id.is_empty()).then(|| id.to_string())
        })
        .map(|id| id.to_lowercase())
}

/// Compares without an early exit, so timing does not tell how much of a secret was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn rejected(action: &'static str, err: ApiError) -> CommandError {
    match err {
        ApiError::Refused { status, message } => CommandError::Rejected {
            action,
            status,
            message,
        },
        ApiError::Unreachable(message) => CommandError::Unreachable(message),
    }
}

/// The media a service-hosted bot answers and places calls with.
fn media_config() -> Value {
    json!({"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"})
}

/// The change-notification subscriptions the connector keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Records,
    Presence,
}

impl Kind {
    fn who(self) -> Who {
        match self {
            Kind::Records => Who::App,
            Kind::Presence => Who::Delegated,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Records => "callRecords",
            Kind::Presence => "presence",
        }
    }
}

/// One live subscription and when to renew it.
#[derive(Debug)]
struct Sub {
    kind: Kind,
    id: String,
    renew_at: tokio::time::Instant,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    graph: Graph,
    bot: BotAuth,
    reps: Reps,
    tracker: Mutex<Tracker>,
    presence: Mutex<PresenceTracker>,
    /// Presence mode: the Entra user ids watched (resolved when the connector starts).
    watched: Mutex<Vec<String>>,
    /// Lifecycle notifications for the connector: (subscription id, event).
    lifecycle: Mutex<Vec<(String, String)>>,
    wake: tokio::sync::Notify,
    clock: SharedClock,
    tenant: String,
    /// The tracker's facts for every instance and across restarts (see `shared`).
    shared: AdapterState,
}

#[derive(Debug)]
pub struct TeamsAdapter {
    inner: Arc<Inner>,
}

/// Asks Entra ID for the app's token with `settings` (its secret or certificate), as the
/// adapter does first: the admin page's connection test. A certificate that does not read is
/// said so; errors name the status and Entra ID's answer, never the secret.
pub(crate) async fn check_credentials(
    settings: &Settings,
    clock: SharedClock,
    http: reqwest::Client,
) -> Result<(), String> {
    let credential = settings.credential().map_err(|e| e.to_string())?;
    let graph = Graph::new(
        &settings.teams_login_url,
        &settings.teams_graph_url,
        &settings.teams_tenant_id,
        &settings.teams_client_id,
        credential,
        clock,
        http,
    );
    graph.check_app_token().await.map_err(|e| e.to_string())
}

impl TeamsAdapter {
    pub fn new(settings: Settings, context: Context) -> Self {
        let graph = Graph::new(
            &settings.teams_login_url,
            &settings.teams_graph_url,
            &settings.teams_tenant_id,
            &settings.teams_client_id,
            // Checked at start; an unreadable certificate here leaves the secret (empty: Entra
            // ID refuses, and /readyz says so).
            settings.credential().unwrap_or_else(|_| {
                graph::Credential::Secret(settings.teams_client_secret.clone())
            }),
            context.clock.clone(),
            context.http.clone(),
        )
        .with_refresh_token(settings.teams_presence_refresh_token.clone());
        let bot = BotAuth::new(
            &settings.teams_openid_url,
            &settings.teams_bot_app_id,
            &settings.teams_tenant_id,
            context.http,
        );
        let agents = settings
            .agents
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.clone()))
            .collect();
        TeamsAdapter {
            inner: Arc::new(Inner {
                reps: Reps::new(agents),
                settings,
                graph,
                bot,
                tracker: Mutex::new(Tracker::default()),
                presence: Mutex::new(PresenceTracker::default()),
                watched: Mutex::new(Vec::new()),
                lifecycle: Mutex::new(Vec::new()),
                wake: tokio::sync::Notify::new(),
                shared: AdapterState::local(context.clock.clone(), &context.tenant, "teams"),
                clock: context.clock,
                tenant: context.tenant,
            }),
        }
    }

    /// Keeps the per-call state in `shared` (the relay's store) rather than this adapter's own
    /// memory, so other instances and a restarted one find it.
    pub fn with_call_state(mut self, shared: AdapterState) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.shared = shared;
        }
        self
    }
}

impl Inner {
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock()
    }

    fn now(&self) -> String {
        crate::clock::rfc3339(self.clock.now_ms())
    }

    fn presence_tracker(&self) -> MutexGuard<'_, PresenceTracker> {
        self.presence.lock()
    }

    fn watched(&self) -> Vec<String> {
        self.watched.lock().clone()
    }

    /// The Entra user ids of the reps presence mode watches: `agents`' users, and
    /// `teams_presence_users` (ids as they are, UPNs and e-mails through Graph `users`).
    async fn resolve_watched(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .settings
            .agents
            .keys()
            .map(|k| k.to_lowercase())
            .collect();
        for user in &self.settings.teams_presence_users {
            let id = if user.contains('@') {
                match self.user_of(user).await {
                    Some(id) => id,
                    None => {
                        tracing::warn!(tenant = %self.tenant, "a presence user is not in the directory");
                        continue;
                    }
                }
            } else {
                let id = user.to_lowercase();
                self.learn_user(&id).await;
                id
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        for id in &ids {
            self.learn_user(id).await;
        }
        *self.watched.lock() = ids.clone();
        ids
    }

    /// The presence of `users` now (one batch request, Graph's `getPresencesByUserId`) as
    /// events: a call shown where one began, closed where it ended.
    async fn presence_events(&self, users: &[String]) -> Vec<cti_protocol::event::TelephonyEvent> {
        if users.is_empty() {
            return Vec::new();
        }
        let answer = match self
            .graph
            .call_as(
                Who::Delegated,
                Method::POST,
                "/communications/getPresencesByUserId",
                Some(&json!({"ids": users})),
            )
            .await
        {
            Ok(answer) => answer,
            Err(err) => {
                tracing::warn!(tenant = %self.tenant, %err, "reading Teams presence failed");
                return Vec::new();
            }
        };
        let mut events = Vec::new();
        for presence in answer["value"].as_array().into_iter().flatten() {
            let (Some(user), Some(activity)) =
                (presence["id"].as_str(), presence["activity"].as_str())
            else {
                continue;
            };
            let user = user.to_lowercase();
            if self.reps.rep_of(&user).is_none() {
                self.learn_user(&user).await;
            }
            let Some(rep) = self.reps.rep_of(&user) else {
                continue;
            };
            let (now, now_ms) = (self.now(), self.clock.now_ms());
            events.extend(
                self.presence_tracker()
                    .apply(&user, &rep, activity, &now, now_ms),
            );
        }
        let ended = self.presence_tracker().take_ended();
        for call in &ended {
            shared::presence_ended(&self.shared, call).await;
        }
        events
    }

    /// After a (re)subscription: presence calls the relay still shows (from before a restart or
    /// a gap) are taken over while their rep is still in a call and closed otherwise, then the
    /// presence of every watched user is read, so an end missed in between arrives.
    async fn catch_up_presence(&self, link: &Link) {
        let users = self.watched();
        let reps: Vec<String> = users.iter().filter_map(|u| self.reps.rep_of(u)).collect();
        let live = link.live_calls(&reps).await;
        for (call_id, rep) in live.into_iter().filter(|(c, _)| c.starts_with(CALL_PREFIX)) {
            let Some(user) = self.reps.user_of(&rep) else {
                continue;
            };
            let mut tracker = self.presence_tracker();
            if tracker.call_of(&user).is_none() {
                tracker.adopt(&user, PresenceCall { call_id, rep });
            }
        }
        for event in self.presence_events(&users).await {
            if let Err(err) = link.deliver(event).await {
                tracing::warn!(tenant = %self.tenant, ?err, "a presence catch-up event was not taken");
            }
        }
    }

    /// The rep of an Entra user: the overrides and what was learned, else Graph `users` (its
    /// `mail`, else its `userPrincipalName`), remembered.
    async fn learn_user(&self, user: &str) {
        if self.reps.rep_of(user).is_some() {
            return;
        }
        match self
            .graph
            .call(Method::GET, &format!("/users/{user}"), None)
            .await
        {
            Ok(found) => {
                let rep = found["mail"]
                    .as_str()
                    .filter(|m| !m.is_empty())
                    .or(found["userPrincipalName"].as_str());
                if let Some(rep) = rep {
                    self.reps.remember(user, &rep.to_lowercase());
                }
            }
            Err(err) => {
                tracing::warn!(tenant = %self.tenant, %err, "reading a Teams user failed");
            }
        }
    }

    /// The Entra user id of a rep: known, else Graph `users/{upn}`.
    async fn user_of(&self, rep: &str) -> Option<String> {
        if let Some(id) = self.reps.user_of(rep) {
            return Some(id);
        }
        let found = self
            .graph
            .call(Method::GET, &format!("/users/{rep}"), None)
            .await
            .ok()?;
        let id = found["id"].as_str()?.to_lowercase();
        self.reps.remember(&id, &rep.to_lowercase());
        Some(id)
    }

    /// A comms notification's items as events, and the recording invitations the relay is to
    /// answer now.
    async fn comms(&self, body: &Value) -> (Vec<cti_protocol::event::TelephonyEvent>, Vec<String>) {
        let mut calls: Vec<(String, Value)> = Vec::new();
        let mut rosters: Vec<(String, Value)> = Vec::new();
        for item in body["value"].as_array().into_iter().flatten() {
            let url = item["resourceUrl"].as_str().unwrap_or_default();
            if let Some(call) = url.strip_suffix("/participants") {
                // The participants of the bot's call: the roster in `resourceData`.
                if let Some(id) = call.rsplit('/').next().filter(|id| !id.is_empty()) {
                    rosters.push((id.to_string(), item["resourceData"].clone()));
                }
                continue;
            }
            let Some(data) = item.get("resourceData").filter(|d| d.is_object()) else {
                continue;
            };
            let id = data["id"]
                .as_str()
                .map(str::to_string)
                .or_else(|| url.rsplit('/').next().map(str::to_string));
            if let Some(id) = id {
                calls.push((id, data.clone()));
            }
        }
        for (_, data) in &calls {
            if let Some(user) = mapping::rep_user(data) {
                self.learn_user(&user).await;
            }
            if let Some(user) = data
                .pointer("/source/identity/user/id")
                .and_then(Value::as_str)
            {
                self.learn_user(&user.to_lowercase()).await;
            }
        }
        // Rosters change legs too (the rep's answer under a recording policy): shared alike.
        let touched: Vec<(String, Value)> = calls.iter().chain(&rosters).cloned().collect();
        shared::before_notifications(&self.shared, &self.tracker, &touched).await;
        let now = self.now();
        let rep_of = |user: &str| self.reps.rep_of(user);
        let (events, answer) = {
            let mut tracker = self.tracker();
            let mut events = Vec::new();
            let mut answer = Vec::new();
            for (id, data) in &calls {
                events.extend(tracker.apply(id, data, &rep_of, &now));
                if tracker.should_answer(id, data) {
                    answer.push(id.clone());
                }
            }
            for (id, roster) in &rosters {
                events.extend(tracker.participants(id, roster, &now));
            }
            (events, answer)
        };
        let failed = std::mem::take(&mut self.tracker().failed_transfers);
        for (chain, id) in failed {
            shared::note(&self.shared, &chain, "target", &id, "").await;
        }
        shared::after_notifications(&self.shared, &self.tracker, &touched).await;
        (events, answer)
    }

    /// Answers a recording invitation for the bot, at once and whatever the rep does: Graph
    /// drops an invitation left unanswered for 5 s (reference 3.4). A failure is logged; the
    /// invitation is then dropped and the call record logs the call.
    async fn answer_invitation(self: Arc<Self>, id: String) {
        let body = json!({
            "callbackUri": self.settings.teams_notification_url,
            "acceptedModalities": ["audio"],
            "mediaConfig": media_config(),
        });
        let done = self
            .graph
            .call(
                Method::POST,
                &format!("/communications/calls/{id}/answer"),
                Some(&body),
            )
            .await;
        if let Err(err) = done {
            tracing::warn!(tenant = %self.tenant, %err, "answering a Teams recording invitation failed");
        }
    }

    /// Change or lifecycle notifications: every item must carry our `clientState`. The calls'
    /// events, and what call records amend of calls the relay has.
    async fn changes(
        &self,
        body: &Value,
    ) -> Result<(Vec<cti_protocol::event::TelephonyEvent>, Vec<Amendment>), AdapterError> {
        let items = body["value"].as_array().cloned().unwrap_or_default();
        for item in &items {
            let presented = item["clientState"].as_str().unwrap_or_default().as_bytes();
            let fit = rotation::fit(
                &self.tenant,
                "teams_client_state_previous",
                &self.settings.teams_client_state,
                self.settings.teams_client_state_previous.as_ref(),
                |state| same_secret(presented, state.as_bytes()),
            );
            if fit.is_none() {
                return Err(AdapterError::Unauthenticated(
                    "the clientState is not this subscription's".into(),
                ));
            }
        }
        let mut events = Vec::new();
        let mut amendments = Vec::new();
        let mut users: Vec<String> = Vec::new();
        for item in items {
            if let Some(event) = item["lifecycleEvent"].as_str() {
                let sub = item["subscriptionId"].as_str().unwrap_or_default();
                tracing::info!(tenant = %self.tenant, subscription = %sub, %event, "Teams lifecycle notification");
                self.lifecycle
                    .lock()
                    .push((sub.to_string(), event.to_string()));
                self.wake.notify_one();
                continue;
            }
            if let Some(user) = presence_user(&item) {
                if !users.contains(&user) {
                    users.push(user);
                }
                continue;
            }
            let Some(record) = item
                .pointer("/resourceData/id")
                .and_then(Value::as_str)
                .or_else(|| item["resource"].as_str()?.rsplit('/').next())
            else {
                continue;
            };
            let (record_events, record_amendments) = self.record(record).await;
            events.extend(record_events);
            amendments.extend(record_amendments);
        }
        if !users.is_empty() && self.settings.presence() {
            // A basic notification says only whose presence changed: it is read (the rich
            // kind carries it encrypted, which needs a certificate of our own to decrypt).
            events.extend(self.presence_events(&users).await);
        }
        Ok((events, amendments))
    }

    /// A call record. For a call the bot told about, its exact times and the other party,
    /// amending the relay's call (the bot's events made it). In presence mode, the same for
    /// the presence call each session was (closed now if still shown). Otherwise the call as
    /// the record tells it.
    async fn record(&self, id: &str) -> (Vec<cti_protocol::event::TelephonyEvent>, Vec<Amendment>) {
        let seen = self.tracker().seen_chains.contains(id) || shared::seen(&self.shared, id).await;
        let record = match self
            .graph
            .call(
                Method::GET,
                &format!("/communications/callRecords/{id}?$expand=sessions($expand=segments)"),
                None,
            )
            .await
        {
            Ok(record) => record,
            Err(err) => {
                tracing::warn!(tenant = %self.tenant, %err, "reading a Teams call record failed");
                return (Vec::new(), Vec::new());
            }
        };
        let mut users = Vec::new();
        for session in record["sessions"].as_array().into_iter().flatten() {
            for side in ["caller", "callee"] {
                if let Some(user) = session[side]
                    .pointer("/identity/user/id")
                    .and_then(Value::as_str)
                {
                    users.push(user.to_lowercase());
                }
            }
        }
        for user in users {
            self.learn_user(&user).await;
        }
        let rep_of = |u: &str| self.reps.rep_of(u);
        if seen {
            // The call's legs as any instance heard them: a hand-over made in the Teams client
            // is resolved here when it went outside.
            shared::load_call(&self.shared, &self.tracker, id).await;
            let outside = self.tracker().outside_handovers(&record);
            return (outside, mapping::record_amendments(&record, &rep_of));
        }
        if !self.settings.presence() {
            return (mapping::record_events(&record, &rep_of), Vec::new());
        }
        let mut events = Vec::new();
        let mut amendments = Vec::new();
        for session in mapping::record_sessions(&record, &rep_of) {
            match self.presence_call_of(&session).await {
                Some((call, closed_now)) => {
                    if closed_now {
                        events.push(presence::closed(&call, &session.end));
                    }
                    amendments.push(Amendment {
                        call_id: call.call_id,
                        agent: call.rep,
                        started_at: Some(session.start.clone()),
                        answered_at: Some(session.start.clone()),
                        ended_at: Some(session.end.clone()),
                        direction: Some(session.direction),
                        remote: Some(session.remote().to_string()).filter(|r| !r.is_empty()),
                    });
                }
                None => events.extend(mapping::session_events(&session)),
            }
        }
        (events, amendments)
    }

    /// The presence call a record's session was: the one still shown for its rep (closed by
    /// the record: `true`), else the ended one nearest in time.
    async fn presence_call_of(
        &self,
        session: &mapping::RecordSession,
    ) -> Option<(PresenceCall, bool)> {
        let ms = |at: &str| {
            crate::clock::instant(at).map(|t| (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
        };
        let span = (ms(&session.start)?, ms(&session.end)?);
        {
            let mut tracker = self.presence_tracker();
            let live = tracker.call_of(&session.user).filter(|call| {
                call.started_ms()
                    .is_some_and(|at| presence::distance(span, at, None).is_some())
            });
            if live.is_some() {
                return tracker.remove(&session.user).map(|call| (call, true));
            }
        }
        shared::take_ended_presence(&self.shared, &session.user, span)
            .await
            .map(|call| (call, false))
    }

    fn minutes(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Records => self
                .settings
                .teams_subscription_minutes
                .unwrap_or(DEFAULT_SUBSCRIPTION_MINUTES),
            Kind::Presence => PRESENCE_SUBSCRIPTION_MINUTES,
        }
    }

    fn expiry(&self, kind: Kind) -> String {
        let at =
            time::OffsetDateTime::now_utc() + time::Duration::minutes(self.minutes(kind) as i64);
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }

    /// Two thirds of the life Graph granted (its answer's `expirationDateTime`, which may be
    /// shorter than asked), else of the life asked for.
    fn renew_after(&self, kind: Kind, granted: &Value) -> Duration {
        let now = time::OffsetDateTime::now_utc();
        let life = granted["expirationDateTime"]
            .as_str()
            .and_then(crate::clock::instant)
            .map(|at| (at - now).whole_milliseconds().max(0) as u64)
            .unwrap_or_else(|| self.minutes(kind) * 60_000);
        Duration::from_millis((life * 2 / 3).max(500))
    }

    /// Subscriptions to our URL left by an earlier run: deleted, or notifications would come
    /// twice (and Graph takes one presence subscription per user and app).
    async fn delete_stale(&self) {
        let mut whos = vec![Who::App];
        if self.settings.presence() {
            whos.push(Who::Delegated);
        }
        for who in whos {
            let Ok(list) = self
                .graph
                .call_as(who, Method::GET, "/subscriptions", None)
                .await
            else {
                continue;
            };
            for sub in list["value"].as_array().into_iter().flatten() {
                let ours = sub["notificationUrl"].as_str()
                    == Some(self.settings.teams_notification_url.as_str());
                if let (true, Some(id)) = (ours, sub["id"].as_str()) {
                    let _ = self
                        .graph
                        .call_as(who, Method::DELETE, &format!("/subscriptions/{id}"), None)
                        .await;
                }
            }
        }
    }

    async fn subscribe(&self, kind: Kind) -> Result<(String, Duration), ApiError> {
        let (resource, change_type) = match kind {
            Kind::Records => ("/communications/callRecords".to_string(), "created"),
            Kind::Presence => {
                let ids: Vec<String> = self.watched().iter().map(|id| format!("'{id}'")).collect();
                (
                    format!(
                        "/communications/presences?$filter=id in ({})",
                        ids.join(",")
                    ),
                    "updated",
                )
            }
        };
        let body = json!({
            "changeType": change_type,
            "notificationUrl": self.settings.teams_notification_url,
            "lifecycleNotificationUrl": self.settings.teams_notification_url,
            "resource": resource,
            "expirationDateTime": self.expiry(kind),
            "clientState": self.settings.teams_client_state.expose(),
        });
        let answer = self
            .graph
            .call_as(kind.who(), Method::POST, "/subscriptions", Some(&body))
            .await?;
        let id = answer["id"].as_str().unwrap_or_default().to_string();
        Ok((id, self.renew_after(kind, &answer)))
    }

    /// A subscription made (again); presence is read right after, so nothing said while there
    /// was none is lost.
    async fn make(&self, link: &Link, kind: Kind) -> Result<Sub, LinkError> {
        let (id, renew) = self
            .subscribe(kind)
            .await
            .map_err(|e| LinkError(format!("creating the {} subscription: {e}", kind.name())))?;
        tracing::info!(tenant = %self.tenant, subscription = %id, kind = kind.name(), "Teams subscription created");
        if kind == Kind::Presence {
            self.catch_up_presence(link).await;
        }
        Ok(Sub {
            kind,
            id,
            renew_at: tokio::time::Instant::now() + renew,
        })
    }

    async fn resubscribe(&self, link: &Link, kind: Kind, why: &str) -> Result<Sub, LinkError> {
        link.down();
        link.error(why);
        let sub = self.make(link, kind).await?;
        link.up();
        Ok(sub)
    }

    /// One run of the subscriptions' life: callRecords, and in presence mode the reps'
    /// presence.
    async fn run(self: Arc<Self>, link: Link) -> Result<(), LinkError> {
        let watch = Duration::from_secs(
            self.settings
                .teams_watch_secs
                .unwrap_or(DEFAULT_WATCH_SECS)
                .max(1),
        );
        let mut kinds = vec![Kind::Records];
        if self.settings.presence() {
            let watched = self.resolve_watched().await;
            if watched.is_empty() {
                return Err(LinkError(
                    "none of the presence users is in the tenant's directory".into(),
                ));
            }
            kinds.push(Kind::Presence);
        }
        self.delete_stale().await;
        let mut subs = Vec::new();
        for kind in kinds {
            subs.push(self.make(&link, kind).await?);
        }
        link.up();
        let mut failures = 0;
        loop {
            let renew_at = subs
                .iter()
                .map(|s| s.renew_at)
                .min()
                .unwrap_or_else(tokio::time::Instant::now);
            let next = (tokio::time::Instant::now() + watch).min(renew_at);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = self.wake.notified() => {}
            }
            let events: Vec<(String, String)> = std::mem::take(&mut *self.lifecycle.lock());
            let mut recreate: Vec<Kind> = Vec::new();
            for (sub_id, event) in events {
                let Some(sub) = subs.iter().find(|s| s.id == sub_id) else {
                    continue;
                };
                let kind = sub.kind;
                match event.as_str() {
                    "subscriptionRemoved" => recreate.push(kind),
                    "reauthorizationRequired" => {
                        let done = self
                            .graph
                            .call_as(
                                kind.who(),
                                Method::POST,
                                &format!("/subscriptions/{sub_id}/reauthorize"),
                                None,
                            )
                            .await;
                        if let Err(err) = done {
                            if err.status() == Some(404) {
                                recreate.push(kind);
                            } else {
                                link.error(&format!("reauthorizing the subscription: {err}"));
                            }
                        }
                    }
                    // Graph dropped notifications. Call records stay readable but Graph does
                    // not say which (inferred: nothing to catch up by id); presence is read.
                    "missed" if kind == Kind::Presence => self.catch_up_presence(&link).await,
                    _ => link.error(&format!("Graph reports lifecycle event {event}")),
                }
            }
            for kind in recreate {
                let sub = self
                    .resubscribe(&link, kind, "a subscription was removed")
                    .await?;
                subs.retain(|s| s.kind != kind);
                subs.push(sub);
            }
            let now = tokio::time::Instant::now();
            for sub in subs.iter_mut() {
                let renewing = now >= sub.renew_at;
                let who = sub.kind.who();
                let answer = if renewing {
                    let body = json!({"expirationDateTime": self.expiry(sub.kind)});
                    self.graph
                        .call_as(
                            who,
                            Method::PATCH,
                            &format!("/subscriptions/{}", sub.id),
                            Some(&body),
                        )
                        .await
                } else {
                    self.graph
                        .call_as(
                            who,
                            Method::GET,
                            &format!("/subscriptions/{}", sub.id),
                            None,
                        )
                        .await
                };
                match answer {
                    Ok(granted) => {
                        failures = 0;
                        if renewing {
                            sub.renew_at =
                                tokio::time::Instant::now() + self.renew_after(sub.kind, &granted);
                        }
                    }
                    Err(err) if err.status() == Some(404) => {
                        *sub = self
                            .resubscribe(
                                &link,
                                sub.kind,
                                &format!("the subscription is gone ({err})"),
                            )
                            .await?;
                    }
                    Err(err) => {
                        failures += 1;
                        link.error(&format!("looking at the subscription: {err}"));
                        if failures >= MAX_FAILURES {
                            link.down();
                            return Err(LinkError(format!("Graph does not answer: {err}")));
                        }
                    }
                }
            }
        }
    }

    /// The rep's Graph call in the relay's call.
    fn leg(&self, call: &str, rep: &str, action: &'static str) -> Result<String, CommandError> {
        self.tracker()
            .leg_of(call, rep, false)
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 409,
                message: format!("{rep} has no Teams call here the bot knows"),
            })
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
        action: &'static str,
    ) -> Result<Value, CommandError> {
        self.graph
            .call(Method::POST, path, Some(body))
            .await
            .map_err(|e| rejected(action, e))
    }

    /// A transfer target's identity: a rep's Entra user, else an E.164 number.
    async fn identity(&self, target: &str, action: &'static str) -> Result<Value, CommandError> {
        if target.starts_with('+') && target.len() > 4 {
            return Ok(
                json!({"phone": {"@odata.type": "#microsoft.graph.identity", "id": target}}),
            );
        }
        let user = self
            .user_of(target)
            .await
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 404,
                message: "the target is neither a Teams user nor an E.164 number".into(),
            })?;
        Ok(json!({"user": {"@odata.type": "#microsoft.graph.identity", "id": user}}))
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        let rep = call.agent.as_str();
        let action = command.name();
        if self.settings.presence() {
            return Err(CommandError::Rejected {
                action,
                status: 501,
                message: "Teams presence mode has no call controls: use the Teams client".into(),
            });
        }
        // The call's legs as any instance heard them (this one may have heard none).
        shared::load_call(&self.shared, &self.tracker, &call.id).await;
        match command {
            CallCommand::Answer => Err(CommandError::Rejected {
                action,
                status: 501,
                message: "answer in the Teams client: Graph answers the bot's own call, not the \
                          rep's"
                    .into(),
            }),
            CallCommand::Decline => {
                let id = self.leg(&call.id, rep, action)?;
                self.tracker().declined.insert(id.clone());
                shared::note(&self.shared, &call.id, "declined", &id, "1").await;
                self.post(
                    &format!("/communications/calls/{id}/reject"),
                    &json!({"reason": "busy"}),
                    action,
                )
                .await
                .map(|_| ())
            }
            CallCommand::Hangup => {
                let id = self.leg(&call.id, rep, action)?;
                self.graph
                    .call(Method::DELETE, &format!("/communications/calls/{id}"), None)
                    .await
                    .map(|_| ())
                    .map_err(|e| rejected(action, e))
            }
            CallCommand::Transfer { target } => {
                let id = self.leg(&call.id, rep, action)?;
                let identity = self.identity(target, action).await?;
                self.tracker()
                    .transfer_targets
                    .insert(id.clone(), target.to_lowercase());
                shared::note(
                    &self.shared,
                    &call.id,
                    "target",
                    &id,
                    &target.to_lowercase(),
                )
                .await;
                let ringing = !self.tracker().legs.get(&id).is_some_and(|l| l.answered);
                if ringing {
                    // Not answered yet: Graph redirects a ringing call rather than transfers it.
                    let body = json!({"targets": [{
                        "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                        "identity": identity}],
                        "callbackUri": self.settings.teams_notification_url});
                    self.post(
                        &format!("/communications/calls/{id}/redirect"),
                        &body,
                        action,
                    )
                    .await
                    .map(|_| ())
                } else {
                    let body = json!({"transferTarget": {"endpointType": "default",
                        "identity": identity, "languageId": "en-us", "region": "amer"}});
                    self.post(
                        &format!("/communications/calls/{id}/transfer"),
                        &body,
                        action,
                    )
                    .await
                    .map(|_| ())
                }
            }
            CallCommand::Consult { target } => {
                self.leg(&call.id, rep, action)?;
                let refuse = |message: String| CommandError::Rejected {
                    action,
                    status: 404,
                    message,
                };
                let own = self
                    .user_of(rep)
                    .await
                    .ok_or_else(|| refuse(format!("{rep} is not a Teams user")))?;
                // A number is called from the rep (as click-to-dial places a call); a colleague
                // is rung from them. Either is the consultation of this call.
                let number = mapping::is_number(target);
                let colleague = if number {
                    target.clone()
                } else {
                    self.user_of(target).await.ok_or_else(|| {
                        refuse("the target is neither a Teams user nor an E.164 number".into())
                    })?
                };
                let far = if number {
                    json!({"phone": {"@odata.type": "#microsoft.graph.identity", "id": colleague}})
                } else {
                    json!({"user": {"id": colleague}})
                };
                // Registered before the call is placed: its first notification may come first.
                let pending = PendingConsult {
                    chain: call.id.clone(),
                    rep_user: own.clone(),
                    colleague_user: colleague.clone(),
                };
                shared::consult_asked(&self.shared, &pending).await;
                self.tracker().pending.push(pending);
                let body = json!({
                    "@odata.type": "#microsoft.graph.call",
                    "callbackUri": self.settings.teams_notification_url,
                    "source": {"@odata.type": "#microsoft.graph.participantInfo",
                               "identity": {"user": {"id": own}}},
                    "targets": [{"@odata.type": "#microsoft.graph.invitationParticipantInfo",
                                 "identity": far}],
                    "requestedModalities": ["audio"],
                    "mediaConfig": media_config(),
                    "tenantId": self.settings.teams_tenant_id,
                });
                if number {
                    tracing::info!(tenant = %self.tenant, to = %mask_number(target), "consulting a number through Teams");
                }
                let placed = self.post("/communications/calls", &body, action).await;
                if placed.is_err() {
                    self.tracker()
                        .pending
                        .retain(|p| !(p.chain == call.id && p.rep_user == own));
                    shared::consult_dropped(&self.shared, &colleague, &own).await;
                }
                placed.map(|_| ())
            }
            CallCommand::CompleteTransfer => {
                let id = self.leg(&call.id, rep, action)?;
                let (consult, colleague, other) = {
                    let tracker = self.tracker();
                    let consult = tracker.leg_of(&call.id, rep, true).ok_or_else(|| {
                        CommandError::Rejected {
                            action,
                            status: 409,
                            message: "no consultation on this call".into(),
                        }
                    })?;
                    // (identity of the transfer target, the target as the relay names it).
                    let colleague = tracker.legs.get(&consult).map(|l| {
                        if l.side {
                            (
                                json!({"phone": {"@odata.type": "#microsoft.graph.identity",
                                                 "id": l.to}}),
                                l.to.clone(),
                            )
                        } else {
                            (
                                json!({"user": {"@odata.type": "#microsoft.graph.identity",
                                                "id": l.user}}),
                                l.rep.clone(),
                            )
                        }
                    });
                    let other = tracker
                        .legs
                        .get(&id)
                        .map(|l| l.other.clone())
                        .unwrap_or_default();
                    (consult, colleague, other)
                };
                let Some((target_identity, colleague_rep)) = colleague else {
                    return Err(CommandError::Rejected {
                        action,
                        status: 409,
                        message: "no consultation on this call".into(),
                    });
                };
                self.tracker()
                    .transfer_targets
                    .insert(id.clone(), colleague_rep.clone());
                shared::note(&self.shared, &call.id, "target", &id, &colleague_rep).await;
                let body = json!({
                    "transferTarget": {"endpointType": "default",
                        "identity": target_identity,
                        "languageId": "en-us", "region": "amer",
                        "replacesCallId": consult},
                    "transferee": {"@odata.type": "#microsoft.graph.participantInfo",
                                   "identity": other},
                });
                self.post(
                    &format!("/communications/calls/{id}/transfer"),
                    &body,
                    action,
                )
                .await
                .map(|_| ())
            }
            CallCommand::CancelConsult => {
                let consult = self.tracker().leg_of(&call.id, rep, true).ok_or_else(|| {
                    CommandError::Rejected {
                        action,
                        status: 409,
                        message: "no consultation on this call".into(),
                    }
                })?;
                self.graph
                    .call(
                        Method::DELETE,
                        &format!("/communications/calls/{consult}"),
                        None,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| rejected(action, e))
            }
            CallCommand::Hold | CallCommand::Resume => Err(CommandError::Rejected {
                action,
                status: 501,
                message: "Microsoft Teams has no hold through Graph v1.0; hold in the Teams client"
                    .into(),
            }),
            _ => Err(CommandError::Rejected {
                action,
                status: 501,
                message: "Microsoft Teams has no such call control here".into(),
            }),
        }
    }

    /// Click-to-dial: a call placed for the rep to the number (inferred: the simulator takes
    /// `source.identity.user` as the rep the call is placed for).
    async fn dial(&self, rep: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let action = "dial";
        if self.settings.presence() {
            return Err(CommandError::Rejected {
                action,
                status: 501,
                message: "Teams presence mode places no calls: dial in the Teams client".into(),
            });
        }
        let user = self
            .user_of(rep)
            .await
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 404,
                message: format!("{rep} is not a Teams user"),
            })?;
        tracing::info!(tenant = %self.tenant, to = %mask_number(e164), "dialling through Teams");
        let body = json!({
            "@odata.type": "#microsoft.graph.call",
            "callbackUri": self.settings.teams_notification_url,
            "source": {"@odata.type": "#microsoft.graph.participantInfo",
                       "identity": {"user": {"id": user}}},
            "targets": [{"@odata.type": "#microsoft.graph.invitationParticipantInfo",
                         "identity": {"phone": {"@odata.type": "#microsoft.graph.identity",
                                                "id": e164}}}],
            "requestedModalities": ["audio"],
            "mediaConfig": media_config(),
            "tenantId": self.settings.teams_tenant_id,
        });
        let answer = self.post("/communications/calls", &body, action).await?;
        Ok(answer["callChainId"]
            .as_str()
            .or(answer["id"].as_str())
            .map(str::to_string))
    }
}

#[async_trait]
impl TelephonyAdapter for TeamsAdapter {
    fn provider(&self) -> &'static str {
        "teams"
    }

    /// Graph v1.0 has no hold verb for a call (reference 3.4).
    fn controls(&self) -> &'static [Control] {
        if self.inner.settings.presence() {
            // No bot: Graph controls no call of an ordinary user.
            return &[];
        }
        // No answer: the rep answers in Teams (the bot's answer is its recording's, see
        // `answer_invitation`).
        &[
            Control::Decline,
            Control::Hangup,
            Control::Transfer,
            Control::Consult,
            Control::Dial,
        ]
    }

    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
        if request.method != Method::POST {
            return Err(AdapterError::MethodNotAllowed(request.method.clone()));
        }
        // The subscription's validation: the token back, URL-decoded, as text/plain.
        let token = request.query.and_then(|q| {
            reqwest::Url::parse(&format!("http://q/?{q}"))
                .ok()?
                .query_pairs()
                .find(|(k, _)| k == "validationToken")
                .map(|(_, v)| v.into_owned())
        });
        if let Some(token) = token {
            let reply = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                token,
            )
                .into_response();
            return Ok(Ingress::Reply(reply));
        }
        let value: Value =
            serde_json::from_slice(request.body).map_err(AdapterError::MalformedJson)?;
        let authorization = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let comms = value["@odata.type"].as_str() == Some("#microsoft.graph.commsNotifications")
            || value["value"].as_array().is_some_and(|v| {
                v.iter().any(|i| {
                    i.get("resourceData")
                        .is_some_and(|d| d["@odata.type"] == "#microsoft.graph.call")
                })
            });
        if (authorization.is_some() || comms) && self.inner.settings.presence() {
            return Err(AdapterError::Unauthenticated(
                "this tenant has no calling bot (presence mode)".into(),
            ));
        }
        if authorization.is_some() || comms {
            self.inner
                .bot
                .verify(authorization)
                .await
                .map_err(AdapterError::Unauthenticated)?;
            let (events, answer) = self.inner.comms(&value).await;
            for id in answer {
                // Not awaited: the notification is acknowledged at once, the answer goes out
                // beside it.
                tokio::spawn(self.inner.clone().answer_invitation(id));
            }
            return Ok(Ingress::Events(events));
        }
        let (events, amendments) = self.inner.changes(&value).await?;
        Ok(Ingress::Amended { events, amendments })
    }

    fn connector(&self, link: Link) -> Option<BoxFuture<'static, Result<(), LinkError>>> {
        Some(Box::pin(self.inner.clone().run(link)))
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        self.inner.command(call, command).await
    }

    async fn dial(&self, agent: &str, e164: &str) -> Result<Option<String>, CommandError> {
        self.inner.dial(agent, e164).await
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;
    use crate::adapters::TelephonySettings;
    use cti_protocol::event::{EndReason, EventType};

    fn adapter() -> TeamsAdapter {
        adapter_with(Settings::demo(
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "demo",
        ))
    }

    fn adapter_with(settings: Settings) -> TeamsAdapter {
        TeamsAdapter::new(
            settings,
            Context {
                tenant: "demo".into(),
                http: reqwest::Client::new(),
                clock: std::sync::Arc::new(crate::clock::SystemClock),
                forgets_before_ms: None,
            },
        )
    }

    fn receive(query: Option<&str>, body: &str) -> Result<Ingress, AdapterError> {
        receive_by(&adapter(), query, body)
    }

    fn receive_by(
        adapter: &TeamsAdapter,
        query: Option<&str>,
        body: &str,
    ) -> Result<Ingress, AdapterError> {
        let headers = HeaderMap::new();
        futures_util::FutureExt::now_or_never(adapter.receive(Inbound {
            method: &Method::POST,
            headers: &headers,
            query,
            body: body.as_bytes(),
        }))
        .expect("receive does not wait here")
    }

    #[test]
    fn the_validation_token_comes_back_decoded_as_text() {
        let Ok(Ingress::Reply(reply)) = receive(Some("validationToken=a%20b%2Bc%26d"), "") else {
            panic!("a reply");
        };
        assert_eq!(reply.status(), 200);
        assert!(
            reply.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with("text/plain")
        );
    }

    #[test]
    fn a_change_notification_with_another_client_state_is_refused() {
        let forged = r#"{"value":[{"subscriptionId":"s","clientState":"guess","changeType":"created","resource":"communications/callRecords/x","resourceData":{"id":"x"}}]}"#;
        assert!(matches!(
            receive(None, forged),
            Err(AdapterError::Unauthenticated(_))
        ));
        let lifecycle = format!(
            r#"{{"value":[{{"subscriptionId":"s","clientState":"{DEMO_CLIENT_STATE}","lifecycleEvent":"subscriptionRemoved"}}]}}"#
        );
        assert!(matches!(
            receive(None, &lifecycle),
            Ok(Ingress::Amended { events, amendments }) if events.is_empty() && amendments.is_empty()
        ));
    }

    /// Secret rotation: with `teams_client_state_previous` set, notifications carrying the old
    /// `clientState` (a subscription made before the change) are taken beside the new one's;
    /// without it they are refused, and the previous state is held to the same rules at start.
    #[test]
    fn during_a_rotation_the_previous_client_state_is_still_taken() {
        const NEW: &str = "the-new-client-state-0123";
        let lifecycle = |state: &str| {
            format!(
                r#"{{"value":[{{"subscriptionId":"s","clientState":"{state}","lifecycleEvent":"reauthorizationRequired"}}]}}"#
            )
        };
        let receive_with = |settings: &Settings, body: &str| {
            receive_by(&adapter_with(settings.clone()), None, body)
        };
        let mut settings = Settings::demo("http://127.0.0.1:1", "http://127.0.0.1:2", "demo");
        settings.teams_client_state = Secret::new(NEW);
        assert!(matches!(
            receive_with(&settings, &lifecycle(DEMO_CLIENT_STATE)),
            Err(AdapterError::Unauthenticated(_))
        ));
        settings.teams_client_state_previous = Some(Secret::new(DEMO_CLIENT_STATE));
        for state in [NEW, DEMO_CLIENT_STATE] {
            assert!(
                receive_with(&settings, &lifecycle(state)).is_ok(),
                "clientState {state}"
            );
        }
        assert!(matches!(
            receive_with(&settings, &lifecycle("a-third-state-nobody-set")),
            Err(AdapterError::Unauthenticated(_))
        ));
        // One item of a batch with a state of neither refuses the batch.
        let mixed = format!(
            r#"{{"value":[{{"subscriptionId":"s","clientState":"{NEW}","lifecycleEvent":"missed"}},{{"subscriptionId":"s","clientState":"guess-guess-guess","lifecycleEvent":"missed"}}]}}"#
        );
        assert!(matches!(
            receive_with(&settings, &mixed),
            Err(AdapterError::Unauthenticated(_))
        ));

        let facts = TenantFacts {
            id: "demo",
            v2_url: "https://my1.crm.cloud.sap",
        };
        let mut real = Settings::demo("https://sim.example", "https://cti.example", "demo");
        real.teams_client_state = Secret::new(NEW);
        real.teams_client_secret = Secret::new("entra-secret");
        real.teams_client_state_previous = Some(Secret::new("the-old-client-state-0123"));
        assert!(real.check(&facts).is_ok());
        for bad in ["short", DEMO_CLIENT_STATE] {
            real.teams_client_state_previous = Some(Secret::new(bad));
            let err = real.check(&facts).expect_err(bad);
            assert_eq!(err.var, "teams_client_state_previous", "{bad}");
        }
    }

    #[test]
    fn presence_notifications_name_their_user() {
        let basic = json!({"resource": "communications/presences('AB-12')",
            "resourceData": {"@odata.type": "#Microsoft.Graph.presence", "id": "AB-12"}});
        assert_eq!(presence_user(&basic).as_deref(), Some("ab-12"));
        let bare = json!({"resource": "communications/presences('cd-34')"});
        assert_eq!(presence_user(&bare).as_deref(), Some("cd-34"));
        let record = json!({"resource": "communications/callRecords/x",
            "resourceData": {"@odata.type": "#Microsoft.Graph.callrecord", "id": "x"}});
        assert_eq!(presence_user(&record), None);
    }

    #[test]
    fn a_bot_callback_without_its_token_is_refused() {
        let body = r##"{"@odata.type":"#microsoft.graph.commsNotifications","value":[]}"##;
        assert!(matches!(
            receive(None, body),
            Err(AdapterError::Unauthenticated(_))
        ));
    }

    fn call(id: &str, state: &str, extra: Value) -> Value {
        let mut data = json!({"id": id, "state": state, "direction": "incoming",
            "callChainId": "chain-1",
            "source": {"identity": {"phone": {"id": "+41446681800"}}},
            "targets": [{"identity": {"user": {"id": "u-alice"}}}]});
        if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
            data.extend(extra.clone());
        }
        data
    }

    #[test]
    fn notifications_out_of_order_or_twice_still_ring_answer_and_end_once() {
        let mut tracker = Tracker::default();
        let rep_of = |u: &str| (u == "u-alice").then(|| "alice@example.com".to_string());
        let now = "2026-12-02T10:00:00Z";
        let first = tracker.apply("A", &call("A", "established", json!({})), &rep_of, now);
        let kinds: Vec<EventType> = first.iter().map(|e| e.event_type).collect();
        assert_eq!(kinds, [EventType::Ringing, EventType::Answered]);
        assert_eq!(first[0].from, "+41446681800");
        assert_eq!(first[0].call_id, "chain-1");
        assert!(
            tracker
                .apply("A", &call("A", "incoming", json!({})), &rep_of, now)
                .is_empty()
        );
        let end = json!({"resultInfo": {"code": 200, "subcode": 0}});
        let ended = tracker.apply("A", &call("A", "terminated", end.clone()), &rep_of, now);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].reason, Some(EndReason::Completed));
        assert_eq!(ended[0].id, "teams:chain-1:alice@example.com:ended");
        assert!(
            tracker
                .apply("A", &call("A", "terminated", end), &rep_of, now)
                .is_empty()
        );
    }

    #[test]
    fn a_recording_invitation_is_answered_once_and_only_the_rep_in_the_call_is_an_answer() {
        let mut tracker = Tracker::default();
        let rep_of = |u: &str| (u == "u-alice").then(|| "alice@example.com".to_string());
        let now = "2026-12-02T10:00:00Z";
        let context = json!({"incomingContext": {"observedParticipantId": "p-alice"}});
        let invited = call("A", "incoming", context.clone());
        let rung = tracker.apply("A", &invited, &rep_of, now);
        assert_eq!(rung.len(), 1);
        assert_eq!(rung[0].event_type, EventType::Ringing);
        assert!(tracker.should_answer("A", &invited), "answered at once");
        assert!(
            !tracker.should_answer("A", &invited),
            "a duplicate asks once"
        );
        // The bot joined: no answer yet, alice's phone still rings.
        let joined = tracker.apply(
            "A",
            &call("A", "established", context.clone()),
            &rep_of,
            now,
        );
        assert!(joined.is_empty(), "{joined:?}");
        let caller_only = json!([{"info": {"identity": {"phone": {"id": "+41446681800"}}}}]);
        assert!(tracker.participants("A", &caller_only, now).is_empty());
        let with_alice = json!([{"info": {"identity": {"phone": {"id": "+41446681800"}}}},
                                {"info": {"identity": {"user": {"id": "U-ALICE"}}}}]);
        let answered = tracker.participants("A", &with_alice, now);
        assert_eq!(answered.len(), 1);
        assert_eq!(answered[0].event_type, EventType::Answered);
        assert!(tracker.participants("A", &with_alice, now).is_empty());
        // An ordinary call the bot placed: established is the far end answering.
        let placed = call("B", "established", json!({"callChainId": "chain-2"}));
        let kinds: Vec<EventType> = tracker
            .apply("B", &placed, &rep_of, now)
            .iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(kinds, [EventType::Ringing, EventType::Answered]);
        assert!(!tracker.should_answer("B", &placed));
    }

    #[test]
    fn a_dropped_invitation_leaves_the_call_to_its_record() {
        let mut tracker = Tracker::default();
        let rep_of = |u: &str| (u == "u-alice").then(|| "alice@example.com".to_string());
        let now = "2026-12-02T10:00:00Z";
        let context = json!({"incomingContext": {"observedParticipantId": "p-alice"}});
        tracker.apply("A", &call("A", "incoming", context.clone()), &rep_of, now);
        assert!(tracker.seen_chains.contains("chain-1"));
        let mut dropped = context;
        dropped["resultInfo"] = json!({"code": 408, "subcode": 0});
        let events = tracker.apply("A", &call("A", "terminated", dropped), &rep_of, now);
        assert!(
            events.is_empty(),
            "nothing said of alice's call: {events:?}"
        );
        assert!(
            !tracker.seen_chains.contains("chain-1"),
            "the record logs it"
        );
    }

    #[test]
    fn a_graceful_transfer_ends_the_leg_as_transferred() {
        let mut tracker = Tracker::default();
        let rep_of = |u: &str| (u == "u-alice").then(|| "alice@example.com".to_string());
        let now = "2026-12-02T10:00:00Z";
        tracker.apply("A", &call("A", "established", json!({})), &rep_of, now);
        tracker
            .transfer_targets
            .insert("A".into(), "bob@example.com".into());
        let done = json!({"resultInfo": {"code": 0, "subcode": 7015,
                                         "message": "GracefulTransferCompleted"}});
        let events = tracker.apply("A", &call("A", "terminated", done), &rep_of, now);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::Transferred);
        assert_eq!(events[0].transfer_to.as_deref(), Some("bob@example.com"));
        assert_eq!(events[0].reason, None, "the call waits for bob");
    }

    /// Graph's transfer notifications as its examples show them: the state, and at the end the
    /// `resultInfo` or `terminationReason`, nothing of the parties.
    fn bare(state: &str, extra: Value) -> Value {
        let mut data = json!({"@odata.type": "#microsoft.graph.call", "state": state});
        if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
            data.extend(extra.clone());
        }
        data
    }

    #[test]
    fn a_transfer_to_a_number_ends_the_call_and_a_failed_one_leaves_a_plain_end() {
        let rep_of = |u: &str| (u == "u-alice").then(|| "alice@example.com".to_string());
        let now = "2026-12-02T10:00:00Z";
        let done = json!({"resultInfo": {"code": 0, "subcode": 7015}});
        let mut tracker = Tracker::default();
        tracker.apply("A", &call("A", "established", json!({})), &rep_of, now);
        tracker
            .transfer_targets
            .insert("A".into(), "+41445550198".into());
        assert!(
            tracker
                .apply("A", &bare("transferring", json!({})), &rep_of, now)
                .is_empty()
        );
        let events = tracker.apply("A", &bare("terminated", done.clone()), &rep_of, now);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].event_type, EventType::Transferred);
        assert_eq!(events[0].transfer_to.as_deref(), Some("+41445550198"));
        assert_eq!(events[0].reason, Some(EndReason::Completed));
        // A consultative one ends with `terminationReason` alone.
        let mut tracker = Tracker::default();
        tracker.apply("B", &call("B", "established", json!({})), &rep_of, now);
        tracker
            .transfer_targets
            .insert("B".into(), "+41445550198".into());
        let events = tracker.apply(
            "B",
            &bare("terminated", json!({"terminationReason": "AppTransferred"})),
            &rep_of,
            now,
        );
        assert_eq!(events[0].reason, Some(EndReason::Completed));
        // Failed: the call is `established` again with a failing result; its end is plain.
        let mut tracker = Tracker::default();
        tracker.apply("C", &call("C", "established", json!({})), &rep_of, now);
        tracker
            .transfer_targets
            .insert("C".into(), "+41445550198".into());
        let failed = json!({"resultInfo": {"code": 500, "subCode": 7000}});
        assert!(
            tracker
                .apply("C", &bare("established", failed), &rep_of, now)
                .is_empty()
        );
        assert_eq!(
            tracker.failed_transfers,
            [(String::from("chain-1"), String::from("C"))]
        );
        let end = json!({"resultInfo": {"code": 200, "subcode": 0}});
        let events = tracker.apply("C", &bare("terminated", end), &rep_of, now);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::Ended);
    }

    #[test]
    fn a_transfer_made_in_the_teams_client_went_outside_when_the_record_shows_no_colleague() {
        let rep_of = |u: &str| match u {
            "u-alice" => Some("alice@example.com".to_string()),
            "u-bob" => Some("bob@example.com".to_string()),
            _ => None,
        };
        let now = "2026-12-02T10:00:00Z";
        let done = json!({"resultInfo": {"code": 0, "subcode": 7015}});
        let caller = json!({"phone": {"id": "+41446681800"}});
        let alice = json!({"user": {"id": "u-alice"}});
        let record = |callee: Value| {
            json!({"id": "chain-1", "endDateTime": "2026-12-02T10:00:01Z", "sessions": [
                {"startDateTime": "2026-12-02T09:59:00Z", "endDateTime": "2026-12-02T09:59:59Z",
                 "caller": {"identity": caller}, "callee": {"identity": alice}},
                {"startDateTime": "2026-12-02T09:59:59Z", "endDateTime": "2026-12-02T09:59:59Z",
                 "caller": {"identity": caller}, "callee": {"identity": callee}}]})
        };
        let mut tracker = Tracker::default();
        tracker.apply("A", &call("A", "established", json!({})), &rep_of, now);
        let handed = tracker.apply("A", &bare("terminated", done.clone()), &rep_of, now);
        assert_eq!(handed[0].event_type, EventType::Transferred);
        assert_eq!(
            (handed[0].transfer_to.as_deref(), handed[0].reason),
            (None, None)
        );
        // The record has no colleague's session: it went to the number it shows.
        let outside = tracker.outside_handovers(&record(json!({"phone": {"id": "+41445550197"}})));
        assert_eq!(outside.len(), 1);
        assert_eq!(outside[0].id, "teams:chain-1:alice@example.com:outside");
        assert_eq!(outside[0].event_type, EventType::Transferred);
        assert_eq!(outside[0].transfer_to.as_deref(), Some("+41445550197"));
        assert_eq!(outside[0].reason, Some(EndReason::Completed));
        assert_eq!(outside[0].at, now, "at the leg's own end");
        assert!(
            tracker
                .outside_handovers(&record(json!({"phone": {"id": "+41445550197"}})))
                .is_empty(),
            "told once"
        );
        // To a colleague: their leg came, and the record has their session.
        let mut tracker = Tracker::default();
        tracker.apply("A", &call("A", "established", json!({})), &rep_of, now);
        tracker.apply("A", &bare("terminated", done.clone()), &rep_of, now);
        let bobs = call(
            "B",
            "incoming",
            json!({"targets": [{"identity": {"user": {"id": "u-bob"}}}]}),
        );
        tracker.apply("B", &bobs, &rep_of, now);
        assert!(
            tracker
                .outside_handovers(&record(json!({"user": {"id": "u-bob"}})))
                .is_empty()
        );
        // To a Teams user outside the recording policy: the record has their session, but the
        // bot never heard their leg.
        let mut tracker = Tracker::default();
        tracker.apply("A", &call("A", "established", json!({})), &rep_of, now);
        tracker.apply("A", &bare("terminated", done), &rep_of, now);
        let outside = tracker.outside_handovers(&record(json!({"user": {"id": "u-carol"}})));
        assert_eq!(outside.len(), 1, "{outside:?}");
        assert_eq!(outside[0].reason, Some(EndReason::Completed));
    }

    #[test]
    fn a_transfer_to_a_colleague_whose_leg_never_came_ends_with_the_record() {
        let rep_of = |u: &str| match u {
            "u-alice" => Some("alice@example.com".to_string()),
            "u-bob" => Some("bob@example.com".to_string()),
            _ => None,
        };
        let now = "2026-12-02T10:00:00Z";
        let done = json!({"resultInfo": {"code": 0, "subcode": 7015}});
        let record =
            json!({"id": "chain-1", "endDateTime": "2026-12-02T10:00:09Z", "sessions": []});
        let handed = |tracker: &mut Tracker| {
            tracker.apply("A", &call("A", "established", json!({})), &rep_of, now);
            tracker
                .transfer_targets
                .insert("A".into(), "bob@example.com".into());
            tracker.apply("A", &bare("terminated", done.clone()), &rep_of, now)
        };
        // Bob is not under the recording policy: the bot never hears his leg.
        let mut tracker = Tracker::default();
        let events = handed(&mut tracker);
        assert_eq!(events[0].reason, None, "the call waits for bob");
        let outside = tracker.outside_handovers(&record);
        assert_eq!(outside.len(), 1, "{outside:?}");
        assert_eq!(outside[0].event_type, EventType::Transferred);
        assert_eq!(outside[0].transfer_to.as_deref(), Some("bob@example.com"));
        assert_eq!(outside[0].reason, Some(EndReason::Completed));
        assert_eq!(outside[0].at, now, "at the leg's own end");
        assert!(tracker.outside_handovers(&record).is_empty(), "told once");
        // Bob's leg came (before or after alice's ended): the call is his to end.
        for bob_first in [true, false] {
            let mut tracker = Tracker::default();
            let bobs = call(
                "B",
                "incoming",
                json!({"targets": [{"identity": {"user": {"id": "u-bob"}}}]}),
            );
            if bob_first {
                tracker.apply("B", &bobs, &rep_of, now);
            }
            handed(&mut tracker);
            if !bob_first {
                tracker.apply("B", &bobs, &rep_of, now);
            }
            assert!(
                tracker.outside_handovers(&record).is_empty(),
                "bob first: {bob_first}"
            );
        }
    }

    #[test]
    fn settings_read_from_the_tenants_file_keys_and_refuse_what_cannot_work() {
        let tenant = json!({
            "provider": "teams",
            "teams_tenant_id": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f",
            "teams_client_id": "app",
            "teams_client_secret": "entra-client-secret",
            "teams_bot_app_id": "bot",
            "teams_notification_url": "https://cti.acme.example/v1/tenants/acme/telephony/teams",
            "teams_client_state": "0123456789abcdef0123",
            "agents": {"8A34A46B-0000": "alice@acme.example"}
        });
        let TelephonySettings::Teams(settings) =
            serde_json::from_value::<TelephonySettings>(tenant).expect("settings")
        else {
            panic!("teams");
        };
        assert_eq!(settings.teams_graph_url, GRAPH_URL);
        assert_eq!(settings.teams_mode, "bot");
        let facts = TenantFacts {
            id: "acme",
            v2_url: "https://my1.crm.cloud.sap",
        };
        assert!(settings.check(&facts).is_ok());
        let mut presence = settings.clone();
        presence.teams_mode = "presence".into();
        presence.teams_bot_app_id = String::new();
        assert!(
            presence.check(&facts).is_err(),
            "presence needs a service account"
        );
        presence.teams_presence_refresh_token = Some(Secret::new("refresh"));
        assert!(presence.check(&facts).is_ok(), "the agents are watched");
        presence.agents.clear();
        assert!(presence.check(&facts).is_err(), "nobody to watch");
        presence.teams_presence_users = vec!["alice@acme.example".into()];
        assert!(presence.check(&facts).is_ok());
        let mut botless = settings.clone();
        botless.teams_bot_app_id = String::new();
        assert!(botless.check(&facts).is_err(), "bot mode needs the bot");
        let mut unknown = settings.clone();
        unknown.teams_mode = "spy".into();
        assert!(unknown.check(&facts).is_err());
        let mut short = settings.clone();
        short.teams_client_state = Secret::new("short");
        assert!(short.check(&facts).is_err());
        let mut elsewhere = settings.clone();
        elsewhere.teams_notification_url =
            "https://cti.acme.example/v1/tenants/other/telephony/teams".into();
        assert!(elsewhere.check(&facts).is_err());
        let demo = Settings::demo("http://127.0.0.1:1", "http://127.0.0.1:2", "acme");
        assert!(demo.check(&facts).is_err(), "the demo's secrets are public");
    }

    /// The simulator's throwaway test certificate (made for tests only).
    const TEST_CERTIFICATE: &str =
        include_str!("../../../../sim/src/teams/testdata/throwaway-app-cert.pem");
    const TEST_KEY: &str = include_str!("../../../../sim/src/teams/testdata/throwaway-app-key.pem");
    const TEST_PUBLIC_KEY: &str =
        include_str!("../../../../sim/src/teams/testdata/throwaway-app-public.pem");

    #[test]
    fn a_certificate_is_the_credential_instead_of_the_secret_never_besides_it() {
        let facts = TenantFacts {
            id: "acme",
            v2_url: "https://my1.crm.cloud.sap",
        };
        let mut settings = Settings::demo("https://sim.example", "https://cti.example", "acme");
        settings.teams_client_state = Secret::new("0123456789abcdef0123");
        settings.teams_client_secret = Secret::new("entra-secret");
        assert!(settings.check(&facts).is_ok());
        settings.teams_client_certificate = Some(TEST_CERTIFICATE.into());
        settings.teams_client_private_key = Some(Secret::new(TEST_KEY));
        assert!(settings.check(&facts).is_err(), "both");
        settings.teams_client_secret = Secret::default();
        assert!(settings.check(&facts).is_ok());
        settings.teams_client_private_key = None;
        assert!(settings.check(&facts).is_err(), "no key");
        settings.teams_client_private_key = Some(Secret::new("not a key"));
        assert!(settings.check(&facts).is_err(), "not a key");
    }

    #[test]
    fn the_client_assertion_carries_what_entra_id_checks() {
        let certificate =
            graph::Certificate::from_pem(TEST_CERTIFICATE, TEST_KEY).expect("certificate");
        let graph = Graph::new(
            "https://login.example",
            "https://graph.example",
            "tid",
            "app-id",
            graph::Credential::Certificate(certificate),
            std::sync::Arc::new(crate::clock::SystemClock),
            reqwest::Client::new(),
        );
        let assertion = graph.assertion_for_test().expect("signed");
        let header = jsonwebtoken::decode_header(&assertion).expect("header");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let x5t = header.x5t.expect("x5t");
        assert_eq!(x5t.len(), 27, "base64url of a 20-byte SHA-1");
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).expect("key");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["https://login.example/tid/oauth2/v2.0/token"]);
        validation.set_issuer(&["app-id"]);
        let claims = jsonwebtoken::decode::<Value>(&assertion, &key, &validation)
            .expect("valid")
            .claims;
        assert_eq!(claims["sub"], "app-id");
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let (nbf, exp) = (claims["nbf"].as_u64(), claims["exp"].as_u64());
        assert!(matches!((nbf, exp), (Some(n), Some(e)) if e > n && e - n <= 600));
    }
}
