//! Keeping the number index current and ranking what it finds: V2 change events, the refresh
//! budget, the tenant's match order and the rep's remembered choice.

use cti_tests::{Stack, WsClient, eventually};
use reqwest::Method;
use serde_json::{Value, json};

const CONTACTS: &str = "contact-person-service/contactPersons";
const INDIVIDUALS: &str = "individual-customer-service/individualCustomers";

async fn indexed_ids(stack: &Stack, e164: &str) -> Vec<String> {
    stack
        .relay
        .state
        .numbers
        .index
        .lookup("demo", e164)
        .await
        .expect("index lookup")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

#[tokio::test]
async fn v2_change_events_move_and_remove_numbers_in_the_index() {
    let stack = Stack::start().await.expect("stack starts");
    let contact = stack.sim.sim.v2.records("contactPersons")[1].clone();
    let id = text(&contact, "id").to_string();
    // Contacts hold formatted numbers only; the index keys them by the E.164 form.
    let region = cti_relay::numbers::DefaultRegion::parse(text(
        &contact["isContactPersonFor"][0],
        "country",
    ))
    .expect("region");
    let mobile = cti_relay::numbers::to_e164(text(&contact, "mobileFormattedNumber"), &region)
        .expect("a valid mobile");
    assert!(indexed_ids(&stack, &mobile).await.contains(&id));

    // The rep's mobile number changes in V2.
    let (status, _) = stack
        .v2(
            Method::PATCH,
            &format!("{CONTACTS}/{id}"),
            Some(&json!({"mobileFormattedNumber": "+41 79 555 12 34"})),
        )
        .await
        .expect("V2 answers");
    assert_eq!(status, 200);
    eventually("the new mobile number in the index", || async {
        indexed_ids(&stack, "+41795551234")
            .await
            .contains(&id)
            .then_some(())
    })
    .await
    .expect("indexed");
    assert!(
        !indexed_ids(&stack, &mobile).await.contains(&id),
        "the old mobile number no longer leads to the contact"
    );

    // A new individual customer is matched without waiting for the next full build.
    let (status, created) = stack
        .v2(
            Method::POST,
            INDIVIDUALS,
            Some(
                &json!({"givenName": "Nina", "familyName": "Neu", "formattedName": "Nina Neu",
                "defaultAddress": {"country": "CH"},
                "defaultCommunication": {"phoneFormattedNumber": "044 555 77 88"}}),
            ),
        )
        .await
        .expect("V2 answers");
    assert_eq!(status, 201);
    let new_id = text(&created["value"], "id").to_string();
    eventually("the new customer in the index", || async {
        indexed_ids(&stack, "+41445557788")
            .await
            .contains(&new_id)
            .then_some(())
    })
    .await
    .expect("indexed");

    // Deleted in V2: gone from every number.
    let (status, _) = stack
        .v2(Method::DELETE, &format!("{CONTACTS}/{id}"), None)
        .await
        .expect("V2 answers");
    assert_eq!(status, 204);
    eventually("the deleted contact to leave the index", || async {
        (!indexed_ids(&stack, "+41795551234").await.contains(&id)).then_some(())
    })
    .await
    .expect("removed");
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics.contains("cti_v2_events_total{tenant=\"demo\",outcome=\"applied\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_v2_events_endpoint_checks_credentials_and_input() {
    let stack = Stack::start().await.expect("stack starts");
    let url = format!("{}/v1/tenants/demo/v2-events", stack.relay.url());
    let event = json!({"specversion": "0.2", "type": "sap.crm.custom.event.updateAccount",
        "subject": "no-such-account", "data": {}});
    let post = |body: String, auth: Option<(&'static str, &'static str)>| {
        let mut request = stack
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        request.send()
    };
    let good = Some(("v2-events", "demo-v2-events-secret"));

    let response = post(event.to_string(), None).await.expect("answers");
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let response = post(event.to_string(), Some(("v2-events", "guess")))
        .await
        .expect("answers");
    assert_eq!(response.status(), 401);

    let response = post("{".into(), good).await.expect("answers");
    assert_eq!(response.status(), 400);
    let response = post(json!({"type": "x.updateAccount"}).to_string(), good)
        .await
        .expect("answers");
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("specversion")),
        "{body}"
    );

    let opportunity = json!({"specversion": "0.2", "type": "sap.crm.custom.event.updateOpportunity",
        "subject": "o1"});
    let response = post(opportunity.to_string(), good).await.expect("answers");
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["ignored"].as_array().map(Vec::len), Some(1));

    let response = post(event.to_string(), good).await.expect("answers");
    assert_eq!(response.status(), 202);

    let other = format!("{}/v1/tenants/nobody/v2-events", stack.relay.url());
    let response = stack
        .http
        .post(other)
        .basic_auth("v2-events", Some("demo-v2-events-secret"))
        .body(event.to_string())
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_spent_refresh_budget_is_reported_not_retried_in_a_loop() {
    let stack = Stack::start_unready(|c| c.refresh_budget = Some(2))
        .await
        .expect("stack starts");
    let ready = eventually("the refresher to report its budget", || async {
        let ready = stack.readyz().await.ok()?;
        (ready["tenants"]["demo"]["refresh"]["phase"] == "budget_exhausted").then_some(ready)
    })
    .await
    .expect("reported");
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(ready["tenants"]["demo"]["refresh"]["requests_today"], 2);
    assert_eq!(ready["tenants"]["demo"]["refresh"]["daily_budget"], 2);
    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics.contains("cti_index_refresh_phase{tenant=\"demo\",phase=\"budget_exhausted\"} 1"),
        "{metrics}"
    );
}

