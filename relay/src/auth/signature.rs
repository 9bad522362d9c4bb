//! `X-CTI-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, for webhooks and call controls.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const HEADER: &str = "x-cti-signature";

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
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length")
}

/// The header value for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a header value in constant time.
pub fn verify(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
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
    }
}
