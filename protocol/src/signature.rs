//! `X-CTI-Timestamp` and `X-CTI-Signature`: how a PBX signs its events and the relay signs its
//! call controls, keyed with the tenant's webhook secret.
//!
//! The signature is `sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`, where `timestamp` is
//! the `X-CTI-Timestamp` header's value (Unix seconds, digits only). The time is inside the MAC so
//! a captured request cannot be replayed once it is older than [`WINDOW_SECS`]: the receiver
//! refuses a timestamp further than that from its own clock, either way. Within the window a
//! receiver still drops repeats by event id (webhooks) or nonce (call controls).
//!
//! The older form, an HMAC of the body alone without `X-CTI-Timestamp` ([`verify_legacy`]), is
//! what integrations signed before; the relay takes it only during the grace period the README
//! states, and never signs with it any more.
//!
//! The headers are part of the public contract (see the README's contract section), so both ends
//! and every integration that wants a reference compute them here. It is behind the `signing`
//! feature because the widget never signs anything and should not carry the crypto in its wasm.

#![cfg(feature = "signing")]

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The signature header's name, lower case as `http` spells header names.
pub const HEADER: &str = "x-cti-signature";

/// The header carrying the signing time (Unix seconds), part of the signed string.
pub const TIMESTAMP_HEADER: &str = "x-cti-timestamp";

/// How far a signing time may be from the receiver's clock, either way: long enough for a retry
/// after a short back-off and modest clock drift, short enough that a captured request is useless
/// soon after.
pub const WINDOW_SECS: u64 = 300;

/// Longest timestamp read: a u64 has 20 digits.
const MAX_TIMESTAMP_DIGITS: usize = 20;

/// Why a signature was refused. Callers tell a missing header apart from a wrong one, because
/// the first is usually a misconfigured integration and the second a wrong secret or a forgery;
/// and a stale one apart from both, because it is a clock (or a replay), not a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-CTI-Signature header")]
    Missing,
    #[error("X-CTI-Signature must be `sha256=<64 hex digits>`")]
    Malformed,
    #[error("X-CTI-Signature does not match the body")]
    Mismatch,
    #[error("missing X-CTI-Timestamp header (Unix seconds, signed with the body)")]
    MissingTimestamp,
    #[error("X-CTI-Timestamp must be Unix seconds (digits only)")]
    MalformedTimestamp,
    #[error(
        "X-CTI-Timestamp is {skew_secs} s from the receiver's clock; at most {WINDOW_SECS} s is \
         accepted (a replay, or a clock to set right)"
    )]
    Stale { skew_secs: i64 },
}

fn mac(secret: &str) -> HmacSha256 {
    // HMAC is defined for keys of any length (an empty one included), so this cannot fail.
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length")
}

