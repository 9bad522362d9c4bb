//! RingCentral end to end over its own protocol: the relay subscribes at the simulated account
//! (webhook with the validation handshake), calls come as telephony-session notifications, the
//! rep's controls go out through the call-control API, and the subscription's life (restart,
//! deletion) loses nothing and repeats nothing.

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
    // Look at the subscription every second, so a deleted one is noticed quickly.
    if let TelephonySettings::RingCentral(settings) = &mut c.tenants[0].telephony {
        settings.ringcentral_watch_secs = Some(1);
    }
}

/// The stack with the demo tenant on RingCentral, its subscription live.
async fn start() -> Stack {
    let stack = Stack::start_through(Provider::RingCentral, quick)
        .await
        .expect("stack");
    subscribed(&stack, 1).await;
    stack
}

/// Until the account has made `created` subscriptions and one is live.
async fn subscribed(stack: &Stack, created: u64) {
    let rc = &stack.sim.sim.ringcentral;
    eventually("the relay's subscription", || async {
        let made = rc
            .created_subscriptions
            .load(std::sync::atomic::Ordering::Relaxed);
        (made >= created && !rc.subscriptions().is_empty()).then_some(())
    })
    .await
    .expect("subscribed");
}

/// Rings `agent` from `from` through the simulated account; the telephonySessionId, once the
/// relay took the ringing notification.
async fn ring(stack: &Stack, from: &str, agent: &str) -> String {
    stack
        .ring_through(Provider::RingCentral, from, agent)
        .await
        .expect("ringing")
}

