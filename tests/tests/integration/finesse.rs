//! Cisco Finesse over its real protocols: the relay logs in to a real XMPP server (Prosody,
//! started per test) as Finesse's notification service's client, receives the Dialog updates
//! the simulated Finesse publishes into its pubsub service, and sends the rep's controls through
//! the simulated Finesse REST API.

use anyhow::{Context, Result, bail};
use cti_protocol::ws::CallCommand;
use cti_relay::adapters::TelephonySettings;
use cti_relay::adapters::finesse::xmpp::{Account, Session};
use cti_relay::secret::Secret;
use cti_sim::SimConfig;
use cti_tests::prosody::Prosody;
use cti_tests::{Provider, Stack, WsClient, eventually};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

fn account(prosody: &Prosody, user: &str, password: &str) -> Account {
    Account {
        host: "127.0.0.1".into(),
        port: prosody.port,
        domain: prosody.domain.clone(),
        user: user.into(),
        password: Secret::new(password),
        resource: "cti-relay".into(),
        tls: false,
        ca_pem: None,
    }
}

/// Priority one of the design: the relay's XMPP client logs in to a real Prosody, subscribes to
/// a Dialogs node, receives what another client publishes there with the `<Update>` XML-escaped
/// inside `<notification>`, and answers the server's (here: another client's) XEP-0199 pings.
#[tokio::test]
async fn the_xmpp_client_logs_in_subscribes_and_receives_published_items() -> Result<()> {
    let sim = SimConfig::default();
    let prosody = Prosody::for_finesse(&sim).await?;
    let pubsub = format!("pubsub.{}", prosody.domain);
    let node = "/finesse/api/User/1001/Dialogs";

    let mut agent = Session::connect(&account(&prosody, "1001", "demo-finesse-1001")).await?;
    assert_eq!(agent.jid, format!("1001@{}/cti-relay", prosody.domain));
    agent.subscribe(&pubsub, node).await?;

    let mut notifier = Session::connect(&account(
        &prosody,
        cti_sim::finesse::NOTIFIER,
        &sim.finesse_notifier_password,
    ))
    .await?;
    let update = "<Update><data><dialogs><Dialog><id>1</id></Dialog></dialogs></data><event>POST</event><source>/finesse/api/User/1001/Dialogs</source></Update>";
    notifier
        .request(
            "set",
            Some(&pubsub),
            &format!(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item><notification xmlns='http://jabber.org/protocol/pubsub'>{}</notification></item></publish></pubsub>",
                update.replace('<', "&lt;").replace('>', "&gt;")
            ),
        )
        .await?;
    // Other stanzas (the agent's own presence, echoed by the server) may come first.
    let message = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let stanza = agent.next().await?;
            if stanza.name == "message" {
                return anyhow::Ok(stanza);
            }
        }
    })
    .await
    .context("the published item in time")??;
    let items = message.path(&["event", "items"]).context("pubsub items")?;
    assert_eq!(items.attr("node"), Some(node));
    let payload = items
        .path(&["item", "notification"])
        .context("a notification")?;
    assert_eq!(payload.text, update);

    // A ping to the agent's full JID comes back answered while the agent's session reads on.
    let full = agent.jid.clone();
    let reader = tokio::spawn(async move {
        let _ = agent.next().await;
    });
    let pong = notifier
        .request("get", Some(&full), "<ping xmlns='urn:xmpp:ping'/>")
        .await?;
    assert_eq!(pong.attr("type"), Some("result"));
    reader.abort();

    // Settings that require TLS refuse a server that offers no STARTTLS (this one has none).
    let mut secure = account(&prosody, "1002", "demo-finesse-1002");
    secure.tls = true;
    let refused = Session::connect(&secure).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("STARTTLS")),
        "{refused:?}"
    );

    // A wrong password is refused as such.
    let refused = Session::connect(&account(&prosody, "1002", "wrong")).await;
    assert!(
        matches!(
            refused,
            Err(cti_relay::adapters::finesse::xmpp::XmppError::AuthFailed { .. })
        ),
        "{refused:?}"
    );
    Ok(())
}

