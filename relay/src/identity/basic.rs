//! HTTP Basic credentials, for callers that can do nothing else: V2's outbound communication
//! systems deliver change events with a user and password (or OAuth client credentials).

use base64::Engine;
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BasicAuthError {
    #[error("missing Authorization header (Basic credentials expected)")]
    Missing,
    #[error("Authorization must be `Basic <base64 of user:password>`")]
    Malformed,
    #[error("wrong user or password")]
    Wrong,
}

/// Checks an `Authorization` header against the expected credentials, in constant time.
pub fn verify(header: Option<&str>, user: &str, password: &str) -> Result<(), BasicAuthError> {
    let header = header.ok_or(BasicAuthError::Missing)?;
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(BasicAuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicAuthError::Malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| BasicAuthError::Malformed)?;
    let expected = format!("{user}:{password}");
    if bool::from(decoded.as_slice().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(BasicAuthError::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    #[test]
    fn right_wrong_and_malformed_credentials() {
        assert_eq!(verify(Some(&header("v2:secret")), "v2", "secret"), Ok(()));
        assert_eq!(
            verify(Some(&header("v2:guess")), "v2", "secret"),
            Err(BasicAuthError::Wrong)
        );
        assert_eq!(verify(None, "v2", "secret"), Err(BasicAuthError::Missing));
        assert_eq!(
            verify(Some("Bearer abc"), "v2", "secret"),
            Err(BasicAuthError::Malformed)
        );
        assert_eq!(
            verify(Some("Basic %%%"), "v2", "secret"),
            Err(BasicAuthError::Malformed)
        );
    }
}
