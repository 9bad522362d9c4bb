//! The phone-call activity's shape in V2: every field of it the relay reads or writes, in one
//! place, each marked by what it rests on.
//!
//! Agent Desktop creates the phone call itself when the widget posts `NOTIFY` or `ACCEPT`, with
//! `externalId.displayId` = the payload's `ExternalReferenceID` (SAP KBA 3481409). The relay finds
//! that record and writes the call's summary into its `transcript`, the one field a published
//! integration writes (AWS's Amazon Connect guidance for V2, `connector_lambda.py`: PATCH with
//! `If-Match` = `adminData.updatedOn`). It creates a record only where V2 has none (a call the
//! widget never saw: missed, or handled outside it). Direction, times, parties and the rest have
//! no published field: they are written only to the paths a tenant maps them to (its own
//! `extensions`, typically), never guessed at the top level.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::calls::log::{CallLog, LogDirection};
use cti_protocol::event::EndReason;
use cti_protocol::ws::RecordKind;

/// `id`: confirmed (AWS guidance, PATCH `phoneCalls/{id}`).
pub const ID: &str = "id";
/// `displayId`: inferred (every V2 object has one; no source shows it on phone calls).
pub const DISPLAY_ID: &str = "displayId";
/// `externalId/displayId`: confirmed for reading (AWS guidance filters on it; KBA 3481409 says
/// Agent Desktop sets it). Writing it in a create is inferred.
pub const EXTERNAL_ID: &str = "externalId/displayId";
/// `transcript`: confirmed writable (AWS guidance), shown as "Phone Transcript" on the timeline.
pub const TRANSCRIPT: &str = "transcript";
/// `adminData/updatedOn`, the `If-Match` value: confirmed (AWS guidance; V2's OpenAPI specs).
pub const UPDATED_ON: &str = "adminData/updatedOn";

/// Opens the relay's part of `transcript`. Text outside the markers is someone else's and kept.
pub const SUMMARY_START: &str = "--- Call summary (CTI) ---";
/// Closes the relay's part of `transcript`.
pub const SUMMARY_END: &str = "--- End of call summary ---";

/// The id V2 knows the call by: what the widget sent as `ExternalReferenceID`.
pub fn reference(call_id: &str) -> String {
    cti_protocol::host::external_reference(call_id)
}

/// The `$filter` that finds V2's phone call for a call.
pub fn by_call_filter(call_id: &str) -> String {
    format!(
        "{EXTERNAL_ID} eq {}",
        crate::v2::client::quote(&reference(call_id))
    )
}

/// Where V2's UI shows the activity. V2's deep links follow `/go/detail/<object>?nodeid=<id>`
/// (seen for contacts); the phone-call object's name in them is inferred.
pub fn ui_link(v2_url: &str, id: &str) -> String {
    format!(
        "{}/go/detail/phonecall?nodeid={id}",
        v2_url.trim_end_matches('/')
    )
}

/// A tenant's field mapping: the relay's name of a value (one of `MAPPABLE`) to the path in the
/// phone call it goes to (`extensions/CtiDirection`).
pub type Mapping = BTreeMap<String, String>;

/// The record V2 lacks for a call nobody saw in the widget. `employee` maps a rep (as the
/// provider names them) to their V2 employee id, when known.
pub fn create_body(
    log: &CallLog,
    mapping: &Mapping,
    employee: &dyn Fn(&str) -> Option<String>,
) -> Value {
    let mut body = json!({
        "externalId": {"displayId": reference(&log.call_id)},
        TRANSCRIPT: summary(log),
    });
    for (name, path) in mapping {
        if let Some(value) = mapped_value(name, log, employee) {
            set_path(&mut body, path, value);
        }
    }
    body
}

/// The merge patch that brings V2's record up to date with `log`, or None when it already is.
/// In `transcript` the relay's part (between the markers) is replaced and everything around it
/// kept, so notes others add in V2 survive; a transcript without the markers keeps its text after
/// ours.
pub fn update_patch(
    existing: &Value,
    log: &CallLog,
    mapping: &Mapping,
    employee: &dyn Fn(&str) -> Option<String>,
) -> Option<Value> {
    let mut patch = json!({});
    let current = existing
        .get(TRANSCRIPT)
        .and_then(Value::as_str)
        .unwrap_or("");
    let merged = merge_transcript(current, &summary(log));
    if merged != current {
        patch[TRANSCRIPT] = json!(merged);
    }
    for (name, path) in mapping {
        let wanted = mapped_value(name, log, employee).unwrap_or(Value::Null);
        let pointer = format!("/{}", path.trim_matches('/'));
        let held = existing.pointer(&pointer).unwrap_or(&Value::Null);
        if *held != wanted {
            set_path(&mut patch, path, wanted);
        }
    }
    (patch.as_object().is_some_and(|p| !p.is_empty())).then_some(patch)
}

