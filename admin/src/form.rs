//! The settings form: which fields a tenant's administrator sets, and how the text in the form
//! becomes the settings object the relay takes (the tenants file's shape, README
//! "Configuration") and back.
//!
//! The form holds text, one string per field, keyed by the field's path in the settings object
//! (`v2_url`, `oauth.client_id`). Turning it into settings is where the page checks what it can
//! check without the relay (a number is a number, a JSON field parses, a `name=value` line has
//! its `=`); everything else (a region, a URL, a rule's name) is the relay's to judge, and its
//! answer names the field ([`crate::api::ApiError::field`]).
//!
//! Secrets never come back from the relay: it lists which ones are stored (`secrets_set`). A
//! secret field left empty is left out of what is sent, which the relay reads as "keep the stored
//! value".

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// How a field is edited and how its text becomes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One line of text; a string.
    Text,
    /// Several lines of text kept as they are (a PEM certificate); a string.
    Multiline,
    /// A password input; a string. Empty: keep the stored one.
    Secret,
    /// A secret of several lines (a PEM private key), in a text area that is never filled in;
    /// a string. Empty: keep the stored one.
    SecretMultiline,
    /// A whole number; a JSON number.
    Number,
    /// Yes, no, or the relay's default; a JSON boolean.
    Flag,
    /// One of a few values (`value`, `label`). Until one is picked the first shows, which is the
    /// relay's default for an absent field (or an empty value that means exactly that), and the
    /// field is left out.
    Choice(&'static [(&'static str, &'static str)]),
    /// Comma-separated words; an array of strings.
    List,
    /// One entry per line; an array of strings.
    Lines,
    /// `name=value`, one per line; an object of strings.
    Pairs,
    /// Raw JSON, for the few values with a nested shape of their own.
    Json,
}

/// One input of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Where the value sits in the settings object: a key, or `outer.inner`.
    pub path: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    /// What to type, shown under the input and read out with it.
    pub hint: &'static str,
}

impl Field {
    const fn new(path: &'static str, label: &'static str, kind: Kind, hint: &'static str) -> Self {
        Field {
            path,
            label,
            kind,
            hint,
        }
    }

    /// The input's element id: a path with characters an id selector takes without escaping.
    pub fn id(&self) -> String {
        format!("field-{}", self.path.replace('.', "-"))
    }

    pub fn is_secret(&self) -> bool {
        matches!(self.kind, Kind::Secret | Kind::SecretMultiline)
    }
}

/// A group of fields under a heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub title: &'static str,
    pub fields: &'static [Field],
}

use Kind::*;

const RULES_HINT: &str = "Comma-separated, in order: owner, open_opportunity, latest_activity, kind. Empty: all four in that order.";
const AGENTS_HINT: &str = "One per line: rep's e-mail=the provider's user id.";

