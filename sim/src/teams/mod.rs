//! A simulated Microsoft Teams tenant as a calling bot and a change-notification subscriber see
//! it: the Entra ID token endpoint (client credentials), Microsoft Graph (`users`, the bot's
//! `communications/calls` and their controls, `subscriptions` with the validation handshake and
//! lifecycle notifications, `communications/callRecords`), and the Bot Framework's OpenID
//! configuration and keys that sign the comms notifications posted to the bot.
//!
//! Everything is served under `/sim/teams`: the relay is configured with
//! `{sim}/sim/teams` as login URL (for `https://login.microsoftonline.com`),
//! `{sim}/sim/teams/graph` as Graph URL (for `https://graph.microsoft.com`) and
//! `{sim}/sim/teams/botframework/.well-known/openidconfiguration` as OpenID configuration.
//! Shapes follow the provider reference's section 3; where this module decides something the
//! reference does not say, the code says it is inferred and from what.
//!
//! The model (inferred from 3.1 and 3.3): every rep is under a compliance-recording policy, so
//! the bot receives a comms notification for each call of theirs. One Graph call is one rep's
//! leg; the legs of one conversation (a transfer's new leg, a consultation completed into the
//! call) share the call's `callChainId`, which is also the id of the call record written once
//! every leg ended (inferred: Graph documents the callRecord id as the call's chain id only
//! informally). The bot's calling webhook (set in the bot's registration in production) is the
//! relay's `{relay_url}/v1/tenants/{tenant}/telephony/teams`, the tenant being the one
//! `SimConfig::providers` names for `teams`.
//!
//! Compliance recording (reference 3.1, 3.4): the bot's Graph call of a policy leg is an
//! invitation to record the rep's call (`incomingContext` names the observed rep; its shape is
//! inferred). The bot answers it through Graph within [`POLICY_ANSWER_WINDOW_MS`]
//! (`Teams::policy_answer_window_ms`); its call is then `established` while the rep's phone may
//! still ring. The rep's own answer (the `answer` control: the rep picks up in Teams) shows in a
//! participants notification (`resourceUrl` `.../participants`, the roster as `resourceData`).
//! An invitation left unanswered past its window is dropped: the bot's call ends (`terminated`,
//! `resultInfo` code 408, inferred) and the rep's call goes on without the bot, which hears
//! nothing more of it (inferred: a policy that does not require recording lets the call proceed);
//! the call record is written as for any call. Calls the bot places itself (click-to-dial, a
//! consultation) are no invitations: `established` is the far end answering. Decline, redirect
//! and transfer act on the rep's leg through the bot's call as before (whether Graph lets a
//! recording bot do so is not in the reference).
//!
//! Presence (reference 3.1/3.2): a user is `Busy`/`InACall` while one of their legs is connected
//! and `Available` otherwise (inferred: Teams shows InACall once a call is connected). Presence
//! subscriptions (`/communications/presences/{id}` or `?$filter=id in ('a','b')`, at most 650
//! users, `changeType` `updated`, at most an hour) are taken only with a delegated token (a
//! refresh-token grant for the demo's service account; Graph's presence notifications page lists
//! application permissions as not supported): an app-only token gets 403. Each change is a basic
//! notification (no resource data); `GET /communications/presences/{id}` and
//! `POST /communications/getPresencesByUserId` read it.
//!
//! Simulator controls: `POST /sim/teams/calls {"from","agent","policy"?}` rings a rep and answers
//! `201 {"call_id","graph_call_id"}` once the relay took the `incoming` notification (with
//! `"policy": false` the rep is not under the policy: the bot hears nothing, only the call record
//! tells); `POST /sim/teams/calls/{id}/hangup` (the far end hangs up; `id` the chain or a leg),
//! `POST /sim/teams/calls/{id}/answer` (the far end of an outbound call answers; otherwise the
//! rep, or the consulted colleague, picks up in Teams), `POST /sim/teams/calls/{id}/transfer
//! {"target"}` (the rep transfers the answered call in the Teams client, blind, to a colleague's
//! mail or an E.164 number: the bot hears `transferring`, `transferAccepted` and `terminated`
//! with no target named), `GET /sim/teams/calls`, `GET /sim/teams/subscriptions`,
//! `POST /sim/teams/faults` with `{"remove_subscriptions":true}`, `{"reauthorize":true}`,
//! `POST /sim/teams/users/{mail}/policy {"recorded":bool}` puts a user under the recording
//! policy or takes them out of it (their calls then ring with no bot, as `"policy": false`);
//! `{"forge_callback":true}` (a changed signature, another audience, another tenant, no token; answers the statuses), `{"bad_client_state":true}`, `{"client_state":"<value>"}` (a callRecords notification to each subscription with that clientState; answers the statuses), `{"duplicate":bool}`,
//! `{"reorder":bool}`.

