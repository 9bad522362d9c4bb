//! One tenant's number index, held compactly.
//!
//! The in-memory index of a large tenant should fit a small Cloud Foundry instance beside the
//! rest of the relay (how large a tenant fits 128 MB is measured in the README's Performance): a million records held as `HashMap<String, Vec<IndexedRecord>>`
//! took well over a kilobyte per record (every string its own allocation, every record copied
//! under each of its numbers, a reverse map of number strings for updates). Here a record is kept
//! once, as a fixed-size row of offsets into one text buffer; numbers are integers in one sorted
//! array of links to rows, so a shared number is simply several adjacent links; text that
//! repeats across records (account ids and names, owners, call times) is stored once while a
//! build runs; V2's record ids, which are UUIDs, take 16 bytes instead of 36. A lookup decodes
//! the few rows a number links to, so callers still see plain [`IndexedRecord`]s.
//!
//! Built by a [`GenerationBuilder`] (a crawl adds records as pages arrive) and then only changed
//! record by record ([`Generation::upsert`], [`Generation::remove`]). A change leaves the old
//! row's text behind until the next full build replaces the generation: changes are rare next to
//! rebuilds, so this costs little and keeps a change cheap.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use cti_protocol::ws::{AccountRef, RecordKind};

use super::record::IndexedRecord;

/// A position in [`TextPool`]; [`NONE`] for an absent value.
type TextId = u32;
const NONE: TextId = TextId::MAX;

/// Tags of the text encoding: a tag below [`UUID_TAG`] is the byte length of the UTF-8 text
/// that follows it.
const UUID_TAG: u8 = 0xF0;
/// A `u32` little-endian byte length, then the text.
const LONG_TAG: u8 = 0xF1;

/// Every string of a generation, each encoded as a tag and its bytes, one after the other.
#[derive(Debug, Clone, Default)]
struct TextPool {
    bytes: Vec<u8>,
}

/// `s` encoded as the pool keeps it: canonical lower-case UUIDs (V2's ids) as 16 bytes,
/// anything else as its UTF-8 bytes with their length. The encoding is also the order of record
/// ids in [`Generation::by_id`], so a query id is encoded the same way before it is searched.
fn encode(s: &str, out: &mut Vec<u8>) {
    if let Some(uuid) = uuid_bytes(s) {
        out.push(UUID_TAG);
        out.extend_from_slice(&uuid);
    } else if s.len() < usize::from(UUID_TAG) {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    } else {
        out.push(LONG_TAG);
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
}

/// The 16 bytes of `s` when it is a UUID written exactly as `8-4-4-4-12` lower-case hex digits,
/// so that decoding gives back the same text.
fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = b.iter().filter(|&&c| c != b'-');
    for byte in &mut out {
        let hi = lower_hex(*digits.next()?)?;
        let lo = lower_hex(*digits.next()?)?;
        *byte = hi << 4 | lo;
    }
    Some(out)
}

fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn push_uuid_text(uuid: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0F)]));
    }
}

impl TextPool {
    fn push(&mut self, s: &str) -> TextId {
        let at = self.bytes.len();
        encode(s, &mut self.bytes);
        // Four gigabytes of text is far beyond any tenant; saturate rather than wrap.
        TextId::try_from(at).unwrap_or(NONE)
    }

    /// The encoded bytes (tag included) at `id`.
    fn encoded(&self, id: TextId) -> &[u8] {
        let at = id as usize;
        let Some(&tag) = self.bytes.get(at) else {
            return &[];
        };
        let end = match tag {
            UUID_TAG => at + 17,
            LONG_TAG => {
                let len = self
                    .bytes
                    .get(at + 1..at + 5)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, u32::from_le_bytes);
                at + 5 + len as usize
            }
            short => at + 1 + usize::from(short),
        };
        self.bytes.get(at..end).unwrap_or(&[])
    }

    fn get(&self, id: TextId) -> Option<String> {
        if id == NONE {
            return None;
        }
        let encoded = self.encoded(id);
        let (&tag, rest) = encoded.split_first()?;
        let mut out = String::new();
        match tag {
            UUID_TAG => push_uuid_text(rest, &mut out),
            LONG_TAG => out.push_str(std::str::from_utf8(rest.get(4..)?).ok()?),
            _ => out.push_str(std::str::from_utf8(rest).ok()?),
        }
        Some(out)
    }
}

