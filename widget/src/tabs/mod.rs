//! One leader among a rep's tabs.
//!
//! A rep often has V2 open in several tabs, each with its own widget. Only one of them may hold
//! the WebSocket and tell its host page about calls, or the rep gets two pops (or pops in a tab
//! they are not looking at). The leader is chosen with the Web Locks API where the browser has
//! it: the tab holding the lock `cti-leader:<rep>` leads, and the browser hands the lock to the
//! next waiting tab the moment the leader's tab closes, reloads or crashes. Without Web Locks,
//! [`election`] runs over the same BroadcastChannel.
//!
//! The channel `cti-tabs:<rep>` also carries the leader's view to the followers (so every tab
//! shows the same calls and status) and the followers' clicks to the leader (so their buttons
//! work).

pub mod election;
pub mod wire;

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use gloo::events::EventListener;
use gloo::timers::callback::Interval;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BroadcastChannel, MessageEvent};

use crate::time::now_ms;
use election::{Effect, Election};
pub use wire::{Mirror, TabMessage};

/// How often the fallback election ticks.
const TICK_MS: u32 = 100;

/// What the tab learns: its role changed, or a message arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum TabEvent {
    Leader(bool),
    Message(TabMessage),
}

type Handler = Rc<dyn Fn(TabEvent)>;

/// This tab's membership in the rep's group of tabs. Dropping it leaves the group.
pub struct Tabs {
    inner: Rc<RefCell<Inner>>,
}

impl fmt::Debug for Tabs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tabs").finish_non_exhaustive()
    }
}

struct Inner {
    channel: Option<BroadcastChannel>,
    _on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    handler: Handler,
    /// The fallback election, when there are no Web Locks.
    election: Option<Election>,
    ticker: Option<Interval>,
    /// Resolving this releases the Web Lock (the promise the lock callback returned).
    release: Option<js_sys::Function>,
    _lock_granted: Option<Closure<dyn FnMut(wasm_bindgen::JsValue) -> js_sys::Promise>>,
    _page_hide: Option<EventListener>,
    leader: bool,
}

/// A channel-safe name part: the rep's id with anything unusual replaced.
fn key(rep: &str) -> String {
    rep.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn has_web_locks() -> bool {
    let navigator = gloo::utils::window().navigator();
    js_sys::Reflect::get(&navigator, &"locks".into()).is_ok_and(|locks| locks.is_object())
}

impl Tabs {
    /// Joins the tabs of `rep`; `handler` hears about leadership and messages. A browser with
    /// neither Web Locks nor BroadcastChannel makes every tab a leader of its own (the old
    /// behaviour), which is all it can do.
    pub fn join(rep: &str, handler: impl Fn(TabEvent) + 'static) -> Tabs {
        let inner = Rc::new(RefCell::new(Inner {
            channel: None,
            _on_message: None,
            handler: Rc::new(handler),
            election: None,
            ticker: None,
            release: None,
            _lock_granted: None,
            _page_hide: None,
            leader: false,
        }));
        let channel = BroadcastChannel::new(&format!("cti-tabs:{}", key(rep))).ok();
        if let Some(channel) = &channel {
            let weak = Rc::downgrade(&inner);
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let Some(rc) = weak.upgrade() else { return };
                let Some(text) = event.data().as_string() else {
                    return;
                };
                if let Some(message) = wire::decode(&text) {
                    on_message(&rc, message);
                }
            });
            channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            let mut state = inner.borrow_mut();
            state._on_message = Some(on_message);
        }
        inner.borrow_mut().channel = channel.clone();

        if channel.is_none() {
            set_leader(&inner, true);
        } else if has_web_locks() {
            request_lock(&inner, &format!("cti-leader:{}", key(rep)));
        } else {
            start_election(&inner);
        }
        // A tab going away resigns, so another one takes over without waiting for a timeout.
        let weak = Rc::downgrade(&inner);
        let page_hide = EventListener::new(&gloo::utils::window(), "pagehide", move |_| {
            if let Some(rc) = weak.upgrade() {
                leave(&rc);
            }
        });
        inner.borrow_mut()._page_hide = Some(page_hide);
        Tabs { inner }
    }

    pub fn is_leader(&self) -> bool {
        self.inner.borrow().leader
    }

    /// Tells the other tabs.
    pub fn send(&self, message: &TabMessage) {
        send(&self.inner, message);
    }
}

