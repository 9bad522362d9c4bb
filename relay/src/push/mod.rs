//! Getting call changes to the rep's widgets: per-rep sequence numbers, a bounded replay
//! buffer (in memory or Redis) and fan-out across relay instances. The conversation with the
//! widget itself is `agent`'s; this module depends on nothing above it.

pub mod fanout;
pub mod hub;
pub mod redis_replay;
pub mod replay;

pub use fanout::{Fanout, FanoutState};
pub use hub::{Hub, Live, LiveEnd, LiveMessage, Pushed, Subscription};
