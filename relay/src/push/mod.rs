//! Getting call changes to the rep's widgets: per-rep sequence numbers, a bounded replay
//! buffer, and the WebSocket session that speaks the protocol.

pub mod hub;
pub mod session;

pub use hub::{Hub, Pushed, Subscription};
