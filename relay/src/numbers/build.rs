//! Building a tenant's number index by crawling V2, exactly as it would crawl a real tenant.
//!
//! V2 serves at most 999 records a page and refuses `$skip` of 10000 or more, so the crawl pages
//! by a sortable key (`$orderby=id` with `id gt '<last id>'`) instead of offsets: it reaches every
//! record of any tenant size. Besides the numbers, the crawl gathers what ranking several matches
//! needs (owners, open opportunities, latest calls), so ranking costs no request at ring time.
//!
//! What is published about paging is thin (see `docs/architecture.md`): 999 is a maximum SAP
//! says "can change", so a page shorter than asked proves nothing and only an empty page ends a
//! crawl. That V2 accepts `$orderby=id` and `id gt` on UUID keys is inferred; where it refuses
//! them the crawl falls back to `$skip`, which reaches only the first 10,000 records. A 429's
//! Retry-After is not documented either, so without one the crawl waits a back-off of its own
//! and asks for the same page again.
//!
//! The caller collections are the index; the ranking signals (open opportunities, latest
//! calls, employees) read fields nobody has confirmed, so they are best effort: a refusal is
//! reported in the build's stats and the index is built without them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cti_protocol::ws::RecordKind;
use serde_json::Value;

use super::budget::{BudgetExhausted, DailyBudget};
use super::generation::{AccountFacts, Generation, GenerationBuilder};
use super::normalize::{DefaultRegion, looks_like_e164, to_e164};
use super::record::IndexedRecord;
use crate::v2::client::{Collection, V2Client, V2Error, quote};
use crate::v2::records::{self, CALLER_COLLECTIONS, caller_record, phone_fields};

/// V2's largest page.
pub const PAGE_SIZE: usize = 999;

/// The largest `$skip` V2 accepts (practitioners report an error from 10,000 on).
pub const MAX_SKIP: usize = 9_999;

/// A page answered 429 is retried after V2's Retry-After when that is at most this long…
const MAX_PAGE_WAIT_S: u64 = 60;
/// …and at most this often in a row for one page; past either, the crawl fails and says why.
const MAX_PAGE_RETRIES: u32 = 6;
/// Without Retry-After, the first wait; it doubles with each 429 in a row for the same page.
const FIRST_THROTTLE_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    V2(#[from] V2Error),
    #[error(transparent)]
    Budget(#[from] BudgetExhausted),
    /// Keyset paging was refused and the collection holds more than `$skip` reaches.
    #[error(
        "{collection} holds more than the {reached} records $skip paging reaches, and V2 refused \
         keyset paging ($orderby=id, id gt): the index would be incomplete"
    )]
    SkipLimit {
        collection: &'static str,
        reached: usize,
    },
}

impl BuildError {
    /// How long V2 or the budget asks us to wait, in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            BuildError::V2(V2Error::Status { retry_after, .. }) => *retry_after,
            BuildError::V2(_) => None,
            BuildError::Budget(b) => Some(b.renews_in_s),
            BuildError::SkipLimit { .. } => None,
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
    /// Ranking signals V2 refused; the index was built without them.
    pub refused: Vec<SignalRefusal>,
}

/// A source of ranking signals, read besides the caller records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Opportunities,
    PhoneCalls,
    Employees,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Opportunities => "opportunities",
            Signal::PhoneCalls => "phone_calls",
            Signal::Employees => "employees",
        }
    }
}

/// V2 would not give a signal; `reason` is its answer, for `/readyz` and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRefusal {
    pub signal: Signal,
    pub reason: String,
}

/// Signals are best effort, except where waiting is the answer: a spent budget or a throttled
/// V2 fails the build (and it is retried later), anything else V2 says is a refusal.
pub(crate) fn best_effort<T>(
    signal: Signal,
    outcome: Result<T, BuildError>,
    refused: &mut Vec<SignalRefusal>,
) -> Result<Option<T>, BuildError> {
    match outcome {
        Ok(value) => Ok(Some(value)),
        Err(
            err @ (BuildError::Budget(_) | BuildError::V2(V2Error::Status { status: 429, .. })),
        ) => Err(err),
        Err(err) => {
            refused.push(SignalRefusal {
                signal,
                reason: err.to_string(),
            });
            Ok(None)
        }
    }
}

