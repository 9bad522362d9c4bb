//! `X-CTI-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the tenant's webhook
//! secret: how a PBX signs its events and the relay signs its call controls.
//!
//! The header is part of the public contract (see the README's contract section), so both ends
//! and every integration that wants a reference compute it here. It is behind the `signing`
//! feature because the widget never signs anything and should not carry the crypto in its wasm.

#![cfg(feature = "signing")]

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header name, lower case as `http` spells header names.
pub const HEADER: &str = "x-cti-signature";

/// Why a signature was refused. Callers tell a missing header apart from a wrong one, because
/// the first is usually a misconfigured integration and the second a wrong secret or a forgery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-CTI-Signature header")]
    Missing,
    #[error("X-CTI-Signature must be `sha256=<64 hex digits>`")]
    Malformed,
    #[error("X-CTI-Signature does not match the body")]
    Mismatch,
}

fn mac(secret: &str) -> HmacSha256 {
    // HMAC is defined for keys of any length (an empty one included), so this cannot fail.
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length")
}

/// The header value for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a header value in constant time, so response timing tells an attacker nothing about
/// how close a forged signature came.
pub fn verify(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(digest).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_failures() {
        let sig = sign("s3cret", b"{}");
        assert!(verify("s3cret", b"{}", Some(&sig)).is_ok());
        assert_eq!(
            verify("other", b"{}", Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", b"{ }", Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify("s3cret", b"{}", None), Err(SignatureError::Missing));
        assert_eq!(
            verify("s3cret", b"{}", Some("md5=00")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("s3cret", b"{}", Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("s3cret", b"{}", Some("sha256=abcd")),
            Err(SignatureError::Malformed)
        );
    }

    /// Integrations implement the header themselves, so its exact value is pinned to a published
    /// HMAC-SHA256 vector rather than only to this module's own round trip.
    #[test]
    fn matches_the_published_hmac_sha256_vector() {
        assert_eq!(
            sign("key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
