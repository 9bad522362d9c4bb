//! Webex's REST API as the adapter uses it: an integration's access token, refreshed with its
//! refresh token (Webex may hand out a new one with each refresh; the newest is kept), and JSON
//! requests that name Webex's refusal.

use std::time::Duration;

use parking_lot::Mutex;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use crate::secret::Secret;

/// Refresh a token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Longest a single Webex request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most pages of one listing followed (`Link: <…>; rel="next"`).
const MAX_PAGES: usize = 100;

/// A request Webex refused, or did not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("Webex answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("Webex is unreachable: {0}")]
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
    base: String,
    client_id: String,
    client_secret: Secret,
    refresh_token: Mutex<Secret>,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
}

/// Webex's words for a refusal: `message` (with `trackingId` for its support), else the start
/// of the body.
fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let text = v.get("message").and_then(Value::as_str)?;
            Some(match v.get("trackingId").and_then(Value::as_str) {
                Some(id) => format!("{text} (trackingId {id})"),
                None => text.to_string(),
            })
        })
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// The next page of a listing, from the `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

impl Api {
    pub(crate) fn new(
        base: &str,
        client_id: &str,
        client_secret: Secret,
        refresh_token: Secret,
        http: reqwest::Client,
    ) -> Self {
        Api {
            base: base.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret,
            refresh_token: Mutex::new(refresh_token),
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

    /// A valid access token: the kept one, or a refresh.
    async fn token(&self) -> Result<String, ApiError> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let refresh = self.refresh_token.lock().expose().to_string();
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
            ("refresh_token", refresh.as_str()),
        ];
        let response = self
            .http
            .post(format!("{}/v1/access_token", self.base))
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
                message: format!("access_token: {}", message(&body)),
            });
        }
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let access = value
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Refused {
                status: status.as_u16(),
                message: "access_token: no access_token in the answer".into(),
            })?
            .to_string();
        if let Some(next) = value.get("refresh_token").and_then(Value::as_str) {
            *self.refresh_token.lock() = Secret::new(next);
        }
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

    /// One request to `url` (absolute); a 401 is retried once with a new token.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(Value, Option<String>), ApiError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let mut request = self
                .http
                .request(method.clone(), url)
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
            let next = next_link(response.headers());
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
            return Ok((serde_json::from_str(&text).unwrap_or(Value::Null), next));
        }
        Err(ApiError::Refused {
            status: 401,
            message: "the new token was refused too".into(),
        })
    }

    /// One API request (`path` under the API base).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.send(method, &format!("{}{path}", self.base), body)
            .await
            .map(|(value, _)| value)
    }

    /// Every `items` of a listing, page after page.
    pub(crate) async fn list(&self, path: &str) -> Result<Vec<Value>, ApiError> {
        let mut url = format!("{}{path}", self.base);
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let (page, next) = self.send(Method::GET, &url, None).await?;
            if let Some(items) = page.get("items").and_then(Value::as_array) {
                all.extend(items.iter().cloned());
            }
            match next {
                // Only pages of the same API: a Link elsewhere would carry our token away.
                Some(next) if next.starts_with(&self.base) => url = next,
                _ => break,
            }
        }
        Ok(all)
    }
}
