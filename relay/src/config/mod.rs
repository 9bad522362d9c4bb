//! The relay's configuration: typed settings, parsed once at start-up.
//!
//! With no variables set the relay runs the demo: one tenant `demo` whose V2 tenant, PBX and
//! identity provider are the simulator on `127.0.0.1:8090`. [`Config::demo`] is the one place
//! that says what a setting is when nobody set it; the environment ([`env`]) and the tenants file
//! ([`tenant`]) only override it, and every error names the variable. Everything here is a plain
//! value: the modules that act on a setting import it from here, never the other way round. The
//! one exception is a tenant's telephony provider: its settings are the adapter's own type
//! ([`crate::adapters::TelephonySettings`]), so that a provider is added without touching this
//! module.

mod env;
mod help;
mod limits;
pub mod tenant;
mod vcap;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::secret::Secret;

pub use help::environment_help;
pub use limits::Limits;
pub use tenant::{
    AuthMode, MAPPABLE_ACTIVITY_FIELDS, OAuthSettings, TenantConfig, default_dispositions,
    default_scope, distinct_webhook_secrets,
};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub tenants: Vec<TenantConfig>,
    pub jwt: JwtConfig,
    /// The widget's built files (trunk's `dist`), served at `/widget/`.
    pub widget_dir: PathBuf,
    /// The admin page's built files (trunk's `dist`), served at `/admin/`.
    pub admin_dir: PathBuf,
    /// The identity provider's sign-in page a signed-out widget sends the rep to; it returns
    /// to `/widget/#token=<jwt>`. None: the widget can only say it is signed out.
    pub signin_url: Option<String>,
    /// The sign-in through XSUAA's authorization code grant (`CTI_SIGNIN_CLIENT_*`, or an
    /// `xsuaa` binding): when set, the sign-in routes use it instead of `signin_url`.
    pub xsuaa_sign_in: Option<XsuaaSignIn>,
    pub webhook_max_bytes: usize,
    /// How long a new WebSocket may take to send a valid `hello`.
    pub hello_timeout: Duration,
    pub heartbeat_secs: u64,
    /// Messages per rep kept for replay after a disconnect.
    pub replay_capacity: usize,
    /// How often each instance tells the others (through Redis) its reps, its provider
    /// connection and its last index build, for the admin page.
    pub report_interval: Duration,
    pub v2_timeout: Duration,
    /// How often each tenant's number index is rebuilt from V2.
    pub index_refresh: Duration,
    /// How long a ringing call waits for V2 when its number is not in the index; past it the call
    /// goes out as unknown and is updated when V2 answers.
    pub miss_budget: Duration,
    /// How long "V2 has no record with this number" is believed.
    pub negative_ttl: Duration,
    /// Shared stores in Redis (several relay instances act as one); None keeps them in memory.
    pub redis_url: Option<Secret>,
    /// V2 requests per tenant and UTC day the index refresher may spend; None: no limit.
    pub refresh_budget: Option<u64>,
    /// How far back phone calls count as a record's latest activity when ranking matches;
    /// zero reads no calls.
    pub activity_days: u64,
    /// How often the refresher checks that the index store still holds the index (a Redis that
    /// restarted empty is rebuilt at once instead of at the next interval).
    pub index_check: Duration,
    /// The first wait before writing an activity again after V2 failed; it doubles per attempt.
    pub activity_retry_base: Duration,
    /// The longest wait between attempts (V2's Retry-After may ask for longer).
    pub activity_retry_max: Duration,
    /// Where the in-memory activity outbox journals its entries, so they outlive a crash or a
    /// restart of the process (on a disk that outlives it); None keeps them in memory only.
    pub outbox_dir: Option<std::path::PathBuf>,
    /// How long a stopping relay keeps writing due activities.
    pub drain: Duration,
    /// The BTP Destination service, for tenants writing through a destination.
    pub destination: Option<DestinationConfig>,
    /// Seals the reps' refresh tokens (`oauth2`) and their shared sign-ins.
    pub token_key: Option<TokenKey>,
    /// The key `token_key` replaced (`CTI_TOKEN_KEY_PREVIOUS`), during a rotation: it still opens
    /// what it sealed, which is then sealed again under `token_key`; it seals nothing.
    pub token_key_previous: Option<TokenKey>,
    /// How long an instance holds a tenant's provider connector without renewing its lease:
    /// with Redis, how soon another instance takes over from one that died.
    pub connector_lease: Duration,
    /// What one client, or all together, may hold of the instance.
    pub limits: Limits,
    /// The bearer token that opens `/metrics` and the tenants' details in `/readyz`. Without
    /// it they are open only while every tenant's V2 is on this machine (the demo).
    pub ops_token: Option<Secret>,
    /// Customers subscribe through SAP BTP's SaaS Provisioning service; None: the
    /// subscription callbacks answer 404 and only the tenants file's tenants exist.
    pub saas: Option<SaasConfig>,
}

