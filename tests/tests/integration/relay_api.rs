//! The relay's public contract, driven over real sockets with the simulator behind it.

use std::time::Duration;

use cti_sim::pbx::sign_now as sign;
use cti_tests::{Received, Stack, WsClient};
use serde_json::{Value, json};

const AGENT: &str = "alice@example.com";
const SECRET: &str = "demo-webhook-secret";

fn event(id: &str, call: &str, kind: &str, from: &str) -> Value {
    json!({"id": id, "call_id": call, "type": kind, "direction": "inbound", "from": from,
           "to": "+41 44 999 00 00", "agent": AGENT, "at": cti_tests::now_rfc3339(),
           "transfer_to": null, "reason": null, "recording_url": null})
}

async fn post_raw(
    stack: &Stack,
    tenant: &str,
    body: &[u8],
    content_type: Option<&str>,
    signature: Option<(String, String)>,
) -> (u16, Value) {
    let mut request = stack
        .http
        .post(format!(
            "{}/v1/tenants/{tenant}/telephony/generic",
            stack.relay.url()
        ))
        .body(body.to_vec());
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if let Some((timestamp, sig)) = signature {
        request = request
            .header("x-cti-timestamp", timestamp)
            .header("x-cti-signature", sig);
    }
    let response = request.send().await.expect("relay answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn post_signed(stack: &Stack, body: &[u8]) -> (u16, Value) {
    post_raw(
        stack,
        "demo",
        body,
        Some("application/json"),
        Some(sign(SECRET, body)),
    )
    .await
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let stack = Stack::start().await.expect("stack starts");
    let health = stack
        .http
        .get(format!("{}/healthz", stack.relay.url()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = stack.readyz().await.expect("readyz");
    assert_eq!(ready["status"], "ready");
    assert!(
        ready["tenants"]["demo"]["numbers"].as_u64().unwrap_or(0) > 300,
        "{ready}"
    );
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics.contains("cti_index_numbers{tenant=\"demo\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_webhook_input_gets_a_named_error_and_a_metric() {
    let stack = Stack::start_with(|c| c.webhook_max_bytes = 2048)
        .await
        .expect("stack starts");
    let valid = event("evt-1", "call-1", "ringing", "044 123 45 67").to_string();
    let cases: Vec<(&str, (u16, Value), u16, &str)> = vec![
        (
            "malformed JSON",
            post_signed(&stack, b"{\"id\": ").await,
            400,
            "malformed_json",
        ),
        (
            "missing field",
            post_signed(
                &stack,
                valid.replace("\"call_id\":\"call-1\",", "").as_bytes(),
            )
            .await,
            422,
            "invalid_event",
        ),
        (
            "wrong type",
            post_signed(
                &stack,
                valid
                    .replace("\"agent\":\"alice@example.com\"", "\"agent\":42")
                    .as_bytes(),
            )
            .await,
            422,
            "invalid_event",
        ),
        (
            "unknown event type",
            post_signed(
                &stack,
                valid.replace("\"ringing\"", "\"exploded\"").as_bytes(),
            )
            .await,
            422,
            "unknown_event_type",
        ),
        (
            "too large",
            post_signed(&stack, &vec![b' '; 4096]).await,
            413,
            "payload_too_large",
        ),
        (
            "missing signature",
            post_raw(
                &stack,
                "demo",
                valid.as_bytes(),
                Some("application/json"),
                None,
            )
            .await,
            401,
            "missing_signature",
        ),
        (
            "wrong signature",
            post_raw(
                &stack,
                "demo",
                valid.as_bytes(),
                Some("application/json"),
                Some(sign("wrong-secret-wrong", valid.as_bytes())),
            )
            .await,
            401,
            "bad_signature",
        ),
        (
            "unknown tenant",
            post_raw(
                &stack,
                "nobody",
                valid.as_bytes(),
                Some("application/json"),
                Some(sign(SECRET, valid.as_bytes())),
            )
            .await,
            404,
            "unknown_tenant",
        ),
        (
            "wrong content type",
            post_raw(
                &stack,
                "demo",
                valid.as_bytes(),
                Some("text/plain"),
                Some(sign(SECRET, valid.as_bytes())),
            )
            .await,
            415,
            "unsupported_media_type",
        ),
    ];
    for (what, (status, body), want_status, want_code) in cases {
        assert_eq!(status, want_status, "{what}: {body}");
        assert_eq!(body["error"]["code"], want_code, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
    let metrics = stack.metrics().await.expect("metrics");
    for code in [
        "malformed_json",
        "invalid_event",
        "unknown_event_type",
        "payload_too_large",
        "missing_signature",
        "bad_signature",
        "unknown_tenant",
        "unsupported_media_type",
    ] {
        assert!(
            metrics.contains(&format!("outcome=\"{code}\"")),
            "no metric for {code}:\n{metrics}"
        );
    }
    // Nothing was accepted along the way, and the relay still serves.
    let (status, _) = post_signed(&stack, valid.as_bytes()).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn events_reach_the_rep_once_in_order_with_matches() {
    let stack = Stack::start().await.expect("stack starts");
    let (mut ws, welcome) = WsClient::signed_in(&stack, AGENT, None)
        .await
        .expect("signed in");
    assert_eq!(welcome["agent"], AGENT);
    assert_eq!(welcome["tenant"], "demo");
    let (dialled, e164, name) = stack.single_match_caller().expect("a seeded caller");

    let ringing = event("evt-r", "call-7", "ringing", &dialled).to_string();
    assert_eq!(post_signed(&stack, ringing.as_bytes()).await.0, 202);
    // The provider redelivers: acknowledged, not applied again.
    assert_eq!(post_signed(&stack, ringing.as_bytes()).await.0, 200);

    let call = ws
        .recv_until("the ringing call", |m| m["type"] == "call")
        .await
        .expect("call message");
    let seq1 = call["seq"].as_u64().expect("seq");
    assert_eq!(call["call"]["state"], "ringing");
    assert_eq!(call["call"]["from"], e164.as_str());
    assert_eq!(call["call"]["pop"]["name"], name.as_str());
    assert_eq!(
        call["call"]["matches"][0]["kind"],
        call["call"]["pop"]["kind"]
    );

    let answered = event("evt-a", "call-7", "answered", &dialled).to_string();
    assert_eq!(post_signed(&stack, answered.as_bytes()).await.0, 202);
    let late_ringing = event("evt-r2", "call-7", "ringing", &dialled).to_string();
    assert_eq!(post_signed(&stack, late_ringing.as_bytes()).await.0, 202);
    let ended = event("evt-e", "call-7", "ended", &dialled).to_string();
    assert_eq!(post_signed(&stack, ended.as_bytes()).await.0, 202);

    let mut states = Vec::new();
    let mut live_seqs = Vec::new();
    let mut last_seq = seq1;
    while states.last().map(String::as_str) != Some("ended") {
        let m = ws
            .recv_until("call updates", |m| m["type"] == "call")
            .await
            .expect("update");
        let seq = m["seq"].as_u64().expect("seq");
        assert!(seq > last_seq, "sequence numbers increase");
        last_seq = seq;
        live_seqs.push(seq);
        states.push(m["call"]["state"].as_str().unwrap_or_default().to_string());
    }
    // Card enrichment may add a second "ringing" or "connected" view; a late ringing never
    // brings the call back after it was answered.
    let first_connected = states
        .iter()
        .position(|s| s == "connected")
        .expect("connected");
    assert!(
        !states[first_connected..].contains(&"ringing".to_string()),
        "{states:?}"
    );

    // Reconnecting with the first seq replays exactly what came after it.
    let (mut again, _) = WsClient::signed_in(&stack, AGENT, Some(seq1))
        .await
        .expect("signed in");
    let mut replayed = Vec::new();
    while replayed.last() != Some(&last_seq) {
        let m = again
            .recv_until("replay", |m| m["type"] == "call")
            .await
            .expect("replay");
        replayed.push(m["seq"].as_u64().expect("seq"));
    }
    assert_eq!(
        replayed, live_seqs,
        "exactly the messages after seq1, in order"
    );
}

#[tokio::test]
async fn another_rep_sees_nothing() {
    let stack = Stack::start().await.expect("stack starts");
    let (mut bob, _) = WsClient::signed_in(&stack, "bob@example.com", None)
        .await
        .expect("bob");
    let (mut alice, _) = WsClient::signed_in(&stack, AGENT, None)
        .await
        .expect("alice");
    let ringing = event("evt-x", "call-x", "ringing", "+41 44 000 00 00").to_string();
    assert_eq!(post_signed(&stack, ringing.as_bytes()).await.0, 202);
    alice
        .recv_until("alice's call", |m| m["type"] == "call")
        .await
        .expect("alice gets it");
    // Bob's connection answers a ping, and nothing else came before the pong.
    bob.send_json(&json!({"type":"ping","nonce":7}))
        .await
        .expect("ping");
    let next = bob.recv_json().await.expect("pong");
    assert_eq!(next, json!({"type":"pong","nonce":7}));
}

/// Review F20: the phone system and the identity provider may spell a rep's id differently; the
/// relay normalises both (trimmed, lower-cased), so the call reaches the rep's widget.
#[tokio::test]
async fn a_rep_spelt_in_another_case_by_the_pbx_still_gets_the_call() {
    let stack = Stack::start().await.expect("stack starts");
    let (mut alice, welcome) = WsClient::signed_in(&stack, AGENT, None)
        .await
        .expect("alice");
    assert_eq!(welcome["agent"], AGENT);
    let mut ringing = event("evt-case", "call-case", "ringing", "+41 44 000 00 01");
    ringing["agent"] = json!("Alice@Example.com");
    let body = ringing.to_string();
    assert_eq!(post_signed(&stack, body.as_bytes()).await.0, 202);
    let call = alice
        .recv_until("the call of Alice@Example.com", |m| m["type"] == "call")
        .await
        .expect("alice gets it");
    assert_eq!(call["call"]["id"], "call-case");
    assert_eq!(call["call"]["agent"], AGENT);

    // A token spelling the rep in capitals is the same rep, with the same calls.
    let (mut again, welcome) = WsClient::signed_in(&stack, "ALICE@example.com", None)
        .await
        .expect("alice in capitals");
    assert_eq!(welcome["agent"], AGENT);
    let current = again
        .recv_until("the call in progress", |m| m["type"] == "call")
        .await
        .expect("the call in progress");
    assert_eq!(current["call"]["id"], "call-case");
}

#[tokio::test]
async fn call_controls_travel_to_the_pbx_and_back() {
    let stack = Stack::start().await.expect("stack starts");
    let (mut ws, _) = WsClient::signed_in(&stack, AGENT, None)
        .await
        .expect("signed in");
    let call_id = stack
        .place_call("+41 44 000 11 22", AGENT)
        .await
        .expect("call placed");
    ws.recv_until("ringing", |m| {
        m["type"] == "call" && m["call"]["id"] == call_id.as_str()
    })
    .await
    .expect("ringing");
    for (action, state) in [
        ("answer", "connected"),
        ("hold", "held"),
        ("resume", "connected"),
        ("hangup", "ended"),
    ] {
        ws.send_json(&json!({"type":"command","call_id": call_id, "action": action}))
            .await
            .expect("command sent");
        ws.recv_until(&format!("{state} after {action}"), |m| {
            m["type"] == "call" && m["call"]["state"] == state
        })
        .await
        .expect("state confirmed by the PBX");
    }
    // A control for a call the rep does not have is an error message, not a closed socket.
    ws.send_json(&json!({"type":"command","call_id":"nope","action":"answer"}))
        .await
        .expect("sent");
    let err = ws
        .recv_until("error", |m| m["type"] == "error")
        .await
        .expect("error");
    assert_eq!(err["code"], "unknown_call");
}

#[tokio::test]
async fn websocket_misuse_is_closed_with_a_reason() {
    let stack = Stack::start_with(|c| c.hello_timeout = Duration::from_millis(300))
        .await
        .expect("stack starts");
    let close_of = |r: Received| match r {
        Received::Closed(code, reason) => (code, reason),
        other => panic!("expected a close, got {other:?}"),
    };

    let mut ws = WsClient::connect(&stack.ws_url()).await.expect("connects");
    ws.send_text("this is not json").await.expect("sent");
    let (code, reason) = close_of(ws.recv().await.expect("close"));
    assert_eq!(code, 4400);
    assert!(reason.contains("malformed"), "{reason}");

    let mut ws = WsClient::connect(&stack.ws_url()).await.expect("connects");
    ws.send_json(&json!({"type":"ping"})).await.expect("sent");
    let (code, reason) = close_of(ws.recv().await.expect("close"));
    assert_eq!(code, 4400);
    assert!(reason.contains("hello"), "{reason}");

    let mut ws = WsClient::connect(&stack.ws_url()).await.expect("connects");
    ws.send_json(&json!({"type":"hello","token":"not.a.jwt","last_seq":null}))
        .await
        .expect("sent");
    let (code, reason) = close_of(ws.recv().await.expect("close"));
    assert_eq!(code, 4401);
    assert!(reason.contains("token"), "{reason}");

    let mut ws = WsClient::connect(&stack.ws_url()).await.expect("connects");
    ws.send_binary(&[0, 1, 2]).await.expect("sent");
    let (code, _) = close_of(ws.recv().await.expect("close"));
    assert_eq!(code, 1003);

    // Silence: closed once the hello timeout passes.
    let mut ws = WsClient::connect(&stack.ws_url()).await.expect("connects");
    let (code, reason) = close_of(ws.recv().await.expect("close"));
    assert_eq!(code, 4408);
    assert!(reason.contains("hello"), "{reason}");

    let metrics = stack.metrics().await.expect("metrics");
    assert!(metrics.contains("reason=\"bad_token\""), "{metrics}");
    assert!(metrics.contains("reason=\"timeout\""), "{metrics}");
}

/// Creates a contact in the simulated V2 tenant after the relay built its index.
async fn create_contact(stack: &Stack, given: &str, phone: &str) {
    let response = stack
        .http
        .post(format!(
            "{}/sap/c4c/api/v1/contact-person-service/contactPersons",
            stack.sim.url()
        ))
        .basic_auth("demo", Some("demo"))
        .json(&json!({"givenName": given, "familyName": "Newcomer", "formattedName": format!("{given} Newcomer"),
                      "phoneFormattedNumber": phone,
                      "isContactPersonFor": [{"accountId": "acc-new", "accountFormattedName": "Newcomer AG", "country": "CH"}]}))
        .send()
        .await
        .expect("V2 answers");
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_caller_missing_from_the_index_is_found_in_v2() {
    let stack = Stack::start().await.expect("stack starts");
    create_contact(&stack, "Nora", "+41 44 668 18 00").await;
    let (mut ws, _) = WsClient::signed_in(&stack, AGENT, None)
        .await
        .expect("signed in");
    let ringing = event("evt-live", "call-live", "ringing", "044 668 18 00").to_string();
    assert_eq!(post_signed(&stack, ringing.as_bytes()).await.0, 202);
    let call = ws
        .recv_until("the call", |m| m["type"] == "call")
        .await
        .expect("call");
    assert_eq!(call["call"]["pop"]["name"], "Nora Newcomer");
    assert_eq!(call["call"]["pop"]["account"]["name"], "Newcomer AG");
}

#[tokio::test]
async fn a_slow_v2_answer_updates_the_call_after_it_went_out_unknown() {
    let stack = Stack::start_with(|c| c.miss_budget = Duration::from_millis(50))
        .await
        .expect("stack starts");
    create_contact(&stack, "Otto", "+41 44 668 18 01").await;
    // The three live queries (accounts, contacts, individual customers) each take a second.
    let fault = stack
        .http
        .post(format!("{}/sim/faults", stack.sim.url()))
        .json(&json!({"delay_ms": 1000, "count": 3}))
        .send()
        .await
        .expect("fault set");
    assert_eq!(fault.status(), 200);
    let (mut ws, _) = WsClient::signed_in(&stack, AGENT, None)
        .await
        .expect("signed in");
    let ringing = event("evt-slow", "call-slow", "ringing", "044 668 18 01").to_string();
    assert_eq!(post_signed(&stack, ringing.as_bytes()).await.0, 202);
    let first = ws
        .recv_until("the call", |m| m["type"] == "call")
        .await
        .expect("call");
    assert!(
        first["call"]["pop"].is_null(),
        "pushed unknown within the budget: {first}"
    );
    let later = ws
        .recv_until("the late match", |m| {
            m["type"] == "call" && !m["call"]["pop"].is_null()
        })
        .await
        .expect("update");
    assert_eq!(later["call"]["pop"]["name"], "Otto Newcomer");
    assert_eq!(later["call"]["state"], "ringing");
}

#[tokio::test]
async fn an_unknown_number_is_asked_once_then_remembered() {
    let stack = Stack::start().await.expect("stack starts");
    let (mut ws, _) = WsClient::signed_in(&stack, AGENT, None)
        .await
        .expect("signed in");
    let first = event("evt-u1", "call-u1", "ringing", "044 668 18 02").to_string();
    assert_eq!(post_signed(&stack, first.as_bytes()).await.0, 202);
    ws.recv_until("first call", |m| m["type"] == "call")
        .await
        .expect("call");
    let asked = stack.sim.sim.v2.request_count();
    let second = event("evt-u2", "call-u2", "ringing", "+41 44 668 18 02").to_string();
    assert_eq!(post_signed(&stack, second.as_bytes()).await.0, 202);
    let call = ws
        .recv_until("second call", |m| m["type"] == "call")
        .await
        .expect("call");
    assert!(call["call"]["pop"].is_null());
    assert_eq!(
        stack.sim.sim.v2.request_count(),
        asked,
        "the negative answer was cached"
    );
}

#[tokio::test]
async fn sign_in_goes_to_the_identity_provider_and_returns_only_to_the_widget() {
    let stack = Stack::start().await.expect("stack starts");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = no_redirects
        .get(format!("{}/v1/agent/sign-in", stack.relay.url()))
        .header("x-forwarded-proto", "https")
        .header("host", "cti.example.com")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("text")
        .to_string();
    assert!(
        location.starts_with(&format!("{}/sim/authorize?", stack.sim.url())),
        "{location}"
    );
    assert!(
        location.contains("redirect_uri=https%3A%2F%2Fcti.example.com%2Fwidget%2F"),
        "{location}"
    );

    // The identity provider sends tokens back to the relay's widget and nowhere else.
    let widget = format!("{}/widget/", stack.relay.url());
    let response = no_redirects
        .get(format!("{}/sim/authorize", stack.sim.url()))
        .query(&[("redirect_uri", widget.as_str())])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 303);
    let back = response.headers()["location"].to_str().expect("text");
    assert!(back.starts_with(&format!("{widget}#token=ey")), "{back}");
    // Asked as XSUAA is asked, it answers as XSUAA does.
    let response = no_redirects
        .get(format!("{}/sim/authorize", stack.sim.url()))
        .query(&[
            ("redirect_uri", widget.as_str()),
            ("response_type", "token"),
        ])
        .send()
        .await
        .expect("answers");
    let back = response.headers()["location"].to_str().expect("text");
    assert!(
        back.starts_with(&format!("{widget}#access_token=ey")),
        "{back}"
    );
    assert!(back.contains("&token_type=bearer&expires_in="), "{back}");
    let response = no_redirects
        .get(format!("{}/sim/authorize", stack.sim.url()))
        .query(&[("redirect_uri", widget.as_str()), ("response_type", "code")])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 400);
    let response = no_redirects
        .get(format!("{}/sim/authorize", stack.sim.url()))
        .query(&[("redirect_uri", "https://evil.example/widget/")])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 400);
}
