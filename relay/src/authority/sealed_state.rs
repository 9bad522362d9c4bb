//! The `state` of a browser's round trip through an identity provider, and the cookie that binds
//! it to the browser that started it: shared by the reps' V2 sign-in ([`super::oauth2`]) and the
//! relay's own sign-in through XSUAA ([`super::sign_in`]).
//!
//! The state is the pending sign-in itself, sealed with the token key (`CTI_TOKEN_KEY`), so any
//! instance can finish it and nobody can forge or read it; each flow seals under its own purpose
//! (the associated data), so one flow's state never opens as another's. The browser keeps a
//! random value as a cookie; the state carries only its SHA-256, so a state carried to another
//! browser (a link sent to a colleague, a forged callback) is refused there.

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::Authority;
use super::vault::VaultError;

/// Why a state cannot be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no token key is configured (CTI_TOKEN_KEY)")]
    NoTokenKey,
    /// Not sealed by this relay (or under a key it no longer has), or not this flow's.
    #[error("the sign-in's state is invalid or expired")]
    Invalid,
    #[error("the sign-in's state cannot be written: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("{0}")]
    Seal(#[from] VaultError),
}

/// `bytes` random bytes in URL-safe base64.
pub(super) fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The SHA-256 of `value`, in URL-safe base64 (also PKCE's S256 challenge).
pub(super) fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

/// A random value for the browser that starts a sign-in to keep as a cookie and show again
/// when the provider sends it back; the state keeps its [`digest`].
pub fn browser_binding() -> String {
    random_b64(32)
}

/// Whether the cookie the browser showed (if any) is the one whose digest the state holds,
/// compared in constant time.
pub(super) fn same_browser(cookie: Option<&str>, bound: &str) -> bool {
    cookie.is_some_and(|b| {
        subtle::ConstantTimeEq::ct_eq(digest(b).as_bytes(), bound.as_bytes()).into()
    })
}

impl Authority {
    /// `value` sealed as a `state` parameter for the flow `purpose`.
    pub(super) fn seal_state<T: Serialize>(
        &self,
        purpose: &str,
        value: &T,
    ) -> Result<String, StateError> {
        let json = serde_json::to_string(value).map_err(StateError::Encode)?;
        let sealer = self.sealer.as_ref().ok_or(StateError::NoTokenKey)?;
        let sealed = sealer.seal(purpose, "", &json)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The value a `state` parameter of the flow `purpose` holds; [`StateError::Invalid`] for
    /// anything this relay did not seal for that flow.
    pub(super) fn open_state<T: DeserializeOwned>(
        &self,
        purpose: &str,
        state: &str,
    ) -> Result<T, StateError> {
        let sealer = self.sealer.as_ref().ok_or(StateError::NoTokenKey)?;
        let sealed = URL_SAFE_NO_PAD
            .decode(state.trim())
            .map_err(|_| StateError::Invalid)?;
        let json = sealer
            .open(purpose, "", &sealed)
            .map_err(|_| StateError::Invalid)?;
        serde_json::from_str(json.expose()).map_err(|_| StateError::Invalid)
    }
}
