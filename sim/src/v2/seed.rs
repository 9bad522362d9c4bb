//! Demo data: a tenant that looks like a real one to the CTI.
//!
//! Numbers are valid for their country and stored the way users type them (national with trunk
//! prefix, international, `00`, dashes, parentheses, extensions); a company's main line sits on the
//! account and on its contacts' work phones; accounts have open opportunities and past calls.
//! Generation is deterministic in the seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat};
use serde_json::{Value, json};

struct Country {
    code: &'static str,
    calling_code: &'static str,
    /// National destination codes to draw landlines from, with the subscriber length.
    landlines: &'static [(&'static str, usize)],
    mobiles: &'static [(&'static str, usize)],
    cities: &'static [&'static str],
    given: &'static [&'static str],
    family: &'static [&'static str],
    company_forms: &'static [&'static str],
    currency: &'static str,
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "CH",
        calling_code: "41",
        // No 31 (Bern): the demo's "unknown caller" lives there.
        landlines: &[("44", 7), ("43", 7), ("61", 7), ("21", 7), ("22", 7)],
        mobiles: &[("79", 7), ("78", 7), ("76", 7)],
        cities: &["Zürich", "Basel", "Lausanne", "Genève", "Winterthur"],
        given: &[
            "Anna", "Lukas", "Sara", "Marco", "Laura", "Reto", "Nina", "Urs",
        ],
        family: &[
            "Muster", "Meier", "Keller", "Brunner", "Frei", "Baumann", "Gerber",
        ],
        company_forms: &["AG", "GmbH"],
        currency: "CHF",
    },
    Country {
        code: "DE",
        calling_code: "49",
        landlines: &[("30", 8), ("89", 8), ("40", 8), ("69", 8)],
        mobiles: &[("151", 8), ("160", 7), ("170", 7)],
        cities: &["Berlin", "München", "Hamburg", "Frankfurt am Main"],
        given: &["Jonas", "Lena", "Felix", "Mia", "Paul", "Hannah", "Tobias"],
        family: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Wagner",
        ],
        company_forms: &["GmbH", "AG", "KG"],
        currency: "EUR",
    },
    Country {
        code: "FR",
        calling_code: "33",
        landlines: &[("1", 8), ("4", 8), ("5", 8)],
        mobiles: &[("6", 8), ("7", 8)],
        cities: &["Paris", "Lyon", "Marseille", "Bordeaux"],
        given: &["Camille", "Louis", "Chloé", "Hugo", "Léa", "Julien"],
        family: &["Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Girard"],
        company_forms: &["SA", "SAS", "SARL"],
        currency: "EUR",
    },
    Country {
        code: "GB",
        calling_code: "44",
        landlines: &[("207", 7), ("203", 7), ("161", 7), ("131", 7)],
        mobiles: &[("77", 8), ("78", 8), ("79", 8)],
        cities: &["London", "Manchester", "Edinburgh", "Bristol"],
        given: &["Oliver", "Amelia", "Harry", "Isla", "George", "Emily"],
        family: &["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans"],
        company_forms: &["Ltd", "plc"],
        currency: "GBP",
    },
    Country {
        code: "US",
        calling_code: "1",
        landlines: &[("212", 7), ("415", 7), ("617", 7), ("312", 7)],
        mobiles: &[("646", 7), ("917", 7)],
        cities: &["New York", "San Francisco", "Boston", "Chicago"],
        given: &["James", "Olivia", "Michael", "Emma", "David", "Sophia"],
        family: &["Johnson", "Williams", "Miller", "Davis", "Garcia", "Clark"],
        company_forms: &["Inc.", "LLC", "Corp."],
        currency: "USD",
    },
    Country {
        code: "AT",
        calling_code: "43",
        landlines: &[("1", 7), ("316", 6), ("512", 6)],
        mobiles: &[("664", 7), ("676", 7)],
        cities: &["Wien", "Graz", "Innsbruck"],
        given: &["Maximilian", "Katharina", "Florian", "Julia", "Stefan"],
        family: &["Gruber", "Huber", "Bauer", "Wagner", "Pichler"],
        company_forms: &["GmbH", "AG"],
        currency: "EUR",
    },
    Country {
        code: "IT",
        calling_code: "39",
        landlines: &[("02", 8), ("06", 8), ("011", 7)],
        mobiles: &[("333", 7), ("347", 7)],
        cities: &["Milano", "Roma", "Torino"],
        given: &["Giulia", "Luca", "Francesca", "Matteo", "Chiara"],
        family: &["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi"],
        company_forms: &["S.p.A.", "S.r.l."],
        currency: "EUR",
    },
];