/// STARTTLS as an on-premises Finesse asks for it: the relay secures the stream, checks the
/// server's certificate against the tenant's CA, and refuses a certificate it cannot trust.
#[tokio::test]
async fn the_xmpp_client_secures_the_stream_with_starttls() -> Result<()> {
    let prosody = Prosody::start_with_tls("finesse.localhost", &[]).await?;
    prosody.register("1001", "demo-finesse-1001")?;
    let mut secure = account(&prosody, "1001", "demo-finesse-1001");
    secure.host = "localhost".into();
    secure.tls = true;
    let untrusted = Session::connect(&secure).await;
    assert!(
        untrusted.is_err(),
        "a certificate of an unknown CA is refused"
    );
    secure.ca_pem = Some(prosody.ca_pem()?);
    let session = Session::connect(&secure).await?;
    assert_eq!(session.jid, "1001@finesse.localhost/cti-relay");
    // And a server that requires TLS refuses a client that will not secure the stream.
    let mut plain = secure.clone();
    plain.tls = false;
    assert!(Session::connect(&plain).await.is_err());
    Ok(())
}

/// The stack on a Finesse simulator publishing into the stack's own Prosody, its connector up.
async fn start() -> Result<Stack> {
    let stack = Stack::start_through(Provider::Finesse, |_| {}).await?;
    connected(&stack).await?;
    Ok(stack)
}

fn prosody(stack: &mut Stack) -> Result<&mut Prosody> {
    stack
        .prosody
        .as_mut()
        .context("a Finesse stack has its Prosody")
}

/// Waits until the relay's connector is up (logged in and subscribed).
async fn connected(stack: &Stack) -> Result<()> {
    eventually("the relay's Finesse connector up", || async {
        let ready = stack.readyz().await.ok()?;
        ready
            .to_string()
            .contains("\"connected\":true")
            .then_some(())
    })
    .await
}

async fn ring(stack: &Stack, from: &str, agent: &str) -> Result<String> {
    stack.ring_through(Provider::Finesse, from, agent).await
}

