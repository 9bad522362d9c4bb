//! "Recent calls": the rep's last finished calls under the current one, each with a call back.
//!
//! A `<details>` section, closed by default so the narrow panel stays on the call at hand; its
//! summary says how many calls it holds and how many were missed, so a missed call is noticed
//! without opening it. The browser makes the summary a button that Enter and Space toggle.

use cti_protocol::ActivityState;
use yew::prelude::*;

use super::UiAction;
use super::format;
use crate::history::Entry;
use crate::i18n::{Arg, use_i18n};

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct RecentCallsProps {
    /// Newest first.
    pub entries: Vec<Entry>,
    /// The relay is reachable: a call back has something to go out on.
    pub online: bool,
    pub on_action: Callback<UiAction>,
}

#[component]
pub fn RecentCalls(props: &RecentCallsProps) -> Html {
    let i18n = use_i18n();
    let missed = props.entries.iter().filter(|e| e.is_missed()).count();
    html! {
        <details class="history" data-testid="history">
            <summary class="history-summary" data-testid="history-toggle">
                <span class="history-title">
                    { i18n.t_args("history-title", &[("count", count(props.entries.len()))]) }
                </span>
                if missed > 0 {
                    <span class="history-missed-count" data-testid="history-missed">
                        { i18n.t_args("history-missed", &[("count", count(missed))]) }
                    </span>
                }
            </summary>
            <ol class="history-list" aria-label={i18n.t("history-label")}>
                { for props.entries.iter().map(|entry| html! {
                    <Row
                        key={entry.call_id.clone()}
                        entry={entry.clone()}
                        online={props.online}
                        on_action={props.on_action.clone()}
                    />
                }) }
            </ol>
        </details>
    }
}

/// A count for a message's plural forms (the history holds at most twenty calls).
fn count(n: usize) -> Arg {
    Arg::from(i64::try_from(n).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct RowProps {
    entry: Entry,
    online: bool,
    on_action: Callback<UiAction>,
}

/// One call: who (the record's name, else the number), the record kind and number, when, how it
/// ended with the rep's outcome, where its activity stands, and the call back.
#[component]
fn Row(props: &RowProps) -> Html {
    let i18n = use_i18n();
    let entry = &props.entry;
    let number = entry.shown_number().to_owned();
    let who = entry
        .record
        .as_ref()
        .map_or_else(|| number.clone(), |record| record.name.clone());
    let direction = match entry.direction {
        cti_protocol::Direction::Outbound => i18n.t("history-outbound"),
        _ => i18n.t("history-inbound"),
    };
    let call_back = {
        let on_action = props.on_action.clone();
        let number = entry.number.clone();
        Callback::from(move |_: MouseEvent| {
            on_action.emit(UiAction::Dial {
                number: number.clone(),
            });
        })
    };
    let label = if entry.record.is_some() {
        i18n.t_args(
            "history-call-back-label",
            &[
                ("who", who.clone().into()),
                ("number", number.clone().into()),
            ],
        )
    } else {
        i18n.t_args(
            "history-call-back-number-label",
            &[("number", number.clone().into())],
        )
    };
    let outcome = entry.outcome_name();
    html! {
        <li class={classes!("history-row", format!("history-{outcome}"))}
            data-testid="history-row" data-call-id={entry.call_id.clone()} data-outcome={outcome}>
            <div class="history-who">
                <span class="history-caller" data-testid="history-caller">{ who }</span>
                if let Some(record) = &entry.record {
                    <span class="history-record" data-testid="history-record">
                        { i18n.t(format::kind_label(record.kind)) }
                        { " · " }
                        <span class="history-number">{ number.clone() }</span>
                    </span>
                }
            </div>
            <p class="history-meta">
                <span class="visually-hidden">{ direction }{ ", " }</span>
                <time datetime={entry.started_at.clone()} data-testid="history-time">
                    { crate::intl::date_time(&entry.started_at, i18n.lang().formatting_locale(), None) }
                </time>
                { " · " }
                <span class="history-outcome" data-testid="history-outcome">
                    { i18n.t(entry.outcome_id()) }
                </span>
                if let Some(disposition) = &entry.disposition {
                    { " · " }
                    <span data-testid="history-disposition">{ disposition.clone() }</span>
                }
            </p>
            if let Some(activity) = &entry.activity {
                <p class="history-activity" data-testid="history-activity"
                    data-state={match activity.state {
                        ActivityState::Logged => "logged",
                        ActivityState::Failed => "failed",
                        _ => "pending",
                    }}>
                    { match activity.state {
                        ActivityState::Logged => html! {
                            <>
                                { i18n.t("activity-logged") }
                                if let Some(link) = activity.link.clone() {
                                    { " " }
                                    <a href={link} target="_blank" rel="noopener" data-testid="history-activity-link">
                                        { activity.display_id.clone().map_or_else(|| i18n.t("activity-open"), |d| format!("#{d}")) }
                                    </a>
                                }
                            </>
                        },
                        ActivityState::Failed => html! { { i18n.t("history-activity-failed") } },
                        _ => html! { { i18n.t("activity-logging") } },
                    } }
                </p>
            }
            if entry.can_call_back() {
                <button type="button" class="btn btn-secondary history-call-back"
                    data-testid="btn-call-back" data-number={entry.number.clone()}
                    aria-label={label} disabled={!props.online} onclick={call_back}>
                    { i18n.t("history-call-back") }
                </button>
            }
        </li>
    }
}
