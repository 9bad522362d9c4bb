//! The panel the rep sees. Components here only draw a [`ViewModel`] and report clicks as
//! [`UiAction`]s; deciding what the clicks do is the model's job, so a component can be
//! mounted on its own with any view model, which is how the rendering tests work.

pub mod call_card;
pub mod caller;
pub mod clock;
pub mod controls;
pub mod format;
pub mod history;
pub mod shortcuts;
pub mod status;
pub mod unknown;
pub mod wrap_up;

use std::rc::Rc;

use cti_protocol::ws::NewRecordFields;
use cti_protocol::{CallCommand, CallView, Control, ErrorCode, RecordKind};
use yew::prelude::*;

use crate::connection::ConnectionStatus;
use crate::host::HostWarning;
use crate::i18n::{Arg, I18n, Lang, use_i18n};
use crate::state::Problem;
use call_card::CallCard;
use history::RecentCalls;
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
    /// The rep's recent calls, newest first (see [`crate::history`]).
    #[serde(default)]
    pub history: Vec<crate::history::Entry>,
    /// The rep's latest search for a caller's record, and its results.
    #[serde(default)]
    pub search: Option<crate::state::Search>,
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
    /// A link opening the record the rep created for this call in V2.
    #[serde(default)]
    pub record_link: Option<String>,
}