/// The fields every tenant has, whatever its telephony.
pub const GENERAL: &[Group] = &[
    Group {
        title: "SAP Sales Cloud V2",
        fields: &[
            Field::new(
                "v2_url",
                "V2 tenant URL",
                Text,
                "https://myNNNNNN.crm.cloud.sap",
            ),
            Field::new(
                "v2_auth",
                "Activities are written as",
                Choice(&[
                    ("basic", "the technical user (basic)"),
                    ("destination", "each rep, through a BTP destination"),
                    ("oauth2", "each rep's own sign-in (OAuth 2.0)"),
                ]),
                "On whose authority phone calls are logged in V2.",
            ),
            Field::new(
                "v2_user",
                "Technical user",
                Text,
                "V2's communication user (Basic auth).",
            ),
            Field::new("v2_password", "Technical user's password", Secret, ""),
            Field::new(
                "v2_destination",
                "Destination name",
                Text,
                "With destination: the OAuth2SAMLBearerAssertion destination to V2.",
            ),
            Field::new(
                "oauth.authorize_url",
                "OAuth authorize URL",
                Text,
                "With OAuth 2.0.",
            ),
            Field::new(
                "oauth.token_url",
                "OAuth token URL",
                Text,
                "With OAuth 2.0.",
            ),
            Field::new(
                "oauth.client_id",
                "OAuth client id",
                Text,
                "With OAuth 2.0.",
            ),
            Field::new(
                "oauth.client_secret",
                "OAuth client secret",
                Secret,
                "Empty for a public client (PKCE).",
            ),
            Field::new(
                "oauth.scope",
                "OAuth scopes",
                Text,
                "Default: openid offline_access.",
            ),
            Field::new(
                "oauth.issuer",
                "OAuth issuer",
                Text,
                "Default: the authorize URL less /oauth2/authorize.",
            ),
            Field::new(
                "oauth.jwks_url",
                "OAuth keys URL",
                Text,
                "Default: {issuer}/oauth2/certs.",
            ),
            Field::new(
                "v2_events_user",
                "Change events user",
                Text,
                "The Basic user V2 delivers change events with; with its password, or neither.",
            ),
            Field::new("v2_events_password", "Change events password", Secret, ""),
            Field::new(
                "v2_events_client_id",
                "Change events OAuth client",
                Text,
                "The client V2's outbound communication takes its tokens as.",
            ),
            Field::new(
                "host_origins",
                "V2 window origins",
                List,
                "Comma-separated, such as https://*.crm.cloud.sap. Empty: the V2 URL's origin.",
            ),
        ],
    },
    Group {
        title: "Numbers and matching",
        fields: &[
            Field::new(
                "default_region",
                "Region",
                Text,
                "ISO 3166 code for numbers written nationally, such as CH.",
            ),
            Field::new("match_rules", "Match rules", List, RULES_HINT),
            Field::new(
                "kind_order",
                "Record kinds",
                List,
                "Comma-separated order for the kind rule: contact, individual_customer, account.",
            ),
            Field::new(
                "custom_1",
                "Custom_1 to V2",
                Choice(&[("off", "off"), ("display_id", "the record's display id")]),
                "Whether the pop carries the chosen record's display id.",
            ),
        ],
    },
    Group {
        title: "Calls",
        fields: &[
            Field::new(
                "dispositions",
                "Dispositions",
                Lines,
                "One outcome per line, in the order reps see them.",
            ),
            Field::new(
                "recording_consent.default",
                "Recording consent elsewhere",
                Choice(&[
                    ("", "the built-in policy"),
                    ("two_party", "two-party consent"),
                    ("one_party", "one-party consent"),
                ]),
                "For countries not listed below.",
            ),
            Field::new(
                "recording_consent.countries",
                "Recording consent by country",
                Pairs,
                "One per line: US=one_party, FR=two_party.",
            ),
            Field::new(
                "activity_fields",
                "Activity fields",
                Pairs,
                "One per line: direction=extensions/CtiDirection.",
            ),
        ],
    },
];

