//! Microsoft Graph as the adapter uses it (an app-only token by client credentials against the
//! tenant's Entra ID, kept and renewed; JSON requests that name Graph's refusal), and the check
//! of the Bot Framework tokens on calls to the bot (reference 3.3).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use sha1::Digest;
use tokio::time::Instant;

use crate::clock::SharedClock;
use crate::secret::Secret;

/// The client-assertion type of a certificate credential (RFC 7523, as Entra ID names it).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a client assertion is good for: Microsoft's page asks for a short life, "5-10
/// minutes after nbf" at most.
const ASSERTION_SECS: u64 = 300;

/// How the app proves itself to Entra ID.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Secret(Secret),
    Certificate(Certificate),
}

/// A certificate uploaded to the app registration, with its private key.
#[derive(Clone)]
pub(crate) struct Certificate {
    key: EncodingKey,
    /// base64url of the SHA-1 of the certificate's DER: the assertion's `x5t`.
    x5t: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// From the PEM certificate and its PEM (PKCS#1 or PKCS#8) RSA private key.
    pub(crate) fn from_pem(certificate: &str, private_key: &str) -> Result<Self, String> {
        let body: String = certificate
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN CERTIFICATE-----")
            .skip(1)
            .take_while(|l| *l != "-----END CERTIFICATE-----")
            .collect();
        if body.is_empty() {
            return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
        }
        let der = STANDARD
            .decode(body)
            .map_err(|e| format!("the certificate's PEM is not base64: {e}"))?;
        let key = EncodingKey::from_rsa_pem(private_key.as_bytes())
            .map_err(|e| format!("the private key is not an RSA PEM key: {e}"))?;
        Ok(Certificate {
            key,
            x5t: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der)),
        })
    }

    /// The client assertion for `audience` (the token endpoint). What it carries is what the
    /// Microsoft identity platform's "certificate credentials" page lists (confirmed there):
    /// header `alg` RS256, `typ` JWT, `x5t` = base64url SHA-1 thumbprint of the certificate's
    /// DER; claims `aud` = the token endpoint, `iss` = `sub` = the client id, `jti` unique,
    /// `nbf` and `iat` now, `exp` a few minutes later.
    fn assertion(&self, client_id: &str, audience: &str, now_secs: u64) -> Result<String, String> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.x5t = Some(self.x5t.clone());
        let claims = serde_json::json!({
            "aud": audience, "iss": client_id, "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now_secs, "iat": now_secs, "exp": now_secs + ASSERTION_SECS,
        });
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

const TOKEN_MARGIN: Duration = Duration::from_secs(120);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The one scope of an app-only Graph token.
pub(crate) const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The issuer of the tokens on calls to a bot.
pub(crate) const BOT_ISSUER: &str = "https://api.botframework.com";
/// The keys are read again for an unknown `kid` at most this often, so forged tokens cannot
/// turn the relay into a load on the key endpoint.
const KEYS_REFETCH: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("Graph answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("Graph is unreachable: {0}")]
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

/// Graph's (`error.code error.message`) or Entra ID's (`error_description`) words for a refusal.
fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            if let Some(text) = v.get("error_description").and_then(Value::as_str) {
                return Some(text.to_string());
            }
            let error = v.get("error")?;
            Some(format!(
                "{} {}",
                error
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ))
        })
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[derive(Debug)]
struct Token {
    value: Secret,
    expires: Instant,
}

/// Whose token a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// The app itself (client credentials): calls, call records, users.
    App,
    /// The service account whose refresh token the tenant configured (delegated
    /// `Presence.Read.All`): presence, whose subscriptions Graph takes from users only.
    Delegated,
}

#[derive(Debug)]
pub(crate) struct Graph {
    login_url: String,
    graph_url: String,
    tenant_id: String,
    client_id: String,
    credential: Credential,
    clock: SharedClock,
    pub(crate) http: reqwest::Client,
    token: Mutex<Option<Token>>,
    /// The service account's refresh token (the newest Entra ID gave back: each grant rotates
    /// it), where the tenant uses presence.
    refresh_token: Mutex<Option<Secret>>,
    delegated_token: Mutex<Option<Token>>,
}

