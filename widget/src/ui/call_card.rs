//! One call on screen: who is calling, where the call stands, and what the rep can do.

use cti_protocol::{CallState, CallView, Control};
use yew::prelude::*;

use super::caller::{OtherMatches, RecordDetails, RecordLine, other_matches, primary_match};
use super::clock::use_now;
use super::controls::Controls;
use super::unknown::UnknownCaller;
use super::wrap_up::{ActivityLine, ConsentNotice, WrapUpForm};
use super::{UiAction, format};
use crate::i18n::use_i18n;

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
    /// The call controls the tenant's phone system offers.
    #[prop_or_else(|| Control::ALL.to_vec())]
    pub controls: Vec<Control>,
    /// A link opening the record the rep created for this call in V2.
    #[prop_or_default]
    pub record_link: Option<String>,
    /// The rep's latest record search, for an unknown caller.
    #[prop_or_default]
    pub search: Option<crate::state::Search>,
    pub on_action: Callback<UiAction>,
}

/// Keyed by call id in the list, so each call gets its own instance and `data-rendered-at` is
/// the moment this call's caller was first drawn: tests measure ring-to-pop with it.
#[component]
pub fn CallCard(props: &CallCardProps) -> Html {
    let i18n = use_i18n();
    let rendered_at = use_state(crate::time::now_ms);
    let call = &props.call;
    let state = format::state_name(call.state);
    let primary = primary_match(call).cloned();
    let unknown = primary.is_none();
    let others: Vec<_> = other_matches(call).into_iter().cloned().collect();
    let name = primary
        .as_ref()
        .map_or_else(|| i18n.t("unknown-caller"), |record| record.name.clone());
    let heading = format::heading_id(&call.id);
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
                    { i18n.t(format::state_label(call.state, call.direction)) }
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
                if let Some(link) = props.record_link.clone() {
                    <p class="record-link">
                        <a href={link} target="_blank" rel="noopener noreferrer" data-testid="open-record">
                            { i18n.t("open-record") }
                        </a>
                    </p>
                }
            }
            <p class="caller-number" data-testid="caller-number">{ format::remote_number(call, &i18n) }</p>
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
                    controls={props.controls.clone()}
                    on_action={props.on_action.clone()}
                />
                if let Some(record) = primary {
                    <RecordDetails {record} />
                }
                <OtherMatches call_id={call.id.clone()} {others} on_choose={choose_match} />
            } else {
                <Summary call={call.clone()} on_action={props.on_action.clone()} />
            }
            // After the call's controls: while it rings, answering comes first; the record
            // can be created or found while talking, or once the call is over. The element
            // around it stays in every state: a bare conditional after the branches above
            // made Yew 0.23 lose its place in the card on a re-render.
            <div class="unknown-slot">
                if unknown {
                    <UnknownCaller
                        call_id={call.id.clone()}
                        number={format::remote_number(call, &i18n)}
                        search={props.search.clone()}
                        online={props.online}
                        on_action={props.on_action.clone()}
                    />
                }
            </div>
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
    let i18n = use_i18n();
    let handover = &props.handover;
    html! {
        <section class="handover" data-testid="handover">
            <p class="handover-from">
                { i18n.t("handed-over-by") }{ " " }
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
struct CallTimerProps {
    answered_at: AttrValue,
}

/// Time since the call was answered. The telephony source's clock and the browser's may
/// disagree by a little; a negative span shows as 0:00 rather than counting up from minus.
#[component]
fn CallTimer(props: &CallTimerProps) -> Html {
    let now = use_now(1_000);
    let Some(answered) = crate::intl::parse_rfc3339_ms(&props.answered_at) else {
        return Html::default();
    };
    let elapsed = i64::try_from(now).unwrap_or(i64::MAX) - answered;
    html! {
        <span class="call-timer" data-testid="call-timer" role="timer">
            { crate::intl::duration(elapsed) }
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
    let i18n = use_i18n();
    let call = &props.call;
    let onclick = {
        let on_action = props.on_action.clone();
        let call_id = call.id.clone();
        Callback::from(move |_: MouseEvent| on_action.emit(UiAction::Dismiss(call_id.clone())))
    };
    let talk_time = format::talk_time(call).unwrap_or_else(|| i18n.t("not-answered"));
    html! {
        <div class="call-summary" data-testid="call-summary">
            <dl>
                <div>
                    <dt>{ i18n.t("summary-duration") }</dt>
                    <dd data-testid="call-duration">{ talk_time }</dd>
                </div>
                <div>
                    <dt>{ i18n.t("summary-result") }</dt>
                    <dd data-testid="end-reason">{ i18n.t(format::end_reason(call)) }</dd>
                </div>
            </dl>
            if let Some(activity) = call.wrap_up.activity.clone() {
                <ActivityLine call_id={call.id.clone()} {activity} on_action={props.on_action.clone()} />
            }
            <button type="button" class="btn btn-secondary summary-dismiss" data-testid="btn-dismiss" {onclick}>
                { i18n.t("dismiss") }
            </button>
        </div>
    }
}
