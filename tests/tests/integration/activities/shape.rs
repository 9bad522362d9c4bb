//! What the activity looks like in V2: V2's own phone call (created by Agent Desktop from the
//! widget's payload) gets the call in its `transcript`, in one PATCH; a call V2 never saw is
//! created once; a tenant's mapped fields land where it mapped them; a field V2 refuses is named
//! on the rep's line.

use std::collections::BTreeMap;

use cti_protocol::host::external_reference;
use cti_tests::{Stack, WsClient, eventually, summary_line, summary_of};
use serde_json::{Value, json};

use super::{ALICE, activity_state, event, missed_call, post_all, quick_retries};

/// A call Alice talks on for 55 seconds.
fn talked_call(call: &str, from: &str) -> Vec<String> {
    vec![
        event(
            &format!("{call}-r"),
            call,
            "ringing",
            from,
            "2026-11-25T11:00:00Z",
            json!({}),
        ),
        event(
            &format!("{call}-a"),
            call,
            "answered",
            from,
            "2026-11-25T11:00:05Z",
            json!({}),
        ),
        event(
            &format!("{call}-e"),
            call,
            "ended",
            from,
            "2026-11-25T11:01:00Z",
            json!({"reason": "completed"}),
        ),
    ]
}

/// Until the writer has nothing left to do.
async fn settled(stack: &Stack) {
    eventually("the writer to settle", || async {
        let m = stack.metrics().await.ok()?;
        m.contains("cti_activity_backlog{tenant=\"demo\"} 0")
            .then_some(())
    })
    .await
    .expect("settled");
}

/// The phone-call writes V2 carried out on record `id`, as (method, body).
fn writes_to(stack: &Stack, id: &str) -> Vec<(&'static str, Value)> {
    stack
        .sim
        .sim
        .v2
        .phone_call_writes()
        .into_iter()
        .filter(|w| w.id == id)
        .map(|w| (w.method, w.body))
        .collect()
}

fn keys(body: &Value) -> Vec<&str> {
    body.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_unmapped_tenants_activity_is_one_patch_of_v2s_own_phone_call() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    // Held to the ETag form V2 documents: the quoted `adminData.updatedOn`.
    stack.sim.sim.v2.strict_if_match(true);
    // A provider id V2 cannot take as it is: the widget sent (and V2 stored) its mapping.
    let call = "shape-own-call-with-an-id-longer-than-v2-takes";
    let own = stack
        .sim
        .sim
        .v2
        .agent_desktop_call(&external_reference(call));
    post_all(&stack, &talked_call(call, "+41 79 555 60 01")).await;
    let activity = stack
        .wait_activity(call, "written", |a| !summary_of(a).is_empty())
        .await
        .expect("one activity");
    settled(&stack).await;
    assert_eq!(activity["id"], own.as_str(), "V2's own record");
    assert_eq!(summary_line(&activity, "Outcome: "), Some("completed"));
    let writes = writes_to(&stack, &own);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].0, "PATCH");
    assert_eq!(keys(&writes[0].1), ["transcript"]);
    let all = stack.sim.sim.v2.phone_call_writes();
    let patch = all.iter().find(|w| w.id == own).expect("the PATCH");
    assert_eq!(
        patch.content_type, "application/json",
        "as integrations send it"
    );
    assert!(all.iter().all(|w| w.method != "POST"), "{all:?}");
}

#[tokio::test]
async fn a_missed_call_v2_never_saw_is_created_once_inbound_with_its_outcome() {
    let stack = Stack::start_with(quick_retries).await.expect("stack");
    let call = "shapemissed1";
    post_all(&stack, &missed_call(call, "+41 79 555 60 02")).await;
    let activity = stack
        .wait_activity(call, "written", |_| true)
        .await
        .expect("one activity");
    settled(&stack).await;
    let id = activity["id"].as_str().expect("id");
    let writes = writes_to(&stack, id);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].0, "POST");
    assert_eq!(keys(&writes[0].1), ["externalId", "transcript"]);
    assert_eq!(writes[0].1["externalId"]["displayId"], call);
    assert!(
        summary_of(&activity).contains("Inbound call from"),
        "{activity}"
    );
    assert_eq!(summary_line(&activity, "Outcome: "), Some("missed"));
}

#[tokio::test]
async fn a_mapped_tenants_extra_fields_land_under_its_paths() {
    let stack = Stack::start_with(|c| {
        quick_retries(c);
        c.tenants[0].activity_fields = BTreeMap::from([
            ("direction".into(), "extensions/CtiDirection".into()),
            ("outcome".into(), "extensions/CtiOutcome".into()),
            ("talk_duration".into(), "extensions/CtiTalkTime".into()),
        ]);
    })
    .await
    .expect("stack");
    let call = "shapemapped1";
    let own = stack.sim.sim.v2.agent_desktop_call(call);
    post_all(&stack, &talked_call(call, "+41 79 555 60 03")).await;
    let activity = stack
        .wait_activity(call, "with the mapped fields", |a| {
            !a["extensions"].is_null()
        })
        .await
        .expect("one activity");
    assert_eq!(activity["id"], own.as_str());
    assert_eq!(
        activity["extensions"],
        json!({"CtiDirection": "INBOUND", "CtiOutcome": "COMPLETED", "CtiTalkTime": "PT55S"})
    );
    assert_eq!(activity.get("direction"), None, "{activity}");
    // A missed call under the same mapping is inbound, its outcome missed.
    post_all(&stack, &missed_call("shapemapped2", "+41 79 555 60 04")).await;
    let missed = stack
        .wait_activity("shapemapped2", "written", |_| true)
        .await
        .expect("one activity");
    assert_eq!(missed["extensions"]["CtiDirection"], "INBOUND");
    assert_eq!(missed["extensions"]["CtiOutcome"], "MISSED");
}

#[tokio::test]
async fn a_field_v2_refuses_is_named_on_the_reps_line() {
    // A tenant that maps a value to a top-level field V2's phone call does not have.
    let stack = Stack::start_with(|c| {
        quick_retries(c);
        c.tenants[0].activity_fields =
            BTreeMap::from([("direction".into(), "callDirection".into())]);
    })
    .await
    .expect("stack");
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    let call = "shaperefused1";
    stack.sim.sim.v2.agent_desktop_call(call);
    post_all(&stack, &missed_call(call, "+41 79 555 60 05")).await;
    let failed = activity_state(&mut ws, call, "failed").await;
    let reason = failed["call"]["wrap_up"]["activity"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("refused the field callDirection") && reason.contains("400"),
        "{reason}"
    );
}
