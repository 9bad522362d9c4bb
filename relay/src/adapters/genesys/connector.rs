//! One run of the Genesys connector: notification channels for every rep's call topic, their
//! sockets watched, rolled before they die, and the calls of the gap read back.
//!
//! A run: read the user directory (reps by e-mail, plus the overrides); open one channel per
//! 1,000 topics (`POST /api/v2/notifications/channels`, connect its `connectUri`, then `PUT` its
//! subscriptions, so nothing published after the subscription misses the socket); report up;
//! catch up; then serve the sockets. A socket that says `v2.system.socket_closing`, or whose
//! channel nears the end of its life, is replaced by a new channel, connected and subscribed
//! before the old one is dropped, so no event falls between (both may deliver the same snapshot
//! for a moment: the tracker drops the second). A token due for renewal is renewed and every
//! channel's subscriptions put again with it, which keeps the channels alive (how the simulator
//! reads "token expiry kills the channel", inferred). A socket that falls silent for a minute
//! (heartbeats come about every 30 s) gets `{"message":"ping"}`; no answer, a closed socket or
//! an expired channel ends the run with an error, and the next run catches up. The directory is
//! read again every ten minutes; when the reps' users changed, new channels for the new topics
//! replace the old ones (again connected and subscribed first) and the calls are read back.
//!
//! The catch-up (inferred; the reference names none for client credentials): the analytics
//! conversation details query for the reps' conversations under way, plus every conversation
//! of theirs started in the last hour (one that ended while the relay was away), plus every
//! conversation the tracker still has open and every call the relay holds as live
//! ([`Link::live_calls`]); each read with `GET /api/v2/conversations/calls/{id}`
//! and applied like a notification. Analytics data may lag real time by seconds; a snapshot read
//! is applied only if it is newer than what was seen, so a lagging read loses nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Shared;
use super::api::ApiError;
use super::mapping::Snapshot;
use crate::adapters::connector::Undelivered;
use crate::adapters::{Link, LinkError};
use cti_protocol::event::EventType;

/// Topics one channel takes (reference 1.1).
const MAX_TOPICS: usize = 1_000;
/// How long the connector lets a socket be silent and waits for a pong.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Silence after which the socket is pinged: two heartbeats (about every 30 s) missed.
    pub(crate) silent: Duration,
    /// How long a ping waits for its pong.
    pub(crate) pong_wait: Duration,
    /// How often the user directory is read again, so a rep added to (or removed from) the org
    /// is subscribed (or dropped) without a restart.
    pub(crate) directory: Duration,
    /// How long after a hold change its conversation is read back: snapshots carry no sequence,
    /// so two hold changes swapped in flight can only be set right by the org's current state.
    pub(crate) recheck: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            silent: Duration::from_secs(60),
            pong_wait: Duration::from_secs(15),
            directory: Duration::from_secs(600),
            recheck: Duration::from_secs(1),
        }
    }
}
/// How long before a channel's end it is replaced (at most; a fifth of its life when shorter).
const ROLL_BEFORE: Duration = Duration::from_secs(600);
/// Users per catch-up query.
const QUERY_USERS: usize = 100;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the socket readers hand the run: a text frame, or the end of a socket.
#[derive(Debug)]
enum Frame {
    Text(u64, String),
    Closed(u64, String),
}

#[derive(Debug)]
struct Socket {
    number: u64,
    channel: String,
    topics: Vec<String>,
    sink: SplitSink<Ws, Message>,
    reader: JoinHandle<()>,
    last_heard: Instant,
    ping_sent: Option<Instant>,
    roll_at: Instant,
}

impl Drop for Socket {
    /// The reader is a task of its own: it would keep the socket open after the run is gone.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn lost(what: impl std::fmt::Display) -> LinkError {
    LinkError(what.to_string())
}