/// A record as a row: where its texts are, its kind and its count.
#[derive(Debug, Clone, Copy)]
struct Row {
    id: TextId,
    display_id: TextId,
    name: TextId,
    account_id: TextId,
    account_name: TextId,
    owner_id: TextId,
    last_activity: TextId,
    open_opportunities: u32,
    kind: RecordKind,
}

/// A number as the links keep it: `+` and 1 to 18 digits, the first not 0 (every E.164 number),
/// as the integer its digits spell. Anything else is kept as text ([`Generation::other`]).
fn number_key(number: &str) -> Option<u64> {
    let digits = number.strip_prefix('+')?;
    if digits.is_empty()
        || digits.len() > 18
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

/// What a build learnt about an account, for ranking its records' matches.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountFacts<'a> {
    /// The account's owner: the owner of its records that have none of their own.
    pub owner: Option<&'a str>,
    pub open_opportunities: u32,
    /// Start of the latest phone call on the account, RFC 3339.
    pub last_activity: Option<&'a str>,
}

/// A tenant's index: numbers to the records that carry them.
#[derive(Debug, Clone, Default)]
pub struct Generation {
    text: TextPool,
    rows: Vec<Row>,
    /// Rows of the live records, ordered by their encoded id: how a change finds its record.
    by_id: Vec<u32>,
    /// The links, sorted by number then row: `numbers[i]` is carried by `rows[owners[i]]`.
    numbers: Vec<u64>,
    owners: Vec<u32>,
    /// Numbers that are not `+digits` (never produced by normalization; kept so that nothing
    /// given to the index is lost).
    other: HashMap<Box<str>, Vec<u32>>,
    /// Distinct numbers among `numbers`.
    distinct: usize,
}

impl Generation {
    /// How many distinct numbers the generation holds.
    pub fn len(&self) -> usize {
        self.distinct + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many records the generation holds.
    pub fn records(&self) -> usize {
        self.by_id.len()
    }

    /// The bytes the generation holds on the heap (its arrays' capacities; the odd numbers'
    /// map approximately): what a tenant's index costs, whatever the allocator adds.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let other: usize = self
            .other
            .iter()
            .map(|(n, rows)| n.len() + rows.capacity() * 4 + size_of::<(Box<str>, Vec<u32>)>())
            .sum();
        self.text.bytes.capacity()
            + self.rows.capacity() * size_of::<Row>()
            + self.by_id.capacity() * size_of::<u32>()
            + self.numbers.capacity() * size_of::<u64>()
            + self.owners.capacity() * size_of::<u32>()
            + other
    }

    /// Every record carrying `number`, in no promised order (ranking orders them).
    pub fn get(&self, number: &str) -> Vec<IndexedRecord> {
        self.rows_of(number)
            .into_iter()
            .filter_map(|row| self.record(row))
            .collect()
    }

    fn rows_of(&self, number: &str) -> Vec<u32> {
        match number_key(number) {
            Some(key) => {
                let from = self.numbers.partition_point(|&n| n < key);
                let to = from + self.numbers[from..].partition_point(|&n| n == key);
                self.owners[from..to].to_vec()
            }
            None => self.other.get(number).cloned().unwrap_or_default(),
        }
    }

    fn record(&self, row: u32) -> Option<IndexedRecord> {
        let r = self.rows.get(row as usize)?;
        let text = |id| self.text.get(id);
        Some(IndexedRecord {
            kind: r.kind,
            id: text(r.id)?,
            display_id: text(r.display_id).unwrap_or_default(),
            name: text(r.name).unwrap_or_default(),
            account: text(r.account_id).map(|id| AccountRef {
                id,
                name: text(r.account_name).unwrap_or_default(),
            }),
            owner_id: text(r.owner_id),
            open_opportunities: r.open_opportunities,
            last_activity: text(r.last_activity),
        })
    }

