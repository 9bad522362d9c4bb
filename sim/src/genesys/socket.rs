//! The notification WebSocket of a channel (`connectUri`): one connection per channel, a second
//! one replacing the first; `channel.metadata` heartbeats; `{"message":"ping"}` answered with a
//! pong; socket-level `{"message":"subscribe","topics":[...],"correlationId"}` answered with
//! `{"result":"200","status":"subscribed"}` (or `400`/`404` as reference 1.1 lists);
//! `v2.system.socket_closing` then the close on a fault; closed when its channel dies.
//!
//! The socket_closing body (`{"message":"Socket closing"}`) is inferred: the reference names only
//! the topic.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::error::GcError;
use super::{MAX_TOPICS, Out, known_topic};
use crate::Sim;

/// How often a socket checks that its channel still lives.
const CHECK: Duration = Duration::from_millis(100);
/// How long a reordered snapshot waits for the next one before it goes anyway.
const REORDER_WAIT: Duration = Duration::from_millis(300);

pub(crate) async fn upgrade(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(id) = name.strip_prefix("streaming-0-").map(str::to_string) else {
        return GcError::NotFound(format!("no channel {name}")).into_response();
    };
    {
        let mut state = sim.genesys.lock();
        state.sweep();
        if !state.channels.contains_key(&id) {
            return GcError::NotFound(format!("channel {id} not found")).into_response();
        }
    }
    ws.on_upgrade(move |socket| serve(sim, id, socket))
}

fn heartbeat() -> String {
    json!({"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}})
        .to_string()
}

async fn serve(sim: Arc<Sim>, id: String, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (number, heartbeat_every) = {
        let mut state = sim.genesys.lock();
        state.sockets += 1;
        let number = state.sockets;
        let every = state.knobs.heartbeat;
        match state.channels.get_mut(&id) {
            Some(channel) => {
                if let Some((_, old)) = channel.socket.replace((number, tx)) {
                    let _ = old.send(Out::Close);
                }
            }
            None => return,
        }
        (number, every)
    };
    let mut next_beat = Instant::now() + heartbeat_every;
    let mut next_check = Instant::now() + CHECK;
    let mut held: Option<(String, Instant)> = None;
    let mut closing_at: Option<Instant> = None;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    loop {
        let flush_at = held.as_ref().map_or(far, |(_, at)| *at);
        let close_at = closing_at.unwrap_or(far);
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Event(text)) => {
                    let (duplicate, reorder) = {
                        let state = sim.genesys.lock();
                        (state.knobs.duplicate, state.knobs.reorder)
                    };
                    let copies = if duplicate { 2 } else { 1 };
                    if reorder && held.is_none() {
                        held = Some((text, Instant::now() + REORDER_WAIT));
                        continue;
                    }
                    for _ in 0..copies {
                        if socket.send(Message::Text(text.clone().into())).await.is_err() {
                            return;
                        }
                    }
                    if let Some((late, _)) = held.take() {
                        for _ in 0..copies {
                            if socket.send(Message::Text(late.clone().into())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Some(Out::Closing) => {
                    let text = json!({
                        "topicName": "v2.system.socket_closing",
                        "eventBody": {"message": "Socket closing"},
                    });
                    if socket.send(Message::Text(text.to_string().into())).await.is_err() {
                        return;
                    }
                    let grace = sim.genesys.lock().knobs.closing_grace;
                    closing_at = Some(Instant::now() + grace);
                }
                Some(Out::Close) | None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = answer(&sim, &id, text.as_str())
                        && socket.send(Message::Text(reply.into())).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            () = sleep_until(next_beat) => {
                let (every, mute) = {
                    let state = sim.genesys.lock();
                    (state.knobs.heartbeat, state.knobs.mute)
                };
                next_beat = Instant::now() + every;
                if mute {
                    continue;
                }
                if socket.send(Message::Text(heartbeat().into())).await.is_err() {
                    return;
                }
            }
            () = sleep_until(next_check) => {
                next_check = Instant::now() + CHECK;
                let mut state = sim.genesys.lock();
                state.sweep();
                let mine = state
                    .channels
                    .get(&id)
                    .and_then(|c| c.socket.as_ref())
                    .is_some_and(|(n, _)| *n == number);
                if !mine {
                    break;
                }
            }
            () = sleep_until(flush_at) => {
                if let Some((late, _)) = held.take()
                    && socket.send(Message::Text(late.into())).await.is_err()
                {
                    return;
                }
            }
            () = sleep_until(close_at) => break,
        }
    }
    {
        let mut state = sim.genesys.lock();
        if let Some(channel) = state.channels.get_mut(&id)
            && channel.socket.as_ref().is_some_and(|(n, _)| *n == number)
        {
            channel.socket = None;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// The reply to a client's message on the socket, if it gets one.
fn answer(sim: &Sim, id: &str, text: &str) -> Option<String> {
    let message: Value = serde_json::from_str(text).ok()?;
    match message["message"].as_str()? {
        "ping" => {
            let mut state = sim.genesys.lock();
            state.pings += 1;
            (!state.knobs.mute).then(|| {
                json!({"topicName": "channel.metadata", "eventBody": {"message": "pong"}})
                    .to_string()
            })
        }
        "subscribe" => {
            let correlation = message["correlationId"].clone();
            let mut state = sim.genesys.lock();
            state.sweep();
            let users = state.users.clone();
            let Some(channel) = state.channels.get_mut(id) else {
                return Some(json!({"result": "404", "correlationId": correlation}).to_string());
            };
            let topics: Option<Vec<String>> = message["topics"].as_array().map(|t| {
                t.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            });
            let Some(topics) = topics.filter(|t| !t.is_empty()) else {
                return Some(
                    json!({"result": "400", "status": "failure", "correlationId": correlation})
                        .to_string(),
                );
            };
            let mut next = channel.topics.clone();
            next.extend(topics.iter().cloned());
            if topics.iter().any(|t| !known_topic(&users, t)) || next.len() > MAX_TOPICS {
                return Some(
                    json!({"result": "400", "status": "failure", "correlationId": correlation})
                        .to_string(),
                );
            }
            channel.topics = next;
            Some(
                json!({"result": "200", "status": "subscribed", "correlationId": correlation})
                    .to_string(),
            )
        }
        _ => None,
    }
}
