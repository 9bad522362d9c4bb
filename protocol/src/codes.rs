//! The codes both ends of the widget's WebSocket must read the same way: why the relay closes a
//! connection, and what a refused request was refused for.
//!
//! They are written once here so the relay and the widget cannot drift apart. On the wire an
//! error code is still a plain string (`ServerMessage::Error { code }`), so a widget older than a
//! relay that learnt a new code shows it instead of failing to read the message.

/// WebSocket close codes the relay (and the widget, for its own closes) use.
pub mod close {
    /// The frame was not a valid client message.
    pub const BAD_FRAME: u16 = 4400;
    /// The token was refused: retrying cannot help, the rep must sign in again.
    pub const BAD_TOKEN: u16 = 4401;
    /// The token names a tenant this relay does not serve.
    pub const UNKNOWN_TENANT: u16 = 4403;
    /// No `hello` or heartbeat arrived in time.
    pub const TIMEOUT: u16 = 4408;
    /// The widget fell too far behind; reconnecting resumes from the replay buffer.
    pub const LAGGED: u16 = 4409;
    /// A binary frame: the protocol is JSON text only.
    pub const UNSUPPORTED: u16 = 1003;
    /// A frame over the relay's size limit (64 KiB).
    pub const TOO_LARGE: u16 = 1009;
    /// The widget kept sending actions far past its rate limit: reconnect after a back-off.
    pub const RATE_LIMITED: u16 = 4429;
    /// The relay is restarting (or this instance is stopping): reconnect at once.
    pub const RESTART: u16 = 1012;
    /// The token could not be checked just now (the identity provider's keys are unreachable, or
    /// a new signing key is not fetched yet): reconnect after a back-off with the same token.
    pub const TRY_AGAIN: u16 = 1013;
    /// The widget gave up on a connection that went silent (its own close, never the relay's).
    pub const SILENT: u16 = 4000;
}

/// Why the relay refused something the widget asked for (`ServerMessage::Error`'s `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The rep's tenant is not configured on this relay.
    UnknownTenant,
    /// No such call for this rep.
    UnknownCall,
    /// The record picked is not one of the call's matches.
    NotAMatch,
    /// The number to dial could not be read as a phone number.
    InvalidNumber,
    /// The provider refused or failed to place the call.
    DialFailed,
    /// The provider refused or failed a call control.
    CommandFailed,
    /// Notes over the length limit (refused rather than cut).
    NotesTooLong,
    /// A disposition the tenant does not offer.
    UnknownDisposition,
    /// Consent was confirmed for a call whose recording needs none.
    NoConsentNeeded,
    /// A store the relay needs is away for a moment; trying again later may work.
    Unavailable,
    /// A second `hello` on a connection that is already signed in.
    AlreadySignedIn,
    /// A message this side does not act on.
    Unsupported,
    /// The widget has no connection to send the request on (the widget's own code).
    NotConnected,
    /// The rep must connect their V2 sign-in first (the widget's own code).
    V2Connect,
    /// The connection sent actions faster than the relay takes them; this one was dropped.
    RateLimited,
    /// A call control for a call that is already over for this rep (ended or handed on).
    CallOver,
    /// A search or a new record the relay refused before asking V2 (a field empty, too long,
    /// a query too short); the message names the field.
    InvalidRecord,
    /// V2 refused to create the record; the message is V2's own, naming the field where it did.
    V2Refused,
}

impl ErrorCode {
    /// Every code, for round-trip tests and documentation.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::UnknownTenant,
        ErrorCode::UnknownCall,
        ErrorCode::NotAMatch,
        ErrorCode::InvalidNumber,
        ErrorCode::DialFailed,
        ErrorCode::CommandFailed,
        ErrorCode::NotesTooLong,
        ErrorCode::UnknownDisposition,
        ErrorCode::NoConsentNeeded,
        ErrorCode::Unavailable,
        ErrorCode::AlreadySignedIn,
        ErrorCode::Unsupported,
        ErrorCode::NotConnected,
        ErrorCode::V2Connect,
        ErrorCode::RateLimited,
        ErrorCode::CallOver,
        ErrorCode::InvalidRecord,
        ErrorCode::V2Refused,
    ];

    /// The code as it travels (and as the README lists it).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownTenant => "unknown_tenant",
            ErrorCode::UnknownCall => "unknown_call",
            ErrorCode::NotAMatch => "not_a_match",
            ErrorCode::InvalidNumber => "invalid_number",
            ErrorCode::DialFailed => "dial_failed",
            ErrorCode::CommandFailed => "command_failed",
            ErrorCode::NotesTooLong => "notes_too_long",
            ErrorCode::UnknownDisposition => "unknown_disposition",
            ErrorCode::NoConsentNeeded => "no_consent_needed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::AlreadySignedIn => "already_signed_in",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::NotConnected => "not_connected",
            ErrorCode::V2Connect => "v2_connect",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::CallOver => "call_over",
            ErrorCode::InvalidRecord => "invalid_record",
            ErrorCode::V2Refused => "v2_refused",
        }
    }

    /// The code for a wire string, if it is one of ours.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself_and_none_is_spelt_twice() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }
}
