//! Building a tenant's number index by crawling V2, exactly as it would crawl a real tenant.
//!
//! V2 serves at most 999 records a page and refuses `$skip` of 10000 or more, so the crawl pages
//! by a sortable key (`$orderby=id` with `id gt '<last id>'`) instead of offsets: it reaches every
//! record of any tenant size.

use std::collections::HashSet;

use cti_protocol::ws::RecordKind;
use serde_json::Value;

use super::index::{Generation, IndexedRecord};
use super::normalize::{DefaultRegion, looks_like_e164, normalize};
use crate::v2::client::{Collection, V2Client, V2Error, quote};
use crate::v2::records::{CALLER_COLLECTIONS, indexed_record, phone_fields};

/// V2's largest page.
pub const PAGE_SIZE: usize = 999;

/// What a crawl saw, for logs and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BuildStats {
    pub records: usize,
    pub numbers: usize,
    /// Phone fields that could not be normalized (a data quality signal, not an error).
    pub unusable_numbers: usize,
}

/// Crawls every caller collection and returns the complete new generation.
pub async fn build_generation(
    client: &V2Client,
    region: &DefaultRegion,
) -> Result<(Generation, BuildStats), V2Error> {
    let mut generation = Generation::new();
    let mut stats = BuildStats::default();
    for (collection, kind) in CALLER_COLLECTIONS {
        crawl(client, collection, |record| {
            stats.records += 1;
            add_record(&mut generation, &mut stats, kind, record, region);
        })
        .await?;
    }
    stats.numbers = generation.len();
    for records in generation.values_mut() {
        super::index::rank(records);
    }
    Ok((generation, stats))
}

/// Pages through one collection by ascending id, handing each record to `visit`.
async fn crawl(
    client: &V2Client,
    collection: Collection,
    mut visit: impl FnMut(&Value),
) -> Result<(), V2Error> {
    let mut last_id: Option<String> = None;
    loop {
        let mut query = vec![
            ("$orderby", "id".to_string()),
            ("$top", PAGE_SIZE.to_string()),
        ];
        if let Some(last) = &last_id {
            query.push(("$filter", format!("id gt {}", quote(last))));
        }
        let page = client.list(collection, &query).await?;
        for record in &page {
            visit(record);
        }
        let next = page
            .last()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        match next {
            // A short page is the last one; a repeated id would loop forever on a broken server.
            Some(id) if page.len() == PAGE_SIZE && last_id.as_deref() != Some(id.as_str()) => {
                last_id = Some(id);
            }
            _ => return Ok(()),
        }
    }
}

fn add_record(
    generation: &mut Generation,
    stats: &mut BuildStats,
    kind: RecordKind,
    record: &Value,
    tenant_region: &DefaultRegion,
) {
    let Some(indexed) = indexed_record(kind, record) else {
        return;
    };
    let mut seen = HashSet::new();
    for field in phone_fields(kind, record) {
        let e164 = match e164_of(&field, tenant_region) {
            Some(e164) => e164,
            None => {
                stats.unusable_numbers += 1;
                continue;
            }
        };
        if seen.insert(e164.clone()) {
            generation
                .entry(e164)
                .or_default()
                .push(IndexedRecord::clone(&indexed));
        }
    }
}

/// The typed number normalized by us (with the address's country, else the tenant's region);
/// V2's own normalised value only when the typed one is missing or unusable.
fn e164_of(
    field: &crate::v2::records::PhoneField<'_>,
    tenant_region: &DefaultRegion,
) -> Option<String> {
    let region = field
        .country
        .and_then(|c| DefaultRegion::parse(c).ok())
        .unwrap_or_else(|| tenant_region.clone());
    field
        .formatted
        .and_then(|f| normalize(f, &region).ok())
        .map(|n| n.e164)
        .or_else(|| {
            field
                .normalised
                .filter(|n| looks_like_e164(n))
                .map(str::to_string)
        })
}
