//! Who may talk to the relay: reps (JWTs checked against the identity provider's JWKS),
//! telephony sources (HMAC signatures with the tenant's webhook secret) and V2 change events
//! (Basic credentials).

pub mod basic;
pub mod jwt;
pub mod signature;

pub use jwt::{AgentIdentity, AuthError, JwtVerifier};
