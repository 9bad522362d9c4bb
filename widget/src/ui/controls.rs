//! The call controls: which buttons a call offers in each state, among those the tenant's phone
//! system has.

use cti_protocol::{CallCommand, CallState, ConsultView, Control, Direction};
use yew::prelude::*;

use super::UiAction;
use crate::i18n::use_i18n;

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct ControlsProps {
    pub call_id: AttrValue,
    pub state: CallState,
    pub direction: Direction,
    /// A command is on its way, or the relay is unreachable: a second click would do nothing
    /// useful, so the buttons wait for the next state.
    pub disabled: bool,
    /// The colleague this rep is consulting about the call, if any.
    #[prop_or_default]
    pub consult: Option<ConsultView>,
    /// The controls the tenant's phone system offers; a button for any other would only earn
    /// the rep a refusal.
    #[prop_or_else(|| Control::ALL.to_vec())]
    pub controls: Vec<Control>,
    pub on_action: Callback<UiAction>,
}

#[derive(Debug)]
struct Button {
    command: CallCommand,
    /// The message id of the button's words.
    label: &'static str,
    test_id: &'static str,
    style: &'static str,
}

fn buttons(state: CallState, direction: Direction, offered: &[Control]) -> Vec<Button> {
    let button = |command, label, test_id, style| Button {
        command,
        label,
        test_id,
        style,
    };
    match (state, direction) {
        (CallState::Ringing, Direction::Inbound) => vec![
            button(CallCommand::Answer, "answer", "btn-answer", "btn-accept"),
            button(CallCommand::Decline, "decline", "btn-decline", "btn-danger"),
        ],
        (CallState::Ringing, Direction::Outbound) => {
            vec![button(
                CallCommand::Hangup,
                "cancel-call",
                "btn-hangup",
                "btn-danger",
            )]
        }
        (CallState::Connected, _) => vec![
            button(CallCommand::Hold, "hold", "btn-hold", "btn-secondary"),
            button(CallCommand::Hangup, "hang-up", "btn-hangup", "btn-danger"),
        ],
        (CallState::Held, _) => vec![
            button(CallCommand::Resume, "resume", "btn-resume", "btn-accept"),
            button(CallCommand::Hangup, "hang-up", "btn-hangup", "btn-danger"),
        ],
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|button| offered.contains(&Control::of(&button.command)))
    .collect()
}

