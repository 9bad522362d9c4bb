//! What the relay acknowledged stays acknowledged: an activity queued while V2 is down outlives a
//! restart of a relay without Redis (its journal on disk) and is written before a stopping relay
//! exits where V2 lets it; one queued in memory during a Redis outage moves to Redis when Redis is
//! back; and an instance whose lease on an activity ran out cannot overwrite what the instance that
//! took it over recorded. A call that ended during a Redis outage is over once Redis is back.

use std::time::Duration;

use cti_relay::activity::RedisOutbox;
use cti_relay::activity::outbox::{Next, Outbox};
use cti_relay::secret::Secret;
use cti_tests::proxy::FaultyProxy;
use cti_tests::redis::RedisServer;
use cti_tests::{Stack, WsClient, eventually};
use serde_json::json;

const ALICE: &str = "alice@example.com";

/// A call to Alice nobody answered: its ring and its end, as the generic PBX posts them.
fn missed_call(call: &str) -> Vec<String> {
    ["ringing", "ended"]
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            json!({"id": format!("{call}-{i}"), "call_id": call, "type": kind,
                "direction": "inbound", "from": "+41 79 555 70 01", "to": "+41 44 999 00 00",
                "agent": ALICE, "at": cti_tests::recent(&format!("2026-11-25T09:00:{:02}Z", i * 20))})
            .to_string()
        })
        .collect()
}

/// Posts the events; the relay must take each (202).
async fn post_all(stack: &Stack, events: &[String]) {
    for body in events {
        let status = stack.post_event(body).await.expect("relay answers");
        assert_eq!(status, 202, "{body}");
    }
}

fn quick_retries(c: &mut cti_relay::Config) {
    c.activity_retry_base = Duration::from_millis(20);
    c.activity_retry_max = Duration::from_millis(300);
}

/// Until the writer tried V2 and was told to come back later.
async fn writer_retried(stack: &Stack) {
    eventually("the writer to have tried V2", || async {
        let m = stack.metrics().await.ok()?;
        m.contains("outcome=\"retry\"").then_some(())
    })
    .await
    .expect("tried");
}

async fn clear_v2_faults(stack: &Stack) {
    let cleared = stack
        .http
        .delete(format!("{}/sim/faults", stack.sim.url()))
        .send()
        .await
        .expect("sim");
    assert!(cleared.status().is_success());
}

/// A directory of its own under the system's temporary one, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cti-outbox-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn without_redis_the_journal_carries_an_acknowledged_activity_over_a_crash_and_a_restart() {
    let dir = TempDir::new();
    let path = dir.0.clone();
    let mut stack = Stack::start_with(|c| {
        quick_retries(c);
        c.outbox_dir = Some(path);
    })
    .await
    .expect("stack");
    stack
        .v2_fault(&json!({"status": 503, "count": 100000}))
        .await
        .expect("fault");

    // Acknowledged while V2 is down, then the process dies.
    post_all(&stack, &missed_call("journal-1")).await;
    writer_retried(&stack).await;
    stack.crash_relay();
    clear_v2_faults(&stack).await;
    stack.start_relay_again().await.expect("restarted");
    stack
        .wait_activity("journal-1", "written after the crash", |_| true)
        .await
        .expect("logged once");

    // Acknowledged while V2 is down, then the relay is stopped (SIGTERM) and started again.
    stack
        .v2_fault(&json!({"status": 503, "count": 100000}))
        .await
        .expect("fault");
    post_all(&stack, &missed_call("journal-2")).await;
    writer_retried(&stack).await;
    stack.stop_relay().await;
    clear_v2_faults(&stack).await;
    stack.start_relay_again().await.expect("restarted");
    stack
        .wait_activity("journal-2", "written after the restart", |_| true)
        .await
        .expect("logged once");
    eventually("the writer to settle", || async {
        let m = stack.metrics().await.ok()?;
        m.contains("cti_activity_backlog{tenant=\"demo\"} 0")
            .then_some(())
    })
    .await
    .expect("settled");
    for call in ["journal-1", "journal-2"] {
        assert_eq!(
            stack.activities(call).await.expect("list").len(),
            1,
            "{call}"
        );
    }
}