/// `current` with the relay's part replaced by `ours`.
pub fn merge_transcript(current: &str, ours: &str) -> String {
    if let Some(start) = current.find(SUMMARY_START)
        && let Some(len) = current[start..].find(SUMMARY_END)
    {
        let end = start + len + SUMMARY_END.len();
        return format!("{}{ours}{}", &current[..start], &current[end..]);
    }
    if current.trim().is_empty() {
        ours.to_string()
    } else {
        format!("{ours}\n\n{current}")
    }
}

/// The call as a rep reads it on V2's timeline, between the markers.
pub fn summary(log: &CallLog) -> String {
    let mut lines = vec![SUMMARY_START.to_string()];
    lines.push(match log.direction {
        LogDirection::Outbound => format!("Outbound call from {} to {}", log.from, log.to),
        _ => format!("Inbound call from {} to {}", log.from, log.to),
    });
    lines.push(format!("Outcome: {}", outcome_text(log)));
    lines.push(format!("Started: {}", log.started_at));
    if let Some(at) = &log.answered_at {
        lines.push(format!("Answered: {at}"));
    }
    lines.push(format!(
        "Ended: {} (talk time {})",
        log.ended_at,
        clock_duration(log.talk_secs)
    ));
    if !log.reps.is_empty() {
        lines.push(format!("Reps: {}", log.reps.join(", ")));
    }
    if let Some(record) = &log.record {
        let kind = match record.kind {
            RecordKind::Contact => "contact",
            RecordKind::IndividualCustomer => "individual customer",
            _ => "account",
        };
        lines.push(format!("Filed under {kind} {}", record.id));
    }
    if let Some(d) = &log.disposition {
        lines.push(format!("Disposition: {d}"));
    }
    if let Some(url) = &log.recording_url {
        lines.push(format!("Recording: {url}"));
    }
    if let Some(consent) = &log.consent
        && consent.required
    {
        lines.push(match (&consent.confirmed_by, &consent.confirmed_at) {
            (Some(by), Some(at)) => format!(
                "Recording consent ({}): confirmed by {by} at {at}",
                consent.jurisdiction
            ),
            _ => format!(
                "Recording consent ({}): not confirmed",
                consent.jurisdiction
            ),
        });
    }
    let notes = log.notes.trim();
    if !notes.is_empty() {
        lines.push(format!("Notes:\n{notes}"));
    }
    lines.push(SUMMARY_END.to_string());
    lines.join("\n")
}

fn outcome_text(log: &CallLog) -> &'static str {
    match (log.direction, log.outcome) {
        (LogDirection::Missed, _) | (_, EndReason::Missed) => "missed",
        (_, EndReason::Declined) => "declined",
        (_, EndReason::Failed) => "failed",
        _ => "completed",
    }
}

/// A value the tenant may map, by the relay's name for it (the names `config` accepts). None:
/// the call has no such value (no disposition yet), which a patch writes as null. Every path
/// these go to is the tenant's: nothing here is a V2 field.
pub fn mapped_value(
    name: &str,
    log: &CallLog,
    employee: &dyn Fn(&str) -> Option<String>,
) -> Option<Value> {
    let consent = log.consent.as_ref();
    Some(match name {
        // A missed call is an inbound one that nobody answered: V2 has no MISSED direction.
        "direction" => json!(match log.direction {
            LogDirection::Outbound => "OUTBOUND",
            _ => "INBOUND",
        }),
        "status" => json!("COMPLETED"),
        "outcome" => json!(match outcome_text(log) {
            "missed" => "MISSED",
            "declined" => "DECLINED",
            "failed" => "FAILED",
            _ => "COMPLETED",
        }),
        "start" => json!(log.started_at),
        "end" => json!(log.ended_at),
        "duration" => json!(iso_duration(log.total_secs)),
        "talk_duration" => json!(iso_duration(log.talk_secs)),
        "caller" => json!(log.from),
        "called" => json!(log.to),
        "participants" => json!(log.reps),
        "owner" => json!(employee(&log.owner)?),
        "account" => json!(log.record.as_ref()?.account_id.as_ref()?),
        "record" => json!(log.record.as_ref()?.id),
        "disposition" => json!(log.disposition.as_ref()?),
        "recording_url" => json!(log.recording_url.as_ref()?),
        "consent_required" => json!(consent?.required),
        "consent_jurisdiction" => json!(consent?.jurisdiction),
        "consent_confirmed_by" => json!(consent?.confirmed_by.as_ref()?),
        "consent_confirmed_at" => json!(consent?.confirmed_at.as_ref()?),
        _ => return None,
    })
}

/// Sets `value` at `path` (`extensions/CtiDirection`), making the objects on the way.
fn set_path(target: &mut Value, path: &str, value: Value) {
    let mut at = target;
    let mut parts = path.trim_matches('/').split('/').peekable();
    while let Some(part) = parts.next() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        at = map.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}

/// Seconds as a rep reads them (`3m 38s`).
fn clock_duration(secs: u64) -> String {
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}

