//! The simulated PBX, identity provider and host page, through their HTTP routes.

use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use cti_sim::config::ConfigError;
use cti_sim::pbx::{now_secs, sign};
use cti_sim::{Sim, SimConfig, router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::ServiceExt;

const SECRET: &str = "test-secret";

fn config() -> SimConfig {
    SimConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        tenant: "t1".into(),
        webhook_secret: SECRET.into(),
        relay_public_url: "http://relay.example:8080/".into(),
        records: 40,
        ..SimConfig::default()
    }
}

fn app(config: SimConfig) -> (Arc<Sim>, Router) {
    let sim = Sim::new(config);
    (sim.clone(), router(sim))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// The `error.code` of a JSON error body, checking the shape on the way.
    fn error_code(&self) -> String {
        let body = self.json();
        assert!(
            body.pointer("/error/message")
                .and_then(Value::as_str)
                .is_some_and(|m| !m.is_empty()),
            "error without message: {body}"
        );
        body.pointer("/error/code")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).expect("request")).await
}

async fn post_raw(app: &Router, uri: &str, body: impl Into<Body>) -> Reply {
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("request");
    send(app, request).await
}

async fn post_json(app: &Router, uri: &str, body: Value) -> Reply {
    post_raw(app, uri, body.to_string()).await
}

/// A call control as the relay sends it: for `call_id`, with a fresh nonce, signed with
/// `secret` now.
async fn command(app: &Router, call_id: &str, mut body: Value, secret: Option<&str>) -> Reply {
    if let Value::Object(map) = &mut body {
        map.entry("call_id").or_insert_with(|| json!(call_id));
        map.entry("nonce")
            .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
    }
    signed_command(app, call_id, &body.to_string(), secret, now_secs()).await
}

/// `body` posted as a call control for `call_id`, signed with `secret` at `at` (Unix seconds).
async fn signed_command(
    app: &Router,
    call_id: &str,
    body: &str,
    secret: Option<&str>,
    at: u64,
) -> Reply {
    let mut request = Request::post(format!("/sim/pbx/calls/{call_id}/commands"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(secret) = secret {
        request = request
            .header("x-cti-timestamp", at.to_string())
            .header("x-cti-signature", sign(secret, at, body.as_bytes()));
    }
    send(
        app,
        request.body(Body::from(body.to_string())).expect("request"),
    )
    .await
}

// ---- A stand-in for the relay's generic webhook --------------------------------------------

#[derive(Debug)]
struct Received {
    tenant: String,
    signature: String,
    timestamp: String,
    content_type: String,
    body: Bytes,
}

impl Received {
    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("event is JSON")
    }

    /// The `X-CTI-Timestamp` the event was signed at, checked to be within a minute of now.
    fn signed_at(&self) -> u64 {
        let at: u64 = self
            .timestamp
            .parse()
            .expect("X-CTI-Timestamp is Unix seconds");
        assert!(now_secs().abs_diff(at) < 60, "signed at {at}");
        at
    }
}

#[derive(Clone)]
struct RelayState {
    seen: mpsc::UnboundedSender<Received>,
    /// Answer 503 to this many requests first.
    fail_next: Arc<AtomicUsize>,
    /// When non-zero, answer every request with this status.
    reject_with: Arc<AtomicU16>,
}

struct FakeRelay {
    url: String,
    seen: mpsc::UnboundedReceiver<Received>,
    fail_next: Arc<AtomicUsize>,
    reject_with: Arc<AtomicU16>,
}

impl FakeRelay {
    async fn start() -> FakeRelay {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = RelayState {
            seen: tx,
            fail_next: Arc::new(AtomicUsize::new(0)),
            reject_with: Arc::new(AtomicU16::new(0)),
        };
        let app = Router::new()
            .route("/v1/tenants/{tenant}/telephony/generic", post(webhook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake relay serves");
        });
        FakeRelay {
            url,
            seen: rx,
            fail_next: state.fail_next,
            reject_with: state.reject_with,
        }
    }

    fn config(&self) -> SimConfig {
        SimConfig {
            relay_url: self.url.clone(),
            ..config()
        }
    }

    /// The next request the webhook got (a bound, not a synchronization: events normally
    /// arrive in milliseconds).
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(20), self.seen.recv())
            .await
            .expect("an event reached the relay in time")
            .expect("relay channel open")
    }

    /// The next event, checked for a valid signature and the JSON content type.
    async fn next_event(&mut self) -> Value {
        let received = self.next().await;
        assert_eq!(received.tenant, "t1");
        assert_eq!(received.content_type, "application/json");
        assert_eq!(
            received.signature,
            sign(SECRET, received.signed_at(), &received.body),
            "signature must be the HMAC of the timestamp and the raw body"
        );
        received.event()
    }
}

