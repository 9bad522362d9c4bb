//! Webex Calling end to end over its own protocol: the relay registers an org-wide
//! `telephony_calls` webhook at the simulated org, calls come as signed webhook events, the rep's
//! controls go out through `/v1/telephony/calls`, and a webhook that disappears loses nothing and
//! repeats nothing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cti_protocol::ws::CallCommand;
use cti_relay::adapters::TelephonySettings;
use cti_tests::{Provider, Stack, WsClient, agents_on, eventually, summary_line};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

fn quick(c: &mut cti_relay::Config) {
    c.activity_retry_base = Duration::from_millis(20);
    c.activity_retry_max = Duration::from_millis(300);
    c.miss_budget = Duration::from_secs(5);
    // Look at the webhook every second, so a deleted one is noticed quickly.
    if let TelephonySettings::Webex(settings) = &mut c.tenants[0].telephony {
        settings.webex_watch_secs = Some(1);
    }
}

/// The stack with the demo tenant on Webex, its webhook registered.
async fn start() -> Stack {
    let stack = Stack::start_through(Provider::Webex, quick)
        .await
        .expect("stack");
    registered(&stack, 1).await;
    stack
}

/// Until the org has had `created` webhooks and exactly one is live.
async fn registered(stack: &Stack, created: u64) {
    let wx = &stack.sim.sim.webex;
    eventually("the relay's webhook", || async {
        let made = wx.created_webhooks.load(Ordering::Relaxed);
        (made >= created && wx.webhooks().len() == 1).then_some(())
    })
    .await
    .expect("registered");
}

/// Rings `agent` from `from` through the simulated org; the callSessionId, once the relay took
/// the `received` event.
async fn ring(stack: &Stack, from: &str, agent: &str) -> String {
    stack
        .ring_through(Provider::Webex, from, agent)
        .await
        .expect("ringing")
}

async fn sim_post(stack: &Stack, path: &str, body: &Value) -> u16 {
    stack
        .http
        .post(format!("{}/sim/webex{path}", stack.sim.url()))
        .json(body)
        .send()
        .await
        .expect("sim")
        .status()
        .as_u16()
}

async fn call_where(
    ws: &mut WsClient,
    call: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    ws.recv_call(call, what, check).await.expect(what)
}

/// Exactly one activity for the call.
async fn one_activity(stack: &Stack, call: &str) -> Value {
    let activity = stack
        .wait_activity(call, "written", |_| true)
        .await
        .expect("an activity");
    assert_eq!(stack.activities(call).await.expect("v2").len(), 1);
    activity
}

/// The rep's live callId on the call's session at the simulated org, and their person id.
fn leg_of(stack: &Stack, call: &str, rep: &str) -> (String, String) {
    let wx = &stack.sim.sim.webex;
    let person = wx.person_by_email(rep).expect("rep").id.clone();
    let leg = wx
        .legs()
        .into_iter()
        .find(|l| l.session == call && l.person == person && l.state != "disconnected")
        .expect("the rep's call")
        .call_id;
    (person, leg)
}

