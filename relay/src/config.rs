//! The relay's configuration: environment variables over embedded defaults.
//!
//! With no variables set the relay runs the demo: one tenant `demo` whose V2 tenant, PBX and
//! identity provider are the simulator on `127.0.0.1:8090`. Every variable is listed in the
//! README; [`Config::from_env`] names the variable in every error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::authority::AuthMode;
use crate::authority::destination::DestinationConfig;
use crate::authority::oauth2::{OAuthSettings, default_scope};
use crate::calls::consent::ConsentPolicy;
use crate::numbers::DefaultRegion;
use crate::numbers::rank::{RankRules, Rule, parse_kind};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub tenants: Vec<TenantConfig>,
    pub jwt: JwtConfig,
    /// The widget's built files (trunk's `dist`), served at `/widget/`.
    pub widget_dir: PathBuf,
    /// Origin patterns of V2 host windows the widget may talk to.
    pub host_origins: Vec<String>,
    /// The identity provider's sign-in page a signed-out widget sends the rep to; it returns
    /// to `/widget/#token=<jwt>`. None: the widget can only say it is signed out.
    pub signin_url: Option<String>,
    pub webhook_max_bytes: usize,
    /// How long a new WebSocket may take to send a valid `hello`.
    pub hello_timeout: Duration,
    pub heartbeat_secs: u64,
    /// Messages per rep kept for replay after a disconnect.
    pub replay_capacity: usize,
    pub v2_timeout: Duration,
    /// How often each tenant's number index is rebuilt from V2.
    pub index_refresh: Duration,
    /// How long a ringing call waits for V2 when its number is not in the index; past it the call
    /// goes out as unknown and is updated when V2 answers.
    pub miss_budget: Duration,
    /// How long "V2 has no record with this number" is believed.
    pub negative_ttl: Duration,
    /// Shared stores in Redis (several relay instances act as one); None keeps them in memory.
    pub redis_url: Option<crate::secret::Secret>,
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
    /// The BTP Destination service, for tenants writing through a destination.
    pub destination: Option<DestinationConfig>,
    /// Seals the reps' refresh tokens (`oauth2`): 32 bytes in base64.
    pub token_key: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JwtConfig {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
}

/// One customer of the relay: their V2 tenant, their telephony, their secrets.
#[derive(Debug, Clone, Deserialize)]
pub struct TenantConfig {
    pub id: String,
    /// ISO 3166 region for numbers written nationally (`044 123 45 67` in `CH`).
    pub default_region: String,
    pub webhook_secret: Secret,
    pub v2_url: String,
    pub v2_user: String,
    pub v2_password: Secret,
    /// Where the generic provider accepts call controls (`POST <url>/calls/{id}/commands`).
    pub control_url: String,
    /// Basic credentials V2's outbound communication system uses to deliver change events to
    /// `POST /v1/tenants/{tenant}/v2-events`; without them the endpoint is off for the tenant.
    #[serde(default)]
    pub v2_events_user: Option<String>,
    #[serde(default)]
    pub v2_events_password: Option<Secret>,
    /// The order of rules that rank several matches of one number (`owner`, `open_opportunity`,
    /// `latest_activity`, `kind`); absent: all four in that order.
    #[serde(default)]
    pub match_rules: Option<Vec<String>>,
    /// The order of record kinds for the `kind` rule; absent: contact, individual_customer, account.
    #[serde(default)]
    pub kind_order: Option<Vec<String>>,
    /// Which countries need the caller's consent before a recording is kept; absent: the
    /// built-in countries, two-party consent everywhere else.
    #[serde(default)]
    pub recording_consent: Option<ConsentPolicy>,
    /// On whose authority activities are written: `basic` (the technical user above, the
    /// default), `destination` (the rep's, through the BTP destination `v2_destination`) or
    /// `oauth2` (the rep's own sign-in at the identity provider in `oauth`).
    #[serde(default)]
    pub v2_auth: Option<String>,
    #[serde(default)]
    pub v2_destination: Option<String>,
    /// The identity provider for `oauth2` (the reps' own sign-in).
    #[serde(default)]
    pub oauth: Option<OAuthSettings>,
    /// What the rep may pick as a call's outcome, in the widget's order.
    #[serde(default = "default_dispositions")]
    pub dispositions: Vec<String>,
}

