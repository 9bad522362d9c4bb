//! The properties each collection has, as data: what a `$filter`, `$select` or `$orderby` may
//! name and what a POST or PATCH body may carry. V2 refuses the rest, so the simulator does too;
//! a relay request that guesses a field name fails here before it fails on a real tenant.
//!
//! Paths are `/`-separated; an array is transparent (`addresses/country` is the `country` of
//! every element). When SAP publishes more of a schema, this file is the one to change.
//!
//! Sources: accounts and individual customers from CloudSDK_customerAccounts.yaml and
//! CloudSDK_individualCustomer.yaml, widened by SAP's account query response as published in the
//! Cloud SDK's account service (CDS-ACC); contact persons from the SDK's generated contact-person
//! client (SDK-GEN); employees from SalesSvcCloudV2_employeeService.json. Opportunities and phone
//! calls have no published schema: their lists are inferred and say so.

/// One collection's schema.
#[derive(Debug)]
pub(super) struct Schema {
    /// Every property path the collection has.
    properties: &'static [&'static str],
    /// Paths under which any property is accepted: the tenant's own fields (`extensions`), and
    /// nodes whose inner shape is not published.
    open: &'static [&'static str],
    /// Properties this tenant has lost (a schema change, for tests of how the relay copes).
    withdrawn: Vec<String>,
}

impl Schema {
    /// The phone call's schema as a body is held to it (stricter than what may be queried),
    /// keeping what the tenant withdrew.
    pub(super) fn phone_call_body(self) -> Self {
        Schema {
            properties: PHONE_CALL_BODY,
            open: &["extensions"],
            withdrawn: self.withdrawn,
        }
    }

    /// Whether `path` (segments) names a property of this collection.
    pub(super) fn knows(&self, path: &[String]) -> bool {
        let joined = path.join("/");
        if self.withdrawn.contains(&joined) {
            return false;
        }
        self.properties.contains(&joined.as_str())
            || self
                .open
                .iter()
                .any(|o| joined == *o || joined.starts_with(&format!("{o}/")))
    }

    /// The first property of `body` (a JSON object, walked into objects and arrays of objects)
    /// the collection does not have, as a path.
    pub(super) fn unknown_in(&self, body: &serde_json::Value) -> Option<String> {
        fn walk(
            schema: &Schema,
            value: &serde_json::Value,
            path: &mut Vec<String>,
        ) -> Option<String> {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, child) in map {
                        path.push(key.clone());
                        if !schema.knows(path) {
                            return Some(path.join("/"));
                        }
                        let inner = if schema.open.contains(&path.join("/").as_str()) {
                            None
                        } else {
                            walk(schema, child, path)
                        };
                        path.pop();
                        if inner.is_some() {
                            return inner;
                        }
                    }
                    None
                }
                serde_json::Value::Array(items) => items.iter().find_map(|i| walk(schema, i, path)),
                _ => None,
            }
        }
        walk(self, body, &mut Vec::new())
    }
}

/// Accounts: CDS-ACC's `Accountqueryresponse` / `Accountpatchupdaterequest`. The postal field
/// names of an address (`cityName`, `streetName`, ...) are the employee service's
/// `workplaceAddress` ones; that accounts use the same names is inferred.
const ACCOUNT: &[&str] = &[
    "id",
    "displayId",
    "isProspect",
    "customerRole",
    "customerRoleDescription",
    "formattedName",
    "firstLineName",
    "secondLineName",
    "lifeCycleStatus",
    "lifeCycleStatusDescription",
    "isNaturalPerson",
    "isBusinessPurposeCompleted",
    "ownerId",
    "ownerFormattedName",
    "primaryContactId",
    "primaryContactDisplayId",
    "primaryContactformattedName",
    "defaultExternalBusinessPartnerId",
    "defaultAddress",
    "defaultAddress/country",
    "defaultAddress/countryDescription",
    "defaultAddress/cityName",
    "defaultAddress/streetName",
    "defaultAddress/houseId",
    "defaultAddress/postalCode",
    "defaultAddress/region",
    "defaultAddress/districtName",
    "defaultCommunication",
    "defaultCommunication/eMail",
    "defaultCommunication/web",
    "defaultCommunication/facsimileFormattedNumber",
    "defaultCommunication/phoneFormattedNumber",
    "defaultCommunication/phoneNormalisedNumber",
    "defaultCommunication/mobileFormattedNumber",
    "defaultCommunication/mobileNormalisedNumber",
    "addresses",
    "addresses/id",
    "addresses/isDefaultAddress",
    "addresses/country",
    "addresses/countryDescription",
    "addresses/cityName",
    "addresses/streetName",
    "addresses/houseId",
    "addresses/postalCode",
    "addresses/region",
    "addresses/districtName",
    "addresses/eMail",
    "addresses/web",
    "addresses/facsimileFormattedNumber",
    "addresses/phoneFormattedNumber",
    "addresses/phoneNormalisedNumber",
    "addresses/mobileFormattedNumber",
    "addresses/mobileNormalisedNumber",
    "hasContactPersons",
    "hasContactPersons/id",
    "hasContactPersons/contactId",
    "hasContactPersons/contactDisplayId",
    "hasContactPersons/contactFormattedName",
    "hasContactPersons/isDefault",
    "relationships",
    "salesArrangements",
    "adminData",
    "adminData/createdOn",
    "adminData/createdBy",
    "adminData/createdByName",
    "adminData/updatedOn",
    "adminData/updatedBy",
    "adminData/updatedByName",
];

