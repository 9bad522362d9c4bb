//! A provider's later account of a leg, applied to it: the exact times and the other party from
//! a call record that arrives after the live events made the leg (and perhaps its activity).
//!
//! The leg changes through [`legs::update`], so a leg already over is queued again as its
//! call's activity. The outbox holds one entry per call and the writer updates the activity V2
//! has (found by the call's reference, changed with `If-Match`): the call stays one activity
//! whether the amendment comes before or after it was first written. Only what the provider
//! knows better changes; the leg's state, notes, disposition and the record the rep picked stay.

use std::sync::Arc;

use cti_protocol::event::Direction;
use cti_protocol::ws::Match;

use super::legs::{self, LegError};
use super::matching;
use crate::adapters::Amendment;
use crate::calls::Leg;
use crate::clock::instant;
use crate::numbers::{Normalized, normalize};
use crate::secret::mask_number;
use crate::state::{AppState, Tenant};

/// The other party as an amendment names it, normalized and matched for the leg's rep.
struct Remote {
    raw: String,
    normalized: Option<Normalized>,
    matches: Vec<Match>,
}

/// Applies the amendment to its leg. `Ok(false)`: there was nothing to change (or no such leg
/// here: a call this relay never showed has nothing to amend).
pub async fn amend(
    state: &Arc<AppState>,
    tenant: &Arc<Tenant>,
    amendment: &Amendment,
) -> Result<bool, LegError> {
    let tid = tenant.config.id.as_str();
    // The rep id under the rule every event's follows.
    let agent = crate::identity::rep_id(&amendment.agent);
    let Some(leg) = state.calls.get(tid, &amendment.call_id, &agent).await? else {
        tracing::debug!(call = %amendment.call_id, "no leg to amend");
        return Ok(false);
    };
    // Matched before the leg is locked: the lookup may ask V2.
    let remote = match amendment.remote.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() && leg.remote().is_empty() => {
            Some(remote(state, tenant, &agent, raw).await)
        }
        _ => None,
    };
    let mut changed = false;
    let updated = legs::update(state, tenant, &amendment.call_id, &agent, |leg| {
        changed = apply(leg, amendment, remote.as_ref(), tenant);
        Ok::<_, LegError>(changed)
    })
    .await;
    match updated {
        Ok(leg) => {
            if changed {
                tracing::info!(call = %leg.id, caller = %mask_number(leg.remote()),
                    "call amended from the provider's record");
            }
            Ok(changed)
        }
        Err(LegError::UnknownCall(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

async fn remote(state: &Arc<AppState>, tenant: &Arc<Tenant>, agent: &str, raw: &str) -> Remote {
    let Ok(normalized) = normalize(raw, &tenant.region) else {
        return Remote {
            raw: raw.to_string(),
            normalized: None,
            matches: Vec::new(),
        };
    };
    // No pop waits on this: the whole lookup is waited for, not the push budget.
    let (mut records, pending) = matching::lookup_caller(state, tenant, &normalized.e164).await;
    if let Some(pending) = pending {
        records = pending.await.unwrap_or_default();
    }
    let records = matching::ranked(state, tenant, agent, &normalized.e164, records).await;
    Remote {
        raw: raw.to_string(),
        matches: records.into_iter().map(matching::to_match).collect(),
        normalized: Some(normalized),
    }
}

/// The amendment on the leg; whether anything changed.
fn apply(leg: &mut Leg, amendment: &Amendment, remote: Option<&Remote>, tenant: &Tenant) -> bool {
    let before = leg.clone();
    if let Some(direction) = amendment.direction
        && leg.remote().is_empty()
        && direction != leg.direction
    {
        // Only a leg that knows nobody on the other side was guessing its direction.
        std::mem::swap(&mut leg.from, &mut leg.to);
        leg.direction = direction;
    }
    if let Some(remote) = remote.filter(|_| leg.remote().is_empty()) {
        let number = remote
            .normalized
            .as_ref()
            .map_or_else(|| remote.raw.clone(), |n| n.e164.clone());
        match leg.direction {
            Direction::Inbound => leg.from = number,
            Direction::Outbound => leg.to = number,
        }
        leg.remote_display = remote
            .normalized
            .as_ref()
            .map_or_else(|| remote.raw.clone(), |n| n.international.clone());
        leg.remote_extension = remote.normalized.as_ref().and_then(|n| n.extension.clone());
        if leg.matches.is_empty() && !remote.matches.is_empty() {
            leg.matches = remote.matches.clone();
            leg.pop = leg.matches.first().cloned();
        }
        if leg
            .wrap_up
            .consent
            .as_ref()
            .is_none_or(|c| c.confirmed_by.is_none())
        {
            // The rule may be stricter where the caller is.
            leg.wrap_up.consent = Some(tenant.consent.decide(
                &tenant.config.default_region,
                remote.normalized.as_ref().and_then(|n| n.region.as_deref()),
            ));
        }
    }
    if let Some(at) = valid(&amendment.started_at) {
        leg.started_at = at.to_string();
    }
    if let Some(at) = valid(&amendment.ended_at)
        && leg.state.is_final()
    {
        // A leg still live ends by its own event; the record's end waits for it.
        leg.ended_at = Some(at.to_string());
    }
    if let Some(at) = valid(&amendment.answered_at)
        && leg.answered_at.is_some()
    {
        // The record says when, never whether: a leg nobody answered stays unanswered.
        leg.answered_at = Some(at.to_string());
    }
    keep_in_order(leg);
    *leg != before
}

/// A time the relay can read; anything else is ignored rather than stored.
fn valid(at: &Option<String>) -> Option<&str> {
    at.as_deref().filter(|at| instant(at).is_some())
}

/// Start, answer and end in that order, whichever of them the record moved: the answer between
/// the others, the end not before the start.
fn keep_in_order(leg: &mut Leg) {
    let Some(start) = instant(&leg.started_at) else {
        return;
    };
    if let Some(end) = leg.ended_at.as_deref().and_then(instant)
        && end < start
    {
        leg.ended_at = Some(leg.started_at.clone());
    }
    if let Some(answered) = leg.answered_at.as_deref().and_then(instant) {
        let end = leg.ended_at.as_deref().and_then(instant);
        if answered < start {
            leg.answered_at = Some(leg.started_at.clone());
        } else if let (Some(end), Some(text)) = (end, leg.ended_at.clone())
            && answered > end
        {
            leg.answered_at = Some(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::leg::fixtures::ringing;
    use cti_protocol::ws::CallState;

    fn tenant() -> Arc<Tenant> {
        let clock: crate::clock::SharedClock = Arc::new(crate::clock::SystemClock);
        let state = AppState::with_parts(
            crate::config::Config::demo("http://127.0.0.1:9"),
            crate::state::Stores::memory(clock.clone()),
            clock,
        )
        .expect("state");
        state.tenant("demo").expect("demo tenant").clone()
    }

    fn ended_leg() -> Leg {
        let mut leg = ringing("c-1", "alice");
        leg.state = CallState::Ended;
        leg.answered_at = Some("2026-12-02T10:00:05.120Z".into());
        leg.ended_at = Some("2026-12-02T10:03:00.500Z".into());
        leg
    }

    fn alices() -> Amendment {
        Amendment {
            call_id: "c-1".into(),
            agent: "alice".into(),
            ..Amendment::default()
        }
    }

    #[test]
    fn the_records_times_replace_the_ones_heard_live() {
        let tenant = tenant();
        let mut leg = ended_leg();
        let amendment = Amendment {
            started_at: Some("2026-12-02T09:59:58.010Z".into()),
            answered_at: Some("2026-12-02T10:00:04.900Z".into()),
            ended_at: Some("2026-12-02T10:02:59.950Z".into()),
            ..alices()
        };
        assert!(apply(&mut leg, &amendment, None, &tenant));
        assert_eq!(leg.started_at, "2026-12-02T09:59:58.010Z");
        assert_eq!(leg.answered_at.as_deref(), Some("2026-12-02T10:00:04.900Z"));
        assert_eq!(leg.ended_at.as_deref(), Some("2026-12-02T10:02:59.950Z"));
        assert!(
            !apply(&mut leg, &amendment, None, &tenant),
            "once is enough"
        );
    }

    #[test]
    fn a_record_never_answers_a_missed_call_nor_ends_a_live_one() {
        let tenant = tenant();
        let mut missed = ended_leg();
        missed.answered_at = None;
        let amendment = Amendment {
            answered_at: Some("2026-12-02T10:00:04Z".into()),
            ..alices()
        };
        assert!(!apply(&mut missed, &amendment, None, &tenant));
        assert_eq!(missed.answered_at, None);
        let mut live = ringing("c-1", "alice");
        let end = Amendment {
            ended_at: Some("2026-12-02T10:09:00Z".into()),
            ..alices()
        };
        assert!(!apply(&mut live, &end, None, &tenant));
        assert_eq!(live.ended_at, None);
    }

    #[test]
    fn unreadable_times_are_ignored_and_the_order_is_kept() {
        let tenant = tenant();
        let mut leg = ended_leg();
        let amendment = Amendment {
            started_at: Some("yesterday".into()),
            ended_at: Some("2026-12-02T09:00:00Z".into()),
            ..alices()
        };
        apply(&mut leg, &amendment, None, &tenant);
        assert_eq!(leg.started_at, "2026-12-02T10:00:00Z");
        assert_eq!(leg.ended_at.as_deref(), Some("2026-12-02T10:00:00Z"));
        assert_eq!(leg.answered_at.as_deref(), Some("2026-12-02T10:00:00Z"));
    }

    #[test]
    fn the_other_party_fills_a_leg_without_one_and_never_replaces_a_known_number() {
        let tenant = tenant();
        let mut unknown = ended_leg();
        unknown.from = String::new();
        unknown.to = String::new();
        let remote = Remote {
            raw: "+41 44 555 66 77".into(),
            normalized: normalize("+41 44 555 66 77", &tenant.region).ok(),
            matches: Vec::new(),
        };
        let outbound = Amendment {
            direction: Some(Direction::Outbound),
            remote: Some(remote.raw.clone()),
            ..alices()
        };
        assert!(apply(&mut unknown, &outbound, Some(&remote), &tenant));
        assert_eq!(unknown.direction, Direction::Outbound);
        assert_eq!(unknown.to, "+41445556677");
        assert_eq!(unknown.remote_display, "+41 44 555 66 77");
        let mut known = ended_leg();
        let before = known.from.clone();
        apply(&mut known, &outbound, Some(&remote), &tenant);
        assert_eq!(known.from, before);
        assert_eq!(
            known.direction,
            Direction::Inbound,
            "a known call's direction stays"
        );
    }
}
