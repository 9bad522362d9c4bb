//! A simulated Genesys Cloud org, under `/sim/genesys`: the relay is configured with the API base
//! `{sim}/sim/genesys` (serving `/api/v2/...`) and the login base `{sim}/sim/genesys/login`
//! (serving `/oauth/token`), exactly as it would be with a region's `https://api.<region>` and
//! `https://login.<region>`.
//!
//! What it plays, after shared/reference/telephony.md section 1 (the Platform API's models and
//! the notification service's lifecycle):
//! - OAuth client credentials (Basic client authentication), bearer tokens that expire;
//! - the user directory (`/api/v2/users`, paged);
//! - notification channels and their subscriptions, and a real WebSocket per channel with
//!   heartbeats, `{"message":"ping"}` answered with a pong, socket-level subscribe messages,
//!   `v2.system.socket_closing`, and channel expiry;
//! - call conversations as full snapshots on `v2.users.{userId}.conversations.calls`, and the
//!   call controls of the Conversations API.
//!
//! Decisions where the reference leaves a behaviour open are marked "inferred" where they are made.
//! The two that shape a client most:
//! - A channel belongs to the token that last created or re-subscribed it: when that token
//!   expires, the channel dies (its socket closed, its id 404), which is how we read "token expiry
//!   kills the channel"; putting or posting its subscriptions with a fresh token re-binds it and
//!   extends its life by the channel lifetime ("re-subscribe to extend"). A client that renews its
//!   token therefore re-subscribes with the new one and keeps its socket (inferred).
//! - A client-credentials token has no user of its own, so whatever Genesys does on behalf of the
//!   token's user needs that user named in the body: `consultingUserId` on a consult (a field of
//!   `ConsultTransfer`), and on `POST /api/v2/conversations/calls` the first entry of
//!   `participants` carrying a `userId` (inferred: the real API places calls from the token's user;
//!   see `http.rs` for the reasoning).
//!
//! Simulator controls (not Genesys): `POST /sim/genesys/calls` rings a rep, `.../{id}/hangup` is
//! the caller hanging up, `.../{id}/answer` the far end of an outbound call answering,
//! `GET /sim/genesys/calls` lists calls, `POST /sim/genesys/faults` breaks sockets and channels,
//! duplicates or reorders snapshots and changes lifetimes.

mod calls;
mod error;
mod http;
mod socket;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::SimConfig;
pub use calls::{CallSummary, Conversation, Participant};
pub use error::GcError;
pub use http::routes;

/// Most topics one channel takes (reference 1.1).
pub const MAX_TOPICS: usize = 1_000;

/// Whether a topic is one a channel may subscribe to: the conversation topics of known users
/// (inferred: Genesys refuses topics it does not know with a 400; `v2.system.*` and
/// `channel.metadata` reach every socket without a subscription).
pub(crate) fn known_topic(users: &[User], topic: &str) -> bool {
    if let Some(rest) = topic.strip_prefix("v2.users.")
        && let Some(user) = rest
            .strip_suffix(".conversations.calls")
            .or_else(|| rest.strip_suffix(".conversations"))
    {
        return users.iter().any(|u| u.id == user);
    }
    false
}

/// The demo reps, in the directory in this order, with fixed ids so logs and tests can name them.
pub const DEMO_USERS: [(&str, &str, &str); 4] = [
    (
        "2d3c1a8e-7f41-4a55-9c1e-0a1b2c3d4e01",
        "Alice Demo",
        "alice@example.com",
    ),
    (
        "2d3c1a8e-7f41-4a55-9c1e-0a1b2c3d4e02",
        "Bob Demo",
        "bob@example.com",
    ),
    (
        "2d3c1a8e-7f41-4a55-9c1e-0a1b2c3d4e03",
        "Carol Demo",
        "carol@example.com",
    ),
    (
        "2d3c1a8e-7f41-4a55-9c1e-0a1b2c3d4e04",
        "Dave Demo",
        "dave@example.com",
    ),
];

/// A user of the directory.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
}