/// ISO 8601 duration, the form V2 uses for durations elsewhere (`plannedDuration` on tasks).
pub fn iso_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || (h == 0 && m == 0) {
        out.push_str(&format!("{s}S"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::log::LoggedRecord;

    fn log() -> CallLog {
        CallLog {
            call_id: "call-7".into(),
            direction: LogDirection::Inbound,
            outcome: EndReason::Completed,
            started_at: "2026-11-25T10:00:00Z".into(),
            answered_at: Some("2026-11-25T10:00:10Z".into()),
            ended_at: "2026-11-25T10:03:48Z".into(),
            talk_secs: 218,
            total_secs: 228,
            from: "+41441234567".into(),
            to: "+41449990000".into(),
            remote: "+41441234567".into(),
            reps: vec!["alice@example.com".into(), "bob@example.com".into()],
            owner: "bob@example.com".into(),
            record: Some(LoggedRecord {
                kind: RecordKind::Contact,
                id: "c-1".into(),
                account_id: Some("a-1".into()),
            }),
            notes: "wants a quote".into(),
            disposition: Some("Interested".into()),
            recording_url: Some("https://rec.example/7.wav".into()),
            consent: None,
            from_mid_call: false,
        }
    }

    fn employees(rep: &str) -> Option<String> {
        (rep == "bob@example.com").then(|| "emp-bob".to_string())
    }

    #[test]
    fn unmapped_the_activity_is_external_id_and_transcript_only() {
        let body = create_body(&log(), &Mapping::new(), &employees);
        let keys: Vec<_> = body.as_object().expect("object").keys().cloned().collect();
        assert_eq!(keys, ["externalId", "transcript"]);
        assert_eq!(body["externalId"]["displayId"], reference("call-7"));
        let text = body["transcript"].as_str().expect("text");
        for part in [
            "Inbound call from +41441234567 to +41449990000",
            "Outcome: completed",
            "talk time 3m 38s",
            "Reps: alice@example.com, bob@example.com",
            "Disposition: Interested",
            "Recording: https://rec.example/7.wav",
            "wants a quote",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
    }

    #[test]
    fn the_reference_is_the_one_the_widget_sends() {
        assert_eq!(reference("abc123"), "abc123");
        let long = "a".repeat(40);
        assert_eq!(
            reference(&long),
            cti_protocol::host::external_reference(&long)
        );
        assert!(by_call_filter(&long).contains(&reference(&long)));
    }

    #[test]
    fn a_missed_call_is_inbound_with_its_outcome() {
        let mut missed = log();
        missed.direction = LogDirection::Missed;
        missed.outcome = EndReason::Missed;
        let mapping = Mapping::from([
            ("direction".into(), "extensions/CtiDirection".into()),
            ("outcome".into(), "extensions/CtiOutcome".into()),
        ]);
        let body = create_body(&missed, &mapping, &employees);
        assert_eq!(
            body["extensions"],
            json!({"CtiDirection": "INBOUND", "CtiOutcome": "MISSED"})
        );
        let text = body["transcript"].as_str().expect("text");
        assert!(text.contains("Inbound call") && text.contains("Outcome: missed"));
    }

    #[test]
    fn an_up_to_date_activity_needs_no_patch() {
        let mapping = Mapping::from([("talk_duration".into(), "extensions/Talk".into())]);
        let body = create_body(&log(), &mapping, &employees);
        assert_eq!(update_patch(&body, &log(), &mapping, &employees), None);
    }

    #[test]
    fn new_notes_replace_ours_and_keep_everyone_elses() {
        let existing = json!({"transcript": format!(
            "agent desktop: caller verified\n{}\nmanager: call back Monday",
            summary(&log())
        )});
        let mut newer = log();
        newer.notes = "wants a quote for 20 seats".into();
        let patch = update_patch(&existing, &newer, &Mapping::new(), &employees).expect("patch");
        let text = patch["transcript"].as_str().expect("text");
        assert!(
            text.starts_with("agent desktop: caller verified\n"),
            "{text}"
        );
        assert!(text.ends_with("\nmanager: call back Monday"), "{text}");
        assert!(text.contains("wants a quote for 20 seats"), "{text}");
        assert_eq!(text.matches(SUMMARY_START).count(), 1, "{text}");
    }

    #[test]
    fn text_without_our_markers_is_kept_after_ours() {
        assert_eq!(merge_transcript("", "ours"), "ours");
        assert_eq!(merge_transcript("theirs", "ours"), "ours\n\ntheirs");
    }

    #[test]
    fn a_dropped_disposition_is_nulled_at_its_mapped_path() {
        let mapping = Mapping::from([("disposition".into(), "extensions/Disp".into())]);
        let existing = create_body(&log(), &mapping, &employees);
        let mut changed = log();
        changed.disposition = None;
        let patch = update_patch(&existing, &changed, &mapping, &employees).expect("patch");
        assert_eq!(patch["extensions"]["Disp"], Value::Null);
    }

    #[test]
    fn durations_read_like_v2s() {
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(218), "PT3M38S");
        assert_eq!(iso_duration(3600), "PT1H");
        assert_eq!(iso_duration(3661), "PT1H1M1S");
    }
}
