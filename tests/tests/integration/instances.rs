//! Providers whose adapters remember things of a call between notifications, over two relay
//! instances on one Redis: a call's notifications land on one instance while the rep's widget
//! talks to the other, a consultation asked for on one is heard on the other, and a restarted
//! relay controls a call it heard of only before the restart. The adapters' call state is shared
//! through Redis (`adapters::call_state`); held in each instance's memory, the controls here are
//! refused and a consultation shows as a call of its own.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use cti_protocol::ws::CallCommand;
use cti_relay::RelayHandle;
use cti_relay::adapters::TelephonySettings;
use cti_relay::secret::Secret;
use cti_tests::redis::RedisServer;
use cti_tests::{Provider, Stack, WsClient, agents_on, eventually, summary_line};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// The stack's relay (instance A) on Redis, with quick retries and watches.
async fn on_redis(provider: Provider, server: &RedisServer) -> Result<Stack> {
    let url = server.url();
    Stack::start_through(provider, |c| {
        c.redis_url = Some(Secret::new(url.clone()));
        c.connector_lease = Duration::from_secs(3);
        c.activity_retry_base = Duration::from_millis(20);
        c.activity_retry_max = Duration::from_millis(300);
        c.miss_budget = Duration::from_secs(5);
        match &mut c.tenants[0].telephony {
            TelephonySettings::Teams(settings) => settings.teams_watch_secs = Some(1),
            TelephonySettings::Webex(settings) => settings.webex_watch_secs = Some(1),
            TelephonySettings::RingCentral(settings) => settings.ringcentral_watch_secs = Some(1),
            _ => {}
        }
    })
    .await
}

/// Instance B, and the reps' widgets signed in there.
async fn second_with_reps(stack: &Stack) -> Result<(RelayHandle, WsClient, WsClient)> {
    let second = stack.spawn_another_relay().await?;
    let ws_url = format!("ws://{}/v1/agent/ws", second.addr);
    let (alice, _) = WsClient::signed_in_at(stack, &ws_url, ALICE, None).await?;
    let (bob, _) = WsClient::signed_in_at(stack, &ws_url, BOB, None).await?;
    Ok((second, alice, bob))
}

async fn call_where(
    ws: &mut WsClient,
    call: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    ws.recv_call(call, what, check).await
}

/// Exactly one activity for the call; its agents.
async fn one_activity(stack: &Stack, call: &str) -> Result<Value> {
    let activity = stack.wait_activity(call, "written", |_| true).await?;
    assert_eq!(stack.activities(call).await?.len(), 1, "{activity}");
    Ok(activity)
}

async fn teams_subscribed(stack: &Stack) -> Result<()> {
    let teams = &stack.sim.sim.teams;
    eventually("the relay's Teams subscription", || async {
        let made = teams.created_subscriptions.load(Ordering::Relaxed);
        (made >= 1 && !teams.subscriptions().is_empty()).then_some(())
    })
    .await
}

/// The rep picks up Graph leg `leg` in the Teams client: Graph answers no user's call for them,
/// so the widget has no Answer for Teams.
async fn teams_pick_up(stack: &Stack, leg: &str) -> Result<()> {
    let response = stack
        .http
        .post(format!("{}/sim/teams/calls/{leg}/answer", stack.sim.url()))
        .json(&json!({}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 204,
        "picking up {leg}: {}",
        response.status()
    );
    Ok(())
}

/// The Graph leg of a consultation ringing at its colleague.
fn teams_consultation_leg(stack: &Stack) -> Result<String> {
    stack
        .sim
        .sim
        .teams
        .calls()
        .into_iter()
        .find(|c| c.consult && c.state == "incoming")
        .map(|c| c.id)
        .context("no consultation rings")
}

async fn teams_ring(stack: &Stack, from: &str, agent: &str) -> Result<String> {
    let response = stack
        .http
        .post(format!("{}/sim/teams/calls", stack.sim.url()))
        .json(&json!({"from": from, "agent": agent, "policy": true}))
        .send()
        .await?;
    let body: Value = response.json().await?;
    body["call_id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no call_id in {body}"))
}

