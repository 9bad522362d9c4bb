//! One tenant's settings: the raw shape of the tenants file (and of the single-tenant variables),
//! and the typed [`TenantConfig`] it becomes once it is checked.
//!
//! Everything a tenant's text can get wrong (an unknown region, rule or authority mode, half of a
//! credential pair, the demo's public secret on a real V2) is found here, at start-up, and named
//! by its variable; the rest of the relay receives parsed values and has nothing to forgive.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::ConfigError;
use crate::adapters::{TelephonySettings, TenantFacts, generic};
use crate::calls::consent::ConsentPolicy;
use crate::numbers::DefaultRegion;
use crate::numbers::rank::{RankRules, Rule, parse_kind};
use crate::secret::Secret;

/// One customer of the relay: their V2 tenant, their telephony, their secrets.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub id: String,
    /// The ISO 3166 code as configured (`CH`), the name consent rules use for the tenant's
    /// country.
    pub default_region: String,
    /// The same region, parsed: the default for numbers written nationally (`044 123 45 67`).
    pub region: DefaultRegion,
    /// The tenant's telephony provider and its settings (secrets, URLs): the adapter's alone.
    pub telephony: TelephonySettings,
    pub v2_url: String,
    pub v2_user: String,
    pub v2_password: Secret,
    /// Basic credentials V2's outbound communication system uses to deliver change events to
    /// `POST /v1/tenants/{tenant}/v2-events`; both or neither, and without them the endpoint is
    /// off for the tenant.
    pub v2_events_user: Option<String>,
    pub v2_events_password: Option<Secret>,
    /// The OAuth client V2's outbound communication system takes its client-credentials tokens
    /// as, from the identity provider agent tokens come from; with it, change events may carry
    /// `Authorization: Bearer` instead of Basic credentials.
    pub v2_events_client_id: Option<String>,
    /// How several matches of one number are ranked.
    pub rank_rules: RankRules,
    /// Which countries need the caller's consent before a recording is kept; None: the built-in
    /// countries, two-party consent everywhere else.
    pub recording_consent: Option<ConsentPolicy>,
    /// Where the phone call carries what V2 has no published field for: the relay's name of a
    /// value (one of [`MAPPABLE_ACTIVITY_FIELDS`]) to a path in the record, typically under the
    /// tenant's own `extensions`. Unmapped values reach V2 only in the transcript.
    pub activity_fields: BTreeMap<String, String>,
    /// On whose authority activities are written.
    pub auth: AuthMode,
    /// The identity provider for the reps' own sign-in; always set when `auth` is `OAuth2`.
    pub oauth: Option<OAuthSettings>,
    /// What the rep may pick as a call's outcome, in the widget's order.
    pub dispositions: Vec<String>,
    /// Whether the widget sends the chosen record's display id as `Custom_1`, for V2's customer
    /// identification by call attached data. SAP documents that setting but not which
    /// identifier it matches, so this is unverified and off unless the tenant opts in; off, V2
    /// searches by `ANI` itself.
    pub custom_1: bool,
    /// Origin patterns of this tenant's V2 windows: the widget talks to no other host (and its
    /// reps learn no other tenant's). Default: the origin of `v2_url` (inferred: V2's UI is
    /// served from the same host as its API, `my<NNNNNN>.crm.cloud.sap`).
    pub host_origins: Vec<String>,
}

impl TenantConfig {
    /// A subscribed tenant's settings as its administrator gave them: one object in the shape of
    /// a tenants file entry (`v2_url`, `v2_user`, `v2_password`, `provider` and its keys, ...),
    /// its `id` set to the subscribed tenant's whatever the object says, checked as the tenants
    /// file is. `"${NAME}"` is not read from the environment here: the values are the tenant's.
    pub fn from_json(id: &str, settings: &serde_json::Value) -> Result<TenantConfig, ConfigError> {
        let mut settings = settings.clone();
        let Some(object) = settings.as_object_mut() else {
            return Err(ConfigError::Invalid {
                var: "tenant settings",
                problem: format!("tenant {id:?}: the settings are not a JSON object"),
            });
        };
        object.insert("id".into(), serde_json::Value::String(id.to_string()));
        let file: TenantFile =
            serde_json::from_value(settings).map_err(|e| ConfigError::Invalid {
                var: "tenant settings",
                problem: format!("tenant {id:?}: {e}"),
            })?;
        file.check()
    }
}