    /// Every number with its records, numbers in ascending order (then the odd ones).
    pub fn entries(&self) -> impl Iterator<Item = (String, Vec<IndexedRecord>)> + '_ {
        let mut at = 0;
        let sorted = std::iter::from_fn(move || {
            let &key = self.numbers.get(at)?;
            let to = at + self.numbers[at..].partition_point(|&n| n == key);
            let records = self.owners[at..to]
                .iter()
                .filter_map(|&row| self.record(row))
                .collect();
            at = to;
            Some((format!("+{key}"), records))
        });
        let other = self.other.iter().map(|(number, rows)| {
            let records = rows.iter().filter_map(|&row| self.record(row)).collect();
            (number.to_string(), records)
        });
        sorted.chain(other)
    }

    /// Every distinct number.
    pub fn numbers(&self) -> impl Iterator<Item = String> + '_ {
        let mut previous = None;
        let sorted = self
            .numbers
            .iter()
            .filter(move |&&key| previous.replace(key) != Some(key))
            .map(|key| format!("+{key}"));
        sorted.chain(self.other.keys().map(|n| n.to_string()))
    }

    /// Each record's id with the numbers it carries, record by record: writing a large index
    /// to Redis walks them without holding them all as strings at once.
    pub fn numbers_by_record(&self) -> NumbersByRecord<'_> {
        let odd: Vec<(&str, u32)> = self
            .other
            .iter()
            .flat_map(|(number, rows)| rows.iter().map(move |&row| (&**number, row)))
            .collect();
        let mut by_record = NumbersByRecord {
            generation: self,
            odd,
            order: Vec::new(),
            at: 0,
        };
        let links = self.numbers.len() + by_record.odd.len();
        let mut order: Vec<u32> = (0..links).filter_map(|l| u32::try_from(l).ok()).collect();
        order.sort_unstable_by_key(|&link| (by_record.row(link), link));
        by_record.order = order;
        by_record
    }

    /// Where `id` stands in `by_id`: found, or where it would go.
    fn find(&self, id: &str) -> Result<usize, usize> {
        let mut query = Vec::with_capacity(id.len() + 5);
        encode(id, &mut query);
        self.by_id
            .binary_search_by(|&row| self.text.encoded(self.rows[row as usize].id).cmp(&query))
    }

    /// Puts `record` under exactly `numbers`, taking it off every number it carried before.
    pub fn upsert(&mut self, record: IndexedRecord, numbers: &[String]) {
        self.remove(&record.id);
        if numbers.is_empty() {
            return;
        }
        let Ok(row) = u32::try_from(self.rows.len()) else {
            return;
        };
        let at = match self.find(&record.id) {
            Ok(at) | Err(at) => at,
        };
        let packed = pack(&mut self.text, None, record);
        self.rows.push(packed);
        self.by_id.insert(at, row);
        for number in numbers {
            match number_key(number) {
                Some(key) => {
                    let from = self.numbers.partition_point(|&n| n < key);
                    let to = from + self.numbers[from..].partition_point(|&n| n == key);
                    if self.owners[from..to].contains(&row) {
                        continue;
                    }
                    if from == to {
                        self.distinct += 1;
                    }
                    self.numbers.insert(to, key);
                    self.owners.insert(to, row);
                }
                None => {
                    let rows = self.other.entry(number.as_str().into()).or_default();
                    if !rows.contains(&row) {
                        rows.push(row);
                    }
                }
            }
        }
    }

    /// Takes the record `id` off every number.
    pub fn remove(&mut self, id: &str) {
        let Ok(at) = self.find(id) else {
            return;
        };
        let row = self.by_id.remove(at);
        self.unlink(|r| r == row);
    }

    /// Drops every link whose row `gone` says is gone, keeping the counts right.
    fn unlink(&mut self, gone: impl Fn(u32) -> bool) {
        let mut kept = 0;
        for i in 0..self.numbers.len() {
            if !gone(self.owners[i]) {
                self.numbers[kept] = self.numbers[i];
                self.owners[kept] = self.owners[i];
                kept += 1;
            }
        }
        self.numbers.truncate(kept);
        self.owners.truncate(kept);
        self.distinct = count_distinct(&self.numbers);
        self.other.retain(|_, rows| {
            rows.retain(|&r| !gone(r));
            !rows.is_empty()
        });
    }
}

