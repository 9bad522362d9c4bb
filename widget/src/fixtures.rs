//! Values the unit tests build their cases from.

use cti_protocol::{CallState, CallView, Direction, Match, RecordKind};

/// An inbound call from a known contact, for the rep alice, in `state`.
pub(crate) fn call(id: &str, state: CallState) -> CallView {
    CallView {
        id: id.into(),
        direction: Direction::Inbound,
        state,
        from: "+41441234567".into(),
        to: "+41449990000".into(),
        remote_display: "+41 44 123 45 67".into(),
        remote_extension: None,
        agent: "alice@example.com".into(),
        matches: vec![Match {
            kind: RecordKind::Contact,
            id: "m1".into(),
            display_id: "1001".into(),
            name: "Anna Meier".into(),
            account: None,
            open_opportunities: vec![],
            last_interactions: vec![],
        }],
        pop: None,
        started_at: "2026-11-24T10:00:00Z".into(),
        answered_at: None,
        ended_at: None,
        end_reason: None,
        received_at_ms: 0,
        recording_url: None,
        handover: None,
        consult: None,
        wrap_up: Default::default(),
        returns: 0,
    }
}
