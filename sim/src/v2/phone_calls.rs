//! The phone-call collection's own rules. They matter because the relay writes every finished
//! call there, and a write V2 would refuse must fail in the tests too.

use axum::http::StatusCode;
use serde_json::Value;

use super::V2Error;

/// What the simulated phone-call service insists on (inferred, like the shape itself): a known
/// direction, a start time, the external id the CTI finds its call by, a subject that fits.
pub(super) fn validate_phone_call(record: &Value) -> Result<(), V2Error> {
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
