//! Call sessions: how provider events move a call leg through its states, and where legs live.

pub mod consent;
pub mod fallback;
pub mod redis_store;
pub mod session;
pub mod store;

pub use fallback::FallbackCallStore;
pub use redis_store::RedisCallStore;
pub use session::{Transition, apply};
pub use store::{CallStore, MemoryCallStore, StoreError};
