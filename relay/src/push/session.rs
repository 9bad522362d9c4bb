//! One widget connection, as a conversation over two channels.
//!
//! The session knows nothing of sockets: frames come in on one channel and go out on another, so
//! tests drive it directly and the WebSocket handler only pumps frames. Close codes:
//! 4400 bad frame, 4401 bad token, 4403 unknown tenant, 4408 no hello or heartbeat in time,
//! 4409 too far behind (reconnect to resume), 1003 binary frame.

use std::sync::Arc;
use std::time::Duration;

use cti_protocol::ws::{CallCommand, ClientMessage, ServerMessage};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};

use crate::auth::AgentIdentity;
use crate::state::AppState;

/// A frame from the widget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Text(String),
    Binary,
}

/// A frame to the widget.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Message(Box<ServerMessage>),
    Close { code: u16, reason: String },
}

pub const CLOSE_BAD_FRAME: u16 = 4400;
pub const CLOSE_BAD_TOKEN: u16 = 4401;
pub const CLOSE_UNKNOWN_TENANT: u16 = 4403;
pub const CLOSE_TIMEOUT: u16 = 4408;
pub const CLOSE_LAGGED: u16 = 4409;
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// The relay is restarting (or this instance is stopping): reconnect.
pub const CLOSE_RESTART: u16 = 1012;

/// Why the session ended, for the metrics label.
fn reason_label(code: u16) -> &'static str {
    match code {
        CLOSE_BAD_FRAME => "bad_frame",
        CLOSE_BAD_TOKEN => "bad_token",
        CLOSE_UNKNOWN_TENANT => "unknown_tenant",
        CLOSE_TIMEOUT => "timeout",
        CLOSE_LAGGED => "lagged",
        CLOSE_UNSUPPORTED => "unsupported",
        CLOSE_RESTART => "restart",
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

/// Runs one connection until either side ends it.
pub async fn run(
    state: Arc<AppState>,
    mut inbound: mpsc::Receiver<Inbound>,
    out: mpsc::Sender<Outbound>,
) {
    let conv = Conversation {
        state: &state,
        out: &out,
    };
    let hello_timeout = state.config.hello_timeout;
    let first = match timeout(hello_timeout, inbound.recv()).await {
        Err(_) => {
            conv.close(
                CLOSE_TIMEOUT,
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
            conv.close(CLOSE_BAD_FRAME, "the first frame must be hello")
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
        Err(err) => {
            conv.close(CLOSE_BAD_TOKEN, format!("invalid token: {err}"))
                .await;
            return;
        }
    };
    if state.tenant(&identity.tenant).is_none() {
        conv.close(
            CLOSE_UNKNOWN_TENANT,
            "this tenant is not configured on the relay",
        )
        .await;
        return;
    }
    if state
        .tenant(&identity.tenant)
        .is_some_and(|t| t.auth != crate::authority::AuthMode::Basic)
    {
        // Kept to write this rep's activities on their authority, also after they close the widget.
        state
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
        host_origins: state.config.host_origins.clone(),
        dispositions: state
            .tenant(&who.tenant)
            .map(|t| t.config.dispositions.clone())
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
                        | ClientMessage::ConfirmConsent { .. })) => {
                        let (state, who, out) = (state.clone(), who.clone(), conv.out.clone());
                        tokio::spawn(async move {
                            if let Err(refusal) = act(&state, &who, message).await {
                                let message = ServerMessage::from(refusal);
                                let _ = out.send(Outbound::Message(Box::new(message))).await;
                            }
                        });
                    }
                    Ok(ClientMessage::Hello { .. }) => {
                        let error = ServerMessage::Error {
                            code: "already_signed_in".into(),
                            message: "hello is only valid as the first frame".into(),
                        };
                        if !conv.send(error).await { return; }
                    }
                    Ok(_) => {
                        let error = ServerMessage::Error {
                            code: "unsupported".into(),
                            message: "this message type is not supported".into(),
                        };
                        if !conv.send(error).await { return; }
                    }
                    Err((code, reason)) => {
                        conv.close(code, reason).await;
                        return;
                    }
                }
            }
            pushed = subscription.live.recv() => match pushed {
                Ok(pushed) if pushed.seq <= sent => {}
                Ok(pushed) => {
                    sent = pushed.seq;
                    let message = ServerMessage::Call { seq: pushed.seq, call: pushed.call };
                    if !conv.send(message).await { return; }
                }
                Err(RecvError::Lagged(_)) => {
                    conv.close(CLOSE_LAGGED, "too far behind; reconnect with last_seq to resume").await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            _ = subscription.resync.changed() => {
                conv.close(CLOSE_RESTART, "resync: reconnect to catch up").await;
                return;
            }
            () = state.stopping() => {
                conv.close(CLOSE_RESTART, "the relay is restarting").await;
                return;
            }
            () = sign_in.due() => {
                if let Some(connected) = sign_in.check().await
                    && !conv.send(ServerMessage::V2SignIn { connected }).await
                {
                    return;
                }
            }
            () = sleep_until(deadline) => {
                conv.close(CLOSE_TIMEOUT, format!("no message for {} s", idle.as_secs())).await;
                return;
            }
        }
    }
}

