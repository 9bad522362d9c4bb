//! The number index in a real redis-server: atomic replacement, tenant isolation, and a relay
//! that keeps matching callers (through V2) when Redis goes away.

use cti_protocol::ws::RecordKind;
use std::time::Duration;

use cti_relay::numbers::choices::ChoiceStore;
use cti_relay::numbers::coordination::RefreshCoordination;
use cti_relay::numbers::generation::Generation;
use cti_relay::numbers::redis_index::RedisIndex;
use cti_relay::numbers::{IndexedRecord, NumberIndex};
use cti_relay::secret::Secret;
use cti_tests::redis::RedisServer;
use cti_tests::{Stack, WsClient, eventually};
use serde_json::json;

fn record(id: &str, name: &str) -> IndexedRecord {
    IndexedRecord {
        kind: RecordKind::Contact,
        id: id.into(),
        display_id: "1".into(),
        name: name.into(),
        account: None,
        owner_id: None,
        open_opportunities: 0,
        last_activity: None,
    }
}

#[tokio::test]
async fn replacement_is_whole_and_tenants_are_apart() {
    let server = RedisServer::start().await.expect("redis-server");
    let index = RedisIndex::connect(&server.url()).await.expect("connects");
    let first = Generation::from_iter([
        ("+41441234567".to_string(), vec![record("a", "Anna")]),
        (
            "+41449999999".to_string(),
            vec![record("b", "Ben"), record("c", "Cleo")],
        ),
    ]);
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

    let second = Generation::from_iter([("+41440000000".to_string(), vec![record("d", "Dora")])]);
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
        .replace("t1", Generation::default())
        .await
        .expect("empty replace");
    assert_eq!(index.len("t1").await.expect("len"), 0);
}

