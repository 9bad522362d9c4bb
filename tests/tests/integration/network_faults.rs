//! The widget behind a proxy that misbehaves: connections cut and refused for a while, then a
//! proxy that goes silent without closing anything. Each time the widget must say where it
//! stands, come back by itself, show what happened meanwhile, and tell V2 each moment once.

use anyhow::Result;
use cti_tests::Stack;
use cti_tests::browser::Browser;
use serde_json::json;

const AGENT: &str = "alice@example.com";
use cti_tests::browser::WIDGET_FRAME as WIDGET;

async fn post(stack: &Stack, id: &str, call_id: &str, kind: &str, from: &str) -> Result<()> {
    let mut event = json!({"id": id, "call_id": call_id, "type": kind, "direction": "inbound",
        "from": from, "to": "+41 44 999 00 00", "agent": AGENT, "at": cti_tests::now_rfc3339()});
    if kind == "ended" {
        event["reason"] = json!("completed");
    }
    let status = stack.post_event(&event.to_string()).await?;
    anyhow::ensure!(status == 202, "the relay answered {status} to {kind}");
    Ok(())
}

async fn status_is(browser: &Browser, state: &str) -> Result<()> {
    browser
        .wait_for(&format!(
            "[data-testid=connection-status][data-state={state}]"
        ))
        .await
}

