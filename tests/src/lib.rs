//! The harness for tests that cross process boundaries: a relay and a simulator on loopback
//! ports chosen by the OS, a WebSocket client speaking the widget protocol, and headless Chromium
//! driven through chromedriver.
//!
//! Waiting is always on a condition with a deadline (a page showing a text, a payload arriving),
//! never a fixed sleep: these machines are slow and noisy, and a test must be as fast as the system
//! allows and fail with what it was waiting for.

pub mod browser;
pub mod index_bench;
pub mod kamailio;
pub mod pop_load;
pub mod prosody;
pub mod proxy;
pub mod push_load;
pub mod redis;
pub mod relay_process;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cti_protocol::ws::{CallCommand, ClientMessage};
use cti_relay::{AppState, Config, RelayHandle};
use cti_sim::{SimConfig, SimHandle};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// The relay's key for sealing reps' tokens in tests (32 bytes, base64).
pub const TEST_TOKEN_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// [`TEST_TOKEN_KEY`] as the relay's configuration holds it.
pub fn test_token_key() -> cti_relay::config::TokenKey {
    cti_relay::config::TokenKey::from_base64(TEST_TOKEN_KEY).expect("a 32-byte key")
}

/// Now in RFC 3339 (UTC, whole seconds): the `at` of an event a test's PBX sends now.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc().unix_timestamp())
}

fn rfc3339(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

thread_local! {
    /// How far [`recent`] moves a script's times on this thread (seconds).
    static SCRIPT_OFFSET: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// A test script's fixed event time (`2026-11-25T10:00:00Z`) moved to the present, since the
/// relay refuses events dated older than its replay window, as a PBX sending them now would date
/// them. The first time a thread asks (each test runs on a thread of its own), or once its
/// times have fallen two minutes behind the clock, the time asked for becomes now; later times
/// keep their distance from it, so one script's durations, and the times a test expects back,
/// come out as written (moved by the same amount). A test asks for its earliest time first.
pub fn recent(at: &str) -> String {
    let Ok(fixed) = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
    else {
        // Not a time: passed through, for tests of what the relay makes of that.
        return at.to_string();
    };
    let fixed = fixed.unix_timestamp();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let offset = SCRIPT_OFFSET.with(|cell| match cell.get() {
        Some(offset) if fixed + offset >= now - 120 => offset,
        _ => {
            cell.set(Some(now - fixed));
            now - fixed
        }
    });
    rfc3339(fixed + offset)
}

/// The reps an activity lists as its agents, in order.
pub fn agents_on(activity: &Value) -> Vec<String> {
    summary_line(activity, "Reps: ")
        .map(|reps| reps.split(", ").map(str::to_string).collect())
        .unwrap_or_default()
}

/// The relay's part of a phone call's `transcript` (between its markers), or "".
pub fn summary_of(activity: &Value) -> &str {
    let text = activity["transcript"].as_str().unwrap_or_default();
    let start = text.find(cti_relay::v2::phone_call::SUMMARY_START);
    let end = text.find(cti_relay::v2::phone_call::SUMMARY_END);
    match (start, end) {
        (Some(start), Some(end)) if start < end => &text[start..end],
        _ => "",
    }
}

/// The rest of the summary's line that starts with `label` (`"Outcome: "`).
pub fn summary_line<'a>(activity: &'a Value, label: &str) -> Option<&'a str> {
    summary_of(activity)
        .lines()
        .find_map(|line| line.strip_prefix(label))
}

/// The reps' notes in the summary.
pub fn notes_in(activity: &Value) -> Option<String> {
    let summary = summary_of(activity);
    let (_, notes) = summary.split_once("\nNotes:\n")?;
    Some(notes.trim_end().to_string())
}

/// Prints a benchmark's samples as `label: n=.. p50=.. p90=.. p99=.. max=..`.
pub fn print_percentiles(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "{label}: n={} p50={:?} p90={:?} p99={:?} max={:?}",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    );
}

