//! The one place where the relay and the widget agree.
//!
//! Everything here is plain data with serde (and, behind the `signing` feature, one pure
//! computation): no I/O, no clocks, no allocation strategy beyond `String` and `Vec`, so the same
//! types compile for the relay (native) and the widget (wasm32). Each family has its own module:
//!
//! - [`event`]: the normalized telephony event every provider adapter produces, and
//!   ([`event::generic`]) the generic webhook's body, through which integrators feed any PBX into
//!   the relay.
//! - [`ws`]: the messages on the widget's WebSocket (`/v1/agent/ws`) and the call view they carry.
//! - [`lookup`]: the limits of a record search and of a new record for an unknown caller.
//! - [`host`]: the payloads the widget posts to the V2 host window (the V2 CTI channel).
//! - [`codes`]: the WebSocket close codes and the error codes of refused requests, written once
//!   for both ends.
//! - [`sign_in`]: how a sign-in hands its token to the widget and the admin page (the URL
//!   fragment), read the same way by both.
//! - `signature` (feature `signing`): the `X-CTI-Signature` HMAC the generic webhook and its call
//!   controls carry, shared by the relay and the simulated PBX.
//!
//! The JSON shapes are public interface (see the README's contract section); changing a field name
//! here is a breaking change for deployed widgets and integrations.

pub mod codes;
pub mod event;
pub mod host;
pub mod lookup;
pub mod sign_in;
pub mod signature;
pub mod ws;

pub use codes::ErrorCode;
pub use event::{Direction, EndReason, EventType, TelephonyEvent};
pub use ws::{
    ActivityState, ActivityStatus, CallCommand, CallState, CallView, ClientMessage, Consent,
    ConsultView, Control, Handover, Match, RecordKind, ServerMessage, WrapUp,
};
