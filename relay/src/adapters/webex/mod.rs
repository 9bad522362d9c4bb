//! Webex Calling: `telephony_calls` webhook events, call control by REST.
//!
//! The facts (paths, fields, the signature header) are the provider reference's section 4.4. Per
//! tenant the adapter holds an integration's refresh token, granted once by an org admin with the
//! scopes `spark:calls_read spark:calls_write spark:people_read spark-admin:people_read`, and
//! one org-wide webhook (`ownedBy: "org"`) on `telephony_calls`, event `all`, with a secret.
//! Every delivery must carry `X-Spark-Signature`, the hex HMAC-SHA1 of the raw body keyed by
//! that secret. The connector is the webhook's life: stale webhooks to our URL deleted and ours
//! created at start, the reps' calls read then (`GET /v1/telephony/calls`), the webhook looked at
//! every `webex_watch_secs` and made again, with the calls read again, when Webex no longer has
//! it. Reps are the people's e-mails (the `agents` table overrides).
//!
//! Acting for a rep (inferred): the reference gives the call-control requests with the user's own
//! token; the relay holds one admin integration, so it names the rep with `personId` in the query
//! string, after Webex's admin APIs. Check this against your org.
//!
//! Modules: `api` (token and requests), `mapping` (events to the relay's, consultations).

mod api;
mod mapping;
mod shared;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::Method;
use cti_protocol::event::{Direction, EventType, TelephonyEvent};
use cti_protocol::ws::{CallCommand, CallState};
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use parking_lot::{Mutex, MutexGuard};
use serde::Deserialize;
use serde_json::{Value, json};

use super::reps::Reps;
use super::rotation;
use super::{
    AdapterError, CommandError, Context, Inbound, Ingress, Link, LinkError, SettingsError,
    TelephonyAdapter, TenantFacts,
};
use crate::adapters::call_state::AdapterState;
use crate::adapters::is_loopback;
use crate::calls::Leg;
use crate::clock::SharedClock;
use crate::secret::{Secret, mask_number};
use api::{Api, ApiError};
use mapping::{Directory, PendingConsult, Source, Tracker};

/// The demo's integration at the simulator (public, so only for a V2 on this machine).
const DEMO_CLIENT_ID: &str = "cti-relay-webex";
const DEMO_CLIENT_SECRET: &str = "demo-webex-secret";
const DEMO_REFRESH_TOKEN: &str = "demo-webex-refresh-token";
const DEMO_WEBHOOK_SECRET: &str = "demo-webex-webhook-secret";

/// The webhook's name at Webex (a label for the admin who lists them).
const WEBHOOK_NAME: &str = "CTI relay telephony_calls";
/// How often the webhook is looked at when the tenant does not say.
const DEFAULT_WATCH_SECS: u64 = 60;
/// Failed looks at the webhook in a row before the connector gives up and starts again.
const MAX_FAILURES: u32 = 3;
/// Least time between two reads of the directory for a person it did not have.
const DIRECTORY_REREAD_MS: u64 = 60_000;

/// A tenant's Webex org, flat among the tenant's keys (`"provider": "webex"`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `https://webexapis.com` (or the simulator's `{sim}/sim/webex`).
    pub webex_api_url: String,
    pub webex_client_id: String,
    pub webex_client_secret: Secret,
    /// The integration's refresh token, from the admin's one consent.
    pub webex_refresh_token: Secret,
    /// This relay's public URL of `POST /v1/tenants/{tenant}/telephony/webex`.
    pub webex_webhook_url: String,
    /// The webhook's secret: Webex signs every delivery with it.
    pub webex_webhook_secret: Secret,
    /// The secret `webex_webhook_secret` replaces, during a rotation: deliveries signed with it
    /// are still taken (with a warning) while the webhook made with the new one takes over.
    #[serde(default)]
    pub webex_webhook_secret_previous: Option<Secret>,
    /// Seconds between looks at the webhook (a deleted one delivers nothing).
    #[serde(default)]
    pub webex_watch_secs: Option<u64>,
    /// Webex person id -> rep e-mail, where a person's e-mail is not the rep's login.
    #[serde(default)]
    pub agents: BTreeMap<String, String>,
}

