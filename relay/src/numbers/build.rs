//! Building a tenant's number index by crawling V2, exactly as it would crawl a real tenant.
//!
//! V2 serves at most 999 records a page and refuses `$skip` of 10000 or more, so the crawl pages
//! by a sortable key (`$orderby=id` with `id gt '<last id>'`) instead of offsets: it reaches every
//! record of any tenant size. Besides the numbers, the crawl gathers what ranking several matches
//! needs (owners, open opportunities, latest calls), so ranking costs no request at ring time.

use std::collections::{HashMap, HashSet};

use cti_protocol::ws::RecordKind;
use serde_json::Value;

use super::budget::{BudgetExhausted, DailyBudget};
use super::index::{Generation, IndexedRecord};
use super::normalize::{DefaultRegion, looks_like_e164, to_e164};
use crate::v2::client::{Collection, V2Client, V2Error, quote};
use crate::v2::records::{self, CALLER_COLLECTIONS, caller_record, phone_fields};

/// V2's largest page.
pub const PAGE_SIZE: usize = 999;

/// A page answered 429 is retried after V2's Retry-After when that is at most this long…
const MAX_PAGE_WAIT_S: u64 = 60;
/// …and at most this often per crawl; past either, the crawl fails and says why.
const MAX_PAGE_RETRIES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    V2(#[from] V2Error),
    #[error(transparent)]
    Budget(#[from] BudgetExhausted),
}

impl BuildError {
    /// How long V2 or the budget asks us to wait, in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            BuildError::V2(V2Error::Status { retry_after, .. }) => *retry_after,
            BuildError::V2(_) => None,
            BuildError::Budget(b) => Some(b.renews_in_s),
        }
    }
}

/// What a crawl needs to know about the tenant.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub region: DefaultRegion,
    /// Calls that started at or after this RFC 3339 instant count as an account's latest
    /// activity; None reads no calls (ranking then skips that rule's information).
    pub activity_since: Option<String>,
}

/// What a crawl saw, for logs and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BuildStats {
    pub records: usize,
    pub numbers: usize,
    /// Phone fields that could not be normalized (a data quality signal, not an error).
    pub unusable_numbers: usize,
    pub requests: usize,
}

/// Per account: who owns it, how many open opportunities it has, when it was last called.
#[derive(Debug, Default, Clone)]
pub struct AccountSignals {
    owners: HashMap<String, String>,
    open_opportunities: HashMap<String, u32>,
    latest_call: HashMap<String, String>,
}

impl AccountSignals {
    /// Fills in what ranking reads: a contact inherits its account's owner when it has none.
    pub fn apply(&self, record: &mut IndexedRecord) {
        let Some(account) = record.account.as_ref().map(|a| a.id.clone()) else {
            return;
        };
        if record.owner_id.is_none() {
            record.owner_id = self.owners.get(&account).cloned();
        }
        record.open_opportunities = self.open_opportunities.get(&account).copied().unwrap_or(0);
        record.last_activity = self.latest_call.get(&account).cloned();
    }

    fn note_call(&mut self, call: &Value) {
        if let Some((account, start)) = records::call_account_and_start(call) {
            let latest = self.latest_call.entry(account.to_string()).or_default();
            if start > latest.as_str() {
                *latest = start.to_string();
            }
        }
    }
}

/// Crawls every caller collection and returns the complete new generation.
pub async fn build_generation(
    client: &V2Client,
    options: &BuildOptions,
    budget: &DailyBudget,
) -> Result<(Generation, BuildStats), BuildError> {
    let mut generation = Generation::new();
    let mut stats = BuildStats::default();
    let mut signals = AccountSignals::default();

    stats.requests += crawl(
        client,
        Collection::Opportunities,
        Some(records::OPEN_OPPORTUNITY_FILTER.into()),
        budget,
        |opportunity| {
            if let Some(account) = records::opportunity_account(opportunity) {
                *signals
                    .open_opportunities
                    .entry(account.to_string())
                    .or_default() += 1;
            }
        },
    )
    .await?;
    if let Some(since) = &options.activity_since {
        stats.requests += crawl(
            client,
            Collection::PhoneCalls,
            Some(records::calls_since_filter(since)),
            budget,
            |call| signals.note_call(call),
        )
        .await?;
    }
    // Accounts come first, so contacts find their account's owner.
    for (collection, kind) in CALLER_COLLECTIONS {
        stats.requests += crawl(client, collection, None, budget, |record| {
            stats.records += 1;
            if kind == RecordKind::Account
                && let (Some(id), Some(owner)) = (
                    record.get("id").and_then(Value::as_str),
                    records::owner_id(record),
                )
            {
                signals.owners.insert(id.to_string(), owner.to_string());
            }
            let entry = entry_of(kind, record, &options.region);
            stats.unusable_numbers += entry.unusable;
            if let Some(mut indexed) = entry.record {
                signals.apply(&mut indexed);
                for number in entry.numbers {
                    generation.entry(number).or_default().push(indexed.clone());
                }
            }
        })
        .await?;
    }
    stats.numbers = generation.len();
    Ok((generation, stats))
}

