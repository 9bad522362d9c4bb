//! The simulated SAP Sales Cloud V2 tenant: the REST API under `/sap/c4c/api/v1/...`.
//!
//! It follows V2's published conventions as far as they are known: `{"count","value"}` and
//! `{"value"}` envelopes, `$top` (at most 999), `$skip` (below 10000), `$filter`, `$select`,
//! `$count`, `$orderby`, Basic auth, the `{"error":{...}}` envelope, ETag + If-Match on PATCH
//! (428 without, 412 stale), and 429 with Retry-After over a daily request budget. The relay reaches
//! it by URL only, as it would a real tenant.

pub mod events;
pub mod limits;
pub mod query;
pub mod seed;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Sim, SimConfig};
use limits::{Admission, Fault, Limits};

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

/// V2's largest page and its offset limit.
pub const MAX_TOP: usize = 999;
pub const MAX_SKIP: usize = 9_999;
const DEFAULT_TOP: usize = 50;

/// The collections this tenant serves: (service, collection, kind for phone lookups).
const COLLECTIONS: &[(&str, &str, Option<&str>)] = &[
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
struct Collection {
    items: Vec<Value>,
    by_id: HashMap<String, usize>,
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

#[derive(Debug)]
pub struct Tenant {
    user: String,
    password: String,
    collections: RwLock<HashMap<&'static str, Collection>>,
    samples: Vec<SampleCaller>,
    limits: Limits,
    requests: AtomicU64,
    next_display_id: AtomicU64,
    pub events: events::Emitter,
    /// Bearer tokens this tenant accepts (issued by the simulated SAML bearer exchange of the
    /// Destination service or the identity provider), with the user each acts for.
    bearers: std::sync::Mutex<HashMap<String, Bearer>>,
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
            bearers: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A bearer token for V2 calls on `user`'s behalf, valid for `ttl_secs`: what a SAML bearer
    /// assertion or an OAuth sign-in gets from V2's token service.
    pub fn issue_bearer(&self, user: &str, ttl_secs: u64) -> String {
        let token = format!("v2at-{}", uuid::Uuid::new_v4().simple());
        let expires_at = now_secs().saturating_add(ttl_secs);
        let mut bearers = self.bearers.lock().unwrap_or_else(|p| p.into_inner());
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
    fn bearer_user(&self, token: &str) -> Option<String> {
        let bearers = self.bearers.lock().unwrap_or_else(|p| p.into_inner());
        bearers
            .get(token)
            .filter(|b| b.expires_at > now_secs())
            .map(|b| b.user.clone())
    }

    /// Every record with a normalised phone equal to `e164`.
    pub fn lookup_phone(&self, e164: &str) -> Vec<PhoneOwner> {
        let collections = self.collections.read().unwrap_or_else(|p| p.into_inner());
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

    /// Requests the V2 API has answered (any status), for tests and benchmarks.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stores a record exactly as given, the way a data migration loads legacy data: no derived
    /// normalised numbers, no change event. Replaces a record with the same id. For tests of data
    /// clean-up.
    pub fn import(&self, collection: &'static str, record: Value) {
        let id = record["id"].as_str().unwrap_or_default().to_string();
        let mut collections = self.collections.write().unwrap_or_else(|p| p.into_inner());
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
        let mut collections = self.collections.write().unwrap_or_else(|p| p.into_inner());
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
            .unwrap_or_else(|p| p.into_inner())
            .get(collection)
            .map(|c| c.items.clone())
            .unwrap_or_default()
    }
}

/// True when any `*NormalisedNumber` field anywhere in the record equals `e164`.
fn carries(value: &Value, e164: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| {
            (k.ends_with("NormalisedNumber") && v.as_str() == Some(e164)) || carries(v, e164)
        }),
        Value::Array(items) => items.iter().any(|v| carries(v, e164)),
        _ => false,
    }
}

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route(
            "/sap/c4c/api/v1/{service}/{collection}",
            get(list).post(create),
        )
        .route(
            "/sap/c4c/api/v1/{service}/{collection}/{id}",
            get(read).patch(update).delete(remove),
        )
        .route(
            "/sim/faults",
            post(set_fault).delete(clear_fault).get(get_fault),
        )
}

/// Every way the simulated V2 API says no, rendered in one place as V2's error envelope.
#[derive(Debug, thiserror::Error)]
pub enum V2Error {
    #[error("authentication required")]
    Unauthorized,
    #[error("{message}")]
    Status {
        status: StatusCode,
        code: String,
        message: String,
        target: String,
    },
    /// 429, with the seconds until the caller may retry.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
}

impl V2Error {
    fn new(status: StatusCode, code: &str, message: impl Into<String>, target: &str) -> Self {
        V2Error::Status {
            status,
            code: code.into(),
            message: message.into(),
            target: target.into(),
        }
    }
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let envelope = |code: &str, message: &str, target: &str| {
            Json(
                json!({"error": {"code": code, "message": message, "target": target, "details": []}}),
            )
        };
        match self {
            V2Error::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"V2\"")],
            )
                .into_response(),
            V2Error::Status {
                status,
                code,
                message,
                target,
            } => (status, envelope(&code, &message, &target)).into_response(),
            V2Error::TooManyRequests {
                message,
                retry_after,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after.to_string())],
                envelope("api.429", &message, ""),
            )
                .into_response(),
        }
    }
}

