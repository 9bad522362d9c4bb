//! `cargo xtask bench numbers`: how fast callers are recognized, with percentiles.
//!
//! - normalization throughput on one core,
//! - index lookups in memory and through Redis on loopback (when redis-server is installed, as
//!   `cargo xtask test` does), per-lookup latency percentiles,
//! - a full index build by crawling the simulated V2 tenant, its time and memory
//!   ([`cti_tests::index_bench`], which `cargo xtask bench index` runs at larger sizes).
//!
//! Numbers vary between machines and runs; read them as orders of magnitude and trends.

use std::time::Instant;

use cti_relay::numbers::{DefaultRegion, normalize, to_e164};
use cti_sim::SimConfig;

/// Numbers as they come from a V2 export and from PBXs: typed forms of the simulated tenant.
fn sample_inputs(records: usize) -> Vec<String> {
    let sim = cti_sim::Sim::new(SimConfig {
        records,
        ..SimConfig::default()
    });
    let mut inputs = Vec::new();
    for collection in ["accounts", "contactPersons", "individualCustomers"] {
        for record in sim.v2.records(collection) {
            for path in [
                "/defaultCommunication/phoneFormattedNumber",
                "/phoneFormattedNumber",
                "/mobileFormattedNumber",
            ] {
                if let Some(n) = record.pointer(path).and_then(|v| v.as_str()) {
                    inputs.push(n.to_string());
                }
            }
        }
    }
    inputs
}

fn bench_normalize() {
    let inputs = sample_inputs(3_000);
    let region = DefaultRegion::parse("CH").expect("region");
    // Warm the metadata and regex caches.
    for input in inputs.iter().take(1_000) {
        let _ = normalize(input, &region);
    }
    let rounds = 20;
    let total = inputs.len() * rounds;
    let started = Instant::now();
    let mut valid = 0usize;
    for _ in 0..rounds {
        for input in &inputs {
            valid += usize::from(to_e164(input, &region).is_ok());
        }
    }
    let elapsed = started.elapsed();
    println!(
        "normalize to E.164 (index builds, the normalize command): {total} numbers on one core in {elapsed:?} = {:.0} numbers/s ({valid} valid)",
        total as f64 / elapsed.as_secs_f64()
    );
    let started = Instant::now();
    for _ in 0..rounds {
        for input in &inputs {
            let _ = normalize(input, &region);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "normalize with the international form (ringing calls): {:.0} numbers/s",
        total as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks one part.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if wants("normalize") {
        bench_normalize();
    }
    if wants("index") {
        let records: usize = std::env::var("CTI_BENCH_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(33_334);
        let report = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(cti_tests::index_bench::run(records * 3, true))
            .expect("index benchmark");
        print!("{report}");
    }
}
