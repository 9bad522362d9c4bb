//! Asterisk over its manager interface: the relay holds an AMI connection (TCP) to the
//! simulated Asterisk, which replays the captured AMI traffic of calls placed and driven through
//! its HTTP controls, and sends the rep's controls as AMI actions.

use anyhow::{Context, Result, bail};
use cti_protocol::ws::CallCommand;
use cti_relay::adapters::TelephonySettings;
use cti_relay::adapters::asterisk::ami::Message;
use cti_relay::adapters::asterisk::client::{Account, AmiError, Connection};
use cti_relay::secret::Secret;
use cti_tests::browser::{Browser, WIDGET_FRAME};
use cti_tests::{Provider, Stack, WsClient, eventually};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// The stack on the simulated Asterisk, its AMI connector up.
async fn start() -> Result<Stack> {
    let stack = Stack::start_through(Provider::Asterisk, |_| {}).await?;
    connected(&stack).await?;
    Ok(stack)
}

async fn connected(stack: &Stack) -> Result<()> {
    eventually("the relay's AMI connector up", || async {
        let ready = stack.readyz().await.ok()?;
        ready
            .to_string()
            .contains("\"connected\":true")
            .then_some(())
    })
    .await
}

async fn ring(stack: &Stack, from: &str, agent: &str) -> Result<String> {
    stack.ring_through(Provider::Asterisk, from, agent).await
}

async fn sim_post(stack: &Stack, path: &str) -> Result<()> {
    let response = stack
        .http
        .post(format!("{}/sim/asterisk{path}", stack.sim.url()))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("{path}: {}", response.text().await?);
    }
    Ok(())
}

async fn state(ws: &mut WsClient, id: &str, state: &str) -> Result<Value> {
    ws.recv_call(id, &format!("{id} {state}"), |c| c["state"] == state)
        .await
}

/// The rep picks up on the phone (AMI cannot answer a SIP phone).
async fn pick_up(stack: &Stack, ws: &mut WsClient, id: &str) -> Result<Value> {
    sim_post(stack, &format!("/calls/{id}/answer")).await?;
    state(ws, id, "connected").await
}

fn ami_account(stack: &Stack, secret: &str) -> Result<Account> {
    let Some(addr) = stack.sim.sim.config.asterisk_listen else {
        bail!("the simulated Asterisk listens");
    };
    Ok(Account {
        host: "127.0.0.1".into(),
        port: addr.port(),
        tls: false,
        ca_pem: None,
        username: "cti-relay".into(),
        secret: Secret::new(secret),
    })
}

