//! Every call ends as exactly one phone-call activity in V2: with its times, parties, record,
//! notes and recording link; through V2 outages, lost answers, reordered and repeated provider
//! events, relay crashes; and across a transfer between two reps.

use std::time::Duration;

use cti_relay::secret::Secret;
use cti_tests::redis::RedisServer;
use cti_tests::{Stack, WsClient, agents_on, eventually, test_token_key};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

fn event(id: &str, call: &str, kind: &str, from: &str, at: &str, extra: Value) -> String {
    let mut body = json!({"id": id, "call_id": call, "type": kind, "direction": "inbound",
        "from": from, "to": "+41 44 999 00 00", "agent": ALICE, "at": at});
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body.to_string()
}

/// Posts events in order; each must be accepted (202) or a duplicate (200).
async fn post_all(stack: &Stack, events: &[String]) {
    for body in events {
        let status = stack.post_event(body).await.expect("relay answers");
        assert!(status == 202 || status == 200, "{status} for {body}");
    }
}

/// A short ringing → ended call nobody answered.
fn missed_call(call: &str, from: &str) -> Vec<String> {
    vec![
        event(
            &format!("{call}-r"),
            call,
            "ringing",
            from,
            "2026-11-25T09:00:00Z",
            json!({}),
        ),
        event(
            &format!("{call}-e"),
            call,
            "ended",
            from,
            "2026-11-25T09:00:20Z",
            json!({}),
        ),
    ]
}

/// Waits for a call message whose activity is in `state`.
async fn activity_state(ws: &mut WsClient, call: &str, state: &str) -> Value {
    ws.recv_until(&format!("{call}'s activity {state}"), |m| {
        m["type"] == "call"
            && m["call"]["id"] == call
            && m["call"]["wrap_up"]["activity"]["state"] == state
    })
    .await
    .expect("activity status")
}

/// Until the rep's leg says why the call's activity waits (a reason containing `because`).
async fn activity_waits(stack: &Stack, call: &str, rep: &str, because: &str) -> String {
    eventually(&format!("{call}'s activity to wait: {because}"), || async {
        let leg = stack
            .relay
            .state
            .calls
            .get("demo", call, rep)
            .await
            .ok()??;
        let reason = leg.wrap_up.activity?.reason?;
        reason.contains(because).then_some(reason)
    })
    .await
    .expect("waiting with a reason")
}

fn quick_retries(c: &mut cti_relay::Config) {
    c.activity_retry_base = Duration::from_millis(20);
    c.activity_retry_max = Duration::from_millis(300);
    c.miss_budget = Duration::from_secs(5);
}