/// The telephony providers a tenant may choose (`provider`), with the settings of each.
pub const PROVIDERS: &[(&str, &str, &[Field])] = &[
    (
        "generic",
        "Generic webhook PBX",
        &[
            Field::new(
                "webhook_secret",
                "Webhook secret",
                Secret,
                "At least 16 characters: the PBX signs its webhooks with it.",
            ),
            Field::new(
                "webhook_secret_previous",
                "Previous webhook secret",
                Secret,
                "During a rotation only.",
            ),
            Field::new(
                "controls_secret",
                "Call controls secret",
                Secret,
                "Empty: controls are signed with the webhook secret.",
            ),
            Field::new(
                "control_url",
                "Call control URL",
                Text,
                "The PBX's call-control base URL.",
            ),
            Field::new(
                "webhook_legacy_signatures_until",
                "Unstamped signatures until",
                Text,
                "RFC 3339 time until which webhooks without X-CTI-Timestamp are taken.",
            ),
        ],
    ),
    (
        "genesys",
        "Genesys Cloud",
        &[
            Field::new(
                "genesys_api_url",
                "API URL",
                Text,
                "https://api.mypurecloud.de",
            ),
            Field::new(
                "genesys_login_url",
                "Login URL",
                Text,
                "https://login.mypurecloud.de",
            ),
            Field::new("genesys_client_id", "Client id", Text, ""),
            Field::new("genesys_client_secret", "Client secret", Secret, ""),
            Field::new("agents", "Reps", Pairs, AGENTS_HINT),
        ],
    ),
    (
        "ringcentral",
        "RingCentral",
        &[
            Field::new(
                "ringcentral_server_url",
                "Server URL",
                Text,
                "https://platform.ringcentral.com",
            ),
            Field::new("ringcentral_client_id", "Client id", Text, ""),
            Field::new("ringcentral_client_secret", "Client secret", Secret, ""),
            Field::new("ringcentral_jwt", "JWT credential", Secret, ""),
            Field::new(
                "ringcentral_webhook_url",
                "Webhook URL",
                Text,
                "This relay's address RingCentral posts to.",
            ),
            Field::new(
                "ringcentral_verification_token",
                "Verification token",
                Secret,
                "",
            ),
            Field::new(
                "ringcentral_verification_token_previous",
                "Previous verification token",
                Secret,
                "During a rotation only.",
            ),
            Field::new(
                "ringcentral_device_ids",
                "Devices",
                Pairs,
                "One per line: rep's e-mail=device id.",
            ),
            Field::new("ringcentral_watch_secs", "Watch interval (s)", Number, ""),
            Field::new("ringcentral_subscription", "Subscription id", Text, ""),
            Field::new("agents", "Reps", Pairs, AGENTS_HINT),
        ],
    ),
    (
        "teams",
        "Microsoft Teams",
        &[
            Field::new("teams_tenant_id", "Microsoft tenant id", Text, ""),
            Field::new("teams_client_id", "Client id", Text, ""),
            Field::new("teams_client_secret", "Client secret", Secret, ""),
            Field::new(
                "teams_client_certificate",
                "Client certificate (PEM)",
                Multiline,
                "Instead of the client secret.",
            ),
            Field::new(
                "teams_client_private_key",
                "Certificate's private key (PEM)",
                SecretMultiline,
                "",
            ),
            Field::new("teams_bot_app_id", "Bot app id", Text, ""),
            Field::new(
                "teams_mode",
                "Mode",
                Choice(&[("bot", "bot"), ("presence", "presence")]),
                "",
            ),
            Field::new(
                "teams_notification_url",
                "Notification URL",
                Text,
                "This relay's address Graph posts to.",
            ),
            Field::new("teams_client_state", "Client state", Secret, ""),
            Field::new(
                "teams_client_state_previous",
                "Previous client state",
                Secret,
                "During a rotation only.",
            ),
            Field::new(
                "teams_presence_users",
                "Presence users",
                List,
                "Comma-separated.",
            ),
            Field::new(
                "teams_presence_refresh_token",
                "Presence refresh token",
                Secret,
                "",
            ),
            Field::new(
                "teams_login_url",
                "Login URL",
                Text,
                "Default: Microsoft's.",
            ),
            Field::new(
                "teams_graph_url",
                "Graph URL",
                Text,
                "Default: Microsoft's.",
            ),
            Field::new(
                "teams_openid_url",
                "OpenID URL",
                Text,
                "Default: Microsoft's.",
            ),
            Field::new("teams_watch_secs", "Watch interval (s)", Number, ""),
            Field::new(
                "teams_subscription_minutes",
                "Subscription lifetime (min)",
                Number,
                "",
            ),
            Field::new("agents", "Reps", Pairs, AGENTS_HINT),
        ],
    ),
    (
        "webex",
        "Webex Calling",
        &[
            Field::new("webex_api_url", "API URL", Text, "https://webexapis.com"),
            Field::new("webex_client_id", "Client id", Text, ""),
            Field::new("webex_client_secret", "Client secret", Secret, ""),
            Field::new("webex_refresh_token", "Refresh token", Secret, ""),
            Field::new(
                "webex_webhook_url",
                "Webhook URL",
                Text,
                "This relay's address Webex posts to.",
            ),
            Field::new("webex_webhook_secret", "Webhook secret", Secret, ""),
            Field::new(
                "webex_webhook_secret_previous",
                "Previous webhook secret",
                Secret,
                "During a rotation only.",
            ),
            Field::new("webex_watch_secs", "Watch interval (s)", Number, ""),
            Field::new("agents", "Reps", Pairs, AGENTS_HINT),
        ],
    ),
    (
        "finesse",
        "Cisco Finesse",
        &[
            Field::new("finesse_url", "Finesse URL", Text, ""),
            Field::new(
                "finesse_login",
                "Login",
                Choice(&[("agent", "each agent"), ("supervisor", "one supervisor")]),
                "",
            ),
            Field::new(
                "finesse_auth",
                "Authentication",
                Choice(&[("basic", "basic"), ("sso", "single sign-on")]),
                "",
            ),
            Field::new("finesse_supervisor_id", "Supervisor id", Text, ""),
            Field::new(
                "finesse_supervisor_password",
                "Supervisor password",
                Secret,
                "",
            ),
            Field::new("finesse_supervisor_token", "Supervisor token", Secret, ""),
            Field::new(
                "finesse_agents",
                "Agents",
                Json,
                r#"JSON: {"<Finesse id>": {"rep": "<e-mail>", "password": "..."}}; a stored password left out is kept."#,
            ),
            Field::new(
                "finesse_xmpp_host",
                "XMPP host",
                Text,
                "Default: the Finesse URL's host.",
            ),
            Field::new("finesse_xmpp_port", "XMPP port", Number, ""),
            Field::new("finesse_xmpp_domain", "XMPP domain", Text, ""),
            Field::new("finesse_xmpp_tls", "XMPP over TLS", Flag, ""),
            Field::new("finesse_xmpp_ca_pem", "XMPP CA (PEM)", Multiline, ""),
            Field::new("finesse_xmpp_resource", "XMPP resource", Text, ""),
        ],
    ),
    (
        "asterisk",
        "Asterisk",
        &[
            Field::new("asterisk_host", "Host", Text, ""),
            Field::new("asterisk_port", "Port", Number, ""),
            Field::new("asterisk_tls", "TLS", Flag, ""),
            Field::new("asterisk_ca_pem", "CA (PEM)", Multiline, ""),
            Field::new("asterisk_username", "Manager user", Text, ""),
            Field::new("asterisk_secret", "Manager secret", Secret, ""),
            Field::new("asterisk_context", "Dial context", Text, ""),
            Field::new(
                "asterisk_endpoints",
                "Endpoints",
                Pairs,
                "One per line: rep's e-mail=PJSIP/endpoint.",
            ),
        ],
    ),
    (
        "freeswitch",
        "FreeSWITCH",
        &[
            Field::new("freeswitch_host", "Host", Text, ""),
            Field::new("freeswitch_port", "Port", Number, ""),
            Field::new("freeswitch_password", "Event socket password", Secret, ""),
            Field::new("freeswitch_context", "Dial context", Text, ""),
            Field::new("freeswitch_private_network", "Private network", Flag, ""),
            Field::new(
                "freeswitch_users",
                "Users",
                Pairs,
                "One per line: rep's e-mail=user.",
            ),
        ],
    ),
    (
        "sip",
        "SIP PBX",
        &[
            Field::new("sip_server", "Server", Text, "host or host:port"),
            Field::new(
                "sip_transport",
                "Transport",
                Choice(&[("udp", "udp"), ("tcp", "tcp"), ("tls", "tls")]),
                "",
            ),
            Field::new("sip_username", "User", Text, ""),
            Field::new("sip_password", "Password", Secret, ""),
            Field::new("sip_domain", "Domain", Text, ""),
            Field::new(
                "sip_reps",
                "Reps",
                Pairs,
                "One per line: rep's e-mail=SIP user.",
            ),
            Field::new("sip_expires", "Subscription lifetime (s)", Number, ""),
            Field::new("sip_tls_ca_pem", "TLS CA (PEM)", Multiline, ""),
            Field::new("sip_click_to_dial_url", "Click-to-dial URL", Text, ""),
            Field::new("sip_infer_transfers", "Infer transfers", Flag, ""),
        ],
    ),
];

