//! The widget's memory across reloads: `sessionStorage` for what belongs to one tab (its sign-in
//! token must not leak into another tab or outlive the session), `localStorage` for what the
//! rep's tabs share (which calls were already popped, so a new leader tab never pops them again).
//! A browser that refuses storage to third-party frames still gets a working widget; it only
//! forgets on reload.

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

fn local_storage() -> Option<Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// A value all of this origin's tabs share, or `None`.
pub fn shared_get(key: &str) -> Option<String> {
    local_storage()?.get_item(key).ok().flatten()
}

/// Stores a value all tabs share; false when the browser refused.
pub fn shared_set(key: &str, value: &str) -> bool {
    local_storage().is_some_and(|storage| storage.set_item(key, value).is_ok())
}
