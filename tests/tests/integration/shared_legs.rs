//! Two relay instances on one Redis change the same call at once: events of a call are serialised
//! only inside each process, so the legs in Redis are saved over the revision they were read at
//! and a change that lost the race is applied again to the newer leg. An ended call never comes
//! back to life from a stale copy, and a rep's notes are never replaced by one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use cti_protocol::ws::CallState;
use cti_relay::RelayHandle;
use cti_relay::calls::{CallStore, Leg, RedisCallStore, StoreError};
use cti_relay::clock::{SharedClock, SystemClock};
use cti_relay::secret::Secret;
use cti_relay::state::{AppState, Stores};
use cti_tests::redis::RedisServer;
use cti_tests::{Stack, WsClient, eventually};
use serde_json::json;
use tokio::sync::Notify;

const ALICE: &str = "alice@example.com";

/// An instance's call store whose first save of one call waits, after the instance read the leg
/// and changed it, until the test lets it go: the window in which another instance saves first.
#[derive(Debug)]
struct HeldSave {
    inner: Arc<dyn CallStore>,
    call: String,
    armed: AtomicBool,
    /// Told when the held save is waiting.
    reached: Notify,
    /// Lets the held save go on.
    release: Notify,
}

impl HeldSave {
    fn new(inner: Arc<dyn CallStore>, call: &str) -> Self {
        HeldSave {
            inner,
            call: call.into(),
            armed: AtomicBool::new(true),
            reached: Notify::new(),
            release: Notify::new(),
        }
    }
}

#[async_trait]
impl CallStore for HeldSave {
    async fn seen(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError> {
        self.inner.seen(tenant, event_id).await
    }

    async fn save(&self, tenant: &str, view: &Leg, event_id: &str) -> Result<u64, StoreError> {
        if view.id == self.call && self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.notified().await;
        }
        self.inner.save(tenant, view, event_id).await
    }

    async fn mark_seen(&self, tenant: &str, event_id: &str) -> Result<(), StoreError> {
        self.inner.mark_seen(tenant, event_id).await
    }

    async fn get(
        &self,
        tenant: &str,
        call_id: &str,
        agent: &str,
    ) -> Result<Option<Leg>, StoreError> {
        self.inner.get(tenant, call_id, agent).await
    }

    async fn put(&self, tenant: &str, view: &Leg) -> Result<u64, StoreError> {
        self.inner.put(tenant, view).await
    }

    async fn legs(&self, tenant: &str, call_id: &str) -> Result<Vec<Leg>, StoreError> {
        self.inner.legs(tenant, call_id).await
    }

    async fn active_for_agent(&self, tenant: &str, agent: &str) -> Result<Vec<Leg>, StoreError> {
        self.inner.active_for_agent(tenant, agent).await
    }

    async fn write_back(&self, tenant: &str) -> Vec<Leg> {
        self.inner.write_back(tenant).await
    }
}

/// Posts a signed generic-webhook event to one instance; its status.
async fn post_to(http: &reqwest::Client, relay_url: &str, body: &str) -> u16 {
    let signed = cti_sim::pbx::sign_now("demo-webhook-secret", body.as_bytes());
    http.post(format!("{relay_url}/v1/tenants/demo/telephony/generic"))
        .header("content-type", "application/json")
        .header("x-cti-timestamp", signed.0)
        .header("x-cti-signature", signed.1)
        .body(body.to_string())
        .send()
        .await
        .expect("relay answers")
        .status()
        .as_u16()
}

/// Instance A of the stack's deployment (the stack's relay is B), whose first save of `call`
/// is held.
async fn held_instance(stack: &Stack, call: &str) -> (RelayHandle, Arc<HeldSave>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let mut config = stack.relay.state.config.clone();
    config.listen = listener.local_addr().expect("address");
    let clock: SharedClock = Arc::new(SystemClock);
    let mut stores = Stores::from_config(&config, clock.clone())
        .await
        .expect("stores");
    let held = Arc::new(HeldSave::new(stores.calls.clone(), call));
    stores.calls = held.clone();
    let state = AppState::with_parts(config, stores, clock).expect("state");
    let a = cti_relay::spawn_on(listener, state).expect("instance A");
    eventually("instance A to become ready", || async {
        let response = stack
            .http
            .get(format!("{}/readyz", a.url()))
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(())
    })
    .await
    .expect("ready");
    (a, held)
}

/// A generic-webhook event of `call` for Alice.
fn event(call: &str, i: usize, kind: &str, at: &str, extra: serde_json::Value) -> String {
    let mut event = json!({"id": format!("{call}-{i}"), "call_id": call, "type": kind,
        "direction": "inbound", "from": "+41 79 555 70 03", "to": "+41 44 999 00 00",
        "agent": ALICE, "at": cti_tests::recent(at)});
    if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        event.extend(extra.clone());
    }
    event.to_string()
}

async fn start() -> (RedisServer, Stack) {
    let server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    let stack = Stack::start_with(|c| c.redis_url = Some(Secret::new(url.clone())))
        .await
        .expect("stack");
    (server, stack)
}