/// The delegated scopes presence needs (`offline_access` keeps a refresh token coming).
pub(crate) const PRESENCE_SCOPE: &str =
    "https://graph.microsoft.com/Presence.Read.All offline_access";

impl Graph {
    pub(crate) fn new(
        login_url: &str,
        graph_url: &str,
        tenant_id: &str,
        client_id: &str,
        credential: Credential,
        clock: SharedClock,
        http: reqwest::Client,
    ) -> Self {
        Graph {
            login_url: login_url.trim_end_matches('/').to_string(),
            graph_url: graph_url.trim_end_matches('/').to_string(),
            tenant_id: tenant_id.to_string(),
            client_id: client_id.to_string(),
            credential,
            clock,
            http,
            token: Mutex::new(None),
            refresh_token: Mutex::new(None),
            delegated_token: Mutex::new(None),
        }
    }

    /// The client assertion this app would send now (certificate credential only).
    #[cfg(test)]
    pub(crate) fn assertion_for_test(&self) -> Option<String> {
        let Credential::Certificate(certificate) = &self.credential else {
            return None;
        };
        let endpoint = format!("{}/{}/oauth2/v2.0/token", self.login_url, self.tenant_id);
        certificate
            .assertion(&self.client_id, &endpoint, self.clock.now_ms() / 1000)
            .ok()
    }

    /// Presence calls go out with the service account whose refresh token this is.
    pub(crate) fn with_refresh_token(self, refresh: Option<Secret>) -> Self {
        *self.refresh_token.lock() = refresh;
        self
    }

    fn slot(&self, who: Who) -> &Mutex<Option<Token>> {
        match who {
            Who::App => &self.token,
            Who::Delegated => &self.delegated_token,
        }
    }

    fn cached(&self, who: Who) -> Option<String> {
        let token = self.slot(who).lock();
        token
            .as_ref()
            .filter(|t| t.expires > Instant::now() + TOKEN_MARGIN)
            .map(|t| t.value.expose().to_string())
    }

    fn forget_token(&self, who: Who) {
        *self.slot(who).lock() = None;
    }

    /// Asks Entra ID for the app's token (client credentials), as the adapter does before its
    /// first Graph request: the admin page's connection test.
    pub(crate) async fn check_app_token(&self) -> Result<(), ApiError> {
        self.forget_token(Who::App);
        self.token(Who::App).await.map(|_| ())
    }

    /// A token: the kept one, or a new grant (client credentials for the app, the refresh
    /// token for the service account).
    async fn token(&self, who: Who) -> Result<String, ApiError> {
        if let Some(token) = self.cached(who) {
            return Ok(token);
        }
        let refresh = match who {
            Who::App => None,
            Who::Delegated => {
                Some(
                    self.refresh_token
                        .lock()
                        .clone()
                        .ok_or_else(|| ApiError::Refused {
                            status: 401,
                            message: "token: no refresh token for presence".into(),
                        })?,
                )
            }
        };
        let mut form: Vec<(&str, String)> = vec![("client_id", self.client_id.clone())];
        match &refresh {
            None => {
                form.push(("grant_type", "client_credentials".into()));
                form.push(("scope", GRAPH_SCOPE.into()));
            }
            Some(refresh) => {
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", refresh.expose().to_string()));
                form.push(("scope", PRESENCE_SCOPE.into()));
            }
        }
        let endpoint = format!("{}/{}/oauth2/v2.0/token", self.login_url, self.tenant_id);
        match &self.credential {
            Credential::Secret(secret) => {
                form.push(("client_secret", secret.expose().to_string()));
            }
            Credential::Certificate(certificate) => {
                let now = self.clock.now_ms() / 1000;
                let assertion = certificate
                    .assertion(&self.client_id, &endpoint, now)
                    .map_err(|e| ApiError::Refused {
                        status: 0,
                        message: format!("token: signing the client assertion: {e}"),
                    })?;
                form.push(("client_assertion_type", JWT_BEARER.into()));
                form.push(("client_assertion", assertion));
            }
        }
        let response = self
            .http
            .post(&endpoint)
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
            .unwrap_or(3599);
        if let (Who::Delegated, Some(next)) =
            (who, value.get("refresh_token").and_then(Value::as_str))
        {
            *self.refresh_token.lock() = Some(Secret::new(next));
        }
        *self.slot(who).lock() = Some(Token {
            value: Secret::new(access.clone()),
            expires: Instant::now() + Duration::from_secs(ttl),
        });
        Ok(access)
    }