pub(super) async fn run(shared: Arc<Shared>, link: Link) -> Result<(), LinkError> {
    let mut sockets = Vec::new();
    let result = session(&shared, &link, &mut sockets).await;
    link.down();
    drop(sockets);
    if let Err(err) = &result {
        link.error(&format!("Genesys Cloud: {err}"));
    }
    result
}

async fn session(shared: &Shared, link: &Link, sockets: &mut Vec<Socket>) -> Result<(), LinkError> {
    let count = shared
        .load_directory()
        .await
        .map_err(|e| lost(format!("reading the user directory: {e}")))?;
    let mut users = shared.reps.users();
    if users.is_empty() {
        return Err(lost(format!(
            "none of the {count} users of the directory is a rep (no e-mail, no override)"
        )));
    }
    let topics = topics_of(&users);
    let (frames, mut inbox) = mpsc::channel(256);
    let mut numbers = 0u64;
    for chunk in topics.chunks(MAX_TOPICS) {
        numbers += 1;
        sockets.push(open(shared, chunk.to_vec(), numbers, frames.clone()).await?);
    }
    link.up();
    tracing::info!(tenant = %shared.tenant, channels = sockets.len(), topics = topics.len(),
        "Genesys Cloud notifications connected");
    catch_up(shared, link, &users).await?;
    tracing::debug!(tenant = %shared.tenant, "caught up");
    let timing = shared.timing;
    let mut directory_at = Instant::now() + timing.directory;
    let mut rechecks: Vec<(String, Instant)> = Vec::new();
    loop {
        let renew_at = shared
            .api
            .renew_at()
            .await
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        let next = sockets
            .iter()
            .map(|s| {
                let watch = match s.ping_sent {
                    Some(sent) => sent + timing.pong_wait,
                    None => s.last_heard + timing.silent,
                };
                watch.min(s.roll_at)
            })
            .chain(rechecks.iter().map(|(_, at)| *at))
            .fold(renew_at.min(directory_at), Instant::min);
        tokio::select! {
            frame = inbox.recv() => match frame {
                Some(Frame::Text(number, text)) => {
                    let Some(index) = sockets.iter().position(|s| s.number == number) else {
                        continue;
                    };
                    sockets[index].last_heard = Instant::now();
                    sockets[index].ping_sent = None;
                    match handle(shared, link, &text).await? {
                        Heard::SocketClosing => {
                        tracing::info!(tenant = %shared.tenant, "Genesys Cloud socket closing; rolling to a new channel");
                        numbers += 1;
                        roll(shared, sockets, index, numbers, &frames).await?;
                        }
                        Heard::HoldChanged(id) => {
                            if !rechecks.iter().any(|(known, _)| *known == id) {
                                rechecks.push((id, Instant::now() + timing.recheck));
                            }
                        }
                        Heard::Other => {}
                    }
                }
                Some(Frame::Closed(number, why)) => {
                    if sockets.iter().any(|s| s.number == number) {
                        return Err(lost(format!("the notification socket closed ({why})")));
                    }
                }
                None => return Err(lost("the socket readers stopped")),
            },
            () = sleep_until(next) => {
                let now = Instant::now();
                if renew_at <= now {
                    renew(shared, sockets).await?;
                }
                let due: Vec<String> = rechecks
                    .iter()
                    .filter(|(_, at)| *at <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                rechecks.retain(|(_, at)| *at > now);
                for id in due {
                    match shared.snapshot(&id).await {
                        Ok(snapshot) => {
                            deliver(shared, link, snapshot).await?;
                        }
                        Err(ApiError::Status { status: 404, .. }) => {}
                        Err(e) => link.error(&format!("Genesys Cloud: reading a call back: {e}")),
                    }
                }
                if directory_at <= now {
                    directory_at = now + timing.directory;
                    if let Some(fresh) = reread_directory(shared, link, &users).await {
                        let mut replacement = Vec::new();
                        for chunk in topics_of(&fresh).chunks(MAX_TOPICS) {
                            numbers += 1;
                            replacement.push(open(shared, chunk.to_vec(), numbers, frames.clone()).await?);
                        }
                        // The new channels listen before the old ones go.
                        *sockets = replacement;
                        users = fresh;
                        catch_up(shared, link, &users).await?;
                        continue;
                    }
                }
                let mut index = 0;
                while index < sockets.len() {
                    let socket = &mut sockets[index];
                    if let Some(sent) = socket.ping_sent {
                        if sent + timing.pong_wait <= now {
                            return Err(lost("the notification socket did not answer a ping"));
                        }
                    } else if socket.last_heard + timing.silent <= now {
                        socket.ping_sent = Some(now);
                        let ping = json!({"message": "ping"}).to_string();
                        socket
                            .sink
                            .send(Message::Text(ping.into()))
                            .await
                            .map_err(|e| lost(format!("pinging the notification socket: {e}")))?;
                    }
                    if sockets[index].roll_at <= now {
                        numbers += 1;
                        roll(shared, sockets, index, numbers, &frames).await?;
                    }
                    index += 1;
                }
            }
        }
    }
}

fn topics_of(users: &[String]) -> Vec<String> {
    users
        .iter()
        .map(|u| format!("v2.users.{u}.conversations.calls"))
        .collect()
}

/// The directory read again; the reps' users when they changed. A failed read is reported and
/// changes nothing: the channels serve on.
async fn reread_directory(shared: &Shared, link: &Link, users: &[String]) -> Option<Vec<String>> {
    if let Err(e) = shared.load_directory().await {
        link.error(&format!("Genesys Cloud: reading the user directory: {e}"));
        return None;
    }
    let fresh = shared.reps.users();
    (fresh != users && !fresh.is_empty()).then_some(fresh)
}

/// A new channel for these topics, connected and subscribed.
async fn open(
    shared: &Shared,
    topics: Vec<String>,
    number: u64,
    frames: mpsc::Sender<Frame>,
) -> Result<Socket, LinkError> {
    let channel = shared
        .api
        .call(Method::POST, "/api/v2/notifications/channels", None)
        .await
        .map_err(|e| lost(format!("creating a notification channel: {e}")))?;
    let (Some(id), Some(uri)) = (channel["id"].as_str(), channel["connectUri"].as_str()) else {
        return Err(lost(
            "the notification channel came without id or connectUri",
        ));
    };
    let life = channel["expires"]
        .as_str()
        .and_then(crate::clock::instant)
        .map(|expires| {
            let now_ms = shared.context.clock.now_ms();
            let expires_ms = u64::try_from(expires.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            Duration::from_millis(expires_ms.saturating_sub(now_ms))
        })
        .unwrap_or(Duration::from_secs(24 * 3600));
    let (ws, _) = tokio_tungstenite::connect_async(uri)
        .await
        .map_err(|e| lost(format!("connecting the notification socket: {e}")))?;
    let (sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move {
        let why = loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    if frames
                        .send(Frame::Text(number, text.to_string()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break frame
                        .map_or_else(|| "closed".to_string(), |f| format!("closed: {}", f.reason));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "ended".to_string(),
            }
        };
        let _ = frames.send(Frame::Closed(number, why)).await;
    });
    let socket = Socket {
        number,
        channel: id.to_string(),
        topics,
        sink,
        reader,
        last_heard: Instant::now(),
        ping_sent: None,
        roll_at: Instant::now() + life.saturating_sub(ROLL_BEFORE.min(life / 5)),
    };
    subscribe(shared, &socket).await?;
    Ok(socket)
}

/// Puts the socket's topics on its channel (again).
async fn subscribe(shared: &Shared, socket: &Socket) -> Result<(), LinkError> {
    let body: Vec<Value> = socket.topics.iter().map(|t| json!({"id": t})).collect();
    shared
        .api
        .call(
            Method::PUT,
            &format!(
                "/api/v2/notifications/channels/{}/subscriptions",
                super::segment(&socket.channel)
            ),
            Some(&Value::Array(body)),
        )
        .await
        .map(drop)
        .map_err(|e| lost(format!("subscribing the notification channel: {e}")))
}

/// Replaces the socket at `index` with a new channel of the same topics, the new one connected
/// and subscribed before the old one is dropped.
async fn roll(
    shared: &Shared,
    sockets: &mut [Socket],
    index: usize,
    number: u64,
    frames: &mpsc::Sender<Frame>,
) -> Result<(), LinkError> {
    let topics = sockets[index].topics.clone();
    let fresh = open(shared, topics, number, frames.clone()).await?;
    let mut old = std::mem::replace(&mut sockets[index], fresh);
    let _ = old.sink.close().await;
    Ok(())
}

/// A new token, and every channel re-subscribed with it.
async fn renew(shared: &Shared, sockets: &mut [Socket]) -> Result<(), LinkError> {
    tracing::debug!(tenant = %shared.tenant, "renewing the Genesys Cloud token");
    shared
        .api
        .renew()
        .await
        .map_err(|e| lost(format!("renewing the token: {e}")))?;
    for socket in sockets.iter() {
        subscribe(shared, socket).await?;
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Heard {
    Other,
    SocketClosing,
    /// A snapshot changed a rep's hold: the conversation is read back a moment later.
    HoldChanged(String),
}

/// What one text frame of a socket says, before anything is applied.
#[derive(Debug)]
pub(crate) enum Notification {
    Other,
    SocketClosing,
    Snapshot(Box<Snapshot>),
    /// A call event whose body is not a conversation: why.
    Unreadable(String),
}

/// Reads one text frame (the notification channel's untrusted input).
pub(crate) fn read(text: &str) -> Notification {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return Notification::Other;
    };
    let topic = message["topicName"].as_str().unwrap_or("");
    if topic == "v2.system.socket_closing" {
        return Notification::SocketClosing;
    }
    if topic.starts_with("v2.users.") && topic.ends_with(".conversations.calls") {
        return match serde_json::from_value::<Snapshot>(message["eventBody"].clone()) {
            Ok(snapshot) => Notification::Snapshot(Box::new(snapshot)),
            Err(e) => Notification::Unreadable(e.to_string()),
        };
    }
    Notification::Other
}

/// One text frame of a socket.
async fn handle(shared: &Shared, link: &Link, text: &str) -> Result<Heard, LinkError> {
    match read(text) {
        Notification::Other => Ok(Heard::Other),
        Notification::SocketClosing => Ok(Heard::SocketClosing),
        Notification::Snapshot(snapshot) => {
            let id = snapshot.id.clone();
            if deliver(shared, link, *snapshot).await? {
                return Ok(Heard::HoldChanged(id));
            }
            Ok(Heard::Other)
        }
        Notification::Unreadable(e) => {
            link.error(&format!("Genesys Cloud: an unreadable call event: {e}"));
            Ok(Heard::Other)
        }
    }
}

/// Applies a snapshot and hands its events to the relay, in order. A failure forgets the
/// conversation, so the next run's catch-up derives its events again.
async fn deliver(shared: &Shared, link: &Link, snapshot: Snapshot) -> Result<bool, LinkError> {
    let conversation = snapshot.id.clone();
    let mut hold_changed = false;
    for event in shared.apply(snapshot) {
        hold_changed |= matches!(event.event_type, EventType::Held | EventType::Resumed);
        match link.deliver(event).await {
            Ok(()) => {}
            Err(Undelivered::Closed) => return Err(lost("the relay is stopping")),
            Err(Undelivered::Failed(e)) => {
                shared.tracker().forget(&conversation);
                return Err(lost(format!("the relay could not apply a call event: {e}")));
            }
        }
    }
    Ok(hold_changed)
}

fn iso(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Reads back the calls of the reps that may have changed while no socket listened.
async fn catch_up(shared: &Shared, link: &Link, users: &[String]) -> Result<(), LinkError> {
    let now_ms = i128::from(shared.context.clock.now_ms());
    let now = time::OffsetDateTime::from_unix_timestamp_nanos(now_ms * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let ahead = iso(now + time::Duration::hours(1));
    let mut ids = BTreeSet::new();
    for chunk in users.chunks(QUERY_USERS) {
        let predicates: Vec<Value> = chunk
            .iter()
            .map(|u| json!({"type": "dimension", "dimension": "userId", "operator": "matches", "value": u}))
            .collect();
        let under_way = json!({
            "interval": format!("{}/{ahead}", iso(now - time::Duration::days(2))),
            "order": "asc",
            "orderBy": "conversationStart",
            "paging": {"pageSize": 100, "pageNumber": 1},
            "conversationFilters": [{"type": "and", "predicates": [
                {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}
            ]}],
            "segmentFilters": [{"type": "or", "predicates": predicates}],
        });
        let recent = json!({
            "interval": format!("{}/{ahead}", iso(now - time::Duration::hours(1))),
            "order": "asc",
            "orderBy": "conversationStart",
            "paging": {"pageSize": 100, "pageNumber": 1},
            "segmentFilters": [{"type": "or", "predicates": predicates}],
        });
        for query in [under_way, recent] {
            let answer = shared
                .api
                .call(
                    Method::POST,
                    "/api/v2/analytics/conversations/details/query",
                    Some(&query),
                )
                .await
                .map_err(|e| lost(format!("catching up: {e}")))?;
            for c in answer["conversations"].as_array().into_iter().flatten() {
                if let Some(id) = c["conversationId"].as_str() {
                    ids.insert(id.to_string());
                }
            }
        }
    }
    ids.extend(shared.tracker().open());
    // The calls the relay still holds as live: one that ended in the gap is in no list above
    // when it started more than an hour ago.
    let reps: Vec<String> = users.iter().filter_map(|u| shared.reps.rep_of(u)).collect();
    ids.extend(
        link.live_calls(&reps)
            .await
            .into_iter()
            .map(|(call, _)| call),
    );
    for id in ids {
        match shared.snapshot(&id).await {
            Ok(snapshot) => {
                deliver(shared, link, snapshot).await?;
            }
            Err(ApiError::Status { status: 404, .. }) => {}
            Err(e) => return Err(lost(format!("catching up on a call: {e}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::adapters::Context;
    use crate::adapters::connector::{Inbox, LinkStatus, NoLiveCalls, channel};
    use crate::metrics::Metrics;

    async fn sim(tweak: impl FnOnce(&mut cti_sim::SimConfig)) -> cti_sim::SimHandle {
        let mut config = cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            ..cti_sim::SimConfig::default()
        };
        tweak(&mut config);
        cti_sim::spawn(config).await.expect("simulator")
    }

    fn shared(sim: &cti_sim::SimHandle, timing: Timing) -> Arc<Shared> {
        Arc::new(Shared {
            tenant: "demo".into(),
            api: super::super::api::Api::new(
                reqwest::Client::new(),
                &format!("{}/sim/genesys", sim.url()),
                &format!("{}/sim/genesys/login", sim.url()),
                "cti-relay-genesys",
                crate::secret::Secret::new("demo-genesys-secret"),
            ),
            reps: crate::adapters::reps::Reps::default(),
            tracker: Mutex::default(),
            context: Context {
                tenant: "demo".into(),
                http: reqwest::Client::new(),
                clock: Arc::new(crate::clock::SystemClock),
                forgets_before_ms: None,
            },
            timing,
        })
    }

    fn link() -> (Link, Inbox, Arc<LinkStatus>) {
        let status = Arc::new(LinkStatus::default());
        let (link, inbox) = channel(
            "demo",
            "genesys",
            Arc::new(NoLiveCalls),
            status.clone(),
            Arc::new(Metrics::default()),
        );
        (link, inbox, status)
    }

    async fn until(what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    const QUICK: Timing = Timing {
        silent: Duration::from_millis(300),
        pong_wait: Duration::from_millis(300),
        directory: Duration::from_secs(600),
        recheck: Duration::from_secs(1),
    };

    #[tokio::test]
    async fn a_silent_socket_is_pinged_and_the_run_ends_when_no_pong_comes() {
        let sim = sim(|_| {}).await;
        let (link, _inbox, status) = link();
        let run = tokio::spawn(run(shared(&sim, QUICK), link));
        until("the link up", || status.get().connected).await;
        sim.sim.genesys.set_mute(true);
        let outcome = tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("the run ends")
            .expect("no panic");
        let err = outcome.expect_err("a dead socket ends the run");
        assert!(err.0.contains("ping"), "{err}");
        assert!(sim.sim.genesys.pings() >= 1);
        assert!(!status.get().connected);
    }

    #[tokio::test]
    async fn a_silent_socket_that_answers_pings_is_kept() {
        // Heartbeats only every minute: the connector pings in between and hears pongs.
        let sim = sim(|c| c.genesys_heartbeat_ms = 60_000).await;
        let (link, _inbox, status) = link();
        let run = tokio::spawn(run(shared(&sim, QUICK), link));
        until("three pings answered", || sim.sim.genesys.pings() >= 3).await;
        assert!(!run.is_finished(), "the run goes on");
        assert!(status.get().connected);
        run.abort();
    }

    #[tokio::test]
    async fn a_rep_who_joins_the_org_is_subscribed_without_a_restart() {
        let sim = sim(|_| {}).await;
        let (link, mut inbox, status) = link();
        let timing = Timing {
            directory: Duration::from_millis(200),
            ..Timing::default()
        };
        let run = tokio::spawn(run(shared(&sim, timing), link));
        until("the link up", || status.get().connected).await;
        assert_eq!(sim.sim.genesys.topic_counts(), [4]);
        sim.sim.genesys.add_user("Erin Demo", "erin@example.com");
        // The old channel stays in the org (channels are not deleted), its socket closed.
        until("the new rep's topic", || {
            sim.sim.genesys.topic_counts().contains(&5) && sim.sim.genesys.channel_counts().1 == 1
        })
        .await;
        let call = sim
            .sim
            .genesys
            .ring("+41445550111", "erin@example.com")
            .expect("rings");
        let delivery = tokio::time::timeout(Duration::from_secs(20), inbox.next())
            .await
            .expect("an event in time")
            .expect("an event");
        assert_eq!(delivery.event.call_id, call);
        assert_eq!(delivery.event.agent, "erin@example.com");
        delivery.report(Ok(()));
        assert!(!run.is_finished(), "the same run goes on");
        run.abort();
    }

    #[tokio::test]
    async fn more_reps_than_a_channel_takes_get_more_channels() {
        let sim = sim(|c| c.genesys_extra_users = 1_200).await;
        let (link, _inbox, status) = link();
        let run = tokio::spawn(run(shared(&sim, Timing::default()), link));
        until("the link up", || status.get().connected).await;
        // 4 demo reps and 1,200 more: 1,000 topics on one channel, 204 on another.
        assert_eq!(sim.sim.genesys.topic_counts(), [204, 1_000]);
        run.abort();
    }
}

#[cfg(test)]
mod tls {
    /// A `wss://` connectUri (every real org's) gets a TLS client, not a panic for want of a
    /// crypto provider: the handshake with a server that speaks no TLS fails as an error.
    #[tokio::test]
    async fn a_wss_uri_is_tried_with_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::AsyncWriteExt;
                let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let outcome =
            tokio_tungstenite::connect_async(format!("wss://{addr}/channels/streaming-0-x")).await;
        assert!(outcome.is_err());
        server.abort();
    }
}
