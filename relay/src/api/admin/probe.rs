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

/// What the provider says to the settings, tried the way its connector starts: a generic PBX
/// pushes its webhooks and has nothing to call; Genesys Cloud, RingCentral and Teams are asked
/// for a token (a grant has no side effect); Webex's integration refreshes its token and reads
/// its webhooks; Finesse is read over REST and logged in to over XMPP; Asterisk's manager
/// interface and FreeSWITCH's event socket are logged in to; a SIP server is asked for one rep's
/// dialog state. None of them leaves anything behind at the provider.
pub(crate) async fn provider(config: &TenantConfig, webhook_url: &str, timeout: Duration) -> Probe {
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(http) => http,
        Err(err) => return Probe::failed(format!("no HTTP client: {err}")),
    };
    match &config.telephony {
        TelephonySettings::Generic(settings) => Probe::ok(format!(
            "nothing to call: the PBX pushes signed webhooks to {webhook_url}; call controls \
             go to {}",
            settings.control_url
        )),
        TelephonySettings::Genesys(settings) => granted(
            crate::adapters::genesys::check_credentials(settings, http).await,
            format!(
                "Genesys Cloud at {} issued a token to the client {:?}",
                settings.genesys_login_url, settings.genesys_client_id
            ),
            format!(
                "the client {:?} at {}",
                settings.genesys_client_id, settings.genesys_login_url
            ),
        ),
        TelephonySettings::RingCentral(settings) => {
            let grant = match settings.ringcentral_jwt {
                Some(_) => "the JWT grant",
                None => "client credentials",
            };
            granted(
                crate::adapters::ringcentral::check_credentials(settings, http).await,
                format!(
                    "RingCentral at {} issued a token to the app {:?} ({grant})",
                    settings.ringcentral_server_url, settings.ringcentral_client_id
                ),
                format!(
                    "the app {:?} at {} ({grant})",
                    settings.ringcentral_client_id, settings.ringcentral_server_url
                ),
            )
        }
        TelephonySettings::Teams(settings) => {
            let clock = std::sync::Arc::new(crate::clock::SystemClock);
            granted(
                crate::adapters::teams::check_credentials(settings, clock, http).await,
                format!(
                    "Entra ID of the tenant {:?} issued a token to the app {:?}",
                    settings.teams_tenant_id, settings.teams_client_id
                ),
                format!(
                    "the app {:?} in the Entra ID tenant {:?}",
                    settings.teams_client_id, settings.teams_tenant_id
                ),
            )
        }
        TelephonySettings::Webex(settings) => tried(
            crate::adapters::webex::check_credentials(settings, http).await,
            |read| {
                format!(
                    "Webex at {} refreshed the integration {:?}'s token and listed its {read}",
                    settings.webex_api_url, settings.webex_client_id
                )
            },
            format!(
                "the integration {:?} at {}",
                settings.webex_client_id, settings.webex_api_url
            ),
        ),
        TelephonySettings::Finesse(settings) => tried(
            settings.check_connection(&http).await,
            |done| format!("Finesse at {}: {done}", settings.finesse_url),
            format!("Finesse at {}", settings.finesse_url),
        ),
        TelephonySettings::Asterisk(settings) => {
            let at = format!(
                "the Asterisk manager interface at {}:{}",
                settings.asterisk_host.trim(),
                settings.asterisk_port
            );
            tried(
                settings.check_connection().await,
                |banner| {
                    format!(
                        "{at} ({banner}) accepted the login of {:?}",
                        settings.asterisk_username
                    )
                },
                at.clone(),
            )
        }
        TelephonySettings::Freeswitch(settings) => {
            let at = format!(
                "the FreeSWITCH event socket at {}:{}",
                settings.freeswitch_host.trim(),
                settings.freeswitch_port
            );
            tried(
                settings.check_connection().await,
                |()| format!("{at} accepted the password"),
                at.clone(),
            )
        }
        TelephonySettings::Sip(settings) => tried(
            crate::adapters::sip::check::connection(settings).await,
            |done| done,
            "SIP".to_string(),
        ),
    }
}

/// A try's outcome in the page's words: what worked, or who failed and why.
fn tried<T>(result: Result<T, String>, worked: impl FnOnce(T) -> String, failed: String) -> Probe {
    match result {
        Ok(value) => Probe::ok(worked(value)),
        Err(err) => Probe::failed(format!("{failed}: {err}")),
    }
}

