//! What makes the simulated tenant misbehave on purpose: the daily request budget (429 with
//! Retry-After) and injected faults. Faults are set over `/sim/faults` and strike either before a
//! request is served or after a write was carried out (a lost answer), which is how the tests show
//! that the relay logs each call exactly once whatever V2 does.
//!
//! Quirks (`/sim/v2/quirks`) are standing behaviours of collection reads that V2 may have but
//! nobody has confirmed: a page cap below 999 ("these numbers can change"), `$filter` refused on
//! the collections the relay reads ranking signals from, keyset paging (`$orderby=id`,
//! `id gt '...'`) refused. A 429 without Retry-After is a fault (`"retry_after": false`), since V2
//! does not document that header. All are off by default.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::V2Error;
use crate::Sim;

/// The tenant's notion of now, replaceable in tests.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// What the next requests suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", untagged)]
pub enum Fault {
    Status {
        status: u16,
        count: u32,
    },
    Delay {
        delay_ms: u64,
        count: u32,
    },
    /// The next `count` writes are carried out, but the caller gets `status` instead of the
    /// answer (a gateway timing out after V2 committed): the case that duplicates naive clients.
    AfterWrite {
        status: u16,
        count: u32,
        after_write: bool,
    },
    /// After `after` collection reads went through, the next `count` answer 429 without
    /// Retry-After (V2 documents no such header, so a client cannot count on one).
    Throttle {
        status: u16,
        count: u32,
        after: u32,
        retry_after: bool,
    },
}

/// Standing behaviours of collection reads, each one a thing V2 might do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quirks {
    /// Most records a page holds, whatever `$top` asked (None: 999, V2's published maximum).
    pub page_cap: Option<usize>,
    /// `$filter` on opportunities and phone calls answers 400, as if their filter fields were
    /// unknown to the tenant.
    pub refuse_signal_filters: bool,
    /// `$orderby=id` and `id gt '...'` answer 400.
    pub refuse_keyset: bool,
}

/// The verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Serve,
    Delay(u64),
    Fail(u16),
    /// Over budget: retry after this many seconds (the next UTC day).
    OverBudget(u64),
}

pub struct Limits {
    budget: Option<u64>,
    clock: Clock,
    used: Mutex<(i64, u64)>,
    fault: Mutex<Option<Fault>>,
    quirks: Mutex<Quirks>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("budget", &self.budget)
            .finish()
    }
}

impl Limits {
    pub fn new(budget: Option<u64>, clock: Clock) -> Self {
        Limits {
            budget,
            clock,
            used: Mutex::new((0, 0)),
            fault: Mutex::new(None),
            quirks: Mutex::new(Quirks::default()),
        }
    }

    pub fn set_quirks(&self, quirks: Quirks) {
        *self.quirks.lock() = quirks;
    }

    pub fn quirks(&self) -> Quirks {
        *self.quirks.lock()
    }

    /// For a collection read: whether a throttle fault answers it with a bare 429.
    pub fn throttle(&self) -> bool {
        let mut fault = self.fault.lock();
        let Some(Fault::Throttle { count, after, .. }) = fault.as_mut() else {
            return false;
        };
        if *after > 0 {
            *after -= 1;
            return false;
        }
        *count = count.saturating_sub(1);
        if *count == 0 {
            *fault = None;
        }
        true
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.fault.lock() = fault;
    }

    pub fn fault(&self) -> Option<Fault> {
        *self.fault.lock()
    }

    /// For a write just carried out: the status to answer instead, if an after-write fault is set.
    pub fn lose_answer(&self) -> Option<u16> {
        let mut fault = self.fault.lock();
        match fault.as_mut() {
            Some(Fault::AfterWrite { status, count, .. }) if *count > 0 => {
                *count -= 1;
                let status = *status;
                if *count == 0 {
                    *fault = None;
                }
                Some(status)
            }
            _ => None,
        }
    }

    /// Decides one request's fate; faults come before the budget, like a proxy in front of V2.
    pub fn admit(&self) -> Admission {
        {
            let mut fault = self.fault.lock();
            let verdict = match fault.as_mut() {
                Some(Fault::Status { status, count }) if *count > 0 => {
                    *count -= 1;
                    Some(Admission::Fail(*status))
                }
                Some(Fault::Delay { delay_ms, count }) if *count > 0 => {
                    *count -= 1;
                    Some(Admission::Delay(*delay_ms))
                }
                _ => None,
            };
            if matches!(
                *fault,
                Some(Fault::Status { count: 0, .. } | Fault::Delay { count: 0, .. })
            ) {
                *fault = None;
            }
            if let Some(Admission::Fail(status)) = verdict {
                return Admission::Fail(status);
            }
            if let Some(Admission::Delay(ms)) = verdict {
                return self
                    .count()
                    .map_or(Admission::Delay(ms), Admission::OverBudget);
            }
        }
        self.count().map_or(Admission::Serve, Admission::OverBudget)
    }

    /// Counts a request against today's budget; Some(retry-after) when it is spent.
    fn count(&self) -> Option<u64> {
        let budget = self.budget?;
        let now = (self.clock)();
        let day = now.unix_timestamp().div_euclid(86_400);
        let mut used = self.used.lock();
        if used.0 != day {
            *used = (day, 0);
        }
        if used.1 >= budget {
            let next_day = (day + 1) * 86_400;
            return Some((next_day - now.unix_timestamp()).max(1) as u64);
        }
        used.1 += 1;
        None
    }
}