#[tokio::test]
async fn a_talked_call_is_logged_once_with_everything_and_notes_follow_later() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    let (number, e164, _) = stack.single_match_caller().expect("caller");
    let (mut ws, welcome) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    assert!(
        welcome["dispositions"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "Interested")),
        "{welcome}"
    );
    let call = "log-1";
    post_all(
        &stack,
        &[
            event(
                "l1",
                call,
                "ringing",
                &number,
                "2026-11-25T10:00:00Z",
                json!({}),
            ),
            event(
                "l2",
                call,
                "answered",
                &number,
                "2026-11-25T10:00:10Z",
                json!({}),
            ),
            event(
                "l3",
                call,
                "ended",
                &number,
                "2026-11-25T10:03:48Z",
                json!({"reason": "completed", "recording_url": "https://rec.example/log-1.wav"}),
            ),
        ],
    )
    .await;
    let logged = activity_state(&mut ws, call, "logged").await;
    let status = &logged["call"]["wrap_up"]["activity"];
    let v2_id = status["v2_id"].as_str().expect("v2 id").to_string();
    assert!(
        status["link"].as_str().is_some_and(|l| l.ends_with(&v2_id)),
        "{status}"
    );
    let pop = logged["call"]["pop"].clone();
    let activity = stack
        .wait_activity(call, "written", |_| true)
        .await
        .expect("one activity");
    assert_eq!(activity["id"], v2_id.as_str());
    assert_eq!(activity["direction"], "INBOUND");
    assert_eq!(activity["startDateTime"], "2026-11-25T10:00:00Z");
    assert_eq!(activity["endDateTime"], "2026-11-25T10:03:48Z");
    assert_eq!(activity["talkDuration"], "PT3M38S");
    assert_eq!(activity["phoneNumber"], e164.as_str());
    // The demo tenant is Swiss: two-party consent, so the recording waits for the rep.
    assert_eq!(activity.get("recordingUrl"), None, "{activity}");
    assert_eq!(activity["recordingConsent"]["required"], true);
    assert!(activity["recordingConsent"]["jurisdiction"].is_string());
    assert_eq!(activity["recordingConsent"]["confirmed"], false);
    let field = match pop["kind"].as_str() {
        Some("contact") => "contact",
        Some("individual_customer") => "individualCustomer",
        _ => "account",
    };
    assert_eq!(
        activity[field]["id"], pop["id"],
        "filed under the popped record"
    );
    assert!(
        activity["participants"].as_array().is_some_and(|p| p
            .iter()
            .any(|p| p["role"] == "AGENT" && p["userId"] == ALICE)),
        "{activity}"
    );

    // The rep confirms the caller agreed: the link and who confirmed reach the same activity.
    ws.send_json(&json!({"type": "confirm_consent", "call_id": call}))
        .await
        .expect("send");
    let activity = stack
        .wait_activity(call, "with the recording", |a| {
            a["recordingUrl"] == "https://rec.example/log-1.wav"
        })
        .await
        .expect("updated, not duplicated");
    assert_eq!(activity["recordingConsent"]["confirmedBy"], ALICE);
    assert!(activity["recordingConsent"]["confirmedAt"].is_string());

    // Someone adds a note in V2; then the rep writes theirs after the call.
    let (status, _) = stack
        .v2(
            reqwest::Method::PATCH,
            &format!("phone-service/phoneCalls/{v2_id}"),
            Some(&json!({"notes": [{"content": "manager: call back Monday"}]})),
        )
        .await
        .expect("V2 edit");
    assert_eq!(status, 200);
    ws.send_json(&json!({"type": "save_wrap_up", "call_id": call,
        "notes": "wants a quote for 20 seats", "disposition": "Interested"}))
        .await
        .expect("send");
    let activity = stack
        .wait_activity(call, "with the rep's notes", |a| {
            a["disposition"] == "Interested"
        })
        .await
        .expect("updated, not duplicated");
    let notes: Vec<&str> = activity["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n["content"].as_str())
        .collect();
    assert_eq!(
        notes,
        ["wants a quote for 20 seats", "manager: call back Monday"]
    );

    // A disposition the tenant does not have is refused with a reason.
    ws.send_json(
        &json!({"type": "save_wrap_up", "call_id": call, "notes": "x",
        "disposition": "Bought a yacht"}),
    )
    .await
    .expect("send");
    let refused = ws
        .recv_until("an error", |m| m["type"] == "error")
        .await
        .expect("error");
    assert_eq!(refused["code"], "unknown_disposition", "{refused}");
}

#[tokio::test]
async fn a_one_party_jurisdiction_keeps_the_recording_without_asking() {
    let stack = Stack::start_with(|c| {
        quick_retries(c);
        c.tenants[0].recording_consent =
            Some(cti_relay::calls::consent::ConsentPolicy::parse("CH=one_party").expect("policy"));
    })
    .await
    .expect("stack");
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    let from = "+41 44 668 18 00";
    post_all(
        &stack,
        &[
            event(
                "o1",
                "onep-1",
                "ringing",
                from,
                "2026-11-25T10:00:00Z",
                json!({}),
            ),
            event(
                "o2",
                "onep-1",
                "ended",
                from,
                "2026-11-25T10:00:30Z",
                json!({"recording_url": "https://rec.example/onep-1.wav"}),
            ),
        ],
    )
    .await;
    let logged = activity_state(&mut ws, "onep-1", "logged").await;
    assert_eq!(logged["call"]["wrap_up"]["consent"]["required"], false);
    let activity = stack
        .wait_activity("onep-1", "written", |_| true)
        .await
        .expect("logged");
    assert_eq!(activity["recordingUrl"], "https://rec.example/onep-1.wav");
    assert_eq!(activity["recordingConsent"]["required"], false);
}