/// Follows whether V2 holds the rep's own sign-in (tenants in `oauth2` mode), so the widget
/// learns that "Connect V2" worked, or that it is needed again. The sign-in completes in
/// another window and maybe on another instance, so the session looks at the shared vault:
/// often while the rep is not connected, rarely once they are.
struct SignInWatch<'a> {
    state: &'a Arc<AppState>,
    who: &'a AgentIdentity,
    /// What the widget was last told; `None` before the first look.
    told: Option<bool>,
    next: Option<Instant>,
}

const SIGN_IN_CHECK_NOT_CONNECTED: Duration = Duration::from_secs(2);
const SIGN_IN_CHECK_CONNECTED: Duration = Duration::from_secs(30);

impl<'a> SignInWatch<'a> {
    fn new(state: &'a Arc<AppState>, who: &'a AgentIdentity) -> Self {
        let watched = state
            .tenant(&who.tenant)
            .is_some_and(|t| t.auth == crate::authority::AuthMode::OAuth2);
        SignInWatch {
            state,
            who,
            told: None,
            next: watched.then(Instant::now),
        }
    }

    /// Never fires for tenants that do not use the reps' own sign-in.
    async fn due(&self) {
        match self.next {
            Some(at) => sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// The status to send, when it is new.
    async fn check(&mut self) -> Option<bool> {
        self.next?;
        let tenant = self.state.tenant(&self.who.tenant)?;
        let looked =
            crate::authority::oauth2::is_connected(self.state, tenant, &self.who.agent).await;
        let connected = match looked {
            Ok(connected) => connected,
            Err(err) => {
                // Unknown is not news: keep what the widget was told and look again soon.
                tracing::warn!(%err, "cannot tell whether the rep connected V2");
                self.next = Some(Instant::now() + SIGN_IN_CHECK_NOT_CONNECTED);
                return None;
            }
        };
        let every = if connected {
            SIGN_IN_CHECK_CONNECTED
        } else {
            SIGN_IN_CHECK_NOT_CONNECTED
        };
        self.next = Some(Instant::now() + every);
        (self.told != Some(connected)).then(|| {
            self.told = Some(connected);
            connected
        })
    }
}

/// A request of the rep's that failed: sent back as an `error` message, the connection stays.
#[derive(Debug)]
struct Refusal {
    code: String,
    message: String,
}

impl From<Refusal> for ServerMessage {
    fn from(r: Refusal) -> Self {
        ServerMessage::Error {
            code: r.code,
            message: r.message,
        }
    }
}

/// Carries out one of the rep's requests; an error message for the widget when it failed.
async fn act(
    state: &Arc<AppState>,
    who: &AgentIdentity,
    message: ClientMessage,
) -> Result<(), Refusal> {
    match message {
        ClientMessage::Command { call_id, command } => {
            run_command(state, who, &call_id, &command).await
        }
        ClientMessage::Dial { number } => dial(state, who, &number).await,
        ClientMessage::ChooseMatch { call_id, record_id } => {
            choose(state, who, &call_id, &record_id).await
        }
        ClientMessage::SaveWrapUp {
            call_id,
            notes,
            disposition,
        } => {
            let tenant = known_tenant(state, who)?;
            crate::activity::wrap_up::save(state, tenant, &who.agent, &call_id, notes, disposition)
                .await
                .map_err(wrap_up_error)
        }
        ClientMessage::ConfirmConsent { call_id } => {
            let tenant = known_tenant(state, who)?;
            crate::activity::wrap_up::confirm_consent(state, tenant, &who.agent, &call_id)
                .await
                .map_err(wrap_up_error)
        }
        ClientMessage::RetryActivity { call_id } => {
            let tenant = known_tenant(state, who)?;
            crate::activity::wrap_up::retry(state, tenant, &who.agent, &call_id)
                .await
                .map_err(wrap_up_error)
        }
        _ => Ok(()),
    }
}

fn known_tenant<'a>(
    state: &'a AppState,
    who: &AgentIdentity,
) -> Result<&'a Arc<crate::state::Tenant>, Refusal> {
    state.tenant(&who.tenant).ok_or_else(|| Refusal {
        code: "unknown_tenant".into(),
        message: "this tenant is not configured".into(),
    })
}

