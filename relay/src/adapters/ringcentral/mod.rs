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
//! Modules: `settings` (the tenant's keys), `api` (token and requests), `mapping` (notifications
//! to events, consult sessions), `shared` (what the mapping remembers, for every instance),
//! `connector` (the subscription's life), `commands` (call controls and dial); this file holds
//! the adapter's state and reads deliveries.

mod api;
mod commands;
mod connector;
mod mapping;
mod settings;
mod shared;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use cti_protocol::event::TelephonyEvent;
use cti_protocol::ws::CallCommand;
use futures_util::future::BoxFuture;
use parking_lot::{Mutex, MutexGuard};
use serde_json::Value;

use super::reps::Reps;
use super::rotation;
use super::{
    AdapterError, CommandError, Context, Inbound, Ingress, Link, LinkError, TelephonyAdapter,
};
use crate::adapters::call_state::AdapterState;
use crate::calls::Leg;
use crate::clock::SharedClock;
use api::{Api, ApiError};
use mapping::{Directory, Source, Tracker};
pub use settings::Settings;

/// The account-wide filter: every telephony session of the account.
const SESSIONS_FILTER: &str = "/restapi/v1.0/account/~/telephony/sessions";
/// How often the subscription is looked at when the tenant does not say.
const DEFAULT_WATCH_SECS: u64 = 60;
/// Least time between two reads of the directory for an extension it did not have.
const DIRECTORY_REREAD_MS: u64 = 60_000;
/// Failed looks at the subscription in a row before the connector gives up and starts again.
const MAX_FAILURES: u32 = 3;

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
    /// The tracker's facts for every instance (see `shared`).
    shared: AdapterState,
}

#[derive(Debug)]
pub struct RingCentralAdapter {
    inner: Arc<Inner>,
}

/// Asks RingCentral for a token with `settings` (the JWT grant, else client credentials), as
/// the connector does first: the admin page's connection test. The error names the status and
/// RingCentral's answer, never the secret.
pub(crate) async fn check_credentials(
    settings: &Settings,
    http: reqwest::Client,
) -> Result<(), String> {
    let api = Api::new(
        &settings.ringcentral_server_url,
        &settings.ringcentral_client_id,
        settings.ringcentral_client_secret.clone(),
        settings.ringcentral_jwt.clone(),
        http,
    );
    api.check_token().await.map_err(|e| e.to_string())
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
                shared: AdapterState::local(context.clock.clone(), &context.tenant, "ringcentral"),
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
        self.tracker.lock()
    }

    fn extensions(&self) -> MutexGuard<'_, Extensions> {
        self.extensions.lock()
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

    /// [`Inner::map`] with what other instances know of the session, and telling them after.
    async fn map_shared(&self, body: &Value, source: Source) -> Vec<TelephonyEvent> {
        shared::before(&self.shared, &self.tracker, body).await;
        let events = self.map(body, source);
        shared::after(&self.shared, &self.tracker, body).await;
        events
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
            let mut last = self.directory_read_ms.lock();
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
            let Some(peer) = session["parties"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["id"].as_str() == Some(pid.as_str()))
            else {
                continue;
            };
            let rep = peer["extensionId"]
                .as_str()
                .or_else(|| peer.pointer("/owner/extensionId")?.as_str())
                .and_then(|ext| self.reps.rep_of(ext));
            self.tracker().note_peer(&sid, &pid, peer, rep);
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
        let settings = &self.inner.settings;
        let fit = rotation::fit(
            &self.inner.tenant,
            "ringcentral_verification_token_previous",
            &settings.ringcentral_verification_token,
            settings.ringcentral_verification_token_previous.as_ref(),
            |token| same_secret(presented, token.as_bytes()),
        );
        if fit.is_none() {
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
        Ok(Ingress::Events(
            self.inner.map_shared(body, Source::Notification).await,
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
    use axum::http::HeaderMap;

    use serde_json::json;

    use super::settings::DEMO_VERIFICATION_TOKEN;
    use super::*;
    use crate::adapters::{TelephonySettings, TenantFacts};
    use crate::secret::Secret;

    fn adapter() -> RingCentralAdapter {
        adapter_with(Settings::demo(
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "demo",
        ))
    }

    fn adapter_with(settings: Settings) -> RingCentralAdapter {
        RingCentralAdapter::new(
            settings,
            Context {
                tenant: "demo".into(),
                http: reqwest::Client::new(),
                clock: std::sync::Arc::new(crate::clock::SystemClock),
                forgets_before_ms: None,
            },
        )
    }

    fn receive(headers: &[(&str, &str)], body: &str) -> Result<Ingress, AdapterError> {
        receive_by(&adapter(), headers, body)
    }

    fn receive_by(
        adapter: &RingCentralAdapter,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Ingress, AdapterError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
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

    /// Token rotation: with `ringcentral_verification_token_previous` set, deliveries carrying
    /// the old token (a subscription made before the change) are taken beside the new one's;
    /// without it they are refused, and the previous token is held to the same rules at start.
    #[test]
    fn during_a_rotation_the_previous_verification_token_is_still_taken() {
        const NEW: &str = "the-new-verification-0123";
        let body =
            r#"{"event":"/restapi/v1.0/account/1/telephony/sessions","body":{"parties":[]}}"#;
        let receive_with = |settings: &Settings, token: &str| {
            receive_by(
                &adapter_with(settings.clone()),
                &[("Verification-Token", token)],
                body,
            )
        };
        let mut settings = Settings::demo("http://127.0.0.1:1", "http://127.0.0.1:2", "demo");
        settings.ringcentral_verification_token = Secret::new(NEW);
        assert!(matches!(
            receive_with(&settings, DEMO_VERIFICATION_TOKEN),
            Err(AdapterError::Unauthenticated(_))
        ));
        settings.ringcentral_verification_token_previous =
            Some(Secret::new(DEMO_VERIFICATION_TOKEN));
        for token in [NEW, DEMO_VERIFICATION_TOKEN] {
            assert!(receive_with(&settings, token).is_ok(), "token {token}");
        }
        assert!(matches!(
            receive_with(&settings, "a-third-token-nobody-set"),
            Err(AdapterError::Unauthenticated(_))
        ));

        let facts = TenantFacts {
            id: "demo",
            v2_url: "https://my.crm.cloud.sap",
        };
        let mut real = settings.clone();
        real.ringcentral_client_secret = Secret::new("rc-client-secret");
        real.ringcentral_server_url = "https://platform.ringcentral.com".into();
        real.ringcentral_webhook_url =
            "https://cti.example/v1/tenants/demo/telephony/ringcentral".into();
        real.ringcentral_verification_token_previous =
            Some(Secret::new("the-old-verification-0123"));
        assert!(real.check(&facts).is_ok());
        for bad in ["short", DEMO_VERIFICATION_TOKEN] {
            real.ringcentral_verification_token_previous = Some(Secret::new(bad));
            let err = real.check(&facts).expect_err(bad);
            assert_eq!(err.var, "ringcentral_verification_token_previous", "{bad}");
        }
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
