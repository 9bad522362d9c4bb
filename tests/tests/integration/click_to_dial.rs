//! Click-to-dial: V2 posts `{"Direction":"OUT","PhoneNumber":...}` into the widget's frame; the
//! widget checks who sent it, the relay normalizes the number and has the PBX place the call.

use anyhow::{Context, Result};
use cti_tests::browser::Browser;
use cti_tests::{Stack, WsClient, eventually};
use serde_json::{Value, json};

const AGENT: &str = "alice@example.com";
use cti_tests::browser::WIDGET_FRAME as WIDGET;

#[tokio::test]
async fn dialling_over_the_websocket_places_an_outbound_call() {
    let stack = Stack::start().await.expect("stack starts");
    let (number, e164, name) = stack.single_match_caller().expect("a seeded caller");
    let (mut ws, _) = WsClient::signed_in(&stack, AGENT, None)
        .await
        .expect("signed in");
    ws.send_json(&json!({"type": "dial", "number": number}))
        .await
        .expect("sent");
    let call = ws
        .recv_until("the outbound call", |m| {
            m["type"] == "call" && m["call"]["direction"] == "outbound"
        })
        .await
        .expect("call");
    assert_eq!(call["call"]["state"], "ringing");
    assert_eq!(call["call"]["to"], e164.as_str());
    assert_eq!(call["call"]["pop"]["name"], name.as_str());
    let id = call["call"]["id"].as_str().expect("id").to_string();

    // The far end picks up; the rep hangs up.
    let answered = stack
        .http
        .post(format!("{}/sim/calls/{id}/answer", stack.sim.url()))
        .send()
        .await
        .expect("sim answers");
    assert_eq!(answered.status(), 200);
    ws.recv_until("the answered call", |m| {
        m["type"] == "call" && m["call"]["id"] == id.as_str() && m["call"]["state"] == "connected"
    })
    .await
    .expect("connected");
    ws.send_json(&json!({"type": "command", "call_id": id, "action": "hangup"}))
        .await
        .expect("sent");
    ws.recv_until("the ended call", |m| {
        m["type"] == "call" && m["call"]["id"] == id.as_str() && m["call"]["state"] == "ended"
    })
    .await
    .expect("ended");

    // A number that is none gets a reason, and nothing is dialled.
    let calls_before = stack.sim.sim.pbx.calls().len();
    ws.send_json(&json!({"type": "dial", "number": "12"}))
        .await
        .expect("sent");
    let error = ws
        .recv_until("the refusal", |m| m["type"] == "error")
        .await
        .expect("error");
    assert_eq!(error["code"], "invalid_number");
    assert_eq!(stack.sim.sim.pbx.calls().len(), calls_before);
}

async fn ignored_requests(browser: &Browser) -> Option<u64> {
    browser
        .attr(".widget", "data-ignored-requests")
        .await?
        .parse()
        .ok()
}

#[tokio::test]
async fn a_dial_link_on_the_host_calls_and_foreign_frames_are_ignored() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;

    // A record's phone number on the host page, clicked.
    browser.wait_for("#dial-list .dial-link").await?;
    let number = browser
        .attr("#dial-list .dial-link", "data-number")
        .await
        .context("a dial link")?;
    browser.click("#dial-list .dial-link").await?;
    let call = eventually("the PBX to place the outbound call", || async {
        stack
            .sim
            .sim
            .pbx
            .calls()
            .into_iter()
            .find(|c| c.agent == AGENT)
    })
    .await?;
    let e164 =
        cti_relay::numbers::normalize(&number, &cti_relay::numbers::DefaultRegion::parse("CH")?)?
            .e164;
    assert_eq!(call.to, e164);
    browser.enter_frame(WIDGET).await?;
    browser
        .wait_for("[data-testid=call-state][data-state=ringing]")
        .await?;
    browser.leave_frame().await?;
    let notify = stack.wait_host_action(&call.call_id, "NOTIFY").await?;
    assert_eq!(notify["payload"]["EventType"], "OUTBOUND");
    assert_eq!(notify["payload"]["ANI"], e164.as_str());

    // Another frame on the page, from an origin that is not a V2 host (the page's policy only
    // admits the relay's origin, which is not one), asks the widget to dial a valid number: only
    // the origin check stands between it and a second call.
    let add_frame = r#"
        var frame = document.createElement('iframe');
        frame.id = 'foreign';
        frame.src = arguments[0];
        document.body.appendChild(frame);
        return true;
    "#;
    browser
        .client
        .execute(
            add_frame,
            vec![json!(format!("{}/healthz", stack.relay.url()))],
        )
        .await?;
    browser.enter_frame("#foreign").await?;
    eventually("the foreign frame to load", || async {
        let ready = browser
            .client
            .execute(
                "return document.readyState === 'complete' && location.href !== 'about:blank';",
                vec![],
            )
            .await
            .ok()?;
        (ready == json!(true)).then_some(())
    })
    .await?;
    browser
        .client
        .execute(
            "parent.frames[0].postMessage({Direction: 'OUT', PhoneNumber: arguments[0]}, '*'); return true;",
            vec![json!(e164)],
        )
        .await?;
    browser.leave_frame().await?;
    browser.enter_frame(WIDGET).await?;
    eventually("the widget to count the foreign request", || async {
        (ignored_requests(&browser).await? >= 1).then_some(())
    })
    .await?;
    browser.leave_frame().await?;
    let placed: Vec<Value> = stack
        .sim
        .sim
        .pbx
        .calls()
        .into_iter()
        .map(|c| json!(c.to))
        .collect();
    assert_eq!(placed, [json!(e164)], "nothing else was dialled");
    browser.close().await;
    Ok(())
}
