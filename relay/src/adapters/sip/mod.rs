//! SIP PBXs through the dialog event package (RFC 4235): any PBX or presence server that
//! notifies `Event: dialog` (Kamailio with pua_dialoginfo, Asterisk, FreeSWITCH, OpenSIPS,
//! most hosted PBXs' BLF), reference section 5.1.
//!
//! A held provider: the [`connector`] is a SIP subscriber that keeps one subscription per
//! rep's address of record at the tenant's presence server, authenticated with SIP digest, and
//! turns each NOTIFY's dialog-info ([`dialog_info`]) into call events ([`mapping`]). The caller
//! is the remote identity's user part, normalized by the relay with the tenant's region.
//!
//! Call controls: the dialog event package only observes. Answering, holding and transferring
//! happen on the rep's phone, and the relay refuses them with that reason. Click-to-dial goes
//! through the PBX's HTTP click-to-dial URL when the tenant configures one; REFER-based
//! third-party call control is not built (it needs the PBX to accept a REFER to the rep's
//! phone, which most do not without its own configuration).

pub(crate) mod check;
mod connector;
pub mod dialog_info;
pub mod mapping;
pub mod ua;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cti_protocol::ws::{CallCommand, Control};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use serde::Deserialize;

use super::{
    AdapterError, CommandError, Context, Inbound, Ingress, Link, LinkError, SettingsError,
    TelephonyAdapter, TenantFacts,
};
use crate::adapters::is_loopback_host;
use crate::calls::Leg;
use crate::secret::Secret;
use mapping::Tracker;

/// The demo's password starts with this: published in the README, so only for a server on
/// loopback.
const DEMO_PASSWORD_PREFIX: &str = "demo-sip-";

/// How the relay reaches the presence server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }
}

/// A tenant's SIP PBX.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The presence server (registrar or proxy) the relay subscribes at: `host` or
    /// `host:port` (5060, 5061 for TLS).
    pub sip_server: String,
    #[serde(default)]
    pub sip_transport: Transport,
    /// Rep e-mail -> their address of record (`sip:1001@pbx.example.com`).
    pub sip_reps: BTreeMap<String, String>,
    /// The relay's SIP account (digest user name) and password.
    pub sip_username: String,
    pub sip_password: Secret,
    /// The domain of the relay's own SIP identity (`sip:<username>@<domain>`); the first AoR's
    /// domain when absent.
    #[serde(default)]
    pub sip_domain: Option<String>,
    /// Subscription lifetime asked for, in seconds; refreshed before it lapses.
    #[serde(default = "default_expires")]
    pub sip_expires: u32,
    /// PEM certificates of the CA that signed the server's TLS certificate, trusted besides the
    /// web's roots.
    #[serde(default)]
    pub sip_tls_ca_pem: Option<String>,
    /// The PBX's HTTP click-to-dial URL, `{user}` (the rep's AoR user part), `{aor}` and
    /// `{number}` (E.164) filled in; the relay POSTs it. None: no click-to-dial.
    #[serde(default)]
    pub sip_click_to_dial_url: Option<String>,
    /// Whether a rep's new call from the very caller (and user agent) another rep is talking to
    /// is taken as that rep's blind transfer when the PBX's dialog state names no referrer
    /// (Kamailio's does not). Off where unrelated callers share one number and user agent.
    #[serde(default = "default_true")]
    pub sip_infer_transfers: bool,
}

fn default_true() -> bool {
    true
}

fn default_expires() -> u32 {
    600
}

/// The demo PBX's SIP domain (a reserved `.test` name: the relay sends everything to
/// `sip_server` and never resolves it).
pub const DEMO_DOMAIN: &str = "pbx.test";

/// The demo's reps and their extensions.
pub const DEMO_REPS: [(&str, &str); 2] =
    [("alice@example.com", "1001"), ("bob@example.com", "1002")];

