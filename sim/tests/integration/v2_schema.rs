//! The tenant holds requests to each collection's schema, as V2 does: a query option or a body
//! naming a property the collection lacks is refused with V2's error envelope naming it, unless
//! the tenant is told to accept unknown fields.

use axum::http::StatusCode;
use serde_json::json;

use crate::v2_api::{ACCOUNTS, call, get, sim};

const CONTACTS: &str = "/sap/c4c/api/v1/contact-person-service/contactPersons";
const INDIVIDUALS: &str = "/sap/c4c/api/v1/individual-customer-service/individualCustomers";
const EMPLOYEES: &str = "/sap/c4c/api/v1/employee-service/employees";

#[tokio::test]
async fn query_options_on_unknown_properties_are_refused_by_name() {
    let sim = sim(None);
    for uri in [
        format!("{CONTACTS}?$filter=phoneNormalisedNumber%20eq%20'%2B41441234567'"),
        format!("{CONTACTS}?$filter=isContactPersonFor/mobileNormalisedNumber%20eq%20'x'"),
        format!("{ACCOUNTS}?$orderby=phoneNormalisedNumber%20desc"),
    ] {
        let reply = get(&sim, &uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(reply.body["error"]["code"], "api.400");
        let target = reply.body["error"]["target"].as_str().unwrap_or_default();
        assert!(
            target.ends_with("NormalisedNumber"),
            "{uri}: {}",
            reply.body
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(target)),
            "{}",
            reply.body
        );
    }
    let reply = get(&sim, &format!("{ACCOUNTS}?$select=id,shoeSize")).await;
    assert_eq!(
        (reply.status, &reply.body["error"]["target"]),
        (StatusCode::BAD_REQUEST, &json!("shoeSize"))
    );
    let fine = get(
        &sim,
        &format!("{CONTACTS}?$filter=isContactPersonFor/phoneFormattedNumber%20eq%20'x'&$select=id,formattedName"),
    )
    .await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.body);
}

#[tokio::test]
async fn search_exclude_and_query_are_accepted() {
    let sim = sim(None);
    let all = get(&sim, &format!("{ACCOUNTS}?$top=999")).await;
    let name = all.body["value"][0]["formattedName"]
        .as_str()
        .expect("a name")
        .to_string();
    let word = name.split_whitespace().next().expect("a word");
    let found = get(&sim, &format!("{ACCOUNTS}?$search=%22{word}%22&$top=999")).await;
    assert_eq!(found.status, StatusCode::OK);
    let single = get(&sim, &format!("{ACCOUNTS}?$search='{word}'")).await;
    assert_eq!(single.status, StatusCode::BAD_REQUEST, "{}", single.body);
    let hits = found.body["value"].as_array().expect("list");
    assert!(!hits.is_empty() && hits.len() <= all.body["value"].as_array().map_or(0, Vec::len));
    for option in ["$exclude=adminData", "$query=x"] {
        assert_eq!(
            get(&sim, &format!("{ACCOUNTS}?{option}")).await.status,
            StatusCode::OK,
            "{option}"
        );
    }
}

