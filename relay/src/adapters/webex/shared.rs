//! The tracker's facts every instance needs, in the relay's adapter state store.
//!
//! Webex posts a call's events to one URL, whichever instance the platform's router picks, while
//! the rep's controls go out from the instance their widget talks to: a consultation dialled on
//! one instance must be known as one where its events land, and a transfer target or a decline
//! noted by one must be known where the leg's end lands. So before a delivery is mapped the
//! tracker is filled from the store, and what it changed is written back. Records (keys of the
//! `webex` space):
//!
//! - `call:{call}`: per callId of the relay's call, its leg as JSON;
//! - `leg:{callId}`: `call` (the relay's call it is a leg of), `target` (where our transfer sent
//!   it), `declined`;
//! - `alias:{callSessionId}`: a consultation's session, the call it stands for (`call`,
//!   `rep_person`);
//! - `pending:{person}`: the consultations under way with this person as the consulting rep or
//!   the colleague, `{call}` -> the consultation as JSON;
//! - `held:{person}`: the relay's calls this person holds or talks on now (`{call}` -> `1`), so
//!   a call they place on the phone meanwhile is known as a consultation of one of them wherever
//!   it lands (also when it lands before the hold it follows).

use parking_lot::Mutex;

use serde_json::Value;

use super::mapping::{Alias, PendingConsult, SeenLeg, Source, Tracker};
use crate::adapters::call_state::{AdapterState, decode};

fn tracker(tracker: &Mutex<Tracker>) -> parking_lot::MutexGuard<'_, Tracker> {
    tracker.lock()
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The callId, callSessionId and person of a delivery or a listed call.
fn ids(body: &Value, source: Source) -> (String, String, String) {
    let (data, person, call_id) = match source {
        Source::Webhook => {
            let data = body.get("data").unwrap_or(&Value::Null);
            (data, text(body, "actorId"), text(data, "callId"))
        }
        Source::Snapshot => (body, text(body, "personId"), text(body, "id")),
    };
    let session = match text(data, "callSessionId") {
        "" => call_id,
        s => s,
    };
    (call_id.to_string(), session.to_string(), person.to_string())
}

/// Fills the tracker with the legs of the relay's call `call` and their notes.
pub(super) async fn load_call(state: &AdapterState, into: &Mutex<Tracker>, call: &str) {
    let record = state.read(&format!("call:{call}")).await;
    let mut legs = Vec::new();
    for (id, json) in record {
        if let Some(leg) = decode::<SeenLeg>(&json) {
            legs.push((id, leg));
        }
    }
    let mut notes = Vec::new();
    for (id, _) in &legs {
        notes.push((id.clone(), state.read(&format!("leg:{id}")).await));
    }
    let mut tracker = tracker(into);
    for (id, leg) in legs {
        tracker.legs.insert(id, leg);
    }
    for (id, note) in notes {
        if let Some(target) = note.get("target") {
            tracker.transfer_targets.insert(id.clone(), target.clone());
        }
        if note.contains_key("declined") {
            tracker.declined.insert(id);
        }
    }
}

/// Before a delivery is mapped: its leg's call, its session's alias, and the consultations
/// under way with its person.
pub(super) async fn before(
    state: &AdapterState,
    into: &Mutex<Tracker>,
    body: &Value,
    source: Source,
) {
    let (call_id, session, person) = ids(body, source);
    if call_id.is_empty() || person.is_empty() {
        return;
    }
    if let Some(call) = state.field(&format!("leg:{call_id}"), "call").await {
        load_call(state, into, &call).await;
        return;
    }
    let alias = state.read(&format!("alias:{session}")).await;
    if let (Some(call), Some(rep_person)) = (alias.get("call"), alias.get("rep_person")) {
        load_call(state, into, call).await;
        tracker(into).aliases.insert(
            session.clone(),
            Alias {
                call: call.clone(),
                rep_person: rep_person.clone(),
            },
        );
        return;
    }
    // A session not seen yet: a call of its own (perhaps known to another instance), the
    // second call of a consultation asked for there, or one placed on the phone while holding.
    load_call(state, into, &session).await;
    for call in state.read(&format!("held:{person}")).await.into_keys() {
        load_call(state, into, &call).await;
    }
    let pending: Vec<PendingConsult> = state
        .read(&format!("pending:{person}"))
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
            .any(|q| q.call == p.call && q.rep_person == p.rep_person)
        {
            tracker.pending.push(p);
        }
    }
}

/// After a delivery was mapped: its leg (and the call's ended legs a hand-over was told for,
/// perhaps just now, late), whether its rep holds the call, and its session's alias, for every
/// instance.
pub(super) async fn after(
    state: &AdapterState,
    from: &Mutex<Tracker>,
    body: &Value,
    source: Source,
) {
    let (call_id, session, person) = ids(body, source);
    let (legs, alias) = {
        let tracker = tracker(from);
        let call = tracker.legs.get(&call_id).map(|l| l.call.clone());
        let legs: Vec<(String, SeenLeg)> = tracker
            .legs
            .iter()
            .filter(|(id, l)| {
                // The call's other legs only where final and told as handed on: nothing changes
                // them any more, so this copy never undoes another instance's newer one.
                *id == &call_id
                    || (Some(&l.call) == call.as_ref() && l.state == "disconnected" && l.handed)
            })
            .map(|(id, l)| (id.clone(), l.clone()))
            .collect();
        (legs, tracker.aliases.get(&session).cloned())
    };
    for (id, leg) in &legs {
        state
            .write_json(&format!("call:{}", leg.call), id, leg)
            .await;
        if *id == call_id {
            state
                .write(&format!("leg:{call_id}"), &[("call", &leg.call)])
                .await;
            if !leg.consult_own && !person.is_empty() {
                let key = format!("held:{person}");
                if matches!(leg.state.as_str(), "held" | "connected") {
                    state.write(&key, &[(&leg.call, "1")]).await;
                } else {
                    state.remove(&key, &[&leg.call]).await;
                }
            }
        }
    }
    if let Some(alias) = alias {
        aliased(state, &session, &alias).await;
    }
}

/// A consultation's session, known from the dial's answer or its first event.
pub(super) async fn aliased(state: &AdapterState, session: &str, alias: &Alias) {
    state
        .write(
            &format!("alias:{session}"),
            &[("call", &alias.call), ("rep_person", &alias.rep_person)],
        )
        .await;
}

/// A control's note on a leg (`target` or `declined`), for the instance that hears its end;
/// None takes it back.
pub(super) async fn note(state: &AdapterState, call_id: &str, what: &str, value: Option<&str>) {
    let key = format!("leg:{call_id}");
    match value {
        Some(value) => state.write(&key, &[(what, value)]).await,
        None => {
            state.remove(&key, &[what]).await;
        }
    }
}

/// A consultation being dialled, for the instance its first events land on.
pub(super) async fn consult_asked(state: &AdapterState, pending: &PendingConsult) {
    for person in [&pending.rep_person, &pending.target_person] {
        state
            .write_json(&format!("pending:{person}"), &pending.call, pending)
            .await;
    }
}

/// The dial answered (its session is an alias now) or failed.
pub(super) async fn consult_settled(state: &AdapterState, pending: &PendingConsult) {
    for person in [&pending.rep_person, &pending.target_person] {
        state
            .remove(&format!("pending:{person}"), &[&pending.call])
            .await;
    }
}
