//! Calls through a real SIP PBX for the demo, under `/sim/sip`: nothing here plays the PBX.
//! The demo's PBX is a real Kamailio (`deploy/kamailio/kamailio.cfg`) and its phones are SIPp
//! (Debian's `sip-tester`) registered by `cargo xtask demo`; the relay reads Kamailio's own
//! dialog-event NOTIFYs. This module only places a caller: a SIPp running the repository's
//! `demo-call.xml` scenario against Kamailio (`SIM_SIP_PROXY`), from the scenario directory
//! `SIM_SIPP_SCENARIOS`. The phones answer by themselves (SIP gives no remote answer), and
//! hanging up is the caller's BYE, triggered by a SIP INFO this module sends to its own SIPp
//! (the scenario waits for it while the call is up).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;

use crate::Sim;
use crate::config::SimConfig;

/// The SIP domain of the demo's addresses of record (the relay's `sip::DEMO_DOMAIN`).
pub const DOMAIN: &str = "pbx.test";

/// The demo's reps and their extensions (the relay's `sip::DEMO_REPS`).
pub const REPS: [(&str, &str); 2] = [("alice@example.com", "1001"), ("bob@example.com", "1002")];

/// SIPp, from Debian's `sip-tester`.
const SIPP: &str = "/usr/bin/sipp";

/// The caller's scenario in `SIM_SIPP_SCENARIOS`.
const CALL_SCENARIO: &str = "demo-call.xml";

/// One caller placed through the PBX: its SIPp, and the port it listens on for the INFO that
/// makes it hang up.
#[derive(Debug)]
struct Caller {
    port: u16,
}

/// The demo's callers, by call id (the SIP Call-ID they use).
#[derive(Debug, Default)]
pub struct SipCalls {
    proxy: Option<SocketAddr>,
    scenarios: Option<PathBuf>,
    calls: Mutex<HashMap<String, Caller>>,
}

#[derive(Debug)]
struct SipError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for SipError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> SipError {
    SipError {
        status,
        message: message.into(),
    }
}

impl SipCalls {
    pub fn new(config: &SimConfig) -> Self {
        SipCalls {
            proxy: config.sip_proxy,
            scenarios: config.sipp_scenarios.clone(),
            calls: Mutex::default(),
        }
    }

    /// The extension of a demo rep, or an extension given as such.
    fn extension(agent: &str) -> Option<&str> {
        REPS.iter()
            .find(|(rep, ext)| rep.eq_ignore_ascii_case(agent) || *ext == agent)
            .map(|(_, ext)| *ext)
    }

    /// `from` rings `agent`'s phone through the PBX; the call id is the caller's Call-ID.
    fn ring(&self, from: &str, agent: &str) -> Result<String, SipError> {
        let (Some(proxy), Some(scenarios)) = (self.proxy, self.scenarios.as_ref()) else {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no SIP PBX configured (SIM_SIP_PROXY and SIM_SIPP_SCENARIOS)",
            ));
        };
        let ext = Self::extension(agent)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no SIP phone for {agent}")))?;
        let port = free_udp_port()
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, format!("no port: {e}")))?;
        let call_id = format!("{}@cti-sim", uuid::Uuid::new_v4());
        let child = Command::new(SIPP)
            .arg(proxy.to_string())
            .arg("-sf")
            .arg(scenarios.join(CALL_SCENARIO))
            .args(["-s", ext, "-key", "caller", from, "-key", "domain", DOMAIN])
            .args(["-cid_str", &call_id])
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", "1", "-nostdin", "-timeout", "3600s"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot start {SIPP}: {e}"),
                )
            })?;
        self.calls.lock().insert(call_id.clone(), Caller { port });
        reap(child, call_id.clone());
        Ok(call_id)
    }

    /// The calls placed and not hung up through this module, by id.
    pub fn call_ids(&self) -> Vec<String> {
        self.calls.lock().keys().cloned().collect()
    }

    /// The caller hangs up: its SIPp gets the INFO its scenario waits for and sends BYE.
    fn hang_up(&self, id: &str) -> Result<(), SipError> {
        let port = self
            .calls
            .lock()
            .remove(id)
            .map(|caller| caller.port)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no call {id}")))?;
        let socket = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let local = socket
            .local_addr()
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let info = format!(
            "INFO sip:caller@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:cti-sim@127.0.0.1>;tag=cti-sim\r\n\
             To: <sip:caller@127.0.0.1>\r\n\
             Call-ID: {id}\r\n\
             CSeq: 1 INFO\r\n\
             Content-Length: 0\r\n\r\n",
            branch = uuid::Uuid::new_v4().simple(),
        );
        socket
            .send_to(info.as_bytes(), ("127.0.0.1", port))
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        Ok(())
    }
}

/// Waits for a caller's SIPp on a thread of its own (no zombie), logging how it ended.
fn reap(mut child: Child, call_id: String) {
    std::thread::spawn(move || match child.wait() {
        Ok(status) if status.success() => tracing::info!(%call_id, "SIP caller finished"),
        Ok(status) => tracing::warn!(%call_id, %status, "SIP caller failed"),
        Err(e) => tracing::warn!(%call_id, error = %e, "SIP caller lost"),
    });
}

fn free_udp_port() -> std::io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

type Sh = State<Arc<Sim>>;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/sip/calls", post(ring))
        .route("/sim/sip/calls/{id}/hangup", post(hang_up))
        .route("/sim/sip/calls/{id}/answer", post(answer))
}

#[derive(Debug, Deserialize)]
struct RingRequest {
    from: String,
    agent: Option<String>,
}

/// A customer calls `agent` (a demo rep's e-mail or extension; the demo rep by default).
async fn ring(State(sim): Sh, body: String) -> Response {
    let request: RingRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")).into_response();
        }
    };
    // The number becomes a SIP URI's user part and a SIPp argument: digits and a leading `+`,
    // without the separators people type.
    let from: String = request
        .from
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '/'))
        .collect();
    if from.is_empty()
        || from.len() > 32
        || !from
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 0 && c == '+'))
    {
        return error(StatusCode::BAD_REQUEST, "from must be a phone number").into_response();
    }
    let agent = request
        .agent
        .unwrap_or_else(|| sim.config.demo_agent.clone());
    match sim.sip.ring(&from, &agent) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"call_id": id}))).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn hang_up(State(sim): Sh, Path(id): Path<String>) -> Response {
    match sim.sip.hang_up(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// SIP has no remote answer: the rep's phone answers by itself.
async fn answer(Path(_id): Path<String>) -> Response {
    error(
        StatusCode::CONFLICT,
        "SIP calls are answered on the rep's phone (the demo's phones answer by themselves)",
    )
    .into_response()
}