async fn ring(stack: &Stack, ws: &mut WsClient, call: &str, agent: &str, from: &str) -> Value {
    let body = json!({"id": format!("evt-{call}"), "call_id": call, "type": "ringing",
        "direction": "inbound", "from": from, "to": "+41 44 999 00 00", "agent": agent,
        "at": cti_tests::now_rfc3339()});
    assert_eq!(
        stack.post_event(&body.to_string()).await.expect("posted"),
        202
    );
    ws.recv_until("the ringing call", |m| {
        m["type"] == "call" && m["call"]["id"] == call
    })
    .await
    .expect("call")
}

#[tokio::test]
async fn matches_are_ranked_for_the_rep_and_a_choice_is_remembered() {
    let stack = Stack::start().await.expect("stack starts");
    let alice = stack
        .sim
        .sim
        .v2
        .records("employees")
        .into_iter()
        .find(|e| e["workplaceAddress"]["eMail"] == "alice@example.com")
        .map(|e| text(&e, "id").to_string())
        .expect("alice is an employee");
    // A main line shared by an account (not Alice's) and some of its contacts.
    let (number, account) = stack
        .shared_main_line(|account| text(account, "ownerId") == alice)
        .expect("a shared main line");

    // By default the person comes before the company.
    let (mut bob_ws, _) = WsClient::signed_in(&stack, "bob@example.com", None)
        .await
        .expect("bob signs in");
    let call = ring(&stack, &mut bob_ws, "rank-1", "bob@example.com", &number).await;
    let kinds: Vec<&str> = call["call"]["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| m["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds.first(), Some(&"contact"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"account"), "{kinds:?}");

    // An individual customer Alice owns, on the same line, is first for Alice only.
    let (status, created) = stack
        .v2(
            Method::POST,
            INDIVIDUALS,
            Some(
                &json!({"givenName": "Ivy", "familyName": "Own", "formattedName": "Ivy Own",
                "ownerId": alice, "defaultAddress": {"country": "CH"},
                "defaultCommunication": {"phoneFormattedNumber": number}}),
            ),
        )
        .await
        .expect("V2 answers");
    assert_eq!(status, 201);
    let ivy = text(&created["value"], "id").to_string();
    eventually("Ivy in the index", || async {
        indexed_ids(&stack, &number)
            .await
            .contains(&ivy)
            .then_some(())
    })
    .await
    .expect("indexed");
    let (mut alice_ws, _) = WsClient::signed_in(&stack, "alice@example.com", None)
        .await
        .expect("alice signs in");
    let call = ring(
        &stack,
        &mut alice_ws,
        "rank-2",
        "alice@example.com",
        &number,
    )
    .await;
    assert_eq!(call["call"]["pop"]["id"], ivy.as_str());
    let call = ring(&stack, &mut bob_ws, "rank-3", "bob@example.com", &number).await;
    assert_eq!(call["call"]["pop"]["kind"], "contact");

    // Alice says it is the company; the card follows, and so does her next call.
    let account_id = text(&account, "id");
    alice_ws
        .send_json(&json!({"type": "choose_match", "call_id": "rank-2", "record_id": account_id}))
        .await
        .expect("sent");
    let chosen = alice_ws
        .recv_until("the call with the chosen record", |m| {
            m["type"] == "call"
                && m["call"]["id"] == "rank-2"
                && m["call"]["pop"]["id"] == account_id
        })
        .await
        .expect("chosen");
    assert_eq!(chosen["call"]["matches"][0]["id"], account_id);
    let call = ring(
        &stack,
        &mut alice_ws,
        "rank-4",
        "alice@example.com",
        &number,
    )
    .await;
    assert_eq!(call["call"]["pop"]["id"], account_id);
    let call = ring(&stack, &mut bob_ws, "rank-5", "bob@example.com", &number).await;
    assert_eq!(
        call["call"]["pop"]["kind"], "contact",
        "Bob has no choice on record"
    );

    // A record that is not a match is refused with a reason.
    alice_ws
        .send_json(
            &json!({"type": "choose_match", "call_id": "rank-4", "record_id": "someone-else"}),
        )
        .await
        .expect("sent");
    let error = alice_ws
        .recv_until("the refusal", |m| m["type"] == "error")
        .await
        .expect("error");
    assert_eq!(error["code"], "not_a_match");
}
