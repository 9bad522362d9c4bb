//! Carries out what the [`Model`] decides, and tells it what happened: the socket, the host
//! window, storage, the rep's other tabs and the panel.
//!
//! Nothing is decided here. Effects are carried out in the order the model returns them (which is
//! what makes "a reload never pops twice" hold: the posted set is stored before the payloads it
//! records are posted), and no borrow of the model is held while one is carried out, because the
//! socket and the tabs may answer at once with a message of their own.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use yew::Callback;

use wasm_bindgen::JsCast;
use web_sys::MessageEvent;

use crate::connection::{Connection, ConnectionEvent, ws_url};
use crate::history::{History, history_key};
use crate::host::{self, Frame};
use crate::model::{Effect, Model, Msg, notes_key, posted_key};
use crate::notes::Drafts;
use crate::posted::PostedSet;
use crate::tabs::{TabEvent, Tabs};
use crate::ui::{UiAction, ViewModel};
use crate::{storage, token};

/// Where the rep's own V2 sign-in starts (a form post, so the token stays out of URLs).
const V2_CONNECT_PATH: &str = "/v1/agent/v2-connect";

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
    model: Model,
    render: Callback<Rc<ViewModel>>,
    /// The rep the token names, once the model has said so: the key of what the tabs share.
    rep: String,
    connection: Option<Connection>,
    tabs: Option<Tabs>,
    /// Listens for V2's click-to-dial messages while the widget runs.
    host_requests: Option<gloo::events::EventListener>,
    /// Listens for other tabs' changes to shared storage (notes drafts).
    storage_changed: Option<gloo::events::EventListener>,
}

impl Controller {
    /// Signs in with the page's token and connects; `render` receives every new view.
    pub fn start(render: Callback<Rc<ViewModel>>) -> Controller {
        let shared = Rc::new(RefCell::new(Shared {
            model: Model::new(Frame::read()),
            render,
            rep: String::new(),
            connection: None,
            tabs: None,
            host_requests: None,
            storage_changed: None,
        }));
        let weak = Rc::downgrade(&shared);
        let listener =
            gloo::events::EventListener::new(&gloo::utils::window(), "message", move |event| {
                let (Some(shared), Some(event)) = (weak.upgrade(), event.dyn_ref::<MessageEvent>())
                else {
                    return;
                };
                dispatch(&shared, host_posted(event));
            });
        shared.borrow_mut().host_requests = Some(listener);
        // Another tab of the rep saved notes: show them here too.
        let weak = Rc::downgrade(&shared);
        let storage_changed =
            gloo::events::EventListener::new(&gloo::utils::window(), "storage", move |_| {
                if let Some(shared) = weak.upgrade() {
                    let drafts = load_notes(&shared.borrow().rep);
                    dispatch(&shared, Msg::Drafts(drafts));
                }
            });
        shared.borrow_mut().storage_changed = Some(storage_changed);
        dispatch(
            &shared,
            Msg::Start {
                token: token::acquire(),
            },
        );
        Controller { shared }
    }