/// Teams: the bot's notifications go to instance A, both reps' widgets talk to instance B. Alice
/// answers there, consults Bob and hands the caller over; it stays one call, logged once, and
/// the consultation's own chain (its record delivered too) is no call of its own.
#[tokio::test]
async fn teams_controls_from_another_instance_and_a_consult_split_across_instances_are_one_call()
-> Result<()> {
    let server = RedisServer::start().await?;
    let stack = on_redis(Provider::Teams, &server).await?;
    teams_subscribed(&stack).await?;
    let (second, mut alice, mut bob) = second_with_reps(&stack).await?;
    let (_, e164, _) = stack.single_match_caller()?;

    let call = teams_ring(&stack, &e164, ALICE).await?;
    call_where(&mut alice, &call, "alice's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await?;
    teams_pick_up(&stack, &call).await?;
    call_where(&mut alice, &call, "alice picked up", |c| {
        c["state"] == "connected"
    })
    .await?;
    alice
        .command(&call, CallCommand::Consult { target: BOB.into() })
        .await?;
    call_where(&mut bob, &call, "bob is consulted on the call", |c| {
        c["state"] == "ringing"
    })
    .await?;
    teams_pick_up(&stack, &teams_consultation_leg(&stack)?).await?;
    call_where(&mut bob, &call, "bob picked up", |c| {
        c["state"] == "connected"
    })
    .await?;
    alice.command(&call, CallCommand::CompleteTransfer).await?;
    call_where(&mut alice, &call, "alice handed over", |c| {
        c["state"] == "transferred"
    })
    .await?;
    bob.command(&call, CallCommand::Hangup).await?;
    call_where(&mut bob, &call, "ended", |c| c["state"] == "ended").await?;
    let activity = one_activity(&stack, &call).await?;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);

    // Every call record Graph wrote (the call's, the consultation's) is in: still one activity,
    // and none under the consultation's chain.
    let teams = &stack.sim.sim.teams;
    let chains: Vec<String> = teams.calls().into_iter().map(|c| c.chain).collect();
    for chain in &chains {
        eventually("the call record", || async { teams.record(chain) }).await?;
    }
    for chain in chains.iter().filter(|c| **c != call) {
        assert!(stack.activities(chain).await?.is_empty(), "{chain}");
    }
    assert_eq!(stack.activities(&call).await?.len(), 1);
    second.abort();
    Ok(())
}

