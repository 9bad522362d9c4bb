//! RingCentral's REST API as the adapter uses it: an OAuth token (JWT bearer, else client
//! credentials) kept and renewed, and JSON requests that name RingCentral's refusal.

use std::time::Duration;

use parking_lot::Mutex;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use crate::secret::Secret;

/// Renew a token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Longest a single RingCentral request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A request RingCentral refused, or did not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("RingCentral answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("RingCentral is unreachable: {0}")]
    Unreachable(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            ApiError::Unreachable(_) => None,
        }
    }
}

#[derive(Debug)]
struct Token {
    value: Secret,
    expires: Instant,
}

#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) server: String,
    client_id: String,
    client_secret: Secret,
    jwt: Option<Secret>,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
}

/// RingCentral's words for a refusal: `message` (API errors), `error_description` (OAuth), else
/// the start of the body.
fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let code = v.get("errorCode").and_then(Value::as_str);
            let text = v
                .get("message")
                .or_else(|| v.get("error_description"))
                .and_then(Value::as_str)?;
            Some(match code {
                Some(code) => format!("{code} {text}"),
                None => text.to_string(),
            })
        })
        .unwrap_or_else(|| body.chars().take(200).collect())
}

impl Api {
    pub(crate) fn new(
        server: &str,
        client_id: &str,
        client_secret: Secret,
        jwt: Option<Secret>,
        http: reqwest::Client,
    ) -> Self {
        Api {
            server: server.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret,
            jwt,
            http,
            token: Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<String> {
        let token = self.token.lock();
        token
            .as_ref()
            .filter(|t| t.expires > Instant::now() + TOKEN_MARGIN)
            .map(|t| t.value.expose().to_string())
    }

    fn forget_token(&self) {
        *self.token.lock() = None;
    }

    /// Asks for a new grant, as the connector does first: the admin page's connection test.
    pub(crate) async fn check_token(&self) -> Result<(), ApiError> {
        self.forget_token();
        self.token().await.map(|_| ())
    }

    /// A valid access token: the kept one, or a new grant.
    async fn token(&self) -> Result<String, ApiError> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let mut form: Vec<(&str, &str)> = Vec::new();
        match &self.jwt {
            Some(jwt) => {
                form.push(("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"));
                form.push(("assertion", jwt.expose()));
            }
            None => form.push(("grant_type", "client_credentials")),
        }
        let response = self
            .http
            .post(format!("{}/restapi/oauth/token", self.server))
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .form(&form)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(ApiError::Refused {
                status: status.as_u16(),
                message: format!("token: {}", message(&body)),
            });
        }
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let access = value
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Refused {
                status: status.as_u16(),
                message: "token: no access_token in the answer".into(),
            })?
            .to_string();
        let ttl = value
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        *self.token.lock() = Some(Token {
            value: Secret::new(access.clone()),
            expires: Instant::now() + Duration::from_secs(ttl),
        });
        Ok(access)
    }

    /// One API request (`path` under the server URL); a 401 is retried once with a new token.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.server))
                .bearer_auth(token)
                .timeout(REQUEST_TIMEOUT);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| ApiError::Unreachable(e.without_url().to_string()))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                self.forget_token();
                continue;
            }
            if !status.is_success() {
                return Err(ApiError::Refused {
                    status: status.as_u16(),
                    message: message(&text),
                });
            }
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        Err(ApiError::Refused {
            status: 401,
            message: "the new token was refused too".into(),
        })
    }
}
