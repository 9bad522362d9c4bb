//! Putting the records behind one number in order for the rep who takes the call.
//!
//! A main line often belongs to an account and to several of its contacts; the first match is the
//! one V2 opens, so the order matters as much as the match. The rep's own earlier choice for the
//! number always wins; after it come the tenant's rules, then the name (so the order is stable).

use std::cmp::Ordering;
use std::str::FromStr;

use cti_protocol::ws::RecordKind;

use super::record::IndexedRecord;

/// One criterion of a tenant's match order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// Records the rep owns first.
    OwnedByRep,
    /// Records whose account has open opportunities first.
    OpenOpportunity,
    /// The most recent phone activity first.
    LatestActivity,
    /// By kind, in the tenant's kind order (default: contact, individual customer, account).
    Kind,
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "owner" => Ok(Rule::OwnedByRep),
            "open_opportunity" => Ok(Rule::OpenOpportunity),
            "latest_activity" => Ok(Rule::LatestActivity),
            "kind" => Ok(Rule::Kind),
            other => Err(format!(
                "unknown match rule {other:?} (expected owner, open_opportunity, latest_activity or kind)"
            )),
        }
    }
}

/// A tenant's match order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankRules {
    pub rules: Vec<Rule>,
    pub kinds: Vec<RecordKind>,
}

impl Default for RankRules {
    fn default() -> Self {
        RankRules {
            rules: vec![
                Rule::OwnedByRep,
                Rule::OpenOpportunity,
                Rule::LatestActivity,
                Rule::Kind,
            ],
            kinds: vec![
                RecordKind::Contact,
                RecordKind::IndividualCustomer,
                RecordKind::Account,
            ],
        }
    }
}

/// Parses a kind name as configured (`contact`, `individual_customer`, `account`).
pub fn parse_kind(s: &str) -> Result<RecordKind, String> {
    match s.trim() {
        "contact" => Ok(RecordKind::Contact),
        "individual_customer" => Ok(RecordKind::IndividualCustomer),
        "account" => Ok(RecordKind::Account),
        other => Err(format!(
            "unknown record kind {other:?} (expected contact, individual_customer or account)"
        )),
    }
}

/// Who asks: the rep's V2 employee id (when known) and the record they chose for this number
/// before (when they did).
#[derive(Debug, Clone, Copy, Default)]
pub struct RankContext<'a> {
    pub rep_employee_id: Option<&'a str>,
    pub remembered: Option<&'a str>,
}

/// Sorts `records` best first.
pub fn rank(records: &mut [IndexedRecord], rules: &RankRules, ctx: &RankContext<'_>) {
    records.sort_by(|a, b| compare(a, b, rules, ctx));
}

fn compare(
    a: &IndexedRecord,
    b: &IndexedRecord,
    rules: &RankRules,
    ctx: &RankContext<'_>,
) -> Ordering {
    // `true` sorts first: compare b to a.
    let remembered = |r: &IndexedRecord| ctx.remembered == Some(r.id.as_str());
    let mut order = remembered(b).cmp(&remembered(a));
    for rule in &rules.rules {
        if order != Ordering::Equal {
            return order;
        }
        order = match rule {
            Rule::OwnedByRep => {
                let owned = |r: &IndexedRecord| {
                    ctx.rep_employee_id.is_some() && r.owner_id.as_deref() == ctx.rep_employee_id
                };
                owned(b).cmp(&owned(a))
            }
            Rule::OpenOpportunity => (b.open_opportunities > 0).cmp(&(a.open_opportunities > 0)),
            // None sorts before Some: the record with any activity, then the latest, comes first.
            Rule::LatestActivity => b.last_activity.cmp(&a.last_activity),
            Rule::Kind => {
                let position = |r: &IndexedRecord| {
                    rules
                        .kinds
                        .iter()
                        .position(|k| *k == r.kind)
                        .unwrap_or(rules.kinds.len())
                };
                position(a).cmp(&position(b))
            }
        };
    }
    order
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.id.cmp(&b.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, kind: RecordKind) -> IndexedRecord {
        IndexedRecord {
            kind,
            id: id.into(),
            display_id: id.into(),
            name: format!("name {id}"),
            account: None,
            owner_id: None,
            open_opportunities: 0,
            last_activity: None,
        }
    }

    fn ids(records: &[IndexedRecord]) -> Vec<&str> {
        records.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn by_default_the_person_comes_before_the_company() {
        let mut records = vec![
            record("acc", RecordKind::Account),
            record("ic", RecordKind::IndividualCustomer),
            record("con", RecordKind::Contact),
        ];
        rank(&mut records, &RankRules::default(), &RankContext::default());
        assert_eq!(ids(&records), ["con", "ic", "acc"]);
    }

    #[test]
    fn the_reps_own_record_beats_kind_and_the_remembered_choice_beats_everything() {
        let mut own_account = record("acc", RecordKind::Account);
        own_account.owner_id = Some("emp-1".into());
        let mut with_opportunity = record("con-1", RecordKind::Contact);
        with_opportunity.open_opportunities = 2;
        let mut records = vec![
            record("con-2", RecordKind::Contact),
            with_opportunity,
            own_account,
        ];
        let ctx = RankContext {
            rep_employee_id: Some("emp-1"),
            remembered: None,
        };
        rank(&mut records, &RankRules::default(), &ctx);
        assert_eq!(ids(&records), ["acc", "con-1", "con-2"]);

        let ctx = RankContext {
            remembered: Some("con-2"),
            ..ctx
        };
        rank(&mut records, &RankRules::default(), &ctx);
        assert_eq!(ids(&records), ["con-2", "acc", "con-1"]);
    }

    #[test]
    fn latest_activity_orders_the_rest_and_the_tenant_can_reorder_rules() {
        let mut old = record("old", RecordKind::Contact);
        old.last_activity = Some("2026-01-02T10:00:00Z".into());
        let mut recent = record("recent", RecordKind::Account);
        recent.last_activity = Some("2026-10-02T10:00:00Z".into());
        let never = record("never", RecordKind::Contact);
        let mut records = vec![never, old, recent];
        rank(&mut records, &RankRules::default(), &RankContext::default());
        assert_eq!(ids(&records), ["recent", "old", "never"]);

        let accounts_first = RankRules {
            rules: vec![Rule::Kind, Rule::LatestActivity],
            kinds: vec![RecordKind::Account, RecordKind::Contact],
        };
        rank(&mut records, &accounts_first, &RankContext::default());
        assert_eq!(ids(&records), ["recent", "old", "never"]);
        let contacts_first = RankRules {
            rules: vec![Rule::Kind, Rule::LatestActivity],
            ..RankRules::default()
        };
        rank(&mut records, &contacts_first, &RankContext::default());
        assert_eq!(ids(&records), ["old", "never", "recent"]);
    }

    #[test]
    fn rules_and_kinds_parse_with_clear_errors() {
        assert_eq!("owner".parse::<Rule>(), Ok(Rule::OwnedByRep));
        assert!(
            "loudest"
                .parse::<Rule>()
                .expect_err("unknown")
                .contains("loudest")
        );
        assert_eq!(parse_kind("account"), Ok(RecordKind::Account));
        assert!(parse_kind("lead").is_err());
    }
}
