//! `GET /v1/agent/ws`: pumps WebSocket frames into and out of a [`crate::agent::session`].

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::agent::session::{self, Inbound, Outbound};
use crate::state::AppState;

/// Largest frame a widget may send; commands and pings are tiny.
const MAX_FRAME_BYTES: usize = 64 * 1024;

pub(super) async fn upgrade(State(state): State<Arc<AppState>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| pump(state, socket))
}

async fn pump(state: Arc<AppState>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let session = tokio::spawn(session::run(state, in_rx, out_tx));
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let frame = match message {
                Message::Text(text) => Inbound::Text(text.to_string()),
                Message::Binary(_) => Inbound::Binary,
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            if in_tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    while let Some(outbound) = out_rx.recv().await {
        let message = match outbound {
            Outbound::Message(message) => match serde_json::to_string(&*message) {
                Ok(text) => Message::Text(text.into()),
                Err(err) => {
                    tracing::error!(%err, "server message did not serialize");
                    continue;
                }
            },
            Outbound::Close { code, reason } => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.chars().take(120).collect::<String>().into(),
                    })))
                    .await;
                break;
            }
        };
        if sink.send(message).await.is_err() {
            break;
        }
    }
    reader.abort();
    session.abort();
}
