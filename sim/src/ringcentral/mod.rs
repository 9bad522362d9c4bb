//! A simulated RingCentral account: OAuth, the extensions directory and presence, webhook
//! subscriptions with their validation handshake, telephony sessions with the call-control API,
//! and the deliveries of telephony-session notifications to the subscriptions' addresses.
//!
//! Everything is served under `/sim/ringcentral`, so the relay is configured with one server URL,
//! `{sim}/sim/ringcentral`, exactly as it would be with `https://platform.ringcentral.com`. The
//! shapes (paths, field names, headers, status codes) follow the provider reference's section 2
//! (RingCentral's SDK fixtures and developer guide); where this module decides something the
//! reference does not say, the code says it is inferred and from what.
//!
//! Simulator controls (tests and the demo): `POST /sim/ringcentral/calls {"from","agent"}` rings a
//! rep and answers `201 {"call_id"}` (the telephonySessionId) once the relay took the `Proceeding`
//! notification; `POST /sim/ringcentral/calls/{id}/hangup` is the caller (or far end) hanging up;
//! `POST /sim/ringcentral/calls/{id}/answer` is the far end of an outbound call answering;
//! `GET /sim/ringcentral/calls` lists the sessions, `GET /sim/ringcentral/subscriptions` the live
//! subscriptions; `POST /sim/ringcentral/faults` with `{"delete_subscriptions":true}`,
//! `{"duplicate":bool}` or `{"reorder":bool}`.
//!
//! Inside: `session` is the calls' state machine, `delivery` the webhook deliveries, `http` the
//! routes (the API and the controls).

mod delivery;
mod http;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::SimConfig;
use delivery::Outgoing;

pub use http::{RcError, routes};
pub use session::{PartyInfo, SessionInfo};

/// The simulated account's id, as RingCentral puts it in event paths and `accountId`.
pub const ACCOUNT_ID: &str = "37439510004";

/// The JWT credential the simulator accepts for the JWT-bearer grant (a real one is a signed JWT
/// made in the developer console; the simulator only compares it).
pub const DEMO_JWT: &str = "demo-ringcentral-jwt";

/// One user extension of the account.
#[derive(Debug, Clone)]
pub struct Extension {
    pub id: String,
    pub number: String,
    pub email: String,
    pub name: String,
    /// The rep's direct number (E.164).
    pub direct_number: String,
    /// The rep's softphone, for `call-out` and `answer`.
    pub device_id: String,
}

/// The demo reps: alice (101), bob (102), carol (103), dave (104).
pub fn demo_extensions() -> Vec<Extension> {
    ["alice", "bob", "carol", "dave"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let n = 101 + i;
            Extension {
                id: format!("6200000{n}"),
                number: n.to_string(),
                email: format!("{name}@example.com"),
                name: {
                    let mut chars = name.chars();
                    chars
                        .next()
                        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                },
                direct_number: format!("+1650555{n:04}"),
                device_id: format!("80400{n}"),
            }
        })
        .collect()
}

/// A webhook subscription as the account holds it.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) filters: Vec<String>,
    pub(crate) address: String,
    pub(crate) verification_token: Option<String>,
    pub(crate) expires_in: u64,
    pub(crate) expires_at: Instant,
    pub(crate) creation_time: String,
    pub(crate) expiration_time: String,
}

impl Subscription {
    fn live(&self, now: Instant) -> bool {
        self.expires_at > now
    }

    /// Whether a party of extension `ext` (None: no extension of ours) is covered, and under
    /// which event path. `owner` is the extension `~` stands for (the token's owner).
    fn event_for(&self, ext: Option<&str>, owner: &str) -> Option<String> {
        self.filters.iter().find_map(|filter| {
            let path = filter.split('?').next().unwrap_or_default();
            if path == "/restapi/v1.0/account/~/telephony/sessions" {
                return Some(format!(
                    "/restapi/v1.0/account/{ACCOUNT_ID}/telephony/sessions"
                ));
            }
            let ext_id = path
                .strip_prefix("/restapi/v1.0/account/~/extension/")?
                .strip_suffix("/telephony/sessions")?;
            let ext_id = if ext_id == "~" { owner } else { ext_id };
            (Some(ext_id) == ext).then(|| {
                format!("/restapi/v1.0/account/{ACCOUNT_ID}/extension/{ext_id}/telephony/sessions")
            })
        })
    }
}

/// What the account holds that changes.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Access tokens and when they expire.
    pub(crate) tokens: HashMap<String, Instant>,
    pub(crate) subscriptions: HashMap<String, Subscription>,
    pub(crate) sessions: HashMap<String, session::Session>,
    pub(crate) next_session: u64,
}

