//! The panel the rep sees. Components here only draw a [`ViewModel`] and report clicks as
//! [`UiAction`]s; deciding what the clicks do is the model's job, so a component can be
//! mounted on its own with any view model, which is how the rendering tests work.

pub mod call_card;
pub mod caller;
pub mod clock;
pub mod controls;
pub mod format;
pub mod status;
pub mod wrap_up;

use std::rc::Rc;

use cti_protocol::{CallCommand, CallView, Control};
use yew::prelude::*;

use crate::connection::ConnectionStatus;
use crate::host::HostWarning;
use crate::state::Problem;
use call_card::CallCard;
use status::StatusLine;

/// Everything the panel shows, in one value. The leader tab sends it to the others as it is,
/// less what belongs to the tab that draws it (its own host page and the requests it refused).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ViewModel {
    pub status: ConnectionStatus,
    /// The signed-in rep, once the relay has welcomed the widget.
    pub agent: Option<String>,
    /// Live calls first, then ended summaries.
    pub calls: Vec<CallItem>,
    pub problem: Option<Problem>,
    /// What the rep may pick as a call's outcome.
    pub dispositions: Vec<String>,
    /// The call controls the tenant's phone system offers: the only buttons shown.
    #[serde(default = "all_controls")]
    pub controls: Vec<Control>,
    #[serde(skip)]
    pub host_warning: Option<HostWarning>,
    /// Whether V2 holds the rep's own sign-in (`None`: the tenant does not use it).
    pub v2_connected: Option<bool>,
    /// Click-to-dial requests refused so far (shown to tests as `data-ignored-requests`).
    #[serde(skip)]
    pub ignored_host_requests: u32,
}

/// A mirror from a tab of an older build names no controls: it offered them all.
fn all_controls() -> Vec<Control> {
    Control::ALL.to_vec()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallItem {
    pub call: CallView,
    /// The rep's notes on the call: the draft from storage the rep's tabs share, else what the
    /// relay saved.
    #[serde(default)]
    pub notes: String,
    /// A command for this call is waiting for its result.
    pub pending: bool,
}

/// What the rep asked for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "with", rename_all = "snake_case")]
pub enum UiAction {
    Command {
        call_id: String,
        command: CallCommand,
    },
    /// The caller is this other match (call id, record id).
    ChooseMatch {
        call_id: String,
        record_id: String,
    },
    Dismiss(String),
    DismissProblem,
    /// Reconnect now instead of waiting out the backoff.
    RetryNow,
    /// Click-to-dial, accepted from this tab's host.
    Dial {
        number: String,
    },
    /// Signed out: go to the sign-in page (which comes back with a new token).
    SignIn,
    /// Start the rep's own V2 sign-in, in a new window.
    ConnectV2,
    /// The rep typed in a call's notes.
    EditNotes {
        call_id: String,
        text: String,
    },
    /// Send the notes and disposition to the relay (on leaving the notes, picking a
    /// disposition, or "Save").
    SaveWrapUp {
        call_id: String,
        notes: String,
        disposition: Option<String>,
    },
    /// Try logging the call's activity again after V2 refused it.
    RetryActivity {
        call_id: String,
    },
    /// The caller agreed to the recording.
    ConfirmConsent {
        call_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct WidgetViewProps {
    pub view: Rc<ViewModel>,
    pub on_action: Callback<UiAction>,
}

/// The whole panel: status line, warnings, then the calls (or what to show without one).
#[component]
pub fn WidgetView(props: &WidgetViewProps) -> Html {
    let view = &props.view;
    let online = view.status == ConnectionStatus::Connected;
    let body = if let ConnectionStatus::SignedOut { reason } = &view.status {
        let sign_in = props.on_action.reform(|_: MouseEvent| UiAction::SignIn);
        html! {
            <section class="panel signed-out" data-testid="signed-out">
                <h2>{ "Signed out" }</h2>
                <p>{ reason.clone() }</p>
                <button type="button" class="btn btn-accept" data-testid="btn-sign-in" onclick={sign_in}>
                    { "Sign in" }
                </button>
            </section>
        }
    } else if !view.calls.is_empty() {
        html! {
            { for view.calls.iter().map(|item| html! {
                <CallCard
                    key={item.call.id.clone()}
                    call={item.call.clone()}
                    pending={item.pending}
                    notes={item.notes.clone()}
                    dispositions={view.dispositions.clone()}
                    controls={view.controls.clone()}
                    {online}
                    on_action={props.on_action.clone()}
                />
            }) }
        }
    } else if let Some(agent) = &view.agent {
        html! {
            <section class="panel idle" data-testid="idle">
                <p class="idle-title">{ "Ready — waiting for calls" }</p>
                <p class="idle-agent">
                    { "Signed in as " }
                    <span data-testid="agent-id">{ agent.clone() }</span>
                </p>
            </section>
        }
    } else {
        html! {
            <section class="panel idle">
                <p class="idle-title">{ "Connecting to the phone system…" }</p>
            </section>
        }
    };
    let dismiss_problem = {
        let on_action = props.on_action.clone();
        Callback::from(move |_: MouseEvent| on_action.emit(UiAction::DismissProblem))
    };

    html! {
        <div class="widget" data-ignored-requests={view.ignored_host_requests.to_string()}>
            <StatusLine status={view.status.clone()} on_retry={props.on_action.reform(|()| UiAction::RetryNow)} />
            if let Some(warning) = &view.host_warning {
                <p class="notice" data-testid="host-warning" data-reason={warning.reason}>
                    { warning.message.clone() }
                </p>
            }
            if view.v2_connected == Some(false) {
                <div class="notice notice-action" data-testid="v2-connect">
                    <p>{ "Your calls are logged in V2 as you once you connect V2. Until then they wait." }</p>
                    <button type="button" class="btn btn-accept" data-testid="btn-v2-connect"
                        onclick={props.on_action.reform(|_: MouseEvent| UiAction::ConnectV2)}>
                        { "Connect V2" }
                    </button>
                </div>
            }
            if let Some(problem) = &view.problem {
                <div class="problem" role="alert" data-testid="error" data-code={problem.code.clone()}>
                    <p>{ problem.message.clone() }</p>
                    <button
                        type="button"
                        class="btn-icon"
                        aria-label="Dismiss message"
                        data-testid="btn-error-dismiss"
                        onclick={dismiss_problem}
                    >
                        { "×" }
                    </button>
                </div>
            }
            <main class="calls" aria-label="Calls">{ body }</main>
        </div>
    }
}
