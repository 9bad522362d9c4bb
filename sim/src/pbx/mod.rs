//! A simulated PBX speaking the relay's generic provider contract both ways: it posts signed
//! events to the relay's webhook and takes the relay's signed call controls. The contract itself
//! (event body, `X-CTI-Signature`, the commands and the events that confirm them) is the README's
//! "Public contract" section; this module is one implementation of it, the way an integrator's PBX
//! would be.
//!
//! What a real switch would decide, the simulator decides like this: it answers a command with
//! `202 {"accepted":true}` as soon as it takes it and confirms it only through events; it refuses
//! with 401 (signature), 400 (not a command), 404 (unknown call) or 409 (a command the call's
//! state does not allow: hold while ringing, anything after the end, a rep who no longer holds the
//! call). Its own controls: `POST /sim/calls` places an inbound call and answers once the relay
//! accepted the `ringing` event, so a test that got its `call_id` knows the relay has the call;
//! `POST /sim/calls/{id}/hangup` is the caller hanging up; `GET /sim/calls` lists every call.
//!
//! Inside: `call` is one call's state machine, `delivery` gets its events to the relay in order,
//! `http` is the routes; this file holds the calls and the operations on them.

mod call;
mod delivery;
mod http;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cti_protocol::event::{Direction, EndReason, EventType};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::mpsc;

use crate::SimConfig;
use call::Call;
use delivery::{Counters, RelayLink, run_queue};

pub use call::{CallInfo, LegState};
pub use delivery::DeliveryError;
pub use http::{PbxError, routes};

/// Tests and benchmarks sign the webhooks they post by hand under the simulator's name.
pub use cti_protocol::signature::sign;

/// Unix seconds now: the time the PBX signs with and checks the relay's signatures against.
pub fn now_secs() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

/// The `X-CTI-Timestamp` and `X-CTI-Signature` values for `body` signed now, for tests and
/// benchmarks that post to the relay's webhook by hand.
pub fn sign_now(secret: &str, body: &[u8]) -> (String, String) {
    let now = now_secs();
    (now.to_string(), sign(secret, now, body))
}

/// Longest number, agent or target the PBX takes; real ones are far shorter.
const MAX_FIELD_LEN: usize = 256;

