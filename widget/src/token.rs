//! The agent's sign-in token: how it reaches the widget and how it survives a reload.
//!
//! The host page puts the token in the iframe's URL fragment (`#token=<jwt>`) because a fragment
//! never leaves the browser: no server log, no `Referer` header. The widget moves it into
//! `sessionStorage` and takes it out of the address bar, so it is neither left in the history nor
//! in a copied link, while a reload of the same tab still finds it.

use crate::storage;

/// Where the token is kept between reloads of one tab.
pub const STORAGE_KEY: &str = "cti.token";

/// The host page's parameter.
const PARAM: &str = "token";

/// An identity provider's answer to a browser sign-in (OAuth 2.0's implicit grant, RFC 6749
/// 4.2.2, as XSUAA's `/oauth/authorize?response_type=token` gives it) carries the token as
/// `access_token`, beside these fields of the same answer. `jti` is XSUAA's addition (seen in its
/// answers, not in the RFC).
const OAUTH_PARAM: &str = "access_token";
const OAUTH_COMPANIONS: [&str; 5] = ["token_type", "expires_in", "scope", "state", "jti"];

/// The token carried by a URL fragment such as `#token=eyJ...` (a host page) or
/// `#access_token=eyJ...` (an identity provider's sign-in); other `&`-separated parameters may sit
/// next to it. Percent-escapes are decoded because some host pages encode the whole value.
pub fn token_from_fragment(fragment: &str) -> Option<String> {
    param(fragment, PARAM).or_else(|| param(fragment, OAUTH_PARAM))
}

fn param(fragment: &str, wanted: &str) -> Option<String> {
    let params = fragment.strip_prefix('#').unwrap_or(fragment);
    params
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == wanted)
        .and_then(|(_, value)| percent_decode(value))
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The fragment left once the token is taken out (with the rest of a sign-in's answer): empty when
/// that was all there was, so the address bar ends without a dangling `#`.
pub fn fragment_without_token(fragment: &str) -> String {
    let params = fragment.strip_prefix('#').unwrap_or(fragment);
    let name = |pair: &str| {
        pair.split_once('=')
            .map_or(pair, |(name, _)| name)
            .to_owned()
    };
    let signed_in = params.split('&').any(|pair| name(pair) == OAUTH_PARAM);
    let rest: Vec<&str> = params
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = name(pair);
            name != PARAM
                && name != OAUTH_PARAM
                && !(signed_in && OAUTH_COMPANIONS.contains(&name.as_str()))
        })
        .collect();
    if rest.is_empty() {
        String::new()
    } else {
        format!("#{}", rest.join("&"))
    }
}

/// Decodes `%XX` escapes. A `%` that does not start a valid escape is kept as it is: a token with
/// a stray `%` is the relay's to reject, not a reason to sign the rep out here.
pub(crate) fn percent_decode(value: &str) -> Option<String> {
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

    const JWT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln-_";

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

    #[wasm_bindgen_test]
    fn reads_the_token_from_the_fragment() {
        assert_eq!(
            token_from_fragment(&format!("#token={JWT}")).as_deref(),
            Some(JWT)
        );
        assert_eq!(
            token_from_fragment(&format!("token={JWT}")).as_deref(),
            Some(JWT)
        );
    }

    #[wasm_bindgen_test]
    fn reads_an_identity_providers_access_token_and_drops_its_answer() {
        let answer = format!("#access_token={JWT}&token_type=bearer&expires_in=43199&jti=abc");
        assert_eq!(token_from_fragment(&answer).as_deref(), Some(JWT));
        assert_eq!(fragment_without_token(&answer), "");
        assert_eq!(
            fragment_without_token(&format!("#lang=fr&access_token={JWT}&scope=openid")),
            "#lang=fr"
        );
        // The host page's own token wins, and without a sign-in's answer `scope` is not touched.
        assert_eq!(
            token_from_fragment(&format!("#access_token=other&token={JWT}")).as_deref(),
            Some(JWT)
        );
        assert_eq!(
            fragment_without_token(&format!("#token={JWT}&scope=x")),
            "#scope=x"
        );
    }

    #[wasm_bindgen_test]
    fn finds_the_token_among_other_parameters() {
        let fragment = format!("#lang=de&token={JWT}&theme=dark");
        assert_eq!(token_from_fragment(&fragment).as_deref(), Some(JWT));
    }

    #[wasm_bindgen_test]
    fn no_token_when_absent_or_empty() {
        assert_eq!(token_from_fragment(""), None);
        assert_eq!(token_from_fragment("#"), None);
        assert_eq!(token_from_fragment("#token="), None);
        assert_eq!(token_from_fragment("#token"), None);
        assert_eq!(token_from_fragment("#tokens=abc"), None);
        assert_eq!(token_from_fragment("#mytoken=abc"), None);
    }

    #[wasm_bindgen_test]
    fn decodes_percent_escapes_and_keeps_broken_ones() {
        assert_eq!(
            token_from_fragment("#token=a%2Eb%2ec").as_deref(),
            Some("a.b.c")
        );
        assert_eq!(
            token_from_fragment("#token=a%zzb%").as_deref(),
            Some("a%zzb%")
        );
    }

    #[wasm_bindgen_test]
    fn removing_the_token_keeps_the_rest() {
        assert_eq!(fragment_without_token(&format!("#token={JWT}")), "");
        assert_eq!(
            fragment_without_token(&format!("#lang=de&token={JWT}&theme=dark")),
            "#lang=de&theme=dark"
        );
        assert_eq!(fragment_without_token("#section"), "#section");
        assert_eq!(fragment_without_token(""), "");
    }
}
