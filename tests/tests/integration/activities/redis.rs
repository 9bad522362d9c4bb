//! With Redis, what one relay process knows outlives it: a call in flight and an activity queued
//! during a V2 outage survive a crash, and a rep's sign-in lets another instance write as them.
//! Without Redis reachable, calls still pop and end as activities.

use std::time::Duration;

use cti_relay::secret::Secret;
use cti_tests::redis::RedisServer;
use cti_tests::{Stack, WsClient, eventually, test_token_key};
use serde_json::json;

use super::{ALICE, activity_state, event, missed_call, post_all, quick_retries};

#[tokio::test]
async fn with_redis_a_crashed_relay_carries_the_call_and_its_queued_activity_over() {
    let server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let mut stack = Stack::start_with(|c| {
        quick_retries(c);
        c.redis_url = Some(Secret::new(url.clone()));
        c.v2_timeout = Duration::from_secs(2);
    })
    .await
    .expect("stack");
    let from = "+41 79 555 50 01";

    // A call in flight when the relay crashes ends after the restart: logged once, as talked,
    // with the times from before the crash.
    post_all(
        &stack,
        &[
            event(
                "k1",
                "crash-1",
                "ringing",
                from,
                "2026-11-25T12:00:00Z",
                json!({}),
            ),
            event(
                "k2",
                "crash-1",
                "answered",
                from,
                "2026-11-25T12:00:04Z",
                json!({}),
            ),
        ],
    )
    .await;
    stack.crash_relay();
    stack.start_relay_again().await.expect("restarted");
    post_all(
        &stack,
        &[event(
            "k3",
            "crash-1",
            "ended",
            from,
            "2026-11-25T12:02:04Z",
            json!({}),
        )],
    )
    .await;
    let activity = stack
        .wait_activity("crash-1", "written", |_| true)
        .await
        .expect("logged once");
    assert!(
        cti_tests::summary_of(&activity).contains("Inbound call from"),
        "{activity}"
    );
    assert!(
        cti_tests::summary_of(&activity).contains("(talk time 2m 0s)"),
        "{activity}"
    );

    // An activity queued while V2 is down survives a crash and is written by the next process.
    stack
        .v2_fault(&json!({"status": 503, "count": 100000}))
        .await
        .expect("fault");
    post_all(&stack, &missed_call("crash-2", from)).await;
    eventually("the writer to have tried", || async {
        let m = stack.metrics().await.ok()?;
        m.contains("outcome=\"retry\"").then_some(())
    })
    .await
    .expect("tried");
    stack.crash_relay();
    let cleared = stack
        .http
        .delete(format!("{}/sim/faults", stack.sim.url()))
        .send()
        .await
        .expect("sim");
    assert!(cleared.status().is_success());
    stack.start_relay_again().await.expect("restarted");
    stack
        .wait_activity("crash-2", "written", |_| true)
        .await
        .expect("logged once after the restart");
}

#[tokio::test]
async fn with_redis_gone_calls_still_pop_and_end_as_activities() {
    let mut server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let stack = Stack::start_with(|c| {
        quick_retries(c);
        c.redis_url = Some(Secret::new(url.clone()));
    })
    .await
    .expect("stack");
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    server.stop();
    post_all(&stack, &missed_call("outage-redis-1", "+41 79 555 60 01")).await;
    activity_state(&mut ws, "outage-redis-1", "logged").await;
    stack
        .wait_activity("outage-redis-1", "written", |_| true)
        .await
        .expect("logged once");
}

#[tokio::test]
async fn with_redis_another_instance_writes_as_the_rep_who_signed_in_elsewhere() {
    let server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let mut stack = Stack::start_with(|c| {
        quick_retries(c);
        c.redis_url = Some(Secret::new(url.clone()));
    })
    .await
    .expect("stack");
    stack
        .use_btp_destination(|c| c.token_key = Some(test_token_key()))
        .await
        .expect("relay with the destination binding and a token key");
    assert!(stack.relay.state.authority.user_tokens.is_shared());

    // Alice opens her widget on this instance, then it is gone (restarted, scaled in).
    let (alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    drop(alice);
    stack.stop_relay().await;
    stack.start_relay_again().await.expect("another instance");

    // Her call ends there while her widget is closed: written as her all the same.
    post_all(&stack, &missed_call("shared-1", "+41 79 555 90 01")).await;
    let activity = stack
        .wait_activity("shared-1", "written", |_| true)
        .await
        .expect("logged");
    assert_eq!(activity["adminData"]["createdBy"], ALICE);
}
