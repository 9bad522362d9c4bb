//! The tenant's data: the collections it serves, seeded with demo records, the bearer tokens it
//! accepts, and the direct access the simulator's other parts and the tests use (phone lookup,
//! imports, touching a record) without going through HTTP.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;
use serde::Serialize;
use serde_json::Value;

use super::limits::{self, Limits};
use super::{events, schema, seed};
use crate::SimConfig;
use crate::oauth::now_secs;

/// Who carries a number, as V2 Agent Desktop's ANI search would find them.
#[derive(Debug, Clone, Serialize)]
pub struct PhoneOwner {
    pub kind: &'static str,
    pub id: String,
    pub display_id: String,
    pub name: String,
}

/// A caller the demo page offers: a label and the number as the PBX presents it.
#[derive(Debug, Clone, Serialize)]
pub struct SampleCaller {
    pub label: String,
    pub number: String,
}

/// The collections this tenant serves: (service, collection, kind for phone lookups).
pub(super) const COLLECTIONS: &[(&str, &str, Option<&str>)] = &[
    ("account-service", "accounts", Some("account")),
    ("contact-person-service", "contactPersons", Some("contact")),
    (
        "individual-customer-service",
        "individualCustomers",
        Some("individual_customer"),
    ),
    ("employee-service", "employees", None),
    ("opportunity-service", "opportunities", None),
    ("phone-service", "phoneCalls", None),
];

#[derive(Debug, Default)]
pub(super) struct Collection {
    pub(super) items: Vec<Value>,
    /// Ordered, so a page ordered by id starts where the last one ended, as a database's
    /// index on the key would (a crawl of a large tenant would otherwise scan it per page).
    pub(super) by_id: BTreeMap<String, usize>,
}

impl Collection {
    fn from(items: Vec<Value>) -> Self {
        let by_id = items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((v.get("id")?.as_str()?.to_string(), i)))
            .collect();
        Collection { items, by_id }
    }
}

/// One V2 tenant: its records, its credentials and what it is told to suffer, shared by every
/// request and by the simulator's other parts.
#[derive(Debug)]
pub struct Tenant {
    pub(super) user: String,
    pub(super) password: String,
    pub(super) collections: RwLock<HashMap<&'static str, Collection>>,
    samples: Vec<SampleCaller>,
    pub(super) limits: Limits,
    pub(super) requests: AtomicU64,
    pub(super) next_display_id: AtomicU64,
    pub events: events::Emitter,
    /// Bearer tokens this tenant accepts (issued by the simulated SAML bearer exchange of the
    /// Destination service or the identity provider), with the user each acts for.
    bearers: parking_lot::Mutex<HashMap<String, Bearer>>,
    /// Whether properties outside a collection's schema are refused (V2's behaviour) or, with
    /// `SIM_V2_UNKNOWN_FIELDS=accept`, stored and matched as nothing.
    strict: AtomicBool,
    /// Whether PATCH takes only the documented If-Match form.
    if_match_strict: AtomicBool,
    /// (collection, property path) taken out of a collection's schema.
    withdrawn: RwLock<Vec<(String, String)>>,
    pub(super) phone_call_traffic: super::phone_calls::Traffic,
}

#[derive(Debug, Clone)]
struct Bearer {
    user: String,
    expires_at: u64,
}

impl Tenant {
    pub fn new(config: &SimConfig) -> Self {
        Self::with_clock(config, limits::system_clock())
    }

    pub fn with_clock(config: &SimConfig, clock: limits::Clock) -> Self {
        let seed = seed::generate(config.seed, config.records, &config.demo_agent);
        let mut collections = HashMap::new();
        collections.insert("accounts", Collection::from(seed.accounts));
        collections.insert("contactPersons", Collection::from(seed.contacts));
        collections.insert("individualCustomers", Collection::from(seed.individuals));
        collections.insert("employees", Collection::from(seed.employees));
        collections.insert("opportunities", Collection::from(seed.opportunities));
        collections.insert("phoneCalls", Collection::from(seed.phone_calls));
        Tenant {
            user: config.v2_user.clone(),
            password: config.v2_password.clone(),
            collections: RwLock::new(collections),
            samples: seed
                .samples
                .into_iter()
                .map(|(label, number)| SampleCaller { label, number })
                .collect(),
            limits: Limits::new(config.request_budget, clock),
            requests: AtomicU64::new(0),
            next_display_id: AtomicU64::new(900_000),
            events: events::Emitter::new(config),
            bearers: parking_lot::Mutex::new(HashMap::new()),
            strict: AtomicBool::new(!config.v2_accept_unknown_fields),
            if_match_strict: AtomicBool::new(config.v2_if_match_strict),
            withdrawn: RwLock::new(Vec::new()),
            phone_call_traffic: Default::default(),
        }
    }

    /// The schema a request on `collection` is held to, or none when unknown properties are
    /// accepted.
    pub(super) fn schema(&self, collection: &str) -> Option<schema::Schema> {
        if !self.strict.load(Ordering::Relaxed) {
            return None;
        }
        let withdrawn = self.withdrawn.read();
        let own = withdrawn
            .iter()
            .filter(|(c, _)| c == collection)
            .map(|(_, p)| p.clone())
            .collect();
        schema::of(collection).map(|s| s.without(own))
    }

    /// Whether a PATCH's If-Match must be the quoted `adminData.updatedOn`, and nothing else.
    pub(super) fn if_match_strict(&self) -> bool {
        self.if_match_strict.load(Ordering::Relaxed)
    }

