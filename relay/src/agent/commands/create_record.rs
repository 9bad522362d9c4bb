//! `create_record`: the caller is not in V2, and the rep creates their record from the widget.
//!
//! V2 publishes no way to open its own create screen prefilled (no create deep link, no
//! postMessage navigation), so the widget has its own small form and the relay creates the
//! record through V2's documented create APIs (see `v2::lookup`), on the rep's authority as the
//! call's activity is written: V2 records the rep as its creator. The new record then becomes
//! the call's record through the same path as `choose_match` (so the activity is filed under it
//! once), and goes into the number index so the next call from the number pops it.

use cti_protocol::lookup::check_new_record;
use cti_protocol::ws::NewRecordFields;
use cti_protocol::ws::{RecordKind, ServerMessage};

use super::choose_match::make_call_record;
use crate::agent::AgentError;
use crate::numbers::update;
use crate::pipeline::matching::to_match;
use crate::secret::mask_number;
use crate::state::{AppState, Tenant};
use crate::v2::V2Error;
use crate::v2::lookup::{collection, create_body, record_link};
use crate::v2::records::caller_record;

pub(super) async fn apply(
    app: &AppState,
    tenant: &Tenant,
    rep: &str,
    call_id: &str,
    kind: RecordKind,
    fields: &NewRecordFields,
) -> Result<ServerMessage, AgentError> {
    check_new_record(kind, fields).map_err(AgentError::InvalidRecord)?;
    let leg = super::own_leg(app, tenant, call_id, rep).await?;
    let number = leg.remote();
    if !is_e164(number) {
        return Err(AgentError::NumberNotStorable(mask_number(number)));
    }
    let v2 = app
        .authority
        .client_for(&tenant.config, &tenant.v2, rep)
        .await
        .map_err(AgentError::unavailable)?;
    let created = v2
        .create(collection(kind), &create_body(kind, fields, number))
        .await
        .map_err(|err| match err {
            V2Error::Status {
                status: 400 | 422,
                message,
                ..
            } => AgentError::V2Refused(message),
            other => AgentError::unavailable(other),
        })?;
    let record = caller_record(kind, &created.record).ok_or_else(|| {
        AgentError::unavailable(V2Error::Decode {
            path: collection(kind).path().to_string(),
            reason: "the created record has no id".into(),
        })
    })?;
    let id = record.id.clone();
    tracing::info!(call = %call_id, caller = %mask_number(number), ?kind, "rep created a record for an unknown caller");
    let record = to_match(record.into());
    make_call_record(app, tenant, rep, call_id, &id, Some(record.clone())).await?;
    // The next call from the number pops the record at once. A change event from V2 does the
    // same where the tenant sends them; a failure here waits for the next index build.
    if let Err(err) = update::apply(&app.numbers, &tenant.numbers, kind, &id).await {
        tracing::warn!(%err, call = %call_id, "the new record is not in the number index yet");
    }
    Ok(ServerMessage::RecordCreated {
        call_id: call_id.to_string(),
        link: Some(record_link(&tenant.config.v2_url, kind, &id)),
        record,
    })
}

/// `+` and 7 to 15 digits: a number V2 can store and the index can find again.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::is_e164;

    #[test]
    fn only_a_full_international_number_is_stored() {
        assert!(is_e164("+41441234567"));
        assert!(!is_e164("0441234567"));
        assert!(!is_e164("anonymous"));
        assert!(!is_e164("+41 44 123"));
    }
}
