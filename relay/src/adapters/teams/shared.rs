//! The tracker's facts every instance needs, in the relay's adapter state store.
//!
//! Graph posts a call's notifications to one URL, whichever instance the platform's router
//! picks, while the rep's controls go out from the instance their widget talks to; a restarted
//! instance starts with an empty tracker. So before notifications are applied, and before a
//! control, the tracker is filled from the store; what a notification or a control changed is
//! written back. Records (keys of the `teams` space):
//!
//! - `call:{chain}`: per Graph call id of the relay's call, `leg:{id}` (the leg as JSON),
//!   `target:{id}` (where our transfer sent it), `declined:{id}`;
//! - `graph:{id}`: `chain`, the relay's call a Graph call id belongs to;
//! - `seen:{chain}`: the bot told of this chain (its call record adds nothing);
//! - `pending:{colleague user}`: per consulting rep's user id, the chain consulted on; taken
//!   (removed) by the instance whose notification turns it into the colleague's leg;
//! - `presence:{user}` (presence mode): per presence call of the user that ended, its rep and
//!   times; taken by the instance whose call record amends it.

use parking_lot::Mutex;

use serde_json::Value;

use super::mapping::{self, LegInfo, PendingConsult, Tracker};
use super::presence::{self, EndedCall, PresenceCall};
use crate::adapters::call_state::{AdapterState, decode};

fn tracker(tracker: &Mutex<Tracker>) -> parking_lot::MutexGuard<'_, Tracker> {
    tracker.lock()
}

/// Fills the tracker with what the store knows of the relay's call `chain`.
pub(super) async fn load_call(state: &AdapterState, into: &Mutex<Tracker>, chain: &str) {
    let record = state.read(&format!("call:{chain}")).await;
    if record.is_empty() {
        return;
    }
    let mut tracker = tracker(into);
    for (field, value) in record {
        if let Some(id) = field.strip_prefix("leg:") {
            if let Some(leg) = decode::<LegInfo>(&value) {
                tracker.legs.insert(id.to_string(), leg);
            }
        } else if let Some(id) = field.strip_prefix("target:") {
            tracker.transfer_targets.insert(id.to_string(), value);
        } else if let Some(id) = field.strip_prefix("declined:") {
            tracker.declined.insert(id.to_string());
        }
    }
}

/// Before comms notifications are applied: the calls they are of, and a consultation another
/// instance asked for that one of them starts.
pub(super) async fn before_notifications(
    state: &AdapterState,
    into: &Mutex<Tracker>,
    items: &[(String, Value)],
) {
    for (id, data) in items {
        if let Some(chain) = state.field(&format!("graph:{id}"), "chain").await {
            load_call(state, into, &chain).await;
            continue;
        }
        if tracker(into).legs.contains_key(id) {
            continue;
        }
        // A consultation is a colleague's incoming leg from the rep, or the rep's outgoing
        // call to the number consulted (kept under that number).
        let consulted = if data["direction"].as_str() == Some("outgoing") {
            data.pointer("/targets/0/identity/phone/id")
                .and_then(Value::as_str)
                .map(str::to_string)
        } else {
            mapping::rep_user(data)
        };
        let (Some(user), Some(source)) = (
            consulted,
            data.pointer("/source/identity/user/id")
                .and_then(Value::as_str)
                .map(str::to_lowercase),
        ) else {
            continue;
        };
        let pending_key = format!("pending:{user}");
        let Some(chain) = state.field(&pending_key, &source).await else {
            continue;
        };
        // Taken here, or by another instance the same moment: only the one that removed it
        // makes the colleague's leg part of the consulted call.
        if state.remove(&pending_key, &[&source]).await != 1 {
            continue;
        }
        load_call(state, into, &chain).await;
        let mut tracker = tracker(into);
        if !tracker
            .pending
            .iter()
            .any(|p| p.chain == chain && p.rep_user == source && p.colleague_user == user)
        {
            tracker.pending.push(PendingConsult {
                chain,
                rep_user: source,
                colleague_user: user,
            });
        }
    }
}

