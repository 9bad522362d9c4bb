//! `cargo xtask bench pop`: ring-to-pop in headless Chromium, from a signed ringing webhook to the
//! simulated V2 host page receiving the widget's `NOTIFY`, call after call
//! ([`cti_tests::pop_load`]).
//!
//! `cargo xtask bench pop -- --calls 1000` scales it (default 100). Numbers vary between
//! machines and runs: read them with the core count printed beside them.

use cti_tests::pop_load::{self, PopLoad};

fn main() -> anyhow::Result<()> {
    let load = PopLoad::from_args(std::env::args().skip(1))?;
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(pop_load::run(&load))?;
    print!("{report}");
    Ok(())
}