async fn sim_post(stack: &Stack, path: &str, body: &Value) -> u16 {
    stack
        .http
        .post(format!("{}/sim/ringcentral{path}", stack.sim.url()))
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

/// The rep's party of a session at the simulated account.
fn party_of(stack: &Stack, call: &str, rep: &str) -> String {
    let rc = &stack.sim.sim.ringcentral;
    let ext = rc.extension_by_email(rep).expect("rep").id.clone();
    rc.calls()
        .into_iter()
        .find(|c| c.call_id == call)
        .and_then(|c| {
            c.parties
                .into_iter()
                .rev()
                .find(|p| p.extension_id.as_deref() == Some(ext.as_str()))
        })
        .expect("the rep's party")
        .id
}

/// Exactly one activity for the call, and it stays one.
async fn one_activity(stack: &Stack, call: &str) -> Value {
    let activity = stack
        .wait_activity(call, "written", |_| true)
        .await
        .expect("an activity");
    assert_eq!(stack.activities(call).await.expect("v2").len(), 1);
    activity
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

#[tokio::test]
async fn a_consult_transfer_bridges_to_the_colleague_or_goes_back_to_the_caller() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let consult = || CallCommand::Consult { target: BOB.into() };

    // Consult, bob answers, alice completes the transfer (bridge).
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
    bob.command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
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

/// Rings Alice and has her answer in the widget; the call.
async fn alice_talking(stack: &Stack, alice: &mut WsClient, number: &str) -> String {
    let call = ring(stack, number, ALICE).await;
    alice.answer(&call).await.expect("alice talks");
    call
}

/// Alice's phone transferring her call blind (the RingCentral app's request, not the relay's):
/// `target` is the body of `POST .../parties/{pid}/transfer`.
fn transferred_on_the_phone(stack: &Stack, call: &str, target: &Value) {
    let party = party_of(stack, call, ALICE);
    stack
        .sim
        .sim
        .ringcentral
        .party_action(call, &party, "transfer", target)
        .expect("the phone's transfer");
}

/// Alice's leg handed to a number outside the account's reps: transferred with the reason that
/// says no colleague's leg follows, so the hand-over ends the call, logged once as hers.
async fn handed_outside(stack: &Stack, alice: &mut WsClient, call: &str) {
    let handed = call_where(alice, call, "alice handed it on", |c| {
        c["state"] == "transferred" || c["state"] == "ended"
    })
    .await;
    assert_eq!(handed["call"]["state"], "transferred", "{handed}");
    assert_eq!(handed["call"]["end_reason"], "completed", "{handed}");
    let activity = one_activity(stack, call).await;
    assert_eq!(agents_on(&activity), [ALICE]);
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}

/// Blind transfers to a number outside the account, through the relay and made on the phone
/// (the rep's party `Gone`, its `peerId` a party no extension has): each ends the call with one
/// activity. The same made on the phone to a colleague still hands the call over.
#[tokio::test]
async fn transfers_to_a_number_outside_are_logged_once() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");

    let call = alice_talking(&stack, &mut alice, &number).await;
    alice
        .command(
            &call,
            CallCommand::Transfer {
                target: "+41445550199".into(),
            },
        )
        .await
        .expect("transfer");
    handed_outside(&stack, &mut alice, &call).await;

    let call = alice_talking(&stack, &mut alice, &number).await;
    transferred_on_the_phone(&stack, &call, &json!({"phoneNumber": "+41445550198"}));
    handed_outside(&stack, &mut alice, &call).await;

    let call = alice_talking(&stack, &mut alice, &number).await;
    let bobs = stack
        .sim
        .sim
        .ringcentral
        .extension_by_email(BOB)
        .expect("bob")
        .number
        .clone();
    transferred_on_the_phone(&stack, &call, &json!({"extensionNumber": bobs}));
    let handed = call_where(&mut alice, &call, "alice handed it on", |c| {
        c["state"] == "transferred" || c["state"] == "ended"
    })
    .await;
    assert_eq!(handed["call"]["state"], "transferred", "{handed}");
    assert!(handed["call"]["end_reason"].is_null(), "{handed}");
    call_where(&mut bob, &call, "bob's phone rings", |c| {
        c["state"] == "ringing"
    })
    .await;
    bob.answer(&call).await.expect("bob connected");
    assert!(stack.activities(&call).await.expect("v2").is_empty());
    bob.command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    let activity = one_activity(&stack, &call).await;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
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
async fn dialling_calls_out_from_the_reps_device() {
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
    assert!(id.starts_with("s-"), "the telephonySessionId: {id}");
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
async fn a_rep_without_a_device_dials_by_ringout_and_client_credentials_suffice() {
    let stack = Stack::start_through(Provider::RingCentral, |c| {
        quick(c);
        if let TelephonySettings::RingCentral(settings) = &mut c.tenants[0].telephony {
            settings.ringcentral_device_ids.clear();
            // And an app on client credentials rather than a JWT.
            settings.ringcentral_jwt = None;
        }
    })
    .await
    .expect("stack");
    subscribed(&stack, 1).await;
    let (number, e164, _) = stack.single_match_caller().expect("caller");
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
    assert_eq!(call["call"]["to"], e164.as_str());
    let id = call["call"]["id"].as_str().expect("id").to_string();
    // RingOut's answer names no session; the notifications brought it.
    let sessions = stack.sim.sim.ringcentral.calls();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].call_id, id);
    assert_eq!(
        sim_post(&stack, &format!("/calls/{id}/answer"), &json!({})).await,
        200
    );
    call_where(&mut alice, &id, "answered", |c| c["state"] == "connected").await;
    assert_eq!(
        sim_post(&stack, &format!("/calls/{id}/hangup"), &json!({})).await,
        200
    );
    call_where(&mut alice, &id, "ended", |c| c["state"] == "ended").await;
    one_activity(&stack, &id).await;
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
async fn a_relay_restarted_mid_call_reads_the_call_back_and_logs_it_once() {
    let mut stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &number, ALICE).await;
    alice.answer(&call).await.expect("connected");
    stack.crash_relay();
    // While the relay is away, the rep holds the call on her phone.
    let party = party_of(&stack, &call, ALICE);
    stack
        .sim
        .sim
        .ringcentral
        .party_action(&call, &party, "hold", &json!({}))
        .expect("held at the phone");
    stack.start_relay_again().await.expect("relay back");
    // A new subscription replaces the old one (deleted, or deliveries would come twice).
    subscribed(&stack, 2).await;
    assert_eq!(stack.sim.sim.ringcentral.subscriptions().len(), 1);
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
async fn a_deleted_subscription_is_made_again_and_the_call_caught_up() {
    let stack = start().await;
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &number, ALICE).await;
    alice.answer(&call).await.expect("connected");
    assert_eq!(
        sim_post(&stack, "/faults", &json!({"delete_subscriptions": true})).await,
        200
    );
    // Held on the phone while nothing is delivered.
    let party = party_of(&stack, &call, ALICE);
    stack
        .sim
        .sim
        .ringcentral
        .party_action(&call, &party, "hold", &json!({}))
        .expect("held at the phone");
    subscribed(&stack, 2).await;
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

    // A call that ends while nothing is delivered: its end is read from the session.
    let call = ring(&stack, &number, ALICE).await;
    alice.answer(&call).await.expect("connected");
    assert_eq!(
        sim_post(&stack, "/faults", &json!({"delete_subscriptions": true})).await,
        200
    );
    stack
        .sim
        .sim
        .ringcentral
        .caller_hangup(&call)
        .await
        .expect_err("nobody is subscribed to hear it");
    subscribed(&stack, 3).await;
    call_where(&mut alice, &call, "the end caught up", |c| {
        c["state"] == "ended"
    })
    .await;
    let activity = one_activity(&stack, &call).await;
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics.contains("provider=\"ringcentral\""),
        "the connector's metrics:\n{metrics}"
    );
}