    /// One Graph v1.0 request with the app's token.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.call_as(Who::App, method, path, body).await
    }

    /// One Graph v1.0 request (`path` under `/v1.0`) with `who`'s token; a 401 is retried
    /// once with a new token.
    pub(crate) async fn call_as(
        &self,
        who: Who,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        for attempt in 0..2 {
            let token = self.token(who).await?;
            let mut request = self
                .http
                .request(method.clone(), format!("{}/v1.0{path}", self.graph_url))
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
                self.forget_token(who);
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

#[derive(Debug, Deserialize)]
struct OpenId {
    jwks_uri: String,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BotClaims {
    #[serde(default)]
    tid: Option<String>,
}

/// The Bot Framework's keys, read through its OpenID configuration and cached by `kid`.
pub(crate) struct BotAuth {
    openid_url: String,
    app_id: String,
    tenant_id: String,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<(HashMap<String, DecodingKey>, Option<Instant>)>,
}

impl std::fmt::Debug for BotAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotAuth")
            .field("openid_url", &self.openid_url)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl BotAuth {
    pub(crate) fn new(
        openid_url: &str,
        app_id: &str,
        tenant_id: &str,
        http: reqwest::Client,
    ) -> Self {
        BotAuth {
            openid_url: openid_url.to_string(),
            app_id: app_id.to_string(),
            tenant_id: tenant_id.to_string(),
            http,
            keys: tokio::sync::Mutex::new((HashMap::new(), None)),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let openid: OpenId = self
            .http
            .get(&self.openid_url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.without_url().to_string())?
            .json()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let jwks: Jwks = self
            .http
            .get(&openid.jwks_uri)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.without_url().to_string())?
            .json()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys.into_iter().filter(|k| k.kty == "RSA") {
            if let (Some(n), Some(e)) = (&jwk.n, &jwk.e)
                && let Ok(key) = DecodingKey::from_rsa_components(n, e)
            {
                keys.insert(jwk.kid.clone().unwrap_or_default(), key);
            }
        }
        Ok(keys)
    }

    /// The key for `kid`: cached, else the keys read again (at most once a minute).
    async fn key(&self, kid: &str) -> Result<DecodingKey, String> {
        let mut cache = self.keys.lock().await;
        if let Some(key) = cache.0.get(kid) {
            return Ok(key.clone());
        }
        if cache.1.is_some_and(|at| at.elapsed() < KEYS_REFETCH) {
            return Err(format!("no Bot Framework key {kid:?}"));
        }
        cache.1 = Some(Instant::now());
        cache.0 = self.fetch().await?;
        cache
            .0
            .get(kid)
            .cloned()
            .ok_or_else(|| format!("no Bot Framework key {kid:?}"))
    }

    /// Checks `Authorization: Bearer <JWT>`: signature by the Bot Framework's keys, `iss`,
    /// `aud` = the bot's app id, unexpired, and `tid` (where given) = the tenant.
    pub(crate) async fn verify(&self, authorization: Option<&str>) -> Result<(), String> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or("the Authorization bearer token is missing")?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("{:?} tokens are not accepted", header.alg));
        }
        let key = self.key(header.kid.as_deref().unwrap_or_default()).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[BOT_ISSUER]);
        validation.set_audience(&[self.app_id.as_str()]);
        validation.leeway = 300;
        let data = jsonwebtoken::decode::<BotClaims>(token, &key, &validation)
            .map_err(|e| format!("the bot token is not valid: {e}"))?;
        if let Some(tid) = data.claims.tid
            && !tid.eq_ignore_ascii_case(&self.tenant_id)
        {
            return Err("the bot token is for another tenant".into());
        }
        Ok(())
    }
}
