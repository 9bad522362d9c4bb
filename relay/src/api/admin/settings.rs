//! A tenant's settings as the admin page sees and sends them: the tenants file's shape, with
//! every secret taken out of what is shown, kept when a change leaves it out, and every field
//! checked with an error that names it.

use serde_json::{Map, Value};

use crate::adapters::TelephonySettings;
use crate::config::{ConfigError, TenantConfig};

/// The secret keys at a tenants-file entry's top level: the V2 credentials' and every
/// provider's. A secret added to a provider's settings must be added here, or the admin page
/// would show it (a unit test lists them against the providers' settings).
pub(crate) const SECRET_FIELDS: &[&str] = &[
    "v2_password",
    "v2_events_password",
    // generic
    "webhook_secret",
    "webhook_secret_previous",
    "controls_secret",
    // ringcentral
    "ringcentral_client_secret",
    "ringcentral_jwt",
    "ringcentral_verification_token",
    "ringcentral_verification_token_previous",
    // genesys
    "genesys_client_secret",
    // teams
    "teams_client_secret",
    "teams_client_private_key",
    "teams_client_state",
    "teams_client_state_previous",
    "teams_presence_refresh_token",
    // webex
    "webex_client_secret",
    "webex_refresh_token",
    "webex_webhook_secret",
    "webex_webhook_secret_previous",
    // finesse (the agents' own are in `finesse_agents`)
    "finesse_supervisor_password",
    "finesse_supervisor_token",
    // asterisk, freeswitch, sip
    "asterisk_secret",
    "freeswitch_password",
    "sip_password",
];

/// Secrets one level down: `oauth.client_secret`.
const NESTED_SECRETS: &[(&str, &str)] = &[("oauth", "client_secret")];

/// Secrets of each entry of a map: `finesse_agents.<id>.password` and `.token`.
const PER_ENTRY_SECRETS: &[(&str, &[&str])] = &[("finesse_agents", &["password", "token"])];

/// A setting refused, named by its key in the tenants file's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) message: String,
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn present(value: Option<&Value>) -> bool {
    value.is_some_and(|v| !v.is_null())
}

/// The settings without their secrets (nor `id`, which is the token's), and the names of the
/// secrets that have a value, sorted: what the page shows.
pub(crate) fn redact(settings: &Value) -> (Value, Vec<String>) {
    let mut shown = settings.as_object().cloned().unwrap_or_default();
    shown.remove("id");
    let mut set = Vec::new();
    for field in SECRET_FIELDS {
        if present(shown.remove(*field).as_ref()) {
            set.push((*field).to_string());
        }
    }
    for (object, key) in NESTED_SECRETS {
        if let Some(Value::Object(inner)) = shown.get_mut(*object)
            && present(inner.remove(*key).as_ref())
        {
            set.push(format!("{object}.{key}"));
        }
    }
    for (map, keys) in PER_ENTRY_SECRETS {
        if let Some(Value::Object(entries)) = shown.get_mut(*map) {
            for (id, entry) in entries.iter_mut() {
                let Value::Object(entry) = entry else {
                    continue;
                };
                for key in *keys {
                    if present(entry.remove(*key).as_ref()) {
                        set.push(format!("{map}.{id}.{key}"));
                    }
                }
            }
        }
    }
    set.sort();
    (Value::Object(shown), set)
}

