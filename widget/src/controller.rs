//! The glue between the socket, the reducer, the host window and storage.
//!
//! This is the only place where decisions turn into effects: a server message goes through the
//! pure reducer ([`crate::state`]), then the posted set is persisted, then the host payloads are
//! posted, then the panel is redrawn. Keeping that order here, in one place, is what makes "a
//! reload never pops twice" hold: the mark is stored before the payload leaves.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use cti_protocol::{ClientMessage, ServerMessage};
use yew::Callback;

use wasm_bindgen::JsCast;
use web_sys::MessageEvent;

use crate::connection::{Connection, ConnectionEvent, ConnectionStatus, ws_url};
use crate::dial;
use crate::host::{self, HostTarget};
use crate::posted::PostedSet;
use crate::state::WidgetState;
use crate::ui::{CallItem, UiAction, ViewModel};
use crate::{storage, token};

/// Where the posted set is kept between reloads of one tab.
pub const POSTED_KEY: &str = "cti.posted";

const NO_TOKEN: &str = "No sign-in token. Open the phone panel from SAP Sales Cloud to sign in.";

/// The running widget. Cloning shares it.
#[derive(Clone)]
pub struct Controller {
    shared: Rc<RefCell<Shared>>,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

struct Shared {
    state: WidgetState,
    status: ConnectionStatus,
    /// Decided at each `welcome`, when the allowed host origins are known.
    host: Option<HostTarget>,
    connection: Option<Connection>,
    /// The reducer's mark, shared with the connection for its next `hello`.
    last_seq: Rc<Cell<Option<u64>>>,
    render: Callback<Rc<ViewModel>>,
    /// Click-to-dial requests refused (foreign origin, malformed), for the console and tests.
    ignored_requests: u32,
    /// Listens for V2's click-to-dial messages while the widget runs.
    host_requests: Option<gloo::events::EventListener>,
}

impl Controller {
    /// Signs in with the page's token and connects; `render` receives every new view.
    pub fn start(render: Callback<Rc<ViewModel>>) -> Controller {
        let shared = Rc::new(RefCell::new(Shared {
            state: WidgetState::new(load_posted()),
            status: ConnectionStatus::Connecting,
            host: None,
            connection: None,
            last_seq: Rc::new(Cell::new(None)),
            render,
            ignored_requests: 0,
            host_requests: None,
        }));
        let weak = Rc::downgrade(&shared);
        let listener =
            gloo::events::EventListener::new(&gloo::utils::window(), "message", move |event| {
                let (Some(shared), Some(event)) = (weak.upgrade(), event.dyn_ref::<MessageEvent>())
                else {
                    return;
                };
                host_request(&shared, event);
            });
        shared.borrow_mut().host_requests = Some(listener);
        match token::acquire() {
            None => {
                shared.borrow_mut().status = ConnectionStatus::SignedOut {
                    reason: NO_TOKEN.to_owned(),
                };
            }
            Some(token) => {
                let last_seq = shared.borrow().last_seq.clone();
                let weak = Rc::downgrade(&shared);
                let connection = Connection::start(socket_url(), token, last_seq, move |event| {
                    if let Some(shared) = weak.upgrade() {
                        handle(&shared, event);
                    }
                });
                shared.borrow_mut().connection = Some(connection);
            }
        }
        render_view(&shared);
        Controller { shared }
    }

    /// Carries out what the rep clicked.
    pub fn act(&self, action: UiAction) {
        match action {
            UiAction::Command { call_id, command } => {
                let connection = self.shared.borrow().connection.clone();
                let message = ClientMessage::Command {
                    call_id: call_id.clone(),
                    command,
                };
                let sent = connection.is_some_and(|connection| connection.send(&message));
                let mut shared = self.shared.borrow_mut();
                if sent {
                    shared.state.command_sent(&call_id);
                } else {
                    shared.state.report(
                        "not_connected",
                        "Not connected to the phone system. Try again once the status shows \
                         Connected.",
                    );
                }
            }
            UiAction::ChooseMatch { call_id, record_id } => {
                let connection = self.shared.borrow().connection.clone();
                let message = ClientMessage::ChooseMatch { call_id, record_id };
                if !connection.is_some_and(|connection| connection.send(&message)) {
                    self.shared.borrow_mut().state.report(
                        "not_connected",
                        "Not connected to the phone system. Try again once the status shows \
                         Connected.",
                    );
                }
            }
            UiAction::Dismiss(call_id) => self.shared.borrow_mut().state.dismiss(&call_id),
            UiAction::DismissProblem => self.shared.borrow_mut().state.dismiss_problem(),
            UiAction::RetryNow => {
                let connection = self.shared.borrow().connection.clone();
                if let Some(connection) = connection {
                    connection.retry_now();
                }
            }
        }
        render_view(&self.shared);
    }

