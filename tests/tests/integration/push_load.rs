//! The push load generator of `cargo xtask bench push`, run small: a relay process, a few reps,
//! a few ringing calls. No timing is asserted, only that the generator and the relay agree on
//! what happened: every call reached its rep exactly once.

use anyhow::Result;
use cti_tests::push_load::{self, PushLoad, PushReport};

/// Every call posted was taken and reached its rep's socket once, and no one else's.
fn assert_exactly_once(load: &PushLoad, report: &PushReport) {
    assert_eq!(report.posted, load.calls(), "{report}");
    assert_eq!(report.refused, 0, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(report.duplicated, 0, "{report}");
    assert_eq!(report.misdelivered, 0, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_of_a_small_push_load_reaches_its_rep_exactly_once() -> Result<()> {
    let load = PushLoad {
        agents: 3,
        rate: 20.0,
        secs: 0.5,
        redis: false,
        instances: 1,
        spread: false,
    };
    let report = push_load::run(&load).await?;
    assert_exactly_once(&load, &report);
    assert_eq!(report.latencies.len(), load.calls(), "{report}");
    let relay = &report.instances[0];
    assert_eq!(relay.reps, 3);
    assert!(relay.rss_connected_kib > 0, "{report}");
    Ok(())
}

/// The connection limits: a relay process holds 10,000 signed-in widget sessions at once (it
/// raises its own open-file limit to the hard limit, and logs where it cannot), each still gets its
/// calls exactly once, and `/metrics` counts every session and times every push. The latencies
/// are not looked at: a debug build on a shared machine says nothing about them
/// (`cargo xtask bench push` measures them).
#[tokio::test(flavor = "multi_thread")]
async fn a_relay_holds_ten_thousand_connected_reps() -> Result<()> {
    let load = PushLoad {
        agents: 10_000,
        rate: 100.0,
        secs: 1.0,
        redis: false,
        instances: 1,
        spread: false,
    };
    let report = push_load::run(&load).await?;
    assert_exactly_once(&load, &report);
    let relay = &report.instances[0];
    assert_eq!(relay.reps, 10_000, "{report}");
    assert_eq!(relay.metrics_connections, Some(10_000.0), "{report}");
    // Every call's first frame was caused by its webhook; later frames of a call (its caller's
    // details found) may not have been.
    let pushes = relay.metrics_pushes.unwrap_or(0.0);
    assert!(
        pushes >= report.posted as f64 && pushes <= report.frames as f64,
        "{report}"
    );
    Ok(())
}

/// `/metrics` counts the signed-in widget sessions and, per call frame a telephony event caused,
/// the time from receiving the event to writing the frame to the widget's socket.
#[tokio::test]
async fn metrics_count_sessions_and_time_each_push_to_the_socket() -> Result<()> {
    let stack = cti_tests::Stack::start().await?;
    let sample = push_load::sample;
    let (mut widget, _) = cti_tests::WsClient::signed_in(&stack, "alice@example.com", None).await?;
    let metrics = stack.metrics().await?;
    assert_eq!(
        sample(&metrics, "cti_ws_connections"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "cti_push_seconds_count"),
        Some(0.0),
        "{metrics}"
    );

    let ringing = serde_json::json!({
        "id": "metrics-1-ringing", "call_id": "metrics-1", "type": "ringing",
        "direction": "inbound", "from": "+41795550199", "to": "+41449990000",
        "agent": "alice@example.com", "at": cti_tests::now_rfc3339(),
    });
    assert_eq!(stack.post_event(&ringing.to_string()).await?, 202);
    widget
        .recv_call("metrics-1", "the ringing call", |c| c["state"] == "ringing")
        .await?;
    // The relay observes the push once its write returned, which may be after the widget read it.
    cti_tests::eventually("the push to be timed", || async {
        let metrics = stack.metrics().await.ok()?;
        (sample(&metrics, "cti_push_seconds_count")? >= 1.0).then_some(())
    })
    .await?;

    drop(widget);
    cti_tests::eventually("the session to be counted out", || async {
        let metrics = stack.metrics().await.ok()?;
        (sample(&metrics, "cti_ws_connections")? == 0.0).then_some(())
    })
    .await?;
    Ok(())
}
