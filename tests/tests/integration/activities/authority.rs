//! Activities are written as the rep, not as a technical user: through the BTP Destination
//! service while the rep has a widget open, or with the rep's own V2 sign-in (OAuth 2.0 with
//! PKCE), renewed as it expires. Until the relay can act for the rep, the activity waits and says
//! why.

use cti_tests::{Stack, WsClient};

use super::{ALICE, BOB, activity_state, activity_waits, missed_call, post_all, quick_retries};

#[tokio::test]
async fn through_a_btp_destination_activities_are_written_as_the_rep() {
    let mut stack = Stack::start_with(quick_retries).await.expect("stack");
    stack
        .use_btp_destination(|_| {})
        .await
        .expect("relay with the destination binding");

    // Alice has her widget open: her call is written with her identity.
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    post_all(&stack, &missed_call("dest-1", "+41 79 555 70 01")).await;
    activity_state(&mut alice, "dest-1", "logged").await;
    let activity = stack
        .wait_activity("dest-1", "written", |_| true)
        .await
        .expect("logged");
    assert_eq!(activity["adminData"]["createdBy"], ALICE);

    // Bob's call ends while he has no widget open: it waits, says why, and is written as him
    // once he signs in.
    let bob_call: Vec<String> = missed_call("dest-2", "+41 79 555 70 02")
        .into_iter()
        .map(|e| e.replace(ALICE, BOB))
        .collect();
    post_all(&stack, &bob_call).await;
    let pending = activity_waits(&stack, "dest-2", BOB, "sign-in").await;
    assert!(pending.contains(BOB), "{pending}");
    assert!(stack.activities("dest-2").await.expect("list").is_empty());
    let (_bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let activity = stack
        .wait_activity("dest-2", "written", |_| true)
        .await
        .expect("logged once bob signed in");
    assert_eq!(activity["adminData"]["createdBy"], BOB);
}

/// The location a redirect points to.
fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn with_the_reps_own_sign_in_activities_are_written_as_them_and_tokens_renew() {
    let mut stack = Stack::start_with(quick_retries).await.expect("stack");
    let sim = stack.sim.url();
    stack
        .use_own_v2_sign_in()
        .await
        .expect("relay in oauth2 mode");
    // Her widget is told that V2 does not have her sign-in yet.
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    let status = ws
        .recv_until("the V2 sign-in status", |m| m["type"] == "v2_sign_in")
        .await
        .expect("status");
    assert_eq!(status["connected"], false);

    // Before Alice connects V2, her call's activity waits and says why.
    post_all(&stack, &missed_call("oauth-1", "+41 79 555 80 01")).await;
    activity_waits(&stack, "oauth-1", ALICE, "has not connected V2").await;

    // The widget posts her token into a new window; the relay sends it to the identity provider
    // with a PKCE challenge, which signs her in and returns to the relay with a code.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let start = browser
        .post(format!("{}/v1/agent/v2-connect", stack.relay.url()))
        .header("origin", stack.relay.url())
        .form(&[("token", stack.token(ALICE))])
        .send()
        .await
        .expect("relay");
    assert_eq!(start.status(), 303);
    let authorize = location(&start);
    assert!(
        authorize.starts_with(&format!("{sim}/sim/ias/oauth2/authorize"))
            && authorize.contains("code_challenge_method=S256")
            && authorize.contains("login_hint=alice%40example.com"),
        "{authorize}"
    );
    let back = browser.get(&authorize).send().await.expect("ias");
    assert_eq!(back.status(), 303);
    let callback = location(&back);
    assert!(
        callback.contains("/v1/agent/v2-callback?code="),
        "{callback}"
    );
    // A forged state is refused.
    let forged = browser
        .get(format!(
            "{}/v1/agent/v2-callback?code=x&state=Zm9yZ2Vk",
            stack.relay.url()
        ))
        .send()
        .await
        .expect("relay");
    assert_eq!(forged.status(), 400);
    let done = browser.get(&callback).send().await.expect("relay");
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .expect("page")
            .contains("V2 is connected for alice@example.com")
    );
    // Her widget learns it without reconnecting.
    let status = ws
        .recv_until("the V2 sign-in status", |m| m["type"] == "v2_sign_in")
        .await
        .expect("status");
    assert_eq!(status["connected"], true);

    let activity = stack
        .wait_activity("oauth-1", "written as alice", |_| true)
        .await
        .expect("logged");
    assert_eq!(activity["adminData"]["createdBy"], ALICE);

    // Her refresh token is sealed at rest; short-lived access tokens are renewed with it.
    let sealed = stack
        .relay
        .state
        .authority
        .vault
        .get("demo", ALICE)
        .await
        .expect("vault")
        .expect("kept");
    assert!(!String::from_utf8_lossy(&sealed).contains("iasrt-"));
    stack.sim.sim.ias.set_access_ttl(30);
    let before = stack.sim.sim.ias.refreshes();
    stack.relay.state.authority.access_tokens.lock().clear();
    post_all(&stack, &missed_call("oauth-2", "+41 79 555 80 02")).await;
    let activity = stack
        .wait_activity("oauth-2", "written", |_| true)
        .await
        .expect("logged");
    assert_eq!(activity["adminData"]["createdBy"], ALICE);
    assert!(
        stack.sim.sim.ias.refreshes() > before,
        "renewed with the refresh token"
    );

    // Revoked at the identity provider: the next activity waits for her to connect again.
    stack.sim.sim.ias.revoke(ALICE);
    stack.relay.state.authority.access_tokens.lock().clear();
    post_all(&stack, &missed_call("oauth-3", "+41 79 555 80 03")).await;
    activity_waits(&stack, "oauth-3", ALICE, "has not connected V2").await;
}

