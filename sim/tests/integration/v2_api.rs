//! The simulated V2 REST API through its router, without sockets: V2's conventions as the relay
//! and integrators meet them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use cti_sim::{Sim, SimConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

pub(crate) const ACCOUNTS: &str = "/sap/c4c/api/v1/account-service/accounts";

pub(crate) fn sim(budget: Option<u64>) -> Arc<Sim> {
    Sim::new(SimConfig {
        records: 60,
        request_budget: budget,
        ..SimConfig::default()
    })
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Value,
}

pub(crate) async fn call(
    sim: &Arc<Sim>,
    method: &str,
    uri: &str,
    extra: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, basic("demo", "demo"));
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    let request = match body {
        Some(b) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => request.body(Body::empty()),
    }
    .expect("request");
    let response = cti_sim::router(sim.clone())
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

pub(crate) async fn get(sim: &Arc<Sim>, uri: &str) -> Reply {
    call(sim, "GET", uri, &[], None).await
}

#[tokio::test]
async fn basic_auth_is_required() {
    let sim = sim(None);
    let request = Request::builder()
        .uri(ACCOUNTS)
        .body(Body::empty())
        .expect("request");
    let response = cti_sim::router(sim.clone())
        .oneshot(request)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    let wrong = Request::builder()
        .uri(ACCOUNTS)
        .header(header::AUTHORIZATION, basic("demo", "nope"))
        .body(Body::empty())
        .expect("request");
    let response = cti_sim::router(sim).oneshot(wrong).await.expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn envelopes_count_top_skip_select() {
    let sim = sim(None);
    let page = get(
        &sim,
        &format!("{ACCOUNTS}?$count=true&$top=7&$skip=3&$select=formattedName"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["count"], 60);
    let items = page.body["value"].as_array().expect("value array");
    assert_eq!(items.len(), 7);
    for item in items {
        let keys: Vec<&String> = item.as_object().expect("object").keys().collect();
        assert!(
            keys.iter().all(|k| *k == "id" || *k == "formattedName"),
            "{keys:?}"
        );
    }
    let plain = get(&sim, ACCOUNTS).await;
    assert!(plain.body.get("count").is_none(), "count only when asked");
    assert_eq!(
        plain.body["value"].as_array().map(Vec::len),
        Some(50),
        "default page size"
    );

    let too_big = get(&sim, &format!("{ACCOUNTS}?$top=1000")).await;
    assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
    assert!(
        too_big.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("999")
    );
    let too_far = get(&sim, &format!("{ACCOUNTS}?$skip=10000")).await;
    assert_eq!(too_far.status, StatusCode::BAD_REQUEST);
    assert!(
        too_far.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("10000")
    );
    assert_eq!(
        get(&sim, &format!("{ACCOUNTS}?$skip=9999")).await.status,
        StatusCode::OK
    );
    let unknown = get(&sim, "/sap/c4c/api/v1/nothing-service/things").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body["error"]["code"].is_string());
}

#[tokio::test]
async fn paging_by_id_reaches_every_record_once() {
    let sim = sim(None);
    let mut seen = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let filter = last
            .as_ref()
            .map(|l| format!("&$filter=id%20gt%20'{l}'"))
            .unwrap_or_default();
        let page = get(&sim, &format!("{ACCOUNTS}?$orderby=id&$top=7{filter}")).await;
        let items = page.body["value"].as_array().cloned().unwrap_or_default();
        for item in &items {
            seen.push(item["id"].as_str().unwrap_or_default().to_string());
        }
        if items.len() < 7 {
            break;
        }
        last = seen.last().cloned();
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(seen.len(), 60);
    assert_eq!(unique.len(), 60);
    assert_eq!(seen, unique, "ascending by id");
}

#[tokio::test]
async fn filters_on_nested_paths_and_arrays() {
    let sim = sim(None);
    let accounts = sim.v2.records("accounts");
    let target = &accounts[5];
    let number = target["defaultCommunication"]["phoneNormalisedNumber"]
        .as_str()
        .expect("number");
    let by_phone = get(
        &sim,
        &format!(
            "{ACCOUNTS}?$filter=defaultCommunication/phoneNormalisedNumber%20eq%20'{}'",
            number.replace('+', "%2B")
        ),
    )
    .await;
    let ids: Vec<&Value> = by_phone.body["value"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| &v["id"])
        .collect();
    assert!(ids.contains(&&target["id"]));

    let account_id = target["id"].as_str().expect("id");
    let contacts = get(
        &sim,
        &format!("/sap/c4c/api/v1/contact-person-service/contactPersons?$filter=isContactPersonFor/accountId%20eq%20'{account_id}'"),
    )
    .await;
    for c in contacts.body["value"].as_array().expect("array") {
        assert_eq!(c["isContactPersonFor"][0]["accountId"], account_id);
    }
    let bad = get(&sim, &format!("{ACCOUNTS}?$filter=id%20like%20'x'")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("position")
    );
}

#[tokio::test]
async fn patch_needs_a_current_etag() {
    let sim = sim(None);
    let id = sim.v2.records("accounts")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let uri = format!("{ACCOUNTS}/{id}");
    let read = get(&sim, &uri).await;
    let etag = read.headers[header::ETAG]
        .to_str()
        .expect("etag")
        .to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let patch = json!({"defaultCommunication": {"phoneFormattedNumber": "044 668 18 00"}});
    let missing = call(&sim, "PATCH", &uri, &[], Some(patch.clone())).await;
    assert_eq!(missing.status, StatusCode::PRECONDITION_REQUIRED);
    let stale = call(
        &sim,
        "PATCH",
        &uri,
        &[("if-match", "\"2000-01-01T00:00:00.000Z\"")],
        Some(patch.clone()),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let ok = call(
        &sim,
        "PATCH",
        &uri,
        &[("if-match", etag.as_str())],
        Some(patch.clone()),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        ok.body["value"]["defaultCommunication"]["phoneNormalisedNumber"], "+41446681800",
        "V2 derives the normalised number"
    );
    assert_ne!(ok.headers[header::ETAG].to_str().expect("etag"), etag);
    let again = call(
        &sim,
        "PATCH",
        &uri,
        &[("if-match", etag.as_str())],
        Some(patch),
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::PRECONDITION_FAILED,
        "the old ETag is stale now"
    );
}

#[tokio::test]
async fn create_assigns_id_and_admin_data() {
    let sim = sim(None);
    let created = call(
        &sim,
        "POST",
        "/sap/c4c/api/v1/phone-service/phoneCalls",
        &[],
        Some(
            json!({"externalId": {"displayId": "call-1"}, "transcript": "Inbound call",
            "extensions": {"CtiDirection": "INBOUND"}}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["value"]["adminData"]["createdBy"], "api");
    // A top-level property no source shows on phone calls is refused, named.
    let guessed = call(
        &sim,
        "POST",
        "/sap/c4c/api/v1/phone-service/phoneCalls",
        &[],
        Some(json!({"externalId": {"displayId": "call-2"}, "direction": "INBOUND"})),
    )
    .await;
    assert_eq!(guessed.status, StatusCode::BAD_REQUEST);
    assert_eq!(guessed.body["error"]["target"], "direction");
    let refused = call(
        &sim,
        "POST",
        "/sap/c4c/api/v1/phone-service/phoneCalls",
        &[],
        Some(json!({"transcript": "no reference"})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["error"]["code"], "phoneCall.1001");
    assert_eq!(refused.body["error"]["target"], "{externalId/displayId}");
    let writes = sim.v2.phone_call_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "POST");
    assert!(created.body["value"]["id"].is_string());
    assert!(created.body["value"]["adminData"]["updatedOn"].is_string());
    let found = get(
        &sim,
        "/sap/c4c/api/v1/phone-service/phoneCalls?$filter=externalId.displayId%20eq%20'call-1'",
    )
    .await;
    assert_eq!(found.body["value"].as_array().map(Vec::len), Some(1));
    let bad = call(
        &sim,
        "POST",
        "/sap/c4c/api/v1/phone-service/phoneCalls",
        &[],
        Some(json!([1])),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn agent_desktop_creates_the_phone_call_and_an_edit_in_v2_makes_a_held_etag_stale() {
    let sim = sim(None);
    let id = sim.v2.agent_desktop_call("ref1");
    assert_eq!(sim.v2.agent_desktop_call("ref1"), id, "one per reference");
    let path = format!("/sap/c4c/api/v1/phone-service/phoneCalls/{id}");
    sim.v2
        .edit_phone_call_after_next_read(&id, "\nmanager: call back");
    let read = get(&sim, &path).await;
    assert_eq!(read.body["value"]["externalId"]["displayId"], "ref1");
    let etag = read.headers[header::ETAG]
        .to_str()
        .expect("etag")
        .to_string();
    let stale = call(
        &sim,
        "PATCH",
        &path,
        &[("if-match", etag.as_str())],
        Some(json!({"transcript": "ours"})),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let again = get(&sim, &path).await;
    assert_eq!(again.body["value"]["transcript"], "\nmanager: call back");
}

#[tokio::test]
async fn budget_answers_429_with_retry_after() {
    let sim = sim(Some(3));
    for _ in 0..3 {
        assert_eq!(get(&sim, ACCOUNTS).await.status, StatusCode::OK);
    }
    let limited = get(&sim, ACCOUNTS).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=86_400).contains(&retry));
}

#[tokio::test]
async fn injected_faults_hit_the_next_requests() {
    let sim = sim(None);
    let set = call(
        &sim,
        "POST",
        "/sim/faults",
        &[],
        Some(json!({"status": 503, "count": 2})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(
        get(&sim, ACCOUNTS).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&sim, ACCOUNTS).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(&sim, ACCOUNTS).await.status, StatusCode::OK);

    call(
        &sim,
        "POST",
        "/sim/faults",
        &[],
        Some(json!({"status": 429, "count": 1})),
    )
    .await;
    let limited = get(&sim, ACCOUNTS).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key(header::RETRY_AFTER));

    for bad in [
        json!({"status": 200}),
        json!({"status": 503, "delay_ms": 5}),
        json!({"count": -1, "status": 500}),
    ] {
        let reply = call(&sim, "POST", "/sim/faults", &[], Some(bad.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn patch_takes_the_declared_media_types_and_with_strictness_only_the_quoted_etag() {
    let sim = sim(None);
    let first = get(&sim, &format!("{ACCOUNTS}?$top=1")).await;
    let id = first.body["value"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let uri = format!("{ACCOUNTS}/{id}");
    let patch = json!({"defaultCommunication": {"phoneFormattedNumber": "044 668 18 01"}});
    let etag = |reply: &Reply| {
        reply.headers[header::ETAG]
            .to_str()
            .expect("etag")
            .to_string()
    };

    // A body that is not JSON by its declared type is refused before anything else.
    let current = etag(&get(&sim, &uri).await);
    let plain = call(
        &sim,
        "PATCH",
        &uri,
        &[
            ("if-match", current.as_str()),
            ("content-type", "text/plain"),
        ],
        None,
    )
    .await;
    assert_eq!(
        plain.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        plain.body
    );
    assert_eq!(plain.body["error"]["target"], "Content-Type");

    // By default an unquoted timestamp and `*` are taken, as clients are seen to send them.
    let unquoted = current.trim_matches('"').to_string();
    let taken = call(
        &sim,
        "PATCH",
        &uri,
        &[("if-match", &unquoted)],
        Some(patch.clone()),
    )
    .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);

    // Held to the documented form, only the quoted `updatedOn` passes.
    sim.v2.strict_if_match(true);
    let current = etag(&get(&sim, &uri).await);
    for refused in [current.trim_matches('"'), "*"] {
        let reply = call(
            &sim,
            "PATCH",
            &uri,
            &[("if-match", refused)],
            Some(patch.clone()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED, "{refused}");
    }
    let quoted = call(&sim, "PATCH", &uri, &[("if-match", &current)], Some(patch)).await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.body);
}
