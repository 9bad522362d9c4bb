//! What every V2 request goes through before it reaches a record: authentication, injected
//! faults and the daily budget (`guard`), the query options of a collection read, and V2's error
//! envelope for every refusal.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::limits::Admission;
use super::tenant::COLLECTIONS;
use super::{query, schema};
use crate::Sim;

/// V2's largest page and its offset limit.
pub const MAX_TOP: usize = 999;
pub const MAX_SKIP: usize = 9_999;
const DEFAULT_TOP: usize = 50;

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
    pub(super) fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        target: &str,
    ) -> Self {
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

pub(super) fn collection_name(service: &str, collection: &str) -> Result<&'static str, V2Error> {
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

/// Auth, faults and budget, in the order a caller meets them. Returns who acts: the technical
/// user (`api`) for Basic, the user a bearer token was issued for.
pub(super) async fn guard(sim: &Sim, headers: &HeaderMap) -> Result<String, V2Error> {
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

pub(super) fn bad_request(message: impl Into<String>, target: &str) -> V2Error {
    V2Error::new(StatusCode::BAD_REQUEST, "api.400", message, target)
}

/// The parsed query options of a collection GET.
pub(super) struct Options {
    pub(super) top: usize,
    pub(super) skip: usize,
    pub(super) count: bool,
    pub(super) filter: Option<query::Filter>,
    pub(super) orderby: Vec<query::OrderKey>,
    pub(super) select: Option<Vec<String>>,
    /// `$search`: free text, matched against the record's top-level texts.
    pub(super) search: Option<String>,
}

/// `$search`'s words: V2 takes the expression in double quotes (`$search="Silver Project"`) and
/// answers 400 to single quotes (GUIDE-API, for custom services; the same for the standard
/// services is inferred). Bare words are taken too, as the guide only says "should".
fn search_words(value: &str) -> Result<Option<String>, V2Error> {
    let value = value.trim();
    if value.contains('\'') {
        return Err(bad_request(
            "$search: the search expression must be in double quotes, not single quotes",
            "$search",
        ));
    }
    let words = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
    let words = match words {
        Some(words) => words,
        None if value.contains('"') => {
            return Err(bad_request(
                "$search: unbalanced double quotes in the search expression",
                "$search",
            ));
        }
        None => value,
    };
    Ok(Some(words.trim().to_lowercase()).filter(|s| !s.is_empty()))
}

/// Refuses a query option naming a property the collection's schema does not have, as V2 does
/// (the refusal's wording is inferred; that V2 refuses is the OData services' common behaviour).
fn known(schema: Option<&schema::Schema>, option: &str, path: &[String]) -> Result<(), V2Error> {
    match schema {
        Some(schema) if !schema.knows(path) => {
            let property = path.join("/");
            Err(bad_request(
                format!("{option}: the property {property} does not exist"),
                &property,
            ))
        }
        _ => Ok(()),
    }
}

/// Every property a filter names.
fn filter_paths<'a>(filter: &'a query::Filter, out: &mut Vec<&'a [String]>) {
    match filter {
        query::Filter::Compare { path, .. } => out.push(path),
        query::Filter::And(a, b) | query::Filter::Or(a, b) => {
            filter_paths(a, out);
            filter_paths(b, out);
        }
        query::Filter::Not(f) => filter_paths(f, out),
    }
}

/// The query options of a collection GET; with `schema`, every property they name is checked
/// against it.
pub(super) fn options(
    params: &[(String, String)],
    schema: Option<&schema::Schema>,
) -> Result<Options, V2Error> {
    let mut o = Options {
        top: DEFAULT_TOP,
        skip: 0,
        count: false,
        filter: None,
        orderby: Vec::new(),
        select: None,
        search: None,
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
                let filter = query::parse_filter(value)
                    .map_err(|e| bad_request(format!("invalid $filter: {e}"), "$filter"))?;
                let mut paths = Vec::new();
                filter_paths(&filter, &mut paths);
                for path in paths {
                    known(schema, "$filter", path)?;
                }
                o.filter = Some(filter);
            }
            "$orderby" => {
                o.orderby = query::parse_orderby(value)
                    .map_err(|e| bad_request(format!("invalid $orderby: {e}"), "$orderby"))?;
                for key in &o.orderby {
                    known(schema, "$orderby", &key.path)?;
                }
            }
            "$select" => {
                let fields: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for field in &fields {
                    let path: Vec<String> = field.split(['/', '.']).map(str::to_string).collect();
                    known(schema, "$select", &path)?;
                }
                o.select = Some(fields);
            }
            "$search" => o.search = search_words(value)?,
            // Every V2 service lists them; what they do to an answer is not published, so the
            // simulator accepts them and leaves the answer as it is.
            "$query" | "$exclude" => {}
            other if other.starts_with('$') => {
                return Err(bad_request(format!("unknown query option {other}"), other));
            }
            _ => {}
        }
    }
    Ok(o)
}
