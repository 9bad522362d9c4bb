//! "Not in V2": what the rep can do when no record carries the caller's number. They create the
//! caller's record (a contact, an individual customer or an account) with the number filled in,
//! or find the record by name and pick it, or ask the relay to look the number up again after
//! someone created the record in V2 itself. Whatever they do, the record becomes the call's and
//! the card shows it as a match.
//!
//! The form is the widget's own: V2 publishes no way to open its create screen prefilled, so the
//! relay creates the record through V2's create APIs, and the card then links to it.

use cti_protocol::lookup::{MIN_QUERY_CHARS, check_new_record, check_query};
use cti_protocol::ws::NewRecordFields;
use cti_protocol::{Match, RecordKind};
use yew::prelude::*;

use super::UiAction;
use super::format::{heading_id, kind_label};
use crate::i18n::use_i18n;
use crate::state::Search;

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct UnknownCallerProps {
    pub call_id: AttrValue,
    /// The caller's number, as the card shows it.
    pub number: AttrValue,
    pub search: Option<Search>,
    pub online: bool,
    pub on_action: Callback<UiAction>,
}

/// The three kinds a rep may create, in the order offered, with their button's message id.
const CREATABLE: [(RecordKind, &str, &str); 3] = [
    (RecordKind::Contact, "create-contact", "contact"),
    (
        RecordKind::IndividualCustomer,
        "create-individual-customer",
        "individual-customer",
    ),
    (RecordKind::Account, "create-account", "account"),
];

fn input_value(event: &InputEvent) -> Option<String> {
    event
        .target_dyn_into::<web_sys::HtmlInputElement>()
        .map(|input| input.value())
}

