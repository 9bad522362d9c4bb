//! Where V2 keeps what the CTI reads: the one place that knows V2's field names.
//!
//! Every field read here, and how sure we are of it ("published" names the specification that
//! declares it; "inferred" means seen in practice or by analogy, to change here when SAP says
//! otherwise). The phone-call activity's fields are marked the same way in `phone_call.rs`.
//!
//! | collection | fields | status |
//! | --- | --- | --- |
//! | accounts | `id`, `displayId`, `formattedName`, `ownerId`, `defaultAddress/country`, `defaultCommunication/{phone,mobile}{Formatted,Normalised}Number`, `addresses[]/{country, phone and mobile numbers}` | published (CloudSDK_customerAccounts; `ownerId` in SAP's account data service, CDS-ACC) |
//! | individual customers | `id`, `displayId`, `formattedName` / `givenName` + `familyName`, `ownerId`, the same communication and address fields as accounts | published (CloudSDK_individualCustomer; `ownerId` by analogy with accounts, inferred) |
//! | contact persons | `id`, `displayId`, `formattedName` / `givenName` + `familyName`, `accountId`, `phoneFormattedNumber`, `mobileFormattedNumber`, `isContactPersonFor[]/{accountId, accountFormattedName, country, phoneFormattedNumber, mobileFormattedNumber}` | published (contact person schema of SAP's generated SDK); no normalised twins exist |
//! | employees | `id`, `workplaceAddress/eMail` (or `eMail`) | published (SalesSvcCloudV2_employeeService) |
//! | opportunities | `id`, `name`, `account/id`, `lifeCycleStatus` (`OPEN`), `salesPhase`, `salesPhaseDescription`, `expectedRevenue/{amount, currencyCode}` | inferred (V2's other services and samples) |
//! | phone calls (read for ranking and the card) | `account/id`, `startDateTime`, `subject` | inferred |
//! | every collection | `adminData/updatedOn` (the ETag), paging by `id` | ETag published (employee, case specifications); keyset paging inferred |

use serde_json::Value;

use cti_protocol::ws::{AccountRef, Interaction, Opportunity, RecordKind};

use super::client::Collection;

/// The collections whose phone numbers identify callers, with the record kind each holds.
pub const CALLER_COLLECTIONS: [(Collection, RecordKind); 3] = [
    (Collection::Accounts, RecordKind::Account),
    (Collection::ContactPersons, RecordKind::Contact),
    (
        Collection::IndividualCustomers,
        RecordKind::IndividualCustomer,
    ),
];

/// `$select` of a crawl of `kind`: the fields [`caller_record`], [`phone_fields`] and
/// [`owner_id`] read, each in the collection's published schema (contacts have no `ownerId` or
/// `firstLineName`, individual customers no `firstLineName`). A page of these is about a third
/// of a whole one, for V2 to write and the relay to read. Nested paths (`defaultCommunication/
/// phoneFormattedNumber`) are not used: whether V2 selects inside an object is not published.
/// A kind added later reads whole records until its fields are listed here.
pub fn caller_select(kind: RecordKind) -> Option<&'static str> {
    Some(match kind {
        RecordKind::Account => {
            "id,displayId,formattedName,firstLineName,ownerId,defaultAddress,defaultCommunication,\
             addresses"
        }
        RecordKind::IndividualCustomer => {
            "id,displayId,formattedName,givenName,familyName,ownerId,defaultAddress,\
             defaultCommunication,addresses"
        }
        RecordKind::Contact => {
            "id,displayId,formattedName,givenName,familyName,accountId,phoneFormattedNumber,\
             mobileFormattedNumber,isContactPersonFor"
        }
        _ => return None,
    })
}

/// `$select` of the open-opportunity crawl: [`opportunity_account`]'s field.
pub const OPPORTUNITY_ACCOUNT_SELECT: &str = "account";

/// `$select` of the phone-call crawl: [`call_account_and_start`]'s fields.
pub const CALL_ACCOUNT_AND_START_SELECT: &str = "account,startDateTime";

/// Whether records of `kind` have `...NormalisedNumber` twins next to their formatted numbers:
/// accounts and individual customers do (CDS-ACC, SAP's mock data), contacts do not (SDK-GEN has
/// only `...FormattedNumber`, on the contact and in `isContactPersonFor[]`).
pub fn has_normalised_twins(kind: RecordKind) -> bool {
    kind != RecordKind::Contact
}

