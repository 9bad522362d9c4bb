//! Two relay instances on one Redis change the same call at once: events of a call are serialised
//! only inside each process, so the legs in Redis are saved over the revision they were read at
//! and a change that lost the race is applied again to the newer leg. An ended call never comes
//! back to life from a stale copy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use cti_protocol::ws::CallState;
use cti_relay::calls::{CallStore, Leg, StoreError};
use cti_relay::clock::{SharedClock, SystemClock};
use cti_relay::secret::Secret;
use cti_relay::state::{AppState, Stores};
use cti_tests::redis::RedisServer;
use cti_tests::{Stack, eventually};
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

#[tokio::test]
async fn an_answer_and_an_end_on_two_instances_at_once_end_the_call_answered() {
    let server = RedisServer::start().await.expect("redis-server");
    let url = server.url();
    // Instance B: the stack's relay.
    let stack = Stack::start_with(|c| c.redis_url = Some(Secret::new(url.clone())))
        .await
        .expect("stack");
    let call = "race-1";

    // Instance A: the same deployment, with its saves of the call held on demand.
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

    let event = |i: usize, kind: &str, at: &str| {
        json!({"id": format!("{call}-{i}"), "call_id": call, "type": kind,
            "direction": "inbound", "from": "+41 79 555 70 03", "to": "+41 44 999 00 00",
            "agent": ALICE, "at": at})
        .to_string()
    };
    let b = stack.relay.url();
    assert_eq!(
        post_to(
            &stack.http,
            &b,
            &event(0, "ringing", "2026-11-25T09:00:00Z")
        )
        .await,
        202
    );

    // A reads the ringing leg and is about to save it answered (t1) ...
    let answered = {
        let (http, a) = (stack.http.clone(), a.url());
        let body = event(1, "answered", "2026-11-25T09:00:10Z");
        tokio::spawn(async move { post_to(&http, &a, &body).await })
    };
    held.reached.notified().await;
    // ... when B ends the call (t2) and saves first.
    assert_eq!(
        post_to(&stack.http, &b, &event(2, "ended", "2026-11-25T09:02:10Z")).await,
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
        Some("2026-11-25T09:00:10Z"),
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