const COMPANY_WORDS: &[&str] = &[
    "Alpen", "Nord", "Helio", "Vento", "Kristall", "Orbis", "Lumen", "Terra", "Fluss", "Quarz",
    "Atlas", "Nova", "Silva", "Falk", "Pyra", "Merid", "Cobalt", "Vireo",
];
const COMPANY_TRADES: &[&str] = &[
    "Logistik", "Systems", "Pharma", "Bau", "Energie", "Textil", "Robotics", "Foods", "Media",
    "Optik", "Finanz", "Motion",
];
const OPPORTUNITY_TOPICS: &[&str] = &[
    "Fleet renewal",
    "Service contract 2027",
    "Warehouse expansion",
    "Pilot project",
    "Licence upgrade",
    "Spare parts framework",
    "Maintenance renewal",
    "New site equipment",
];
const PHASES: &[(&str, &str)] = &[
    ("Z1", "Qualification"),
    ("Z2", "Needs analysis"),
    ("Z3", "Proposal"),
    ("Z4", "Negotiation"),
];
const CALL_SUBJECTS: &[&str] = &[
    "Follow-up on quote",
    "Delivery date question",
    "Invoice clarification",
    "Intro call",
    "Contract renewal",
    "Support escalation",
    "Price negotiation",
    "Kick-off planning",
];

/// One valid number: E.164 plus how a user of that country might have typed it.
#[derive(Debug)]
pub struct Phone {
    pub e164: String,
    pub typed: String,
    pub international: String,
    pub national: String,
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    // First subscriber digit 2-8 keeps clear of service and short-code ranges.
    (0..n)
        .map(|i| {
            let d = if i == 0 {
                rng.gen_range(2..9)
            } else {
                rng.gen_range(0..10)
            };
            char::from(b'0' + d as u8)
        })
        .collect()
}

fn make_phone(rng: &mut StdRng, country: &Country, mobile: bool) -> Phone {
    let ranges = if mobile {
        country.mobiles
    } else {
        country.landlines
    };
    loop {
        let (ndc, len) = ranges[rng.gen_range(0..ranges.len())];
        let candidate = format!("+{}{}{}", country.calling_code, ndc, digits(rng, len));
        let Ok(number) = PHONE_NUMBER_UTIL.parse(&candidate, None) else {
            continue;
        };
        if !PHONE_NUMBER_UTIL.is_valid_number(&number) {
            continue;
        }
        let international = PHONE_NUMBER_UTIL
            .format(&number, PhoneNumberFormat::International)
            .into_owned();
        let national = PHONE_NUMBER_UTIL
            .format(&number, PhoneNumberFormat::National)
            .into_owned();
        let e164 = PHONE_NUMBER_UTIL
            .format(&number, PhoneNumberFormat::E164)
            .into_owned();
        let typed = match rng.gen_range(0..10) {
            0..=3 => national.clone(),
            4..=5 => international.clone(),
            6 => e164.clone(),
            7 => format!("00{}", international.trim_start_matches('+')),
            8 => national.replace(' ', "-"),
            _ => international.replace(' ', "."),
        };
        return Phone {
            e164,
            typed,
            international,
            national,
        };
    }
}