#[tokio::test]
async fn a_call_rings_pops_is_held_resumed_transferred_and_logged_once() {
    let stack = start().await;
    let (number, _, name) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let call = ring(&stack, &number, ALICE).await;
    let rung = call_where(&mut alice, &call, "alice's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await;
    assert_eq!(rung["call"]["pop"]["name"], name.as_str(), "{rung}");
    assert_eq!(rung["call"]["direction"], "inbound");
    alice.answer(&call).await.expect("connected");
    alice.command(&call, CallCommand::Hold).await.expect("hold");
    call_where(&mut alice, &call, "held", |c| c["state"] == "held").await;
    // Webex stops taking the access token: the relay refreshes it and the control goes through.
    assert_eq!(
        sim_post(&stack, "/faults", &json!({"revoke_tokens": true})).await,
        200
    );
    alice
        .command(&call, CallCommand::Resume)
        .await
        .expect("resume");
    call_where(&mut alice, &call, "resumed", |c| c["state"] == "connected").await;
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
    bob.answer(&call).await.expect("bob connected");
    assert!(stack.activities(&call).await.expect("v2").is_empty());
    bob.command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut bob, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

/// Rings Alice from `number` and has her answer in the widget; the call.
async fn alice_talking(stack: &Stack, alice: &mut WsClient, number: &str) -> String {
    let call = ring(stack, number, ALICE).await;
    alice.answer(&call).await.expect("alice talks");
    call
}

/// Bob's extension at the simulated org.
fn bobs_extension(stack: &Stack) -> String {
    stack
        .sim
        .sim
        .webex
        .person_by_email(BOB)
        .expect("bob")
        .extension
        .clone()
}

/// Alice's phone transferring the call (no API request, only the events Webex sends for it):
/// blind to `destination`, or without one to the consultation she placed on the phone;
/// `reordered` has Webex deliver the transfer's events the other way round.
async fn transferred_on_the_phone(
    stack: &Stack,
    call: &str,
    destination: Option<&str>,
    reordered: bool,
) {
    let mut body = json!({"agent": ALICE, "reordered": reordered});
    if let Some(destination) = destination {
        body["destination"] = json!(destination);
    }
    assert_eq!(
        sim_post(stack, &format!("/calls/{call}/transfer"), &body).await,
        200
    );
}

/// Alice's leg, once it ends: transferred (with the reason an outside number gives, or none
/// for a colleague, whose leg follows).
async fn alice_handed_it_on(alice: &mut WsClient, call: &str, outside: bool) -> Value {
    let handed = call_where(alice, call, "alice handed it on", |c| {
        c["state"] == "transferred" || c["state"] == "ended"
    })
    .await;
    assert_eq!(handed["call"]["state"], "transferred", "{handed}");
    let reason = if outside {
        json!("completed")
    } else {
        Value::Null
    };
    assert_eq!(handed["call"]["end_reason"], reason, "{handed}");
    handed
}

/// Bob takes the call handed to him and hangs up: one activity naming both reps, completed.
async fn bob_takes_it_and_hangs_up(stack: &Stack, bob: &mut WsClient, call: &str) {
    call_where(bob, call, "bob's phone rings", |c| c["state"] == "ringing").await;
    bob.answer(call).await.expect("bob connected");
    bob.command(call, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(bob, call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity_of(stack, call, &[ALICE, BOB]).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

/// A blind transfer made on Alice's phone (no API request, only the events Webex sends for it):
/// Bob's phone rings on the same call, his call naming Alice as who redirected it, then Alice's
/// call is disconnected. Her leg ends transferred to Bob, and the call is one activity naming
/// both reps.
#[tokio::test]
async fn a_transfer_made_on_the_phone_is_a_transfer() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let call = alice_talking(&stack, &mut alice, &number).await;
    transferred_on_the_phone(&stack, &call, Some(&bobs_extension(&stack)), false).await;
    let handed = alice_handed_it_on(&mut alice, &call, false).await;
    assert!(handed.to_string().contains(BOB), "{handed}");
    bob_takes_it_and_hangs_up(&stack, &mut bob, &call).await;
}

/// Exactly one activity for the call, once it names these reps (an activity written when a
/// rep's leg first looked ended is brought up to date, not written twice).
async fn one_activity_of(stack: &Stack, call: &str, reps: &[&str]) -> Value {
    let activity = stack
        .wait_activity(call, "naming the reps", |a| agents_on(a) == reps)
        .await
        .expect("an activity");
    assert_eq!(stack.activities(call).await.expect("v2").len(), 1);
    activity
}

/// A blind transfer made on Alice's phone to a number outside the org: Webex tells her call as
/// `forwarded` to that number, then disconnected. Her leg ends transferred, and as nobody of the
/// relay's takes the call on, the call is logged then, once, as hers.
#[tokio::test]
async fn a_transfer_made_on_the_phone_to_a_number_outside_is_a_transfer() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = alice_talking(&stack, &mut alice, &number).await;
    transferred_on_the_phone(&stack, &call, Some("+41445550199"), false).await;
    alice_handed_it_on(&mut alice, &call, true).await;
    let activity = one_activity_of(&stack, &call, &[ALICE]).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

/// The same transfers made on the phone, their events heard the other way round: Alice's call
/// disconnected first, then what tells it was a hand-over (Bob's call naming her, or the
/// `forwarded` to a number outside), each timed when it happened. Her ended leg turns
/// transferred, and each call is still one activity.
#[tokio::test]
async fn a_transfer_made_on_the_phone_heard_the_other_way_round_is_a_transfer() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");

    // To Bob.
    let call = alice_talking(&stack, &mut alice, &number).await;
    transferred_on_the_phone(&stack, &call, Some(&bobs_extension(&stack)), true).await;
    call_where(&mut alice, &call, "alice handed it on", |c| {
        c["state"] == "transferred"
    })
    .await;
    bob_takes_it_and_hangs_up(&stack, &mut bob, &call).await;

    // To a number outside.
    let call = alice_talking(&stack, &mut alice, &number).await;
    transferred_on_the_phone(&stack, &call, Some("+41445550199"), true).await;
    call_where(&mut alice, &call, "alice handed it on", |c| {
        c["state"] == "transferred"
    })
    .await;
    let activity = one_activity_of(&stack, &call, &[ALICE]).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

/// A consultation made on Alice's phone (the relay asked for nothing): the caller held, a call
/// placed to Bob. It is a consultation of the held call, not a call of its own: Bob's phone rings
/// on the same call, Alice sees him consulted, and the transfer completed on her phone hands him
/// the caller. One call, one activity naming both.
#[tokio::test]
async fn a_consult_transfer_made_on_the_phone_is_one_call() {
    consult_transfer_made_on_the_phone(false).await;
}

/// The same, Webex delivering the consultation's events before the hold of Alice's call (timed
/// before them): the placed call is still known as the consultation, not a call of its own.
#[tokio::test]
async fn a_consult_made_on_the_phone_heard_before_its_hold_is_one_call() {
    consult_transfer_made_on_the_phone(true).await;
}

async fn consult_transfer_made_on_the_phone(reordered: bool) {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let call = alice_talking(&stack, &mut alice, &number).await;
    let response = stack
        .http
        .post(format!(
            "{}/sim/webex/calls/{call}/consult",
            stack.sim.url()
        ))
        .json(&json!({"agent": ALICE, "destination": BOB, "reordered": reordered}))
        .send()
        .await
        .expect("sim");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let consultation = body["call_id"].as_str().expect("call_id").to_string();
    assert_ne!(consultation, call, "a second call at Webex");
    call_where(&mut bob, &call, "bob is consulted on the call", |c| {
        c["state"] == "ringing"
    })
    .await;
    call_where(&mut alice, &call, "caller held, bob rung", |c| {
        c["state"] == "held" && c["consult"]["agent"] == BOB
    })
    .await;
    bob.command(&call, CallCommand::Answer)
        .await
        .expect("answer");
    call_where(&mut alice, &call, "bob on the line", |c| {
        c["consult"]["state"] == "connected"
    })
    .await;
    transferred_on_the_phone(&stack, &call, None, false).await;
    // Webex ends Alice's calls before Bob's joins the caller's session (inferred): her leg may
    // look ended for a moment, until Bob's call tells it was handed to him.
    call_where(&mut alice, &call, "alice handed over", |c| {
        c["state"] == "transferred"
    })
    .await;
    // Bob now has the caller: the caller hanging up ends his leg.
    assert_eq!(
        sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await,
        200
    );
    call_where(&mut bob, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity_of(&stack, &call, &[ALICE, BOB]).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    assert!(
        stack
            .activities(&consultation)
            .await
            .expect("v2")
            .is_empty(),
        "the consultation is no call of its own"
    );
    assert!(
        stack
            .relay
            .state
            .calls
            .legs("demo", &consultation)
            .await
            .expect("calls")
            .is_empty(),
        "nobody was shown the consultation as a call"
    );
}

#[tokio::test]
async fn a_consult_transfer_hands_over_to_the_colleague_or_goes_back_to_the_caller() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let consult = || CallCommand::Consult { target: BOB.into() };

    // Consult, bob answers, alice completes the transfer (Webex's attended transfer).
    let call = ring(&stack, &number, ALICE).await;
    alice.answer(&call).await.expect("alice talks");
    alice.command(&call, consult()).await.expect("consult");
    call_where(&mut alice, &call, "caller held, bob rung", |c| {
        c["state"] == "held" && c["consult"]["agent"] == BOB && c["consult"]["state"] == "ringing"
    })
    .await;
    call_where(&mut bob, &call, "bob is consulted", |c| {
        c["state"] == "ringing"
    })
    .await;
    bob.command(&call, CallCommand::Answer)
        .await
        .expect("answer");
    call_where(&mut alice, &call, "bob on the line", |c| {
        c["consult"]["state"] == "connected"
    })
    .await;
    alice
        .command(&call, CallCommand::CompleteTransfer)
        .await
        .expect("complete");
    call_where(&mut alice, &call, "alice handed over", |c| {
        c["state"] == "transferred"
    })
    .await;
    // Bob now has the caller: the caller hanging up ends his leg.
    assert_eq!(
        sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await,
        200
    );
    call_where(&mut bob, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);

    // Consult, then back: bob drops off, alice goes on with the caller.
    let call = ring(&stack, &number, ALICE).await;
    alice.answer(&call).await.expect("alice talks");
    alice.command(&call, consult()).await.expect("consult");
    call_where(&mut bob, &call, "bob is consulted", |c| {
        c["state"] == "ringing"
    })
    .await;
    bob.command(&call, CallCommand::Answer)
        .await
        .expect("answer");
    call_where(&mut alice, &call, "bob on the line", |c| {
        c["consult"]["state"] == "connected"
    })
    .await;
    alice
        .command(&call, CallCommand::CancelConsult)
        .await
        .expect("cancel");
    call_where(&mut bob, &call, "bob dropped off", |c| {
        c["state"] == "ended"
    })
    .await;
    call_where(&mut alice, &call, "alice back with the caller", |c| {
        c["state"] == "connected" && c["consult"].is_null()
    })
    .await;
    alice
        .command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

#[tokio::test]
async fn a_caller_who_gives_up_while_it_rings_is_a_missed_call() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &number, ALICE).await;
    call_where(&mut alice, &call, "ringing", |c| c["state"] == "ringing").await;
    assert_eq!(
        sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await,
        200
    );
    let ended = call_where(&mut alice, &call, "missed", |c| c["state"] == "ended").await;
    assert_eq!(ended["call"]["end_reason"], "missed", "{ended}");
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("missed"));
}

#[tokio::test]
async fn a_declined_call_ends_declined() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &number, ALICE).await;
    call_where(&mut alice, &call, "ringing", |c| c["state"] == "ringing").await;
    alice
        .command(&call, CallCommand::Decline)
        .await
        .expect("decline");
    let ended = call_where(&mut alice, &call, "declined", |c| c["state"] == "ended").await;
    assert_eq!(ended["call"]["end_reason"], "declined", "{ended}");
    one_activity(&stack, &call).await;
}