/// How long any single wait may take before the test fails and says what it waited for.
/// The telephony a [`Stack`] rings through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Generic,
    Genesys,
    RingCentral,
    Teams,
    Webex,
    Finesse,
    Asterisk,
    Freeswitch,
    Sip,
}

impl Provider {
    /// Every simulated provider, for tests that run once per provider (a Finesse stack starts
    /// its own Prosody).
    pub const ALL: [Provider; 6] = [
        Provider::Generic,
        Provider::Genesys,
        Provider::RingCentral,
        Provider::Teams,
        Provider::Webex,
        Provider::Finesse,
    ];

    /// The relay's (and the simulator's) name of the provider.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Generic => "generic",
            Provider::Genesys => "genesys",
            Provider::RingCentral => "ringcentral",
            Provider::Teams => "teams",
            Provider::Webex => "webex",
            Provider::Finesse => "finesse",
            Provider::Asterisk => "asterisk",
            Provider::Freeswitch => "freeswitch",
            Provider::Sip => "sip",
        }
    }

    /// The tenant's settings for this provider's simulator at `sim_url`, for a relay at
    /// `relay_url` serving `tenant`.
    pub fn settings(
        self,
        sim_url: &str,
        relay_url: &str,
        tenant: &str,
    ) -> cti_relay::adapters::TelephonySettings {
        cti_relay::adapters::TelephonySettings::demo(self.name(), sim_url, relay_url, tenant)
            .unwrap_or_else(|| panic!("the relay has no simulated {}", self.name()))
    }

    /// The simulator's route that places this provider's calls (`{"from","agent"}` -> `{"call_id"}`).
    pub fn calls_path(self) -> &'static str {
        match self {
            Provider::Generic => "/sim/calls",
            Provider::Genesys => "/sim/genesys/calls",
            Provider::RingCentral => "/sim/ringcentral/calls",
            Provider::Teams => "/sim/teams/calls",
            Provider::Webex => "/sim/webex/calls",
            Provider::Finesse => "/sim/finesse/calls",
            Provider::Asterisk => "/sim/asterisk/calls",
            Provider::Freeswitch => "/sim/freeswitch/calls",
            // No simulator: calls are placed through the stack's Kamailio with SIPp.
            Provider::Sip => "/sim/sip/calls",
        }
    }
}

pub const PATIENCE: Duration = Duration::from_secs(30);

/// Where trunk put the widget: `CTI_WIDGET_DIST`, else the workspace's `widget/dist`.
pub fn widget_dist() -> PathBuf {
    std::env::var_os("CTI_WIDGET_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("widget/dist")
        })
}

/// Where trunk put the admin page: `CTI_ADMIN_DIST`, else the workspace's `admin/dist`.
pub fn admin_dist() -> PathBuf {
    std::env::var_os("CTI_ADMIN_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("admin/dist")
        })
}

/// A relay and a simulator wired to each other, as `cargo xtask demo` wires them.
#[derive(Debug)]
pub struct Stack {
    pub sim: SimHandle,
    pub relay: RelayHandle,
    pub http: reqwest::Client,
    /// The XMPP server a Finesse stack's notifications go through (started with the stack).
    pub prosody: Option<prosody::Prosody>,
    /// The SIP PBX a SIP stack's dialog events come from (started with the stack).
    pub kamailio: Option<kamailio::Kamailio>,
}

impl Stack {
    pub async fn start() -> Result<Stack> {
        Self::start_with(|_| {}).await
    }