fn admin(rng: &mut StdRng, owner: &Value) -> Value {
    let day = rng.gen_range(1..28);
    let month = rng.gen_range(1..11);
    let stamp = format!(
        "2026-{month:02}-{day:02}T{:02}:{:02}:00.000Z",
        rng.gen_range(7..19),
        rng.gen_range(0..60)
    );
    json!({"createdOn": stamp, "createdBy": owner["id"], "createdByName": owner["formattedName"],
           "updatedOn": stamp, "updatedBy": owner["id"], "updatedByName": owner["formattedName"]})
}

fn uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.r#gen())
        .into_uuid()
        .to_string()
}

/// A few callers to offer in the demo page: (label, number as the PBX would present it).
pub type Samples = Vec<(String, String)>;

/// The whole demo tenant, by collection path.
#[derive(Debug)]
pub struct Seed {
    pub accounts: Vec<Value>,
    pub contacts: Vec<Value>,
    pub individuals: Vec<Value>,
    pub employees: Vec<Value>,
    pub opportunities: Vec<Value>,
    pub phone_calls: Vec<Value>,
    pub samples: Samples,
}

pub fn generate(seed: u64, records: usize, demo_agent: &str) -> Seed {
    let mut rng = StdRng::seed_from_u64(seed);
    let employees: Vec<Value> = [
        (demo_agent, "Alice", "Example"),
        ("bob@example.com", "Bob", "Example"),
        ("carla@example.com", "Carla", "Rossi"),
        ("dan@example.com", "Dan", "Smith"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (mail, given, family))| {
        json!({"id": uuid(&mut rng), "displayId": format!("E{}", 1000 + i),
               "employeeDisplayId": format!("E{}", 1000 + i),
               "formattedName": format!("{given} {family}"), "givenName": given, "familyName": family,
               "workplaceAddress": {"eMail": mail}})
    })
    .collect();
    let mut employees = employees;
    for e in &mut employees {
        let a = admin(&mut rng, &json!({"id": e["id"], "formattedName": "System"}));
        e["adminData"] = a;
    }

    let mut seed = Seed {
        accounts: Vec::new(),
        contacts: Vec::new(),
        individuals: Vec::new(),
        employees: employees.clone(),
        opportunities: Vec::new(),
        phone_calls: Vec::new(),
        samples: Vec::new(),
    };
    // Main lines and contact direct numbers per account, for the samples.
    let mut main_lines: Vec<(usize, Phone)> = Vec::new();

    for i in 0..records {
        let country = &COUNTRIES[i % COUNTRIES.len()];
        let owner = employees[rng.gen_range(0..employees.len())].clone();
        let city = country.cities[rng.gen_range(0..country.cities.len())];
        let name = format!(
            "{} {} {}",
            COMPANY_WORDS[rng.gen_range(0..COMPANY_WORDS.len())],
            COMPANY_TRADES[rng.gen_range(0..COMPANY_TRADES.len())],
            country.company_forms[rng.gen_range(0..country.company_forms.len())]
        );
        let main = make_phone(&mut rng, country, false);
        let id = uuid(&mut rng);
        let account = json!({
            "id": id, "displayId": format!("{}", 100_000 + i), "formattedName": name,
            "firstLineName": name, "customerRole": "CRM000", "customerRoleDescription": "Customer",
            "lifeCycleStatus": "ACTIVE", "lifeCycleStatusDescription": "Active",
            "isNaturalPerson": false, "isProspect": false,
            "ownerId": owner["id"], "ownerFormattedName": owner["formattedName"],
            "defaultAddress": {"country": country.code, "cityName": city, "streetName": format!("Hauptstrasse {}", i % 90 + 1), "postalCode": format!("{}", 1000 + i % 8000)},
            "defaultCommunication": {"eMail": format!("info{i}@example.com"), "web": format!("https://www.example.com/{i}"),
                "phoneFormattedNumber": main.typed, "phoneNormalisedNumber": main.e164},
            "addresses": [{"isDefaultAddress": true, "country": country.code, "cityName": city,
                "phoneFormattedNumber": main.typed, "phoneNormalisedNumber": main.e164}],
            "hasContactPersons": [],
            "adminData": admin(&mut rng, &owner), "extensions": {}
        });
        seed.accounts.push(account);
        main_lines.push((i, main));

        // Opportunities and past calls.
        for _ in 0..rng.gen_range(0..5) {
            let (phase, phase_text) = PHASES[rng.gen_range(0..PHASES.len())];
            let status = ["OPEN", "OPEN", "OPEN", "WON", "LOST"][rng.gen_range(0..5)];
            let topic = OPPORTUNITY_TOPICS[rng.gen_range(0..OPPORTUNITY_TOPICS.len())];
            let opp = json!({
                "id": uuid(&mut rng), "displayId": format!("{}", 500_000 + seed.opportunities.len()),
                "name": topic, "account": {"id": id, "displayId": format!("{}", 100_000 + i), "formattedName": name},
                "lifeCycleStatus": status, "salesPhase": phase, "salesPhaseDescription": phase_text,
                "expectedRevenue": {"amount": (rng.gen_range(5..400) * 1000) as f64, "currencyCode": country.currency},
                "closeDate": format!("2027-{:02}-15", rng.gen_range(1..13)),
                "ownerId": owner["id"], "adminData": admin(&mut rng, &owner)
            });
            seed.opportunities.push(opp);
        }
        for _ in 0..rng.gen_range(0..6) {
            let start = format!(
                "2026-{:02}-{:02}T{:02}:{:02}:00Z",
                rng.gen_range(1..11),
                rng.gen_range(1..28),
                rng.gen_range(8..18),
                rng.gen_range(0..60)
            );
            let call = json!({
                "id": uuid(&mut rng), "displayId": format!("{}", 700_000 + seed.phone_calls.len()),
                "subject": CALL_SUBJECTS[rng.gen_range(0..CALL_SUBJECTS.len())],
                "direction": (["INBOUND", "OUTBOUND", "MISSED"][rng.gen_range(0..3)]),
                "status": "COMPLETED", "startDateTime": start, "endDateTime": start, "duration": "PT4M",
                "account": {"id": id}, "owner": {"id": owner["id"]}, "phoneNumber": main_lines[i].1.e164,
                "externalId": {"displayId": format!("hist-{i}-{}", seed.phone_calls.len())},
                "transcript": "", "notes": [], "adminData": admin(&mut rng, &owner)
            });
            seed.phone_calls.push(call);
        }
    }

    for i in 0..records {
        let account_index = rng.gen_range(0..seed.accounts.len());
        let country = &COUNTRIES[account_index % COUNTRIES.len()];
        let owner = employees[rng.gen_range(0..employees.len())].clone();
        let given = country.given[rng.gen_range(0..country.given.len())];
        let family = country.family[rng.gen_range(0..country.family.len())];
        let direct = make_phone(&mut rng, country, false);
        let mobile = make_phone(&mut rng, country, true);
        let account = &seed.accounts[account_index];
        let main = &main_lines[account_index].1;
        let id = uuid(&mut rng);
        let mut direct_typed = direct.typed.clone();
        if i % 17 == 0 {
            direct_typed = format!("{} ext. {}", direct.international, rng.gen_range(10..99));
        }
        let contact = json!({
            "id": id, "displayId": format!("{}", 200_000 + i),
            "givenName": given, "familyName": family, "formattedName": format!("{given} {family}"),
            "accountId": account["id"], "accountDisplayId": account["displayId"],
            // Contacts carry formatted numbers only: their schema has no normalised twins.
            "phoneFormattedNumber": direct_typed,
            "mobileFormattedNumber": mobile.typed,
            "eMail": format!("{}.{}{i}@example.com", given.to_lowercase(), family.to_lowercase()),
            "lifeCycleStatus": "ACTIVE",
            "isContactPersonFor": [{"id": uuid(&mut rng), "accountId": account["id"],
                "accountDisplayId": account["displayId"], "accountFormattedName": account["formattedName"],
                "country": country.code, "isReverseDefault": true,
                // Every third contact's work phone is the company's main line.
                "phoneFormattedNumber": if i % 3 == 0 { main.national.clone() } else { direct.national.clone() },
                "functionalTitleName": (["Purchasing", "CEO", "Head of IT", "Logistics"][i % 4]),
                "departmentName": (["Purchasing", "Management", "IT", "Operations"][i % 4])}],
            "adminData": admin(&mut rng, &owner)
        });
        seed.contacts.push(contact);
    }

    for i in 0..records {
        let country = &COUNTRIES[(i + 3) % COUNTRIES.len()];
        let owner = employees[rng.gen_range(0..employees.len())].clone();
        let given = country.given[rng.gen_range(0..country.given.len())];
        let family = country.family[rng.gen_range(0..country.family.len())];
        let mobile = rng.gen_bool(0.5);
        let phone = make_phone(&mut rng, country, mobile);
        let city = country.cities[rng.gen_range(0..country.cities.len())];
        seed.individuals.push(json!({
            "id": uuid(&mut rng), "displayId": format!("{}", 300_000 + i),
            "givenName": given, "familyName": family, "formattedName": format!("{given} {family}"),
            "isNaturalPerson": true, "customerRole": "CRM000", "customerRoleDescription": "Customer",
            "lifeCycleStatus": "ACTIVE", "lifeCycleStatusDescription": "Active",
            "ownerId": owner["id"], "ownerFormattedName": owner["formattedName"],
            "defaultAddress": {"country": country.code, "cityName": city},
            "defaultCommunication": {"phoneFormattedNumber": phone.typed, "phoneNormalisedNumber": phone.e164,
                "eMail": format!("{}{i}@example.net", given.to_lowercase())},
            "addresses": [], "adminData": admin(&mut rng, &owner), "extensions": {}
        }));
    }
    seed.samples = samples(&seed, &main_lines);
    seed
}