#[component]
pub fn Controls(props: &ControlsProps) -> Html {
    let i18n = use_i18n();
    if let Some(consult) = props.consult.clone() {
        return html! {
            <Consulting call_id={props.call_id.clone()} {consult} disabled={props.disabled}
                on_action={props.on_action.clone()} />
        };
    }
    let buttons = buttons(props.state, props.direction, &props.controls);
    let blind = props.controls.contains(&Control::Transfer);
    let consult = props.controls.contains(&Control::Consult);
    let transferable =
        matches!(props.state, CallState::Connected | CallState::Held) && (blind || consult);
    if buttons.is_empty() && !transferable {
        return Html::default();
    }
    html! {
        <>
        <div class="controls" role="group" aria-label={i18n.t("call-controls")}>
            { for buttons.into_iter().map(|button| {
                let onclick = {
                    let on_action = props.on_action.clone();
                    let call_id = props.call_id.to_string();
                    let command = button.command.clone();
                    Callback::from(move |_: MouseEvent| {
                        on_action.emit(UiAction::Command {
                            call_id: call_id.clone(),
                            command: command.clone(),
                        })
                    })
                };
                let words = i18n.t(button.label);
                // The shortcut is announced with the button and shown in its tooltip.
                let keys = super::shortcuts::Shortcut::for_button(button.test_id).map(|s| s.keys());
                let title = keys.map(|keys| {
                    i18n.t_args("shortcut-title", &[("action", words.clone().into()), ("keys", keys.into())])
                });
                html! {
                    <button
                        type="button"
                        class={classes!("btn", button.style)}
                        data-testid={button.test_id}
                        disabled={props.disabled}
                        aria-keyshortcuts={keys}
                        {title}
                        {onclick}
                    >
                        { words }
                    </button>
                }
            }) }
        </div>
        if transferable {
            <Transfer call_id={props.call_id.clone()} disabled={props.disabled} {blind} {consult}
                on_action={props.on_action.clone()} />
        }
        </>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct TransferProps {
    call_id: AttrValue,
    disabled: bool,
    /// The phone system has blind transfer.
    blind: bool,
    /// The phone system has consult transfer.
    consult: bool,
    on_action: Callback<UiAction>,
}

/// Hands the call to a colleague (their user id, as the phone system knows them); they get the
/// caller, the chosen record and the notes so far in their own widget.
#[component]
fn Transfer(props: &TransferProps) -> Html {
    let i18n = use_i18n();
    let target = use_state(String::new);
    let oninput = {
        let target = target.clone();
        Callback::from(move |event: InputEvent| {
            if let Some(input) = event.target_dyn_into::<web_sys::HtmlInputElement>() {
                target.set(input.value());
            }
        })
    };
    // Enter in the field does what the first button does: a blind transfer where the phone
    // system has one, else a consultation.
    let onsubmit = {
        let (target, on_action, call_id, blind) = (
            target.clone(),
            props.on_action.clone(),
            props.call_id.to_string(),
            props.blind,
        );
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let to = target.trim().to_owned();
            if !to.is_empty() {
                on_action.emit(UiAction::Command {
                    call_id: call_id.clone(),
                    command: if blind {
                        CallCommand::Transfer { target: to }
                    } else {
                        CallCommand::Consult { target: to }
                    },
                });
            }
        })
    };
    let consult = {
        let (target, on_action, call_id) = (
            target.clone(),
            props.on_action.clone(),
            props.call_id.to_string(),
        );
        Callback::from(move |_: MouseEvent| {
            let to = target.trim().to_owned();
            if !to.is_empty() {
                on_action.emit(UiAction::Command {
                    call_id: call_id.clone(),
                    command: CallCommand::Consult { target: to },
                });
            }
        })
    };
    let id = format!(
        "transfer-{}",
        props
            .call_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    );
    html! {
        <form class="transfer" {onsubmit}>
            <label class="field-label" for={id.clone()}>{ i18n.t("transfer-to") }</label>
            <input {id} class="field" type="text" data-testid="transfer-target" placeholder={i18n.t("transfer-placeholder")}
                maxlength="256" value={(*target).clone()} {oninput} />
            if props.blind {
                <button type="submit" class="btn btn-secondary" data-testid="btn-transfer"
                    disabled={props.disabled || target.trim().is_empty()}>
                    { i18n.t("transfer") }
                </button>
            }
            if props.consult {
                <button type={if props.blind { "button" } else { "submit" }} class="btn btn-secondary"
                    data-testid="btn-consult" disabled={props.disabled || target.trim().is_empty()}
                    onclick={props.blind.then_some(consult)}>
                    { i18n.t("consult-first") }
                </button>
            }
        </form>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct ConsultingProps {
    call_id: AttrValue,
    consult: ConsultView,
    disabled: bool,
    on_action: Callback<UiAction>,
}

/// The caller waits on hold while the rep talks to a colleague: hand the call over, or take it back.
#[component]
fn Consulting(props: &ConsultingProps) -> Html {
    let i18n = use_i18n();
    let command = |command: CallCommand| {
        let on_action = props.on_action.clone();
        let call_id = props.call_id.to_string();
        Callback::from(move |_: MouseEvent| {
            on_action.emit(UiAction::Command {
                call_id: call_id.clone(),
                command: command.clone(),
            });
        })
    };
    let how_far = match props.consult.state {
        CallState::Ringing => i18n.t("consulting-ringing"),
        _ => i18n.t("consulting-on-line"),
    };
    html! {
        <div class="controls consulting" role="group" aria-label={i18n.t("consultation")} data-testid="consulting">
            <p>
                { i18n.t("consulting") }{ " " }
                <span data-testid="consult-agent">{ props.consult.agent.clone() }</span>
                { " " }{ how_far }
            </p>
            <button type="button" class="btn btn-accept" data-testid="btn-complete-transfer"
                disabled={props.disabled} onclick={command(CallCommand::CompleteTransfer)}>
                { i18n.t("complete-transfer") }
            </button>
            <button type="button" class="btn btn-secondary" data-testid="btn-cancel-consult"
                disabled={props.disabled} onclick={command(CallCommand::CancelConsult)}>
                { i18n.t("back-to-caller") }
            </button>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn commands(state: CallState, offered: &[Control]) -> Vec<&'static str> {
        buttons(state, Direction::Inbound, offered)
            .iter()
            .map(|button| button.command.name())
            .collect()
    }

    /// The buttons' words are message ids the source scan cannot see: each must exist in
    /// every language.
    #[wasm_bindgen_test]
    fn every_button_has_words_in_every_language() {
        use crate::i18n::{Lang, message_ids};
        for lang in Lang::ALL {
            let known = message_ids(lang.resource()).expect("parses");
            for state in [CallState::Ringing, CallState::Connected, CallState::Held] {
                for direction in [Direction::Inbound, Direction::Outbound] {
                    for button in buttons(state, direction, Control::ALL) {
                        assert!(
                            known.iter().any(|id| id == button.label),
                            "{}.ftl lacks {}",
                            lang.code(),
                            button.label
                        );
                    }
                }
            }
        }
    }

    #[wasm_bindgen_test]
    fn a_provider_without_hold_shows_no_hold_button() {
        let everything = commands(CallState::Connected, Control::ALL);
        assert_eq!(everything, ["hold", "hangup"]);
        let no_hold: Vec<Control> = Control::ALL
            .iter()
            .copied()
            .filter(|control| *control != Control::Hold)
            .collect();
        assert_eq!(commands(CallState::Connected, &no_hold), ["hangup"]);
        assert_eq!(commands(CallState::Held, &no_hold), ["hangup"]);
    }

    #[wasm_bindgen_test]
    fn a_phone_answered_call_offers_no_answer_button() {
        assert_eq!(
            commands(CallState::Ringing, Control::ALL),
            ["answer", "decline"]
        );
        assert!(commands(CallState::Ringing, &[Control::Dial]).is_empty());
    }
}
