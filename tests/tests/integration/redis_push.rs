//! Call messages with Redis: a call reaches the rep's widget whichever relay instance took the
//! webhook, a widget may resume on any instance, and the replay buffer survives a restart.

use std::time::Duration;

use cti_relay::secret::Secret;
use cti_tests::redis::RedisServer;
use cti_tests::{Stack, WsClient};
use serde_json::{Value, json};

const AGENT: &str = "alice@example.com";

fn event(id: &str, call: &str, kind: &str) -> String {
    json!({"id": id, "call_id": call, "type": kind, "direction": "inbound",
        "from": "+41 31 555 01 99", "to": "+41 44 999 00 00", "agent": AGENT,
        "at": cti_tests::now_rfc3339()})
    .to_string()
}

async fn post_to(stack: &Stack, relay_url: &str, body: &str) -> u16 {
    let signed = cti_sim::pbx::sign_now("demo-webhook-secret", body.as_bytes());
    stack
        .http
        .post(format!("{relay_url}/v1/tenants/demo/telephony/generic"))
        .header("content-type", "application/json")
        .header("x-cti-timestamp", signed.0)
        .header("x-cti-signature", signed.1)
        .body(body.to_string())
        .send()
        .await
        .expect("relay answers")
        .status()
        .as_u16()
}

async fn call_message(ws: &mut WsClient, call: &str, state: &str) -> Value {
    ws.recv_until(&format!("{call} {state}"), |m| {
        m["type"] == "call" && m["call"]["id"] == call && m["call"]["state"] == state
    })
    .await
    .expect("call message")
}

#[tokio::test]
async fn calls_cross_instances_and_replay_survives_a_restart() {
    let server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let mut stack = Stack::start_with(|c| {
        c.redis_url = Some(Secret::new(url.clone()));
        c.index_check = Duration::from_millis(200);
    })
    .await
    .expect("stack starts");
    // A second instance of the same deployment.
    let second = stack.spawn_another_relay().await.expect("a second relay");
    let second_ws = format!("ws://{}/v1/agent/ws", second.addr);

    // The widget is connected to the second instance; the PBX's webhook hits the first.
    let (mut ws, _) = WsClient::signed_in_at(&stack, &second_ws, AGENT, None)
        .await
        .expect("signed in");
    let relay_one = stack.relay.url();
    assert_eq!(
        post_to(&stack, &relay_one, &event("x-1", "cross-1", "ringing")).await,
        202
    );
    let ringing = call_message(&mut ws, "cross-1", "ringing").await;
    let seen = ringing["seq"].as_u64().expect("seq");

    // The widget drops; meanwhile the call is answered (through the second instance); it comes
    // back on the first instance and gets exactly what it missed.
    drop(ws);
    assert_eq!(
        post_to(&stack, &second.url(), &event("x-2", "cross-1", "answered")).await,
        202
    );
    let (mut ws, welcome) = WsClient::signed_in(&stack, AGENT, Some(seen))
        .await
        .expect("signed in again");
    let answered = call_message(&mut ws, "cross-1", "connected").await;
    assert!(answered["seq"].as_u64().expect("seq") > seen);
    assert!(welcome["seq"].as_u64().expect("seq") >= answered["seq"].as_u64().expect("seq"));
    drop(ws);

    // Both instances restart (a deployment); the log lives in Redis.
    second.shutdown().await;
    stack.stop_relay().await;
    stack.start_relay_again().await.expect("restarted");
    let (mut ws, _) = WsClient::signed_in(&stack, AGENT, Some(seen))
        .await
        .expect("signed in after the restart");
    let replayed = call_message(&mut ws, "cross-1", "connected").await;
    assert_eq!(
        replayed["seq"], answered["seq"],
        "the same message, from the log"
    );
    // Live messages keep flowing after the restart, numbered after everything before.
    assert_eq!(
        post_to(
            &stack,
            &stack.relay.url(),
            &event("x-3", "cross-1", "ended")
        )
        .await,
        202
    );
    let ended = call_message(&mut ws, "cross-1", "ended").await;
    assert!(ended["seq"].as_u64().expect("seq") > answered["seq"].as_u64().expect("seq"));
}