impl TenantConfig {
    /// What the tenant's webhook takes as proof that a delivery is the tenant's: the generic
    /// webhook's and Webex's signing secrets, Teams' `clientState`, RingCentral's verification
    /// token, each with the previous one during a rotation; with the setting's name. Providers
    /// that connect out (or a SIP PBX) take no deliveries and prove nothing this way.
    fn webhook_secrets(&self) -> (&'static str, Vec<&str>) {
        let (name, current, previous) = match &self.telephony {
            TelephonySettings::Generic(g) => (
                "webhook_secret",
                &g.webhook_secret,
                g.webhook_secret_previous.as_ref(),
            ),
            TelephonySettings::Webex(w) => (
                "webex_webhook_secret",
                &w.webex_webhook_secret,
                w.webex_webhook_secret_previous.as_ref(),
            ),
            TelephonySettings::Teams(t) => (
                "teams_client_state",
                &t.teams_client_state,
                t.teams_client_state_previous.as_ref(),
            ),
            TelephonySettings::RingCentral(r) => (
                "ringcentral_verification_token",
                &r.ringcentral_verification_token,
                r.ringcentral_verification_token_previous.as_ref(),
            ),
            _ => return ("", Vec::new()),
        };
        let secrets = std::iter::once(current)
            .chain(previous)
            .map(Secret::expose)
            .collect();
        (name, secrets)
    }
}

/// Refuses two tenants that take one webhook secret (review F5): a request signed for one
/// would be taken at the other's path, since the signature does not cover the tenant (nor does
/// Teams' `clientState` or RingCentral's verification token, the same kind of proof). Every
/// tenant of `tenants` is compared with every one of `others` and with the others of
/// `tenants`; the error names both.
pub fn distinct_webhook_secrets<'a>(
    tenants: &[&'a TenantConfig],
    others: &[&'a TenantConfig],
) -> Result<(), ConfigError> {
    for (i, tenant) in tenants.iter().enumerate() {
        let (name, secrets) = tenant.webhook_secrets();
        let clash = tenants[i + 1..]
            .iter()
            .chain(others)
            .filter(|other| other.id != tenant.id)
            .find(|other| {
                other
                    .webhook_secrets()
                    .1
                    .iter()
                    .any(|s| secrets.contains(s))
            });
        if let Some(other) = clash {
            return Err(ConfigError::Invalid {
                var: match name {
                    "webhook_secret" => "CTI_WEBHOOK_SECRET",
                    other => other,
                },
                problem: format!(
                    "tenants {:?} and {:?} share a webhook secret ({name}): a request signed \
                     for one would be taken for the other; give each tenant a secret of its own",
                    tenant.id, other.id
                ),
            });
        }
    }
    Ok(())
}

/// The values of a call a tenant may map into its phone calls (`activity_fields`).
pub const MAPPABLE_ACTIVITY_FIELDS: &[&str] = &[
    "direction",
    "status",
    "outcome",
    "start",
    "end",
    "duration",
    "talk_duration",
    "caller",
    "called",
    "participants",
    "owner",
    "account",
    "record",
    "disposition",
    "recording_url",
    "consent_required",
    "consent_jurisdiction",
    "consent_confirmed_by",
    "consent_confirmed_at",
];

/// How a tenant's activities are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// As the tenant's V2 technical user.
    Basic,
    /// Through this BTP destination (`OAuth2SAMLBearerAssertion`) with the rep's token.
    Destination { name: String },
    /// With the rep's own OAuth sign-in (authorization code + PKCE), connected from the widget.
    OAuth2,
}

