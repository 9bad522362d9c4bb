//! The simulator: everything the CTI talks to that cannot be reached from a developer machine.
//!
//! The relay never knows it talks to this crate: it is configured with URLs exactly as it would be
//! for a real SAP Sales Cloud V2 tenant, a real PBX and a real identity provider. The simulator
//! serves, on one port (default `127.0.0.1:8090`):
//!
//! - [`v2`]: the V2 REST API under `/sap/c4c/api/v1/...`, with V2's envelopes, query options,
//!   ETags, errors and rate limits, seeded with realistic demo data; `/sim/faults` to make it fail.
//! - [`pbx`]: a PBX that places calls (`/sim/calls`), sends signed normalized telephony events to
//!   the relay's generic webhook, and accepts the relay's call controls. It signs and checks with
//!   `cti_protocol::signature`, the contract's own definition of the header, not the relay's code.
//! - [`idp`]: an identity provider issuing RS256 agent tokens (`/sim/token`) and its JWKS.
//! - [`btp`]: the SAP BTP Destination service (and its token endpoint) with user propagation to
//!   the V2 tenant through an `OAuth2SAMLBearerAssertion` destination, and the client-credentials
//!   token the SaaS Provisioning service calls the relay's subscription callbacks with.
//! - [`xsuaa`]: XSUAA with identity zones, for the relay's own sign-in (authorization code).
//! - [`ias`]: SAP Cloud Identity Services for the reps' own V2 sign-in (authorization code with
//!   PKCE, rotating refresh tokens).
//! - [`ringcentral`]: a RingCentral account under `/sim/ringcentral` (OAuth, extensions,
//!   webhook subscriptions with their handshake, telephony sessions and call control).
//! - [`genesys`]: Genesys Cloud under `/sim/genesys` (OAuth, users, notification channels over a
//!   real WebSocket, call conversations and their controls).
//! - [`teams`]: a Microsoft Teams tenant under `/sim/teams` (Entra ID client credentials, Graph
//!   users, a calling bot's comms notifications signed by a simulated Bot Framework, call
//!   controls, callRecords subscriptions with their validation handshake).
//! - [`webex`]: Webex Calling under `/sim/webex` (OAuth refresh grant, people, `telephony_calls`
//!   webhooks signed with `X-Spark-Signature`, call control under `/v1/telephony/calls`).
//! - [`finesse`]: Cisco Finesse's REST API under `/sim/finesse` (XML, HTTP Basic), publishing its
//!   Dialog updates into a real XMPP server's pubsub the way Finesse's Openfire does; [`prosody`]
//!   starts that server (the Debian package) for the tests and the demo.
//! - [`asterisk`]: an Asterisk's Manager Interface (AMI) over TCP on its own port, replaying
//!   captured AMI traffic, with HTTP controls under `/sim/asterisk` to place and drive calls.
//! - [`freeswitch`]: a FreeSWITCH event socket (ESL) over TCP on its own port, with HTTP
//!   controls under `/sim/freeswitch`.
//! - [`sip`]: no simulator: the demo's SIP calls, placed with SIPp through a real Kamailio,
//!   under `/sim/sip`.
//! - [`host`]: the V2 host stand-in page that frames the widget, and the log of every CTI payload
//!   it received (`/sim/host/payloads`).
//!
//! The demo, the end-to-end tests and the benchmarks all drive the product through this crate.

pub mod asterisk;
pub mod btp;
pub mod config;
pub mod finesse;
pub mod freeswitch;
pub mod genesys;
pub mod help;
pub mod host;
pub mod ias;
pub mod idp;
mod oauth;
pub mod pbx;
pub mod pbx_controls;
pub mod prosody;
pub mod ringcentral;
pub mod sip;
pub mod teams;
pub mod v2;
pub mod webex;
pub mod xsuaa;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;

pub use config::SimConfig;

/// The simulator's shared state: one of each simulated system.
#[derive(Debug)]
pub struct Sim {
    pub config: SimConfig,
    pub v2: v2::Tenant,
    pub pbx: pbx::Pbx,
    pub idp: idp::Idp,
    pub host: host::HostLog,
    pub btp: btp::Btp,
    pub ias: ias::Ias,
    pub xsuaa: xsuaa::Xsuaa,
    pub ringcentral: ringcentral::RingCentral,
    pub genesys: genesys::Genesys,
    pub teams: teams::Teams,
    pub webex: webex::Webex,
    pub finesse: finesse::Finesse,
    pub asterisk: Arc<asterisk::Asterisk>,
    pub freeswitch: Arc<freeswitch::Freeswitch>,
    pub sip: sip::SipCalls,
}

impl Sim {
    pub fn new(config: SimConfig) -> Arc<Self> {
        Arc::new(Sim {
            v2: v2::Tenant::new(&config),
            pbx: pbx::Pbx::new(&config),
            idp: idp::Idp::new(&config),
            host: host::HostLog::default(),
            btp: btp::Btp::default(),
            ias: ias::Ias::default(),
            xsuaa: xsuaa::Xsuaa::default(),
            ringcentral: ringcentral::RingCentral::new(&config),
            genesys: genesys::Genesys::new(&config),
            teams: teams::Teams::new(&config),
            webex: webex::Webex::new(&config),
            finesse: finesse::Finesse::new(&config),
            asterisk: Arc::new(asterisk::Asterisk::new(&config)),
            freeswitch: Arc::new(freeswitch::Freeswitch::new(&config)),
            sip: sip::SipCalls::new(&config),
            config,
        })
    }
}

/// All routes of all simulated systems.
pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .merge(v2::routes())
        .merge(pbx::routes())
        .merge(idp::routes())
        .merge(host::routes())
        .merge(btp::routes())
        .merge(ias::routes())
        .merge(xsuaa::routes())
        .merge(ringcentral::routes())
        .merge(genesys::routes())
        .merge(teams::routes())
        .merge(webex::routes())
        .merge(finesse::routes())
        .merge(asterisk::routes())
        .merge(freeswitch::routes())
        .merge(sip::routes())
        .with_state(sim)
}

/// Starts the simulated providers that speak their own protocol on a port of their own (AMI),
/// on the ports their configuration names; needs a Tokio runtime.
pub fn listen_protocols(sim: &Arc<Sim>) -> std::io::Result<()> {
    if let Some(addr) = sim.config.asterisk_listen {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("the simulated Asterisk cannot listen on {addr}: {e}"),
            )
        })?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(asterisk::server::serve(listener, sim.asterisk.clone()));
    }
    if let Some(addr) = sim.config.freeswitch_listen {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("the simulated FreeSWITCH cannot listen on {addr}: {e}"),
            )
        })?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(freeswitch::server::serve(listener, sim.freeswitch.clone()));
    }
    Ok(())
}

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    pub addr: SocketAddr,
    pub sim: Arc<Sim>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// `http://<addr>`, the base URL to configure the relay with.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving; in-flight requests are dropped.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Binds `config.listen` (port 0 picks a free port) and serves in the background.
pub async fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    spawn_on(listener, config)
}

/// Serves on a listener bound beforehand, for set-ups where the relay must know the simulator's
/// address before the simulator's configuration is complete (and the other way round).
pub fn spawn_on(
    listener: tokio::net::TcpListener,
    config: SimConfig,
) -> std::io::Result<SimHandle> {
    let addr = listener.local_addr()?;
    let sim = Sim::new(config);
    listen_protocols(&sim)?;
    let app = router(sim.clone());
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "simulator stopped serving");
        }
    });
    Ok(SimHandle { addr, sim, task })
}
