//! The push load generator of `cargo xtask bench push`, run small: a relay process, a few reps,
//! a few ringing calls. No timing is asserted, only that the generator and the relay agree on
//! what happened: every call reached its rep exactly once.

use anyhow::Result;
use cti_tests::push_load::{self, PushLoad};

#[tokio::test(flavor = "multi_thread")]
async fn every_call_of_a_small_push_load_reaches_its_rep_exactly_once() -> Result<()> {
    let load = PushLoad {
        agents: 3,
        rate: 20.0,
        secs: 0.5,
        redis: false,
        instances: 1,
    };
    let report = push_load::run(&load).await?;
    assert_eq!(report.posted, load.calls(), "{report}");
    assert_eq!(report.refused, 0, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(report.duplicated, 0, "{report}");
    assert_eq!(report.misdelivered, 0, "{report}");
    assert_eq!(report.latencies.len(), load.calls(), "{report}");
    let relay = &report.instances[0];
    assert_eq!(relay.reps, 3);
    assert!(relay.rss_connected_kib > 0, "{report}");
    Ok(())
}

/// `/metrics` counts the signed-in widget sessions and, per call frame a telephony event caused,
/// the time from receiving the event to writing the frame to the widget's socket.
#[tokio::test]
async fn metrics_count_sessions_and_time_each_push_to_the_socket() -> Result<()> {
    let stack = cti_tests::Stack::start().await?;
    let sample = |metrics: &str, name: &str| -> Option<f64> {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
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
        "agent": "alice@example.com", "at": "2026-11-25T10:00:00Z",
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