/// The provider a tenant without `provider` has.
pub const DEFAULT_PROVIDER: &str = "generic";

/// The fields of one provider; none for a name the page does not know.
pub fn provider_fields(provider: &str) -> &'static [Field] {
    PROVIDERS
        .iter()
        .find(|(name, _, _)| *name == provider)
        .map_or(&[], |(_, _, fields)| *fields)
}

/// Every field the page knows, whatever the provider: what it may drop from the loaded settings
/// when it writes them back.
fn known_field(path: &str) -> bool {
    GENERAL
        .iter()
        .flat_map(|g| g.fields)
        .chain(PROVIDERS.iter().flat_map(|(_, _, fields)| *fields))
        .any(|f| f.path == path || f.path.split('.').next() == Some(path))
}

/// The form's text: one string per field path, and the chosen provider under `provider`.
pub type Values = BTreeMap<String, String>;

/// A value the page refuses before sending: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The value at `outer.inner` (or `key`) in a settings object.
fn lookup<'v>(settings: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(settings, |at, key| at.get(key))
}

/// The text a field shows for a stored value.
fn text_of(kind: Kind, value: &Value) -> String {
    match (kind, value) {
        (_, Value::Null) => String::new(),
        (_, Value::String(s)) => s.clone(),
        (Lines, Value::Array(items)) => join(items, "\n"),
        (_, Value::Array(items)) => join(items, ", "),
        (Pairs, Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (Json, other) => serde_json::to_string_pretty(other).unwrap_or_default(),
        (_, other) => other.to_string(),
    }
}

fn join(items: &[Value], separator: &str) -> String {
    items
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect::<Vec<_>>()
        .join(separator)
}

/// The form's text for the settings the relay holds. Secrets are never among them; their
/// fields start empty.
pub fn values_from(settings: &Value) -> Values {
    let mut values = Values::new();
    let provider = settings
        .get("provider")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_PROVIDER);
    values.insert("provider".into(), provider.to_string());
    let fields = GENERAL
        .iter()
        .flat_map(|g| g.fields)
        .chain(provider_fields(provider));
    for field in fields {
        if field.is_secret() {
            continue;
        }
        if let Some(value) = lookup(settings, field.path) {
            values.insert(field.path.to_string(), text_of(field.kind, value));
        }
    }
    values
}

