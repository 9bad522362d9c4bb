//! A record as the index keeps it: the one type every store, the build and the ranking share.
//!
//! Kept apart from the store trait so that the compact generation and the stores both take it
//! from below rather than from each other.

use cti_protocol::ws::{AccountRef, RecordKind};
use serde::{Deserialize, Serialize};

/// What the index keeps about a record: enough to show a caller card, and to rank several
/// matches, before V2 answers anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedRecord {
    pub kind: RecordKind,
    pub id: String,
    pub display_id: String,
    pub name: String,
    pub account: Option<AccountRef>,
    /// The V2 employee who owns the record (a contact: its account's owner).
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Open opportunities of the record's account, as of the last crawl.
    #[serde(default)]
    pub open_opportunities: u32,
    /// Start of the latest phone call on the record's account, RFC 3339 (sorts as text).
    #[serde(default)]
    pub last_activity: Option<String>,
}

impl From<crate::v2::records::CallerRecord> for IndexedRecord {
    /// A record as V2 described it, before any ranking signal is known.
    fn from(record: crate::v2::records::CallerRecord) -> Self {
        IndexedRecord {
            kind: record.kind,
            id: record.id,
            display_id: record.display_id,
            name: record.name,
            account: record.account,
            owner_id: record.owner_id,
            open_opportunities: 0,
            last_activity: None,
        }
    }
}
