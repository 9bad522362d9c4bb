//! Which host windows the widget may talk to.
//!
//! A CTI payload makes V2 open an interaction and pop a customer record, so it must only reach a
//! V2 page the tenant trusts. The relay sends the allowed origin patterns in `welcome`
//! (`https://*.crm.cloud.sap`, `http://127.0.0.1:8090`); this module decides whether the parent
//! window's origin is one of them.
//!
//! Pattern rules, in the spirit of CSP host sources: the scheme must be equal; `*.` matches one or
//! more subdomain labels (never the bare domain); any other host must be equal; a port in the
//! pattern must be equal, and a pattern without a port only admits the scheme's default port,
//! so `https://*.crm.cloud.sap` does not admit some service on `:8443` under the same name.
//! Comparison ignores ASCII case, as hosts and schemes do.

/// A parsed `scheme://host[:port]`, lower-cased, with the scheme's default port folded to `None`
/// so `https://a` and `https://a:443` compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn serialize(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Splits `scheme://authority` and returns the scheme and the authority, ignoring any path, query
/// or fragment after it.
fn split_url(url: &str) -> Option<(String, &str)> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let valid_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme.to_ascii_lowercase(), &rest[..end]))
}

/// Parses `host[:port]`, IPv6 literals in brackets included. `allow_wildcard` admits a leading
/// `*.` label, which only patterns may have.
fn parse_authority(scheme: String, authority: &str, allow_wildcard: bool) -> Option<Origin> {
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{inside}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    let host = host.to_ascii_lowercase();
    let labels_ok = |name: &str| {
        !name.is_empty()
            && name
                .split('.')
                .all(|label| !label.is_empty() && !label.contains('*'))
    };
    let host_ok = if host.starts_with('[') {
        host.len() > 2
    } else if let Some(suffix) = host.strip_prefix("*.") {
        allow_wildcard && labels_ok(suffix)
    } else {
        labels_ok(&host)
    };
    if !host_ok {
        return None;
    }
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    let port = port.filter(|p| Some(*p) != default_port(&scheme));
    Some(Origin { scheme, host, port })
}

fn parse_origin(origin: &str) -> Option<Origin> {
    let (scheme, authority) = split_url(origin)?;
    parse_authority(scheme, authority, false)
}

fn parse_pattern(pattern: &str) -> Option<Origin> {
    // A pattern names an origin; tolerate a trailing slash, but a path means a misconfiguration.
    let pattern = pattern.trim();
    let pattern = pattern.strip_suffix('/').unwrap_or(pattern);
    let (scheme, authority) = split_url(pattern)?;
    if authority.len() != pattern.len() - scheme.len() - 3 {
        return None;
    }
    parse_authority(scheme, authority, true)
}

/// The origin (`scheme://host[:port]`) of a full URL such as `document.referrer`; `None` for an
/// empty or opaque referrer.
pub fn origin_of_url(url: &str) -> Option<String> {
    parse_origin(url).map(|origin| origin.serialize())
}

/// Whether `origin` is admitted by `pattern` (see the module docs for the rules). A pattern that
/// does not parse admits nothing.
pub fn origin_matches(pattern: &str, origin: &str) -> bool {
    let (Some(pattern), Some(origin)) = (parse_pattern(pattern), parse_origin(origin)) else {
        return false;
    };
    if pattern.scheme != origin.scheme || pattern.port != origin.port {
        return false;
    }
    match pattern.host.strip_prefix("*.") {
        Some(suffix) => origin
            .host
            .strip_suffix(suffix)
            .and_then(|prefix| prefix.strip_suffix('.'))
            .is_some_and(|labels| !labels.is_empty() && !origin.host.starts_with('[')),
        None => pattern.host == origin.host,
    }
}

