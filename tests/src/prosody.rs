//! The real Prosody the Finesse tests (and the demo) publish Dialog updates through: it lives
//! in the simulator crate so `cargo xtask demo` starts it the same way (`SIM_FINESSE_PROSODY`).

pub use cti_sim::prosody::Prosody;