mod http;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::{Mutex, MutexGuard};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::SimConfig;

pub use http::routes;

/// The simulated Entra ID tenant (directory) id.
pub const TENANT_ID: &str = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f";
/// The Bot Framework's issuer of the tokens on calls to the bot (reference 3.3).
pub const BOT_ISSUER: &str = "https://api.botframework.com";
/// The key id the simulated Bot Framework signs with.
pub const KEY_ID: &str = "teams-sim-1";
/// The one scope of a client-credentials token for Graph.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The demo app registration and bot at the simulator (public, so only for a V2 on this machine).
pub const DEMO_CLIENT_ID: &str = "0d9a7c55-1b2e-4f3a-9c8d-7e6f5a4b3c2d";
pub const DEMO_CLIENT_SECRET: &str = "demo-teams-client-secret";
pub const DEMO_BOT_APP_ID: &str = "b07a9b1e-5c4d-4e3f-8a2b-1c0d9e8f7a6b";
/// The longest life of a callRecords subscription (Graph's documented maximum: 4,230 minutes).
pub const MAX_SUBSCRIPTION_MINUTES: i64 = 4230;
/// The longest life of a presence subscription (Graph: an hour).
pub const MAX_PRESENCE_SUBSCRIPTION_MINUTES: i64 = 60;
/// Graph's most users in one presence subscription's `$filter=id in (...)`.
pub const MAX_PRESENCE_USERS: usize = 650;
/// How long a bot has to answer a policy-based recording invitation (reference 3.1/3.4: 5 s;
/// 15 s for an ordinary call to a bot, which the simulator does not place).
pub const POLICY_ANSWER_WINDOW_MS: u64 = 5000;
/// The refresh token of the demo's service account (a user who holds the delegated
/// `Presence.Read.All`: Graph takes presence subscriptions only with a delegated token).
pub const DEMO_REFRESH_TOKEN: &str = "demo-teams-presence-refresh-token";
/// The service account that refresh token signs in as.
pub const DEMO_SERVICE_USER: &str = "cti-presence@example.com";

/// Throwaway certificates made only for tests (never used anywhere else): the app's, which a test
/// registers with the simulated app registration, and another nobody registered.
pub mod test_certificates {
    pub const APP_CERTIFICATE: &str = include_str!("testdata/throwaway-app-cert.pem");
    pub const APP_PRIVATE_KEY: &str = include_str!("testdata/throwaway-app-key.pem");
    pub const APP_PUBLIC_KEY: &str = include_str!("testdata/throwaway-app-public.pem");
    pub const OTHER_CERTIFICATE: &str = include_str!("testdata/throwaway-other-cert.pem");
    pub const OTHER_PRIVATE_KEY: &str = include_str!("testdata/throwaway-other-key.pem");
}

/// The `x5t` of a PEM certificate: base64url of the SHA-1 of its DER encoding (Microsoft identity
/// platform, "certificate credentials").
pub fn thumbprint(certificate_pem: &str) -> Option<String> {
    use sha1::Digest;
    let body: String = certificate_pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()?;
    Some(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der)))
}

/// One Entra user (a demo rep).
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub upn: String,
    pub mail: String,
    pub display_name: String,
}

/// The demo reps alice, bob, carol and dave @example.com, with fixed object ids.
pub fn demo_users() -> Vec<User> {
    ["alice", "bob", "carol", "dave"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut chars = name.chars();
            let display = chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default();
            User {
                id: format!("8a34a46b-3d17-4adc-8dce-dc4e7d5726{:02}", i + 1),
                upn: format!("{name}@example.com"),
                mail: format!("{name}@example.com"),
                display_name: display,
            }
        })
        .collect()
}