/// Individual customers: CloudSDK_individualCustomer.yaml plus SAP's mock data (mobile fields);
/// `addresses`, `defaultAddress` and `ownerId` are not in the trimmed yaml and are inferred to be
/// the account's.
const INDIVIDUAL_CUSTOMER: &[&str] = &[
    "id",
    "displayId",
    "isProspect",
    "customerRole",
    "customerRoleDescription",
    "formattedName",
    "givenName",
    "familyName",
    "gender",
    "genderDescription",
    "nonVerbalCommunicationLanguage",
    "lifeCycleStatus",
    "lifeCycleStatusDescription",
    "isNaturalPerson",
    "isBusinessPurposeCompleted",
    "ownerId",
    "ownerFormattedName",
    "defaultAddress",
    "defaultAddress/country",
    "defaultAddress/countryDescription",
    "defaultAddress/cityName",
    "defaultAddress/streetName",
    "defaultAddress/houseId",
    "defaultAddress/postalCode",
    "defaultAddress/region",
    "defaultAddress/districtName",
    "defaultCommunication",
    "defaultCommunication/eMail",
    "defaultCommunication/web",
    "defaultCommunication/facsimileFormattedNumber",
    "defaultCommunication/phoneFormattedNumber",
    "defaultCommunication/phoneNormalisedNumber",
    "defaultCommunication/mobileFormattedNumber",
    "defaultCommunication/mobileNormalisedNumber",
    "addresses",
    "addresses/id",
    "addresses/isDefaultAddress",
    "addresses/country",
    "addresses/countryDescription",
    "addresses/cityName",
    "addresses/streetName",
    "addresses/houseId",
    "addresses/postalCode",
    "addresses/region",
    "addresses/districtName",
    "addresses/eMail",
    "addresses/web",
    "addresses/facsimileFormattedNumber",
    "addresses/phoneFormattedNumber",
    "addresses/phoneNormalisedNumber",
    "addresses/mobileFormattedNumber",
    "addresses/mobileNormalisedNumber",
    "adminData",
    "adminData/createdOn",
    "adminData/createdBy",
    "adminData/createdByName",
    "adminData/updatedOn",
    "adminData/updatedBy",
    "adminData/updatedByName",
];