/// `body` with every secret it leaves out taken from `stored`: an admin changing the
/// dispositions need not type the V2 password again. A secret given as `null` is removed
/// (an optional one, such as a rotation's previous secret, is cleared that way). A nested
/// secret is kept only where its object is still there (`oauth`, the same Finesse agent).
pub(crate) fn merge_secrets(body: &mut Map<String, Value>, stored: Option<&Value>) {
    let Some(Value::Object(stored)) = stored else {
        return;
    };
    for field in SECRET_FIELDS {
        if !body.contains_key(*field)
            && let Some(value) = stored.get(*field).filter(|v| !v.is_null())
        {
            body.insert((*field).to_string(), value.clone());
        }
    }
    for (object, key) in NESTED_SECRETS {
        if let (Some(Value::Object(inner)), Some(Value::Object(kept))) =
            (body.get_mut(*object), stored.get(*object))
            && !inner.contains_key(*key)
            && let Some(value) = kept.get(*key).filter(|v| !v.is_null())
        {
            inner.insert((*key).to_string(), value.clone());
        }
    }
    for (map, keys) in PER_ENTRY_SECRETS {
        let (Some(Value::Object(entries)), Some(Value::Object(kept))) =
            (body.get_mut(*map), stored.get(*map))
        else {
            continue;
        };
        for (id, entry) in entries.iter_mut() {
            let (Value::Object(entry), Some(Value::Object(old))) = (entry, kept.get(id)) else {
                continue;
            };
            for key in *keys {
                if !entry.contains_key(*key)
                    && let Some(value) = old.get(*key).filter(|v| !v.is_null())
                {
                    entry.insert((*key).to_string(), value.clone());
                }
            }
        }
    }
}

/// What JSON type each common key must have; the provider's keys are checked by its own
/// settings.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    TextList,
    Object,
}

const TYPED_FIELDS: &[(&str, Kind)] = &[
    ("default_region", Kind::Text),
    ("provider", Kind::Text),
    ("v2_url", Kind::Text),
    ("v2_user", Kind::Text),
    ("v2_password", Kind::Text),
    ("v2_events_user", Kind::Text),
    ("v2_events_password", Kind::Text),
    ("v2_events_client_id", Kind::Text),
    ("match_rules", Kind::TextList),
    ("kind_order", Kind::TextList),
    ("recording_consent", Kind::Object),
    ("activity_fields", Kind::Object),
    ("v2_auth", Kind::Text),
    ("v2_destination", Kind::Text),
    ("oauth", Kind::Object),
    ("dispositions", Kind::TextList),
    ("custom_1", Kind::Text),
    ("host_origins", Kind::TextList),
];

/// The fields every tenant needs, whatever its provider.
const REQUIRED: &[&str] = &["default_region", "v2_url", "v2_user", "v2_password"];

/// Checks merged settings field by field and returns the tenant they configure. The common
/// fields are checked here first, so each error names its field; what only the full check
/// finds ([`TenantConfig::from_json`], the one the tenants file goes through) is named by
/// the key its error points at.
pub(crate) fn validate(
    tenant: &str,
    settings: &Map<String, Value>,
) -> Result<TenantConfig, FieldError> {
    for (field, kind) in TYPED_FIELDS {
        let Some(value) = settings.get(*field).filter(|v| !v.is_null()) else {
            continue;
        };
        let fits = match kind {
            Kind::Text => value.is_string(),
            Kind::TextList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            Kind::Object => value.is_object(),
        };
        if !fits {
            let wanted = match kind {
                Kind::Text => "text",
                Kind::TextList => "a list of texts",
                Kind::Object => "an object",
            };
            return Err(field_error(*field, format!("must be {wanted}")));
        }
    }
    for field in REQUIRED {
        let given = settings
            .get(*field)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.trim().is_empty());
        if !given {
            return Err(field_error(*field, "is required"));
        }
    }
    let v2_url = settings
        .get("v2_url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match reqwest::Url::parse(v2_url) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => {}
        Ok(url)
            if url.scheme() == "http"
                && url.host().is_some()
                && crate::adapters::is_loopback(v2_url) => {}
        _ => {
            return Err(field_error(
                "v2_url",
                format!("{v2_url:?} is not an https URL (such as https://my123456.crm.cloud.sap)"),
            ));
        }
    }
    if let Some(provider) = settings.get("provider").and_then(Value::as_str)
        && !TelephonySettings::SIMULATED.contains(&provider)
    {
        return Err(field_error(
            "provider",
            format!(
                "unknown provider {provider:?} (expected one of {})",
                TelephonySettings::SIMULATED.join(", ")
            ),
        ));
    }
    TenantConfig::from_json(tenant, &Value::Object(settings.clone())).map_err(named)
}