#[tokio::test]
async fn bodies_with_unknown_properties_are_refused_and_contacts_get_no_twins() {
    let sim = sim(None);
    let refused = call(
        &sim,
        "POST",
        CONTACTS,
        &[],
        Some(json!({"familyName": "Neu", "phoneNormalisedNumber": "+41441234567"})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["error"]["target"], "phoneNormalisedNumber");

    let created = call(
        &sim,
        "POST",
        CONTACTS,
        &[],
        Some(json!({"familyName": "Neu", "phoneFormattedNumber": "+41 44 123 45 67",
            "isContactPersonFor": [{"accountId": "a", "country": "CH", "phoneFormattedNumber": "044 765 43 21"}],
            "extensions": {"Z_ID_Number": "7"}})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(
        !created.body.to_string().contains("NormalisedNumber"),
        "{}",
        created.body
    );
    let id = created.body["value"]["id"].as_str().expect("id");
    let etag = created.headers["etag"].to_str().expect("etag").to_string();
    let patch = call(
        &sim,
        "PATCH",
        &format!("{CONTACTS}/{id}"),
        &[("If-Match", &etag)],
        Some(json!({"isContactPersonFor": [{"accountId": "a", "mobileNormalisedNumber": "+41791234567"}]})),
    )
    .await;
    assert_eq!(
        (patch.status, &patch.body["error"]["target"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("isContactPersonFor/mobileNormalisedNumber")
        )
    );
    // The tenant's found-by-phone answer still reads the contact's formatted numbers.
    assert!(
        sim.v2
            .lookup_phone("+41447654321")
            .iter()
            .any(|o| o.id == id)
    );
}

#[tokio::test]
async fn employee_patch_answers_204() {
    let sim = sim(None);
    let first = get(&sim, &format!("{EMPLOYEES}?$top=1")).await;
    let id = first.body["value"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let one = get(&sim, &format!("{EMPLOYEES}/{id}")).await;
    let etag = one.headers["etag"].to_str().expect("etag").to_string();
    let patch = call(
        &sim,
        "PATCH",
        &format!("{EMPLOYEES}/{id}"),
        &[
            ("If-Match", &etag),
            ("Content-Type", "application/merge-patch+json"),
        ],
        Some(json!({"middleName": "Q"})),
    )
    .await;
    assert_eq!(patch.status, StatusCode::NO_CONTENT);
    assert!(patch.headers.contains_key("etag"));
}

#[tokio::test]
async fn accepting_unknown_fields_restores_leniency() {
    let sim = sim(None);
    sim.v2.accept_unknown_fields(true);
    let uri = format!("{CONTACTS}?$filter=phoneNormalisedNumber%20eq%20'%2B41441234567'");
    let reply = get(&sim, &uri).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let created = call(
        &sim,
        "POST",
        ACCOUNTS,
        &[],
        Some(json!({"customerRole": "CRM000", "firstLineName": "X", "shoeSize": 44})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["value"]["shoeSize"], 44);

    let config = cti_sim::SimConfig::from_lookup(|name| {
        (name == "SIM_V2_UNKNOWN_FIELDS").then(|| "accept".into())
    })
    .expect("config");
    assert!(config.v2_accept_unknown_fields);
    assert!(!cti_sim::SimConfig::default().v2_accept_unknown_fields);
    assert!(
        cti_sim::SimConfig::from_lookup(|name| {
            (name == "SIM_V2_UNKNOWN_FIELDS").then(|| "maybe".into())
        })
        .is_err()
    );
}

#[tokio::test]
async fn a_withdrawn_property_is_refused_from_then_on() {
    let sim = sim(None);
    let uri = format!("{CONTACTS}?$filter=phoneFormattedNumber%20eq%20'x'");
    assert_eq!(get(&sim, &uri).await.status, StatusCode::OK);
    sim.v2
        .withdraw_property("contactPersons", "phoneFormattedNumber");
    let reply = get(&sim, &uri).await;
    assert_eq!(
        (reply.status, &reply.body["error"]["target"]),
        (StatusCode::BAD_REQUEST, &json!("phoneFormattedNumber"))
    );
}

#[tokio::test]
async fn a_create_without_the_required_fields_is_refused_naming_the_field() {
    let sim = sim(None);
    for (path, body, field) in [
        (ACCOUNTS, json!({"firstLineName": "Acme"}), "customerRole"),
        (ACCOUNTS, json!({"customerRole": "CRM000"}), "firstLineName"),
        (CONTACTS, json!({"givenName": "Anna"}), "familyName"),
        (INDIVIDUALS, json!({"familyName": " "}), "familyName"),
    ] {
        let refused = call(&sim, "POST", path, &[], Some(body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(refused.body["error"]["target"], field, "{path}");
        assert_eq!(
            refused.body["error"]["message"],
            format!("Data is required -> {field}")
        );
    }
    let created = call(
        &sim,
        "POST",
        CONTACTS,
        &[],
        Some(json!({"givenName": "Zora", "familyName": "Quill"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let found = get(&sim, &format!("{CONTACTS}?$search=%22zora%20quill%22")).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["value"].as_array().map(Vec::len), Some(1));
    let unbalanced = get(&sim, &format!("{CONTACTS}?$search=%22zora")).await;
    assert_eq!(unbalanced.status, StatusCode::BAD_REQUEST);
}
