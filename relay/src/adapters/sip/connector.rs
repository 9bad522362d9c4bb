//! One run of the SIP connector: a connection to the presence server, one dialog-event
//! subscription per rep's address of record, kept alive and turned into call events.
//!
//! A run connects (UDP, TCP or TLS), SUBSCRIBEs every AoR (`Event: dialog`), answers the
//! server's digest challenges, and serves the subscriptions: each NOTIFY is answered 200 and its
//! dialog-info applied ([`super::mapping`]); a subscription is refreshed before its `Expires`,
//! started afresh when the server ends it or forgets it (`481`), and refreshed for full state
//! when a `version` gap says a NOTIFY was lost. The link is up once every AoR's subscription
//! was accepted; the first full state of each then ends what the relay still holds live for
//! that rep but the server no longer lists (the catch-up after a gap). A stream that closes, a
//! server that stops answering, or credentials it refuses end the run; the next one subscribes
//! again.

use std::sync::Arc;
use std::time::Duration;

use cti_protocol::event::{Direction, EndReason, EventType, TelephonyEvent};
use tokio::time::Instant;

use super::Shared;
use super::dialog_info::{self, Completeness, DialogInfo};
use super::ua::{self, Challenge, Subscribe, SubscriptionState, Wire};
use crate::adapters::connector::Undelivered;
use crate::adapters::{Link, LinkError};

fn lost(what: impl std::fmt::Display) -> LinkError {
    LinkError(what.to_string())
}

/// A request of a subscription waiting for its final answer.
#[derive(Debug)]
struct Pending {
    cseq: u32,
    bytes: Vec<u8>,
    sent: Instant,
    next_send: Instant,
    attempts: u32,
    /// The nonce its credentials answered, if it carried any.
    answered_nonce: Option<String>,
}

/// One rep's subscription.
#[derive(Debug)]
struct Sub {
    rep: String,
    aor: String,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    /// The notifier's Contact: where requests within the dialog go.
    remote_target: Option<String>,
    cseq: u32,
    expires: u32,
    pending: Option<Pending>,
    /// When to refresh (or, after a refusal, to try again).
    refresh_at: Option<Instant>,
    accepted: bool,
    /// The version of the last document applied.
    version: Option<u64>,
    /// Whether this dialog's first full state has been applied (the catch-up waits for it).
    caught_up: bool,
    challenge: Option<Challenge>,
}

impl Sub {
    fn new(rep: &str, aor: &str, expires: u32) -> Sub {
        Sub {
            rep: rep.to_string(),
            aor: aor.to_string(),
            call_id: format!("{}@cti-relay", ua::token()),
            from_tag: ua::token(),
            to_tag: None,
            remote_target: None,
            cseq: 0,
            expires,
            pending: None,
            refresh_at: Some(Instant::now()),
            accepted: false,
            version: None,
            caught_up: false,
            challenge: None,
        }
    }

    /// Starts a new subscription dialog for the same AoR (the old one was ended or forgotten).
    fn restart(&mut self, at: Instant) {
        let challenge = self.challenge.take();
        *self = Sub::new(&self.rep.clone(), &self.aor.clone(), self.expires);
        self.challenge = challenge;
        self.refresh_at = Some(at);
    }
}

pub(super) async fn run(shared: Arc<Shared>, link: Link) -> Result<(), LinkError> {
    let result = session(&shared, &link).await;
    link.down();
    if let Err(err) = &result {
        link.error(&format!("SIP: {err}"));
    }
    result
}