async fn webhook(
    State(state): State<RelayState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let _ = state.seen.send(Received {
        tenant,
        signature: header_text("x-cti-signature"),
        timestamp: header_text("x-cti-timestamp"),
        content_type: header_text("content-type"),
        body,
    });
    let reject = state.reject_with.load(Ordering::SeqCst);
    if reject != 0 {
        let status = StatusCode::from_u16(reject).expect("status");
        let body = json!({"error":{"code":"invalid_signature","message":"X-CTI-Signature does not match the body"}});
        return (status, axum::Json(body)).into_response();
    }
    if state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    (StatusCode::ACCEPTED, axum::Json(json!({"accepted":true}))).into_response()
}

fn assert_event(event: &Value, id: &str, kind: &str, agent: &str) {
    assert_eq!(event["id"], id, "{event}");
    assert_eq!(event["type"], kind, "{event}");
    assert_eq!(event["agent"], agent, "{event}");
    assert_eq!(event["direction"], "inbound", "{event}");
    let at = event["at"].as_str().expect("at");
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .expect("`at` is RFC 3339");
    assert!(at.ends_with('Z'), "UTC: {at}");
}

async fn place(app: &Router, body: Value) -> String {
    let reply = post_json(app, "/sim/calls", body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    reply.json()["call_id"]
        .as_str()
        .expect("call_id")
        .to_string()
}

// ---- PBX -------------------------------------------------------------------------------------

#[test]
fn sign_matches_the_rfc_4231_vector() {
    // RFC 4231 test case 2, with "{timestamp}." in front of its data: the signed string.
    assert_eq!(
        cti_protocol::signature::sign_legacy("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        sign("Jefe", 1, b"what do ya want for nothing?"),
        cti_protocol::signature::sign_legacy("Jefe", b"1.what do ya want for nothing?")
    );
}

#[tokio::test]
async fn a_call_goes_through_its_life_and_the_relay_sees_every_step_in_order() {
    let mut relay = FakeRelay::start().await;
    let (_sim, app) = app(relay.config());
    let call = place(&app, json!({"from": "044 123 45 67"})).await;

    // The 201 came after the relay had the ringing event.
    let ringing = relay.next_event().await;
    assert_event(
        &ringing,
        &format!("{call}-e1"),
        "ringing",
        "alice@example.com",
    );
    assert_eq!(ringing["call_id"], call.as_str());
    assert_eq!(ringing["from"], "044 123 45 67", "numbers go out as given");
    assert_eq!(ringing["to"], "+41 44 999 00 00");
    // The event is exactly the generic webhook body the relay accepts.
    serde_json::from_value::<cti_protocol::event::generic::Body>(ringing.clone())
        .expect("a valid generic webhook body");

    let alice = "alice@example.com";
    let bob = "bob@example.com";
    let steps = [
        (
            json!({"action":"answer","agent":alice}),
            vec![("answered", alice)],
        ),
        (
            json!({"action":"hold","agent":alice}),
            vec![("held", alice)],
        ),
        (
            json!({"action":"resume","agent":alice}),
            vec![("resumed", alice)],
        ),
        (
            json!({"action":"transfer","target":bob,"agent":alice}),
            vec![("transferred", alice), ("ringing", bob)],
        ),
        (
            json!({"action":"answer","agent":bob}),
            vec![("answered", bob)],
        ),
        (json!({"action":"hangup","agent":bob}), vec![("ended", bob)]),
    ];
    let mut n = 1;
    for (body, expected) in steps {
        let reply = command(&app, &call, body.clone(), Some(SECRET)).await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "{body}: {}",
            reply.text()
        );
        assert_eq!(reply.json(), json!({"accepted": true}));
        for (kind, agent) in expected {
            n += 1;
            let event = relay.next_event().await;
            assert_event(&event, &format!("{call}-e{n}"), kind, agent);
            if kind == "transferred" {
                assert_eq!(event["transfer_to"], bob);
            } else {
                assert_eq!(event["transfer_to"], Value::Null);
            }
            if kind == "ended" {
                assert_eq!(event["reason"], "completed");
                assert_eq!(
                    event["recording_url"],
                    format!("https://recordings.example.com/{call}.wav")
                );
            }
        }
    }

    // Nothing more can happen to an ended call.
    let again = command(
        &app,
        &call,
        json!({"action":"hangup","agent":bob}),
        Some(SECRET),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "invalid_state");
    let hangup = post_raw(&app, &format!("/sim/calls/{call}/hangup"), "").await;
    assert_eq!(hangup.status, StatusCode::CONFLICT);

    let calls = get(&app, "/sim/calls").await.json();
    let listed = calls
        .as_array()
        .and_then(|c| c.iter().find(|c| c["call_id"] == call.as_str()))
        .expect("call listed");
    assert_eq!(listed["state"], "ended");
    assert_eq!(listed["end_reason"], "completed");
    assert_eq!(listed["agent"], bob);
    assert_eq!(listed["events"], 8);
}

#[tokio::test]
async fn commands_are_authenticated_and_checked_against_the_call_state() {
    let mut relay = FakeRelay::start().await;
    let (_sim, app) = app(relay.config());
    let call = place(
        &app,
        json!({"from": "+41441234567", "agent": "carol@example.com"}),
    )
    .await;
    let ringing = relay.next_event().await;
    assert_eq!(ringing["agent"], "carol@example.com");
    let answer = json!({"action":"answer","agent":"carol@example.com"});

    let unsigned = command(&app, &call, answer.clone(), None).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unsigned.error_code(), "missing_signature");
    let forged = command(&app, &call, answer.clone(), Some("wrong-secret")).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.error_code(), "invalid_signature");
    // The signature covers the body: a signed body with a changed byte fails.
    let now = now_secs();
    let signature = sign(SECRET, now, answer.to_string().as_bytes());
    let tampered = Request::post(format!("/sim/pbx/calls/{call}/commands"))
        .header("x-cti-timestamp", now.to_string())
        .header("x-cti-signature", signature)
        .body(Body::from(
            json!({"action":"decline","agent":"carol@example.com"}).to_string(),
        ))
        .expect("request");
    assert_eq!(send(&app, tampered).await.status, StatusCode::UNAUTHORIZED);

    let unknown = command(&app, "call-nope", answer.clone(), Some(SECRET)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_code(), "unknown_call");

    let hold = command(
        &app,
        &call,
        json!({"action":"hold","agent":"carol@example.com"}),
        Some(SECRET),
    )
    .await;
    assert_eq!(hold.status, StatusCode::CONFLICT);
    assert!(hold.text().contains("ringing"), "{}", hold.text());

    let other_rep = command(
        &app,
        &call,
        json!({"action":"answer","agent":"dave@example.com"}),
        Some(SECRET),
    )
    .await;
    assert_eq!(other_rep.status, StatusCode::CONFLICT);
    assert!(
        other_rep.text().contains("carol@example.com"),
        "{}",
        other_rep.text()
    );

    let launch = command(&app, &call, json!({"action":"launch"}), Some(SECRET)).await;
    assert_eq!(launch.status, StatusCode::BAD_REQUEST);
    assert_eq!(launch.error_code(), "invalid_command");
    assert!(launch.text().contains("launch"), "{}", launch.text());

    let transfer_nobody = command(
        &app,
        &call,
        json!({"action":"transfer","agent":"carol@example.com"}),
        Some(SECRET),
    )
    .await;
    assert_eq!(transfer_nobody.status, StatusCode::BAD_REQUEST);
    assert!(
        transfer_nobody.text().contains("target"),
        "{}",
        transfer_nobody.text()
    );

    let not_json = Request::post(format!("/sim/pbx/calls/{call}/commands"))
        .header("x-cti-timestamp", now.to_string())
        .header("x-cti-signature", sign(SECRET, now, b"{nope"))
        .body(Body::from("{nope"))
        .expect("request");
    let not_json = send(&app, not_json).await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.error_code(), "malformed_json");

    // None of the refused commands produced an event: the next one is the decline's.
    let decline = command(
        &app,
        &call,
        json!({"action":"decline","agent":"carol@example.com"}),
        Some(SECRET),
    )
    .await;
    assert_eq!(decline.status, StatusCode::ACCEPTED);
    let ended = relay.next_event().await;
    assert_event(&ended, &format!("{call}-e2"), "ended", "carol@example.com");
    assert_eq!(ended["reason"], "declined");
    assert_eq!(ended["recording_url"], Value::Null);
}