/// Whether any of the patterns admits `origin`.
pub fn origin_allowed(patterns: &[String], origin: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| origin_matches(pattern, origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const V2: &str = "https://*.crm.cloud.sap";

    #[wasm_bindgen_test]
    fn wildcard_matches_one_or_more_labels() {
        assert!(origin_matches(V2, "https://my123.crm.cloud.sap"));
        assert!(origin_matches(V2, "https://a.b.crm.cloud.sap"));
        assert!(origin_matches(V2, "HTTPS://My123.CRM.cloud.sap"));
    }

    #[wasm_bindgen_test]
    fn wildcard_does_not_match_the_bare_domain_or_lookalikes() {
        assert!(!origin_matches(V2, "https://crm.cloud.sap"));
        assert!(!origin_matches(V2, "https://evilcrm.cloud.sap"));
        assert!(!origin_matches(V2, "https://my.crm.cloud.sap.evil.com"));
        assert!(!origin_matches(V2, "https://.crm.cloud.sap"));
    }

    #[wasm_bindgen_test]
    fn scheme_must_match() {
        assert!(!origin_matches(V2, "http://my123.crm.cloud.sap"));
        assert!(!origin_matches(
            "http://127.0.0.1:8090",
            "https://127.0.0.1:8090"
        ));
    }

    #[wasm_bindgen_test]
    fn exact_host_and_port() {
        let sim = "http://127.0.0.1:8090";
        assert!(origin_matches(sim, "http://127.0.0.1:8090"));
        assert!(!origin_matches(sim, "http://127.0.0.1:8091"));
        assert!(!origin_matches(sim, "http://127.0.0.1"));
        assert!(!origin_matches(sim, "http://127.0.0.2:8090"));
        assert!(!origin_matches("https://a.example", "https://b.a.example"));
    }

    #[wasm_bindgen_test]
    fn missing_port_means_the_default_port() {
        assert!(origin_matches(V2, "https://my.crm.cloud.sap:443"));
        assert!(!origin_matches(V2, "https://my.crm.cloud.sap:8443"));
        assert!(origin_matches("https://x.example:443", "https://x.example"));
        assert!(origin_matches(
            "https://*.crm.cloud.sap:8443",
            "https://my.crm.cloud.sap:8443"
        ));
    }

    #[wasm_bindgen_test]
    fn malformed_patterns_and_origins_match_nothing() {
        for pattern in [
            "*",
            "https://*",
            "https://*.",
            "https://a.*.sap",
            "https://*crm.cloud.sap",
            "*.crm.cloud.sap",
            "https://crm.cloud.sap/path",
            "https://x:99999",
            "https://x:",
            "",
        ] {
            assert!(
                !origin_matches(pattern, "https://my.crm.cloud.sap"),
                "{pattern}"
            );
            assert!(!origin_matches(pattern, "https://x"), "{pattern}");
        }
        for origin in [
            "null",
            "",
            "https://",
            "https://user@my.crm.cloud.sap",
            "my.crm.cloud.sap",
        ] {
            assert!(!origin_matches(V2, origin), "{origin}");
        }
    }

    #[wasm_bindgen_test]
    fn trailing_slash_in_a_pattern_is_tolerated() {
        assert!(origin_matches(
            "https://*.crm.cloud.sap/",
            "https://my.crm.cloud.sap"
        ));
    }

    #[wasm_bindgen_test]
    fn ipv6_literals() {
        assert!(origin_matches("http://[::1]:8090", "http://[::1]:8090"));
        assert!(!origin_matches("http://[::1]:8090", "http://[::2]:8090"));
    }

    #[wasm_bindgen_test]
    fn origin_of_a_referrer() {
        assert_eq!(
            origin_of_url("https://My.crm.cloud.sap/ui/desk?x=1#frag").as_deref(),
            Some("https://my.crm.cloud.sap")
        );
        assert_eq!(
            origin_of_url("http://127.0.0.1:8090/sim/host").as_deref(),
            Some("http://127.0.0.1:8090")
        );
        assert_eq!(
            origin_of_url("https://a.example:443/").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(origin_of_url(""), None);
        assert_eq!(origin_of_url("about:blank"), None);
    }

    #[wasm_bindgen_test]
    fn any_pattern_of_a_list() {
        let patterns = vec![V2.to_owned(), "http://127.0.0.1:8090".to_owned()];
        assert!(origin_allowed(&patterns, "http://127.0.0.1:8090"));
        assert!(origin_allowed(&patterns, "https://t.crm.cloud.sap"));
        assert!(!origin_allowed(&patterns, "https://evil.example"));
        assert!(!origin_allowed(&[], "https://t.crm.cloud.sap"));
    }
}