/// The admin page's connection test: the integration's refresh grant (the connector's first
/// step) and a read of its webhooks (what the connector reads first), saying whether one
/// already leads to this relay. Inferred: a refresh leaves the configured refresh token
/// usable (Webex documents a refresh token's lifetime, extended by use, and the simulator
/// hands the same one back), so the test does not spend it; the error names Webex's answer,
/// never a secret.
pub(crate) async fn check_credentials(
    settings: &Settings,
    http: reqwest::Client,
) -> Result<String, String> {
    let api = Api::new(
        &settings.webex_api_url,
        &settings.webex_client_id,
        settings.webex_client_secret.clone(),
        settings.webex_refresh_token.clone(),
        http,
    );
    let hooks = api
        .list("/v1/webhooks?max=100")
        .await
        .map_err(|e| e.to_string())?;
    let ours = hooks
        .iter()
        .filter(|h| {
            h.get("targetUrl").and_then(Value::as_str) == Some(settings.webex_webhook_url.as_str())
        })
        .count();
    Ok(match ours {
        0 => format!(
            "{} webhook(s), none to this relay yet (the relay registers it once the tenant is \
             configured)",
            hooks.len()
        ),
        n => format!("{} webhook(s), {n} to this relay", hooks.len()),
    })
}

impl Settings {
    /// The simulator's org at `sim_url`, posting to the relay at `relay_url` for `tenant`.
    pub fn demo(sim_url: &str, relay_url: &str, tenant: &str) -> Self {
        Settings {
            webex_api_url: format!("{}/sim/webex", sim_url.trim_end_matches('/')),
            webex_client_id: DEMO_CLIENT_ID.into(),
            webex_client_secret: Secret::new(DEMO_CLIENT_SECRET),
            webex_refresh_token: Secret::new(DEMO_REFRESH_TOKEN),
            webex_webhook_url: format!(
                "{}/v1/tenants/{tenant}/telephony/webex",
                relay_url.trim_end_matches('/')
            ),
            webex_webhook_secret: Secret::new(DEMO_WEBHOOK_SECRET),
            webex_webhook_secret_previous: None,
            webex_watch_secs: Some(2),
            agents: BTreeMap::new(),
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
            ("webex_api_url", &self.webex_api_url),
            ("webex_webhook_url", &self.webex_webhook_url),
        ] {
            match reqwest::Url::parse(url) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
                Ok(u) if u.scheme() == "http" && is_loopback(url) && u.host_str().is_some() => {}
                _ => return refuse(var, format!("{url:?} is not an https URL")),
            }
        }
        let path = format!("/v1/tenants/{id}/telephony/webex");
        let webhook_path = reqwest::Url::parse(&self.webex_webhook_url)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        if !webhook_path.ends_with(&path) {
            // Another tenant's path would take the deliveries and refuse them (its secret).
            return refuse(
                "webex_webhook_url",
                format!("must be this relay's public URL of {path}"),
            );
        }
        if self.webex_client_id.trim().is_empty() {
            return refuse("webex_client_id", "must not be empty".into());
        }
        if self.webex_client_secret.expose().is_empty() {
            return refuse("webex_client_secret", "must not be empty".into());
        }
        if self.webex_refresh_token.expose().is_empty() {
            return refuse("webex_refresh_token", "must not be empty".into());
        }
        let secrets = std::iter::once(("webex_webhook_secret", &self.webex_webhook_secret)).chain(
            self.webex_webhook_secret_previous
                .iter()
                .map(|previous| ("webex_webhook_secret_previous", previous)),
        );
        for (var, secret) in secrets {
            let secret = secret.expose();
            if secret.len() < 16 {
                return refuse(var, "must be at least 16 characters".into());
            }
            let demo = secret == DEMO_WEBHOOK_SECRET
                || self.webex_client_secret.expose() == DEMO_CLIENT_SECRET;
            if demo && !is_loopback(v2_url) {
                return refuse(
                    var,
                    format!(
                        "talks to V2 at {v2_url} with the demo's public Webex secrets; set your \
                         own"
                    ),
                );
            }
        }
        if self.webex_watch_secs == Some(0) {
            return refuse("webex_watch_secs", "must be at least 1".into());
        }
        Ok(())
    }
}

/// One Webex Calling user as the directory gave them.
#[derive(Debug, Clone, Default)]
struct Person {
    number: Option<String>,
    extension: Option<String>,
}

/// Everything the adapter, its connector and its commands share.
#[derive(Debug)]
struct Inner {
    settings: Settings,
    api: Api,
    reps: Reps,
    people: Mutex<HashMap<String, Person>>,
    tracker: Mutex<Tracker>,
    directory_read_ms: Mutex<Option<u64>>,
    clock: SharedClock,
    tenant: String,
    /// The tracker's facts for every instance (see `shared`).
    shared: AdapterState,
}

#[derive(Debug)]
pub struct WebexAdapter {
    inner: Arc<Inner>,
}

