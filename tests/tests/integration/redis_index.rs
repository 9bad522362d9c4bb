//! The number index in a real redis-server: atomic replacement, tenant isolation, and a relay
//! that keeps matching callers (through V2) when Redis goes away.

use cti_protocol::ws::RecordKind;
use cti_relay::numbers::index::{Generation, IndexedRecord, NumberIndex};
use cti_relay::numbers::redis_index::RedisIndex;
use cti_relay::secret::Secret;
use cti_tests::redis::RedisServer;
use cti_tests::{Stack, WsClient};
use serde_json::json;

fn record(id: &str, name: &str) -> IndexedRecord {
    IndexedRecord {
        kind: RecordKind::Contact,
        id: id.into(),
        display_id: "1".into(),
        name: name.into(),
        account: None,
    }
}

#[tokio::test]
async fn replacement_is_whole_and_tenants_are_apart() {
    let server = RedisServer::start().await.expect("redis-server");
    let index = RedisIndex::connect(&server.url()).await.expect("connects");
    let mut first = Generation::new();
    first.insert("+41441234567".into(), vec![record("a", "Anna")]);
    first.insert(
        "+41449999999".into(),
        vec![record("b", "Ben"), record("c", "Cleo")],
    );
    index.replace("t1", first).await.expect("replace");
    assert_eq!(index.len("t1").await.expect("len"), 2);
    let both = index.lookup("t1", "+41449999999").await.expect("lookup");
    assert_eq!(
        both.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["Ben", "Cleo"]
    );
    assert!(
        index
            .lookup("t2", "+41441234567")
            .await
            .expect("lookup")
            .is_empty()
    );

    let mut second = Generation::new();
    second.insert("+41440000000".into(), vec![record("d", "Dora")]);
    index.replace("t1", second).await.expect("replace");
    assert!(
        index
            .lookup("t1", "+41441234567")
            .await
            .expect("lookup")
            .is_empty()
    );
    assert_eq!(index.len("t1").await.expect("len"), 1);
    index
        .replace("t1", Generation::new())
        .await
        .expect("empty replace");
    assert_eq!(index.len("t1").await.expect("len"), 0);
}

async fn post_ringing(stack: &Stack, id: &str, call: &str, from: &str) {
    let body = json!({"id": id, "call_id": call, "type": "ringing", "direction": "inbound",
        "from": from, "to": "+41 44 999 00 00", "agent": "alice@example.com",
        "at": "2026-11-24T10:00:00Z"});
    let status = stack
        .post_event(&body.to_string())
        .await
        .expect("relay answers");
    assert_eq!(status, 202);
}

#[tokio::test]
async fn the_relay_matches_from_redis_and_falls_back_to_v2_when_it_is_gone() {
    let mut server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let stack = Stack::start_with(|c| c.redis_url = Some(Secret::new(url.clone())))
        .await
        .expect("stack starts");
    let ready = stack.readyz().await.expect("readyz");
    assert_eq!(ready["stores"], "redis");
    assert_eq!(ready["status"], "ready");
    let direct = RedisIndex::connect(&url).await.expect("connects");
    assert!(
        direct.len("demo").await.expect("len") > 300,
        "the index lives in Redis"
    );

    let (dialled, _, name) = stack.single_match_caller().expect("a seeded caller");
    let (mut ws, _) = WsClient::signed_in(&stack, "alice@example.com", None)
        .await
        .expect("signed in");
    post_ringing(&stack, "evt-r1", "call-r1", &dialled).await;
    let call = ws
        .recv_until("the call", |m| m["type"] == "call")
        .await
        .expect("call");
    assert_eq!(call["call"]["pop"]["name"], name.as_str());

    server.stop();
    post_ringing(&stack, "evt-r2", "call-r2", &dialled).await;
    let call = ws
        .recv_until("the call during the outage", |m| {
            m["type"] == "call" && m["call"]["id"] == "call-r2"
        })
        .await
        .expect("call");
    assert_eq!(
        call["call"]["pop"]["name"],
        name.as_str(),
        "matched through V2"
    );
    let ready = stack.readyz().await.expect("readyz");
    assert_eq!(ready["status"], "degraded");
}