/// What the rep asked for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Search V2 for records by name.
    SearchRecords {
        query: String,
    },
    /// This record, found by search, is the caller.
    PickRecord {
        call_id: String,
        kind: RecordKind,
        record_id: String,
    },
    /// Create the caller's record in V2.
    CreateRecord {
        call_id: String,
        kind: RecordKind,
        fields: NewRecordFields,
    },
    /// Look the caller's number up again (a record created in V2 meanwhile).
    RefreshMatches {
        call_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct WidgetViewProps {
    pub view: Rc<ViewModel>,
    pub on_action: Callback<UiAction>,
    /// The language to draw in. Each tab has its own: it is no part of the mirrored view.
    #[prop_or_default]
    pub lang: Lang,
    /// The rep picked another language.
    #[prop_or_default]
    pub on_language: Callback<Lang>,
}

/// The whole panel, in the language of `lang`: every component under it reads the words from
/// the translator this provides.
#[component]
pub fn WidgetView(props: &WidgetViewProps) -> Html {
    let i18n = I18n::get(props.lang);
    html! {
        <ContextProvider<Rc<I18n>> context={i18n}>
            <Panel ..props.clone() />
        </ContextProvider<Rc<I18n>>>
    }
}

/// The words for a problem: the widget's own when it raised it, else those for the relay's
/// code in the rep's language; the relay's English only for a code this build does not know.
pub fn problem_text(i18n: &I18n, problem: &Problem) -> String {
    if let Some(key) = &problem.key {
        return i18n.t(key);
    }
    let id = format!("error-{}", problem.code);
    // The relay's words name the field (or are V2's own): the rep needs them to correct it.
    let detailed = [ErrorCode::InvalidRecord, ErrorCode::V2Refused]
        .iter()
        .any(|code| code.as_str() == problem.code);
    if detailed && !problem.message.trim().is_empty() {
        format!("{} ({})", i18n.t(&id), problem.message)
    } else if I18n::get(Lang::En).has(&id) {
        i18n.t(&id)
    } else if !problem.message.trim().is_empty() {
        problem.message.clone()
    } else {
        i18n.t_args("error-other", &[("code", problem.code.as_str().into())])
    }
}

/// Status line, warnings, then the calls (or what to show without one), and the language picker.
#[component]
fn Panel(props: &WidgetViewProps) -> Html {
    let i18n = use_i18n();
    shortcuts::use_shortcuts();
    let view = &props.view;
    let online = view.status == ConnectionStatus::Connected;
    let body = if let ConnectionStatus::SignedOut { reason } = &view.status {
        let sign_in = props.on_action.reform(|_: MouseEvent| UiAction::SignIn);
        html! {
            <section class="panel signed-out" data-testid="signed-out">
                <h2>{ i18n.t("signed-out-title") }</h2>
                <p>{ i18n.t(reason.message_id()) }</p>
                <button type="button" class="btn btn-accept" data-testid="btn-sign-in" onclick={sign_in}>
                    { i18n.t("sign-in") }
                </button>
            </section>
        }
    } else if !view.calls.is_empty() {
        html! {
            { for view.calls.iter().map(|item| html! {
                <CallCard
                    key={item.call.id.clone()}
                    call={item.call.clone()}
                    record_link={item.record_link.clone()}
                    search={view.search.clone()}
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
                <p class="idle-title">{ i18n.t("idle-ready") }</p>
                <p class="idle-agent">
                    { i18n.t("idle-signed-in-as") }{ " " }
                    <span data-testid="agent-id">{ agent.clone() }</span>
                </p>
            </section>
        }
    } else {
        html! {
            <section class="panel idle">
                <p class="idle-title">{ i18n.t("idle-connecting") }</p>
            </section>
        }
    };
    let dismiss_problem = {
        let on_action = props.on_action.clone();
        Callback::from(move |_: MouseEvent| on_action.emit(UiAction::DismissProblem))
    };

    html! {
        <div class="widget" data-ignored-requests={view.ignored_host_requests.to_string()}>
            <p class="visually-hidden" role="status" aria-live="assertive" aria-atomic="true"
                data-testid="announcer">
                { announcement(&i18n, view) }
            </p>
            <StatusLine status={view.status.clone()} on_retry={props.on_action.reform(|()| UiAction::RetryNow)} />
            if let Some(warning) = &view.host_warning {
                <p class="notice" data-testid="host-warning" data-reason={warning.reason}>
                    { i18n.t_args(&warning.message_id(), &[
                        ("origin", Arg::from(warning.origin.clone().unwrap_or_default())),
                    ]) }
                </p>
            }
            if view.v2_connected == Some(false) {
                <div class="notice notice-action" data-testid="v2-connect">
                    <p>{ i18n.t("v2-connect-text") }</p>
                    <button type="button" class="btn btn-accept" data-testid="btn-v2-connect"
                        onclick={props.on_action.reform(|_: MouseEvent| UiAction::ConnectV2)}>
                        { i18n.t("v2-connect") }
                    </button>
                </div>
            }
            if let Some(problem) = &view.problem {
                <div class="problem" role="alert" data-testid="error" data-code={problem.code.clone()}>
                    <p title={problem.message.clone()}>{ problem_text(&i18n, problem) }</p>
                    <button
                        type="button"
                        class="btn-icon"
                        aria-label={i18n.t("dismiss-message")}
                        data-testid="btn-error-dismiss"
                        onclick={dismiss_problem}
                    >
                        { "×" }
                    </button>
                </div>
            }
            <main class="calls" aria-label={i18n.t("calls-label")}>{ body }</main>
            if !view.history.is_empty() && !matches!(view.status, ConnectionStatus::SignedOut { .. }) {
                <RecentCalls entries={view.history.clone()} {online} on_action={props.on_action.clone()} />
            }
            <LanguagePicker lang={i18n.lang()} on_language={props.on_language.clone()} />
        </div>
    }
}

/// What the live region says about the calls: who is ringing, and each change of the first
/// call's state. A screen reader speaks it when it changes, so it names the state and the
/// caller; the connection's ups and downs are the status line's own live region.
pub fn announcement(i18n: &I18n, view: &ViewModel) -> String {
    if matches!(view.status, ConnectionStatus::SignedOut { .. }) {
        return String::new();
    }
    let Some(item) = view.calls.first() else {
        return String::new();
    };
    let call = &item.call;
    let caller = caller::primary_match(call)
        .map_or_else(|| format::remote_number(call, i18n), |m| m.name.clone());
    let id = match (call.state, call.direction) {
        (cti_protocol::CallState::Ringing, cti_protocol::Direction::Outbound) => "announce-calling",
        (cti_protocol::CallState::Ringing, _) => "announce-ringing",
        (cti_protocol::CallState::Connected, _) => "announce-connected",
        (cti_protocol::CallState::Held, _) => "announce-held",
        (cti_protocol::CallState::Transferred, _) => "announce-transferred",
        _ => "announce-ended",
    };
    i18n.t_args(id, &[("caller", caller.into())])
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct LanguagePickerProps {
    lang: Lang,
    on_language: Callback<Lang>,
}

/// The rep's own choice of language, at the foot of the panel. Each language is named in
/// itself, so a rep lost in a language they cannot read still finds theirs.
#[component]
fn LanguagePicker(props: &LanguagePickerProps) -> Html {
    let i18n = use_i18n();
    let onchange = {
        let on_language = props.on_language.clone();
        Callback::from(move |event: Event| {
            if let Some(select) = event.target_dyn_into::<web_sys::HtmlSelectElement>()
                && let Some(lang) = Lang::from_tag(&select.value())
            {
                on_language.emit(lang);
            }
        })
    };
    html! {
        <footer class="panel-footer">
            <label class="field-label" for="cti-language">{ i18n.t("language") }</label>
            <select id="cti-language" class="field" data-testid="language" {onchange}>
                { for Lang::ALL.iter().map(|lang| html! {
                    <option value={lang.code()} lang={lang.code()} selected={*lang == props.lang}>
                        { lang.endonym() }
                    </option>
                }) }
            </select>
        </footer>
    }
}