/// One Graph call: one rep's leg of a conversation.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub chain: String,
    /// `incoming` / `outgoing` as Graph says it.
    pub direction: &'static str,
    /// The rep (Entra user id) whose leg it is.
    pub user: String,
    /// The other party's identity (`{"phone":{"id":..}}` or `{"user":{"id":..}}`).
    pub other: Value,
    pub state: &'static str,
    pub answered: bool,
    /// Whether the bot hears of this call (the rep is under the policy).
    pub policy: bool,
    /// Why it ended (`resultInfo`), once terminated.
    pub result: Option<Value>,
    pub termination_reason: Option<&'static str>,
    pub started: String,
    pub answered_at: Option<String>,
    pub ended_at: Option<String>,
    /// A consultation call created by the bot for this rep (its colleague is `other`).
    pub consult: bool,
    /// The bot is invited to this leg as its compliance recorder (the rep is under the policy
    /// and the call is not one the bot placed): the bot's Graph call stands for the recording,
    /// which the bot answers on its own, within [`POLICY_ANSWER_WINDOW_MS`]; the rep's own
    /// answer shows in the call's participants.
    pub recording: bool,
    /// The bot answered the recording invitation (its call is `established`).
    pub bot_answered: bool,
    /// The invitation was dropped unanswered: the call goes on without the bot, which hears
    /// nothing more of it.
    pub bot_dropped: bool,
    /// When the bot was invited (the window runs from here).
    pub invited: Instant,
    /// The party outside the tenant's users (a number) the call was transferred to from this
    /// leg: no leg of the simulator's stands for it; the call record shows its session.
    pub handed_to: Option<Value>,
}

impl Call {
    /// The state of the bot's own call: a recording invitation is `incoming` until the bot
    /// answers it and `established` from then on, whether or not the rep answered (the rep's
    /// answer is in the participants); it follows the call's transfer and end. Other calls are
    /// the rep's leg as it is.
    fn bot_state(&self) -> &'static str {
        match (self.recording, self.state) {
            (true, "incoming" | "establishing" | "established") if self.bot_answered => {
                "established"
            }
            (true, "incoming" | "establishing" | "established") => "incoming",
            (_, state) => state,
        }
    }

    /// The call's participants as the bot's roster shows them: the caller, and the rep once
    /// the rep answered (inferred: Graph's participants notifications list who is in the call;
    /// a rep whose phone still rings is not).
    fn participants(&self) -> Value {
        let participant = |role: &str, identity: &Value| {
            json!({"@odata.type": "#microsoft.graph.participant",
                   "id": format!("{}-{role}", self.id.to_lowercase()),
                   "info": {"@odata.type": "#microsoft.graph.participantInfo",
                            "identity": identity},
                   "mediaStreams": [{"@odata.type": "#microsoft.graph.mediaStream",
                                     "mediaType": "audio", "direction": "sendReceive"}],
                   "isMuted": false, "isInLobby": false})
        };
        let mut roster = vec![participant("other", &self.other)];
        if self.answered && self.state != "terminated" {
            roster.push(participant("observed", &json!({"user": {"id": self.user}})));
        }
        Value::Array(roster)
    }

    /// The `resourceData` of a comms notification about this call.
    fn resource(&self) -> Value {
        let me = json!({"user": {"id": self.user}});
        let (source, target) = if self.direction == "incoming" {
            (self.other.clone(), me)
        } else {
            (me, self.other.clone())
        };
        let mut data = json!({
            "@odata.type": "#microsoft.graph.call",
            "@odata.id": format!("/communications/calls/{}", self.id),
            "id": self.id,
            "state": self.bot_state(),
            "direction": self.direction,
            "callChainId": self.chain,
            "source": {"@odata.type": "#microsoft.graph.participantInfo", "identity": source,
                       "region": "westeurope", "languageId": "en-US"},
            "targets": [{"@odata.type": "#microsoft.graph.invitationParticipantInfo",
                         "identity": target}],
            "requestedModalities": ["audio"],
            "tenantId": TENANT_ID,
        });
        if self.recording {
            // Who the recording is of: the rep (`observedParticipantId`) in a call from the
            // caller (inferred: Graph's incomingContext of a policy-recording invitation).
            data["incomingContext"] = json!({
                "@odata.type": "#microsoft.graph.incomingContext",
                "observedParticipantId": format!("{}-observed", self.id.to_lowercase()),
                "sourceParticipantId": format!("{}-other", self.id.to_lowercase()),
            });
        }
        if let Some(result) = &self.result {
            data["resultInfo"] = result.clone();
        }
        if let Some(reason) = self.termination_reason {
            data["terminationReason"] = reason.into();
        }
        data
    }
}

/// A change-notification subscription.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) resource: String,
    pub(crate) change_type: String,
    pub(crate) notification_url: String,
    pub(crate) lifecycle_url: Option<String>,
    pub(crate) client_state: Option<String>,
    pub(crate) expiration: String,
    pub(crate) expires_at: time::OffsetDateTime,
    /// The users a presence subscription covers (empty for callRecords).
    pub(crate) users: Vec<String>,
}

impl Subscription {
    pub(crate) fn json(&self) -> Value {
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id, "resource": self.resource, "changeType": self.change_type,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": self.expiration,
            "clientState": self.client_state,
            "applicationId": Value::Null,
            "latestSupportedTlsVersion": "v1_2",
        })
    }
}

