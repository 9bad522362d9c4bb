//! The relay's admin API (`/v1/admin/*`, README "Admin page"), as the page calls it: same origin,
//! the admin's token as `Authorization: Bearer`, JSON both ways. Every failure becomes an
//! [`ApiError`] the page can put into words: the relay's own `{"error":{"code","message"}}`
//! where it answered, the status alone where it answered something else, and the browser's
//! reason where nothing came back.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use gloo::net::http::{Request, RequestBuilder, Response};

/// What went wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status; 0 when no answer came (network, refused connection).
    pub status: u16,
    /// The relay's error code (`invalid_settings`), or empty.
    pub code: String,
    /// In words, for the admin.
    pub message: String,
    /// The settings field a 400 names (`error.field`).
    pub field: Option<String>,
}

impl ApiError {
    fn network(what: &str, error: impl std::fmt::Display) -> Self {
        ApiError {
            status: 0,
            code: String::new(),
            message: format!("{what}: the relay could not be reached ({error})"),
            field: None,
        }
    }

    /// The token is missing, expired or refused: signing in again is the way out.
    pub fn needs_sign_in(&self) -> bool {
        self.status == 401
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The relay's error body.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    field: Option<String>,
}

/// The error for a non-success answer: the relay's words when it gave them, else what the
/// status means for this page.
pub fn error_from(what: &str, status: u16, body: &str) -> ApiError {
    let parsed = serde_json::from_str::<ErrorBody>(body).ok();
    let fallback = match status {
        401 => "you are not signed in, or the sign-in expired".to_string(),
        403 => "this account has no Admin role for the CTI".to_string(),
        404 => "this tenant is not subscribed to the CTI".to_string(),
        409 => "these settings are read-only here".to_string(),
        503 => "the relay is not ready; try again in a moment".to_string(),
        other => format!("the relay answered {other}"),
    };
    match parsed {
        Some(ErrorBody { error }) => ApiError {
            status,
            message: match error.message.trim() {
                "" => format!("{what}: {fallback}"),
                // Whose fault a refused sign-in is matters more than the relay's detail.
                said if matches!(status, 401 | 403) => format!("{what}: {fallback} ({said})"),
                said => format!("{what}: {said}"),
            },
            code: error.code,
            field: error.field.filter(|f| !f.is_empty()),
        },
        None => ApiError {
            status,
            code: String::new(),
            message: format!("{what}: {fallback}"),
            field: None,
        },
    }
}

/// The tenant as the relay holds it (`GET /v1/admin/tenant`, and the answer to a save).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Tenant {
    pub tenant: String,
    /// `subscription` (editable here) or `file` (the deployment's tenants file: read-only).
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub subdomain: Option<String>,
    #[serde(default)]
    pub configured: bool,
    /// The tenants-file shape, secrets removed.
    #[serde(default)]
    pub settings: Value,
    /// The secret fields that have a stored value.
    #[serde(default)]
    pub secrets_set: Vec<String>,
}

impl Tenant {
    pub fn read_only(&self) -> bool {
        self.source == "file"
    }
}

/// One side of a connection test.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Check {
    pub ok: bool,
    #[serde(default)]
    pub detail: String,
}

/// `POST /v1/admin/tenant/test`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TestResult {
    pub v2: Check,
    pub provider: Check,
}