/// Lifetimes and faults, changeable at run time through `/sim/genesys/faults` so tests can make a
/// token or a channel expire.
#[derive(Debug, Clone)]
pub(crate) struct Knobs {
    pub(crate) token_ttl: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) channel_ttl: Duration,
    pub(crate) closing_grace: Duration,
    /// Every later snapshot is sent twice.
    pub(crate) duplicate: bool,
    /// Every later snapshot is held back until the next one has gone (or a moment passed).
    pub(crate) reorder: bool,
    /// Sockets send no heartbeats and answer no pings (a connection dead at the far end).
    pub(crate) mute: bool,
}

/// What a socket task is told to send.
#[derive(Debug)]
pub(crate) enum Out {
    /// A topic event: subject to the duplicate and reorder faults.
    Event(String),
    /// `v2.system.socket_closing`, then the close after the grace.
    Closing,
    /// Close now.
    Close,
}

#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) id: String,
    pub(crate) expires: Instant,
    pub(crate) topics: BTreeSet<String>,
    /// The token the channel lives with (see the module's notes).
    pub(crate) token: String,
    /// The connected socket: its number (a second connection replaces the first) and its queue.
    pub(crate) socket: Option<(u64, mpsc::UnboundedSender<Out>)>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) tokens: HashMap<String, Instant>,
    pub(crate) users: Vec<User>,
    pub(crate) channels: HashMap<String, Channel>,
    pub(crate) conversations: HashMap<String, Conversation>,
    pub(crate) created: u64,
    pub(crate) sockets: u64,
    pub(crate) tokens_issued: u64,
    pub(crate) pings: u64,
    pub(crate) knobs: Knobs,
}

/// The simulated org.
#[derive(Debug)]
pub struct Genesys {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// The org's number customers dial (the `dnis` of inbound calls).
    pub(crate) did: String,
    pub(crate) default_agent: String,
    state: Mutex<State>,
}

