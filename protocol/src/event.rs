//! The normalized telephony event: what a provider's adapter tells the relay about one call leg.
//!
//! [`TelephonyEvent`] is the relay's own type and no wire format: a dedicated adapter may need it
//! to carry more, and that must not change what integrators send. The generic webhook's body,
//! which is public contract, is [`generic::Body`]; the enums below are shared by both.

pub mod generic;

use serde::{Deserialize, Serialize};

/// One thing that happened to a call at the telephony source.
///
/// Numbers are kept exactly as the provider sent them; the relay normalizes them with the
/// tenant's default region, because only the relay knows that region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelephonyEvent {
    /// Unique per event at the source: the idempotency key.
    pub id: String,
    /// The provider's call or session id.
    pub call_id: String,
    pub event_type: EventType,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    /// The rep this leg belongs to (the tenant's user id).
    pub agent: String,
    /// RFC 3339 timestamp from the source's clock.
    pub at: String,
    /// The receiving rep, for `transferred`.
    pub transfer_to: Option<String>,
    /// Why the call ended, for `ended`.
    pub reason: Option<EndReason>,
    pub recording_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventType {
    Ringing,
    Answered,
    Held,
    Resumed,
    Transferred,
    Ended,
}

impl EventType {
    /// Every accepted value, for error messages that tell the sender what would have worked.
    pub const ALL: &'static [&'static str] = &[
        "ringing",
        "answered",
        "held",
        "resumed",
        "transferred",
        "ended",
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    Completed,
    Missed,
    Declined,
    Failed,
}