#[tokio::test]
async fn a_stopping_relay_writes_the_activities_still_waiting_before_it_exits() {
    // Memory only, and a back-off long enough that only the drain can write it in time.
    let mut stack = Stack::start_with(|c| {
        c.activity_retry_base = Duration::from_secs(600);
        c.activity_retry_max = Duration::from_secs(600);
    })
    .await
    .expect("stack");
    stack
        .v2_fault(&json!({"status": 503, "count": 100000}))
        .await
        .expect("fault");
    post_all(&stack, &missed_call("drain-1")).await;
    writer_retried(&stack).await;
    clear_v2_faults(&stack).await;
    assert!(stack.activities("drain-1").await.expect("list").is_empty());

    stack.stop_relay().await;
    assert_eq!(
        stack.activities("drain-1").await.expect("list").len(),
        1,
        "written while stopping"
    );
}

#[tokio::test]
async fn an_activity_queued_in_memory_during_a_redis_outage_moves_to_redis_when_it_returns() {
    let mut server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let mut stack = Stack::start_with(|c| {
        quick_retries(c);
        c.redis_url = Some(Secret::new(url.clone()));
    })
    .await
    .expect("stack");
    stack
        .v2_fault(&json!({"status": 503, "count": 100000}))
        .await
        .expect("fault");

    server.stop();
    post_all(&stack, &missed_call("stranded-1")).await;
    writer_retried(&stack).await;
    server.restart().await.expect("redis-server is back");

    let probe = RedisOutbox::connect(&url, "probe").await.expect("redis");
    eventually("the activity to be queued in Redis", || async {
        probe.get("demo", "stranded-1").await.ok()?.map(|_| ())
    })
    .await
    .expect("moved to Redis");
    stack.crash_relay();
    clear_v2_faults(&stack).await;
    stack.start_relay_again().await.expect("another instance");
    stack
        .wait_activity("stranded-1", "written by the next instance", |_| true)
        .await
        .expect("logged once");
}

#[tokio::test]
async fn a_give_back_after_the_lease_ran_out_leaves_the_new_holders_entry_alone() {
    let server = RedisServer::start().await.expect("redis-server");
    let a = RedisOutbox::connect(&server.url(), "instance-a")
        .await
        .expect("redis");
    let b = RedisOutbox::connect(&server.url(), "instance-b")
        .await
        .expect("redis");
    let log = cti_relay::calls::log::CallLog {
        call_id: "lease-1".into(),
        direction: cti_relay::calls::log::LogDirection::Inbound,
        outcome: cti_protocol::event::EndReason::Completed,
        started_at: "2026-11-25T10:00:00Z".into(),
        answered_at: None,
        ended_at: "2026-11-25T10:01:00Z".into(),
        talk_secs: 0,
        total_secs: 60,
        from: "+41441234567".into(),
        to: "+41449990000".into(),
        remote: "+41441234567".into(),
        reps: vec![ALICE.into()],
        owner: ALICE.into(),
        record: None,
        notes: String::new(),
        disposition: None,
        recording_url: None,
        consent: None,
        from_mid_call: false,
    };
    a.put("t", &log, 1_000).await.expect("put");
    let mut slow = a.claim_due("t", 1_000, 1, 10).await.expect("claim");
    assert_eq!(slow.len(), 1);
    let mut slow = slow.remove(0);
    let current = eventually("B to claim the entry once A's lease ran out", || async {
        let mut claimed = b.claim_due("t", 1_000, 60_000, 10).await.ok()?;
        (!claimed.is_empty()).then(|| claimed.remove(0))
    })
    .await
    .expect("claimed by B");

    slow.progress.v2_id = Some("pc-from-a".into());
    slow.progress.written_version = slow.version;
    assert!(
        !a.finish("t", &slow, Next::Done, 2_000)
            .await
            .expect("finish"),
        "A no longer holds the entry"
    );
    let entry = a.get("t", "lease-1").await.expect("get").expect("entry");
    assert_eq!(entry.progress, Default::default(), "progress unchanged");
    assert!(entry.due, "still due, B's to finish");
    assert!(
        b.claim_due("t", 1_000, 60_000, 10)
            .await
            .expect("claim")
            .is_empty(),
        "the lease is still B's"
    );
    assert!(
        b.finish("t", &current, Next::RetryAt(5_000), 2_000)
            .await
            .expect("finish"),
        "B's give-back counts"
    );
}

