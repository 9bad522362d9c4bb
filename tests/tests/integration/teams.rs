//! Microsoft Teams end to end over its own protocol: the relay subscribes to call records at the
//! simulated Graph (validation handshake), the calling bot's comms notifications arrive signed by
//! the simulated Bot Framework, the rep's controls go out through Graph, and a subscription lost
//! mid-call loses nothing and repeats nothing.

use std::sync::atomic::Ordering;

use cti_protocol::ws::CallCommand;
use cti_tests::{Provider, Stack, WsClient, agents_on, eventually, summary_line};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

fn quick(c: &mut cti_relay::Config) {
    c.activity_retry_base = std::time::Duration::from_millis(20);
    c.activity_retry_max = std::time::Duration::from_millis(300);
    c.miss_budget = std::time::Duration::from_secs(5);
    if let cti_relay::adapters::TelephonySettings::Teams(settings) = &mut c.tenants[0].telephony {
        settings.teams_watch_secs = Some(1);
    }
}

/// The stack with the demo tenant on Teams, its callRecords subscription live.
async fn start() -> Stack {
    let stack = Stack::start_through(Provider::Teams, quick)
        .await
        .expect("stack");
    subscribed(&stack, 1).await;
    stack
}

/// Until Graph has made `created` subscriptions and one is live.
async fn subscribed(stack: &Stack, created: u64) {
    let teams = &stack.sim.sim.teams;
    eventually("the relay's subscription", || async {
        let made = teams.created_subscriptions.load(Ordering::Relaxed);
        (made >= created && !teams.subscriptions().is_empty()).then_some(())
    })
    .await
    .expect("subscribed");
}

/// Rings `agent` from `from` (under the policy unless `policy` is false); the call's chain id.
async fn ring_with(stack: &Stack, from: &str, agent: &str, policy: bool) -> String {
    let response = stack
        .http
        .post(format!("{}/sim/teams/calls", stack.sim.url()))
        .json(&json!({"from": from, "agent": agent, "policy": policy}))
        .send()
        .await
        .expect("sim");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    body["call_id"].as_str().expect("call_id").to_string()
}

async fn ring(stack: &Stack, from: &str, agent: &str) -> String {
    ring_with(stack, from, agent, true).await
}