/// The demo's webhook secret: published in the README, so only for a V2 on this machine.
const DEMO_WEBHOOK_SECRET: &str = "demo-webhook-secret";

/// Whether a URL's host is this machine (the simulator, a local trial).
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

/// Dispositions a sales team starts with; tenants replace them with their own.
pub fn default_dispositions() -> Vec<String> {
    [
        "Interested",
        "Follow-up needed",
        "Not interested",
        "Left voicemail",
        "Wrong number",
    ]
    .map(str::to_string)
    .to_vec()
}

impl TenantConfig {
    /// The tenant's authority mode, as configured.
    pub fn auth_mode(&self) -> Result<AuthMode, String> {
        match self.v2_auth.as_deref().map(str::trim) {
            None | Some("basic") => Ok(AuthMode::Basic),
            Some("destination") => match self.v2_destination.as_deref().map(str::trim) {
                Some(name) if !name.is_empty() => Ok(AuthMode::Destination {
                    name: name.to_string(),
                }),
                _ => Err(
                    "v2_auth destination needs the destination's name (CTI_V2_DESTINATION)".into(),
                ),
            },
            Some("oauth2") if self.oauth.is_some() => Ok(AuthMode::OAuth2),
            Some("oauth2") => Err(
                "v2_auth oauth2 needs the identity provider (CTI_OAUTH_AUTHORIZE_URL, CTI_OAUTH_TOKEN_URL, CTI_OAUTH_CLIENT_ID)"
                    .into(),
            ),
            Some(other) => Err(format!(
                "unknown v2_auth {other:?} (expected basic, destination or oauth2)"
            )),
        }
    }