fn collection_name(service: &str, collection: &str) -> Result<&'static str, V2Error> {
    COLLECTIONS
        .iter()
        .find(|(s, c, _)| *s == service && *c == collection)
        .map(|(_, c, _)| *c)
        .ok_or_else(|| {
            V2Error::new(
                StatusCode::NOT_FOUND,
                "api.404",
                format!("no collection {service}/{collection}"),
                "",
            )
        })
}

fn now_secs() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

/// Auth, faults and budget, in the order a caller meets them. Returns who acts: the technical
/// user (`api`) for Basic, the user a bearer token was issued for.
async fn guard(sim: &Sim, headers: &HeaderMap) -> Result<String, V2Error> {
    let tenant = &sim.v2;
    tenant.requests.fetch_add(1, Ordering::Relaxed);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", tenant.user, tenant.password))
    );
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let user = if presented == expected {
        "api".to_string()
    } else if let Some(user) = presented
        .strip_prefix("Bearer ")
        .and_then(|token| tenant.bearer_user(token.trim()))
    {
        user
    } else {
        return Err(V2Error::Unauthorized);
    };
    match tenant.limits.admit() {
        Admission::Serve => Ok(user),
        Admission::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(user)
        }
        Admission::Fail(429) => Err(V2Error::TooManyRequests {
            message: "injected fault".into(),
            retry_after: 1,
        }),
        Admission::Fail(status) => Err(V2Error::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "sim.fault",
            "injected fault",
            "",
        )),
        Admission::OverBudget(retry_after) => Err(V2Error::TooManyRequests {
            message: "the daily API call limit of this tenant is reached".into(),
            retry_after,
        }),
    }
}

fn bad_request(message: impl Into<String>, target: &str) -> V2Error {
    V2Error::new(StatusCode::BAD_REQUEST, "api.400", message, target)
}

/// The parsed query options of a collection GET.
struct Options {
    top: usize,
    skip: usize,
    count: bool,
    filter: Option<query::Filter>,
    orderby: Vec<query::OrderKey>,
    select: Option<Vec<String>>,
}

fn options(params: &[(String, String)]) -> Result<Options, V2Error> {
    let mut o = Options {
        top: DEFAULT_TOP,
        skip: 0,
        count: false,
        filter: None,
        orderby: Vec::new(),
        select: None,
    };
    for (key, value) in params {
        let number = |what: &str| -> Result<usize, V2Error> {
            value.trim().parse().map_err(|_| {
                bad_request(
                    format!("{what} must be a whole number, got {value:?}"),
                    what,
                )
            })
        };
        match key.as_str() {
            "$top" => {
                o.top = number("$top")?;
                if o.top > MAX_TOP {
                    return Err(bad_request(
                        format!("$top must not exceed {MAX_TOP}, got {}", o.top),
                        "$top",
                    ));
                }
            }
            "$skip" => {
                o.skip = number("$skip")?;
                if o.skip > MAX_SKIP {
                    return Err(bad_request(
                        format!("$skip must be below 10000, got {}", o.skip),
                        "$skip",
                    ));
                }
            }
            "$count" => {
                o.count = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad_request("$count must be true or false", "$count")),
                }
            }
            "$filter" => {
                o.filter = Some(
                    query::parse_filter(value)
                        .map_err(|e| bad_request(format!("invalid $filter: {e}"), "$filter"))?,
                );
            }
            "$orderby" => {
                o.orderby = query::parse_orderby(value)
                    .map_err(|e| bad_request(format!("invalid $orderby: {e}"), "$orderby"))?;
            }
            "$select" => {
                o.select = Some(
                    value
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                );
            }
            "$search" | "$query" | "$exclude" => {
                return Err(V2Error::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "api.501",
                    format!("{key} is not supported by this tenant"),
                    key,
                ));
            }
            other if other.starts_with('$') => {
                return Err(bad_request(format!("unknown query option {other}"), other));
            }
            _ => {}
        }
    }
    Ok(o)
}