fn names(records: &[IndexedRecord]) -> Vec<&str> {
    let mut names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn incremental_updates_move_and_remove_records_atomically() {
    let server = RedisServer::start().await.expect("redis-server");
    let index = RedisIndex::connect(&server.url()).await.expect("connects");
    let g = Generation::from_iter([
        (
            "+41441111111".to_string(),
            vec![record("a", "Anna"), record("b", "Ben")],
        ),
        ("+41442222222".to_string(), vec![record("a", "Anna")]),
    ]);
    index.replace("t1", g).await.expect("replace");

    // Anna now carries only a new number.
    let mut anna = record("a", "Anna M.");
    anna.owner_id = Some("emp-1".into());
    index
        .upsert("t1", anna.clone(), vec!["+41443333333".into()])
        .await
        .expect("upsert");
    let shared = index.lookup("t1", "+41441111111").await.expect("lookup");
    assert_eq!(names(&shared), ["Ben"]);
    assert!(
        index
            .lookup("t1", "+41442222222")
            .await
            .expect("lookup")
            .is_empty()
    );
    assert_eq!(
        index.lookup("t1", "+41443333333").await.expect("lookup"),
        [anna],
        "the record round-trips through the script unchanged"
    );

    // A record the index never saw is added; a deleted one leaves every number.
    index
        .upsert("t1", record("c", "Cleo"), vec!["+41441111111".into()])
        .await
        .expect("upsert new");
    assert_eq!(
        names(&index.lookup("t1", "+41441111111").await.expect("lookup")),
        ["Ben", "Cleo"]
    );
    index.remove("t1", "b").await.expect("remove");
    index
        .remove("t1", "never-there")
        .await
        .expect("remove unknown");
    assert_eq!(
        names(&index.lookup("t1", "+41441111111").await.expect("lookup")),
        ["Cleo"]
    );
    assert_eq!(index.len("t1").await.expect("len"), 2);
    assert_eq!(index.len("t2").await.expect("len"), 0);
}

#[tokio::test]
async fn the_rebuild_lease_changes_and_choices_live_in_redis() {
    let server = RedisServer::start().await.expect("redis-server");
    let one = RedisIndex::connect(&server.url()).await.expect("connects");
    let two = RedisIndex::connect(&server.url()).await.expect("connects");
    let ttl = Duration::from_secs(30);
    assert!(one.acquire("t1", "relay-1", ttl).await.expect("acquire"));
    assert!(!two.acquire("t1", "relay-2", ttl).await.expect("acquire"));
    assert!(one.acquire("t1", "relay-1", ttl).await.expect("renew"));
    two.release("t1", "relay-2")
        .await
        .expect("release by a non-holder");
    assert!(!two.acquire("t1", "relay-2", ttl).await.expect("still held"));
    one.release("t1", "relay-1").await.expect("release");
    assert!(two.acquire("t1", "relay-2", ttl).await.expect("free again"));
    // A holder that died: the lease runs out by itself.
    assert!(
        one.acquire("t2", "relay-1", Duration::from_millis(50))
            .await
            .expect("acquire")
    );
    eventually("the short lease to expire", || async {
        two.acquire("t2", "relay-2", ttl)
            .await
            .ok()
            .filter(|got| *got)
    })
    .await
    .expect("expired");

    assert_eq!(one.last_built("t1").await.expect("read"), None);
    one.set_last_built("t1", 1_234).await.expect("write");
    assert_eq!(two.last_built("t1").await.expect("read"), Some(1_234));

    one.note_change("t1", "contact:c1", 1_000)
        .await
        .expect("note");
    one.note_change("t1", "account:a1", 2_000)
        .await
        .expect("note");
    assert_eq!(
        two.changes_since("t1", 1_500).await.expect("since"),
        ["account:a1"]
    );

    one.put("t1", "Alice@Example.com", "+41441111111", "c1")
        .await
        .expect("choose");
    assert_eq!(
        two.get("t1", "alice@example.com", "+41441111111")
            .await
            .expect("read"),
        Some("c1".into())
    );
    assert_eq!(
        two.get("t2", "alice@example.com", "+41441111111")
            .await
            .expect("read"),
        None
    );
}

/// A remembered choice expires in Redis (F16): each has a key of its own with a life, renewed
/// when read, so a rep or a tenant that stops taking calls leaves nothing behind; tenants and
/// reps stay apart, and a choice from the old per-tenant hash is moved and the hash expires.
#[tokio::test]
async fn remembered_choices_expire_in_redis_and_tenants_stay_apart() {
    let server = RedisServer::start().await.expect("redis-server");
    let client = redis::Client::open(server.url()).expect("client");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection");
    let choices = RedisIndex::connect(&server.url()).await.expect("connects");

    choices
        .put("t1", "Alice@Example.com", "+41441111111", "c1")
        .await
        .expect("choose");
    choices
        .put("t2", "alice@example.com", "+41441111111", "c9")
        .await
        .expect("choose");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut raw)
            .await
            .expect("pttl");
        assert!(ttl > 0, "{key} has no life of its own ({ttl})");
    }
    assert!(
        keys.iter()
            .any(|k| k.starts_with("cti:{t1}:") && k.contains("alice@example.com")),
        "{keys:?}"
    );
    assert_eq!(
        choices
            .get("t1", "alice@example.com", "+41441111111")
            .await
            .expect("read"),
        Some("c1".into())
    );
    assert_eq!(
        choices
            .get("t2", "ALICE@example.com", "+41441111111")
            .await
            .expect("read"),
        Some("c9".into())
    );
    assert_eq!(
        choices
            .get("t1", "bob@example.com", "+41441111111")
            .await
            .expect("read"),
        None
    );

    // A choice unused for its life is gone.
    let short = RedisIndex::connect(&server.url())
        .await
        .expect("connects")
        .with_choice_ttl(Duration::from_millis(50));
    short
        .put("t1", "bob@example.com", "+41442222222", "c2")
        .await
        .expect("choose");
    eventually("the unused choice to expire", || async {
        let left: i64 = redis::cmd("EXISTS")
            .arg("cti:{t1}:choice:bob@example.com|+41442222222")
            .query_async(&mut raw.clone())
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await
    .expect("expired");
    assert_eq!(
        choices
            .get("t1", "bob@example.com", "+41442222222")
            .await
            .expect("read"),
        None
    );

    // A choice an older relay kept in the tenant's hash is still found, then lives on its own,
    // and the hash gets a life.
    let _: () = redis::cmd("HSET")
        .arg("cti:{t4}:choices")
        .arg("carol@example.com|+41443333333")
        .arg("c3")
        .arg("dave@example.com|+41444444444")
        .arg("c4")
        .query_async(&mut raw)
        .await
        .expect("hset");
    assert_eq!(
        choices
            .get("t4", "carol@example.com", "+41443333333")
            .await
            .expect("read"),
        Some("c3".into())
    );
    let moved: Option<String> = redis::cmd("HGET")
        .arg("cti:{t4}:choices")
        .arg("carol@example.com|+41443333333")
        .query_async(&mut raw)
        .await
        .expect("hget");
    assert_eq!(moved, None, "taken off the old hash");
    let ttl: i64 = redis::cmd("PTTL")
        .arg("cti:{t4}:choice:carol@example.com|+41443333333")
        .query_async(&mut raw)
        .await
        .expect("pttl");
    assert!(ttl > 0, "the moved choice has a life ({ttl})");
    let ttl: i64 = redis::cmd("PTTL")
        .arg("cti:{t4}:choices")
        .query_async(&mut raw)
        .await
        .expect("pttl");
    assert!(ttl > 0, "the old hash has a life ({ttl})");
    assert_eq!(
        choices
            .get("t4", "carol@example.com", "+41443333333")
            .await
            .expect("read again"),
        Some("c3".into())
    );
}

async fn post_ringing(stack: &Stack, id: &str, call: &str, from: &str) {
    let body = json!({"id": id, "call_id": call, "type": "ringing", "direction": "inbound",
        "from": from, "to": "+41 44 999 00 00", "agent": "alice@example.com",
        "at": cti_tests::now_rfc3339()});
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
    let stack = Stack::start_with(|c| {
        c.redis_url = Some(Secret::new(url.clone()));
        c.index_check = Duration::from_millis(200);
    })
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

    // Redis comes back empty (no persistence): the relay notices and rebuilds by itself.
    server.restart().await.expect("redis-server restarts");
    eventually("the relay to be ready on Redis again", || async {
        let ready = stack.readyz().await.ok()?;
        (ready["status"] == "ready").then_some(())
    })
    .await
    .expect("recovered");
    let direct = RedisIndex::connect(&url).await.expect("connects");
    let number = cti_relay::numbers::normalize(
        &dialled,
        &cti_relay::numbers::DefaultRegion::parse("CH").expect("region"),
    )
    .expect("valid")
    .e164;
    let records = eventually("the rebuilt index in Redis", || async {
        let records = direct.lookup("demo", &number).await.ok()?;
        (!records.is_empty()).then_some(records)
    })
    .await
    .expect("rebuilt");
    assert_eq!(records[0].name, name);
}

#[tokio::test]
async fn a_second_relay_on_the_same_redis_serves_the_shared_index_without_rebuilding() {
    let server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let stack = Stack::start_with(|c| {
        c.redis_url = Some(Secret::new(url.clone()));
        c.index_check = Duration::from_millis(200);
    })
    .await
    .expect("stack starts");
    let second = stack.spawn_another_relay().await.expect("a second relay");
    let http = reqwest::Client::new();
    let ready = eventually("the second relay to be ready", || async {
        let body: serde_json::Value = http
            .get(format!("{}/readyz", second.url()))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (body["status"] == "ready").then_some(body)
    })
    .await
    .expect("ready");
    assert_eq!(ready["tenants"]["demo"]["refresh"]["phase"], "standby");
    let metrics = http
        .get(format!("{}/metrics", second.url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        !metrics.contains("cti_index_builds_total{tenant=\"demo\",outcome=\"ok\"}"),
        "the second relay did not crawl V2 again:\n{metrics}"
    );
    second.abort();
}