/// What [`Generation::numbers_by_record`] gives: `(record id, its numbers)`, by row.
#[derive(Debug)]
pub struct NumbersByRecord<'a> {
    generation: &'a Generation,
    /// `(number, row)` of the numbers kept as text.
    odd: Vec<(&'a str, u32)>,
    /// Links ordered by row: below `numbers.len()` a sorted link, above it one of `odd`.
    order: Vec<u32>,
    at: usize,
}

impl NumbersByRecord<'_> {
    fn row(&self, link: u32) -> u32 {
        let link = link as usize;
        let sorted = &self.generation.owners;
        match sorted.get(link) {
            Some(&row) => row,
            None => self.odd.get(link - sorted.len()).map_or(u32::MAX, |o| o.1),
        }
    }

    fn number(&self, link: u32) -> String {
        let link = link as usize;
        let sorted = &self.generation.numbers;
        match sorted.get(link) {
            Some(key) => format!("+{key}"),
            None => self
                .odd
                .get(link - sorted.len())
                .map_or_else(String::new, |o| o.0.to_string()),
        }
    }
}

impl Iterator for NumbersByRecord<'_> {
    type Item = (String, Vec<String>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let &first = self.order.get(self.at)?;
            let row = self.row(first);
            let to = self.at + self.order[self.at..].partition_point(|&l| self.row(l) == row);
            let links = self.at..to;
            self.at = to;
            let id = self
                .generation
                .rows
                .get(row as usize)
                .and_then(|r| self.generation.text.get(r.id));
            if let Some(id) = id {
                let numbers = self.order[links].iter().map(|&l| self.number(l)).collect();
                return Some((id, numbers));
            }
        }
    }
}

fn count_distinct(sorted: &[u64]) -> usize {
    sorted.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!sorted.is_empty())
}

/// Keeps each repeated text once while a build runs, by its hash (checked against the text, so
/// a collision only costs a second copy).
#[derive(Debug, Default)]
struct Interner {
    seen: HashMap<u64, TextId>,
    scratch: Vec<u8>,
}

impl Interner {
    fn intern(&mut self, text: &mut TextPool, s: &str) -> TextId {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(s);
        self.scratch.clear();
        encode(s, &mut self.scratch);
        if let Some(&id) = self.seen.get(&hash)
            && text.encoded(id) == self.scratch.as_slice()
        {
            return id;
        }
        let id = text.push(s);
        self.seen.insert(hash, id);
        id
    }
}

/// `record` as a row of `text`. While a build runs, `interner` keeps the texts that repeat from
/// record to record once: an account's id and name (its contacts name it too), owners, call
/// times.
fn pack(text: &mut TextPool, mut interner: Option<&mut Interner>, record: IndexedRecord) -> Row {
    let mut put = |s: &str, repeats: bool| match interner.as_deref_mut() {
        Some(interner) if repeats => interner.intern(text, s),
        _ => text.push(s),
    };
    let is_account = record.kind == RecordKind::Account;
    Row {
        id: put(&record.id, is_account),
        display_id: put(&record.display_id, false),
        name: put(&record.name, is_account),
        account_id: record.account.as_ref().map_or(NONE, |a| put(&a.id, true)),
        account_name: record.account.as_ref().map_or(NONE, |a| put(&a.name, true)),
        owner_id: record.owner_id.as_deref().map_or(NONE, |o| put(o, true)),
        last_activity: record
            .last_activity
            .as_deref()
            .map_or(NONE, |t| put(t, true)),
        open_opportunities: record.open_opportunities,
        kind: record.kind,
    }
}

