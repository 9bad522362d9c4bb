//! Unknown callers: the rep creates the caller's record from the widget, or finds it by name and
//! picks it; either way it becomes the call's record and the call's one activity is filed under
//! it. Over the WebSocket here; in a browser in `unknown_callers::browser`.

use cti_tests::{Stack, WsClient, summary_line};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";

/// A generic-webhook event of an inbound call to Alice.
fn event(call: &str, kind: &str, from: &str) -> String {
    json!({"id": format!("{call}-{kind}"), "call_id": call, "type": kind,
        "direction": "inbound", "from": from, "to": "+41 44 999 00 00", "agent": ALICE,
        "at": cti_tests::now_rfc3339()})
    .to_string()
}

async fn post(stack: &Stack, call: &str, kind: &str, from: &str) {
    let status = stack
        .post_event(&event(call, kind, from))
        .await
        .expect("relay answers");
    assert_eq!(status, 202, "{kind} of {call}");
}

/// The answer of the given type, skipping call updates.
async fn answer(ws: &mut WsClient, kind: &str) -> Value {
    ws.recv_until(kind, |m| m["type"] == kind || m["type"] == "error")
        .await
        .expect(kind)
}

/// Who the activity is filed under, as its transcript says ("contact <id>").
fn filed_under(activity: &Value) -> Option<String> {
    summary_line(activity, "Filed under ").map(str::to_string)
}

fn quick(c: &mut cti_relay::Config) {
    c.activity_retry_base = std::time::Duration::from_millis(20);
    c.activity_retry_max = std::time::Duration::from_millis(300);
}

#[tokio::test]
async fn an_unknown_caller_becomes_a_new_contact_and_the_call_is_logged_on_it_once() {
    let stack = Stack::start_with(quick).await.expect("stack");
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("signed in");
    let number = "+41 79 555 31 01";
    post(&stack, "new-1", "ringing", number).await;
    let ringing = ws
        .recv_call("new-1", "ringing", |c| c["state"] == "ringing")
        .await
        .expect("ringing");
    assert_eq!(ringing["call"]["pop"], Value::Null, "an unknown caller");
    post(&stack, "new-1", "answered", number).await;

    // Refused before V2 is asked, naming the field.
    ws.send_json(
        &json!({"type": "create_record", "call_id": "new-1", "kind": "contact",
        "fields": {"given_name": "Zora"}}),
    )
    .await
    .expect("sent");
    let refused = answer(&mut ws, "record_created").await;
    assert_eq!(refused["code"], "invalid_record", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("family_name")),
        "{refused}"
    );

    ws.send_json(
        &json!({"type": "create_record", "call_id": "new-1", "kind": "contact",
        "fields": {"given_name": "Zora", "family_name": "Quill"}}),
    )
    .await
    .expect("sent");
    // The call's new view and the answer, in either order.
    let mut views = Vec::new();
    let created = loop {
        let message = ws.recv_json().await.expect("a message");
        match message["type"].as_str() {
            Some("record_created" | "error") => break message,
            Some("call") => views.push(message),
            _ => {}
        }
    };
    assert_eq!(created["type"], "record_created", "{created}");
    let id = created["record"]["id"].as_str().expect("an id").to_string();
    assert_eq!(created["record"]["name"], "Zora Quill");
    assert!(
        created["link"]
            .as_str()
            .is_some_and(|l| l.ends_with(&format!("/go/detail/mdcontact?nodeid={id}"))),
        "{created}"
    );
    // V2 holds it with the caller's number, created as the rep.
    let (status, record) = stack
        .v2(
            reqwest::Method::GET,
            &format!("contact-person-service/contactPersons/{id}"),
            None,
        )
        .await
        .expect("V2 answers");
    assert_eq!(status, 200);
    assert_eq!(record["value"]["phoneFormattedNumber"], "+41795553101");
    let on_card = |m: &Value| m["call"]["id"] == "new-1" && m["call"]["pop"]["id"] == id.as_str();
    if !views.iter().any(on_card) {
        ws.recv_until("the new record on the card", on_card)
            .await
            .expect("the card follows");
    }

    post(&stack, "new-1", "ended", number).await;
    let activity = stack
        .wait_activity("new-1", "filed under the new contact", |a| {
            filed_under(a) == Some(format!("contact {id}"))
        })
        .await
        .expect("logged once, on the contact");
    assert_eq!(
        activity["externalId"]["displayId"],
        cti_protocol::host::external_reference("new-1")
    );

    // The next call from the number pops the new contact.
    post(&stack, "new-2", "ringing", number).await;
    let next = ws
        .recv_call("new-2", "ringing", |c| c["state"] == "ringing")
        .await
        .expect("ringing");
    assert_eq!(next["call"]["pop"]["id"], id.as_str(), "{next}");
}

