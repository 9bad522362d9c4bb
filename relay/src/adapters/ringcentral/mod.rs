//! RingCentral: telephony-session notifications by webhook, call control by REST.
//!
//! The facts (paths, fields, headers, status codes) are the provider reference's section 2. Per
//! tenant the adapter holds an OAuth token (JWT bearer when `ringcentral_jwt` is set, else client
//! credentials) and one account-wide webhook subscription to telephony sessions. Its connector is
//! that subscription's life: created at start (RingCentral first POSTs a `Validation-Token`, which
//! [`TelephonyAdapter::receive`] echoes at once), the account's active calls read then, renewed
//! before `expiresIn`, watched (a deleted subscription simply stops delivering, so the connector
//! asks for it every `ringcentral_watch_secs`) and made again, with the active calls read again,
//! when RingCentral says it no longer exists. Every delivery must carry the subscription's
//! `Verification-Token`. Reps are the extensions' contact e-mails (the `agents` table overrides).
//!
//! Modules: `api` (token and requests), `mapping` (notifications to events, consult sessions).

mod api;
mod mapping;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use cti_protocol::event::{EventType, TelephonyEvent};
use cti_protocol::ws::CallCommand;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::reps::Reps;
use super::{
    AdapterError, CommandError, Context, Inbound, Ingress, Link, LinkError, SettingsError,
    TelephonyAdapter, TenantFacts,
};
use crate::calls::Leg;
use crate::clock::SharedClock;
use crate::secret::{Secret, mask_number};
use api::{Api, ApiError};
use mapping::{Directory, PendingConsult, Source, Tracker};

/// The demo's app and credentials at the simulator (public, so only for a V2 on this machine).
const DEMO_CLIENT_ID: &str = "cti-relay-ringcentral";
const DEMO_CLIENT_SECRET: &str = "demo-ringcentral-secret";
const DEMO_JWT: &str = "demo-ringcentral-jwt";
const DEMO_VERIFICATION_TOKEN: &str = "demo-ringcentral-verification";

/// The account-wide filter: every telephony session of the account.
const SESSIONS_FILTER: &str = "/restapi/v1.0/account/~/telephony/sessions";
/// How often the subscription is looked at when the tenant does not say.
const DEFAULT_WATCH_SECS: u64 = 60;
/// Least time between two reads of the directory for an extension it did not have.
const DIRECTORY_REREAD_MS: u64 = 60_000;
/// Failed looks at the subscription in a row before the connector gives up and starts again.
const MAX_FAILURES: u32 = 3;

/// A tenant's RingCentral account, flat among the tenant's keys (`"provider": "ringcentral"`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `https://platform.ringcentral.com` (or the simulator's `{sim}/sim/ringcentral`).
    pub ringcentral_server_url: String,
    pub ringcentral_client_id: String,
    pub ringcentral_client_secret: Secret,
    /// The JWT credential of the user the app acts as; without it, client credentials.
    #[serde(default)]
    pub ringcentral_jwt: Option<Secret>,
    /// This relay's public URL of `POST /v1/tenants/{tenant}/telephony/ringcentral`.
    pub ringcentral_webhook_url: String,
    /// Sent by RingCentral as `Verification-Token` on every delivery.
    pub ringcentral_verification_token: Secret,
    /// Reps' devices (rep e-mail -> RingCentral device id) for call-out, answer and consult;
    /// a rep without one dials by RingOut.
    #[serde(default)]
    pub ringcentral_device_ids: BTreeMap<String, String>,
    /// Seconds between looks at the subscription (a deleted one delivers nothing).
    #[serde(default)]
    pub ringcentral_watch_secs: Option<u64>,
    /// What the subscription covers: `account` (absent: every telephony session of the account,
    /// which needs an administrator's JWT) or `extensions` (one filter per rep's extension, for
    /// an app whose user may not watch the whole account).
    #[serde(default)]
    pub ringcentral_subscription: Option<String>,
    /// Extension id -> rep e-mail, where an extension's contact e-mail is not the rep's login.
    #[serde(default)]
    pub agents: BTreeMap<String, String>,
}

