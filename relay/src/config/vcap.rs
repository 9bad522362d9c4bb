//! Service bindings Cloud Foundry hands the app in `VCAP_SERVICES`: the credentials of the first
//! binding of a service, read the same way for each service the relay can use.

use serde_json::Value;

use super::DestinationConfig;
use crate::secret::Secret;

/// The credentials of the first `service` binding; None when the app has no such binding.
fn credentials(vcap: &str, service: &str) -> Result<Option<Value>, String> {
    let services: Value = serde_json::from_str(vcap).map_err(|e| format!("not valid JSON: {e}"))?;
    Ok(services
        .get(service)
        .and_then(|b| b.get(0))
        .and_then(|b| b.get("credentials"))
        .cloned())
}

fn text<'a>(credentials: &'a Value, key: &str) -> Option<&'a str> {
    credentials.get(key).and_then(Value::as_str)
}

/// A `destination` binding's service URL and client credentials, if the app has one.
pub(super) fn destination(vcap: &str) -> Result<Option<DestinationConfig>, String> {
    let Some(credentials) = credentials(vcap, "destination")? else {
        return Ok(None);
    };
    let need = |k: &str| {
        text(&credentials, k)
            .map(str::to_string)
            .ok_or_else(|| format!("the destination binding's credentials have no {k:?}"))
    };
    Ok(Some(DestinationConfig {
        uri: need("uri")?,
        token_url: format!("{}/oauth/token", need("url")?.trim_end_matches('/')),
        client_id: need("clientid")?,
        client_secret: Secret::new(need("clientsecret")?),
    }))
}

/// The identity settings an `xsuaa` binding implies, as (variable, value) pairs: the keys and
/// issuer of the subaccount's XSUAA tenant (`<url>/token_keys`, `<url>/oauth/token`, the form
/// its tokens carry: reference 6.4; for a `shared` instance every subscriber's, the zone
/// pattern `https://*.<uaadomain>/…`), its application name as the audience (the prefix of the
/// scopes xs-security.json defines), and the subaccount's tenant id. They save copying the
/// binding's values into the environment after the first deploy; a variable set there (or by
/// a user-provided service) still wins. Empty without such a binding.
pub(super) fn xsuaa(vcap: &str) -> Result<Vec<(String, String)>, String> {
    let Some(credentials) = credentials(vcap, "xsuaa")? else {
        return Ok(Vec::new());
    };
    let need = |k: &str| {
        text(&credentials, k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("the xsuaa binding's credentials have no {k:?}"))
    };
    let url = need("url")?.trim_end_matches('/');
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(format!("the xsuaa binding's url {url:?} is not a URL"));
    }
    // A shared (multi-tenant) instance serves subscribers, whose tokens come from their own
    // subdomain of the same domain: the zone pattern takes each, with that zone's keys.
    let base = match text(&credentials, "tenantmode").map(str::trim) {
        Some("shared") => {
            let domain = need("uaadomain")?;
            let scheme = url.split_once("://").map_or("https", |(scheme, _)| scheme);
            format!("{scheme}://*.{}", domain.trim_matches(['.', '/']))
        }
        _ => url.to_string(),
    };
    let mut settings = vec![
        ("CTI_JWKS_URL".to_string(), format!("{base}/token_keys")),
        ("CTI_JWT_ISSUER".to_string(), format!("{base}/oauth/token")),
        (
            "CTI_JWT_AUDIENCE".to_string(),
            need("xsappname")?.to_string(),
        ),
    ];
    settings.extend(sign_in(&credentials, url, &base)?);
    if let Some(tenant) = text(&credentials, "tenantid")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        settings.push(("CTI_TENANT".to_string(), tenant.to_string()));
    }
    Ok(settings)
}