/// A tenant's identity provider for the reps' own sign-in.
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthSettings {
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    /// Absent for a public client (PKCE alone).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default = "default_scope")]
    pub scope: String,
    /// The `iss` of the provider's ID tokens; default: the authorize URL less
    /// `/oauth2/authorize` (SAP Cloud Identity Services' layout).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Where the provider publishes the keys of its ID tokens; default: `{issuer}/oauth2/certs`
    /// (SAP Cloud Identity Services' layout).
    #[serde(default)]
    pub jwks_url: Option<String>,
}

impl OAuthSettings {
    /// The issuer ID tokens must name.
    pub fn issuer(&self) -> String {
        self.issuer.clone().unwrap_or_else(|| {
            let url = self.authorize_url.trim_end_matches('/');
            url.strip_suffix("/oauth2/authorize")
                .unwrap_or(url)
                .to_string()
        })
    }

    /// The JWKS of the provider's ID tokens.
    pub fn jwks_url(&self) -> String {
        self.jwks_url
            .clone()
            .unwrap_or_else(|| format!("{}/oauth2/certs", self.issuer()))
    }
}

/// The scopes asked for when none are configured: a refresh token is the point.
pub fn default_scope() -> String {
    "openid offline_access".into()
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

/// A tenant as written in the tenants file, or as the single-tenant variables describe it:
/// text, not yet checked.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct TenantFile {
    pub(super) id: String,
    pub(super) default_region: String,
    /// `provider` and that provider's keys, at the tenant's top level.
    #[serde(flatten)]
    pub(super) telephony: Telephony,
    pub(super) v2_url: String,
    pub(super) v2_user: String,
    pub(super) v2_password: Secret,
    #[serde(default)]
    pub(super) v2_events_user: Option<String>,
    #[serde(default)]
    pub(super) v2_events_password: Option<Secret>,
    #[serde(default)]
    pub(super) v2_events_client_id: Option<String>,
    /// `owner`, `open_opportunity`, `latest_activity`, `kind` in the tenant's order; absent: all
    /// four in that order.
    #[serde(default)]
    pub(super) match_rules: Option<Vec<String>>,
    /// The order of record kinds for the `kind` rule; absent: contact, individual_customer,
    /// account.
    #[serde(default)]
    pub(super) kind_order: Option<Vec<String>>,
    #[serde(default)]
    pub(super) recording_consent: Option<ConsentPolicy>,
    #[serde(default)]
    pub(super) activity_fields: BTreeMap<String, String>,
    /// `basic` (absent), `destination` (with `v2_destination`) or `oauth2` (with `oauth`).
    #[serde(default)]
    pub(super) v2_auth: Option<String>,
    #[serde(default)]
    pub(super) v2_destination: Option<String>,
    #[serde(default)]
    pub(super) oauth: Option<OAuthSettings>,
    #[serde(default = "default_dispositions")]
    pub(super) dispositions: Vec<String>,
    /// `off` (absent) or `display_id`.
    #[serde(default)]
    pub(super) custom_1: Option<String>,
    /// The tenant's V2 host origins; absent: `CTI_HOST_ORIGINS`, else the origin of `v2_url`.
    #[serde(default)]
    pub(super) host_origins: Option<Vec<String>>,
}

/// `scheme://host[:port]` of a URL, the form CSP and `postMessage` compare.
fn origin_of(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
}

