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