/// An access token the tenant issued: until when, and for whom.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) expires: Instant,
    /// The signed-in user of a delegated token (refresh-token grant); None: app-only.
    pub(crate) user: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) tokens: HashMap<String, Issued>,
    /// Refresh tokens issued (each grant rotates it; the old one stays valid, as Entra's do
    /// until they expire).
    pub(crate) refresh_tokens: Vec<String>,
    /// Each user's presence as last notified: (availability, activity).
    pub(crate) presence: HashMap<String, (&'static str, &'static str)>,
    pub(crate) calls: HashMap<String, Call>,
    pub(crate) subscriptions: HashMap<String, Subscription>,
    pub(crate) records: HashMap<String, Value>,
    /// Users taken out of the compliance-recording policy (`/sim/teams/users/{mail}/policy`):
    /// the bot hears none of their legs.
    pub(crate) unrecorded: HashSet<String>,
}

/// One delivery to the relay: a body, where, and how it is authenticated.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) url: String,
    pub(crate) body: Value,
    /// A bot callback carries the Bot Framework's bearer token.
    pub(crate) signed: bool,
    pub(crate) ack: Option<oneshot::Sender<Result<(), String>>>,
    /// The faults in force when it was sent.
    pub(crate) duplicate: bool,
    pub(crate) reorder: bool,
}

/// The simulated Teams tenant.
#[derive(Debug)]
pub struct Teams {
    pub client_id: String,
    pub client_secret: String,
    pub bot_app_id: String,
    /// The bot's calling webhook (the relay's Teams endpoint), if a tenant uses Teams.
    pub bot_url: Option<String>,
    pub users: Vec<User>,
    state: Mutex<State>,
    pub(crate) duplicate: AtomicBool,
    pub(crate) reorder: AtomicBool,
    pub(crate) http: reqwest::Client,
    queue: mpsc::UnboundedSender<Outgoing>,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Outgoing>>>,
    /// Subscriptions created so far (tests see a recreation by it).
    pub created_subscriptions: AtomicU64,
    pub renewed_subscriptions: AtomicU64,
    pub reauthorized_subscriptions: AtomicU64,
    /// The longest life granted to a subscription, in seconds (0: as asked); tests shorten it
    /// to see renewals.
    pub max_subscription_secs: AtomicU64,
    /// The window a recording invitation is kept for the bot's answer, in milliseconds
    /// ([`POLICY_ANSWER_WINDOW_MS`]; tests set 0 to see an invitation dropped).
    pub policy_answer_window_ms: AtomicU64,
    /// Recording invitations dropped unanswered so far.
    pub dropped_invitations: AtomicU64,
    /// Certificates uploaded to the app registration: (x5t, public key).
    certificates: Mutex<Vec<(String, jsonwebtoken::DecodingKey)>>,
}

