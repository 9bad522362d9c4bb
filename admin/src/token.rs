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

/// The fragment parameters that carry the token, in the order they are looked for.
const PARAMS: [&str; 2] = ["token", "access_token"];

/// The token in a URL fragment such as `#token=eyJ...` or `#access_token=eyJ...&expires_in=..`;
/// percent-escapes are decoded because some identity providers encode the whole value.
pub fn token_from_fragment(fragment: &str) -> Option<String> {
    let params = fragment.strip_prefix('#').unwrap_or(fragment);
    PARAMS.iter().find_map(|wanted| {
        params
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| name == wanted)
            .and_then(|(_, value)| percent_decode(value))
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    })
}

/// The fragment once the sign-in's parameters are taken out. An identity provider's answer
/// carries `token_type`, `expires_in` and `scope` beside the token: they go too, they mean
/// nothing without it. Empty when nothing else was there, so the address ends without a `#`.
pub fn fragment_without_token(fragment: &str) -> String {
    const SIGN_IN: [&str; 5] = ["token", "access_token", "token_type", "expires_in", "scope"];
    let params = fragment.strip_prefix('#').unwrap_or(fragment);
    let rest: Vec<&str> = params
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !SIGN_IN.contains(&pair.split_once('=').map_or(*pair, |(name, _)| name)))
        .collect();
    if rest.is_empty() {
        String::new()
    } else {
        format!("#{}", rest.join("&"))
    }
}

/// Decodes `%XX` escapes; a `%` that starts no valid escape is kept as it is (the relay refuses
/// a malformed token with a clear answer, which the page then shows).
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn reads_either_parameter_from_the_fragment() {
        assert_eq!(token_from_fragment("#token=abc").as_deref(), Some("abc"));
        assert_eq!(
            token_from_fragment("#token_type=bearer&access_token=a%2Eb&expires_in=3600").as_deref(),
            Some("a.b")
        );
        // The relay's own parameter wins when both are there.
        assert_eq!(
            token_from_fragment("#access_token=idp&token=relay").as_deref(),
            Some("relay")
        );
        assert_eq!(token_from_fragment("#token="), None);
        assert_eq!(token_from_fragment("#tokens=abc"), None);
        assert_eq!(token_from_fragment(""), None);
    }

    #[wasm_bindgen_test]
    fn the_sign_in_leaves_the_fragment() {
        assert_eq!(fragment_without_token("#token=abc"), "");
        assert_eq!(
            fragment_without_token("#access_token=a&token_type=bearer&expires_in=1&tab=status"),
            "#tab=status"
        );
        assert_eq!(fragment_without_token("#x=1&token=abc&y"), "#x=1&y");
    }
}
