//! OAuth 2.0 client-credentials tokens from V2's outbound communication systems.
//!
//! SAP documents that an outbound communication system authenticates with
//! `OAUTH_2_CLIENT_CREDENTIALS` (client id, secret and a token URL, for example the XSUAA of the
//! subaccount the receiver runs in) or with Basic. What the token then looks like is not
//! published; inferred: it is a JWT from the token URL the tenant was given, so it is checked like
//! every other token the relay is handed (signature against the configured issuer's JWKS,
//! issuer, audience, expiry), and it must name the configured client (`sub`, which XSUAA sets to
//! the client id for this grant) and the tenant it is delivered for.

use super::jwt::{AuthError, JwtVerifier};

#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    #[error("Authorization must be `Bearer <token>`")]
    Malformed,
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error("the token is for client {found:?}, not the tenant's V2 events client")]
    WrongClient { found: String },
    #[error("the token is for tenant {found:?}")]
    WrongTenant { found: String },
}

/// The token of an `Authorization: Bearer …` header, if that is the scheme.
pub fn token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks a client-credentials token delivered with a change event for `tenant`.
pub async fn verify(
    verifier: &JwtVerifier,
    header: &str,
    tenant: &str,
    client_id: &str,
) -> Result<(), BearerError> {
    let token = token(header).ok_or(BearerError::Malformed)?;
    // A client-credentials token carries the client's scopes, not a rep's.
    let identity = verifier.verify_client(token).await?;
    if identity.agent != client_id {
        return Err(BearerError::WrongClient {
            found: identity.agent,
        });
    }
    if identity.tenant != tenant {
        return Err(BearerError::WrongTenant {
            found: identity.tenant,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bearer_scheme_yields_a_token() {
        assert_eq!(token("Bearer abc.def"), Some("abc.def"));
        assert_eq!(token("bearer  abc "), Some("abc"));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer "), None);
    }
}
