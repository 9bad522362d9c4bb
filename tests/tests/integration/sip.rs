//! SIP PBXs through RFC 4235 dialog events, against a real Kamailio (started per test with the
//! repository's sample configuration) and real calls placed through it with SIPp: the reps'
//! phones register, a caller rings a rep, and the relay reads Kamailio's own NOTIFYs.
//!
//! The widget's pop is checked on the widget protocol (WsClient), and once in Chromium through
//! the simulator's host page, whose "Ring me" places a SIPp call through the same Kamailio.

use anyhow::{Context, Result};
use cti_protocol::ws::CallCommand;
use cti_tests::browser::{Browser, WIDGET_FRAME};
use cti_tests::kamailio::Kamailio;
use cti_tests::{Provider, Stack, WsClient, eventually};
use serde_json::Value;

const ALICE: &str = "alice@example.com";
const ALICE_EXT: &str = "1001";
const BOB: &str = "bob@example.com";
const BOB_EXT: &str = "1002";

/// The stack on its own Kamailio, the relay's subscriptions up.
async fn start() -> Result<Stack> {
    let stack = Stack::start_through(Provider::Sip, |_| {}).await?;
    connected(&stack).await?;
    Ok(stack)
}

/// The stack on its own Kamailio, the relay subscribed over `transport`.
async fn start_over(transport: cti_relay::adapters::sip::Transport) -> Result<Stack> {
    let stack = Stack::start_through(Provider::Sip, |config| {
        if let cti_relay::adapters::TelephonySettings::Sip(settings) =
            &mut config.tenants[0].telephony
        {
            settings.sip_transport = transport;
        }
    })
    .await?;
    connected(&stack).await?;
    Ok(stack)
}