/// The value a field's text stands for; None: leave the field out.
fn value_of(field: &Field, text: &str) -> Result<Option<Value>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let value = match field.kind {
        Text | Secret | Choice(_) => Value::String(trimmed.to_string()),
        // A PEM's line breaks are part of it; only the blank ends go.
        Multiline | SecretMultiline => Value::String(trimmed.to_string()),
        Number => trimmed
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| format!("{} must be a whole number, not {trimmed:?}", field.label))?,
        Flag => match trimmed {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => return Err(format!("{} must be yes or no, not {other:?}", field.label)),
        },
        List => strings(trimmed.split([',', '\n'])),
        Lines => strings(trimmed.lines()),
        Pairs => {
            let mut map = Map::new();
            for line in trimmed.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let Some((name, value)) = line.split_once('=') else {
                    return Err(format!(
                        "{}: the line {line:?} has no `=` (name=value)",
                        field.label
                    ));
                };
                let (name, value) = (name.trim(), value.trim());
                if name.is_empty() {
                    return Err(format!("{}: the line {line:?} has no name", field.label));
                }
                map.insert(name.to_string(), Value::String(value.to_string()));
            }
            Value::Object(map)
        }
        Json => serde_json::from_str(trimmed)
            .map_err(|e| format!("{} is not valid JSON: {e}", field.label))?,
    };
    Ok(Some(value))
}

fn strings<'a>(parts: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(
        parts
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Value::String(p.to_string()))
            .collect(),
    )
}