#[tokio::test]
async fn v2_failing_for_a_while_delays_activities_but_never_loses_or_doubles_them() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    stack
        .v2_fault(&json!({"status": 500, "count": 12}))
        .await
        .expect("fault");
    let calls: Vec<String> = (0..4).map(|i| format!("outage-{i}")).collect();
    for (i, call) in calls.iter().enumerate() {
        post_all(&stack, &missed_call(call, &format!("+41 79 555 10 0{i}"))).await;
    }
    // Then V2 throttles.
    stack
        .v2_fault(&json!({"status": 429, "count": 4}))
        .await
        .expect("fault");
    for call in &calls {
        let activity = stack
            .wait_activity(call, "written", |_| true)
            .await
            .expect("logged once");
        assert_eq!(activity["direction"], "MISSED");
    }
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("cti_activity_writes_total") && l.contains("outcome=\"retry\"")),
        "retries are counted:\n{metrics}"
    );
}

#[tokio::test]
async fn an_answer_lost_after_v2_created_the_activity_does_not_duplicate_it() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    stack
        .v2_fault(&json!({"status": 504, "count": 1, "after_write": true}))
        .await
        .expect("fault");
    post_all(&stack, &missed_call("lost-1", "+41 79 555 20 01")).await;
    stack
        .wait_activity("lost-1", "written", |_| true)
        .await
        .expect("logged");
    let fault: Value = stack
        .http
        .get(format!("{}/sim/faults", stack.sim.url()))
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("json");
    assert_eq!(fault["fault"], Value::Null, "the create's answer was lost");
    // Give the writer every chance to write it again, then count.
    let metrics = eventually("the writer to settle", || async {
        let m = stack.metrics().await.ok()?;
        m.contains("cti_activity_backlog{tenant=\"demo\"} 0")
            .then_some(m)
    })
    .await
    .expect("settled");
    assert!(metrics.contains("outcome=\"unchanged\""), "{metrics}");
    assert_eq!(stack.activities("lost-1").await.expect("list").len(), 1);
}

#[tokio::test]
async fn a_refused_activity_shows_v2s_reason_and_is_written_when_the_rep_retries() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    let from = "+41 79 555 30 01";
    let [ringing, ended] = <[String; 2]>::try_from(missed_call("refused-1", from)).expect("two");
    post_all(&stack, &[ringing]).await;
    stack
        .v2_fault(&json!({"status": 422, "count": 1}))
        .await
        .expect("fault");
    post_all(&stack, &[ended]).await;
    let failed = activity_state(&mut ws, "refused-1", "failed").await;
    let reason = failed["call"]["wrap_up"]["activity"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("422") && reason.contains("injected fault"),
        "{reason}"
    );
    assert!(
        stack
            .activities("refused-1")
            .await
            .expect("list")
            .is_empty()
    );
    ws.send_json(&json!({"type": "retry_activity", "call_id": "refused-1"}))
        .await
        .expect("send");
    activity_state(&mut ws, "refused-1", "logged").await;
    stack
        .wait_activity("refused-1", "written", |_| true)
        .await
        .expect("logged once");
}

#[tokio::test]
async fn reordered_and_repeated_provider_events_give_one_right_activity() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    let from = "+41 79 555 40 01";
    let call = "disorder-1";
    let ringing = event(
        "d1",
        call,
        "ringing",
        from,
        "2026-11-25T11:00:00Z",
        json!({}),
    );
    let answered = event(
        "d2",
        call,
        "answered",
        from,
        "2026-11-25T11:00:05Z",
        json!({}),
    );
    let ended = event("d3", call, "ended", from, "2026-11-25T11:01:00Z", json!({}));
    post_all(
        &stack,
        &[
            ended.clone(),
            ringing.clone(),
            ended,
            answered.clone(),
            ringing,
            answered,
        ],
    )
    .await;
    let activity = stack
        .wait_activity(call, "as a talked call", |a| a["direction"] == "INBOUND")
        .await
        .expect("one activity");
    assert_eq!(activity["talkDuration"], "PT55S");
}

