//! Genesys Cloud over its real protocol: the relay takes a client-credentials token from the
//! simulated org, holds its notification WebSocket, maps its full call snapshots to the rep's
//! widget and V2, and sends the rep's controls through the Conversations API.

use anyhow::{Context, Result, bail};
use cti_protocol::ws::CallCommand;
use cti_relay::adapters::{TelephonySettings, genesys};
use cti_tests::{Provider, Stack, WsClient, eventually};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

async fn genesys_stack() -> Result<Stack> {
    Stack::start_with(|config| {
        let sim_url = config.tenants[0].v2_url.clone();
        config.tenants[0].telephony = TelephonySettings::Genesys(genesys::Settings::demo(&sim_url));
    })
    .await
}

/// Waits until the relay's connector has a socket on the simulated org.
async fn connected(stack: &Stack) -> Result<()> {
    eventually("the relay's notification socket", || async {
        let (_, sockets) = stack.sim.sim.genesys.channel_counts();
        (sockets > 0).then_some(())
    })
    .await
}

/// A customer calls `agent` through the simulated org; the conversation id.
async fn ring(stack: &Stack, from: &str, agent: &str) -> Result<String> {
    stack.ring_through(Provider::Genesys, from, agent).await
}

async fn sim_post(stack: &Stack, path: &str, body: &Value) -> Result<()> {
    let response = stack
        .http
        .post(format!("{}/sim/genesys{path}", stack.sim.url()))
        .json(body)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("{path}: {}", response.text().await?);
    }
    Ok(())
}

async fn fault(stack: &Stack, fault: Value) -> Result<()> {
    sim_post(stack, "/faults", &fault).await
}

async fn state(ws: &mut WsClient, id: &str, state: &str) -> Result<Value> {
    ws.recv_call(id, &format!("{id} {state}"), |c| c["state"] == state)
        .await
}

#[tokio::test]
async fn a_call_rings_pops_is_held_transferred_and_logged_once() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
    let (_, e164, name) = stack.single_match_caller()?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;

    let id = ring(&stack, &e164, ALICE).await?;
    let ringing = state(&mut alice, &id, "ringing").await?;
    assert_eq!(ringing["call"]["from"], e164.as_str());
    assert_eq!(ringing["call"]["direction"], "inbound");
    assert_eq!(ringing["call"]["pop"]["name"], name.as_str());

    alice.answer(&id).await?;
    alice.command(&id, CallCommand::Hold).await?;
    state(&mut alice, &id, "held").await?;
    let conversation = stack.sim.sim.genesys.conversation(&id).context("call")?;
    assert_eq!(conversation["participants"][1]["held"], true);
    alice.command(&id, CallCommand::Resume).await?;
    state(&mut alice, &id, "connected").await?;

    alice
        .command(&id, CallCommand::Transfer { target: BOB.into() })
        .await?;
    state(&mut alice, &id, "transferred").await?;
    state(&mut bob, &id, "ringing").await?;
    bob.answer(&id).await?;
    bob.command(&id, CallCommand::Hangup).await?;
    state(&mut bob, &id, "ended").await?;

    let conversation = stack.sim.sim.genesys.conversation(&id).context("call")?;
    assert_eq!(
        conversation["participants"][1]["disconnectType"],
        "transfer"
    );
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    let agents = cti_tests::agents_on(&activity);
    assert!(agents.iter().any(|a| a == ALICE), "{agents:?}");
    Ok(())
}

#[tokio::test]
async fn a_consult_transfer_holds_rings_the_colleague_and_hands_over() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let id = ring(&stack, "+41445550101", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;

    alice
        .command(&id, CallCommand::Consult { target: BOB.into() })
        .await?;
    state(&mut alice, &id, "held").await?;
    state(&mut bob, &id, "ringing").await?;
    let conversation = stack.sim.sim.genesys.conversation(&id).context("call")?;
    let alice_pid = conversation["participants"][1]["id"].clone();
    assert_eq!(
        conversation["participants"][2]["consultParticipantId"],
        alice_pid
    );
    bob.answer(&id).await?;

    // A cancelled consult brings the caller back to the rep.
    alice.command(&id, CallCommand::CancelConsult).await?;
    state(&mut bob, &id, "ended").await?;
    state(&mut alice, &id, "connected").await?;

    // A second consult, completed.
    alice
        .command(&id, CallCommand::Consult { target: BOB.into() })
        .await?;
    state(&mut alice, &id, "held").await?;
    state(&mut bob, &id, "ringing").await?;
    bob.answer(&id).await?;
    alice.command(&id, CallCommand::CompleteTransfer).await?;
    state(&mut alice, &id, "transferred").await?;
    let conversation = stack.sim.sim.genesys.conversation(&id).context("call")?;
    assert_eq!(
        conversation["participants"][1]["disconnectType"],
        "transfer.consult"
    );
    sim_post(&stack, &format!("/calls/{id}/hangup"), &json!({})).await?;
    state(&mut bob, &id, "ended").await?;
    stack.wait_activity(&id, "written", |_| true).await?;
    Ok(())
}

