//! `cargo xtask bench push`: ring-to-push latency and the cost of connected reps, measured on
//! release `cti-relay` processes by the load generator of [`cti_tests::push_load`].
//!
//! `cargo xtask bench push -- --agents 10000 --rate 1000 --secs 30 [--redis] [--instances 2]`
//! scales it; the defaults finish in well under two minutes. Numbers vary between machines and
//! runs: read them with the core count printed beside them.

use cti_tests::push_load::{self, PushLoad};

fn main() -> anyhow::Result<()> {
    let load = PushLoad::from_args(std::env::args().skip(1))?;
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(push_load::run(&load))?;
    print!("{report}");
    Ok(())
}
