//! `pick_record`: the rep picked a record found by search as the caller's. It is read from V2
//! first (with the technical user, as lookups are), so only a record that exists becomes the
//! call's, with V2's own name and account rather than whatever the widget sent.

use cti_protocol::lookup::MAX_ID_CHARS;
use cti_protocol::ws::RecordKind;

use super::choose_match::make_call_record;
use crate::agent::AgentError;
use crate::pipeline::matching::to_match;
use crate::state::{AppState, Tenant};
use crate::v2::lookup::collection;
use crate::v2::records::caller_record;

pub(super) async fn apply(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    call_id: &str,
    kind: RecordKind,
    record_id: &str,
) -> Result<(), AgentError> {
    let no_such = || AgentError::NoSuchRecord {
        kind,
        id: record_id.chars().take(MAX_ID_CHARS).collect(),
    };
    if record_id.trim().is_empty() || record_id.chars().count() > MAX_ID_CHARS {
        return Err(no_such());
    }
    super::own_leg(app, tenant, call_id, rep).await?;
    let read = tenant
        .v2
        .get(collection(kind), record_id)
        .await
        .map_err(AgentError::unavailable)?
        .ok_or_else(no_such)?;
    let record = caller_record(kind, &read.record)
        .filter(|r| r.id == record_id)
        .ok_or_else(no_such)?;
    make_call_record(
        app,
        tenant,
        rep,
        call_id,
        record_id,
        Some(to_match(record.into())),
    )
    .await
}