async fn sim_post(stack: &Stack, path: &str) -> Result<()> {
    let response = stack
        .http
        .post(format!("{}/sim/finesse{path}", stack.sim.url()))
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

#[tokio::test]
async fn a_call_rings_pops_is_held_blind_transferred_and_logged_once() -> Result<()> {
    let stack = start().await?;
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
    assert!(stack.sim.sim.finesse.dialog_ids().is_empty());

    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    let agents = cti_tests::agents_on(&activity);
    assert!(agents.iter().any(|a| a == ALICE), "{agents:?}");
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// A blind transfer made on the Finesse desktop (its REST request, not the relay's): the rep's
/// leg ends as transferred to the colleague, not as a completed call, and the call is logged
/// once.
#[tokio::test]
async fn a_transfer_made_on_the_finesse_desktop_is_a_transfer() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let id = ring(&stack, "+41445550111", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;

    // Alice's desktop: TRANSFER_SST to Bob's extension, as agent 1001.
    let desktop = stack
        .http
        .put(format!(
            "{}/sim/finesse/finesse/api/Dialog/{id}",
            stack.sim.url()
        ))
        .basic_auth("1001", Some("demo-finesse-1001"))
        .header("content-type", "application/xml")
        .body("<Dialog><requestedAction>TRANSFER_SST</requestedAction><targetMediaAddress>7001</targetMediaAddress><toAddress>7002</toAddress></Dialog>")
        .send()
        .await?;
    assert_eq!(desktop.status(), 202, "{}", desktop.text().await?);
    let transferred = state(&mut alice, &id, "transferred").await?;
    assert!(transferred.to_string().contains(BOB), "{transferred}");
    state(&mut bob, &id, "ringing").await?;
    bob.answer(&id).await?;
    bob.command(&id, CallCommand::Hangup).await?;
    state(&mut bob, &id, "ended").await?;
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// A request of the Finesse desktop (Alice's, agent 1001): the REST request the relay would
/// send, sent straight to the simulated Finesse.
async fn desktop(stack: &Stack, dialog: &str, body: &str) -> Result<()> {
    let response = stack
        .http
        .put(format!(
            "{}/sim/finesse/finesse/api/Dialog/{dialog}",
            stack.sim.url()
        ))
        .basic_auth("1001", Some("demo-finesse-1001"))
        .header("content-type", "application/xml")
        .body(body.to_string())
        .send()
        .await?;
    if response.status() != 202 {
        bail!("{body}: {}", response.text().await?);
    }
    Ok(())
}

/// A consult transfer made on the Finesse desktop (CONSULT_CALL, then TRANSFER, its REST
/// requests, not the relay's): Finesse keeps the first dialog, now with the colleague and the
/// caller, and deletes the consult one. Alice's leg ends transferred to Bob, Bob's goes on with
/// the caller (also when the transfer is completed while his phone still rings), and each call
/// is one activity naming both reps.
#[tokio::test]
async fn a_consult_transfer_made_on_the_finesse_desktop_is_a_transfer() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let consult = "<Dialog><requestedAction>CONSULT_CALL</requestedAction><targetMediaAddress>7001</targetMediaAddress><toAddress>7002</toAddress></Dialog>";
    let transfer = "<Dialog><requestedAction>TRANSFER</requestedAction><targetMediaAddress>7001</targetMediaAddress></Dialog>";

    // Bob answers the consult, then Alice completes the transfer.
    let id = ring(&stack, "+41445550112", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;
    desktop(&stack, &id, consult).await?;
    state(&mut alice, &id, "held").await?;
    state(&mut bob, &id, "ringing").await?;
    bob.answer(&id).await?;
    desktop(&stack, &id, transfer).await?;
    let transferred = state(&mut alice, &id, "transferred").await?;
    assert!(transferred.to_string().contains(BOB), "{transferred}");
    assert_eq!(
        stack.sim.sim.finesse.dialog_ids(),
        std::slice::from_ref(&id),
        "the first dialog carries the call on"
    );
    sim_post(&stack, &format!("/calls/{id}/hangup")).await?;
    let ended = state(&mut bob, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    let activity = stack
        .wait_activity(&id, "written", |a| cti_tests::agents_on(a).len() == 2)
        .await?;
    let agents = cti_tests::agents_on(&activity);
    assert!(agents.iter().any(|a| a == ALICE), "{agents:?}");
    assert!(agents.iter().any(|a| a == BOB), "{agents:?}");
    assert_eq!(stack.activities(&id).await?.len(), 1);

    // Completed while Bob's phone still rings: he picks up on the first dialog.
    let id = ring(&stack, "+41445550113", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;
    desktop(&stack, &id, consult).await?;
    state(&mut bob, &id, "ringing").await?;
    desktop(&stack, &id, transfer).await?;
    let transferred = state(&mut alice, &id, "transferred").await?;
    assert!(transferred.to_string().contains(BOB), "{transferred}");
    sim_post(&stack, &format!("/calls/{id}/answer")).await?;
    let next = bob
        .recv_call(&id, "bob picks up, his leg not ended", |c| {
            c["state"] == "connected" || c["state"] == "ended"
        })
        .await?;
    assert_eq!(next["call"]["state"], "connected", "{next}");
    sim_post(&stack, &format!("/calls/{id}/hangup")).await?;
    let ended = state(&mut bob, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    let activity = stack
        .wait_activity(&id, "written", |a| cti_tests::agents_on(a).len() == 2)
        .await?;
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// Rings `agent` from `from` and has them answer in the widget: the call's id.
async fn answered(stack: &Stack, ws: &mut WsClient, from: &str, agent: &str) -> Result<String> {
    let id = ring(stack, from, agent).await?;
    state(ws, &id, "ringing").await?;
    ws.answer(&id).await?;
    Ok(id)
}

/// The rep's leg handed to a number outside the contact centre: transferred, with the reason
/// that says no colleague's leg follows, and that hand-over ends the call, logged once as a
/// completed call of the rep.
async fn handed_outside(stack: &Stack, ws: &mut WsClient, id: &str) -> Result<()> {
    let transferred = state(ws, id, "transferred").await?;
    assert_eq!(
        transferred["call"]["end_reason"], "completed",
        "{transferred}"
    );
    let activity = stack.wait_activity(id, "written", |_| true).await?;
    assert_eq!(cti_tests::agents_on(&activity), [ALICE], "{activity}");
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    assert_eq!(stack.activities(id).await?.len(), 1);
    Ok(())
}

/// A blind transfer made on the Finesse desktop to a number outside the contact centre: the
/// rep's leg ends transferred (the agent's participant held, then dropped, as Finesse does), and
/// since no colleague's leg follows, that ends the call: one activity.
#[tokio::test]
async fn a_blind_transfer_to_a_number_made_on_the_finesse_desktop_is_a_transfer() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = answered(&stack, &mut alice, "+41445550114", ALICE).await?;
    desktop(&stack, &id, "<Dialog><requestedAction>TRANSFER_SST</requestedAction><targetMediaAddress>7001</targetMediaAddress><toAddress>+41445550199</toAddress></Dialog>").await?;
    handed_outside(&stack, &mut alice, &id).await?;
    // Finesse keeps no dialog for an agent who is no longer on it.
    assert!(stack.sim.sim.finesse.dialog_ids().is_empty());
    Ok(())
}

/// Transfers to a number through the relay, blind and after consulting it: each ends the call
/// with one activity.
#[tokio::test]
async fn transfers_to_a_number_through_the_relay_are_logged_once() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let outside = "+41445550198";

    let id = answered(&stack, &mut alice, "+41445550115", ALICE).await?;
    alice
        .command(
            &id,
            CallCommand::Transfer {
                target: outside.into(),
            },
        )
        .await?;
    handed_outside(&stack, &mut alice, &id).await?;

    let id = answered(&stack, &mut alice, "+41445550116", ALICE).await?;
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
    // The first dialog lives on while the caller and the number talk, with no agent on it, so
    // nobody is told of it; the caller hanging up ends it, and the call is still logged once.
    assert_eq!(
        stack.sim.sim.finesse.dialog_ids(),
        std::slice::from_ref(&id)
    );
    sim_post(&stack, &format!("/calls/{id}/hangup")).await?;
    assert!(stack.sim.sim.finesse.dialog_ids().is_empty());
    let activities = stack.activities(&id).await?;
    assert_eq!(activities.len(), 1);
    assert!(
        !cti_tests::summary_of(&activities[0]).contains("Outcome: missed"),
        "{activities:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_consult_transfer_holds_rings_the_colleague_and_hands_over() -> Result<()> {
    let stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let id = ring(&stack, "+41445550101", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;

    // A cancelled consult: the colleague drops off, the caller is back with the rep.
    alice
        .command(&id, CallCommand::Consult { target: BOB.into() })
        .await?;
    state(&mut alice, &id, "held").await?;
    state(&mut bob, &id, "ringing").await?;
    assert_eq!(
        stack.sim.sim.finesse.dialog_ids().len(),
        2,
        "a consult dialog"
    );
    bob.answer(&id).await?;
    alice.command(&id, CallCommand::CancelConsult).await?;
    state(&mut bob, &id, "ended").await?;
    state(&mut alice, &id, "connected").await?;
    assert_eq!(
        stack.sim.sim.finesse.dialog_ids(),
        std::slice::from_ref(&id)
    );

    // Consulted again (the colleague's leg rings as a new round), and this time handed over.
    alice
        .command(&id, CallCommand::Consult { target: BOB.into() })
        .await?;
    state(&mut alice, &id, "held").await?;
    state(&mut bob, &id, "ringing").await?;
    bob.answer(&id).await?;
    alice.command(&id, CallCommand::CompleteTransfer).await?;
    let transferred = state(&mut alice, &id, "transferred").await?;
    assert!(transferred.to_string().contains(BOB), "{transferred}");
    // The caller hangs up on the colleague: the first dialog carries the call on.
    assert_eq!(
        stack.sim.sim.finesse.dialog_ids(),
        std::slice::from_ref(&id)
    );
    sim_post(&stack, &format!("/calls/{id}/hangup")).await?;
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
    sim_post(&stack, &format!("/calls/{id}/hangup")).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "missed", "{ended}");
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );

    // A call the rep declines: DROP while it rings.
    let id = ring(&stack, "+41445550109", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.command(&id, CallCommand::Decline).await?;
    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "declined", "{ended}");
    assert!(stack.sim.sim.finesse.dialog_ids().is_empty());
    Ok(())
}

#[tokio::test]
async fn click_to_dial_is_a_make_call_request() -> Result<()> {
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
    assert_eq!(
        stack.sim.sim.finesse.dialog_ids(),
        std::slice::from_ref(&id)
    );

    sim_post(&stack, &format!("/calls/{id}/answer")).await?;
    state(&mut alice, &id, "connected").await?;
    alice.command(&id, CallCommand::Hangup).await?;
    state(&mut alice, &id, "ended").await?;
    stack.wait_activity(&id, "written", |_| true).await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// The XMPP server goes away mid-call (the relay's stream cut, and what Finesse publishes
/// meanwhile lost, as it is for a subscriber who is not there): the relay logs in again,
/// subscribes again, reads the agents' dialogs back, and the call ends once, answered.
#[tokio::test]
async fn a_cut_xmpp_connection_mid_call_is_caught_up_without_loss_or_double() -> Result<()> {
    let mut stack = start().await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550103", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;

    prosody(&mut stack)?.stop();
    eventually("the relay to notice the lost stream", || async {
        let ready = stack.readyz().await.ok()?;
        (!ready.to_string().contains("\"connected\":true")).then_some(())
    })
    .await?;
    let published = stack.sim.sim.finesse.published();
    sim_post(&stack, &format!("/calls/{id}/hangup")).await?;
    assert!(stack.sim.sim.finesse.published() > published);
    prosody(&mut stack)?.restart().await?;
    connected(&stack).await?;

    let ended = state(&mut alice, &id, "ended").await?;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    let activity = stack.wait_activity(&id, "written", |_| true).await?;
    assert!(
        !cti_tests::summary_of(&activity).contains("Outcome: missed"),
        "{activity}"
    );
    // Notifications flow again on the new stream.
    let next = ring(&stack, "+41445550104", ALICE).await?;
    state(&mut alice, &next, "ringing").await?;
    assert_eq!(stack.activities(&id).await?.len(), 1);
    Ok(())
}

/// One supervisor account for every agent: one XMPP stream subscribed to each agent's node,
/// controls sent with the supervisor's credentials.
#[tokio::test]
async fn a_supervisor_account_serves_every_agent() -> Result<()> {
    let stack = Stack::start_through(Provider::Finesse, |config| {
        if let TelephonySettings::Finesse(settings) = &mut config.tenants[0].telephony {
            settings.finesse_login = cti_relay::adapters::finesse::Login::Supervisor;
            for agent in settings.finesse_agents.values_mut() {
                agent.password = None;
            }
        }
    })
    .await?;
    connected(&stack).await?;
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await?;
    let id = ring(&stack, "+41445550105", BOB).await?;
    state(&mut bob, &id, "ringing").await?;
    bob.answer(&id).await?;
    bob.command(&id, CallCommand::Hangup).await?;
    state(&mut bob, &id, "ended").await?;
    stack.wait_activity(&id, "written", |_| true).await?;
    Ok(())
}

/// A Finesse in single sign-on mode: the relay's REST calls carry the agents' SSO access
/// tokens as bearer tokens and its XMPP logins the same tokens in SASL PLAIN's password; the
/// simulated Finesse refuses Basic credentials there (and bearer tokens where it runs Basic).
#[tokio::test]
async fn an_sso_finesse_takes_bearer_tokens_and_refuses_basic() -> Result<()> {
    let stack = Stack::start_through_with(
        Provider::Finesse,
        |sim| sim.finesse_sso = true,
        |config| {
            if let TelephonySettings::Finesse(settings) = &mut config.tenants[0].telephony {
                settings.finesse_auth = cti_relay::adapters::finesse::Auth::Sso;
                // Nothing to fall back on: the passwords are gone.
                for agent in settings.finesse_agents.values_mut() {
                    agent.password = None;
                }
            }
        },
    )
    .await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550110", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;
    alice.command(&id, CallCommand::Hold).await?;
    state(&mut alice, &id, "held").await?;
    alice.command(&id, CallCommand::Resume).await?;
    state(&mut alice, &id, "connected").await?;
    alice.command(&id, CallCommand::Hangup).await?;
    state(&mut alice, &id, "ended").await?;
    stack.wait_activity(&id, "written", |_| true).await?;

    let api = format!("{}/sim/finesse/finesse/api", stack.sim.url());
    let basic = stack
        .http
        .get(format!("{api}/User/1001"))
        .basic_auth("1001", Some("demo-finesse-1001"))
        .send()
        .await?;
    assert_eq!(basic.status(), 401);
    assert!(basic.text().await?.contains("SSO"));
    let bearer = stack
        .http
        .get(format!("{api}/User/1001"))
        .bearer_auth(cti_sim::finesse::token_of("1001"))
        .send()
        .await?;
    assert_eq!(bearer.status(), 200);
    let forged = stack
        .http
        .get(format!("{api}/User/1001"))
        .bearer_auth("eyJ-not-issued")
        .send()
        .await?;
    assert_eq!(forged.status(), 401);
    // The notification service takes the token, not the password.
    let prosody = stack.prosody.as_ref().context("its Prosody")?;
    let token = cti_sim::finesse::token_of("1002");
    Session::connect(&account(prosody, "1002", &token)).await?;
    assert!(
        Session::connect(&account(prosody, "1002", "demo-finesse-1002"))
            .await
            .is_err()
    );

    // And a Finesse on Basic refuses bearer tokens.
    let basic_stack = start().await?;
    let refused = basic_stack
        .http
        .get(format!(
            "{}/sim/finesse/finesse/api/User/1001",
            basic_stack.sim.url()
        ))
        .bearer_auth(cti_sim::finesse::token_of("1001"))
        .send()
        .await?;
    assert_eq!(refused.status(), 401);
    Ok(())
}

#[tokio::test]
async fn the_simulated_finesse_refuses_what_finesse_refuses() -> Result<()> {
    let stack = start().await?;
    let api = format!("{}/sim/finesse/finesse/api", stack.sim.url());
    let unauthenticated = stack
        .http
        .get(format!("{api}/User/1001/Dialogs"))
        .send()
        .await?;
    assert_eq!(unauthenticated.status(), 401);
    assert!(unauthenticated.text().await?.contains("<ApiErrors>"));
    let other = stack
        .http
        .get(format!("{api}/User/1002/Dialogs"))
        .basic_auth("1001", Some("demo-finesse-1001"))
        .send()
        .await?;
    assert_eq!(other.status(), 403);
    let id = ring(&stack, "+41445550106", ALICE).await?;
    // RETRIEVE on a ringing call: Invalid State.
    let refused = stack
        .http
        .put(format!("{api}/Dialog/{id}"))
        .basic_auth("1001", Some("demo-finesse-1001"))
        .header("content-type", "application/xml")
        .body("<Dialog><requestedAction>RETRIEVE</requestedAction><targetMediaAddress>7001</targetMediaAddress></Dialog>")
        .send()
        .await?;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await?.contains("Invalid State"));
    Ok(())
}

#[tokio::test]
async fn a_call_rings_pops_and_is_answered_in_chromium_through_finesse() -> Result<()> {
    crate::browser_flow::ring_pop_answer_hang_up(Provider::Finesse).await
}

/// The relay process dies mid-call and the caller hangs up meanwhile: the new process logs in,
/// reads the agents' dialogs back, ends the call its store (Redis) still holds as live, and logs
/// it once. Finesse keeps no ended dialogs, so a relay whose calls live only in its memory
/// cannot learn of such a call after a restart: Redis is what carries it.
#[tokio::test]
async fn a_relay_restart_mid_call_loses_nothing_and_logs_once() -> Result<()> {
    let redis = cti_tests::redis::RedisServer::start().await?;
    let url = redis.url();
    let mut stack = Stack::start_through(Provider::Finesse, |config| {
        config.redis_url = Some(Secret::new(url));
    })
    .await?;
    connected(&stack).await?;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None).await?;
    let id = ring(&stack, "+41445550107", ALICE).await?;
    state(&mut alice, &id, "ringing").await?;
    alice.answer(&id).await?;
    stack.crash_relay();
    sim_post(&stack, &format!("/calls/{id}/hangup")).await?;
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