/// Per account: who owns it, how many open opportunities it has, when it was last called.
///
/// A build holds this for every account of the tenant while its new generation grows beside
/// the old one, so it is kept small: one entry per account keyed by the id's 16 bytes (V2's
/// ids are UUIDs), owners (a tenant's few employees) stored once.
#[derive(Debug, Default, Clone)]
pub struct AccountSignals {
    accounts: HashMap<AccountKey, Known>,
    owners: Vec<Box<str>>,
    owner_ids: HashMap<Box<str>, u32>,
}

/// An account id as [`AccountSignals`] keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AccountKey {
    Uuid([u8; 16]),
    /// An id that is not a UUID (never seen from V2; kept so that nothing is lost).
    Text(Box<str>),
}

impl AccountKey {
    fn of(id: &str) -> AccountKey {
        match uuid::Uuid::try_parse(id) {
            Ok(uuid) => AccountKey::Uuid(uuid.into_bytes()),
            Err(_) => AccountKey::Text(id.into()),
        }
    }
}

/// What is known of one account.
#[derive(Debug, Default, Clone)]
struct Known {
    /// Into [`AccountSignals::owners`].
    owner: Option<u32>,
    open_opportunities: u32,
    latest_call: Option<Box<str>>,
}

impl AccountSignals {
    /// Fills in what ranking reads: a contact inherits its account's owner when it has none.
    pub fn apply(&self, record: &mut IndexedRecord) {
        let Some(account) = record.account.as_ref() else {
            return;
        };
        let facts = self.facts(&account.id);
        if record.owner_id.is_none() {
            record.owner_id = facts.owner.map(str::to_string);
        }
        record.open_opportunities = facts.open_opportunities;
        record.last_activity = facts.last_activity.map(str::to_string);
    }