/// After comms notifications were applied: the legs they touched, for every instance.
pub(super) async fn after_notifications(
    state: &AdapterState,
    from: &Mutex<Tracker>,
    items: &[(String, Value)],
) {
    // Each touched leg, its call's own chain, and whether the tracker still counts the chain as
    // seen (it forgets a chain whose recording invitation was dropped: its record logs it).
    let touched: Vec<(String, LegInfo, Option<String>, bool)> = {
        let tracker = tracker(from);
        items
            .iter()
            .filter_map(|(id, data)| {
                let leg = tracker.legs.get(id)?.clone();
                let own = data["callChainId"]
                    .as_str()
                    .filter(|c| !c.is_empty())
                    .map(str::to_string);
                let seen = tracker.seen_chains.contains(&leg.chain);
                Some((id.clone(), leg, own, seen))
            })
            .collect()
    };
    for (id, leg, own, seen) in touched {
        state
            .write_json(&format!("call:{}", leg.chain), &format!("leg:{id}"), &leg)
            .await;
        state
            .write(&format!("graph:{id}"), &[("chain", &leg.chain)])
            .await;
        for chain in std::iter::once(&leg.chain).chain(own.as_ref()) {
            if seen {
                state
                    .write(&format!("seen:{chain}"), &[("seen", "1")])
                    .await;
            } else {
                state.remove(&format!("seen:{chain}"), &["seen"]).await;
            }
        }
    }
}

/// Whether any instance's bot was told of this chain.
pub(super) async fn seen(state: &AdapterState, chain: &str) -> bool {
    !state.read(&format!("seen:{chain}")).await.is_empty()
}

/// A control's note on a leg (`target` or `declined`), for the instance that hears its end.
pub(super) async fn note(state: &AdapterState, chain: &str, what: &str, id: &str, value: &str) {
    state
        .write(
            &format!("call:{chain}"),
            &[(&format!("{what}:{id}"), value)],
        )
        .await;
}

/// A consultation asked for, for the instance that hears its first notification.
pub(super) async fn consult_asked(state: &AdapterState, pending: &PendingConsult) {
    state
        .write(
            &format!("pending:{}", pending.colleague_user),
            &[(&pending.rep_user, &pending.chain)],
        )
        .await;
}

/// A consultation that was not placed after all.
pub(super) async fn consult_dropped(state: &AdapterState, colleague_user: &str, rep_user: &str) {
    state
        .remove(&format!("pending:{colleague_user}"), &[rep_user])
        .await;
}

/// A presence call as kept for its call record.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Ended {
    rep: String,
    started_ms: u64,
    ended_ms: u64,
}

/// A presence call ended: kept for the call record that will tell who was on it.
pub(super) async fn presence_ended(state: &AdapterState, ended: &EndedCall) {
    let kept = Ended {
        rep: ended.call.rep.clone(),
        started_ms: ended.call.started_ms().unwrap_or(ended.ended_ms),
        ended_ms: ended.ended_ms,
    };
    state
        .write_json(
            &format!("presence:{}", ended.user),
            &ended.call.call_id,
            &kept,
        )
        .await;
}

/// The ended presence call of `user` nearest a record's session (`start_ms`, `end_ms`), taken:
/// of two instances reading one record, one amends the call.
pub(super) async fn take_ended_presence(
    state: &AdapterState,
    user: &str,
    session: (u64, u64),
) -> Option<PresenceCall> {
    let key = format!("presence:{user}");
    let (_, call_id, rep) = state
        .read(&key)
        .await
        .into_iter()
        .filter_map(|(call_id, value)| {
            let kept = decode::<Ended>(&value)?;
            let gap = presence::distance(session, kept.started_ms, Some(kept.ended_ms))?;
            Some((gap, call_id, kept.rep))
        })
        .min_by_key(|(gap, ..)| *gap)?;
    (state.remove(&key, &[&call_id]).await == 1).then_some(PresenceCall { call_id, rep })
}