    /// The tenant's match order, as configured.
    pub fn rank_rules(&self) -> Result<RankRules, String> {
        let mut rules = RankRules::default();
        if let Some(names) = &self.match_rules {
            rules.rules = names
                .iter()
                .map(|n| n.parse::<Rule>())
                .collect::<Result<_, _>>()?;
        }
        if let Some(names) = &self.kind_order {
            rules.kinds = names
                .iter()
                .map(|n| parse_kind(n))
                .collect::<Result<_, _>>()?;
        }
        Ok(rules)
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
    /// The demo: everything on loopback, talking to the simulator at `sim_url`.
    pub fn demo(sim_url: &str) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tenants: vec![TenantConfig {
                id: "demo".into(),
                default_region: "CH".into(),
                webhook_secret: Secret::new(DEMO_WEBHOOK_SECRET),
                v2_url: sim_url.into(),
                v2_user: "demo".into(),
                v2_password: Secret::new("demo"),
                control_url: format!("{sim_url}/sim/pbx"),
                v2_events_user: Some("v2-events".into()),
                v2_events_password: Some(Secret::new("demo-v2-events-secret")),
                match_rules: None,
                kind_order: None,
                recording_consent: None,
                v2_auth: None,
                v2_destination: None,
                oauth: None,
                dispositions: default_dispositions(),
            }],
            jwt: JwtConfig {
                jwks_url: format!("{sim_url}/sim/jwks.json"),
                issuer: "cti-sim".into(),
                audience: "cti-relay".into(),
            },
            widget_dir: PathBuf::from("widget/dist"),
            host_origins: vec!["https://*.crm.cloud.sap".into(), sim_url.into()],
            signin_url: Some(format!("{sim_url}/sim/authorize")),
            webhook_max_bytes: 64 * 1024,
            hello_timeout: Duration::from_secs(10),
            heartbeat_secs: 25,
            replay_capacity: 256,
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
            destination: None,
            token_key: None,
        }
    }

    /// Reads the environment through `get` (so tests need not touch the process environment).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let sim_url = "http://127.0.0.1:8090";
        let mut config = Config::demo(sim_url);
        let invalid = |var: &'static str, problem: String| ConfigError::Invalid { var, problem };

        if let Some(port) = get("PORT") {
            let port: u16 = port
                .parse()
                .map_err(|_| invalid("PORT", format!("{port:?} is not a port number")))?;
            config.listen = SocketAddr::from(([0, 0, 0, 0], port));
        }
        if let Some(listen) = get("CTI_LISTEN") {
            config.listen = listen
                .parse()
                .map_err(|_| invalid("CTI_LISTEN", format!("{listen:?} is not host:port")))?;
        }
        if let Some(path) = get("CTI_TENANTS_FILE") {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::TenantsFile {
                path: path.clone(),
                problem: e.to_string(),
            })?;
            config.tenants = serde_json::from_str(&text).map_err(|e| ConfigError::TenantsFile {
                path: path.clone(),
                problem: e.to_string(),
            })?;
        } else {
            let t = &mut config.tenants[0];
            let set = |slot: &mut String, var: &str| {
                if let Some(v) = get(var) {
                    *slot = v;
                }
            };
            set(&mut t.id, "CTI_TENANT");
            set(&mut t.default_region, "CTI_DEFAULT_REGION");
            set(&mut t.v2_url, "CTI_V2_URL");
            set(&mut t.v2_user, "CTI_V2_USER");
            set(&mut t.control_url, "CTI_CONTROL_URL");
            if let Some(v) = get("CTI_V2_PASSWORD") {
                t.v2_password = Secret::new(v);
            }
            if let Some(v) = get("CTI_WEBHOOK_SECRET") {
                t.webhook_secret = Secret::new(v);
            }
            // The demo's events credentials are public: a real tenant gets the endpoint only
            // with credentials of its own.
            if t.v2_url != sim_url {
                t.v2_events_user = None;
                t.v2_events_password = None;
            }
            if let Some(v) = get("CTI_V2_EVENTS_USER") {
                t.v2_events_user = Some(v);
            }
            if let Some(v) = get("CTI_V2_EVENTS_PASSWORD") {
                t.v2_events_password = Some(Secret::new(v));
            }
            let list = |v: String| v.split(',').map(|s| s.trim().to_string()).collect();
            t.match_rules = get("CTI_MATCH_RULES").map(list);
            t.kind_order = get("CTI_MATCH_KIND_ORDER").map(list);
            if let Some(v) = get("CTI_V2_AUTH") {
                t.v2_auth = Some(v);
            }
            if let Some(v) = get("CTI_V2_DESTINATION") {
                t.v2_destination = Some(v);
            }
            if let Some(authorize_url) = get("CTI_OAUTH_AUTHORIZE_URL") {
                let need = |var: &'static str| {
                    get(var)
                        .ok_or_else(|| invalid(var, "required with CTI_OAUTH_AUTHORIZE_URL".into()))
                };
                t.oauth = Some(OAuthSettings {
                    authorize_url,
                    token_url: need("CTI_OAUTH_TOKEN_URL")?,
                    client_id: need("CTI_OAUTH_CLIENT_ID")?,
                    client_secret: get("CTI_OAUTH_CLIENT_SECRET").map(Secret::new),
                    scope: get("CTI_OAUTH_SCOPE").unwrap_or_else(default_scope),
                });
            }
            if let Some(v) = get("CTI_RECORDING_CONSENT") {
                t.recording_consent = Some(
                    ConsentPolicy::parse(&v).map_err(|p| invalid("CTI_RECORDING_CONSENT", p))?,
                );
            }
            if let Some(v) = get("CTI_DISPOSITIONS") {
                t.dispositions = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
            }
        }
        for tenant in &config.tenants {
            DefaultRegion::parse(&tenant.default_region).map_err(|_| {
                invalid(
                    "CTI_DEFAULT_REGION",
                    format!(
                        "tenant {:?}: {:?} is not an ISO 3166 region",
                        tenant.id, tenant.default_region
                    ),
                )
            })?;
            tenant.rank_rules().map_err(|problem| {
                invalid(
                    "CTI_MATCH_RULES",
                    format!("tenant {:?}: {problem}", tenant.id),
                )
            })?;
            tenant
                .auth_mode()
                .map_err(|p| invalid("CTI_V2_AUTH", format!("tenant {:?}: {p}", tenant.id)))?;
            if tenant.v2_events_user.is_some() != tenant.v2_events_password.is_some() {
                return Err(invalid(
                    "CTI_V2_EVENTS_PASSWORD",
                    format!(
                        "tenant {:?}: set both the V2 events user and password, or neither",
                        tenant.id
                    ),
                ));
            }
            if tenant.webhook_secret.expose() == DEMO_WEBHOOK_SECRET && !is_loopback(&tenant.v2_url)
            {
                return Err(invalid(
                    "CTI_WEBHOOK_SECRET",
                    format!(
                        "tenant {:?} talks to V2 at {} with the demo's webhook secret, which is \
                         public: anyone could post calls; set a secret of your own",
                        tenant.id, tenant.v2_url
                    ),
                ));
            }
            if tenant.webhook_secret.expose().len() < 16 {
                return Err(invalid(
                    "CTI_WEBHOOK_SECRET",
                    format!(
                        "tenant {:?}: the secret must be at least 16 characters",
                        tenant.id
                    ),
                ));
            }
        }
        if let Some(v) = get("CTI_JWKS_URL") {
            config.jwt.jwks_url = v;
        }
        if let Some(v) = get("CTI_JWT_ISSUER") {
            config.jwt.issuer = v;
        }
        if let Some(v) = get("CTI_JWT_AUDIENCE") {
            config.jwt.audience = v;
        }
        if let Some(v) = get("CTI_WIDGET_DIR") {
            config.widget_dir = PathBuf::from(v);
        }
        if let Some(v) = get("CTI_SIGNIN_URL") {
            config.signin_url = (!v.trim().is_empty()).then(|| v.trim().to_string());
        } else if config.jwt.jwks_url != format!("{sim_url}/sim/jwks.json") {
            // The simulator's sign-in only makes sense with the simulator's keys.
            config.signin_url = None;
        }
        if let Some(v) = get("CTI_HOST_ORIGINS") {
            config.host_origins = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        let number = |var: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| invalid(var, format!("{v:?} is not a whole number"))),
            }
        };
        config.webhook_max_bytes = number("CTI_WEBHOOK_MAX_BYTES", 64 * 1024)? as usize;
        config.hello_timeout = Duration::from_secs(number("CTI_HELLO_TIMEOUT_SECS", 10)?);
        config.heartbeat_secs = number("CTI_HEARTBEAT_SECS", 25)?.max(1);
        config.replay_capacity = number("CTI_REPLAY_CAPACITY", 256)? as usize;
        config.v2_timeout = Duration::from_secs(number("CTI_V2_TIMEOUT_SECS", 10)?);
        config.index_refresh = Duration::from_secs(number("CTI_INDEX_REFRESH_SECS", 900)?.max(10));
        config.miss_budget = Duration::from_millis(number("CTI_MISS_BUDGET_MS", 300)?);
        config.negative_ttl = Duration::from_secs(number("CTI_NEGATIVE_TTL_SECS", 60)?);
        config.refresh_budget = match get("CTI_REFRESH_DAILY_BUDGET") {
            None => None,
            Some(_) => Some(number("CTI_REFRESH_DAILY_BUDGET", 0)?),
        };
        config.activity_days = number("CTI_ACTIVITY_DAYS", 90)?;
        config.index_check = Duration::from_secs(number("CTI_INDEX_CHECK_SECS", 10)?.max(1));
        config.activity_retry_base =
            Duration::from_millis(number("CTI_ACTIVITY_RETRY_BASE_MS", 1000)?.max(10));
        config.activity_retry_max =
            Duration::from_secs(number("CTI_ACTIVITY_RETRY_MAX_SECS", 300)?.max(1));
        config.destination = match (get("CTI_DESTINATION_URI"), get("VCAP_SERVICES")) {
            (Some(uri), _) => {
                let need = |var: &'static str| {
                    get(var).ok_or_else(|| invalid(var, "required with CTI_DESTINATION_URI".into()))
                };
                Some(DestinationConfig {
                    uri,
                    token_url: need("CTI_DESTINATION_TOKEN_URL")?,
                    client_id: need("CTI_DESTINATION_CLIENT_ID")?,
                    client_secret: Secret::new(need("CTI_DESTINATION_CLIENT_SECRET")?),
                })
            }
            (None, Some(vcap)) => {
                destination_from_vcap(&vcap).map_err(|p| invalid("VCAP_SERVICES", p))?
            }
            (None, None) => None,
        };
        if config.destination.is_none()
            && let Some(t) = config
                .tenants
                .iter()
                .find(|t| matches!(t.auth_mode(), Ok(AuthMode::Destination { .. })))
        {
            return Err(invalid(
                "CTI_V2_AUTH",
                format!(
                    "tenant {:?} writes through a destination, but no Destination service is configured (CTI_DESTINATION_URI or a destination binding)",
                    t.id
                ),
            ));
        }
        config.token_key = get("CTI_TOKEN_KEY").map(Secret::new);
        if let Some(key) = &config.token_key {
            crate::authority::vault::Sealer::from_base64(key.expose())
                .map_err(|e| invalid("CTI_TOKEN_KEY", e.to_string()))?;
        } else if let Some(t) = config
            .tenants
            .iter()
            .find(|t| t.auth_mode() == Ok(AuthMode::OAuth2))
        {
            return Err(invalid(
                "CTI_TOKEN_KEY",
                format!(
                    "tenant {:?} keeps reps' refresh tokens (oauth2): set a 32-byte key in base64, e.g. from `openssl rand -base64 32`",
                    t.id
                ),
            ));
        }
        config.redis_url = match (get("REDIS_URL"), get("VCAP_SERVICES")) {
            (Some(url), _) => Some(crate::secret::Secret::new(url)),
            (None, Some(vcap)) => redis_from_vcap(&vcap)
                .map_err(|problem| invalid("VCAP_SERVICES", problem))?
                .map(crate::secret::Secret::new),
            (None, None) => None,
        };
        Ok(config)
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|var| std::env::var(var).ok())
    }

    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }
}