    /// What is known of `account`.
    pub fn facts(&self, account: &str) -> AccountFacts<'_> {
        let Some(known) = self.accounts.get(&AccountKey::of(account)) else {
            return AccountFacts::default();
        };
        AccountFacts {
            owner: known
                .owner
                .and_then(|i| self.owners.get(i as usize))
                .map(|o| &**o),
            open_opportunities: known.open_opportunities,
            last_activity: known.latest_call.as_deref(),
        }
    }

    fn known(&mut self, account: &str) -> &mut Known {
        self.accounts.entry(AccountKey::of(account)).or_default()
    }

    fn note_owner(&mut self, account: &str, owner: &str) {
        let index = match self.owner_ids.get(owner) {
            Some(&index) => index,
            None => {
                let Ok(index) = u32::try_from(self.owners.len()) else {
                    return;
                };
                self.owners.push(owner.into());
                self.owner_ids.insert(owner.into(), index);
                index
            }
        };
        self.known(account).owner = Some(index);
    }

    fn note_open_opportunity(&mut self, account: &str) {
        self.known(account).open_opportunities += 1;
    }

    fn note_call(&mut self, call: &Value) {
        if let Some((account, start)) = records::call_account_and_start(call) {
            let latest = &mut self.known(account).latest_call;
            if latest.as_deref().is_none_or(|l| start > l) {
                *latest = Some(start.into());
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
    let mut generation = GenerationBuilder::default();
    let mut stats = BuildStats::default();
    let mut signals = AccountSignals::default();

    // The callers first: they are the index, and nothing read after them can stop it being built.
    // Accounts come first among them, so contacts find their account's owner.
    for (collection, kind) in CALLER_COLLECTIONS {
        let select = records::caller_select(kind);
        stats.requests += crawl(client, collection, None, select, budget, |record| {
            stats.records += 1;
            if kind == RecordKind::Account
                && let (Some(id), Some(owner)) = (
                    record.get("id").and_then(Value::as_str),
                    records::owner_id(record),
                )
            {
                signals.note_owner(id, owner);
            }
            let entry = entry_of(kind, record, &options.region);
            stats.unusable_numbers += entry.unusable;
            if let Some(indexed) = entry.record
                && !entry.numbers.is_empty()
            {
                generation.add(indexed, &entry.numbers);
            }
        })
        .await?;
    }
    let open = crawl(
        client,
        Collection::Opportunities,
        Some(records::OPEN_OPPORTUNITY_FILTER.into()),
        Some(records::OPPORTUNITY_ACCOUNT_SELECT),
        budget,
        |opportunity| {
            if let Some(account) = records::opportunity_account(opportunity) {
                signals.note_open_opportunity(account);
            }
        },
    )
    .await;
    stats.requests += best_effort(Signal::Opportunities, open, &mut stats.refused)?.unwrap_or(0);
    if let Some(since) = &options.activity_since {
        let calls = crawl(
            client,
            Collection::PhoneCalls,
            Some(records::calls_since_filter(since)),
            Some(records::CALL_ACCOUNT_AND_START_SELECT),
            budget,
            |call| signals.note_call(call),
        )
        .await;
        stats.requests += best_effort(Signal::PhoneCalls, calls, &mut stats.refused)?.unwrap_or(0);
    }
    generation.fill_signals(|account| signals.facts(account));
    let generation = generation.finish();
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
    // Whole records: an employee's e-mail may sit outside the published `workplaceAddress`.
    crawl(
        client,
        Collection::Employees,
        None,
        None,
        budget,
        |employee| {
            if let Some((email, id)) = records::employee_email_and_id(employee) {
                map.insert(email.to_lowercase(), id.to_string());
            }
        },
    )
    .await?;
    Ok(map)
}

/// How a crawl asks for its next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// `$orderby=id`, and `id gt '<last>'` after the first page.
    Keyset { after: Option<String> },
    /// `$skip`, ordered by id when V2 took `$orderby=id` (it refused only `id gt`).
    Skip { skip: usize, ordered: bool },
}

/// What to do after a page of `len` records whose last id is `last`.
pub fn next_cursor(cursor: &Cursor, len: usize, last: Option<&str>) -> Option<Cursor> {
    // A page shorter than asked may be V2's own (smaller) cap; only an empty one is the end.
    if len == 0 {
        return None;
    }
    match cursor {
        Cursor::Keyset { after } => {
            let last = last?;
            // A repeated id would loop forever on a server that ignores the filter.
            (after.as_deref() != Some(last)).then(|| Cursor::Keyset {
                after: Some(last.to_string()),
            })
        }
        Cursor::Skip { skip, ordered } => Some(Cursor::Skip {
            skip: skip + len,
            ordered: *ordered,
        }),
    }
}

/// Where to go when V2 answered 400 to a keyset page: the first page refused `$orderby=id` (or
/// the crawl's own filter, which the unordered retry tells apart); a later one refused `id gt`.
pub fn fallback(cursor: &Cursor, seen: usize) -> Option<Cursor> {
    match cursor {
        Cursor::Keyset { after: None } => Some(Cursor::Skip {
            skip: 0,
            ordered: false,
        }),
        Cursor::Keyset { after: Some(_) } => Some(Cursor::Skip {
            skip: seen,
            ordered: true,
        }),
        Cursor::Skip { .. } => None,
    }
}

/// How long to wait before asking again for a page answered 429 for the `attempt`th time in a
/// row (1-based); None gives up (V2 asked for longer than a crawl waits, or too often).
pub fn throttle_wait(retry_after_s: Option<u64>, attempt: u32) -> Option<Duration> {
    if attempt > MAX_PAGE_RETRIES {
        return None;
    }
    match retry_after_s {
        Some(s) if s <= MAX_PAGE_WAIT_S => Some(Duration::from_secs(s)),
        Some(_) => None,
        None => Some(
            FIRST_THROTTLE_WAIT
                .saturating_mul(1 << (attempt - 1).min(6))
                .min(Duration::from_secs(MAX_PAGE_WAIT_S)),
        ),
    }
}

fn page_query(
    cursor: &Cursor,
    filter: Option<&str>,
    select: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut query = vec![("$top", PAGE_SIZE.to_string())];
    if let Some(select) = select {
        query.push(("$select", select.to_string()));
    }
    let mut after = None;
    match cursor {
        Cursor::Keyset { after: last } => {
            query.push(("$orderby", "id".into()));
            after = last.as_ref().map(|last| format!("id gt {}", quote(last)));
        }
        Cursor::Skip { skip, ordered } => {
            if *ordered {
                query.push(("$orderby", "id".into()));
            }
            if *skip > 0 {
                query.push(("$skip", skip.to_string()));
            }
        }
    }
    match (filter, after) {
        (Some(f), Some(a)) => query.push(("$filter", format!("({f}) and {a}"))),
        (Some(f), None) => query.push(("$filter", f.to_string())),
        (None, Some(a)) => query.push(("$filter", a)),
        (None, None) => {}
    }
    query
}

/// Pages through one collection (by ascending id where V2 allows), handing each record to
/// `visit`; returns the number of requests made.
///
/// With `select`, pages carry only those fields. A first page refused with it is asked for
/// again without it before paging falls back: `$select` is published, but a tenant may lack a
/// field the selection names (a schema change), and whole records still build the index.
///
/// The next page is asked for before the current one is visited, so V2 prepares and sends it
/// while this process normalizes the numbers of the one before: the crawl takes about the
/// longer of the two instead of their sum.
pub async fn crawl(
    client: &V2Client,
    collection: Collection,
    filter: Option<String>,
    mut select: Option<&str>,
    budget: &DailyBudget,
    mut visit: impl FnMut(&Value),
) -> Result<usize, BuildError> {
    let mut cursor = Cursor::Keyset { after: None };
    let mut requests = 0;
    let mut seen = 0;
    // A page received and not yet visited.
    let mut received: Vec<Value> = Vec::new();
    // Said once the fallback worked: a refusal of the crawl's own filter is not about paging.
    let mut refused_keyset: Option<V2Error> = None;
    let mut refused_select: Option<V2Error> = None;
    loop {
        if let Cursor::Skip { skip, .. } = cursor
            && skip > MAX_SKIP
        {
            return Err(BuildError::SkipLimit {
                collection: collection.path(),
                reached: skip,
            });
        }
        let query = page_query(&cursor, filter.as_deref(), select);
        let visited = std::mem::take(&mut received);
        let (fetched, ()) = tokio::join!(
            fetch_page(client, collection, &query, budget, &mut requests),
            async {
                visited.iter().for_each(&mut visit);
            }
        );
        let page = match fetched {
            Ok(page) => page,
            Err(BuildError::V2(err @ V2Error::Status { status: 400, .. }))
                if select.is_some() && cursor == (Cursor::Keyset { after: None }) =>
            {
                refused_select = Some(err);
                select = None;
                continue;
            }
            Err(BuildError::V2(err @ V2Error::Status { status: 400, .. })) => {
                // Refused without the selection too: the paging was the problem.
                refused_select = None;
                match fallback(&cursor, seen) {
                    Some(next) => {
                        refused_keyset = Some(err);
                        cursor = next;
                        continue;
                    }
                    None => return Err(err.into()),
                }
            }
            Err(err) => return Err(err),
        };
        if let Some(err) = refused_select.take() {
            tracing::warn!(
                %err, collection = collection.path(),
                "V2 refused the crawl's $select; reading whole records"
            );
        }
        if let Some(err) = refused_keyset.take() {
            tracing::warn!(
                %err, collection = collection.path(),
                "V2 refused keyset paging; falling back to $skip, which reaches only the first \
                 10,000 records"
            );
        }
        seen += page.len();
        let last = page
            .last()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str);
        match next_cursor(&cursor, page.len(), last) {
            Some(next) => {
                cursor = next;
                received = page;
            }
            None => {
                page.iter().for_each(&mut visit);
                return Ok(requests);
            }
        }
    }
}

