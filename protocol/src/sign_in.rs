//! How a sign-in hands its token to the widget and the admin page: in the URL fragment, which
//! never leaves the browser (no server log, no `Referer` header).
//!
//! Two forms arrive: `#token=<jwt>` (a host page, or the relay's own sign-in) and
//! `#access_token=<jwt>&token_type=…` (an identity provider's answer to OAuth 2.0's implicit
//! grant, RFC 6749 4.2.2). Both pages read the token and take it, with the rest of a sign-in's
//! answer, out of the address bar; these functions are that reading, so the two pages cannot
//! drift apart.

/// A host page's (or the relay's) parameter; it wins when both are there.
const PARAM: &str = "token";

/// An identity provider's answer carries the token as `access_token`, beside these fields of the
/// same answer. `jti` is XSUAA's addition (seen in its answers, not in the RFC).
const OAUTH_PARAM: &str = "access_token";
const OAUTH_COMPANIONS: [&str; 5] = ["token_type", "expires_in", "scope", "state", "jti"];

/// The token carried by a URL fragment such as `#token=eyJ...` or `#access_token=eyJ...`; other
/// `&`-separated parameters may sit next to it. Percent-escapes are decoded because some host
/// pages and identity providers encode the whole value.
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

/// The fragment left once the token is taken out, with the rest of an identity provider's
/// answer (its companions mean nothing without the token; without such an answer a `scope` or
/// `state` parameter is the page's own and stays). Empty when that was all there was, so the
/// address bar ends without a dangling `#`.
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

/// Decodes `%XX` escapes. A `%` that does not start a valid escape is kept as it is: a token
/// with a stray `%` is the relay's to refuse (with a clear answer), not a reason to sign anyone
/// out here. None when the bytes decoded are not UTF-8.
pub fn percent_decode(value: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln-_";

    #[test]
    fn reads_the_token_from_the_fragment() {
        assert_eq!(
            token_from_fragment(&format!("#token={JWT}")).as_deref(),
            Some(JWT)
        );
        assert_eq!(
            token_from_fragment(&format!("token={JWT}")).as_deref(),
            Some(JWT)
        );
        let fragment = format!("#lang=de&token={JWT}&theme=dark");
        assert_eq!(token_from_fragment(&fragment).as_deref(), Some(JWT));
    }

    #[test]
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

    #[test]
    fn no_token_when_absent_or_empty() {
        for fragment in ["", "#", "#token=", "#token", "#tokens=abc", "#mytoken=abc"] {
            assert_eq!(token_from_fragment(fragment), None, "{fragment}");
        }
    }

    #[test]
    fn decodes_percent_escapes_and_keeps_broken_ones() {
        assert_eq!(
            token_from_fragment("#token=a%2Eb%2ec").as_deref(),
            Some("a.b.c")
        );
        assert_eq!(
            token_from_fragment("#token=a%zzb%").as_deref(),
            Some("a%zzb%")
        );
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn removing_the_token_keeps_the_rest() {
        assert_eq!(fragment_without_token(&format!("#token={JWT}")), "");
        assert_eq!(
            fragment_without_token(&format!("#lang=de&token={JWT}&theme=dark")),
            "#lang=de&theme=dark"
        );
        assert_eq!(fragment_without_token("#x=1&token=abc&y"), "#x=1&y");
        assert_eq!(fragment_without_token("#section"), "#section");
        assert_eq!(fragment_without_token(""), "");
    }
}
