//! The simulated SAP Sales Cloud V2 tenant: the REST API under `/sap/c4c/api/v1/...`.
//!
//! It follows V2's published conventions as far as they are known: `{"count","value"}` and
//! `{"value"}` envelopes, `$top` (at most 999), `$skip` (below 10000), `$filter`, `$select`,
//! `$count`, `$orderby`, Basic auth, the `{"error":{...}}` envelope, ETag + If-Match on PATCH
//! (428 without, 412 stale), and 429 with Retry-After over a daily request budget. The relay reaches
//! it by URL only, as it would a real tenant.
//!
//! Inside: `tenant` holds the records and answers the simulator's own questions (who carries this
//! number?), `http` the routes, `request` what every request goes through (auth, faults, budget,
//! query options, the error envelope), `crud` the record operations, `phone_calls` what the phone-call
//! service insists on, `schema` the properties each collection has (nothing else is accepted in
//! a query or a body); `limits` makes the tenant fail on purpose.

mod crud;
pub mod events;
mod http;
pub mod limits;
mod phone_calls;
pub mod query;
mod request;
mod schema;
pub mod seed;
mod tenant;

pub use http::routes;
pub use phone_calls::PhoneCallWrite;
pub use request::{MAX_SKIP, MAX_TOP, V2Error};
pub use tenant::{PhoneOwner, SampleCaller, Tenant};

/// Now as V2 writes it (UTC, milliseconds, `Z`), for `adminData` and change events; the
/// records' `updatedOn` doubles as their ETag.
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