/// Builds a [`Generation`] as a crawl reads records.
#[derive(Debug, Default)]
pub struct GenerationBuilder {
    text: TextPool,
    rows: Vec<Row>,
    /// `(number, row)`, unsorted until [`GenerationBuilder::finish`].
    links: Vec<(u64, u32)>,
    other: HashMap<Box<str>, Vec<u32>>,
    interner: Interner,
}

impl GenerationBuilder {
    /// Adds `record` under `numbers`. A record added twice (a page read twice while V2's data
    /// moved) is kept once, as added last, under all the numbers it was added with.
    pub fn add<S: AsRef<str>>(&mut self, record: IndexedRecord, numbers: &[S]) {
        let Ok(row) = u32::try_from(self.rows.len()) else {
            return;
        };
        let packed = pack(&mut self.text, Some(&mut self.interner), record);
        self.rows.push(packed);
        for number in numbers {
            let number = number.as_ref();
            match number_key(number) {
                Some(key) => self.links.push((key, row)),
                None => self.other.entry(number.into()).or_default().push(row),
            }
        }
    }

    /// Records added so far.
    pub fn records(&self) -> usize {
        self.rows.len()
    }

    /// Fills in what ranking reads from what was learnt about each record's account: its open
    /// opportunities and latest call, and its owner for records without one of their own.
    pub fn fill_signals<'a>(&mut self, facts: impl Fn(&str) -> AccountFacts<'a>) {
        let Self {
            text,
            rows,
            interner,
            ..
        } = self;
        for row in rows.iter_mut() {
            let Some(account) = text.get(row.account_id) else {
                continue;
            };
            let found = facts(&account);
            if row.owner_id == NONE
                && let Some(owner) = found.owner
            {
                row.owner_id = interner.intern(text, owner);
            }
            row.open_opportunities = found.open_opportunities;
            row.last_activity = found
                .last_activity
                .map_or(NONE, |t| interner.intern(text, t));
        }
    }

    /// The finished generation: links sorted, records added twice merged.
    pub fn finish(self) -> Generation {
        let GenerationBuilder {
            text,
            rows,
            mut links,
            mut other,
            interner,
        } = self;
        drop(interner);
        let mut by_id: Vec<u32> = (0..rows.len() as u32).collect();
        let order = |a: &u32, b: &u32| -> Ordering {
            text.encoded(rows[*a as usize].id)
                .cmp(text.encoded(rows[*b as usize].id))
                .then(a.cmp(b))
        };
        by_id.sort_unstable_by(order);
        // Rows of an id added twice: all but the last give their links to the last.
        let mut moved: HashMap<u32, u32> = HashMap::new();
        by_id.dedup_by(|later, earlier| {
            let same =
                text.encoded(rows[*later as usize].id) == text.encoded(rows[*earlier as usize].id);
            if same {
                // `dedup_by` drops `later` (the higher row comes second in this order): keep it.
                moved.insert(*earlier, *later);
                std::mem::swap(later, earlier);
            }
            same
        });
        if !moved.is_empty() {
            let last = |row: u32| {
                let mut row = row;
                while let Some(&next) = moved.get(&row) {
                    row = next;
                }
                row
            };
            links.iter_mut().for_each(|(_, row)| *row = last(*row));
            for rows in other.values_mut() {
                rows.iter_mut().for_each(|row| *row = last(*row));
            }
        }
        links.sort_unstable();
        links.dedup();
        for rows in other.values_mut() {
            let mut seen = Vec::with_capacity(rows.len());
            rows.retain(|row| {
                let fresh = !seen.contains(row);
                seen.push(*row);
                fresh
            });
        }
        by_id.shrink_to_fit();
        let (numbers, owners): (Vec<u64>, Vec<u32>) = links.into_iter().unzip();
        let mut text = text;
        text.bytes.shrink_to_fit();
        let mut rows = rows;
        rows.shrink_to_fit();
        Generation {
            distinct: count_distinct(&numbers),
            text,
            rows,
            by_id,
            numbers,
            owners,
            other,
        }
    }
}