#[tokio::test]
async fn click_to_dial_calls_out_from_the_reps_line() {
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
    let legs = stack.sim.sim.webex.legs();
    assert_eq!(legs.len(), 1);
    assert_eq!(legs[0].session, id, "the callSessionId is the call's id");
    assert_eq!(legs[0].personality, "clickToDial");
    assert_eq!(
        sim_post(&stack, &format!("/calls/{id}/answer"), &json!({})).await,
        200
    );
    call_where(&mut alice, &id, "answered", |c| c["state"] == "connected").await;
    alice
        .command(&id, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut alice, &id, "ended", |c| c["state"] == "ended").await;
    one_activity(&stack, &id).await;
}

#[tokio::test]
async fn duplicated_and_reordered_deliveries_change_nothing() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    assert_eq!(
        sim_post(
            &stack,
            "/faults",
            &json!({"duplicate": true, "reorder": true})
        )
        .await,
        200
    );
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &number, ALICE).await;
    alice.answer(&call).await.expect("connected");
    alice.command(&call, CallCommand::Hold).await.expect("hold");
    call_where(&mut alice, &call, "held", |c| c["state"] == "held").await;
    alice
        .command(&call, CallCommand::Resume)
        .await
        .expect("resume");
    call_where(&mut alice, &call, "resumed", |c| c["state"] == "connected").await;
    alice
        .command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