#[tokio::test]
async fn the_caller_hanging_up_a_ringing_call_is_a_missed_call() {
    let mut relay = FakeRelay::start().await;
    let (_sim, app) = app(relay.config());
    let call = place(
        &app,
        json!({"from": "+41 44 123 45 67", "to": "+41 44 999 00 11"}),
    )
    .await;
    let ringing = relay.next_event().await;
    assert_eq!(ringing["to"], "+41 44 999 00 11");

    let reply = post_raw(&app, &format!("/sim/calls/{call}/hangup"), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["reason"], "missed");
    let ended = relay.next_event().await;
    assert_event(&ended, &format!("{call}-e2"), "ended", "alice@example.com");
    assert_eq!(ended["reason"], "missed");
    assert_eq!(ended["recording_url"], Value::Null);

    let again = post_raw(&app, &format!("/sim/calls/{call}/hangup"), "").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "invalid_state");
    let unknown = post_raw(&app, "/sim/calls/call-unknown/hangup", "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_code(), "unknown_call");
}

#[tokio::test]
async fn the_caller_hanging_up_an_answered_call_completes_it() {
    let mut relay = FakeRelay::start().await;
    let (_sim, app) = app(relay.config());
    let call = place(&app, json!({"from": "+41441234567"})).await;
    relay.next_event().await;
    let answer = command(
        &app,
        &call,
        json!({"action":"answer","agent":"alice@example.com"}),
        Some(SECRET),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(relay.next_event().await["type"], "answered");

    let reply = post_raw(&app, &format!("/sim/calls/{call}/hangup"), "").await;
    assert_eq!(reply.json()["reason"], "completed");
    let ended = relay.next_event().await;
    assert_eq!(ended["reason"], "completed");
    assert!(
        ended["recording_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );
}

/// Review F6: the PBX takes a control request only for the call, and the time, it was signed
/// for, and only once.
#[tokio::test]
async fn a_captured_command_is_refused_for_another_call_later_or_twice() {
    let mut relay = FakeRelay::start().await;
    let (_sim, app) = app(relay.config());
    let first = place(
        &app,
        json!({"from": "+41441234567", "agent": "carol@example.com"}),
    )
    .await;
    let second = place(
        &app,
        json!({"from": "+41441234568", "agent": "carol@example.com"}),
    )
    .await;
    relay.next_event().await;
    relay.next_event().await;

    let now = now_secs();
    let body = json!({"action":"decline","agent":"carol@example.com","call_id":first,
        "nonce":"n-1"})
    .to_string();
    // The same signed request aimed at the other call.
    let elsewhere = signed_command(&app, &second, &body, Some(SECRET), now).await;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);
    assert_eq!(elsewhere.error_code(), "invalid_signature");
    // Signed six minutes ago (or ahead).
    for at in [now - 360, now + 360] {
        let stale = signed_command(&app, &first, &body, Some(SECRET), at).await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
        assert_eq!(stale.error_code(), "stale_signature");
    }
    // Without the time, as relays signed before.
    let legacy = Request::post(format!("/sim/pbx/calls/{first}/commands"))
        .header(
            "x-cti-signature",
            cti_protocol::signature::sign_legacy(SECRET, body.as_bytes()),
        )
        .body(Body::from(body.clone()))
        .expect("request");
    let legacy = send(&app, legacy).await;
    assert_eq!(legacy.status, StatusCode::UNAUTHORIZED);
    assert_eq!(legacy.error_code(), "missing_timestamp");

    let taken = signed_command(&app, &first, &body, Some(SECRET), now).await;
    assert_eq!(taken.status, StatusCode::ACCEPTED, "{}", taken.text());
    let replayed = signed_command(&app, &first, &body, Some(SECRET), now).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replayed.error_code(), "replayed_request");
    let ended = relay.next_event().await;
    assert_eq!(ended["call_id"], first.as_str());
    assert_eq!(ended["type"], "ended");
}

/// Review F6: a PBX given the relay's own controls key checks commands with it: a command
/// signed with the webhook secret (the key of the PBX's events) is refused.
#[tokio::test]
async fn with_a_controls_key_commands_signed_with_the_webhook_secret_are_refused() {
    const CONTROLS: &str = "the-controls-key-0123";
    let mut relay = FakeRelay::start().await;
    let (_sim, app) = app(SimConfig {
        controls_secret: Some(CONTROLS.into()),
        ..relay.config()
    });
    let call = place(
        &app,
        json!({"from": "+41441234567", "agent": "carol@example.com"}),
    )
    .await;
    relay.next_event().await;
    let now = now_secs();
    let body = json!({"action":"decline","agent":"carol@example.com","call_id":call,
        "nonce":"n-1"})
    .to_string();
    let webhook_key = signed_command(&app, &call, &body, Some(SECRET), now).await;
    assert_eq!(webhook_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(webhook_key.error_code(), "invalid_signature");
    let taken = signed_command(&app, &call, &body, Some(CONTROLS), now).await;
    assert_eq!(taken.status, StatusCode::ACCEPTED, "{}", taken.text());
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_event() {
    let mut relay = FakeRelay::start().await;
    relay.fail_next.store(2, Ordering::SeqCst);
    let (sim, app) = app(relay.config());
    let call = place(&app, json!({"from": "+41441234567"})).await;

    let first = relay.next().await;
    let second = relay.next().await;
    let third = relay.next().await;
    assert_eq!(first.body, second.body, "a retry resends the same event");
    assert_eq!(second.body, third.body);
    assert_eq!(
        third.signature,
        sign(SECRET, third.signed_at(), &third.body)
    );
    assert_eq!(third.event()["id"], format!("{call}-e1"));
    assert_eq!(relay.fail_next.load(Ordering::SeqCst), 0);
    let listed = sim.pbx.calls();
    assert_eq!(listed[0].state, cti_sim::pbx::LegState::Ringing);
}

#[tokio::test]
async fn a_relay_that_refuses_the_ringing_fails_the_call_with_its_reason() {
    let mut relay = FakeRelay::start().await;
    relay.reject_with.store(401, Ordering::SeqCst);
    let (sim, app) = app(relay.config());
    let reply = post_json(&app, "/sim/calls", json!({"from": "+41441234567"})).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.error_code(), "relay_rejected");
    let message = reply.json()["error"]["message"].to_string();
    assert!(
        message.contains("401") && message.contains("does not match"),
        "{message}"
    );
    // A 4xx is final: exactly one attempt.
    relay.next().await;
    assert!(relay.seen.try_recv().is_err(), "no retry after a 4xx");
    let calls = sim.pbx.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].state, cti_sim::pbx::LegState::Ended);
    assert_eq!(calls[0].end_reason, Some(cti_protocol::EndReason::Failed));
}