/// The settings to send for the form's text.
///
/// `loaded` is what the relay last returned: keys the page has no field for are passed back as
/// they were, so a setting added to the relay after this page was built is not lost by saving
/// here. Keys of a provider other than the chosen one are dropped (they would be stale). The
/// tenant's `id` is never sent: the relay takes it from the admin's token.
pub fn settings_from(values: &Values, loaded: &Value) -> Result<Value, FieldError> {
    let mut settings = Map::new();
    if let Some(object) = loaded.as_object() {
        for (key, value) in object {
            if key != "id" && key != "provider" && !known_field(key) {
                settings.insert(key.clone(), value.clone());
            }
        }
    }
    let provider = values
        .get("provider")
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_PROVIDER);
    settings.insert("provider".into(), Value::String(provider.to_string()));
    let fields = GENERAL
        .iter()
        .flat_map(|g| g.fields)
        .chain(provider_fields(provider));
    for field in fields {
        let text = values.get(field.path).map_or("", String::as_str);
        let value = value_of(field, text).map_err(|message| FieldError {
            field: field.path.to_string(),
            message,
        })?;
        let Some(value) = value else { continue };
        match field.path.split_once('.') {
            None => {
                settings.insert(field.path.to_string(), value);
            }
            Some((outer, inner)) => {
                let entry = settings
                    .entry(outer.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(object) = entry.as_object_mut() {
                    object.insert(inner.to_string(), value);
                }
            }
        }
    }
    Ok(Value::Object(settings))
}

/// Whether a secret field has a stored value, by the names the relay lists in `secrets_set`
/// (the field's path: `webhook_secret`, `oauth.client_secret`).
pub fn secret_is_stored(field: &Field, secrets_set: &[String]) -> bool {
    secrets_set.iter().any(|name| name == field.path)
}

