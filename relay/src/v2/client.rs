//! A thin V2 REST client: V2's query options, envelopes and error format, and nothing else.

use std::time::Duration;

use serde_json::Value;

use crate::secret::Secret;

/// The V2 collections the CTI reads, with their service paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Accounts,
    ContactPersons,
    IndividualCustomers,
    Opportunities,
    PhoneCalls,
    Employees,
}

impl Collection {
    pub fn path(self) -> &'static str {
        match self {
            Collection::Accounts => "account-service/accounts",
            Collection::ContactPersons => "contact-person-service/contactPersons",
            Collection::IndividualCustomers => "individual-customer-service/individualCustomers",
            Collection::Opportunities => "opportunity-service/opportunities",
            Collection::PhoneCalls => "phone-service/phoneCalls",
            Collection::Employees => "employee-service/employees",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum V2Error {
    /// V2 answered with an error status; `code` and `message` come from V2's error envelope.
    #[error("V2 answered {status} on {path}: {code}: {message}")]
    Status {
        status: u16,
        path: String,
        code: String,
        message: String,
        retry_after: Option<u64>,
    },
    #[error("V2 unreachable at {path}: {reason}")]
    Transport { path: String, reason: String },
    #[error("V2 sent an unexpected body on {path}: {reason}")]
    Decode { path: String, reason: String },
}

/// How the relay authenticates to V2. Basic (a technical user) is the one scheme in SAP's
/// published V2 specifications.
#[derive(Debug, Clone)]
pub enum V2Auth {
    Basic {
        user: String,
        password: Secret,
    },
    /// A user's access token (from the BTP Destination service's SAML bearer exchange, or the
    /// rep's own OAuth sign-in): V2 records the writes as that user's.
    Bearer {
        token: Secret,
    },
}

#[derive(Debug, Clone)]
pub struct V2Client {
    http: reqwest::Client,
    base_url: String,
    auth: V2Auth,
}

/// The media type of a PATCH body. Phone calls: `application/json`, what a working integration
/// sends (confirmed in use, not declared by a published spec); the other collections:
/// `application/merge-patch+json`, which SAP's employee and account specifications declare.
fn patch_media_type(collection: Collection) -> &'static str {
    match collection {
        Collection::PhoneCalls => "application/json",
        _ => "application/merge-patch+json",
    }
}

impl V2Client {
    pub fn new(base_url: &str, auth: V2Auth, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .unwrap_or_default();
        Self::with_http(http, base_url, auth)
    }

    /// Over a client that already exists, so a short-lived V2 client (one write as one rep)
    /// reuses its connections.
    pub fn with_http(http: reqwest::Client, base_url: &str, auth: V2Auth) -> Self {
        V2Client {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            auth,
        }
    }

    /// GET a collection with query options; returns the `value` array.
    pub async fn list(
        &self,
        collection: Collection,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, V2Error> {
        let path = format!("/sap/c4c/api/v1/{}", collection.path());
        let request = self
            .http
            .get(format!("{}{}", self.base_url, path))
            .query(query);
        let (mut envelope, _) = self.send(request, &path).await?;
        match envelope.get_mut("value").map(Value::take) {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(V2Error::Decode {
                path,
                reason: "no `value` array in the collection envelope".into(),
            }),
        }
    }

    /// How many records of a collection match `filter` (`$count=true` with `$top=1`), for
    /// progress reports.
    pub async fn count(
        &self,
        collection: Collection,
        filter: Option<&str>,
    ) -> Result<u64, V2Error> {
        let path = format!("/sap/c4c/api/v1/{}", collection.path());
        let mut query = vec![("$count", "true".to_string()), ("$top", "1".to_string())];
        if let Some(filter) = filter {
            query.push(("$filter", filter.to_string()));
        }
        let request = self
            .http
            .get(format!("{}{}", self.base_url, path))
            .query(&query);
        let (envelope, _) = self.send(request, &path).await?;
        envelope
            .get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| V2Error::Decode {
                path,
                reason: "no `count` in the collection envelope".into(),
            })
    }

