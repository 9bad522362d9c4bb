//! Telephony providers, each behind one trait.
//!
//! An adapter turns a provider's traffic into the relay's [`TelephonyEvent`]s and carries the
//! rep's call controls back to the provider. It owns what it needs for that (its secret, its URLs,
//! the shared HTTP client) and nothing else of the tenant's, so the rest of the relay never knows
//! which provider a call came from.
//!
//! Providers come in two shapes, and one seam serves both. A *pushed* provider posts to us
//! (RingCentral's webhooks, Microsoft Graph): its requests arrive at [`TelephonyAdapter::receive`],
//! and its [`TelephonyAdapter::connector`] owns the subscription's life (create, validate, renew,
//! recreate when lost). A *held* provider is reached over a connection the relay keeps open
//! (Genesys Cloud's notification WebSocket, a CTI or SIP link): the connector is that connection.
//! Either way the relay runs the connector per tenant on one instance (a lease), starts it again
//! with back-off and jitter, and shows its state in `/readyz` and `/metrics` ([`connector`]);
//! the connector catches up on what happened while it was away by reading the provider's current
//! calls, and [`reps`] tells which rep a provider's user is.
//!
//! Adding a provider:
//! 1. Write the adapter in a module of its own here (`adapters/<provider>.rs`, or a folder when it
//!    grows): its `Settings` (serde, with a `check` for what start-up must refuse) and a type
//!    implementing [`TelephonyAdapter`]. Its inbound traffic arrives at
//!    `GET`/`POST /v1/tenants/{tenant}/telephony/<provider>` ([`TelephonyAdapter::receive`]: events,
//!    or a subscription handshake's answer); a held connection or a subscription's renewal goes in
//!    [`TelephonyAdapter::connector`].
//! 2. Here, in this file: the module, one arm of [`TelephonySettings`] and one arm in [`build`]
//!    and [`TelephonySettings::check`]. Tenants choose it with `"provider": "<provider>"` in the
//!    tenants file, next to its settings.
//! 3. A double of the provider in the simulator (`sim/src/<provider>`, its module and routes
//!    registered in `sim/src/lib.rs`), so the integration tests drive it over real sockets the
//!    way they drive the generic PBX.
//! 4. The README (its settings, its endpoint) and docs/architecture.md's seams table.
//!
//! [`generic`] is built exactly this way.

pub mod asterisk;
pub mod call_state;
pub mod connector;
pub mod finesse;
pub mod freeswitch;
pub mod generic;
pub mod genesys;
pub mod reps;
pub mod ringcentral;
pub(crate) mod rotation;
pub mod sip;
pub mod teams;
pub mod webex;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use cti_protocol::event::{Direction, TelephonyEvent};
use cti_protocol::signature::SignatureError;
use cti_protocol::ws::{CallCommand, Control};
use futures_util::future::BoxFuture;
use serde::Deserialize;

use crate::calls::Leg;
use crate::clock::SharedClock;

pub use connector::{Link, LinkError};

/// Which provider a tenant's calls come from, with that provider's settings. In the tenants file
/// the tag sits at the tenant's top level (`"provider": "generic"`, the default when absent),
/// beside the provider's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum TelephonySettings {
    Generic(generic::Settings),
    #[serde(rename = "ringcentral")]
    RingCentral(ringcentral::Settings),
    Genesys(genesys::Settings),
    Teams(teams::Settings),
    Webex(webex::Settings),
    Finesse(finesse::Settings),
    Asterisk(asterisk::Settings),
    Freeswitch(freeswitch::Settings),
    Sip(sip::Settings),
}

