//! The panel as the rep sees it: each test mounts the view with a given view model into a fresh
//! element and reads the DOM that end-to-end tests and screen readers rely on.

#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use cti_protocol::ws::{AccountRef, Interaction, Opportunity};
use cti_protocol::{
    ActivityState, ActivityStatus, CallCommand, CallState, CallView, Consent, ConsultView, Control,
    Direction, EndReason, Handover, Match, RecordKind,
};
use cti_widget::connection::{ConnectionStatus, Disconnect, SignedOut};
use cti_widget::history::{Entry, RecordRef};
use cti_widget::host::HostTarget;
use cti_widget::i18n::{self, I18n, Lang};
use cti_widget::state::Problem;
use cti_widget::ui::{CallItem, UiAction, ViewModel, WidgetView, WidgetViewProps};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{Element, HtmlElement};
use yew::{AppHandle, Callback};

wasm_bindgen_test_configure!(run_in_browser);

struct Mounted {
    root: Element,
    handle: AppHandle<WidgetView>,
    actions: Rc<RefCell<Vec<UiAction>>>,
    lang: Lang,
}

impl Mounted {
    async fn new(view: ViewModel) -> Mounted {
        Mounted::in_language(view, Lang::En).await
    }

    async fn in_language(view: ViewModel, lang: Lang) -> Mounted {
        let document = gloo::utils::document();
        let root = document.create_element("div").expect("creates a div");
        document
            .body()
            .expect("has a body")
            .append_child(&root)
            .expect("appends");
        let actions = Rc::new(RefCell::new(Vec::new()));
        let handle = yew::Renderer::<WidgetView>::with_root_and_props(
            root.clone(),
            props(view, actions.clone(), lang),
        )
        .render();
        yew::scheduler::flush().await;
        Mounted {
            root,
            handle,
            actions,
            lang,
        }
    }

    async fn update(&mut self, view: ViewModel) {
        self.handle
            .update(props(view, self.actions.clone(), self.lang));
        yew::scheduler::flush().await;
    }

    fn find(&self, test_id: &str) -> Option<Element> {
        self.root
            .query_selector(&format!("[data-testid=\"{test_id}\"]"))
            .expect("valid selector")
    }

    fn get(&self, test_id: &str) -> Element {
        self.find(test_id)
            .unwrap_or_else(|| panic!("no {test_id} in {}", self.root.inner_html()))
    }