/// The relay's own sign-in the binding implies (its client, and the authorize and token
/// endpoints of the zone users sign in at): a `shared` instance's subscribers each at their own
/// zone (`{zone}` in the URLs, found from the request's host), a dedicated one's users at the
/// binding's `url`, whose zone is `identityzone` (else the URL's first label). Empty when the
/// binding has no client (`clientid`, `clientsecret`). Inferred: XSUAA's authorize and token
/// endpoints are `/oauth/authorize` and `/oauth/token` under the zone's URL, as SAP documents
/// for the authorization code grant; the reference holds the token endpoint only.
fn sign_in(credentials: &Value, url: &str, zones: &str) -> Result<Vec<(String, String)>, String> {
    let (Some(id), Some(secret)) = (
        text(credentials, "clientid").map(str::trim),
        text(credentials, "clientsecret").map(str::trim),
    ) else {
        return Ok(Vec::new());
    };
    let mut settings = vec![
        ("CTI_SIGNIN_CLIENT_ID".to_string(), id.to_string()),
        ("CTI_SIGNIN_CLIENT_SECRET".to_string(), secret.to_string()),
    ];
    // A dedicated binding's users sign in at its own zone; a shared one's subscribers each at
    // theirs (`zones` is then `https://*.<uaadomain>`), and the provider's own zone stays the
    // one for a relay that takes no subscriptions.
    let zone = text(credentials, "identityzone")
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .map(str::to_string)
        .or_else(|| {
            let host = url.split_once("://")?.1;
            Some(host.split(['.', '/', ':']).next()?.to_string())
        })
        .ok_or_else(|| format!("the xsuaa binding's url {url:?} names no zone"))?;
    settings.push(("CTI_SIGNIN_ZONE".to_string(), zone));
    let base = if zones.contains('*') {
        zones.replacen('*', "{zone}", 1)
    } else {
        url.to_string()
    };
    settings.push((
        "CTI_SIGNIN_AUTHORIZE_URL".to_string(),
        format!("{base}/oauth/authorize"),
    ));
    settings.push((
        "CTI_SIGNIN_TOKEN_URL".to_string(),
        format!("{base}/oauth/token"),
    ));
    Ok(settings)
}

/// The settings given as credentials of the user-provided services bound to the app
/// (`cf create-user-provided-service cti-secrets -p '{"CTI_TOKEN_KEY":"..."}'`), so that secrets
/// such as `CTI_TOKEN_KEY` stay out of the deployment descriptors that would otherwise carry them
/// and rotate with `cf update-user-provided-service`. Only names shaped like variables are read (`A-Z`, `0-9`,
/// `_`, as the configuration table and a tenants file's `"${NAME}"` use them), never Cloud
/// Foundry's own (`VCAP_*`, `PORT`); the first binding naming one wins. Such a credential that is
/// not text is refused rather than ignored, since a setting silently left out (a key, a secret)
/// would surface much later as something else.
pub(super) fn user_provided(vcap: &str) -> Result<Vec<(String, String)>, String> {
    let services: Value = serde_json::from_str(vcap).map_err(|e| format!("not valid JSON: {e}"))?;
    let mut settings: Vec<(String, String)> = Vec::new();
    let bindings = services
        .get("user-provided")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for binding in bindings {
        let name = binding.get("name").and_then(Value::as_str).unwrap_or("?");
        let Some(credentials) = binding.get("credentials").and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in credentials.iter().filter(|(k, _)| is_setting(k)) {
            let Some(text) = value.as_str() else {
                return Err(format!(
                    "the user-provided service {name:?} gives {key} as something other than text"
                ));
            };
            if !settings.iter().any(|(k, _)| k == key) {
                settings.push((key.clone(), text.to_string()));
            }
        }
    }
    Ok(settings)
}

/// Whether a credential's name is one of the app's settings rather than Cloud Foundry's own or a
/// service's lower-case field.
fn is_setting(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("VCAP_")
        && name != "PORT"
}

/// The URL of a `redis-cache` binding (SAP BTP's Redis service), if the app has one.
pub(super) fn redis(vcap: &str) -> Result<Option<String>, String> {
    let Some(credentials) = credentials(vcap, "redis-cache")? else {
        return Ok(None);
    };
    if let Some(uri) = text(&credentials, "uri") {
        return Ok(Some(uri.to_string()));
    }
    let host = text(&credentials, "hostname")
        .ok_or("redis-cache credentials have neither uri nor hostname")?;
    let port = credentials
        .get("port")
        .and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()))
        .unwrap_or(6379);
    let scheme = if credentials.get("tls").and_then(Value::as_bool) == Some(true) {
        "rediss"
    } else {
        "redis"
    };
    let auth = text(&credentials, "password")
        .map(|p| format!(":{p}@"))
        .unwrap_or_default();
    Ok(Some(format!("{scheme}://{auth}{host}:{port}")))
}