impl Drop for Tabs {
    fn drop(&mut self) {
        leave(&self.inner);
    }
}

fn send(rc: &Rc<RefCell<Inner>>, message: &TabMessage) {
    let channel = rc.borrow().channel.clone();
    if let (Some(channel), Some(text)) = (channel, wire::encode(message)) {
        // Fails only on a closed channel, i.e. while leaving.
        let _ = channel.post_message(&text.into());
    }
}

fn emit(rc: &Rc<RefCell<Inner>>, event: TabEvent) {
    let handler = rc.borrow().handler.clone();
    handler(event);
}

fn set_leader(rc: &Rc<RefCell<Inner>>, leader: bool) {
    let changed = {
        let mut inner = rc.borrow_mut();
        let changed = inner.leader != leader;
        inner.leader = leader;
        changed
    };
    if changed {
        emit(rc, TabEvent::Leader(leader));
    }
}

fn on_message(rc: &Rc<RefCell<Inner>>, message: TabMessage) {
    match message {
        TabMessage::Election { signal } => {
            let effects = {
                let mut inner = rc.borrow_mut();
                match inner.election.as_mut() {
                    Some(election) => election.receive(signal, now_ms()),
                    None => return,
                }
            };
            carry_out(rc, effects);
        }
        other => emit(rc, TabEvent::Message(other)),
    }
}

fn carry_out(rc: &Rc<RefCell<Inner>>, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Send(signal) => send(rc, &TabMessage::Election { signal }),
            Effect::BecomeLeader => set_leader(rc, true),
            Effect::BecomeFollower => set_leader(rc, false),
        }
    }
}

fn start_election(rc: &Rc<RefCell<Inner>>) {
    let me = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
    let (election, effects) = Election::start(me, now_ms());
    rc.borrow_mut().election = Some(election);
    carry_out(rc, effects);
    let weak = Rc::downgrade(rc);
    let ticker = Interval::new(TICK_MS, move || {
        let Some(rc) = weak.upgrade() else { return };
        let effects = {
            let mut inner = rc.borrow_mut();
            match inner.election.as_mut() {
                Some(election) => election.tick(now_ms()),
                None => return,
            }
        };
        carry_out(&rc, effects);
    });
    rc.borrow_mut().ticker = Some(ticker);
}

/// Queues for the lock; the browser calls back when this tab holds it, which lasts until the
/// promise handed back resolves (on leaving) or the tab goes away.
fn request_lock(rc: &Rc<RefCell<Inner>>, name: &str) {
    let weak = Rc::downgrade(rc);
    let granted = Closure::<dyn FnMut(wasm_bindgen::JsValue) -> js_sys::Promise>::new(
        move |_lock: wasm_bindgen::JsValue| {
            let mut release = None;
            let held = js_sys::Promise::new(&mut |resolve, _reject| release = Some(resolve));
            if let Some(rc) = weak.upgrade() {
                rc.borrow_mut().release = release;
                set_leader(&rc, true);
            }
            held
        },
    );
    let locks = gloo::utils::window().navigator().locks();
    // The promise settles when the lock is released; nothing waits on it.
    let _ = locks.request(name, granted.as_ref().unchecked_ref());
    rc.borrow_mut()._lock_granted = Some(granted);
}

fn leave(rc: &Rc<RefCell<Inner>>) {
    let (effects, release) = {
        let mut inner = rc.borrow_mut();
        let effects = inner
            .election
            .as_mut()
            .map(Election::leave)
            .unwrap_or_default();
        inner.ticker = None;
        (effects, inner.release.take())
    };
    carry_out(rc, effects);
    if let Some(release) = release {
        let _ = release.call0(&wasm_bindgen::JsValue::UNDEFINED);
    }
    rc.borrow_mut().leader = false;
}
