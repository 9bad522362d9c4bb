//! Getting call changes to the rep's widgets: per-rep sequence numbers, a bounded replay
//! buffer (in memory or Redis), fan-out across relay instances, and the WebSocket session that
//! speaks the protocol.

pub mod hub;
pub mod redis_replay;
pub mod replay;
pub mod session;

pub use hub::{Hub, Pushed, Subscription};
