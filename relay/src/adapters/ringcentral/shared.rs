//! The tracker's facts every instance needs, in the relay's adapter state store.
//!
//! RingCentral posts a session's notifications to one address, whichever instance the platform's
//! router picks, while the rep's controls go out from the instance their widget talks to: the
//! per-party `sequence` that tells a stale notification from a newer one must be known where the
//! next notification lands, a consultation asked for on one instance must be known as one where
//! its session's notifications land, and a transfer target or a decline noted by one must be known
//! where the party's end lands. So before a notification is mapped the tracker is filled from the
//! store, and what it changed is written back. Records (keys of the `ringcentral` space):
//!
//! - `session:{sid}`: per partyId, the party as last seen (its rep, status and sequence) as JSON;
//! - `alias:{sid}`: a consult session's `call` and `rep_extension`;
//!   `consults:{call}`: the consult sessions standing for the call (`{sid}` -> `1`);
//! - `facts:{call}`: the caller side of the call (`facts` -> JSON), shown on a consult's legs;
//! - `party:{pid}`: a control's notes on the party, `target` (where our transfer sent it) and
//!   `declined`;
//! - `pending:{extension}`: the consultations under way with this extension as the consulting rep
//!   or the colleague, `{call}` -> the consultation as JSON.

use parking_lot::Mutex;

use serde_json::Value;

use super::mapping::{Alias, CallFacts, PendingConsult, Seen, Tracker};
use crate::adapters::call_state::{AdapterState, decode};