/// The SaaS Provisioning service's side of the relay (`CTI_SAAS_*`): what a subscription
/// answers and what its callbacks' tokens must carry.
#[derive(Debug, Clone)]
pub struct SaasConfig {
    /// The subscribed tenant's relay URL (`CTI_SAAS_TENANT_URL`), with `{subdomain}` (and
    /// optionally `{tenantId}`) filled in from the subscription: what the registry shows the
    /// customer, and the route its subdomain needs mapped to the app.
    pub tenant_url: String,
    /// The scope the registry's token must carry (`CTI_SAAS_CALLBACK_SCOPE`); by default
    /// `<CTI_JWT_AUDIENCE>.Callback`, XSUAA's `$XSAPPNAME.Callback`.
    pub callback_scope: String,
    /// The xsappnames the dependencies callback names (`CTI_SAAS_DEPENDENCIES`, comma-separated):
    /// the reuse services a subscriber's tenant needs, such as the destination service's.
    pub dependencies: Vec<String>,
}

impl SaasConfig {
    /// A tenant's URL from the pattern: `{subdomain}` and `{tenantId}` filled in.
    pub fn tenant_url(&self, tenant: &str, subdomain: &str) -> String {
        self.tenant_url
            .replace("{subdomain}", subdomain)
            .replace("{tenantId}", tenant)
    }

    /// The subscriber's subdomain a request's `Host` names through the pattern's host
    /// (`{subdomain}-cti.cfapps.…` with `Host: acme-cti.cfapps.…` gives `acme`), lower-cased;
    /// None when the host is not one of the pattern's or the part is not one DNS label. Ports
    /// are ignored: behind the Cloud Foundry router the browser's port is not the app's.
    pub fn subdomain_of_host(&self, host: &str) -> Option<String> {
        let without_scheme = self
            .tenant_url
            .split_once("://")
            .map_or(self.tenant_url.as_str(), |(_, rest)| rest);
        let pattern_host = without_scheme.split(['/', '?', '#']).next()?;
        let pattern_host = strip_port(pattern_host).to_ascii_lowercase();
        let (before, after) = pattern_host.split_once("{subdomain}")?;
        let host = strip_port(host.trim()).to_ascii_lowercase();
        let subdomain = host.strip_prefix(before)?.strip_suffix(after)?;
        let label = !subdomain.is_empty()
            && subdomain.len() <= 63
            && !subdomain.starts_with('-')
            && !subdomain.ends_with('-')
            && subdomain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        label.then(|| subdomain.to_string())
    }
}

/// A host without its `:port`.
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The relay's own sign-in through XSUAA (OAuth 2.0 authorization code, reference: SAP V2
/// notes 6.4 for the token's form): the widget's and the admin page's sign-in routes send the
/// browser to the zone's authorize endpoint and exchange the code the browser brings back.
#[derive(Debug, Clone)]
pub struct XsuaaSignIn {
    /// The app's XSUAA client (`clientid` of the binding, `CTI_SIGNIN_CLIENT_ID`).
    pub client_id: String,
    /// Its secret (`clientsecret`, `CTI_SIGNIN_CLIENT_SECRET`); never logged.
    pub client_secret: Secret,
    /// The authorize endpoint, `{zone}` standing for the identity zone's subdomain
    /// (`https://{zone}.<uaadomain>/oauth/authorize`; `CTI_SIGNIN_AUTHORIZE_URL`).
    pub authorize_url: String,
    /// The token endpoint, with `{zone}` likewise (`CTI_SIGNIN_TOKEN_URL`).
    pub token_url: String,
    /// The one zone everybody signs in at (`identityzone` of the binding, `CTI_SIGNIN_ZONE`)
    /// unless zones come from hosts.
    pub zone: Option<String>,
    /// Each subscriber signs in at its own zone, the subdomain its request's host names
    /// through `CTI_SAAS_TENANT_URL` (a shared binding, with `{zone}` in both URLs).
    pub zones_by_host: bool,
}

impl XsuaaSignIn {
    /// The authorize endpoint of `zone`.
    pub fn authorize_url(&self, zone: &str) -> String {
        self.authorize_url.replace("{zone}", zone)
    }