/// One page, asked for again while V2 throttles within what a crawl waits.
async fn fetch_page(
    client: &V2Client,
    collection: Collection,
    query: &[(&'static str, String)],
    budget: &DailyBudget,
    requests: &mut usize,
) -> Result<Vec<Value>, BuildError> {
    let mut throttled = 0;
    loop {
        budget.spend()?;
        *requests += 1;
        match client.list(collection, query).await {
            // A crawl is long: wait and ask for the same page again instead of starting over.
            Err(V2Error::Status {
                status: 429,
                retry_after,
                ..
            }) if throttle_wait(retry_after, throttled + 1).is_some() => {
                throttled += 1;
                let wait = throttle_wait(retry_after, throttled).unwrap_or_default();
                tracing::info!(
                    collection = collection.path(),
                    wait_ms = wait.as_millis() as u64,
                    told = retry_after.is_some(),
                    "V2 throttled the crawl; resuming the page"
                );
                tokio::time::sleep(wait).await;
            }
            other => return Ok(other?),
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

/// The signals of one account, read live (for an incremental update, where no crawl ran), with
/// the signals V2 refused (best effort, as in a build).
pub async fn account_signals(
    client: &V2Client,
    account_id: &str,
    activity_since: Option<&str>,
    budget: &DailyBudget,
) -> Result<(AccountSignals, Vec<SignalRefusal>), BuildError> {
    let mut signals = AccountSignals::default();
    let mut refused = Vec::new();
    budget.spend()?;
    if let Some(account) = client.get(Collection::Accounts, account_id).await?
        && let Some(owner) = records::owner_id(&account.record)
    {
        signals.note_owner(account_id, owner);
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
        .await
        .map_err(BuildError::from);
    if let Some(open) = best_effort(Signal::Opportunities, open, &mut refused)? {
        signals.known(account_id).open_opportunities = open.len() as u32;
    }
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
            .await
            .map_err(BuildError::from);
        if let Some(calls) = best_effort(Signal::PhoneCalls, calls, &mut refused)? {
            calls.iter().for_each(|c| signals.note_call(c));
        }
    }
    Ok((signals, refused))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keyset(after: &str) -> Cursor {
        Cursor::Keyset {
            after: Some(after.into()),
        }
    }

    #[test]
    fn only_an_empty_page_ends_a_crawl() {
        let first = Cursor::Keyset { after: None };
        // 500 of the 999 asked: V2 may cap pages lower, so ask on.
        assert_eq!(next_cursor(&first, 500, Some("b")), Some(keyset("b")));
        assert_eq!(next_cursor(&keyset("b"), 0, None), None);
        assert_eq!(next_cursor(&keyset("b"), 3, Some("b")), None, "no progress");
        let skip = Cursor::Skip {
            skip: 500,
            ordered: false,
        };
        assert_eq!(
            next_cursor(&skip, 500, Some("z")),
            Some(Cursor::Skip {
                skip: 1000,
                ordered: false
            })
        );
        assert_eq!(next_cursor(&skip, 0, None), None);
    }

    #[test]
    fn a_refused_keyset_page_falls_back_to_skip_once() {
        assert_eq!(
            fallback(&Cursor::Keyset { after: None }, 0),
            Some(Cursor::Skip {
                skip: 0,
                ordered: false
            })
        );
        // `$orderby=id` worked, `id gt` did not: keep the order, skip what was read.
        assert_eq!(
            fallback(&keyset("b"), 999),
            Some(Cursor::Skip {
                skip: 999,
                ordered: true
            })
        );
        let skip = Cursor::Skip {
            skip: 0,
            ordered: false,
        };
        assert_eq!(fallback(&skip, 0), None);
    }

    #[test]
    fn pages_ask_for_the_filter_and_the_cursor_together() {
        let q = page_query(&keyset("a'b"), Some("x eq 1"), None);
        assert!(q.contains(&("$orderby", "id".into())));
        assert!(
            q.contains(&("$filter", "(x eq 1) and id gt 'a''b'".into())),
            "{q:?}"
        );
        let q = page_query(
            &Cursor::Skip {
                skip: 999,
                ordered: false,
            },
            Some("x eq 1"),
            Some("id,a"),
        );
        assert_eq!(
            q,
            vec![
                ("$top", "999".to_string()),
                ("$select", "id,a".into()),
                ("$skip", "999".into()),
                ("$filter", "x eq 1".into())
            ]
        );
    }

    #[test]
    fn a_429_waits_as_told_or_backs_off_and_gives_up_in_the_end() {
        assert_eq!(throttle_wait(Some(3), 1), Some(Duration::from_secs(3)));
        assert_eq!(
            throttle_wait(Some(3600), 1),
            None,
            "longer than a crawl waits"
        );
        assert_eq!(throttle_wait(None, 1), Some(Duration::from_secs(1)));
        assert_eq!(throttle_wait(None, 2), Some(Duration::from_secs(2)));
        assert_eq!(throttle_wait(None, 6), Some(Duration::from_secs(32)));
        assert_eq!(throttle_wait(None, MAX_PAGE_RETRIES + 1), None);
    }

    #[test]
    fn account_signals_keep_owner_count_and_latest_call_per_account() {
        let a = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
        let b = "not-a-uuid";
        let mut signals = AccountSignals::default();
        signals.note_owner(a, "owner-1");
        signals.note_owner(b, "owner-1");
        signals.note_open_opportunity(a);
        signals.note_open_opportunity(a);
        for start in [
            "2026-09-01T10:00:00Z",
            "2026-09-03T10:00:00Z",
            "2026-09-02T10:00:00Z",
        ] {
            signals.note_call(&serde_json::json!({"account": {"id": a}, "startDateTime": start}));
        }
        let facts = signals.facts(a);
        assert_eq!(facts.owner, Some("owner-1"));
        assert_eq!(facts.open_opportunities, 2);
        assert_eq!(facts.last_activity, Some("2026-09-03T10:00:00Z"));
        assert_eq!(signals.facts(b).owner, Some("owner-1"));
        assert_eq!(signals.owners.len(), 1, "an owner is kept once");
        let unknown = signals.facts("1a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
        assert_eq!(unknown.owner, None);
        assert_eq!(unknown.open_opportunities, 0);

        let mut contact = IndexedRecord {
            kind: RecordKind::Contact,
            id: "c".into(),
            display_id: "1".into(),
            name: "C".into(),
            account: Some(cti_protocol::ws::AccountRef {
                id: a.into(),
                name: "A".into(),
            }),
            owner_id: None,
            open_opportunities: 0,
            last_activity: None,
        };
        signals.apply(&mut contact);
        assert_eq!(contact.owner_id.as_deref(), Some("owner-1"));
        assert_eq!(contact.open_opportunities, 2);
        assert_eq!(
            contact.last_activity.as_deref(),
            Some("2026-09-03T10:00:00Z")
        );
    }

    #[test]
    fn a_refused_signal_is_noted_but_waiting_is_not_a_refusal() {
        let mut refused = Vec::new();
        let status = |status| {
            Err::<(), _>(BuildError::V2(V2Error::Status {
                status,
                path: "/p".into(),
                code: "api.400".into(),
                message: "unknown property".into(),
                retry_after: None,
            }))
        };
        assert!(matches!(
            best_effort(Signal::PhoneCalls, status(400), &mut refused),
            Ok(None)
        ));
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].signal, Signal::PhoneCalls);
        assert!(refused[0].reason.contains("unknown property"));
        assert!(best_effort(Signal::PhoneCalls, status(429), &mut refused).is_err());
        assert_eq!(refused.len(), 1);
    }
}
