//! A rep's own V2 sign-in survives writes that renew it at the same moment: the identity provider
//! rotates refresh tokens and refuses one used before, so two writes that both renew with the
//! same token must not make the relay forget the sign-in (the rep would have to connect again for
//! nothing).

use std::time::Duration;

use cti_tests::{Stack, eventually};
use serde_json::json;

const ALICE: &str = "alice@example.com";

/// A missed inbound call to Alice, as the PBX posts it.
fn missed_call(call: &str, from: &str) -> Vec<String> {
    ["ringing", "ended"]
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            json!({"id": format!("{call}-{i}"), "call_id": call, "type": kind,
                "direction": "inbound", "from": from, "to": "+41 44 999 00 00",
                "agent": ALICE, "at": cti_tests::recent(&format!("2026-11-25T09:00:{:02}Z", i * 20))})
            .to_string()
        })
        .collect()
}

/// Connects Alice's V2 sign-in the way her widget's window does: the relay's start, the
/// provider's sign-in, the provider's return to the relay.
async fn connect(stack: &Stack) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let mut next = browser
        .post(format!("{}/v1/agent/v2-connect", stack.relay.url()))
        .header("origin", stack.relay.url())
        .form(&[("token", stack.token(ALICE))])
        .send()
        .await
        .expect("relay");
    for _ in 0..2 {
        assert_eq!(next.status(), 303, "a redirect");
        let to = next.headers()["location"]
            .to_str()
            .expect("url")
            .to_string();
        next = browser.get(&to).send().await.expect("follow");
    }
    assert_eq!(next.status(), 200, "V2 connected");
}

#[tokio::test]
async fn two_writes_renewing_the_reps_sign_in_at_once_keep_it() {
    let mut stack = Stack::start_with(|c| {
        // Failed attempts come back sooner than the writer looks again, so the waiting
        // activities are retried together, in one batch.
        c.activity_retry_base = Duration::from_millis(20);
        c.activity_retry_max = Duration::from_millis(200);
    })
    .await
    .expect("stack");
    stack
        .use_own_v2_sign_in()
        .await
        .expect("relay in oauth2 mode");
    // Access tokens live 30 s, inside the relay's margin: every write renews Alice's sign-in.
    stack.sim.sim.ias.set_access_ttl(30);

    // Two calls end before she connects V2: both activities wait for her.
    for (call, from) in [
        ("race-1", "+41 79 555 90 01"),
        ("race-2", "+41 79 555 90 02"),
    ] {
        for body in missed_call(call, from) {
            let status = stack.post_event(&body).await.expect("relay answers");
            assert!(status == 202 || status == 200, "{status} for {body}");
        }
    }
    eventually("both activities to wait for Alice", || async {
        let sealed = stack.relay.state.authority.vault.get("demo", ALICE).await;
        let waiting = stack.activities("race-2").await.ok()?.is_empty();
        (waiting && matches!(sealed, Ok(None))).then_some(())
    })
    .await
    .expect("waiting");
    let before = stack.sim.sim.ias.refreshes();

    connect(&stack).await;
    for call in ["race-1", "race-2"] {
        let activity = stack
            .wait_activity(call, "written as Alice", |_| true)
            .await
            .expect("written");
        assert_eq!(activity["adminData"]["createdBy"], ALICE);
    }
    assert!(stack.sim.sim.ias.refreshes() > before, "renewed");
    assert!(
        stack
            .relay
            .state
            .authority
            .vault
            .get("demo", ALICE)
            .await
            .expect("vault")
            .is_some(),
        "Alice's sign-in is kept"
    );
}

#[tokio::test]
async fn two_instances_renewing_the_reps_sign_in_at_once_keep_it() {
    let server = cti_tests::redis::RedisServer::start()
        .await
        .expect("redis-server");
    let url = server.url();
    let mut stack = Stack::start_with(|c| {
        c.redis_url = Some(cti_relay::secret::Secret::new(url.clone()));
    })
    .await
    .expect("stack");
    stack
        .use_own_v2_sign_in()
        .await
        .expect("relay in oauth2 mode");
    let other = stack.spawn_another_relay().await.expect("second instance");
    stack.sim.sim.ias.set_access_ttl(30);
    connect(&stack).await;

    // Both instances need a new access token for Alice at the same moment; they share one
    // sealed refresh token in Redis.
    let here = &stack.relay.state.authority;
    let there = &other.state.authority;
    let (a, b) = tokio::join!(
        here.access_token("demo", ALICE),
        there.access_token("demo", ALICE)
    );
    a.expect("this instance renewed");
    b.expect("the other instance renewed");
    for authority in [here, there] {
        assert!(
            authority.is_connected("demo", ALICE).await.expect("vault"),
            "Alice's sign-in is kept"
        );
    }
}