    /// GET one record by id: the record and its ETag, or None when V2 has no such record
    /// (deleted, or never there).
    pub async fn get(
        &self,
        collection: Collection,
        id: &str,
    ) -> Result<Option<Versioned>, V2Error> {
        let path = format!("/sap/c4c/api/v1/{}/{}", collection.path(), encode(id));
        let request = self.http.get(format!("{}{}", self.base_url, path));
        match self.send(request, &path).await {
            Ok((envelope, etag)) => Ok(Some(Versioned::from_envelope(envelope, etag, path)?)),
            Err(V2Error::Status { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// POST a new record; V2 answers 201 with the record.
    pub async fn create(&self, collection: Collection, body: &Value) -> Result<Versioned, V2Error> {
        let path = format!("/sap/c4c/api/v1/{}", collection.path());
        let request = self
            .http
            .post(format!("{}{}", self.base_url, path))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        let (envelope, etag) = self.send(request, &path).await?;
        Versioned::from_envelope(envelope, etag, path)
    }

    /// The first record of a collection matching `filter`, with the ETag a PATCH needs.
    pub async fn find(
        &self,
        collection: Collection,
        filter: &str,
    ) -> Result<Option<Versioned>, V2Error> {
        let query = [("$filter", filter.to_string()), ("$top", "1".to_string())];
        let first = self.list(collection, &query).await?.into_iter().next();
        Ok(first.map(Versioned::from_record))
    }

    /// PATCH one record with a merge patch, guarded by the ETag it was read with. A record changed
    /// since then gives `V2Error::Status { status: 412, .. }`: re-read and decide again.
    pub async fn patch(
        &self,
        collection: Collection,
        id: &str,
        etag: &str,
        patch: &Value,
    ) -> Result<Versioned, V2Error> {
        let path = format!("/sap/c4c/api/v1/{}/{}", collection.path(), encode(id));
        let request = self
            .http
            .patch(format!("{}{}", self.base_url, path))
            .header("If-Match", etag)
            .header("Content-Type", patch_media_type(collection))
            .body(patch.to_string());
        let (envelope, new_etag) = self.send(request, &path).await?;
        Versioned::from_envelope(envelope, new_etag, path)
    }

    /// Sends with auth, maps error statuses to V2's error envelope, and returns the JSON body
    /// (null for an empty one, as V2 answers some PATCHes with 204) with the ETag header.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<(Value, Option<String>), V2Error> {
        let transport = |e: reqwest::Error| V2Error::Transport {
            path: path.to_string(),
            reason: e.without_url().to_string(),
        };
        let response = self
            .authorize(request)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
        };
        let retry_after = header("retry-after").and_then(|v| retry_after_secs(&v));
        let etag = header("etag");
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let (code, message) = error_envelope(&body);
            return Err(V2Error::Status {
                status: status.as_u16(),
                path: path.to_string(),
                code,
                message,
                retry_after,
            });
        }
        if body.is_empty() {
            return Ok((Value::Null, etag));
        }
        let envelope = serde_json::from_slice(&body).map_err(|e| V2Error::Decode {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        Ok((envelope, etag))
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            V2Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
            V2Auth::Bearer { token } => request.bearer_auth(token.expose()),
        }
    }
}

/// V2's `{"error":{"code","message"}}`, or the raw body's start when V2 (or a proxy) sent another shape.
pub(crate) fn error_envelope(body: &[u8]) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match (field("code"), field("message")) {
        (Some(code), Some(message)) => (code, message),
        (code, _) => (
            code.unwrap_or_else(|| "unknown".into()),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    }
}

/// One record as read, with the ETag a later PATCH must present.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub record: Value,
    /// V2's ETag header, else `"<adminData.updatedOn>"` (what V2's ETag is made of), else `*`.
    pub etag: String,
}

impl Versioned {
    /// A record read from a list, whose ETag is its `adminData.updatedOn`.
    pub fn from_record(record: Value) -> Self {
        let etag = record
            .pointer("/adminData/updatedOn")
            .and_then(Value::as_str)
            .map_or_else(|| "*".to_string(), |u| format!("\"{u}\""));
        Versioned { record, etag }
    }

    fn from_envelope(
        mut envelope: Value,
        etag: Option<String>,
        path: String,
    ) -> Result<Self, V2Error> {
        let record = match envelope.get_mut("value").map(Value::take) {
            Some(record @ Value::Object(_)) => record,
            // A 204 to a PATCH: the caller re-reads if it needs the new state.
            _ if envelope.is_null() => Value::Null,
            _ => {
                return Err(V2Error::Decode {
                    path,
                    reason: "no `value` object in the record envelope".into(),
                });
            }
        };
        let etag = etag
            .or_else(|| {
                record
                    .pointer("/adminData/updatedOn")
                    .and_then(Value::as_str)
                    .map(|u| format!("\"{u}\""))
            })
            .unwrap_or_else(|| "*".into());
        Ok(Versioned { record, etag })
    }
}

/// Percent-encodes a record id for a path segment (V2 ids are UUIDs, but input is input).
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Quotes a value for a `$filter` string literal (single quotes doubled).
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The longest `Retry-After` taken from V2: an hour. A larger (or absurd) value is capped rather
/// than trusted, so waits computed from it cannot overflow into an immediate retry.
pub const MAX_RETRY_AFTER_SECS: u64 = 3600;

/// A `Retry-After` in seconds, capped at [`MAX_RETRY_AFTER_SECS`]; None when not a number.
fn retry_after_secs(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: a value too large for u64 is simply large.
    Some(
        value
            .parse::<u64>()
            .unwrap_or(u64::MAX)
            .min(MAX_RETRY_AFTER_SECS),
    )
}

#[cfg(test)]
mod tests {
    /// Review F22: a huge `Retry-After` is capped, so `now + wait` cannot wrap.
    #[test]
    fn retry_after_is_capped_at_an_hour() {
        assert_eq!(retry_after_secs("120"), Some(120));
        assert_eq!(
            retry_after_secs("18446744073709551615"),
            Some(MAX_RETRY_AFTER_SECS)
        );
        assert_eq!(
            retry_after_secs("99999999999999999999999"),
            Some(MAX_RETRY_AFTER_SECS)
        );
        assert_eq!(retry_after_secs("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        let wait_ms = retry_after_secs("18446744073709551615").expect("a number") * 1000;
        assert!(1_796_000_000_000u64.checked_add(wait_ms).is_some());
    }

    use super::*;

    #[test]
    fn error_envelope_is_read() {
        let (code, msg) = error_envelope(br#"{"error":{"code":"account.1001","message":"nope"}}"#);
        assert_eq!((code.as_str(), msg.as_str()), ("account.1001", "nope"));
        let (code, msg) = error_envelope(b"<html>bad gateway</html>");
        assert_eq!(code, "unknown");
        assert!(msg.contains("bad gateway"));
    }

    #[test]
    fn quoting_doubles_single_quotes() {
        assert_eq!(quote("O'Neil"), "'O''Neil'");
    }
}
