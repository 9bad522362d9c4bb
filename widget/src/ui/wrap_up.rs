//! The after-call work on a call card: the rep's notes and outcome, the recording consent the
//! tenant may require, and where the call's activity in V2 stands.

use cti_protocol::{ActivityState, ActivityStatus, CallView, Consent};
use yew::prelude::*;

use super::UiAction;
use super::format::heading_id;

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
            <label for={id.clone()}>{ "Notes" }</label>
            <textarea {id} data-testid="notes" rows="3" maxlength="10000"
                placeholder="What was the call about?" value={props.text.clone()} {oninput} {onchange} />
            if !props.dispositions.is_empty() {
                <label for={select_id.clone()}>{ "Outcome" }</label>
                <select id={select_id} data-testid="disposition" onchange={on_disposition}>
                    <option value="" selected={saved_disposition.is_none()}>{ "—" }</option>
                    { for props.dispositions.iter().map(|d| html! {
                        <option value={d.clone()} selected={saved_disposition.as_deref() == Some(d.as_str())}>
                            { d.clone() }
                        </option>
                    }) }
                </select>
            }
            <p class="notes-saved" data-testid="notes-status" data-saved={saved.to_string()}>
                if saved {
                    { if props.text.is_empty() { "" } else { "Saved" } }
                } else {
                    { "Not saved yet" }
                    <button type="button" class="btn btn-secondary" data-testid="btn-save-notes"
                        disabled={!props.online} onclick={on_save}>
                        { "Save" }
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
                        { "Logged in V2" }
                        if let Some(link) = activity.link.clone() {
                            { " " }
                            <a href={link} target="_blank" rel="noopener" data-testid="activity-link">
                                { activity.display_id.clone().map_or_else(|| "Open".to_owned(), |d| format!("#{d}")) }
                            </a>
                        }
                    </>
                },
                ActivityState::Failed => html! {
                    <>
                        { "Not logged: " }
                        <span data-testid="activity-reason">{ reason }</span>
                        <button type="button" class="btn btn-secondary" data-testid="btn-retry-activity" onclick={retry}>
                            { "Retry" }
                        </button>
                    </>
                },
                _ if reason.is_empty() => html! { { "Logging to V2…" } },
                _ => html! {
                    <>
                        { "Logging to V2… retrying (" }
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
                { format!("Recording consent confirmed by {by}") }
            } else {
                { format!("Recording needs the caller's consent ({}). Ask, then confirm: ", consent.jurisdiction) }
                <button type="button" class="btn btn-secondary" data-testid="btn-confirm-consent"
                    disabled={!props.online} onclick={confirm}>
                    { "Caller consented" }
                </button>
            }
        </p>
    }
}