    /// Carries out what the rep clicked.
    pub fn act(&self, action: UiAction) {
        dispatch(&self.shared, Msg::Ui(action));
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

fn dispatch(shared: &Rc<RefCell<Shared>>, msg: Msg) {
    let effects = shared.borrow_mut().model.update(msg);
    for effect in effects {
        carry_out(shared, effect);
    }
}

fn carry_out(shared: &Rc<RefCell<Shared>>, effect: Effect) {
    match effect {
        Effect::JoinTabs { rep } => join_tabs(shared, rep),
        Effect::Send(message) => {
            let connection = shared.borrow().connection.clone();
            let delivered = connection.is_some_and(|connection| connection.send(&message));
            dispatch(shared, Msg::Sent { message, delivered });
        }
        Effect::PostHost { origin, message } => {
            if let Err(problem) = host::post(&origin, &message) {
                let note = format!(
                    "could not post {} for call {} to the host: {problem}",
                    message.payload.action, message.payload.external_reference_id
                );
                gloo::console::warn!(note);
            }
        }
        Effect::Persist { key, json, failure } => {
            if !storage::shared_set(&key, &json) {
                gloo::console::warn!(failure);
            }
        }
        Effect::Broadcast(message) => {
            if let Some(tabs) = shared.borrow().tabs.as_ref() {
                tabs.send(&message);
            }
        }
        Effect::Connect { token } => {
            let last_seq = {
                let weak = Rc::downgrade(shared);
                move || weak.upgrade().and_then(|s| s.borrow().model.last_seq())
            };
            let weak = Rc::downgrade(shared);
            let connection = Connection::start(socket_url(), token, last_seq, move |event| {
                if let Some(shared) = weak.upgrade() {
                    dispatch(&shared, from_connection(event));
                }
            });
            shared.borrow_mut().connection = Some(connection);
        }
        Effect::Disconnect => {
            let connection = shared.borrow_mut().connection.take();
            if let Some(connection) = connection {
                connection.stop();
            }
        }
        Effect::RetryNow => {
            let connection = shared.borrow().connection.clone();
            if let Some(connection) = connection {
                connection.retry_now();
            }
        }
        Effect::Navigate(path) => {
            if gloo::utils::window().location().set_href(path).is_err() {
                gloo::console::warn!("could not open the sign-in page");
            }
        }
        Effect::OpenV2Connect { token } => {
            let opened = open_v2_connect(&token).is_ok();
            dispatch(shared, Msg::V2Connect { opened });
        }
        Effect::ForgetToken => token::forget(),
        Effect::Render(view) => {
            let render = shared.borrow().render.clone();
            render.emit(view);
        }
        Effect::Warn(note) => gloo::console::warn!(note),
        Effect::Info(note) => gloo::console::info!(note),
    }
}

/// Joins the rep's tabs. The group may name this tab leader before `join` returns, which the
/// handler passes on like any later change.
fn join_tabs(shared: &Rc<RefCell<Shared>>, rep: String) {
    shared.borrow_mut().rep = rep.clone();
    let weak = Rc::downgrade(shared);
    let group = rep.clone();
    let tabs = Tabs::join(&rep, move |event| {
        let Some(shared) = weak.upgrade() else { return };
        let msg = match event {
            TabEvent::Leader(true) => Msg::Lead {
                posted: load_posted(&group),
                history: load_history(&group),
            },
            TabEvent::Leader(false) => Msg::Follow,
            TabEvent::Message(message) => Msg::Tab(message),
        };
        dispatch(&shared, msg);
    });
    shared.borrow_mut().tabs = Some(tabs);
    dispatch(
        shared,
        Msg::Joined {
            drafts: load_notes(&rep),
        },
    );
}

fn from_connection(event: ConnectionEvent) -> Msg {
    match event {
        ConnectionEvent::Status(status) => Msg::Status(status),
        ConnectionEvent::Message(message) => Msg::Server(message),
    }
}

/// A message posted into the frame, with whether it came from the window hosting it.
fn host_posted(event: &MessageEvent) -> Msg {
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
    Msg::HostPosted {
        origin: event.origin(),
        from_parent,
        data,
    }
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

fn load_notes(rep: &str) -> Drafts {
    storage::shared_get(&notes_key(rep))
        .map(|json| Drafts::from_json(&json))
        .unwrap_or_default()
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

/// The rep's recent calls as stored; an unreadable list is set aside (and said so) rather than
/// keeping the widget from starting, and the next finished call overwrites it.
fn load_history(rep: &str) -> History {
    let Some(json) = storage::shared_get(&history_key(rep)) else {
        return History::default();
    };
    // The reason is left out: serde's words may quote a stored number.
    History::from_json(&json).unwrap_or_else(|_| {
        gloo::console::warn!("ignored an unreadable stored call history");
        History::default()
    })
}