/// Rings `agent` from `from` and has them answer in the widget: the conversation id.
async fn answered(stack: &Stack, ws: &mut WsClient, from: &str, agent: &str) -> Result<String> {
    let id = ring(stack, from, agent).await?;
    state(ws, &id, "ringing").await?;
    ws.answer(&id).await?;
    Ok(id)
}

/// Alice's leg handed to a number outside the org's reps: transferred with the reason that says
/// no colleague's leg follows, so the hand-over ends the call, logged once as hers.
async fn handed_outside(stack: &Stack, alice: &mut WsClient, id: &str) -> Result<()> {
    let transferred = state(alice, id, "transferred").await?;
    assert_eq!(
        transferred["call"]["end_reason"], "completed",
        "{transferred}"
    );
    let activity = stack.wait_activity(id, "written", |_| true).await?;
    assert_eq!(cti_tests::agents_on(&activity), [ALICE], "{activity}");
    assert_eq!(
        cti_tests::summary_line(&activity, "Outcome: "),
        Some("completed"),
        "{activity}"
    );
    assert_eq!(stack.activities(id).await?.len(), 1);
    Ok(())
}

/// Transfers to a number outside the org, blind and after consulting it: the number is an
/// `external` participant, no rep's, so each hand-over ends the call with one activity; the
/// caller hanging up on the number afterwards adds nothing.
#[tokio::test]
async fn transfers_to_a_number_outside_are_logged_once() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let outside = "+41445550199";

    let id = answered(&stack, &mut alice, "+41445550102", ALICE).await?;
    alice
        .command(
            &id,
            CallCommand::Transfer {
                target: outside.into(),
            },
        )
        .await?;
    handed_outside(&stack, &mut alice, &id).await?;
    let conversation = stack.sim.sim.genesys.conversation(&id).context("call")?;
    assert!(
        conversation["participants"].as_array().is_some_and(|p| p
            .iter()
            .any(|p| p["purpose"] == "external" && p["address"] == format!("tel:{outside}"))),
        "{conversation}"
    );

    let id = answered(&stack, &mut alice, "+41445550103", ALICE).await?;
    alice
        .command(
            &id,
            CallCommand::Consult {
                target: outside.into(),
            },
        )
        .await?;
    state(&mut alice, &id, "held").await?;
    alice.command(&id, CallCommand::CompleteTransfer).await?;
    handed_outside(&stack, &mut alice, &id).await?;
    sim_post(&stack, &format!("/calls/{id}/hangup"), &json!({})).await?;
    let conversation = stack.sim.sim.genesys.conversation(&id).context("call")?;
    assert!(
        conversation["participants"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["state"] == "disconnected")),
        "{conversation}"
    );
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_caller_hanging_up_while_it_rings_is_missed_and_a_refusal_declined() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550102", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    sim_post(&stack, &format!("/calls/{id}/hangup"), &json!({})).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "missed", "{ended}");
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );

    // A call the rep declines.
    let id = ring(&stack, "+41445550109", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.command(&id, CallCommand::Decline).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "declined", "{ended}");
    let conversation = stack.sim.sim.genesys.conversation(&id).context("call")?;
    assert_eq!(conversation["participants"][1]["disconnectType"], "client");
    Ok(())
}

#[tokio::test]
async fn click_to_dial_places_the_call_through_the_conversations_api() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
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
    let calls = stack.sim.sim.genesys.calls();
    let placed = calls.iter().find(|c| c.call_id == id).context("placed")?;
    assert_eq!(placed.agent, ALICE);
    assert_eq!(placed.to, e164);

    sim_post(&stack, &format!("/calls/{id}/answer"), &json!({})).await?;
    state(&mut alice, &id, "connected").await?;
    alice.command(&id, CallCommand::Hangup).await?;
    state(&mut alice, &id, "ended").await?;
    stack.wait_activity(&id, "written", |_| true).await?;
    Ok(())
}

