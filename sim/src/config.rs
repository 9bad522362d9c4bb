//! How the simulator is set up: which relay its PBX talks to and how its V2 tenant behaves.

use std::ffi::OsString;
use std::net::SocketAddr;

/// Every knob of the simulator. `Default` is the demo: the relay on `127.0.0.1:8080`, tenant
/// `demo`, Basic `demo`/`demo`, the demo rep `alice@example.com`.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where the simulator listens (`127.0.0.1:8090`; port 0 for tests).
    pub listen: SocketAddr,
    /// The relay base URL the simulated PBX posts events to (`http://127.0.0.1:8080`).
    pub relay_url: String,
    /// The relay base URL as a browser reaches it (for the host page's widget iframe).
    pub relay_public_url: String,
    /// The CTI tenant id the PBX posts for and the identity provider puts in tokens (`zid`).
    pub tenant: String,
    /// The HMAC secret shared with the relay for webhooks, and for call controls unless
    /// `controls_secret` is set.
    pub webhook_secret: String,
    /// The relay's call-control key (its `controls_secret`), when not the webhook secret.
    pub controls_secret: Option<String>,
    /// Basic-auth user and password of the V2 API.
    pub v2_user: String,
    pub v2_password: String,
    /// The rep calls go to when `/sim/calls` names none.
    pub demo_agent: String,
    /// The demo rep's own number (the `to` of inbound calls by default).
    pub demo_agent_number: String,
    /// Requests the V2 API serves before answering 429 with Retry-After (None: unlimited).
    pub request_budget: Option<u64>,
    /// Whether V2 change events are sent to the relay's `v2-events` endpoint.
    pub v2_events: bool,
    pub v2_events_user: String,
    pub v2_events_password: String,
    /// Seed of the demo data generator, so data is the same on every run.
    pub seed: u64,
    /// How many accounts, contacts and individual customers to generate (each).
    pub records: usize,
    /// The simulated BTP Destination service binding's client (XSUAA client credentials).
    pub destination_client_id: String,
    pub destination_client_secret: String,
    /// The SaaS Provisioning service's client at the simulated XSUAA: it fetches the token it
    /// calls the relay's subscription callbacks with (`POST /sim/btp/saas-registry/oauth/token`).
    pub saas_client_id: String,
    pub saas_client_secret: String,
    /// The relay's own client at the simulated XSUAA (`/sim/xsuaa/{zone}/oauth/...`), as an
    /// `xsuaa` binding's `clientid` and `clientsecret` give it.
    pub xsuaa_client_id: String,
    pub xsuaa_client_secret: String,
    /// The destination (type `OAuth2SAMLBearerAssertion`) that leads to the V2 tenant.
    pub destination_name: String,
    /// Whether the V2 API stores and matches properties its collections' schemas do not have
    /// (`SIM_V2_UNKNOWN_FIELDS=accept`, for experiments) instead of refusing them as V2 does.
    pub v2_accept_unknown_fields: bool,
    /// Whether a PATCH must present its ETag exactly as V2 documents it (the record's
    /// `adminData.updatedOn` in double quotes; `SIM_V2_IF_MATCH=strict`) rather than also
    /// unquoted or as `*`, forms clients are seen to send and V2 is reported to take.
    pub v2_if_match_strict: bool,
    /// The relay's client at the simulated SAP Cloud Identity Services (reps' own V2 sign-in).
    pub ias_client_id: String,
    /// How long the access tokens it issues live.
    pub ias_access_ttl_secs: u64,
    /// The telephony the host page can ring through, each with the relay tenant that uses it
    /// (`SIM_PROVIDERS=generic=demo,genesys=demo-genesys`); the first is the page's default
    /// unless `SIM_PROVIDER` names another.
    pub providers: Vec<DemoProvider>,
    /// The simulated RingCentral account's app (client id and secret for Basic client auth).
    pub ringcentral_client_id: String,
    pub ringcentral_client_secret: String,
    /// The JWT credential its JWT-bearer grant accepts.
    pub ringcentral_jwt: String,
    /// How long its access tokens live.
    pub ringcentral_token_ttl_secs: u64,
    /// The longest life of its webhook subscriptions (`expiresIn`).
    pub ringcentral_subscription_ttl_secs: u64,
    /// The simulated Genesys Cloud org's OAuth client (client-credentials grant).
    pub genesys_client_id: String,
    pub genesys_client_secret: String,
    /// How long its access tokens live (Genesys' default for client credentials is a day).
    pub genesys_token_ttl_secs: u64,
    /// How often a notification socket hears `channel.metadata` "WebSocket Heartbeat".
    pub genesys_heartbeat_ms: u64,
    /// How long a notification channel lives unless its subscriptions are put again.
    pub genesys_channel_ttl_secs: u64,
    /// Between `v2.system.socket_closing` and the socket's close.
    pub genesys_socket_closing_grace_ms: u64,
    /// Users added to the Genesys directory after the demo reps (`user-{n}@example.com`), to try
    /// more reps than one notification channel takes.
    pub genesys_extra_users: usize,
    /// The simulated Teams tenant's app registration (client credentials with a secret) and
    /// its calling bot's app id (the `aud` of the Bot Framework tokens on calls to the bot).
    pub teams_client_id: String,
    pub teams_client_secret: String,
    pub teams_bot_app_id: String,
    /// Certificates uploaded to the Teams app registration: (PEM certificate, PEM public key).
    pub teams_certificates: Vec<(String, String)>,
    /// The simulated Webex org's integration (client id and secret for the token endpoint).
    pub webex_client_id: String,
    pub webex_client_secret: String,
    /// The refresh token its refresh-token grant accepts (an admin's, granted once in a browser).
    pub webex_refresh_token: String,
    /// How long its access tokens live (Webex: 14 days; shorter here to exercise refreshes).
    pub webex_token_ttl_secs: u64,
    /// The XMPP server (`host:port`, plain on loopback) the simulated Finesse publishes its
    /// Dialog notifications into; None: it publishes nothing.
    pub finesse_xmpp: Option<String>,
    /// Its XMPP domain (pubsub at `pubsub.<domain>`), told in `SystemInfo`.
    pub finesse_xmpp_domain: String,
    /// The password of its publishing account (`finesse-notifier`).
    pub finesse_notifier_password: String,
    /// Where the simulated Asterisk's manager interface (AMI) listens; None: nowhere. The demo
    /// (a provider list with `asterisk`) takes `127.0.0.1:5038`, AMI's port, unless
    /// `SIM_ASTERISK_LISTEN` names another.
    pub asterisk_listen: Option<SocketAddr>,
    /// The manager user it accepts and its secret.
    pub asterisk_username: String,
    pub asterisk_secret: String,
    /// Where the simulated FreeSWITCH's event socket listens; None: nowhere. The demo (a
    /// provider list with `freeswitch`) takes `127.0.0.1:8021` unless `SIM_FREESWITCH_LISTEN`
    /// names another.
    pub freeswitch_listen: Option<SocketAddr>,
    /// The event socket's password.
    pub freeswitch_password: String,
    /// Whether the simulated Finesse runs in single sign-on mode: its REST API then takes only
    /// bearer tokens (`demo-finesse-sso-{id}`), and its notification service's accounts sign in
    /// with the token in the password's place. False: HTTP Basic with the passwords.
    pub finesse_sso: bool,
    /// A loopback port on which the simulator binary starts its own Prosody for the simulated
    /// Finesse (`SIM_FINESSE_PROSODY`, what `cargo xtask demo` sets); None: it starts none.
    pub finesse_prosody_port: Option<u16>,
    /// The real SIP PBX (Kamailio) the demo's SIP calls go through (`SIM_SIP_PROXY`,
    /// `127.0.0.1:5060` when the provider list has `sip`); None: SIP calls are refused.
    pub sip_proxy: Option<SocketAddr>,
    /// The directory of the SIPp scenarios the SIP calls run (`SIM_SIPP_SCENARIOS`, the
    /// repository's `tests/sipp`); None: SIP calls are refused.
    pub sipp_scenarios: Option<std::path::PathBuf>,
}

