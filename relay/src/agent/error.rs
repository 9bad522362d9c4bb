//! Why the relay refused something a rep asked for, and the one place that becomes a message.
//!
//! A refusal leaves the connection open: the widget shows it next to what the rep tried.

use cti_protocol::ErrorCode;
use cti_protocol::ws::ServerMessage;

use crate::adapters::CommandError;
use crate::numbers::InvalidNumber;

/// What went wrong, with the underlying error kept as the source for the logs.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("this tenant is not configured")]
    UnknownTenant,
    #[error("no call {0:?} for this rep")]
    UnknownCall(String),
    #[error("record {0:?} is not one of the call's matches")]
    NotAMatch(String),
    #[error("the number to dial is longer than 64 characters")]
    NumberTooLong,
    #[error("cannot dial that number: {0}")]
    InvalidNumber(#[source] InvalidNumber),
    #[error("{0}")]
    DialFailed(#[source] CommandError),
    #[error("{0}")]
    CommandFailed(#[source] CommandError),
    #[error("notes are limited to {max} characters; these have {0}", max = super::commands::MAX_NOTES_CHARS)]
    NotesTooLong(usize),
    #[error("{0:?} is not one of this tenant's dispositions")]
    UnknownDisposition(String),
    #[error("this call's recording needs no consent")]
    NoConsentNeeded,
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("hello is only valid as the first frame")]
    AlreadySignedIn,
    #[error("this message type is not supported")]
    Unsupported,
    #[error("the tenant's phone system ({provider}) has no {} control", control.name())]
    NotOffered {
        provider: &'static str,
        control: cti_protocol::Control,
    },
    #[error("too many requests ({0}); this one was dropped")]
    RateLimited(&'static str),
    #[error("call {0} is over for this rep")]
    CallOver(String),
    /// A search or a new record refused before V2 was asked; names the field.
    #[error("{0}")]
    InvalidRecord(#[source] cti_protocol::lookup::FieldProblem),
    /// The caller's number is not a full international one, so a record made with it would
    /// never be found by it.
    #[error("the caller's number {0} is not a full international number; no record was created")]
    NumberNotStorable(String),
    #[error("V2 has no {kind} {id:?}", kind = .kind.label().to_lowercase())]
    NoSuchRecord {
        kind: cti_protocol::RecordKind,
        id: String,
    },
    /// V2 refused the new record (400 or 422); its own message, which names the field.
    #[error("V2 refused the record: {0}")]
    V2Refused(String),
}

impl AgentError {
    /// A store or V2 failure the rep can only wait out.
    pub fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        AgentError::Unavailable(Box::new(err))
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            AgentError::UnknownTenant => ErrorCode::UnknownTenant,
            AgentError::UnknownCall(_) => ErrorCode::UnknownCall,
            AgentError::NotAMatch(_) => ErrorCode::NotAMatch,
            AgentError::NumberTooLong | AgentError::InvalidNumber(_) => ErrorCode::InvalidNumber,
            AgentError::DialFailed(_) => ErrorCode::DialFailed,
            AgentError::CommandFailed(_) => ErrorCode::CommandFailed,
            AgentError::NotesTooLong(_) => ErrorCode::NotesTooLong,
            AgentError::UnknownDisposition(_) => ErrorCode::UnknownDisposition,
            AgentError::NoConsentNeeded => ErrorCode::NoConsentNeeded,
            AgentError::Unavailable(_) => ErrorCode::Unavailable,
            AgentError::AlreadySignedIn => ErrorCode::AlreadySignedIn,
            AgentError::Unsupported | AgentError::NotOffered { .. } => ErrorCode::Unsupported,
            AgentError::RateLimited(_) => ErrorCode::RateLimited,
            AgentError::CallOver(_) => ErrorCode::CallOver,
            AgentError::InvalidRecord(_) | AgentError::NumberNotStorable(_) => {
                ErrorCode::InvalidRecord
            }
            AgentError::NoSuchRecord { .. } => ErrorCode::NotAMatch,
            AgentError::V2Refused(_) => ErrorCode::V2Refused,
        }
    }
}

impl From<crate::pipeline::LegError> for AgentError {
    fn from(err: crate::pipeline::LegError) -> Self {
        match err {
            crate::pipeline::LegError::UnknownCall(call) => AgentError::UnknownCall(call),
            unavailable => AgentError::unavailable(unavailable),
        }
    }
}

impl From<AgentError> for ServerMessage {
    fn from(err: AgentError) -> Self {
        ServerMessage::error(err.code(), err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_travels_with_its_code_and_reason() {
        let message = ServerMessage::from(AgentError::UnknownCall("c-1".into()));
        assert_eq!(
            message,
            ServerMessage::Error {
                code: "unknown_call".into(),
                message: "no call \"c-1\" for this rep".into()
            }
        );
        let message = ServerMessage::from(AgentError::NotesTooLong(20_001));
        let ServerMessage::Error { code, message } = message else {
            panic!("not an error: {message:?}");
        };
        assert_eq!(code, "notes_too_long");
        assert!(message.contains("20000"), "{message}");
    }
}
