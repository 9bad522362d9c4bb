//! A tenant's RingCentral settings, as the tenants file has them, and what start-up refuses.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::super::{SettingsError, TenantFacts};
use crate::adapters::is_loopback;
use crate::secret::Secret;

/// The demo's app and credentials at the simulator (public, so only for a V2 on this machine).
const DEMO_CLIENT_ID: &str = "cti-relay-ringcentral";
const DEMO_CLIENT_SECRET: &str = "demo-ringcentral-secret";
const DEMO_JWT: &str = "demo-ringcentral-jwt";
pub(super) const DEMO_VERIFICATION_TOKEN: &str = "demo-ringcentral-verification";

/// A tenant's RingCentral account, flat among the tenant's keys (`"provider": "ringcentral"`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `https://platform.ringcentral.com` (or the simulator's `{sim}/sim/ringcentral`).
    pub ringcentral_server_url: String,
    pub ringcentral_client_id: String,
    pub ringcentral_client_secret: Secret,
    /// The JWT credential of the user the app acts as; without it, client credentials.
    #[serde(default)]
    pub ringcentral_jwt: Option<Secret>,
    /// This relay's public URL of `POST /v1/tenants/{tenant}/telephony/ringcentral`.
    pub ringcentral_webhook_url: String,
    /// Sent by RingCentral as `Verification-Token` on every delivery.
    pub ringcentral_verification_token: Secret,
    /// The token `ringcentral_verification_token` replaces, during a rotation: deliveries of a
    /// subscription made with it are still taken (with a warning) until the new subscription
    /// replaces it.
    #[serde(default)]
    pub ringcentral_verification_token_previous: Option<Secret>,
    /// Reps' devices (rep e-mail -> RingCentral device id) for call-out, answer and consult;
    /// a rep without one dials by RingOut.
    #[serde(default)]
    pub ringcentral_device_ids: BTreeMap<String, String>,
    /// Seconds between looks at the subscription (a deleted one delivers nothing).
    #[serde(default)]
    pub ringcentral_watch_secs: Option<u64>,
    /// What the subscription covers: `account` (absent: every telephony session of the account,
    /// which needs an administrator's JWT) or `extensions` (one filter per rep's extension, for
    /// an app whose user may not watch the whole account).
    #[serde(default)]
    pub ringcentral_subscription: Option<String>,
    /// Extension id -> rep e-mail, where an extension's contact e-mail is not the rep's login.
    #[serde(default)]
    pub agents: BTreeMap<String, String>,
}

impl Settings {
    /// The simulator's account at `sim_url`, posting to the relay at `relay_url` for `tenant`.
    pub fn demo(sim_url: &str, relay_url: &str, tenant: &str) -> Self {
        // The simulator's demo reps' softphones (sim/src/ringcentral: device `80400{ext}`).
        let devices = [
            ("alice@example.com", "80400101"),
            ("bob@example.com", "80400102"),
            ("carol@example.com", "80400103"),
            ("dave@example.com", "80400104"),
        ];
        Settings {
            ringcentral_server_url: format!("{}/sim/ringcentral", sim_url.trim_end_matches('/')),
            ringcentral_client_id: DEMO_CLIENT_ID.into(),
            ringcentral_client_secret: Secret::new(DEMO_CLIENT_SECRET),
            ringcentral_jwt: Some(Secret::new(DEMO_JWT)),
            ringcentral_webhook_url: format!(
                "{}/v1/tenants/{tenant}/telephony/ringcentral",
                relay_url.trim_end_matches('/')
            ),
            ringcentral_verification_token: Secret::new(DEMO_VERIFICATION_TOKEN),
            ringcentral_verification_token_previous: None,
            ringcentral_device_ids: devices
                .iter()
                .map(|(rep, device)| (rep.to_string(), device.to_string()))
                .collect(),
            ringcentral_watch_secs: Some(2),
            ringcentral_subscription: None,
            agents: BTreeMap::new(),
        }
    }

    pub(in crate::adapters) fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        let TenantFacts { id, v2_url } = *tenant;
        let refuse = |var: &'static str, problem: String| {
            Err(SettingsError {
                var,
                problem: format!("tenant {id:?}: {problem}"),
            })
        };
        for (var, url) in [
            ("ringcentral_server_url", &self.ringcentral_server_url),
            ("ringcentral_webhook_url", &self.ringcentral_webhook_url),
        ] {
            match reqwest::Url::parse(url) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
                Ok(u) if u.scheme() == "http" && is_loopback(url) && u.host_str().is_some() => {}
                _ => return refuse(var, format!("{url:?} is not an https URL")),
            }
        }
        let path = format!("/v1/tenants/{id}/telephony/ringcentral");
        let webhook_path = reqwest::Url::parse(&self.ringcentral_webhook_url)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        if !webhook_path.ends_with(&path) {
            // Another tenant's path would take the deliveries and refuse them (its token).
            return refuse(
                "ringcentral_webhook_url",
                format!("must be this relay's public URL of {path}"),
            );
        }
        if self.ringcentral_client_id.trim().is_empty() {
            return refuse("ringcentral_client_id", "must not be empty".into());
        }
        if self.ringcentral_client_secret.expose().is_empty() {
            return refuse("ringcentral_client_secret", "must not be empty".into());
        }
        let tokens = std::iter::once((
            "ringcentral_verification_token",
            &self.ringcentral_verification_token,
        ))
        .chain(
            self.ringcentral_verification_token_previous
                .iter()
                .map(|previous| ("ringcentral_verification_token_previous", previous)),
        );
        for (var, token) in tokens {
            let token = token.expose();
            // RingCentral takes a verification token of up to 64 characters (inferred from its
            // developer guide); 16 is our floor for a secret.
            if token.len() < 16 || token.len() > 64 {
                return refuse(var, "must be 16 to 64 characters".into());
            }
            let demo = token == DEMO_VERIFICATION_TOKEN
                || self.ringcentral_client_secret.expose() == DEMO_CLIENT_SECRET;
            if demo && !is_loopback(v2_url) {
                return refuse(
                    var,
                    format!(
                        "talks to V2 at {v2_url} with the demo's public RingCentral secrets; \
                         set your own"
                    ),
                );
            }
        }
        if self.ringcentral_watch_secs == Some(0) {
            return refuse("ringcentral_watch_secs", "must be at least 1".into());
        }
        if let Some(scope) = self.ringcentral_subscription.as_deref()
            && !matches!(scope, "account" | "extensions")
        {
            return refuse(
                "ringcentral_subscription",
                format!("tenant {id:?}: {scope:?} is neither `account` nor `extensions`"),
            );
        }
        Ok(())
    }
}