#[tokio::test]
async fn with_redis_a_crashed_relay_carries_the_call_and_its_queued_activity_over() {
    let server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let mut stack = Stack::start_with(|c| {
        quick_retries(c);
        c.redis_url = Some(Secret::new(url.clone()));
        c.v2_timeout = Duration::from_secs(2);
    })
    .await
    .expect("stack");
    let from = "+41 79 555 50 01";

    // A call in flight when the relay crashes ends after the restart: logged once, as talked,
    // with the times from before the crash.
    post_all(
        &stack,
        &[
            event(
                "k1",
                "crash-1",
                "ringing",
                from,
                "2026-11-25T12:00:00Z",
                json!({}),
            ),
            event(
                "k2",
                "crash-1",
                "answered",
                from,
                "2026-11-25T12:00:04Z",
                json!({}),
            ),
        ],
    )
    .await;
    stack.crash_relay();
    stack.start_relay_again().await.expect("restarted");
    post_all(
        &stack,
        &[event(
            "k3",
            "crash-1",
            "ended",
            from,
            "2026-11-25T12:02:04Z",
            json!({}),
        )],
    )
    .await;
    let activity = stack
        .wait_activity("crash-1", "written", |_| true)
        .await
        .expect("logged once");
    assert_eq!(activity["direction"], "INBOUND");
    assert_eq!(activity["talkDuration"], "PT2M");

    // An activity queued while V2 is down survives a crash and is written by the next process.
    stack
        .v2_fault(&json!({"status": 503, "count": 100000}))
        .await
        .expect("fault");
    post_all(&stack, &missed_call("crash-2", from)).await;
    eventually("the writer to have tried", || async {
        let m = stack.metrics().await.ok()?;
        m.contains("outcome=\"retry\"").then_some(())
    })
    .await
    .expect("tried");
    stack.crash_relay();
    let cleared = stack
        .http
        .delete(format!("{}/sim/faults", stack.sim.url()))
        .send()
        .await
        .expect("sim");
    assert!(cleared.status().is_success());
    stack.start_relay_again().await.expect("restarted");
    stack
        .wait_activity("crash-2", "written", |_| true)
        .await
        .expect("logged once after the restart");
}