impl Settings {
    /// A PBX on loopback (port 5060; tests put their Kamailio's) with the demo reps' AoRs.
    pub fn demo(_sim_url: &str) -> Self {
        Settings {
            sip_server: "127.0.0.1:5060".into(),
            sip_transport: Transport::Udp,
            sip_reps: DEMO_REPS
                .iter()
                .map(|(rep, ext)| ((*rep).to_string(), format!("sip:{ext}@{DEMO_DOMAIN}")))
                .collect(),
            sip_username: "cti-relay".into(),
            sip_password: Secret::new(format!("{DEMO_PASSWORD_PREFIX}relay")),
            sip_domain: None,
            sip_expires: default_expires(),
            sip_tls_ca_pem: None,
            sip_click_to_dial_url: None,
            sip_infer_transfers: true,
        }
    }

    /// A connection to the server over the tenant's transport; the error names the server.
    pub(crate) async fn connect(&self) -> Result<ua::Wire, String> {
        let (host, port) = self.server();
        ua::Wire::connect(
            &host,
            port,
            self.sip_transport,
            self.sip_tls_ca_pem.as_deref(),
        )
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))
    }

    /// The server's host and port.
    pub fn server(&self) -> (String, u16) {
        let server = self.sip_server.trim();
        let server = server
            .strip_prefix("sips:")
            .or_else(|| server.strip_prefix("sip:"))
            .unwrap_or(server);
        if let Some(rest) = server.strip_prefix('[') {
            // [v6]:port
            if let Some((host, port)) = rest.split_once(']') {
                let port = port.trim_start_matches(':').parse().ok();
                return (
                    host.to_string(),
                    port.unwrap_or(self.sip_transport.default_port()),
                );
            }
        }
        match server.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => match port.parse() {
                Ok(port) => (host.to_string(), port),
                Err(_) => (server.to_string(), self.sip_transport.default_port()),
            },
            _ => (server.to_string(), self.sip_transport.default_port()),
        }
    }

    /// The relay's own SIP identity (its From).
    pub fn identity(&self) -> String {
        let domain = self.sip_domain.clone().unwrap_or_else(|| {
            self.sip_reps
                .values()
                .next()
                .and_then(|aor| rsip::Uri::try_from(aor.trim()).ok())
                .map(|u| u.host_with_port.host.to_string())
                .unwrap_or_else(|| self.server().0)
        });
        format!("sip:{}@{domain}", self.sip_username.trim())
    }

    pub(super) fn check(&self, tenant: &TenantFacts<'_>) -> Result<(), SettingsError> {
        let id = tenant.id;
        let bad = |var: &'static str, problem: String| SettingsError {
            var,
            problem: format!("tenant {id:?}: {problem}"),
        };
        let (host, _) = self.server();
        if host.trim().is_empty() || host.contains(['/', ' ', '@']) {
            return Err(bad(
                "sip_server",
                format!("{:?} must be host or host:port", self.sip_server),
            ));
        }
        if self.sip_reps.is_empty() {
            return Err(bad("sip_reps", "at least one rep is required".into()));
        }
        for (rep, aor) in &self.sip_reps {
            let uri = rsip::Uri::try_from(aor.trim());
            let has_user = uri.as_ref().is_ok_and(|u| u.auth.is_some());
            if !rep.contains('@') || !has_user {
                return Err(bad(
                    "sip_reps",
                    format!(
                        "{rep:?} -> {aor:?} must map a rep's e-mail to a SIP address of record (sip:user@domain)"
                    ),
                ));
            }
        }
        if self.sip_username.trim().is_empty() {
            return Err(bad("sip_username", "required".into()));
        }
        if self.sip_password.expose().is_empty() {
            return Err(bad("sip_password", "required".into()));
        }
        if self.sip_password.expose().starts_with(DEMO_PASSWORD_PREFIX) && !is_loopback_host(&host)
        {
            return Err(bad(
                "sip_password",
                "the demo's password is public; use the relay's own SIP account".into(),
            ));
        }
        if !(60..=86_400).contains(&self.sip_expires) {
            return Err(bad("sip_expires", "must be 60 to 86400 seconds".into()));
        }
        if let Some(pem) = &self.sip_tls_ca_pem {
            use rustls::pki_types::pem::PemObject;
            let certs: Result<Vec<_>, _> =
                rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
            if !certs.is_ok_and(|c| !c.is_empty()) {
                return Err(bad(
                    "sip_tls_ca_pem",
                    "must hold PEM certificates (-----BEGIN CERTIFICATE-----)".into(),
                ));
            }
        }
        if let Some(url) = &self.sip_click_to_dial_url {
            let parsed = reqwest::Url::parse(&url.replace(['{', '}'], ""));
            let ok = parsed.as_ref().is_ok_and(|u| {
                u.scheme() == "https"
                    || (u.scheme() == "http" && u.host_str().is_some_and(is_loopback_host))
            });
            if !ok || !url.contains("{number}") {
                return Err(bad(
                    "sip_click_to_dial_url",
                    format!("{url:?} must be an https URL (http only on loopback) with {{number}}"),
                ));
            }
        }
        Ok(())
    }

    fn aor_of(&self, rep: &str) -> Option<String> {
        self.sip_reps
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(rep))
            .map(|(_, aor)| aor.trim().to_string())
    }
}