async fn list(
    State(sim): State<Arc<Sim>>,
    Path((service, collection)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, V2Error> {
    let name = collection_name(&service, &collection)?;
    guard(&sim, &headers).await?;
    let o = options(&params)?;
    let collections = sim.v2.collections.read().unwrap_or_else(|p| p.into_inner());
    let Some(items) = collections.get(name).map(|c| &c.items) else {
        return Err(V2Error::new(
            StatusCode::NOT_FOUND,
            "api.404",
            "no such collection",
            "",
        ));
    };
    let mut hits: Vec<&Value> = items
        .iter()
        .filter(|r| o.filter.as_ref().is_none_or(|f| query::matches(f, r)))
        .collect();
    let total = hits.len();
    if !o.orderby.is_empty() {
        // Like a database with an index: only the rows up to the page's end are put in order
        // (a crawl of 100,000 records would otherwise sort the whole collection per page).
        // Stable: equal keys keep insertion order.
        let mut ranked: Vec<(usize, &Value)> = hits.into_iter().enumerate().collect();
        let order = |a: &(usize, &Value), b: &(usize, &Value)| {
            query::order(&o.orderby, a.1, b.1).then(a.0.cmp(&b.0))
        };
        let needed = o.skip.saturating_add(o.top);
        if needed > 0 && needed < ranked.len() {
            ranked.select_nth_unstable_by(needed - 1, order);
            ranked.truncate(needed);
        }
        ranked.sort_by(order);
        hits = ranked.into_iter().map(|(_, r)| r).collect();
    }
    let page: Vec<Value> = hits
        .into_iter()
        .skip(o.skip)
        .take(o.top)
        .map(|r| match &o.select {
            Some(fields) => query::select(r, fields),
            None => r.clone(),
        })
        .collect();
    let body = if o.count {
        json!({"count": total, "value": page})
    } else {
        json!({"value": page})
    };
    Ok(Json(body).into_response())
}

fn etag_of(record: &Value) -> String {
    format!(
        "\"{}\"",
        record["adminData"]["updatedOn"]
            .as_str()
            .unwrap_or_default()
    )
}

fn with_etag(record: &Value, status: StatusCode) -> Response {
    let mut response = (status, Json(json!({"value": record}))).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag_of(record)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

async fn read(
    State(sim): State<Arc<Sim>>,
    Path((service, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, V2Error> {
    let name = collection_name(&service, &collection)?;
    guard(&sim, &headers).await?;
    let collections = sim.v2.collections.read().unwrap_or_else(|p| p.into_inner());
    let Some(c) = collections.get(name) else {
        return Err(V2Error::new(
            StatusCode::NOT_FOUND,
            "api.404",
            "no such collection",
            "",
        ));
    };
    match c.by_id.get(&id).and_then(|i| c.items.get(*i)) {
        Some(record) => Ok(with_etag(record, StatusCode::OK)),
        None => Err(V2Error::new(
            StatusCode::NOT_FOUND,
            &format!("{collection}.404"),
            format!("no {collection} with id {id}"),
            "id",
        )),
    }
}

pub(crate) fn now_stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// V2 keeps a normalised twin of every formatted phone field; derive it on write.
fn derive_normalised(record: &mut Value) {
    let country = record["defaultAddress"]["country"]
        .as_str()
        .map(str::to_string);
    fn block(block: &mut Value, country: Option<&str>) {
        let Some(map) = block.as_object_mut() else {
            return;
        };
        let local = map
            .get("country")
            .and_then(Value::as_str)
            .map(str::to_string);
        let country = local.as_deref().or(country);
        for prefix in ["phone", "mobile"] {
            if let Some(typed) = map
                .get(&format!("{prefix}FormattedNumber"))
                .and_then(Value::as_str)
            {
                let normalised = seed::normalise(typed, country).map_or(Value::Null, Value::String);
                map.insert(format!("{prefix}NormalisedNumber"), normalised);
            }
        }
    }
    block(record, country.as_deref());
    block(&mut record["defaultCommunication"], country.as_deref());
    for list in ["addresses", "isContactPersonFor"] {
        if let Some(items) = record.get_mut(list).and_then(Value::as_array_mut) {
            for item in items {
                block(item, country.as_deref());
            }
        }
    }
}

fn merge_patch(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn parse_body(body: &Bytes) -> Result<Value, V2Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad_request(
            format!(
                "the body is not valid JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
            "",
        )
    })?;
    if !value.is_object() {
        return Err(bad_request("the body must be a JSON object", ""));
    }
    Ok(value)
}

async fn create(
    State(sim): State<Arc<Sim>>,
    Path((service, collection)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, V2Error> {
    let name = collection_name(&service, &collection)?;
    let user = guard(&sim, &headers).await?;
    let mut record = parse_body(&body)?;
    let id = uuid::Uuid::new_v4().to_string();
    let stamp = now_stamp();
    record["id"] = Value::String(id.clone());
    if record.get("displayId").and_then(Value::as_str).is_none() {
        let display = sim.v2.next_display_id.fetch_add(1, Ordering::Relaxed);
        record["displayId"] = Value::String(display.to_string());
    }
    record["adminData"] = json!({"createdOn": stamp, "createdBy": user, "createdByName": user,
                                 "updatedOn": stamp, "updatedBy": user, "updatedByName": user});
    derive_normalised(&mut record);
    if name == "phoneCalls" {
        validate_phone_call(&record)?;
    }
    {
        let mut collections = sim
            .v2
            .collections
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let c = collections.entry(name).or_default();
        c.by_id.insert(id, c.items.len());
        c.items.push(record.clone());
    }
    sim.v2
        .events
        .emit(events::Operation::Create, name, None, Some(&record));
    lost_answer(&sim)?;
    Ok(with_etag(&record, StatusCode::CREATED))
}

/// An after-write fault: the write happened, the caller hears an error.
fn lost_answer(sim: &Sim) -> Result<(), V2Error> {
    match sim.v2.limits.lose_answer() {
        Some(status) => Err(V2Error::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::GATEWAY_TIMEOUT),
            "sim.fault",
            "injected fault after the write was carried out",
            "",
        )),
        None => Ok(()),
    }
}

/// What the simulated phone-call service insists on (inferred, like the shape itself): a known
/// direction, a start time, the external id the CTI finds its call by, a subject that fits.
fn validate_phone_call(record: &Value) -> Result<(), V2Error> {
    let invalid = |message: String, target: &str| {
        V2Error::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "phoneCall.1001",
            message,
            target,
        )
    };
    let text = |pointer: &str| record.pointer(pointer).and_then(Value::as_str);
    match text("/direction") {
        Some("INBOUND" | "OUTBOUND" | "MISSED") => {}
        other => {
            return Err(invalid(
                format!(
                    "Data is required or invalid -> direction ({other:?}; expected INBOUND, OUTBOUND or MISSED)"
                ),
                "{direction}",
            ));
        }
    }
    let start = text("/startDateTime").unwrap_or_default();
    if time::OffsetDateTime::parse(start, &time::format_description::well_known::Rfc3339).is_err() {
        return Err(invalid(
            format!("DataTypeMismatch -> startDateTime ({start:?} is not a date-time)"),
            "{startDateTime}",
        ));
    }
    if text("/externalId/displayId").is_none_or(str::is_empty) {
        return Err(invalid(
            "Data is required -> externalId/displayId".into(),
            "{externalId/displayId}",
        ));
    }
    if text("/subject").is_some_and(|s| s.chars().count() > 255) {
        return Err(invalid(
            "Text too long -> subject (at most 255 characters)".into(),
            "{subject}",
        ));
    }
    Ok(())
}

async fn update(
    State(sim): State<Arc<Sim>>,
    Path((service, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, V2Error> {
    let name = collection_name(&service, &collection)?;
    let user = guard(&sim, &headers).await?;
    let patch = parse_body(&body)?;
    let Some(if_match) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Err(V2Error::new(
            StatusCode::PRECONDITION_REQUIRED,
            "api.428",
            "PATCH requires an If-Match header with the record's ETag",
            "If-Match",
        ));
    };
    let mut collections = sim
        .v2
        .collections
        .write()
        .unwrap_or_else(|p| p.into_inner());
    let Some(c) = collections.get_mut(name) else {
        return Err(V2Error::new(
            StatusCode::NOT_FOUND,
            "api.404",
            "no such collection",
            "",
        ));
    };
    let Some(record) = c.by_id.get(&id).copied().and_then(|i| c.items.get_mut(i)) else {
        return Err(V2Error::new(
            StatusCode::NOT_FOUND,
            &format!("{collection}.404"),
            format!("no {collection} with id {id}"),
            "id",
        ));
    };
    let current = record["adminData"]["updatedOn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let presented = if_match.trim().trim_matches('"');
    if presented != "*" && presented != current {
        return Err(V2Error::new(
            StatusCode::PRECONDITION_FAILED,
            "api.412",
            "the record was changed since it was read (ETag mismatch)",
            "If-Match",
        ));
    }
    let before = record.clone();
    let admin = record["adminData"].clone();
    merge_patch(record, &patch);
    let mut stamp = now_stamp();
    if stamp <= current {
        // Two writes in one millisecond must still get different ETags.
        stamp = format!("{}+", current);
    }
    record["id"] = Value::String(id);
    record["adminData"] = admin;
    record["adminData"]["updatedOn"] = Value::String(stamp);
    record["adminData"]["updatedBy"] = Value::String(user.clone());
    record["adminData"]["updatedByName"] = Value::String(user);
    derive_normalised(record);
    sim.v2
        .events
        .emit(events::Operation::Update, name, Some(&before), Some(record));
    let response = with_etag(record, StatusCode::OK);
    drop(collections);
    lost_answer(&sim)?;
    Ok(response)
}

/// DELETE: V2's UI deletes records (and emits the delete event); the simulator offers it over
/// the API so tests can delete. 204, or 404 for an unknown id.
async fn remove(
    State(sim): State<Arc<Sim>>,
    Path((service, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, V2Error> {
    let name = collection_name(&service, &collection)?;
    guard(&sim, &headers).await?;
    let mut collections = sim
        .v2
        .collections
        .write()
        .unwrap_or_else(|p| p.into_inner());
    let removed = collections.get_mut(name).and_then(|c| {
        let index = c.by_id.remove(&id)?;
        let record = c.items.remove(index);
        for position in c.by_id.values_mut() {
            if *position > index {
                *position -= 1;
            }
        }
        Some(record)
    });
    match removed {
        Some(record) => {
            sim.v2
                .events
                .emit(events::Operation::Delete, name, Some(&record), None);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(V2Error::new(
            StatusCode::NOT_FOUND,
            &format!("{collection}.404"),
            format!("no {collection} with id {id}"),
            "id",
        )),
    }
}

async fn set_fault(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let error = |message: &str, target: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": "invalid_fault", "message": message, "target": target}})),
        )
            .into_response()
    };
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return error("the body is not valid JSON", "");
    };
    let count = match value.get("count") {
        None => 1,
        Some(c) => match c.as_u64().and_then(|c| u32::try_from(c).ok()) {
            Some(c) => c,
            None => return error("count must be a positive whole number", "count"),
        },
    };
    let after_write = value.get("after_write").and_then(Value::as_bool) == Some(true);
    let fault = match (value.get("status"), value.get("delay_ms")) {
        (Some(s), None) => match s.as_u64().filter(|s| (400..600).contains(s)) {
            Some(status) if after_write => Fault::AfterWrite {
                status: status as u16,
                count,
                after_write,
            },
            Some(status) => Fault::Status {
                status: status as u16,
                count,
            },
            None => return error("status must be an HTTP error status (400-599)", "status"),
        },
        (None, Some(d)) => match d.as_u64().filter(|d| *d <= 60_000) {
            Some(delay_ms) => Fault::Delay { delay_ms, count },
            None => return error("delay_ms must be 0 to 60000", "delay_ms"),
        },
        _ => return error("give exactly one of status or delay_ms", ""),
    };
    sim.v2.limits.set_fault(Some(fault));
    Json(json!({"fault": fault})).into_response()
}

async fn clear_fault(State(sim): State<Arc<Sim>>) -> Response {
    sim.v2.limits.set_fault(None);
    Json(json!({"fault": null})).into_response()
}

async fn get_fault(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({"fault": sim.v2.limits.fault()})).into_response()
}