/// An after-write fault: the write happened, the caller hears an error.
pub(super) fn lost_answer(sim: &Sim) -> Result<(), V2Error> {
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

pub(super) async fn set_fault(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
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
    let bare = value.get("retry_after").and_then(Value::as_bool) == Some(false);
    let after = match value.get("after") {
        None => 0,
        Some(a) => match a.as_u64().and_then(|a| u32::try_from(a).ok()) {
            Some(a) => a,
            None => return error("after must be a whole number", "after"),
        },
    };
    let fault = match (value.get("status"), value.get("delay_ms")) {
        (Some(s), None) if bare => match s.as_u64() {
            Some(429) if count > 0 => Fault::Throttle {
                status: 429,
                count,
                after,
                retry_after: false,
            },
            _ => {
                return error(
                    "retry_after: false goes with status 429 and a count above 0",
                    "retry_after",
                );
            }
        },
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

pub(super) async fn clear_fault(State(sim): State<Arc<Sim>>) -> Response {
    sim.v2.limits.set_fault(None);
    Json(json!({"fault": null})).into_response()
}

pub(super) async fn get_fault(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({"fault": sim.v2.limits.fault()})).into_response()
}

pub(super) async fn set_quirks(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Quirks>(&body) {
        Ok(quirks)
            if quirks
                .page_cap
                .is_none_or(|c| (1..=super::MAX_TOP).contains(&c)) =>
        {
            sim.v2.limits.set_quirks(quirks);
            Json(json!({"quirks": quirks})).into_response()
        }
        Ok(_) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": "invalid_quirks",
                "message": "page_cap must be 1 to 999", "target": "page_cap"}})),
        )
            .into_response(),
        Err(err) => (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": {"code": "invalid_quirks", "message": err.to_string(),
                "target": ""}}),
            ),
        )
            .into_response(),
    }
}

pub(super) async fn get_quirks(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({"quirks": sim.v2.limits.quirks()})).into_response()
}

/// The collections whose `$filter` the `refuse_signal_filters` quirk refuses.
const SIGNAL_COLLECTIONS: &[&str] = &["opportunities", "phoneCalls"];

/// What the quirks and a throttle fault make of a collection read before it is served: a
/// refusal, or the query options to serve it with (`$top` held to the page cap).
pub(super) fn shape_list(
    sim: &Sim,
    collection: &str,
    mut params: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, V2Error> {
    if sim.v2.limits.throttle() {
        sim.v2
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(V2Error::new(
            StatusCode::TOO_MANY_REQUESTS,
            "api.429",
            "too many requests",
            "",
        ));
    }
    let quirks = sim.v2.limits.quirks();
    let refuse = |message: String, target: &str| {
        sim.v2
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Err(V2Error::new(
            StatusCode::BAD_REQUEST,
            "api.400",
            message,
            target,
        ))
    };
    for (key, value) in &params {
        if quirks.refuse_signal_filters
            && key == "$filter"
            && SIGNAL_COLLECTIONS.contains(&collection)
        {
            return refuse(
                format!("$filter on {collection} refers to a property the tenant does not know"),
                "$filter",
            );
        }
        if quirks.refuse_keyset {
            let keyset = match key.as_str() {
                "$orderby" => value
                    .split(',')
                    .any(|k| k.split_whitespace().next() == Some("id")),
                "$filter" => value.contains("id gt "),
                _ => false,
            };
            if keyset {
                return refuse(format!("{key} on id is not supported"), key);
            }
        }
    }
    let cap = quirks.page_cap.unwrap_or(super::MAX_TOP);
    for (key, value) in params.iter_mut() {
        if key == "$top"
            && let Ok(top) = value.trim().parse::<usize>()
            && top > cap
            && top <= super::MAX_TOP
        {
            *value = cap.to_string();
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    #[test]
    fn budget_resets_on_the_next_day() {
        let now = Arc::new(AtomicI64::new(86_400 * 20_000 + 3_600));
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || {
            OffsetDateTime::from_unix_timestamp(clock_now.load(Ordering::SeqCst))
                .expect("valid time")
        });
        let limits = Limits::new(Some(2), clock);
        assert_eq!(limits.admit(), Admission::Serve);
        assert_eq!(limits.admit(), Admission::Serve);
        assert_eq!(limits.admit(), Admission::OverBudget(86_400 - 3_600));
        now.fetch_add(86_400, Ordering::SeqCst);
        assert_eq!(limits.admit(), Admission::Serve);
    }

    #[test]
    fn faults_apply_to_the_next_requests_only() {
        let limits = Limits::new(None, system_clock());
        limits.set_fault(Some(Fault::Status {
            status: 503,
            count: 2,
        }));
        assert_eq!(limits.admit(), Admission::Fail(503));
        assert_eq!(limits.admit(), Admission::Fail(503));
        assert_eq!(limits.admit(), Admission::Serve);
        assert_eq!(limits.fault(), None);
        limits.set_fault(Some(Fault::Delay {
            delay_ms: 5,
            count: 1,
        }));
        assert_eq!(limits.admit(), Admission::Delay(5));
        assert_eq!(limits.admit(), Admission::Serve);
    }

    #[test]
    fn a_throttle_fault_lets_some_reads_through_then_refuses_the_next() {
        let limits = Limits::new(None, system_clock());
        limits.set_fault(Some(Fault::Throttle {
            status: 429,
            count: 2,
            after: 1,
            retry_after: false,
        }));
        assert!(!limits.throttle());
        assert_eq!(limits.admit(), Admission::Serve, "not a fault of admission");
        assert!(limits.throttle());
        assert!(limits.throttle());
        assert!(!limits.throttle());
        assert_eq!(limits.fault(), None);
    }
}