    /// Closes the connection; the panel is going away.
    pub fn stop(&self) {
        self.shared.borrow_mut().host_requests = None;
        let connection = self.shared.borrow_mut().connection.take();
        if let Some(connection) = connection {
            connection.stop();
        }
    }
}

/// A message posted into the frame: click-to-dial when it is one from the V2 host.
fn host_request(shared: &Rc<RefCell<Shared>>, event: &MessageEvent) {
    let window = gloo::utils::window();
    let from_parent = match (event.source(), window.parent().ok().flatten()) {
        // Framed: the parent is a different window from this one.
        (Some(source), Some(parent)) => {
            !js_sys::Object::is(&parent, &window) && js_sys::Object::is(&source, &parent)
        }
        _ => false,
    };
    let data = js_sys::JSON::stringify(&event.data())
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default();
    let allowed = shared
        .borrow()
        .state
        .session()
        .map(|session| session.host_origins.clone())
        .unwrap_or_default();
    match dial::judge(&event.origin(), from_parent, &allowed, &data) {
        dial::Verdict::NotForUs => return,
        dial::Verdict::Ignored(reason) => {
            let note = format!("ignored a click-to-dial request: {reason}");
            gloo::console::warn!(note);
            shared.borrow_mut().ignored_requests += 1;
        }
        dial::Verdict::Dial(number) => {
            let connection = shared.borrow().connection.clone();
            let sent = connection
                .is_some_and(|connection| connection.send(&ClientMessage::Dial { number }));
            if !sent {
                shared.borrow_mut().state.report(
                    "not_connected",
                    "Not connected to the phone system, so the number was not dialled. Try \
                     again once the status shows Connected.",
                );
            }
        }
    }
    render_view(shared);
}

fn socket_url() -> String {
    let location = gloo::utils::window().location();
    ws_url(
        &location.protocol().unwrap_or_default(),
        &location.host().unwrap_or_default(),
    )
}

fn load_posted() -> PostedSet {
    let Some(json) = storage::get(POSTED_KEY) else {
        return PostedSet::default();
    };
    PostedSet::from_json(&json).unwrap_or_else(|_| {
        gloo::console::warn!("ignored an unreadable record of earlier screen pops");
        PostedSet::default()
    })
}

fn handle(shared: &Rc<RefCell<Shared>>, event: ConnectionEvent) {
    match event {
        ConnectionEvent::Status(status) => {
            if matches!(status, ConnectionStatus::SignedOut { .. }) {
                token::forget();
            }
            shared.borrow_mut().status = status;
        }
        ConnectionEvent::Message(message) => apply(&mut shared.borrow_mut(), *message),
    }
    render_view(shared);
}

fn apply(shared: &mut Shared, message: ServerMessage) {
    let welcome = matches!(message, ServerMessage::Welcome { .. });
    let effects = shared.state.apply(message);
    shared.last_seq.set(shared.state.last_seq());
    if welcome {
        let allowed = shared
            .state
            .session()
            .map(|session| session.host_origins.clone())
            .unwrap_or_default();
        let target = host::detect(&allowed);
        if target == HostTarget::NotFramed {
            gloo::console::info!("not inside a host page: screen pop payloads are not posted");
        }
        shared.host = Some(target);
    }
    if effects.is_empty() {
        return;
    }
    if !storage::set(POSTED_KEY, &shared.state.posted().to_json()) {
        gloo::console::warn!("could not store the record of screen pops; a reload may pop again");
    }
    let Some(HostTarget::Parent(origin)) = &shared.host else {
        return;
    };
    for effect in effects {
        if let Err(problem) = host::post(origin, &effect) {
            let note = format!(
                "could not post {} for call {} to the host: {problem}",
                effect.payload.action, effect.payload.external_reference_id
            );
            gloo::console::warn!(note);
        }
    }
}

fn render_view(shared: &Rc<RefCell<Shared>>) {
    let (view, render) = {
        let shared = shared.borrow();
        let state = &shared.state;
        let view = ViewModel {
            status: shared.status.clone(),
            agent: state.session().map(|session| session.agent.clone()),
            calls: state
                .visible_calls()
                .map(|call| CallItem {
                    call: call.clone(),
                    pending: state.is_pending(&call.id),
                })
                .collect(),
            problem: state.problem().cloned(),
            host_warning: shared.host.as_ref().and_then(HostTarget::warning),
            ignored_host_requests: shared.ignored_requests,
        };
        (view, shared.render.clone())
    };
    render.emit(Rc::new(view));
}
