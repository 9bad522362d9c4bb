//! The ring-to-pop run of `cargo xtask bench pop`, run small: a few calls to one widget in
//! headless Chromium. No timing is asserted, only that every call popped at the V2 host page
//! exactly once.

use anyhow::Result;
use cti_tests::pop_load::{self, PopLoad};

#[tokio::test(flavor = "multi_thread")]
async fn every_call_of_a_small_pop_run_pops_at_the_host_exactly_once() -> Result<()> {
    let load = PopLoad { calls: 3, loads: 2 };
    let report = pop_load::run(&load).await?;
    assert_eq!(report.posted, 3, "{report}");
    assert_eq!(report.refused, 0, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(report.duplicated, 0, "{report}");
    assert_eq!(report.latencies.len(), 3, "{report}");
    // Headless Chromium reports paint timing in frames: a load without it would mean the
    // widget never painted.
    assert_eq!(report.first_paints.len(), 2, "{report}");
    Ok(())
}
