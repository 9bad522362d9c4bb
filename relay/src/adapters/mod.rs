//! Telephony providers, each behind one trait.
//!
//! An adapter turns a provider's inbound traffic into normalized [`TelephonyEvent`]s and carries
//! the rep's call controls back to the provider. Adding a provider means implementing this trait
//! in one new file; nothing else in the relay knows which provider a call came from.

pub mod generic;

use async_trait::async_trait;
use axum::http::HeaderMap;
use cti_protocol::event::TelephonyEvent;
use cti_protocol::ws::CallCommand;

use crate::calls::Leg;

use crate::config::TenantConfig;
use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("the provider refused {action}: {status} {message}")]
    Rejected {
        action: &'static str,
        status: u16,
        message: String,
    },
    #[error("the provider is unreachable: {0}")]
    Unreachable(String),
}

#[async_trait]
pub trait TelephonyAdapter: Send + Sync + std::fmt::Debug {
    /// The path segment under `/v1/tenants/{tenant}/telephony/` and the metrics label.
    fn provider(&self) -> &'static str;

    /// Authenticates and parses one inbound request. Errors say what was wrong and where.
    fn parse(
        &self,
        tenant: &TenantConfig,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<TelephonyEvent>, ApiError>;

    /// Asks the provider to act on the call; its events confirm the result.
    async fn command(
        &self,
        tenant: &TenantConfig,
        call: &Leg,
        command: &CallCommand,
    ) -> Result<(), CommandError>;

    /// Asks the provider to call `e164` from the rep's line (click-to-dial). The provider's
    /// events bring the call; its id, when the provider tells it at once.
    async fn dial(
        &self,
        tenant: &TenantConfig,
        agent: &str,
        e164: &str,
    ) -> Result<Option<String>, CommandError>;
}
