//! Who may talk to the relay: reps (JWTs checked against the identity provider's JWKS),
//! telephony sources (HMAC signatures with the tenant's webhook secret, checked with
//! `cti_protocol::signature`, which the PBX side shares) and V2 change events (Basic credentials, or an
//! OAuth 2.0 client-credentials token from the same identity provider).

pub mod basic;
pub mod bearer;
pub mod jwt;
pub mod rep;

pub use jwt::{AgentIdentity, AuthError, JwtVerifier};
pub use rep::{normalize_event, rep_id};