impl Teams {
    pub fn new(config: &SimConfig) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let (queue, inbox) = mpsc::unbounded_channel();
        let bot_url = config
            .providers
            .iter()
            .find(|p| p.name == "teams")
            .map(|p| {
                format!(
                    "{}/v1/tenants/{}/telephony/teams",
                    config.relay_url.trim_end_matches('/'),
                    p.tenant
                )
            });
        let teams = Teams {
            client_id: config.teams_client_id.clone(),
            client_secret: config.teams_client_secret.clone(),
            bot_app_id: config.teams_bot_app_id.clone(),
            bot_url,
            users: demo_users(),
            state: Mutex::new(State::default()),
            duplicate: AtomicBool::new(false),
            reorder: AtomicBool::new(false),
            http,
            queue,
            inbox: Mutex::new(Some(inbox)),
            created_subscriptions: AtomicU64::new(0),
            renewed_subscriptions: AtomicU64::new(0),
            reauthorized_subscriptions: AtomicU64::new(0),
            max_subscription_secs: AtomicU64::new(0),
            policy_answer_window_ms: AtomicU64::new(POLICY_ANSWER_WINDOW_MS),
            dropped_invitations: AtomicU64::new(0),
            certificates: Mutex::new(Vec::new()),
        };
        for (certificate, public_key) in &config.teams_certificates {
            if let Err(err) = teams.register_certificate(certificate, public_key) {
                tracing::warn!(%err, "a Teams certificate was not registered");
            }
        }
        teams
    }

    /// Uploads a certificate to the app registration (its PEM, and its public key as PEM, which
    /// Entra reads out of the certificate itself); its holder may then sign client assertions.
    pub fn register_certificate(
        &self,
        certificate_pem: &str,
        public_key_pem: &str,
    ) -> Result<(), String> {
        let x5t = thumbprint(certificate_pem).ok_or("not a PEM certificate")?;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .map_err(|e| e.to_string())?;
        self.certificates.lock().push((x5t, key));
        Ok(())
    }

    /// The public key of the registered certificate with this `x5t`.
    pub(crate) fn certificate(&self, x5t: &str) -> Option<jsonwebtoken::DecodingKey> {
        self.certificates
            .lock()
            .iter()
            .find(|(t, _)| t == x5t)
            .map(|(_, k)| k.clone())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    pub fn user_by_mail(&self, mail: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.mail.eq_ignore_ascii_case(mail) || u.upn.eq_ignore_ascii_case(mail))
    }

    /// Whether the user's calls are under the compliance-recording policy (every demo user is,
    /// unless a test took them out).
    pub fn recorded(&self, user_id: &str) -> bool {
        !self.lock().unrecorded.contains(&user_id.to_lowercase())
    }

    /// Puts the user under the recording policy, or takes them out of it.
    pub fn set_recorded(&self, user_id: &str, recorded: bool) {
        let id = user_id.to_lowercase();
        let mut state = self.lock();
        if recorded {
            state.unrecorded.remove(&id);
        } else {
            state.unrecorded.insert(id);
        }
    }

    pub fn user_by_id(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id.eq_ignore_ascii_case(id))
    }

    /// The calls (legs) the tenant has, in no order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.values().cloned().collect()
    }

    /// Live subscriptions' ids.
    pub fn subscriptions(&self) -> Vec<String> {
        let now = time::OffsetDateTime::now_utc();
        let mut ids: Vec<String> = self
            .lock()
            .subscriptions
            .values()
            .filter(|s| s.expires_at > now)
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The call record of a chain, once written.
    pub fn record(&self, chain: &str) -> Option<Value> {
        self.lock().records.get(chain).cloned()
    }

    pub(crate) fn issue_token(&self) -> String {
        self.issue(None)
    }

    /// A token for `user` (delegated) or the app (None).
    pub(crate) fn issue(&self, user: Option<&str>) -> String {
        let token = format!("eyJ0eXAi.sim-graph.{}", uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let mut state = self.lock();
        state.tokens.retain(|_, t| t.expires > now);
        state.tokens.insert(
            token.clone(),
            Issued {
                expires: now + Duration::from_secs(3599),
                user: user.map(str::to_string),
            },
        );
        token
    }

    /// Whether `refresh` is one the tenant issued (or the demo's); a new one when it is.
    pub(crate) fn rotate_refresh(&self, refresh: &str) -> Option<String> {
        let mut state = self.lock();
        let known =
            refresh == DEMO_REFRESH_TOKEN || state.refresh_tokens.iter().any(|r| r == refresh);
        if !known {
            return None;
        }
        let next = format!("sim-refresh.{}", uuid::Uuid::new_v4().simple());
        state.refresh_tokens.push(next.clone());
        if state.refresh_tokens.len() > 64 {
            state.refresh_tokens.remove(0);
        }
        Some(next)
    }

    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.token(token).is_some()
    }

    /// The issued token, if it is one and unexpired.
    pub(crate) fn token(&self, token: &str) -> Option<Issued> {
        self.lock()
            .tokens
            .get(token)
            .filter(|t| t.expires > Instant::now())
            .cloned()
    }

    /// A user's presence now, from their calls: `Busy`/`InACall` while one of their legs is
    /// connected, else `Available` (inferred: Teams shows InACall once a call is connected, not
    /// while it rings).
    pub fn presence_of(&self, user: &str) -> (&'static str, &'static str) {
        let state = self.lock();
        presence_in(&state, user)
    }

    /// A user's presence changed (or not) after one of their calls did: the presence
    /// subscriptions that cover the user hear of it (basic notifications, no resource data).
    pub(crate) fn presence_changed(&self, user: &str) {
        let subs = {
            let mut state = self.lock();
            let now = presence_in(&state, user);
            let before = state
                .presence
                .insert(user.to_string(), now)
                .unwrap_or(("Available", "Available"));
            if before == now {
                return;
            }
            let alive = time::OffsetDateTime::now_utc();
            state
                .subscriptions
                .values()
                .filter(|s| {
                    s.expires_at > alive && s.users.iter().any(|u| u.eq_ignore_ascii_case(user))
                })
                .cloned()
                .collect::<Vec<_>>()
        };
        for sub in subs {
            let body = json!({"value": [{
                "subscriptionId": sub.id, "clientState": sub.client_state,
                "changeType": "updated",
                "resource": format!("communications/presences('{user}')"),
                "subscriptionExpirationDateTime": sub.expiration,
                "resourceData": {"@odata.type": "#Microsoft.Graph.presence",
                                 "@odata.id": format!("communications/presences('{user}')"),
                                 "id": user},
                "tenantId": TENANT_ID,
            }]});
            self.send(Outgoing {
                url: sub.notification_url.clone(),
                body,
                signed: false,
                ack: None,
                duplicate: false,
                reorder: false,
            });
        }
    }

    /// Hands deliveries to the delivery task (started on first use).
    pub(crate) fn send(&self, mut outgoing: Outgoing) {
        outgoing.duplicate = self.duplicate.load(Ordering::Relaxed);
        outgoing.reorder = self.reorder.load(Ordering::Relaxed);
        if let Some(inbox) = self.inbox.lock().take() {
            tokio::spawn(run_deliveries(
                self.http.clone(),
                self.bot_app_id.clone(),
                inbox,
            ));
        }
        let _ = self.queue.send(outgoing);
    }

    /// A comms notification about `call` to the bot (nothing for a rep not under the policy).
    pub(crate) fn notify_call(
        &self,
        call: &Call,
        change: &str,
        ack: Option<oneshot::Sender<Result<(), String>>>,
    ) {
        self.notify_resource(call, change, call.resource(), ack);
    }

    /// A transfer's notification about `call`: as Graph's `call-transfer` examples show them,
    /// the call's `state` and, at its end, `resultInfo` or `terminationReason`, and nothing of
    /// its parties (the bot knows the call by the `resourceUrl`).
    pub(crate) fn notify_transfer_step(&self, call: &Call, change: &str) {
        let mut data = json!({"@odata.type": "#microsoft.graph.call", "state": call.bot_state()});
        if let Some(result) = &call.result {
            data["resultInfo"] = result.clone();
        }
        if let Some(reason) = call.termination_reason {
            data["terminationReason"] = reason.into();
        }
        self.notify_resource(call, change, data, None);
    }

    fn notify_resource(
        &self,
        call: &Call,
        change: &str,
        data: Value,
        ack: Option<oneshot::Sender<Result<(), String>>>,
    ) {
        let Some(url) = self
            .bot_url
            .clone()
            .filter(|_| call.policy && !call.bot_dropped)
        else {
            if let Some(ack) = ack {
                let _ = ack.send(Ok(()));
            }
            return;
        };
        let body = json!({
            "@odata.type": "#microsoft.graph.commsNotifications",
            "value": [{
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": change,
                "resourceUrl": format!("/communications/calls/{}", call.id),
                "resourceData": data,
            }]
        });
        self.send(Outgoing {
            url,
            body,
            signed: true,
            ack,
            duplicate: false,
            reorder: false,
        });
    }

    /// The rep's side of a recorded leg changed: the bot, once in the call, hears the
    /// participants (`resourceUrl` `.../participants`, the roster as `resourceData`).
    pub(crate) fn notify_participants(&self, call: &Call) {
        let Some(url) = self
            .bot_url
            .clone()
            .filter(|_| call.recording && call.bot_answered && !call.bot_dropped)
        else {
            return;
        };
        let body = json!({
            "@odata.type": "#microsoft.graph.commsNotifications",
            "value": [{
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "updated",
                "resourceUrl": format!("/communications/calls/{}/participants", call.id),
                "resourceData": call.participants(),
            }]
        });
        self.send(Outgoing {
            url,
            body,
            signed: true,
            ack: None,
            duplicate: false,
            reorder: false,
        });
    }

    /// Drops a recording invitation the bot left unanswered past its window: the bot's call
    /// ends (`deleted`, `terminated`, inferred `resultInfo` code 408) and the rep's call goes
    /// on without the bot, which hears nothing more of it (inferred: the reference gives the
    /// window, not what follows; a policy that does not require recording lets the call
    /// proceed). Whether it was dropped now.
    pub(crate) fn drop_invitation(&self, id: &str) -> bool {
        let call = {
            let mut state = self.lock();
            let Some(call) = state.calls.get_mut(id) else {
                return false;
            };
            if !call.recording
                || call.bot_answered
                || call.bot_dropped
                || call.state == "terminated"
            {
                return false;
            }
            call.bot_dropped = true;
            call.clone()
        };
        self.dropped_invitations.fetch_add(1, Ordering::Relaxed);
        let Some(url) = self.bot_url.clone().filter(|_| call.policy) else {
            return true;
        };
        let mut data = call.resource();
        data["state"] = "terminated".into();
        data["resultInfo"] = json!({"@odata.type": "#microsoft.graph.resultInfo",
            "code": 408, "subcode": 0,
            "message": "The bot did not answer the recording invitation in time"});
        let body = json!({
            "@odata.type": "#microsoft.graph.commsNotifications",
            "value": [{
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "deleted",
                "resourceUrl": format!("/communications/calls/{}", call.id),
                "resourceData": data,
            }]
        });
        self.send(Outgoing {
            url,
            body,
            signed: true,
            ack: None,
            duplicate: false,
            reorder: false,
        });
        true
    }

    /// Writes the chain's call record once every leg ended, and notifies the subscriptions.
    pub(crate) fn maybe_record(&self, chain: &str) {
        let (record, subs) = {
            let state = self.lock();
            let legs: Vec<&Call> = state.calls.values().filter(|c| c.chain == chain).collect();
            if legs.is_empty()
                || legs.iter().any(|c| c.state != "terminated")
                || state.records.contains_key(chain)
            {
                return;
            }
            let start = legs.iter().map(|c| c.started.clone()).min();
            let end = legs.iter().filter_map(|c| c.ended_at.clone()).max();
            let mut participants: Vec<Value> = Vec::new();
            let mut sessions = Vec::new();
            for leg in &legs {
                let me = json!({"user": {"id": leg.user,
                    "displayName": self.user_by_id(&leg.user).map(|u| u.display_name.clone())}});
                for p in [&me, &leg.other] {
                    if !participants.contains(p) {
                        participants.push(p.clone());
                    }
                }
                let (caller, callee) = if leg.direction == "incoming" {
                    (leg.other.clone(), me)
                } else {
                    (me, leg.other.clone())
                };
                let mut session = json!({
                    "id": leg.id,
                    "modalities": ["audio"],
                    "startDateTime": leg.answered_at.clone().unwrap_or(leg.started.clone()),
                    "endDateTime": leg.ended_at,
                    "caller": {"@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                               "identity": caller},
                    "callee": {"@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                               "identity": callee},
                });
                if !leg.answered {
                    // Inferred: an unanswered leg's session carries failureInfo at call setup.
                    session["failureInfo"] = json!({"stage": "callSetup", "reason": "NoAnswer"});
                }
                sessions.push(session);
                if let Some(outside) = &leg.handed_to {
                    // Where the caller went on talking: the number the leg was transferred to
                    // (inferred: a session of the transferee with the transfer target; the
                    // simulator plays no such leg, so it is timed at the hand-over).
                    let (caller, callee) = if leg.direction == "incoming" {
                        (leg.other.clone(), outside.clone())
                    } else {
                        (outside.clone(), leg.other.clone())
                    };
                    let at = leg.ended_at.clone().unwrap_or(leg.started.clone());
                    if !participants.contains(outside) {
                        participants.push(outside.clone());
                    }
                    sessions.push(json!({
                        "id": format!("{}-transferred", leg.id),
                        "modalities": ["audio"],
                        "startDateTime": at, "endDateTime": at,
                        "caller": {"@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                                   "identity": caller},
                        "callee": {"@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                                   "identity": callee},
                    }));
                }
            }
            let organizer = legs
                .iter()
                .min_by_key(|c| c.started.clone())
                .map(|c| {
                    if c.direction == "incoming" {
                        c.other.clone()
                    } else {
                        json!({"user": {"id": c.user}})
                    }
                })
                .unwrap_or(Value::Null);
            let record = json!({
                "id": chain, "version": 1, "type": "peerToPeer", "modalities": ["audio"],
                "lastModifiedDateTime": now_rfc3339(), "startDateTime": start, "endDateTime": end,
                "joinWebUrl": Value::Null, "organizer": organizer, "participants": participants,
                "sessions": sessions,
            });
            let subs: Vec<Subscription> = state
                .subscriptions
                .values()
                .filter(|s| {
                    s.resource.trim_start_matches('/') == "communications/callRecords"
                        && s.expires_at > time::OffsetDateTime::now_utc()
                })
                .cloned()
                .collect();
            (record, subs)
        };
        self.lock().records.insert(chain.to_string(), record);
        for sub in subs {
            let body = json!({"value": [{
                "subscriptionId": sub.id, "clientState": sub.client_state,
                "changeType": "created",
                "resource": format!("communications/callRecords/{chain}"),
                "subscriptionExpirationDateTime": sub.expiration,
                "resourceData": {"@odata.type": "#Microsoft.Graph.callrecord",
                                 "@odata.id": format!("communications/callRecords/{chain}"),
                                 "id": chain},
                "tenantId": TENANT_ID,
            }]});
            self.send(Outgoing {
                url: sub.notification_url.clone(),
                body,
                signed: false,
                ack: None,
                duplicate: false,
                reorder: false,
            });
        }
    }
}

fn presence_in(state: &State, user: &str) -> (&'static str, &'static str) {
    let talking = state.calls.values().any(|c| {
        c.user.eq_ignore_ascii_case(user)
            && matches!(c.state, "established" | "transferring" | "transferAccepted")
    });
    if talking {
        ("Busy", "InACall")
    } else {
        ("Available", "Available")
    }
}

/// A presence as Graph returns it.
pub(crate) fn presence_json(user: &str, (availability, activity): (&str, &str)) -> Value {
    json!({"id": user, "availability": availability, "activity": activity,
           "statusMessage": Value::Null})
}

/// The Bot Framework key: generated once per process (seconds of work), on a blocking thread.
struct KeyMaterial {
    encoding: EncodingKey,
    n: String,
    e: String,
}

static KEY: OnceLock<Result<KeyMaterial, String>> = OnceLock::new();

fn generate() -> Result<KeyMaterial, String> {
    let mut rng = rand::thread_rng();
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048)
        .map_err(|e| format!("RSA key generation failed: {e}"))?;
    let der = private
        .to_pkcs1_der()
        .map_err(|e| format!("RSA key encoding failed: {e}"))?;
    let public = private.to_public_key();
    Ok(KeyMaterial {
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    })
}

async fn key() -> Result<&'static KeyMaterial, String> {
    if KEY.get().is_none() {
        let _ = tokio::task::spawn_blocking(|| KEY.get_or_init(generate).is_ok()).await;
    }
    KEY.get_or_init(generate).as_ref().map_err(Clone::clone)
}

/// The JWKS the OpenID configuration points at.
pub(crate) async fn jwks() -> Result<Value, String> {
    let key = key().await?;
    Ok(
        json!({"keys": [{"kty": "RSA", "use": "sig", "kid": KEY_ID, "n": key.n, "e": key.e,
                        "endorsements": ["msteams"]}]}),
    )
}

/// A Bot Framework token for a call to the bot with app id `aud`.
pub(crate) async fn bot_token(aud: &str) -> Result<String, String> {
    bot_token_for(aud, TENANT_ID).await
}

/// A Bot Framework token naming tenant `tid` (another tenant's, for the forgery fault).
pub(crate) async fn bot_token_for(aud: &str, tid: &str) -> Result<String, String> {
    let key = key().await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({"iss": BOT_ISSUER, "aud": aud, "tid": tid,
                        "nbf": now - 5, "iat": now - 5, "exp": now + 3600,
                        "serviceurl": "https://smba.trafficmanager.net/emea/"});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KEY_ID.into());
    jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| e.to_string())
}