#[tokio::test]
async fn an_unreachable_relay_fails_the_call_after_bounded_retries() {
    // A port that was free a moment ago: nothing listens there now.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let (_sim, app) = app(SimConfig {
        relay_url: url,
        ..config()
    });
    let reply = post_json(&app, "/sim/calls", json!({"from": "+41441234567"})).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.error_code(), "relay_unreachable");
}

#[tokio::test]
async fn placing_a_call_needs_a_caller() {
    let (sim, app) = app(config());
    for (body, code) in [
        ("{", "malformed_json"),
        ("{}", "invalid_request"),
        (r#"{"from":"  "}"#, "invalid_request"),
        (r#"{"from":5}"#, "invalid_request"),
        (
            r#"{"from":"+41441234567","colour":"red"}"#,
            "invalid_request",
        ),
    ] {
        let reply = post_raw(&app, "/sim/calls", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.error_code(), code, "{body}");
    }
    assert!(sim.pbx.calls().is_empty(), "no call was created");
    assert_eq!(get(&app, "/sim/calls").await.json(), json!([]));
}

// ---- Identity provider -----------------------------------------------------------------------

fn decoding_key(jwks: &Value) -> DecodingKey {
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["kid"], "sim-1");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    DecodingKey::from_rsa_components(key["n"].as_str().expect("n"), key["e"].as_str().expect("e"))
        .expect("JWKS key")
}

fn validation() -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["cti-sim"]);
    validation.set_audience(&["cti-relay"]);
    validation
}

