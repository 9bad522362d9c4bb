//! What a rep can ask of the relay, one file per client message.
//!
//! Each command checks that the call is the rep's own before acting: a rep acts only on calls
//! they had. Errors come back as [`AgentError`]s, which the session turns into `error` messages;
//! a request with an answer of its own (a search, a new record) returns it for the session to send.

mod call_control;
mod choose_match;
mod confirm_consent;
mod create_record;
mod dial;
mod pick_record;
mod refresh_matches;
mod retry_activity;
mod save_wrap_up;
mod search_records;

use std::sync::Arc;

use cti_protocol::ws::{ClientMessage, ServerMessage};

use super::AgentError;
use crate::identity::AgentIdentity;
use crate::state::{AppState, Tenant};

pub use save_wrap_up::MAX_NOTES_CHARS;

/// Carries out one of the rep's requests, with the answer to send when it has one. Messages that
/// are not requests (hello, ping) are the session's business and do nothing here.
pub async fn apply(
    app: &Arc<AppState>,
    who: &AgentIdentity,
    message: ClientMessage,
) -> Result<Option<ServerMessage>, AgentError> {
    let tenant = &app.tenant(&who.tenant).ok_or(AgentError::UnknownTenant)?;
    let rep = &who.agent;
    match message {
        ClientMessage::SearchRecords { request_id, query } => {
            search_records::apply(tenant, request_id, &query)
                .await
                .map(Some)
        }
        ClientMessage::CreateRecord {
            call_id,
            kind,
            fields,
        } => create_record::apply(app, tenant, rep, &call_id, kind, &fields)
            .await
            .map(Some),
        message => apply_silent(app, tenant, rep, message).await.map(|()| None),
    }
}

/// The requests whose only answer is the call view they change (or an error).
async fn apply_silent(
    app: &Arc<AppState>,
    tenant: &Tenant,
    rep: &str,
    message: ClientMessage,
) -> Result<(), AgentError> {
    match message {
        ClientMessage::PickRecord {
            call_id,
            kind,
            record_id,
        } => pick_record::apply(app, tenant, rep, &call_id, kind, &record_id).await,
        ClientMessage::RefreshMatches { call_id } => {
            refresh_matches::apply(app, tenant, rep, &call_id).await
        }
        ClientMessage::Command { call_id, command } => {
            call_control::apply(app, tenant, rep, &call_id, &command).await
        }
        ClientMessage::Dial { number } => dial::apply(app, tenant, rep, &number).await,
        ClientMessage::ChooseMatch { call_id, record_id } => {
            choose_match::apply(app, tenant, rep, &call_id, &record_id).await
        }
        ClientMessage::SaveWrapUp {
            call_id,
            notes,
            disposition,
        } => save_wrap_up::apply(app, tenant, rep, &call_id, notes, disposition).await,
        ClientMessage::ConfirmConsent { call_id } => {
            confirm_consent::apply(app, tenant, rep, &call_id).await
        }
        ClientMessage::RetryActivity { call_id } => {
            retry_activity::apply(app, tenant, rep, &call_id).await
        }
        _ => Ok(()),
    }
}

/// The rep's leg of the call: a rep acts only on calls they had.
async fn own_leg(
    app: &AppState,
    tenant: &Tenant,
    call_id: &str,
    rep: &str,
) -> Result<crate::calls::Leg, AgentError> {
    app.calls
        .get(&tenant.config.id, call_id, rep)
        .await
        .map_err(AgentError::unavailable)?
        .ok_or_else(|| AgentError::UnknownCall(call_id.to_string()))
}
