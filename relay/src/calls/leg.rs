//! A rep's leg of a call as the relay keeps it.
//!
//! This is the stored model, apart from the widget's [`CallView`]: the view is built from a leg
//! at the moment it is published ([`Leg::view`]), joined with where the call's activity stands,
//! which the activity outbox owns. So a field the widget gains does not change what is stored,
//! and the activity writer never edits legs.
//!
//! The JSON field names are those the view had when legs were stored as views, so legs stored
//! by an earlier relay still read (their activity status is ignored: the outbox has it).

use cti_protocol::event::{Direction, EndReason};
use cti_protocol::ws::{
    ActivityStatus, CallState, CallView, Consent, ConsultView, Handover, Match, WrapUp,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    /// The provider's call id, shared by every leg of the call.
    pub id: String,
    pub direction: Direction,
    pub state: CallState,
    /// E.164 when the number could be normalized, otherwise as the provider sent it.
    pub from: String,
    pub to: String,
    /// The remote number formatted for people.
    #[serde(default)]
    pub remote_display: String,
    #[serde(default)]
    pub remote_extension: Option<String>,
    /// The rep whose leg this is.
    pub agent: String,
    /// Every record carrying the remote number, best first for this rep.
    pub matches: Vec<Match>,
    /// The call's record: the first match, or the rep's choice.
    pub pop: Option<Match>,
    /// RFC 3339 times from the provider's clock.
    pub started_at: String,
    #[serde(default)]
    pub answered_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub end_reason: Option<EndReason>,
    /// When the relay received the leg's first event (Unix ms): ring-to-pop is measured from
    /// it, and the oldest finished legs are forgotten first.
    #[serde(default)]
    pub received_at_ms: u64,
    #[serde(default)]
    pub recording_url: Option<String>,
    /// Who handed the call to this rep, with their notes.
    #[serde(default)]
    pub handover: Option<Handover>,
    /// The colleague this rep is consulting, and how far their leg is.
    #[serde(default)]
    pub consult: Option<ConsultView>,
    /// The rep's after-call work.
    #[serde(default)]
    pub wrap_up: AfterCall,
    /// How often the call came back to this rep after their leg had ended.
    #[serde(default)]
    pub returns: u32,
    /// When the leg was last written (Unix ms, the relay's clock; 0 before it was stored), so the
    /// newer of two copies is told apart after a Redis outage (`calls::fallback`).
    #[serde(default)]
    pub updated_ms: u64,
    /// The leg's revision in its store (0 before it was first stored): a save is taken only over
    /// the revision the leg was read at, so two instances changing one call at once never
    /// overwrite each other's change (`CallStore::save`).
    #[serde(default)]
    pub rev: u64,
    /// Built from a mid-call event while the shared store could not be read (a Redis outage), so
    /// without what the call knew before (the answer, the notes): such a leg does not make the
    /// call's activity, which it could only downgrade, until the store answers again and the leg
    /// is completed from its copy (`calls::fallback`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub without_history: bool,
    /// The call's first event here was not its ring (an `ended` redelivered or replayed after a
    /// restart that forgot the call, a provider that reports mid-call): what the call was before
    /// is unknown, so its log may know less than the activity V2 already holds (review F5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_mid_call: bool,
}

/// The rep's notes, outcome and the recording consent on their leg.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterCall {
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub disposition: Option<String>,
    #[serde(default)]
    pub consent: Option<Consent>,
}

impl Leg {
    /// The other party's number: the caller on an inbound call, the called on an outbound one.
    pub fn remote(&self) -> &str {
        match self.direction {
            Direction::Inbound => &self.from,
            Direction::Outbound => &self.to,
        }
    }

    /// What the widget shows of this leg, with the call's activity where it stands.
    pub fn view(&self, activity: Option<ActivityStatus>) -> CallView {
        CallView {
            id: self.id.clone(),
            direction: self.direction,
            state: self.state,
            from: self.from.clone(),
            to: self.to.clone(),
            remote_display: self.remote_display.clone(),
            remote_extension: self.remote_extension.clone(),
            agent: self.agent.clone(),
            matches: self.matches.clone(),
            pop: self.pop.clone(),
            started_at: self.started_at.clone(),
            answered_at: self.answered_at.clone(),
            ended_at: self.ended_at.clone(),
            end_reason: self.end_reason,
            received_at_ms: self.received_at_ms,
            recording_url: self.recording_url.clone(),
            handover: self.handover.clone(),
            consult: self.consult.clone(),
            wrap_up: WrapUp {
                notes: self.wrap_up.notes.clone(),
                disposition: self.wrap_up.disposition.clone(),
                activity,
                consent: self.wrap_up.consent.clone(),
            },
            returns: self.returns,
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A ringing inbound leg with nothing matched yet.
    pub(crate) fn ringing(id: &str, agent: &str) -> Leg {
        Leg {
            id: id.into(),
            direction: Direction::Inbound,
            state: CallState::Ringing,
            from: "+41441234567".into(),
            to: "+41449990000".into(),
            remote_display: "+41 44 123 45 67".into(),
            remote_extension: None,
            agent: agent.into(),
            matches: Vec::new(),
            pop: None,
            started_at: "2026-12-02T10:00:00Z".into(),
            answered_at: None,
            ended_at: None,
            end_reason: None,
            received_at_ms: 0,
            recording_url: None,
            handover: None,
            consult: None,
            wrap_up: AfterCall::default(),
            returns: 0,
            updated_ms: 0,
            rev: 0,
            without_history: false,
            from_mid_call: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leg_stored_as_a_view_by_an_earlier_relay_still_reads() {
        let mut stored = fixtures::ringing("c-1", "alice").view(Some(ActivityStatus::pending()));
        stored.wrap_up.notes = "call back".into();
        let json = serde_json::to_string(&stored).expect("serializes");
        let leg: Leg = serde_json::from_str(&json).expect("reads as a leg");
        assert_eq!(leg.wrap_up.notes, "call back");
        assert_eq!(leg.view(None).wrap_up.activity, None);
    }

    #[test]
    fn the_view_carries_the_activity_it_is_given() {
        let leg = fixtures::ringing("c-1", "alice");
        let view = leg.view(Some(ActivityStatus::pending()));
        assert_eq!(view.wrap_up.activity, Some(ActivityStatus::pending()));
        assert_eq!(view.remote(), leg.remote());
    }
}