#[tokio::test]
async fn a_call_that_ended_during_a_redis_outage_is_over_after_it_and_takes_the_notes() {
    // Redis keeps its data through the outage: the relay reaches it through a proxy that cuts it.
    let server = RedisServer::start().await.expect("redis-server");
    let proxy = FaultyProxy::start(([127, 0, 0, 1], server.port).into())
        .await
        .expect("proxy");
    let url = format!("redis://{}", proxy.addr);
    let stack = Stack::start_with(|c| {
        quick_retries(c);
        c.redis_url = Some(Secret::new(url.clone()));
    })
    .await
    .expect("stack");
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    let call = "fork-1";
    let event = |i: usize, kind: &str, at: &str| {
        json!({"id": format!("{call}-{i}"), "call_id": call, "type": kind,
            "direction": "inbound", "from": "+41 79 555 70 02", "to": "+41 44 999 00 00",
            "agent": ALICE, "at": cti_tests::recent(at)})
        .to_string()
    };
    post_all(
        &stack,
        &[
            event(0, "ringing", "2026-11-25T09:00:00Z"),
            event(1, "answered", "2026-11-25T09:00:10Z"),
        ],
    )
    .await;
    ws.recv_call(call, "the call to connect", |c| c["state"] == "connected")
        .await
        .expect("connected");

    // Redis goes away; the call ends meanwhile, in memory only. This instance sees the end
    // without the answer, so the call's activity waits for Redis rather than log it missed.
    proxy.refuse(true);
    proxy.cut();
    post_all(&stack, &[event(2, "ended", "2026-11-25T09:02:10Z")]).await;
    // (Queued before the 202, so it would be in the memory outbox by now.)
    let queued = stack.relay.state.activity.outbox.get("demo", call).await;
    assert!(
        !matches!(queued, Ok(Some(_))),
        "not logged as missed during the outage: {queued:?}"
    );
    proxy.refuse(false);

    // Back: the call is logged as talked, it is over for the widget, and notes after it reach V2.
    stack
        .wait_activity(call, "logged as talked once Redis is back", |a| {
            cti_tests::summary_of(a).contains("(talk time 2m 0s)")
        })
        .await
        .expect("logged");
    eventually("the call not to be live any more", || async {
        let live = stack
            .relay
            .state
            .calls
            .active_for_agent("demo", ALICE)
            .await
            .ok()?;
        (!live.iter().any(|l| l.id == call)).then_some(())
    })
    .await
    .expect("not live");
    ws.send_json(&json!({"type": "save_wrap_up", "call_id": call,
        "notes": "call back on Tuesday", "disposition": "Interested"}))
        .await
        .expect("send");
    let activity = stack
        .wait_activity(call, "with the notes", |a| {
            cti_tests::notes_in(a).as_deref() == Some("call back on Tuesday")
        })
        .await
        .expect("notes in V2");
    assert!(
        cti_tests::summary_of(&activity).contains("(talk time 2m 0s)"),
        "answered before the outage, so talked, not missed: {activity}"
    );
    let legs = stack
        .relay
        .state
        .calls
        .legs("demo", call)
        .await
        .expect("legs");
    assert!(legs.iter().all(|l| l.state.is_final()), "{legs:?}");
}