impl WebexAdapter {
    pub fn new(settings: Settings, context: Context) -> Self {
        let api = Api::new(
            &settings.webex_api_url,
            &settings.webex_client_id,
            settings.webex_client_secret.clone(),
            settings.webex_refresh_token.clone(),
            context.http,
        );
        WebexAdapter {
            inner: Arc::new(Inner {
                reps: Reps::new(settings.agents.clone()),
                settings,
                api,
                people: Mutex::new(HashMap::new()),
                tracker: Mutex::new(Tracker::default()),
                directory_read_ms: Mutex::new(None),
                shared: AdapterState::local(context.clock.clone(), &context.tenant, "webex"),
                clock: context.clock,
                tenant: context.tenant,
            }),
        }
    }

    /// Keeps the per-call state in `shared` (the relay's store) rather than this adapter's own
    /// memory, so other instances find it.
    pub fn with_call_state(mut self, shared: AdapterState) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.shared = shared;
        }
        self
    }
}

/// The directory as the mapping sees it.
struct View<'a> {
    reps: &'a Reps,
    people: &'a HashMap<String, Person>,
}

impl Directory for View<'_> {
    fn rep_of(&self, person: &str) -> Option<String> {
        self.reps.rep_of(person)
    }

    fn number_of(&self, person: &str) -> Option<String> {
        let p = self.people.get(person)?;
        p.number.clone().or_else(|| p.extension.clone())
    }

    fn rep_of_number(&self, number: &str) -> Option<String> {
        let number = number.trim();
        if number.is_empty() {
            return None;
        }
        self.people
            .iter()
            .find(|(_, p)| {
                p.number.as_deref() == Some(number) || p.extension.as_deref() == Some(number)
            })
            .and_then(|(id, _)| self.reps.rep_of(id))
    }

    fn is_rep(&self, rep: &str) -> bool {
        self.reps.user_of(rep).is_some()
    }
}