#[tokio::test]
async fn an_answer_and_an_end_on_two_instances_at_once_end_the_call_answered() {
    let (_server, stack) = start().await;
    let call = "race-1";
    let (a, held) = held_instance(&stack, call).await;
    let b = stack.relay.url();
    let none = || json!({});
    assert_eq!(
        post_to(
            &stack.http,
            &b,
            &event(call, 0, "ringing", "2026-11-25T09:00:00Z", none())
        )
        .await,
        202
    );

    // A reads the ringing leg and is about to save it answered (t1) ...
    let answered = {
        let (http, a) = (stack.http.clone(), a.url());
        let body = event(call, 1, "answered", "2026-11-25T09:00:10Z", none());
        tokio::spawn(async move { post_to(&http, &a, &body).await })
    };
    held.reached.notified().await;
    // ... when B ends the call (t2) and saves first.
    assert_eq!(
        post_to(
            &stack.http,
            &b,
            &event(call, 2, "ended", "2026-11-25T09:02:10Z", none())
        )
        .await,
        202
    );
    held.release.notify_one();
    assert_eq!(answered.await.expect("A answers"), 202);

    let legs = stack
        .relay
        .state
        .calls
        .legs("demo", call)
        .await
        .expect("legs");
    assert_eq!(legs.len(), 1, "{legs:?}");
    assert_eq!(legs[0].state, CallState::Ended, "the end stays: {legs:?}");
    assert_eq!(
        legs[0].answered_at.as_deref(),
        Some(cti_tests::recent("2026-11-25T09:00:10Z").as_str()),
        "the answer is kept"
    );
    let live = stack
        .relay
        .state
        .calls
        .active_for_agent("demo", ALICE)
        .await
        .expect("live calls");
    assert!(!live.iter().any(|l| l.id == call), "{live:?}");
    stack
        .wait_activity(call, "talked", |a| {
            cti_tests::summary_of(a).contains("(talk time 2m 0s)")
        })
        .await
        .expect("one activity, talked");
    assert_eq!(stack.activities(call).await.expect("list").len(), 1);
    a.shutdown().await;
}

#[tokio::test]
async fn notes_saved_on_one_instance_survive_a_late_event_on_another() {
    let (_server, stack) = start().await;
    let call = "race-2";
    let (a, held) = held_instance(&stack, call).await;
    let b = stack.relay.url();
    let none = || json!({});
    for body in [
        event(call, 0, "ringing", "2026-11-25T09:00:00Z", none()),
        event(call, 1, "answered", "2026-11-25T09:00:10Z", none()),
        event(call, 2, "ended", "2026-11-25T09:02:10Z", none()),
    ] {
        assert_eq!(post_to(&stack.http, &b, &body).await, 202);
    }

    // A reads the ended leg to add the recording a late end brings ...
    let late = {
        let (http, a) = (stack.http.clone(), a.url());
        let body = event(
            call,
            3,
            "ended",
            "2026-11-25T09:02:10Z",
            json!({"recording_url": "https://rec.example/race-2.wav"}),
        );
        tokio::spawn(async move { post_to(&http, &a, &body).await })
    };
    held.reached.notified().await;
    // ... while the rep saves notes through B.
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None).await.expect("ws");
    ws.send_json(&json!({"type": "save_wrap_up", "call_id": call,
        "notes": "call back on Tuesday"}))
        .await
        .expect("send");
    ws.recv_call(call, "the notes to be saved", |c| {
        c["wrap_up"]["notes"] == "call back on Tuesday"
    })
    .await
    .expect("saved");
    held.release.notify_one();
    assert_eq!(late.await.expect("A answers"), 202);

    let leg = stack
        .relay
        .state
        .calls
        .get("demo", call, ALICE)
        .await
        .expect("get")
        .expect("leg");
    assert_eq!(leg.wrap_up.notes, "call back on Tuesday", "{leg:?}");
    assert_eq!(
        leg.recording_url.as_deref(),
        Some("https://rec.example/race-2.wav")
    );
    let entry = stack
        .relay
        .state
        .activity
        .outbox
        .get("demo", call)
        .await
        .expect("outbox")
        .expect("queued");
    assert_eq!(
        entry.log.notes, "call back on Tuesday",
        "the activity keeps the notes"
    );
    a.shutdown().await;
}

#[tokio::test]
async fn redis_refuses_a_save_over_a_stale_revision() {
    let server = RedisServer::start().await.expect("redis-server");
    let store = RedisCallStore::connect(&server.url()).await.expect("redis");
    let ringing: Leg = serde_json::from_value(json!({
        "id": "cas-1", "direction": "inbound", "state": "ringing",
        "from": "+41441234567", "to": "+41449990000", "agent": ALICE,
        "matches": [], "pop": null, "started_at": "2026-11-25T09:00:00Z"}))
    .expect("a leg as an earlier relay stored it, without a revision");
    assert_eq!(ringing.rev, 0);
    assert_eq!(store.save("t", &ringing, "e-0").await.expect("saved"), 1);

    let read_by_a = store
        .get("t", "cas-1", ALICE)
        .await
        .expect("get")
        .expect("leg");
    let read_by_b = read_by_a.clone();
    let mut ended = read_by_b;
    ended.state = CallState::Ended;
    assert_eq!(store.save("t", &ended, "e-2").await.expect("B first"), 2);
    let mut connected = read_by_a;
    connected.state = CallState::Connected;
    let refused = store.save("t", &connected, "e-1").await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict {
                expected: 1,
                found: 2,
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(
        !store.seen("t", "e-1").await.expect("seen"),
        "the refused event is not applied"
    );
    assert!(matches!(
        store.put("t", &connected).await,
        Err(StoreError::Conflict { .. })
    ));
    let stored = store
        .get("t", "cas-1", ALICE)
        .await
        .expect("get")
        .expect("leg");
    assert_eq!((stored.state, stored.rev), (CallState::Ended, 2));
    assert!(
        store
            .active_for_agent("t", ALICE)
            .await
            .expect("live")
            .is_empty(),
        "the ended call is not live"
    );
}