/// One telephony system the host page offers: its name (`generic`, `genesys`, `ringcentral`)
/// and the relay tenant configured with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoProvider {
    pub name: String,
    pub tenant: String,
}

/// The simulated telephony systems, by the relay's provider names.
pub const PROVIDERS: &[&str] = &[
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

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            relay_url: "http://127.0.0.1:8080".into(),
            relay_public_url: "http://127.0.0.1:8080".into(),
            tenant: "demo".into(),
            webhook_secret: "demo-webhook-secret".into(),
            controls_secret: None,
            v2_user: "demo".into(),
            v2_password: "demo".into(),
            demo_agent: "alice@example.com".into(),
            demo_agent_number: "+41 44 999 00 00".into(),
            request_budget: None,
            v2_events: true,
            v2_events_user: "v2-events".into(),
            v2_events_password: "demo-v2-events-secret".into(),
            seed: 42,
            records: 320,
            destination_client_id: "cti-destination".into(),
            destination_client_secret: "demo-destination-secret".into(),
            saas_client_id: "sb-cti-saas-registry".into(),
            saas_client_secret: "demo-saas-registry-secret".into(),
            xsuaa_client_id: "sb-cti-relay!t1".into(),
            xsuaa_client_secret: "demo-xsuaa-secret".into(),
            destination_name: "sscDestination".into(),
            v2_accept_unknown_fields: false,
            v2_if_match_strict: false,
            ias_client_id: "cti-relay-v2".into(),
            ias_access_ttl_secs: 3600,
            providers: vec![DemoProvider {
                name: "generic".into(),
                tenant: "demo".into(),
            }],
            ringcentral_client_id: "cti-relay-ringcentral".into(),
            ringcentral_client_secret: "demo-ringcentral-secret".into(),
            ringcentral_jwt: crate::ringcentral::DEMO_JWT.into(),
            ringcentral_token_ttl_secs: 3600,
            ringcentral_subscription_ttl_secs: 900,
            genesys_client_id: "cti-relay-genesys".into(),
            genesys_client_secret: "demo-genesys-secret".into(),
            genesys_token_ttl_secs: 86_400,
            genesys_heartbeat_ms: 30_000,
            genesys_channel_ttl_secs: 86_400,
            genesys_socket_closing_grace_ms: 2_000,
            genesys_extra_users: 0,
            teams_client_id: crate::teams::DEMO_CLIENT_ID.into(),
            teams_client_secret: crate::teams::DEMO_CLIENT_SECRET.into(),
            teams_bot_app_id: crate::teams::DEMO_BOT_APP_ID.into(),
            teams_certificates: Vec::new(),
            webex_client_id: "cti-relay-webex".into(),
            webex_client_secret: "demo-webex-secret".into(),
            webex_refresh_token: crate::webex::DEMO_REFRESH_TOKEN.into(),
            webex_token_ttl_secs: 3600,
            finesse_xmpp: None,
            finesse_xmpp_domain: "finesse.localhost".into(),
            finesse_notifier_password: "demo-finesse-notifier".into(),
            asterisk_listen: None,
            asterisk_username: "cti-relay".into(),
            asterisk_secret: "demo-asterisk-secret".into(),
            freeswitch_listen: None,
            freeswitch_password: "demo-freeswitch-secret".into(),
            finesse_prosody_port: None,
            finesse_sso: false,
            sip_proxy: None,
            sipp_scenarios: None,
        }
    }
}

