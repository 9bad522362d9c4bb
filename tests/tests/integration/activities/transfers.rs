//! A call that changes hands: a blind transfer brings the record and notes to the colleague and
//! can come back; a consult transfer rings the colleague while the caller holds, then hands the
//! call over or takes it back. Either way the call ends as one activity listing the reps who
//! talked.

use cti_protocol::ws::CallCommand;
use cti_tests::{AnsweredCall, Stack, WsClient, agents_on, notes_in, summary_line};
use serde_json::json;

use super::{ALICE, BOB, activity_state, call_where, quick_retries};

#[tokio::test]
async fn a_transferred_call_brings_its_context_comes_back_and_lists_both_reps() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let transfer_to = |rep: &str| CallCommand::Transfer {
        target: rep.to_string(),
    };
    let AnsweredCall { id: call, ringing } = stack
        .talking(&mut alice, &number, ALICE)
        .await
        .expect("alice talks");
    let pop = ringing["call"]["pop"].clone();
    assert!(pop.is_object(), "{ringing}");
    alice
        .send_json(
            &json!({"type": "save_wrap_up", "call_id": call, "notes": "asks about the invoice"}),
        )
        .await
        .expect("notes");
    call_where(&mut alice, &call, "alice's notes saved", |c| {
        c["wrap_up"]["notes"] == "asks about the invoice"
    })
    .await;
    alice
        .command(&call, transfer_to(BOB))
        .await
        .expect("transfer");
    let handed = call_where(&mut bob, &call, "bob's ringing", |c| {
        c["state"] == "ringing"
    })
    .await;
    assert_eq!(handed["call"]["pop"]["id"], pop["id"], "the same record");
    assert_eq!(handed["call"]["handover"]["from"], ALICE);
    assert_eq!(
        handed["call"]["handover"]["notes"],
        "asks about the invoice"
    );
    bob.answer(&call).await.expect("bob connected");
    bob.send_json(
        &json!({"type": "save_wrap_up", "call_id": call, "notes": "sent a corrected invoice"}),
    )
    .await
    .expect("notes");
    call_where(&mut bob, &call, "bob's notes saved", |c| {
        c["wrap_up"]["notes"] == "sent a corrected invoice"
    })
    .await;
    // Bob hands it back: the call rings for Alice again, with Bob's notes, as a new round.
    bob.command(&call, transfer_to(ALICE))
        .await
        .expect("transfer back");
    let back = call_where(&mut alice, &call, "alice's second ringing", |c| {
        c["state"] == "ringing"
    })
    .await;
    assert_eq!(back["call"]["returns"], 1);
    assert_eq!(back["call"]["handover"]["from"], BOB);
    assert_eq!(
        back["call"]["handover"]["notes"],
        "sent a corrected invoice"
    );
    assert_eq!(
        back["call"]["wrap_up"]["notes"], "asks about the invoice",
        "her own notes are still hers"
    );
    alice.answer(&call).await.expect("alice connected again");
    assert!(
        stack.activities(&call).await.expect("v2").is_empty(),
        "nothing is logged while the call goes on"
    );
    alice
        .command(&call, CallCommand::Hangup)
        .await
        .expect("hangup");
    let activity = stack
        .wait_activity(&call, "written", |_| true)
        .await
        .expect("one activity");
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
    let notes = notes_in(&activity).unwrap_or_default();
    assert!(
        notes.contains("asks about the invoice") && notes.contains("sent a corrected invoice"),
        "{notes}"
    );
    activity_state(&mut alice, &call, "logged").await;
    activity_state(&mut bob, &call, "logged").await;
}

#[tokio::test]
async fn a_consult_transfer_rings_the_colleague_then_hands_the_call_over_or_takes_it_back() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let consult = || CallCommand::Consult { target: BOB.into() };

    // Consult, the colleague answers, the transfer completes.
    let call = stack
        .talking(&mut alice, &number, ALICE)
        .await
        .expect("alice talks")
        .id;
    alice.command(&call, consult()).await.expect("send");
    call_where(&mut alice, &call, "alice consults, caller held", |c| {
        c["state"] == "held" && c["consult"]["agent"] == BOB && c["consult"]["state"] == "ringing"
    })
    .await;
    let rung = call_where(&mut bob, &call, "bob is consulted", |c| {
        c["state"] == "ringing"
    })
    .await;
    assert_eq!(rung["call"]["handover"]["from"], ALICE);
    bob.command(&call, CallCommand::Answer).await.expect("send");
    call_where(&mut alice, &call, "alice sees bob on the line", |c| {
        c["consult"]["state"] == "connected"
    })
    .await;
    alice
        .command(&call, CallCommand::CompleteTransfer)
        .await
        .expect("send");
    call_where(&mut alice, &call, "alice handed over", |c| {
        c["state"] == "transferred"
    })
    .await;
    bob.command(&call, CallCommand::Hangup).await.expect("send");
    let activity = stack
        .wait_activity(&call, "written", |_| true)
        .await
        .expect("one activity");
    assert_eq!(agents_on(&activity), [ALICE, BOB]);

    // Consult, then back to the caller: the colleague drops off, the call goes on with alice
    // and ends as one activity that she owns.
    let call = stack
        .talking(&mut alice, &number, ALICE)
        .await
        .expect("alice talks")
        .id;
    alice.command(&call, consult()).await.expect("send");
    call_where(&mut bob, &call, "bob is consulted", |c| {
        c["state"] == "ringing"
    })
    .await;
    bob.command(&call, CallCommand::Answer).await.expect("send");
    call_where(&mut alice, &call, "bob on the line", |c| {
        c["consult"]["state"] == "connected"
    })
    .await;
    alice
        .command(&call, CallCommand::CancelConsult)
        .await
        .expect("send");
    call_where(&mut bob, &call, "bob dropped off", |c| {
        c["state"] == "ended"
    })
    .await;
    call_where(&mut alice, &call, "alice back with the caller", |c| {
        c["state"] == "connected" && c["consult"].is_null()
    })
    .await;
    assert!(
        stack.activities(&call).await.expect("list").is_empty(),
        "the call goes on"
    );
    alice
        .command(&call, CallCommand::Hangup)
        .await
        .expect("send");
    let activity = stack
        .wait_activity(&call, "written", |_| true)
        .await
        .expect("one activity");
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
}
