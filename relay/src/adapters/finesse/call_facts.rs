//! The tracker's facts the rep's controls need, in the relay's adapter state store.
//!
//! One instance holds the XMPP connection and applies every Dialog update; the rep's controls go
//! out from the instance their widget talks to. So the holder writes which dialog carries each
//! rep's leg (and a consultation's dialog) where every instance reads it, and the controls write
//! what the holder must know when the leg ends (a transfer or a decline the rep asked for).
//! One record per call (`call:{call}` in the `finesse` space), fields per Finesse user:
//! `dialog:{user}`, `consult:{user}`, `consult_target:{user}`, `transfer:{user}`,
//! `decline:{user}`.

use super::Shared;
use super::mapping::Dialog;

fn key(call: &str) -> String {
    format!("call:{call}")
}

/// Before the holder applies a dialog: the transfers and declines asked for on its call.
pub(super) async fn before_update(shared: &Shared, dialog: &Dialog) {
    let call = dialog.call().to_string();
    let record = shared.call_state.read(&key(&call)).await;
    let mut tracker = shared.tracker();
    for (field, value) in record {
        if let Some(user) = field.strip_prefix("transfer:") {
            tracker.transfer_requested(&call, user, &value);
        } else if let Some(user) = field.strip_prefix("decline:") {
            tracker.decline_requested(&call, user);
        }
    }
}

/// After the holder applied a dialog of `user`: the dialogs their controls address.
pub(super) async fn after_update(shared: &Shared, user: &str, dialog: &Dialog) {
    let call = dialog.call().to_string();
    let (leg, consult) = {
        let tracker = shared.tracker();
        (
            tracker.dialog_of(&call, user),
            tracker.consult_of(&call, user),
        )
    };
    let mut set = Vec::new();
    let mut gone = Vec::new();
    let dialog_field = format!("dialog:{user}");
    let consult_field = format!("consult:{user}");
    let (transfer_field, decline_field) = (format!("transfer:{user}"), format!("decline:{user}"));
    if leg.is_none() {
        // The leg ended: what was asked for it is spent.
        gone.extend([transfer_field.as_str(), decline_field.as_str()]);
    }
    for (field, value) in [(&dialog_field, &leg), (&consult_field, &consult)] {
        match value {
            Some(value) => set.push((field.as_str(), value.as_str())),
            None => gone.push(field.as_str()),
        }
    }
    shared.call_state.write(&key(&call), &set).await;
    shared.call_state.remove(&key(&call), &gone).await;
}

/// One of the call's facts for `user` (`dialog`, `consult`, `consult_target`).
pub(super) async fn fact(shared: &Shared, call: &str, what: &str, user: &str) -> Option<String> {
    shared
        .call_state
        .field(&key(call), &format!("{what}:{user}"))
        .await
}

/// A control's note for the holder (`transfer`, `decline`, `consult_target`); None takes it
/// back.
pub(super) async fn note(shared: &Shared, call: &str, what: &str, user: &str, value: Option<&str>) {
    let field = format!("{what}:{user}");
    match value {
        Some(value) => {
            shared
                .call_state
                .write(&key(call), &[(&field, value)])
                .await
        }
        None => {
            shared.call_state.remove(&key(call), &[&field]).await;
        }
    }
}