impl Genesys {
    pub fn new(config: &SimConfig) -> Self {
        let mut users: Vec<User> = DEMO_USERS
            .iter()
            .map(|(id, name, email)| User {
                id: (*id).into(),
                name: (*name).into(),
                email: (*email).into(),
            })
            .collect();
        users.extend((0..config.genesys_extra_users).map(|n| User {
            id: format!("00000000-0000-4000-8000-{n:012}"),
            name: format!("User {n}"),
            email: format!("user-{n}@example.com"),
        }));
        Genesys {
            client_id: config.genesys_client_id.clone(),
            client_secret: config.genesys_client_secret.clone(),
            did: config
                .demo_agent_number
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect(),
            default_agent: config.demo_agent.clone(),
            state: Mutex::new(State {
                tokens: HashMap::new(),
                users,
                channels: HashMap::new(),
                conversations: HashMap::new(),
                created: 0,
                sockets: 0,
                tokens_issued: 0,
                pings: 0,
                knobs: Knobs {
                    token_ttl: Duration::from_secs(config.genesys_token_ttl_secs),
                    heartbeat: Duration::from_millis(config.genesys_heartbeat_ms.max(1)),
                    channel_ttl: Duration::from_secs(config.genesys_channel_ttl_secs),
                    closing_grace: Duration::from_millis(config.genesys_socket_closing_grace_ms),
                    duplicate: false,
                    reorder: false,
                    mute: false,
                },
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The directory's users.
    pub fn users(&self) -> Vec<User> {
        self.lock().users.clone()
    }

    /// Adds a user to the directory (a rep joining the org); their id.
    pub fn add_user(&self, name: &str, email: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.lock().users.push(User {
            id: id.clone(),
            name: name.into(),
            email: email.into(),
        });
        id
    }

    /// The id of the user with this e-mail.
    pub fn user_id(&self, email: &str) -> Option<String> {
        self.lock()
            .users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .map(|u| u.id.clone())
    }

    /// A customer calls `agent` (an e-mail or user id), as `POST /sim/genesys/calls` does; the
    /// conversation id.
    pub fn ring(&self, from: &str, agent: &str) -> Result<String, GcError> {
        self.lock().ring(from, agent, &self.did)
    }

    /// Every call, oldest first.
    pub fn calls(&self) -> Vec<CallSummary> {
        let state = self.lock();
        let mut list: Vec<&Conversation> = state.conversations.values().collect();
        list.sort_by_key(|c| c.created);
        list.into_iter().map(|c| c.summary(&state.users)).collect()
    }

    /// A snapshot of one conversation, as `GET /api/v2/conversations/calls/{id}` answers it.
    pub fn conversation(&self, id: &str) -> Option<serde_json::Value> {
        self.lock().conversations.get(id).map(Conversation::body)
    }

    /// Mutes or unmutes the sockets, as the `mute` fault does.
    pub fn set_mute(&self, mute: bool) {
        self.lock().knobs.mute = mute;
    }

    /// How many `{"message":"ping"}` the sockets heard.
    pub fn pings(&self) -> u64 {
        self.lock().pings
    }

    /// Each live channel's topic count, sorted.
    pub fn topic_counts(&self) -> Vec<usize> {
        let mut state = self.lock();
        state.sweep();
        let mut counts: Vec<usize> = state.channels.values().map(|c| c.topics.len()).collect();
        counts.sort_unstable();
        counts
    }

    /// How many tokens the login host has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.lock().tokens_issued
    }

    /// The ids of the live channels, sorted.
    pub fn channel_ids(&self) -> Vec<String> {
        let mut state = self.lock();
        state.sweep();
        let mut ids: Vec<String> = state.channels.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// How many channels exist and how many have a socket connected (for tests).
    pub fn channel_counts(&self) -> (usize, usize) {
        let mut state = self.lock();
        state.sweep();
        let live = state.channels.len();
        let connected = state
            .channels
            .values()
            .filter(|c| c.socket.as_ref().is_some_and(|(_, tx)| !tx.is_closed()))
            .count();
        (live, connected)
    }
}

impl State {
    /// Whether a bearer token is one we issued and still valid.
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|expires| *expires > Instant::now())
    }

    /// Forgets expired tokens and the channels that died with them or with their own lifetime,
    /// closing their sockets.
    pub(crate) fn sweep(&mut self) {
        let now = Instant::now();
        self.tokens.retain(|_, expires| *expires > now);
        let tokens = &self.tokens;
        self.channels.retain(|_, channel| {
            let alive = channel.expires > now && tokens.contains_key(&channel.token);
            if !alive && let Some((_, tx)) = channel.socket.take() {
                let _ = tx.send(Out::Close);
            }
            alive
        });
    }

    /// Sends a conversation's snapshot on every subscribed channel, once per topic of each of its
    /// users (a channel subscribed to two of them hears it twice, as Genesys sends per topic).
    pub(crate) fn publish(&mut self, conversation_id: &str) {
        self.sweep();
        let Some(conversation) = self.conversations.get(conversation_id) else {
            return;
        };
        let body = conversation.body();
        let mut users: Vec<&str> = conversation
            .participants
            .iter()
            .filter_map(|p| p.user.as_ref().map(|u| u.id.as_str()))
            .collect();
        users.dedup();
        let mut seen = BTreeSet::new();
        for user in users {
            if !seen.insert(user.to_string()) {
                continue;
            }
            let topic = format!("v2.users.{user}.conversations.calls");
            let envelope = serde_json::json!({
                "topicName": topic,
                "version": "2",
                "eventBody": body,
                "metadata": {"CorrelationId": uuid::Uuid::new_v4().to_string()},
            })
            .to_string();
            for channel in self.channels.values() {
                if channel.topics.contains(&topic)
                    && let Some((_, tx)) = &channel.socket
                {
                    let _ = tx.send(Out::Event(envelope.clone()));
                }
            }
        }
    }
}

/// `2026-11-24T10:00:00.123Z`, Genesys' timestamp form.
pub(crate) fn now_iso() -> String {
    let now = time::OffsetDateTime::now_utc();
    let ms = now.millisecond();
    let now = now
        .replace_nanosecond(u32::from(ms) * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A phone number for log lines: all digits but the last four masked.
pub(crate) fn mask(number: &str) -> String {
    crate::pbx::mask_number(number)
}
