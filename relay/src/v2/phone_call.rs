//! The phone-call activity's shape in V2: every field name the relay writes, in one place.
//!
//! Confirmed (a published integration reads and writes them): the collection
//! `phone-service/phoneCalls`, `id`, `displayId`, `externalId.displayId` (our call id, which is
//! how a call is found again) and `adminData`. Everything else follows the shape V2 uses for its
//! other activities (tasks, visits: `account{id}`, `owner{id}`, `notes[{content}]`,
//! `startDateTime`) and is an inference until SAP publishes the phone-call API; rename here when
//! it does.

use serde_json::{Map, Value, json};

use crate::calls::log::{CallLog, LogDirection};
use cti_protocol::ws::RecordKind;

/// The `$filter` that finds the activity written for a call.
pub fn by_call_filter(call_id: &str) -> String {
    format!(
        "externalId/displayId eq {}",
        crate::v2::client::quote(call_id)
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

/// The new activity for a finished call. `employee` maps a rep (as the provider names them) to
/// their V2 employee id, when known.
pub fn create_body(log: &CallLog, employee: &dyn Fn(&str) -> Option<String>) -> Value {
    let mut body = Map::new();
    let direction = match log.direction {
        LogDirection::Inbound => "INBOUND",
        LogDirection::Outbound => "OUTBOUND",
        LogDirection::Missed => "MISSED",
    };
    let subject = match log.direction {
        LogDirection::Inbound => format!("Inbound call from {}", log.remote),
        LogDirection::Outbound => format!("Outbound call to {}", log.remote),
        LogDirection::Missed => format!("Missed call from {}", log.remote),
    };
    body.insert("subject".into(), json!(subject));
    body.insert("direction".into(), json!(direction));
    body.insert("status".into(), json!("COMPLETED"));
    body.insert("outcome".into(), json!(outcome(log)));
    body.insert("startDateTime".into(), json!(log.started_at));
    body.insert("endDateTime".into(), json!(log.ended_at));
    body.insert("duration".into(), json!(iso_duration(log.total_secs)));
    body.insert("talkDuration".into(), json!(iso_duration(log.talk_secs)));
    body.insert("phoneNumber".into(), json!(log.remote));
    body.insert("callerNumber".into(), json!(log.from));
    body.insert("calledNumber".into(), json!(log.to));
    body.insert("externalId".into(), json!({"displayId": log.call_id}));
    let mut participants = vec![
        json!({"role": "CALLER", "phoneNumber": log.from}),
        json!({"role": "CALLED", "phoneNumber": log.to}),
    ];
    for rep in &log.reps {
        let mut p = json!({"role": "AGENT", "userId": rep});
        if let Some(id) = employee(rep) {
            p["employee"] = json!({"id": id});
        }
        participants.push(p);
    }
    body.insert("participants".into(), Value::Array(participants));
    if let Some(id) = employee(&log.owner) {
        body.insert("owner".into(), json!({"id": id}));
    }
    if let Some(record) = &log.record {
        let field = match record.kind {
            RecordKind::Account => "account",
            RecordKind::Contact => "contact",
            RecordKind::IndividualCustomer => "individualCustomer",
            _ => "account",
        };
        body.insert(field.into(), json!({"id": record.id}));
        if record.kind != RecordKind::Account
            && let Some(account) = &record.account_id
        {
            body.insert("account".into(), json!({"id": account}));
        }
    }
    body.insert("notes".into(), owned_notes(log, None));
    if let Some(d) = &log.disposition {
        body.insert("disposition".into(), json!(d));
    }
    if let Some(url) = &log.recording_url {
        body.insert("recordingUrl".into(), json!(url));
    }
    if let Some(consent) = &log.consent {
        body.insert(
            "recordingConsent".into(),
            json!({"required": consent.required, "jurisdiction": consent.jurisdiction,
                   "confirmed": consent.confirmed_by.is_some(),
                   "confirmedBy": consent.confirmed_by, "confirmedAt": consent.confirmed_at}),
        );
    }
    Value::Object(body)
}

/// The merge patch that brings an existing activity up to date with `log`, or None when it
/// already is. Every field the relay writes is compared (a late answer turns a missed call into
/// a talked one; a recording link arrives late; notes come after the call); the notes array
/// merges: notes others added in V2 are kept, and the relay's earlier text (`written_notes`) is
/// replaced rather than repeated. `employee` as for [`create_body`].
pub fn update_patch(
    existing: &Value,
    log: &CallLog,
    written_notes: Option<&str>,
    employee: &dyn Fn(&str) -> Option<String>,
) -> Option<Value> {
    let Value::Object(wanted) = create_body(log, employee) else {
        return None;
    };
    let mut patch = Map::new();
    for (key, value) in wanted {
        let value = match key.as_str() {
            "notes" => owned_notes(log, Some((existing, written_notes))),
            "externalId" => continue,
            _ => value,
        };
        if existing.get(&key) != Some(&value) {
            patch.insert(key, value);
        }
    }
    for (key, _) in absent_fields(log) {
        if existing.get(key).is_some_and(|v| !v.is_null()) {
            patch.insert(key.into(), Value::Null);
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Optional fields the log does not have (a disposition taken back): null in a patch.
fn absent_fields(log: &CallLog) -> Vec<(&'static str, ())> {
    let mut absent = Vec::new();
    if log.disposition.is_none() {
        absent.push(("disposition", ()));
    }
    if log.recording_url.is_none() {
        absent.push(("recordingUrl", ()));
    }
    absent
}

/// The notes array: ours first; with `existing`, merged into what V2 holds.
fn owned_notes(log: &CallLog, existing: Option<(&Value, Option<&str>)>) -> Value {
    let mut notes: Vec<Value> = Vec::new();
    let ours = log.notes.trim();
    if let Some((record, written)) = existing
        && let Some(Value::Array(items)) = record.get("notes")
    {
        for item in items {
            let content = item.get("content").and_then(Value::as_str).unwrap_or("");
            let ours_before = written.is_some_and(|w| w.trim() == content.trim());
            if ours_before || content.trim() == ours {
                continue;
            }
            notes.push(item.clone());
        }
    }
    if !ours.is_empty() {
        // Keep the entry V2 already has for this text (with its id) when nothing changed.
        let kept = existing
            .and_then(|(r, _)| r.get("notes"))
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i.get("content").and_then(Value::as_str).map(str::trim) == Some(ours))
            })
            .cloned();
        notes.insert(0, kept.unwrap_or_else(|| json!({"content": ours})));
    }
    Value::Array(notes)
}

fn outcome(log: &CallLog) -> &'static str {
    use cti_protocol::event::EndReason;
    match log.outcome {
        EndReason::Completed => "COMPLETED",
        EndReason::Missed => "MISSED",
        EndReason::Declined => "DECLINED",
        EndReason::Failed => "FAILED",
        _ => "COMPLETED",
    }
}

/// ISO 8601 duration as V2 writes it (`PT3M38S`).
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
    use cti_protocol::event::EndReason;

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
        }
    }

    fn employees(rep: &str) -> Option<String> {
        (rep == "bob@example.com").then(|| "emp-bob".to_string())
    }

    #[test]
    fn the_activity_carries_everything_a_manager_reads() {
        let body = create_body(&log(), &employees);
        assert_eq!(body["externalId"], json!({"displayId": "call-7"}));
        assert_eq!(body["direction"], "INBOUND");
        assert_eq!(body["duration"], "PT3M48S");
        assert_eq!(body["talkDuration"], "PT3M38S");
        assert_eq!(body["contact"], json!({"id": "c-1"}));
        assert_eq!(body["account"], json!({"id": "a-1"}));
        assert_eq!(body["owner"], json!({"id": "emp-bob"}));
        assert_eq!(body["notes"], json!([{"content": "wants a quote"}]));
        assert_eq!(body["recordingUrl"], "https://rec.example/7.wav");
        let agents: Vec<_> = body["participants"]
            .as_array()
            .expect("participants")
            .iter()
            .filter(|p| p["role"] == "AGENT")
            .map(|p| p["userId"].as_str().expect("user"))
            .collect();
        assert_eq!(agents, ["alice@example.com", "bob@example.com"]);
    }

    #[test]
    fn an_up_to_date_activity_needs_no_patch() {
        let body = create_body(&log(), &employees);
        assert_eq!(
            update_patch(&body, &log(), Some("wants a quote"), &employees),
            None
        );
    }

    #[test]
    fn new_notes_replace_ours_and_keep_everyone_elses() {
        let mut existing = create_body(&log(), &employees);
        existing["notes"] = json!([{"id": "n1", "content": "wants a quote"},
                                   {"id": "n2", "content": "manager: call back Monday"}]);
        let mut newer = log();
        newer.notes = "wants a quote for 20 seats".into();
        let patch =
            update_patch(&existing, &newer, Some("wants a quote"), &employees).expect("a patch");
        assert_eq!(
            patch,
            json!({"notes": [{"content": "wants a quote for 20 seats"},
                             {"id": "n2", "content": "manager: call back Monday"}]})
        );
    }

    #[test]
    fn a_late_answer_and_a_dropped_disposition_are_patched() {
        let mut missed = log();
        missed.direction = LogDirection::Missed;
        missed.talk_secs = 0;
        let existing = create_body(&missed, &employees);
        let mut talked = log();
        talked.disposition = None;
        let patch =
            update_patch(&existing, &talked, Some("wants a quote"), &employees).expect("a patch");
        assert_eq!(patch["direction"], "INBOUND");
        assert_eq!(patch["talkDuration"], "PT3M38S");
        assert_eq!(patch["disposition"], Value::Null);
        assert!(patch.get("notes").is_none(), "{patch}");
    }

    #[test]
    fn durations_read_like_v2s() {
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(218), "PT3M38S");
        assert_eq!(iso_duration(3600), "PT1H");
        assert_eq!(iso_duration(3661), "PT1H1M1S");
    }
}
