//! `GET /v1/agent/ws`: pumps WebSocket frames into and out of a [`crate::agent::session`].

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::client_addr::ClientAddr;
use crate::admission::Pending;
use crate::agent::session::{self, Inbound, Outbound};
use crate::error::ApiError;
use crate::state::AppState;

/// Largest message a widget may send: a `save_wrap_up` with 20,000 characters of notes fits;
/// commands and pings are tiny.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Frames are capped alike, and a frame announcing more is refused from its header (1009)
/// before its payload is read: without this the socket library would buffer up to 16 MiB.
const MAX_FRAME_BYTES: usize = MAX_MESSAGE_BYTES;
/// Bytes read from the socket at a time; frames grow the buffer only as far as they need. The
/// socket library zero-fills this buffer to its full size on every read, so all of it stays
/// resident for each connected rep: widgets send small frames (a hello with its token, commands,
/// pings), and at 4 KiB this buffer was a quarter of a rep's memory.
const READ_BUFFER_BYTES: usize = 1024;

pub(super) async fn upgrade(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let pending = state.pending_hellos.admit(client).map_err(|full| {
        state.metrics.connection_refused(full.label());
        ApiError::Busy(full.label())
    })?;
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| pump(state, socket, pending)))
}

async fn pump(state: Arc<AppState>, socket: WebSocket, pending: Pending) {
    let (mut sink, mut stream) = socket.split();
    let (in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let session = tokio::spawn(session::run(state.clone(), in_rx, out_tx, pending));
    let reader = tokio::spawn(async move {
        while let Some(read) = stream.next().await {
            let message = match read {
                Ok(message) => message,
                Err(err) => {
                    if too_large(err) {
                        let _ = in_tx.send(Inbound::TooLarge).await;
                    }
                    break;
                }
            };
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
        let (message, received) = match outbound {
            Outbound::Message(message) => (message, None),
            Outbound::Push { message, received } => (message, Some(received)),
            Outbound::Close { code, reason } => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: close_reason(&reason).into(),
                    })))
                    .await;
                break;
            }
        };
        let message = match serde_json::to_string(&*message) {
            Ok(text) => Message::Text(text.into()),
            Err(err) => {
                tracing::error!(%err, "server message did not serialize");
                continue;
            }
        };
        if sink.send(message).await.is_err() {
            break;
        }
        // Written to the socket: the push latency of a call a telephony event changed.
        if let Some(received) = received {
            state
                .metrics
                .push_seconds
                .observe(received.elapsed().as_secs_f64());
        }
    }
    reader.abort();
    session.abort();
}

/// Whether a read failed on the frame or message size limit (the peer gets 1009 then, not a
/// silent drop).
fn too_large(err: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    matches!(
        err.into_inner().downcast_ref::<Error>(),
        Some(Error::Capacity(_))
    )
}

/// A close frame's reason may carry 123 bytes (RFC 6455 5.5: 125 less the code); a longer one
/// would make the socket library fail the close and the widget see 1006 instead of the code.
fn close_reason(reason: &str) -> &str {
    const MAX: usize = 123;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::close_reason;

    #[test]
    fn a_close_reason_is_cut_to_123_bytes_on_a_character_boundary() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123, "{} bytes", cut.len());
        assert_eq!(cut.chars().count(), 61);
    }
}