/// What the adapter and its connector runs share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tenant: String,
    pub(crate) settings: Settings,
    pub(crate) context: Context,
    tracker: Mutex<Tracker>,
}

impl Shared {
    pub(crate) fn tracker(&self) -> parking_lot::MutexGuard<'_, Tracker> {
        self.tracker.lock()
    }

    pub(crate) fn now(&self) -> String {
        crate::clock::rfc3339(self.context.clock.now_ms())
    }
}

#[derive(Debug)]
pub struct SipAdapter {
    shared: Arc<Shared>,
}

impl SipAdapter {
    pub fn new(settings: Settings, context: Context) -> Self {
        let tracker = Tracker::new(settings.sip_infer_transfers);
        SipAdapter {
            shared: Arc::new(Shared {
                tenant: context.tenant.clone(),
                settings,
                context,
                tracker: Mutex::new(tracker),
            }),
        }
    }
}

fn rejected(action: &'static str, status: u16, message: impl Into<String>) -> CommandError {
    CommandError::Rejected {
        action,
        status,
        message: message.into(),
    }
}

/// Percent-encodes a value for a URL template.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[async_trait]
impl TelephonyAdapter for SipAdapter {
    fn provider(&self) -> &'static str {
        "sip"
    }

    /// A SIP PBX posts nothing to the relay over HTTP: its events come as NOTIFYs.
    async fn receive(&self, request: Inbound<'_>) -> Result<Ingress, AdapterError> {
        Err(AdapterError::MethodNotAllowed(request.method.clone()))
    }

    fn connector(&self, link: Link) -> Option<BoxFuture<'static, Result<(), LinkError>>> {
        Some(Box::pin(connector::run(self.shared.clone(), link)))
    }

    /// Only click-to-dial, and only with a click-to-dial URL: the rest happens on the phone.
    fn controls(&self) -> &'static [Control] {
        if self.shared.settings.sip_click_to_dial_url.is_some() {
            &[Control::Dial]
        } else {
            &[]
        }
    }

    async fn command(&self, _call: &Leg, command: &CallCommand) -> Result<(), CommandError> {
        Err(rejected(
            command.name(),
            501,
            "a SIP PBX's dialog events only observe calls: answer, hold, transfer and hang up on the phone",
        ))
    }

    async fn dial(&self, agent: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let Some(template) = &self.shared.settings.sip_click_to_dial_url else {
            return Err(rejected(
                "dial",
                501,
                "this PBX has no click-to-dial URL configured (sip_click_to_dial_url)",
            ));
        };
        let aor = self.shared.settings.aor_of(agent).ok_or_else(|| {
            rejected("dial", 404, format!("{agent} has no SIP address of record"))
        })?;
        let user = dialog_info::user_of(&aor);
        let url = template
            .replace("{user}", &encode(&user))
            .replace("{aor}", &encode(&aor))
            .replace("{number}", &encode(e164));
        let response = self
            .shared
            .context
            .http
            .post(&url)
            .timeout(std::time::Duration::from_secs(15))
            .send()
            .await
            .map_err(|e| CommandError::Unreachable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let text = response.text().await.unwrap_or_default();
            return Err(rejected(
                "dial",
                status,
                text.chars().take(200).collect::<String>(),
            ));
        }
        // The call comes with its NOTIFY.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> TenantFacts<'static> {
        TenantFacts {
            id: "acme",
            v2_url: "https://my1.crm.cloud.sap",
        }
    }

    #[test]
    fn settings_read_from_the_tenants_keys_and_are_checked() {
        let settings: crate::adapters::TelephonySettings = serde_json::from_value(json!({
            "provider": "sip",
            "sip_server": "pbx.example.com",
            "sip_transport": "tcp",
            "sip_reps": {"alice@example.com": "sip:1001@pbx.example.com"},
            "sip_username": "cti-relay",
            "sip_password": "s3cret-relay",
        }))
        .expect("settings");
        assert!(settings.check(&facts()).is_ok());
        assert!(!format!("{settings:?}").contains("s3cret"));
        let crate::adapters::TelephonySettings::Sip(settings) = settings else {
            panic!("sip")
        };
        assert_eq!(settings.server(), ("pbx.example.com".to_string(), 5060));
        assert_eq!(settings.identity(), "sip:cti-relay@pbx.example.com");
        assert_eq!(settings.sip_expires, 600);

        let mut other = settings.clone();
        other.sip_server = "10.0.0.5:5080".into();
        assert_eq!(other.server(), ("10.0.0.5".to_string(), 5080));
        other.sip_server = "[::1]:5062".into();
        assert_eq!(other.server(), ("::1".to_string(), 5062));

        let mut bad = settings.clone();
        bad.sip_reps.insert("bob@example.com".into(), "1002".into());
        assert_eq!(bad.check(&facts()).expect_err("aor").var, "sip_reps");
        let mut bad = settings.clone();
        bad.sip_password = Secret::new("demo-sip-relay");
        assert_eq!(bad.check(&facts()).expect_err("demo").var, "sip_password");
        let mut bad = settings.clone();
        bad.sip_click_to_dial_url = Some("http://pbx.example.com/dial?to={number}".into());
        assert_eq!(
            bad.check(&facts()).expect_err("plain").var,
            "sip_click_to_dial_url"
        );
        bad.sip_click_to_dial_url =
            Some("https://pbx.example.com/dial?from={user}&to={number}".into());
        assert!(bad.check(&facts()).is_ok());
        let mut bad = settings.clone();
        bad.sip_expires = 5;
        assert_eq!(bad.check(&facts()).expect_err("expires").var, "sip_expires");
    }

    #[tokio::test]
    async fn click_to_dial_posts_the_pbxs_url_and_only_then_is_offered() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("a request");
            let mut request = vec![0u8; 4096];
            let n = stream.read(&mut request).await.expect("read");
            stream
                .write_all(
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await
                .expect("answered");
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let context = || Context {
            tenant: "acme".into(),
            http: reqwest::Client::new(),
            clock: Arc::new(crate::clock::SystemClock),
            forgets_before_ms: None,
        };
        let mut settings = Settings::demo("http://127.0.0.1:8090");
        let without = SipAdapter::new(settings.clone(), context());
        assert!(without.controls().is_empty());
        let refused = without.dial("alice@example.com", "+41441234567").await;
        assert!(
            matches!(refused, Err(CommandError::Rejected { status: 501, .. })),
            "{refused:?}"
        );
        settings.sip_click_to_dial_url = Some(format!(
            "http://127.0.0.1:{port}/dial?from={{user}}&to={{number}}"
        ));
        assert!(settings.check(&facts()).is_ok());
        let with = SipAdapter::new(settings, context());
        assert_eq!(with.controls(), [Control::Dial]);
        assert_eq!(
            with.dial("alice@example.com", "+41441234567")
                .await
                .expect("dialled"),
            None
        );
        let request = server.await.expect("served");
        assert!(
            request.starts_with("POST /dial?from=1001&to=%2B41441234567 HTTP/1.1"),
            "{request}"
        );
        let unknown = with.dial("nobody@example.com", "+41441234567").await;
        assert!(matches!(
            unknown,
            Err(CommandError::Rejected { status: 404, .. })
        ));
    }

    #[test]
    fn the_demo_account_only_reaches_a_local_server() {
        let demo = Settings::demo("http://127.0.0.1:8090");
        assert!(demo.check(&facts()).is_ok());
        assert_eq!(demo.identity(), "sip:cti-relay@pbx.test");
    }
}