/// A phone number for log lines: every digit but the last four replaced, so logs can tell calls
/// apart without holding anyone's number.
pub fn mask_number(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if digits - seen >= 4 { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    // Milliseconds are all a call log needs, and keep timestamps short.
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The simulated PBX: its calls and its link to the relay.
#[derive(Debug)]
pub struct Pbx {
    link: Arc<RelayLink>,
    default_to: String,
    default_agent: String,
    calls: Mutex<HashMap<String, Call>>,
    created: AtomicU64,
    /// Nonces of the relay's control requests still inside the signature window, with their
    /// signing time: a repeat is a replay.
    nonces: Mutex<HashMap<String, u64>>,
}

impl Pbx {
    pub fn new(config: &SimConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let events_url = format!(
            "{}/v1/tenants/{}/telephony/generic",
            config.relay_url.trim_end_matches('/'),
            config.tenant
        );
        Pbx {
            link: Arc::new(RelayLink {
                http,
                events_url,
                secret: config.webhook_secret.clone(),
            }),
            default_to: config.demo_agent_number.clone(),
            default_agent: config.demo_agent.clone(),
            calls: Mutex::new(HashMap::new()),
            created: AtomicU64::new(0),
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a control request's nonce once: false when it was seen within the window. Nonces
    /// older than the window are forgotten, since their signatures are refused as stale anyway.
    pub(crate) fn first_use(&self, nonce: &str, signed_at: u64, now: u64) -> bool {
        let window = cti_protocol::signature::WINDOW_SECS;
        let mut nonces = self.nonces.lock();
        nonces.retain(|_, at| at.saturating_add(window) >= now);
        if nonces.contains_key(nonce) {
            return false;
        }
        nonces.insert(nonce.to_string(), signed_at);
        true
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Call>> {
        self.calls.lock()
    }

    /// Every call, oldest first.
    pub fn calls(&self) -> Vec<CallInfo> {
        let calls = self.lock();
        let mut list: Vec<&Call> = calls.values().collect();
        list.sort_by_key(|c| c.created);
        list.into_iter().map(Call::info).collect()
    }

    /// Places an inbound call and waits until the relay took its `ringing` event.
    pub async fn place_call(
        &self,
        from: String,
        to: Option<String>,
        agent: Option<String>,
    ) -> Result<String, PbxError> {
        let to = to.unwrap_or_else(|| self.default_to.clone());
        let agent = agent.unwrap_or_else(|| self.default_agent.clone());
        self.start_call(Direction::Inbound, from, to, agent).await
    }

    /// Click-to-dial: the rep's line calls `to`; the far end rings until it answers
    /// (`POST /sim/calls/{id}/answer`) or the rep hangs up.
    pub async fn dial(&self, agent: String, to: String) -> Result<String, PbxError> {
        let from = self.default_to.clone();
        self.start_call(Direction::Outbound, from, to, agent).await
    }

    async fn start_call(
        &self,
        direction: Direction,
        from: String,
        to: String,
        agent: String,
    ) -> Result<String, PbxError> {
        let id = format!("call-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_queue(self.link.clone(), counters.clone(), rx));
        let call = Call {
            created: self.created.fetch_add(1, Ordering::Relaxed),
            id: id.clone(),
            direction,
            from,
            to,
            agent: agent.clone(),
            state: LegState::Ringing,
            end_reason: None,
            answered: false,
            consult: None,
            started_at: now_rfc3339(),
            next_event: 0,
            counters,
            queue: Some(tx),
        };
        tracing::info!(
            call = %id, ?direction, from = %mask_number(&call.from), to = %mask_number(&call.to),
            %agent, "call placed"
        );
        let ack = {
            // Registered before the ringing goes out, so a relay that answers at once finds it.
            let mut calls = self.lock();
            let call = calls.entry(id.clone()).insert_entry(call).into_mut();
            call.emit(EventType::Ringing, &agent, None, None)
        };
        match ack.await.unwrap_or(Err(DeliveryError::Stopped)) {
            Ok(()) => Ok(id),
            Err(err) => {
                tracing::warn!(call = %id, %err, "the relay did not take the call");
                if let Some(call) = self.lock().get_mut(&id)
                    && call.state != LegState::Ended
                {
                    call.state = LegState::Ended;
                    call.end_reason = Some(EndReason::Failed);
                    call.queue = None;
                }
                Err(err.into())
            }
        }
    }

    /// The called party picks up an outbound call; waits until the relay took `answered`.
    pub async fn remote_answer(&self, call_id: &str) -> Result<(), PbxError> {
        let ack = {
            let mut calls = self.lock();
            let call = calls
                .get_mut(call_id)
                .ok_or_else(|| PbxError::UnknownCall(call_id.to_string()))?;
            if call.direction != Direction::Outbound || call.state != LegState::Ringing {
                return Err(PbxError::Conflict(format!(
                    "call {call_id:?} is not an outbound call that rings"
                )));
            }
            call.state = LegState::Connected;
            call.answered = true;
            let agent = call.agent.clone();
            call.emit(EventType::Answered, &agent, None, None)
        };
        ack.await.unwrap_or(Err(DeliveryError::Stopped))?;
        Ok(())
    }

    /// The caller hangs up; waits until the relay took the `ended` event.
    pub async fn caller_hangup(&self, call_id: &str) -> Result<EndReason, PbxError> {
        let (reason, ack) = {
            let mut calls = self.lock();
            let call = calls
                .get_mut(call_id)
                .ok_or_else(|| PbxError::UnknownCall(call_id.to_string()))?;
            let reason = match call.state {
                LegState::Ringing => EndReason::Missed,
                LegState::Connected | LegState::Held => EndReason::Completed,
                LegState::Ended => {
                    return Err(PbxError::Conflict(format!(
                        "call {call_id:?} already ended"
                    )));
                }
            };
            call.state = LegState::Ended;
            call.end_reason = Some(reason);
            call.end_consult();
            let agent = call.agent.clone();
            let ack = call.emit(EventType::Ended, &agent, None, Some(reason));
            (reason, ack)
        };
        tracing::info!(call = %call_id, ?reason, "caller hung up");
        ack.await.unwrap_or(Err(DeliveryError::Stopped))?;
        Ok(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_digits() {
        assert_eq!(mask_number("+41 44 123 45 67"), "+** ** *** 45 67");
        assert_eq!(mask_number("123"), "123");
        assert_eq!(mask_number(""), "");
    }
}