impl Settings {
    /// The simulator's account at `sim_url`, posting to the relay at `relay_url` for `tenant`.
    pub fn demo(sim_url: &str, relay_url: &str, tenant: &str) -> Self {
        // The simulator's demo reps' softphones (sim/src/ringcentral: device `80400{ext}`).
        let devices = [
            ("alice@example.com", "80400101"),
            ("bob@example.com", "80400102"),
            ("carol@example.com", "80400103"),
            ("dave@example.com", "80400104"),
        ];
        Settings {
            ringcentral_server_url: format!("{}/sim/ringcentral", sim_url.trim_end_matches('/')),
            ringcentral_client_id: DEMO_CLIENT_ID.into(),
            ringcentral_client_secret: Secret::new(DEMO_CLIENT_SECRET),
            ringcentral_jwt: Some(Secret::new(DEMO_JWT)),
            ringcentral_webhook_url: format!(
                "{}/v1/tenants/{tenant}/telephony/ringcentral",
                relay_url.trim_end_matches('/')
            ),
            ringcentral_verification_token: Secret::new(DEMO_VERIFICATION_TOKEN),
            ringcentral_device_ids: devices
                .iter()
                .map(|(rep, device)| (rep.to_string(), device.to_string()))
                .collect(),
            ringcentral_watch_secs: Some(2),
            ringcentral_subscription: None,
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
            ("ringcentral_server_url", &self.ringcentral_server_url),
            ("ringcentral_webhook_url", &self.ringcentral_webhook_url),
        ] {
            match reqwest::Url::parse(url) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
                Ok(u) if u.scheme() == "http" && is_loopback(url) && u.host_str().is_some() => {}
                _ => return refuse(var, format!("{url:?} is not an https URL")),
            }
        }
        let path = format!("/v1/tenants/{id}/telephony/ringcentral");
        let webhook_path = reqwest::Url::parse(&self.ringcentral_webhook_url)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        if !webhook_path.ends_with(&path) {
            // Another tenant's path would take the deliveries and refuse them (its token).
            return refuse(
                "ringcentral_webhook_url",
                format!("must be this relay's public URL of {path}"),
            );
        }
        if self.ringcentral_client_id.trim().is_empty() {
            return refuse("ringcentral_client_id", "must not be empty".into());
        }
        if self.ringcentral_client_secret.expose().is_empty() {
            return refuse("ringcentral_client_secret", "must not be empty".into());
        }
        let token = self.ringcentral_verification_token.expose();
        // RingCentral takes a verification token of up to 64 characters (inferred from its
        // developer guide); 16 is our floor for a secret.
        if token.len() < 16 || token.len() > 64 {
            return refuse(
                "ringcentral_verification_token",
                "must be 16 to 64 characters".into(),
            );
        }
        let demo = token == DEMO_VERIFICATION_TOKEN
            || self.ringcentral_client_secret.expose() == DEMO_CLIENT_SECRET;
        if demo && !is_loopback(v2_url) {
            return refuse(
                "ringcentral_verification_token",
                format!(
                    "talks to V2 at {v2_url} with the demo's public RingCentral secrets; set \
                     your own"
                ),
            );
        }
        if self.ringcentral_watch_secs == Some(0) {
            return refuse("ringcentral_watch_secs", "must be at least 1".into());
        }
        if let Some(scope) = self.ringcentral_subscription.as_deref()
            && !matches!(scope, "account" | "extensions")
        {
            return refuse(
                "ringcentral_subscription",
                format!("tenant {id:?}: {scope:?} is neither `account` nor `extensions`"),
            );
        }
        Ok(())
    }
}

fn is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.trim_matches(['[', ']']).to_string();
            Some(
                host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback()),
            )
        })
        .unwrap_or(false)
}

/// One extension of the account as the directory gave it.
#[derive(Debug, Clone)]
struct Extension {
    id: String,
    number: String,
    /// The rep's own phone, where RingOut calls them first.
    phone: Option<String>,
}

#[derive(Debug, Default)]
struct Extensions {
    all: Vec<Extension>,
}

/// Everything the adapter, its connector and its commands share.
#[derive(Debug)]
struct Inner {
    settings: Settings,
    api: Api,
    reps: Reps,
    extensions: Mutex<Extensions>,
    tracker: Mutex<Tracker>,
    /// When the directory was last read for an unknown extension (clock ms).
    directory_read_ms: Mutex<Option<u64>>,
    clock: SharedClock,
    tenant: String,
}

#[derive(Debug)]
pub struct RingCentralAdapter {
    inner: Arc<Inner>,
}

impl RingCentralAdapter {
    pub fn new(settings: Settings, context: Context) -> Self {
        let api = Api::new(
            &settings.ringcentral_server_url,
            &settings.ringcentral_client_id,
            settings.ringcentral_client_secret.clone(),
            settings.ringcentral_jwt.clone(),
            context.http,
        );
        RingCentralAdapter {
            inner: Arc::new(Inner {
                reps: Reps::new(settings.agents.clone()),
                settings,
                api,
                extensions: Mutex::new(Extensions::default()),
                tracker: Mutex::new(Tracker::default()),
                directory_read_ms: Mutex::new(None),
                clock: context.clock,
                tenant: context.tenant,
            }),
        }
    }
}

/// The directory as the mapping sees it: reps through [`Reps`], numbers through the extensions.
struct View<'a> {
    reps: &'a Reps,
    extensions: &'a Extensions,
}

