//! `cti-relay numbers audit` against the simulated tenant: the report names every phone field
//! that will not match callers, and `--fix` corrects the disagreements through If-Match, judging
//! a record again when it changed after the crawl.

use cti_relay::numbers::DefaultRegion;
use cti_relay::numbers::audit::{self, AuditOptions, Progress};
use cti_relay::v2::client::Collection;
use cti_tests::Stack;
use serde_json::json;

const CONTACT: &str = "00000000-audit-contact";
const ACCOUNT: &str = "00000000-audit-account";

/// Legacy records as a migration loaded them: typed numbers whose stored normalised values are
/// wrong or missing, and one that is not a number at all. The contact carries twins its schema
/// does not have (as an import might leave them); the audit must neither judge nor write them.
fn import_dirty_records(stack: &Stack) {
    let v2 = &stack.sim.sim.v2;
    v2.import(
        "contactPersons",
        json!({"id": CONTACT, "displayId": "290001", "familyName": "Altdaten", "formattedName": "Olga Altdaten",
            "phoneFormattedNumber": "+41 44 123 45 67", "phoneNormalisedNumber": "+41441234567",
            "isContactPersonFor": [
                {"accountId": "a-1", "country": "CH", "phoneFormattedNumber": "044 765 43 21",
                 "phoneNormalisedNumber": "+4944765432"},
                {"accountId": "a-2", "country": "CH", "mobileFormattedNumber": "12"}],
            "adminData": {"updatedOn": "2026-01-01T00:00:00.000Z"}}),
    );
    v2.import(
        "accounts",
        json!({"id": ACCOUNT, "displayId": "190001", "formattedName": "Altbau GmbH",
            "defaultAddress": {"country": "CH"},
            "defaultCommunication": {"eMail": "info@altbau.example", "phoneFormattedNumber": "044 222 33 44"},
            "addresses": [{"country": "DE", "cityName": "Berlin", "phoneFormattedNumber": "030 1234567",
                           "phoneNormalisedNumber": "+41301234567"}],
            "adminData": {"updatedOn": "2026-01-01T00:00:00.000Z"}}),
    );
}

fn rows(csv_text: &[u8]) -> Vec<csv::StringRecord> {
    csv::Reader::from_reader(csv_text)
        .records()
        .collect::<Result<_, _>>()
        .expect("valid CSV")
}

fn row_for<'a>(rows: &'a [csv::StringRecord], id: &str, field: &str) -> &'a csv::StringRecord {
    rows.iter()
        .find(|r| &r[1] == id && &r[3] == field)
        .unwrap_or_else(|| panic!("no row for {id} {field}: {rows:?}"))
}

#[tokio::test]
async fn the_audit_reports_and_fixes_disagreeing_phone_fields() {
    let stack = Stack::start().await.expect("stack starts");
    import_dirty_records(&stack);
    let client = stack.v2_client();
    let ch = DefaultRegion::parse("CH").expect("region");

    let mut report = Vec::new();
    let summary = audit::run(&client, &ch, AuditOptions::default(), &mut report, |_| {})
        .await
        .expect("audit runs");
    let found = rows(&report);
    let header = csv::Reader::from_reader(report.as_slice())
        .headers()
        .expect("header")
        .clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        [
            "collection",
            "id",
            "display_id",
            "field",
            "typed",
            "stored_normalised",
            "expected_e164",
            "problem",
            "action"
        ]
    );
    assert!(
        found
            .iter()
            .all(|r| &r[1] != CONTACT || &r[3] != "isContactPersonFor/0/phoneFormattedNumber"),
        "a contact's valid number is fine whatever a twin it should not have says"
    );
    assert_eq!(
        &row_for(
            &found,
            CONTACT,
            "isContactPersonFor/1/mobileFormattedNumber"
        )[7],
        "invalid:not_valid"
    );
    let berlin = row_for(&found, ACCOUNT, "addresses/0/phoneFormattedNumber");
    assert_eq!(
        (&berlin[6], &berlin[7]),
        ("+49301234567", "mismatch"),
        "read with the address's own country"
    );
    assert_eq!(
        &row_for(&found, ACCOUNT, "defaultCommunication/phoneFormattedNumber")[7],
        "mismatch",
        "a typed number V2 never normalised"
    );
    assert!(
        found
            .iter()
            .all(|r| &r[1] != CONTACT || &r[3] != "phoneFormattedNumber"),
        "the contact's correct own phone is not reported"
    );
    assert!(summary.records > 900 && summary.mismatched >= 2 && summary.invalid >= 1);
    assert_eq!(
        stack
            .sim
            .sim
            .v2
            .records("accounts")
            .iter()
            .find(|a| a["id"] == ACCOUNT)
            .map(|a| a["adminData"]["updatedOn"].clone()),
        Some(json!("2026-01-01T00:00:00.000Z")),
        "without --fix nothing is written"
    );

    // Fix, while someone edits the account in V2 right after the crawl.
    let mut report = Vec::new();
    let mut edited = false;
    let sim = stack.sim.sim.clone();
    let summary = audit::run(&client, &ch, AuditOptions { fix: true }, &mut report, |p| {
        if matches!(p, Progress::Fixing { done: 0, .. }) && !edited {
            sim.v2.touch("accounts", ACCOUNT);
            edited = true;
        }
    })
    .await
    .expect("audit fixes");
    let fixed = rows(&report);
    assert_eq!(
        &row_for(
            &fixed,
            CONTACT,
            "isContactPersonFor/1/mobileFormattedNumber"
        )[8],
        "needs_a_person"
    );
    assert_eq!(
        &row_for(&fixed, ACCOUNT, "defaultCommunication/phoneFormattedNumber")[8],
        "fixed"
    );
    // V2 derives every normalised value of a record on write, so fixing the first field of the
    // account also put its address phone right.
    assert!(
        matches!(
            &row_for(&fixed, ACCOUNT, "addresses/0/phoneFormattedNumber")[8],
            "fixed" | "already_right"
        ),
        "{fixed:?}"
    );
    assert!(
        summary.conflicts >= 1,
        "the edited account was judged again"
    );
    assert_eq!(summary.failed, 0);

    let contact = client
        .get(Collection::ContactPersons, CONTACT)
        .await
        .expect("read")
        .expect("exists")
        .record;
    assert_eq!(
        contact["adminData"]["updatedOn"], "2026-01-01T00:00:00.000Z",
        "nothing was written to the contact"
    );
    let relations = &contact["isContactPersonFor"];
    assert_eq!(relations[0]["phoneFormattedNumber"], "044 765 43 21");
    assert_eq!(
        relations[1]["mobileFormattedNumber"], "12",
        "invalid numbers are left alone"
    );
    let account = client
        .get(Collection::Accounts, ACCOUNT)
        .await
        .expect("read")
        .expect("exists")
        .record;
    assert_eq!(
        account["addresses"][0]["phoneNormalisedNumber"],
        "+49301234567"
    );
    assert_eq!(account["addresses"][0]["cityName"], "Berlin");
    assert_eq!(
        account["defaultCommunication"]["eMail"],
        "info@altbau.example"
    );

    // A second audit finds nothing left to fix among these records.
    let mut report = Vec::new();
    audit::run(&client, &ch, AuditOptions::default(), &mut report, |_| {})
        .await
        .expect("audit runs");
    let after = rows(&report);
    assert!(
        after
            .iter()
            .filter(|r| &r[1] == CONTACT || &r[1] == ACCOUNT)
            .all(|r| &r[7] != "mismatch"),
        "{after:?}"
    );
}
