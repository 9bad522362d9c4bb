//! Getting a call's events to the relay: one task per call sends them strictly in order, retrying
//! what may be transient, and tells whoever waits on an event how it went.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use cti_protocol::event::generic::Body;
use cti_protocol::signature::{self, sign};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// Attempts per event: enough to ride out a relay restart in the tests, few enough that a dead
/// relay fails `POST /sim/calls` within about a second.
const MAX_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Why an event did not reach the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("relay unreachable after {MAX_ATTEMPTS} attempts: {0}")]
    Unreachable(String),
    #[error("relay answered {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("relay answered {status} to all {MAX_ATTEMPTS} attempts: {message}")]
    Failing { status: u16, message: String },
    #[error("the call's event queue stopped")]
    Stopped,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) delivered: AtomicU64,
    pub(super) failed: AtomicU64,
}

pub(super) struct Outgoing {
    pub(super) event: Body,
    pub(super) ack: Option<oneshot::Sender<Result<(), DeliveryError>>>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("event", &self.event.id)
            .finish_non_exhaustive()
    }
}

/// The relay's generic webhook as the PBX reaches it.
#[derive(Debug)]
pub(super) struct RelayLink {
    pub(super) http: reqwest::Client,
    pub(super) events_url: String,
    pub(super) secret: String,
}

impl RelayLink {
    /// Sends one event, retrying what may be transient.
    async fn deliver(&self, event: &Body) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(event).map_err(|e| DeliveryError::Rejected {
            status: 0,
            message: format!("event does not serialize: {e}"),
        })?;
        let mut backoff = FIRST_BACKOFF;
        let mut last = DeliveryError::Stopped;
        for attempt in 1..=MAX_ATTEMPTS {
            // Signed afresh for each attempt, so a retry is as current as the first try.
            let now = super::now_secs();
            let sent = self
                .http
                .post(&self.events_url)
                .header(CONTENT_TYPE, "application/json")
                .header(signature::TIMESTAMP_HEADER, now.to_string())
                .header(signature::HEADER, sign(&self.secret, now, &body))
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(event = %event.id, status = %response.status(), "event delivered");
                    return Ok(());
                }
                Ok(response) => {
                    let status = response.status();
                    let message = error_message(&response.text().await.unwrap_or_default());
                    let retry = status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                    if !retry {
                        return Err(DeliveryError::Rejected {
                            status: status.as_u16(),
                            message,
                        });
                    }
                    tracing::warn!(event = %event.id, %status, attempt, %message, "relay failed the event");
                    last = DeliveryError::Failing {
                        status: status.as_u16(),
                        message,
                    };
                }
                Err(err) => {
                    let err = err.without_url();
                    tracing::warn!(event = %event.id, attempt, %err, "relay unreachable");
                    last = DeliveryError::Unreachable(describe(&err));
                }
            }
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(last)
    }
}

/// A reqwest error with its causes, since "error sending request" alone names no reason.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The `error.message` of a JSON error body, else the start of the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// Delivers one call's events strictly one after another, so the relay sees them in the order
/// the call went through its states even when a retry is under way.
pub(super) async fn run_queue(
    link: Arc<RelayLink>,
    counters: Arc<Counters>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(Outgoing { event, ack }) = queue.recv().await {
        let result = link.deliver(&event).await;
        match &result {
            Ok(()) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::info!(event = %event.id, kind = ?event.event_type, agent = %event.agent, "event delivered to the relay");
            }
            Err(err) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(event = %event.id, kind = ?event.event_type, %err, "event not delivered");
            }
        }
        if let Some(ack) = ack {
            // The waiter may have gone (a command's events are not awaited).
            let _ = ack.send(result);
        }
    }
}
