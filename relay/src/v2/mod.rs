//! SAP Sales Cloud V2: the REST client and the mapping from V2's JSON to what the CTI needs.
//!
//! The relay talks to V2 only through this module, configured with a base URL and credentials,
//! exactly the same for a real tenant and for the simulator.

pub mod client;
pub mod lookup;
pub mod phone_call;
pub mod records;

pub use client::{V2Client, V2Error, Versioned};
