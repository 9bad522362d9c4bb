//! Finding a caller's record by name, and creating one for an unknown caller: the V2 requests
//! and what the relay reads back, in the one place that knows their field names.
//!
//! | what | request | status |
//! | --- | --- | --- |
//! | search | `GET <collection>?$search="<words>"&$top=<n>` on accounts, contact persons and individual customers | `$search` with double quotes published for custom services (GUIDE-API); that the standard services behave the same is inferred; single quotes give 400 |
//! | account create | `POST account-service/accounts` `{customerRole, firstLineName, defaultCommunication/phoneFormattedNumber}` | `customerRole` and `firstLineName` required (CDS-ACC); `CRM000` (customer) as seen in SAP's mock data |
//! | contact create | `POST contact-person-service/contactPersons` `{givenName, familyName, accountId, phoneFormattedNumber}` | published create fields (SDK-GEN), `familyName` required |
//! | individual customer create | `POST individual-customer-service/individualCustomers` `{customerRole, givenName, familyName, defaultCommunication/phoneFormattedNumber}` | inferred: the fields are those of SAP's mock data, which fields are required is not published (`familyName` assumed, as for contacts) |
//! | open in V2 | `<tenant>/go/detail/mdcontact?nodeid=<id>` | seen in use for contacts; `mdaccount` and `mdindividualcustomer` are inferred by analogy and not found in any published source |
//!
//! The number goes in E.164 as the formatted number: V2 derives the normalised twins of accounts
//! and individual customers from it (inferred from SAP's mock data), and the relay's own index
//! normalises every formatted number itself.

use cti_protocol::ws::{NewRecordFields, RecordKind};
use serde_json::{Value, json};

use super::client::Collection;

/// The role of a new account or individual customer: a customer (`CRM000`, SAP's mock data).
pub const CUSTOMER_ROLE: &str = "CRM000";

/// The collection holding records of `kind`.
pub fn collection(kind: RecordKind) -> Collection {
    match kind {
        RecordKind::Contact => Collection::ContactPersons,
        RecordKind::IndividualCustomer => Collection::IndividualCustomers,
        _ => Collection::Accounts,
    }
}

/// The query of a name search: the words in double quotes (V2 refuses single quotes), with any
/// double quote the rep typed left out, since how V2 escapes one inside is not published.
pub fn search_query(words: &str, top: usize) -> Vec<(&'static str, String)> {
    let words: String = words.chars().filter(|c| *c != '"').collect();
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    vec![
        ("$search", format!("\"{words}\"")),
        ("$top", top.to_string()),
    ]
}

/// The body that creates a record of `kind` from the rep's fields, carrying `number` (E.164).
/// The fields are assumed checked ([`cti_protocol::lookup::check_new_record`]).
pub fn create_body(kind: RecordKind, fields: &NewRecordFields, number: &str) -> Value {
    let given = fields.given_name.trim();
    let family = fields.family_name.trim();
    let mut body = match kind {
        RecordKind::Account => json!({
            "customerRole": CUSTOMER_ROLE,
            "firstLineName": fields.name.trim(),
            "defaultCommunication": {"phoneFormattedNumber": number},
        }),
        RecordKind::Contact => json!({
            "familyName": family,
            "phoneFormattedNumber": number,
        }),
        _ => json!({
            "customerRole": CUSTOMER_ROLE,
            "familyName": family,
            "defaultCommunication": {"phoneFormattedNumber": number},
        }),
    };
    if kind != RecordKind::Account && !given.is_empty() {
        body["givenName"] = json!(given);
    }
    if kind == RecordKind::Contact
        && let Some(account) = fields.account_id.as_deref().map(str::trim)
    {
        body["accountId"] = json!(account);
    }
    body
}

/// A link that opens the record in V2 (`target=_blank`). See the module table for which object
/// keywords are seen in use and which are inferred.
pub fn record_link(v2_url: &str, kind: RecordKind, id: &str) -> String {
    let object = match kind {
        RecordKind::Contact => "mdcontact",
        // Inferred by analogy with `mdcontact`.
        RecordKind::IndividualCustomer => "mdindividualcustomer",
        // Inferred by analogy with `mdcontact`.
        _ => "mdaccount",
    };
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!(
        "{}/go/detail/{object}?nodeid={id}",
        v2_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_goes_in_double_quotes_without_the_reps_own() {
        assert_eq!(
            search_query("  Anna   \"Muster\" ", 10),
            vec![
                ("$search", "\"Anna Muster\"".to_string()),
                ("$top", "10".to_string())
            ]
        );
    }

    #[test]
    fn each_kind_is_created_with_the_fields_v2_requires_and_the_number() {
        let mut person = NewRecordFields::default();
        person.given_name = " Anna ".into();
        person.family_name = "Muster".into();
        person.account_id = Some("a-1".into());
        assert_eq!(
            create_body(RecordKind::Contact, &person, "+41441234567"),
            json!({"givenName": "Anna", "familyName": "Muster", "accountId": "a-1",
                   "phoneFormattedNumber": "+41441234567"})
        );
        let mut individual = NewRecordFields::default();
        individual.family_name = "Muster".into();
        assert_eq!(
            create_body(RecordKind::IndividualCustomer, &individual, "+41441234567"),
            json!({"customerRole": "CRM000", "familyName": "Muster",
                   "defaultCommunication": {"phoneFormattedNumber": "+41441234567"}})
        );
        let mut account = NewRecordFields::default();
        account.name = "Acme AG".into();
        assert_eq!(
            create_body(RecordKind::Account, &account, "+41441234567"),
            json!({"customerRole": "CRM000", "firstLineName": "Acme AG",
                   "defaultCommunication": {"phoneFormattedNumber": "+41441234567"}})
        );
    }

    #[test]
    fn links_open_the_record_and_carry_nothing_but_its_id() {
        assert_eq!(
            record_link("https://t.crm.cloud.sap/", RecordKind::Contact, "0197-ab"),
            "https://t.crm.cloud.sap/go/detail/mdcontact?nodeid=0197-ab"
        );
        assert_eq!(
            record_link("https://t", RecordKind::Account, "a&b=c"),
            "https://t/go/detail/mdaccount?nodeid=abc"
        );
    }
}