impl TelephonySettings {
    /// The providers the demo offers, by name: the simulator plays them, except `sip`, whose
    /// PBX is a real Kamailio the demo starts on `127.0.0.1:5060`.
    pub const SIMULATED: &'static [&'static str] = &[
        "generic",
        "genesys",
        "ringcentral",
        "teams",
        "webex",
        "finesse",
        "asterisk",
        "freeswitch",
        "sip",
    ];

    /// The settings that reach `provider`'s simulator at `sim_url`, for the demo and the tests;
    /// `relay_url` and `tenant` say where a provider that calls in must post. None: no
    /// simulator of that name.
    pub fn demo(provider: &str, sim_url: &str, relay_url: &str, tenant: &str) -> Option<Self> {
        match provider {
            "generic" => Some(TelephonySettings::Generic(generic::Settings::demo(sim_url))),
            "ringcentral" => Some(TelephonySettings::RingCentral(ringcentral::Settings::demo(
                sim_url, relay_url, tenant,
            ))),
            "genesys" => Some(TelephonySettings::Genesys(genesys::Settings::demo(sim_url))),
            "teams" => Some(TelephonySettings::Teams(teams::Settings::demo(
                sim_url, relay_url, tenant,
            ))),
            "webex" => Some(TelephonySettings::Webex(webex::Settings::demo(
                sim_url, relay_url, tenant,
            ))),
            "finesse" => Some(TelephonySettings::Finesse(finesse::Settings::demo(sim_url))),
            "asterisk" => Some(TelephonySettings::Asterisk(asterisk::Settings::demo(
                sim_url,
            ))),
            "freeswitch" => Some(TelephonySettings::Freeswitch(freeswitch::Settings::demo(
                sim_url,
            ))),
            "sip" => Some(TelephonySettings::Sip(sip::Settings::demo(sim_url))),
            _ => None,
        }
    }

    /// What start-up must refuse in the provider's settings, checked with what it depends on
    /// in the tenant's.
    pub fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        match self {
            TelephonySettings::Generic(settings) => settings.check(tenant),
            TelephonySettings::RingCentral(settings) => settings.check(tenant),
            TelephonySettings::Genesys(settings) => settings.check(tenant),
            TelephonySettings::Teams(settings) => settings.check(tenant),
            TelephonySettings::Webex(settings) => settings.check(tenant),
            TelephonySettings::Finesse(settings) => settings.check(tenant),
            TelephonySettings::Asterisk(settings) => settings.check(tenant),
            TelephonySettings::Freeswitch(settings) => settings.check(tenant),
            TelephonySettings::Sip(settings) => settings.check(tenant),
        }
    }
}

/// The parts of a tenant's settings a provider's checks may depend on.
#[derive(Debug, Clone, Copy)]
pub struct TenantFacts<'a> {
    pub id: &'a str,
    pub v2_url: &'a str,
}

/// A provider setting start-up refuses, named by the variable (or key) that sets it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct SettingsError {
    pub var: &'static str,
    pub problem: String,
}

/// Whether a URL's host is this machine (a simulator, a local trial): where start-up lets plain
/// http and the demo's public secrets through.
pub(crate) fn is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(is_loopback_host))
        .unwrap_or(false)
}

/// [`is_loopback`] for a bare host name or address (`[::1]` in brackets or not).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What an adapter gets from the relay besides its settings.
#[derive(Debug, Clone)]
pub struct Context {
    /// The tenant it serves (for log lines and its webhook's path).
    pub tenant: String,
    /// The process's one HTTP client.
    pub http: reqwest::Client,
    pub clock: SharedClock,
    /// When nothing remembers the events seen across a restart (no Redis), this process's start
    /// (Unix milliseconds): a provider refuses requests signed before it. None: events seen are
    /// remembered (Redis), and a signature's window is the only bound.
    pub forgets_before_ms: Option<u64>,
}

/// The tenant's adapter. The one place, with [`TelephonySettings`], that lists the providers.
/// `call_state` is where the adapters that remember things of a call between notifications keep
/// them, so every instance (and one restarted) finds them ([`call_state`]).
pub fn build(
    settings: &TelephonySettings,
    context: Context,
    call_state: Arc<dyn call_state::CallStateStore>,
) -> Arc<dyn TelephonyAdapter> {
    let shared =
        |provider| call_state::AdapterState::new(call_state.clone(), &context.tenant, provider);
    match settings {
        TelephonySettings::Generic(settings) => {
            Arc::new(generic::GenericAdapter::new(settings.clone(), context))
        }
        TelephonySettings::RingCentral(settings) => {
            let shared = shared("ringcentral");
            Arc::new(
                ringcentral::RingCentralAdapter::new(settings.clone(), context)
                    .with_call_state(shared),
            )
        }
        TelephonySettings::Genesys(settings) => {
            Arc::new(genesys::GenesysAdapter::new(settings.clone(), context))
        }
        TelephonySettings::Teams(settings) => {
            let shared = shared("teams");
            Arc::new(teams::TeamsAdapter::new(settings.clone(), context).with_call_state(shared))
        }
        TelephonySettings::Webex(settings) => {
            let shared = shared("webex");
            Arc::new(webex::WebexAdapter::new(settings.clone(), context).with_call_state(shared))
        }
        TelephonySettings::Finesse(settings) => {
            let shared = shared("finesse");
            Arc::new(
                finesse::FinesseAdapter::new(settings.clone(), context).with_call_state(shared),
            )
        }
        TelephonySettings::Asterisk(settings) => {
            Arc::new(asterisk::AsteriskAdapter::new(settings.clone(), context))
        }
        TelephonySettings::Freeswitch(settings) => Arc::new(freeswitch::FreeswitchAdapter::new(
            settings.clone(),
            context,
        )),
        TelephonySettings::Sip(settings) => {
            Arc::new(sip::SipAdapter::new(settings.clone(), context))
        }
    }
}

