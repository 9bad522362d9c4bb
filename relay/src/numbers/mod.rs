//! Who is calling: E.164 normalization and the index from numbers to V2 records.

pub mod audit;
pub mod batch;
pub mod budget;
pub mod build;
pub mod choices;
pub mod coordination;
pub mod index;
pub mod live;
pub mod normalize;
pub mod rank;
pub mod redis_index;
pub mod refresh;
pub mod update;

pub use index::{IndexedRecord, MemoryIndex, NumberIndex};
pub use normalize::{DefaultRegion, InvalidNumber, Normalized, normalize, to_e164};