/// The simulated RingCentral account.
#[derive(Debug)]
pub struct RingCentral {
    pub client_id: String,
    pub client_secret: String,
    pub jwt: String,
    token_ttl: AtomicU64,
    subscription_ttl: AtomicU64,
    pub extensions: Vec<Extension>,
    state: Mutex<State>,
    pub(crate) duplicate: AtomicBool,
    pub(crate) reorder: AtomicBool,
    pub(crate) http: reqwest::Client,
    queue: mpsc::UnboundedSender<Outgoing>,
    /// The delivery task's end of the queue, until the first delivery starts the task (the
    /// simulator is built outside a runtime in some set-ups).
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Outgoing>>>,
    /// Subscriptions created so far (tests see a recreation by it).
    pub created_subscriptions: AtomicU64,
    /// Renewals so far (`POST .../renew` and `PUT`).
    pub renewed_subscriptions: AtomicU64,
}

impl RingCentral {
    pub fn new(config: &SimConfig) -> Self {
        // A fresh connection per delivery: a receiver that restarted is reached as it is now,
        // never through a connection its previous process left open (in one test process
        // those outlive a crashed relay).
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let (queue, inbox) = mpsc::unbounded_channel();
        RingCentral {
            client_id: config.ringcentral_client_id.clone(),
            client_secret: config.ringcentral_client_secret.clone(),
            jwt: config.ringcentral_jwt.clone(),
            token_ttl: AtomicU64::new(config.ringcentral_token_ttl_secs),
            subscription_ttl: AtomicU64::new(config.ringcentral_subscription_ttl_secs),
            extensions: demo_extensions(),
            state: Mutex::new(State::default()),
            duplicate: AtomicBool::new(false),
            reorder: AtomicBool::new(false),
            http,
            queue,
            inbox: Mutex::new(Some(inbox)),
            created_subscriptions: AtomicU64::new(0),
            renewed_subscriptions: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    pub fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.token_ttl.load(Ordering::Relaxed))
    }

    pub fn subscription_ttl(&self) -> u64 {
        self.subscription_ttl.load(Ordering::Relaxed)
    }

    /// Tests shorten the subscriptions' life to see renewals and expiry.
    pub fn set_subscription_ttl(&self, secs: u64) {
        self.subscription_ttl.store(secs.max(1), Ordering::Relaxed);
    }

    pub fn set_token_ttl(&self, secs: u64) {
        self.token_ttl.store(secs.max(1), Ordering::Relaxed);
    }

    pub fn extension_by_id(&self, id: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.id == id)
    }

    pub fn extension_by_number(&self, number: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.number == number)
    }

    pub fn extension_by_email(&self, email: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|e| e.email.eq_ignore_ascii_case(email))
    }

    /// Issues an access token.
    pub(crate) fn issue_token(&self) -> (String, u64) {
        let token = format!("rc-{}", uuid::Uuid::new_v4().simple());
        let ttl = self.token_ttl();
        let now = Instant::now();
        let mut state = self.lock();
        state.tokens.retain(|_, exp| *exp > now);
        state.tokens.insert(token.clone(), now + ttl);
        (token, ttl.as_secs())
    }

    /// Whether a bearer token is one the account issued and still valid.
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.lock()
            .tokens
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    /// Live subscriptions.
    /// The event filters of the live subscriptions, sorted (what the relay asked to hear).
    pub fn subscription_filters(&self) -> Vec<String> {
        let now = Instant::now();
        let mut filters: Vec<String> = self
            .lock()
            .subscriptions
            .values()
            .filter(|s| s.live(now))
            .flat_map(|s| s.filters.clone())
            .collect();
        filters.sort();
        filters
    }

    pub fn subscriptions(&self) -> Vec<String> {
        let now = Instant::now();
        let mut ids: Vec<String> = self
            .lock()
            .subscriptions
            .values()
            .filter(|s| s.live(now))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Gives every subscription `token` as its verification token, as if it had been made with
    /// it before the receiver's token changed (a rotation's overlap): deliveries carry it from
    /// now on. For tests; the number of subscriptions changed.
    pub fn verify_subscriptions_with(&self, token: &str) -> usize {
        let mut state = self.lock();
        for subscription in state.subscriptions.values_mut() {
            subscription.verification_token = Some(token.to_string());
        }
        state.subscriptions.len()
    }

    /// The fault `delete_subscriptions`: RingCentral dropping them (no deliveries, 404).
    pub fn delete_subscriptions(&self) -> usize {
        let mut state = self.lock();
        let n = state.subscriptions.len();
        state.subscriptions.clear();
        n
    }

    /// Hands notifications to the delivery task (started on first use).
    pub(crate) fn send(&self, outgoing: Vec<Outgoing>) {
        if let Some(inbox) = self.inbox.lock().take() {
            tokio::spawn(delivery::run(self.http.clone(), inbox));
        }
        for item in outgoing {
            let _ = self.queue.send(item);
        }
    }
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn rfc3339_in(secs: u64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs as i64);
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
