//! The tenant's strictness over real HTTP: the simulator on one port, a notification receiver
//! on another.

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, GRAPH_SCOPE, TENANT_ID};
use crate::{SimConfig, SimHandle};

/// How the test receiver answers Graph's validation request.
#[derive(Debug, Clone, Copy)]
enum Receiver {
    /// The decoded token, as text/plain.
    Decoded,
    /// The token still URL-encoded.
    Encoded,
    /// The decoded token as JSON.
    Json,
}

async fn receiver(mode: Receiver) -> String {
    let app = Router::new().route(
        "/hook",
        post(
            move |Query(q): Query<Vec<(String, String)>>, raw: axum::extract::RawQuery| async move {
                let token = q
                    .iter()
                    .find(|(k, _)| k == "validationToken")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let response: Response = match mode {
                    Receiver::Decoded => {
                        ([(header::CONTENT_TYPE, "text/plain")], token).into_response()
                    }
                    Receiver::Encoded => (
                        [(header::CONTENT_TYPE, "text/plain")],
                        raw.0
                            .unwrap_or_default()
                            .trim_start_matches("validationToken=")
                            .to_string(),
                    )
                        .into_response(),
                    Receiver::Json => axum::Json(json!(token)).into_response(),
                };
                response
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

async fn sim() -> SimHandle {
    let config = SimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..SimConfig::default()
    };
    crate::spawn(config).await.expect("sim")
}

async fn token(http: &reqwest::Client, sim: &SimHandle, secret: &str) -> (u16, Value) {
    let response = http
        .post(format!(
            "{}/sim/teams/{TENANT_ID}/oauth2/v2.0/token",
            sim.url()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", secret),
            ("scope", GRAPH_SCOPE),
        ])
        .send()
        .await
        .expect("token");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_wrong_secret_gets_entra_ids_error_and_graph_wants_a_token() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let (status, body) = token(&http, &sim, "guess").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
    let users = format!("{}/sim/teams/graph/v1.0/users/alice@example.com", sim.url());
    let refused = http.get(&users).send().await.expect("graph");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = token(&http, &sim, DEMO_CLIENT_SECRET).await;
    assert_eq!(status, 200);
    let access = body["access_token"].as_str().expect("token");
    let user: Value = http
        .get(&users)
        .bearer_auth(access)
        .send()
        .await
        .expect("graph")
        .json()
        .await
        .expect("json");
    assert_eq!(user["userPrincipalName"], "alice@example.com");
    assert!(user["id"].as_str().is_some_and(|id| id.len() == 36));
}

#[tokio::test]
async fn a_subscription_is_made_only_when_the_token_comes_back_decoded_as_text() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let (_, body) = token(&http, &sim, DEMO_CLIENT_SECRET).await;
    let access = body["access_token"].as_str().expect("token").to_string();
    let expiry = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    for (mode, expected) in [
        (Receiver::Encoded, 400),
        (Receiver::Json, 400),
        (Receiver::Decoded, 201),
    ] {
        let hook = receiver(mode).await;
        let response = http
            .post(format!("{}/sim/teams/graph/v1.0/subscriptions", sim.url()))
            .bearer_auth(&access)
            .json(&json!({"changeType": "created", "notificationUrl": hook,
                          "resource": "/communications/callRecords",
                          "expirationDateTime": expiry, "clientState": "0123456789abcdef"}))
            .send()
            .await
            .expect("graph");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{mode:?}: {body}");
        if status == 400 {
            assert_eq!(body["error"]["code"], "ValidationError");
        }
    }
    // Beyond Graph's 4,230 minutes for call records: refused.
    let too_far = (time::OffsetDateTime::now_utc() + time::Duration::days(4))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let hook = receiver(Receiver::Decoded).await;
    let response = http
        .post(format!("{}/sim/teams/graph/v1.0/subscriptions", sim.url()))
        .bearer_auth(&access)
        .json(&json!({"changeType": "created", "notificationUrl": hook,
                      "resource": "/communications/callRecords",
                      "expirationDateTime": too_far}))
        .send()
        .await
        .expect("graph");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn presence_is_subscribed_only_with_a_users_token_for_at_most_an_hour() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let (_, body) = token(&http, &sim, DEMO_CLIENT_SECRET).await;
    let app = body["access_token"].as_str().expect("token").to_string();
    let refreshed: Value = http
        .post(format!(
            "{}/sim/teams/{TENANT_ID}/oauth2/v2.0/token",
            sim.url()
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("refresh_token", super::DEMO_REFRESH_TOKEN),
            (
                "scope",
                "https://graph.microsoft.com/Presence.Read.All offline_access",
            ),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let delegated = refreshed["access_token"].as_str().expect("delegated");
    assert_ne!(
        refreshed["refresh_token"],
        super::DEMO_REFRESH_TOKEN,
        "rotated"
    );
    let alice = &super::demo_users()[0].id;
    let at = |minutes: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let hook = receiver(Receiver::Decoded).await;
    let subscribe = |token: String, minutes: i64, resource: String| {
        let (http, hook, sim_url) = (http.clone(), hook.clone(), sim.url());
        async move {
            let response = http
                .post(format!("{sim_url}/sim/teams/graph/v1.0/subscriptions"))
                .bearer_auth(token)
                .json(&json!({"changeType": "updated", "notificationUrl": hook,
                              "resource": resource, "expirationDateTime": at(minutes),
                              "clientState": "0123456789abcdef"}))
                .send()
                .await
                .expect("graph");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let one = format!("/communications/presences/{alice}");
    let (status, body) = subscribe(app, 30, one.clone()).await;
    assert_eq!(status, 403, "application permissions: {body}");
    let (status, _) = subscribe(delegated.into(), 90, one.clone()).await;
    assert_eq!(status, 400, "beyond an hour");
    let unknown = "/communications/presences?$filter=id in ('nobody')".to_string();
    let (status, _) = subscribe(delegated.into(), 30, unknown).await;
    assert_eq!(status, 400, "not a user");
    let list = format!("/communications/presences?$filter=id in ('{alice}')");
    let (status, body) = subscribe(delegated.into(), 55, list).await;
    assert_eq!(status, 201, "{body}");
}

/// A client assertion as Entra ID wants it, with the parts a test spoils.
fn assertion(key: &str, certificate: &str, aud: &str, exp_offset: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = super::thumbprint(certificate);
    let claims = json!({"aud": aud, "iss": DEMO_CLIENT_ID, "sub": DEMO_CLIENT_ID,
        "jti": uuid::Uuid::new_v4().to_string(), "nbf": now - 600, "exp": now + exp_offset});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).expect("key");
    jsonwebtoken::encode(&header, &claims, &key).expect("sign")
}

#[tokio::test]
async fn a_certificate_assertion_gets_a_token_and_a_spoiled_one_entras_refusal() {
    use super::test_certificates::*;
    let config = SimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        teams_certificates: vec![(APP_CERTIFICATE.into(), APP_PUBLIC_KEY.into())],
        ..SimConfig::default()
    };
    let sim = crate::spawn(config).await.expect("sim");
    let http = reqwest::Client::new();
    let endpoint = format!("{}/sim/teams/{TENANT_ID}/oauth2/v2.0/token", sim.url());
    let ask = |assertion: String| {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        async move {
            let response = http
                .post(&endpoint)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", DEMO_CLIENT_ID),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                    ("scope", GRAPH_SCOPE),
                ])
                .send()
                .await
                .expect("token");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = ask(assertion(APP_PRIVATE_KEY, APP_CERTIFICATE, &endpoint, 300)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());
    let refusals = [
        // Signed by another key under the registered certificate's thumbprint.
        (
            assertion(OTHER_PRIVATE_KEY, APP_CERTIFICATE, &endpoint, 300),
            "AADSTS700027",
        ),
        // A certificate nobody uploaded.
        (
            assertion(OTHER_PRIVATE_KEY, OTHER_CERTIFICATE, &endpoint, 300),
            "AADSTS700027",
        ),
        (
            assertion(
                APP_PRIVATE_KEY,
                APP_CERTIFICATE,
                "https://elsewhere/token",
                300,
            ),
            "AADSTS700016",
        ),
        (
            assertion(APP_PRIVATE_KEY, APP_CERTIFICATE, &endpoint, -60),
            "AADSTS700024",
        ),
    ];
    for (spoiled, code) in refusals {
        let (status, body) = ask(spoiled).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client", "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.starts_with(code)),
            "{code}: {body}"
        );
    }
}

#[tokio::test]
async fn a_recording_invitation_is_the_bots_to_answer_in_its_window_and_dropped_after_it() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let (_, body) = token(&http, &sim, DEMO_CLIENT_SECRET).await;
    let access = body["access_token"].as_str().expect("token").to_string();
    let teams = &sim.sim.teams;
    let ring = || async {
        let rung: Value = http
            .post(format!("{}/sim/teams/calls", sim.url()))
            .json(&json!({"from": "+41446681800", "agent": "alice@example.com"}))
            .send()
            .await
            .expect("ring")
            .json()
            .await
            .expect("json");
        let leg = rung["graph_call_id"].as_str().expect("leg").to_string();
        (rung["call_id"].as_str().expect("chain").to_string(), leg)
    };
    let answer = |leg: String| {
        let request = http
            .post(format!(
                "{}/sim/teams/graph/v1.0/communications/calls/{leg}/answer",
                sim.url()
            ))
            .bearer_auth(&access)
            .json(&json!({"callbackUri": "https://bot.example/calls",
                "acceptedModalities": ["audio"],
                "mediaConfig": {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}}));
        async move { request.send().await.expect("answer").status().as_u16() }
    };
    let leg_of = |id: &str| {
        teams
            .calls()
            .into_iter()
            .find(|c| c.id == id)
            .expect("the leg")
    };
    // In time: the bot is in the call, the rep's phone still rings.
    let (_, leg) = ring().await;
    assert_eq!(answer(leg.clone()).await, 202);
    let answered = leg_of(&leg);
    assert!(answered.bot_answered && !answered.answered, "{answered:?}");
    assert_eq!(answered.state, "incoming");
    assert_eq!(answer(leg).await, 400, "answered once");
    // Past its window: the invitation is gone, the call goes on without the bot.
    teams
        .policy_answer_window_ms
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let (chain, leg) = ring().await;
    assert_eq!(answer(leg.clone()).await, 404);
    let dropped = leg_of(&leg);
    assert!(dropped.bot_dropped && !dropped.bot_answered, "{dropped:?}");
    let picked = http
        .post(format!("{}/sim/teams/calls/{chain}/answer", sim.url()))
        .send()
        .await
        .expect("pick up");
    assert_eq!(picked.status(), 204);
    assert_eq!(leg_of(&leg).state, "established");
}
