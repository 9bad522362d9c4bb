//! The rep's recent calls: the last [`CAPACITY`] finished calls, newest first, so a missed call
//! can be called back from the panel.
//!
//! The history is built in the widget from the `call` messages it receives (live, or replayed
//! after a reconnect), not asked of the relay: the relay keeps no list of a rep's past calls, only
//! its replay buffer (see the README's widget section for how far that reaches). The leader tab
//! records each finished call and stores the list where the rep's tabs share it
//! (`cti.history:<rep>`), tagged with the tenant it belongs to; the other tabs show it through the
//! leader's view. A later message about a call already listed (its activity got logged, the rep
//! picked an outcome) updates its row in place.
//!
//! Pure: parsing, ordering and the cap are tested without a page.

use cti_protocol::{ActivityStatus, CallState, CallView, Direction, EndReason, RecordKind};
use serde::{Deserialize, Serialize};

use crate::intl::parse_rfc3339_ms;
use crate::ui::caller::primary_match;
use crate::ui::format::ended_as;

/// How many calls the history keeps.
pub const CAPACITY: usize = 20;

/// Where the history is kept, shared by the rep's tabs (`cti.history:<rep>`).
pub fn history_key(rep: &str) -> String {
    format!("cti.history:{rep}")
}

/// The version of the stored form; a stored history of another version is ignored.
const VERSION: u32 = 1;

/// Why a stored history was not taken.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("the stored call history is not readable: {0}")]
    Unreadable(#[from] serde_json::Error),
    #[error("the stored call history has version {found}, this widget reads {VERSION}")]
    Version { found: u32 },
}

/// The record a call was matched to, as its row names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRef {
    pub kind: RecordKind,
    pub name: String,
    #[serde(default)]
    pub display_id: String,
}

/// One finished call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub call_id: String,
    pub direction: Direction,
    /// The remote party's number as the relay sent it (E.164 where it could normalize it): what a
    /// call back dials.
    pub number: String,
    /// The same number formatted for people, for the row.
    #[serde(default)]
    pub display: String,
    #[serde(default)]
    pub record: Option<RecordRef>,
    /// RFC 3339, from the telephony source's clock.
    pub started_at: String,
    /// `Transferred` or `Ended`.
    pub state: CallState,
    #[serde(default)]
    pub end_reason: Option<EndReason>,
    #[serde(default)]
    pub answered: bool,
    #[serde(default)]
    pub disposition: Option<String>,
    #[serde(default)]
    pub activity: Option<ActivityStatus>,
}

impl Entry {
    /// The row for a finished call.
    fn from_call(call: &CallView) -> Entry {
        Entry {
            call_id: call.id.clone(),
            direction: call.direction,
            number: call.remote().trim().to_owned(),
            display: call.remote_display.trim().to_owned(),
            record: primary_match(call).map(|record| RecordRef {
                kind: record.kind,
                name: record.name.clone(),
                display_id: record.display_id.clone(),
            }),
            started_at: call.started_at.clone(),
            state: call.state,
            end_reason: call.end_reason,
            answered: call.answered_at.is_some(),
            disposition: call.wrap_up.disposition.clone(),
            activity: call.wrap_up.activity.clone(),
        }
    }

    /// An inbound call nobody answered: the one a rep most wants to call back.
    pub fn is_missed(&self) -> bool {
        self.direction == Direction::Inbound
            && !self.answered
            && self.state == CallState::Ended
            && matches!(self.end_reason, Some(EndReason::Missed) | None)
    }

    /// The number as people read it.
    pub fn shown_number(&self) -> &str {
        if self.display.is_empty() {
            &self.number
        } else {
            &self.display
        }
    }

    /// Whether there is a number to call back: a withheld or anonymous caller has none.
    pub fn can_call_back(&self) -> bool {
        let digits = self.number.chars().filter(char::is_ascii_digit).count();
        digits >= 3
            && self
                .number
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
    }

    /// The message id of the row's outcome; the same words as the ended call's summary.
    /// An unanswered inbound call without a named reason reads as missed.
    pub fn outcome_id(&self) -> &'static str {
        match ended_as(self.state, self.end_reason) {
            "end-other" if !self.answered && self.direction == Direction::Inbound => "end-missed",
            id => id,
        }
    }

    /// The `data-outcome` of the row: `missed`, `answered`, `transferred` or `other`.
    pub fn outcome_name(&self) -> &'static str {
        if self.state == CallState::Transferred {
            "transferred"
        } else if self.is_missed() {
            "missed"
        } else if self.answered {
            "answered"
        } else {
            "other"
        }
    }

    fn sort_key(&self) -> i64 {
        parse_rfc3339_ms(&self.started_at).unwrap_or(i64::MIN)
    }
}

/// The rep's recent calls, newest first. See the module documentation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    version: u32,
    /// The tenant the calls belong to, once a relay's welcome named it.
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    entries: Vec<Entry>,
}