/// A configuration error named by the settings key it is about: the variable a check names
/// (`CTI_DEFAULT_REGION`) is the key's upper-case form, and a provider's checks name the key
/// itself; a shape error says the key it misses or the provider it does not know.
pub(crate) fn named(err: ConfigError) -> FieldError {
    let (var, problem) = match err {
        ConfigError::Invalid { var, problem } => (var, problem),
        ConfigError::TenantsFile { problem, .. } => ("tenant settings", problem),
    };
    let field = if var == "tenant settings" {
        quoted_after(&problem, "missing field `")
            .or_else(|| quoted_after(&problem, "unknown field `"))
            .or_else(|| problem.contains("variant").then(|| "provider".to_string()))
            .unwrap_or_else(|| "settings".to_string())
    } else if var == "CTI_TENANT" {
        "id".to_string()
    } else {
        var.strip_prefix("CTI_").unwrap_or(var).to_ascii_lowercase()
    };
    FieldError {
        field,
        message: problem,
    }
}

/// The text between `prefix` and the next backquote.
fn quoted_after(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    let rest = &text[start..];
    rest.find('`').map(|end| rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    fn valid() -> Value {
        json!({
            "default_region": "CH", "v2_url": "https://my000001.crm.cloud.sap",
            "v2_user": "tech", "v2_password": "a-v2-password",
            "webhook_secret": "a-webhook-secret-of-16", "control_url": "https://pbx.example",
            "controls_secret": "a-controls-key-of-its-own",
            "oauth": {"authorize_url": "https://a", "token_url": "https://t", "client_id": "c",
                      "client_secret": "an-oauth-secret"},
            "dispositions": ["Sold"],
        })
    }

    #[test]
    fn the_page_sees_no_secret_only_which_are_set() {
        let mut settings = valid();
        settings["id"] = json!("t1");
        settings["controls_secret"] = Value::Null;
        settings["finesse_agents"] = json!({"1001": {"rep": "a@x", "password": "agent-pw"}});
        let (shown, set) = redact(&settings);
        let text = shown.to_string();
        for secret in [
            "a-v2-password",
            "a-webhook-secret-of-16",
            "an-oauth-secret",
            "agent-pw",
        ] {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
        assert_eq!(
            set,
            [
                "finesse_agents.1001.password",
                "oauth.client_secret",
                "v2_password",
                "webhook_secret"
            ]
        );
        assert_eq!(shown["oauth"]["client_id"], "c");
        assert_eq!(shown["dispositions"], json!(["Sold"]));
        assert!(shown.get("id").is_none());
    }

    #[test]
    fn a_secret_left_out_keeps_its_stored_value_and_one_given_replaces_it() {
        let stored = valid();
        let mut body = object(json!({
            "default_region": "DE", "v2_url": "https://my000001.crm.cloud.sap",
            "v2_user": "tech", "webhook_secret": "a-new-webhook-secret!",
            "control_url": "https://pbx.example",
            "oauth": {"authorize_url": "https://a", "token_url": "https://t", "client_id": "c"},
        }));
        merge_secrets(&mut body, Some(&stored));
        assert_eq!(body["v2_password"], "a-v2-password");
        assert_eq!(body["webhook_secret"], "a-new-webhook-secret!");
        assert_eq!(body["oauth"]["client_secret"], "an-oauth-secret");
        assert_eq!(body["default_region"], "DE");

        // Null clears an optional secret; an object left out takes its secret with it.
        let mut body = object(json!({"v2_password": null}));
        merge_secrets(&mut body, Some(&stored));
        assert_eq!(body["v2_password"], Value::Null);
        assert!(body.get("oauth").is_none());

        // Nothing stored: nothing added.
        let mut body = object(json!({}));
        merge_secrets(&mut body, None);
        assert!(body.is_empty());
    }

    #[test]
    fn finesse_agents_keep_their_own_secrets() {
        let stored = json!({"finesse_agents": {
            "1001": {"rep": "a@x", "password": "pw-1001"},
            "1002": {"rep": "b@x", "password": "pw-1002"},
        }});
        let mut body = object(json!({"finesse_agents": {
            "1001": {"rep": "a@x"},
            "1003": {"rep": "c@x"},
        }}));
        merge_secrets(&mut body, Some(&stored));
        assert_eq!(body["finesse_agents"]["1001"]["password"], "pw-1001");
        assert!(body["finesse_agents"]["1003"].get("password").is_none());
    }

    #[test]
    fn valid_settings_configure_the_tenant_named_by_the_caller() {
        let mut settings = object(valid());
        settings.insert("id".into(), json!("someone-else"));
        let config = validate("t1", &settings).expect("valid");
        assert_eq!(config.id, "t1");
        assert_eq!(config.dispositions, ["Sold"]);
    }

    #[test]
    fn each_refusal_names_its_field() {
        let cases: &[(&str, Value, &str)] = &[
            ("default_region", json!("XX"), "XX"),
            ("default_region", json!(41), "text"),
            ("v2_url", json!("ftp://example"), "https"),
            ("v2_url", json!("http://my1.crm.cloud.sap"), "https"),
            ("v2_user", json!(" "), "required"),
            ("dispositions", json!("Sold"), "list"),
            ("provider", json!("carrier-pigeon"), "carrier-pigeon"),
            ("match_rules", json!(["loudest"]), "loudest"),
            ("custom_1", json!("account_uuid"), "account_uuid"),
            ("webhook_secret", json!("short"), "16"),
            ("v2_auth", json!("kerberos"), "kerberos"),
            (
                "activity_fields",
                json!({"mood": "extensions/Mood"}),
                "mood",
            ),
        ];
        for (field, value, said) in cases {
            let mut settings = object(valid());
            settings.insert((*field).to_string(), value.clone());
            let err = validate("t1", &settings).expect_err(field);
            assert_eq!(err.field, *field, "{err}");
            assert!(err.message.contains(said), "{field}: {err}");
        }
        let mut settings = object(valid());
        settings.remove("control_url");
        let err = validate("t1", &settings).expect_err("no control URL");
        assert_eq!(err.field, "control_url", "{err}");
        settings = object(valid());
        settings.remove("v2_password");
        let err = validate("t1", &settings).expect_err("no password");
        assert_eq!(err.field, "v2_password", "{err}");
    }

    /// Every key of a provider's demo settings that holds a secret there is in the list: a
    /// secret added to a provider without adding it here fails this test.
    #[test]
    fn every_providers_secret_is_known() {
        for provider in TelephonySettings::SIMULATED {
            let Some(settings) =
                TelephonySettings::demo(provider, "http://127.0.0.1:1", "http://127.0.0.1:2", "t")
            else {
                continue;
            };
            let debug = format!("{settings:?}");
            for key in secret_keys_in_debug(&debug) {
                assert!(
                    SECRET_FIELDS.contains(&key.as_str())
                        || ["password", "token", "client_secret", "secret"].contains(&key.as_str()),
                    "{provider}: {key} holds a secret but is not in SECRET_FIELDS"
                );
            }
        }
    }

    /// The field names a `Debug` dump shows a redacted `Secret` for.
    fn secret_keys_in_debug(debug: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for (at, _) in debug
            .match_indices(": Some(Secret(")
            .chain(debug.match_indices(": Secret("))
        {
            let before = &debug[..at];
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            keys.push(before[start..].to_string());
        }
        keys
    }
}