async fn session(shared: &Shared, link: &Link) -> Result<(), LinkError> {
    let settings = &shared.settings;
    let (host, port) = settings.server();
    let mut wire = Wire::connect(
        &host,
        port,
        settings.sip_transport,
        settings.sip_tls_ca_pem.as_deref(),
    )
    .await
    .map_err(|e| lost(format!("connecting to {host}:{port}: {e}")))?;
    let mut subs: Vec<Sub> = settings
        .sip_reps
        .iter()
        .map(|(rep, aor)| Sub::new(&rep.to_lowercase(), aor.trim(), settings.sip_expires))
        .collect();
    let mut up = false;
    loop {
        // Requests due now: new subscriptions, refreshes, retransmissions.
        let now = Instant::now();
        for sub in &mut subs {
            if let Some(pending) = &mut sub.pending {
                if now.duration_since(pending.sent) >= ua::TRANSACTION_TIMEOUT {
                    return Err(lost(format!(
                        "the SIP server did not answer the SUBSCRIBE for {}",
                        sub.aor
                    )));
                }
                if wire.transport == super::Transport::Udp && now >= pending.next_send {
                    pending.attempts += 1;
                    pending.next_send = now + ua::retransmit_after(pending.attempts);
                    wire.send(&pending.bytes)
                        .await
                        .map_err(|e| lost(format!("sending: {e}")))?;
                }
            } else if sub.refresh_at.is_some_and(|at| now >= at) {
                send_subscribe(shared, &mut wire, sub).await?;
            }
        }
        let wake = subs
            .iter()
            .filter_map(|s| match &s.pending {
                Some(p) if wire.transport == super::Transport::Udp => Some(p.next_send),
                Some(p) => Some(p.sent + ua::TRANSACTION_TIMEOUT),
                None => s.refresh_at,
            })
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        let bytes = tokio::select! {
            received = wire.recv() => received.map_err(|e| lost(format!("the SIP connection: {e}")))?,
            () = tokio::time::sleep_until(wake) => continue,
        };
        let message = match rsip::SipMessage::try_from(bytes.as_slice()) {
            Ok(message) => message,
            Err(e) => {
                link.error(&format!("SIP: an unreadable message from the server: {e}"));
                continue;
            }
        };
        match message {
            rsip::SipMessage::Response(response) => {
                on_response(shared, link, &mut wire, &mut subs, response).await?;
            }
            rsip::SipMessage::Request(request) => {
                on_request(shared, link, &mut wire, &mut subs, request).await?;
            }
        }
        if !up && subs.iter().all(|s| s.accepted) {
            up = true;
            link.up();
            tracing::info!(tenant = %shared.tenant, reps = subs.len(), "SIP dialog subscriptions active");
        }
    }
}

/// Sends the subscription's SUBSCRIBE (initial or refresh), with credentials when the server
/// challenged before.
async fn send_subscribe(shared: &Shared, wire: &mut Wire, sub: &mut Sub) -> Result<(), LinkError> {
    let settings = &shared.settings;
    sub.cseq += 1;
    let target = sub
        .remote_target
        .clone()
        .filter(|_| sub.to_tag.is_some())
        .unwrap_or_else(|| sub.aor.clone());
    let uri = rsip::Uri::try_from(target.as_str())
        .map_err(|e| lost(format!("{target:?} is not a SIP URI: {e}")))?;
    let authorization = sub.challenge.as_ref().map(|c| {
        c.answer(
            &settings.sip_username,
            &settings.sip_password,
            rsip::Method::Subscribe,
            &uri,
        )
    });
    let from = settings.identity();
    let branch = ua::token();
    let request = ua::subscribe(
        wire,
        &Subscribe {
            target: &target,
            aor: &sub.aor,
            from: &from,
            from_tag: &sub.from_tag,
            to_tag: sub.to_tag.as_deref(),
            call_id: &sub.call_id,
            cseq: sub.cseq,
            expires: sub.expires,
            branch: &branch,
            authorization: authorization.as_deref(),
        },
    );
    let now = Instant::now();
    sub.pending = Some(Pending {
        cseq: sub.cseq,
        bytes: request.clone().into_bytes(),
        sent: now,
        next_send: now + ua::retransmit_after(0),
        attempts: 0,
        answered_nonce: sub.challenge.as_ref().map(|c| c.nonce().to_string()),
    });
    sub.refresh_at = None;
    wire.send(request.as_bytes())
        .await
        .map_err(|e| lost(format!("sending: {e}")))
}