/// The id of the call a `call` message shows.
fn call_id(message: &Value) -> Result<String> {
    message["call"]["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("a call id in {message}"))
}

fn kamailio(stack: &Stack) -> Result<&Kamailio> {
    stack
        .kamailio
        .as_ref()
        .context("a SIP stack has its Kamailio")
}

/// Waits until the relay's SIP connector is up (every rep's subscription accepted).
async fn connected(stack: &Stack) -> Result<()> {
    eventually("the relay's SIP connector up", || async {
        let ready = stack.readyz().await.ok()?;
        ready
            .to_string()
            .contains("\"connected\":true")
            .then_some(())
    })
    .await
    .with_context(|| {
        stack
            .kamailio
            .as_ref()
            .map(|k| format!("Kamailio's log: {}", k.log()))
            .unwrap_or_default()
    })
}

async fn state(ws: &mut WsClient, id: &str, state: &str) -> Result<Value> {
    ws.recv_call(id, &format!("{id} {state}"), |c| c["state"] == state)
        .await
}

/// The next call that rings on the rep's widget.
async fn rings(ws: &mut WsClient) -> Result<Value> {
    ws.recv_until("a call to ring", |m| {
        m["type"] == "call" && m["call"]["state"] == "ringing"
    })
    .await
}

#[tokio::test]
async fn a_call_through_kamailio_rings_pops_is_answered_and_logged_once() -> Result<()> {
    let stack = start().await?;
    let (_, e164, name) = stack.single_match_caller()?;
    let (mut alice, welcome) = WsClient::signed_in(&stack, ALICE, None).await?;
    // The widget shows no call controls the relay cannot give over SIP.
    assert_eq!(welcome["controls"], serde_json::json!([]), "{welcome}");

    let pbx = kamailio(&stack)?;
    let phone = pbx.answering_phone(ALICE_EXT, 1_500).await?;
    let caller = pbx.call(&e164, ALICE_EXT, 1_500)?;

    let ringing = rings(&mut alice).await?;
    let id = call_id(&ringing)?;
    assert_eq!(ringing["call"]["from"], e164.as_str());
    assert_eq!(ringing["call"]["direction"], "inbound");
    assert_eq!(ringing["call"]["pop"]["name"], name.as_str());

    state(&mut alice, &id, "connected").await?;
    // Controls are the phone's: the relay refuses them and says why.
    alice.command(&id, CallCommand::Hold).await?;
    let refusal = alice
        .recv_until("the hold refused", |m| {
            m["type"] == "error" || m["type"] == "command_result"
        })
        .await?;
    assert!(refusal.to_string().contains("phone"), "{refusal}");

    state(&mut alice, &id, "ended").await?;
    caller.finished().await?;
    phone.finished().await?;
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    assert_eq!(cti_tests::agents_on(&activity), [ALICE]);
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_call_the_caller_gives_up_on_is_missed() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let pbx = kamailio(&stack)?;
    let phone = pbx.unanswered_phone(ALICE_EXT).await?;
    let caller = pbx.call_and_give_up("+41445550109", ALICE_EXT, 1_000)?;

    let ringing = rings(&mut alice).await?;
    let id = call_id(&ringing)?;
    state(&mut alice, &id, "ended").await?;
    caller.finished().await?;
    phone.finished().await?;
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// Kamailio requires digest authentication on SUBSCRIBE: the relay's account passes it (every
/// other test subscribes with it), and a wrong password keeps the connector down with the
/// reason in `/readyz`.
#[tokio::test]
async fn subscriptions_need_the_relays_digest_credentials() -> Result<()> {
    let stack = Stack::start_through(Provider::Sip, |config| {
        if let cti_relay::adapters::TelephonySettings::Sip(settings) =
            &mut config.tenants[0].telephony
        {
            settings.sip_password = cti_relay::secret::Secret::new("demo-sip-wrong");
        }
    })
    .await?;
    let refused = eventually("the relay to report the refused credentials", || async {
        let ready = stack.readyz().await.ok()?.to_string();
        ready
            .contains("refused the digest credentials")
            .then_some(ready)
    })
    .await?;
    assert!(refused.contains("\"connected\":false"), "{refused}");
    assert!(!refused.contains("demo-sip-wrong"), "{refused}");

    // The right password: subscribed.
    let mut config = stack.relay.state.config.clone();
    if let cti_relay::adapters::TelephonySettings::Sip(settings) = &mut config.tenants[0].telephony
    {
        settings.sip_password = cti_relay::secret::Secret::new("demo-sip-relay");
    }
    let mut stack = stack;
    stack.stop_relay().await;
    stack.start_relay_with(config).await?;
    connected(&stack).await
}

/// The relay crashes while the rep talks: the new process subscribes again, Kamailio's full
/// state shows the call in progress, and its end is logged once.
#[tokio::test]
async fn a_relay_restarted_mid_call_subscribes_again_and_logs_the_end_once() -> Result<()> {
    let mut stack = start().await?;
    let (_, e164, _) = stack.single_match_caller()?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let pbx = kamailio(&stack)?;
    let phone = pbx.answering_phone(ALICE_EXT, 200).await?;
    let caller = pbx.call(&e164, ALICE_EXT, 6_000)?;
    let ringing = rings(&mut alice).await?;
    let id = call_id(&ringing)?;
    state(&mut alice, &id, "connected").await?;
    drop(alice);

    stack.crash_relay();
    stack.start_relay_again().await?;
    connected(&stack).await?;
    caller.finished().await?;
    phone.finished().await?;
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert_eq!(cti_tests::agents_on(&activity), [ALICE]);
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// Kamailio restarts while the rep talks, the relay subscribed over TCP: the connection drops,
/// the relay connects and subscribes again, the call (kept by Kamailio across the restart)
/// stays connected, and its end is logged once when the caller hangs up.
#[tokio::test]
async fn a_kamailio_restarted_mid_call_is_subscribed_again_over_tcp() -> Result<()> {
    let mut stack = start_over(cti_relay::adapters::sip::Transport::Tcp).await?;
    let (_, e164, _) = stack.single_match_caller()?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let pbx = kamailio(&stack)?;
    let phone = pbx.answering_phone(ALICE_EXT, 200).await?;
    let caller = pbx.call(&e164, ALICE_EXT, 8_000)?;
    let ringing = rings(&mut alice).await?;
    let id = call_id(&ringing)?;
    state(&mut alice, &id, "connected").await?;
    // Mid-call means set up: the phone has the caller's ACK (and Kamailio its dialog confirmed).
    phone.received("ACK").await?;

    stack
        .kamailio
        .as_mut()
        .context("the stack's Kamailio")?
        .restart()
        .await?;
    eventually(
        "the relay to reconnect to the restarted Kamailio",
        || async {
            let ready = stack.readyz().await.ok()?.to_string();
            (ready.contains("\"connected\":true") && !ready.contains("\"reconnects\":0"))
                .then_some(())
        },
    )
    .await?;
    let ended = state(&mut alice, &id, "ended").await?;
    // The end is the caller's hang-up, after its 8 s of talk, not the restart.
    let at = |field: &str| {
        ended["call"][field]
            .as_str()
            .and_then(cti_relay::clock::instant)
            .with_context(|| format!("{field} in {ended}"))
    };
    let talked = (at("ended_at")? - at("answered_at")?).whole_milliseconds();
    assert!(talked >= 7_000, "{ended}");
    caller.finished().await?;
    phone.finished().await?;
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity} {ended}"
    );
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// The rep's phone holds and resumes the call and publishes that (its own dialog state with
/// `+sip.rendering`) to Kamailio, which notifies it with the proxy's view of the same call:
/// answered -> held -> resumed -> hang up, logged once.
/// Alice's phone transfers the caller blind to Bob (a REFER; the caller's new INVITE gets a
/// new Call-ID, and Kamailio's dialog state names no referrer): Bob's leg joins Alice's call,
/// pops on his widget, Alice's leg ends as transferred to Bob, and the call is one activity
/// with both reps.
#[tokio::test]
async fn a_blind_transfer_between_two_reps_is_one_call_handed_over() -> Result<()> {
    let stack = start().await?;
    let (_, e164, name) = stack.single_match_caller()?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let pbx = kamailio(&stack)?;
    let alices_phone = pbx.transferring_phone(ALICE_EXT, BOB_EXT, 300).await?;
    let bobs_phone = pbx.answering_phone(BOB_EXT, 1_000).await?;
    let caller = pbx.call_transferred(&e164, ALICE_EXT, 1_500)?;

    let ringing = rings(&mut alice).await?;
    let id = call_id(&ringing)?;
    state(&mut alice, &id, "connected").await?;

    let at_bob = rings(&mut bob).await?;
    assert_eq!(at_bob["call"]["id"], id.as_str(), "{at_bob}");
    assert_eq!(at_bob["call"]["from"], e164.as_str());
    assert_eq!(at_bob["call"]["pop"]["name"], name.as_str());
    state(&mut bob, &id, "connected").await?;
    let handed = state(&mut alice, &id, "transferred").await?;
    assert!(handed.to_string().contains(BOB), "{handed}");
    caller.finished().await?;
    alices_phone.finished().await?;
    bobs_phone.finished().await?;
    let ended = state(&mut bob, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");

    let activity = stack
        .wait_activity(&id, "written", |a| cti_tests::agents_on(a).len() == 2)
        .await?;
    let agents = cti_tests::agents_on(&activity);
    assert!(
        agents.iter().any(|a| a == ALICE) && agents.iter().any(|a| a == BOB),
        "{agents:?}"
    );
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// The relay subscribes over TLS (Kamailio's TLS module, a certificate from a private CA the
/// tenant trusts with `sip_tls_ca_pem`): a call rings, is answered and logged once.
#[tokio::test]
async fn a_call_rings_and_is_logged_through_a_subscription_over_tls() -> Result<()> {
    let stack = start_over(cti_relay::adapters::sip::Transport::Tls).await?;
    let (_, e164, name) = stack.single_match_caller()?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let pbx = kamailio(&stack)?;
    let phone = pbx.answering_phone(ALICE_EXT, 300).await?;
    let caller = pbx.call(&e164, ALICE_EXT, 500)?;
    let ringing = rings(&mut alice).await?;
    assert_eq!(ringing["call"]["pop"]["name"], name.as_str());
    let id = call_id(&ringing)?;
    state(&mut alice, &id, "connected").await?;
    state(&mut alice, &id, "ended").await?;
    caller.finished().await?;
    phone.finished().await?;
    stack.wait_activity(&id, "written", |_| true).await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_hold_the_phone_publishes_reaches_the_widget() -> Result<()> {
    let stack = start().await?;
    let (_, e164, _) = stack.single_match_caller()?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let pbx = kamailio(&stack)?;
    let phone = pbx.holding_phone(ALICE_EXT, 200).await?;
    let caller = pbx.call(&e164, ALICE_EXT, 3_000)?;
    let ringing = rings(&mut alice).await?;
    let id = call_id(&ringing)?;
    state(&mut alice, &id, "connected").await?;
    state(&mut alice, &id, "held").await?;
    state(&mut alice, &id, "connected").await?;
    state(&mut alice, &id, "ended").await?;
    caller.finished().await?;
    phone.finished().await?;
    stack.wait_activity(&id, "written", |_| true).await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// The story in Chromium through the host page: "Ring me" places a real call through Kamailio
/// (the simulator's SIPp caller), the widget pops, the rep's phone answers (SIP gives the widget
/// no answer button), the caller hangs up, the host is told each moment once, and the call is
/// logged once. (The shared story answers with the widget's button, which SIP does not offer.)
#[tokio::test]
async fn a_call_rings_pops_and_ends_in_chromium_through_kamailio() -> Result<()> {
    let stack = start().await?;
    let pbx = kamailio(&stack)?;
    let phone = pbx.answering_phone(ALICE_EXT, 1_500).await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), ALICE).await?;
    let (dialled, e164, name) = stack.single_match_caller()?;
    let input = browser
        .client
        .find(fantoccini::Locator::Css("#caller-number"))
        .await?;
    input.clear().await?;
    input.send_keys(&dialled).await?;
    browser.click("#ring-button").await?;
    browser.wait_caller(&name).await?;
    let id = eventually("the relay to hold the ringing call", || async {
        stack
            .relay
            .state
            .calls
            .active_for_agent("demo", ALICE)
            .await
            .ok()?
            .pop()
            .map(|leg| leg.id)
    })
    .await?;
    let notify = stack.wait_host_action(&id, "NOTIFY").await?;
    assert_eq!(notify["payload"]["ANI"], e164.as_str());

    browser.enter_frame(WIDGET_FRAME).await?;
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;
    assert!(
        browser.text("[data-testid=btn-answer]").await.is_none(),
        "no answer button: the SIP phone answers"
    );
    // The caller hangs up: the simulator tells its SIPp, which sends BYE through Kamailio.
    let placed = stack.sim.sim.sip.call_ids();
    assert_eq!(placed.len(), 1, "{placed:?}");
    let response = reqwest::Client::new()
        .post(format!(
            "{}/sim/sip/calls/{}/hangup",
            stack.sim.url(),
            placed[0]
        ))
        .send()
        .await?;
    assert_eq!(response.status(), 204);
    browser
        .wait_for("[data-testid=call-state][data-state=ended]")
        .await?;
    browser.leave_frame().await?;
    stack.wait_host_action(&id, "END").await?;
    assert_eq!(
        stack.host_action_names(&id).await?,
        ["NOTIFY", "ACCEPT", "END"]
    );
    browser.close().await;
    phone.finished().await?;
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}