    /// The token endpoint of `zone`.
    pub fn token_url(&self, zone: &str) -> String {
        self.token_url.replace("{zone}", zone)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct JwtConfig {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    /// The scope an agent token must carry (`CTI_JWT_SCOPE`): None means `<audience>.Agent`,
    /// XSUAA's `$XSAPPNAME.Agent` when the audience is the xsappname; `none` checks no scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// The identity provider agent tokens must come from (`CTI_JWT_ORIGIN`, XSUAA's `origin`
    /// claim): user names are unique only within one, so with several trusted by the
    /// subaccount, two people could otherwise be one rep. None: any origin.
    #[serde(default)]
    pub origin: Option<String>,
    /// The scope a tenant administrator's token must carry on `/v1/admin/*`
    /// (`CTI_ADMIN_SCOPE`): None means `<audience>.Admin`, XSUAA's `$XSAPPNAME.Admin`.
    #[serde(default)]
    pub admin_scope: Option<String>,
}

impl JwtConfig {
    /// The scope agent tokens must carry, if any.
    pub fn agent_scope(&self) -> Option<String> {
        match self.scope.as_deref().map(str::trim) {
            Some("none") => None,
            Some(scope) if !scope.is_empty() => Some(scope.to_string()),
            _ => Some(format!("{}.Agent", self.audience)),
        }
    }

    /// The scope an administrator's token must carry. Unlike the agent scope it cannot be
    /// switched off: without it any user of the tenant could change its settings.
    pub fn admin_scope(&self) -> String {
        match self.admin_scope.as_deref().map(str::trim) {
            Some(scope) if !scope.is_empty() => scope.to_string(),
            _ => format!("{}.Admin", self.audience),
        }
    }
}

/// The BTP Destination service, from `CTI_DESTINATION_*` or a `destination` binding in
/// `VCAP_SERVICES`.
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    /// The service's API base (`uri` in the binding).
    pub uri: String,
    /// The XSUAA token endpoint (`<url>/oauth/token` from the binding).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// The AES-256 key that seals tokens at rest (`CTI_TOKEN_KEY`): checked when the configuration
/// is read, so a relay with a bad key never starts, and nothing later has to handle one.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey([u8; 32]);

/// Why a `CTI_TOKEN_KEY` is not a key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenKeyError {
    #[error("CTI_TOKEN_KEY must be 32 bytes in base64 ({0})")]
    NotBase64(#[from] base64::DecodeError),
    #[error("CTI_TOKEN_KEY must be 32 bytes in base64 ({0} bytes)")]
    Length(usize),
}

impl TokenKey {
    /// From base64 of exactly 32 bytes (`openssl rand -base64 32`).
    pub fn from_base64(text: &str) -> Result<Self, TokenKeyError> {
        let bytes = STANDARD.decode(text.trim())?;
        let len = bytes.len();
        bytes
            .try_into()
            .map(TokenKey)
            .map_err(|_| TokenKeyError::Length(len))
    }

    /// The key's bytes, for the cipher; grep for it to audit where the key goes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {problem}")]
    Invalid { var: &'static str, problem: String },
    #[error("CTI_TENANTS_FILE {path}: {problem}")]
    TenantsFile { path: String, problem: String },
}

impl Config {
    /// The demo: everything on loopback, talking to the simulator at `sim_url`. Every default
    /// the relay has is here.
    pub fn demo(sim_url: &str) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tenants: vec![TenantConfig::demo(sim_url)],
            jwt: JwtConfig {
                jwks_url: format!("{sim_url}/sim/jwks.json"),
                issuer: "cti-sim".into(),
                audience: "cti-relay".into(),
                scope: None,
                origin: None,
                admin_scope: None,
            },
            widget_dir: PathBuf::from("widget/dist"),
            admin_dir: PathBuf::from("admin/dist"),
            signin_url: Some(format!("{sim_url}/sim/authorize")),
            xsuaa_sign_in: None,
            webhook_max_bytes: 64 * 1024,
            hello_timeout: Duration::from_secs(10),
            heartbeat_secs: 25,
            replay_capacity: 256,
            report_interval: Duration::from_secs(10),
            v2_timeout: Duration::from_secs(10),
            index_refresh: Duration::from_secs(15 * 60),
            miss_budget: Duration::from_millis(300),
            negative_ttl: Duration::from_secs(60),
            redis_url: None,
            refresh_budget: None,
            activity_days: 90,
            index_check: Duration::from_secs(10),
            activity_retry_base: Duration::from_secs(1),
            activity_retry_max: Duration::from_secs(300),
            outbox_dir: None,
            // Cloud Foundry kills an instance 10 s after SIGTERM.
            drain: Duration::from_secs(8),
            destination: None,
            token_key: None,
            token_key_previous: None,
            connector_lease: Duration::from_secs(15),
            limits: Limits::default(),
            ops_token: None,
            saas: None,
        }
    }

    /// Reads the environment through `get` (so tests need not touch the process environment).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        env::from_vars(get)
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|var| std::env::var(var).ok())
    }

    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }
}