    /// Starts both with the demo configuration, adjusted by `tweak` (e.g. a short hello timeout),
    /// and waits until the relay is ready.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Result<Stack> {
        let stack = Self::start_unready(tweak).await?;
        stack.wait_ready().await?;
        Ok(stack)
    }

    /// Starts both without waiting for readiness (for tests of a relay that cannot get ready).
    pub async fn start_unready(tweak: impl FnOnce(&mut Config)) -> Result<Stack> {
        Ok(Self::start_parts(|_| {}, tweak, false).await?.0)
    }

    /// Starts both with the demo tenant's calls coming through `provider`'s simulator over that
    /// provider's own protocol (the simulator's host page rings through it too), adjusted by
    /// `tweak`; ready when this returns.
    pub async fn start_through(
        provider: Provider,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Stack> {
        Self::start_through_with(provider, |_| {}, tweak).await
    }

    /// [`Stack::start_through`], with the simulator's configuration tweaked too (where its
    /// provider reaches a server the test started, such as Finesse's Prosody).
    pub async fn start_through_with(
        provider: Provider,
        sim_extra: impl FnOnce(&mut SimConfig),
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Stack> {
        // The simulator's settings the test asks for, known before its servers start.
        let mut extra = SimConfig::default();
        sim_extra(&mut extra);
        // Finesse's notifications need a real XMPP server: one for this stack.
        let prosody = match provider {
            Provider::Finesse => Some(prosody::Prosody::for_finesse(&extra).await?),
            _ => None,
        };
        // A SIP stack's calls go through a real Kamailio: one for this stack.
        let kamailio = match provider {
            Provider::Sip => Some(kamailio::Kamailio::start().await?),
            _ => None,
        };
        let sip_server = kamailio.as_ref().map(|k| (k.addr(), k.tls_addr()));
        let xmpp = prosody.as_ref().map(|p| (p.addr(), p.port));
        // A simulated PBX speaking its own protocol listens on a port of this stack's.
        let pbx_port = match provider {
            Provider::Asterisk | Provider::Freeswitch => {
                Some(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
            }
            _ => None,
        };
        let sim_tweak = |sim: &mut SimConfig| {
            *sim = SimConfig {
                listen: sim.listen,
                relay_url: sim.relay_url.clone(),
                relay_public_url: sim.relay_public_url.clone(),
                ..extra
            };
            if let Some((addr, _)) = &xmpp {
                sim.finesse_xmpp = Some(addr.clone());
            }
            match provider {
                Provider::Asterisk => sim.asterisk_listen = pbx_port,
                Provider::Freeswitch => sim.freeswitch_listen = pbx_port,
                Provider::Sip => {
                    // The host page's SIP calls: SIPp callers through this stack's Kamailio.
                    sim.sip_proxy = sip_server.as_ref().and_then(|(addr, _)| addr.parse().ok());
                    sim.sipp_scenarios = Some(kamailio::scenario("."));
                }
                _ => {}
            }
            sim.providers = vec![cti_sim::config::DemoProvider {
                name: provider.name().into(),
                tenant: "demo".into(),
            }];
        };
        let configure = |config: &mut Config| {
            let sim_url = config.tenants[0].v2_url.clone();
            let relay_url = format!("http://{}", config.listen);
            config.tenants[0].telephony = provider.settings(&sim_url, &relay_url, "demo");
            if let (Some((_, port)), cti_relay::adapters::TelephonySettings::Finesse(settings)) =
                (&xmpp, &mut config.tenants[0].telephony)
            {
                settings.finesse_xmpp_port = *port;
            }
            if let (Some(addr), cti_relay::adapters::TelephonySettings::Asterisk(settings)) =
                (pbx_port, &mut config.tenants[0].telephony)
            {
                settings.asterisk_port = addr.port();
            }
            if let (Some(addr), cti_relay::adapters::TelephonySettings::Freeswitch(settings)) =
                (pbx_port, &mut config.tenants[0].telephony)
            {
                settings.freeswitch_port = addr.port();
            }
            tweak(config);
            // The relay reaches the stack's Kamailio over the transport the test picked.
            if let (
                Some((server, tls_server)),
                cti_relay::adapters::TelephonySettings::Sip(settings),
            ) = (&sip_server, &mut config.tenants[0].telephony)
            {
                if settings.sip_transport == cti_relay::adapters::sip::Transport::Tls {
                    settings.sip_server = tls_server.clone();
                    settings.sip_tls_ca_pem = kamailio::test_ca_pem().ok();
                } else {
                    settings.sip_server = server.clone();
                }
            }
        };
        let (mut stack, _) = Self::start_parts(sim_tweak, configure, false).await?;
        stack.prosody = prosody;
        stack.kamailio = kamailio;
        stack.wait_ready().await?;
        Ok(stack)
    }

    /// Starts both with browsers reaching the relay (widget files and WebSocket) through a
    /// [`proxy::FaultyProxy`] the test controls, as they would through a corporate proxy.
    pub async fn start_behind_proxy(
        tweak: impl FnOnce(&mut Config),
    ) -> Result<(Stack, proxy::FaultyProxy)> {
        let (stack, proxy) = Self::start_parts(|_| {}, tweak, true).await?;
        stack.wait_ready().await?;
        Ok((stack, proxy.context("the proxy")?))
    }

    async fn start_parts(
        sim_tweak: impl FnOnce(&mut SimConfig),
        tweak: impl FnOnce(&mut Config),
        behind_proxy: bool,
    ) -> Result<(Stack, Option<proxy::FaultyProxy>)> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("CTI_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let sim_listener = TcpListener::bind("127.0.0.1:0").await?;
        let relay_listener = TcpListener::bind("127.0.0.1:0").await?;
        let sim_url = format!("http://{}", sim_listener.local_addr()?);
        let relay_url = format!("http://{}", relay_listener.local_addr()?);
        let proxy = match behind_proxy {
            true => Some(proxy::FaultyProxy::start(relay_listener.local_addr()?).await?),
            false => None,
        };
        let public_url = proxy
            .as_ref()
            .map_or_else(|| relay_url.clone(), |p| p.url());

        let mut sim_config = SimConfig {
            relay_url: relay_url.clone(),
            relay_public_url: public_url,
            ..SimConfig::default()
        };
        sim_tweak(&mut sim_config);
        let sim = cti_sim::spawn_on(sim_listener, sim_config)?;
        let mut config = Config::demo(&sim_url);
        config.listen = relay_listener.local_addr()?;
        config.widget_dir = widget_dist();
        config.admin_dir = admin_dist();
        tweak(&mut config);
        let state = AppState::from_config(config).await?;
        let relay = cti_relay::spawn_on(relay_listener, state)?;
        let stack = Stack {
            sim,
            relay,
            http: reqwest::Client::builder().timeout(PATIENCE).build()?,
            prosody: None,
            kamailio: None,
        };
        Ok((stack, proxy))
    }

    /// Stops the relay as a deployment does (widgets are told to reconnect); the address stays
    /// reserved for [`Stack::start_relay_again`].
    pub async fn stop_relay(&mut self) {
        self.relay.stop().await;
    }

    /// Kills the relay the way a crash does: no goodbye to widgets, no draining, background work
    /// cut wherever it was. The address stays reserved for [`Stack::start_relay_again`].
    ///
    /// In one process the dead relay's open connections would live on (they are tasks of their
    /// own); the test's HTTP client forgets them, as a client of a crashed process would.
    pub fn crash_relay(&mut self) {
        self.relay.abort();
        self.forget_connections();
    }

    /// A fresh HTTP client: kept-alive connections to a relay process that was replaced would
    /// otherwise still reach it (in one test process, its connection tasks outlive it).
    fn forget_connections(&mut self) {
        self.http = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .unwrap_or_default();
    }

    /// The phone-call activities V2 holds for a call (found the way the relay finds them).
    pub async fn activities(&self, call_id: &str) -> Result<Vec<Value>> {
        let reference = cti_protocol::host::external_reference(call_id);
        let filter = format!("externalId/displayId eq '{reference}'");
        let path = format!(
            "phone-service/phoneCalls?$filter={}",
            filter.replace(' ', "%20").replace('\'', "%27")
        );
        let (status, body) = self.v2(reqwest::Method::GET, &path, None).await?;
        if status != 200 {
            bail!("listing phone calls answered {status}: {body}");
        }
        Ok(body["value"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until V2 holds an activity for the call that satisfies `check`; fails if there is
    /// ever more than one.
    pub async fn wait_activity(
        &self,
        call_id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let found = eventually(&format!("the activity of {call_id} {what}"), || async {
            let found = self.activities(call_id).await.ok()?;
            if found.len() > 1 {
                return Some(Err(found.len()));
            }
            found.into_iter().find(|a| check(a)).map(Ok)
        })
        .await?;
        found.map_err(|n| anyhow::anyhow!("{call_id} was logged {n} times"))
    }

    /// Sets a fault on the simulated V2 API (`POST /sim/faults`).
    pub async fn v2_fault(&self, fault: &Value) -> Result<()> {
        let response = self
            .http
            .post(format!("{}/sim/faults", self.sim.url()))
            .json(fault)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("setting the fault failed: {}", response.text().await?);
        }
        Ok(())
    }

    /// A new relay process on the same address with another configuration, ready when this
    /// returns.
    pub async fn start_relay_with(&mut self, config: Config) -> Result<()> {
        let addr = self.relay.addr;
        let listener = eventually("the relay's port to be free again", || async {
            TcpListener::bind(addr).await.ok()
        })
        .await?;
        let mut config = config;
        config.listen = addr;
        let state = AppState::from_config(config).await?;
        self.relay = cti_relay::spawn_on(listener, state)?;
        self.forget_connections();
        self.wait_ready().await
    }

    /// Restarts the relay with the demo tenant writing activities on each rep's own V2 sign-in
    /// (`oauth2` mode), at the simulator's identity provider.
    pub async fn use_own_v2_sign_in(&mut self) -> Result<()> {
        let sim = self.sim.url();
        let mut config = self.relay.state.config.clone();
        config.tenants[0].auth = cti_relay::config::AuthMode::OAuth2;
        config.tenants[0].oauth = Some(cti_relay::config::OAuthSettings {
            authorize_url: format!("{sim}/sim/ias/oauth2/authorize"),
            token_url: format!("{sim}/sim/ias/oauth2/token"),
            client_id: "cti-relay-v2".into(),
            client_secret: None,
            scope: "openid offline_access".into(),
            issuer: None,
            jwks_url: None,
        });
        config.token_key = Some(test_token_key());
        self.stop_relay().await;
        self.start_relay_with(config).await
    }

    /// Restarts the relay with the demo tenant writing activities as each rep through the BTP
    /// Destination service (`sscDestination`), bound to the simulator's BTP services (known
    /// only once the simulator listens, as after a `cf bind-service`); `tweak` adds to that.
    pub async fn use_btp_destination(&mut self, tweak: impl FnOnce(&mut Config)) -> Result<()> {
        let sim = self.sim.url();
        let mut config = self.relay.state.config.clone();
        config.tenants[0].auth = cti_relay::config::AuthMode::Destination {
            name: "sscDestination".into(),
        };
        config.destination = Some(cti_relay::config::DestinationConfig {
            uri: format!("{sim}/sim/btp"),
            token_url: format!("{sim}/sim/btp/oauth/token"),
            client_id: "cti-destination".into(),
            client_secret: cti_relay::secret::Secret::new("demo-destination-secret"),
        });
        tweak(&mut config);
        self.stop_relay().await;
        self.start_relay_with(config).await
    }

    /// A new relay process on the same address and configuration (stores in memory start empty;
    /// with Redis they carry over), ready when this returns.
    pub async fn start_relay_again(&mut self) -> Result<()> {
        let config = self.relay.state.config.clone();
        let addr = self.relay.addr;
        let listener = eventually("the relay's port to be free again", || async {
            TcpListener::bind(addr).await.ok()
        })
        .await?;
        let state = AppState::from_config(config).await?;
        self.relay = cti_relay::spawn_on(listener, state)?;
        self.forget_connections();
        self.wait_ready().await
    }

    /// Rings `agent` from `from` through `provider`'s simulator (`POST <calls_path>`): the
    /// call's id, once the simulator answered 201 (each simulator says when that is: the generic
    /// PBX and RingCentral after the relay took the ring).
    pub async fn ring_through(
        &self,
        provider: Provider,
        from: &str,
        agent: &str,
    ) -> Result<String> {
        let response = self
            .http
            .post(format!("{}{}", self.sim.url(), provider.calls_path()))
            .json(&serde_json::json!({"from": from, "agent": agent}))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if status != 201 {
            bail!(
                "ringing through {} failed: {status} {body}",
                provider.name()
            );
        }
        body["call_id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no call_id in {body}"))
    }

    /// The caller of `call` hangs up on `provider`'s simulator.
    pub async fn hang_up_through(&self, provider: Provider, call: &str) -> Result<()> {
        self.http
            .post(format!(
                "{}{}/{call}/hangup",
                self.sim.url(),
                provider.calls_path()
            ))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Until the relay's index is built (it crawls the simulated tenant at start-up).
    pub async fn wait_ready(&self) -> Result<()> {
        let url = format!("{}/readyz", self.relay.url());
        eventually("the relay to become ready", || async {
            let response = self.http.get(&url).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await
    }

    pub fn token(&self, agent: &str) -> String {
        self.sim.sim.idp.issue(agent, "demo", 3600)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/agent/ws", self.relay.addr)
    }

    /// Places an inbound call through the simulated PBX; returns its call id.
    pub async fn place_call(&self, from: &str, agent: &str) -> Result<String> {
        let response = self
            .http
            .post(format!("{}/sim/calls", self.sim.url()))
            .json(&serde_json::json!({"from": from, "agent": agent}))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("placing a call failed: {status} {body}");
        }
        body["call_id"]
            .as_str()
            .map(str::to_string)
            .context("no call_id in /sim/calls answer")
    }

    /// Puts a call in talk for the rep whose widget is `ws`: places it from `from` through the
    /// simulated PBX, waits for it to ring there, answers it and waits for it to connect. Most
    /// call-control stories start from such a call; a failure names the step that did not happen.
    pub async fn talking(&self, ws: &mut WsClient, from: &str, rep: &str) -> Result<AnsweredCall> {
        let id = self.place_call(from, rep).await?;
        let ringing = ws
            .recv_call(&id, &format!("{id} to ring for {rep}"), |c| {
                c["state"] == "ringing"
            })
            .await?;
        ws.answer(&id).await?;
        Ok(AnsweredCall { id, ringing })
    }

    /// Every CTI payload the host stand-in pages received.
    pub async fn host_payloads(&self) -> Result<Vec<Value>> {
        let body: Value = self
            .http
            .get(format!("{}/sim/host/payloads", self.sim.url()))
            .send()
            .await?
            .json()
            .await?;
        Ok(body.as_array().cloned().unwrap_or_default())
    }

    /// A seeded caller whose number belongs to exactly one record: (number as dialled, E.164,
    /// the record's name).
    pub fn single_match_caller(&self) -> Result<(String, String, String)> {
        let region = cti_relay::numbers::DefaultRegion::parse("CH")?;
        for caller in self.sim.sim.v2.sample_callers() {
            let Ok(n) = cti_relay::numbers::normalize(&caller.number, &region) else {
                continue;
            };
            let owners = self.sim.sim.v2.lookup_phone(&n.e164);
            if let [only] = owners.as_slice() {
                return Ok((caller.number.clone(), n.e164, only.name.clone()));
            }
        }
        bail!("the simulator offers no sample caller that matches exactly one record")
    }

    /// The relay's `/readyz` answer.
    pub async fn readyz(&self) -> Result<Value> {
        Ok(self
            .http
            .get(format!("{}/readyz", self.relay.url()))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Posts a body to the demo tenant's generic webhook, signed with its secret; the status.
    pub async fn post_event(&self, body: &str) -> Result<u16> {
        let signed = cti_sim::pbx::sign_now("demo-webhook-secret", body.as_bytes());
        let response = self
            .http
            .post(format!(
                "{}/v1/tenants/demo/telephony/generic",
                self.relay.url()
            ))
            .header("content-type", "application/json")
            .header("x-cti-timestamp", signed.0)
            .header("x-cti-signature", signed.1)
            .body(body.to_string())
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// The relay's own V2 client for the simulated tenant, with the demo tenant's technical user:
    /// for tests that call the relay's V2-facing code directly.
    pub fn v2_client(&self) -> cti_relay::v2::V2Client {
        cti_relay::v2::V2Client::new(
            &self.sim.url(),
            cti_relay::v2::client::V2Auth::Basic {
                user: "demo".into(),
                password: cti_relay::secret::Secret::new("demo"),
            },
            Duration::from_secs(30),
        )
    }

    /// Sends a request to the simulated V2 API with the demo tenant's credentials; the status
    /// and the JSON body (null when there is none).
    pub async fn v2(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}/sap/c4c/api/v1/{path}", self.sim.url()))
            .basic_auth("demo", Some("demo"))
            .header("If-Match", "*");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("V2 answered {status}: {text}"))?
        };
        Ok((status, json))
    }

    /// The CTI payloads the host pages received for `call_id`, in order: those of its first
    /// leg (under the reference V2 takes for the id) and the pops and answers of the legs that
    /// continue it (a transfer names it as the original).
    pub async fn host_actions(&self, call_id: &str) -> Result<Vec<HostPayload>> {
        let reference = cti_protocol::host::external_reference(call_id);
        Ok(self
            .host_payloads()
            .await?
            .into_iter()
            .filter(|p| {
                p["payload"]["ExternalReferenceID"] == reference
                    || p["payload"]["ExternalOriginalReferenceID"] == reference
            })
            .map(|entry| HostPayload {
                action: entry["payload"]["Action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                page_id: entry["page_id"].as_str().unwrap_or_default().to_string(),
                entry,
            })
            .collect())
    }

    /// Waits until a host page received `action` for `call_id`; the payload's log entry.
    pub async fn wait_host_action(&self, call_id: &str, action: &str) -> Result<Value> {
        eventually(
            &format!("the host to receive {action} for {call_id}"),
            || async {
                self.host_actions(call_id)
                    .await
                    .ok()?
                    .into_iter()
                    .find(|p| p.action == action)
                    .map(|p| p.entry)
            },
        )
        .await
    }

    /// Just the actions (`NOTIFY`, `ACCEPT`, `END`) the host pages received for `call_id`.
    pub async fn host_action_names(&self, call_id: &str) -> Result<Vec<String>> {
        Ok(self
            .host_actions(call_id)
            .await?
            .into_iter()
            .map(|p| p.action)
            .collect())
    }

    /// A seeded main line shared by an account and some of its contacts, with the account:
    /// (E.164, the account record). `skip` filters accounts out (e.g. those a rep owns).
    pub fn shared_main_line(&self, skip: impl Fn(&Value) -> bool) -> Result<(String, Value)> {
        self.sim
            .sim
            .v2
            .records("accounts")
            .into_iter()
            .filter(|account| !skip(account))
            .find_map(|account| {
                let number = account["defaultCommunication"]["phoneNormalisedNumber"]
                    .as_str()?
                    .to_string();
                (self.sim.sim.v2.lookup_phone(&number).len() >= 2).then_some((number, account))
            })
            .context("the seeded tenant has no shared main line")
    }

    /// Another relay instance of the same deployment (same configuration and stores).
    pub async fn spawn_another_relay(&self) -> Result<RelayHandle> {
        let mut config = self.relay.state.config.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        config.listen = listener.local_addr()?;
        let state = AppState::from_config(config).await?;
        let relay = cti_relay::spawn_on(listener, state)?;
        let url = format!("{}/readyz", relay.url());
        eventually("the other relay to become ready", || async {
            let response = self.http.get(&url).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await?;
        Ok(relay)
    }

    pub async fn metrics(&self) -> Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.relay.url()))
            .send()
            .await?
            .text()
            .await?)
    }
}

/// Polls `check` until it yields a value or [`PATIENCE`] runs out.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {PATIENCE:?} waiting for {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A widget-protocol client over a real WebSocket.
pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WsClient")
    }
}

/// What the relay sent: a JSON message, or the close frame's code and reason.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Json(Value),
    Closed(u16, String),
}

impl WsClient {
    pub async fn connect(url: &str) -> Result<WsClient> {
        let (stream, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(WsClient { stream })
    }

    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.stream.send(Message::Text(text.into())).await?;
        Ok(())
    }

    pub async fn send_json(&mut self, value: &Value) -> Result<()> {
        self.send_text(&value.to_string()).await
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .send(Message::Binary(bytes.to_vec().into()))
            .await?;
        Ok(())
    }

    /// The next message or close, within [`PATIENCE`].
    pub async fn recv(&mut self) -> Result<Received> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .context("timed out waiting for a WebSocket message")?;
            match next {
                None => return Ok(Received::Closed(1006, "stream ended".into())),
                Some(Err(err)) => bail!("WebSocket error: {err}"),
                Some(Ok(Message::Text(text))) => {
                    return Ok(Received::Json(serde_json::from_str(&text)?));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(frame.map_or(Received::Closed(1005, String::new()), |f| {
                        Received::Closed(f.code.into(), f.reason.to_string())
                    }));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn recv_json(&mut self) -> Result<Value> {
        match self.recv().await? {
            Received::Json(value) => Ok(value),
            Received::Closed(code, reason) => bail!("closed with {code}: {reason}"),
        }
    }

    /// Skips messages until one satisfies `pred`.
    pub async fn recv_until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        loop {
            let value = self
                .recv_json()
                .await
                .with_context(|| format!("waiting for {what}"))?;
            if pred(&value) {
                return Ok(value);
            }
        }
    }

    /// Skips messages until a `call` message for `call_id` whose call view satisfies `check`: the
    /// rep's other calls and the relay's other pushes come on the same socket in any order.
    pub async fn recv_call(
        &mut self,
        call_id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        self.recv_until(what, |m| {
            m["type"] == "call" && m["call"]["id"] == call_id && check(&m["call"])
        })
        .await
    }

    /// Sends a call control as the widget's buttons do, built from the protocol's own type so the
    /// frame is what a widget sends.
    pub async fn command(&mut self, call_id: &str, command: CallCommand) -> Result<()> {
        let message = ClientMessage::Command {
            call_id: call_id.to_string(),
            command,
        };
        self.send_json(&serde_json::to_value(&message)?).await
    }

    /// Answers a call ringing here and waits until it is connected; the connected message.
    pub async fn answer(&mut self, call_id: &str) -> Result<Value> {
        self.command(call_id, CallCommand::Answer).await?;
        self.recv_call(call_id, &format!("{call_id} to connect"), |c| {
            c["state"] == "connected"
        })
        .await
    }

    /// Connects and signs in; returns the client and the welcome message.
    pub async fn signed_in(
        stack: &Stack,
        agent: &str,
        last_seq: Option<u64>,
    ) -> Result<(WsClient, Value)> {
        Self::signed_in_at(stack, &stack.ws_url(), agent, last_seq).await
    }

    /// [`WsClient::signed_in`] to another relay instance (`ws://.../v1/agent/ws`).
    pub async fn signed_in_at(
        stack: &Stack,
        url: &str,
        agent: &str,
        last_seq: Option<u64>,
    ) -> Result<(WsClient, Value)> {
        let mut client = WsClient::connect(url).await?;
        client
            .send_json(&serde_json::json!({"type":"hello","token": stack.token(agent), "last_seq": last_seq}))
            .await?;
        let welcome = client.recv_json().await?;
        if welcome["type"] != "welcome" {
            bail!("expected welcome, got {welcome}");
        }
        Ok((client, welcome))
    }
}

/// A call a rep has answered, from [`Stack::talking`].
#[derive(Debug, Clone)]
pub struct AnsweredCall {
    pub id: String,
    /// The `call` message the rep's widget got when the call rang: the record popped before the
    /// rep picked up.
    pub ringing: Value,
}

/// One CTI payload a host page received.
#[derive(Debug, Clone)]
pub struct HostPayload {
    pub action: String,
    pub page_id: String,
    /// The log entry: `{"page_id", "payload", "ani_ok", ...}`.
    pub entry: Value,
}

/// Shared handle type for tests that keep the stack across awaits in spawned tasks.
pub type SharedStack = Arc<Stack>;
