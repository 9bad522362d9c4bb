//! Who is calling: E.164 normalization and the index from numbers to V2 records.

pub mod batch;
pub mod build;
pub mod index;
pub mod live;
pub mod normalize;
pub mod redis_index;
pub mod refresh;

pub use index::{IndexedRecord, MemoryIndex, NumberIndex};
pub use normalize::{DefaultRegion, InvalidNumber, Normalized, normalize};
