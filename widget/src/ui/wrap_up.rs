//! The after-call work on a call card: the rep's notes and outcome, the recording consent the
//! tenant may require, and where the call's activity in V2 stands.

use cti_protocol::{ActivityState, ActivityStatus, CallView, Consent};
use yew::prelude::*;

use super::UiAction;
use super::format::heading_id;
use crate::i18n::use_i18n;

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct WrapUpProps {
    pub call: CallView,
    pub text: AttrValue,
    pub dispositions: Vec<String>,
    pub online: bool,
    pub on_action: Callback<UiAction>,
}

/// The rep's notes and disposition: the notes are a draft saved with every keystroke in every
/// tab of the rep, sent to the relay when the rep leaves the field, picks a disposition or
/// presses Save; the line under them says whether the relay has them.
#[component]
pub fn WrapUpForm(props: &WrapUpProps) -> Html {
    let i18n = use_i18n();
    let call = &props.call;
    let saved_disposition = call.wrap_up.disposition.clone();
    let save = {
        let on_action = props.on_action.clone();
        let call_id = call.id.clone();
        move |notes: String, disposition: Option<String>| {
            on_action.emit(UiAction::SaveWrapUp {
                call_id: call_id.clone(),
                notes,
                disposition,
            });
        }
    };
    let oninput = {
        let on_action = props.on_action.clone();
        let call_id = call.id.clone();
        Callback::from(move |event: InputEvent| {
            let Some(area) = event.target_dyn_into::<web_sys::HtmlTextAreaElement>() else {
                return;
            };
            on_action.emit(UiAction::EditNotes {
                call_id: call_id.clone(),
                text: area.value(),
            });
        })
    };
    let onchange = {
        let save = save.clone();
        let disposition = saved_disposition.clone();
        Callback::from(move |event: Event| {
            if let Some(area) = event.target_dyn_into::<web_sys::HtmlTextAreaElement>() {
                save(area.value(), disposition.clone());
            }
        })
    };
    let on_disposition = {
        let save = save.clone();
        let text = props.text.to_string();
        Callback::from(move |event: Event| {
            if let Some(select) = event.target_dyn_into::<web_sys::HtmlSelectElement>() {
                let value = select.value();
                save(text.clone(), (!value.is_empty()).then_some(value));
            }
        })
    };
    let on_save = {
        let text = props.text.to_string();
        let disposition = saved_disposition.clone();
        Callback::from(move |_: MouseEvent| save(text.clone(), disposition.clone()))
    };
    let saved = call.wrap_up.notes == props.text.as_str();
    let id = format!("notes-{}", heading_id(&call.id));
    let select_id = format!("disposition-{}", heading_id(&call.id));
    html! {
        <div class="wrap-up">
            <div class="field-group">
                <label class="field-label" for={id.clone()} data-testid="notes-label">{ i18n.t("notes") }</label>
                <textarea {id} class="field" data-testid="notes" rows="3" maxlength="10000"
                    aria-keyshortcuts={super::shortcuts::Shortcut::Notes.keys()}
                    placeholder={i18n.t("notes-placeholder")} value={props.text.clone()} {oninput} {onchange} />
            </div>
            if !props.dispositions.is_empty() {
                <div class="field-group">
                <label class="field-label" for={select_id.clone()} data-testid="disposition-label">{ i18n.t("outcome") }</label>
                <select id={select_id} class="field" data-testid="disposition" onchange={on_disposition}>
                    <option value="" selected={saved_disposition.is_none()}>{ "—" }</option>
                    { for props.dispositions.iter().map(|d| html! {
                        <option value={d.clone()} selected={saved_disposition.as_deref() == Some(d.as_str())}>
                            { d.clone() }
                        </option>
                    }) }
                </select>
                </div>
            }
            <p class="notes-saved" data-testid="notes-status" data-saved={saved.to_string()}>
                if saved {
                    { if props.text.is_empty() { String::new() } else { i18n.t("notes-saved") } }
                } else {
                    <span>{ i18n.t("notes-not-saved") }</span>
                    <button type="button" class="btn btn-secondary" data-testid="btn-save-notes"
                        disabled={!props.online} onclick={on_save}>
                        { i18n.t("save") }
                    </button>
                }
            </p>
        </div>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct ActivityLineProps {
    pub call_id: AttrValue,
    pub activity: ActivityStatus,
    pub on_action: Callback<UiAction>,
}

/// Where the call's activity in V2 stands: on its way (retrying, and why), logged (with a link),
/// or refused (V2's reason, and a retry once the cause is fixed).
#[component]
pub fn ActivityLine(props: &ActivityLineProps) -> Html {
    let i18n = use_i18n();
    let activity = &props.activity;
    let state = match activity.state {
        ActivityState::Logged => "logged",
        ActivityState::Failed => "failed",
        _ => "pending",
    };
    let retry = {
        let on_action = props.on_action.clone();
        let call_id = props.call_id.to_string();
        Callback::from(move |_: MouseEvent| {
            on_action.emit(UiAction::RetryActivity {
                call_id: call_id.clone(),
            });
        })
    };
    let reason = activity.reason.clone().unwrap_or_default();
    html! {
        <p class={classes!("activity", format!("activity-{state}"))} data-testid="activity" data-state={state}>
            { match activity.state {
                ActivityState::Logged => html! {
                    <>
                        <span>{ i18n.t("activity-logged") }</span>
                        if let Some(link) = activity.link.clone() {
                            { " " }
                            <a href={link} target="_blank" rel="noopener" data-testid="activity-link">
                                { activity.display_id.clone().map_or_else(|| i18n.t("activity-open"), |d| format!("#{d}")) }
                            </a>
                        }
                    </>
                },
                ActivityState::Failed => html! {
                    <>
                        <span>{ i18n.t("activity-not-logged") }{ " " }
                        <span data-testid="activity-reason">{ reason }</span></span>
                        <button type="button" class="btn btn-secondary" data-testid="btn-retry-activity" onclick={retry}>
                            { i18n.t("retry") }
                        </button>
                    </>
                },
                _ if reason.is_empty() => html! { { i18n.t("activity-logging") } },
                _ => html! {
                    <>
                        { i18n.t("activity-retrying") }{ " (" }
                        <span data-testid="activity-reason">{ reason }</span>
                        { ")" }
                    </>
                },
            } }
        </p>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct ConsentProps {
    pub call_id: AttrValue,
    pub consent: Consent,
    pub online: bool,
    pub on_action: Callback<UiAction>,
}

/// Where the tenant's policy needs the caller's consent to keep the recording: the rep asks and
/// confirms here (during or after the call); until then the recording stays off the activity.
#[component]
pub fn ConsentNotice(props: &ConsentProps) -> Html {
    let i18n = use_i18n();
    let consent = &props.consent;
    let confirm = {
        let on_action = props.on_action.clone();
        let call_id = props.call_id.to_string();
        Callback::from(move |_: MouseEvent| {
            on_action.emit(UiAction::ConfirmConsent {
                call_id: call_id.clone(),
            });
        })
    };
    let confirmed = consent.confirmed_by.is_some();
    html! {
        <p class={classes!("consent", confirmed.then_some("consent-confirmed"))}
            data-testid="consent" data-confirmed={confirmed.to_string()}>
            if let Some(by) = consent.confirmed_by.clone() {
                { i18n.t_args("consent-confirmed", &[("by", by.into())]) }
            } else {
                <span>{ i18n.t_args("consent-needed", &[("jurisdiction", consent.jurisdiction.as_str().into())]) }</span>
                { " " }
                <button type="button" class="btn btn-secondary" data-testid="btn-confirm-consent"
                    disabled={!props.online} onclick={confirm}>
                    { i18n.t("caller-consented") }
                </button>
            }
        </p>
    }
}
