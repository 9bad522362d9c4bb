//! Crawling a V2 that behaves as V2 may, beyond what is published: ranking-signal queries
//! refused, pages capped below 999, a 429 without Retry-After, keyset paging refused, a field
//! of the crawl's `$select` gone from the tenant.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cti_relay::clock::SystemClock;
use cti_relay::numbers::DefaultRegion;
use cti_relay::numbers::budget::DailyBudget;
use cti_relay::numbers::build::{BuildOptions, build_generation, crawl};
use cti_relay::v2::V2Client;
use cti_relay::v2::client::{Collection, V2Auth};
use cti_sim::{SimConfig, SimHandle};
use cti_tests::Stack;
use serde_json::{Value, json};

/// A simulated tenant of its own (the stack's relay would crawl it as soon as it starts).
async fn tenant(config: SimConfig) -> (SimHandle, V2Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = cti_sim::spawn_on(listener, config).expect("simulator");
    let client = V2Client::new(
        &sim.url(),
        V2Auth::Basic {
            user: "demo".into(),
            password: cti_relay::secret::Secret::new("demo"),
        },
        Duration::from_secs(30),
    );
    (sim, client)
}

fn options() -> BuildOptions {
    BuildOptions {
        region: DefaultRegion::parse("CH").expect("region"),
        activity_since: Some("2026-01-01T00:00:00Z".into()),
    }
}

fn unlimited() -> DailyBudget {
    DailyBudget::new(None, Arc::new(SystemClock))
}

async fn post(sim: &SimHandle, path: &str, body: Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sim.url()))
        .json(&body)
        .send()
        .await
        .expect("simulator answers");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

/// Every caller record the simulated tenant holds.
fn callers(sim: &SimHandle) -> usize {
    ["accounts", "contactPersons", "individualCustomers"]
        .iter()
        .map(|c| sim.sim.v2.records(c).len())
        .sum()
}

#[tokio::test]
async fn refused_signal_queries_leave_the_index_built_and_say_why() {
    let mut stack = Stack::start().await.expect("stack starts");
    post(
        &stack.sim,
        "/sim/v2/quirks",
        json!({"refuse_signal_filters": true}),
    )
    .await;
    // A new relay process builds its (memory) index from scratch, against the refusing tenant.
    stack.stop_relay().await;
    stack
        .start_relay_again()
        .await
        .expect("ready without signals");

    let account = stack
        .sim
        .sim
        .v2
        .records("accounts")
        .into_iter()
        .find(|a| a["defaultCommunication"]["phoneFormattedNumber"].is_string())
        .expect("an account with a phone");
    let e164 = cti_sim::v2::seed::normalise(
        account["defaultCommunication"]["phoneFormattedNumber"]
            .as_str()
            .unwrap_or_default(),
        account["defaultAddress"]["country"].as_str(),
    )
    .expect("a usable number");
    let found = stack
        .relay
        .state
        .numbers
        .index
        .lookup("demo", &e164)
        .await
        .expect("index lookup");
    assert!(
        found
            .iter()
            .any(|r| Some(r.id.as_str()) == account["id"].as_str()),
        "the caller is matched: {found:?}"
    );

    let readyz: Value = stack
        .http
        .get(format!("{}/readyz", stack.relay.url()))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    let signals = &readyz["tenants"]["demo"]["signals"];
    assert_eq!(signals["state"], "unavailable", "{readyz}");
    let reason = signals["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("opportunities") && reason.contains("400"),
        "{reason}"
    );
    assert!(reason.contains("phone_calls"), "{reason}");
    assert_eq!(readyz["tenants"]["demo"]["index"], "ready");

    let metrics = stack.metrics().await.expect("metrics");
    assert!(
        metrics.contains(
            "cti_index_signal_refusals_total{tenant=\"demo\",signal=\"opportunities\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_v2_capping_pages_at_500_is_crawled_whole() {
    let (sim, client) = tenant(SimConfig {
        records: 1_200,
        ..SimConfig::default()
    })
    .await;
    post(&sim, "/sim/v2/quirks", json!({"page_cap": 500})).await;
    let (generation, stats) = build_generation(&client, &options(), &unlimited())
        .await
        .expect("built");
    assert_eq!(stats.records, callers(&sim));
    assert!(generation.len() > 2_000, "{} numbers", generation.len());
}

#[tokio::test]
async fn a_429_without_retry_after_resumes_the_page() {
    let (sim, client) = tenant(SimConfig {
        records: 2_500,
        ..SimConfig::default()
    })
    .await;
    // The second page is throttled once, with no word on how long to wait.
    post(
        &sim,
        "/sim/faults",
        json!({"status": 429, "retry_after": false, "count": 1, "after": 1}),
    )
    .await;
    let before = sim.sim.v2.request_count();
    let mut ids = Vec::new();
    let requests = crawl(
        &client,
        Collection::Accounts,
        None,
        None,
        &unlimited(),
        |r| {
            ids.push(r["id"].as_str().unwrap_or_default().to_string());
        },
    )
    .await
    .expect("crawled");
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 2_500, "every account read once");
    assert_eq!(unique.len(), 2_500);
    // Pages of 999, 999, 502 and the empty one, plus the throttled one asked again.
    assert_eq!(requests, 5);
    assert_eq!(sim.sim.v2.request_count() - before, 5);
}

#[tokio::test]
async fn a_v2_refusing_keyset_paging_is_crawled_with_skip() {
    let (sim, client) = tenant(SimConfig::default()).await;
    post(
        &sim,
        "/sim/v2/quirks",
        json!({"refuse_keyset": true, "page_cap": 100}),
    )
    .await;
    let (generation, stats) = build_generation(&client, &options(), &unlimited())
        .await
        .expect("built");
    assert_eq!(stats.records, callers(&sim));
    let indexed: HashSet<String> = generation.numbers_by_record().map(|(id, _)| id).collect();
    assert!(
        indexed.len() > callers(&sim) / 2,
        "{} records",
        indexed.len()
    );
}

#[tokio::test]
async fn a_tenant_without_a_selected_field_is_crawled_with_whole_records() {
    let (sim, client) = tenant(SimConfig::default()).await;
    let (selected, selected_stats) = build_generation(&client, &options(), &unlimited())
        .await
        .expect("built");

    // The same seed, on a tenant that lacks a field each caller collection's selection names:
    // every caller collection is read whole, and must index exactly what the selection did.
    let (changed, client) = tenant(SimConfig::default()).await;
    for (collection, field) in [
        ("accounts", "firstLineName"),
        ("contactPersons", "accountId"),
        ("individualCustomers", "givenName"),
    ] {
        changed.sim.v2.withdraw_property(collection, field);
    }
    let (whole, stats) = build_generation(&client, &options(), &unlimited())
        .await
        .expect("built without the selections");
    assert_eq!(stats.records, callers(&sim));
    assert_eq!(stats.records, selected_stats.records);
    assert_eq!(
        stats.requests,
        selected_stats.requests + 3,
        "each caller collection's first page asked for again without $select, and only that"
    );
    assert!(stats.refused.is_empty(), "{:?}", stats.refused);
    let entries = |g: &cti_relay::numbers::generation::Generation| {
        let mut all: Vec<_> = g.entries().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    assert_eq!(whole.len(), selected.len(), "every number indexed");
    assert_eq!(entries(&whole), entries(&selected));
}