#[tokio::test]
async fn a_subscription_is_renewed_before_it_expires_and_keeps_delivering() {
    let stack = start().await;
    let rc = &stack.sim.sim.ringcentral;
    // Subscriptions now live two seconds; the relay's is dropped and made again under that rule.
    rc.set_subscription_ttl(2);
    assert_eq!(
        sim_post(&stack, "/faults", &json!({"delete_subscriptions": true})).await,
        200
    );
    subscribed(&stack, 2).await;
    let live = rc.subscriptions();
    eventually("two renewals", || async {
        (rc.renewed_subscriptions
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2)
            .then_some(())
    })
    .await
    .expect("renewed");
    // Past its first life (two renewals at two thirds of it), the same subscription delivers.
    assert_eq!(rc.subscriptions(), live);
    assert_eq!(
        rc.created_subscriptions
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let call = ring(&stack, &number, ALICE).await;
    call_where(&mut alice, &call, "ringing", |c| c["state"] == "ringing").await;
}

#[tokio::test]
async fn a_delivery_with_a_bad_verification_token_is_refused_and_counted() {
    let stack = start().await;
    let url = format!(
        "{}/v1/tenants/demo/telephony/ringcentral",
        stack.relay.url()
    );
    let body = json!({"uuid": "1", "event": "/restapi/v1.0/account/1/telephony/sessions",
        "timestamp": "2026-12-02T10:00:00Z", "subscriptionId": "x", "ownerId": "1",
        "body": {"sequence": 1, "telephonySessionId": "s-forged", "eventTime": "2026-12-02T10:00:00Z",
                 "parties": [{"id": "p-1", "extensionId": "62000000101", "direction": "Inbound",
                              "from": {"phoneNumber": "+41446681800"}, "to": {"phoneNumber": "+1"},
                              "status": {"code": "Proceeding"}}]}});
    for token in [Some("not-the-verification-token"), None] {
        let mut request = stack
            .http
            .post(&url)
            .header("content-type", "application/json; charset=UTF-8")
            .header("user-agent", "RingCentral-Webhook/8.3")
            .json(&body);
        if let Some(token) = token {
            request = request.header("Verification-Token", token);
        }
        let response = request.send().await.expect("relay");
        assert_eq!(response.status(), 401);
    }
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics.contains("provider=\"ringcentral\",outcome=\"unauthorized\"} 2"),
        "{metrics}"
    );
}

/// A tenant whose RingCentral user may not watch the whole account subscribes to each rep's
/// extension instead; calls arrive the same way.
#[tokio::test]
async fn a_subscription_per_extension_brings_the_reps_calls() {
    let stack = Stack::start_through(Provider::RingCentral, |c| {
        quick(c);
        if let TelephonySettings::RingCentral(settings) = &mut c.tenants[0].telephony {
            settings.ringcentral_subscription = Some("extensions".into());
        }
    })
    .await
    .expect("stack");
    subscribed(&stack, 1).await;
    let filters = stack.sim.sim.ringcentral.subscription_filters();
    assert_eq!(filters.len(), 4, "one per demo rep: {filters:?}");
    assert!(
        filters
            .iter()
            .all(|f| f.starts_with("/restapi/v1.0/account/~/extension/")
                && f.ends_with("/telephony/sessions")),
        "{filters:?}"
    );
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let call = ring(&stack, &number, BOB).await;
    call_where(&mut bob, &call, "ringing", |c| c["state"] == "ringing").await;
    assert_eq!(
        sim_post(&stack, &format!("/calls/{call}/hangup"), &json!({})).await,
        200
    );
    call_where(&mut bob, &call, "missed", |c| c["end_reason"] == "missed").await;
}
