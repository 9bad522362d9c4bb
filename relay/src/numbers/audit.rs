//! `cti-relay numbers audit`: every phone field of a V2 tenant that will not match callers, before
//! going live.
//!
//! A field is a problem when its typed number cannot be normalized (the index cannot carry it) or
//! when V2's stored normalised value disagrees with ours (V2's own search by ANI, and anything
//! else reading that value, then misses the caller). With `fix`, disagreements are written back
//! as the number in international form with its E.164 twin, guarded by the ETag the record was
//! read with during the crawl: a record changed since (412) is re-read and judged again, never
//! overwritten blindly. Invalid numbers need a person and are only reported.
//!
//! Only fields a record's schema has are judged or written: contacts have no normalised twins
//! (their schema has formatted numbers only), so a contact's number is judged by its text alone
//! and a correction of it would carry the formatted field only. A fix inside a sub-node array
//! (`addresses[]`, `isContactPersonFor[]`) would send the whole array in a header PATCH, which V2
//! is known to refuse for some nodes; it is done only where a published PATCH schema carries the
//! array, otherwise the field is reported as `needs_a_person`.

use std::io::Write;
use std::time::Duration;

use cti_protocol::ws::RecordKind;
use serde_json::Value;

use super::budget::DailyBudget;
use super::build::{BuildError, crawl};
use super::normalize::{DefaultRegion, normalize};
use crate::v2::client::{Collection, V2Client, V2Error};
use crate::v2::records::{
    CALLER_COLLECTIONS, Holder, PhoneField, PhoneLocation, has_normalised_twins, may_patch_array,
    phone_fields,
};

/// Attempts per fix when V2 answers 412 (changed meanwhile) or 429 (slow down).
const FIX_ATTEMPTS: u32 = 4;
/// The longest Retry-After a fix waits for.
const MAX_WAIT_S: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("reading V2: {0}")]
    Read(#[from] BuildError),
    #[error("reading V2: {0}")]
    V2(#[from] V2Error),
    #[error("writing the report: {0}")]
    Output(#[from] csv::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditOptions {
    /// Write corrected values back to V2.
    pub fix: bool,
}

/// What the run saw and did, for the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditSummary {
    pub records: u64,
    pub fields: u64,
    pub invalid: u64,
    pub mismatched: u64,
    pub fixed: u64,
    pub failed: u64,
    /// Corrections that met a record changed since the crawl (412) and were judged again.
    pub conflicts: u64,
}

/// Progress for a bar: which collection, how many of its records were read, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    Crawling {
        collection: &'a str,
        done: u64,
        total: Option<u64>,
    },
    Fixing {
        done: u64,
        total: u64,
    },
}

/// One problem field.
#[derive(Debug, Clone)]
struct Finding {
    collection: Collection,
    kind: RecordKind,
    id: String,
    display_id: String,
    location: PhoneLocation,
    /// The country the number was read with, kept for re-evaluation after a re-read.
    country: Option<String>,
    typed: String,
    stored: String,
    expected: Option<(String, String)>,
    problem: String,
    /// The record as crawled, with the ETag a correction presents first (mismatches only).
    snapshot: Option<crate::v2::Versioned>,
}

/// What a field is, judged with the tenant's region as the fallback.
enum Verdict {
    Fine,
    Invalid(&'static str),
    /// (international form, E.164)
    Mismatch(String, String),
}

fn judge(kind: RecordKind, field: &PhoneField<'_>, tenant_region: &DefaultRegion) -> Verdict {
    let region = field
        .country
        .and_then(|c| DefaultRegion::parse(c).ok())
        .unwrap_or_else(|| tenant_region.clone());
    if !has_normalised_twins(kind) {
        // No twin to disagree with: a number that normalises is one the index and V2 can read.
        return match field.formatted.map(|typed| normalize(typed, &region)) {
            Some(Err(err)) => Verdict::Invalid(err.code()),
            _ => Verdict::Fine,
        };
    }
    match field.formatted {
        Some(typed) => match normalize(typed, &region) {
            Err(err) => Verdict::Invalid(err.code()),
            Ok(n) if field.normalised == Some(n.e164.as_str()) => Verdict::Fine,
            Ok(n) => Verdict::Mismatch(n.international, n.e164),
        },
        // Only a normalised value: fine if it is one.
        None => match field.normalised {
            Some(stored) if !super::normalize::looks_like_e164(stored) => {
                Verdict::Invalid("not_a_number")
            }
            _ => Verdict::Fine,
        },
    }
}

fn collection_name(collection: Collection) -> &'static str {
    collection.path().rsplit('/').next().unwrap_or_default()
}