#[component]
pub fn UnknownCaller(props: &UnknownCallerProps) -> Html {
    let i18n = use_i18n();
    let creating = use_state(|| None::<RecordKind>);
    let fields = use_state(NewRecordFields::default);
    let query = use_state(String::new);
    let base = heading_id(&props.call_id);
    let heading = format!("not-in-v2-{base}");

    let open_form = |kind: RecordKind| {
        let creating = creating.clone();
        let fields = fields.clone();
        Callback::from(move |_: MouseEvent| {
            fields.set(NewRecordFields::default());
            creating.set(Some(kind));
        })
    };
    let set_field = |which: fn(&mut NewRecordFields, String)| {
        let fields = fields.clone();
        Callback::from(move |event: InputEvent| {
            if let Some(value) = input_value(&event) {
                let mut next = (*fields).clone();
                which(&mut next, value);
                fields.set(next);
            }
        })
    };
    let on_account = {
        let fields = fields.clone();
        Callback::from(move |event: Event| {
            if let Some(select) = event.target_dyn_into::<web_sys::HtmlSelectElement>() {
                let mut next = (*fields).clone();
                let value = select.value();
                next.account_id = (!value.is_empty()).then_some(value);
                fields.set(next);
            }
        })
    };
    let on_create = {
        let (creating, fields) = (creating.clone(), fields.clone());
        let on_action = props.on_action.clone();
        let call_id = props.call_id.to_string();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let Some(kind) = *creating else { return };
            on_action.emit(UiAction::CreateRecord {
                call_id: call_id.clone(),
                kind,
                fields: (*fields).clone(),
            });
            creating.set(None);
        })
    };
    let on_cancel = {
        let creating = creating.clone();
        Callback::from(move |_: MouseEvent| creating.set(None))
    };
    let on_query = {
        let query = query.clone();
        Callback::from(move |event: InputEvent| {
            if let Some(value) = input_value(&event) {
                query.set(value);
            }
        })
    };
    let on_search = {
        let query = query.clone();
        let on_action = props.on_action.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if let Ok(words) = check_query(&query) {
                on_action.emit(UiAction::SearchRecords {
                    query: words.to_owned(),
                });
            }
        })
    };
    let refresh = {
        let on_action = props.on_action.clone();
        let call_id = props.call_id.to_string();
        Callback::from(move |_: MouseEvent| {
            on_action.emit(UiAction::RefreshMatches {
                call_id: call_id.clone(),
            });
        })
    };
    let results: Option<Vec<Match>> = props.search.as_ref().and_then(|s| s.results.clone());
    let accounts: Vec<Match> = results
        .iter()
        .flatten()
        .filter(|m| m.kind == RecordKind::Account)
        .cloned()
        .collect();
    let can_create = (*creating).is_some_and(|kind| check_new_record(kind, &fields).is_ok());
    let can_search = check_query(&query).is_ok();

    let form = (*creating).map(|kind| {
        let id = |name: &str| format!("{name}-{base}");
        let person = kind != RecordKind::Account;
        let title = CREATABLE
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map_or("create-contact", |(_, key, _)| key);
        html! {
            <form class="create-record" data-testid="create-form" data-kind={kind_label(kind)}
                aria-label={i18n.t(title)} onsubmit={on_create.clone()}>
                <label class="field-label" for={id("new-number")}>{ i18n.t("record-number") }</label>
                <input id={id("new-number")} class="field" type="tel" readonly=true
                    value={props.number.clone()} data-testid="new-number" />
                if person {
                    <label class="field-label" for={id("new-given")}>{ i18n.t("record-given-name") }</label>
                    <input id={id("new-given")} class="field" type="text" autocomplete="off"
                        data-testid="new-given-name" value={fields.given_name.clone()}
                        oninput={set_field(|f, v| f.given_name = v)} />
                    <label class="field-label" for={id("new-family")}>
                        { i18n.t("record-family-name") }<span class="required" aria-hidden="true">{ " *" }</span>
                    </label>
                    <input id={id("new-family")} class="field" type="text" autocomplete="off"
                        required=true aria-required="true" data-testid="new-family-name"
                        value={fields.family_name.clone()}
                        oninput={set_field(|f, v| f.family_name = v)} />
                } else {
                    <label class="field-label" for={id("new-name")}>
                        { i18n.t("record-account-name") }<span class="required" aria-hidden="true">{ " *" }</span>
                    </label>
                    <input id={id("new-name")} class="field" type="text" autocomplete="off"
                        required=true aria-required="true" data-testid="new-account-name"
                        value={fields.name.clone()} oninput={set_field(|f, v| f.name = v)} />
                }
                if kind == RecordKind::Contact {
                    <label class="field-label" for={id("new-account")}>{ i18n.t("record-account") }</label>
                    <select id={id("new-account")} class="field" data-testid="new-account" onchange={on_account.clone()}>
                        <option value="" selected={fields.account_id.is_none()}>{ i18n.t("record-no-account") }</option>
                        { for accounts.iter().map(|account| html! {
                            <option value={account.id.clone()}
                                selected={fields.account_id.as_deref() == Some(account.id.as_str())}>
                                { account.name.clone() }
                            </option>
                        }) }
                    </select>
                    if accounts.is_empty() {
                        <p class="field-hint">{ i18n.t("record-account-hint") }</p>
                    }
                }
                <div class="form-actions">
                    <button type="submit" class="btn btn-accept" data-testid="create-submit"
                        disabled={!props.online || !can_create}>{ i18n.t("record-create") }</button>
                    <button type="button" class="btn" data-testid="create-cancel" onclick={on_cancel.clone()}>
                        { i18n.t("record-cancel") }
                    </button>
                </div>
            </form>
        }
    });

    html! {
        <section class="detail not-in-v2" data-testid="not-in-v2" aria-labelledby={heading.clone()}>
            <h3 id={heading}>{ i18n.t("not-in-v2") }</h3>
            <div class="create-buttons">
                { for CREATABLE.iter().map(|(kind, key, test)| html! {
                    <button type="button" class="btn" data-testid={format!("create-{test}")}
                        aria-pressed={(*creating == Some(*kind)).to_string()}
                        disabled={!props.online} onclick={open_form(*kind)}>
                        { i18n.t(key) }
                    </button>
                }) }
            </div>
            { form.unwrap_or_default() }
            <form class="record-search" role="search" onsubmit={on_search}>
                <label class="field-label" for={format!("search-{base}")}>{ i18n.t("search-records") }</label>
                <input id={format!("search-{base}")} class="field" type="search" autocomplete="off"
                    minlength={MIN_QUERY_CHARS.to_string()} data-testid="search-input"
                    value={(*query).clone()} oninput={on_query} />
                <button type="submit" class="btn" data-testid="search-submit"
                    disabled={!props.online || !can_search}>{ i18n.t("search") }</button>
            </form>
            if let Some(results) = results {
                if results.is_empty() {
                    <p class="search-empty" data-testid="search-empty" role="status">{ i18n.t("search-nothing") }</p>
                } else {
                    <ul class="search-results" data-testid="search-results" aria-label={i18n.t("search-results")}>
                        { for results.iter().map(|record| {
                            let pick = {
                                let on_action = props.on_action.clone();
                                let call_id = props.call_id.to_string();
                                let (kind, record_id) = (record.kind, record.id.clone());
                                Callback::from(move |_: MouseEvent| {
                                    on_action.emit(UiAction::PickRecord {
                                        call_id: call_id.clone(),
                                        kind,
                                        record_id: record_id.clone(),
                                    });
                                })
                            };
                            let account = record
                                .account
                                .as_ref()
                                .map(|a| a.name.clone())
                                .filter(|name| !name.is_empty() && *name != record.name);
                            html! {
                                <li>
                                    <button type="button" class="pick-record" data-testid="pick-record"
                                        data-record-id={record.id.clone()} disabled={!props.online}
                                        onclick={pick}>
                                        <span class="item-title">{ record.name.clone() }</span>
                                        <span class="item-meta">
                                            { i18n.t(kind_label(record.kind)) }
                                            if let Some(account) = account {
                                                { " · " }{ account }
                                            }
                                        </span>
                                    </button>
                                </li>
                            }
                        }) }
                    </ul>
                }
            }
            <button type="button" class="btn" data-testid="refresh-matches" disabled={!props.online}
                onclick={refresh}>{ i18n.t("refresh-matches") }</button>
        </section>
    }
}