/// Contact persons: SDK-GEN's create request and `isContactPersonFor[]`. Phones are formatted
/// only, at both levels: no `*NormalisedNumber` exists. `formattedName` is in every response
/// SAP shows, though not in the create request.
const CONTACT_PERSON: &[&str] = &[
    "id",
    "displayId",
    "formOfAddress",
    "academicTitle",
    "givenName",
    "middleName",
    "familyName",
    "formattedName",
    "additionalFamilyName",
    "initialsName",
    "nickName",
    "gender",
    "nonVerbalCommunicationLanguage",
    "birthDate",
    "lifeCycleStatus",
    "accountId",
    "accountDisplayId",
    "accountAddressInformationId",
    "department",
    "departmentName",
    "functionalTitleName",
    "functionalTitle",
    "vipReason",
    "buildingId",
    "floorId",
    "roomId",
    "facsimileFormattedNumber",
    "phoneFormattedNumber",
    "mobileFormattedNumber",
    "eMail",
    "preferredCommunicationMediumType",
    "contactAllowed",
    "isContactPersonFor",
    "isContactPersonFor/id",
    "isContactPersonFor/accountId",
    "isContactPersonFor/accountDisplayId",
    "isContactPersonFor/accountFormattedName",
    "isContactPersonFor/country",
    "isContactPersonFor/isReverseDefault",
    "isContactPersonFor/functionalTitle",
    "isContactPersonFor/functionalTitleDescription",
    "isContactPersonFor/department",
    "isContactPersonFor/departmentDescription",
    "isContactPersonFor/vipReason",
    "isContactPersonFor/departmentName",
    "isContactPersonFor/functionalTitleName",
    "isContactPersonFor/buildingId",
    "isContactPersonFor/floorId",
    "isContactPersonFor/roomId",
    "isContactPersonFor/facsimileFormattedNumber",
    "isContactPersonFor/phoneFormattedNumber",
    "isContactPersonFor/mobileFormattedNumber",
    "isContactPersonFor/eMail",
    "isContactPersonFor/preferredCommunicationMediumType",
    "isContactPersonFor/preferredCommunicationMediumTypeDescription",
    "externalIds",
    "externalIds/id",
    "externalIds/externalId",
    "externalIds/communicationSystemId",
    "externalIds/communicationSystemDisplayId",
    "externalIds/type",
    "externalIds/isDefault",
    "adminData",
    "adminData/createdOn",
    "adminData/createdBy",
    "adminData/createdByName",
    "adminData/updatedOn",
    "adminData/updatedBy",
    "adminData/updatedByName",
];

/// Employees: `Employeequeryresponse` of SalesSvcCloudV2_employeeService.json (its nested
/// `attachments`, `employeeSalesResponsibilities`, `employeeTypes` and `workingHours` are kept
/// open here: the simulator never serves them).
const EMPLOYEE: &[&str] = &[
    "id",
    "displayId",
    "employeeDisplayId",
    "academicTitle",
    "academicTitleDescription",
    "additionalFamilyName",
    "birthDate",
    "defaultExternalBusinessPartnerId",
    "defaultExternalEmployeeId",
    "familyName",
    "formOfAddress",
    "formOfAddressDescription",
    "formattedName",
    "gender",
    "genderDescription",
    "givenName",
    "isBusinessPurposeCompleted",
    "isInternalEmployee",
    "lifeCycleStatus",
    "lifeCycleStatusDescription",
    "managerEmployeeDisplayId",
    "managerFormattedName",
    "managerId",
    "maritalStatus",
    "maritalStatusDescription",
    "middleName",
    "nationalityCountry",
    "nationalityCountryDescription",
    "nonVerbalCommunicationLanguage",
    "nonVerbalCommunicationLanguageDescription",
    "organizationalUnitDisplayId",
    "organizationalUnitId",
    "organizationalUnitName",
    "externalIds",
    "externalIds/id",
    "externalIds/externalId",
    "externalIds/communicationSystemId",
    "externalIds/communicationSystemDisplayId",
    "externalIds/type",
    "externalIds/isDefault",
    "workplaceAddress",
    "workplaceAddress/additionalStreetPrefixName",
    "workplaceAddress/additionalStreetSuffixName",
    "workplaceAddress/buildingId",
    "workplaceAddress/cityName",
    "workplaceAddress/country",
    "workplaceAddress/countryDescription",
    "workplaceAddress/districtName",
    "workplaceAddress/eMail",
    "workplaceAddress/floorId",
    "workplaceAddress/formattedPostalAddressDescription",
    "workplaceAddress/houseId",
    "workplaceAddress/latitudeMeasure",
    "workplaceAddress/longitudeMeasure",
    "workplaceAddress/mobileFormattedNumber",
    "workplaceAddress/mobileNormalisedNumber",
    "workplaceAddress/phoneFormattedNumber",
    "workplaceAddress/phoneNormalisedNumber",
    "workplaceAddress/postalCode",
    "workplaceAddress/region",
    "workplaceAddress/region/country",
    "workplaceAddress/region/region",
    "workplaceAddress/regionDescription",
    "workplaceAddress/roomId",
    "workplaceAddress/streetName",
    "workplaceAddress/streetPrefixName",
    "workplaceAddress/streetSuffixName",
    "adminData",
    "adminData/createdOn",
    "adminData/createdBy",
    "adminData/createdByName",
    "adminData/updatedOn",
    "adminData/updatedBy",
    "adminData/updatedByName",
];

