//! "Test connection" on the admin page: one real request to V2 with the settings' credentials,
//! and what the telephony provider allows, each answered with what worked or what failed and
//! why, in words an administrator can act on. No secret ever appears in a detail: V2's and the
//! provider's errors carry status, code and message, never the credentials sent.

use std::time::Duration;

use serde::Serialize;

use crate::adapters::TelephonySettings;
use crate::config::TenantConfig;
use crate::v2::V2Client;
use crate::v2::client::{Collection, V2Auth};

/// One side's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Probe {
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

impl Probe {
    fn ok(detail: impl Into<String>) -> Self {
        Probe {
            ok: true,
            detail: detail.into(),
        }
    }

    fn failed(detail: impl Into<String>) -> Self {
        Probe {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// Runs `probe` within `limit`; past it the probe failed, saying so.
pub(crate) async fn bounded(
    limit: Duration,
    what: &str,
    probe: impl std::future::Future<Output = Probe>,
) -> Probe {
    match tokio::time::timeout(limit, probe).await {
        Ok(probe) => probe,
        Err(_) => Probe::failed(format!(
            "{what} did not answer within {} s",
            limit.as_secs()
        )),
    }
}

/// Signs in to V2 with the technical user and reads one contact person, as the number index's
/// build does first: the credentials, the URL and the user's read access in one request.
pub(crate) async fn v2(config: &TenantConfig, timeout: Duration) -> Probe {
    let client = V2Client::new(
        &config.v2_url,
        V2Auth::Basic {
            user: config.v2_user.clone(),
            password: config.v2_password.clone(),
        },
        timeout,
    );
    match client.count(Collection::ContactPersons, None).await {
        Ok(count) => Probe::ok(format!(
            "V2 at {} accepted the user {:?} and answered a read of contact persons ({count} in all)",
            config.v2_url, config.v2_user
        )),
        Err(err) => Probe::failed(format!(
            "V2 at {} with the user {:?}: {err}",
            config.v2_url, config.v2_user
        )),
    }
}

/// What can be tried of the provider from here. A generic PBX pushes its webhooks and has
/// nothing to call; the providers the relay signs in to are left to their connection's
/// status (the connector reports it once the tenant is configured).
pub(crate) fn provider(config: &TenantConfig, webhook_url: &str) -> Probe {
    match &config.telephony {
        TelephonySettings::Generic(settings) => Probe::ok(format!(
            "nothing to call: the PBX pushes signed webhooks to {webhook_url}; call controls \
             go to {}",
            settings.control_url
        )),
        other => Probe::ok(format!(
            "{} settings are complete; whether the relay connects shows under the provider \
             connection once the tenant is configured (events arrive at {webhook_url})",
            provider_name(other)
        )),
    }
}

/// The provider's name as the settings spell it.
pub(crate) fn provider_name(settings: &TelephonySettings) -> &'static str {
    match settings {
        TelephonySettings::Generic(_) => "generic",
        TelephonySettings::RingCentral(_) => "ringcentral",
        TelephonySettings::Genesys(_) => "genesys",
        TelephonySettings::Teams(_) => "teams",
        TelephonySettings::Webex(_) => "webex",
        TelephonySettings::Finesse(_) => "finesse",
        TelephonySettings::Asterisk(_) => "asterisk",
        TelephonySettings::Freeswitch(_) => "freeswitch",
        TelephonySettings::Sip(_) => "sip",
    }
}