#[tokio::test]
async fn a_rep_searches_a_name_and_the_picked_record_takes_the_ended_calls_activity() {
    let stack = Stack::start_with(quick).await.expect("stack");
    let (_, _, name) = stack.single_match_caller().expect("a named record");
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("signed in");
    let number = "+41 79 555 31 02";
    post(&stack, "pick-1", "ringing", number).await;
    post(&stack, "pick-1", "ended", number).await;
    let first = stack
        .wait_activity("pick-1", "logged without a record", |_| true)
        .await
        .expect("logged");
    assert_eq!(filed_under(&first), None, "{first}");

    ws.send_json(&json!({"type": "search_records", "request_id": 7, "query": "x"}))
        .await
        .expect("sent");
    let short = answer(&mut ws, "search_results").await;
    assert_eq!(short["code"], "invalid_record", "{short}");

    ws.send_json(&json!({"type": "search_records", "request_id": 8, "query": name}))
        .await
        .expect("sent");
    let results = answer(&mut ws, "search_results").await;
    assert_eq!(results["request_id"], 8, "{results}");
    let records = results["records"].as_array().expect("records");
    let found = records
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} among {results}"))
        .clone();
    let id = found["id"].as_str().expect("id").to_string();

    ws.send_json(&json!({"type": "pick_record", "call_id": "pick-1",
        "kind": found["kind"], "record_id": id}))
        .await
        .expect("sent");
    ws.recv_call("pick-1", "the picked record", |c| {
        c["pop"]["id"] == id.as_str()
    })
    .await
    .expect("picked");
    let kind = match found["kind"].as_str() {
        Some("contact") => "contact",
        Some("individual_customer") => "individual customer",
        _ => "account",
    };
    stack
        .wait_activity("pick-1", "filed under the picked record", |a| {
            filed_under(a) == Some(format!("{kind} {id}"))
        })
        .await
        .expect("the same activity, now on the record");

    // A record V2 does not have is refused.
    ws.send_json(&json!({"type": "pick_record", "call_id": "pick-1",
        "kind": "contact", "record_id": "no-such-record"}))
        .await
        .expect("sent");
    let refused = ws
        .recv_until("the refusal", |m| m["type"] == "error")
        .await
        .expect("refused");
    assert_eq!(refused["code"], "not_a_match", "{refused}");
}

#[tokio::test]
async fn refresh_finds_a_record_created_in_v2_meanwhile() {
    let stack = Stack::start().await.expect("stack");
    let (mut ws, _) = WsClient::signed_in(&stack, ALICE, None)
        .await
        .expect("signed in");
    let number = "+41 79 555 31 03";
    post(&stack, "later-1", "ringing", number).await;
    ws.recv_call("later-1", "ringing", |c| c["pop"].is_null())
        .await
        .expect("unknown");
    let (status, created) = stack
        .v2(
            reqwest::Method::POST,
            "individual-customer-service/individualCustomers",
            Some(
                &json!({"customerRole": "CRM000", "givenName": "Lale", "familyName": "Later",
                "defaultCommunication": {"phoneFormattedNumber": "+41 79 555 31 03"}}),
            ),
        )
        .await
        .expect("V2 answers");
    assert_eq!(status, 201, "{created}");
    let id = created["value"]["id"].as_str().expect("id").to_string();
    // The refresh asks V2 itself, past the miss the ring remembered.
    ws.send_json(&json!({"type": "refresh_matches", "call_id": "later-1"}))
        .await
        .expect("sent");
    let refreshed = ws
        .recv_call("later-1", "refreshed", |c| c["pop"]["id"] == id.as_str())
        .await
        .expect("refreshed");
    assert_eq!(refreshed["call"]["pop"]["name"], "Lale Later");
}

/// The same stories in the widget, in Chromium, inside the V2 stand-in page.
mod browser {
    use anyhow::{Context, Result};
    use cti_tests::browser::Browser;
    use cti_tests::{Provider, Stack};

    use super::{ALICE, filed_under};