#[tokio::test]
async fn a_transferred_call_brings_its_context_comes_back_and_lists_both_reps() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let call = stack.place_call(&number, ALICE).await.expect("call");
    let ringing = alice
        .recv_until("alice's ringing", |m| {
            m["call"]["id"] == call.as_str() && m["call"]["state"] == "ringing"
        })
        .await
        .expect("ringing");
    let pop = ringing["call"]["pop"].clone();
    assert!(pop.is_object(), "{ringing}");
    let command = |action: &str| json!({"type": "command", "call_id": call, "action": action});
    alice.send_json(&command("answer")).await.expect("answer");
    alice
        .recv_until("alice connected", |m| {
            m["call"]["id"] == call.as_str() && m["call"]["state"] == "connected"
        })
        .await
        .expect("connected");
    alice
        .send_json(
            &json!({"type": "save_wrap_up", "call_id": call, "notes": "asks about the invoice"}),
        )
        .await
        .expect("notes");
    alice
        .recv_until("alice's notes saved", |m| {
            m["call"]["wrap_up"]["notes"] == "asks about the invoice"
        })
        .await
        .expect("saved");
    alice
        .send_json(
            &json!({"type": "command", "call_id": call, "action": "transfer", "target": BOB}),
        )
        .await
        .expect("transfer");
    let handed = bob
        .recv_until("bob's ringing", |m| {
            m["call"]["id"] == call.as_str() && m["call"]["state"] == "ringing"
        })
        .await
        .expect("bob rings");
    assert_eq!(handed["call"]["pop"]["id"], pop["id"], "the same record");
    assert_eq!(handed["call"]["handover"]["from"], ALICE);
    assert_eq!(
        handed["call"]["handover"]["notes"],
        "asks about the invoice"
    );
    bob.send_json(&command("answer")).await.expect("answer");
    bob.recv_until("bob connected", |m| {
        m["call"]["id"] == call.as_str() && m["call"]["state"] == "connected"
    })
    .await
    .expect("connected");
    bob.send_json(
        &json!({"type": "save_wrap_up", "call_id": call, "notes": "sent a corrected invoice"}),
    )
    .await
    .expect("notes");
    bob.recv_until("bob's notes saved", |m| {
        m["call"]["wrap_up"]["notes"] == "sent a corrected invoice"
    })
    .await
    .expect("saved");
    // Bob hands it back: the call rings for Alice again, with Bob's notes, as a new round.
    bob.send_json(
        &json!({"type": "command", "call_id": call, "action": "transfer", "target": ALICE}),
    )
    .await
    .expect("transfer back");
    let back = alice
        .recv_until("alice's second ringing", |m| {
            m["call"]["id"] == call.as_str() && m["call"]["state"] == "ringing"
        })
        .await
        .expect("alice rings again");
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
    alice.send_json(&command("answer")).await.expect("answer");
    alice
        .recv_until("alice connected again", |m| {
            m["call"]["id"] == call.as_str() && m["call"]["state"] == "connected"
        })
        .await
        .expect("connected");
    assert!(
        stack.activities(&call).await.expect("v2").is_empty(),
        "nothing is logged while the call goes on"
    );
    alice.send_json(&command("hangup")).await.expect("hangup");
    let activity = stack
        .wait_activity(&call, "written", |_| true)
        .await
        .expect("one activity");
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
    let notes = activity["notes"][0]["content"].as_str().unwrap_or_default();
    assert!(
        notes.contains("asks about the invoice") && notes.contains("sent a corrected invoice"),
        "{notes}"
    );
    activity_state(&mut alice, &call, "logged").await;
    activity_state(&mut bob, &call, "logged").await;
}

#[tokio::test]
async fn with_redis_gone_calls_still_pop_and_end_as_activities() {
    let mut server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let stack = Stack::start_with(|c| {
        quick_retries(c);
        c.redis_url = Some(Secret::new(url.clone()));
    })
    .await
    .expect("stack");
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    server.stop();
    post_all(&stack, &missed_call("outage-redis-1", "+41 79 555 60 01")).await;
    activity_state(&mut ws, "outage-redis-1", "logged").await;
    stack
        .wait_activity("outage-redis-1", "written", |_| true)
        .await
        .expect("logged once");
}

/// Waits for a call message on `ws` for `call` that satisfies `check`.
async fn call_where(
    ws: &mut WsClient,
    call: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    ws.recv_until(what, |m| {
        m["type"] == "call" && m["call"]["id"] == call && check(&m["call"])
    })
    .await
    .expect(what)
}

