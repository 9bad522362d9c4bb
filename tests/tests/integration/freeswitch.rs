//! FreeSWITCH over its event socket: the relay holds an ESL connection (TCP) to the simulated
//! FreeSWITCH, subscribed to channel events in JSON, and sends the rep's controls as `api` and
//! `bgapi` commands.

use anyhow::{Context, Result, bail};
use cti_protocol::ws::CallCommand;
use cti_relay::adapters::TelephonySettings;
use cti_relay::adapters::freeswitch::{Connection, EslError};
use cti_relay::secret::Secret;
use cti_tests::browser::{Browser, WIDGET_FRAME};
use cti_tests::{Provider, Stack, WsClient, eventually};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

async fn start() -> Result<Stack> {
    let stack = Stack::start_through(Provider::Freeswitch, |_| {}).await?;
    connected(&stack).await?;
    Ok(stack)
}

async fn connected(stack: &Stack) -> Result<()> {
    eventually("the relay's event socket connector up", || async {
        let ready = stack.readyz().await.ok()?;
        ready
            .to_string()
            .contains("\"connected\":true")
            .then_some(())
    })
    .await
}

async fn ring(stack: &Stack, from: &str, agent: &str) -> Result<String> {
    stack.ring_through(Provider::Freeswitch, from, agent).await
}