    #[tokio::test]
    async fn an_unknown_caller_becomes_a_new_contact_and_the_call_is_logged_on_it() -> Result<()> {
        let stack = Stack::start_with(super::quick).await?;
        let browser = Browser::start().await?;
        browser.open_host(&stack.sim.url(), ALICE).await?;
        let call = stack.place_call("+41 79 555 32 01", ALICE).await?;
        let id = {
            browser
                .enter_frame(cti_tests::browser::WIDGET_FRAME)
                .await?;
            let b = &browser;
            b.wait_for("[data-testid=not-in-v2]").await?;
            b.click("[data-testid=create-contact]").await?;
            // The number is there already, and not for editing.
            let number = b
                .client
                .find(fantoccini::Locator::Css("[data-testid=new-number]"))
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            assert!(number.contains("79 555 32 01"), "{number:?}");
            assert!(
                b.attr("[data-testid=new-number]", "readonly")
                    .await
                    .is_some(),
                "read-only"
            );
            let family_id = b
                .attr("[data-testid=new-family-name]", "id")
                .await
                .context("the family name field")?;
            let label = b
                .text(&format!("label[for=\"{family_id}\"]"))
                .await
                .unwrap_or_default();
            assert!(
                label.to_lowercase().contains("last name"),
                "labelled: {label:?}"
            );
            b.type_into("[data-testid=new-given-name]", "Wren").await?;
            b.type_into("[data-testid=new-family-name]", "Ashdown")
                .await?;
            b.click("[data-testid=create-submit]").await?;
            b.wait_text("[data-testid=caller-name]", "the new contact", |t| {
                t.contains("Wren Ashdown")
            })
            .await?;
            let kind = b
                .text("[data-testid=caller-kind]")
                .await
                .unwrap_or_default();
            assert_eq!(kind, "Contact");
            b.wait_for("[data-testid=open-record]").await?;
            let link = b
                .attr("[data-testid=open-record]", "href")
                .await
                .unwrap_or_default();
            assert_eq!(
                b.attr("[data-testid=open-record]", "target")
                    .await
                    .as_deref(),
                Some("_blank")
            );
            assert!(
                b.text("[data-testid=not-in-v2]").await.is_none(),
                "no longer unknown"
            );
            browser.leave_frame().await?;
            link.split("mdcontact?nodeid=")
                .nth(1)
                .context("an mdcontact link")?
                .to_string()
        };
        stack.hang_up_through(Provider::Generic, &call).await?;
        stack
            .wait_activity(&call, "filed under the new contact", |a| {
                filed_under(a) == Some(format!("contact {id}"))
            })
            .await?;
        browser.close().await;
        Ok(())
    }

    #[tokio::test]
    async fn a_rep_searches_a_name_and_picks_the_record() -> Result<()> {
        let stack = Stack::start_with(super::quick).await?;
        let (_, e164, name) = stack.single_match_caller()?;
        let record_id = stack
            .sim
            .sim
            .v2
            .lookup_phone(&e164)
            .first()
            .context("the caller's record")?
            .id
            .clone();
        let browser = Browser::start().await?;
        browser.open_host(&stack.sim.url(), ALICE).await?;
        let call = stack.place_call("+41 79 555 32 02", ALICE).await?;
        browser
            .enter_frame(cti_tests::browser::WIDGET_FRAME)
            .await?;
        let b = &browser;
        b.wait_for("[data-testid=not-in-v2]").await?;
        let input_id = b
            .attr("[data-testid=search-input]", "id")
            .await
            .context("the search box")?;
        assert!(
            b.text(&format!("label[for=\"{input_id}\"]"))
                .await
                .is_some(),
            "the search box is labelled"
        );
        b.type_into("[data-testid=search-input]", &name).await?;
        b.click("[data-testid=search-submit]").await?;
        let button = format!("[data-testid=pick-record][data-record-id=\"{record_id}\"]");
        b.wait_for(&button).await?;
        let text = b.text(&button).await.unwrap_or_default();
        assert!(text.contains(&name), "{name:?} on {text:?}");
        b.click(&button).await?;
        b.wait_text("[data-testid=caller-name]", "the picked record", |t| {
            t.contains(&name)
        })
        .await?;
        browser.leave_frame().await?;
        stack.hang_up_through(Provider::Generic, &call).await?;
        stack
            .wait_activity(&call, "filed under the picked record", |a| {
                filed_under(a).is_some_and(|f| f.ends_with(&record_id))
            })
            .await?;
        browser.close().await;
        Ok(())
    }
}