/// Every employee's e-mail address (lower case) with their id: how a signed-in rep is recognised
/// as a record's owner.
pub async fn employees(
    client: &V2Client,
    budget: &DailyBudget,
) -> Result<HashMap<String, String>, BuildError> {
    let mut map = HashMap::new();
    crawl(client, Collection::Employees, None, budget, |employee| {
        if let Some((email, id)) = records::employee_email_and_id(employee) {
            map.insert(email.to_lowercase(), id.to_string());
        }
    })
    .await?;
    Ok(map)
}

/// Pages through one collection by ascending id, handing each record to `visit`; returns the
/// number of requests made.
pub async fn crawl(
    client: &V2Client,
    collection: Collection,
    filter: Option<String>,
    budget: &DailyBudget,
    mut visit: impl FnMut(&Value),
) -> Result<usize, BuildError> {
    let mut last_id: Option<String> = None;
    let mut requests = 0;
    let mut throttled = 0;
    loop {
        let mut query = vec![
            ("$orderby", "id".to_string()),
            ("$top", PAGE_SIZE.to_string()),
        ];
        let after = last_id
            .as_ref()
            .map(|last| format!("id gt {}", quote(last)));
        match (&filter, after) {
            (Some(f), Some(a)) => query.push(("$filter", format!("({f}) and {a}"))),
            (Some(f), None) => query.push(("$filter", f.clone())),
            (None, Some(a)) => query.push(("$filter", a)),
            (None, None) => {}
        }
        let page = loop {
            budget.spend()?;
            requests += 1;
            match client.list(collection, &query).await {
                // A crawl is long; resume it after V2's Retry-After instead of starting over.
                Err(V2Error::Status {
                    status: 429,
                    retry_after: Some(wait),
                    ..
                }) if wait <= MAX_PAGE_WAIT_S && throttled < MAX_PAGE_RETRIES => {
                    throttled += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                }
                other => break other?,
            }
        };
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
            _ => return Ok(requests),
        }
    }
}

/// What one V2 record contributes to the index.
#[derive(Debug, Default)]
pub struct Entry {
    /// None when V2 sent a record without an id.
    pub record: Option<IndexedRecord>,
    /// Its distinct E.164 numbers.
    pub numbers: Vec<String>,
    /// Phone fields that could not be normalized.
    pub unusable: usize,
}

pub fn entry_of(kind: RecordKind, record: &Value, tenant_region: &DefaultRegion) -> Entry {
    let Some(indexed) = caller_record(kind, record).map(IndexedRecord::from) else {
        return Entry::default();
    };
    let mut entry = Entry {
        record: Some(indexed),
        ..Entry::default()
    };
    let mut seen = HashSet::new();
    for field in phone_fields(kind, record) {
        match e164_of(&field, tenant_region) {
            Some(e164) => {
                if seen.insert(e164.clone()) {
                    entry.numbers.push(e164);
                }
            }
            None => entry.unusable += 1,
        }
    }
    entry
}

/// The signals of one account, read live (for an incremental update, where no crawl ran).
pub async fn account_signals(
    client: &V2Client,
    account_id: &str,
    activity_since: Option<&str>,
    budget: &DailyBudget,
) -> Result<AccountSignals, BuildError> {
    let mut signals = AccountSignals::default();
    budget.spend()?;
    if let Some(account) = client.get(Collection::Accounts, account_id).await?
        && let Some(owner) = records::owner_id(&account.record)
    {
        signals
            .owners
            .insert(account_id.to_string(), owner.to_string());
    }
    budget.spend()?;
    let open = client
        .list(
            Collection::Opportunities,
            &[
                ("$filter", records::open_opportunities_filter(account_id)),
                ("$select", "id".into()),
                ("$top", PAGE_SIZE.to_string()),
            ],
        )
        .await?;
    signals
        .open_opportunities
        .insert(account_id.to_string(), open.len() as u32);
    if let Some(since) = activity_since {
        budget.spend()?;
        let (filter, orderby) = records::interactions_query(account_id);
        let calls = client
            .list(
                Collection::PhoneCalls,
                &[
                    (
                        "$filter",
                        format!("{filter} and {}", records::calls_since_filter(since)),
                    ),
                    ("$orderby", orderby),
                    ("$top", "1".into()),
                ],
            )
            .await?;
        calls.iter().for_each(|c| signals.note_call(c));
    }
    Ok(signals)
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
        .and_then(|f| to_e164(f, &region).ok())
        .or_else(|| {
            field
                .normalised
                .filter(|n| looks_like_e164(n))
                .map(str::to_string)
        })
}
