//! The tenant admin page the relay serves at `/admin/`: a customer's administrator (XSUAA role
//! `Admin`) configures their tenant, tests the connections to V2 and to the telephony provider,
//! and sees what the relay knows of the tenant (number index, activities waiting for V2 or
//! failed, connected reps, the provider's connection).
//!
//! The decisions live in modules a browser test run covers without a page: [`token`] (reading
//! the sign-in from the address), [`form`] (the settings' fields and how the form's text becomes
//! the relay's settings object) and the parsing half of [`api`]. [`app`] draws the page and
//! carries out requests.

pub mod api;
pub mod app;
pub mod form;
pub mod token;

#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The element the page reserves for the app.
const ROOT_ID: &str = "cti-admin";

/// Mounts the page; on a bare page without the element, on the body.
pub fn run() {
    match gloo::utils::document().get_element_by_id(ROOT_ID) {
        Some(root) => {
            yew::Renderer::<app::App>::with_root(root).render();
        }
        None => {
            yew::Renderer::<app::App>::new().render();
        }
    }
}
