//! One widget connection, as a conversation over two channels.
//!
//! The session knows nothing of sockets: frames come in on one channel and go out on another, so
//! tests drive it directly and the WebSocket handler only pumps frames. The close codes are
//! `cti_protocol::codes::close`, shared with the widget.

use std::sync::Arc;
use std::time::Duration;

use cti_protocol::codes::close;
use cti_protocol::ws::{ClientMessage, ServerMessage};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};

use super::sign_in_watch::SignInWatch;
use super::throttle::Throttle;
use super::{AgentError, commands};
use crate::admission::Pending;
use crate::identity::AgentIdentity;
use crate::push::hub::LiveEnd;
use crate::state::AppState;

/// How long past its `exp` a token is still taken, as the token check allows.
const TOKEN_LEEWAY_MS: u64 = 30_000;

/// A frame from the widget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Text(String),
    Binary,
    /// A frame over the size limit, refused from its header; the socket reads nothing more.
    TooLarge,
}

/// A frame to the widget.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Message(Box<ServerMessage>),
    /// A call a telephony event changed, with when the relay received the event: the socket
    /// measures the push latency once the frame is written.
    Push {
        message: Box<ServerMessage>,
        received: std::time::Instant,
    },
    Close {
        code: u16,
        reason: String,
    },
}

/// Why the session ended, for the metrics label.
fn reason_label(code: u16) -> &'static str {
    match code {
        close::BAD_FRAME => "bad_frame",
        close::BAD_TOKEN => "bad_token",
        close::UNKNOWN_TENANT => "unknown_tenant",
        close::TIMEOUT => "timeout",
        close::LAGGED => "lagged",
        close::UNSUPPORTED => "unsupported",
        close::RESTART => "restart",
        close::TOO_LARGE => "too_large",
        close::RATE_LIMITED => "rate_limited",
        close::TRY_AGAIN => "try_again",
        _ => "other",
    }
}

struct Conversation<'a> {
    state: &'a Arc<AppState>,
    out: &'a mpsc::Sender<Outbound>,
}

impl Conversation<'_> {
    async fn send(&self, message: ServerMessage) -> bool {
        self.out
            .send(Outbound::Message(Box::new(message)))
            .await
            .is_ok()
    }

    async fn close(&self, code: u16, reason: impl Into<String>) {
        let reason = reason.into();
        self.state.metrics.ws_closed(reason_label(code));
        tracing::info!(code, %reason, "closing widget connection");
        let _ = self.out.send(Outbound::Close { code, reason }).await;
    }
}

/// Runs one connection until either side ends it. `pending` counts the connection among those
/// waiting to sign in; it is given back once the rep has.
pub async fn run(
    state: Arc<AppState>,
    mut inbound: mpsc::Receiver<Inbound>,
    out: mpsc::Sender<Outbound>,
    pending: Pending,
) {
    let conv = Conversation {
        state: &state,
        out: &out,
    };
    let hello_timeout = state.config.hello_timeout;
    let first = match timeout(hello_timeout, inbound.recv()).await {
        Err(_) => {
            conv.close(
                close::TIMEOUT,
                format!("no hello within {} s", hello_timeout.as_secs()),
            )
            .await;
            return;
        }
        Ok(None) => return,
        Ok(Some(frame)) => frame,
    };
    let (token, last_seq) = match parse(&first) {
        Ok(ClientMessage::Hello { token, last_seq }) => (token, last_seq),
        Ok(_) => {
            conv.close(close::BAD_FRAME, "the first frame must be hello")
                .await;
            return;
        }
        Err((code, reason)) => {
            conv.close(code, reason).await;
            return;
        }
    };
    let identity = match state.jwt.verify(&token).await {
        Ok(identity) => identity,
        // A JWKS outage or a key not fetched yet says nothing about the token: the widget keeps
        // it and tries again, instead of signing the rep out (4401).
        Err(err) if err.is_transient() => {
            conv.close(
                close::TRY_AGAIN,
                format!("cannot check the token now: {err}"),
            )
            .await;
            return;
        }
        Err(err) => {
            conv.close(close::BAD_TOKEN, format!("invalid token: {err}"))
                .await;
            return;
        }
    };
    if state.tenant(&identity.tenant).is_none() {
        conv.close(
            close::UNKNOWN_TENANT,
            "this tenant is not configured on the relay",
        )
        .await;
        return;
    }
    drop(pending);
    if state
        .tenant(&identity.tenant)
        .is_some_and(|t| matches!(t.auth, crate::authority::AuthMode::Destination { .. }))
    {
        // Kept to write this rep's activities on their authority through the Destination
        // service, also after they close the widget. No other mode uses it, so no other keeps it.
        state
            .authority
            .user_tokens
            .remember(
                &identity.tenant,
                &identity.agent,
                &token,
                identity.expires_at,
                state.clock.now_ms(),
            )
            .await;
    }
    state.metrics.ws_connections.inc();
    serve(&conv, &identity, last_seq, &mut inbound).await;
    state.metrics.ws_connections.dec();
}

