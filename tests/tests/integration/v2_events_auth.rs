//! V2 change events delivered as an outbound communication system with OAuth 2.0 client
//! credentials would deliver them, and in the external hook's payload shape.

use cti_sim::v2::events::{Auth, Shape};
use cti_tests::{Stack, eventually};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn an_external_hook_with_a_client_token_moves_numbers_in_the_index() {
    let stack = Stack::start().await.expect("stack starts");
    stack.sim.sim.v2.events.set_delivery(
        Shape::ExternalHook,
        Auth::ClientCredentials {
            client_id: "v2-events".into(),
            tenant: "demo".into(),
        },
    );
    let (status, created) = stack
        .v2(
            Method::POST,
            "individual-customer-service/individualCustomers",
            Some(
                &json!({"givenName": "Hanna", "familyName": "Hook", "formattedName": "Hanna Hook",
                "defaultAddress": {"country": "CH"},
                "defaultCommunication": {"phoneFormattedNumber": "044 555 66 11"}}),
            ),
        )
        .await
        .expect("V2 answers");
    assert_eq!(status, 201);
    let id = created["value"]["id"].as_str().expect("an id").to_string();
    eventually("the hooked customer in the index", || async {
        stack
            .relay
            .state
            .numbers
            .index
            .lookup("demo", "+41445556611")
            .await
            .ok()?
            .iter()
            .any(|r| r.id == id)
            .then_some(())
    })
    .await
    .expect("indexed");
}

#[tokio::test]
async fn a_client_token_is_accepted_and_a_wrong_one_refused() {
    let stack = Stack::start().await.expect("stack starts");
    let url = format!("{}/v1/tenants/demo/v2-events", stack.relay.url());
    let hook = json!({"entity": "sap.ssc.accountservice.entity.account",
        "currentImage": {"id": "no-such-account"}});
    let post = |token: String| stack.http.post(&url).bearer_auth(token).json(&hook).send();
    let idp = &stack.sim.sim.idp;

    let response = post(idp.issue("v2-events", "demo", 300))
        .await
        .expect("answers");
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["accepted"], 1);

    for (token, why) in [
        (idp.issue("some-rep", "demo", 300), "another client"),
        (
            idp.issue("v2-events", "other-tenant", 300),
            "another tenant",
        ),
        ("not-a-jwt".to_string(), "no token at all"),
    ] {
        let response = post(token).await.expect("answers");
        assert_eq!(response.status(), 401, "{why}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthorized", "{why}: {body}");
    }
    // Basic keeps working beside the token.
    let response = stack
        .http
        .post(&url)
        .basic_auth("v2-events", Some("demo-v2-events-secret"))
        .json(&hook)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 202);
}
