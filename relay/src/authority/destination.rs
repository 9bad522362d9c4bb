//! The SAP BTP Destination service, as a client: the binding's client-credentials token, then
//! "find destination" with the rep's token for user propagation.
//!
//! `GET <uri>/destination-configuration/v1/destinations/<name>` with `Authorization: Bearer
//! <client-credentials token>` and `X-user-token: <rep's JWT>` answers the destination's
//! configuration (`URL`) and `authTokens`, the first of which is the rep's V2 token (or carries
//! an `error` when the exchange failed). Both tokens are cached until shortly before they expire.

use std::collections::HashMap;

use serde::Deserialize;
use tokio::sync::Mutex;

use super::AuthorityError;
use crate::config::DestinationConfig;
use crate::secret::Secret;

/// Tokens are renewed this long before they expire.
const MARGIN_MS: u64 = 60_000;

#[derive(Debug)]
pub struct DestinationService {
    config: DestinationConfig,
    http: reqwest::Client,
    client_token: Mutex<Option<(Secret, u64)>>,
    /// (tenant, rep) -> the V2 URL and the rep's V2 token with its expiry.
    user_targets: Mutex<HashMap<(String, String), Target>>,
}

/// Where and how to reach V2 as one rep.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub token: Secret,
    expires_ms: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct FindAnswer {
    #[serde(rename = "destinationConfiguration")]
    configuration: DestinationConfiguration,
    #[serde(rename = "authTokens", default)]
    auth_tokens: Vec<AuthToken>,
}

#[derive(Deserialize)]
struct DestinationConfiguration {
    #[serde(rename = "URL")]
    url: String,
}

#[derive(Deserialize)]
struct AuthToken {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    error: Option<String>,
    /// Seconds, as a string in the service's answers (a number is accepted too).
    #[serde(default, alias = "expiresIn")]
    expires_in: Option<serde_json::Value>,
}

fn failed(what: &str, err: impl std::fmt::Display) -> AuthorityError {
    AuthorityError::Destination(format!("{what}: {err}"))
}

impl DestinationService {
    /// Over the authority's HTTP client (its timeouts are the relay's V2 timeouts).
    pub fn new(config: DestinationConfig, http: reqwest::Client) -> Self {
        DestinationService {
            config,
            http,
            client_token: Mutex::new(None),
            user_targets: Mutex::new(HashMap::new()),
        }
    }

    /// The V2 URL and the rep's V2 token from destination `name`.
    pub async fn resolve(
        &self,
        name: &str,
        tenant: &str,
        rep: &str,
        user_token: &Secret,
        now_ms: u64,
    ) -> Result<Target, AuthorityError> {
        let key = (tenant.to_string(), rep.to_lowercase());
        if let Some(target) = self.user_targets.lock().await.get(&key)
            && target.expires_ms > now_ms + MARGIN_MS
        {
            return Ok(target.clone());
        }
        let client_token = self.client_token(now_ms).await?;
        let url = format!(
            "{}/destination-configuration/v1/destinations/{}",
            self.config.uri.trim_end_matches('/'),
            name
        );
        let response = self
            .http
            .get(&url)
            .bearer_auth(client_token.expose())
            .header("X-user-token", user_token.expose())
            .send()
            .await
            .map_err(|e| failed("unreachable", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                *self.client_token.lock().await = None;
            }
            return Err(failed(
                &format!("destination {name:?} answered {status}"),
                body.chars().take(200).collect::<String>(),
            ));
        }
        let answer: FindAnswer = response
            .json()
            .await
            .map_err(|e| failed("unexpected answer", e.without_url()))?;
        let token = answer
            .auth_tokens
            .into_iter()
            .next()
            .ok_or_else(|| failed(name, "the destination returned no auth token"))?;
        if let Some(error) = token.error.filter(|e| !e.is_empty()) {
            return Err(failed(&format!("destination {name:?}"), error));
        }
        if token.value.is_empty() || !token.kind.eq_ignore_ascii_case("bearer") {
            return Err(failed(name, "the destination returned no bearer token"));
        }
        let lifetime_s = token
            .expires_in
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(300);
        let target = Target {
            url: answer.configuration.url,
            token: Secret::new(token.value),
            expires_ms: super::expiry_ms(now_ms, lifetime_s),
        };
        let mut targets = self.user_targets.lock().await;
        // Expired tokens go as new ones come, so reps who stopped working leave nothing behind.
        targets.retain(|_, kept| kept.expires_ms > now_ms);
        targets.insert(key, target.clone());
        Ok(target)
    }

    /// The binding's own token (client credentials), cached.
    async fn client_token(&self, now_ms: u64) -> Result<Secret, AuthorityError> {
        let mut cached = self.client_token.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && *expires > now_ms + MARGIN_MS
        {
            return Ok(token.clone());
        }
        let response = self
            .http
            .post(&self.config.token_url)
            .basic_auth(
                &self.config.client_id,
                Some(self.config.client_secret.expose()),
            )
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={}",
                self.config.client_id
            ))
            .send()
            .await
            .map_err(|e| failed("token endpoint unreachable", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(
                "token endpoint",
                format!("answered {status} (check the binding's client id and secret)"),
            ));
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| failed("token endpoint", e.without_url()))?;
        let token = Secret::new(answer.access_token);
        let expires = super::expiry_ms(now_ms, answer.expires_in.unwrap_or(600));
        *cached = Some((token.clone(), expires));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review F16: a rep's V2 target stays only while its token is valid; resolving for another
    /// rep later leaves no expired target behind.
    #[tokio::test]
    async fn expired_targets_go_as_new_ones_come() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let url = sim.url();
        let service = DestinationService::new(
            DestinationConfig {
                uri: format!("{url}/sim/btp"),
                token_url: format!("{url}/sim/btp/oauth/token"),
                client_id: "cti-destination".into(),
                client_secret: Secret::new("demo-destination-secret"),
            },
            reqwest::Client::new(),
        );
        let now_ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp())
            .expect("after 1970")
            * 1000;
        for rep in ["bob@example.com", "alice@example.com"] {
            let user_token = Secret::new(sim.sim.idp.issue(rep, "demo", 3600));
            service
                .resolve("sscDestination", "demo", rep, &user_token, now_ms)
                .await
                .expect("resolved");
        }
        assert_eq!(service.user_targets.lock().await.len(), 2);

        // A day later bob's target has expired; alice resolves again.
        let later = now_ms + 24 * 60 * 60 * 1000;
        let user_token = Secret::new(sim.sim.idp.issue("alice@example.com", "demo", 3600));
        service
            .resolve(
                "sscDestination",
                "demo",
                "alice@example.com",
                &user_token,
                later,
            )
            .await
            .expect("resolved");
        let targets = service.user_targets.lock().await;
        assert_eq!(targets.len(), 1, "bob's expired target went");
        assert!(targets.contains_key(&("demo".to_string(), "alice@example.com".to_string())));
        sim.abort();
    }
}