/// Callers for the demo page, presented as a PBX in Switzerland shows caller ids: Swiss numbers
/// nationally, foreign ones internationally.
fn samples(seed: &Seed, main_lines: &[(usize, Phone)]) -> Samples {
    let open_accounts = |account_id: &Value| {
        seed.opportunities
            .iter()
            .any(|o| o["account"]["id"] == *account_id && o["lifeCycleStatus"] == "OPEN")
    };
    let presented = |e164: &str| -> String {
        PHONE_NUMBER_UTIL
            .parse(e164, None)
            .ok()
            .map(|n| {
                let format = if e164.starts_with("+41") {
                    PhoneNumberFormat::National
                } else {
                    PhoneNumberFormat::International
                };
                PHONE_NUMBER_UTIL.format(&n, format).into_owned()
            })
            .unwrap_or_else(|| e164.to_string())
    };
    // Contacts have no normalised twins: their numbers are read as V2 would, from the text.
    let twin = |holder: &Value, country: &Value| {
        holder["phoneFormattedNumber"]
            .as_str()
            .and_then(|typed| normalise(typed, country.as_str()))
            .map_or(Value::Null, Value::String)
    };
    let mut out = Vec::new();
    let mut countries_used = Vec::new();
    // Contacts with their own direct line at an account with open opportunities.
    for contact in &seed.contacts {
        let relation = &contact["isContactPersonFor"][0];
        let country = relation["country"].as_str().unwrap_or_default().to_string();
        if countries_used.contains(&country)
            || twin(relation, &relation["country"]) == seed_main_line(seed, &contact["accountId"])
            || !open_accounts(&contact["accountId"])
            || contact["phoneFormattedNumber"]
                .as_str()
                .is_some_and(|p| p.contains("ext"))
        {
            continue;
        }
        let e164 = twin(contact, &relation["country"]);
        let e164 = e164.as_str().unwrap_or_default();
        out.push((
            format!(
                "{} (contact at {}, {country})",
                contact["formattedName"].as_str().unwrap_or_default(),
                relation["accountFormattedName"]
                    .as_str()
                    .unwrap_or_default()
            ),
            presented(e164),
        ));
        countries_used.push(country);
        if out.len() == 2 {
            break;
        }
    }
    if let Some(individual) = seed
        .individuals
        .iter()
        .find(|i| i["defaultAddress"]["country"] == "DE")
    {
        out.push((
            format!(
                "{} (individual customer, DE)",
                individual["formattedName"].as_str().unwrap_or_default()
            ),
            presented(
                individual["defaultCommunication"]["phoneNormalisedNumber"]
                    .as_str()
                    .unwrap_or_default(),
            ),
        ));
    }
    // A main line shared by the account and some of its contacts.
    if let Some((index, phone)) = main_lines.iter().find(|(i, line)| {
        seed.contacts
            .iter()
            .filter(|c| {
                let relation = &c["isContactPersonFor"][0];
                twin(relation, &relation["country"]) == line.e164.as_str()
            })
            .count()
            >= 1
            && seed.accounts[*i]["defaultAddress"]["country"] == "CH"
    }) {
        out.push((
            format!(
                "{} main line (shared)",
                seed.accounts[*index]["formattedName"]
                    .as_str()
                    .unwrap_or_default()
            ),
            presented(&phone.e164),
        ));
    }
    out.push(("Unknown caller".into(), "031 558 12 34".into()));
    out
}