const HEADER: [&str; 9] = [
    "collection",
    "id",
    "display_id",
    "field",
    "typed",
    "stored_normalised",
    "expected_e164",
    "problem",
    "action",
];

/// Crawls every caller collection, writes one CSV row per problem field to `out`, and with
/// `options.fix` corrects the mismatches. Progress goes to `progress`.
pub async fn run(
    client: &V2Client,
    region: &DefaultRegion,
    options: AuditOptions,
    out: impl Write,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<AuditSummary, AuditError> {
    let unlimited = DailyBudget::new(None, std::sync::Arc::new(crate::clock::SystemClock));
    let mut summary = AuditSummary::default();
    let mut findings = Vec::new();
    for (collection, kind) in CALLER_COLLECTIONS {
        let name = collection_name(collection);
        // The total only feeds the progress bar; a V2 without `$count` just gets a spinner.
        let total = client.count(collection, None).await.ok();
        let mut done = 0;
        progress(Progress::Crawling {
            collection: name,
            done,
            total,
        });
        crawl(client, collection, None, None, &unlimited, |record| {
            done += 1;
            summary.records += 1;
            for field in phone_fields(kind, record) {
                summary.fields += 1;
                let (problem, expected) = match judge(kind, &field, region) {
                    Verdict::Fine => continue,
                    Verdict::Invalid(code) => {
                        summary.invalid += 1;
                        (format!("invalid:{code}"), None)
                    }
                    Verdict::Mismatch(international, e164) => {
                        summary.mismatched += 1;
                        ("mismatch".to_string(), Some((international, e164)))
                    }
                };
                let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default();
                let snapshot = expected.as_ref().and_then(|_| {
                    let updated = record.pointer("/adminData/updatedOn")?.as_str()?;
                    Some(crate::v2::Versioned {
                        record: record.clone(),
                        etag: format!("\"{updated}\""),
                    })
                });
                findings.push(Finding {
                    collection,
                    kind,
                    id: text("id").to_string(),
                    display_id: text("displayId").to_string(),
                    location: field.location,
                    country: field.country.map(str::to_string),
                    typed: field.formatted.unwrap_or_default().to_string(),
                    stored: field.normalised.unwrap_or_default().to_string(),
                    expected,
                    problem,
                    snapshot,
                });
            }
            if done % 100 == 0 {
                progress(Progress::Crawling {
                    collection: name,
                    done,
                    total,
                });
            }
        })
        .await?;
        progress(Progress::Crawling {
            collection: name,
            done,
            total: Some(done),
        });
    }

    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(HEADER)?;
    let to_fix = findings.iter().filter(|f| f.expected.is_some()).count() as u64;
    let mut fixing = 0;
    for finding in &findings {
        let action = match (&finding.expected, options.fix) {
            (_, false) => String::new(),
            (None, true) => "needs_a_person".to_string(),
            (Some(_), true) => {
                progress(Progress::Fixing {
                    done: fixing,
                    total: to_fix,
                });
                fixing += 1;
                match fix(client, region, finding, &mut summary.conflicts).await {
                    Ok(action) => {
                        summary.fixed += u64::from(action == "fixed");
                        action.to_string()
                    }
                    Err(err) => {
                        summary.failed += 1;
                        tracing::warn!(%err, id = %finding.id, "fixing a phone field failed");
                        format!("failed:{err}")
                    }
                }
            }
        };
        let expected = finding.expected.as_ref().map_or("", |(_, e164)| e164);
        writer.write_record([
            collection_name(finding.collection),
            &finding.id,
            &finding.display_id,
            &finding.location.path(),
            &finding.typed,
            &finding.stored,
            expected,
            &finding.problem,
            &action,
        ])?;
    }
    if options.fix {
        progress(Progress::Fixing {
            done: fixing,
            total: to_fix,
        });
    }
    writer.flush().map_err(csv::Error::from)?;
    Ok(summary)
}

/// Writes one correction: PATCH the field with the ETag the record was crawled with; on 412 read
/// it again, judge the field again and retry; on 429 wait as told. Returns `fixed`, or
/// `already_right` when someone corrected it meanwhile, or `gone` when the record or field no
/// longer exists.
async fn fix(
    client: &V2Client,
    region: &DefaultRegion,
    finding: &Finding,
    conflicts: &mut u64,
) -> Result<&'static str, V2Error> {
    let mut attempt = 0;
    let mut known = finding.snapshot.clone();
    loop {
        attempt += 1;
        let current = match known.take() {
            Some(snapshot) => snapshot,
            None => match client.get(finding.collection, &finding.id).await? {
                Some(current) => current,
                None => return Ok("gone"),
            },
        };
        let Some(holder) = finding.location.holder(&current.record) else {
            return Ok("gone");
        };
        let field = finding.location.read_in(holder, finding.country.as_deref());
        let (international, e164) = match judge(finding.kind, &field, region) {
            Verdict::Fine => return Ok("already_right"),
            // Someone typed something else meanwhile that needs a person now.
            Verdict::Invalid(_) => return Ok("needs_a_person"),
            Verdict::Mismatch(international, e164) => (international, e164),
        };
        if let Holder::Element(array, _) = finding.location.holder
            && !may_patch_array(finding.kind, array)
        {
            return Ok("needs_a_person");
        }
        let twin = has_normalised_twins(finding.kind).then_some(e164.as_str());
        let Some(patch) = finding
            .location
            .patch(&current.record, &international, twin)
        else {
            return Ok("gone");
        };
        match client
            .patch(finding.collection, &finding.id, &current.etag, &patch)
            .await
        {
            Ok(_) => {
                tracing::info!(
                    kind = ?finding.kind, id = %finding.id, field = %finding.location.path(),
                    "phone field corrected"
                );
                return Ok("fixed");
            }
            Err(V2Error::Status { status: 412, .. }) if attempt < FIX_ATTEMPTS => {
                *conflicts += 1;
            }
            Err(V2Error::Status {
                status: 429,
                retry_after,
                ..
            }) if attempt < FIX_ATTEMPTS => {
                let wait = retry_after.unwrap_or(1).min(MAX_WAIT_S);
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(formatted: Option<&'a str>, normalised: Option<&'a str>) -> PhoneField<'a> {
        PhoneField {
            formatted,
            normalised,
            country: Some("CH"),
            location: PhoneLocation {
                holder: Holder::Record,
                prefix: "phone",
            },
        }
    }

    #[test]
    fn fields_are_judged_against_our_normalization() {
        let ch = DefaultRegion::parse("CH").expect("region");
        assert!(matches!(
            judge(
                RecordKind::Account,
                &field(Some("044 123 45 67"), Some("+41441234567")),
                &ch
            ),
            Verdict::Fine
        ));
        assert!(matches!(
            judge(RecordKind::Account, &field(Some("044 123 45 67"), Some("+4944123456")), &ch),
            Verdict::Mismatch(ref i, ref e) if i == "+41 44 123 45 67" && e == "+41441234567"
        ));
        assert!(matches!(
            judge(
                RecordKind::Account,
                &field(Some("044 123 45 67"), None),
                &ch
            ),
            Verdict::Mismatch(..)
        ));
        // A contact has no twin: its text alone decides, whatever a legacy twin says.
        assert!(matches!(
            judge(
                RecordKind::Contact,
                &field(Some("044 123 45 67"), Some("+4944")),
                &ch
            ),
            Verdict::Fine
        ));
        assert!(matches!(
            judge(RecordKind::Contact, &field(Some("12"), None), &ch),
            Verdict::Invalid("not_valid")
        ));
        assert!(matches!(
            judge(RecordKind::Account, &field(Some("12"), None), &ch),
            Verdict::Invalid("not_valid")
        ));
        assert!(matches!(
            judge(RecordKind::Account, &field(None, Some("call me")), &ch),
            Verdict::Invalid("not_a_number")
        ));
        assert!(matches!(
            judge(RecordKind::Account, &field(None, Some("+41441234567")), &ch),
            Verdict::Fine
        ));
    }
}