/// Whether a header PATCH of a `kind` record may carry the sub-node array `name` whole. Only
/// accounts' `addresses` are in a published PATCH request (CDS-ACC `Accountpatchupdaterequest`);
/// V2 refused sub-nodes in a header PATCH of opportunities, so every other array is assumed
/// refused until SAP's schema says otherwise.
pub fn may_patch_array(kind: RecordKind, name: &str) -> bool {
    kind == RecordKind::Account && name == "addresses"
}

/// One phone field of a record: as typed, as V2 normalised it (when it did), the country of the
/// address it belongs to (the best default region for a nationally written number), and where in
/// the record it sits (for reports and corrections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneField<'a> {
    pub formatted: Option<&'a str>,
    pub normalised: Option<&'a str>,
    pub country: Option<&'a str>,
    pub location: PhoneLocation,
}

/// Which object of a record holds a phone field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The record itself (a contact's own phones).
    Record,
    /// An object field, e.g. `defaultCommunication`.
    Object(&'static str),
    /// An element of an array field, e.g. `addresses[1]`, `isContactPersonFor[0]`.
    Element(&'static str, usize),
}

/// Where a phone field sits: its holder and whether it is the phone or the mobile pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneLocation {
    pub holder: Holder,
    /// `phone` or `mobile`.
    pub prefix: &'static str,
}

impl PhoneLocation {
    pub fn formatted_key(&self) -> String {
        format!("{}FormattedNumber", self.prefix)
    }

    pub fn normalised_key(&self) -> String {
        format!("{}NormalisedNumber", self.prefix)
    }

    /// `defaultCommunication/phoneFormattedNumber`, `isContactPersonFor/0/phoneFormattedNumber`.
    pub fn path(&self) -> String {
        match self.holder {
            Holder::Record => self.formatted_key(),
            Holder::Object(name) => format!("{name}/{}", self.formatted_key()),
            Holder::Element(name, i) => format!("{name}/{i}/{}", self.formatted_key()),
        }
    }

    /// The object holding the field in `record`, if it (still) exists.
    pub fn holder<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        match self.holder {
            Holder::Record => Some(record),
            Holder::Object(name) => record.get(name),
            Holder::Element(name, i) => record.get(name)?.get(i),
        }
    }

    /// The field's values inside its holder object.
    pub fn read_in<'a>(&self, holder: &'a Value, country: Option<&'a str>) -> PhoneField<'a> {
        PhoneField {
            formatted: str_at(holder, &self.formatted_key()),
            normalised: str_at(holder, &self.normalised_key()),
            country,
            location: *self,
        }
    }

    /// A JSON merge patch that sets this field's formatted value, and its normalised twin when
    /// the record has one (`normalised`). Merge patch replaces arrays whole, so an element's fix
    /// sends the whole (current) array; whether that is allowed is [`may_patch_array`]'s.
    pub fn patch(
        &self,
        record: &Value,
        formatted: &str,
        normalised: Option<&str>,
    ) -> Option<Value> {
        let mut values = serde_json::Map::new();
        values.insert(self.formatted_key(), Value::String(formatted.into()));
        if let Some(normalised) = normalised {
            values.insert(self.normalised_key(), Value::String(normalised.into()));
        }
        let mut patch = serde_json::Map::new();
        match self.holder {
            Holder::Record => patch = values,
            Holder::Object(name) => {
                patch.insert(name.into(), Value::Object(values));
            }
            Holder::Element(name, i) => {
                let mut array = record.get(name)?.as_array()?.clone();
                let element = array.get_mut(i)?.as_object_mut()?;
                element.extend(values);
                patch.insert(name.into(), Value::Array(array));
            }
        }
        Some(Value::Object(patch))
    }
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// The phone and mobile pair of one communication block (an object with `phone*`/`mobile*`).
fn pair<'a>(
    block: &'a Value,
    country: Option<&'a str>,
    holder: Holder,
    out: &mut Vec<PhoneField<'a>>,
) {
    for prefix in ["phone", "mobile"] {
        let field = PhoneLocation { holder, prefix }.read_in(block, country);
        if field.formatted.is_some() || field.normalised.is_some() {
            out.push(field);
        }
    }
}

