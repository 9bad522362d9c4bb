//! How the simulator is set up: which relay its PBX talks to and how its V2 tenant behaves.

use std::net::SocketAddr;

/// Every knob of the simulator. `Default` is the demo: the relay on `127.0.0.1:8080`, tenant
/// `demo`, Basic `demo`/`demo`, the demo rep `alice@example.com`.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where the simulator listens (`127.0.0.1:8090`; port 0 for tests).
    pub listen: SocketAddr,
    /// The relay base URL the simulated PBX posts events to (`http://127.0.0.1:8080`).
    pub relay_url: String,
    /// The relay base URL as a browser reaches it (for the host page's widget iframe).
    pub relay_public_url: String,
    /// The CTI tenant id the PBX posts for and the identity provider puts in tokens (`zid`).
    pub tenant: String,
    /// The HMAC secret shared with the relay for webhooks and call controls.
    pub webhook_secret: String,
    /// Basic-auth user and password of the V2 API.
    pub v2_user: String,
    pub v2_password: String,
    /// The rep calls go to when `/sim/calls` names none.
    pub demo_agent: String,
    /// The demo rep's own number (the `to` of inbound calls by default).
    pub demo_agent_number: String,
    /// Requests the V2 API serves before answering 429 with Retry-After (None: unlimited).
    pub request_budget: Option<u64>,
    /// Seed of the demo data generator, so data is the same on every run.
    pub seed: u64,
    /// How many accounts, contacts and individual customers to generate (each).
    pub records: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            relay_url: "http://127.0.0.1:8080".into(),
            relay_public_url: "http://127.0.0.1:8080".into(),
            tenant: "demo".into(),
            webhook_secret: "demo-webhook-secret".into(),
            v2_user: "demo".into(),
            v2_password: "demo".into(),
            demo_agent: "alice@example.com".into(),
            demo_agent_number: "+41 44 999 00 00".into(),
            request_budget: None,
            seed: 42,
            records: 320,
        }
    }
}
