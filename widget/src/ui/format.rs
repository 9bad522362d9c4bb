//! How a call reads on the card: its number, state, end and talk time, and record kinds.
//!
//! Plain functions, so the card's wording is tested without rendering; words are message ids for
//! [`I18n`], and times and amounts are written by [`crate::intl`].

use cti_protocol::{CallState, CallView, Direction, EndReason, RecordKind};

use crate::i18n::I18n;
use crate::intl::{duration, parse_rfc3339_ms};

/// The remote party's number as people read it, with the extension if the provider gave one.
pub fn remote_number(call: &CallView, i18n: &I18n) -> String {
    let number = if call.remote_display.trim().is_empty() {
        call.remote()
    } else {
        call.remote_display.as_str()
    };
    match call.remote_extension.as_deref().map(str::trim) {
        Some(extension) if !extension.is_empty() => i18n.t_args(
            "number-extension",
            &[("number", number.into()), ("extension", extension.into())],
        ),
        _ => number.to_owned(),
    }
}

/// The `data-state` of the call-state element: the wire name of the state.
pub fn state_name(state: CallState) -> &'static str {
    match state {
        CallState::Ringing => "ringing",
        CallState::Connected => "connected",
        CallState::Held => "held",
        CallState::Transferred => "transferred",
        CallState::Ended => "ended",
        _ => "unknown",
    }
}

/// The message id of the words for the state at the top of the card.
pub fn state_label(state: CallState, direction: Direction) -> &'static str {
    match (state, direction) {
        (CallState::Ringing, Direction::Inbound) => "state-ringing-inbound",
        (CallState::Ringing, Direction::Outbound) => "state-ringing-outbound",
        (CallState::Connected, _) => "state-connected",
        (CallState::Held, _) => "state-held",
        (CallState::Transferred, _) => "state-transferred",
        (CallState::Ended, _) => "state-ended",
        _ => "state-other",
    }
}

/// The message id of why the call ended, as the summary says it.
pub fn end_reason(call: &CallView) -> &'static str {
    ended_as(call.state, call.end_reason)
}

/// The message id of a call that ended in `state` for `reason` (the summary's and the
/// history's words).
pub fn ended_as(state: CallState, reason: Option<EndReason>) -> &'static str {
    if state == CallState::Transferred {
        return "end-transferred";
    }
    match reason {
        Some(EndReason::Completed) => "end-completed",
        Some(EndReason::Missed) => "end-missed",
        Some(EndReason::Declined) => "end-declined",
        Some(EndReason::Failed) => "end-failed",
        _ => "end-other",
    }
}

/// The message id of a record kind's name.
pub fn kind_label(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Contact => "kind-contact",
        RecordKind::IndividualCustomer => "kind-individual-customer",
        RecordKind::Account => "kind-account",
        _ => "kind-other",
    }
}

/// The talk time of a finished call, or `None` if it was never answered.
pub fn talk_time(call: &CallView) -> Option<String> {
    let answered = parse_rfc3339_ms(call.answered_at.as_deref()?)?;
    let ended = parse_rfc3339_ms(call.ended_at.as_deref()?)?;
    Some(duration(ended - answered))
}

/// An id for `aria-labelledby`, safe whatever characters the provider put in its call id.
pub(crate) fn heading_id(call_id: &str) -> String {
    let safe: String = call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("caller-{safe}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Every id the card chooses from a state, an end reason or a record kind exists in every
    /// language (the source scan in `i18n` only sees literal ids).
    #[wasm_bindgen_test]
    fn every_chosen_id_is_translated() {
        use crate::i18n::{Lang, message_ids};
        let mut ids = Vec::new();
        for state in [
            CallState::Ringing,
            CallState::Connected,
            CallState::Held,
            CallState::Transferred,
            CallState::Ended,
        ] {
            for direction in [Direction::Inbound, Direction::Outbound] {
                ids.push(state_label(state, direction));
            }
        }
        for reason in [
            None,
            Some(EndReason::Completed),
            Some(EndReason::Missed),
            Some(EndReason::Declined),
            Some(EndReason::Failed),
        ] {
            let mut call = crate::fixtures::call("c1", CallState::Ended);
            call.end_reason = reason;
            ids.push(end_reason(&call));
        }
        ids.push(end_reason(&crate::fixtures::call(
            "c1",
            CallState::Transferred,
        )));
        for kind in [
            RecordKind::Contact,
            RecordKind::IndividualCustomer,
            RecordKind::Account,
        ] {
            ids.push(kind_label(kind));
        }
        for lang in Lang::ALL {
            let known = message_ids(lang.resource()).expect("parses");
            for id in &ids {
                assert!(
                    known.iter().any(|k| k == id),
                    "{}.ftl lacks {id}",
                    lang.code()
                );
            }
        }
    }
}
