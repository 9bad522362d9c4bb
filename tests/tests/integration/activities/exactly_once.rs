//! Exactly one activity per call whatever V2 and the provider do: V2 failing and throttling for a
//! while, V2 creating the activity but its answer getting lost, V2 refusing it until the rep
//! retries, and provider events arriving out of order and more than once.

use cti_tests::{Stack, WsClient, eventually, summary_line, summary_of};
use serde_json::{Value, json};

use super::{ALICE, activity_state, event, missed_call, post_all, quick_retries};

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
        // V2 has no MISSED direction: a missed call is inbound, its outcome missed.
        assert!(summary_of(&activity).contains("Inbound call"), "{activity}");
        assert_eq!(summary_line(&activity, "Outcome: "), Some("missed"));
        assert_eq!(activity.get("direction"), None, "{activity}");
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
        .wait_activity(call, "as a talked call", |a| {
            summary_line(a, "Outcome: ") == Some("completed")
        })
        .await
        .expect("one activity");
    assert!(
        summary_of(&activity).contains("(talk time 55s)"),
        "{activity}"
    );
}