/// A browser that keeps cookies and follows no redirects by itself.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client")
}

/// Starts Alice's V2 sign-in in `browser` and lets the identity provider answer: the callback
/// URL it sends the browser back to.
async fn alice_signs_in(stack: &Stack, browser: &reqwest::Client) -> String {
    let start = browser
        .post(format!("{}/v1/agent/v2-connect", stack.relay.url()))
        .header("origin", stack.relay.url())
        .form(&[("token", stack.token(ALICE))])
        .send()
        .await
        .expect("relay");
    assert_eq!(start.status(), 303);
    let back = browser
        .get(location(&start))
        .send()
        .await
        .expect("identity provider");
    assert_eq!(back.status(), 303);
    location(&back)
}

async fn alice_is_connected(stack: &Stack) -> bool {
    stack
        .relay
        .state
        .authority
        .vault
        .get("demo", ALICE)
        .await
        .expect("vault")
        .is_some()
}

#[tokio::test]
async fn a_sign_in_that_comes_back_as_someone_else_keeps_nothing() {
    let mut stack = Stack::start().await.expect("stack");
    stack
        .use_own_v2_sign_in()
        .await
        .expect("relay in oauth2 mode");
    // Bob's single sign-on session is in the browser: the provider signs him in whatever the
    // relay hinted.
    stack.sim.sim.ias.sign_in_as(BOB);
    let browser = browser();
    let callback = alice_signs_in(&stack, &browser).await;
    let done = browser.get(&callback).send().await.expect("relay");
    assert_eq!(done.status(), 400);
    let page = done.text().await.expect("page");
    assert!(
        page.contains("bob@example.com signed in") && page.contains("alice@example.com"),
        "{page}"
    );
    assert!(!alice_is_connected(&stack).await, "nothing kept for alice");
}

#[tokio::test]
async fn a_sign_in_finished_in_another_browser_keeps_nothing() {
    let mut stack = Stack::start().await.expect("stack");
    stack
        .use_own_v2_sign_in()
        .await
        .expect("relay in oauth2 mode");
    // Alice starts, and sends the provider's link on to a colleague, whose browser finishes.
    let callback = alice_signs_in(&stack, &browser()).await;
    let elsewhere = browser().get(&callback).send().await.expect("relay");
    assert_eq!(elsewhere.status(), 400);
    assert!(
        elsewhere
            .text()
            .await
            .expect("page")
            .contains("this browser did not start the sign-in")
    );
    assert!(!alice_is_connected(&stack).await);
}

#[tokio::test]
async fn only_the_relays_own_page_may_start_a_sign_in() {
    let mut stack = Stack::start().await.expect("stack");
    stack
        .use_own_v2_sign_in()
        .await
        .expect("relay in oauth2 mode");
    let url = format!("{}/v1/agent/v2-connect", stack.relay.url());
    for origin in [Some("https://elsewhere.example"), None] {
        let mut request = browser().post(&url).form(&[("token", stack.token(ALICE))]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let refused = request.send().await.expect("relay");
        assert_eq!(refused.status(), 403, "origin {origin:?}");
    }
}
