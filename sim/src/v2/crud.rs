//! The record operations of the V2 REST API: list with query options, read, create, merge-patch
//! update guarded by ETag / If-Match, and delete, each emitting the change event V2 would.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::limits::{lost_answer, shape_list};
use super::phone_calls::validate_phone_call;
use super::request::{Options, V2Error, bad_request, collection_name, guard, options};
use super::{events, now_stamp, query, seed};
use crate::Sim;

/// A collection read, as the quirks and a throttle fault shape it first (before even the
/// token is looked at, as a gateway in front of V2 would).
pub(super) async fn list(
    State(sim): State<Arc<Sim>>,
    Path((service, collection)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, V2Error> {
    let params = shape_list(&sim, &collection, params)?;
    let name = collection_name(&service, &collection)?;
    guard(&sim, &headers).await?;
    let o = options(&params, sim.v2.schema(name).as_ref())?;
    let collections = sim.v2.collections.read();
    let Some(items) = collections.get(name).map(|c| &c.items) else {
        return Err(V2Error::new(
            StatusCode::NOT_FOUND,
            "api.404",
            "no such collection",
            "",
        ));
    };
    let wanted = |r: &&Value| {
        o.filter.as_ref().is_none_or(|f| query::matches(f, r))
            && o.search.as_deref().is_none_or(|s| searched(s, r))
    };
    if let Some(after) = keyset_page(&o)
        && let Some(c) = collections.get(name)
        && c.by_id.len() == items.len()
    {
        // A page in id order: from the id after the last page's, through the ordered ids, the
        // same answer as filtering and ordering the whole collection.
        let from = match after {
            Some(last) => Bound::Excluded(last),
            None => Bound::Unbounded,
        };
        let page = c
            .by_id
            .range::<str, _>((from, Bound::Unbounded))
            .filter_map(|(_, &i)| items.get(i))
            .filter(wanted)
            .skip(o.skip)
            .take(o.top);
        return Ok(page_response(page, &o, None));
    }
    let mut hits: Vec<&Value> = items.iter().filter(wanted).collect();
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
    let page = hits.into_iter().skip(o.skip).take(o.top);
    Ok(page_response(page, &o, o.count.then_some(total)))
}

/// A list's answer: `{"count"?, "value": [...]}`, the records written straight from the
/// collection (a page of a large tenant would otherwise be copied before it is written).
fn page_response<'a>(
    page: impl Iterator<Item = &'a Value>,
    o: &Options,
    count: Option<usize>,
) -> Response {
    #[derive(serde::Serialize)]
    struct Page<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<usize>,
        value: Vec<Record<'a>>,
    }
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Record<'a> {
        Whole(&'a Value),
        Selected(query::Selected<'a>),
    }
    let value = page
        .map(|r| match &o.select {
            Some(fields) => Record::Selected(query::Selected::new(r, fields)),
            None => Record::Whole(r),
        })
        .collect();
    Json(Page { count, value }).into_response()
}

/// Whether a list asks for a page in ascending id order without a count, and the id its
/// filter starts after (`id gt '…'`, alone or in a conjunction), if any: what the ordered ids
/// answer directly.
fn keyset_page(o: &Options) -> Option<Option<&str>> {
    let by_id = matches!(o.orderby.as_slice(), [key] if key.path == ["id"] && !key.descending);
    if !by_id || o.count {
        return None;
    }
    Some(o.filter.as_ref().and_then(id_after))
}

/// The `X` of an `id gt 'X'` that every hit of `filter` must satisfy.
fn id_after(filter: &query::Filter) -> Option<&str> {
    match filter {
        query::Filter::Compare {
            path,
            op: query::Op::Gt,
            value: Value::String(last),
        } if path == &["id"] => Some(last),
        query::Filter::And(a, b) => id_after(a).or_else(|| id_after(b)),
        _ => None,
    }
}

/// `$search`: how V2 searches is not published; any top-level text containing the words (any
/// case) is a hit here.
fn searched(words: &str, record: &Value) -> bool {
    let texts: Vec<String> = record
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    words
        .split_whitespace()
        .all(|w| texts.iter().any(|t| t.contains(w)))
}

/// Refuses a body property the collection's schema does not have, naming it. Phone calls are
/// held to what may be written to them, which is less than what may be read.
fn known_properties(sim: &Sim, name: &str, body: &Value) -> Result<(), V2Error> {
    let schema = if name == "phoneCalls" {
        sim.v2
            .schema(name)
            .map(super::schema::Schema::phone_call_body)
    } else {
        sim.v2.schema(name)
    };
    match schema.and_then(|s| s.unknown_in(body)) {
        Some(property) => Err(bad_request(
            format!("the property {property} does not exist in {name}"),
            &property,
        )),
        None => Ok(()),
    }
}

/// The fields a create must carry, refused as V2 words it ("Data is required -> givenName", seen
/// in practice): accounts `customerRole` and `firstLineName` (CDS-ACC), contacts `familyName`
/// (SDK-GEN); individual customers `familyName` is inferred (their required fields are not
/// published; a person's family name by analogy with contacts).
fn required_on_create(name: &str, record: &Value) -> Result<(), V2Error> {
    let required: &[&str] = match name {
        "accounts" => &["customerRole", "firstLineName"],
        "contactPersons" | "individualCustomers" => &["familyName"],
        _ => &[],
    };
    for field in required {
        let present = record
            .get(*field)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.trim().is_empty());
        if !present {
            return Err(bad_request(format!("Data is required -> {field}"), field));
        }
    }
    Ok(())
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

pub(super) async fn read(
    State(sim): State<Arc<Sim>>,
    Path((service, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, V2Error> {
    let name = collection_name(&service, &collection)?;
    guard(&sim, &headers).await?;
    let collections = sim.v2.collections.read();
    let Some(c) = collections.get(name) else {
        return Err(V2Error::new(
            StatusCode::NOT_FOUND,
            "api.404",
            "no such collection",
            "",
        ));
    };
    let answer = match c.by_id.get(&id).and_then(|i| c.items.get(*i)) {
        Some(record) => with_etag(record, StatusCode::OK),
        None => {
            return Err(V2Error::new(
                StatusCode::NOT_FOUND,
                &format!("{collection}.404"),
                format!("no {collection} with id {id}"),
                "id",
            ));
        }
    };
    drop(collections);
    if name == "phoneCalls" {
        super::phone_calls::after_read(&sim.v2, &id);
    }
    Ok(answer)
}

/// V2 keeps a normalised twin of an account's or individual customer's formatted phone fields
/// (inferred from SAP's mock data); derive it on write. Contacts have no twins in their schema.
fn derive_normalised(name: &str, record: &mut Value) {
    if name == "contactPersons" {
        return;
    }
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

pub(super) async fn create(
    State(sim): State<Arc<Sim>>,
    Path((service, collection)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, V2Error> {
    let name = collection_name(&service, &collection)?;
    let user = guard(&sim, &headers).await?;
    let mut record = parse_body(&body)?;
    known_properties(&sim, name, &record)?;
    required_on_create(name, &record)?;
    let sent = record.clone();
    let id = uuid::Uuid::new_v4().to_string();
    let stamp = now_stamp();
    record["id"] = Value::String(id.clone());
    if record.get("displayId").and_then(Value::as_str).is_none() {
        let display = sim.v2.next_display_id.fetch_add(1, Ordering::Relaxed);
        record["displayId"] = Value::String(display.to_string());
    }
    record["adminData"] = json!({"createdOn": stamp, "createdBy": user, "createdByName": user,
                                 "updatedOn": stamp, "updatedBy": user, "updatedByName": user});
    derive_normalised(name, &mut record);
    if name == "phoneCalls" {
        validate_phone_call(&record)?;
    }
    {
        let mut collections = sim.v2.collections.write();
        let c = collections.entry(name).or_default();
        c.by_id.insert(id.clone(), c.items.len());
        c.items.push(record.clone());
    }
    if name == "phoneCalls" {
        sim.v2
            .phone_call_traffic
            .push("POST", &id, &sent, content_type_of(&headers));
    }
    sim.v2
        .events
        .emit(events::Operation::Create, name, None, Some(&record));
    lost_answer(&sim)?;
    Ok(with_etag(&record, StatusCode::CREATED))
}

/// The Content-Type a request declared, for the record of phone-call writes.
fn content_type_of(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The media types a PATCH body may come as. SAP's specifications differ by service: the
/// employee, sales quote and (in its data-service form) account specs declare
/// `application/merge-patch+json`, the case spec `application/json`, and a working integration
/// PATCHes phone calls with `application/json`; which of the two each collection takes on a real
/// tenant is not published, so both are taken (inferred) and anything else is refused as V2's
/// gateway does with 415.
const PATCH_MEDIA_TYPES: [&str; 2] = ["application/merge-patch+json", "application/json"];

fn patch_content_type(collection: &str, headers: &HeaderMap) -> Result<(), V2Error> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match declared {
        Some(media) if PATCH_MEDIA_TYPES.contains(&media.as_str()) => Ok(()),
        other => Err(V2Error::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "api.415",
            format!(
                "a PATCH of {collection} takes {} or {}, not {}",
                PATCH_MEDIA_TYPES[0],
                PATCH_MEDIA_TYPES[1],
                other.as_deref().unwrap_or("a body without Content-Type")
            ),
            "Content-Type",
        )),
    }
}

pub(super) async fn update(
    State(sim): State<Arc<Sim>>,
    Path((service, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, V2Error> {
    let name = collection_name(&service, &collection)?;
    let user = guard(&sim, &headers).await?;
    patch_content_type(name, &headers)?;
    let patch = parse_body(&body)?;
    known_properties(&sim, name, &patch)?;
    let Some(if_match) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Err(V2Error::new(
            StatusCode::PRECONDITION_REQUIRED,
            "api.428",
            "PATCH requires an If-Match header with the record's ETag",
            "If-Match",
        ));
    };
    let mut collections = sim.v2.collections.write();
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
    let quoted = format!("\"{current}\"");
    let presented = if_match.trim();
    let matches = if sim.v2.if_match_strict() {
        presented == quoted
    } else {
        presented == "*" || presented.trim_matches('"') == current
    };
    if !matches {
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
    derive_normalised(name, record);
    if name == "phoneCalls" {
        sim.v2
            .phone_call_traffic
            .push("PATCH", &id_of(record), &patch, content_type_of(&headers));
    }
    sim.v2
        .events
        .emit(events::Operation::Update, name, Some(&before), Some(record));
    // The employee service answers a PATCH with 204 and no body (its OpenAPI file); the others
    // with the record.
    let response = if name == "employees" {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag_of(record)) {
            response.headers_mut().insert(header::ETAG, v);
        }
        response
    } else {
        with_etag(record, StatusCode::OK)
    };
    drop(collections);
    lost_answer(&sim)?;
    Ok(response)
}

/// DELETE: V2's UI deletes records (and emits the delete event); the simulator offers it over
/// the API so tests can delete. 204, or 404 for an unknown id.
pub(super) async fn remove(
    State(sim): State<Arc<Sim>>,
    Path((service, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, V2Error> {
    let name = collection_name(&service, &collection)?;
    guard(&sim, &headers).await?;
    let mut collections = sim.v2.collections.write();
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

fn id_of(record: &Value) -> String {
    record["id"].as_str().unwrap_or_default().to_string()
}