async fn serve(
    conv: &Conversation<'_>,
    who: &AgentIdentity,
    last_seq: Option<u64>,
    inbound: &mut mpsc::Receiver<Inbound>,
) {
    let state = conv.state;
    let mut subscription = state.hub.subscribe(&who.tenant, &who.agent, last_seq).await;
    // The highest number sent: a message that arrives live after it was in the backlog (or
    // twice, from two paths) is dropped here rather than applied twice by the widget.
    let mut sent = last_seq.unwrap_or(0);
    let heartbeat = state.config.heartbeat_secs;
    let welcome = ServerMessage::Welcome {
        agent: who.agent.clone(),
        tenant: who.tenant.clone(),
        seq: subscription.newest,
        heartbeat_secs: heartbeat,
        host_origins: state
            .tenant(&who.tenant)
            .map(|t| t.config.host_origins.clone())
            .unwrap_or_default(),
        dispositions: state
            .tenant(&who.tenant)
            .map(|t| t.config.dispositions.clone())
            .unwrap_or_default(),
        custom_1: state.tenant(&who.tenant).is_some_and(|t| t.config.custom_1),
        controls: state
            .tenant(&who.tenant)
            .map(|t| t.adapter.controls().to_vec())
            .unwrap_or_default(),
    };
    if !conv.send(welcome).await {
        return;
    }
    for pushed in std::mem::take(&mut subscription.backlog) {
        sent = sent.max(pushed.seq);
        if !conv
            .send(ServerMessage::Call {
                seq: pushed.seq,
                call: pushed.call,
            })
            .await
        {
            return;
        }
    }
    // A widget that stopped pinging for three heartbeats is gone (or behind a dead proxy).
    let idle = Duration::from_secs(heartbeat.saturating_mul(3));
    let mut deadline = Instant::now() + idle;
    let mut sign_in = SignInWatch::new(state, who);
    let mut throttle = Throttle::new(&state.config.limits, state.clock.clone());
    // A session lives no longer than the token it was opened with (plus the leeway the token
    // check itself allows): an offboarded rep stops receiving calls when their token ends, and
    // the widget signs in again for a fresh one.
    let expires_in_ms = who
        .expires_at
        .saturating_mul(1000)
        .saturating_add(TOKEN_LEEWAY_MS)
        .saturating_sub(state.clock.now_ms());
    let expiry = Instant::now() + Duration::from_millis(expires_in_ms);
    if let Some(connected) = sign_in.check().await
        && !conv.send(ServerMessage::V2SignIn { connected }).await
    {
        return;
    }
    loop {
        tokio::select! {
            frame = inbound.recv() => {
                let Some(frame) = frame else { return };
                deadline = Instant::now() + idle;
                match parse(&frame) {
                    Ok(ClientMessage::Ping { nonce }) => {
                        if !conv.send(ServerMessage::Pong { nonce }).await { return; }
                    }
                    Ok(message @ (ClientMessage::Command { .. } | ClientMessage::Dial { .. }
                        | ClientMessage::ChooseMatch { .. } | ClientMessage::SaveWrapUp { .. }
                        | ClientMessage::RetryActivity { .. }
                        | ClientMessage::ConfirmConsent { .. }
                        | ClientMessage::SearchRecords { .. } | ClientMessage::PickRecord { .. }
                        | ClientMessage::CreateRecord { .. }
                        | ClientMessage::RefreshMatches { .. })) => {
                        let permit = match throttle.admit(&message) {
                            Ok(permit) => permit,
                            Err(over) => {
                                state.metrics.connection_refused(over.label());
                                if throttle.abusive() {
                                    conv.close(close::RATE_LIMITED, "too many requests; reconnect later").await;
                                    return;
                                }
                                let refusal = ServerMessage::from(AgentError::RateLimited(over.label()));
                                if !conv.send(refusal).await { return; }
                                continue;
                            }
                        };
                        let (state, who, out) = (state.clone(), who.clone(), conv.out.clone());
                        tokio::spawn(async move {
                            let _permit = permit;
                            let answer = match commands::apply(&state, &who, message).await {
                                Ok(answer) => answer,
                                Err(refusal) => {
                                    tracing::debug!(%refusal, "refused a request of the rep's");
                                    Some(ServerMessage::from(refusal))
                                }
                            };
                            if let Some(message) = answer {
                                let _ = out.send(Outbound::Message(Box::new(message))).await;
                            }
                        });
                    }
                    Ok(ClientMessage::Hello { .. }) => {
                        let error = ServerMessage::from(AgentError::AlreadySignedIn);
                        if !conv.send(error).await { return; }
                    }
                    Ok(_) => {
                        let error = ServerMessage::from(AgentError::Unsupported);
                        if !conv.send(error).await { return; }
                    }
                    Err((code, reason)) => {
                        conv.close(code, reason).await;
                        return;
                    }
                }
            }
            live = subscription.live.recv() => match live {
                Ok(live) if live.pushed.seq <= sent => {}
                Ok(live) => {
                    sent = live.pushed.seq;
                    let message = Box::new(ServerMessage::Call {
                        seq: live.pushed.seq,
                        call: live.pushed.call.clone(),
                    });
                    let outbound = match live.received {
                        Some(received) => Outbound::Push { message, received },
                        None => Outbound::Message(message),
                    };
                    if conv.out.send(outbound).await.is_err() { return; }
                }
                Err(LiveEnd::Lagged) => {
                    conv.close(close::LAGGED, "too far behind; reconnect with last_seq to resume").await;
                    return;
                }
                Err(LiveEnd::Closed) => return,
            },
            _ = subscription.resync.changed() => {
                conv.close(close::RESTART, "resync: reconnect to catch up").await;
                return;
            }
            () = state.stopping() => {
                conv.close(close::RESTART, "the relay is restarting").await;
                return;
            }
            () = sign_in.due() => {
                if let Some(connected) = sign_in.check().await
                    && !conv.send(ServerMessage::V2SignIn { connected }).await
                {
                    return;
                }
            }
            () = sleep_until(expiry) => {
                conv.close(close::BAD_TOKEN, "the sign-in expired; sign in again").await;
                return;
            }
            () = sleep_until(deadline) => {
                conv.close(close::TIMEOUT, format!("no message for {} s", idle.as_secs())).await;
                return;
            }
        }
    }
}

