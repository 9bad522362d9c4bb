//! Who may talk to the relay: reps (JWTs checked against the identity provider's JWKS) and
//! telephony sources (HMAC signatures with the tenant's webhook secret).

pub mod jwt;
pub mod signature;

pub use jwt::{AgentIdentity, AuthError, JwtVerifier};
