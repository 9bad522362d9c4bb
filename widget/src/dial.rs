//! Click-to-dial requests from V2: `{"Direction":"OUT","PhoneNumber":"..."}` posted into the
//! widget's frame when the rep clicks a phone number in V2.
//!
//! Any page can post a message to any frame it holds a reference to, so a request counts only
//! when it comes from the window that hosts the widget and from an origin the relay allows (the
//! tenant's V2 hosts). Everything else is ignored and counted, never dialled: a script in some
//! other frame must not be able to make the rep's phone call premium numbers. The number itself
//! is normalized by the relay, with the tenant's region, like every other number.

use cti_protocol::host::HostRequest;

use crate::origin::origin_allowed;

/// Longest number accepted; V2's phone fields hold 40 characters, extensions included.
const MAX_LEN: usize = 64;

/// What to do with one posted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Dial(String),
    /// Not a click-to-dial request at all (other messages share the channel): no count.
    NotForUs,
    /// A request refused, with the reason for the console and the count.
    Ignored(&'static str),
}

/// Judges a message: its sender's origin, whether it came from the hosting window, and its data
/// as JSON text (`JSON.stringify` of the posted value; a string value arrives as a JSON string).
pub fn judge(origin: &str, from_parent: bool, allowed: &[String], data_json: &str) -> Verdict {
    let value: serde_json::Value = match serde_json::from_str(data_json) {
        Ok(serde_json::Value::String(inner)) => match serde_json::from_str(&inner) {
            Ok(value) => value,
            Err(_) => return Verdict::NotForUs,
        },
        Ok(value) => value,
        Err(_) => return Verdict::NotForUs,
    };
    let Ok(request) = serde_json::from_value::<HostRequest>(value) else {
        return Verdict::NotForUs;
    };
    if request.direction.is_none() && request.phone_number.is_none() {
        return Verdict::NotForUs;
    }
    if !from_parent {
        return Verdict::Ignored("not from the window hosting the widget");
    }
    if allowed.is_empty() {
        return Verdict::Ignored("not connected yet: the allowed host origins are unknown");
    }
    if !origin_allowed(allowed, origin) {
        return Verdict::Ignored("from an origin that is not an allowed V2 host");
    }
    if !request
        .direction
        .as_deref()
        .is_some_and(|d| d.trim().eq_ignore_ascii_case("OUT"))
    {
        return Verdict::Ignored("Direction is not OUT");
    }
    let number = request.phone_number.unwrap_or_default();
    let number = number.trim();
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let plausible = number
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " +-()./#*;=:".contains(c) || c.is_whitespace());
    if number.is_empty() || number.len() > MAX_LEN || digits < 3 || !plausible {
        return Verdict::Ignored("PhoneNumber is not a phone number");
    }
    Verdict::Dial(number.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn allowed() -> Vec<String> {
        vec!["https://*.crm.cloud.sap".into()]
    }

    const V2: &str = "https://my123.crm.cloud.sap";

    #[wasm_bindgen_test]
    fn a_request_from_the_v2_host_dials() {
        let data = r#"{"Direction":"OUT","PhoneNumber":"+41 44 123 45 67"}"#;
        assert_eq!(
            judge(V2, true, &allowed(), data),
            Verdict::Dial("+41 44 123 45 67".into())
        );
        // Some hosts post the JSON as a string.
        let as_string = serde_json::to_string(data).expect("json");
        assert_eq!(
            judge(V2, true, &allowed(), &as_string),
            Verdict::Dial("+41 44 123 45 67".into())
        );
    }

    #[wasm_bindgen_test]
    fn foreign_senders_are_ignored() {
        let data = r#"{"Direction":"OUT","PhoneNumber":"+41 44 123 45 67"}"#;
        assert!(matches!(
            judge("https://evil.example", true, &allowed(), data),
            Verdict::Ignored(_)
        ));
        assert!(matches!(
            judge("null", true, &allowed(), data),
            Verdict::Ignored(_)
        ));
        assert!(matches!(
            judge(V2, false, &allowed(), data),
            Verdict::Ignored(_)
        ));
        assert!(matches!(judge(V2, true, &[], data), Verdict::Ignored(_)));
    }

    #[wasm_bindgen_test]
    fn malformed_requests_are_ignored_and_other_messages_are_not_ours() {
        let ignored = |data: &str| matches!(judge(V2, true, &allowed(), data), Verdict::Ignored(_));
        assert!(ignored(
            r#"{"Direction":"IN","PhoneNumber":"+41441234567"}"#
        ));
        assert!(ignored(r#"{"Direction":"OUT","PhoneNumber":"<script>"}"#));
        assert!(ignored(r#"{"Direction":"OUT","PhoneNumber":"12"}"#));
        assert!(ignored(r#"{"Direction":"OUT"}"#));
        assert_eq!(
            judge(V2, true, &allowed(), r#"{"payload":{}}"#),
            Verdict::NotForUs
        );
        assert_eq!(judge(V2, true, &allowed(), "not json"), Verdict::NotForUs);
        assert_eq!(judge(V2, true, &allowed(), "42"), Verdict::NotForUs);
    }

    /// A small deterministic generator (xorshift): the property run below must give the same
    /// inputs on every run, and the widget has no random crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// The host's postMessage data is untrusted: mutated requests (bytes changed, inserted,
    /// removed; JSON syntax and odd characters spliced in; the whole posted as a JSON string)
    /// from any sender never panic, and only a request from the hosting window at an allowed
    /// origin, saying OUT, with a short plausible number, dials.
    #[wasm_bindgen_test]
    fn posted_messages_survive_mutation() {
        const SAMPLES: &[&str] = &[
            r#"{"Direction":"OUT","PhoneNumber":"+41 44 123 45 67"}"#,
            r#"{"Direction":"out","PhoneNumber":"044 123 45 67;ext=12","Extra":[1,{"a":null}]}"#,
            r#"{"payload":{"Direction":"OUT"},"type":"cti"}"#,
        ];
        const TOKENS: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            "null",
            "1e999",
            "\\u0000",
            "\\ud800",
            "OUT",
            "PhoneNumber",
            "Direction",
            "+",
            "(",
            ")",
            "#",
            "\u{202e}",
            "é",
            "📞",
            "<script>",
            " ",
        ];
        const ORIGINS: &[&str] = &[
            V2,
            "https://evil.example",
            "null",
            "",
            "https://my123.crm.cloud.sap.evil.example",
            "https://my123.crm.cloud.sap:443",
            "http://my123.crm.cloud.sap",
            "https://MY123.CRM.CLOUD.SAP",
        ];
        let mut rng = Rng(0x5eed_2026);
        let mut dialled = 0;
        for _ in 0..20_000 {
            let mut data: Vec<char> = SAMPLES[rng.below(SAMPLES.len())].chars().collect();
            for _ in 0..=rng.below(4) {
                let at = rng.below(data.len() + 1);
                match rng.below(4) {
                    0 if !data.is_empty() => {
                        let to = (at + 1 + rng.below(8)).min(data.len());
                        data.drain(at.min(to)..to);
                    }
                    1 => data
                        .splice(at..at, TOKENS[rng.below(TOKENS.len())].chars())
                        .for_each(drop),
                    2 => data.insert(at, char::from_u32(rng.below(0x3000) as u32).unwrap_or('?')),
                    _ if at < data.len() => data[at] = char::from(b'0' + rng.below(10) as u8),
                    _ => {}
                }
            }
            let mut data: String = data.into_iter().collect();
            if rng.below(4) == 0 {
                data = serde_json::to_string(&data).expect("a string");
            }
            let origin = ORIGINS[rng.below(ORIGINS.len())];
            let from_parent = rng.below(4) != 0;
            let allowed = if rng.below(8) == 0 {
                Vec::new()
            } else {
                allowed()
            };
            match judge(origin, from_parent, &allowed, &data) {
                Verdict::Dial(number) => {
                    dialled += 1;
                    assert!(from_parent, "{data:?}");
                    assert!(origin_allowed(&allowed, origin), "{origin} {data:?}");
                    assert!(!number.is_empty() && number.len() <= MAX_LEN, "{data:?}");
                    assert!(number.chars().filter(char::is_ascii_digit).count() >= 3);
                    assert!(!number.contains(['<', '>', '"', '\\']), "{number:?}");
                }
                Verdict::Ignored(reason) => assert!(!reason.is_empty()),
                Verdict::NotForUs => {}
            }
        }
        // The mutations must leave some requests whole, or the run tests only refusals.
        assert!(dialled > 100, "{dialled} dialled");
    }
}
