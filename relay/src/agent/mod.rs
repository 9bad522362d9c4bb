//! The conversation with a rep's widget: the relay's application layer for reps.
//!
//! [`session`] runs one WebSocket connection (hello, welcome, replay, heartbeat, pushes) over two
//! channels, so it needs no socket to be tested; [`sign_in_watch`] tells the widget whether V2
//! holds the rep's own sign-in; [`commands`] carries out what the rep asks for, one file per
//! client message; [`error`] is the one place where a refusal becomes a message for the widget.
//!
//! This module sits above the domains (calls, activity, numbers, adapters, authority) and
//! below the HTTP routes: it may call any domain, and no domain calls it.

pub mod commands;
pub mod error;
pub mod session;
pub mod sign_in_watch;
pub mod throttle;

pub use error::AgentError;
pub use session::{Inbound, Outbound, run};