async fn on_response(
    shared: &Shared,
    link: &Link,
    wire: &mut Wire,
    subs: &mut [Sub],
    response: rsip::Response,
) -> Result<(), LinkError> {
    let (Some(call_id), Some(cseq)) = (ua::call_id(&response), ua::cseq(&response)) else {
        return Ok(());
    };
    let Some(sub) = subs.iter_mut().find(|s| s.call_id == call_id) else {
        return Ok(());
    };
    let Some(pending) = sub.pending.as_ref().filter(|p| p.cseq == cseq) else {
        return Ok(());
    };
    let code = response.status_code().code();
    if code < 200 {
        return Ok(());
    }
    let answered_nonce = pending.answered_nonce.clone();
    sub.pending = None;
    let now = Instant::now();
    match code {
        200..=299 => {
            sub.accepted = true;
            if sub.to_tag.is_none() {
                sub.to_tag = ua::to_tag(&response);
            }
            if let Some(contact) = ua::contact_uri(&response) {
                sub.remote_target = Some(contact);
            }
            let granted = ua::header(&response, "Expires")
                .and_then(|e| e.parse::<u32>().ok())
                .unwrap_or(sub.expires);
            if granted == 0 {
                // Nothing to keep: the server ended it at once; a NOTIFY says why.
                sub.restart(now + Duration::from_secs(5));
            } else {
                sub.refresh_at = Some(now + refresh_in(granted));
            }
        }
        401 | 407 => {
            let Some(challenge) = Challenge::of(&response) else {
                return Err(lost(format!(
                    "the server answered {code} without a digest challenge"
                )));
            };
            // Credentials refused again, and not for a stale nonce: they are wrong.
            if answered_nonce.is_some() && !challenge.stale {
                return Err(lost(format!(
                    "the SIP server refused the digest credentials of {:?} for {}",
                    shared.settings.sip_username, sub.aor
                )));
            }
            sub.challenge = Some(challenge);
            send_subscribe(shared, wire, sub).await?;
        }
        423 => {
            // Interval Too Brief: ask again with the server's minimum.
            if let Some(min) = ua::header(&response, "Min-Expires").and_then(|e| e.parse().ok()) {
                sub.expires = min;
            }
            sub.refresh_at = Some(now);
        }
        481 => {
            // The server forgot the subscription (a restart): a new one brings its full state.
            sub.restart(now);
        }
        403 => {
            return Err(lost(format!(
                "the SIP server refused {:?} the subscription to {} (403)",
                shared.settings.sip_username, sub.aor
            )));
        }
        _ => {
            link.error(&format!(
                "SIP: subscribing to {} was refused with {code}; trying again in a minute",
                sub.aor
            ));
            sub.restart(now + Duration::from_secs(60));
        }
    }
    Ok(())
}

/// When to refresh a subscription granted for `expires` seconds: well before it lapses, so a
/// refresh lost over UDP still has time to be sent again.
fn refresh_in(expires: u32) -> Duration {
    let expires = u64::from(expires);
    let margin = (expires / 4).clamp(2, 60);
    Duration::from_secs(expires.saturating_sub(margin).max(1))
}