#[tokio::test]
async fn a_relay_restart_mid_call_loses_nothing_and_logs_once() -> Result<()> {
    let mut stack = genesys_stack().await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550103", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;
    stack.crash_relay();
    // The caller hangs up while no relay listens.
    sim_post(&stack, &format!("/calls/{id}/hangup"), &json!({})).await?;
    stack.start_relay_again().await?;
    // The new process reads the call back from the org and logs it, answered, once.
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    // And a call that rings after the restart still arrives.
    let next = ring(&stack, "+41445550104", ALICE).await?;
    state(&mut alice, &next, "ringing").await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// Every way the org's side of the connection breaks, mid-call: the call goes on, the next
/// change still reaches the rep, and the call is logged once.
#[tokio::test]
async fn a_lost_socket_or_channel_mid_call_loses_nothing() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    for (n, break_it) in [
        json!({"close_sockets": true}),
        json!({"socket_closing": true}),
        json!({"expire_channels": true}),
    ]
    .into_iter()
    .enumerate()
    {
        let id = ring(&stack, &format!("+4144555020{n}"), ALICE).await?;
        state(&mut alice, &id, "ringing").await?;
        alice.answer(&id).await?;
        let before = stack.sim.sim.genesys.channel_ids();
        fault(&stack, break_it.clone()).await?;
        eventually("the relay on a new channel", || async {
            let now = stack.sim.sim.genesys.channel_ids();
            let (_, sockets) = stack.sim.sim.genesys.channel_counts();
            (sockets > 0 && now.iter().any(|c| !before.contains(c))).then_some(())
        })
        .await
        .with_context(|| format!("after {break_it}"))?;
        sim_post(&stack, &format!("/calls/{id}/hangup"), &json!({})).await?;
        state(&mut alice, &id, "ended")
            .await
            .with_context(|| format!("after {break_it}"))?;
        stack.wait_activity(&id, "written", |_| true).await?;
    }
    Ok(())
}

#[tokio::test]
async fn duplicated_and_reordered_snapshots_give_one_clean_call() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
    fault(&stack, json!({"duplicate": true, "reorder": true})).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550105", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;
    sim_post(&stack, &format!("/calls/{id}/hangup"), &json!({})).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    stack.wait_activity(&id, "written", |_| true).await?;
    Ok(())
}

/// Hold and resume at once, their snapshots swapped in flight: the rep ends up connected, not
/// on the late hold.
#[tokio::test]
async fn swapped_hold_changes_end_on_the_org_s_state() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550112", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;
    fault(&stack, json!({"reorder": true})).await?;
    // Another client of the org (the rep's Genesys desktop) holds and resumes at once.
    let base = format!("{}/sim/genesys", stack.sim.url());
    let token: Value = stack
        .http
        .post(format!("{base}/login/oauth/token"))
        .basic_auth("cti-relay-genesys", Some("demo-genesys-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"].as_str().context("token")?;
    let conversation = stack.sim.sim.genesys.conversation(&id).context("call")?;
    let pid = conversation["participants"][1]["id"]
        .as_str()
        .context("pid")?;
    for held in [true, false] {
        let response = stack
            .http
            .patch(format!(
                "{base}/api/v2/conversations/calls/{id}/participants/{pid}"
            ))
            .bearer_auth(token)
            .json(&json!({"held": held}))
            .send()
            .await?;
        assert_eq!(response.status(), 202);
    }
    state(&mut alice, &id, "held").await?;
    state(&mut alice, &id, "connected").await?;
    Ok(())
}

#[tokio::test]
async fn a_short_lived_token_is_renewed_without_dropping_the_socket() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
    // Tokens now live 2 s; the relay's current one dies (and its channel with it).
    fault(&stack, json!({"token_ttl_secs": 2, "expire_tokens": true})).await?;
    let channel = eventually("a channel on a short-lived token", || async {
        let ids = stack.sim.sim.genesys.channel_ids();
        let (_, sockets) = stack.sim.sim.genesys.channel_counts();
        (sockets == 1 && ids.len() == 1).then(|| ids[0].clone())
    })
    .await?;
    let issued = stack.sim.sim.genesys.tokens_issued();
    eventually("three renewals", || async {
        (stack.sim.sim.genesys.tokens_issued() >= issued + 3).then_some(())
    })
    .await?;
    assert!(
        stack.sim.sim.genesys.channel_ids().contains(&channel),
        "the channel outlived its first token"
    );
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550106", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    assert!(stack.sim.sim.genesys.channel_ids().contains(&channel));
    Ok(())
}

async fn reconnects(stack: &Stack) -> Result<u64> {
    let ready = stack.readyz().await?;
    ready["tenants"]["demo"]["provider"]["reconnects"]
        .as_u64()
        .with_context(|| format!("no reconnect count in {ready}"))
}