#[tokio::test]
async fn tokens_verify_against_the_jwks_and_carry_the_claims() {
    let (sim, app) = app(config());
    let jwks = get(&app, "/sim/jwks.json").await;
    assert_eq!(jwks.status, StatusCode::OK);
    let key = decoding_key(&jwks.json());

    let reply = get(
        &app,
        "/sim/token?agent=anna.schmidt@example.com&tenant=t9&ttl=120",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header(header::CACHE_CONTROL), "no-store");
    let body = reply.json();
    assert_eq!(body["agent"], "anna.schmidt@example.com");
    assert_eq!(body["tenant"], "t9");
    let token = body["token"].as_str().expect("token");

    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.kid.as_deref(), Some("sim-1"));
    assert_eq!(header.alg, Algorithm::RS256);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation())
        .expect("verifies")
        .claims;
    assert_eq!(claims["iss"], "cti-sim");
    assert_eq!(claims["aud"], "cti-relay");
    for name in ["sub", "user_name", "email"] {
        assert_eq!(claims[name], "anna.schmidt@example.com", "{name}");
    }
    assert_eq!(claims["zid"], "t9");
    assert_eq!(claims["given_name"], "Anna");
    assert_eq!(claims["family_name"], "Schmidt");
    let iat = claims["iat"].as_u64().expect("iat");
    let exp = claims["exp"].as_u64().expect("exp");
    assert_eq!(exp - iat, 120);
    assert_eq!(body["expires_at"].as_u64(), Some(exp));

    // A token from another key does not verify: the check above is not vacuous.
    let mut tampered = token.to_string();
    tampered.truncate(tampered.len() - 4);
    tampered.push_str("AAAA");
    assert!(jsonwebtoken::decode::<Value>(&tampered, &key, &validation()).is_err());

    // `issue` signs with the same key.
    let issued = sim.idp.issue("bob@example.com", "t1", 60);
    let claims = jsonwebtoken::decode::<Value>(&issued, &key, &validation())
        .expect("verifies")
        .claims;
    assert_eq!(claims["user_name"], "bob@example.com");
    assert_eq!(claims["zid"], "t1");
}

