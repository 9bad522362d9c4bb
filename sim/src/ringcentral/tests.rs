//! The account's strictness over real HTTP: the simulator on one port, a webhook receiver on
//! another.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::{SimConfig, SimHandle};

/// What the test webhook receiver does with the validation request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Receiver {
    Echo,
    Silent,
    Oversized,
}

#[derive(Debug)]
struct Hook {
    mode: Receiver,
    deliveries: Mutex<Vec<(HeaderMap, Value)>>,
}

async fn receive_hook(
    axum::extract::State(hook): axum::extract::State<Arc<Hook>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(token) = headers.get("Validation-Token").cloned() {
        return match hook.mode {
            Receiver::Echo => ([("Validation-Token", token)], "").into_response(),
            Receiver::Silent => StatusCode::OK.into_response(),
            Receiver::Oversized => {
                ([("Validation-Token", token)], "x".repeat(2000)).into_response()
            }
        };
    }
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    hook.deliveries.lock().push((headers, value));
    StatusCode::OK.into_response()
}

struct Setup {
    sim: SimHandle,
    hook: Arc<Hook>,
    hook_url: String,
    http: reqwest::Client,
}

impl Setup {
    async fn new(mode: Receiver) -> Setup {
        let sim = crate::spawn(SimConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..SimConfig::default()
        })
        .await
        .expect("sim");
        let hook = Arc::new(Hook {
            mode,
            deliveries: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let hook_url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let app = Router::new()
            .route("/hook", post(receive_hook))
            .with_state(hook.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Setup {
            sim,
            hook,
            hook_url,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/sim/ringcentral{path}", self.sim.url())
    }

    async fn grant(&self, form: &str, secret: &str) -> reqwest::Response {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("cti-relay-ringcentral:{secret}"));
        self.http
            .post(self.url("/restapi/oauth/token"))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
            .expect("token request")
    }

    async fn token(&self) -> String {
        let response = self
            .grant(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=demo-ringcentral-jwt",
                "demo-ringcentral-secret",
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_string()
    }

    async fn subscribe(&self, token: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/restapi/v1.0/subscription"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("subscribe");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn subscription(&self) -> Value {
        json!({"eventFilters": ["/restapi/v1.0/account/~/telephony/sessions"],
               "deliveryMode": {"transportType": "WebHook", "address": self.hook_url,
                                "verificationToken": "sixteen-chars-token"}})
    }

    fn deliveries(&self) -> Vec<(HeaderMap, Value)> {
        self.hook.deliveries.lock().clone()
    }
}

async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_api_wants_a_valid_bearer_and_answers_in_ringcentrals_error_shape() {
    let setup = Setup::new(Receiver::Echo).await;
    for auth in [None, Some("Bearer not-a-token")] {
        let mut request = setup
            .http
            .get(setup.url("/restapi/v1.0/account/~/extension"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("json");
        assert!(body["errorCode"].is_string(), "{body}");
        assert!(body["message"].is_string(), "{body}");
        assert_eq!(body["errors"][0]["errorCode"], body["errorCode"]);
    }
    let token = setup.token().await;
    let body: Value = setup
        .http
        .get(setup.url("/restapi/v1.0/account/~/extension?perPage=2&page=2"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(body["records"][0]["contact"]["email"], "carol@example.com");
    assert_eq!(body["records"][0]["extensionNumber"], "103");
    assert_eq!(body["paging"]["totalPages"], 2);
    let unknown = setup
        .http
        .get(setup.url("/restapi/v1.0/account/~/telephony/sessions/s-nope"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn the_token_endpoint_takes_the_apps_client_and_its_jwt_or_client_credentials() {
    let setup = Setup::new(Receiver::Echo).await;
    let wrong_secret = setup.grant("grant_type=client_credentials", "wrong").await;
    assert_eq!(wrong_secret.status(), 401);
    let wrong_jwt = setup
        .grant(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=forged",
            "demo-ringcentral-secret",
        )
        .await;
    assert_eq!(wrong_jwt.status(), 400);
    let password = setup
        .grant("grant_type=password", "demo-ringcentral-secret")
        .await;
    assert_eq!(password.status(), 400);
    let client = setup
        .grant("grant_type=client_credentials", "demo-ringcentral-secret")
        .await;
    assert_eq!(client.status(), 200);
    let body: Value = client.json().await.expect("json");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
}

#[tokio::test]
async fn a_malformed_subscription_is_refused_with_400() {
    let setup = Setup::new(Receiver::Echo).await;
    let token = setup.token().await;
    let mut bad_filter = setup.subscription();
    bad_filter["eventFilters"] = json!(["/restapi/v1.0/account/~/telephony/calls"]);
    let mut bad_address = setup.subscription();
    bad_address["deliveryMode"]["address"] = json!("ftp://example.com/hook");
    let mut public_http = setup.subscription();
    public_http["deliveryMode"]["address"] = json!("http://example.com/hook");
    let mut no_filters = setup.subscription();
    no_filters["eventFilters"] = json!([]);
    let mut pubnub = setup.subscription();
    pubnub["deliveryMode"]["transportType"] = json!("PubNub");
    for body in [bad_filter, bad_address, public_http, no_filters, pubnub] {
        let (status, answer) = setup.subscribe(&token, &body).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["errorCode"], "CMN-101");
    }
    assert!(setup.sim.sim.ringcentral.subscriptions().is_empty());
}

#[tokio::test]
async fn a_receiver_that_does_not_echo_the_validation_token_gets_no_subscription() {
    let setup = Setup::new(Receiver::Silent).await;
    let token = setup.token().await;
    let (status, answer) = setup.subscribe(&token, &setup.subscription()).await;
    assert_eq!(status, 400);
    assert_eq!(answer["errorCode"], "SUB-520");
    assert!(setup.sim.sim.ringcentral.subscriptions().is_empty());
}

#[tokio::test]
async fn a_receiver_that_answers_the_handshake_at_length_gets_no_subscription() {
    let setup = Setup::new(Receiver::Oversized).await;
    let token = setup.token().await;
    let (status, answer) = setup.subscribe(&token, &setup.subscription()).await;
    assert_eq!(status, 400);
    assert_eq!(answer["errorCode"], "SUB-525");
}

#[tokio::test]
async fn deliveries_carry_ringcentrals_headers_and_per_party_sequences() {
    let setup = Setup::new(Receiver::Echo).await;
    let token = setup.token().await;
    let (status, sub) = setup.subscribe(&token, &setup.subscription()).await;
    assert_eq!(status, 200, "{sub}");
    let rc = &setup.sim.sim.ringcentral;
    let sid = rc
        .place_call("+41446681800", "bob@example.com")
        .await
        .expect("rings");
    // Answer and hold through the API, then the caller hangs up.
    let session: Value = setup
        .http
        .get(setup.url(&format!("/restapi/v1.0/account/~/telephony/sessions/{sid}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    let party = session["parties"]
        .as_array()
        .expect("parties")
        .iter()
        .find(|p| {
            p["extensionId"].as_str()
                == rc
                    .extension_by_email("bob@example.com")
                    .map(|e| e.id.as_str())
        })
        .expect("bob's party")["id"]
        .as_str()
        .expect("id")
        .to_string();
    for action in ["answer", "hold"] {
        let response = setup
            .http
            .post(setup.url(&format!(
                "/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/{party}/{action}"
            )))
            .bearer_auth(&token)
            .send()
            .await
            .expect("action");
        assert_eq!(response.status(), 200, "{action}");
    }
    // Hold again is not allowed in Hold.
    let again = setup
        .http
        .post(setup.url(&format!(
            "/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/{party}/hold"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .expect("action");
    assert_eq!(again.status(), 409);
    rc.caller_hangup(&sid).await.expect("hangs up");
    let deliveries = until("four deliveries", || {
        let d = setup.deliveries();
        (d.len() >= 4).then_some(d)
    })
    .await;
    let (headers, first) = &deliveries[0];
    assert_eq!(headers["Verification-Token"], "sixteen-chars-token");
    assert_eq!(headers["user-agent"], "RingCentral-Webhook/8.3");
    assert_eq!(headers["content-type"], "application/json; charset=UTF-8");
    assert_eq!(
        first["event"],
        format!(
            "/restapi/v1.0/account/{}/telephony/sessions",
            super::ACCOUNT_ID
        )
    );
    assert_eq!(first["subscriptionId"], sub["id"]);
    assert_eq!(first["body"]["telephonySessionId"], sid);
    let codes: Vec<(&str, u64)> = deliveries
        .iter()
        .map(|(_, d)| {
            (
                d["body"]["parties"][0]["status"]["code"]
                    .as_str()
                    .unwrap_or_default(),
                d["body"]["sequence"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("Proceeding", 1),
            ("Answered", 2),
            ("Hold", 3),
            ("Disconnected", 4)
        ]
    );
    assert_eq!(deliveries[3].1["body"]["parties"][0]["missedCall"], false);
}

#[tokio::test]
async fn a_call_the_caller_gives_up_on_while_it_rings_is_missed() {
    let setup = Setup::new(Receiver::Echo).await;
    let token = setup.token().await;
    setup.subscribe(&token, &setup.subscription()).await;
    let rc = &setup.sim.sim.ringcentral;
    let sid = rc
        .place_call("+41446681800", "alice@example.com")
        .await
        .expect("rings");
    rc.caller_hangup(&sid).await.expect("hangs up");
    let last = until("the end", || setup.deliveries().get(1).cloned())
        .await
        .1;
    assert_eq!(last["body"]["parties"][0]["status"]["code"], "Disconnected");
    assert_eq!(last["body"]["parties"][0]["missedCall"], true);
}

#[tokio::test]
async fn a_subscription_lives_until_it_expires_or_is_deleted_and_is_404_after() {
    let setup = Setup::new(Receiver::Echo).await;
    let rc = &setup.sim.sim.ringcentral;
    rc.set_subscription_ttl(1);
    let token = setup.token().await;
    let (_, sub) = setup.subscribe(&token, &setup.subscription()).await;
    assert_eq!(sub["expiresIn"], 1);
    let id = sub["id"].as_str().expect("id").to_string();
    let path = setup.url(&format!("/restapi/v1.0/subscription/{id}"));
    let get = setup
        .http
        .get(&path)
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(get.status(), 200);
    // Expired: 404, and calls are no longer delivered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = setup
            .http
            .get(&path)
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .status();
        if status == 404 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let renew = setup
        .http
        .post(format!("{path}/renew"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("renew");
    assert_eq!(renew.status(), 404);
    assert!(
        rc.place_call("+41446681800", "alice@example.com")
            .await
            .is_err()
    );
    // A new one, deleted: 404 as well.
    rc.set_subscription_ttl(900);
    let (_, sub) = setup.subscribe(&token, &setup.subscription()).await;
    let path = setup.url(&format!(
        "/restapi/v1.0/subscription/{}",
        sub["id"].as_str().expect("id")
    ));
    let renewed = setup
        .http
        .post(format!("{path}/renew"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("renew");
    assert_eq!(renewed.status(), 200);
    let deleted = setup
        .http
        .delete(&path)
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let gone = setup
        .http
        .get(&path)
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn call_control_refuses_what_ringcentral_would() {
    let setup = Setup::new(Receiver::Echo).await;
    let token = setup.token().await;
    setup.subscribe(&token, &setup.subscription()).await;
    let rc = &setup.sim.sim.ringcentral;
    let sid = rc
        .place_call("+41446681800", "alice@example.com")
        .await
        .expect("rings");
    let alice = rc
        .extension_by_email("alice@example.com")
        .expect("alice")
        .clone();
    let pid = rc
        .calls()
        .into_iter()
        .find(|c| c.call_id == sid)
        .and_then(|c| {
            c.parties
                .into_iter()
                .find(|p| p.extension_id.as_deref() == Some(alice.id.as_str()))
        })
        .expect("alice's party")
        .id;
    let party = |action: &str| {
        setup.url(&format!(
            "/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/{pid}/{action}"
        ))
    };
    let post = |url: String, body: Value| {
        let request = setup.http.post(url).bearer_auth(&token).json(&body);
        async move { request.send().await.expect("request").status().as_u16() }
    };
    // Hold while it rings, answer from another rep's device, an unknown party or action.
    assert_eq!(post(party("hold"), json!({})).await, 409);
    assert_eq!(
        post(party("answer"), json!({"deviceId": "80400102"})).await,
        400
    );
    assert_eq!(
        post(
            setup.url(&format!(
                "/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/p-nope/answer"
            )),
            json!({})
        )
        .await,
        404
    );
    assert_eq!(post(party("explode"), json!({})).await, 404);
    assert_eq!(
        post(party("answer"), json!({"deviceId": alice.device_id})).await,
        200
    );
    // A transfer names exactly one target; a bridge names a session that exists.
    assert_eq!(
        post(
            party("transfer"),
            json!({"extensionNumber": "102", "phoneNumber": "+41446681801"})
        )
        .await,
        400
    );
    assert_eq!(
        post(party("transfer"), json!({"extensionNumber": "999"})).await,
        400
    );
    assert_eq!(
        post(
            party("bridge"),
            json!({"telephonySessionId": "s-nope", "partyId": "p-1"})
        )
        .await,
        404
    );
    // Call-out wants a device of the account, RingOut the rep's own phone.
    let call_out = setup.url("/restapi/v1.0/account/~/telephony/call-out");
    assert_eq!(
        post(
            call_out.clone(),
            json!({"to": {"phoneNumber": "+41446681801"}})
        )
        .await,
        400
    );
    assert_eq!(
        post(
            call_out.clone(),
            json!({"from": {"deviceId": "1"}, "to": {"phoneNumber": "+41446681801"}})
        )
        .await,
        400
    );
    let ring_out = setup.url(&format!(
        "/restapi/v1.0/account/~/extension/{}/ring-out",
        alice.id
    ));
    assert_eq!(
        post(
            ring_out.clone(),
            json!({"to": {"phoneNumber": "+41446681801"}})
        )
        .await,
        400
    );
    assert_eq!(
        post(
            ring_out,
            json!({"from": {"phoneNumber": alice.direct_number}, "to": {"phoneNumber": "+41446681801"}})
        )
        .await,
        200
    );
    // Without a token, nothing.
    let anonymous = setup
        .http
        .post(party("hold"))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
}