#[tokio::test]
async fn a_deleted_webhook_is_made_again_and_the_calls_caught_up() {
    let stack = start().await;
    let wx = &stack.sim.sim.webex;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &number, ALICE).await;
    alice.answer(&call).await.expect("connected");
    assert_eq!(
        sim_post(&stack, "/faults", &json!({"delete_webhooks": true})).await,
        200
    );
    // Held on the phone while nothing is delivered.
    let (person, leg) = leg_of(&stack, &call, ALICE);
    wx.act(&person, "hold", &leg).expect("held at the phone");
    registered(&stack, 2).await;
    call_where(&mut alice, &call, "the hold caught up", |c| {
        c["state"] == "held"
    })
    .await;
    alice
        .command(&call, CallCommand::Resume)
        .await
        .expect("resume");
    call_where(&mut alice, &call, "resumed", |c| c["state"] == "connected").await;
    alice
        .command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    one_activity(&stack, &call).await;

    // A call that ends while nothing is delivered: its end is caught up, logged once.
    let call = ring(&stack, &number, ALICE).await;
    alice.answer(&call).await.expect("connected");
    assert_eq!(
        sim_post(&stack, "/faults", &json!({"delete_webhooks": true})).await,
        200
    );
    wx.caller_hangup(&call)
        .await
        .expect_err("no webhook to hear it");
    registered(&stack, 3).await;
    call_where(&mut alice, &call, "the end caught up", |c| {
        c["state"] == "ended"
    })
    .await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    // And the new webhook delivers.
    let next = ring(&stack, &number, ALICE).await;
    call_where(&mut alice, &next, "ringing", |c| c["state"] == "ringing").await;
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics.contains("provider=\"webex\""),
        "the connector's metrics:\n{metrics}"
    );
}

