//! Webhook deliveries: one task sends every notification to its subscriptions' addresses in the
//! order the sessions changed, with RingCentral's headers, retrying a delivery that failed.
//!
//! Retry policy (inferred: RingCentral documents that a failed webhook delivery is retried but not
//! the schedule): an answer other than 2xx, or no answer, is retried three more times after 200,
//! 400 and 800 ms, then dropped. The order between notifications is kept (the next one waits),
//! which is what a receiver sees of a real account most of the time; the `reorder` fault breaks it
//! on purpose.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// Attempts per delivery (the first and three retries).
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// How long the `reorder` fault holds a notification back waiting for the next one to overtake it.
const REORDER_WINDOW: Duration = Duration::from_millis(150);

/// One subscription a notification goes to, resolved when the notification was made.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) subscription_id: String,
    pub(crate) address: String,
    pub(crate) verification_token: Option<String>,
    pub(crate) event: String,
}

/// One notification body (without the envelope's subscription fields) and where it goes.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) body: Value,
    pub(crate) targets: Vec<Target>,
    pub(crate) duplicate: bool,
    pub(crate) reorder: bool,
    /// Told whether at least one subscription took it (a control waiting for the relay).
    pub(crate) ack: Option<oneshot::Sender<Result<(), String>>>,
}

pub(crate) async fn run(http: reqwest::Client, mut inbox: mpsc::UnboundedReceiver<Outgoing>) {
    let mut held: Option<Outgoing> = None;
    loop {
        let next = match &held {
            None => inbox.recv().await,
            Some(_) => match tokio::time::timeout(REORDER_WINDOW, inbox.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    // Nothing came to overtake it: send it late rather than never.
                    if let Some(late) = held.take() {
                        deliver(&http, late).await;
                    }
                    continue;
                }
            },
        };
        let Some(item) = next else { break };
        if item.reorder && held.is_none() {
            held = Some(item);
            continue;
        }
        deliver(&http, item).await;
        if let Some(late) = held.take() {
            deliver(&http, late).await;
        }
    }
}

async fn deliver(http: &reqwest::Client, item: Outgoing) {
    let Outgoing {
        body,
        targets,
        duplicate,
        ack,
        ..
    } = item;
    let mut outcome = Err("no live subscription covers this party".to_string());
    for target in &targets {
        let mut envelope = body.clone();
        if let Some(object) = envelope.as_object_mut() {
            object.insert("event".into(), target.event.clone().into());
            object.insert(
                "subscriptionId".into(),
                target.subscription_id.clone().into(),
            );
        }
        let times = if duplicate { 2 } else { 1 };
        for _ in 0..times {
            match post(http, target, &envelope).await {
                Ok(()) => outcome = Ok(()),
                Err(err) => {
                    if outcome.is_err() {
                        outcome = Err(err);
                    }
                }
            }
        }
    }
    if let Some(ack) = ack {
        let _ = ack.send(outcome);
    }
}

async fn post(http: &reqwest::Client, target: &Target, envelope: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(envelope).map_err(|e| e.to_string())?;
    let mut wait = FIRST_RETRY;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let mut request = http
            .post(&target.address)
            .header("content-type", "application/json; charset=UTF-8")
            .header("user-agent", "RingCentral-Webhook/8.3")
            .body(bytes.clone());
        if let Some(token) = &target.verification_token {
            request = request.header("Verification-Token", token);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let text: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                last = format!("the receiver answered {status}: {text}");
                tracing::warn!(subscription = %target.subscription_id, attempt, %status, "webhook delivery refused");
            }
            Err(err) => {
                last = format!("the receiver is unreachable: {}", err.without_url());
                tracing::warn!(subscription = %target.subscription_id, attempt, "webhook delivery failed");
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Err(last)
}
