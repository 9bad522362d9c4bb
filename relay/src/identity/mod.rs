//! Who may talk to the relay: reps (JWTs checked against the identity provider's JWKS),
//! telephony sources (HMAC signatures with the tenant's webhook secret, checked with
//! `cti_protocol::signature`, which the PBX side shares) and V2 change events (Basic credentials).

pub mod basic;
pub mod jwt;

pub use jwt::{AgentIdentity, AuthError, JwtVerifier};