/// Opportunities: inferred. `salesPhase`, an `account` object and `categoryDescription` are seen
/// in practice; `lifeCycleStatus`, `name`, `expectedRevenue`, `closeDate` and `ownerId` are not
/// confirmed anywhere and stay accepted only because the relay's ranking signals still ask for
/// them (pending their rework to best effort).
const OPPORTUNITY: &[&str] = &[
    "id",
    "displayId",
    "name",
    "account",
    "account/id",
    "account/displayId",
    "account/formattedName",
    "salesPhase",
    "salesPhaseDescription",
    "categoryDescription",
    "lifeCycleStatus",
    "expectedRevenue",
    "expectedRevenue/amount",
    "expectedRevenue/currencyCode",
    "closeDate",
    "ownerId",
    "adminData",
    "adminData/createdOn",
    "adminData/createdBy",
    "adminData/createdByName",
    "adminData/updatedOn",
    "adminData/updatedBy",
    "adminData/updatedByName",
];

/// Phone calls, as queried: only `id`, `displayId`, `externalId/displayId`, `transcript` and
/// `adminData` are seen in practice; the rest is inferred and stays filterable because the
/// ranking signals still ask for it (they are best effort, so a tenant that refuses it costs
/// nothing but the signal).
const PHONE_CALL: &[&str] = &[
    "id",
    "displayId",
    "externalId",
    "externalId/displayId",
    "transcript",
    "subject",
    "direction",
    "status",
    "outcome",
    "startDateTime",
    "endDateTime",
    "duration",
    "talkDuration",
    "account",
    "account/id",
    "owner",
    "owner/id",
    "phoneNumber",
    "callerNumber",
    "calledNumber",
    "notes",
    "disposition",
    "recordingUrl",
    "adminData",
    "adminData/createdOn",
    "adminData/createdBy",
    "adminData/createdByName",
    "adminData/updatedOn",
    "adminData/updatedBy",
    "adminData/updatedByName",
];

/// What a phone call's POST or PATCH body may hold: the external id and `transcript` (the one
/// field a published integration writes), and the tenant's own `extensions`. Inferred from that
/// integration: no schema of the phone call is published.
const PHONE_CALL_BODY: &[&str] = &["externalId", "externalId/displayId", "transcript"];

/// The schema of a collection, by its name in the URL.
pub(super) fn of(collection: &str) -> Option<Schema> {
    let (properties, open): (&'static [&'static str], &'static [&'static str]) = match collection {
        "accounts" => (
            ACCOUNT,
            &["extensions", "relationships", "salesArrangements"],
        ),
        "contactPersons" => (CONTACT_PERSON, &["extensions"]),
        "individualCustomers" => (INDIVIDUAL_CUSTOMER, &["extensions"]),
        "employees" => (
            EMPLOYEE,
            &[
                "extensions",
                "attachments",
                "employeeSalesResponsibilities",
                "employeeTypes",
                "workingHours",
            ],
        ),
        "opportunities" => (OPPORTUNITY, &["extensions"]),
        "phoneCalls" => (PHONE_CALL, &["extensions"]),
        _ => return None,
    };
    Some(Schema {
        properties,
        open,
        withdrawn: Vec::new(),
    })
}

impl Schema {
    pub(super) fn without(mut self, withdrawn: Vec<String>) -> Self {
        self.withdrawn = withdrawn;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ADMIN_DATA: [&str; 7] = [
        "adminData",
        "adminData/createdOn",
        "adminData/createdBy",
        "adminData/createdByName",
        "adminData/updatedOn",
        "adminData/updatedBy",
        "adminData/updatedByName",
    ];

    fn path(p: &str) -> Vec<String> {
        p.split('/').map(str::to_string).collect()
    }

    #[test]
    fn contacts_have_formatted_numbers_only() {
        let contacts = of("contactPersons").expect("schema");
        assert!(contacts.knows(&path("isContactPersonFor/phoneFormattedNumber")));
        assert!(!contacts.knows(&path("phoneNormalisedNumber")));
        assert!(!contacts.knows(&path("isContactPersonFor/mobileNormalisedNumber")));
        assert!(contacts.knows(&path("extensions/Z_ID_Number")));
    }

    #[test]
    fn bodies_name_their_first_unknown_property() {
        let accounts = of("accounts").expect("schema");
        assert_eq!(
            accounts.unknown_in(
                &json!({"defaultCommunication": {"phoneFormattedNumber": "1"},
                "addresses": [{"country": "CH"}, {"city": "Bern"}]})
            ),
            Some("addresses/city".into())
        );
        assert_eq!(
            accounts.unknown_in(&json!({"extensions": {"anything": {"deep": 1}}})),
            None
        );
        assert!(ADMIN_DATA.iter().all(|p| accounts.knows(&path(p))));
    }
}
