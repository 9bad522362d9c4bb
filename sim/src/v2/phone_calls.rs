//! The phone-call collection's own rules. They matter because the relay writes every finished
//! call there, and a write V2 would refuse must fail in the tests too.
//!
//! No schema of V2's phone call is published. What is modelled: Agent Desktop creates the record
//! from the widget's payload with `externalId.displayId` (SAP KBA 3481409), and `transcript` is
//! writable (a published integration PATCHes it). The limits below are inferred.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use parking_lot::Mutex;
use serde_json::Value;

use super::V2Error;

/// The longest `transcript` accepted (inferred: V2's long texts are bounded, the bound unknown).
const TRANSCRIPT_MAX: usize = 100_000;

/// What the simulated phone-call service insists on: the external id the CTI finds its call by,
/// and a transcript that is text of a bounded length.
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
    if text("/externalId/displayId").is_none_or(str::is_empty) {
        return Err(invalid(
            "Data is required -> externalId/displayId".into(),
            "{externalId/displayId}",
        ));
    }
    match record.get("transcript") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.chars().count() <= TRANSCRIPT_MAX => {}
        Some(_) => {
            return Err(invalid(
                format!(
                    "Data is invalid -> transcript (text of at most {TRANSCRIPT_MAX} characters)"
                ),
                "{transcript}",
            ));
        }
    }
    Ok(())
}

/// One write V2 carried out on a phone call.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneCallWrite {
    /// `POST` or `PATCH`.
    pub method: &'static str,
    pub id: String,
    /// The body as the client sent it.
    pub body: Value,
    /// The media type the client declared for it.
    pub content_type: String,
}

/// The phone-call writes carried out, in order, so a test can count what a client sent (a
/// lost answer's write counts: V2 did it); and an edit someone makes in V2's UI while a client
/// holds what it read.
#[derive(Debug, Default)]
pub(super) struct Traffic {
    writes: Mutex<Vec<PhoneCallWrite>>,
    /// (record id, text appended to its transcript) after the record's next read.
    edit_after_read: Mutex<Option<(String, String)>>,
}

impl Traffic {
    pub(super) fn push(&self, method: &'static str, id: &str, body: &Value, content_type: &str) {
        self.writes.lock().push(PhoneCallWrite {
            method,
            id: id.to_string(),
            body: body.clone(),
            content_type: content_type.to_string(),
        });
    }

    pub(super) fn all(&self) -> Vec<PhoneCallWrite> {
        self.writes.lock().clone()
    }
}

/// After a read of phone call `id`: the edit waiting for that read, if any, is made.
pub(super) fn after_read(tenant: &super::Tenant, id: &str) {
    let edit = {
        let mut pending = tenant.phone_call_traffic.edit_after_read.lock();
        match pending.take() {
            Some((for_id, text)) if for_id == id => text,
            other => {
                *pending = other;
                return;
            }
        }
    };
    let mut collections = tenant.collections.write();
    let Some(c) = collections.get_mut("phoneCalls") else {
        return;
    };
    if let Some(record) = c.by_id.get(id).copied().and_then(|i| c.items.get_mut(i)) {
        let before = record["transcript"].as_str().unwrap_or_default();
        record["transcript"] = Value::String(format!("{before}{edit}"));
        let stamp = record["adminData"]["updatedOn"]
            .as_str()
            .unwrap_or_default();
        record["adminData"]["updatedOn"] = Value::String(format!("{stamp}+"));
    }
}

impl super::Tenant {
    /// What Agent Desktop does when the widget posts `NOTIFY` or `ACCEPT`: it creates the phone
    /// call with `externalId.displayId` = the payload's `ExternalReferenceID` (SAP KBA 3481409),
    /// or finds the one it made for that reference before (inferred). Its id.
    pub fn agent_desktop_call(&self, reference: &str) -> String {
        let mut collections = self.collections.write();
        let c = collections.entry("phoneCalls").or_default();
        let existing = c.items.iter().find(|r| {
            r.pointer("/externalId/displayId").and_then(Value::as_str) == Some(reference)
        });
        if let Some(id) = existing.and_then(|r| r["id"].as_str()) {
            return id.to_string();
        }
        let id = uuid::Uuid::new_v4().to_string();
        let stamp = super::now_stamp();
        let display = self.next_display_id.fetch_add(1, Ordering::Relaxed);
        let user = "Agent Desktop";
        let record = serde_json::json!({
            "id": id, "displayId": display.to_string(),
            "externalId": {"displayId": reference},
            "adminData": {"createdOn": stamp, "createdBy": user, "createdByName": user,
                          "updatedOn": stamp, "updatedBy": user, "updatedByName": user},
        });
        c.by_id.insert(id.clone(), c.items.len());
        c.items.push(record);
        id
    }

    /// Someone appends `text` to phone call `id`'s transcript in V2's UI just after the next
    /// client read it, so that client's write meets a 412 (once).
    pub fn edit_phone_call_after_next_read(&self, id: &str, text: &str) {
        *self.phone_call_traffic.edit_after_read.lock() = Some((id.to_string(), text.to_string()));
    }
}