/// One request to `/v1/tenants/{tenant}/telephony/{provider}`, body read within the limit.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The raw query string, where a handshake's token may come (Microsoft Graph's
    /// `validationToken`).
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

/// What an inbound request amounts to.
#[derive(Debug)]
pub enum Ingress {
    /// Call events, applied in order; the answer says whether any was new.
    Events(Vec<TelephonyEvent>),
    /// Call events, then a later and better account of calls the relay already has (a call
    /// record read after the call): the events first, so an amendment finds the leg they open or
    /// close.
    Amended {
        events: Vec<TelephonyEvent>,
        amendments: Vec<Amendment>,
    },
    /// The provider's handshake (a subscription's validation token echoed back): answered as is,
    /// no events.
    Reply(Response),
}

/// What a provider tells of a rep's leg after the fact, more exactly than its live events could:
/// the times by the provider's own clock, and the other party where the live events had none.
/// Applied to the leg and, once the call is over, to its activity (the same one, updated).
/// Times are RFC 3339; a field left `None` leaves the leg's as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Amendment {
    /// The relay's call id of the leg.
    pub call_id: String,
    pub agent: String,
    pub started_at: Option<String>,
    pub answered_at: Option<String>,
    pub ended_at: Option<String>,
    /// Which way the call went, where the live events could only assume it.
    pub direction: Option<Direction>,
    /// The other party's number as the provider gives it; taken only by a leg that has none
    /// (a number the relay was told live is never replaced).
    pub remote: Option<String>,
}

/// Why an inbound request was refused; the webhook route turns it into the HTTP error.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("Content-Type must be application/json, got {0:?}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("body is not valid JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("unknown event type {found:?}; expected one of: {expected}")]
    UnknownEventType { found: String, expected: String },
    /// The provider's own proof of who sent the request (a subscription's verification token)
    /// is missing or wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// Signed before this process started, while nothing remembers the events seen before it
    /// (no Redis): possibly a replay the restart made possible (review F5).
    #[error("signed before this relay started; sign the delivery again")]
    SignedBeforeStart,
    /// The provider does not send this method (a handshake `GET` to a provider without one).
    #[error("{0} is not accepted here")]
    MethodNotAllowed(Method),
}

/// Why a call control or a dial did not reach the provider.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("the provider refused {action}: {status} {message}")]
    Rejected {
        action: &'static str,
        status: u16,
        message: String,
    },
    #[error("the provider is unreachable: {0}")]
    Unreachable(String),
}

#[async_trait]
pub trait TelephonyAdapter: Send + Sync + std::fmt::Debug {
    /// The path segment under `/v1/tenants/{tenant}/telephony/` and the metrics label.
    fn provider(&self) -> &'static str;

    /// Authenticates and reads one inbound request. Errors say what was wrong and where.
    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError>;

    /// One run of the provider's connector: its held connection, or its subscription's life.
    /// The relay runs it on the instance holding the tenant's connector lease, starts it again
    /// with back-off whenever it returns (an error says what was lost), and applies what it
    /// delivers through `link` exactly like a webhook's events. The run reports `link.up()` once
    /// connected and subscribed, and catches up then on what it missed. None (the default): the
    /// provider only calls in and nothing of it expires.
    fn connector(&self, link: Link) -> Option<BoxFuture<'static, Result<(), LinkError>>> {
        let _ = link;
        None
    }

    /// The call controls this provider performs for the relay, named to the widget in
    /// `welcome` so a rep never sees a button the phone system would refuse. A provider that
    /// lacks one says so here as well as refusing it in [`TelephonyAdapter::command`].
    fn controls(&self) -> &'static [Control] {
        Control::ALL
    }

    /// Asks the provider to act on the call; its events confirm the result.
    async fn command(&self, call: &Leg, command: &CallCommand) -> Result<(), CommandError>;

    /// Asks the provider to call `e164` from the rep's line (click-to-dial). The provider's
    /// events bring the call; its id, when the provider tells it at once.
    async fn dial(&self, agent: &str, e164: &str) -> Result<Option<String>, CommandError>;
}