#[tokio::test]
async fn a_consult_transfer_rings_the_colleague_then_hands_the_call_over_or_takes_it_back() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    let (mut bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let command =
        |call: &str, action: &str| json!({"type": "command", "call_id": call, "action": action});
    let consult = |call: &str| json!({"type": "command", "call_id": call, "action": "consult", "target": BOB});

    // Consult, the colleague answers, the transfer completes.
    let call = stack.place_call(&number, ALICE).await.expect("call");
    call_where(&mut alice, &call, "alice rings", |c| {
        c["state"] == "ringing"
    })
    .await;
    alice
        .send_json(&command(&call, "answer"))
        .await
        .expect("send");
    call_where(&mut alice, &call, "alice talks", |c| {
        c["state"] == "connected"
    })
    .await;
    alice.send_json(&consult(&call)).await.expect("send");
    call_where(&mut alice, &call, "alice consults, caller held", |c| {
        c["state"] == "held" && c["consult"]["agent"] == BOB && c["consult"]["state"] == "ringing"
    })
    .await;
    let rung = call_where(&mut bob, &call, "bob is consulted", |c| {
        c["state"] == "ringing"
    })
    .await;
    assert_eq!(rung["call"]["handover"]["from"], ALICE);
    bob.send_json(&command(&call, "answer"))
        .await
        .expect("send");
    call_where(&mut alice, &call, "alice sees bob on the line", |c| {
        c["consult"]["state"] == "connected"
    })
    .await;
    alice
        .send_json(&command(&call, "complete_transfer"))
        .await
        .expect("send");
    call_where(&mut alice, &call, "alice handed over", |c| {
        c["state"] == "transferred"
    })
    .await;
    bob.send_json(&command(&call, "hangup"))
        .await
        .expect("send");
    let activity = stack
        .wait_activity(&call, "written", |_| true)
        .await
        .expect("one activity");
    assert_eq!(agents_on(&activity), [ALICE, BOB]);

    // Consult, then back to the caller: the colleague drops off, the call goes on with alice
    // and ends as one activity that she owns.
    let call = stack.place_call(&number, ALICE).await.expect("call");
    call_where(&mut alice, &call, "alice rings", |c| {
        c["state"] == "ringing"
    })
    .await;
    alice
        .send_json(&command(&call, "answer"))
        .await
        .expect("send");
    call_where(&mut alice, &call, "alice talks", |c| {
        c["state"] == "connected"
    })
    .await;
    alice.send_json(&consult(&call)).await.expect("send");
    call_where(&mut bob, &call, "bob is consulted", |c| {
        c["state"] == "ringing"
    })
    .await;
    bob.send_json(&command(&call, "answer"))
        .await
        .expect("send");
    call_where(&mut alice, &call, "bob on the line", |c| {
        c["consult"]["state"] == "connected"
    })
    .await;
    alice
        .send_json(&command(&call, "cancel_consult"))
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
        .send_json(&command(&call, "hangup"))
        .await
        .expect("send");
    let activity = stack
        .wait_activity(&call, "written", |_| true)
        .await
        .expect("one activity");
    assert_eq!(activity["direction"], "INBOUND");
}

