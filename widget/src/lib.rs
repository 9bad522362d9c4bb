//! The CTI widget: the part of the CTI the sales rep sees, inside SAP Sales Cloud V2.
//!
//! V2 hosts this app in an iframe (the CTI side panel, about 380 px wide). The relay serves it
//! from `/widget/`, on the same origin as the WebSocket it talks to. The widget signs in with the
//! agent token the host page puts in the URL fragment, keeps one WebSocket open to the relay, shows
//! the caller before the rep answers, sends call controls back, and tells the V2 host window about
//! each call through the V2 CTI postMessage channel, because in Agent Desktop it is V2 itself that
//! pops the matching record.
//!
//! Every decision is made by a pure module that the browser test run covers without a page to
//! drive: [`model`] (the one model of the widget: what happened in, what to do out), built on
//! [`state`] (the calls and which host payloads they imply), [`posted`], [`origin`], [`dial`],
//! [`connection::backoff`], [`connection::heartbeat`], [`tabs::election`], [`tabs::wire`], the
//! parsing half of [`token`] and [`ui::format`]. The modules that touch the browser only carry
//! those decisions out, so they stay thin: [`connection`] (the socket and its timers), [`tabs`]
//! (the rep's other tabs), [`host`] (posting to the parent window), [`storage`], [`controller`]
//! (which carries out the model's effects) and the [`ui`] components, rooted at [`app::App`].

pub mod app;
pub mod connection;
pub mod controller;
pub mod dial;
pub mod history;
pub mod host;
pub mod i18n;
pub mod intl;
pub mod model;
pub mod notes;
pub mod origin;
pub mod posted;
pub mod state;
pub mod storage;
pub mod tabs;
pub mod time;
pub mod token;
pub mod ui;

#[cfg(test)]
mod fixtures;

#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The element the page reserves for the widget; the whole body when it is missing, so the
/// widget still shows up if someone serves it with a bare page.
const ROOT_ID: &str = "cti-widget";

/// Mounts the widget. Kept out of a `#[wasm_bindgen(start)]` so that loading the library in a
/// test page does not start a second widget next to the one a test mounts.
pub fn run() {
    let root = gloo::utils::document().get_element_by_id(ROOT_ID);
    match root {
        Some(root) => {
            yew::Renderer::<app::App>::with_root(root).render();
        }
        None => {
            yew::Renderer::<app::App>::new().render();
        }
    }
}
