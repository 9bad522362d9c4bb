//! Every call ends as exactly one phone-call activity in V2 (V2's own record where Agent Desktop
//! made one, else one the relay creates): its times, parties, record, notes and recording link
//! in the transcript, anything else only where the tenant maps it; through V2 outages, lost
//! answers, reordered and repeated provider events, relay crashes; across a transfer between two
//! reps; and written as the rep whatever way the tenant lets the relay act for them.

mod authority;
mod consent;
mod exactly_once;
mod lifecycle;
mod redis;
mod shape;
mod transfers;

use std::time::Duration;

use cti_tests::{Stack, WsClient, eventually};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// A generic-webhook event of an inbound call to Alice, as a PBX posts it; `extra` adds what only
/// some events carry (an end reason, a recording link).
fn event(id: &str, call: &str, kind: &str, from: &str, at: &str, extra: Value) -> String {
    let mut body = json!({"id": id, "call_id": call, "type": kind, "direction": "inbound",
        "from": from, "to": "+41 44 999 00 00", "agent": ALICE, "at": cti_tests::recent(at)});
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body.to_string()
}

/// Posts events in order; each must be accepted (202) or a duplicate (200).
async fn post_all(stack: &Stack, events: &[String]) {
    for body in events {
        let status = stack.post_event(body).await.expect("relay answers");
        assert!(status == 202 || status == 200, "{status} for {body}");
    }
}

/// A short ringing → ended call nobody answered.
fn missed_call(call: &str, from: &str) -> Vec<String> {
    vec![
        event(
            &format!("{call}-r"),
            call,
            "ringing",
            from,
            "2026-11-25T09:00:00Z",
            json!({}),
        ),
        event(
            &format!("{call}-e"),
            call,
            "ended",
            from,
            "2026-11-25T09:00:20Z",
            json!({}),
        ),
    ]
}

/// Waits for a call message whose activity is in `state`.
async fn activity_state(ws: &mut WsClient, call: &str, state: &str) -> Value {
    ws.recv_until(&format!("{call}'s activity {state}"), |m| {
        m["type"] == "call"
            && m["call"]["id"] == call
            && m["call"]["wrap_up"]["activity"]["state"] == state
    })
    .await
    .expect("activity status")
}

/// Until the rep's view of the call says why its activity waits (a reason containing
/// `because`).
async fn activity_waits(stack: &Stack, call: &str, rep: &str, because: &str) -> String {
    eventually(&format!("{call}'s activity to wait: {because}"), || async {
        let app = &stack.relay.state;
        app.calls.get("demo", call, rep).await.ok()??;
        let reason = app.activity.status("demo", call, "").await?.reason?;
        reason.contains(because).then_some(reason)
    })
    .await
    .expect("waiting with a reason")
}

/// Retries in milliseconds instead of seconds, so an outage story ends in test time.
fn quick_retries(c: &mut cti_relay::Config) {
    c.activity_retry_base = Duration::from_millis(20);
    c.activity_retry_max = Duration::from_millis(300);
    c.miss_budget = Duration::from_secs(5);
}

/// [`WsClient::recv_call`], failing the test with `what` if the message never comes.
async fn call_where(
    ws: &mut WsClient,
    call: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    ws.recv_call(call, what, check).await.expect(what)
}