fn timed_mac(secret: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
    let mut mac = mac(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-CTI-Signature` value for `body` sent at `timestamp` (Unix seconds, also sent as
/// `X-CTI-Timestamp`).
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mac = timed_mac(secret, timestamp, body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The digest of a header value, or why it is not one.
fn digest(header: Option<&str>) -> Result<Vec<u8>, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(digest).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    Ok(expected)
}

/// Reads an `X-CTI-Timestamp` value.
pub fn parse_timestamp(value: &str) -> Result<u64, SignatureError> {
    let value = value.trim();
    if value.is_empty()
        || value.len() > MAX_TIMESTAMP_DIGITS
        || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SignatureError::MalformedTimestamp);
    }
    value
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)
}

/// Checks a signature and its timestamp against the receiver's clock (`now_secs`, Unix seconds).
///
/// The MAC is compared first, in constant time, so only a correctly signed request learns that it
/// was stale: a forger learns nothing about the window.
pub fn verify(
    secret: &str,
    body: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    now_secs: u64,
) -> Result<(), SignatureError> {
    let expected = digest(signature)?;
    let timestamp = parse_timestamp(timestamp.ok_or(SignatureError::MissingTimestamp)?)?;
    timed_mac(secret, timestamp, body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)?;
    let skew = i128::from(now_secs) - i128::from(timestamp);
    if skew.unsigned_abs() > u128::from(WINDOW_SECS) {
        let skew_secs = i64::try_from(skew).unwrap_or(if skew < 0 { i64::MIN } else { i64::MAX });
        return Err(SignatureError::Stale { skew_secs });
    }
    Ok(())
}

/// The signature integrations sent before timestamps: an HMAC of the body alone. Replayable
/// forever, so only for a receiver's grace period; nothing signs this way any more.
pub fn verify_legacy(
    secret: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let expected = digest(signature)?;
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// A legacy signature, for tests of a receiver's grace period.
pub fn sign_legacy(secret: &str, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_000_000;

    #[test]
    fn round_trip_and_failures() {
        let sig = sign("s3cret", NOW, b"{}");
        let ts = NOW.to_string();
        let check = |secret: &str, body: &[u8], sig: Option<&str>, ts: Option<&str>| {
            verify(secret, body, sig, ts, NOW)
        };
        assert!(check("s3cret", b"{}", Some(&sig), Some(&ts)).is_ok());
        assert_eq!(
            check("other", b"{}", Some(&sig), Some(&ts)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check("s3cret", b"{ }", Some(&sig), Some(&ts)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check("s3cret", b"{}", None, Some(&ts)),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check("s3cret", b"{}", Some("md5=00"), Some(&ts)),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check("s3cret", b"{}", Some("sha256=zz"), Some(&ts)),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check("s3cret", b"{}", Some("sha256=abcd"), Some(&ts)),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check("s3cret", b"{}", Some(&sig), None),
            Err(SignatureError::MissingTimestamp)
        );
        for bad in ["", "-5", "12a", "1.5", "99999999999999999999999"] {
            assert_eq!(
                check("s3cret", b"{}", Some(&sig), Some(bad)),
                Err(SignatureError::MalformedTimestamp),
                "{bad:?}"
            );
        }
    }

    /// The time is signed: moving the header to a fresh time breaks the signature.
    #[test]
    fn the_timestamp_is_part_of_the_signature() {
        let sig = sign("s3cret", NOW - 600, b"{}");
        assert_eq!(
            verify("s3cret", b"{}", Some(&sig), Some(&NOW.to_string()), NOW),
            Err(SignatureError::Mismatch)
        );
    }

    /// Review F5: a correctly signed body whose timestamp is ten minutes old is refused, and so
    /// is one from ten minutes ahead; the window's edges are taken.
    #[test]
    fn a_signature_outside_the_window_is_stale() {
        let at = |ts: u64| {
            verify(
                "s3cret",
                b"{}",
                Some(&sign("s3cret", ts, b"{}")),
                Some(&ts.to_string()),
                NOW,
            )
        };
        assert_eq!(at(NOW - 600), Err(SignatureError::Stale { skew_secs: 600 }));
        assert_eq!(
            at(NOW + 600),
            Err(SignatureError::Stale { skew_secs: -600 })
        );
        assert_eq!(at(NOW - WINDOW_SECS), Ok(()));
        assert_eq!(at(NOW + WINDOW_SECS), Ok(()));
        assert_eq!(
            at(0),
            Err(SignatureError::Stale {
                skew_secs: NOW as i64
            })
        );
        assert!(matches!(at(u64::MAX), Err(SignatureError::Stale { .. })));
    }

    #[test]
    fn a_legacy_signature_covers_the_body_alone() {
        let sig = sign_legacy("s3cret", b"{}");
        assert_eq!(verify_legacy("s3cret", b"{}", Some(&sig)), Ok(()));
        assert_eq!(
            verify_legacy("s3cret", b"{ }", Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        // Neither form passes for the other.
        assert_eq!(
            verify("s3cret", b"{}", Some(&sig), Some(&NOW.to_string()), NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_legacy("s3cret", b"{}", Some(&sign("s3cret", NOW, b"{}"))),
            Err(SignatureError::Mismatch)
        );
    }

    /// Integrations implement the header themselves, so its exact value is pinned to a published
    /// HMAC-SHA256 vector rather than only to this module's own round trip: the timed form is the
    /// HMAC of `"{timestamp}.{body}"`.
    #[test]
    fn matches_the_published_hmac_sha256_vector() {
        assert_eq!(
            sign_legacy("key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        // python3: hmac.new(b"key", b"1796000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            sign("key", 1_796_000_000, b"{}"),
            "sha256=be3030cc046098539614b2d7d21d07b1a0ed0e21b158fd1f25969485b8f6f747"
        );
    }
}