#[tokio::test]
async fn token_defaults_to_the_demo_rep_for_eight_hours() {
    let (_sim, app) = app(config());
    let body = get(&app, "/sim/token").await.json();
    assert_eq!(body["agent"], "alice@example.com");
    assert_eq!(body["tenant"], "t1");
    let key = decoding_key(&get(&app, "/sim/jwks.json").await.json());
    let claims =
        jsonwebtoken::decode::<Value>(body["token"].as_str().expect("token"), &key, &validation())
            .expect("verifies")
            .claims;
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        8 * 3600
    );
    assert_eq!(claims["given_name"], "Alice");
}

#[tokio::test]
async fn bad_token_requests_are_named() {
    let (_sim, app) = app(config());
    for (uri, code) in [
        ("/sim/token?ttl=soon", "invalid_ttl"),
        ("/sim/token?ttl=0", "invalid_ttl"),
        ("/sim/token?ttl=-5", "invalid_ttl"),
        ("/sim/token?ttl=99999999999", "invalid_ttl"),
        ("/sim/token?agent=", "invalid_agent"),
        ("/sim/token?agent=%0A", "invalid_agent"),
        ("/sim/token?tenant=%20", "invalid_tenant"),
    ] {
        let reply = get(&app, uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(reply.error_code(), code, "{uri}");
    }
}

// ---- Host stand-in ---------------------------------------------------------------------------

#[tokio::test]
async fn the_host_page_and_its_assets_are_served() {
    let (_sim, app) = app(config());
    let root = get(&app, "/").await;
    assert!(root.status.is_redirection());
    assert_eq!(root.header(header::LOCATION), "/sim/host/");

    let page = get(&app, "/sim/host/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header(header::CONTENT_TYPE).starts_with("text/html"));
    let html = page.text();
    for needle in [
        r#"id="cti-frame""#,
        r#"allow="microphone""#,
        r#"id="payload-log""#,
        r#"id="pop-target""#,
        r#"id="caller-number""#,
        r#"id="ring-button""#,
        r#"id="caller-hangup""#,
        "SAP Sales Cloud (simulated)",
    ] {
        assert!(html.contains(needle), "page lacks {needle}");
    }
    // Only the widget's origin (and this one, where the rep signs in) may be framed, as with
    // V2's CSP settings.
    let csp = page.header(header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("frame-src http://relay.example:8080 'self';"),
        "{csp}"
    );

    let js = get(&app, "/sim/host/host.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(
        js.header(header::CONTENT_TYPE)
            .starts_with("text/javascript")
    );
    assert!(js.text().contains("/sim/host/payloads"));
    let css = get(&app, "/sim/host/host.css").await;
    assert!(css.header(header::CONTENT_TYPE).starts_with("text/css"));

    let config = get(&app, "/sim/host/config.json").await.json();
    assert_eq!(
        config,
        json!({"relay_url":"http://relay.example:8080","agent":"alice@example.com",
               "tenant":"t1","agent_number":"+41 44 999 00 00",
               "providers":[{"name":"generic","tenant":"demo","calls":"/sim/calls"}]})
    );
}

#[tokio::test]
async fn the_payload_log_keeps_arrival_order_and_flags_bad_anis() {
    let (sim, app) = app(config());
    let payloads = [
        (
            "page-aaaa0001",
            json!({"Type":"CALL","EventType":"INBOUND","Action":"NOTIFY","ANI":"+41441234567","ExternalReferenceID":"c1"}),
        ),
        (
            "page-bbbb0002",
            json!({"Type":"CALL","EventType":"INBOUND","Action":"NOTIFY","ANI":"044 123 45 67","ExternalReferenceID":"c2"}),
        ),
        (
            "page-aaaa0001",
            json!({"Type":"CALL","EventType":"UPDATEACTIVITY","Action":"END","ExternalReferenceID":"c1"}),
        ),
        (
            "page-aaaa0001",
            json!({"Type":"CALL","Action":"NOTIFY","ANI":41441234567_u64,"ExternalReferenceID":"c3"}),
        ),
    ];
    for (page, payload) in &payloads {
        let reply = post_json(
            &app,
            "/sim/host/payloads",
            json!({"page_id": page, "payload": payload, "encoding": "object"}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    }
    let listed = get(&app, "/sim/host/payloads").await.json();
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 4);
    for (i, (entry, (page, payload))) in listed.iter().zip(&payloads).enumerate() {
        assert_eq!(entry["seq"], i as u64 + 1);
        assert_eq!(entry["page_id"], *page);
        assert_eq!(entry["payload"], *payload);
        assert_eq!(entry["encoding"], "object");
        let at = entry["received_at"].as_str().expect("received_at");
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
    }
    let oks: Vec<bool> = listed
        .iter()
        .map(|e| e["ani_ok"].as_bool().expect("bool"))
        .collect();
    assert_eq!(oks, [true, false, true, false]);
    assert_eq!(sim.host.entries().len(), 4);

    let cleared = send(
        &app,
        Request::delete("/sim/host/payloads")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&app, "/sim/host/payloads").await.json(), json!([]));
    // Sequence numbers keep counting after a clear.
    post_json(
        &app,
        "/sim/host/payloads",
        json!({"page_id":"page-cccc0003","payload":{"Action":"END"}}),
    )
    .await;
    let entries = sim.host.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].seq, 5);
    assert_eq!(entries[0].encoding, None);
}

