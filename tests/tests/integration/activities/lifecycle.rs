//! A talked call, end to end: logged once with its direction, times, number, record and rep; the
//! recording link held back until the rep confirms consent; V2's own notes and the rep's later
//! notes and disposition landing on the same activity; an unknown disposition refused.

use cti_tests::{Stack, WsClient};
use serde_json::json;

use super::{ALICE, activity_state, event, post_all, quick_retries};

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