/// For callers that have their numbers and records in hand (tests, small tenants).
impl FromIterator<(String, Vec<IndexedRecord>)> for Generation {
    fn from_iter<I: IntoIterator<Item = (String, Vec<IndexedRecord>)>>(entries: I) -> Self {
        let mut builder = GenerationBuilder::default();
        for (number, records) in entries {
            for record in records {
                builder.add(record, std::slice::from_ref(&number));
            }
        }
        builder.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    fn record(id: &str, name: &str) -> IndexedRecord {
        IndexedRecord {
            kind: RecordKind::Contact,
            id: id.into(),
            display_id: "1001".into(),
            name: name.into(),
            account: None,
            owner_id: None,
            open_opportunities: 0,
            last_activity: None,
        }
    }

    fn ids(records: &[IndexedRecord]) -> Vec<&str> {
        let mut ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn every_text_comes_back_as_it_went_in() {
        let long = "x".repeat(300);
        for id in [
            UUID,
            "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D",
            "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d",
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4g",
            "",
            "Zoë Müller-Lüdenscheidt",
            long.as_str(),
        ] {
            let mut full = record(id, id);
            full.kind = RecordKind::Account;
            full.account = Some(AccountRef {
                id: id.into(),
                name: id.into(),
            });
            full.owner_id = Some(id.into());
            full.last_activity = Some("2026-10-01T09:30:00Z".into());
            full.open_opportunities = 3;
            let generation =
                Generation::from_iter([("+41441234567".to_string(), vec![full.clone()])]);
            assert_eq!(generation.get("+41441234567"), [full], "{id:?}");
        }
        let mut pool = TextPool::default();
        let at = pool.push(UUID);
        assert_eq!(
            pool.encoded(at).len(),
            17,
            "a UUID takes 16 bytes and its tag"
        );
    }

    #[test]
    fn a_shared_number_finds_every_record_and_numbers_are_counted_once() {
        let generation = Generation::from_iter([
            (
                "+41441111111".to_string(),
                vec![record("a", "Anna"), record("b", "Ben")],
            ),
            ("+41442222222".to_string(), vec![record("a", "Anna")]),
            ("not a number".to_string(), vec![record("c", "Cleo")]),
        ]);
        assert_eq!(ids(&generation.get("+41441111111")), ["a", "b"]);
        assert_eq!(ids(&generation.get("+41442222222")), ["a"]);
        assert_eq!(ids(&generation.get("not a number")), ["c"]);
        assert!(generation.get("+41443333333").is_empty());
        assert!(generation.get("+041441111111").is_empty());
        assert_eq!(generation.len(), 3);
        assert_eq!(
            generation.records(),
            3,
            "a record under two numbers is one record"
        );
        let mut numbers: Vec<String> = generation.numbers().collect();
        numbers.sort();
        assert_eq!(numbers, ["+41441111111", "+41442222222", "not a number"]);
        let mut by_record: Vec<_> = generation.numbers_by_record().collect();
        by_record.sort();
        assert_eq!(
            by_record,
            [
                (
                    "a".to_string(),
                    vec!["+41441111111".to_string(), "+41442222222".to_string()]
                ),
                ("b".to_string(), vec!["+41441111111".to_string()]),
                ("c".to_string(), vec!["not a number".to_string()]),
            ]
        );
        let entries: Vec<(String, Vec<IndexedRecord>)> = generation.entries().collect();
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn a_record_added_twice_is_kept_as_added_last_under_all_its_numbers() {
        let mut builder = GenerationBuilder::default();
        builder.add(record(UUID, "Old name"), &["+41441111111"]);
        builder.add(record("other", "Ben"), &["+41441111111"]);
        builder.add(record(UUID, "New name"), &["+41442222222", "+41441111111"]);
        let generation = builder.finish();
        assert_eq!(generation.records(), 2);
        let shared = generation.get("+41441111111");
        assert_eq!(shared.len(), 2);
        assert!(shared.iter().any(|r| r.name == "New name"));
        assert!(shared.iter().all(|r| r.name != "Old name"));
        assert_eq!(generation.get("+41442222222")[0].name, "New name");
    }

    #[test]
    fn signals_fill_in_from_the_account_and_an_own_owner_wins() {
        let mut builder = GenerationBuilder::default();
        let mut own = record("c1", "Anna");
        own.account = Some(AccountRef {
            id: "acc".into(),
            name: "ACME".into(),
        });
        own.owner_id = Some("emp-own".into());
        let mut inherits = own.clone();
        inherits.id = "c2".into();
        inherits.owner_id = None;
        let alone = record("c3", "Cleo");
        builder.add(own, &["+41441111111"]);
        builder.add(inherits, &["+41442222222"]);
        builder.add(alone, &["+41443333333"]);
        builder.fill_signals(|account| AccountFacts {
            owner: (account == "acc").then_some("emp-account"),
            open_opportunities: 2,
            last_activity: Some("2026-10-01T09:30:00Z"),
        });
        let generation = builder.finish();
        let own = &generation.get("+41441111111")[0];
        assert_eq!(own.owner_id.as_deref(), Some("emp-own"));
        assert_eq!(own.open_opportunities, 2);
        assert_eq!(own.last_activity.as_deref(), Some("2026-10-01T09:30:00Z"));
        let inherits = &generation.get("+41442222222")[0];
        assert_eq!(inherits.owner_id.as_deref(), Some("emp-account"));
        let alone = &generation.get("+41443333333")[0];
        assert_eq!(
            (alone.owner_id.as_deref(), alone.open_opportunities),
            (None, 0)
        );
    }

    /// Random changes against the plain map the index used to be: both always answer alike.
    #[test]
    fn changes_agree_with_a_plain_map() {
        use std::collections::BTreeMap;
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let number = |i: u64| {
            if i == 7 {
                "odd".to_string()
            } else {
                format!("+4144{i:07}")
            }
        };
        let id = |i: u64| {
            if i.is_multiple_of(2) {
                format!("{:08x}-4e5f-4a6b-8c7d-9e0f1a2b3c4d", i)
            } else {
                format!("record-{i}")
            }
        };
        let mut model: BTreeMap<String, (IndexedRecord, Vec<String>)> = BTreeMap::new();
        let mut builder = GenerationBuilder::default();
        for i in 0..40 {
            let numbers: Vec<String> = (0..=next(3)).map(|_| number(next(12))).collect();
            let record = record(&id(i), &format!("name {i}"));
            builder.add(record.clone(), &numbers);
            let mut unique = numbers.clone();
            unique.sort();
            unique.dedup();
            model.insert(record.id.clone(), (record, unique));
        }
        let mut generation = builder.finish();
        for step in 0..400 {
            let target = id(next(50));
            if next(3) == 0 {
                generation.remove(&target);
                model.remove(&target);
            } else {
                let mut numbers: Vec<String> = (0..next(3)).map(|_| number(next(12))).collect();
                let record = record(&target, &format!("renamed at {step}"));
                generation.upsert(record.clone(), &numbers);
                numbers.sort();
                numbers.dedup();
                if numbers.is_empty() {
                    model.remove(&target);
                } else {
                    model.insert(target, (record, numbers));
                }
            }
            for n in 0..12 {
                let n = number(n);
                let mut found = generation.get(&n);
                found.sort_by(|a, b| a.id.cmp(&b.id));
                let expected: Vec<IndexedRecord> = model
                    .values()
                    .filter(|(_, numbers)| numbers.contains(&n))
                    .map(|(r, _)| r.clone())
                    .collect();
                assert_eq!(found, expected, "{n} after step {step}");
            }
            let distinct: std::collections::BTreeSet<&String> =
                model.values().flat_map(|(_, numbers)| numbers).collect();
            assert_eq!(generation.len(), distinct.len(), "after step {step}");
            assert_eq!(generation.records(), model.len(), "after step {step}");
        }
    }
}