#[tokio::test]
async fn bad_payload_reports_are_refused_with_a_reason() {
    let (sim, app) = app(config());
    for (body, code, mentions) in [
        ("not json", "malformed_json", "line 1"),
        ("[]", "invalid_body", "page_id"),
        (
            r#"{"payload":{"Action":"NOTIFY"}}"#,
            "invalid_body",
            "page_id",
        ),
        (r#"{"page_id":"","payload":{}}"#, "invalid_body", "page_id"),
        (r#"{"page_id":"page-1"}"#, "invalid_body", "payload"),
        (
            r#"{"page_id":"page-1","payload":null}"#,
            "invalid_body",
            "payload",
        ),
        (r#"{"page_id":7,"payload":{}}"#, "invalid_body", "page_id"),
    ] {
        let reply = post_raw(&app, "/sim/host/payloads", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.error_code(), code, "{body}");
        assert!(reply.text().contains(mentions), "{body}: {}", reply.text());
    }
    assert!(sim.host.entries().is_empty());
}

#[tokio::test]
async fn lookup_answers_what_v2_would_pop() {
    let (sim, app) = app(config());
    let callers = get(&app, "/sim/host/callers").await;
    assert_eq!(callers.status, StatusCode::OK);
    assert_eq!(
        callers.json(),
        serde_json::to_value(sim.v2.sample_callers()).expect("json")
    );

    let e164 = sim
        .v2
        .sample_callers()
        .into_iter()
        // Foreign callers are presented internationally: without the spaces, that is E.164.
        .map(|c| c.number.replace([' ', '-'], ""))
        .find(|n| cti_sim::host::is_e164(n) && !sim.v2.lookup_phone(n).is_empty())
        .expect("a sample caller with an E.164 number on record");
    let encoded = e164.replacen('+', "%2B", 1);
    let reply = get(&app, &format!("/sim/host/lookup?ani={encoded}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["ani"], e164.as_str());
    assert_eq!(body["ani_ok"], true);
    assert_eq!(
        body["owners"],
        serde_json::to_value(sim.v2.lookup_phone(&e164)).expect("json")
    );

    // A `+` left unencoded in the URL decodes to a space; it is still the same number.
    let unencoded = get(&app, &format!("/sim/host/lookup?ani={e164}"))
        .await
        .json();
    assert_eq!(unencoded["owners"], body["owners"]);

    // Without the leading `+`, V2 cannot identify anyone.
    let digits = e164.trim_start_matches('+');
    let national = get(&app, &format!("/sim/host/lookup?ani={digits}"))
        .await
        .json();
    assert_eq!(national["ani_ok"], false);
    assert_eq!(national["owners"], json!([]));

    let missing = get(&app, "/sim/host/lookup").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error_code(), "invalid_query");
}

// ---- Configuration ---------------------------------------------------------------------------

fn from(vars: &[(&str, &str)]) -> Result<SimConfig, ConfigError> {
    let vars: Vec<(String, OsString)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    SimConfig::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

#[test]
fn configuration_comes_from_sim_variables() {
    let defaults = from(&[]).expect("defaults");
    assert_eq!(defaults.listen, SimConfig::default().listen);
    assert_eq!(defaults.relay_url, "http://127.0.0.1:8080");
    assert_eq!(defaults.request_budget, None);

    let c = from(&[
        ("SIM_LISTEN", "0.0.0.0:9000"),
        ("SIM_RELAY_URL", "http://relay.internal:8080/"),
        ("SIM_TENANT", "acme"),
        ("SIM_WEBHOOK_SECRET", "s3"),
        ("SIM_V2_USER", "u"),
        ("SIM_V2_PASSWORD", "p"),
        ("SIM_AGENT", "bob@example.com"),
        ("SIM_RECORDS", "12"),
        ("SIM_REQUEST_BUDGET", "500"),
    ])
    .expect("valid");
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.relay_url, "http://relay.internal:8080");
    assert_eq!(
        c.relay_public_url, "http://relay.internal:8080",
        "public URL follows the relay URL"
    );
    assert_eq!(
        (c.tenant.as_str(), c.webhook_secret.as_str()),
        ("acme", "s3")
    );
    assert_eq!((c.v2_user.as_str(), c.v2_password.as_str()), ("u", "p"));
    assert_eq!(c.demo_agent, "bob@example.com");
    assert_eq!(c.records, 12);
    assert_eq!(c.request_budget, Some(500));

    let split = from(&[
        ("SIM_RELAY_URL", "http://10.0.0.5:8080"),
        ("SIM_RELAY_PUBLIC_URL", "https://cti.example.com"),
        ("SIM_REQUEST_BUDGET", "none"),
    ])
    .expect("valid");
    assert_eq!(split.relay_public_url, "https://cti.example.com");
    assert_eq!(split.request_budget, None);

    let providers = from(&[
        (
            "SIM_PROVIDERS",
            "generic=demo, genesys=demo-genesys,ringcentral=demo-ringcentral",
        ),
        ("SIM_PROVIDER", "genesys"),
    ])
    .expect("valid");
    let names: Vec<(&str, &str)> = providers
        .providers
        .iter()
        .map(|p| (p.name.as_str(), p.tenant.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("genesys", "demo-genesys"),
            ("generic", "demo"),
            ("ringcentral", "demo-ringcentral")
        ]
    );
}

#[test]
fn bad_configuration_names_the_variable() {
    for (var, value) in [
        ("SIM_LISTEN", "localhost"),
        ("SIM_RELAY_URL", "relay:8080"),
        ("SIM_RELAY_PUBLIC_URL", "ftp://x"),
        ("SIM_RECORDS", "many"),
        ("SIM_RECORDS", "-1"),
        ("SIM_REQUEST_BUDGET", "1e3"),
        ("SIM_TENANT", ""),
        ("SIM_WEBHOOK_SECRET", " "),
        ("SIM_PROVIDERS", "avaya=demo"),
        ("SIM_PROVIDERS", "genesys"),
        ("SIM_PROVIDER", "ringcentral"),
    ] {
        let err = from(&[(var, value)]).expect_err(var);
        assert!(err.to_string().contains(var), "{var}={value:?}: {err}");
    }
    // Secrets are never echoed back.
    let err = from(&[("SIM_V2_PASSWORD", "")]).expect_err("empty password");
    assert_eq!(
        err,
        ConfigError::Empty {
            var: "SIM_V2_PASSWORD"
        }
    );
}
