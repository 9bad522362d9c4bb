//! The glue between the socket, the reducer, the host window, storage and the rep's other tabs.
//!
//! This is the only place where decisions turn into effects: a server message goes through the
//! pure reducer ([`crate::state`]), then the posted set is persisted, then the host payloads are
//! posted, then the panel is redrawn. Keeping that order here, in one place, is what makes "a
//! reload never pops twice" hold: the mark is stored before the payload leaves.
//!
//! Only the leader tab ([`crate::tabs`]) connects and posts to its host; it sends its view to the
//! other tabs after every change, and carries out their clicks. The posted set lives in storage
//! the tabs share, so a tab that takes over never pops a call again.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use cti_protocol::{ClientMessage, ErrorCode, ServerMessage};
use yew::Callback;

use wasm_bindgen::JsCast;
use web_sys::MessageEvent;

use crate::connection::{Connection, ConnectionEvent, ConnectionStatus, ws_url};
use crate::dial;
use crate::host::{self, HostTarget};
use crate::posted::PostedSet;
use crate::state::WidgetState;
use crate::tabs::{Mirror, TabEvent, TabMessage, Tabs};
use crate::ui::{CallItem, UiAction, ViewModel};
use crate::{notes, storage, token};

/// Where the posted set is kept, shared by the rep's tabs (`cti.posted:<rep>`).
pub const POSTED_KEY: &str = "cti.posted";

/// The relay's redirect to the identity provider's sign-in page.
const SIGN_IN_PATH: &str = "/v1/agent/sign-in";

/// Where the rep's own V2 sign-in starts (a form post, so the token stays out of URLs).
const V2_CONNECT_PATH: &str = "/v1/agent/v2-connect";

const NO_TOKEN: &str = "You are not signed in to the phone system.";

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
    /// Listens for other tabs' changes to shared storage (notes drafts).
    storage_changed: Option<gloo::events::EventListener>,
    /// This tab's sign-in token, used when it leads.
    token: Option<String>,
    /// Who the token names: the key of the rep's group of tabs and of the shared posted set.
    rep: String,
    tabs: Option<Tabs>,
    leader: bool,
    /// A follower's copy of the leader's view.
    mirror: Option<Mirror>,
}