async fn provider_errors(stack: &Stack) -> Result<u64> {
    let metrics = stack.metrics().await?;
    Ok(metrics
        .lines()
        .find(|l| {
            l.starts_with("cti_provider_errors_total{") && l.contains("provider=\"asterisk\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

#[tokio::test]
async fn a_call_rings_pops_is_held_on_the_phone_blind_transferred_and_logged_once() -> Result<()> {
    let stack = start().await?;
    let (_, e164, name) = stack.single_match_caller()?;
    let (mut alice, welcome) = WsClient::signed_in(&stack, ALICE, None).await?;
    // AMI cannot answer or hold a SIP phone: the widget offers neither.
    assert_eq!(
        welcome["controls"],
        json!(["decline", "hangup", "transfer", "consult", "dial"]),
        "{welcome}"
    );
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;

    let id = ring(&stack, &e164, ALICE).await?;
    let ringing = state(&mut alice, &id, "ringing").await?;
    assert_eq!(ringing["call"]["from"], e164.as_str());
    assert_eq!(ringing["call"]["direction"], "inbound");
    assert_eq!(ringing["call"]["pop"]["name"], name.as_str());

    pick_up(&stack, &mut alice, &id).await?;
    // The phone's hold key shows; the relay refuses a hold it cannot do.
    sim_post(&stack, &format!("/calls/{id}/hold")).await?;
    state(&mut alice, &id, "held").await?;
    sim_post(&stack, &format!("/calls/{id}/unhold")).await?;
    state(&mut alice, &id, "connected").await?;
    alice.command(&id, CallCommand::Hold).await?;
    let refused = alice
        .recv_until("hold refused", |m| m["type"] == "error")
        .await?;
    assert!(refused.to_string().contains("hold"), "{refused}");

    alice
        .command(&id, CallCommand::Transfer { target: BOB.into() })
        .await?;
    state(&mut alice, &id, "transferred").await?;
    let rung = state(&mut bob, &id, "ringing").await?;
    assert_eq!(rung["call"]["from"], e164.as_str());
    pick_up(&stack, &mut bob, &id).await?;
    bob.command(&id, CallCommand::Hangup).await?;
    let ended = state(&mut bob, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    assert!(stack.sim.sim.asterisk.calls().is_empty());

    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    let agents = cti_tests::agents_on(&activity);
    assert!(agents.iter().any(|a| a == ALICE), "{agents:?}");
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_consult_transfer_holds_rings_the_colleague_and_hands_over() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let id = ring(&stack, "+41445550101", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    pick_up(&stack, &mut alice, &id).await?;

    // A cancelled consult: the colleague drops off, the caller is back with the rep.
    alice
        .command(&id, CallCommand::Consult { target: BOB.into() })
        .await?;
    state(&mut alice, &id, "held").await?;
    state(&mut bob, &id, "ringing").await?;
    assert!(
        stack
            .sim
            .sim
            .asterisk
            .channel_names()
            .iter()
            .any(|c| c.starts_with("Local/22@from-internal-")),
        "Atxfer dials through a Local channel"
    );
    pick_up(&stack, &mut bob, &id).await?;
    alice.command(&id, CallCommand::CancelConsult).await?;
    state(&mut bob, &id, "ended").await?;
    state(&mut alice, &id, "connected").await?;

    // Consulted again (the colleague's leg rings as a new round), and this time handed over.
    alice
        .command(&id, CallCommand::Consult { target: BOB.into() })
        .await?;
    state(&mut alice, &id, "held").await?;
    state(&mut bob, &id, "ringing").await?;
    pick_up(&stack, &mut bob, &id).await?;
    alice.command(&id, CallCommand::CompleteTransfer).await?;
    let transferred = state(&mut alice, &id, "transferred").await?;
    assert!(transferred.to_string().contains(BOB), "{transferred}");
    // The caller, now with the colleague, hangs up.
    stack.hang_up_through(Provider::Asterisk, &id).await?;
    state(&mut bob, &id, "ended").await?;
    stack.wait_activity(&id, "written", |_| true).await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_caller_hanging_up_while_it_rings_is_missed_and_a_refusal_declined() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550102", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    stack.hang_up_through(Provider::Asterisk, &id).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "missed", "{ended}");
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );

    // Declined from the widget: Hangup with cause 21 while it rings.
    let id = ring(&stack, "+41445550109", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.command(&id, CallCommand::Decline).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "declined", "{ended}");
    assert!(stack.sim.sim.asterisk.calls().is_empty());
    stack.wait_activity(&id, "written", |_| true).await?;
    Ok(())
}

#[tokio::test]
async fn click_to_dial_is_an_originate() -> Result<()> {
    let stack = start().await?;
    let (number, e164, _) = stack.single_match_caller()?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    alice
        .send_json(&json!({"type": "dial", "number": number}))
        .await?;
    let call = alice
        .recv_until("the outbound call", |m| {
            m["type"] == "call" && m["call"]["direction"] == "outbound"
        })
        .await?;
    assert_eq!(call["call"]["state"], "ringing");
    assert_eq!(call["call"]["to"], e164.as_str());
    let id = call["call"]["id"].as_str().context("id")?.to_string();
    assert_eq!(stack.sim.sim.asterisk.calls(), std::slice::from_ref(&id));

    // The far end answers, the rep hangs up.
    pick_up(&stack, &mut alice, &id).await?;
    alice.command(&id, CallCommand::Hangup).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    stack.wait_activity(&id, "written", |_| true).await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// The AMI connection drops mid-call and the caller hangs up while it is down (its events lost,
/// as for any AMI client that is not connected): the relay logs in again, lists the channels
/// (`CoreShowChannels`), ends the call once, answered.
#[tokio::test]
async fn a_dropped_ami_connection_mid_call_is_caught_up_without_loss_or_double() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550103", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    pick_up(&stack, &mut alice, &id).await?;
    // A second call rings while the connection is down, and still rings after.
    let logins = stack.sim.sim.asterisk.logins();

    sim_post(&stack, "/connections/drop").await?;
    eventually("the relay to notice the lost connection", || async {
        let ready = stack.readyz().await.ok()?;
        (!ready.to_string().contains("\"connected\":true")).then_some(())
    })
    .await?;
    stack.hang_up_through(Provider::Asterisk, &id).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let waiting = ring(&stack, "+41445550110", BOB).await?;
    sim_post(&stack, "/connections/restore").await?;
    connected(&stack).await?;
    assert!(stack.sim.sim.asterisk.logins() > logins);

    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    state(&mut bob, &waiting, "ringing").await?;
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    // Events flow again on the new connection.
    pick_up(&stack, &mut bob, &waiting).await?;
    stack.hang_up_through(Provider::Asterisk, &waiting).await?;
    state(&mut bob, &waiting, "ended").await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// A block that is not AMI is logged and counted, and the connection stays.
#[tokio::test]
async fn a_malformed_frame_is_counted_and_the_connection_kept() -> Result<()> {
    let stack = start().await?;
    let logins = stack.sim.sim.asterisk.logins();
    let before = provider_errors(&stack).await?;
    sim_post(&stack, "/connections/malformed").await?;
    eventually("the malformed frame counted", || async {
        (provider_errors(&stack).await.ok()? > before).then_some(())
    })
    .await?;
    let ready = stack.readyz().await?.to_string();
    assert!(ready.contains("malformed"), "{ready}");
    assert!(ready.contains("\"connected\":true"), "{ready}");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550104", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    assert_eq!(stack.sim.sim.asterisk.logins(), logins, "no new login");
    Ok(())
}

/// A wrong secret is refused with AMI's own words, shown in `/readyz`; the simulated Asterisk
/// is as strict as Asterisk about what comes before and instead of a login.
#[tokio::test]
async fn a_bad_login_is_refused_with_a_clear_error() -> Result<()> {
    let stack = Stack::start_through(Provider::Asterisk, |config| {
        if let TelephonySettings::Asterisk(settings) = &mut config.tenants[0].telephony {
            settings.asterisk_secret = Secret::new("wrong");
        }
    })
    .await?;
    eventually("the refused login in /readyz", || async {
        let ready = stack.readyz().await.ok()?.to_string();
        ready
            .contains("Asterisk refused the login of \\\"cti-relay\\\": Authentication failed")
            .then_some(())
    })
    .await?;
    assert!(
        !stack
            .readyz()
            .await?
            .to_string()
            .contains("\"connected\":true")
    );

    let refused = Connection::open(&ami_account(&stack, "wrong")?, "off").await;
    assert!(
        matches!(&refused, Err(AmiError::LoginRefused { message, .. }) if message == "Authentication failed"),
        "{refused:?}"
    );
    // Before a login, actions are refused; after one, unknown actions are named.
    let port = ami_account(&stack, "")?.port;
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    raw.write_all(b"Action: CoreShowChannels\r\nActionID: 1\r\n\r\n")
        .await?;
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    while !seen.contains("Permission denied") {
        let n = raw.read(&mut buf).await?;
        if n == 0 {
            bail!("closed early: {seen}");
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("Asterisk Call Manager/"), "{seen}");
    let mut ami = Connection::open(&ami_account(&stack, "demo-asterisk-secret")?, "off").await?;
    let answer = ami.request(Message::action("Answer", &[])).await?;
    assert_eq!(answer.response(), Some("Error"));
    assert!(
        answer
            .text("Message")
            .starts_with("Invalid/unknown command: Answer."),
        "{answer:?}"
    );
    let answer = ami
        .request(Message::action(
            "Hangup",
            &[("Channel", "PJSIP/21-ffffffff")],
        ))
        .await?;
    assert_eq!(answer.text("Message"), "No such channel");
    ami.close().await;
    Ok(())
}

/// The story in Chromium through the host page: ring, pop, picked up on the phone, hung up from
/// the widget, the host told each moment once. (The shared story answers with the widget's
/// button, which an Asterisk tenant does not have.)
#[tokio::test]
async fn a_call_rings_pops_and_is_hung_up_in_chromium_through_asterisk() -> Result<()> {
    let stack = Stack::start_through(Provider::Asterisk, |_| {}).await?;
    connected(&stack).await?;
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

    sim_post(&stack, &format!("/calls/{id}/answer")).await?;
    browser.enter_frame(WIDGET_FRAME).await?;
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;
    assert!(
        browser.text("[data-testid=btn-answer]").await.is_none(),
        "no answer button for a phone AMI cannot answer"
    );
    browser.click("[data-testid=btn-hangup]").await?;
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
    Ok(())
}

/// The relay process dies mid-call and the caller hangs up meanwhile: the new process logs in,
/// lists the channels, ends the call its store (Redis) still holds as live and no channel
/// carries any more, and logs it once.
#[tokio::test]
async fn a_relay_restart_mid_call_loses_nothing_and_logs_once() -> Result<()> {
    let redis = cti_tests::redis::RedisServer::start().await?;
    let url = redis.url();
    let mut stack = Stack::start_through(Provider::Asterisk, |config| {
        config.redis_url = Some(Secret::new(url));
    })
    .await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550107", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    pick_up(&stack, &mut alice, &id).await?;
    stack.crash_relay();
    stack.hang_up_through(Provider::Asterisk, &id).await?;
    stack.start_relay_again().await?;
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let next = ring(&stack, "+41445550108", ALICE).await?;
    state(&mut alice, &next, "ringing").await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}
