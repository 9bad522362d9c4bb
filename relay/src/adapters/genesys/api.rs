//! The Platform API as the adapter uses it: a client-credentials token from the login host,
//! cached and renewed before it expires, and JSON requests under `/api/v2`.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::secret::Secret;

/// A token is renewed once this share of its life has passed (the rest is the margin for the
/// requests and the re-subscription made with it).
const RENEW_AT: f64 = 0.8;

/// Why a Platform API request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("Genesys Cloud is unreachable: {0}")]
    Unreachable(String),
    #[error("Genesys Cloud answered {status}: {message}")]
    Status { status: u16, message: String },
}

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    renew_at: Instant,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

/// One tenant's way into its Genesys Cloud org.
#[derive(Debug)]
pub(crate) struct Api {
    http: reqwest::Client,
    api_url: String,
    login_url: String,
    client_id: String,
    client_secret: Secret,
    token: Mutex<Option<Token>>,
}

impl Api {
    pub(crate) fn new(
        http: reqwest::Client,
        api_url: &str,
        login_url: &str,
        client_id: &str,
        client_secret: Secret,
    ) -> Self {
        Api {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            login_url: login_url.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret,
            token: Mutex::new(None),
        }
    }

    /// When the cached token is due for renewal (None: there is none yet).
    pub(crate) async fn renew_at(&self) -> Option<Instant> {
        self.token.lock().await.as_ref().map(|t| t.renew_at)
    }

    /// The cached token, or a new one when it is due.
    pub(crate) async fn token(&self) -> Result<Secret, ApiError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && token.renew_at > Instant::now()
        {
            return Ok(token.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets the cached token (the API refused it).
    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    async fn fetch_token(&self) -> Result<Token, ApiError> {
        let started = Instant::now();
        let response = self
            .http
            .post(format!("{}/oauth/token", self.login_url))
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(ApiError::Status {
                status: status.as_u16(),
                message: format!("token request refused: {}", short(&text)),
            });
        }
        let answer: TokenAnswer = serde_json::from_str(&text).map_err(|e| ApiError::Status {
            status: status.as_u16(),
            message: format!("unreadable token answer: {e}"),
        })?;
        let life = Duration::from_secs(answer.expires_in).mul_f64(RENEW_AT);
        Ok(Token {
            value: Secret::new(answer.access_token),
            renew_at: started + life,
        })
    }

    /// Renews the token now, whatever its age (before re-subscribing with it).
    pub(crate) async fn renew(&self) -> Result<(), ApiError> {
        let fresh = self.fetch_token().await?;
        *self.token.lock().await = Some(fresh);
        Ok(())
    }

    /// One JSON request to `/api/v2/...`; a 401 is answered once with a new token.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.api_url))
                .bearer_auth(token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| ApiError::Unreachable(e.without_url().to_string()))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status.as_u16() == 401 && !retried {
                retried = true;
                self.forget_token().await;
                continue;
            }
            if !status.is_success() {
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| short(&text));
                return Err(ApiError::Status {
                    status: status.as_u16(),
                    message,
                });
            }
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}
