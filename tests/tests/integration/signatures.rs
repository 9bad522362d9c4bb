//! Signed traffic between a PBX and the relay: the generic webhook's timestamp window (review
//! F5) and the signed call controls the simulated PBX checks (review F6), over real sockets.

use cti_tests::{Stack, eventually};
use serde_json::{Value, json};

const SECRET: &str = "demo-webhook-secret";

fn ringing(id: &str) -> String {
    ringing_at(id, &cti_tests::now_rfc3339())
}

fn ringing_at(id: &str, at: &str) -> String {
    json!({"id": id, "call_id": format!("call-{id}"), "type": "ringing", "direction": "inbound",
        "from": "+41 31 555 01 99", "to": "+41 44 999 00 00", "agent": "alice@example.com",
        "at": at})
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

/// One event of a talked call to Alice, as the PBX posts it.
fn talked(call: &str, n: u32, kind: &str) -> String {
    let mut event = json!({"id": format!("{call}-{n}"), "call_id": call, "type": kind,
        "direction": "inbound", "from": "+41 31 555 01 99", "to": "+41 44 999 00 00",
        "agent": "alice@example.com",
        "at": cti_tests::recent(&format!("2026-11-24T10:00:{:02}Z", n * 20))});
    if kind == "ended" {
        event["reason"] = json!("completed");
        event["recording_url"] = json!("https://recordings.example/replay-1.wav");
    }
    event.to_string()
}

/// Review F5: a relay without Redis restarts and forgets the calls it saw; the PBX delivers the
/// `ended` of a call already logged again (signed afresh, as each delivery is). The relay takes
/// it (nothing remembers its id any more) but the activity V2 holds stays as it was: a log that
/// begins mid-call does not overwrite what the call's whole history wrote.
#[tokio::test]
async fn a_signed_ended_replayed_after_a_restart_without_redis_leaves_the_activity_alone() {
    let mut stack = Stack::start().await.expect("stack starts");
    let at = cti_sim::pbx::now_secs();
    let call = "replay-1";
    let ended = talked(call, 2, "ended");
    for body in [talked(call, 0, "ringing"), talked(call, 1, "answered")] {
        let (status, answer) = post(&stack, &body, at).await;
        assert_eq!(status, 202, "{answer}");
    }
    let (status, answer) = post(&stack, &ended, at).await;
    assert_eq!(status, 202, "{answer}");
    stack
        .wait_activity(call, "written from the whole call", |_| true)
        .await
        .expect("logged");
    eventually("the writer to settle", || async {
        let metrics = stack.metrics().await.ok()?;
        metrics
            .contains("cti_activity_backlog{tenant=\"demo\"} 0")
            .then_some(())
    })
    .await
    .expect("settled");
    let before = stack.activities(call).await.expect("listed").remove(0);

    stack.stop_relay().await;
    stack.start_relay_again().await.expect("restarted");
    let (status, answer) = post(&stack, &ended, cti_sim::pbx::now_secs()).await;
    assert_eq!(status, 202, "taken again after the restart: {answer}");
    eventually(
        "the restarted relay's writer to handle the replay",
        || async {
            let metrics = stack.metrics().await.ok()?;
            metrics
                .lines()
                .any(|l| {
                    l.starts_with("cti_activity_writes_total") && l.contains("tenant=\"demo\"")
                })
                .then_some(())
        },
    )
    .await
    .expect("handled");
    let after = stack.activities(call).await.expect("listed");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0], before, "the activity is unchanged");
}

/// Review F5: an event dated (`at`) before the replay window is refused with a 4xx naming `at`,
/// however fresh its signature; one dated within it is taken.
#[tokio::test]
async fn an_event_dated_before_the_window_is_refused_naming_at() {
    let stack = Stack::start().await.expect("stack starts");
    let now = cti_sim::pbx::now_secs();
    let old = time::OffsetDateTime::now_utc() - time::Duration::seconds(600);
    let old = old
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let (status, body) = post(&stack, &ringing_at("old-1", &old), now).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_event", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("field `at`"), "{body}");
    let (status, body) = post(&stack, &ringing("new-1"), now).await;
    assert_eq!(status, 202, "{body}");
}

/// Review F5: a relay without Redis restarts and forgets every event it saw. A whole call
/// captured before the restart (its ringing, answer and end, with their signatures) is played
/// to it within the signatures' window: every request is refused as signed before the start,
/// and the activity V2 holds stays exactly as it was.
#[tokio::test]
async fn a_whole_call_replayed_after_a_restart_without_redis_is_refused_and_the_activity_kept() {
    let mut stack = Stack::start().await.expect("stack starts");
    let at = cti_sim::pbx::now_secs();
    let call = "replay-2";
    let captured = [
        talked(call, 0, "ringing"),
        talked(call, 1, "answered"),
        talked(call, 2, "ended"),
    ];
    for body in &captured {
        let (status, answer) = post(&stack, body, at).await;
        assert_eq!(status, 202, "{answer}");
    }
    stack
        .wait_activity(call, "written from the whole call", |_| true)
        .await
        .expect("logged");
    eventually("the writer to settle", || async {
        let metrics = stack.metrics().await.ok()?;
        metrics
            .contains("cti_activity_backlog{tenant=\"demo\"} 0")
            .then_some(())
    })
    .await
    .expect("settled");
    let before = stack.activities(call).await.expect("listed").remove(0);

    // A signature names its second, which the relay takes to its last millisecond: the
    // restart must come in a later second than the capture for the replay to be older.
    while cti_sim::pbx::now_secs() <= at {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stack.stop_relay().await;
    stack.start_relay_again().await.expect("restarted");
    for body in &captured {
        let (status, answer) = post(&stack, body, at).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"]["code"], "signed_before_start", "{answer}");
    }
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("cti_webhook_requests_total")
                && l.contains("outcome=\"signed_before_start\"")
                && l.ends_with(" 3")),
        "{metrics}"
    );
    assert!(
        stack
            .relay
            .state
            .calls
            .legs("demo", call)
            .await
            .expect("legs")
            .is_empty(),
        "the replay made no call"
    );
    let after = stack.activities(call).await.expect("listed");
    assert_eq!(after, [before], "the activity is unchanged");
}