impl Directory for View<'_> {
    fn rep_of(&self, extension_id: &str) -> Option<String> {
        self.reps.rep_of(extension_id)
    }

    fn extension_of_number(&self, number: &str) -> Option<String> {
        self.extensions
            .all
            .iter()
            .find(|e| e.number == number)
            .map(|e| e.id.clone())
    }
}

/// Compares without an early exit, so timing does not tell how much of a token was right.
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

impl Inner {
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        // Every update is a plain insert or removal, so a poisoned tracker is still consistent.
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn extensions(&self) -> MutexGuard<'_, Extensions> {
        self.extensions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> String {
        crate::clock::rfc3339(self.clock.now_ms())
    }

    /// Maps a notification body or a session read back, under the tracker's lock.
    fn map(&self, body: &Value, source: Source) -> Vec<TelephonyEvent> {
        let now = self.now();
        let extensions = self.extensions();
        let view = View {
            reps: &self.reps,
            extensions: &extensions,
        };
        self.tracker().apply(body, source, &view, &now)
    }

    /// A party of an extension the directory did not have (a user added since it was read):
    /// the directory is read again, at most once a minute.
    async fn learn_extensions(&self, body: &Value) {
        let unknown = {
            let extensions = self.extensions();
            body.get("parties")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p["extensionId"].as_str())
                .any(|ext| !extensions.all.iter().any(|e| e.id == ext))
        };
        if !unknown {
            return;
        }
        let now = self.clock.now_ms();
        {
            let mut last = self
                .directory_read_ms
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| now.saturating_sub(at) < DIRECTORY_REREAD_MS) {
                return;
            }
            *last = Some(now);
        }
        if let Err(err) = self.load_directory().await {
            tracing::warn!(tenant = %self.tenant, %err, "reading the RingCentral extensions again failed");
        }
    }

    /// A transfer names the party it went to (`peerId`); where that party was not seen yet (it
    /// rings after the transfer, or elsewhere), its session is read for the rep behind it. A
    /// failed read leaves the transfer without a known target (the rep's leg then ends).
    async fn learn_peers(&self, body: &Value) {
        let peers = self.tracker().unknown_peers(body);
        for (sid, pid) in peers {
            let Ok(session) = self
                .api
                .call(
                    Method::GET,
                    &format!("/restapi/v1.0/account/~/telephony/sessions/{sid}"),
                    None,
                )
                .await
            else {
                continue;
            };
            let rep = session["parties"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["id"].as_str() == Some(pid.as_str()))
                .and_then(|p| {
                    p["extensionId"]
                        .as_str()
                        .or(p.pointer("/owner/extensionId")?.as_str())
                })
                .and_then(|ext| self.reps.rep_of(ext));
            self.tracker().note_peer(&sid, &pid, rep);
        }
    }

    /// Reads the account's extensions (every page) into the rep table.
    async fn load_directory(&self) -> Result<(), ApiError> {
        let mut page = 1;
        let mut all = Vec::new();
        loop {
            let answer = self
                .api
                .call(
                    Method::GET,
                    &format!("/restapi/v1.0/account/~/extension?perPage=100&page={page}"),
                    None,
                )
                .await?;
            for record in answer["records"].as_array().into_iter().flatten() {
                let id = match &record["id"] {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => continue,
                };
                all.push((
                    Extension {
                        id,
                        number: record["extensionNumber"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        phone: record
                            .pointer("/contact/businessPhone")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    },
                    record
                        .pointer("/contact/email")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                ));
            }
            let pages = answer
                .pointer("/paging/totalPages")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            if page as u64 >= pages || page >= 1000 {
                break;
            }
            page += 1;
        }
        self.reps.replace_all(
            all.iter()
                .filter_map(|(e, mail)| Some((e.id.clone(), mail.clone()?))),
        );
        self.extensions().all = all.into_iter().map(|(e, _)| e).collect();
        Ok(())
    }

    fn extension_of_rep(&self, rep: &str) -> Option<Extension> {
        let id = self.reps.user_of(rep)?;
        self.extensions().all.iter().find(|e| e.id == id).cloned()
    }

    fn device_of(&self, rep: &str) -> Option<String> {
        self.settings
            .ringcentral_device_ids
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(rep))
            .map(|(_, d)| d.clone())
    }

    /// Subscriptions to our address left by an earlier run (a crash, a restart): deleted, or
    /// every notification would come once per subscription.
    async fn delete_stale_subscriptions(&self) {
        let Ok(list) = self
            .api
            .call(Method::GET, "/restapi/v1.0/subscription", None)
            .await
        else {
            return;
        };
        for sub in list["records"].as_array().into_iter().flatten() {
            let ours = sub.pointer("/deliveryMode/address").and_then(Value::as_str)
                == Some(self.settings.ringcentral_webhook_url.as_str());
            if let (true, Some(id)) = (ours, sub["id"].as_str()) {
                let gone = self
                    .api
                    .call(
                        Method::DELETE,
                        &format!("/restapi/v1.0/subscription/{id}"),
                        None,
                    )
                    .await;
                if let Err(err) = gone {
                    tracing::warn!(tenant = %self.tenant, %err, "an old RingCentral subscription stays");
                }
            }
        }
    }

    /// The event filters: the account's sessions, or each rep extension's.
    fn event_filters(&self) -> Vec<String> {
        if self.settings.ringcentral_subscription.as_deref() != Some("extensions") {
            return vec![SESSIONS_FILTER.to_string()];
        }
        self.reps
            .users()
            .into_iter()
            .map(|ext| format!("/restapi/v1.0/account/~/extension/{ext}/telephony/sessions"))
            .collect()
    }

    async fn create_subscription(&self) -> Result<(String, u64), ApiError> {
        let body = json!({
            "eventFilters": self.event_filters(),
            "deliveryMode": {
                "transportType": "WebHook",
                "address": self.settings.ringcentral_webhook_url,
                "verificationToken": self.settings.ringcentral_verification_token.expose(),
            },
        });
        let answer = self
            .api
            .call(Method::POST, "/restapi/v1.0/subscription", Some(&body))
            .await?;
        let id = answer["id"].as_str().unwrap_or_default().to_string();
        Ok((id, answer["expiresIn"].as_u64().unwrap_or(900)))
    }

    /// The account's active calls now: every extension's presence names its sessions, which are
    /// read and applied like notifications (deterministic ids: what the relay has is dropped).
    async fn preload(&self, link: &Link) -> Result<(), LinkError> {
        let extensions: Vec<String> = self.extensions().all.iter().map(|e| e.id.clone()).collect();
        let mut sessions: Vec<String> = Vec::new();
        for ext in extensions {
            if self.reps.rep_of(&ext).is_none() {
                continue;
            }
            let presence = self
                .api
                .call(
                    Method::GET,
                    &format!(
                        "/restapi/v1.0/account/~/extension/{ext}/presence?detailedTelephonyState=true&sipData=true"
                    ),
                    None,
                )
                .await
                .map_err(|e| LinkError(format!("reading presence: {e}")))?;
            for call in presence["activeCalls"].as_array().into_iter().flatten() {
                if let Some(sid) = call["telephonySessionId"].as_str()
                    && !sessions.iter().any(|s| s == sid)
                {
                    sessions.push(sid.to_string());
                }
            }
        }
        // The calls the relay holds as live that RingCentral no longer lists: they ended (or
        // changed hands) while nothing was delivered; their sessions say how.
        let mut reps: Vec<String> = self
            .reps
            .users()
            .iter()
            .filter_map(|u| self.reps.rep_of(u))
            .collect();
        reps.sort();
        reps.dedup();
        // A consult session stands for the call it consults on.
        let listed: Vec<String> = {
            let tracker = self.tracker();
            sessions.iter().map(|s| tracker.call_of(s)).collect()
        };
        let gone: Vec<(String, String)> = link
            .live_calls(&reps)
            .await
            .into_iter()
            .filter(|(call, _)| !listed.contains(call))
            .collect();
        for sid in sessions {
            let session = match self
                .api
                .call(
                    Method::GET,
                    &format!("/restapi/v1.0/account/~/telephony/sessions/{sid}"),
                    None,
                )
                .await
            {
                Ok(session) => session,
                // Ended between presence and now: its notifications told or will tell.
                Err(err) if err.status() == Some(404) => continue,
                Err(err) => return Err(LinkError(format!("reading a session: {err}"))),
            };
            for event in self.map(&session, Source::Snapshot) {
                link.deliver(event)
                    .await
                    .map_err(|e| LinkError(format!("the relay did not take a call: {e}")))?;
            }
        }
        for (call, rep) in gone {
            let events = match self
                .api
                .call(
                    Method::GET,
                    &format!("/restapi/v1.0/account/~/telephony/sessions/{call}"),
                    None,
                )
                .await
            {
                Ok(session) => self.map(&session, Source::Snapshot),
                Err(err) if err.status() == Some(404) => Vec::new(),
                Err(err) => return Err(LinkError(format!("reading a session: {err}"))),
            };
            let ended = events.iter().any(|e| {
                e.agent == rep && matches!(e.event_type, EventType::Ended | EventType::Transferred)
            });
            for event in events {
                link.deliver(event)
                    .await
                    .map_err(|e| LinkError(format!("the relay did not take a call: {e}")))?;
            }
            if !ended {
                // RingCentral has no session, or none of the rep's parties in it, any more:
                // the rep's leg is over (how, nobody can tell now).
                link.deliver(self.unseen_end(&call, &rep))
                    .await
                    .map_err(|e| LinkError(format!("the relay did not take a call: {e}")))?;
            }
        }
        Ok(())
    }

    /// The end of a rep's leg RingCentral no longer knows, with an id of its own (once per leg).
    fn unseen_end(&self, call: &str, rep: &str) -> TelephonyEvent {
        TelephonyEvent {
            id: format!("rc:{call}:{rep}:ended-unseen"),
            call_id: call.to_string(),
            event_type: EventType::Ended,
            direction: cti_protocol::event::Direction::Inbound,
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

    /// One run of the subscription's life; returns only when it cannot go on.
    async fn run(self: Arc<Self>, link: Link) -> Result<(), LinkError> {
        let watch = Duration::from_secs(
            self.settings
                .ringcentral_watch_secs
                .unwrap_or(DEFAULT_WATCH_SECS)
                .max(1),
        );
        self.load_directory()
            .await
            .map_err(|e| LinkError(format!("reading the extensions: {e}")))?;
        self.delete_stale_subscriptions().await;
        let (mut id, mut expires_in) = self
            .create_subscription()
            .await
            .map_err(|e| LinkError(format!("creating the subscription: {e}")))?;
        tracing::info!(tenant = %self.tenant, subscription = %id, expires_in, "RingCentral subscription created");
        link.up();
        if let Err(err) = self.preload(&link).await {
            link.down();
            return Err(err);
        }
        let mut renew_at = tokio::time::Instant::now() + renew_after(expires_in);
        let mut failures = 0;
        loop {
            let next = (tokio::time::Instant::now() + watch).min(renew_at);
            tokio::time::sleep_until(next).await;
            let renewing = tokio::time::Instant::now() >= renew_at;
            let answer = if renewing {
                self.api
                    .call(
                        Method::POST,
                        &format!("/restapi/v1.0/subscription/{id}/renew"),
                        None,
                    )
                    .await
            } else {
                self.api
                    .call(
                        Method::GET,
                        &format!("/restapi/v1.0/subscription/{id}"),
                        None,
                    )
                    .await
            };
            match answer {
                Ok(sub) => {
                    failures = 0;
                    if renewing {
                        expires_in = sub["expiresIn"].as_u64().unwrap_or(expires_in);
                        renew_at = tokio::time::Instant::now() + renew_after(expires_in);
                    }
                }
                Err(err) if err.status() == Some(404) => {
                    // RingCentral no longer has it (expired, deleted): a new one, and whatever
                    // happened to calls meanwhile read from the sessions.
                    link.down();
                    link.error(&format!(
                        "the subscription is gone ({err}); creating a new one"
                    ));
                    match self.create_subscription().await {
                        Ok((new_id, new_expiry)) => {
                            link.up();
                            id = new_id;
                            expires_in = new_expiry;
                            renew_at = tokio::time::Instant::now() + renew_after(expires_in);
                            tracing::info!(tenant = %self.tenant, subscription = %id, "RingCentral subscription created again");
                            if let Err(err) = self.load_directory().await {
                                link.error(&format!("reading the extensions: {err}"));
                            }
                            if let Err(err) = self.preload(&link).await {
                                link.down();
                                return Err(err);
                            }
                        }
                        Err(err) => {
                            return Err(LinkError(format!(
                                "creating the subscription again: {err}"
                            )));
                        }
                    }
                }
                Err(err) => {
                    failures += 1;
                    link.error(&format!("looking at the subscription: {err}"));
                    if failures >= MAX_FAILURES {
                        link.down();
                        return Err(LinkError(format!("RingCentral does not answer: {err}")));
                    }
                }
            }
        }
    }

    /// The rep's party on the call: as seen, else as RingCentral has it now (after a restart).
    async fn party(
        &self,
        call: &str,
        rep: &str,
        own_session: bool,
        action: &'static str,
    ) -> Result<(String, String), CommandError> {
        if let Some(found) = self.tracker().party_of(call, rep, own_session) {
            return Ok(found);
        }
        let ext = self
            .extension_of_rep(rep)
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 404,
                message: format!("{rep} has no RingCentral extension"),
            })?;
        let sid = if own_session {
            call.to_string()
        } else {
            self.tracker()
                .consult_of(call, &ext.id)
                .ok_or_else(|| CommandError::Rejected {
                    action,
                    status: 409,
                    message: "no consultation on this call".into(),
                })?
        };
        let session = self
            .api
            .call(
                Method::GET,
                &format!("/restapi/v1.0/account/~/telephony/sessions/{sid}"),
                None,
            )
            .await
            .map_err(|e| rejected(action, e))?;
        session["parties"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["extensionId"].as_str() == Some(ext.id.as_str())
                    && !matches!(
                        p.pointer("/status/code").and_then(Value::as_str),
                        Some("Disconnected" | "Gone")
                    )
            })
            .and_then(|p| p["id"].as_str())
            .map(|pid| (sid.clone(), pid.to_string()))
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 409,
                message: format!("{rep} is not on this call"),
            })
    }

    /// The rep's party in the call's own session, else in a session standing for it (the
    /// colleague's leg of a consult lives in the consult session).
    async fn any_party(
        &self,
        call: &str,
        rep: &str,
        action: &'static str,
    ) -> Result<(String, String), CommandError> {
        let seen_here = self.tracker().party_of(call, rep, true);
        if let Some(found) = seen_here {
            return Ok(found);
        }
        let seen_there = self.tracker().party_of(call, rep, false);
        if let Some(found) = seen_there {
            return Ok(found);
        }
        self.party(call, rep, true, action).await
    }

    async fn party_post(
        &self,
        sid: &str,
        pid: &str,
        verb: &str,
        body: Option<&Value>,
        action: &'static str,
    ) -> Result<(), CommandError> {
        self.api
            .call(
                Method::POST,
                &format!("/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/{pid}/{verb}"),
                Some(body.unwrap_or(&json!({}))),
            )
            .await
            .map(|_| ())
            .map_err(|e| rejected(action, e))
    }

    /// The body of a transfer to `target`: a rep's extension number, else a phone number.
    fn transfer_body(&self, target: &str) -> Result<Value, CommandError> {
        if let Some(ext) = self.extension_of_rep(target) {
            return Ok(json!({"extensionNumber": ext.number}));
        }
        if target.starts_with('+') && target.len() > 4 {
            return Ok(json!({"phoneNumber": target}));
        }
        Err(CommandError::Rejected {
            action: "transfer",
            status: 400,
            message: "the target is neither a rep with an extension nor an E.164 number".into(),
        })
    }

    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        let rep = call.agent.as_str();
        let action = command.name();
        match command {
            CallCommand::Answer => {
                let (sid, pid) = self.any_party(&call.id, rep, action).await?;
                let body = self.device_of(rep).map(|d| json!({"deviceId": d}));
                self.party_post(&sid, &pid, "answer", body.as_ref(), action)
                    .await
            }
            CallCommand::Decline => {
                let (sid, pid) = self.any_party(&call.id, rep, action).await?;
                self.tracker().declined.insert(pid.clone());
                self.party_post(&sid, &pid, "reject", None, action).await
            }
            CallCommand::Hold | CallCommand::Resume => {
                let (sid, pid) = self.party(&call.id, rep, true, action).await?;
                let verb = if matches!(command, CallCommand::Hold) {
                    "hold"
                } else {
                    "unhold"
                };
                self.party_post(&sid, &pid, verb, None, action).await
            }
            CallCommand::Hangup => {
                let (sid, pid) = self.any_party(&call.id, rep, action).await?;
                self.api
                    .call(
                        Method::DELETE,
                        &format!("/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/{pid}"),
                        None,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| rejected(action, e))
            }
            CallCommand::Transfer { target } => {
                let (sid, pid) = self.party(&call.id, rep, true, action).await?;
                let body = self.transfer_body(target)?;
                self.tracker()
                    .transfer_targets
                    .insert(pid.clone(), target.to_lowercase());
                self.party_post(&sid, &pid, "transfer", Some(&body), action)
                    .await
            }
            CallCommand::Consult { target } => self.consult(call, rep, target).await,
            CallCommand::CompleteTransfer => {
                let (sid, pid) = self.party(&call.id, rep, true, action).await?;
                let (consult, own) = self.party(&call.id, rep, false, action).await?;
                let body = json!({"telephonySessionId": consult, "partyId": own});
                self.party_post(&sid, &pid, "bridge", Some(&body), action)
                    .await
            }
            CallCommand::CancelConsult => {
                let (consult, _) = self.party(&call.id, rep, false, action).await?;
                self.api
                    .call(
                        Method::DELETE,
                        &format!("/restapi/v1.0/account/~/telephony/sessions/{consult}"),
                        None,
                    )
                    .await
                    .map_err(|e| rejected(action, e))?;
                let (sid, pid) = self.party(&call.id, rep, true, action).await?;
                self.party_post(&sid, &pid, "unhold", None, action).await
            }
            _ => Err(CommandError::Rejected {
                action,
                status: 501,
                message: "RingCentral has no such call control here".into(),
            }),
        }
    }

    /// Consult: the caller is held and the rep's phone calls the colleague (a call-out from the
    /// rep's device, a session of its own that stands for this call).
    async fn consult(&self, call: &Leg, rep: &str, target: &str) -> Result<(), CommandError> {
        let action = "consult";
        let refuse = |status: u16, message: String| CommandError::Rejected {
            action,
            status,
            message,
        };
        let device = self
            .device_of(rep)
            .ok_or_else(|| refuse(409, format!("{rep} has no device id for a consult call")))?;
        let own = self
            .extension_of_rep(rep)
            .ok_or_else(|| refuse(404, format!("{rep} has no RingCentral extension")))?;
        let colleague = self
            .extension_of_rep(target)
            .ok_or_else(|| refuse(404, "the target has no RingCentral extension".into()))?;
        let (sid, pid) = self.party(&call.id, rep, true, action).await?;
        if call.state != cti_protocol::ws::CallState::Held {
            self.party_post(&sid, &pid, "hold", None, action).await?;
        }
        // Registered before the call-out, whose first notification may come before its answer.
        self.tracker().pending.push(PendingConsult {
            call: call.id.clone(),
            rep_extension: own.id.clone(),
            target_extension: colleague.id.clone(),
        });
        let body =
            json!({"from": {"deviceId": device}, "to": {"extensionNumber": colleague.number}});
        let answer = self
            .api
            .call(
                Method::POST,
                "/restapi/v1.0/account/~/telephony/call-out",
                Some(&body),
            )
            .await;
        let mut tracker = self.tracker();
        tracker
            .pending
            .retain(|p| !(p.call == call.id && p.rep_extension == own.id));
        let answer = answer.map_err(|e| rejected(action, e))?;
        if let Some(consult) = answer.pointer("/session/id").and_then(Value::as_str) {
            tracker.aliases.insert(
                consult.to_string(),
                mapping::Alias {
                    call: call.id.clone(),
                    rep_extension: own.id,
                },
            );
        }
        Ok(())
    }

    async fn dial(&self, rep: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let action = "dial";
        if self.extensions().all.is_empty() {
            self.load_directory()
                .await
                .map_err(|e| rejected(action, e))?;
        }
        let ext = self
            .extension_of_rep(rep)
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 404,
                message: format!("{rep} has no RingCentral extension"),
            })?;
        tracing::info!(tenant = %self.tenant, to = %mask_number(e164), "dialling through RingCentral");
        if let Some(device) = self.device_of(rep) {
            let body = json!({"from": {"deviceId": device}, "to": {"phoneNumber": e164}});
            let answer = self
                .api
                .call(
                    Method::POST,
                    "/restapi/v1.0/account/~/telephony/call-out",
                    Some(&body),
                )
                .await
                .map_err(|e| rejected(action, e))?;
            return Ok(answer
                .pointer("/session/id")
                .and_then(Value::as_str)
                .map(str::to_string));
        }
        // RingOut: RingCentral calls the rep's own phone first, then the number; its answer names
        // no telephony session, the notifications bring it.
        let phone = ext.phone.ok_or_else(|| CommandError::Rejected {
            action,
            status: 409,
            message: format!("{rep} has neither a device id nor a business phone for RingOut"),
        })?;
        let body = json!({"from": {"phoneNumber": phone}, "to": {"phoneNumber": e164},
                          "playPrompt": false});
        self.api
            .call(
                Method::POST,
                &format!("/restapi/v1.0/account/~/extension/{}/ring-out", ext.id),
                Some(&body),
            )
            .await
            .map_err(|e| rejected(action, e))?;
        Ok(None)
    }
}

