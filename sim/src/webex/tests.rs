//! The org's strictness over real HTTP: the simulator on one port, a webhook receiver on another.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::{SimConfig, SimHandle};

type Deliveries = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

struct Setup {
    sim: SimHandle,
    deliveries: Deliveries,
    hook_url: String,
    http: reqwest::Client,
}

impl Setup {
    async fn new() -> Setup {
        let deliveries: Deliveries = Arc::default();
        let kept = deliveries.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    kept.lock().push((headers, body.to_vec()));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let hook_url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let config = SimConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..SimConfig::default()
        };
        let sim = crate::spawn(config).await.expect("sim");
        Setup {
            sim,
            deliveries,
            hook_url,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/sim/webex{path}", self.sim.url())
    }

    async fn token(&self) -> String {
        let answer: Value = self
            .http
            .post(self.url("/v1/access_token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "cti-relay-webex"),
                ("client_secret", "demo-webex-secret"),
                ("refresh_token", super::DEMO_REFRESH_TOKEN),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        answer["access_token"].as_str().expect("access").to_string()
    }
}

#[tokio::test]
async fn every_call_needs_a_bearer_and_refusals_come_in_webexs_shape() {
    let s = Setup::new().await;
    let response = s
        .http
        .get(s.url("/v1/people"))
        .send()
        .await
        .expect("people");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("access token"))
    );
    assert!(body["errors"][0]["description"].is_string());
    assert!(body["trackingId"].is_string());
    let refused = s
        .http
        .post(s.url("/v1/access_token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "cti-relay-webex"),
            ("client_secret", "demo-webex-secret"),
            ("refresh_token", "not-the-refresh-token"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(refused.status(), 400);
    let token = s.token().await;
    let people: Value = s
        .http
        .get(s.url("/v1/people?callingData=true"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("people")
        .json()
        .await
        .expect("json");
    assert_eq!(people["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(people["items"][0]["emails"][0], "alice@example.com");
    assert_eq!(people["items"][0]["extension"], "101");
}

#[tokio::test]
async fn deliveries_are_signed_with_the_webhooks_secret_over_the_raw_body() {
    let s = Setup::new().await;
    let token = s.token().await;
    let created = s
        .http
        .post(s.url("/v1/webhooks"))
        .bearer_auth(&token)
        .json(
            &json!({"name": "t", "targetUrl": s.hook_url, "resource": "telephony_calls",
                      "event": "all", "secret": "0123456789abcdef", "ownedBy": "org"}),
        )
        .send()
        .await
        .expect("webhook");
    assert_eq!(created.status(), 200);
    let wrong = s
        .http
        .post(s.url("/v1/webhooks"))
        .bearer_auth(&token)
        .json(
            &json!({"name": "t", "targetUrl": s.hook_url, "resource": "telephony_calls",
                      "event": "sometimes"}),
        )
        .send()
        .await
        .expect("webhook");
    assert_eq!(wrong.status(), 400);
    let call = s
        .sim
        .sim
        .webex
        .place_call("+41446681800", "alice@example.com")
        .await
        .expect("rung");
    let (headers, body) = s.deliveries.lock().first().cloned().expect("one delivery");
    let signature = headers["X-Spark-Signature"].to_str().expect("ascii");
    assert_eq!(signature, super::signature("0123456789abcdef", &body));
    assert_eq!(signature.len(), 40, "hex SHA-1");
    let event: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(event["resource"], "telephony_calls");
    assert_eq!(event["event"], "created");
    assert_eq!(event["data"]["eventType"], "received");
    assert_eq!(event["data"]["state"], "alerting");
    assert_eq!(event["data"]["personality"], "terminator");
    assert_eq!(event["data"]["callSessionId"], call.as_str());
    assert_eq!(event["data"]["remoteParty"]["number"], "+41446681800");
    // Controls act on the named user's own calls only.
    let alice = s
        .sim
        .sim
        .webex
        .person_by_email("alice@example.com")
        .expect("alice")
        .id
        .clone();
    let bob = s
        .sim
        .sim
        .webex
        .person_by_email("bob@example.com")
        .expect("bob")
        .id
        .clone();
    let leg = event["data"]["callId"].as_str().expect("callId");
    let as_bob = s
        .http
        .post(s.url(&format!("/v1/telephony/calls/answer?personId={bob}")))
        .bearer_auth(&token)
        .json(&json!({"callId": leg}))
        .send()
        .await
        .expect("answer");
    assert_eq!(as_bob.status(), 404);
    let hold_first = s
        .http
        .post(s.url(&format!("/v1/telephony/calls/hold?personId={alice}")))
        .bearer_auth(&token)
        .json(&json!({"callId": leg}))
        .send()
        .await
        .expect("hold");
    assert_eq!(hold_first.status(), 400, "a ringing call is not held");
    let answered = s
        .http
        .post(s.url(&format!("/v1/telephony/calls/answer?personId={alice}")))
        .bearer_auth(&token)
        .json(&json!({"callId": leg}))
        .send()
        .await
        .expect("answer");
    assert_eq!(answered.status(), 204);
    let listed: Value = s
        .http
        .get(s.url(&format!("/v1/telephony/calls?personId={alice}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"][0]["state"], "connected");
}