impl History {
    /// The stored history, or why it cannot be used.
    pub fn from_json(json: &str) -> Result<History, HistoryError> {
        let mut history: History = serde_json::from_str(json)?;
        if history.version != VERSION {
            return Err(HistoryError::Version {
                found: history.version,
            });
        }
        // Whatever another build or a hand edit left there, the rules still hold.
        history.normalize();
        Ok(history)
    }

    pub fn to_json(&self) -> String {
        let stored = History {
            version: VERSION,
            ..self.clone()
        };
        // A struct of strings, numbers and enums always serializes.
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// The calls, newest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The relay welcomed the rep for `tenant`: a history kept for another tenant is not theirs
    /// here, and starts over. True when that changed what is stored.
    pub fn for_tenant(&mut self, tenant: &str) -> bool {
        match &self.tenant {
            Some(known) if known == tenant => false,
            Some(_) => {
                self.entries.clear();
                self.tenant = Some(tenant.to_owned());
                true
            }
            None => {
                self.tenant = Some(tenant.to_owned());
                true
            }
        }
    }

    /// Takes the latest view of a call: a finished call gets (or updates) its row; a call still
    /// in progress changes nothing. True when the history changed.
    pub fn record(&mut self, call: &CallView) -> bool {
        if !call.state.is_final() || call.id.trim().is_empty() {
            return false;
        }
        let before = self.entries.clone();
        let entry = Entry::from_call(call);
        if let Some(listed) = self.entries.iter_mut().find(|e| e.call_id == entry.call_id) {
            *listed = entry;
        } else {
            self.entries.push(entry);
        }
        self.normalize();
        self.entries != before
    }

    /// Newest first (a start time that does not parse sorts last), one row per call, at most
    /// [`CAPACITY`].
    fn normalize(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.entries.retain(|e| seen.insert(e.call_id.clone()));
        // Stable: calls that started in the same millisecond keep the order they came in.
        self.entries
            .sort_by_key(|entry| std::cmp::Reverse(entry.sort_key()));
        self.entries.truncate(CAPACITY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::call;
    use cti_protocol::ActivityState;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// A finished call that started `minute` minutes after 10:00.
    fn ended(id: &str, minute: u32) -> CallView {
        let mut view = call(id, CallState::Ended);
        view.started_at = format!("2026-11-24T10:{minute:02}:00Z");
        view.end_reason = Some(EndReason::Missed);
        view
    }

    #[wasm_bindgen_test]
    fn only_finished_calls_are_listed_newest_first() {
        let mut history = History::default();
        assert!(!history.record(&call("live", CallState::Ringing)));
        assert!(!history.record(&call("live", CallState::Connected)));
        assert!(history.record(&ended("a", 1)));
        assert!(history.record(&ended("c", 3)));
        assert!(history.record(&ended("b", 2)));
        let mut transferred = call("t", CallState::Transferred);
        transferred.started_at = "2026-11-24T10:04:00Z".into();
        assert!(history.record(&transferred));
        let ids: Vec<_> = history
            .entries()
            .iter()
            .map(|e| e.call_id.as_str())
            .collect();
        assert_eq!(ids, ["t", "c", "b", "a"]);
        assert_eq!(history.entries()[0].outcome_name(), "transferred");
        assert_eq!(history.entries()[1].outcome_name(), "missed");
        assert_eq!(history.entries()[1].outcome_id(), "end-missed");
        let row = &history.entries()[1];
        assert_eq!(row.number, "+41441234567");
        assert_eq!(row.shown_number(), "+41 44 123 45 67");
        assert_eq!(
            row.record.as_ref().map(|r| r.name.as_str()),
            Some("Anna Meier")
        );
        assert!(row.can_call_back());
    }

    #[wasm_bindgen_test]
    fn the_history_keeps_the_newest_twenty() {
        let mut history = History::default();
        for minute in 0..25 {
            history.record(&ended(&format!("c{minute}"), minute));
        }
        assert_eq!(history.entries().len(), CAPACITY);
        assert_eq!(history.entries()[0].call_id, "c24");
        assert_eq!(history.entries()[CAPACITY - 1].call_id, "c5");
        // A call older than all twenty does not push a newer one out.
        assert!(!history.record(&ended("old", 0)));
        assert!(history.entries().iter().all(|e| e.call_id != "old"));
    }

    #[wasm_bindgen_test]
    fn a_later_view_updates_the_row_in_place() {
        let mut history = History::default();
        let mut view = ended("c1", 1);
        view.answered_at = Some("2026-11-24T10:01:05Z".into());
        view.end_reason = Some(EndReason::Completed);
        view.wrap_up.activity = Some(ActivityStatus::pending());
        history.record(&ended("c0", 0));
        assert!(history.record(&view));
        assert_eq!(history.entries()[0].outcome_name(), "answered");
        assert!(
            !history.record(&view),
            "the same view again changes nothing"
        );

        view.wrap_up.disposition = Some("Interested".into());
        view.wrap_up.activity = Some(ActivityStatus {
            state: ActivityState::Logged,
            v2_id: Some("uuid".into()),
            display_id: Some("4711".into()),
            link: Some("https://t.crm.cloud.sap/activity/uuid".into()),
            reason: None,
        });
        assert!(history.record(&view));
        assert_eq!(history.entries().len(), 2);
        let row = &history.entries()[0];
        assert_eq!(row.disposition.as_deref(), Some("Interested"));
        let activity = row.activity.as_ref().expect("activity");
        assert_eq!(activity.state, ActivityState::Logged);
        assert_eq!(activity.display_id.as_deref(), Some("4711"));
    }

    #[wasm_bindgen_test]
    fn a_stored_history_reads_back_the_same() {
        let mut history = History::default();
        history.for_tenant("t1");
        history.record(&ended("c1", 1));
        let mut out = call("o1", CallState::Ended);
        out.direction = Direction::Outbound;
        out.started_at = "2026-11-24T10:02:00Z".into();
        out.end_reason = Some(EndReason::Missed);
        history.record(&out);
        let back = History::from_json(&history.to_json()).expect("reads");
        assert_eq!(back.entries(), history.entries());
        assert_eq!(
            back.entries()[0].number,
            "+41449990000",
            "an outbound call's number is `to`"
        );
        assert!(
            !back.entries()[0].is_missed(),
            "nobody picked up, but the rep called"
        );
        assert_eq!(back.tenant.as_deref(), Some("t1"));
    }

    #[wasm_bindgen_test]
    fn unreadable_or_foreign_stored_histories_are_refused() {
        assert!(matches!(
            History::from_json("{not json"),
            Err(HistoryError::Unreadable(_))
        ));
        assert!(matches!(
            History::from_json(r#"{"version":1,"entries":[{"call_id":7}]}"#),
            Err(HistoryError::Unreadable(_))
        ));
        assert!(matches!(
            History::from_json(r#"{"version":2,"entries":[]}"#),
            Err(HistoryError::Version { found: 2 })
        ));
        // Stored by hand or an older build: over the cap, duplicated, unordered. Read back by the
        // rules.
        let mut history = History::default();
        for minute in 0..CAPACITY as u32 {
            history.record(&ended(&format!("c{minute}"), minute));
        }
        let mut stored: serde_json::Value = serde_json::from_str(&history.to_json()).expect("json");
        let entries = stored["entries"].as_array_mut().expect("entries");
        entries.reverse();
        let first = entries[0].clone();
        entries.push(first);
        let mut extra = entries[1].clone();
        extra["call_id"] = "late".into();
        extra["started_at"] = "2026-11-24T11:00:00Z".into();
        entries.push(extra);
        let back = History::from_json(&stored.to_string()).expect("reads");
        assert_eq!(back.entries().len(), CAPACITY);
        assert_eq!(back.entries()[0].call_id, "late");
        assert_eq!(back.entries()[CAPACITY - 1].call_id, "c1");
    }

    #[wasm_bindgen_test]
    fn another_tenant_starts_over() {
        let mut history = History::default();
        assert!(history.for_tenant("t1"));
        history.record(&ended("c1", 1));
        assert!(!history.for_tenant("t1"));
        assert_eq!(history.entries().len(), 1);
        assert!(history.for_tenant("t2"));
        assert!(history.entries().is_empty());
    }

    #[wasm_bindgen_test]
    fn withheld_numbers_are_not_called_back() {
        let mut view = ended("c1", 1);
        for (number, callable) in [
            ("+41441234567", true),
            ("044 123 45 67", true),
            ("anonymous", false),
            ("", false),
            ("12", false),
            ("+41 44 123 45 67;ext=1", false),
        ] {
            view.from = number.into();
            assert_eq!(
                Entry::from_call(&view).can_call_back(),
                callable,
                "{number}"
            );
        }
    }

    #[wasm_bindgen_test]
    fn every_outcome_id_is_translated() {
        use crate::i18n::{Lang, message_ids};
        let mut ids = Vec::new();
        for reason in [
            None,
            Some(EndReason::Completed),
            Some(EndReason::Missed),
            Some(EndReason::Declined),
            Some(EndReason::Failed),
        ] {
            for direction in [Direction::Inbound, Direction::Outbound] {
                let mut view = ended("c1", 1);
                view.end_reason = reason;
                view.direction = direction;
                ids.push(Entry::from_call(&view).outcome_id());
            }
        }
        ids.push(Entry::from_call(&call("t", CallState::Transferred)).outcome_id());
        for lang in Lang::ALL {
            let known = message_ids(lang.resource()).expect("parses");
            for id in &ids {
                assert!(
                    known.iter().any(|k| k == id),
                    "{}.ftl lacks {id}",
                    lang.code()
                );
            }
        }
    }
}
