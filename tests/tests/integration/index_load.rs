//! The run of `cargo xtask bench index`, run small: a few thousand records crawled from the
//! simulated V2, held in memory and in Redis. No timing is asserted, only that every number the
//! build produced is found in both stores and the index reports its size.

use anyhow::Result;
use cti_tests::index_bench;

#[tokio::test(flavor = "multi_thread")]
async fn a_small_index_run_finds_every_number_in_memory_and_in_redis() -> Result<()> {
    let report = index_bench::run(3_000, true).await?;
    assert_eq!(report.records, report.seeded, "{report}");
    assert!(report.numbers > 0, "{report}");
    assert!(report.index_bytes > 0, "{report}");
    // Each sample was a hit: `time_lookups` fails on a number the store did not find.
    assert!(!report.memory.samples.is_empty(), "{report}");
    match &report.redis {
        Some(Ok(redis)) => assert!(!redis.lookups.samples.is_empty(), "{report}"),
        other => panic!("Redis was not measured: {other:?}"),
    }
    Ok(())
}
