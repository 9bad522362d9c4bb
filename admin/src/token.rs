//! The admin's sign-in token: how it reaches the page and how it survives a reload.
//!
//! The sign-in returns to `/admin/#token=<jwt>` (the relay's own sign-in) or
//! `/admin/#access_token=<jwt>` (an identity provider's implicit answer). A fragment never leaves
//! the browser: no server log, no `Referer` header. The page moves the token into
//! `sessionStorage` and takes it out of the address bar, so it is neither in the history nor in a
//! copied link, while a reload of the same tab still finds it; another tab or a closed browser
//! signs in again.

/// Where the token is kept between reloads of one tab; not the widget's key, so an admin who is
/// also a rep keeps both sign-ins apart.
pub const STORAGE_KEY: &str = "cti.admin.token";

use cti_protocol::sign_in::{fragment_without_token, token_from_fragment};

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The token for this page load: a fresh one from the fragment wins over the stored one, since
/// the sign-in sets a new fragment exactly when the admin signed in again.
pub fn acquire() -> Option<String> {
    let window = web_sys::window()?;
    let location = window.location();
    let fragment = location.hash().unwrap_or_default();
    if let Some(token) = token_from_fragment(&fragment) {
        let stored =
            session_storage().is_some_and(|storage| storage.set_item(STORAGE_KEY, &token).is_ok());
        // Without storage the fragment is the only thing that lets a reload stay signed in, so
        // the address bar is scrubbed only once the token is safely kept.
        if stored {
            let rest = fragment_without_token(&fragment);
            let path = location.pathname().unwrap_or_default();
            let search = location.search().unwrap_or_default();
            let url = format!("{path}{search}{rest}");
            if let Ok(history) = window.history()
                && history
                    .replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url))
                    .is_err()
            {
                gloo::console::warn!("could not remove the sign-in token from the address bar");
            }
        }
        return Some(token);
    }
    session_storage()?
        .get_item(STORAGE_KEY)
        .ok()
        .flatten()
        .filter(|token| !token.is_empty())
}

/// Drops the stored token once the relay refused it (expired, or not an admin's), so a reload
/// offers the sign-in instead of failing the same way again.
pub fn forget() {
    if let Some(storage) = session_storage() {
        // Nothing to do about a failure: the token was unreadable to begin with.
        let _ = storage.remove_item(STORAGE_KEY);
    }
}
