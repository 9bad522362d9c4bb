//! One run of the SIP connector: a connection to the presence server, one dialog-event
//! subscription per rep's address of record, kept alive and turned into call events.
//!
//! A run connects (UDP, TCP or TLS), SUBSCRIBEs every AoR (`Event: dialog`), answers the
//! server's digest challenges, and serves the subscriptions: each NOTIFY is answered 200 and its
//! dialog-info applied ([`super::mapping`]); a subscription is refreshed before its `Expires`,
//! started afresh when the server ends it or forgets it (`481`), and refreshed for full state
//! when a `version` gap says a NOTIFY was lost. The link is up once every AoR's subscription
//! was answered; the first full state of each then ends what the relay still holds live for
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
    /// The server answered this AoR's subscription: accepted it, or refused it (the link is up
    /// once every AoR was answered; a refused one is tried again and said in `/readyz`).
    answered: bool,
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
            answered: false,
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
    let mut wire = settings.connect().await.map_err(lost)?;
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
        if !up && subs.iter().all(|s| s.answered) {
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
            sub.answered = true;
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
            sub.answered = true;
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
    sub.answered = true;
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
    } else if let Some(expires) = state.expires.filter(|e| *e > 0)
        && sub.pending.is_none()
    {
        let due = now + refresh_in(expires);
        sub.refresh_at = Some(sub.refresh_at.map_or(due, |at| at.min(due)));
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use parking_lot::Mutex;
    use rsip::headers::ToTypedHeader;
    use rsip::prelude::{HasHeaders, HeadersExt};
    use tokio::net::UdpSocket;
    use tokio::sync::mpsc;

    use super::*;
    use crate::adapters::Context;
    use crate::adapters::connector::{LinkStatus, NoLiveCalls, channel};
    use crate::adapters::sip::{Settings, Transport};
    use crate::metrics::Metrics;
    use crate::secret::Secret;

    const PASSWORD: &str = "s3cret-relay";

    /// A scripted presence server on a loopback UDP socket.
    struct Notifier {
        socket: UdpSocket,
        relay: Option<SocketAddr>,
        cseq: u32,
    }

    impl Notifier {
        /// The next request from the relay (its answers to our NOTIFYs are skipped).
        async fn request(&mut self) -> rsip::Request {
            loop {
                let mut buffer = vec![0u8; 65_535];
                let (n, from) = tokio::time::timeout(
                    Duration::from_secs(10),
                    self.socket.recv_from(&mut buffer),
                )
                .await
                .expect("a message in time")
                .expect("received");
                self.relay = Some(from);
                match rsip::SipMessage::try_from(&buffer[..n]).expect("SIP") {
                    rsip::SipMessage::Request(request) => return request,
                    rsip::SipMessage::Response(response) => {
                        assert_eq!(response.status_code().code(), 200, "{response}");
                    }
                }
            }
        }

        /// The relay's answer to our last request.
        async fn response(&mut self) -> rsip::Response {
            let mut buffer = vec![0u8; 65_535];
            let (n, _) =
                tokio::time::timeout(Duration::from_secs(10), self.socket.recv_from(&mut buffer))
                    .await
                    .expect("an answer in time")
                    .expect("received");
            rsip::Response::try_from(&buffer[..n]).expect("a response")
        }

        async fn send(&self, text: &str) {
            let to = self.relay.expect("the relay spoke first");
            self.socket
                .send_to(text.as_bytes(), to)
                .await
                .expect("sent");
        }

        async fn answer(&self, request: &rsip::Request, code: &str, extra: &str) {
            let mut text = format!("SIP/2.0 {code}\r\n");
            for header in request.headers().iter() {
                match header {
                    rsip::Header::To(to) if !to.to_string().contains("tag=") => {
                        text.push_str(&format!("{to};tag=nt\r\n"));
                    }
                    rsip::Header::Via(_)
                    | rsip::Header::From(_)
                    | rsip::Header::To(_)
                    | rsip::Header::CallId(_)
                    | rsip::Header::CSeq(_) => {
                        text.push_str(&format!("{header}\r\n"));
                    }
                    _ => {}
                }
            }
            text.push_str(extra);
            text.push_str("Content-Length: 0\r\n\r\n");
            self.send(&text).await;
        }

        async fn notify(&mut self, call_id: &str, state: &str, body: &str) {
            self.cseq += 1;
            let text = format!(
                "NOTIFY sip:cti-relay@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKn{cseq}\r\nFrom: <sip:1001@pbx.test>;tag=nt\r\nTo: <sip:cti-relay@pbx.test>;tag=ft\r\nCall-ID: {call_id}\r\nCSeq: {cseq} NOTIFY\r\nEvent: dialog\r\nSubscription-State: {state}\r\nContact: <sip:127.0.0.1:{port}>\r\nContent-Type: application/dialog-info+xml\r\nContent-Length: {len}\r\n\r\n{body}",
                port = self.socket.local_addr().expect("address").port(),
                cseq = self.cseq,
                len = body.len(),
            );
            self.send(&text).await;
        }
    }

    fn document(version: u64, state: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" state="full" entity="sip:1001@pbx.test"><dialog id="d1" call-id="c1@pbx" direction="recipient"><state>{state}</state><remote><identity>sip:+41441234567@pbx.test</identity></remote><local><identity>sip:1001@pbx.test</identity></local></dialog></dialog-info>"#
        )
    }

    fn header(request: &rsip::Request, name: &str) -> String {
        ua::header(request, name).unwrap_or_default()
    }

    #[tokio::test]
    async fn the_subscriber_authenticates_answers_notifies_and_subscribes_again_when_it_must() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bound");
        let port = socket.local_addr().expect("address").port();
        let mut server = Notifier {
            socket,
            relay: None,
            cseq: 0,
        };
        let settings = Settings {
            sip_server: format!("127.0.0.1:{port}"),
            sip_transport: Transport::Udp,
            sip_reps: [(
                "alice@example.com".to_string(),
                "sip:1001@pbx.test".to_string(),
            )]
            .into(),
            sip_username: "cti-relay".into(),
            sip_password: Secret::new(PASSWORD),
            sip_domain: None,
            sip_expires: 600,
            sip_tls_ca_pem: None,
            sip_click_to_dial_url: None,
            sip_infer_transfers: true,
        };
        let shared = Arc::new(Shared {
            tenant: "demo".into(),
            settings,
            context: Context {
                tenant: "demo".into(),
                http: reqwest::Client::new(),
                clock: Arc::new(crate::clock::SystemClock),
                forgets_before_ms: None,
            },
            tracker: Mutex::default(),
        });
        let status = Arc::new(LinkStatus::default());
        let (link, mut inbox) = channel(
            "demo",
            "sip",
            Arc::new(NoLiveCalls),
            status.clone(),
            Arc::new(Metrics::default()),
        );
        let (events, mut heard) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(delivery) = inbox.next().await {
                let _ = events.send(delivery.event.clone());
                delivery.report(Ok(()));
            }
        });
        let run = tokio::spawn(run(shared, link));

        // The first SUBSCRIBE is challenged; the second answers the challenge.
        let first = server.request().await;
        assert_eq!(first.method, rsip::Method::Subscribe);
        assert_eq!(first.uri.to_string(), "sip:1001@pbx.test");
        assert_eq!(header(&first, "Event"), "dialog");
        assert_eq!(header(&first, "Accept"), "application/dialog-info+xml");
        assert_eq!(header(&first, "Expires"), "600");
        server
            .answer(
                &first,
                "401 Unauthorized",
                "WWW-Authenticate: Digest realm=\"pbx.test\", nonce=\"n1\", qop=\"auth\"\r\n",
            )
            .await;
        let second = server.request().await;
        let call_id = ua::call_id(&second).expect("a Call-ID");
        assert_eq!(Some(call_id.clone()), ua::call_id(&first));
        assert!(ua::cseq(&second) > ua::cseq(&first));
        let authorization = second
            .authorization_header()
            .expect("credentials")
            .typed()
            .expect("typed");
        assert_eq!(authorization.username, "cti-relay");
        assert!(
            rsip::services::DigestGenerator::from(
                &authorization,
                PASSWORD,
                &rsip::Method::Subscribe
            )
            .verify(&authorization.response),
            "the digest is right"
        );
        server
            .answer(
                &second,
                "200 OK",
                &format!("Expires: 600\r\nContact: <sip:127.0.0.1:{port}>\r\n"),
            )
            .await;

        // NOTIFYs are answered 200 and become events.
        server
            .notify(&call_id, "active;expires=600", &document(0, "early"))
            .await;
        assert_eq!(server.response().await.status_code().code(), 200);
        let ringing = heard.recv().await.expect("an event");
        assert_eq!(ringing.event_type, EventType::Ringing);
        assert_eq!(ringing.from, "+41441234567");
        assert_eq!(ringing.agent, "alice@example.com");
        until("the link up", || status.get().connected).await;

        // A version gap: applied (the document is full) and the subscription refreshed for
        // full state, within its dialog, with credentials.
        server
            .notify(&call_id, "active;expires=600", &document(2, "confirmed"))
            .await;
        assert_eq!(server.response().await.status_code().code(), 200);
        assert_eq!(
            heard.recv().await.expect("an event").event_type,
            EventType::Answered
        );
        let refresh = server.request().await;
        assert_eq!(refresh.method, rsip::Method::Subscribe);
        assert_eq!(ua::call_id(&refresh).as_deref(), Some(call_id.as_str()));
        assert_eq!(ua::to_tag(&refresh).as_deref(), Some("nt"));
        assert_eq!(refresh.uri.to_string(), format!("sip:127.0.0.1:{port}"));
        assert!(refresh.authorization_header().is_some());
        server.answer(&refresh, "200 OK", "Expires: 600\r\n").await;

        // A NOTIFY of no subscription is refused.
        server
            .notify("stranger", "active;expires=600", &document(0, "early"))
            .await;
        assert_eq!(server.response().await.status_code().code(), 481);

        // The server ends the subscription: a new one, in a new dialog.
        server
            .notify(
                &call_id,
                "terminated;reason=deactivated",
                &document(3, "confirmed"),
            )
            .await;
        assert_eq!(server.response().await.status_code().code(), 200);
        let again = server.request().await;
        assert_eq!(again.method, rsip::Method::Subscribe);
        assert_ne!(ua::call_id(&again).as_deref(), Some(call_id.as_str()));
        assert_eq!(ua::to_tag(&again), None);
        // Credentials refused again for the same nonce: the run ends and says why.
        server
            .answer(
                &again,
                "401 Unauthorized",
                "WWW-Authenticate: Digest realm=\"pbx.test\", nonce=\"n1\", qop=\"auth\"\r\n",
            )
            .await;
        let outcome = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the run ends")
            .expect("no panic");
        let err = outcome.expect_err("refused credentials end the run");
        assert!(err.0.contains("refused the digest credentials"), "{err}");
        assert!(!err.0.contains(PASSWORD));
        assert!(!status.get().connected);
    }

    async fn until(what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