#[tokio::test]
async fn a_restarted_relay_replaces_its_webhook_and_reads_the_call_back() {
    let mut stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &number, ALICE).await;
    alice.answer(&call).await.expect("connected");
    stack.crash_relay();
    let (person, leg) = leg_of(&stack, &call, ALICE);
    // Deliveries fail while the relay is away (no acknowledgement to wait for).
    let _ = stack.sim.sim.webex.act(&person, "hold", &leg);
    stack.start_relay_again().await.expect("relay back");
    // The old webhook to the same URL is deleted, or every event would come twice.
    registered(&stack, 2).await;
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice again");
    call_where(&mut alice, &call, "the call read back, held", |c| {
        c["state"] == "held"
    })
    .await;
    alice
        .command(&call, CallCommand::Resume)
        .await
        .expect("resume");
    call_where(&mut alice, &call, "resumed", |c| c["state"] == "connected").await;
    alice
        .command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    one_activity(&stack, &call).await;
}

#[tokio::test]
async fn a_delivery_with_a_bad_signature_is_refused_and_counted() {
    let stack = start().await;
    let url = format!("{}/v1/tenants/demo/telephony/webex", stack.relay.url());
    let alice = stack
        .sim
        .sim
        .webex
        .person_by_email(ALICE)
        .expect("alice")
        .id
        .clone();
    let body = json!({"resource": "telephony_calls", "event": "created", "actorId": alice,
        "data": {"callId": "forged", "callSessionId": "forged-session", "personality": "terminator",
                 "eventType": "received", "state": "alerting",
                 "remoteParty": {"number": "+41446681800", "callType": "external"},
                 "eventTimestamp": "2026-12-02T10:00:00.000Z"}});
    let bytes = serde_json::to_vec(&body).expect("json");
    let right = cti_sim::webex::signature("demo-webex-webhook-secret", &bytes);
    let wrong = cti_sim::webex::signature("not-the-webhook-secret", &bytes);
    for signature in [Some(wrong.as_str()), None] {
        let mut request = stack
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(bytes.clone());
        if let Some(signature) = signature {
            request = request.header("X-Spark-Signature", signature);
        }
        let response = request.send().await.expect("relay");
        assert_eq!(response.status(), 401);
    }
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics.contains("provider=\"webex\",outcome=\"unauthorized\"} 2"),
        "{metrics}"
    );
    // The same body with the secret's signature is taken: the check, not the body, refused it.
    let response = stack
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("X-Spark-Signature", right)
        .body(bytes)
        .send()
        .await
        .expect("relay");
    assert!(response.status().is_success(), "{}", response.status());
    eventually("the signed event is a call", || async {
        stack
            .relay
            .state
            .calls
            .active_for_agent("demo", ALICE)
            .await
            .ok()?
            .into_iter()
            .find(|c| c.id == "forged-session")
    })
    .await
    .expect("the signed call");
}

#[tokio::test]
async fn ring_pop_answer_hang_up_in_chromium_through_webex() -> anyhow::Result<()> {
    crate::browser_flow::ring_pop_answer_hang_up(Provider::Webex).await
}

#[tokio::test]
async fn a_group_call_answered_by_a_colleague_is_not_missed_for_the_rep() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let response = stack
        .http
        .post(format!("{}/sim/webex/calls", stack.sim.url()))
        .json(&json!({"from": number, "agent": ALICE, "also": [BOB]}))
        .send()
        .await
        .expect("sim");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    let call = body["call_id"].as_str().expect("call_id").to_string();
    call_where(&mut bob, &call, "bob's phone rings too", |c| {
        c["state"] == "ringing"
    })
    .await;
    alice.answer(&call).await.expect("alice answers");
    let ended = call_where(&mut bob, &call, "answered elsewhere", |c| {
        c["state"] == "ended"
    })
    .await;
    assert_eq!(ended["call"]["end_reason"], "completed", "{ended}");
    alice
        .command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    call_where(&mut alice, &call, "ended", |c| c["state"] == "ended").await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}