/// Whether `presented` (hex) is the HMAC-SHA1 of `body` keyed by `secret`, compared in constant
/// time.
fn signature_ok(secret: &str, body: &[u8], presented: &str) -> bool {
    let Ok(presented) = hex::decode(presented.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&presented).is_ok()
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

fn encode(value: &str) -> String {
    // Person ids are base64 (letters, digits, `+/=` or `-_`): only the first set needs escaping.
    value
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

impl Inner {
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock()
    }

    fn people(&self) -> MutexGuard<'_, HashMap<String, Person>> {
        self.people.lock()
    }

    fn now(&self) -> String {
        crate::clock::rfc3339(self.clock.now_ms())
    }

    fn map(&self, body: &Value, source: Source) -> Vec<TelephonyEvent> {
        let now = self.now();
        let people = self.people();
        let view = View {
            reps: &self.reps,
            people: &people,
        };
        self.tracker().apply(body, source, &view, &now)
    }

    /// [`Inner::map`] with what other instances know of the call, and telling them after.
    async fn map_shared(&self, body: &Value, source: Source) -> Vec<TelephonyEvent> {
        shared::before(&self.shared, &self.tracker, body, source).await;
        let events = self.map(body, source);
        shared::after(&self.shared, &self.tracker, body, source).await;
        events
    }

    /// Reads the org's people (with their calling data) into the rep table.
    async fn load_directory(&self) -> Result<(), ApiError> {
        let items = self
            .api
            .list("/v1/people?callingData=true&max=1000")
            .await?;
        let mut people = HashMap::new();
        let mut pairs = Vec::new();
        for item in items {
            let Some(id) = item.get("id").and_then(Value::as_str) else {
                continue;
            };
            if let Some(mail) = item
                .get("emails")
                .and_then(Value::as_array)
                .and_then(|m| m.first())
                .and_then(Value::as_str)
            {
                pairs.push((id.to_string(), mail.to_string()));
            }
            let numbers = item.get("phoneNumbers").and_then(Value::as_array);
            let number = numbers
                .into_iter()
                .flatten()
                .find(|n| n.get("type").and_then(Value::as_str) == Some("work"))
                .or_else(|| numbers.and_then(|n| n.first()))
                .and_then(|n| n.get("value").and_then(Value::as_str))
                .map(str::to_string);
            people.insert(
                id.to_string(),
                Person {
                    number,
                    extension: item
                        .get("extension")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                },
            );
        }
        self.reps.replace_all(pairs);
        *self.people() = people;
        Ok(())
    }

    /// A delivery about a person the directory did not have (a user added since it was read):
    /// the directory is read again, at most once a minute.
    async fn learn_person(&self, body: &Value) {
        let Some(actor) = body.get("actorId").and_then(Value::as_str) else {
            return;
        };
        if self.reps.rep_of(actor).is_some() || self.people().contains_key(actor) {
            return;
        }
        let now = self.clock.now_ms();
        {
            let mut last = self.directory_read_ms.lock();
            if last.is_some_and(|at| now.saturating_sub(at) < DIRECTORY_REREAD_MS) {
                return;
            }
            *last = Some(now);
        }
        if let Err(err) = self.load_directory().await {
            tracing::warn!(tenant = %self.tenant, %err, "reading the Webex people again failed");
        }
    }

    /// Webhooks to our URL left by an earlier run (a crash, a restart): deleted, or every event
    /// would come once per webhook.
    async fn delete_stale_webhooks(&self) {
        let Ok(items) = self.api.list("/v1/webhooks?max=100").await else {
            return;
        };
        for hook in items {
            let ours = hook.get("targetUrl").and_then(Value::as_str)
                == Some(self.settings.webex_webhook_url.as_str());
            if let (true, Some(id)) = (ours, hook.get("id").and_then(Value::as_str)) {
                let gone = self
                    .api
                    .call(
                        Method::DELETE,
                        &format!("/v1/webhooks/{}", encode(id)),
                        None,
                    )
                    .await;
                if let Err(err) = gone {
                    tracing::warn!(tenant = %self.tenant, %err, "an old Webex webhook stays");
                }
            }
        }
    }

    async fn create_webhook(&self) -> Result<String, ApiError> {
        let body = json!({
            "name": WEBHOOK_NAME,
            "targetUrl": self.settings.webex_webhook_url,
            "resource": "telephony_calls",
            "event": "all",
            "secret": self.settings.webex_webhook_secret.expose(),
            "ownedBy": "org",
        });
        let answer = self
            .api
            .call(Method::POST, "/v1/webhooks", Some(&body))
            .await?;
        Ok(answer
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// The reps' calls under way now, applied like deliveries (deterministic ids: what the relay
    /// has is dropped), and the end of every call the relay holds that Webex no longer lists.
    async fn catch_up(&self, link: &Link) -> Result<(), LinkError> {
        let users = self.reps.users();
        let mut listed: Vec<String> = Vec::new();
        for person in &users {
            let items = self
                .api
                .list(&format!("/v1/telephony/calls?personId={}", encode(person)))
                .await
                .map_err(|e| LinkError(format!("reading the calls: {e}")))?;
            for mut item in items {
                if let Some(object) = item.as_object_mut() {
                    object.insert("personId".into(), person.clone().into());
                }
                for event in self.map_shared(&item, Source::Snapshot).await {
                    if !listed.contains(&event.call_id) {
                        listed.push(event.call_id.clone());
                    }
                    link.deliver(event)
                        .await
                        .map_err(|e| LinkError(format!("the relay did not take a call: {e}")))?;
                }
                // A listed call that brought no event (already known) is still under way.
                let session = item
                    .get("callSessionId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let call = self.tracker().call_of(session);
                if !listed.contains(&call) {
                    listed.push(call);
                }
            }
        }
        let mut reps: Vec<String> = users.iter().filter_map(|u| self.reps.rep_of(u)).collect();
        reps.sort();
        reps.dedup();
        for (call, rep) in link.live_calls(&reps).await {
            if listed.contains(&call) {
                continue;
            }
            // Webex lists no call of the rep's any more: their leg ended while nothing was
            // delivered (how, nobody can tell now).
            link.deliver(self.unseen_end(&call, &rep))
                .await
                .map_err(|e| LinkError(format!("the relay did not take a call: {e}")))?;
        }
        Ok(())
    }

    /// The end of a rep's leg Webex no longer lists, with an id of its own (once per leg).
    fn unseen_end(&self, call: &str, rep: &str) -> TelephonyEvent {
        TelephonyEvent {
            id: format!("webex:{call}:{rep}:ended-unseen"),
            call_id: call.to_string(),
            event_type: EventType::Ended,
            direction: Direction::Inbound,
            // The relay holds the leg already; its numbers stay as they are.
            from: String::new(),
            to: String::new(),
            agent: rep.to_string(),
            at: self.now(),
            transfer_to: None,
            reason: None,
            recording_url: None,
        }
    }

    /// One run of the webhook's life; returns only when it cannot go on.
    async fn run(self: Arc<Self>, link: Link) -> Result<(), LinkError> {
        let watch = Duration::from_secs(
            self.settings
                .webex_watch_secs
                .unwrap_or(DEFAULT_WATCH_SECS)
                .max(1),
        );
        self.load_directory()
            .await
            .map_err(|e| LinkError(format!("reading the people: {e}")))?;
        self.delete_stale_webhooks().await;
        let mut id = self
            .create_webhook()
            .await
            .map_err(|e| LinkError(format!("creating the webhook: {e}")))?;
        tracing::info!(tenant = %self.tenant, webhook = %id, "Webex webhook created");
        link.up();
        if let Err(err) = self.catch_up(&link).await {
            link.down();
            return Err(err);
        }
        let mut failures = 0;
        loop {
            tokio::time::sleep(watch).await;
            match self
                .api
                .call(Method::GET, &format!("/v1/webhooks/{}", encode(&id)), None)
                .await
            {
                Ok(hook) => {
                    failures = 0;
                    // Webex disables a webhook whose deliveries keep failing (inferred from its
                    // `status` field): made again like a deleted one.
                    if hook.get("status").and_then(Value::as_str) == Some("active") {
                        continue;
                    }
                    let _ = self
                        .api
                        .call(
                            Method::DELETE,
                            &format!("/v1/webhooks/{}", encode(&id)),
                            None,
                        )
                        .await;
                }
                Err(err) if err.status() == Some(404) => {}
                Err(err) => {
                    failures += 1;
                    link.error(&format!("looking at the webhook: {err}"));
                    if failures >= MAX_FAILURES {
                        link.down();
                        return Err(LinkError(format!("Webex does not answer: {err}")));
                    }
                    continue;
                }
            }
            // Webex no longer has it (deleted, disabled): a new one, and whatever happened to
            // calls meanwhile read from the calls list.
            link.down();
            link.error("the webhook is gone; creating a new one");
            id = self
                .create_webhook()
                .await
                .map_err(|e| LinkError(format!("creating the webhook again: {e}")))?;
            tracing::info!(tenant = %self.tenant, webhook = %id, "Webex webhook created again");
            link.up();
            if let Err(err) = self.load_directory().await {
                link.error(&format!("reading the people: {err}"));
            }
            if let Err(err) = self.catch_up(&link).await {
                link.down();
                return Err(err);
            }
        }
    }

    /// The rep's Webex person id.
    fn person_of(&self, rep: &str, action: &'static str) -> Result<String, CommandError> {
        self.reps
            .user_of(rep)
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 404,
                message: format!("{rep} is not a Webex Calling user of the org"),
            })
    }

    /// The rep's callId on the call: as seen, else as Webex lists it now (after a restart).
    async fn leg(
        &self,
        call: &str,
        rep: &str,
        consult_own: bool,
        action: &'static str,
    ) -> Result<String, CommandError> {
        if let Some(found) = self.tracker().leg_of(call, rep, consult_own) {
            return Ok(found);
        }
        let person = self.person_of(rep, action)?;
        let items = self
            .api
            .list(&format!("/v1/telephony/calls?personId={}", encode(&person)))
            .await
            .map_err(|e| rejected(action, e))?;
        let tracker = self.tracker();
        items
            .iter()
            .find(|c| {
                let session = c
                    .get("callSessionId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let ours = tracker.call_of(session) == call;
                ours && (session != call) == consult_own
            })
            .and_then(|c| c.get("id").and_then(Value::as_str))
            .map(str::to_string)
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 409,
                message: format!("{rep} is not on this call"),
            })
    }

    /// `POST /v1/telephony/calls/{verb}` for the rep.
    async fn post(
        &self,
        person: &str,
        verb: &str,
        body: &Value,
        action: &'static str,
    ) -> Result<Value, CommandError> {
        self.api
            .call(
                Method::POST,
                &format!("/v1/telephony/calls/{verb}?personId={}", encode(person)),
                Some(body),
            )
            .await
            .map_err(|e| rejected(action, e))
    }

    /// What Webex dials for a transfer or consult target: a rep's extension (else work number),
    /// or an E.164 number.
    fn destination(&self, target: &str, action: &'static str) -> Result<String, CommandError> {
        if let Some(person) = self.reps.user_of(target) {
            let people = self.people();
            if let Some(p) = people.get(&person)
                && let Some(d) = p.extension.clone().or_else(|| p.number.clone())
            {
                return Ok(d);
            }
        }
        if target.starts_with('+') && target.len() > 4 {
            return Ok(target.to_string());
        }
        Err(CommandError::Rejected {
            action,
            status: 400,
            message: "the target is neither a rep with a Webex number nor an E.164 number".into(),
        })
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        let rep = call.agent.as_str();
        let action = command.name();
        if self.reps.user_of(rep).is_none() {
            // An instance that does not hold the webhook has not read the directory yet.
            self.load_directory()
                .await
                .map_err(|e| rejected(action, e))?;
        }
        let person = self.person_of(rep, action)?;
        // The call's legs as any instance heard them (this one may have heard none).
        shared::load_call(&self.shared, &self.tracker, &call.id).await;
        match command {
            CallCommand::Answer | CallCommand::Hold | CallCommand::Resume | CallCommand::Hangup => {
                let leg = self.leg(&call.id, rep, false, action).await?;
                let verb = match command {
                    CallCommand::Answer => "answer",
                    CallCommand::Hold => "hold",
                    CallCommand::Resume => "resume",
                    _ => "hangup",
                };
                self.post(&person, verb, &json!({"callId": leg}), action)
                    .await
                    .map(|_| ())
            }
            CallCommand::Decline => {
                // Webex has no reject verb: hanging up a ringing call turns it away (inferred).
                let leg = self.leg(&call.id, rep, false, action).await?;
                self.tracker().declined.insert(leg.clone());
                shared::note(&self.shared, &leg, "declined", Some("1")).await;
                self.post(&person, "hangup", &json!({"callId": leg}), action)
                    .await
                    .map(|_| ())
            }
            CallCommand::Transfer { target } => {
                let leg = self.leg(&call.id, rep, false, action).await?;
                let destination = self.destination(target, action)?;
                self.tracker()
                    .transfer_targets
                    .insert(leg.clone(), target.to_lowercase());
                shared::note(&self.shared, &leg, "target", Some(&target.to_lowercase())).await;
                let sent = self
                    .post(
                        &person,
                        "transfer",
                        &json!({"callId1": leg, "destination": destination}),
                        action,
                    )
                    .await;
                if sent.is_err() {
                    self.tracker().transfer_targets.remove(&leg);
                    shared::note(&self.shared, &leg, "target", None).await;
                }
                sent.map(|_| ())
            }
            CallCommand::Consult { target } => self.consult(call, rep, &person, target).await,
            CallCommand::CompleteTransfer => {
                let leg = self.leg(&call.id, rep, false, action).await?;
                let consult = self.leg(&call.id, rep, true, action).await?;
                let colleague = {
                    let tracker = self.tracker();
                    tracker
                        .legs
                        .values()
                        .find(|l| {
                            l.call == call.id
                                && l.rep != rep
                                && !l.consult_own
                                && l.state != "disconnected"
                        })
                        .map(|l| l.rep.clone())
                };
                if let Some(colleague) = colleague {
                    self.tracker()
                        .transfer_targets
                        .insert(leg.clone(), colleague.clone());
                    shared::note(&self.shared, &leg, "target", Some(&colleague)).await;
                }
                let sent = self
                    .post(
                        &person,
                        "transfer",
                        &json!({"callId1": leg, "callId2": consult}),
                        action,
                    )
                    .await;
                if sent.is_err() {
                    self.tracker().transfer_targets.remove(&leg);
                    shared::note(&self.shared, &leg, "target", None).await;
                }
                sent.map(|_| ())
            }
            CallCommand::CancelConsult => {
                let consult = self.leg(&call.id, rep, true, action).await?;
                self.post(&person, "hangup", &json!({"callId": consult}), action)
                    .await?;
                let leg = self.leg(&call.id, rep, false, action).await?;
                self.post(&person, "resume", &json!({"callId": leg}), action)
                    .await
                    .map(|_| ())
            }
            _ => Err(CommandError::Rejected {
                action,
                status: 501,
                message: "Webex has no such call control here".into(),
            }),
        }
    }

    /// Consult: the caller is held and the rep calls the colleague (a second call of the rep's,
    /// standing for this one).
    async fn consult(
        &self,
        call: &Leg,
        rep: &str,
        person: &str,
        target: &str,
    ) -> Result<(), CommandError> {
        let action = "consult";
        let colleague = self
            .reps
            .user_of(target)
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 404,
                message: "the target is not a Webex Calling user of the org".into(),
            })?;
        let destination = self.destination(target, action)?;
        let leg = self.leg(&call.id, rep, false, action).await?;
        if call.state != CallState::Held {
            self.post(person, "hold", &json!({"callId": leg}), action)
                .await?;
        }
        // Registered before the dial, whose first events may come before its answer.
        let pending = PendingConsult {
            call: call.id.clone(),
            rep_person: person.to_string(),
            target_person: colleague,
        };
        shared::consult_asked(&self.shared, &pending).await;
        self.tracker().pending.push(pending.clone());
        let answer = self
            .post(person, "dial", &json!({"destination": destination}), action)
            .await;
        self.tracker()
            .pending
            .retain(|p| !(p.call == call.id && p.rep_person == person));
        let alias = answer
            .as_ref()
            .ok()
            .and_then(|a| a.get("callSessionId").and_then(Value::as_str))
            .map(|session| {
                let alias = mapping::Alias {
                    call: call.id.clone(),
                    rep_person: person.to_string(),
                };
                self.tracker()
                    .aliases
                    .insert(session.to_string(), alias.clone());
                (session.to_string(), alias)
            });
        if let Some((session, alias)) = alias {
            shared::aliased(&self.shared, &session, &alias).await;
        }
        shared::consult_settled(&self.shared, &pending).await;
        answer.map(|_| ())
    }

    async fn dial(&self, rep: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let action = "dial";
        if self.reps.user_of(rep).is_none() {
            self.load_directory()
                .await
                .map_err(|e| rejected(action, e))?;
        }
        let person = self.person_of(rep, action)?;
        tracing::info!(tenant = %self.tenant, to = %mask_number(e164), "dialling through Webex");
        let answer = self
            .post(&person, "dial", &json!({"destination": e164}), action)
            .await?;
        Ok(answer
            .get("callSessionId")
            .and_then(Value::as_str)
            .map(str::to_string))
    }
}

