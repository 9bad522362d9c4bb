//! From a telephony event to a call on the rep's screen.
//!
//! [`ingest()`] applies an event to its call leg (idempotent, order-tolerant) and publishes the new
//! view to the rep; [`matching`] finds who is calling on a leg's first event; [`enrich`] fills in
//! the caller card's details from V2 without holding up the pop; [`legs`] is the one way a leg
//! changes outside an event (lock, load, change, queue, save, publish); [`amend()`] applies a
//! provider's later, exacter account of a leg (a call record's times and parties); [`links`] feeds a
//! provider's long-lived link into the same ingest. The pipeline calls down into adapters,
//! calls, numbers, activity and push; only the routes, the wiring and the agent conversation
//! call it.

pub mod amend;
pub mod enrich;
pub mod ingest;
pub mod legs;
pub mod links;
pub mod matching;

pub use amend::amend;
pub use ingest::{IngestError, Outcome, ingest};
pub use legs::LegError;
