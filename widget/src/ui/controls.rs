//! The call controls: which buttons a call offers in each state, among those the tenant's phone
//! system has.

use cti_protocol::{CallCommand, CallState, ConsultView, Control, Direction};
use yew::prelude::*;

use super::UiAction;

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
            button(CallCommand::Answer, "Answer", "btn-answer", "btn-accept"),
            button(CallCommand::Decline, "Decline", "btn-decline", "btn-danger"),
        ],
        (CallState::Ringing, Direction::Outbound) => {
            vec![button(
                CallCommand::Hangup,
                "Cancel call",
                "btn-hangup",
                "btn-danger",
            )]
        }
        (CallState::Connected, _) => vec![
            button(CallCommand::Hold, "Hold", "btn-hold", "btn-secondary"),
            button(CallCommand::Hangup, "Hang up", "btn-hangup", "btn-danger"),
        ],
        (CallState::Held, _) => vec![
            button(CallCommand::Resume, "Resume", "btn-resume", "btn-accept"),
            button(CallCommand::Hangup, "Hang up", "btn-hangup", "btn-danger"),
        ],
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|button| offered.contains(&Control::of(&button.command)))
    .collect()
}

#[component]
pub fn Controls(props: &ControlsProps) -> Html {
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
        <div class="controls" role="group" aria-label="Call controls">
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
                html! {
                    <button
                        type="button"
                        class={classes!("btn", button.style)}
                        data-testid={button.test_id}
                        disabled={props.disabled}
                        {onclick}
                    >
                        { button.label }
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
            <label for={id.clone()}>{ "Transfer to" }</label>
            <input {id} type="text" data-testid="transfer-target" placeholder="colleague@company.com"
                maxlength="256" value={(*target).clone()} {oninput} />
            if props.blind {
                <button type="submit" class="btn btn-secondary" data-testid="btn-transfer"
                    disabled={props.disabled || target.trim().is_empty()}>
                    { "Transfer" }
                </button>
            }
            if props.consult {
                <button type={if props.blind { "button" } else { "submit" }} class="btn btn-secondary"
                    data-testid="btn-consult" disabled={props.disabled || target.trim().is_empty()}
                    onclick={props.blind.then_some(consult)}>
                    { "Consult first" }
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
        CallState::Ringing => "ringing",
        _ => "on the line",
    };
    html! {
        <div class="controls consulting" role="group" aria-label="Consultation" data-testid="consulting">
            <p>
                { "Consulting " }
                <span data-testid="consult-agent">{ props.consult.agent.clone() }</span>
                { format!(" ({how_far}); the caller is on hold.") }
            </p>
            <button type="button" class="btn btn-accept" data-testid="btn-complete-transfer"
                disabled={props.disabled} onclick={command(CallCommand::CompleteTransfer)}>
                { "Complete transfer" }
            </button>
            <button type="button" class="btn btn-secondary" data-testid="btn-cancel-consult"
                disabled={props.disabled} onclick={command(CallCommand::CancelConsult)}>
                { "Back to the caller" }
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