/// `GET /v1/admin/status`. Every part is optional: a relay that cannot tell one part still
/// shows the others.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Status {
    pub index: IndexStatus,
    pub activities: Activities,
    pub reps: Vec<RepSessions>,
    pub provider: ProviderStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IndexStatus {
    /// `ready`, `building` or `failed`.
    pub state: String,
    pub numbers: Option<u64>,
    pub error: Option<String>,
    pub last_build: Option<LastBuild>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LastBuild {
    pub finished_at_ms: Option<f64>,
    pub duration_ms: Option<u64>,
    pub records: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Activities {
    pub backlog: u64,
    pub failed: Vec<FailedActivity>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FailedActivity {
    pub call_id: String,
    pub reason: String,
    pub attempts: u64,
    /// Given up on until retried from here.
    pub parked: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RepSessions {
    pub rep: String,
    pub sessions: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProviderStatus {
    pub kind: String,
    /// `connected`, `disconnected` or `webhook`.
    pub state: String,
    pub detail: Option<String>,
}

fn authorized(request: RequestBuilder, token: &str) -> RequestBuilder {
    request
        .header("Authorization", &format!("Bearer {token}"))
        .header("Accept", "application/json")
}

async fn answer<T: DeserializeOwned>(
    what: &str,
    sent: Result<Response, gloo::net::Error>,
) -> Result<T, ApiError> {
    let response = sent.map_err(|e| ApiError::network(what, e))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| ApiError::network(what, e))?;
    if !(200..300).contains(&status) {
        return Err(error_from(what, status, &body));
    }
    serde_json::from_str(&body).map_err(|e| ApiError {
        status,
        code: String::new(),
        message: format!("{what}: the relay's answer was not understood ({e})"),
        field: None,
    })
}

async fn get<T: DeserializeOwned>(what: &str, path: &str, token: &str) -> Result<T, ApiError> {
    let sent = authorized(Request::get(path), token).send().await;
    answer(what, sent).await
}

async fn send<T: DeserializeOwned>(
    what: &str,
    request: RequestBuilder,
    token: &str,
    body: &Value,
) -> Result<T, ApiError> {
    let request = authorized(request, token)
        .json(body)
        .map_err(|e| ApiError::network(what, e))?;
    answer(what, request.send().await).await
}

pub async fn tenant(token: &str) -> Result<Tenant, ApiError> {
    get("Loading the settings", "/v1/admin/tenant", token).await
}

pub async fn save(token: &str, settings: &Value) -> Result<Tenant, ApiError> {
    let request = Request::put("/v1/admin/tenant/settings");
    send("Saving", request, token, settings).await
}

pub async fn test_connection(token: &str, settings: &Value) -> Result<TestResult, ApiError> {
    let request = Request::post("/v1/admin/tenant/test");
    send("Testing the connection", request, token, settings).await
}

pub async fn status(token: &str) -> Result<Status, ApiError> {
    get("Loading the status", "/v1/admin/status", token).await
}

pub async fn retry(token: &str, call_id: &str) -> Result<(), ApiError> {
    let path = format!(
        "/v1/admin/activities/{}/retry",
        js_sys::encode_uri_component(call_id)
    );
    let request = Request::post(&path);
    let _: Value = send("Retrying the activity", request, token, &Value::Null).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn the_relays_error_names_its_field() {
        let body = r#"{"error":{"code":"invalid_settings","message":"default_region: \"XX\" is not an ISO 3166 region","field":"default_region"}}"#;
        let error = error_from("Saving", 400, body);
        assert_eq!(error.code, "invalid_settings");
        assert_eq!(error.field.as_deref(), Some("default_region"));
        assert!(error.message.starts_with("Saving: default_region"));
    }

    #[wasm_bindgen_test]
    fn an_answer_without_the_relays_body_is_still_put_into_words() {
        let error = error_from("Loading the status", 502, "<html>Bad gateway</html>");
        assert_eq!(error.message, "Loading the status: the relay answered 502");
        assert!(error_from("x", 401, "").needs_sign_in());
        assert!(error_from("x", 403, "").message.contains("Admin role"));
    }

    #[wasm_bindgen_test]
    fn a_partial_status_is_read() {
        let status: Status = serde_json::from_str(
            r#"{"index":{"state":"building","numbers":null},"activities":{"backlog":2,"failed":[{"call_id":"c1","reason":"V2 answered 500","attempts":3,"parked":true}]}}"#,
        )
        .expect("a status");
        assert_eq!(status.index.state, "building");
        assert_eq!(status.activities.failed[0].call_id, "c1");
        assert!(status.reps.is_empty());
        assert_eq!(status.provider, ProviderStatus::default());
    }
}