/// Every phone number a record carries: accounts and individual customers on their default
/// communication and addresses; contacts on themselves and on each account they work for.
pub fn phone_fields(kind: RecordKind, record: &Value) -> Vec<PhoneField<'_>> {
    let mut out = Vec::new();
    match kind {
        RecordKind::Contact => {
            let country = record
                .get("isContactPersonFor")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|r| str_at(r, "country"));
            pair(record, country, Holder::Record, &mut out);
            if let Some(relations) = record.get("isContactPersonFor").and_then(Value::as_array) {
                for (i, relation) in relations.iter().enumerate() {
                    let holder = Holder::Element("isContactPersonFor", i);
                    pair(relation, str_at(relation, "country"), holder, &mut out);
                }
            }
        }
        _ => {
            let country = record
                .get("defaultAddress")
                .and_then(|a| str_at(a, "country"));
            if let Some(block) = record.get("defaultCommunication") {
                pair(
                    block,
                    country,
                    Holder::Object("defaultCommunication"),
                    &mut out,
                );
            }
            if let Some(addresses) = record.get("addresses").and_then(Value::as_array) {
                for (i, address) in addresses.iter().enumerate() {
                    let country = str_at(address, "country").or(country);
                    pair(address, country, Holder::Element("addresses", i), &mut out);
                }
            }
        }
    }
    out
}

/// What a caller record says of itself, read with V2's field names: enough for a caller card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerRecord {
    pub kind: RecordKind,
    pub id: String,
    pub display_id: String,
    pub name: String,
    /// The record's account (itself for an account, the main relation for a contact).
    pub account: Option<AccountRef>,
    /// The V2 employee who owns the record.
    pub owner_id: Option<String>,
}

/// The card's view of a record, or None when V2 sent a record without an id.
pub fn caller_record(kind: RecordKind, record: &Value) -> Option<CallerRecord> {
    let id = str_at(record, "id")?.to_string();
    let name = str_at(record, "formattedName")
        .map(str::to_string)
        .or_else(|| {
            let given = str_at(record, "givenName").unwrap_or_default();
            let family = str_at(record, "familyName").unwrap_or_default();
            let joined = format!("{given} {family}").trim().to_string();
            (!joined.is_empty()).then_some(joined)
        })
        .or_else(|| str_at(record, "firstLineName").map(str::to_string))
        .unwrap_or_else(|| "(no name)".into());
    let account = match kind {
        RecordKind::Contact => contact_account(record),
        _ => Some(AccountRef {
            id: id.clone(),
            name: name.clone(),
        }),
    };
    Some(CallerRecord {
        owner_id: owner_id(record).map(str::to_string),
        kind,
        display_id: str_at(record, "displayId").unwrap_or_default().to_string(),
        id,
        name,
        account,
    })
}

/// A contact's main account: the relation for `accountId`, else the first relation.
fn contact_account(record: &Value) -> Option<AccountRef> {
    let relations = record.get("isContactPersonFor").and_then(Value::as_array);
    let main_id = str_at(record, "accountId");
    let relation = relations.and_then(|rs| {
        rs.iter()
            .find(|r| main_id.is_some() && str_at(r, "accountId") == main_id)
            .or_else(|| rs.first())
    });
    let id = main_id.or_else(|| relation.and_then(|r| str_at(r, "accountId")))?;
    let name = relation
        .and_then(|r| str_at(r, "accountFormattedName"))
        .unwrap_or_default();
    Some(AccountRef {
        id: id.to_string(),
        name: name.to_string(),
    })
}