pub(crate) fn parse(frame: &Inbound) -> Result<ClientMessage, (u16, String)> {
    match frame {
        Inbound::Binary => Err((close::UNSUPPORTED, "binary frames are not supported".into())),
        Inbound::TooLarge => Err((close::TOO_LARGE, "frames are limited to 64 KiB".into())),
        Inbound::Text(text) => serde_json::from_str(text)
            .map_err(|e| (close::BAD_FRAME, format!("malformed frame: {e}"))),
    }
}

/// The session driven over its two channels, as the WebSocket handler drives it, but with no
/// socket in between.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cti_protocol::ErrorCode;

    use super::*;
    use crate::clock::{Clock, SharedClock, SystemClock};
    use crate::config::Config;
    use crate::state::Stores;

    /// The widget's end of one conversation.
    struct Widget {
        to_relay: mpsc::Sender<Inbound>,
        from_relay: mpsc::Receiver<Outbound>,
    }

    impl Widget {
        fn connect(app: Arc<AppState>) -> Widget {
            let (to_relay, inbound) = mpsc::channel(16);
            let (out, from_relay) = mpsc::channel(64);
            tokio::spawn(run(app, inbound, out, Pending::untracked()));
            Widget {
                to_relay,
                from_relay,
            }
        }

        async fn send(&self, message: serde_json::Value) {
            let frame = Inbound::Text(message.to_string());
            self.to_relay
                .send(frame)
                .await
                .expect("the session is running");
        }

        async fn next(&mut self) -> Outbound {
            tokio::time::timeout(Duration::from_secs(30), self.from_relay.recv())
                .await
                .expect("the session answers")
                .expect("the session is running")
        }

        async fn message(&mut self) -> ServerMessage {
            match self.next().await {
                Outbound::Message(message) | Outbound::Push { message, .. } => *message,
                closed => panic!("expected a message, got {closed:?}"),
            }
        }

        async fn close_code(&mut self) -> u16 {
            match self.next().await {
                Outbound::Close { code, .. } => code,
                message => panic!("expected a close, got {message:?}"),
            }
        }
    }

    /// A relay state on the embedded defaults whose identity provider is at `sim_url`.
    fn app(sim_url: &str) -> Arc<AppState> {
        let clock: SharedClock = Arc::new(SystemClock);
        AppState::with_parts(Config::demo(sim_url), Stores::memory(clock.clone()), clock)
            .expect("state")
    }

    #[tokio::test(start_paused = true)]
    async fn a_widget_that_never_says_hello_is_closed_after_the_hello_timeout() {
        let app = app("http://127.0.0.1:9");
        let mut widget = Widget::connect(app);
        assert_eq!(widget.close_code().await, close::TIMEOUT);
    }

    #[tokio::test]
    async fn the_first_frame_must_be_a_hello_in_text() {
        let mut widget = Widget::connect(app("http://127.0.0.1:9"));
        widget
            .send(serde_json::json!({"type": "ping", "nonce": 1}))
            .await;
        assert_eq!(widget.close_code().await, close::BAD_FRAME);

        let mut widget = Widget::connect(app("http://127.0.0.1:9"));
        widget
            .to_relay
            .send(Inbound::Binary)
            .await
            .expect("running");
        assert_eq!(widget.close_code().await, close::UNSUPPORTED);

        let mut widget = Widget::connect(app("http://127.0.0.1:9"));
        widget.send(serde_json::json!({"type": "hello"})).await;
        assert_eq!(widget.close_code().await, close::BAD_FRAME);
    }

    #[tokio::test]
    async fn a_token_that_does_not_verify_is_refused_for_good() {
        let mut widget = Widget::connect(app("http://127.0.0.1:9"));
        widget
            .send(serde_json::json!({"type": "hello", "token": "not.a.token"}))
            .await;
        assert_eq!(widget.close_code().await, close::BAD_TOKEN);
    }

    /// Review F8: with the identity provider's keys unreachable (a relay that just started, its
    /// key cache empty), a good token is not refused for good: the close is retryable.
    #[tokio::test]
    async fn a_jwks_outage_closes_for_a_retry_not_a_sign_out() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let token = sim.sim.idp.issue("alice@example.com", "demo", 600);
        sim.abort();
        // Nothing listens where the keys would be.
        let mut widget = Widget::connect(app("http://127.0.0.1:9"));
        widget
            .send(serde_json::json!({"type": "hello", "token": token}))
            .await;
        assert_eq!(widget.close_code().await, close::TRY_AGAIN);
    }

    /// Review F8: a token signed with a key rotated in moments after the relay fetched the keys
    /// (too soon to fetch them again) closes for a retry, not a sign-out.
    #[tokio::test]
    async fn a_key_too_new_to_be_fetched_yet_closes_for_a_retry_not_a_sign_out() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let rotated = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (jwks, server) =
            crate::identity::jwt::tests::rotating_jwks(&sim, rotated.clone()).await;
        let app = app(&jwks);
        assert!(app.jwt.refresh().await.expect("the old keys"), "fetched");
        rotated.store(true, std::sync::atomic::Ordering::SeqCst);
        let token = sim.sim.idp.issue("alice@example.com", "demo", 600);
        let mut widget = Widget::connect(app);
        widget
            .send(serde_json::json!({"type": "hello", "token": token}))
            .await;
        assert_eq!(widget.close_code().await, close::TRY_AGAIN);
        server.abort();
        sim.abort();
    }

    #[tokio::test]
    async fn a_signed_in_widget_is_welcomed_answered_and_refused_with_reasons() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let app = app(&sim.url());
        let tenant = app.config.tenants[0].id.clone();
        let token = sim.sim.idp.issue("alice@example.com", &tenant, 600);
        let mut widget = Widget::connect(app.clone());

        widget
            .send(serde_json::json!({"type": "hello", "token": token}))
            .await;
        match widget.message().await {
            ServerMessage::Welcome {
                agent,
                tenant: welcomed,
                dispositions,
                custom_1,
                controls,
                ..
            } => {
                assert_eq!(agent, "alice@example.com");
                assert_eq!(welcomed, tenant);
                assert_eq!(dispositions, app.config.tenants[0].dispositions);
                assert_eq!(custom_1, app.config.tenants[0].custom_1);
                // The generic webhook's PBX performs every control.
                assert_eq!(controls, cti_protocol::Control::ALL);
            }
            other => panic!("expected welcome, got {other:?}"),
        }

        widget
            .send(serde_json::json!({"type": "ping", "nonce": 7}))
            .await;
        assert_eq!(widget.message().await, ServerMessage::Pong { nonce: 7 });

        widget
            .send(serde_json::json!({"type": "hello", "token": "again"}))
            .await;
        assert_eq!(
            error_code(widget.message().await),
            ErrorCode::AlreadySignedIn
        );

        widget
            .send(serde_json::json!({"type": "command", "call_id": "nope", "action": "answer"}))
            .await;
        assert_eq!(error_code(widget.message().await), ErrorCode::UnknownCall);

        widget
            .send(serde_json::json!({"type": "dial", "number": "not a number"}))
            .await;
        assert_eq!(error_code(widget.message().await), ErrorCode::InvalidNumber);

        widget
            .send(serde_json::json!({"type": "save_wrap_up", "call_id": "nope", "notes": "x".repeat(20_001)}))
            .await;
        assert_eq!(error_code(widget.message().await), ErrorCode::NotesTooLong);

        let call = crate::calls::leg::fixtures::ringing("c-1", "alice@example.com").view(None);
        app.hub.publish(&tenant, call.clone()).await;
        match widget.message().await {
            ServerMessage::Call { call: pushed, .. } => assert_eq!(pushed, call),
            other => panic!("expected the call, got {other:?}"),
        }

        app.shut_down();
        assert_eq!(widget.close_code().await, close::RESTART);
        sim.abort();
    }

    #[tokio::test]
    async fn a_dial_flood_is_refused_past_the_limit_and_then_closed() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        // Time stands still: nothing refills the buckets during the flood.
        let clock = crate::clock::ManualClock::new(1_700_000_000_000);
        let shared: SharedClock = Arc::new(clock);
        let app = AppState::with_parts(
            Config::demo(&sim.url()),
            Stores::memory(shared.clone()),
            shared,
        )
        .expect("state");
        let token = sim.sim.idp.issue("alice@example.com", "demo", 600);
        let mut widget = Widget::connect(app.clone());
        widget
            .send(serde_json::json!({"type": "hello", "token": token}))
            .await;
        assert!(matches!(
            widget.message().await,
            ServerMessage::Welcome { .. }
        ));

        // Unreadable numbers: a dial that gets through the limits is refused by the number
        // check, so none reaches the phone system and each is visible as its own answer.
        let to_relay = widget.to_relay.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                let frame = serde_json::json!({"type": "dial", "number": "not a number"});
                if to_relay
                    .send(Inbound::Text(frame.to_string()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let (mut through, mut limited) = (0, 0);
        let code = loop {
            match widget.next().await {
                Outbound::Message(message) | Outbound::Push { message, .. } => {
                    match error_code(*message) {
                        ErrorCode::InvalidNumber => through += 1,
                        ErrorCode::RateLimited => limited += 1,
                        other => panic!("unexpected {other}"),
                    }
                }
                Outbound::Close { code, .. } => break code,
            }
        };
        assert_eq!(through, 2, "two dials may follow each other");
        assert_eq!(limited, super::super::throttle::REFUSALS_BEFORE_CLOSE - 1);
        assert_eq!(code, close::RATE_LIMITED);
        sim.abort();
    }

    #[tokio::test]
    async fn a_call_handed_on_takes_no_more_controls_from_the_rep() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let app = app(&sim.url());
        let mut leg = crate::calls::leg::fixtures::ringing("c-7", "alice@example.com");
        leg.state = cti_protocol::CallState::Transferred;
        app.calls.put("demo", &leg).await.expect("stored");
        let token = sim.sim.idp.issue("alice@example.com", "demo", 600);
        let mut widget = Widget::connect(app.clone());
        widget
            .send(serde_json::json!({"type": "hello", "token": token}))
            .await;
        assert!(matches!(
            widget.message().await,
            ServerMessage::Welcome { .. }
        ));
        // Refused before the phone system is asked (which would answer `command_failed`).
        widget
            .send(serde_json::json!({"type": "command", "call_id": "c-7", "action": "hangup"}))
            .await;
        assert_eq!(error_code(widget.message().await), ErrorCode::CallOver);
        sim.abort();
    }

    #[tokio::test]
    async fn a_session_ends_when_its_token_does() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let token = sim.sim.idp.issue("alice@example.com", "demo", 600);
        // The relay's clock says the token (600 s, plus the 30 s leeway) has one second left.
        let now = SystemClock.now_ms();
        let clock = crate::clock::ManualClock::new(now + 600_000 + TOKEN_LEEWAY_MS - 1_000);
        let shared: SharedClock = Arc::new(clock);
        let app = AppState::with_parts(
            Config::demo(&sim.url()),
            Stores::memory(shared.clone()),
            shared,
        )
        .expect("state");
        let mut widget = Widget::connect(app);
        widget
            .send(serde_json::json!({"type": "hello", "token": token}))
            .await;
        assert!(matches!(
            widget.message().await,
            ServerMessage::Welcome { .. }
        ));
        assert_eq!(widget.close_code().await, close::BAD_TOKEN);
        sim.abort();
    }

    #[tokio::test]
    async fn a_reps_token_is_kept_only_where_activities_are_written_with_it() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let clock: SharedClock = Arc::new(SystemClock);
        for (auth, kept) in [
            (crate::authority::AuthMode::Basic, false),
            (crate::authority::AuthMode::OAuth2, false),
            (
                crate::authority::AuthMode::Destination {
                    name: "sscDestination".into(),
                },
                true,
            ),
        ] {
            let mut config = Config::demo(&sim.url());
            config.tenants[0].auth = auth.clone();
            let app = AppState::with_parts(config, Stores::memory(clock.clone()), clock.clone())
                .expect("state");
            let token = sim.sim.idp.issue("alice@example.com", "demo", 600);
            let mut widget = Widget::connect(app.clone());
            widget
                .send(serde_json::json!({"type": "hello", "token": token}))
                .await;
            assert!(matches!(
                widget.message().await,
                ServerMessage::Welcome { .. }
            ));
            let held = app
                .authority
                .user_tokens
                .get("demo", "alice@example.com", clock.now_ms())
                .await
                .is_some();
            assert_eq!(held, kept, "{auth:?}");
        }
        sim.abort();
    }

    fn error_code(message: ServerMessage) -> ErrorCode {
        match message {
            ServerMessage::Error { code, .. } => {
                ErrorCode::parse(&code).unwrap_or_else(|| panic!("unknown code {code}"))
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
