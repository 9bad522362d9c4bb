//! Calls: the legs the relay keeps, how provider events move them through their states, and
//! where they live.
//!
//! [`leg`] is the stored model (the widget's view is built from it when published); [`log`] is
//! what a finished call amounts to, whatever number of legs it had;
//! [`transitions`] is the pure state machine events drive; [`store`] and its Redis and fallback
//! implementations keep legs and the ids of applied events; [`consent`] decides where recording
//! needs the caller's consent; [`stripes`] serializes the changes to one call within a process
//! (across instances, a leg is saved only over the revision it was read at). Nothing here calls
//! up into the rest of the relay.

pub mod consent;
pub mod fallback;
pub mod leg;
pub mod log;
pub mod redis_store;
pub mod store;
pub mod stripes;
pub mod transitions;

pub use fallback::FallbackCallStore;
pub use leg::{AfterCall, Leg};
pub use redis_store::RedisCallStore;
pub use store::{CallStore, MemoryCallStore, StoreError};
pub use stripes::Stripes;
pub use transitions::{Transition, apply};