async fn sim_post(stack: &Stack, path: &str, body: &Value) -> (u16, Value) {
    let response = stack
        .http
        .post(format!("{}/sim/teams{path}", stack.sim.url()))
        .json(body)
        .send()
        .await
        .expect("sim");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The rep picks up `call` in the Teams client (Graph answers no user's call for them) and
/// the widget shows it connected: the rep's own answer, not the bot's.
async fn pick_up(stack: &Stack, ws: &mut WsClient, call: &str) -> Value {
    pick_up_leg(stack, ws, call, call).await
}

/// [`pick_up`] of the Graph leg (or chain) `leg` shown as the relay's `call`.
async fn pick_up_leg(stack: &Stack, ws: &mut WsClient, call: &str, leg: &str) -> Value {
    let (status, body) = sim_post(stack, &format!("/calls/{leg}/answer"), &json!({})).await;
    assert_eq!(status, 204, "{body}");
    call_where(ws, call, "the rep answered", |c| c["state"] == "connected").await
}

/// The Graph leg of a consultation ringing at its colleague.
fn consultation_leg(stack: &Stack) -> String {
    stack
        .sim
        .sim
        .teams
        .calls()
        .into_iter()
        .find(|c| c.consult && c.state == "incoming")
        .expect("a consultation rings")
        .id
}

async fn call_where(
    ws: &mut WsClient,
    call: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    ws.recv_call(call, what, check).await.expect(what)
}

/// Exactly one activity for the call, and still one once Graph wrote the call's record.
async fn one_activity(stack: &Stack, call: &str) -> Value {
    let activity = stack
        .wait_activity(call, "written", |_| true)
        .await
        .expect("an activity");
    let teams = &stack.sim.sim.teams;
    eventually("the call record", || async { teams.record(call) })
        .await
        .expect("record");
    assert_eq!(stack.activities(call).await.expect("v2").len(), 1);
    activity
}

#[tokio::test]
async fn a_call_rings_pops_is_answered_transferred_blind_and_logged_once() {
    let stack = start().await;
    let (_, e164, name) = stack.single_match_caller().expect("caller");
    let (mut alice, welcome) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    // The widget is told Teams has no hold, so it shows no hold button.
    assert_eq!(
        welcome["controls"],
        serde_json::json!(["decline", "hangup", "transfer", "consult", "dial"]),
        "{welcome}"
    );
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let call = ring(&stack, &e164, ALICE).await;
    let rung = call_where(&mut alice, &call, "alice's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await;
    assert_eq!(rung["call"]["pop"]["name"], name.as_str(), "{rung}");
    assert_eq!(rung["call"]["from"], e164.as_str());
    pick_up(&stack, &mut alice, &call).await;
    // Graph v1.0 has no hold: refused, and the call stays connected.
    alice.command(&call, CallCommand::Hold).await.expect("hold");
    let refused = alice
        .recv_until("hold refused", |m| m["type"] == "error")
        .await
        .expect("error");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("hold"),
        "{refused}"
    );
    alice
        .command(&call, CallCommand::Transfer { target: BOB.into() })
        .await
        .expect("transfer");
    call_where(&mut alice, &call, "alice handed it on", |c| {
        c["state"] == "transferred"
    })
    .await;
    call_where(&mut bob, &call, "bob's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await;
    pick_up(&stack, &mut bob, &call).await;
    assert!(stack.activities(&call).await.expect("v2").is_empty());
    bob.command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut bob, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

#[tokio::test]
async fn a_consult_transfer_hands_the_caller_to_the_colleague() {
    let stack = start().await;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let call = ring(&stack, &e164, ALICE).await;
    pick_up(&stack, &mut alice, &call).await;
    alice
        .command(&call, CallCommand::Consult { target: BOB.into() })
        .await
        .expect("consult");
    call_where(&mut bob, &call, "bob is consulted", |c| {
        c["state"] == "ringing"
    })
    .await;
    let leg = consultation_leg(&stack);
    pick_up_leg(&stack, &mut bob, &call, &leg).await;
    alice
        .command(&call, CallCommand::CompleteTransfer)
        .await
        .expect("complete");
    call_where(&mut alice, &call, "alice handed over", |c| {
        c["state"] == "transferred"
    })
    .await;
    // The caller is now on bob's call (Graph moved the consultation into the call's chain).
    let teams = &stack.sim.sim.teams;
    let bobs = teams
        .calls()
        .into_iter()
        .find(|c| c.chain == call && c.state == "established")
        .expect("bob's leg carries the call");
    assert_eq!(bobs.other["phone"]["id"], e164.as_str());
    bob.command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    let activity = one_activity(&stack, &call).await;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);

    // Consult, then back: the consultation is hung up, alice goes on with the caller.
    let call = ring(&stack, &e164, ALICE).await;
    pick_up(&stack, &mut alice, &call).await;
    alice
        .command(&call, CallCommand::Consult { target: BOB.into() })
        .await
        .expect("consult");
    call_where(&mut bob, &call, "bob is consulted", |c| {
        c["state"] == "ringing"
    })
    .await;
    let leg = consultation_leg(&stack);
    pick_up_leg(&stack, &mut bob, &call, &leg).await;
    alice
        .command(&call, CallCommand::CancelConsult)
        .await
        .expect("cancel");
    call_where(&mut bob, &call, "bob dropped off", |c| {
        c["state"] == "ended"
    })
    .await;
    // The consultation's own call (its own chain at Graph) gets a record of its own.
    let consultation = teams
        .calls()
        .into_iter()
        .find(|c| c.chain != call && c.consult)
        .expect("the consultation's leg")
        .chain;
    let caller_leg = teams
        .calls()
        .into_iter()
        .find(|c| c.chain == call)
        .expect("alice's leg");
    assert_eq!(
        caller_leg.state, "established",
        "alice still has the caller"
    );
    alice
        .command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    // Its record was delivered before the call's own (it ended first) and is not a call of
    // its own: nothing logged under it.
    assert!(teams.record(&consultation).is_some());
    assert!(
        stack
            .activities(&consultation)
            .await
            .expect("v2")
            .is_empty()
    );
}

#[tokio::test]
async fn a_ringing_call_is_redirected_or_declined() {
    let stack = start().await;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    // Transferred before it is answered: Graph redirects it to bob.
    let call = ring(&stack, &e164, ALICE).await;
    call_where(&mut alice, &call, "ringing", |c| c["state"] == "ringing").await;
    alice
        .command(&call, CallCommand::Transfer { target: BOB.into() })
        .await
        .expect("transfer");
    call_where(&mut alice, &call, "redirected", |c| {
        c["state"] == "transferred"
    })
    .await;
    call_where(&mut bob, &call, "bob's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await;
    // Bob declines: Graph rejects his leg.
    bob.command(&call, CallCommand::Decline)
        .await
        .expect("decline");
    let ended = call_where(&mut bob, &call, "declined", |c| c["state"] == "ended").await;
    assert_eq!(ended["call"]["end_reason"], "declined", "{ended}");
    let activity = one_activity(&stack, &call).await;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
}

#[tokio::test]
async fn a_caller_who_gives_up_while_it_rings_is_a_missed_call() {
    let stack = start().await;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &e164, ALICE).await;
    call_where(&mut alice, &call, "ringing", |c| c["state"] == "ringing").await;
    let (status, _) = sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    let ended = call_where(&mut alice, &call, "missed", |c| c["state"] == "ended").await;
    assert_eq!(ended["call"]["end_reason"], "missed", "{ended}");
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("missed"));
}

#[tokio::test]
async fn dialling_places_a_call_through_graph() {
    let stack = start().await;
    let (number, e164, name) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    alice
        .send_json(&json!({"type": "dial", "number": number}))
        .await
        .expect("dial");
    let call = alice
        .recv_until("the outbound call", |m| {
            m["type"] == "call" && m["call"]["direction"] == "outbound"
        })
        .await
        .expect("call");
    assert_eq!(call["call"]["state"], "ringing");
    assert_eq!(call["call"]["to"], e164.as_str());
    assert_eq!(call["call"]["pop"]["name"], name.as_str());
    let id = call["call"]["id"].as_str().expect("id").to_string();
    let (status, _) = sim_post(&stack, &format!("/calls/{id}/answer"), &json!({})).await;
    assert_eq!(status, 204);
    call_where(&mut alice, &id, "answered", |c| c["state"] == "connected").await;
    alice
        .command(&id, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut alice, &id, "ended", |c| c["state"] == "ended").await;
    one_activity(&stack, &id).await;
}

#[tokio::test]
async fn the_subscription_removed_mid_call_is_made_again_and_nothing_is_lost_or_doubled() {
    let stack = start().await;
    let teams = &stack.sim.sim.teams;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &e164, ALICE).await;
    pick_up(&stack, &mut alice, &call).await;
    let (status, answer) =
        sim_post(&stack, "/faults", &json!({"remove_subscriptions": true})).await;
    assert_eq!((status, answer["removed"].as_u64()), (200, Some(1)));
    subscribed(&stack, 2).await;
    assert_eq!(teams.subscriptions().len(), 1);
    alice
        .command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));

    // A call the bot never heard of (bob outside the policy) reaches the relay only through
    // the new subscription's call record, and is logged once, as missed.
    let unseen = ring_with(&stack, &e164, BOB, false).await;
    let (status, _) = sim_post(&stack, &format!("/calls/{unseen}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    let activity = one_activity(&stack, &unseen).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("missed"));
    assert_eq!(agents_on(&activity), [BOB]);
}

#[tokio::test]
async fn the_relay_restarted_mid_call_ends_it_once_and_keeps_one_subscription() {
    let mut stack = start().await;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &e164, ALICE).await;
    pick_up(&stack, &mut alice, &call).await;
    stack.crash_relay();
    stack.start_relay_again().await.expect("relay back");
    // A new subscription replaces the old one (deleted, or records would come twice).
    subscribed(&stack, 2).await;
    assert_eq!(stack.sim.sim.teams.subscriptions().len(), 1);
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice again");
    let (status, _) = sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

#[tokio::test]
async fn graph_asking_for_reauthorization_is_answered() {
    let stack = start().await;
    let (status, _) = sim_post(&stack, "/faults", &json!({"reauthorize": true})).await;
    assert_eq!(status, 200);
    let teams = &stack.sim.sim.teams;
    eventually("the reauthorization", || async {
        (teams.reauthorized_subscriptions.load(Ordering::Relaxed) == 1).then_some(())
    })
    .await
    .expect("reauthorized");
    assert_eq!(teams.created_subscriptions.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn the_subscription_is_renewed_before_the_life_graph_granted_ends() {
    let stack = start().await;
    let teams = &stack.sim.sim.teams;
    // Graph grants three seconds whatever is asked (its answer says so).
    teams.max_subscription_secs.store(3, Ordering::Relaxed);
    let (status, _) = sim_post(&stack, "/faults", &json!({"remove_subscriptions": true})).await;
    assert_eq!(status, 200);
    subscribed(&stack, 2).await;
    let live = teams.subscriptions();
    eventually("two renewals", || async {
        (teams.renewed_subscriptions.load(Ordering::Relaxed) >= 2).then_some(())
    })
    .await
    .expect("renewed");
    // Past its first life, the same subscription is still there.
    assert_eq!(teams.subscriptions(), live);
    assert_eq!(teams.created_subscriptions.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn forged_callbacks_and_a_wrong_client_state_are_refused_and_counted() {
    let stack = start().await;
    let (status, answer) = sim_post(
        &stack,
        "/faults",
        &json!({"forge_callback": true, "bad_client_state": true}),
    )
    .await;
    assert_eq!(status, 200);
    // A changed signature, another bot's audience, another tenant's, no token at all.
    assert_eq!(
        answer["forged_statuses"],
        json!([401, 401, 401, 401]),
        "{answer}"
    );
    assert_eq!(
        answer["bad_client_state_statuses"],
        json!([401]),
        "{answer}"
    );
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics.contains("provider=\"teams\",outcome=\"unauthorized\"} 5"),
        "{metrics}"
    );
}

#[tokio::test]
async fn duplicated_and_reordered_notifications_change_nothing() {
    let stack = start().await;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (status, _) = sim_post(
        &stack,
        "/faults",
        &json!({"duplicate": true, "reorder": true}),
    )
    .await;
    assert_eq!(status, 200);
    let call = ring(&stack, &e164, ALICE).await;
    pick_up(&stack, &mut alice, &call).await;
    let (status, _) = sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

#[tokio::test]
async fn the_subscription_handshake_answers_the_decoded_token_as_text() {
    let stack = start().await;
    let response = stack
        .http
        .post(format!(
            "{}/v1/tenants/demo/telephony/teams?validationToken=Validation%3A%20Testing%20client%20%2B%26",
            stack.relay.url()
        ))
        .header("content-type", "text/plain; charset=utf-8")
        .send()
        .await
        .expect("relay");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"))
    );
    assert_eq!(
        response.text().await.expect("text"),
        "Validation: Testing client +&"
    );
}

#[tokio::test]
async fn chromium_rings_pops_answers_and_hangs_up_through_teams() -> anyhow::Result<()> {
    crate::browser_flow::ring_pop_answer_hang_up(Provider::Teams).await
}

/// The demo tenant on Teams without a bot: presence of alice and bob watched through the
/// demo's service account.
fn presence_mode(c: &mut cti_relay::Config) {
    quick(c);
    if let cti_relay::adapters::TelephonySettings::Teams(settings) = &mut c.tenants[0].telephony {
        settings.teams_mode = "presence".into();
        settings.teams_bot_app_id = String::new();
        settings.teams_presence_users = vec![ALICE.into(), BOB.into()];
        settings.teams_presence_refresh_token = Some(cti_relay::secret::Secret::new(
            cti_sim::teams::DEMO_REFRESH_TOKEN,
        ));
    }
}

#[tokio::test]
async fn presence_mode_shows_a_call_without_its_caller_and_its_record_completes_the_one_activity() {
    let stack = Stack::start_through(Provider::Teams, presence_mode)
        .await
        .expect("stack");
    // Two subscriptions: call records (the app's token) and presence (the service account's).
    subscribed(&stack, 2).await;
    let teams = &stack.sim.sim.teams;
    eventually("both subscriptions", || async {
        (teams.subscriptions().len() == 2).then_some(())
    })
    .await
    .expect("two");
    let (_, e164, name) = stack.single_match_caller().expect("caller");
    let (mut alice, welcome) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    assert_eq!(
        welcome["controls"],
        json!([]),
        "no bot, no controls: {welcome}"
    );
    // The bot hears nothing (there is none); alice picks up in Teams: her presence says so.
    let chain = ring_with(&stack, &e164, ALICE, false).await;
    let (status, _) = sim_post(&stack, &format!("/calls/{chain}/answer"), &json!({})).await;
    assert_eq!(status, 204);
    let on = alice
        .recv_until("a call is on", |m| {
            m["type"] == "call" && m["call"]["state"] == "connected"
        })
        .await
        .expect("call");
    let shown = on["call"]["id"].as_str().expect("id").to_string();
    assert_ne!(shown, chain, "presence does not know Graph's call");
    assert_eq!(on["call"]["from"], "", "no caller until the record: {on}");
    assert!(on["call"]["pop"].is_null(), "nobody matched: {on}");
    // Dialling needs the bot: refused, and said so.
    alice
        .command(&shown, CallCommand::Hangup)
        .await
        .expect("hangup sent");
    let refused = alice
        .recv_until("no controls", |m| m["type"] == "error")
        .await
        .expect("error");
    assert!(!refused["message"].as_str().unwrap_or_default().is_empty());
    let (status, _) = sim_post(&stack, &format!("/calls/{chain}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    // The call ends; its record (however it raced the presence change) tells the card who it
    // was, and that record is the one V2 shows.
    let told = call_where(&mut alice, &shown, "ended, with its caller", |c| {
        c["state"] == "ended" && c["from"] == e164.as_str()
    })
    .await;
    assert_eq!(told["call"]["pop"]["name"], name.as_str(), "{told}");
    // One activity, under the presence call's reference (the one the widget gave V2, which
    // Agent Desktop filed its own record under), completed from the record: the caller and
    // the record's exact times. Nothing under Graph's call.
    let record = eventually("the call record", || async { teams.record(&chain) })
        .await
        .expect("record");
    let session = &record["sessions"][0];
    let (start, end) = (
        session["startDateTime"].as_str().expect("start"),
        session["endDateTime"].as_str().expect("end"),
    );
    let activity = stack
        .wait_activity(&shown, "amended by the record", |a| {
            summary_line(a, "Started: ") == Some(start)
        })
        .await
        .expect("one activity");
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    assert!(
        summary_line(&activity, "Inbound call from ").is_some_and(|l| l.starts_with(&e164)),
        "{activity}"
    );
    assert!(
        summary_line(&activity, "Ended: ").is_some_and(|l| l.starts_with(end)),
        "{activity}"
    );
    assert!(stack.activities(&chain).await.expect("v2").is_empty());
    assert_eq!(stack.activities(&shown).await.expect("v2").len(), 1);
}

#[tokio::test]
async fn presence_notifications_with_a_forged_client_state_are_refused() {
    let stack = Stack::start_through(Provider::Teams, presence_mode)
        .await
        .expect("stack");
    subscribed(&stack, 2).await;
    let forged = json!({"value": [{"subscriptionId": "x", "clientState": "not-the-client-state",
        "changeType": "updated", "resource": "communications/presences('8a34a46b-3d17-4adc-8dce-dc4e7d572601')",
        "resourceData": {"@odata.type": "#Microsoft.Graph.presence",
                         "id": "8a34a46b-3d17-4adc-8dce-dc4e7d572601"}}]});
    let response = stack
        .http
        .post(format!(
            "{}/v1/tenants/demo/telephony/teams",
            stack.relay.url()
        ))
        .json(&forged)
        .send()
        .await
        .expect("relay");
    assert_eq!(response.status(), 401);
    // A bot callback has nowhere to go either: this tenant has no bot.
    let (status, answer) = sim_post(&stack, "/faults", &json!({"forge_callback": true})).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["forged_statuses"],
        json!([401, 401, 401, 401]),
        "{answer}"
    );
}

/// The demo tenant's app authenticating with the throwaway certificate `key` signs for instead
/// of the secret; the simulated registration knows the app's certificate only.
fn with_certificate(key: &'static str) -> impl FnOnce(&mut cti_relay::Config) {
    move |c: &mut cti_relay::Config| {
        quick(c);
        if let cti_relay::adapters::TelephonySettings::Teams(settings) = &mut c.tenants[0].telephony
        {
            settings.teams_client_secret = cti_relay::secret::Secret::default();
            settings.teams_client_certificate =
                Some(cti_sim::teams::test_certificates::APP_CERTIFICATE.into());
            settings.teams_client_private_key = Some(cti_relay::secret::Secret::new(key));
        }
    }
}

fn app_certificate_registered(sim: &mut cti_sim::SimConfig) {
    use cti_sim::teams::test_certificates::{APP_CERTIFICATE, APP_PUBLIC_KEY};
    sim.teams_certificates = vec![(APP_CERTIFICATE.into(), APP_PUBLIC_KEY.into())];
}

#[tokio::test]
async fn a_certificate_instead_of_a_secret_rings_through() {
    let stack = Stack::start_through_with(
        Provider::Teams,
        app_certificate_registered,
        with_certificate(cti_sim::teams::test_certificates::APP_PRIVATE_KEY),
    )
    .await
    .expect("stack");
    subscribed(&stack, 1).await;
    let (_, e164, name) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &e164, ALICE).await;
    let rung = call_where(&mut alice, &call, "ringing", |c| c["state"] == "ringing").await;
    assert_eq!(rung["call"]["pop"]["name"], name.as_str());
    pick_up(&stack, &mut alice, &call).await;
    let (status, _) = sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

#[tokio::test]
async fn a_key_that_is_not_the_registered_certificates_is_refused_and_readyz_says_why() {
    // The relay signs with another key than the uploaded certificate's.
    let stack = Stack::start_through_with(
        Provider::Teams,
        app_certificate_registered,
        with_certificate(cti_sim::teams::test_certificates::OTHER_PRIVATE_KEY),
    )
    .await
    .expect("stack");
    let said = eventually("readyz names Entra's refusal", || async {
        let ready = stack.readyz().await.ok()?;
        let text = ready.to_string();
        text.contains("AADSTS700027").then_some(text)
    })
    .await
    .expect("refusal shown");
    assert!(said.contains("invalid signature"), "{said}");
    assert_eq!(
        stack
            .sim
            .sim
            .teams
            .created_subscriptions
            .load(Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn presence_subscriptions_removed_mid_call_are_made_again_renewed_and_the_call_still_closes_once()
 {
    let stack = Stack::start_through(Provider::Teams, presence_mode)
        .await
        .expect("stack");
    subscribed(&stack, 2).await;
    let teams = &stack.sim.sim.teams;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let chain = ring_with(&stack, &e164, ALICE, false).await;
    let (status, _) = sim_post(&stack, &format!("/calls/{chain}/answer"), &json!({})).await;
    assert_eq!(status, 204);
    let on = alice
        .recv_until("a call is on", |m| {
            m["type"] == "call" && m["call"]["state"] == "connected"
        })
        .await
        .expect("call");
    let shown = on["call"]["id"].as_str().expect("id").to_string();
    // Graph now grants three seconds and removes both subscriptions.
    teams.max_subscription_secs.store(3, Ordering::Relaxed);
    let (status, answer) =
        sim_post(&stack, "/faults", &json!({"remove_subscriptions": true})).await;
    assert_eq!((status, answer["removed"].as_u64()), (200, Some(2)));
    subscribed(&stack, 4).await;
    eventually("both again, renewed", || async {
        (teams.subscriptions().len() == 2
            && teams.renewed_subscriptions.load(Ordering::Relaxed) >= 2)
            .then_some(())
    })
    .await
    .expect("renewed");
    // The call still ends, and is logged once, with its caller once the record came.
    let (status, _) = sim_post(&stack, &format!("/calls/{chain}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    call_where(&mut alice, &shown, "ended", |c| c["state"] == "ended").await;
    let activity = stack
        .wait_activity(&shown, "with its caller", |a| {
            summary_line(a, "Inbound call from ").is_some_and(|l| l.starts_with(&e164))
        })
        .await
        .expect("one activity");
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    assert!(stack.activities(&chain).await.expect("v2").is_empty());
    assert_eq!(teams.created_subscriptions.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn the_bot_answers_the_recording_invitation_at_once_and_the_rep_answers_on_their_own() {
    let stack = start().await;
    let teams = &stack.sim.sim.teams;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &e164, ALICE).await;
    call_where(&mut alice, &call, "ringing", |c| c["state"] == "ringing").await;
    // The relay answered Graph's invitation by itself: the bot is in the call, alice's phone
    // still rings.
    eventually("the bot's answer", || async {
        teams
            .calls()
            .into_iter()
            .find(|c| c.chain == call && c.bot_answered)
    })
    .await
    .expect("the bot answered");
    let leg = teams
        .calls()
        .into_iter()
        .find(|c| c.chain == call)
        .expect("alice's leg");
    assert_eq!(leg.state, "incoming", "alice has not answered");
    // The widget cannot answer for her (Teams names no answer control: Graph answers no
    // user's call).
    alice
        .command(&call, CallCommand::Answer)
        .await
        .expect("answer sent");
    let refused = alice
        .recv_until("answer refused", |m| m["type"] == "error")
        .await
        .expect("error");
    assert_eq!(refused["code"], "unsupported", "{refused}");
    // Connected only once alice answers in Teams, at her answer's time.
    let connected = pick_up(&stack, &mut alice, &call).await;
    assert_eq!(connected["call"]["state"], "connected");
    let (status, _) = sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    assert_eq!(teams.dropped_invitations.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_recording_invitation_left_unanswered_is_dropped_and_the_call_record_logs_the_call() {
    let stack = start().await;
    let teams = &stack.sim.sim.teams;
    // No answer can come in time now.
    teams.policy_answer_window_ms.store(0, Ordering::Relaxed);
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &e164, ALICE).await;
    call_where(&mut alice, &call, "ringing", |c| c["state"] == "ringing").await;
    eventually("the invitation dropped", || async {
        (teams.dropped_invitations.load(Ordering::Relaxed) == 1).then_some(())
    })
    .await
    .expect("dropped");
    let leg = teams
        .calls()
        .into_iter()
        .find(|c| c.chain == call)
        .expect("alice's leg");
    assert!(leg.bot_dropped && !leg.bot_answered, "{leg:?}");
    // The call goes on without the bot: alice talks, then the caller hangs up.
    let (status, _) = sim_post(&stack, &format!("/calls/{call}/answer"), &json!({})).await;
    assert_eq!(status, 204);
    let (status, _) = sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    // The call record tells the rest, once: answered, ended, completed.
    let ended = call_where(&mut alice, &call, "ended by the record", |c| {
        c["state"] == "ended"
    })
    .await;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

#[tokio::test]
async fn the_call_record_completes_a_call_the_bot_heard_with_its_exact_times_in_the_same_activity()
{
    let stack = start().await;
    let teams = &stack.sim.sim.teams;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &e164, ALICE).await;
    call_where(&mut alice, &call, "ringing", |c| c["state"] == "ringing").await;
    pick_up(&stack, &mut alice, &call).await;
    let (status, _) = sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await;
    assert_eq!(status, 204);
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    // The bot's notifications are heard at the relay's clock; the record has Graph's times,
    // and they are what the one activity ends up with.
    let record = eventually("the call record", || async { teams.record(&call) })
        .await
        .expect("record");
    let start = record["startDateTime"].as_str().expect("start").to_string();
    let session = &record["sessions"][0];
    let answered = session["startDateTime"].as_str().expect("answer");
    let end = session["endDateTime"].as_str().expect("end");
    let activity = stack
        .wait_activity(&call, "with the record's times", |a| {
            summary_line(a, "Started: ") == Some(start.as_str())
                && summary_line(a, "Answered: ") == Some(answered)
                && summary_line(a, "Ended: ").is_some_and(|l| l.starts_with(end))
        })
        .await
        .expect("one activity");
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    assert_eq!(stack.activities(&call).await.expect("v2").len(), 1);
    // The rep's card shows the record's times too.
    call_where(&mut alice, &call, "the record's end", |c| {
        c["ended_at"] == end && c["answered_at"] == answered
    })
    .await;
}

/// The rep's leg was handed to `number`, outside the reps: it ends transferred with the reason
/// that ends the call, and the call has one activity, inbound, completed, the rep's alone.
async fn handed_outside(stack: &Stack, ws: &mut WsClient, call: &str, number: &str) {
    let transferred = call_where(ws, call, "handed outside", |c| {
        c["state"] == "transferred" && c["end_reason"] == "completed"
    })
    .await;
    assert_eq!(transferred["call"]["state"], "transferred", "{transferred}");
    let activity = one_activity(stack, call).await;
    assert_eq!(agents_on(&activity), [ALICE], "{activity}");
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    assert!(
        cti_tests::summary_of(&activity).contains("Inbound call from"),
        "{activity}"
    );
    // The caller went on with the number; no leg of the tenant's is left in the call.
    let teams = &stack.sim.sim.teams;
    assert!(
        teams
            .calls()
            .iter()
            .all(|c| c.chain != call || c.state == "terminated"),
        "a leg is still live"
    );
    let record = teams.record(call).expect("record");
    assert!(record.to_string().contains(number), "{record}");
}

/// A blind transfer and a consultative one, asked through the relay, to a number outside the
/// tenant's users: no colleague's leg follows, so each hand-over ends its call, logged once.
#[tokio::test]
async fn transfers_to_a_number_outside_are_logged_once() {
    let stack = start().await;
    let teams = &stack.sim.sim.teams;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let outside = "+41445550198";

    // Blind: Graph's `transfer` with a phone target.
    let call = ring(&stack, &e164, ALICE).await;
    pick_up(&stack, &mut alice, &call).await;
    alice
        .command(
            &call,
            CallCommand::Transfer {
                target: outside.into(),
            },
        )
        .await
        .expect("transfer");
    handed_outside(&stack, &mut alice, &call, outside).await;

    // Consultative: the rep calls the number, it answers, and the caller is handed to it.
    let call = ring(&stack, &e164, ALICE).await;
    pick_up(&stack, &mut alice, &call).await;
    alice
        .command(
            &call,
            CallCommand::Consult {
                target: outside.into(),
            },
        )
        .await
        .expect("consult");
    let consultation = eventually("the consultation placed", || async {
        teams
            .calls()
            .into_iter()
            .find(|c| {
                c.direction == "outgoing"
                    && c.other["phone"]["id"] == outside
                    && c.state == "establishing"
            })
            .map(|c| c.id)
    })
    .await
    .expect("a consultation");
    let (status, body) =
        sim_post(&stack, &format!("/calls/{consultation}/answer"), &json!({})).await;
    assert_eq!(status, 204, "{body}");
    alice
        .command(&call, CallCommand::CompleteTransfer)
        .await
        .expect("complete");
    handed_outside(&stack, &mut alice, &call, outside).await;
    assert!(
        teams
            .calls()
            .iter()
            .all(|c| c.id != consultation || c.state == "terminated"),
        "the consultation was replaced"
    );
    // The consultation's own record is no call of its own.
    let own = teams
        .calls()
        .into_iter()
        .find(|c| c.id == consultation)
        .expect("consultation")
        .chain;
    eventually("the consultation's record", || async { teams.record(&own) })
        .await
        .expect("record");
    assert!(stack.activities(&own).await.expect("v2").is_empty());
}

/// A call to alice from `from`, answered, then transferred in the Teams client to `target`.
async fn answered_then_transferred_in_client(
    stack: &Stack,
    alice: &mut WsClient,
    from: &str,
    target: &str,
) -> String {
    let call = ring(stack, from, ALICE).await;
    pick_up(stack, alice, &call).await;
    let (status, body) = sim_post(
        stack,
        &format!("/calls/{call}/transfer"),
        &json!({"target": target}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    call
}

/// A blind transfer made in the Teams client: Graph's notifications (`transferring`,
/// `transferAccepted`, `terminated` with 7015) name no target. To a colleague, their leg
/// follows and the call is theirs; to a number, the call's record tells, and the call is logged
/// once, the rep's.
#[tokio::test]
async fn transfers_to_a_number_made_in_the_teams_client_are_logged_once() {
    let stack = start().await;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let outside = "+41445550197";

    let call = answered_then_transferred_in_client(&stack, &mut alice, &e164, outside).await;
    handed_outside(&stack, &mut alice, &call, outside).await;

    // To a colleague: the call waits for bob's leg and is logged when he hangs up.
    let call = answered_then_transferred_in_client(&stack, &mut alice, &e164, BOB).await;
    let handed = call_where(&mut alice, &call, "alice handed it on", |c| {
        c["state"] == "transferred"
    })
    .await;
    assert!(handed["call"]["end_reason"].is_null(), "{handed}");
    call_where(&mut bob, &call, "bob's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await;
    pick_up(&stack, &mut bob, &call).await;
    assert!(stack.activities(&call).await.expect("v2").is_empty());
    bob.command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    let activity = one_activity(&stack, &call).await;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

/// A colleague outside the compliance-recording policy: the bot never hears their leg, so a
/// call handed to them (through the relay, or in the Teams client) would wait for it forever.
/// The call's record, written once they hung up, ends the wait: the call is logged once, the
/// rep's, as handed on.
#[tokio::test]
async fn calls_handed_to_a_colleague_outside_the_recording_policy_are_logged_once() {
    let stack = start().await;
    let (_, e164, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let carol = "carol@example.com";
    let (status, body) = sim_post(
        &stack,
        &format!("/users/{carol}/policy"),
        &json!({"recorded": false}),
    )
    .await;
    assert_eq!(status, 204, "{body}");

    for through_relay in [true, false] {
        let call = if through_relay {
            let call = ring(&stack, &e164, ALICE).await;
            pick_up(&stack, &mut alice, &call).await;
            alice
                .command(
                    &call,
                    CallCommand::Transfer {
                        target: carol.into(),
                    },
                )
                .await
                .expect("transfer");
            call
        } else {
            answered_then_transferred_in_client(&stack, &mut alice, &e164, carol).await
        };
        let handed = call_where(&mut alice, &call, "alice handed it on", |c| {
            c["state"] == "transferred"
        })
        .await;
        assert!(handed["call"]["end_reason"].is_null(), "{handed}");
        // Carol picks up in Teams and talks; the bot hears nothing of it.
        let (status, body) = sim_post(&stack, &format!("/calls/{call}/answer"), &json!({})).await;
        assert_eq!(status, 204, "{body}");
        assert!(stack.activities(&call).await.expect("v2").is_empty());
        let (status, body) = sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await;
        assert_eq!(status, 204, "{body}");
        call_where(&mut alice, &call, "the record ended the wait", |c| {
            c["state"] == "transferred" && c["end_reason"] == "completed"
        })
        .await;
        let activity = one_activity(&stack, &call).await;
        assert_eq!(agents_on(&activity), [ALICE], "{activity}");
        assert_eq!(
            summary_line(&activity, "Outcome: "),
            Some("completed"),
            "through the relay: {through_relay}"
        );
    }
}
