//! `cargo xtask bench index`: the number index at 100,000 and 1,000,000 records, or the sizes
//! `--records N` names: build time, resident memory, lookup percentiles in memory and in Redis
//! ([`cti_tests::index_bench`]).
//!
//! Numbers vary between machines and runs; memory does not depend on the machine's load.

use cti_tests::index_bench;

fn main() -> anyhow::Result<()> {
    let (sizes, redis) = index_bench::from_args(std::env::args().skip(1))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "index benchmark, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "relay processes: {}",
        index_bench::relay_binary()?.display()
    );
    for records in sizes {
        // One size at a time, each in a fresh tenant: the next size's memory starts from this
        // one's leftovers only as far as the allocator keeps them.
        let report = runtime.block_on(index_bench::run(records, redis))?;
        print!("{report}");
    }
    Ok(())
}
