//! `cargo xtask bench numbers`: how fast callers are recognized, with percentiles.
//!
//! - normalization throughput on one core,
//! - index lookups in memory and through Redis on loopback (when redis-server is installed, as
//!   `cargo xtask test` does), per-lookup latency percentiles,
//! - a full index build by crawling the simulated V2 tenant, its time and memory.
//!
//! Numbers vary between machines and runs; read them as orders of magnitude and trends.

use std::time::{Duration, Instant};

use cti_relay::clock::SystemClock;
use cti_relay::numbers::budget::DailyBudget;
use cti_relay::numbers::build::{BuildOptions, build_generation};
use cti_relay::numbers::redis_index::RedisIndex;
use cti_relay::numbers::{DefaultRegion, MemoryIndex, NumberIndex, normalize, to_e164};
use cti_relay::v2::V2Client;
use cti_relay::v2::client::V2Auth;
use cti_sim::SimConfig;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

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

async fn bench_index(records: usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let started = Instant::now();
    let sim = cti_sim::spawn_on(
        listener,
        SimConfig {
            records,
            ..SimConfig::default()
        },
    )
    .expect("simulator");
    println!(
        "simulated tenant: {} records seeded in {:?}",
        records * 3,
        started.elapsed()
    );
    let client = V2Client::new(
        &sim.url(),
        V2Auth::Basic {
            user: "demo".into(),
            password: cti_relay::secret::Secret::new("demo"),
        },
        Duration::from_secs(60),
    );
    let options = BuildOptions {
        region: DefaultRegion::parse("CH").expect("region"),
        // The simulated history runs to October 2026: read its last three months.
        activity_since: Some("2026-08-01T00:00:00Z".into()),
    };
    let budget = DailyBudget::new(None, std::sync::Arc::new(SystemClock));
    let before = rss_kib();
    let requests_before = sim.sim.v2.request_count();
    let started = Instant::now();
    let (generation, stats) = build_generation(&client, &options, &budget)
        .await
        .expect("index build");
    let elapsed = started.elapsed();
    let numbers: Vec<String> = generation.keys().cloned().collect();
    // Measured with the one generation alive (the clone below is for the Redis part).
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    let index = MemoryIndex::default();
    index
        .replace("bench", generation.clone())
        .await
        .expect("replace");
    println!(
        "index build: {} records, {} numbers, {} V2 requests in {elapsed:?}; resident memory +{grown_mib} MiB",
        stats.records,
        stats.numbers,
        sim.sim.v2.request_count() - requests_before,
    );

    let mut samples = Vec::with_capacity(200_000);
    for i in 0..200_000usize {
        let number = &numbers[(i * 7919) % numbers.len()];
        let t = Instant::now();
        let hits = index.lookup("bench", number).await.expect("lookup");
        samples.push(t.elapsed());
        assert!(!hits.is_empty());
    }
    cti_tests::print_percentiles("lookup (memory)", samples);

    let mut redis = match cti_tests::redis::RedisServer::start().await {
        Ok(redis) => redis,
        Err(err) => {
            println!("lookup (redis): skipped: {err}");
            return;
        }
    };
    let index = RedisIndex::connect(&redis.url()).await.expect("redis");
    let started = Instant::now();
    index.replace("bench", generation).await.expect("replace");
    println!("index store (redis): {:?}", started.elapsed());
    let mut samples = Vec::with_capacity(50_000);
    for i in 0..50_000usize {
        let number = &numbers[(i * 7919) % numbers.len()];
        let t = Instant::now();
        let hits = index.lookup("bench", number).await.expect("lookup");
        samples.push(t.elapsed());
        assert!(!hits.is_empty());
    }
    cti_tests::print_percentiles("lookup (redis, loopback)", samples);
    redis.stop();
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
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(bench_index(records));
    }
}