    fn text(&self, test_id: &str) -> String {
        self.get(test_id)
            .text_content()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    fn attr(&self, test_id: &str, name: &str) -> Option<String> {
        self.get(test_id).get_attribute(name)
    }

    fn click(&self, test_id: &str) {
        self.get(test_id)
            .dyn_into::<HtmlElement>()
            .expect("is an HTML element")
            .click();
    }
}

fn props(view: ViewModel, actions: Rc<RefCell<Vec<UiAction>>>, lang: Lang) -> WidgetViewProps {
    WidgetViewProps {
        view: Rc::new(view),
        on_action: Callback::from(move |action| actions.borrow_mut().push(action)),
        lang,
        on_language: Callback::noop(),
    }
}

fn anna() -> Match {
    Match {
        kind: RecordKind::Contact,
        id: "3f2a".into(),
        display_id: "1001".into(),
        name: "Anna Meier".into(),
        account: Some(AccountRef {
            id: "a1".into(),
            name: "Acme AG".into(),
        }),
        open_opportunities: vec![Opportunity {
            id: "o1".into(),
            name: "Fleet renewal 2027".into(),
            stage: "Negotiation".into(),
            amount: Some(12_500.0),
            currency: Some("EUR".into()),
        }],
        last_interactions: vec![Interaction {
            kind: "phone_call".into(),
            subject: "Pricing follow-up".into(),
            at: "2026-11-24T10:00:00Z".into(),
        }],
    }
}

fn acme() -> Match {
    Match {
        kind: RecordKind::Account,
        id: "a1".into(),
        display_id: "2001".into(),
        name: "Acme AG".into(),
        account: Some(AccountRef {
            id: "a1".into(),
            name: "Acme AG".into(),
        }),
        open_opportunities: vec![],
        last_interactions: vec![],
    }
}

fn ringing(matches: Vec<Match>) -> CallView {
    CallView {
        id: "call-42".into(),
        direction: Direction::Inbound,
        state: CallState::Ringing,
        from: "+41441234567".into(),
        to: "+41449990000".into(),
        remote_display: "+41 44 123 45 67".into(),
        remote_extension: None,
        agent: "alice@example.com".into(),
        pop: matches.first().cloned(),
        matches,
        started_at: "2026-11-24T10:00:00Z".into(),
        answered_at: None,
        ended_at: None,
        end_reason: None,
        received_at_ms: 1_700_000_000_000,
        recording_url: None,
        handover: None,
        consult: None,
        wrap_up: Default::default(),
        returns: 0,
    }
}

fn connected_view(call: CallView, pending: bool) -> ViewModel {
    ViewModel {
        status: ConnectionStatus::Connected,
        agent: Some("alice@example.com".into()),
        calls: vec![CallItem {
            call,
            pending,
            notes: String::new(),
            record_link: None,
        }],
        problem: None,
        dispositions: vec!["Interested".into(), "Not interested".into()],
        controls: Control::ALL.to_vec(),
        v2_connected: None,
        host_warning: None,
        ignored_host_requests: 0,
        history: Vec::new(),
        search: None,
    }
}

#[wasm_bindgen_test]
async fn a_known_caller_shows_name_record_and_details() {
    let before = js_sys::Date::now() as u64;
    let mounted = Mounted::new(connected_view(ringing(vec![anna(), acme()]), false)).await;

    assert_eq!(mounted.text("caller-name"), "Anna Meier");
    let rendered_at: u64 = mounted
        .attr("caller-name", "data-rendered-at")
        .expect("has data-rendered-at")
        .parse()
        .expect("is milliseconds");
    assert!(rendered_at >= before && rendered_at <= js_sys::Date::now() as u64);
    assert_eq!(mounted.text("caller-kind"), "Contact");
    assert_eq!(mounted.text("caller-account"), "Acme AG");
    assert_eq!(mounted.text("caller-number"), "+41 44 123 45 67");
    assert_eq!(
        mounted.attr("call-state", "data-state").as_deref(),
        Some("ringing")
    );
    assert_eq!(mounted.text("call-state"), "Incoming call");

    let opportunities = mounted.text("opportunities");
    for part in ["Fleet renewal 2027", "Negotiation", "12,500 EUR"] {
        assert!(opportunities.contains(part), "{part} in {opportunities}");
    }
    let interactions = mounted.text("interactions");
    assert!(interactions.contains("Pricing follow-up"), "{interactions}");
    assert!(interactions.contains("24 Nov 2026"), "{interactions}");

    let others = mounted.get("other-matches");
    assert_eq!(others.tag_name().to_lowercase(), "details");
    let others = others.text_content().unwrap_or_default();
    assert!(others.contains("1 other match"), "{others}");
    assert!(
        others.contains("Acme AG") && others.contains("Account"),
        "{others}"
    );

    assert!(mounted.find("btn-answer").is_some());
    assert!(mounted.find("btn-decline").is_some());
    assert!(mounted.find("btn-hangup").is_none());

    let status = mounted.get("connection-status");
    assert_eq!(
        status.get_attribute("data-state").as_deref(),
        Some("connected")
    );
    assert_eq!(status.get_attribute("role").as_deref(), Some("status"));
    assert_eq!(status.get_attribute("aria-live").as_deref(), Some("polite"));
    assert_eq!(mounted.text("connection-status"), "Connected");
}

#[wasm_bindgen_test]
async fn an_unknown_caller_shows_the_number() {
    let mut call = ringing(vec![]);
    call.remote_extension = Some("12".into());
    let mounted = Mounted::new(connected_view(call, false)).await;
    assert_eq!(mounted.text("caller-name"), "Unknown caller");
    assert!(mounted.attr("caller-name", "data-rendered-at").is_some());
    assert_eq!(mounted.text("caller-number"), "+41 44 123 45 67 ext. 12");
    assert!(mounted.find("caller-kind").is_none());
    assert!(mounted.find("opportunities").is_none());
    assert!(mounted.find("other-matches").is_none());
    assert!(
        mounted.find("not-in-v2").is_some(),
        "offers to create or find the record"
    );
}

#[wasm_bindgen_test]
async fn creating_a_record_opens_a_labelled_form_with_the_number_read_only() {
    let mounted = Mounted::new(connected_view(ringing(vec![]), false)).await;
    mounted
        .get("create-contact")
        .dyn_into::<HtmlElement>()
        .expect("html")
        .click();
    yew::scheduler::flush().await;
    let number = mounted
        .get("new-number")
        .dyn_into::<web_sys::HtmlInputElement>()
        .expect("an input");
    assert!(number.read_only());
    assert_eq!(number.value(), "+41 44 123 45 67");
    let family = mounted.get("new-family-name");
    let label = mounted
        .root
        .query_selector(&format!("label[for=\"{}\"]", family.id()))
        .expect("query")
        .expect("a label for the family name");
    assert!(
        label.text_content().unwrap_or_default().contains('*'),
        "marked required"
    );
    assert_eq!(
        family.get_attribute("aria-required").as_deref(),
        Some("true")
    );
    assert!(
        mounted.get("create-submit").has_attribute("disabled"),
        "nothing to create before the family name"
    );
}

#[wasm_bindgen_test]
async fn answering_sends_the_command_and_the_card_keeps_its_first_render_time() {
    let mut mounted = Mounted::new(connected_view(ringing(vec![anna()]), false)).await;
    let first = mounted.attr("caller-name", "data-rendered-at");
    mounted.click("btn-answer");
    assert_eq!(
        mounted.actions.borrow().as_slice(),
        &[UiAction::Command {
            call_id: "call-42".into(),
            command: CallCommand::Answer
        }]
    );

    // While the command is under way, the buttons wait.
    mounted
        .update(connected_view(ringing(vec![anna()]), true))
        .await;
    assert!(mounted.get("btn-answer").has_attribute("disabled"));
    assert!(mounted.get("btn-decline").has_attribute("disabled"));

    let mut answered = ringing(vec![anna()]);
    answered.state = CallState::Connected;
    answered.answered_at = Some("2026-11-24T10:00:05Z".into());
    mounted.update(connected_view(answered, false)).await;
    assert_eq!(
        mounted.attr("call-state", "data-state").as_deref(),
        Some("connected")
    );
    assert!(mounted.find("call-timer").is_some());
    assert!(!mounted.get("btn-hold").has_attribute("disabled"));
    assert!(mounted.find("btn-answer").is_none());
    assert_eq!(mounted.attr("caller-name", "data-rendered-at"), first);

    mounted.click("btn-hold");
    mounted.click("btn-hangup");
    let sent: Vec<_> = mounted
        .actions
        .borrow()
        .iter()
        .filter_map(|action| match action {
            UiAction::Command { command, .. } => Some(command.name()),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec!["answer", "hold", "hangup"]);
}

#[wasm_bindgen_test]
async fn a_connected_call_can_be_transferred_to_a_colleague() {
    let mut call = ringing(vec![anna()]);
    call.state = CallState::Connected;
    call.answered_at = Some("2026-11-24T10:00:05Z".into());
    let mounted = Mounted::new(connected_view(call, false)).await;
    let input = mounted
        .get("transfer-target")
        .dyn_into::<web_sys::HtmlInputElement>()
        .expect("an input");
    input.set_value(" bob@example.com ");
    input
        .dispatch_event(&web_sys::InputEvent::new("input").expect("event"))
        .expect("dispatched");
    yew::scheduler::flush().await;
    mounted.click("btn-transfer");
    assert_eq!(
        mounted.actions.borrow().as_slice(),
        &[UiAction::Command {
            call_id: "call-42".into(),
            command: CallCommand::Transfer {
                target: "bob@example.com".into()
            },
        }]
    );
}

#[wasm_bindgen_test]
async fn a_consultation_offers_to_complete_the_transfer_or_go_back_to_the_caller() {
    let mut call = ringing(vec![anna()]);
    call.state = CallState::Connected;
    let mut view = connected_view(call, false);
    let mut mounted = Mounted::new(view.clone()).await;
    let input = mounted
        .get("transfer-target")
        .dyn_into::<web_sys::HtmlInputElement>()
        .expect("an input");
    input.set_value("bob@example.com");
    input
        .dispatch_event(&web_sys::InputEvent::new("input").expect("event"))
        .expect("dispatched");
    yew::scheduler::flush().await;
    mounted.click("btn-consult");

    view.calls[0].call.state = CallState::Held;
    view.calls[0].call.consult = Some(ConsultView {
        agent: "bob@example.com".into(),
        state: CallState::Connected,
    });
    mounted.update(view).await;
    assert_eq!(mounted.text("consult-agent"), "bob@example.com");
    assert!(
        mounted.find("btn-resume").is_none(),
        "the consultation decides"
    );
    mounted.click("btn-complete-transfer");
    mounted.click("btn-cancel-consult");
    let sent: Vec<CallCommand> = mounted
        .actions
        .borrow()
        .iter()
        .filter_map(|a| match a {
            UiAction::Command { command, .. } => Some(command.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [
            CallCommand::Consult {
                target: "bob@example.com".into()
            },
            CallCommand::CompleteTransfer,
            CallCommand::CancelConsult
        ]
    );
}

#[wasm_bindgen_test]
async fn only_the_controls_the_phone_system_has_are_offered() {
    let mut call = ringing(vec![anna()]);
    call.state = CallState::Connected;
    call.answered_at = Some("2026-11-24T10:00:05Z".into());
    let mut view = connected_view(call, false);
    // As Microsoft Teams through Graph: no hold.
    view.controls = vec![Control::Hangup, Control::Consult];
    let mounted = Mounted::new(view).await;
    assert!(mounted.find("btn-hold").is_none());
    assert!(mounted.find("btn-transfer").is_none());
    assert!(mounted.find("btn-hangup").is_some());

    let input = mounted
        .get("transfer-target")
        .dyn_into::<web_sys::HtmlInputElement>()
        .expect("an input");
    input.set_value("bob@example.com");
    input
        .dispatch_event(&web_sys::InputEvent::new("input").expect("event"))
        .expect("dispatched");
    yew::scheduler::flush().await;
    mounted.click("btn-consult");
    assert_eq!(
        mounted.actions.borrow().as_slice(),
        &[UiAction::Command {
            call_id: "call-42".into(),
            command: CallCommand::Consult {
                target: "bob@example.com".into()
            },
        }],
        "one consultation, not one per listener"
    );
}

#[wasm_bindgen_test]
async fn a_held_call_offers_resume() {
    let mut held = ringing(vec![anna()]);
    held.state = CallState::Held;
    held.answered_at = Some("2026-11-24T10:00:05Z".into());
    let mounted = Mounted::new(connected_view(held, false)).await;
    assert_eq!(
        mounted.attr("call-state", "data-state").as_deref(),
        Some("held")
    );
    assert!(mounted.find("btn-resume").is_some());
    assert!(mounted.find("btn-hangup").is_some());
    assert!(mounted.find("btn-hold").is_none());
}

/// A screen reader hears the ringing call and each change of it from the live region, and
/// each control says its shortcut.
#[wasm_bindgen_test]
async fn the_live_region_announces_the_call_and_the_controls_name_their_shortcuts() {
    let mut mounted = Mounted::new(connected_view(ringing(vec![anna()]), false)).await;
    let region = mounted.get("announcer");
    assert_eq!(
        region.get_attribute("aria-live").as_deref(),
        Some("assertive")
    );
    assert_eq!(mounted.text("announcer"), "Incoming call from Anna Meier");
    assert_eq!(
        mounted.attr("btn-answer", "aria-keyshortcuts").as_deref(),
        Some("Alt+Shift+P")
    );
    assert_eq!(
        mounted.attr("btn-answer", "title").as_deref(),
        Some("Answer (Alt+Shift+P)")
    );
    assert_eq!(
        mounted.attr("btn-decline", "aria-keyshortcuts").as_deref(),
        Some("Alt+Shift+H")
    );
    assert_eq!(
        mounted.attr("notes", "aria-keyshortcuts").as_deref(),
        Some("Alt+Shift+N")
    );

    let mut held = ringing(vec![anna()]);
    held.state = CallState::Held;
    held.answered_at = Some("2026-11-24T10:00:05Z".into());
    mounted.update(connected_view(held, false)).await;
    assert_eq!(mounted.text("announcer"), "Anna Meier is on hold");
    assert_eq!(
        mounted.attr("btn-resume", "aria-keyshortcuts").as_deref(),
        Some("Alt+Shift+O")
    );

    let mut view = connected_view(ringing(vec![anna()]), false);
    view.calls.clear();
    mounted.update(view).await;
    assert_eq!(mounted.text("announcer"), "");
}

#[wasm_bindgen_test]
async fn controls_wait_while_disconnected() {
    let mut view = connected_view(ringing(vec![anna()]), false);
    view.status = ConnectionStatus::Reconnecting {
        retry_at_ms: js_sys::Date::now() as u64 + 4_000,
        reason: Disconnect::Closed {
            code: 1006,
            relay_reason: String::new(),
        },
    };
    let mounted = Mounted::new(view).await;
    assert!(mounted.get("btn-answer").has_attribute("disabled"));
    assert_eq!(
        mounted.attr("connection-status", "data-state").as_deref(),
        Some("reconnecting")
    );
    let status = mounted.text("connection-status");
    assert!(
        status.contains("Disconnected (connection lost)"),
        "{status}"
    );
    assert!(
        status.contains("Reconnecting in 4s") || status.contains("Reconnecting in 3s"),
        "{status}"
    );
    mounted.click("btn-retry-now");
    assert_eq!(*mounted.actions.borrow(), vec![UiAction::RetryNow]);
}

#[wasm_bindgen_test]
async fn notes_show_the_draft_and_report_typing() {
    let mut view = connected_view(ringing(vec![anna()]), false);
    view.calls[0].notes = "Wants a quote".into();
    let mounted = Mounted::new(view).await;
    let area = mounted
        .get("notes")
        .dyn_into::<web_sys::HtmlTextAreaElement>()
        .expect("a textarea");
    assert_eq!(area.value(), "Wants a quote");
    area.set_value("Wants a quote for 40 units");
    let input = web_sys::InputEvent::new("input").expect("event");
    area.dispatch_event(&input).expect("dispatched");
    let actions = mounted.actions.borrow();
    assert!(
        matches!(actions.as_slice(), [UiAction::EditNotes { text, .. }] if text == "Wants a quote for 40 units"),
        "{actions:?}"
    );
}

#[wasm_bindgen_test]
async fn unsaved_notes_say_so_and_saving_sends_notes_and_disposition() {
    let mut call = ringing(vec![anna()]);
    call.wrap_up.notes = "Wants a quote".into();
    call.wrap_up.disposition = Some("Interested".into());
    let mut view = connected_view(call, false);
    view.calls[0].notes = "Wants a quote".into();
    let mut mounted = Mounted::new(view.clone()).await;
    assert_eq!(
        mounted.attr("notes-status", "data-saved").as_deref(),
        Some("true")
    );
    assert_eq!(mounted.text("notes-status"), "Saved");
    let select = mounted
        .get("disposition")
        .dyn_into::<web_sys::HtmlSelectElement>()
        .expect("a select");
    assert_eq!(select.value(), "Interested");

    view.calls[0].notes = "Wants a quote for 40 units".into();
    mounted.update(view).await;
    assert_eq!(
        mounted.attr("notes-status", "data-saved").as_deref(),
        Some("false")
    );
    mounted.click("btn-save-notes");
    select.set_value("Not interested");
    select
        .dispatch_event(&web_sys::Event::new("change").expect("event"))
        .expect("dispatched");
    let actions = mounted.actions.borrow();
    assert_eq!(
        actions.as_slice(),
        &[
            UiAction::SaveWrapUp {
                call_id: "call-42".into(),
                notes: "Wants a quote for 40 units".into(),
                disposition: Some("Interested".into()),
            },
            UiAction::SaveWrapUp {
                call_id: "call-42".into(),
                notes: "Wants a quote for 40 units".into(),
                disposition: Some("Not interested".into()),
            },
        ]
    );
}

#[wasm_bindgen_test]
async fn the_activity_status_shows_pending_logged_and_refused_with_a_retry() {
    let mut ended = ringing(vec![anna()]);
    ended.state = CallState::Ended;
    ended.end_reason = Some(EndReason::Missed);
    let status = |state, reason: Option<&str>| ActivityStatus {
        state,
        v2_id: Some("pc-1".into()),
        display_id: Some("700123".into()),
        link: (state == ActivityState::Logged)
            .then(|| "https://my.crm.cloud.sap/go/detail/phonecall?nodeid=pc-1".into()),
        reason: reason.map(str::to_owned),
    };
    ended.wrap_up.activity = Some(status(
        ActivityState::Pending,
        Some("V2 answered 503 (x): busy"),
    ));
    let mut view = connected_view(ended, false);
    let mut mounted = Mounted::new(view.clone()).await;
    assert_eq!(
        mounted.attr("activity", "data-state").as_deref(),
        Some("pending")
    );
    assert!(
        mounted.text("activity").contains("retrying"),
        "{}",
        mounted.text("activity")
    );

    view.calls[0].call.wrap_up.activity = Some(status(ActivityState::Logged, None));
    mounted.update(view.clone()).await;
    assert_eq!(
        mounted.attr("activity", "data-state").as_deref(),
        Some("logged")
    );
    assert_eq!(mounted.text("activity-link"), "#700123");
    assert!(
        mounted
            .attr("activity-link", "href")
            .is_some_and(|h| h.ends_with("nodeid=pc-1"))
    );

    view.calls[0].call.wrap_up.activity = Some(status(
        ActivityState::Failed,
        Some("V2 answered 422 (phoneCall.1001): Data is required -> direction"),
    ));
    mounted.update(view).await;
    assert!(mounted.text("activity-reason").contains("Data is required"));
    mounted.click("btn-retry-activity");
    assert_eq!(
        mounted.actions.borrow().as_slice(),
        &[UiAction::RetryActivity {
            call_id: "call-42".into()
        }]
    );
}

#[wasm_bindgen_test]
async fn recording_consent_is_asked_for_where_required_and_shown_once_given() {
    let mut call = ringing(vec![anna()]);
    call.state = CallState::Connected;
    call.wrap_up.consent = Some(Consent {
        required: true,
        jurisdiction: "CH".into(),
        confirmed_by: None,
        confirmed_at: None,
    });
    let mut view = connected_view(call, false);
    let mut mounted = Mounted::new(view.clone()).await;
    assert!(mounted.text("consent").contains("(CH)"));
    mounted.click("btn-confirm-consent");
    assert_eq!(
        mounted.actions.borrow().as_slice(),
        &[UiAction::ConfirmConsent {
            call_id: "call-42".into()
        }]
    );
    if let Some(consent) = view.calls[0].call.wrap_up.consent.as_mut() {
        consent.confirmed_by = Some("alice@example.com".into());
    }
    mounted.update(view.clone()).await;
    assert_eq!(
        mounted.attr("consent", "data-confirmed").as_deref(),
        Some("true")
    );
    assert!(mounted.find("btn-confirm-consent").is_none());
    if let Some(consent) = view.calls[0].call.wrap_up.consent.as_mut() {
        consent.required = false;
    }
    mounted.update(view).await;
    assert!(
        mounted.find("consent").is_none(),
        "nothing to ask where no consent is needed"
    );
}

#[wasm_bindgen_test]
async fn a_transferred_call_shows_who_handed_it_over_and_their_notes() {
    let mut call = ringing(vec![anna()]);
    call.handover = Some(Handover {
        from: "alice@example.com".into(),
        notes: "Asks about the invoice".into(),
    });
    let mounted = Mounted::new(connected_view(call, false)).await;
    assert_eq!(mounted.text("handover-from"), "alice@example.com");
    assert_eq!(mounted.text("handover-notes"), "Asks about the invoice");
}

#[wasm_bindgen_test]
async fn other_matches_offer_to_be_the_caller() {
    let mounted = Mounted::new(connected_view(ringing(vec![anna(), acme()]), false)).await;
    let button = mounted
        .get("other-matches")
        .query_selector("button.choose-match")
        .expect("query")
        .expect("a choose button")
        .dyn_into::<HtmlElement>()
        .expect("html");
    assert!(
        button
            .get_attribute("aria-label")
            .is_some_and(|l| l.contains(&acme().name)),
        "the button names the record"
    );
    button.click();
    let actions = mounted.actions.borrow();
    assert!(
        matches!(actions.as_slice(), [UiAction::ChooseMatch { record_id, .. }] if *record_id == acme().id),
        "{actions:?}"
    );
}

#[wasm_bindgen_test]
async fn an_ended_call_leaves_a_summary_to_dismiss() {
    let mut ended = ringing(vec![anna()]);
    ended.state = CallState::Ended;
    ended.answered_at = Some("2026-11-24T10:00:05Z".into());
    ended.ended_at = Some("2026-11-24T10:02:18Z".into());
    ended.end_reason = Some(EndReason::Completed);
    let mounted = Mounted::new(connected_view(ended, false)).await;
    assert_eq!(
        mounted.attr("call-state", "data-state").as_deref(),
        Some("ended")
    );
    assert_eq!(mounted.text("call-state"), "Call ended");
    assert_eq!(mounted.text("call-duration"), "2:13");
    assert_eq!(mounted.text("end-reason"), "Completed");
    assert!(mounted.find("btn-hangup").is_none());
    mounted.click("btn-dismiss");
    assert_eq!(
        mounted.actions.borrow().as_slice(),
        &[UiAction::Dismiss("call-42".into())]
    );
}

#[wasm_bindgen_test]
async fn idle_shows_readiness_and_the_rep() {
    let view = ViewModel {
        status: ConnectionStatus::Connected,
        agent: Some("alice@example.com".into()),
        ..ViewModel::default()
    };
    let mounted = Mounted::new(view).await;
    assert!(mounted.text("idle").contains("Ready — waiting for calls"));
    assert_eq!(mounted.text("agent-id"), "alice@example.com");
    assert!(mounted.find("call-card").is_none());
}

#[wasm_bindgen_test]
async fn signed_out_says_so_and_hides_calls() {
    let mut view = connected_view(ringing(vec![anna()]), false);
    view.status = ConnectionStatus::SignedOut {
        reason: SignedOut::NoToken,
    };
    let mounted = Mounted::new(view).await;
    assert_eq!(
        mounted.attr("connection-status", "data-state").as_deref(),
        Some("signed_out")
    );
    assert_eq!(mounted.text("connection-status"), "Signed out");
    assert!(
        mounted
            .text("signed-out")
            .contains("You are not signed in to the phone system.")
    );
    assert!(mounted.find("caller-name").is_none());
    // A way out, not a retry loop.
    mounted.click("btn-sign-in");
    assert_eq!(*mounted.actions.borrow(), vec![UiAction::SignIn]);
}

#[wasm_bindgen_test]
async fn relay_errors_and_host_warnings_are_shown() {
    let mut view = connected_view(ringing(vec![anna()]), false);
    view.problem = Some(Problem {
        code: "provider_failed".into(),
        message: "The phone system refused the command.".into(),
        key: None,
    });
    view.host_warning = HostTarget::NotAllowed("https://evil.example".into()).warning();
    let mounted = Mounted::new(view).await;
    assert_eq!(
        mounted.attr("error", "data-code").as_deref(),
        Some("provider_failed")
    );
    assert_eq!(mounted.attr("error", "role").as_deref(), Some("alert"));
    assert!(
        mounted
            .text("error")
            .contains("The phone system refused the command.")
    );
    assert_eq!(
        mounted.attr("host-warning", "data-reason").as_deref(),
        Some("origin-not-allowed")
    );
    mounted.click("btn-error-dismiss");
    assert_eq!(
        mounted.actions.borrow().as_slice(),
        &[UiAction::DismissProblem]
    );
}

#[wasm_bindgen_test]
async fn a_rep_without_their_v2_sign_in_is_offered_to_connect() {
    let mut view = connected_view(ringing(vec![anna()]), false);
    let mut mounted = Mounted::new(view.clone()).await;
    assert!(mounted.find("v2-connect").is_none(), "not for this tenant");

    view.v2_connected = Some(false);
    mounted.update(view.clone()).await;
    assert!(mounted.text("v2-connect").contains("connect V2"));
    mounted.click("btn-v2-connect");
    assert_eq!(mounted.actions.borrow().as_slice(), &[UiAction::ConnectV2]);

    view.v2_connected = Some(true);
    mounted.update(view).await;
    assert!(mounted.find("v2-connect").is_none(), "connected");
}

/// Every state the panel can be in, one view model each, so a test can draw them all.
fn every_state() -> Vec<ViewModel> {
    let mut views = Vec::new();
    let base = connected_view(ringing(vec![anna(), acme()]), false);
    views.push(base.clone());

    let mut outbound = base.clone();
    outbound.calls[0].call.direction = Direction::Outbound;
    outbound.calls[0].call.remote_extension = Some("12".into());
    views.push(outbound);

    for state in [CallState::Connected, CallState::Held] {
        let mut view = base.clone();
        let call = &mut view.calls[0].call;
        call.state = state;
        call.answered_at = Some("2026-11-24T10:00:05Z".into());
        call.handover = Some(Handover {
            from: "bob@example.com".into(),
            notes: "Asks about the invoice".into(),
        });
        call.wrap_up.consent = Some(Consent {
            required: true,
            jurisdiction: "DE".into(),
            confirmed_by: None,
            confirmed_at: None,
        });
        view.calls[0].notes = "Unsaved draft".into();
        views.push(view);
    }
    for consult_state in [CallState::Ringing, CallState::Connected] {
        let mut view = base.clone();
        view.calls[0].call.state = CallState::Held;
        view.calls[0].call.consult = Some(ConsultView {
            agent: "bob@example.com".into(),
            state: consult_state,
        });
        views.push(view);
    }

    let activity = |state, reason: Option<&str>| ActivityStatus {
        state,
        v2_id: Some("pc-1".into()),
        display_id: None,
        link: Some("https://my.crm.cloud.sap/go/detail/phonecall?nodeid=pc-1".into()),
        reason: reason.map(str::to_owned),
    };
    for (end, activity) in [
        (
            Some(EndReason::Completed),
            activity(ActivityState::Logged, None),
        ),
        (
            Some(EndReason::Missed),
            activity(ActivityState::Pending, None),
        ),
        (
            Some(EndReason::Declined),
            activity(ActivityState::Pending, Some("busy")),
        ),
        (
            Some(EndReason::Failed),
            activity(ActivityState::Failed, Some("refused")),
        ),
        (None, activity(ActivityState::Logged, None)),
    ] {
        let mut view = base.clone();
        let call = &mut view.calls[0].call;
        call.state = CallState::Ended;
        call.end_reason = end;
        call.wrap_up.activity = Some(activity);
        call.wrap_up.consent = Some(Consent {
            required: true,
            jurisdiction: "DE".into(),
            confirmed_by: Some("alice@example.com".into()),
            confirmed_at: None,
        });
        call.wrap_up.notes = "Saved notes".into();
        view.calls[0].notes = "Saved notes".into();
        views.push(view);
    }
    let mut transferred = base.clone();
    transferred.calls[0].call.state = CallState::Transferred;
    views.push(transferred);

    let mut unknown = base.clone();
    unknown.calls[0].call.matches.clear();
    unknown.calls[0].call.pop = None;
    unknown.v2_connected = Some(false);
    unknown.host_warning = HostTarget::UnknownOrigin.warning();
    // An unknown caller: "Not in V2", with a search that found nothing, then one that found
    // the record; and the card once the rep created the record (with its link into V2).
    unknown.search = Some(cti_widget::state::Search {
        request_id: 1,
        query: "Nobody".into(),
        results: Some(Vec::new()),
    });
    views.push(unknown.clone());
    unknown.search = Some(cti_widget::state::Search {
        request_id: 2,
        query: "Anna".into(),
        results: Some(base.calls[0].call.matches.clone()),
    });
    views.push(unknown);
    let mut created = base.clone();
    created.calls[0].record_link =
        Some("https://t.crm.cloud.sap/go/detail/mdcontact?nodeid=x".into());
    views.push(created);

    let mut warned = base.clone();
    warned.host_warning = HostTarget::NotAllowed("https://evil.example".into()).warning();
    views.push(warned);

    for code in cti_protocol::ErrorCode::ALL {
        let mut view = base.clone();
        view.problem = Some(Problem {
            code: code.as_str().into(),
            message: "The relay's English".into(),
            key: None,
        });
        views.push(view);
    }
    for key in ["problem-not-dialled", "problem-no-v2-window"] {
        let mut view = base.clone();
        view.problem = Some(Problem {
            code: "not_connected".into(),
            message: String::new(),
            key: Some(key.into()),
        });
        views.push(view);
    }
    let mut unknown_code = base.clone();
    unknown_code.problem = Some(Problem {
        code: "from_a_newer_relay".into(),
        message: String::new(),
        key: None,
    });
    views.push(unknown_code);

    for reason in Disconnect::examples() {
        let mut view = base.clone();
        view.status = ConnectionStatus::Reconnecting {
            retry_at_ms: js_sys::Date::now() as u64 + 4_000,
            reason,
        };
        views.push(view);
    }
    for reason in [SignedOut::NoToken, SignedOut::Refused] {
        let mut view = base.clone();
        view.status = ConnectionStatus::SignedOut { reason };
        views.push(view);
    }
    views.push(ViewModel {
        status: ConnectionStatus::Connected,
        agent: Some("alice@example.com".into()),
        ..ViewModel::default()
    });
    views.push(ViewModel {
        status: ConnectionStatus::Connected,
        agent: Some("alice@example.com".into()),
        history: history_entries(),
        ..ViewModel::default()
    });
    views.push(ViewModel::default());
    views
}

/// Draws every state in `lang` and fails on any word the language lacks (a missing message
/// falls back to English on screen, and is noted).
async fn renders_completely_in(lang: Lang) -> Mounted {
    let states = every_state();
    let mut mounted = Mounted::in_language(states[0].clone(), lang).await;
    for view in states {
        mounted.update(view).await;
        let text = mounted.root.text_content().unwrap_or_default();
        assert!(!text.trim().is_empty());
    }
    let missing = I18n::get(lang).missing();
    assert!(missing.is_empty(), "{}.ftl lacks {missing:?}", lang.code());
    mounted.update(every_state().remove(0)).await;
    mounted
}

#[wasm_bindgen_test]
async fn the_panel_renders_completely_in_english() {
    let mounted = renders_completely_in(Lang::En).await;
    assert_eq!(mounted.text("call-state"), "Incoming call");
    assert!(mounted.text("opportunities").contains("12,500 EUR"));
    assert!(mounted.text("interactions").contains("24 Nov 2026"));
}

#[wasm_bindgen_test]
async fn the_panel_renders_completely_in_german() {
    let mounted = renders_completely_in(Lang::De).await;
    assert_eq!(mounted.text("call-state"), "Eingehender Anruf");
    assert_eq!(mounted.text("btn-answer"), "Annehmen");
    assert_eq!(mounted.text("caller-kind"), "Ansprechpartner");
    assert!(mounted.text("opportunities").contains("12.500 EUR"));
    assert!(mounted.text("interactions").contains("24. Nov. 2026"));
    assert!(
        mounted
            .text("other-matches")
            .starts_with("1 weiterer Treffer")
    );
}

#[wasm_bindgen_test]
async fn the_panel_renders_completely_in_french() {
    let mounted = renders_completely_in(Lang::Fr).await;
    assert_eq!(mounted.text("call-state"), "Appel entrant");
    assert_eq!(mounted.text("btn-decline"), "Refuser");
    assert!(
        mounted.text("opportunities").contains("12\u{202f}500 EUR"),
        "{}",
        mounted.text("opportunities")
    );
    assert!(mounted.text("interactions").contains("24 nov. 2026"));
}

#[wasm_bindgen_test]
async fn relay_errors_read_in_the_reps_language_by_their_code() {
    let mut view = connected_view(ringing(vec![anna()]), false);
    view.problem = Some(Problem {
        code: "dial_failed".into(),
        message: "Provider said: no route".into(),
        key: None,
    });
    let mounted = Mounted::in_language(view, Lang::De).await;
    assert_eq!(
        mounted.text("error"),
        "Die Telefonanlage konnte den Anruf nicht aufbauen.×"
    );
}

#[wasm_bindgen_test]
async fn the_language_picker_switches_and_is_remembered() {
    let picked = Rc::new(RefCell::new(Vec::new()));
    let document = gloo::utils::document();
    let root = document.create_element("div").expect("creates a div");
    document
        .body()
        .expect("has a body")
        .append_child(&root)
        .expect("appends");
    let on_language = {
        let picked = picked.clone();
        // What the app does with a pick: remember it, then draw in it.
        Callback::from(move |lang: Lang| {
            assert!(i18n::remember(lang), "storage works in the test browser");
            picked.borrow_mut().push(lang);
        })
    };
    let view = connected_view(ringing(vec![anna()]), false);
    let _handle = yew::Renderer::<WidgetView>::with_root_and_props(
        root.clone(),
        WidgetViewProps {
            view: Rc::new(view),
            on_action: Callback::noop(),
            lang: Lang::En,
            on_language,
        },
    )
    .render();
    yew::scheduler::flush().await;

    let select = root
        .query_selector("[data-testid=\"language\"]")
        .expect("valid selector")
        .expect("a language picker")
        .dyn_into::<web_sys::HtmlSelectElement>()
        .expect("a select");
    assert_eq!(select.value(), "en");
    select.set_value("fr");
    select
        .dispatch_event(&web_sys::Event::new("change").expect("event"))
        .expect("dispatched");
    yew::scheduler::flush().await;
    assert_eq!(*picked.borrow(), vec![Lang::Fr]);
    // The next page load (and the rep's other tabs) start in French, whatever the browser says.
    assert_eq!(i18n::from_page(), Lang::Fr);
    let stored = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(i18n::STORAGE_KEY).ok().flatten());
    assert_eq!(stored.as_deref(), Some("fr"));
    if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = storage.remove_item(i18n::STORAGE_KEY);
    }
}

/// The element's box on screen.
fn rect(mounted: &Mounted, test_id: &str) -> web_sys::DomRect {
    mounted.get(test_id).get_bounding_client_rect()
}

fn overlap(a: &web_sys::DomRect, b: &web_sys::DomRect) -> bool {
    a.left() < b.right() && b.left() < a.right() && a.top() < b.bottom() && b.top() < a.bottom()
}

/// At the side panel's narrowest (320 px), with the widget's own style sheet: in the wrap-up
/// each label sits above its field, and in an ended call's row "Logged in V2 #…" and Dismiss
/// do not share a line.
#[wasm_bindgen_test]
async fn the_wrap_up_stacks_labels_above_fields_at_320px() {
    let document = gloo::utils::document();
    let style = document.create_element("style").expect("a style element");
    style.set_text_content(Some(include_str!("../../static/widget/widget.css")));
    document
        .head()
        .expect("has a head")
        .append_child(&style)
        .expect("appends");

    let mut ended = ringing(vec![anna()]);
    ended.state = CallState::Ended;
    ended.end_reason = Some(EndReason::Completed);
    ended.answered_at = Some("2026-11-24T10:00:05Z".into());
    ended.ended_at = Some("2026-11-24T10:02:18Z".into());
    ended.wrap_up.activity = Some(ActivityStatus {
        state: ActivityState::Logged,
        v2_id: Some("pc-1".into()),
        display_id: Some("700123".into()),
        link: Some("https://my.crm.cloud.sap/go/detail/phonecall?nodeid=pc-1".into()),
        reason: None,
    });
    for lang in Lang::ALL {
        let mounted = Mounted::in_language(connected_view(ended.clone(), false), lang).await;
        mounted
            .root
            .set_attribute("style", "width: 320px")
            .expect("sets the width");
        let panel = mounted.root.get_bounding_client_rect();
        let lang = lang.code();

        for (label, field) in [
            ("notes-label", "notes"),
            ("disposition-label", "disposition"),
        ] {
            let (label_box, field_box) = (rect(&mounted, label), rect(&mounted, field));
            assert!(
                label_box.bottom() <= field_box.top() + 0.5,
                "{lang}: {label} ({}..{}) is not above {field} ({}..{})",
                label_box.top(),
                label_box.bottom(),
                field_box.top(),
                field_box.bottom()
            );
            assert!(
                (label_box.left() - field_box.left()).abs() < 1.0,
                "{lang}: {label} and {field} do not line up"
            );
            assert!(
                field_box.right() <= panel.right() + 0.5 && field_box.left() >= panel.left(),
                "{lang}: {field} leaves the 320 px panel"
            );
            assert!(
                field_box.width() >= panel.width() * 0.6,
                "{lang}: {field} is only {} px wide",
                field_box.width()
            );
        }
        let notes = rect(&mounted, "notes");
        let outcome_label = rect(&mounted, "disposition-label");
        assert!(
            notes.bottom() <= outcome_label.top() + 0.5,
            "{lang}: the notes field runs into the Outcome label"
        );

        let (activity, dismiss) = (rect(&mounted, "activity"), rect(&mounted, "btn-dismiss"));
        assert!(
            !overlap(&activity, &dismiss),
            "{lang}: activity and Dismiss overlap"
        );
        assert!(
            activity.bottom() <= dismiss.top() + 0.5,
            "{lang}: Dismiss shares the activity's line"
        );
        let link = rect(&mounted, "activity-link");
        assert!(
            link.right() <= panel.right() + 0.5,
            "{lang}: the activity link leaves the panel"
        );
        for id in ["call-duration", "end-reason", "btn-dismiss", "notes-status"] {
            let part = rect(&mounted, id);
            assert!(
                part.right() <= panel.right() + 0.5,
                "{lang}: {id} leaves the panel"
            );
        }
        mounted.root.remove();
    }
    style.remove();
}

/// Three finished calls, newest first: a missed one from a known contact, an answered one whose
/// activity is logged, and a withheld number.
fn history_entries() -> Vec<Entry> {
    let missed = Entry {
        call_id: "h1".into(),
        direction: Direction::Inbound,
        number: "+41441234567".into(),
        display: "+41 44 123 45 67".into(),
        record: Some(RecordRef {
            kind: RecordKind::Contact,
            name: "Anna Meier".into(),
            display_id: "1001".into(),
        }),
        started_at: "2026-11-24T10:05:00Z".into(),
        state: CallState::Ended,
        end_reason: Some(EndReason::Missed),
        answered: false,
        disposition: None,
        activity: None,
    };
    let answered = Entry {
        call_id: "h2".into(),
        number: "+41445550000".into(),
        display: String::new(),
        record: None,
        started_at: "2026-11-24T09:00:00Z".into(),
        end_reason: Some(EndReason::Completed),
        answered: true,
        disposition: Some("Interested".into()),
        activity: Some(ActivityStatus {
            state: ActivityState::Logged,
            v2_id: Some("pc-2".into()),
            display_id: Some("700124".into()),
            link: Some("https://my.crm.cloud.sap/go/detail/phonecall?nodeid=pc-2".into()),
            reason: None,
        }),
        ..missed.clone()
    };
    let withheld = Entry {
        call_id: "h3".into(),
        number: "anonymous".into(),
        display: String::new(),
        record: None,
        started_at: "2026-11-24T08:00:00Z".into(),
        ..missed.clone()
    };
    vec![missed, answered, withheld]
}

#[wasm_bindgen_test]
async fn recent_calls_list_each_call_with_a_call_back_named_for_screen_readers() {
    let mut view = connected_view(ringing(vec![anna()]), false);
    view.history = history_entries();
    let mut mounted = Mounted::new(view.clone()).await;
    let section = mounted.get("history");
    assert_eq!(section.tag_name(), "DETAILS");
    assert!(
        !section.has_attribute("open"),
        "closed until the rep opens it"
    );
    let toggle = mounted.text("history-toggle");
    assert!(toggle.contains("Recent calls (3)"), "{toggle}");
    assert_eq!(mounted.text("history-missed"), "2 missed");

    let rows = mounted
        .root
        .query_selector_all("[data-testid=history-row]")
        .expect("valid selector");
    assert_eq!(rows.length(), 3);
    let row = |i: u32| -> Element { rows.item(i).expect("a row").dyn_into().expect("an element") };
    let first = row(0);
    assert_eq!(
        first.get_attribute("data-outcome").as_deref(),
        Some("missed")
    );
    let text = first.text_content().unwrap_or_default();
    assert!(
        text.contains("Anna Meier") && text.contains("Contact"),
        "{text}"
    );
    assert!(
        text.contains("+41 44 123 45 67") && text.contains("Missed"),
        "{text}"
    );
    let time = first
        .query_selector("time")
        .expect("valid")
        .expect("a time");
    assert_eq!(
        time.get_attribute("datetime").as_deref(),
        Some("2026-11-24T10:05:00Z")
    );
    assert!(time.text_content().unwrap_or_default().contains("24 Nov"));
    let button = first
        .query_selector("[data-testid=btn-call-back]")
        .expect("valid")
        .expect("a call back");
    assert_eq!(
        button.get_attribute("aria-label").as_deref(),
        Some("Call back Anna Meier, +41 44 123 45 67")
    );

    let second = row(1);
    assert_eq!(
        second.get_attribute("data-outcome").as_deref(),
        Some("answered")
    );
    let text = second.text_content().unwrap_or_default();
    assert!(
        text.contains("Completed") && text.contains("Interested"),
        "{text}"
    );
    let link = second
        .query_selector("[data-testid=history-activity-link]")
        .expect("valid")
        .expect("the activity's link");
    assert_eq!(link.text_content().as_deref(), Some("#700124"));
    assert_eq!(
        link.get_attribute("href").as_deref(),
        Some("https://my.crm.cloud.sap/go/detail/phonecall?nodeid=pc-2")
    );
    let label = second
        .query_selector("[data-testid=btn-call-back]")
        .expect("valid")
        .expect("a call back")
        .get_attribute("aria-label");
    assert_eq!(label.as_deref(), Some("Call back +41445550000"));
    assert!(
        row(2)
            .query_selector("[data-testid=btn-call-back]")
            .expect("valid")
            .is_none(),
        "a withheld number has nothing to call back"
    );

    // The call back dials the number as the relay sent it.
    first
        .query_selector("[data-testid=btn-call-back]")
        .expect("valid")
        .expect("a call back")
        .dyn_into::<HtmlElement>()
        .expect("an HTML element")
        .click();
    assert_eq!(
        mounted.actions.borrow().as_slice(),
        &[UiAction::Dial {
            number: "+41441234567".into()
        }]
    );

    // Offline, a call back has nothing to go out on.
    view.status = ConnectionStatus::Connecting;
    mounted.update(view.clone()).await;
    assert!(mounted.get("btn-call-back").has_attribute("disabled"));
    // Signed out, nothing of the rep's calls is shown.
    view.status = ConnectionStatus::SignedOut {
        reason: SignedOut::NoToken,
    };
    mounted.update(view).await;
    assert!(mounted.find("history").is_none());
}