/// A setting from the environment that cannot be used, named so the operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not valid UTF-8")]
    NotUnicode { var: &'static str },
    #[error("{var} is set but empty")]
    Empty { var: &'static str },
    #[error("{var}={value:?} is not {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Most records the generator is asked for: more only slows start-up without testing more.
const MAX_RECORDS: usize = 100_000;

impl SimConfig {
    /// The defaults, overridden by `SIM_*` environment variables (see [`SimConfig::from_lookup`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// The defaults, overridden by what `lookup` finds for these names:
    ///
    /// `SIM_LISTEN` (`host:port`), `SIM_RELAY_URL`, `SIM_RELAY_PUBLIC_URL` (defaults to
    /// `SIM_RELAY_URL` when only that is set), `SIM_TENANT`, `SIM_WEBHOOK_SECRET`, `SIM_V2_USER`,
    /// `SIM_V2_PASSWORD`, `SIM_AGENT`, `SIM_AGENT_NUMBER`, `SIM_RECORDS`, `SIM_SEED`,
    /// `SIM_REQUEST_BUDGET` (a number, or `none`/`unlimited`), `SIM_PROVIDERS`, `SIM_PROVIDER`,
    /// `SIM_ASTERISK_LISTEN`, `SIM_FREESWITCH_LISTEN`, `SIM_FINESSE_PROSODY` (a port),
    /// `SIM_SIP_PROXY`, `SIM_SIPP_SCENARIOS`.
    ///
    /// Taking a lookup function rather than reading the process environment lets tests try
    /// every variable without mutating global state.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, ConfigError> {
        let get = |var: &'static str| -> Result<Option<String>, ConfigError> {
            match lookup(var) {
                None => Ok(None),
                Some(raw) => {
                    let value = raw
                        .into_string()
                        .map_err(|_| ConfigError::NotUnicode { var })?;
                    Ok(Some(value.trim().to_string()))
                }
            }
        };
        let text = |var: &'static str| -> Result<Option<String>, ConfigError> {
            match get(var)? {
                Some(v) if v.is_empty() => Err(ConfigError::Empty { var }),
                other => Ok(other),
            }
        };
        let invalid =
            |var: &'static str, value: &str, expected: &'static str| ConfigError::Invalid {
                var,
                value: value.to_string(),
                expected,
            };
        let url = |var: &'static str| -> Result<Option<String>, ConfigError> {
            let Some(value) = text(var)? else {
                return Ok(None);
            };
            let parsed =
                reqwest::Url::parse(&value).map_err(|_| invalid(var, &value, "an http(s) URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(invalid(var, &value, "an http(s) URL"));
            }
            Ok(Some(value.trim_end_matches('/').to_string()))
        };

        let mut config = SimConfig::default();
        if let Some(v) = text("SIM_LISTEN")? {
            config.listen = v
                .parse()
                .map_err(|_| invalid("SIM_LISTEN", &v, "an address like 127.0.0.1:8090"))?;
        }
        let relay_url = url("SIM_RELAY_URL")?;
        let public_url = url("SIM_RELAY_PUBLIC_URL")?;
        if let Some(v) = &relay_url {
            config.relay_url = v.clone();
        }
        if let Some(v) = public_url.or(relay_url) {
            config.relay_public_url = v;
        }
        if let Some(v) = text("SIM_TENANT")? {
            config.tenant = v;
        }
        if let Some(v) = text("SIM_WEBHOOK_SECRET")? {
            config.webhook_secret = v;
        }
        if let Some(v) = text("SIM_CONTROLS_SECRET")? {
            config.controls_secret = Some(v);
        }
        if let Some(v) = text("SIM_V2_USER")? {
            config.v2_user = v;
        }
        if let Some(v) = text("SIM_V2_PASSWORD")? {
            config.v2_password = v;
        }
        if let Some(v) = text("SIM_V2_EVENTS")? {
            config.v2_events = match v.to_ascii_lowercase().as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => return Err(invalid("SIM_V2_EVENTS", &v, "on or off")),
            };
        }
        if let Some(v) = text("SIM_V2_EVENTS_USER")? {
            config.v2_events_user = v;
        }
        if let Some(v) = text("SIM_V2_EVENTS_PASSWORD")? {
            config.v2_events_password = v;
        }
        if let Some(v) = text("SIM_V2_IF_MATCH")? {
            config.v2_if_match_strict = match v.to_ascii_lowercase().as_str() {
                "strict" => true,
                "lenient" => false,
                _ => return Err(invalid("SIM_V2_IF_MATCH", &v, "strict or lenient")),
            };
        }
        if let Some(v) = text("SIM_V2_UNKNOWN_FIELDS")? {
            config.v2_accept_unknown_fields = match v.to_ascii_lowercase().as_str() {
                "accept" => true,
                "refuse" => false,
                _ => return Err(invalid("SIM_V2_UNKNOWN_FIELDS", &v, "accept or refuse")),
            };
        }
        if let Some(v) = text("SIM_AGENT")? {
            config.demo_agent = v;
        }
        if let Some(v) = text("SIM_AGENT_NUMBER")? {
            config.demo_agent_number = v;
        }
        if let Some(v) = text("SIM_RECORDS")? {
            config.records = v
                .parse()
                .ok()
                .filter(|n| *n <= MAX_RECORDS)
                .ok_or_else(|| invalid("SIM_RECORDS", &v, "a whole number from 0 to 100000"))?;
        }
        if let Some(v) = text("SIM_SEED")? {
            config.seed = v
                .parse()
                .map_err(|_| invalid("SIM_SEED", &v, "a whole number"))?;
        }
        // Without a list, the host page rings the generic PBX's calls for the PBX's tenant.
        config.providers[0].tenant = config.tenant.clone();
        if let Some(v) = text("SIM_PROVIDERS")? {
            let expected = "pairs like generic=demo,genesys=demo-genesys (providers: generic, genesys, ringcentral, teams, webex, finesse, asterisk, freeswitch)";
            config.providers = v
                .split(',')
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((name, tenant))
                        if PROVIDERS.contains(&name.trim()) && !tenant.trim().is_empty() =>
                    {
                        Ok(DemoProvider {
                            name: name.trim().to_string(),
                            tenant: tenant.trim().to_string(),
                        })
                    }
                    _ => Err(invalid("SIM_PROVIDERS", &v, expected)),
                })
                .collect::<Result<_, _>>()?;
            if config.providers.is_empty() {
                return Err(invalid("SIM_PROVIDERS", &v, expected));
            }
        }
        if let Some(v) = text("SIM_PROVIDER")? {
            let Some(at) = config.providers.iter().position(|p| p.name == v) else {
                return Err(invalid(
                    "SIM_PROVIDER",
                    &v,
                    "one of the providers in SIM_PROVIDERS",
                ));
            };
            let chosen = config.providers.remove(at);
            config.providers.insert(0, chosen);
        }
        if let Some(v) = text("SIM_ASTERISK_LISTEN")? {
            config.asterisk_listen = Some(v.parse().map_err(|_| {
                invalid("SIM_ASTERISK_LISTEN", &v, "an address like 127.0.0.1:5038")
            })?);
        } else if config.providers.iter().any(|p| p.name == "asterisk") {
            config.asterisk_listen = Some(SocketAddr::from(([127, 0, 0, 1], 5038)));
        }
        if let Some(v) = text("SIM_SIP_PROXY")? {
            config.sip_proxy = Some(
                v.parse()
                    .map_err(|_| invalid("SIM_SIP_PROXY", &v, "an address like 127.0.0.1:5060"))?,
            );
        } else if config.providers.iter().any(|p| p.name == "sip") {
            config.sip_proxy = Some(SocketAddr::from(([127, 0, 0, 1], 5060)));
        }
        if let Some(v) = text("SIM_SIPP_SCENARIOS")? {
            config.sipp_scenarios = Some(v.into());
        }
        if let Some(v) = text("SIM_FREESWITCH_LISTEN")? {
            config.freeswitch_listen = Some(v.parse().map_err(|_| {
                invalid(
                    "SIM_FREESWITCH_LISTEN",
                    &v,
                    "an address like 127.0.0.1:8021",
                )
            })?);
        } else if config.providers.iter().any(|p| p.name == "freeswitch") {
            config.freeswitch_listen = Some(SocketAddr::from(([127, 0, 0, 1], 8021)));
        }
        if let Some(v) = text("SIM_FINESSE_PROSODY")? {
            config.finesse_prosody_port = Some(
                v.parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| invalid("SIM_FINESSE_PROSODY", &v, "a port number"))?,
            );
        }
        if let Some(v) = get("SIM_REQUEST_BUDGET")? {
            config.request_budget = match v.to_ascii_lowercase().as_str() {
                "" | "none" | "unlimited" => None,
                _ => Some(v.parse().map_err(|_| {
                    invalid(
                        "SIM_REQUEST_BUDGET",
                        &v,
                        "a whole number of requests, or `none`",
                    )
                })?),
            };
        }
        Ok(config)
    }
}