/// `$filter` finding every record of `kind` that carries a number, on the fields its schema has.
///
/// Accounts and individual customers have normalised twins (CDS-ACC; the filter is used in
/// practice), matched with `e164`. Contacts have only `...FormattedNumber` fields (SDK-GEN), so
/// they are matched on the text itself, in each of `formatted`: the spellings V2 may hold for the
/// number. Which spelling V2 stores is inferred: SAP's samples show `+91 9999990012` (country
/// code, a space, the national number), people type the grouped international form, and a
/// number typed nationally (`044 ...`) cannot be found this way at all (the index, which
/// normalises every formatted number itself, carries those).
pub fn phone_filter(kind: RecordKind, e164: &str, formatted: &[String]) -> String {
    let (paths, values): (&[&str], Vec<String>) = match kind {
        RecordKind::Contact => (
            &[
                "phoneFormattedNumber",
                "mobileFormattedNumber",
                "isContactPersonFor/phoneFormattedNumber",
                "isContactPersonFor/mobileFormattedNumber",
            ],
            formatted.iter().map(|f| super::client::quote(f)).collect(),
        ),
        _ => (
            &[
                "defaultCommunication/phoneNormalisedNumber",
                "defaultCommunication/mobileNormalisedNumber",
                "addresses/phoneNormalisedNumber",
                "addresses/mobileNormalisedNumber",
            ],
            vec![super::client::quote(e164)],
        ),
    };
    paths
        .iter()
        .flat_map(|p| values.iter().map(move |v| format!("{p} eq {v}")))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `$filter` for every open opportunity of the tenant.
pub const OPEN_OPPORTUNITY_FILTER: &str = "lifeCycleStatus eq 'OPEN'";

/// `$filter` for phone calls that started at or after `since` (RFC 3339).
pub fn calls_since_filter(since: &str) -> String {
    format!("startDateTime ge {}", super::client::quote(since))
}

/// The employee owning an account or individual customer.
pub fn owner_id(record: &Value) -> Option<&str> {
    str_at(record, "ownerId")
}

/// An employee's e-mail address (how a rep signs in) and V2 id.
pub fn employee_email_and_id(employee: &Value) -> Option<(&str, &str)> {
    let email = employee
        .get("workplaceAddress")
        .and_then(|a| str_at(a, "eMail"))
        .or_else(|| str_at(employee, "eMail"))?;
    Some((email, str_at(employee, "id")?))
}

/// The account an opportunity belongs to.
pub fn opportunity_account(opportunity: &Value) -> Option<&str> {
    opportunity.get("account").and_then(|a| str_at(a, "id"))
}

/// The account a phone call was on, and when it started.
pub fn call_account_and_start(call: &Value) -> Option<(&str, &str)> {
    let account = call.get("account").and_then(|a| str_at(a, "id"))?;
    Some((account, str_at(call, "startDateTime")?))
}

/// `$filter` for the open opportunities of an account.
pub fn open_opportunities_filter(account_id: &str) -> String {
    format!(
        "account/id eq {} and {OPEN_OPPORTUNITY_FILTER}",
        super::client::quote(account_id)
    )
}

/// `$filter` and `$orderby` for an account's latest phone interactions.
pub fn interactions_query(account_id: &str) -> (String, String) {
    (
        format!("account/id eq {}", super::client::quote(account_id)),
        "startDateTime desc".into(),
    )
}

pub fn opportunity(value: &Value) -> Option<Opportunity> {
    let revenue = value.get("expectedRevenue");
    Some(Opportunity {
        id: str_at(value, "id")?.to_string(),
        name: str_at(value, "name").unwrap_or("(unnamed)").to_string(),
        stage: str_at(value, "salesPhaseDescription")
            .or_else(|| str_at(value, "salesPhase"))
            .unwrap_or_default()
            .to_string(),
        amount: revenue
            .and_then(|r| r.get("amount"))
            .and_then(Value::as_f64),
        currency: revenue
            .and_then(|r| str_at(r, "currencyCode"))
            .map(str::to_string),
    })
}

pub fn interaction(value: &Value) -> Option<Interaction> {
    Some(Interaction {
        kind: "phone_call".into(),
        subject: str_at(value, "subject").unwrap_or("Phone call").to_string(),
        at: str_at(value, "startDateTime")?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn account_phones_include_addresses() {
        let account = json!({"id":"a1","displayId":"100","formattedName":"Acme AG",
            "defaultAddress":{"country":"CH"},
            "defaultCommunication":{"phoneFormattedNumber":"044 123 45 67","mobileNormalisedNumber":"+41791234567"},
            "addresses":[{"country":"DE","phoneFormattedNumber":"030 1234567"}]});
        let phones = phone_fields(RecordKind::Account, &account);
        assert_eq!(phones.len(), 3);
        assert_eq!(phones[0].formatted, Some("044 123 45 67"));
        assert_eq!(phones[0].country, Some("CH"));
        assert_eq!(phones[1].normalised, Some("+41791234567"));
        assert_eq!(phones[2].country, Some("DE"));
        let rec = caller_record(RecordKind::Account, &account).expect("record");
        assert_eq!(rec.account.expect("self").name, "Acme AG");
    }

    #[test]
    fn contact_work_phones_per_account() {
        let contact = json!({"id":"c1","givenName":"Anna","familyName":"Muster","accountId":"a2",
            "phoneFormattedNumber":"+41 44 111 22 33",
            "isContactPersonFor":[
                {"accountId":"a1","accountFormattedName":"Other","country":"CH","phoneFormattedNumber":"044 123 45 67"},
                {"accountId":"a2","accountFormattedName":"Main AG","country":"CH"}]});
        let phones = phone_fields(RecordKind::Contact, &contact);
        assert_eq!(phones.len(), 2);
        let rec = caller_record(RecordKind::Contact, &contact).expect("record");
        assert_eq!(rec.name, "Anna Muster");
        assert_eq!(rec.account.expect("account").name, "Main AG");
    }

    #[test]
    fn locations_name_the_field_and_patch_it_in_place() {
        let contact = json!({"id":"c1","familyName":"Muster","phoneFormattedNumber":"+41 44 111 22 33",
            "isContactPersonFor":[{"accountId":"a1","country":"CH","phoneFormattedNumber":"044 123 45 67"},
                                  {"accountId":"a2","country":"CH","mobileFormattedNumber":"079 1"}]});
        let phones = phone_fields(RecordKind::Contact, &contact);
        let paths: Vec<String> = phones.iter().map(|p| p.location.path()).collect();
        assert_eq!(
            paths,
            [
                "phoneFormattedNumber",
                "isContactPersonFor/0/phoneFormattedNumber",
                "isContactPersonFor/1/mobileFormattedNumber"
            ]
        );
        let patch = phones[2]
            .location
            .patch(&contact, "+41 79 123 45 67", None)
            .expect("patch");
        // The whole array goes back, with only that element's field changed.
        assert_eq!(
            patch["isContactPersonFor"][0],
            contact["isContactPersonFor"][0]
        );
        assert_eq!(
            patch["isContactPersonFor"][1],
            json!({"accountId":"a2","country":"CH","mobileFormattedNumber":"+41 79 123 45 67"}),
            "a contact gets no normalised twin"
        );
        assert_eq!(patch["isContactPersonFor"][1]["accountId"], "a2");
        let top = phones[0]
            .location
            .patch(&contact, "+41 44 111 22 33", None)
            .expect("patch");
        assert_eq!(top, json!({"phoneFormattedNumber":"+41 44 111 22 33"}));
        assert!(may_patch_array(RecordKind::Account, "addresses"));
        assert!(!may_patch_array(RecordKind::Contact, "isContactPersonFor"));
        assert!(!may_patch_array(
            RecordKind::IndividualCustomer,
            "addresses"
        ));
        let account = json!({"id":"a","defaultCommunication":{"phoneFormattedNumber":"1"}});
        let field = &phone_fields(RecordKind::Account, &account)[0];
        assert_eq!(
            field.location.path(),
            "defaultCommunication/phoneFormattedNumber"
        );
        assert_eq!(
            field
                .location
                .patch(&account, "x", Some("y"))
                .expect("patch"),
            json!({"defaultCommunication":{"phoneFormattedNumber":"x","phoneNormalisedNumber":"y"}})
        );
    }

    #[test]
    fn phone_filters_cover_every_phone_field() {
        let spellings = ["+41441234567".to_string(), "+41 44 123 45 67".to_string()];
        let f = phone_filter(RecordKind::Contact, "+41441234567", &spellings);
        assert!(f.contains("isContactPersonFor/phoneFormattedNumber eq '+41 44 123 45 67'"));
        assert!(
            !f.contains("Normalised"),
            "contacts have no normalised fields: {f}"
        );
        assert_eq!(f.matches(" or ").count(), 7);
        let f = phone_filter(RecordKind::Account, "+41441234567", &spellings);
        assert_eq!(f.matches(" or ").count(), 3);
        assert!(f.starts_with("defaultCommunication/phoneNormalisedNumber eq"));
    }

    #[test]
    fn record_without_id_is_skipped() {
        assert!(caller_record(RecordKind::Account, &json!({"formattedName":"x"})).is_none());
    }

    #[test]
    fn opportunity_and_interaction_mapping() {
        let o = opportunity(
            &json!({"id":"o1","name":"Fleet renewal","salesPhaseDescription":"Proposal",
            "expectedRevenue":{"amount":120000.0,"currencyCode":"CHF"}}),
        )
        .expect("opportunity");
        assert_eq!(o.stage, "Proposal");
        assert_eq!(o.amount, Some(120000.0));
        let i = interaction(&json!({"subject":"Follow-up","startDateTime":"2026-10-01T09:00:00Z"}))
            .expect("interaction");
        assert_eq!(i.subject, "Follow-up");
        assert!(interaction(&json!({"subject":"no date"})).is_none());
    }
}