#[async_trait]
impl TelephonyAdapter for WebexAdapter {
    fn provider(&self) -> &'static str {
        "webex"
    }

    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
        if request.method != Method::POST {
            return Err(AdapterError::MethodNotAllowed(request.method.clone()));
        }
        let presented = request
            .headers
            .get("X-Spark-Signature")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                AdapterError::Unauthenticated("the X-Spark-Signature header is missing".into())
            })?;
        let settings = &self.inner.settings;
        let fit = rotation::fit(
            &self.inner.tenant,
            "webex_webhook_secret_previous",
            &settings.webex_webhook_secret,
            settings.webex_webhook_secret_previous.as_ref(),
            |secret| signature_ok(secret, request.body, presented),
        );
        if fit.is_none() {
            return Err(AdapterError::Unauthenticated(
                "the X-Spark-Signature is not the webhook secret's".into(),
            ));
        }
        let value: Value =
            serde_json::from_slice(request.body).map_err(AdapterError::MalformedJson)?;
        if !value.is_object() {
            return Err(AdapterError::InvalidEvent(
                "a delivery is a JSON object".into(),
            ));
        }
        if value.get("resource").and_then(Value::as_str) != Some("telephony_calls") {
            // Another resource's event (a webhook an admin added to our URL): nothing for us.
            return Ok(Ingress::Events(Vec::new()));
        }
        self.inner.learn_person(&value).await;
        Ok(Ingress::Events(
            self.inner.map_shared(&value, Source::Webhook).await,
        ))
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
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::adapters::TelephonySettings;

    fn adapter() -> WebexAdapter {
        adapter_with(Settings::demo(
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "demo",
        ))
    }

    fn adapter_with(settings: Settings) -> WebexAdapter {
        WebexAdapter::new(
            settings,
            Context {
                tenant: "demo".into(),
                http: reqwest::Client::new(),
                clock: std::sync::Arc::new(crate::clock::SystemClock),
                forgets_before_ms: None,
            },
        )
    }

    fn sign(body: &str) -> String {
        let mut mac =
            Hmac::<sha1::Sha1>::new_from_slice(DEMO_WEBHOOK_SECRET.as_bytes()).expect("key");
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn receive(signature: Option<&str>, body: &str) -> Result<Ingress, AdapterError> {
        receive_by(&adapter(), signature, body)
    }

    fn receive_by(
        adapter: &WebexAdapter,
        signature: Option<&str>,
        body: &str,
    ) -> Result<Ingress, AdapterError> {
        let mut map = HeaderMap::new();
        if let Some(signature) = signature {
            map.insert(
                "X-Spark-Signature",
                HeaderValue::from_str(signature).expect("value"),
            );
        }
        futures_util::FutureExt::now_or_never(adapter.receive(Inbound {
            method: &Method::POST,
            headers: &map,
            query: None,
            body: body.as_bytes(),
        }))
        .expect("receive does not wait")
    }

    #[test]
    fn a_delivery_is_taken_only_with_the_secrets_signature() {
        // Another resource, so the check alone decides (no directory read).
        let body = r#"{"resource":"messages","event":"created","data":{}}"#;
        assert!(matches!(
            receive(None, body),
            Err(AdapterError::Unauthenticated(_))
        ));
        assert!(matches!(
            receive(Some("0123456789abcdef0123456789abcdef01234567"), body),
            Err(AdapterError::Unauthenticated(_))
        ));
        assert!(matches!(
            receive(Some("not hex"), body),
            Err(AdapterError::Unauthenticated(_))
        ));
        let Ok(Ingress::Events(events)) = receive(Some(&sign(body)), body) else {
            panic!("accepted");
        };
        assert!(events.is_empty());
        // The body is signed as sent: one byte more and the signature no longer fits.
        assert!(matches!(
            receive(Some(&sign(body)), &format!("{body} ")),
            Err(AdapterError::Unauthenticated(_))
        ));
    }

    /// Secret rotation: with `webex_webhook_secret_previous` set, deliveries signed with the
    /// old secret are taken beside those signed with the new one; without it they are refused,
    /// and the previous secret is held to the same rules at start.
    #[test]
    fn during_a_rotation_the_previous_webhook_secret_is_still_taken() {
        const NEW: &str = "the-new-webex-secret-0123";
        let body = r#"{"resource":"messages","event":"created","data":{}}"#;
        let signed = |secret: &str| {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("key");
            mac.update(body.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        };
        let receive_with = |settings: &Settings, signature: &str| {
            receive_by(&adapter_with(settings.clone()), Some(signature), body)
        };
        let mut settings = Settings::demo("http://127.0.0.1:1", "http://127.0.0.1:2", "demo");
        settings.webex_webhook_secret = Secret::new(NEW);
        assert!(matches!(
            receive_with(&settings, &signed(DEMO_WEBHOOK_SECRET)),
            Err(AdapterError::Unauthenticated(_))
        ));
        settings.webex_webhook_secret_previous = Some(Secret::new(DEMO_WEBHOOK_SECRET));
        for secret in [NEW, DEMO_WEBHOOK_SECRET] {
            assert!(
                receive_with(&settings, &signed(secret)).is_ok(),
                "signed with {secret}"
            );
        }
        assert!(matches!(
            receive_with(&settings, &signed("a-third-secret-nobody-set")),
            Err(AdapterError::Unauthenticated(_))
        ));

        let facts = TenantFacts {
            id: "demo",
            v2_url: "https://my.crm.cloud.sap",
        };
        let mut real = settings.clone();
        real.webex_client_secret = Secret::new("wx-client-secret");
        real.webex_api_url = "https://webexapis.com".into();
        real.webex_webhook_url = "https://cti.example/v1/tenants/demo/telephony/webex".into();
        real.webex_webhook_secret_previous = Some(Secret::new("the-old-webex-secret-0123"));
        assert!(real.check(&facts).is_ok());
        for bad in ["short", DEMO_WEBHOOK_SECRET] {
            real.webex_webhook_secret_previous = Some(Secret::new(bad));
            let err = real.check(&facts).expect_err(bad);
            assert_eq!(err.var, "webex_webhook_secret_previous", "{bad}");
        }
    }

    #[test]
    fn settings_refuse_a_short_secret_another_path_and_plain_http() {
        let facts = TenantFacts {
            id: "t",
            v2_url: "http://127.0.0.1:9",
        };
        let demo = Settings::demo("http://127.0.0.1:1", "http://127.0.0.1:2", "t");
        assert!(demo.check(&facts).is_ok());
        let mut short = demo.clone();
        short.webex_webhook_secret = Secret::new("short");
        assert!(short.check(&facts).is_err());
        let mut elsewhere = demo.clone();
        elsewhere.webex_webhook_url = "http://127.0.0.1:2/v1/tenants/other/telephony/webex".into();
        assert!(elsewhere.check(&facts).is_err());
        let mut plain = demo.clone();
        plain.webex_api_url = "http://webexapis.com".into();
        assert!(plain.check(&facts).is_err());
        let public = TenantFacts {
            id: "t",
            v2_url: "https://my.crm.cloud.sap",
        };
        assert!(
            demo.check(&public).is_err(),
            "the demo's secrets are public"
        );
    }

    #[test]
    fn a_tenant_names_webex_beside_its_keys() {
        let tenant = json!({
            "provider": "webex",
            "webex_api_url": "https://webexapis.com",
            "webex_client_id": "C0ffee",
            "webex_client_secret": "wx-client-secret",
            "webex_refresh_token": "wx-refresh",
            "webex_webhook_url": "https://cti.acme.example/v1/tenants/acme/telephony/webex",
            "webex_webhook_secret": "0123456789abcdef0123",
            "agents": {"Y2lzY29zcGFyazovL3VzL1BFT1BMRS8x": "alice@acme.example"}
        });
        let TelephonySettings::Webex(settings) =
            serde_json::from_value::<TelephonySettings>(tenant).expect("settings")
        else {
            panic!("webex");
        };
        assert_eq!(settings.webex_refresh_token.expose(), "wx-refresh");
        let facts = TenantFacts {
            id: "acme",
            v2_url: "https://my1.crm.cloud.sap",
        };
        assert!(settings.check(&facts).is_ok());
    }
}
