//! Callers the index does not know, asked of V2 directly: each caller collection is asked only
//! on fields its schema has, answers on its own, and a collection V2 refuses is remembered with
//! its reason instead of being asked again on every ring.

use cti_protocol::ws::RecordKind;
use cti_relay::numbers::live::{self, MissCache};
use cti_tests::{Stack, eventually};
use serde_json::json;

const NUMBER: &str = "+41445556677";

#[tokio::test]
async fn a_refused_contact_lookup_leaves_the_account_matches_and_is_remembered() {
    let stack = Stack::start().await.expect("stack starts");
    let v2 = &stack.sim.sim.v2;
    v2.import(
        "accounts",
        json!({"id": "00000000-live-account", "displayId": "190777", "formattedName": "Neukunde AG",
            "defaultAddress": {"country": "CH"},
            "defaultCommunication": {"phoneFormattedNumber": "044 555 66 77", "phoneNormalisedNumber": NUMBER},
            "adminData": {"updatedOn": "2026-01-01T00:00:00.000Z"}}),
    );
    v2.import(
        "contactPersons",
        json!({"id": "00000000-live-contact", "displayId": "290777", "familyName": "Neu",
            "formattedName": "Nina Neu", "accountId": "00000000-live-account",
            "isContactPersonFor": [{"accountId": "00000000-live-account", "country": "CH",
                "phoneFormattedNumber": "+41 44 555 66 77"}],
            "adminData": {"updatedOn": "2026-01-01T00:00:00.000Z"}}),
    );
    let client = stack.v2_client();

    // The strict tenant answers the contact query: it names formatted fields only.
    let cache = MissCache::default();
    let found = live::query(&client, &cache, "demo", NUMBER, 0)
        .await
        .expect("lookup");
    let kinds: Vec<RecordKind> = found.iter().map(|r| r.kind).collect();
    assert!(kinds.contains(&RecordKind::Account), "{found:?}");
    assert!(kinds.contains(&RecordKind::Contact), "{found:?}");
    assert!(cache.refusals("demo", 0).is_empty());

    // A tenant whose contact schema lacks the field refuses the contact query.
    v2.withdraw_property("contactPersons", "isContactPersonFor/phoneFormattedNumber");
    let cache = MissCache::default();
    let found = live::query(&client, &cache, "demo", NUMBER, 0)
        .await
        .expect("the account still answers");
    assert_eq!(
        found.iter().map(|r| r.kind).collect::<Vec<_>>(),
        [RecordKind::Account]
    );
    let refusals = cache.refusals("demo", 0);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].collection, "contactPersons");
    assert!(
        refusals[0]
            .reason
            .contains("isContactPersonFor/phoneFormattedNumber"),
        "{refusals:?}"
    );

    // The next ring does not ask the refusing collection again.
    let before = v2.request_count();
    live::query(&client, &cache, "demo", NUMBER, 1_000)
        .await
        .expect("lookup");
    assert_eq!(v2.request_count() - before, 2);
}

#[tokio::test]
async fn readiness_names_a_collection_that_refused_a_live_lookup() {
    let stack = Stack::start().await.expect("stack starts");
    stack.wait_ready().await.expect("ready");
    let before = stack.readyz().await.expect("readyz");
    assert_eq!(
        before["tenants"]["demo"]["live_lookup"]["state"],
        "available"
    );

    // A tenant whose contact schema lacks the field: an unknown caller is looked up live.
    stack
        .sim
        .sim
        .v2
        .withdraw_property("contactPersons", "isContactPersonFor/phoneFormattedNumber");
    stack
        .place_call("+41 44 555 00 99", "alice@example.com")
        .await
        .expect("the call rings");
    let refused = eventually("readiness to name the refused collection", || async {
        let now = stack.readyz().await.ok()?;
        let lookup = &now["tenants"]["demo"]["live_lookup"];
        (lookup["state"] == "partly_refused").then(|| lookup["refused"].clone())
    })
    .await
    .expect("named");
    assert!(
        refused["contactPersons"]
            .as_str()
            .is_some_and(|r| r.contains("isContactPersonFor/phoneFormattedNumber")),
        "{refused}"
    );
    // A refused lookup is not a reason to take the instance out of rotation.
    assert_eq!(stack.readyz().await.expect("readyz")["status"], "ready");
}
