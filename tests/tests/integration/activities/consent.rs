//! Where the tenant's consent policy lets one party consent, the recording link is written with
//! the activity at once, with nobody asked.

use cti_tests::{Stack, WsClient};
use serde_json::json;

use super::{ALICE, activity_state, event, post_all, quick_retries};

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
    assert_eq!(
        cti_tests::summary_line(&activity, "Recording: "),
        Some("https://rec.example/onep-1.wav")
    );
    assert!(
        !cti_tests::summary_of(&activity).contains("Recording consent"),
        "nobody had to consent: {activity}"
    );
}