impl TenantFile {
    /// The demo tenant, on the simulator at `sim_url`.
    pub(super) fn demo(sim_url: &str) -> Self {
        TenantFile {
            id: "demo".into(),
            default_region: "CH".into(),
            telephony: Telephony(TelephonySettings::Generic(generic::Settings::demo(sim_url))),
            v2_url: sim_url.into(),
            v2_user: "demo".into(),
            v2_password: Secret::new("demo"),
            v2_events_user: Some("v2-events".into()),
            v2_events_password: Some(Secret::new("demo-v2-events-secret")),
            v2_events_client_id: Some("v2-events".into()),
            match_rules: None,
            kind_order: None,
            recording_consent: None,
            activity_fields: BTreeMap::new(),
            v2_auth: None,
            v2_destination: None,
            oauth: None,
            dispositions: default_dispositions(),
            // The simulator's host page pops the record named in `Custom_1`, as V2 would with
            // call attached data set up, so the demo shows the rep's choice popping.
            custom_1: Some("display_id".into()),
            host_origins: None,
        }
    }

    /// The typed settings, or the first thing wrong with them, named by its variable.
    pub(super) fn check(self) -> Result<TenantConfig, ConfigError> {
        let invalid = |var: &'static str, problem: String| ConfigError::Invalid { var, problem };
        let id = &self.id;
        if id.contains(['{', '}']) {
            // Redis keys carry the tenant as their hash tag (`cti:{tenant}:...`): a brace in
            // the id would move its keys to other slots and split what must stay together.
            return Err(invalid(
                "CTI_TENANT",
                format!("tenant {id:?}: a tenant id may not contain `{{` or `}}`"),
            ));
        }
        let region = DefaultRegion::parse(&self.default_region).map_err(|_| {
            invalid(
                "CTI_DEFAULT_REGION",
                format!(
                    "tenant {id:?}: {:?} is not an ISO 3166 region",
                    self.default_region
                ),
            )
        })?;
        let rank_rules = self
            .rank_rules()
            .map_err(|problem| invalid("CTI_MATCH_RULES", format!("tenant {id:?}: {problem}")))?;
        let activity_fields = self
            .activity_fields()
            .map_err(|p| invalid("CTI_ACTIVITY_FIELDS", format!("tenant {id:?}: {p}")))?;
        let auth = self
            .auth_mode()
            .map_err(|p| invalid("CTI_V2_AUTH", format!("tenant {id:?}: {p}")))?;
        let custom_1 = match self.custom_1.as_deref().map(str::trim) {
            None | Some("off") => false,
            Some("display_id") => true,
            Some(other) => {
                return Err(invalid(
                    "CTI_CUSTOM_1",
                    format!(
                        "tenant {id:?}: unknown custom_1 {other:?} (expected off or display_id)"
                    ),
                ));
            }
        };
        if self.v2_events_user.is_some() != self.v2_events_password.is_some() {
            return Err(invalid(
                "CTI_V2_EVENTS_PASSWORD",
                format!("tenant {id:?}: set both the V2 events user and password, or neither"),
            ));
        }
        let facts = TenantFacts {
            id,
            v2_url: &self.v2_url,
        };
        self.telephony
            .0
            .check(&facts)
            .map_err(|e| invalid(e.var, e.problem))?;
        let host_origins = self
            .host_origins
            .clone()
            .unwrap_or_else(|| origin_of(&self.v2_url).into_iter().collect());
        Ok(TenantConfig {
            id: self.id,
            default_region: self.default_region,
            region,
            telephony: self.telephony.0,
            v2_url: self.v2_url,
            v2_user: self.v2_user,
            v2_password: self.v2_password,
            v2_events_user: self.v2_events_user,
            v2_events_password: self.v2_events_password,
            v2_events_client_id: self
                .v2_events_client_id
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty()),
            rank_rules,
            recording_consent: self.recording_consent,
            activity_fields,
            auth,
            oauth: self.oauth,
            host_origins,
            dispositions: self.dispositions,
            custom_1,
        })
    }

    /// The mapping with its paths trimmed, or what is wrong with it: a name the relay has no
    /// value for, or an empty path.
    fn activity_fields(&self) -> Result<BTreeMap<String, String>, String> {
        let mut fields = BTreeMap::new();
        for (name, path) in &self.activity_fields {
            if !MAPPABLE_ACTIVITY_FIELDS.contains(&name.as_str()) {
                return Err(format!(
                    "unknown activity field {name:?} (expected one of {})",
                    MAPPABLE_ACTIVITY_FIELDS.join(", ")
                ));
            }
            let path = path.trim().trim_matches('/');
            if path.is_empty() || path.split('/').any(|p| p.trim().is_empty()) {
                return Err(format!("activity field {name:?} has no path"));
            }
            fields.insert(name.clone(), path.to_string());
        }
        Ok(fields)
    }

    fn auth_mode(&self) -> Result<AuthMode, String> {
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

    fn rank_rules(&self) -> Result<RankRules, String> {
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

impl TenantConfig {
    /// The demo tenant, on the simulator at `sim_url`.
    pub fn demo(sim_url: &str) -> Self {
        TenantFile::demo(sim_url)
            .check()
            // A unit test holds the demo to this.
            .expect("the demo tenant is valid")
    }
}

/// A tenant's provider settings as the tenants file has them: flat among the tenant's keys, and
/// the generic provider when no `provider` is named, so files written before there was a choice
/// still read.
#[derive(Debug, Clone)]
pub(super) struct Telephony(pub(super) TelephonySettings);

impl<'de> Deserialize<'de> for Telephony {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut keys = serde_json::Map::deserialize(deserializer)?;
        keys.entry("provider")
            .or_insert_with(|| serde_json::Value::from("generic"));
        TelephonySettings::deserialize(serde_json::Value::Object(keys))
            .map(Telephony)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review F5 for the providers that post to the relay: Webex's signing secret, Teams'
    /// `clientState` and RingCentral's verification token prove a delivery the way the generic
    /// webhook's secret does, so two tenants may not share one (current or previous); the
    /// error names the setting and both tenants, never the secret.
    #[test]
    fn tenants_of_posting_providers_may_not_share_their_webhook_proof() {
        let sim = "http://127.0.0.1:8090";
        let tenant = |id: &str, provider: &str| {
            let mut config = crate::config::Config::demo(sim).tenants.remove(0);
            config.id = id.into();
            config.telephony = TelephonySettings::demo(provider, sim, "http://127.0.0.1:8080", id)
                .expect("a simulated provider");
            config
        };
        for (provider, name) in [
            ("webex", "webex_webhook_secret"),
            ("teams", "teams_client_state"),
            ("ringcentral", "ringcentral_verification_token"),
        ] {
            let (acme, mut globex) = (tenant("acme", provider), tenant("globex", provider));
            let err = distinct_webhook_secrets(&[&acme], &[&globex]).expect_err(provider);
            let text = err.to_string();
            assert!(
                text.contains(name) && text.contains("\"acme\"") && text.contains("\"globex\""),
                "{text}"
            );
            let own = Secret::new(format!("{provider}-secret-of-globex"));
            let shared = acme.webhook_secrets().1[0].to_string();
            assert!(!text.contains(&shared), "the secret is not shown: {text}");
            match &mut globex.telephony {
                TelephonySettings::Webex(w) => w.webex_webhook_secret = own,
                TelephonySettings::Teams(t) => t.teams_client_state = own,
                TelephonySettings::RingCentral(r) => r.ringcentral_verification_token = own,
                _ => unreachable!("only the providers above"),
            }
            distinct_webhook_secrets(&[&acme], &[&globex]).expect("secrets of their own");
            // A previous secret counts as much as the current one.
            match &mut globex.telephony {
                TelephonySettings::Webex(w) => {
                    w.webex_webhook_secret_previous = Some(Secret::new(shared))
                }
                TelephonySettings::Teams(t) => {
                    t.teams_client_state_previous = Some(Secret::new(shared))
                }
                TelephonySettings::RingCentral(r) => {
                    r.ringcentral_verification_token_previous = Some(Secret::new(shared))
                }
                _ => unreachable!("only the providers above"),
            }
            distinct_webhook_secrets(&[&acme], &[&globex]).expect_err("a previous secret shared");
        }
    }

    #[test]
    fn the_demo_tenant_is_valid_on_any_local_simulator() {
        for sim in [
            "http://127.0.0.1:8090",
            "http://localhost:1",
            "http://[::1]:2",
        ] {
            assert!(TenantFile::demo(sim).check().is_ok(), "{sim}");
        }
    }

    #[test]
    fn a_tenants_file_entry_becomes_typed_settings() {
        let raw: TenantFile = serde_json::from_value(serde_json::json!({
            "id": "acme", "default_region": "de", "webhook_secret": "a-secret-of-acme-own",
            "v2_url": "https://my1.crm.cloud.sap", "v2_user": "u", "v2_password": "p",
            "control_url": "https://pbx.example", "controls_secret": "a-controls-key-of-acme", "match_rules": ["kind"],
            "v2_auth": "oauth2",
            "oauth": {"authorize_url": "https://a", "token_url": "https://t", "client_id": "c"}
        }))
        .expect("shape");
        let t = raw.check().expect("valid");
        assert_eq!(t.region, DefaultRegion::parse("DE").expect("region"));
        assert_eq!(t.rank_rules.rules, [Rule::Kind]);
        assert_eq!(t.auth, AuthMode::OAuth2);
        assert_eq!(
            t.oauth.as_ref().map(|o| o.scope.as_str()),
            Some("openid offline_access")
        );
        assert_eq!(t.dispositions, default_dispositions());
        assert!(matches!(
            &t.telephony,
            TelephonySettings::Generic(g)
                if g.control_url == "https://pbx.example"
                    && g.webhook_secret.expose() == "a-secret-of-acme-own"
        ));
    }

    #[test]
    fn custom_1_is_opt_in_per_tenant_and_on_for_the_demo() {
        let entry = |custom_1: Option<&str>| {
            let mut entry = serde_json::json!({
                "id": "acme", "default_region": "DE", "webhook_secret": "a-secret-of-acme-own",
                "v2_url": "https://my1.crm.cloud.sap", "v2_user": "u", "v2_password": "p",
                "control_url": "https://pbx.example", "controls_secret": "a-controls-key-of-acme"
            });
            if let Some(custom_1) = custom_1 {
                entry["custom_1"] = custom_1.into();
            }
            serde_json::from_value::<TenantFile>(entry)
                .expect("shape")
                .check()
        };
        assert!(!entry(None).expect("valid").custom_1);
        assert!(!entry(Some("off")).expect("valid").custom_1);
        assert!(entry(Some("display_id")).expect("valid").custom_1);
        let err = entry(Some("account_uuid")).expect_err("not a choice");
        assert!(err.to_string().starts_with("CTI_CUSTOM_1"), "{err}");
        assert!(TenantConfig::demo("http://127.0.0.1:8090").custom_1);
    }

    #[test]
    fn the_provider_is_named_beside_its_keys_and_generic_when_it_is_not() {
        let entry = |provider: Option<&str>| {
            let mut entry = serde_json::json!({
                "id": "acme", "default_region": "DE", "webhook_secret": "a-secret-of-acme-own",
                "v2_url": "https://my1.crm.cloud.sap", "v2_user": "u", "v2_password": "p",
                "control_url": "https://pbx.example", "controls_secret": "a-controls-key-of-acme"
            });
            if let Some(provider) = provider {
                entry["provider"] = provider.into();
            }
            serde_json::from_value::<TenantFile>(entry)
        };
        for provider in [None, Some("generic")] {
            let t = entry(provider).expect("shape").check().expect("valid");
            assert!(matches!(t.telephony, TelephonySettings::Generic(_)));
        }
        let err = entry(Some("carrier-pigeon")).expect_err("no such provider");
        assert!(err.to_string().contains("carrier-pigeon"), "{err}");
    }
}