fn wrap_up_error(err: crate::activity::wrap_up::WrapUpError) -> Refusal {
    Refusal {
        code: err.code().into(),
        message: err.to_string(),
    }
}

fn parse(frame: &Inbound) -> Result<ClientMessage, (u16, String)> {
    match frame {
        Inbound::Binary => Err((CLOSE_UNSUPPORTED, "binary frames are not supported".into())),
        Inbound::Text(text) => serde_json::from_str(text)
            .map_err(|e| (CLOSE_BAD_FRAME, format!("malformed frame: {e}"))),
    }
}

/// Click-to-dial: normalize with the tenant's region and ask the provider to place the call; the
/// error message for the widget.
async fn dial(state: &Arc<AppState>, who: &AgentIdentity, number: &str) -> Result<(), Refusal> {
    let error = |code: &str, message: String| Refusal {
        code: code.into(),
        message,
    };
    let Some(tenant) = state.tenant(&who.tenant) else {
        return Err(error(
            "unknown_tenant",
            "this tenant is not configured".into(),
        ));
    };
    if number.len() > 64 {
        return Err(error(
            "invalid_number",
            "the number to dial is longer than 64 characters".into(),
        ));
    }
    let e164 = crate::numbers::normalize(number, &tenant.region)
        .map_err(|err| error("invalid_number", format!("cannot dial that number: {err}")))?
        .e164;
    match tenant.adapter.dial(&tenant.config, &who.agent, &e164).await {
        Ok(call_id) => {
            state.metrics.command("dial", "ok");
            tracing::info!(to = %crate::secret::mask_number(&e164), call = ?call_id, "dialling for the rep");
            Ok(())
        }
        Err(err) => {
            state.metrics.command("dial", "failed");
            tracing::warn!(%err, "dialling failed");
            Err(error("dial_failed", err.to_string()))
        }
    }
}

/// The rep's pick among a call's matches; the error message for the widget.
async fn choose(
    state: &Arc<AppState>,
    who: &AgentIdentity,
    call_id: &str,
    record_id: &str,
) -> Result<(), Refusal> {
    let Some(tenant) = state.tenant(&who.tenant) else {
        return Err(Refusal {
            code: "unknown_tenant".into(),
            message: "this tenant is not configured".into(),
        });
    };
    crate::pipeline::choose_match(state, tenant, &who.agent, call_id, record_id)
        .await
        .map_err(|err| {
            let code = match err {
                crate::pipeline::ChooseError::UnknownCall(_) => "unknown_call",
                crate::pipeline::ChooseError::NotAMatch(_) => "not_a_match",
                crate::pipeline::ChooseError::Unavailable(_) => "unavailable",
            };
            Refusal {
                code: code.into(),
                message: err.to_string(),
            }
        })
}

/// Forwards a call control to the provider of the rep's call; the error message for the widget.
async fn run_command(
    state: &Arc<AppState>,
    who: &AgentIdentity,
    call_id: &str,
    command: &CallCommand,
) -> Result<(), Refusal> {
    let error = |code: &str, message: String| Refusal {
        code: code.into(),
        message,
    };
    let Some(tenant) = state.tenant(&who.tenant) else {
        return Err(error(
            "unknown_tenant",
            "this tenant is not configured".into(),
        ));
    };
    let call = match state.calls.get(&who.tenant, call_id, &who.agent).await {
        Ok(Some(call)) => call,
        Ok(None) => {
            return Err(error(
                "unknown_call",
                format!("no call {call_id:?} for this rep"),
            ));
        }
        Err(err) => return Err(error("unavailable", err.to_string())),
    };
    match tenant.adapter.command(&tenant.config, &call, command).await {
        Ok(()) => {
            state.metrics.command(command.name(), "ok");
            Ok(())
        }
        Err(err) => {
            state.metrics.command(command.name(), "failed");
            tracing::warn!(%err, call = %call_id, "call control failed");
            Err(error("command_failed", err.to_string()))
        }
    }
}