/// Teams: a relay restarted mid-call hangs up the call it heard of before the restart, without
/// waiting for another notification of it.
#[tokio::test]
async fn teams_controls_a_call_heard_before_a_restart() -> Result<()> {
    let server = RedisServer::start().await?;
    let mut stack = on_redis(Provider::Teams, &server).await?;
    teams_subscribed(&stack).await?;
    let (_, e164, _) = stack.single_match_caller()?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let call = teams_ring(&stack, &e164, ALICE).await?;
    call_where(&mut alice, &call, "alice's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await?;
    teams_pick_up(&stack, &call).await?;
    call_where(&mut alice, &call, "alice picked up", |c| {
        c["state"] == "connected"
    })
    .await?;
    stack.crash_relay();
    stack.start_relay_again().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    alice.command(&call, CallCommand::Hangup).await?;
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await?;
    let activity = one_activity(&stack, &call).await?;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    Ok(())
}

/// Webex: deliveries go to one instance through the platform's router, both reps' widgets talk
/// to the other. Alice answers and consults Bob from there (the consultation's events land on
/// the first instance), then deliveries move to the second for the hand-over and the end. One
/// call, logged once, with both reps.
#[tokio::test]
async fn webex_controls_from_another_instance_and_a_consult_split_across_instances_are_one_call()
-> Result<()> {
    let server = RedisServer::start().await?;
    let router = cti_tests::proxy::Router::start().await?;
    let hook = format!("{}/v1/tenants/demo/telephony/webex", router.url());
    let url = server.url();
    let stack = Stack::start_through(Provider::Webex, |c| {
        c.redis_url = Some(Secret::new(url.clone()));
        c.connector_lease = Duration::from_secs(3);
        c.activity_retry_base = Duration::from_millis(20);
        c.activity_retry_max = Duration::from_millis(300);
        c.miss_budget = Duration::from_secs(5);
        if let TelephonySettings::Webex(settings) = &mut c.tenants[0].telephony {
            settings.webex_watch_secs = Some(1);
            settings.webex_webhook_url = hook.clone();
        }
    })
    .await?;
    router.route_to(vec![stack.relay.addr]);
    let wx = &stack.sim.sim.webex;
    eventually("the relay's webhook", || async {
        (wx.webhooks().len() == 1).then_some(())
    })
    .await?;
    let (second, mut alice, mut bob) = second_with_reps(&stack).await?;
    let (number, _, _) = stack.single_match_caller()?;

    let call = stack.ring_through(Provider::Webex, &number, ALICE).await?;
    call_where(&mut alice, &call, "alice's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await?;
    alice.answer(&call).await?;
    alice
        .command(&call, CallCommand::Consult { target: BOB.into() })
        .await?;
    call_where(&mut alice, &call, "caller held, bob rung", |c| {
        c["state"] == "held" && c["consult"]["agent"] == BOB && c["consult"]["state"] == "ringing"
    })
    .await?;
    call_where(&mut bob, &call, "bob is consulted on the call", |c| {
        c["state"] == "ringing"
    })
    .await?;
    bob.command(&call, CallCommand::Answer).await?;
    call_where(&mut alice, &call, "bob on the line", |c| {
        c["consult"]["state"] == "connected"
    })
    .await?;
    // From now on Webex's deliveries reach the second instance.
    router.route_to(vec![second.addr]);
    alice.command(&call, CallCommand::CompleteTransfer).await?;
    call_where(&mut alice, &call, "alice handed over", |c| {
        c["state"] == "transferred"
    })
    .await?;
    let hangup = stack
        .http
        .post(format!("{}/sim/webex/calls/{call}/hangup", stack.sim.url()))
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(hangup.status(), 200);
    call_where(&mut bob, &call, "ended", |c| c["state"] == "ended").await?;
    let activity = one_activity(&stack, &call).await?;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
    // No other call was shown or logged: the consultation was never a call of its own.
    let sessions: Vec<String> = wx.legs().into_iter().map(|l| l.session).collect();
    for session in sessions.iter().filter(|s| **s != call) {
        assert!(stack.activities(session).await?.is_empty(), "{session}");
    }
    second.abort();
    Ok(())
}

async fn finesse_state(ws: &mut WsClient, id: &str, state: &str) -> Result<Value> {
    ws.recv_call(id, &format!("{id} {state}"), |c| c["state"] == state)
        .await
}

/// Cisco Finesse: instance A holds the XMPP connection and hears every Dialog update, both reps'
/// widgets talk to instance B. Alice answers and consults Bob from there, Bob answers the
/// consultation (its own dialog) there, and Alice hands the caller over: one call, logged once,
/// Alice's leg ending as a transfer.
#[tokio::test]
async fn finesse_controls_from_the_instance_without_the_connection_follow_a_consult_transfer()
-> Result<()> {
    let server = RedisServer::start().await?;
    let stack = on_redis(Provider::Finesse, &server).await?;
    eventually("the relay's Finesse connector up", || async {
        let ready = stack.readyz().await.ok()?;
        ready
            .to_string()
            .contains("\"connected\":true")
            .then_some(())
    })
    .await?;
    let (second, mut alice, mut bob) = second_with_reps(&stack).await?;

    let id = stack
        .ring_through(Provider::Finesse, "+41445550101", ALICE)
        .await?;
    finesse_state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;
    alice
        .command(&id, CallCommand::Consult { target: BOB.into() })
        .await?;
    finesse_state(&mut alice, &id, "held").await?;
    finesse_state(&mut bob, &id, "ringing").await?;
    bob.answer(&id).await?;
    alice.command(&id, CallCommand::CompleteTransfer).await?;
    let transferred = finesse_state(&mut alice, &id, "transferred").await?;
    assert!(transferred.to_string().contains(BOB), "{transferred}");
    let consult = stack
        .sim
        .sim
        .finesse
        .dialog_ids()
        .into_iter()
        .next()
        .context("the consult dialog carries the call")?;
    let hangup = stack
        .http
        .post(format!(
            "{}/sim/finesse/calls/{consult}/hangup",
            stack.sim.url()
        ))
        .send()
        .await?;
    assert!(hangup.status().is_success(), "{}", hangup.text().await?);
    finesse_state(&mut bob, &id, "ended").await?;
    let activity = one_activity(&stack, &id).await?;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
    second.abort();
    Ok(())
}

async fn ringcentral_subscribed(stack: &Stack) -> Result<()> {
    let rc = &stack.sim.sim.ringcentral;
    eventually("the relay's RingCentral subscription", || async {
        let made = rc.created_subscriptions.load(Ordering::Relaxed);
        (made >= 1 && !rc.subscriptions().is_empty()).then_some(())
    })
    .await
}

/// RingCentral: the account's notifications go to instance A, where Alice answers; then a
/// notification of her party older than the answer (a lower `sequence`: RingCentral's order)
/// reaches instance B, which has heard nothing of the call. B knows from the shared state that
/// it is stale and ignores it, where on its own it would have taken it for a hold.
#[tokio::test]
async fn ringcentral_a_stale_notification_at_the_other_instance_is_ignored() -> Result<()> {
    let server = RedisServer::start().await?;
    let stack = on_redis(Provider::RingCentral, &server).await?;
    ringcentral_subscribed(&stack).await?;
    let second = stack.spawn_another_relay().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let (number, _, _) = stack.single_match_caller()?;
    let call = stack
        .ring_through(Provider::RingCentral, &number, ALICE)
        .await?;
    call_where(&mut alice, &call, "alice's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await?;
    alice.answer(&call).await?;
    let rc = &stack.sim.sim.ringcentral;
    let ext = rc.extension_by_email(ALICE).context("alice")?.id.clone();
    let party = rc
        .calls()
        .into_iter()
        .find(|c| c.call_id == call)
        .and_then(|c| {
            c.parties
                .into_iter()
                .find(|p| p.extension_id.as_deref() == Some(ext.as_str()))
        })
        .context("alice's party")?;
    // Her party's first notification had sequence 1 (ringing) and every change since a higher
    // one: a notification with sequence 1 is older than her answer.
    anyhow::ensure!(party.status == "Answered", "answered: {}", party.status);
    let stale = json!({"uuid": "stale-1", "event": "/restapi/v1.0/account/~/telephony/sessions",
        "timestamp": "2026-12-02T10:00:00Z", "subscriptionId": "any", "ownerId": "1",
        "body": {"sequence": 1, "telephonySessionId": call, "eventTime": "2026-12-02T10:00:00Z",
                 "parties": [{"id": party.id, "extensionId": ext, "direction": "Inbound",
                              "from": {"phoneNumber": number}, "to": {"phoneNumber": "+14085550100"},
                              "status": {"code": "Hold"}}]}});
    let response = stack
        .http
        .post(format!(
            "{}/v1/tenants/demo/telephony/ringcentral",
            second.url()
        ))
        .header("Verification-Token", "demo-ringcentral-verification")
        .json(&stale)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "the notification is taken: {}",
        response.status()
    );
    let leg = stack
        .relay
        .state
        .calls
        .get("demo", &call, ALICE)
        .await?
        .context("alice's leg")?;
    assert_eq!(
        leg.state,
        cti_protocol::ws::CallState::Connected,
        "the stale hold changed nothing"
    );
    alice.command(&call, CallCommand::Hangup).await?;
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await?;
    let activity = one_activity(&stack, &call).await?;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    second.abort();
    Ok(())
}

/// RingCentral: notifications go to instance A, both reps' widgets talk to instance B, whose
/// extension directory was never read (it holds no subscription): its controls read it first.
/// Alice answers and consults Bob from B (the consult session's notifications land on A), Bob answers
/// there and Alice bridges him to the caller: one call, logged once, with both reps.
#[tokio::test]
async fn ringcentral_a_consult_split_across_instances_is_one_call() -> Result<()> {
    let server = RedisServer::start().await?;
    let stack = on_redis(Provider::RingCentral, &server).await?;
    ringcentral_subscribed(&stack).await?;
    let (second, mut alice, mut bob) = second_with_reps(&stack).await?;
    let (number, _, _) = stack.single_match_caller()?;
    let call = stack
        .ring_through(Provider::RingCentral, &number, ALICE)
        .await?;
    call_where(&mut alice, &call, "alice's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await?;
    alice.answer(&call).await?;
    alice
        .command(&call, CallCommand::Consult { target: BOB.into() })
        .await?;
    call_where(&mut alice, &call, "caller held, bob rung", |c| {
        c["state"] == "held" && c["consult"]["agent"] == BOB && c["consult"]["state"] == "ringing"
    })
    .await?;
    call_where(&mut bob, &call, "bob is consulted on the call", |c| {
        c["state"] == "ringing"
    })
    .await?;
    bob.command(&call, CallCommand::Answer).await?;
    call_where(&mut alice, &call, "bob on the line", |c| {
        c["consult"]["state"] == "connected"
    })
    .await?;
    alice.command(&call, CallCommand::CompleteTransfer).await?;
    call_where(&mut alice, &call, "alice handed over", |c| {
        c["state"] == "transferred"
    })
    .await?;
    bob.command(&call, CallCommand::Hangup).await?;
    call_where(&mut bob, &call, "ended", |c| c["state"] == "ended").await?;
    let activity = one_activity(&stack, &call).await?;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
    // No other call was logged: the consult session was never a call of its own.
    let sessions: Vec<String> = stack
        .sim
        .sim
        .ringcentral
        .calls()
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    for session in sessions.iter().filter(|s| **s != call) {
        assert!(stack.activities(session).await?.is_empty(), "{session}");
    }
    second.abort();
    Ok(())
}
