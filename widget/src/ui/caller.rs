//! What the card knows about the caller: the record to pop, its open deals and recent contact,
//! and the other records that share the number.

use cti_protocol::{CallView, Match};
use yew::prelude::*;

use super::format;
use crate::i18n::use_i18n;

/// The record the card is about: the relay's pop choice, else its best match.
pub fn primary_match(call: &CallView) -> Option<&Match> {
    call.pop.as_ref().or_else(|| call.matches.first())
}

/// Every other record that carries the number, best first.
pub fn other_matches(call: &CallView) -> Vec<&Match> {
    let primary = primary_match(call).map(|m| (m.kind, m.id.as_str()));
    call.matches
        .iter()
        .filter(|m| Some((m.kind, m.id.as_str())) != primary)
        .collect()
}

/// The account line under the name: left out when the record is the account itself.
fn account_name(record: &Match) -> Option<&str> {
    record
        .account
        .as_ref()
        .map(|account| account.name.as_str())
        .filter(|name| !name.is_empty() && *name != record.name)
}

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct CallerProps {
    pub record: Match,
}

/// Kind and account of the matched record, e.g. "Contact · Acme AG".
#[component]
pub fn RecordLine(props: &CallerProps) -> Html {
    let i18n = use_i18n();
    let record = &props.record;
    html! {
        <p class="caller-record">
            <span class="record-kind" data-testid="caller-kind">{ i18n.t(format::kind_label(record.kind)) }</span>
            if let Some(account) = account_name(record) {
                <span class="separator" aria-hidden="true">{ " · " }</span>
                <span class="record-account" data-testid="caller-account">{ account.to_owned() }</span>
            }
        </p>
    }
}

/// Open opportunities and last interactions of the matched record.
#[component]
pub fn RecordDetails(props: &CallerProps) -> Html {
    let i18n = use_i18n();
    let record = &props.record;
    html! {
        <>
            if !record.open_opportunities.is_empty() {
                <section class="detail" data-testid="opportunities" aria-label={i18n.t("open-opportunities")}>
                    <h3>{ i18n.t("open-opportunities") }</h3>
                    <ul>
                        { for record.open_opportunities.iter().map(|opportunity| {
                            let amount = opportunity
                                .amount
                                .map(|value| i18n.amount(value, opportunity.currency.as_deref()));
                            html! {
                                <li class="opportunity">
                                    <span class="item-title">{ opportunity.name.clone() }</span>
                                    <span class="item-meta">
                                        if !opportunity.stage.is_empty() {
                                            <span class="opportunity-stage">{ opportunity.stage.clone() }</span>
                                        }
                                        if let Some(amount) = amount {
                                            <span class="opportunity-amount">{ amount }</span>
                                        }
                                    </span>
                                </li>
                            }
                        }) }
                    </ul>
                </section>
            }
            if !record.last_interactions.is_empty() {
                <section class="detail" data-testid="interactions" aria-label={i18n.t("last-interactions")}>
                    <h3>{ i18n.t("last-interactions") }</h3>
                    <ul>
                        { for record.last_interactions.iter().map(|interaction| html! {
                            <li class="interaction">
                                <span class="item-title">{ interaction.subject.clone() }</span>
                                <span class="item-meta">
                                    <time datetime={interaction.at.clone()}>{ i18n.date(&interaction.at) }</time>
                                </span>
                            </li>
                        }) }
                    </ul>
                </section>
            }
        </>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct OtherMatchesProps {
    pub call_id: AttrValue,
    pub others: Vec<Match>,
    /// Choosing one makes it the call's record; the relay remembers it for the next call.
    pub on_choose: Callback<(String, String)>,
}

/// "2 other matches", folded: a shared main line can match dozens of records, and the rep
/// should see the best one first without losing the rest.
#[component]
pub fn OtherMatches(props: &OtherMatchesProps) -> Html {
    let i18n = use_i18n();
    let count = props.others.len();
    if count == 0 {
        return Html::default();
    }
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let summary = i18n.t_args("other-matches", &[("count", count.into())]);
    html! {
        <details class="detail other-matches" data-testid="other-matches">
            <summary>{ summary }</summary>
            <ul>
                { for props.others.iter().map(|record| {
                    let choose = {
                        let on_choose = props.on_choose.clone();
                        let call_id = props.call_id.to_string();
                        let record_id = record.id.clone();
                        Callback::from(move |_: MouseEvent| {
                            on_choose.emit((call_id.clone(), record_id.clone()));
                        })
                    };
                    html! {
                        <li class="other-match" data-record-id={record.id.clone()}>
                            <span class="item-title">{ record.name.clone() }</span>
                            <span class="item-meta">
                                { i18n.t(format::kind_label(record.kind)) }
                                if let Some(account) = account_name(record) {
                                    { " · " }{ account.to_owned() }
                                }
                            </span>
                            <button type="button" class="choose-match" onclick={choose}
                                aria-label={i18n.t_args("this-is-the-caller-named", &[("name", record.name.as_str().into())])}>
                                { i18n.t("this-is-the-caller") }
                            </button>
                        </li>
                    }
                }) }
            </ul>
        </details>
    }
}