async fn on_request(
    shared: &Shared,
    link: &Link,
    wire: &mut Wire,
    subs: &mut [Sub],
    request: rsip::Request,
) -> Result<(), LinkError> {
    if request.method != rsip::Method::Notify {
        if request.method != rsip::Method::Ack {
            let answer = ua::answer(&request, 405, "Method Not Allowed");
            wire.send(answer.as_bytes())
                .await
                .map_err(|e| lost(format!("sending: {e}")))?;
        }
        return Ok(());
    }
    let call_id = ua::call_id(&request).unwrap_or_default();
    let Some(sub) = subs.iter_mut().find(|s| s.call_id == call_id) else {
        let answer = ua::answer(&request, 481, "Subscription Does Not Exist");
        wire.send(answer.as_bytes())
            .await
            .map_err(|e| lost(format!("sending: {e}")))?;
        return Ok(());
    };
    let answer = ua::answer(&request, 200, "OK");
    wire.send(answer.as_bytes())
        .await
        .map_err(|e| lost(format!("sending: {e}")))?;
    if sub.to_tag.is_none() {
        sub.to_tag = ua::from_tag(&request);
    }
    if sub.remote_target.is_none() {
        sub.remote_target = ua::contact_uri(&request);
    }
    let now = Instant::now();
    let state = ua::header(&request, "Subscription-State")
        .map(|s| SubscriptionState::parse(&s))
        .unwrap_or(SubscriptionState {
            terminated: false,
            expires: None,
            reason: None,
        });
    // A NOTIFY is the server's acceptance too (it may overtake the 2xx over UDP).
    sub.accepted = true;
    let body = String::from_utf8_lossy(request.body()).into_owned();
    let content_type = ua::header(&request, "Content-Type").unwrap_or_default();
    let info = if body.trim().is_empty() {
        Some(DialogInfo::idle())
    } else if !content_type
        .to_ascii_lowercase()
        .contains("application/dialog-info+xml")
    {
        link.error(&format!(
            "SIP: a NOTIFY for {} with {content_type:?}, not dialog-info",
            sub.aor
        ));
        None
    } else {
        match dialog_info::parse(&body) {
            Ok(info) => Some(info),
            Err(e) => {
                link.error(&format!(
                    "SIP: an unreadable dialog-info for {}: {e}",
                    sub.aor
                ));
                None
            }
        }
    };
    let mut refresh_now = false;
    if let Some(info) = info {
        let mut apply = true;
        match (sub.version, info.version) {
            // A copy of what was applied (a retransmission): nothing new.
            (Some(last), Some(v)) if v <= last => apply = false,
            (Some(last), Some(v)) if v > last + 1 => {
                link.error(&format!(
                    "SIP: NOTIFY versions {last} -> {v} for {}: one was lost; asking for the full state",
                    sub.aor
                ));
                refresh_now = true;
                apply = info.state == Completeness::Full;
            }
            _ => {}
        }
        // A document without a version (an empty body) starts the count afresh.
        sub.version = info.version;
        if apply {
            let rep = sub.rep.clone();
            let first_full = !sub.caught_up && info.state == Completeness::Full;
            let events = shared.tracker().apply(&rep, &info, &shared.now());
            deliver(shared, link, &rep, events).await?;
            if first_full {
                sub.caught_up = true;
                catch_up(shared, link, &rep).await?;
            }
        }
    }
    if state.terminated {
        // Ended by the server (its timeout, a shutdown, a deactivation): a new subscription,
        // at once unless the server said it will not have one.
        let later = matches!(state.reason.as_deref(), Some("rejected" | "noresource"));
        sub.pending = None;
        sub.restart(if later {
            now + Duration::from_secs(60)
        } else {
            now
        });
    } else if refresh_now {
        if sub.pending.is_none() {
            sub.refresh_at = Some(now);
        }
    } else if let Some(expires) = state.expires.filter(|e| *e > 0) {
        if sub.pending.is_none() {
            let due = now + refresh_in(expires);
            sub.refresh_at = Some(sub.refresh_at.map_or(due, |at| at.min(due)));
        }
    }
    Ok(())
}

async fn deliver(
    shared: &Shared,
    link: &Link,
    rep: &str,
    events: Vec<TelephonyEvent>,
) -> Result<(), LinkError> {
    for event in events {
        let call = event.call_id.clone();
        let agent = event.agent.clone();
        match link.deliver(event).await {
            Ok(()) => {}
            Err(Undelivered::Closed) => return Err(lost("the relay is stopping")),
            Err(Undelivered::Failed(e)) => {
                shared
                    .tracker()
                    .forget(&call, if agent.is_empty() { rep } else { &agent });
                return Err(lost(format!("the relay could not apply a call event: {e}")));
            }
        }
    }
    Ok(())
}

/// Ends the calls the relay holds live for `rep` that the rep's full state no longer has.
async fn catch_up(shared: &Shared, link: &Link, rep: &str) -> Result<(), LinkError> {
    let open = shared.tracker().open_calls(rep);
    let mut events = Vec::new();
    for (call, agent) in link.live_calls(&[rep.to_string()]).await {
        if open.contains(&call) {
            continue;
        }
        events.push(TelephonyEvent {
            id: format!("sip:{call}:{agent}:ended"),
            call_id: call.clone(),
            event_type: EventType::Ended,
            direction: Direction::Inbound,
            from: String::new(),
            to: String::new(),
            agent,
            at: shared.now(),
            transfer_to: None,
            reason: Some(EndReason::Completed),
            recording_url: None,
        });
    }
    deliver(shared, link, rep, events).await
}