/// Attempts per delivery (the first and two retries; inferred, Graph retries for hours).
const ATTEMPTS: u32 = 3;
const REORDER_WINDOW: Duration = Duration::from_millis(150);

async fn run_deliveries(
    http: reqwest::Client,
    bot_app_id: String,
    mut inbox: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut held: Option<Outgoing> = None;
    loop {
        let next = match &held {
            None => inbox.recv().await,
            Some(_) => match tokio::time::timeout(REORDER_WINDOW, inbox.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    if let Some(late) = held.take() {
                        deliver(&http, &bot_app_id, late, false).await;
                    }
                    continue;
                }
            },
        };
        let Some(item) = next else { break };
        if item.reorder && held.is_none() {
            held = Some(item);
            continue;
        }
        let duplicate = item.duplicate;
        deliver(&http, &bot_app_id, item, duplicate).await;
        if let Some(late) = held.take() {
            deliver(&http, &bot_app_id, late, false).await;
        }
    }
}

async fn deliver(http: &reqwest::Client, aud: &str, item: Outgoing, duplicate: bool) {
    let times = if duplicate { 2 } else { 1 };
    let mut outcome = Ok(());
    for _ in 0..times {
        outcome = post(http, aud, &item).await;
    }
    if let Some(ack) = item.ack {
        let _ = ack.send(outcome);
    }
}

async fn post(http: &reqwest::Client, aud: &str, item: &Outgoing) -> Result<(), String> {
    let bytes = serde_json::to_vec(&item.body).map_err(|e| e.to_string())?;
    let mut last = String::new();
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        let mut request = http
            .post(&item.url)
            .header("content-type", "application/json; charset=utf-8")
            .body(bytes.clone());
        if item.signed {
            request = request.bearer_auth(bot_token(aud).await?);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                last = format!("the receiver answered {}", r.status());
                tracing::warn!(attempt, status = %r.status(), "Teams notification refused");
            }
            Err(err) => {
                last = format!("the receiver is unreachable: {}", err.without_url());
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Err(last)
}

pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A Graph call id (32 upper-case hex digits, as in the reference's samples).
pub(crate) fn new_call_id() -> String {
    uuid::Uuid::new_v4().simple().to_string().to_uppercase()
}

#[cfg(test)]
mod tests;
