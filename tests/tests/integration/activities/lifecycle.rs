//! A talked call, end to end: logged once in its transcript with its direction, times, number,
//! record and rep; the recording link held back until the rep confirms consent; text others add
//! in V2 (also while the relay writes) kept around the rep's later notes and disposition on the
//! same activity; an unknown disposition refused.

use cti_relay::v2::phone_call::SUMMARY_START;
use cti_tests::{Stack, WsClient, agents_on, notes_in, summary_line, summary_of};
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
    let summary = summary_of(&activity);
    assert!(
        summary.contains(&format!("Inbound call from {e164} to ")),
        "{summary}"
    );
    assert_eq!(
        summary_line(&activity, "Started: "),
        Some(cti_tests::recent("2026-11-25T10:00:00Z").as_str())
    );
    assert_eq!(
        summary_line(&activity, "Ended: "),
        Some(
            format!(
                "{} (talk time 3m 38s)",
                cti_tests::recent("2026-11-25T10:03:48Z")
            )
            .as_str()
        )
    );
    assert_eq!(agents_on(&activity), [ALICE]);
    // The demo tenant is Swiss: two-party consent, so the recording waits for the rep.
    assert_eq!(summary_line(&activity, "Recording: "), None, "{summary}");
    assert!(
        summary_line(&activity, "Recording consent (")
            .is_some_and(|l| l.ends_with("not confirmed")),
        "{summary}"
    );
    let kind = match pop["kind"].as_str() {
        Some("contact") => "contact",
        Some("individual_customer") => "individual customer",
        _ => "account",
    };
    assert_eq!(
        summary_line(&activity, "Filed under "),
        Some(format!("{kind} {}", pop["id"].as_str().expect("id")).as_str()),
        "filed under the popped record"
    );
    // Nothing V2 has no published field for goes out unmapped.
    let keys: Vec<&String> = activity.as_object().expect("record").keys().collect();
    for guess in [
        "direction",
        "notes",
        "participants",
        "recordingUrl",
        "talkDuration",
    ] {
        assert!(!keys.iter().any(|k| *k == guess), "{guess} in {activity}");
    }

    // The rep confirms the caller agreed: the link and who confirmed reach the same activity.
    ws.send_json(&json!({"type": "confirm_consent", "call_id": call}))
        .await
        .expect("send");
    let activity = stack
        .wait_activity(call, "with the recording", |a| {
            summary_line(a, "Recording: ") == Some("https://rec.example/log-1.wav")
        })
        .await
        .expect("updated, not duplicated");
    assert!(
        summary_line(&activity, "Recording consent (")
            .is_some_and(|l| l.contains(&format!("confirmed by {ALICE} at "))),
        "{activity}"
    );

    // Someone adds to the transcript in V2, before and after the relay's part; then, while the
    // relay holds what it read, someone else adds more (its PATCH meets a 412); then the rep
    // writes notes after the call. Everyone's text stays, the relay's part is replaced.
    let current = activity["transcript"].as_str().expect("transcript");
    let (status, _) = stack
        .v2(
            reqwest::Method::PATCH,
            &format!("phone-service/phoneCalls/{v2_id}"),
            Some(&json!({"transcript":
                format!("agent desktop: caller verified\n{current}\nmanager: call back Monday")})),
        )
        .await
        .expect("V2 edit");
    assert_eq!(status, 200);
    stack
        .sim
        .sim
        .v2
        .edit_phone_call_after_next_read(&v2_id, "\nteam lead: offer 10%");
    ws.send_json(&json!({"type": "save_wrap_up", "call_id": call,
        "notes": "wants a quote for 20 seats", "disposition": "Interested"}))
        .await
        .expect("send");
    let activity = stack
        .wait_activity(call, "with the rep's notes", |a| {
            summary_line(a, "Disposition: ") == Some("Interested")
        })
        .await
        .expect("updated, not duplicated");
    assert_eq!(
        notes_in(&activity).as_deref(),
        Some("wants a quote for 20 seats")
    );
    let text = activity["transcript"].as_str().expect("transcript");
    assert!(
        text.starts_with("agent desktop: caller verified\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\nmanager: call back Monday\nteam lead: offer 10%"),
        "{text}"
    );
    assert_eq!(text.matches(SUMMARY_START).count(), 1, "{text}");

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
