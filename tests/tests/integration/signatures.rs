//! Signed traffic between a PBX and the relay: the generic webhook's timestamp window (review
//! F5) and the signed call controls the simulated PBX checks (review F6), over real sockets.

use cti_tests::Stack;
use serde_json::{Value, json};

const SECRET: &str = "demo-webhook-secret";

fn ringing(id: &str) -> String {
    json!({"id": id, "call_id": format!("call-{id}"), "type": "ringing", "direction": "inbound",
        "from": "+41 31 555 01 99", "to": "+41 44 999 00 00", "agent": "alice@example.com",
        "at": "2026-11-24T10:00:00Z"})
    .to_string()
}

async fn post(stack: &Stack, body: &str, at: u64) -> (u16, Value) {
    let response = stack
        .http
        .post(format!(
            "{}/v1/tenants/demo/telephony/generic",
            stack.relay.url()
        ))
        .header("content-type", "application/json")
        .header("x-cti-timestamp", at.to_string())
        .header(
            "x-cti-signature",
            cti_sim::pbx::sign(SECRET, at, body.as_bytes()),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("the relay answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A correctly signed event captured and replayed ten minutes later is refused with its own
/// code, counted like the other refusals, and never reaches the rep.
#[tokio::test]
async fn a_webhook_signed_outside_the_window_is_refused_as_stale() {
    let stack = Stack::start().await.expect("stack starts");
    let now = cti_sim::pbx::now_secs();
    let (status, body) = post(&stack, &ringing("stale-1"), now - 600).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "stale_signature", "{body}");
    let (status, body) = post(&stack, &ringing("fresh-1"), now).await;
    assert_eq!(status, 202, "{body}");
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("cti_webhook_requests_total")
                && l.contains("outcome=\"stale_signature\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
}