    /// Hold PATCHes to the documented If-Match form (true) or also take an unquoted timestamp
    /// and `*` (false) from now on.
    pub fn strict_if_match(&self, strict: bool) {
        self.if_match_strict.store(strict, Ordering::Relaxed);
    }

    /// Accept (true) or refuse properties outside the schemas from now on.
    pub fn accept_unknown_fields(&self, accept: bool) {
        self.strict.store(!accept, Ordering::Relaxed);
    }

    /// Takes a property (a `/` path) out of a collection's schema, as a tenant whose schema
    /// differs from the published one: requests naming it are refused from now on.
    pub fn withdraw_property(&self, collection: &str, path: &str) {
        let mut withdrawn = self.withdrawn.write();
        withdrawn.push((collection.to_string(), path.to_string()));
    }

    /// A bearer token for V2 calls on `user`'s behalf, valid for `ttl_secs`: what a SAML bearer
    /// assertion or an OAuth sign-in gets from V2's token service.
    pub fn issue_bearer(&self, user: &str, ttl_secs: u64) -> String {
        let token = format!("v2at-{}", uuid::Uuid::new_v4().simple());
        let expires_at = now_secs().saturating_add(ttl_secs);
        let mut bearers = self.bearers.lock();
        let now = now_secs();
        bearers.retain(|_, b| b.expires_at > now);
        bearers.insert(
            token.clone(),
            Bearer {
                user: user.to_string(),
                expires_at,
            },
        );
        token
    }

    /// The user a bearer token acts for, if it is valid now.
    pub(super) fn bearer_user(&self, token: &str) -> Option<String> {
        let bearers = self.bearers.lock();
        bearers
            .get(token)
            .filter(|b| b.expires_at > now_secs())
            .map(|b| b.user.clone())
    }

    /// Every record with a normalised phone equal to `e164`.
    pub fn lookup_phone(&self, e164: &str) -> Vec<PhoneOwner> {
        let collections = self.collections.read();
        let mut owners = Vec::new();
        for (_, name, kind) in COLLECTIONS {
            let (Some(kind), Some(collection)) = (kind, collections.get(name)) else {
                continue;
            };
            for record in &collection.items {
                if carries(record, e164) {
                    let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default();
                    owners.push(PhoneOwner {
                        kind,
                        id: text("id").to_string(),
                        display_id: text("displayId").to_string(),
                        name: text("formattedName").to_string(),
                    });
                }
            }
        }
        owners
    }

    pub fn sample_callers(&self) -> Vec<SampleCaller> {
        self.samples.clone()
    }

    /// Every POST and PATCH of a phone call V2 carried out, in order, for tests.
    pub fn phone_call_writes(&self) -> Vec<super::PhoneCallWrite> {
        self.phone_call_traffic.all()
    }

    /// Requests the V2 API has answered (any status), for tests and benchmarks.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stores a record exactly as given, the way a data migration loads legacy data: no derived
    /// normalised numbers, no change event. Replaces a record with the same id. For tests of data
    /// clean-up.
    pub fn import(&self, collection: &'static str, record: Value) {
        let id = record["id"].as_str().unwrap_or_default().to_string();
        let mut collections = self.collections.write();
        let c = collections.entry(collection).or_default();
        match c.by_id.get(&id) {
            Some(i) => c.items[*i] = record,
            None => {
                c.by_id.insert(id, c.items.len());
                c.items.push(record);
            }
        }
    }

    /// Someone edits the record in V2's UI: its ETag changes, its content does not.
    pub fn touch(&self, collection: &str, id: &str) {
        let mut collections = self.collections.write();
        if let Some(record) = collections
            .get_mut(collection)
            .and_then(|c| c.by_id.get(id).copied().and_then(|i| c.items.get_mut(i)))
        {
            let current = record["adminData"]["updatedOn"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            record["adminData"]["updatedOn"] = Value::String(format!("{current}+"));
        }
    }

    /// The records of one collection (e.g. `"accounts"`), for tests.
    pub fn records(&self, collection: &str) -> Vec<Value> {
        self.collections
            .read()
            .get(collection)
            .map(|c| c.items.clone())
            .unwrap_or_default()
    }
}

/// True when any phone field anywhere in the record is `e164`: a normalised twin equal to it, or
/// a formatted number that normalises to it (contacts have no twins), read with the country of
/// the nearest object that names one.
fn carries(value: &Value, e164: &str) -> bool {
    // A contact's own phones have no address: its first account relation's country applies.
    let country = value
        .pointer("/defaultAddress/country")
        .or_else(|| value.pointer("/isContactPersonFor/0/country"))
        .and_then(Value::as_str);
    carries_in(value, e164, country)
}

fn carries_in(value: &Value, e164: &str, country: Option<&str>) -> bool {
    match value {
        Value::Object(map) => {
            let country = map.get("country").and_then(Value::as_str).or(country);
            map.iter().any(|(k, v)| {
                let text = v.as_str();
                (k.ends_with("NormalisedNumber") && text == Some(e164))
                    || (k.ends_with("FormattedNumber")
                        && text.and_then(|t| seed::normalise(t, country)).as_deref() == Some(e164))
                    || carries_in(v, e164, country)
            })
        }
        Value::Array(items) => items.iter().any(|v| carries_in(v, e164, country)),
        _ => false,
    }
}