/// The field a relay's error names, matched to the form: the same path, else the same last key
/// (`client_secret` for `oauth.client_secret`). None: show the error above the form.
pub fn field_named(name: &str, provider: &str) -> Option<&'static Field> {
    let fields = || {
        GENERAL
            .iter()
            .flat_map(|g| g.fields)
            .chain(provider_fields(provider))
    };
    fields()
        .find(|f| f.path == name)
        .or_else(|| fields().find(|f| f.path.rsplit('.').next() == name.rsplit('.').next()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn set(values: &mut Values, path: &str, text: &str) {
        values.insert(path.into(), text.into());
    }

    #[wasm_bindgen_test]
    fn the_form_turns_into_the_tenants_file_shape() {
        let mut values = Values::new();
        set(&mut values, "provider", "generic");
        set(&mut values, "v2_url", " https://my1.crm.cloud.sap ");
        set(&mut values, "v2_user", "cti");
        set(&mut values, "v2_password", "pw");
        set(&mut values, "default_region", "CH");
        set(&mut values, "match_rules", "kind, owner");
        set(&mut values, "dispositions", "Won\n\nLost\n");
        set(&mut values, "recording_consent.default", "one_party");
        set(&mut values, "recording_consent.countries", "DE=two_party\n");
        set(&mut values, "control_url", "https://pbx.example.com/cti");
        set(&mut values, "webhook_secret", "");
        // A field of another provider is not sent.
        set(&mut values, "asterisk_host", "pbx");
        let settings = settings_from(&values, &json!({})).expect("valid");
        assert_eq!(
            settings,
            json!({
                "provider": "generic",
                "v2_url": "https://my1.crm.cloud.sap",
                "v2_user": "cti",
                "v2_password": "pw",
                "default_region": "CH",
                "match_rules": ["kind", "owner"],
                "dispositions": ["Won", "Lost"],
                "recording_consent": {"default": "one_party", "countries": {"DE": "two_party"}},
                "control_url": "https://pbx.example.com/cti",
            })
        );
    }

    #[wasm_bindgen_test]
    fn what_the_relay_returns_fills_the_form_and_comes_back_unchanged() {
        let loaded = json!({
            "id": "t1",
            "provider": "asterisk",
            "v2_url": "https://my1.crm.cloud.sap",
            "v2_user": "cti",
            "default_region": "DE",
            "kind_order": ["account", "contact"],
            "dispositions": ["A", "B"],
            "asterisk_host": "pbx.example.com",
            "asterisk_port": 5039,
            "asterisk_tls": false,
            "asterisk_username": "relay",
            "asterisk_endpoints": {"alice@example.com": "PJSIP/100"},
            "oauth": {"authorize_url": "https://idp/oauth2/authorize", "token_url": "https://idp/t", "client_id": "c"},
            "a_future_setting": {"kept": true},
        });
        let values = values_from(&loaded);
        assert_eq!(values["provider"], "asterisk");
        assert_eq!(values["asterisk_port"], "5039");
        assert_eq!(values["asterisk_tls"], "false");
        assert_eq!(values["kind_order"], "account, contact");
        assert_eq!(values["dispositions"], "A\nB");
        assert_eq!(values["asterisk_endpoints"], "alice@example.com=PJSIP/100");
        assert_eq!(values["oauth.client_id"], "c");
        let mut expected = loaded.clone();
        expected.as_object_mut().expect("object").remove("id");
        assert_eq!(settings_from(&values, &loaded).expect("valid"), expected);
    }

    #[wasm_bindgen_test]
    fn text_the_page_can_judge_is_refused_naming_its_field() {
        let mut values = Values::new();
        set(&mut values, "provider", "freeswitch");
        set(&mut values, "freeswitch_port", "80 21");
        let error = settings_from(&values, &json!({})).expect_err("not a number");
        assert_eq!(error.field, "freeswitch_port");
        assert!(error.message.contains("whole number"), "{}", error.message);

        let mut values = Values::new();
        set(&mut values, "activity_fields", "direction");
        let error = settings_from(&values, &json!({})).expect_err("no =");
        assert_eq!(error.field, "activity_fields");

        let mut values = Values::new();
        set(&mut values, "provider", "finesse");
        set(&mut values, "finesse_agents", "{not json");
        let error = settings_from(&values, &json!({})).expect_err("bad JSON");
        assert_eq!(error.field, "finesse_agents");
    }

    #[wasm_bindgen_test]
    fn secrets_are_never_shown_and_empty_ones_are_kept() {
        let loaded = json!({"provider": "generic", "webhook_secret": "leaked"});
        assert!(!values_from(&loaded).contains_key("webhook_secret"));
        let stored = vec![
            "webhook_secret".to_string(),
            "oauth.client_secret".to_string(),
        ];
        let field = |path: &str| {
            GENERAL
                .iter()
                .flat_map(|g| g.fields)
                .chain(provider_fields("generic"))
                .find(|f| f.path == path)
                .expect("a field")
        };
        assert!(secret_is_stored(field("webhook_secret"), &stored));
        assert!(secret_is_stored(field("oauth.client_secret"), &stored));
        assert!(!secret_is_stored(field("v2_password"), &stored));
    }

    #[wasm_bindgen_test]
    fn the_relays_field_names_find_their_inputs() {
        assert_eq!(
            field_named("v2_url", "generic").map(|f| f.path),
            Some("v2_url")
        );
        assert_eq!(
            field_named("client_secret", "generic").map(|f| f.path),
            Some("oauth.client_secret")
        );
        assert_eq!(
            field_named("asterisk_host", "asterisk").map(|f| f.path),
            Some("asterisk_host")
        );
        assert_eq!(field_named("asterisk_host", "generic"), None);
        assert_eq!(field_named("nothing", "generic"), None);
    }

    #[wasm_bindgen_test]
    fn every_field_has_one_id_per_provider() {
        for (name, _, fields) in PROVIDERS {
            let mut ids: Vec<String> = GENERAL
                .iter()
                .flat_map(|g| g.fields)
                .chain(*fields)
                .map(Field::id)
                .collect();
            let count = ids.len();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), count, "{name} repeats a field");
        }
    }
}