#[tokio::test]
async fn cut_and_silent_connections_recover_without_losing_or_repeating_events() -> Result<()> {
    // A one-second heartbeat, so a silent connection is noticed in seconds, not half a minute.
    let (stack, proxy) = Stack::start_behind_proxy(|c| c.heartbeat_secs = 1).await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;

    let (number, _, name) = stack.single_match_caller()?;
    let call_id = stack.place_call(&number, AGENT).await?;
    browser.wait_caller(&name).await?;
    stack.wait_host_action(&call_id, "NOTIFY").await?;

    // The proxy drops every connection and refuses new ones for a while.
    proxy.refuse(true);
    proxy.cut();
    browser.enter_frame(WIDGET).await?;
    status_is(&browser, "reconnecting").await?;
    browser.wait_for("[data-testid=btn-retry-now]").await?;
    browser.leave_frame().await?;
    // Meanwhile the rep answers on the desk phone.
    post(&stack, "desk-answer", &call_id, "answered", &number).await?;
    proxy.refuse(false);
    browser.enter_frame(WIDGET).await?;
    // The rep need not wait out the backoff (the button may already be gone: that is fine).
    if let Ok(button) = browser
        .client
        .find(fantoccini::Locator::Css("[data-testid=btn-retry-now]"))
        .await
    {
        let _ = button.click().await;
    }
    status_is(&browser, "connected").await?;
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;
    browser.leave_frame().await?;
    stack.wait_host_action(&call_id, "ACCEPT").await?;

    // The proxy goes silent: nothing is closed, nothing gets through. The heartbeat notices.
    proxy.freeze(true);
    browser.enter_frame(WIDGET).await?;
    status_is(&browser, "reconnecting").await?;
    browser.leave_frame().await?;
    post(&stack, "desk-hangup", &call_id, "ended", &number).await?;
    proxy.freeze(false);
    browser.enter_frame(WIDGET).await?;
    status_is(&browser, "connected").await?;
    browser
        .wait_for("[data-testid=call-state][data-state=ended]")
        .await?;
    browser.leave_frame().await?;
    stack.wait_host_action(&call_id, "END").await?;

    assert_eq!(
        stack.host_action_names(&call_id).await?,
        ["NOTIFY", "ACCEPT", "END"],
        "every moment reached V2 once, across both faults"
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn a_relay_restart_during_a_ringing_call_loses_nothing_and_pops_once() -> Result<()> {
    let mut stack = Stack::start().await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;

    let (number, _, name) = stack.single_match_caller()?;
    let call_id = stack.place_call(&number, AGENT).await?;
    browser.wait_caller(&name).await?;
    stack.wait_host_action(&call_id, "NOTIFY").await?;

    // A deployment restarts the relay while the call rings.
    stack.stop_relay().await;
    browser.enter_frame(WIDGET).await?;
    status_is(&browser, "reconnecting").await?;
    browser.leave_frame().await?;
    stack.start_relay_again().await?;

    // The call goes on at the PBX; its events reach the new relay.
    post(
        &stack,
        "after-restart-answer",
        &call_id,
        "answered",
        &number,
    )
    .await?;
    browser.enter_frame(WIDGET).await?;
    status_is(&browser, "connected").await?;
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;
    browser.leave_frame().await?;
    post(&stack, "after-restart-end", &call_id, "ended", &number).await?;
    browser.enter_frame(WIDGET).await?;
    browser
        .wait_for("[data-testid=call-state][data-state=ended]")
        .await?;
    browser.leave_frame().await?;
    stack.wait_host_action(&call_id, "END").await?;
    assert_eq!(
        stack.host_action_names(&call_id).await?,
        ["NOTIFY", "ACCEPT", "END"],
        "no second pop after the restart"
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn offline_and_back_online_reconnects_and_shows_what_happened() -> Result<()> {
    let stack = Stack::start_with(|c| c.heartbeat_secs = 1).await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;
    let (number, _, name) = stack.single_match_caller()?;
    let call_id = stack.place_call(&number, AGENT).await?;
    stack.wait_host_action(&call_id, "NOTIFY").await?;

    browser.set_offline(true).await?;
    browser.enter_frame(WIDGET).await?;
    status_is(&browser, "reconnecting").await?;
    browser.leave_frame().await?;
    post(&stack, "offline-answer", &call_id, "answered", &number).await?;
    browser.set_offline(false).await?;
    browser.enter_frame(WIDGET).await?;
    status_is(&browser, "connected").await?;
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;
    browser
        .wait_text("[data-testid=caller-name]", "the caller", |t| {
            t.contains(&name)
        })
        .await?;
    browser.leave_frame().await?;
    stack.wait_host_action(&call_id, "ACCEPT").await?;
    assert_eq!(
        stack.host_action_names(&call_id).await?,
        ["NOTIFY", "ACCEPT"]
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn a_refused_sign_in_offers_to_sign_in_again_and_that_works() -> Result<()> {
    sign_in_again(Stack::start().await?).await
}

/// XSUAA's sign-in answers a browser with `#access_token=...&token_type=bearer&expires_in=...`
/// (`response_type=token` in the sign-in URL): the widget signs the rep in from that too.
#[tokio::test]
async fn a_sign_in_answered_as_xsuaa_answers_signs_the_rep_in() -> Result<()> {
    let stack = Stack::start_with(|config| {
        config.signin_url = config
            .signin_url
            .take()
            .map(|url| format!("{url}?response_type=token"));
    })
    .await?;
    sign_in_again(stack).await
}

/// A widget whose token the relay refuses offers "Sign in", which goes through the identity
/// provider and back to a connected widget.
async fn sign_in_again(stack: Stack) -> Result<()> {
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;
    // The frame is opened with a token the relay refuses (expired, revoked, ...).
    browser
        .client
        .execute(
            "document.getElementById('cti-frame').src = arguments[0]; return true;",
            vec![json!(format!(
                "{}/widget/?again=1#token=not-a-token",
                stack.relay.url()
            ))],
        )
        .await?;
    browser.enter_frame(WIDGET).await?;
    if status_is(&browser, "signed_out").await.is_err() {
        let url = browser
            .client
            .execute("return location.href;", vec![])
            .await?;
        let status = browser.text("[data-testid=connection-status]").await;
        let body = browser.text("body").await;
        anyhow::bail!("not signed out: {url} {status:?} {body:?}");
    }
    browser.click("[data-testid=btn-sign-in]").await?;
    // Through the identity provider and back, with a fresh token.
    status_is(&browser, "connected").await?;
    browser
        .wait_text("[data-testid=agent-id]", "the signed-in rep", |t| {
            t == AGENT
        })
        .await?;
    // The token is out of the address bar, whichever way it came.
    let fragment = browser
        .client
        .execute("return location.hash;", vec![])
        .await?;
    assert_eq!(
        fragment,
        json!(""),
        "the sign-in's answer left the address bar"
    );
    browser.leave_frame().await?;
    browser.close().await;
    Ok(())
}