fn tracker(tracker: &Mutex<Tracker>) -> parking_lot::MutexGuard<'_, Tracker> {
    tracker.lock()
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A notification's session id (or a session read back's `id`).
fn session_of(body: &Value) -> Option<String> {
    body.get("telephonySessionId")
        .or_else(|| body.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The extensions a notification's parties name (their own, and the ends they call between).
fn extensions_of(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for party in body
        .get("parties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for path in [
            "/extensionId",
            "/owner/extensionId",
            "/from/extensionId",
            "/to/extensionId",
        ] {
            if let Some(ext) = party.pointer(path).and_then(text)
                && !out.contains(&ext)
            {
                out.push(ext);
            }
        }
    }
    out
}

/// Fills the tracker with a session's parties (a copy newer than this instance's wins: a higher
/// sequence) and their notes.
async fn load_session(state: &AdapterState, into: &Mutex<Tracker>, sid: &str) {
    let stored: Vec<(String, Seen)> = state
        .read(&format!("session:{sid}"))
        .await
        .into_iter()
        .filter_map(|(pid, json)| decode::<Seen>(&json).map(|seen| (pid, seen)))
        .collect();
    let mut notes = Vec::new();
    for (pid, _) in &stored {
        notes.push((pid.clone(), state.read(&format!("party:{pid}")).await));
    }
    let mut tracker = tracker(into);
    for (pid, seen) in stored {
        let newer = match tracker.parties.get(&pid) {
            None => true,
            Some(known) => seen.sequence > known.sequence,
        };
        if newer {
            tracker.parties.insert(pid, seen);
        }
    }
    for (pid, note) in notes {
        if let Some(target) = note.get("target") {
            tracker.transfer_targets.insert(pid.clone(), target.clone());
        }
        if note.contains_key("declined") {
            tracker.declined.insert(pid);
        }
    }
}

/// Fills the tracker with the relay's call `call`: its own session, the consult sessions
/// standing for it, and its caller side.
pub(super) async fn load_call(state: &AdapterState, into: &Mutex<Tracker>, call: &str) {
    load_session(state, into, call).await;
    for sid in state.read(&format!("consults:{call}")).await.into_keys() {
        load_alias(state, into, &sid).await;
        load_session(state, into, &sid).await;
    }
    if let Some(facts) = state
        .field(&format!("facts:{call}"), "facts")
        .await
        .and_then(|json| decode::<CallFacts>(&json))
    {
        tracker(into).calls.entry(call.to_string()).or_insert(facts);
    }
}

/// The alias of a consult session, if one is stored; its call.
async fn load_alias(state: &AdapterState, into: &Mutex<Tracker>, sid: &str) -> Option<String> {
    let alias = state.read(&format!("alias:{sid}")).await;
    let (Some(call), Some(rep_extension)) = (alias.get("call"), alias.get("rep_extension")) else {
        return None;
    };
    tracker(into).aliases.insert(
        sid.to_string(),
        Alias {
            call: call.clone(),
            rep_extension: rep_extension.clone(),
        },
    );
    Some(call.clone())
}

/// Before a notification is mapped: its session (with the call it stands for), or, for a session
/// not seen yet, the consultations under way with its extensions.
pub(super) async fn before(state: &AdapterState, into: &Mutex<Tracker>, body: &Value) {
    let Some(sid) = session_of(body) else {
        return;
    };
    if let Some(call) = load_alias(state, into, &sid).await {
        load_call(state, into, &call).await;
        return;
    }
    load_call(state, into, &sid).await;
    let known = tracker(into).parties.values().any(|p| p.session == sid);
    if known {
        return;
    }
    for ext in extensions_of(body) {
        let pending: Vec<PendingConsult> = state
            .read(&format!("pending:{ext}"))
            .await
            .values()
            .filter_map(|json| decode(json))
            .collect();
        for p in pending {
            load_call(state, into, &p.call).await;
            let mut tracker = tracker(into);
            if !tracker
                .pending
                .iter()
                .any(|q| q.call == p.call && q.rep_extension == p.rep_extension)
            {
                tracker.pending.push(p);
            }
        }
    }
}

/// After a notification was mapped: its parties, the alias its session became, the call's caller
/// side, and a consultation it settled, for every instance.
pub(super) async fn after(state: &AdapterState, from: &Mutex<Tracker>, body: &Value) {
    let Some(sid) = session_of(body) else {
        return;
    };
    let pids: Vec<String> = body
        .get("parties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let (parties, alias, call, facts, pending) = {
        let tracker = tracker(from);
        let parties: Vec<(String, Seen)> = pids
            .iter()
            .filter_map(|pid| tracker.parties.get(pid).map(|s| (pid.clone(), s.clone())))
            .collect();
        let alias = tracker.aliases.get(&sid).cloned();
        let call = tracker.call_of(&sid);
        let facts = tracker.calls.get(&call).cloned();
        (parties, alias, call, facts, tracker.pending.clone())
    };
    for (pid, seen) in &parties {
        state.write_json(&format!("session:{sid}"), pid, seen).await;
    }
    if let Some(alias) = alias {
        aliased(state, &sid, &alias).await;
        // The consultation it was is settled: no other session takes it.
        let settled = PendingConsult {
            call: alias.call.clone(),
            rep_extension: alias.rep_extension.clone(),
            target_extension: String::new(),
        };
        if !pending
            .iter()
            .any(|p| p.call == settled.call && p.rep_extension == settled.rep_extension)
        {
            for ext in extensions_of(body) {
                state
                    .remove(&format!("pending:{ext}"), &[&settled.call])
                    .await;
            }
        }
    }
    if let Some(facts) = facts {
        state
            .write_json(&format!("facts:{call}"), "facts", &facts)
            .await;
    }
}

/// A consult session standing for a call, known from the call-out's answer or its first party.
pub(super) async fn aliased(state: &AdapterState, sid: &str, alias: &Alias) {
    state
        .write(
            &format!("alias:{sid}"),
            &[
                ("call", &alias.call),
                ("rep_extension", &alias.rep_extension),
            ],
        )
        .await;
    state
        .write(&format!("consults:{}", alias.call), &[(sid, "1")])
        .await;
}

/// A control's note on a party (`target` or `declined`), for the instance that hears its end.
pub(super) async fn note(state: &AdapterState, pid: &str, what: &str, value: &str) {
    state.write(&format!("party:{pid}"), &[(what, value)]).await;
}

/// A consultation being dialled, for the instance its first notification lands on.
pub(super) async fn consult_asked(state: &AdapterState, pending: &PendingConsult) {
    for ext in [&pending.rep_extension, &pending.target_extension] {
        state
            .write_json(&format!("pending:{ext}"), &pending.call, pending)
            .await;
    }
}

/// The call-out answered (its session is an alias now) or failed.
pub(super) async fn consult_settled(state: &AdapterState, pending: &PendingConsult) {
    for ext in [&pending.rep_extension, &pending.target_extension] {
        state
            .remove(&format!("pending:{ext}"), &[&pending.call])
            .await;
    }
}