/// `v2.system.socket_closing` and a channel near the end of its life are met by a new channel,
/// connected and subscribed before the old one goes: the connector never drops.
#[tokio::test]
async fn socket_closing_and_a_dying_channel_roll_over_without_a_reconnect() -> Result<()> {
    let stack = genesys_stack().await?;
    connected(&stack).await?;
    let before = reconnects(&stack).await?;
    let first = stack.sim.sim.genesys.channel_ids();
    // New channels live 5 s from now on: the next one must be replaced before it dies.
    fault(
        &stack,
        json!({"channel_ttl_secs": 5, "socket_closing": true}),
    )
    .await?;
    let second = eventually("a second channel", || async {
        let ids = stack.sim.sim.genesys.channel_ids();
        ids.iter().find(|c| !first.contains(c)).cloned()
    })
    .await?;
    let third = eventually("the second channel replaced before its end", || async {
        let ids = stack.sim.sim.genesys.channel_ids();
        ids.iter()
            .find(|c| !first.contains(c) && **c != second)
            .cloned()
    })
    .await?;
    assert_ne!(third, second);
    assert_eq!(reconnects(&stack).await?, before, "rolled, not reconnected");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550107", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    Ok(())
}

/// The simulated org's socket itself, as a client of the notification service sees it.
#[tokio::test]
async fn the_simulated_notification_socket_behaves_like_genesys() -> Result<()> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let sim = cti_sim::spawn(cti_sim::SimConfig {
        listen: "127.0.0.1:0".parse()?,
        genesys_heartbeat_ms: 50,
        ..cti_sim::SimConfig::default()
    })
    .await?;
    let http = reqwest::Client::new();
    let base = format!("{}/sim/genesys", sim.url());
    let token: Value = http
        .post(format!("{base}/login/oauth/token"))
        .basic_auth("cti-relay-genesys", Some("demo-genesys-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"].as_str().context("token")?.to_string();
    let channel: Value = http
        .post(format!("{base}/api/v2/notifications/channels"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let uri = channel["connectUri"].as_str().context("connectUri")?;
    let (mut ws, _) = tokio_tungstenite::connect_async(uri).await?;
    async fn next_json(
        ws: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text)?;
                    if pred(&value) {
                        return Ok(value);
                    }
                }
                Some(Ok(_)) => {}
                other => bail!("the socket ended: {other:?}"),
            }
        }
    }
    let beat = next_json(&mut ws, |v| v["topicName"] == "channel.metadata").await?;
    assert_eq!(beat["eventBody"]["message"], "WebSocket Heartbeat");
    ws.send(Message::Text(json!({"message": "ping"}).to_string().into()))
        .await?;
    next_json(&mut ws, |v| v["eventBody"]["message"] == "pong").await?;

    // Subscribing over the socket, then a call for that user arrives as a full snapshot.
    let alice = sim.sim.genesys.user_id(ALICE).context("alice")?;
    let topic = format!("v2.users.{alice}.conversations.calls");
    ws.send(Message::Text(
        json!({"message": "subscribe", "topics": [topic], "correlationId": "abcdefghijklmnop"})
            .to_string()
            .into(),
    ))
    .await?;
    let reply = next_json(&mut ws, |v| v.get("result").is_some()).await?;
    assert_eq!(reply["result"], "200");
    assert_eq!(reply["status"], "subscribed");
    ws.send(Message::Text(
        json!({"message": "subscribe", "topics": ["v2.users.nobody.conversations.calls"]})
            .to_string()
            .into(),
    ))
    .await?;
    let refused = next_json(&mut ws, |v| v.get("result").is_some()).await?;
    assert_eq!(refused["result"], "400");
    let call: Value = http
        .post(format!("{base}/calls"))
        .json(&json!({"from": "+41445550108", "agent": ALICE}))
        .send()
        .await?
        .json()
        .await?;
    let event = next_json(&mut ws, |v| v["topicName"] == topic.as_str()).await?;
    assert_eq!(event["eventBody"]["id"], call["call_id"]);
    assert_eq!(event["version"], "2");
    let agent = &event["eventBody"]["participants"][1];
    assert_eq!(agent["state"], "alerting");
    assert_eq!(agent["ani"], "tel:+41445550108");
    assert_eq!(agent["user"]["id"], alice.as_str());

    // A second connection to the channel replaces the first.
    let (mut second, _) = tokio_tungstenite::connect_async(uri).await?;
    let ended = next_json(&mut ws, |_| false).await;
    assert!(ended.is_err(), "the first socket is closed");
    next_json(&mut second, |v| v["topicName"] == "channel.metadata").await?;

    // An unknown channel has no socket.
    let unknown = tokio_tungstenite::connect_async(format!(
        "ws://{}/sim/genesys/channels/streaming-0-nope",
        sim.addr
    ))
    .await;
    assert!(unknown.is_err());
    Ok(())
}