impl Controller {
    /// Signs in with the page's token and connects; `render` receives every new view.
    pub fn start(render: Callback<Rc<ViewModel>>) -> Controller {
        let shared = Rc::new(RefCell::new(Shared {
            state: WidgetState::new(PostedSet::default()),
            status: ConnectionStatus::Connecting,
            host: None,
            connection: None,
            last_seq: Rc::new(Cell::new(None)),
            render,
            ignored_requests: 0,
            host_requests: None,
            storage_changed: None,
            token: None,
            rep: String::new(),
            tabs: None,
            leader: false,
            mirror: None,
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
        // Another tab of the rep saved notes: show them here too.
        let weak = Rc::downgrade(&shared);
        let storage_changed =
            gloo::events::EventListener::new(&gloo::utils::window(), "storage", move |_| {
                if let Some(shared) = weak.upgrade() {
                    render_view(&shared);
                }
            });
        shared.borrow_mut().storage_changed = Some(storage_changed);
        match token::acquire() {
            None => {
                shared.borrow_mut().status = ConnectionStatus::SignedOut {
                    reason: NO_TOKEN.to_owned(),
                };
            }
            Some(token) => {
                let rep = token::subject(&token).unwrap_or_else(|| "unknown".to_owned());
                {
                    let mut s = shared.borrow_mut();
                    s.token = Some(token);
                    s.rep = rep.clone();
                }
                let weak = Rc::downgrade(&shared);
                let tabs = Tabs::join(&rep, move |event| {
                    if let Some(shared) = weak.upgrade() {
                        on_tab_event(&shared, event);
                    }
                });
                let leader = tabs.is_leader();
                if !leader {
                    tabs.send(&TabMessage::Hello);
                }
                shared.borrow_mut().tabs = Some(tabs);
            }
        }
        render_view(&shared);
        Controller { shared }
    }

    /// Carries out what the rep clicked: here when this tab leads, else through the leader.
    pub fn act(&self, action: UiAction) {
        act(&self.shared, action);
    }

    /// Closes the connection and leaves the tab group; the panel is going away.
    pub fn stop(&self) {
        let (connection, tabs) = {
            let mut shared = self.shared.borrow_mut();
            shared.host_requests = None;
            (shared.connection.take(), shared.tabs.take())
        };
        if let Some(connection) = connection {
            connection.stop();
        }
        drop(tabs);
    }
}

fn act(shared: &Rc<RefCell<Shared>>, action: UiAction) {
    // Signing in happens in this frame, whoever leads: the sign-in page returns here.
    if action == UiAction::SignIn {
        if gloo::utils::window()
            .location()
            .set_href(SIGN_IN_PATH)
            .is_err()
        {
            gloo::console::warn!("could not open the sign-in page");
        }
        return;
    }
    // Also in this frame, with this tab's token: the click's user activation lets the window open.
    if action == UiAction::ConnectV2 {
        let token = shared.borrow().token.clone();
        match token {
            Some(token) if open_v2_connect(&token).is_ok() => {}
            _ => shared.borrow_mut().state.report(
                ErrorCode::V2Connect.as_str(),
                "Could not open the V2 sign-in window. Allow pop-ups for this page and try again.",
            ),
        }
        render_view(shared);
        return;
    }
    // Notes are drafts in storage every tab of the rep shares: written here, whoever leads.
    if let UiAction::EditNotes { call_id, text } = &action {
        let rep = shared.borrow().rep.clone();
        let mut drafts = load_notes(&rep);
        drafts.set(call_id, text);
        if !storage::shared_set(&notes_key(&rep), &drafts.to_json()) {
            gloo::console::warn!("could not save the notes draft; it may be lost on reload");
        }
        render_view(shared);
        return;
    }
    {
        let s = shared.borrow();
        if let (false, Some(tabs)) = (s.leader, s.tabs.as_ref()) {
            tabs.send(&TabMessage::Action { action });
            return;
        }
    }
    perform(shared, action);
}

/// Carries out a click in the leader tab.
fn perform(shared: &Rc<RefCell<Shared>>, action: UiAction) {
    {
        match action {
            UiAction::Command { call_id, command } => {
                let connection = shared.borrow().connection.clone();
                let message = ClientMessage::Command {
                    call_id: call_id.clone(),
                    command,
                };
                let sent = connection.is_some_and(|connection| connection.send(&message));
                let mut shared = shared.borrow_mut();
                if sent {
                    shared.state.command_sent(&call_id);
                } else {
                    shared.state.report(
                        ErrorCode::NotConnected.as_str(),
                        "Not connected to the phone system. Try again once the status shows \
                         Connected.",
                    );
                }
            }
            UiAction::ChooseMatch { .. }
            | UiAction::SaveWrapUp { .. }
            | UiAction::RetryActivity { .. }
            | UiAction::ConfirmConsent { .. } => {
                let message = match action {
                    UiAction::ChooseMatch { call_id, record_id } => {
                        ClientMessage::ChooseMatch { call_id, record_id }
                    }
                    UiAction::SaveWrapUp {
                        call_id,
                        notes,
                        disposition,
                    } => ClientMessage::SaveWrapUp {
                        call_id,
                        notes,
                        disposition,
                    },
                    UiAction::RetryActivity { call_id } => ClientMessage::RetryActivity { call_id },
                    UiAction::ConfirmConsent { call_id } => {
                        ClientMessage::ConfirmConsent { call_id }
                    }
                    _ => return,
                };
                let connection = shared.borrow().connection.clone();
                if !connection.is_some_and(|connection| connection.send(&message)) {
                    shared.borrow_mut().state.report(
                        ErrorCode::NotConnected.as_str(),
                        "Not connected to the phone system. Try again once the status shows \
                         Connected.",
                    );
                }
            }
            UiAction::Dismiss(call_id) => shared.borrow_mut().state.dismiss(&call_id),
            UiAction::DismissProblem => shared.borrow_mut().state.dismiss_problem(),
            UiAction::RetryNow => {
                let connection = shared.borrow().connection.clone();
                if let Some(connection) = connection {
                    connection.retry_now();
                }
            }
            UiAction::EditNotes { .. } | UiAction::SignIn | UiAction::ConnectV2 => {}
            UiAction::Dial { number } => {
                let connection = shared.borrow().connection.clone();
                let sent = connection
                    .is_some_and(|connection| connection.send(&ClientMessage::Dial { number }));
                if !sent {
                    shared.borrow_mut().state.report(
                        ErrorCode::NotConnected.as_str(),
                        "Not connected to the phone system, so the number was not dialled. \
                         Try again once the status shows Connected.",
                    );
                }
            }
        }
    }
    render_view(shared);
}

/// Leadership changed, or another tab said something.
fn on_tab_event(shared: &Rc<RefCell<Shared>>, event: TabEvent) {
    match event {
        TabEvent::Leader(true) => become_leader(shared),
        TabEvent::Leader(false) => become_follower(shared),
        TabEvent::Message(TabMessage::Hello) => {}
        TabEvent::Message(TabMessage::Mirror { mirror }) => {
            let mut s = shared.borrow_mut();
            if !s.leader {
                s.mirror = Some(mirror);
            }
        }
        TabEvent::Message(TabMessage::Action { action }) => {
            if shared.borrow().leader {
                perform(shared, action);
                return;
            }
        }
        TabEvent::Message(TabMessage::Election { .. }) => return,
    }
    // A leader answers `hello` (and every change) by rendering, which sends its view.
    render_view(shared);
}

/// This tab now leads: start from what the rep's tabs already popped, and connect.
fn become_leader(shared: &Rc<RefCell<Shared>>) {
    let (token, last_seq) = {
        let mut s = shared.borrow_mut();
        s.leader = true;
        s.mirror = None;
        s.state = WidgetState::new(load_posted(&s.rep));
        s.last_seq.set(None);
        s.status = ConnectionStatus::Connecting;
        (s.token.clone(), s.last_seq.clone())
    };
    let Some(token) = token else { return };
    let weak = Rc::downgrade(shared);
    let connection = Connection::start(socket_url(), token, last_seq, move |event| {
        if let Some(shared) = weak.upgrade() {
            handle(&shared, event);
        }
    });
    shared.borrow_mut().connection = Some(connection);
}

/// Another tab leads (two leaders met): hand over and mirror it.
fn become_follower(shared: &Rc<RefCell<Shared>>) {
    let connection = {
        let mut s = shared.borrow_mut();
        s.leader = false;
        s.host = None;
        s.connection.take()
    };
    if let Some(connection) = connection {
        connection.stop();
    }
    if let Some(tabs) = shared.borrow().tabs.as_ref() {
        tabs.send(&TabMessage::Hello);
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
    let allowed = {
        let s = shared.borrow();
        match &s.mirror {
            Some(mirror) if !s.leader => mirror.host_origins.clone(),
            _ => s
                .state
                .session()
                .map(|session| session.host_origins.clone())
                .unwrap_or_default(),
        }
    };
    match dial::judge(&event.origin(), from_parent, &allowed, &data) {
        dial::Verdict::NotForUs => return,
        dial::Verdict::Ignored(reason) => {
            let note = format!("ignored a click-to-dial request: {reason}");
            gloo::console::warn!(note);
            shared.borrow_mut().ignored_requests += 1;
        }
        dial::Verdict::Dial(number) => return act(shared, UiAction::Dial { number }),
    }
    render_view(shared);
}

/// Posts the token to the relay's V2 sign-in start into a new window: a hidden form, submitted
/// and removed.
fn open_v2_connect(token: &str) -> Result<(), wasm_bindgen::JsValue> {
    let document = gloo::utils::document();
    let form: web_sys::HtmlFormElement = document.create_element("form")?.unchecked_into();
    form.set_method("post");
    form.set_action(V2_CONNECT_PATH);
    form.set_target("_blank");
    let field: web_sys::HtmlInputElement = document.create_element("input")?.unchecked_into();
    field.set_type("hidden");
    field.set_name("token");
    field.set_value(token);
    form.append_child(&field)?;
    let body = document.body().ok_or("no body")?;
    body.append_child(&form)?;
    form.submit()?;
    body.remove_child(&form)?;
    Ok(())
}

fn socket_url() -> String {
    let location = gloo::utils::window().location();
    ws_url(
        &location.protocol().unwrap_or_default(),
        &location.host().unwrap_or_default(),
    )
}

fn notes_key(rep: &str) -> String {
    format!("cti.notes:{rep}")
}

fn load_notes(rep: &str) -> notes::Drafts {
    storage::shared_get(&notes_key(rep))
        .map(|json| notes::Drafts::from_json(&json))
        .unwrap_or_default()
}

fn posted_key(rep: &str) -> String {
    format!("{POSTED_KEY}:{rep}")
}

fn load_posted(rep: &str) -> PostedSet {
    let Some(json) = storage::shared_get(&posted_key(rep)) else {
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
    if !storage::shared_set(&posted_key(&shared.rep), &shared.state.posted().to_json()) {
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
    let (mut view, render) = {
        let shared = shared.borrow();
        let view = match (&shared.mirror, shared.leader || shared.tabs.is_none()) {
            // A follower shows the leader's view; before the first one arrives, that it waits.
            (mirror, false) => {
                let mirror = mirror.clone().unwrap_or(Mirror {
                    status: ConnectionStatus::Connecting,
                    agent: None,
                    calls: Vec::new(),
                    problem: None,
                    host_origins: Vec::new(),
                    dispositions: Vec::new(),
                    v2_connected: None,
                });
                ViewModel {
                    status: mirror.status,
                    agent: mirror.agent,
                    calls: mirror.calls,
                    problem: mirror.problem,
                    dispositions: mirror.dispositions,
                    v2_connected: mirror.v2_connected,
                    host_warning: None,
                    ignored_host_requests: shared.ignored_requests,
                }
            }
            (_, true) => {
                let state = &shared.state;
                let view = ViewModel {
                    status: shared.status.clone(),
                    agent: state.session().map(|session| session.agent.clone()),
                    calls: state
                        .visible_calls()
                        .map(|call| CallItem {
                            call: call.clone(),
                            pending: state.is_pending(&call.id),
                            notes: String::new(),
                        })
                        .collect(),
                    problem: state.problem().cloned(),
                    dispositions: state
                        .session()
                        .map(|session| session.dispositions.clone())
                        .unwrap_or_default(),
                    v2_connected: state.v2_sign_in(),
                    host_warning: shared.host.as_ref().and_then(HostTarget::warning),
                    ignored_host_requests: shared.ignored_requests,
                };
                if let Some(tabs) = shared.tabs.as_ref() {
                    tabs.send(&TabMessage::Mirror {
                        mirror: Mirror {
                            status: view.status.clone(),
                            agent: view.agent.clone(),
                            calls: view.calls.clone(),
                            problem: view.problem.clone(),
                            host_origins: state
                                .session()
                                .map(|session| session.host_origins.clone())
                                .unwrap_or_default(),
                            dispositions: view.dispositions.clone(),
                            v2_connected: view.v2_connected,
                        },
                    });
                }
                view
            }
        };
        (view, shared.render.clone())
    };
    // The draft wins (it may hold what the relay has not confirmed yet); without one, what the
    // relay saved (typed in another browser, or before this storage was cleared).
    let drafts = load_notes(&shared.borrow().rep);
    for item in &mut view.calls {
        let draft = drafts.get(&item.call.id);
        item.notes = if draft.is_empty() {
            item.call.wrap_up.notes.clone()
        } else {
            draft.to_owned()
        };
    }
    render.emit(Rc::new(view));
}