fn seed_main_line(seed: &Seed, account_id: &Value) -> Value {
    seed.accounts
        .iter()
        .find(|a| a["id"] == *account_id)
        .map(|a| a["defaultCommunication"]["phoneNormalisedNumber"].clone())
        .unwrap_or(Value::Null)
}

/// E.164 of a typed number, for records written through the API (V2 derives the normalised
/// field from the formatted one).
pub fn normalise(typed: &str, country: Option<&str>) -> Option<String> {
    let region = country.and_then(|c| c.parse().ok());
    let number = PHONE_NUMBER_UTIL.parse(typed, region).ok()?;
    let mut number = number;
    number.extension = None;
    Some(
        PHONE_NUMBER_UTIL
            .format(&number, PhoneNumberFormat::E164)
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seeded_number_is_valid_and_consistent() {
        let seed = generate(42, 120, "alice@example.com");
        assert_eq!(seed.accounts.len(), 120);
        assert_eq!(seed.contacts.len(), 120);
        assert_eq!(seed.individuals.len(), 120);
        let mut countries = std::collections::HashSet::new();
        for a in &seed.accounts {
            countries.insert(
                a["defaultAddress"]["country"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            let e164 = a["defaultCommunication"]["phoneNormalisedNumber"]
                .as_str()
                .expect("number");
            let n = PHONE_NUMBER_UTIL.parse(e164, None).expect("parses");
            assert!(PHONE_NUMBER_UTIL.is_valid_number(&n), "{e164}");
            let typed = a["defaultCommunication"]["phoneFormattedNumber"]
                .as_str()
                .expect("typed");
            let country = a["defaultAddress"]["country"].as_str();
            assert_eq!(normalise(typed, country).as_deref(), Some(e164), "{typed}");
        }
        assert!(countries.len() >= 6, "{countries:?}");
        assert!(
            seed.opportunities
                .iter()
                .any(|o| o["lifeCycleStatus"] == "OPEN")
        );
        assert!(
            seed.contacts
                .iter()
                .all(|c| !c.to_string().contains("NormalisedNumber")),
            "contacts carry formatted numbers only"
        );
        assert!(seed.contacts.iter().any(|c| {
            c["phoneFormattedNumber"]
                .as_str()
                .is_some_and(|p| p.contains("ext."))
        }));
    }

    #[test]
    fn generation_is_deterministic() {
        let a = generate(7, 30, "a@example.com");
        let b = generate(7, 30, "a@example.com");
        assert_eq!(a.accounts, b.accounts);
        assert_eq!(a.samples, b.samples);
    }
}