/// A token request's outcome in the page's words: what was granted, or who was refused and why.
fn granted(result: Result<(), String>, granted: String, refused: String) -> Probe {
    tried(result, |()| granted, refused)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    /// A tenant on `provider`'s simulator, as the demo configures it.
    fn tenant(sim_url: &str, provider: &str) -> TenantConfig {
        let mut config = crate::config::Config::demo(sim_url).tenants.remove(0);
        config.telephony = TelephonySettings::demo(provider, sim_url, "http://127.0.0.1:9", "t")
            .expect("a simulated provider");
        config
    }

    /// The provider's test fails with `config`, and its detail does not show `secret`.
    async fn refused_without_the_secret(config: &TenantConfig, provider: &str, secret: &str) {
        let probe = super::provider(config, "http://relay/hook", Duration::from_secs(10)).await;
        assert!(!probe.ok, "{provider}: {}", probe.detail);
        assert!(
            !probe.detail.contains(secret),
            "{provider}: {}",
            probe.detail
        );
    }

    /// A free port on loopback for a simulated PBX of its own protocol.
    fn free_port() -> std::net::SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
    }

    /// Webex, Asterisk and FreeSWITCH are tried as their connectors start (a token refresh and
    /// a read of the webhooks; a manager login; an event-socket login): the simulators' accounts
    /// work, a wrong secret is reported as failed without the secret, and a PBX that is not
    /// there is reported as unreachable.
    #[tokio::test]
    async fn webex_asterisk_and_freeswitch_are_logged_in_to() {
        let (ami, esl) = (free_port(), free_port());
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            asterisk_listen: Some(ami),
            freeswitch_listen: Some(esl),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let wrong = "not-the-secret-4711";
        for (provider, says) in [
            ("webex", "webhook"),
            ("asterisk", "Asterisk Call Manager/"),
            ("freeswitch", "accepted the password"),
        ] {
            let mut config = tenant(&sim.url(), provider);
            match &mut config.telephony {
                TelephonySettings::Asterisk(s) => s.asterisk_port = ami.port(),
                TelephonySettings::Freeswitch(s) => s.freeswitch_port = esl.port(),
                _ => {}
            }
            let probe =
                super::provider(&config, "http://relay/hook", Duration::from_secs(10)).await;
            assert!(probe.ok, "{provider}: {}", probe.detail);
            assert!(probe.detail.contains(says), "{provider}: {}", probe.detail);

            let mut wrong_secret = config.clone();
            match &mut wrong_secret.telephony {
                TelephonySettings::Webex(s) => s.webex_refresh_token = Secret::new(wrong),
                TelephonySettings::Asterisk(s) => s.asterisk_secret = Secret::new(wrong),
                TelephonySettings::Freeswitch(s) => s.freeswitch_password = Secret::new(wrong),
                _ => unreachable!("only the providers above"),
            }
            refused_without_the_secret(&wrong_secret, provider, wrong).await;

            let nobody = free_port();
            match &mut config.telephony {
                TelephonySettings::Webex(s) => s.webex_api_url = format!("http://{nobody}"),
                TelephonySettings::Asterisk(s) => s.asterisk_port = nobody.port(),
                TelephonySettings::Freeswitch(s) => s.freeswitch_port = nobody.port(),
                _ => unreachable!("only the providers above"),
            }
            let probe =
                super::provider(&config, "http://relay/hook", Duration::from_secs(10)).await;
            assert!(!probe.ok, "{provider}: {}", probe.detail);
            assert!(
                probe.detail.contains("unreachable"),
                "{provider}: {}",
                probe.detail
            );
        }
    }

    /// Each provider with a token to ask for is asked: its demo credentials get one, a wrong
    /// secret is reported as failed, and the secret never appears in what the page is told.
    #[tokio::test]
    async fn the_providers_with_a_grant_are_asked_for_a_token() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let wrong = "not-the-secret-4711";
        for provider in ["genesys", "ringcentral", "teams"] {
            let mut config = tenant(&sim.url(), provider);
            let probe =
                super::provider(&config, "http://relay/hook", Duration::from_secs(10)).await;
            assert!(probe.ok, "{provider}: {}", probe.detail);
            assert!(
                probe.detail.contains("token"),
                "{provider}: {}",
                probe.detail
            );
            match &mut config.telephony {
                TelephonySettings::Genesys(s) => s.genesys_client_secret = Secret::new(wrong),
                TelephonySettings::RingCentral(s) => {
                    s.ringcentral_client_secret = Secret::new(wrong)
                }
                TelephonySettings::Teams(s) => s.teams_client_secret = Secret::new(wrong),
                _ => unreachable!("only the providers above"),
            }
            refused_without_the_secret(&config, provider, wrong).await;
        }
    }
}
