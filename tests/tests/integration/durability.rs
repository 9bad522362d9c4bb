//! What the relay acknowledged stays acknowledged: an instance whose lease on an activity ran out
//! cannot overwrite what the instance that took it over recorded.

use cti_relay::activity::RedisOutbox;
use cti_relay::activity::outbox::{Next, Outbox};
use cti_tests::eventually;
use cti_tests::redis::RedisServer;

const ALICE: &str = "alice@example.com";

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