#[tokio::test]
async fn through_a_btp_destination_activities_are_written_as_the_rep() {
    let mut stack = Stack::start_with(quick_retries).await.expect("stack");
    stack
        .use_btp_destination(|_| {})
        .await
        .expect("relay with the destination binding");

    // Alice has her widget open: her call is written with her identity.
    let (mut alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    post_all(&stack, &missed_call("dest-1", "+41 79 555 70 01")).await;
    activity_state(&mut alice, "dest-1", "logged").await;
    let activity = stack
        .wait_activity("dest-1", "written", |_| true)
        .await
        .expect("logged");
    assert_eq!(activity["adminData"]["createdBy"], ALICE);

    // Bob's call ends while he has no widget open: it waits, says why, and is written as him
    // once he signs in.
    let bob_call: Vec<String> = missed_call("dest-2", "+41 79 555 70 02")
        .into_iter()
        .map(|e| e.replace(ALICE, BOB))
        .collect();
    post_all(&stack, &bob_call).await;
    let pending = activity_waits(&stack, "dest-2", BOB, "sign-in").await;
    assert!(pending.contains(BOB), "{pending}");
    assert!(stack.activities("dest-2").await.expect("list").is_empty());
    let (_bob, _) = WsClient::signed_in(&stack, BOB, None).await.expect("bob");
    let activity = stack
        .wait_activity("dest-2", "written", |_| true)
        .await
        .expect("logged once bob signed in");
    assert_eq!(activity["adminData"]["createdBy"], BOB);
}

#[tokio::test]
async fn with_redis_another_instance_writes_as_the_rep_who_signed_in_elsewhere() {
    let server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let mut stack = Stack::start_with(|c| {
        quick_retries(c);
        c.redis_url = Some(Secret::new(url.clone()));
    })
    .await
    .expect("stack");
    stack
        .use_btp_destination(|c| c.token_key = Some(test_token_key()))
        .await
        .expect("relay with the destination binding and a token key");
    assert!(stack.relay.state.user_tokens.is_shared());

    // Alice opens her widget on this instance, then it is gone (restarted, scaled in).
    let (alice, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("alice");
    drop(alice);
    stack.stop_relay().await;
    stack.start_relay_again().await.expect("another instance");

    // Her call ends there while her widget is closed: written as her all the same.
    post_all(&stack, &missed_call("shared-1", "+41 79 555 90 01")).await;
    let activity = stack
        .wait_activity("shared-1", "written", |_| true)
        .await
        .expect("logged");
    assert_eq!(activity["adminData"]["createdBy"], ALICE);
}

/// The location a redirect points to.
fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn with_the_reps_own_sign_in_activities_are_written_as_them_and_tokens_renew() {
    let mut stack = Stack::start_with(quick_retries).await.expect("stack");
    let sim = stack.sim.url();
    stack
        .use_own_v2_sign_in()
        .await
        .expect("relay in oauth2 mode");
    // Her widget is told that V2 does not have her sign-in yet.
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    let status = ws
        .recv_until("the V2 sign-in status", |m| m["type"] == "v2_sign_in")
        .await
        .expect("status");
    assert_eq!(status["connected"], false);

    // Before Alice connects V2, her call's activity waits and says why.
    post_all(&stack, &missed_call("oauth-1", "+41 79 555 80 01")).await;
    activity_waits(&stack, "oauth-1", ALICE, "has not connected V2").await;

    // The widget posts her token into a new window; the relay sends it to the identity provider
    // with a PKCE challenge, which signs her in and returns to the relay with a code.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let start = browser
        .post(format!("{}/v1/agent/v2-connect", stack.relay.url()))
        .form(&[("token", stack.token(ALICE))])
        .send()
        .await
        .expect("relay");
    assert_eq!(start.status(), 303);
    let authorize = location(&start);
    assert!(
        authorize.starts_with(&format!("{sim}/sim/ias/oauth2/authorize"))
            && authorize.contains("code_challenge_method=S256")
            && authorize.contains("login_hint=alice%40example.com"),
        "{authorize}"
    );
    let back = browser.get(&authorize).send().await.expect("ias");
    assert_eq!(back.status(), 303);
    let callback = location(&back);
    assert!(
        callback.contains("/v1/agent/v2-callback?code="),
        "{callback}"
    );
    // A forged state is refused.
    let forged = browser
        .get(format!(
            "{}/v1/agent/v2-callback?code=x&state=Zm9yZ2Vk",
            stack.relay.url()
        ))
        .send()
        .await
        .expect("relay");
    assert_eq!(forged.status(), 400);
    let done = browser.get(&callback).send().await.expect("relay");
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .expect("page")
            .contains("V2 is connected for alice@example.com")
    );
    // Her widget learns it without reconnecting.
    let status = ws
        .recv_until("the V2 sign-in status", |m| m["type"] == "v2_sign_in")
        .await
        .expect("status");
    assert_eq!(status["connected"], true);

    let activity = stack
        .wait_activity("oauth-1", "written as alice", |_| true)
        .await
        .expect("logged");
    assert_eq!(activity["adminData"]["createdBy"], ALICE);

    // Her refresh token is sealed at rest; short-lived access tokens are renewed with it.
    let sealed = stack
        .relay
        .state
        .vault
        .get("demo", ALICE)
        .await
        .expect("vault")
        .expect("kept");
    assert!(!String::from_utf8_lossy(&sealed).contains("iasrt-"));
    stack.sim.sim.ias.set_access_ttl(30);
    let before = stack.sim.sim.ias.refreshes();
    stack
        .relay
        .state
        .access_tokens
        .lock()
        .expect("lock")
        .clear();
    post_all(&stack, &missed_call("oauth-2", "+41 79 555 80 02")).await;
    let activity = stack
        .wait_activity("oauth-2", "written", |_| true)
        .await
        .expect("logged");
    assert_eq!(activity["adminData"]["createdBy"], ALICE);
    assert!(
        stack.sim.sim.ias.refreshes() > before,
        "renewed with the refresh token"
    );

    // Revoked at the identity provider: the next activity waits for her to connect again.
    stack.sim.sim.ias.revoke(ALICE);
    stack
        .relay
        .state
        .access_tokens
        .lock()
        .expect("lock")
        .clear();
    post_all(&stack, &missed_call("oauth-3", "+41 79 555 80 03")).await;
    activity_waits(&stack, "oauth-3", ALICE, "has not connected V2").await;
}