async fn sim_post(stack: &Stack, path: &str) -> Result<()> {
    let response = stack
        .http
        .post(format!("{}/sim/freeswitch{path}", stack.sim.url()))
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

/// The phone picks up (the event socket cannot answer a SIP phone).
async fn pick_up(stack: &Stack, ws: &mut WsClient, id: &str) -> Result<Value> {
    sim_post(stack, &format!("/calls/{id}/answer")).await?;
    state(ws, id, "connected").await
}

fn port(stack: &Stack) -> Result<u16> {
    stack
        .sim
        .sim
        .config
        .freeswitch_listen
        .map(|a| a.port())
        .context("the simulated FreeSWITCH listens")
}

#[tokio::test]
async fn a_call_rings_pops_is_held_blind_transferred_and_logged_once() -> Result<()> {
    let stack = start().await?;
    let (_, e164, name) = stack.single_match_caller()?;
    let (mut alice, welcome) = WsClient::signed_in(&stack, ALICE, None).await?;
    assert_eq!(
        welcome["controls"],
        json!(["decline", "hold", "hangup", "transfer", "dial"]),
        "{welcome}"
    );
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let id = ring(&stack, &e164, ALICE).await?;
    let ringing = state(&mut alice, &id, "ringing").await?;
    assert_eq!(ringing["call"]["from"], e164.as_str());
    assert_eq!(ringing["call"]["pop"]["name"], name.as_str());
    pick_up(&stack, &mut alice, &id).await?;

    // uuid_hold from the widget, and the phone's own hold key.
    alice.command(&id, CallCommand::Hold).await?;
    state(&mut alice, &id, "held").await?;
    alice.command(&id, CallCommand::Resume).await?;
    state(&mut alice, &id, "connected").await?;
    sim_post(&stack, &format!("/calls/{id}/hold")).await?;
    state(&mut alice, &id, "held").await?;
    sim_post(&stack, &format!("/calls/{id}/unhold")).await?;
    state(&mut alice, &id, "connected").await?;

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
    assert!(stack.sim.sim.freeswitch.calls().is_empty());
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(cti_tests::agents_on(&activity).iter().any(|a| a == ALICE));
    assert_eq!(stack.activities(&id).await?.len(), 1);

    // A consult is not something the event socket does for a phone: refused.
    let next = ring(&stack, "+41445550111", ALICE).await?;
    state(&mut alice, &next, "ringing").await?;
    pick_up(&stack, &mut alice, &next).await?;
    alice
        .command(&next, CallCommand::Consult { target: BOB.into() })
        .await?;
    let refused = alice
        .recv_until("consult refused", |m| m["type"] == "error")
        .await?;
    assert!(refused.to_string().contains("consult"), "{refused}");
    Ok(())
}

#[tokio::test]
async fn a_caller_hanging_up_while_it_rings_is_missed_and_a_refusal_declined() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550102", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    stack.hang_up_through(Provider::Freeswitch, &id).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "missed", "{ended}");
    stack.wait_activity(&id, "written", |_| true).await?;

    let id = ring(&stack, "+41445550109", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.command(&id, CallCommand::Decline).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "declined", "{ended}");
    assert!(stack.sim.sim.freeswitch.calls().is_empty());
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
    assert_eq!(stack.sim.sim.freeswitch.calls(), std::slice::from_ref(&id));
    pick_up(&stack, &mut alice, &id).await?;
    alice.command(&id, CallCommand::Hangup).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    stack.wait_activity(&id, "written", |_| true).await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// The event socket drops mid-call and the caller hangs up meanwhile: the relay connects again,
/// reads `show channels as json`, and ends the call once, answered.
#[tokio::test]
async fn a_dropped_event_socket_mid_call_is_caught_up_without_loss_or_double() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550103", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    pick_up(&stack, &mut alice, &id).await?;
    let logins = stack.sim.sim.freeswitch.logins();
    sim_post(&stack, "/connections/drop").await?;
    eventually("the relay to notice the lost socket", || async {
        let ready = stack.readyz().await.ok()?;
        (!ready.to_string().contains("\"connected\":true")).then_some(())
    })
    .await?;
    stack.hang_up_through(Provider::Freeswitch, &id).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let waiting = ring(&stack, "+41445550110", BOB).await?;
    sim_post(&stack, "/connections/restore").await?;
    connected(&stack).await?;
    assert!(stack.sim.sim.freeswitch.logins() > logins);
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    state(&mut bob, &waiting, "ringing").await?;
    stack.wait_activity(&id, "written", |_| true).await?;
    pick_up(&stack, &mut bob, &waiting).await?;
    stack
        .hang_up_through(Provider::Freeswitch, &waiting)
        .await?;
    state(&mut bob, &waiting, "ended").await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_malformed_frame_is_counted_and_the_connection_kept() -> Result<()> {
    let stack = start().await?;
    let logins = stack.sim.sim.freeswitch.logins();
    let errors = |text: String| {
        text.lines()
            .find(|l| {
                l.starts_with("cti_provider_errors_total{") && l.contains("provider=\"freeswitch\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = errors(stack.metrics().await?);
    sim_post(&stack, "/connections/malformed").await?;
    eventually("the malformed frame counted", || async {
        (errors(stack.metrics().await.ok()?) > before).then_some(())
    })
    .await?;
    let ready = stack.readyz().await?.to_string();
    assert!(ready.contains("malformed"), "{ready}");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550104", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    assert_eq!(stack.sim.sim.freeswitch.logins(), logins, "no new login");
    Ok(())
}

#[tokio::test]
async fn a_bad_password_is_refused_with_a_clear_error() -> Result<()> {
    let stack = Stack::start_through(Provider::Freeswitch, |config| {
        if let TelephonySettings::Freeswitch(settings) = &mut config.tenants[0].telephony {
            settings.freeswitch_password = Secret::new("ClueCon");
        }
    })
    .await?;
    eventually("the refused password in /readyz", || async {
        let ready = stack.readyz().await.ok()?.to_string();
        ready
            .contains("FreeSWITCH refused the event socket password: -ERR invalid")
            .then_some(())
    })
    .await?;
    let refused = Connection::open("127.0.0.1", port(&stack)?, &Secret::new("ClueCon")).await;
    assert!(
        matches!(&refused, Err(EslError::AuthRefused(text)) if text == "-ERR invalid"),
        "{refused:?}"
    );
    let mut esl = Connection::open(
        "127.0.0.1",
        port(&stack)?,
        &Secret::new("demo-freeswitch-secret"),
    )
    .await?;
    let unknown = esl.command("api uuid_answer_all").await?;
    assert_eq!(unknown.body, "-ERR uuid_answer_all Command not found!\n");
    let missing = esl.command("api uuid_kill 00000000").await?;
    assert_eq!(missing.body, "-ERR No such channel!\n");
    esl.close().await;
    Ok(())
}

#[tokio::test]
async fn a_call_rings_pops_and_is_hung_up_in_chromium_through_freeswitch() -> Result<()> {
    let stack = start().await?;
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

/// The relay process dies mid-call and the caller hangs up meanwhile: the new process reads the
/// channels back, ends the call its store (Redis) still holds as live, and logs it once.
#[tokio::test]
async fn a_relay_restart_mid_call_loses_nothing_and_logs_once() -> Result<()> {
    let redis = cti_tests::redis::RedisServer::start().await?;
    let url = redis.url();
    let mut stack = Stack::start_through(Provider::Freeswitch, |config| {
        config.redis_url = Some(Secret::new(url));
    })
    .await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550107", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    pick_up(&stack, &mut alice, &id).await?;
    stack.crash_relay();
    stack.hang_up_through(Provider::Freeswitch, &id).await?;
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
