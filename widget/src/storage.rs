//! `sessionStorage`: the widget's memory across reloads of one tab.
//!
//! Session storage rather than local storage because it belongs to one tab and dies with it: a
//! token or a "this call was already popped" mark must not leak into another tab or outlive the
//! browser session. A browser that refuses storage to third-party frames still gets a working
//! widget; it only forgets on reload.

use web_sys::Storage;

fn session_storage() -> Option<Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The stored value, or `None` when it is missing or storage is unavailable.
pub fn get(key: &str) -> Option<String> {
    session_storage()?.get_item(key).ok().flatten()
}

/// Stores a value; false when the browser refused (no storage, quota, privacy mode).
pub fn set(key: &str, value: &str) -> bool {
    session_storage().is_some_and(|storage| storage.set_item(key, value).is_ok())
}

pub fn remove(key: &str) {
    if let Some(storage) = session_storage() {
        // Nothing to do about a failure: the value was unreadable to begin with.
        let _ = storage.remove_item(key);
    }
}