/// A `destination` binding's service URL and client credentials, if the app has one.
fn destination_from_vcap(vcap: &str) -> Result<Option<DestinationConfig>, String> {
    let services: serde_json::Value =
        serde_json::from_str(vcap).map_err(|e| format!("not valid JSON: {e}"))?;
    let Some(credentials) = services
        .get("destination")
        .and_then(|b| b.get(0))
        .and_then(|b| b.get("credentials"))
    else {
        return Ok(None);
    };
    let text = |k: &str| {
        credentials
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("the destination binding's credentials have no {k:?}"))
    };
    Ok(Some(DestinationConfig {
        uri: text("uri")?,
        token_url: format!("{}/oauth/token", text("url")?.trim_end_matches('/')),
        client_id: text("clientid")?,
        client_secret: Secret::new(text("clientsecret")?),
    }))
}

/// The URL of a `redis-cache` binding (SAP BTP's Redis service), if the app has one.
fn redis_from_vcap(vcap: &str) -> Result<Option<String>, String> {
    let services: serde_json::Value =
        serde_json::from_str(vcap).map_err(|e| format!("not valid JSON: {e}"))?;
    let Some(credentials) = services
        .get("redis-cache")
        .and_then(|b| b.get(0))
        .and_then(|b| b.get("credentials"))
    else {
        return Ok(None);
    };
    let text = |k: &str| credentials.get(k).and_then(serde_json::Value::as_str);
    if let Some(uri) = text("uri") {
        return Ok(Some(uri.to_string()));
    }
    let host = text("hostname").ok_or("redis-cache credentials have neither uri nor hostname")?;
    let port = credentials
        .get("port")
        .and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()))
        .unwrap_or(6379);
    let scheme = if credentials.get("tls").and_then(serde_json::Value::as_bool) == Some(true) {
        "rediss"
    } else {
        "redis"
    };
    let auth = text("password")
        .map(|p| format!(":{p}@"))
        .unwrap_or_default();
    Ok(Some(format!("{scheme}://{auth}{host}:{port}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_the_demo() {
        let c = Config::from_vars(vars(&[])).expect("valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.tenants[0].id, "demo");
        assert_eq!(c.tenants[0].default_region, "CH");
    }

    #[test]
    fn cloud_foundry_port_binds_all_interfaces() {
        let c = Config::from_vars(vars(&[("PORT", "8081")])).expect("valid");
        assert_eq!(c.listen.to_string(), "0.0.0.0:8081");
    }

    #[test]
    fn errors_name_the_variable() {
        let err = Config::from_vars(vars(&[("CTI_LISTEN", "nowhere")])).expect_err("invalid");
        assert!(err.to_string().starts_with("CTI_LISTEN:"), "{err}");
        let err = Config::from_vars(vars(&[("CTI_DEFAULT_REGION", "ZZ")])).expect_err("invalid");
        assert!(err.to_string().contains("ZZ"), "{err}");
        let err = Config::from_vars(vars(&[("CTI_WEBHOOK_SECRET", "short")])).expect_err("invalid");
        assert!(err.to_string().contains("16 characters"), "{err}");
        let err = Config::from_vars(vars(&[("CTI_HEARTBEAT_SECS", "soon")])).expect_err("invalid");
        assert!(err.to_string().starts_with("CTI_HEARTBEAT_SECS"), "{err}");
    }

    #[test]
    fn redis_comes_from_redis_url_or_a_redis_cache_binding() {
        let c = Config::from_vars(vars(&[("REDIS_URL", "redis://127.0.0.1:7000")])).expect("valid");
        assert_eq!(
            c.redis_url.as_ref().map(|s| s.expose()),
            Some("redis://127.0.0.1:7000")
        );
        let vcap = r#"{"redis-cache":[{"name":"r","credentials":{"hostname":"h.example","port":1234,"password":"pw","tls":true}}]}"#;
        let c = Config::from_vars(vars(&[("VCAP_SERVICES", vcap)])).expect("valid");
        assert_eq!(
            c.redis_url.as_ref().map(|s| s.expose()),
            Some("rediss://:pw@h.example:1234")
        );
        assert!(!format!("{c:?}").contains("pw@"));
        let c = Config::from_vars(vars(&[("VCAP_SERVICES", r#"{"xsuaa":[]}"#)])).expect("valid");
        assert!(c.redis_url.is_none());
        let err = Config::from_vars(vars(&[("VCAP_SERVICES", "{")])).expect_err("invalid");
        assert!(err.to_string().starts_with("VCAP_SERVICES"), "{err}");
    }

    #[test]
    fn the_demo_webhook_secret_is_only_for_a_v2_on_this_machine() {
        for local in [
            "http://127.0.0.1:9000",
            "http://localhost:8090",
            "http://[::1]:8090",
        ] {
            Config::from_vars(vars(&[("CTI_V2_URL", local)])).expect("a local trial");
        }
        let err = Config::from_vars(vars(&[("CTI_V2_URL", "https://my123.crm.cloud.sap")]))
            .expect_err("a real tenant with the public secret");
        assert!(err.to_string().starts_with("CTI_WEBHOOK_SECRET"), "{err}");
        assert!(err.to_string().contains("public"), "{err}");
    }

    #[test]
    fn the_demo_events_credentials_never_reach_a_real_tenant() {
        let c = Config::from_vars(vars(&[
            ("CTI_V2_URL", "https://my123.crm.cloud.sap"),
            ("CTI_WEBHOOK_SECRET", "a-webhook-secret-of-our-own"),
        ]))
        .expect("valid");
        assert!(c.tenants[0].v2_events_password.is_none());
        let c = Config::from_vars(vars(&[
            ("CTI_V2_URL", "https://my123.crm.cloud.sap"),
            ("CTI_WEBHOOK_SECRET", "a-webhook-secret-of-our-own"),
            ("CTI_V2_EVENTS_USER", "hooks"),
            ("CTI_V2_EVENTS_PASSWORD", "a-long-random-secret"),
        ]))
        .expect("valid");
        assert_eq!(c.tenants[0].v2_events_user.as_deref(), Some("hooks"));
        let err = Config::from_vars(vars(&[("CTI_V2_EVENTS_USER", "hooks")]))
            .expect("demo password still set");
        assert!(err.tenants[0].v2_events_password.is_some());
        let err = Config::from_vars(vars(&[
            ("CTI_V2_URL", "https://my123.crm.cloud.sap"),
            ("CTI_WEBHOOK_SECRET", "a-webhook-secret-of-our-own"),
            ("CTI_V2_EVENTS_USER", "hooks"),
        ]))
        .expect_err("a user without a password");
        assert!(
            err.to_string().starts_with("CTI_V2_EVENTS_PASSWORD"),
            "{err}"
        );
    }

    #[test]
    fn match_rules_are_checked_at_start_up() {
        let c = Config::from_vars(vars(&[
            ("CTI_MATCH_RULES", "kind, owner"),
            ("CTI_MATCH_KIND_ORDER", "account,contact"),
        ]))
        .expect("valid");
        let rules = c.tenants[0].rank_rules().expect("rules");
        assert_eq!(rules.rules, [Rule::Kind, Rule::OwnedByRep]);
        let err =
            Config::from_vars(vars(&[("CTI_MATCH_RULES", "owner,luck")])).expect_err("invalid");
        assert!(
            err.to_string().starts_with("CTI_MATCH_RULES") && err.to_string().contains("luck"),
            "{err}"
        );
        let err =
            Config::from_vars(vars(&[("CTI_REFRESH_DAILY_BUDGET", "lots")])).expect_err("invalid");
        assert!(
            err.to_string().starts_with("CTI_REFRESH_DAILY_BUDGET"),
            "{err}"
        );
    }

    #[test]
    fn writing_through_a_destination_needs_its_name_and_the_service() {
        let err = Config::from_vars(vars(&[("CTI_V2_AUTH", "destination")])).expect_err("no name");
        assert!(err.to_string().contains("CTI_V2_DESTINATION"), "{err}");
        let err = Config::from_vars(vars(&[
            ("CTI_V2_AUTH", "destination"),
            ("CTI_V2_DESTINATION", "sscDestination"),
        ]))
        .expect_err("no service");
        assert!(err.to_string().contains("Destination service"), "{err}");
        let vcap = r#"{"destination":[{"name":"d","credentials":{"uri":"https://destination-configuration.cfapps.eu10.hana.ondemand.com","url":"https://sub.authentication.eu10.hana.ondemand.com","clientid":"sb-clone","clientsecret":"s3cr3t-value"}}]}"#;
        let c = Config::from_vars(vars(&[
            ("CTI_V2_AUTH", "destination"),
            ("CTI_V2_DESTINATION", "sscDestination"),
            ("VCAP_SERVICES", vcap),
        ]))
        .expect("valid");
        let d = c.destination.as_ref().expect("from the binding");
        assert_eq!(
            d.token_url,
            "https://sub.authentication.eu10.hana.ondemand.com/oauth/token"
        );
        assert_eq!(d.client_id, "sb-clone");
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
        assert_eq!(
            c.tenants[0].auth_mode(),
            Ok(AuthMode::Destination {
                name: "sscDestination".into()
            })
        );
        let err = Config::from_vars(vars(&[("CTI_V2_AUTH", "kerberos")])).expect_err("unknown");
        assert!(err.to_string().contains("kerberos"), "{err}");
    }

    #[test]
    fn the_reps_own_sign_in_needs_an_identity_provider_and_a_token_key() {
        let idp = [
            ("CTI_V2_AUTH", "oauth2"),
            (
                "CTI_OAUTH_AUTHORIZE_URL",
                "https://t.accounts.ondemand.com/oauth2/authorize",
            ),
            (
                "CTI_OAUTH_TOKEN_URL",
                "https://t.accounts.ondemand.com/oauth2/token",
            ),
            ("CTI_OAUTH_CLIENT_ID", "cti"),
        ];
        let err = Config::from_vars(vars(&[("CTI_V2_AUTH", "oauth2")])).expect_err("no idp");
        assert!(err.to_string().contains("CTI_OAUTH_AUTHORIZE_URL"), "{err}");
        let err = Config::from_vars(vars(&idp)).expect_err("no key");
        assert!(err.to_string().starts_with("CTI_TOKEN_KEY"), "{err}");
        let mut with_key = idp.to_vec();
        with_key.push(("CTI_TOKEN_KEY", "c2hvcnQ="));
        let err = Config::from_vars(vars(&with_key)).expect_err("short key");
        assert!(err.to_string().contains("32 bytes"), "{err}");
        with_key.pop();
        with_key.push((
            "CTI_TOKEN_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        ));
        let c = Config::from_vars(vars(&with_key)).expect("valid");
        assert_eq!(c.tenants[0].auth_mode(), Ok(AuthMode::OAuth2));
        assert!(!format!("{c:?}").contains("MDEyMzQ1"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c =
            Config::from_vars(vars(&[("CTI_V2_PASSWORD", "topsecretpassword")])).expect("valid");
        assert!(!format!("{c:?}").contains("topsecretpassword"));
    }
}
