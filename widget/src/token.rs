//! The agent's sign-in token: how it reaches the widget and how it survives a reload.
//!
//! The host page puts the token in the iframe's URL fragment (`#token=<jwt>`) because a fragment
//! never leaves the browser: no server log, no `Referer` header. The widget moves it into
//! `sessionStorage` and takes it out of the address bar, so it is neither left in the history nor
//! in a copied link, while a reload of the same tab still finds it.

use crate::storage;
use cti_protocol::sign_in::{fragment_without_token, token_from_fragment};

/// Where the token is kept between reloads of one tab.
pub const STORAGE_KEY: &str = "cti.token";

/// The token for this page load: a fresh one from the fragment wins over the stored one, because
/// the host page sets a new fragment exactly when it signs the rep in again.
pub fn acquire() -> Option<String> {
    let window = web_sys::window()?;
    let location = window.location();
    let fragment = location.hash().unwrap_or_default();
    if let Some(token) = token_from_fragment(&fragment) {
        // Only scrub the address bar once the token is safely stored: without storage, the
        // fragment is the only thing that lets a reload sign the rep back in.
        if storage::set(STORAGE_KEY, &token) {
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
    storage::get(STORAGE_KEY).filter(|token| !token.is_empty())
}

/// The rep a token names (`user_name`, else `email`, else `sub`, as the relay reads them), without
/// checking its signature: only to tell this rep's tabs from another rep's in the same browser.
/// The relay still checks every token it is given.
pub fn subject(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    ["user_name", "email", "sub"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(|v| v.as_str()))
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
}

/// Drops the stored token once the relay has refused it, so a reload shows the rep signed out
/// instead of failing the same way again.
pub fn forget() {
    storage::remove(STORAGE_KEY);
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn the_subject_is_read_from_the_claims() {
        use base64::Engine;
        let encode =
            |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.as_bytes());
        let token = format!(
            "h.{}.s",
            encode(r#"{"sub":"x1","email":"Alice@Example.com"}"#)
        );
        assert_eq!(subject(&token).as_deref(), Some("alice@example.com"));
        let token = format!("h.{}.s", encode(r#"{"user_name":"bob","sub":"x"}"#));
        assert_eq!(subject(&token).as_deref(), Some("bob"));
        assert_eq!(subject("not-a-jwt"), None);
        assert_eq!(subject(&format!("h.{}.s", encode("[]"))), None);
    }
}