/// When to renew a subscription that lives `expires_in` seconds: at two thirds of its life.
fn renew_after(expires_in: u64) -> Duration {
    Duration::from_millis(expires_in.max(1) * 2000 / 3)
}

#[async_trait]
impl TelephonyAdapter for RingCentralAdapter {
    fn provider(&self) -> &'static str {
        "ringcentral"
    }

    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
        if request.method != Method::POST {
            return Err(AdapterError::MethodNotAllowed(request.method.clone()));
        }
        // The subscription's validation: echo the token at once, with an empty body.
        if let Some(token) = request.headers.get("Validation-Token") {
            let mut reply = StatusCode::OK.into_response();
            reply
                .headers_mut()
                .insert("Validation-Token", token.clone());
            return Ok(Ingress::Reply(reply));
        }
        let presented = request
            .headers
            .get("Verification-Token")
            .map(HeaderValue::as_bytes)
            .ok_or_else(|| {
                AdapterError::Unauthenticated("the Verification-Token header is missing".into())
            })?;
        let expected = self.inner.settings.ringcentral_verification_token.expose();
        if !same_secret(presented, expected.as_bytes()) {
            return Err(AdapterError::Unauthenticated(
                "the Verification-Token is not this subscription's".into(),
            ));
        }
        let value: Value =
            serde_json::from_slice(request.body).map_err(AdapterError::MalformedJson)?;
        let Some(body) = value.get("body").filter(|b| b.is_object()) else {
            return Err(AdapterError::InvalidEvent(
                "a notification has a `body` object".into(),
            ));
        };
        let event = value
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !event.ends_with("/telephony/sessions") {
            // Another filter's notification (presence): nothing for the relay.
            return Ok(Ingress::Events(Vec::new()));
        }
        self.inner.learn_extensions(body).await;
        self.inner.learn_peers(body).await;
        Ok(Ingress::Events(self.inner.map(body, Source::Notification)))
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

    fn adapter() -> RingCentralAdapter {
        RingCentralAdapter::new(
            Settings::demo("http://127.0.0.1:1", "http://127.0.0.1:2", "demo"),
            Context {
                tenant: "demo".into(),
                http: reqwest::Client::new(),
                clock: std::sync::Arc::new(crate::clock::SystemClock),
            },
        )
    }

    fn receive(headers: &[(&str, &str)], body: &str) -> Result<Ingress, AdapterError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        futures_util::FutureExt::now_or_never(adapter().receive(Inbound {
            method: &Method::POST,
            headers: &map,
            query: None,
            body: body.as_bytes(),
        }))
        .expect("receive does not wait")
    }

    #[test]
    fn the_validation_token_is_echoed_in_a_tiny_answer() {
        let Ok(Ingress::Reply(reply)) = receive(&[("Validation-Token", "abc-123")], "") else {
            panic!("a reply");
        };
        assert_eq!(reply.status(), 200);
        assert_eq!(reply.headers()["Validation-Token"], "abc-123");
    }

    #[test]
    fn a_delivery_without_the_verification_token_is_refused() {
        let body =
            r#"{"event":"/restapi/v1.0/account/1/telephony/sessions","body":{"parties":[]}}"#;
        for headers in [vec![], vec![("Verification-Token", "not-the-token-at-all")]] {
            assert!(matches!(
                receive(&headers, body),
                Err(AdapterError::Unauthenticated(_))
            ));
        }
        let Ok(Ingress::Events(events)) =
            receive(&[("Verification-Token", DEMO_VERIFICATION_TOKEN)], body)
        else {
            panic!("accepted");
        };
        assert!(events.is_empty());
    }

    #[test]
    fn settings_refuse_a_short_token_and_plain_http_to_a_real_account() {
        let facts = TenantFacts {
            id: "t",
            v2_url: "http://127.0.0.1:9",
        };
        let demo = Settings::demo("http://127.0.0.1:1", "http://127.0.0.1:2", "t");
        assert!(demo.check(&facts).is_ok());
        let mut short = demo.clone();
        short.ringcentral_verification_token = Secret::new("short");
        assert!(short.check(&facts).is_err());
        let mut elsewhere = demo.clone();
        elsewhere.ringcentral_webhook_url =
            "http://127.0.0.1:2/v1/tenants/other/telephony/ringcentral".into();
        assert!(elsewhere.check(&facts).is_err(), "another tenant's path");
        let mut plain = demo.clone();
        plain.ringcentral_server_url = "http://platform.ringcentral.com".into();
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
    fn a_tenant_names_ringcentral_beside_its_keys() {
        let tenant = json!({
            "provider": "ringcentral",
            "ringcentral_server_url": "https://platform.ringcentral.com",
            "ringcentral_client_id": "app",
            "ringcentral_client_secret": "rc-client-secret",
            "ringcentral_jwt": "eyJ.rc.jwt",
            "ringcentral_webhook_url": "https://cti.acme.example/v1/tenants/acme/telephony/ringcentral",
            "ringcentral_verification_token": "0123456789abcdef0123",
            "ringcentral_device_ids": {"alice@acme.example": "802"},
            "agents": {"62001": "alice@acme.example"}
        });
        let TelephonySettings::RingCentral(settings) =
            serde_json::from_value::<TelephonySettings>(tenant).expect("settings")
        else {
            panic!("ringcentral");
        };
        assert_eq!(
            settings.ringcentral_jwt.as_ref().map(Secret::expose),
            Some("eyJ.rc.jwt")
        );
        assert_eq!(settings.ringcentral_device_ids["alice@acme.example"], "802");
        assert_eq!(settings.agents["62001"], "alice@acme.example");
        let facts = TenantFacts {
            id: "acme",
            v2_url: "https://my1.crm.cloud.sap",
        };
        assert!(settings.check(&facts).is_ok());
    }

    #[test]
    fn settings_read_from_the_tenants_file_keys() {
        let settings: Settings = serde_json::from_value(json!({
            "ringcentral_server_url": "https://platform.ringcentral.com",
            "ringcentral_client_id": "id",
            "ringcentral_client_secret": "secret",
            "ringcentral_webhook_url": "https://relay.example.com/v1/tenants/t/telephony/ringcentral",
            "ringcentral_verification_token": "0123456789abcdef",
            "agents": {"62000000101": "alice@example.com"}
        }))
        .expect("settings");
        assert!(settings.ringcentral_jwt.is_none(), "client credentials");
        assert!(settings.ringcentral_device_ids.is_empty(), "RingOut");
        let facts = TenantFacts {
            id: "t",
            v2_url: "https://my.crm.cloud.sap",
        };
        assert!(settings.check(&facts).is_ok());
    }
}
