//! One call on screen: who is calling, where the call stands, and what the rep can do.

use cti_protocol::{ActivityState, ActivityStatus, CallState, CallView, Consent};
use yew::prelude::*;

use super::caller::{OtherMatches, RecordDetails, RecordLine, other_matches, primary_match};
use super::clock::use_now;
use super::controls::Controls;
use super::{UiAction, format};

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct CallCardProps {
    pub call: CallView,
    /// A command for this call is on its way.
    pub pending: bool,
    /// The relay is reachable; controls are pointless otherwise.
    pub online: bool,
    /// The rep's notes on this call (the draft, else what the relay saved).
    #[prop_or_default]
    pub notes: AttrValue,
    /// The tenant's dispositions.
    #[prop_or_default]
    pub dispositions: Vec<String>,
    pub on_action: Callback<UiAction>,
}

/// An id for `aria-labelledby`, safe whatever characters the provider put in its call id.
fn heading_id(call_id: &str) -> String {
    let safe: String = call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("caller-{safe}")
}

/// Keyed by call id in the list, so each call gets its own instance and `data-rendered-at` is
/// the moment this call's caller was first drawn: tests measure ring-to-pop with it.
#[component]
pub fn CallCard(props: &CallCardProps) -> Html {
    let rendered_at = use_state(|| js_sys::Date::now() as u64);
    let call = &props.call;
    let state = format::state_name(call.state);
    let primary = primary_match(call).cloned();
    let others: Vec<_> = other_matches(call).into_iter().cloned().collect();
    let name = primary
        .as_ref()
        .map_or_else(|| "Unknown caller".to_owned(), |record| record.name.clone());
    let heading = heading_id(&call.id);
    let live = !call.state.is_final();
    let choose_match = {
        let on_action = props.on_action.clone();
        Callback::from(move |(call_id, record_id): (String, String)| {
            on_action.emit(UiAction::ChooseMatch { call_id, record_id });
        })
    };

    html! {
        <article
            class={classes!("call-card", format!("call-{state}"))}
            data-testid="call-card"
            data-call-id={call.id.clone()}
            aria-labelledby={heading.clone()}
        >
            <p class="call-status">
                <span class="call-state" data-testid="call-state" data-state={state}>
                    { format::state_label(call.state, call.direction) }
                </span>
                if matches!(call.state, CallState::Connected | CallState::Held) {
                    if let Some(answered_at) = call.answered_at.clone() {
                        <CallTimer {answered_at} />
                    }
                }
            </p>
            <h2
                id={heading}
                class={classes!("caller-name", primary.is_none().then_some("caller-unknown"))}
                data-testid="caller-name"
                data-rendered-at={rendered_at.to_string()}
            >
                { name }
            </h2>
            if let Some(record) = primary.clone() {
                <RecordLine {record} />
            }
            <p class="caller-number" data-testid="caller-number">{ format::remote_number(call) }</p>
            if let Some(handover) = call.handover.clone() {
                <Handover {handover} />
            }
            if let Some(consent) = call.wrap_up.consent.clone().filter(|c| c.required) {
                <ConsentNotice call_id={call.id.clone()} {consent} online={props.online} on_action={props.on_action.clone()} />
            }
            if live {
                <Controls
                    call_id={call.id.clone()}
                    state={call.state}
                    direction={call.direction}
                    disabled={props.pending || !props.online}
                    consult={call.consult.clone()}
                    on_action={props.on_action.clone()}
                />
                if let Some(record) = primary {
                    <RecordDetails {record} />
                }
                <OtherMatches call_id={call.id.clone()} {others} on_choose={choose_match} />
            } else {
                <Summary call={call.clone()} on_action={props.on_action.clone()} />
            }
            <WrapUpForm
                call={call.clone()}
                text={props.notes.clone()}
                dispositions={props.dispositions.clone()}
                online={props.online}
                on_action={props.on_action.clone()}
            />
        </article>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct HandoverProps {
    handover: cti_protocol::Handover,
}

/// A call handed over by another rep: who it comes from and what they noted.
#[component]
fn Handover(props: &HandoverProps) -> Html {
    let handover = &props.handover;
    html! {
        <section class="handover" data-testid="handover">
            <p class="handover-from">
                { "Handed over by " }
                <span data-testid="handover-from">{ handover.from.clone() }</span>
            </p>
            if !handover.notes.trim().is_empty() {
                <blockquote class="handover-notes" data-testid="handover-notes">
                    { handover.notes.clone() }
                </blockquote>
            }
        </section>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct WrapUpProps {
    call: CallView,
    text: AttrValue,
    dispositions: Vec<String>,
    online: bool,
    on_action: Callback<UiAction>,
}

/// The rep's notes and disposition: the notes are a draft saved with every keystroke in every
/// tab of the rep, sent to the relay when the rep leaves the field, picks a disposition or
/// presses Save; the line under them says whether the relay has them.
#[component]
fn WrapUpForm(props: &WrapUpProps) -> Html {
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
struct CallTimerProps {
    answered_at: AttrValue,
}

/// Time since the call was answered. The telephony source's clock and the browser's may
/// disagree by a little; a negative span shows as 0:00 rather than counting up from minus.
#[component]
fn CallTimer(props: &CallTimerProps) -> Html {
    let now = use_now(1_000);
    let Some(answered) = format::parse_rfc3339_ms(&props.answered_at) else {
        return Html::default();
    };
    let elapsed = i64::try_from(now).unwrap_or(i64::MAX) - answered;
    html! {
        <span class="call-timer" data-testid="call-timer" role="timer">
            { format::duration(elapsed) }
        </span>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct SummaryProps {
    call: CallView,
    on_action: Callback<UiAction>,
}

/// What is left of a finished call until the next one arrives or the rep dismisses it.
#[component]
fn Summary(props: &SummaryProps) -> Html {
    let call = &props.call;
    let onclick = {
        let on_action = props.on_action.clone();
        let call_id = call.id.clone();
        Callback::from(move |_: MouseEvent| on_action.emit(UiAction::Dismiss(call_id.clone())))
    };
    let talk_time = format::talk_time(call).unwrap_or_else(|| "Not answered".to_owned());
    html! {
        <div class="call-summary" data-testid="call-summary">
            <dl>
                <div>
                    <dt>{ "Duration" }</dt>
                    <dd data-testid="call-duration">{ talk_time }</dd>
                </div>
                <div>
                    <dt>{ "Result" }</dt>
                    <dd data-testid="end-reason">{ format::end_reason(call) }</dd>
                </div>
            </dl>
            if let Some(activity) = call.wrap_up.activity.clone() {
                <ActivityLine call_id={call.id.clone()} {activity} on_action={props.on_action.clone()} />
            }
            <button type="button" class="btn btn-secondary" data-testid="btn-dismiss" {onclick}>
                { "Dismiss" }
            </button>
        </div>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct ActivityLineProps {
    call_id: AttrValue,
    activity: ActivityStatus,
    on_action: Callback<UiAction>,
}

/// Where the call's activity in V2 stands: on its way (retrying, and why), logged (with a link),
/// or refused (V2's reason, and a retry once the cause is fixed).
#[component]
fn ActivityLine(props: &ActivityLineProps) -> Html {
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
struct ConsentProps {
    call_id: AttrValue,
    consent: Consent,
    online: bool,
    on_action: Callback<UiAction>,
}

/// Where the tenant's policy needs the caller's consent to keep the recording: the rep asks and
/// confirms here (during or after the call); until then the recording stays off the activity.
#[component]
fn ConsentNotice(props: &ConsentProps) -> Html {
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
