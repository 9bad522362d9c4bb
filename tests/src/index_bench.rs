//! The number index at scale, for `cargo xtask bench index` and `cargo xtask bench numbers`: a
//! full build by crawling a simulated V2 tenant, its time and resident memory, and lookup
//! latency percentiles in memory and in a redis-server of its own on loopback.
//!
//! The simulator runs in this process, so the process's resident memory before the build
//! already holds the seeded tenant; what the build adds is the index generation (and whatever
//! the crawl's pages left to the allocator). Redis's figures are the redis-server process's own.
//!
//! What a Cloud Foundry memory limit is held against is measured apart: a release relay
//! process builds the same tenant's index, then rebuilds it (when both generations are alive),
//! and its peak resident memory (`VmHWM`) is read, in memory mode and in Redis mode.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cti_relay::clock::SystemClock;
use cti_relay::numbers::budget::DailyBudget;
use cti_relay::numbers::build::{BuildOptions, build_generation};
use cti_relay::numbers::redis_index::RedisIndex;
use cti_relay::numbers::{DefaultRegion, MemoryIndex, NumberIndex};
use cti_relay::v2::V2Client;
use cti_relay::v2::client::V2Auth;
use cti_sim::SimConfig;

use crate::push_load::{quantile, rss_kib};
use crate::redis::RedisServer;
use crate::relay_process::RelayProcess;

/// Lookups timed in memory and through Redis.
const MEMORY_LOOKUPS: usize = 200_000;
const REDIS_LOOKUPS: usize = 50_000;

/// The record counts `cargo xtask bench index` runs when `--records` does not say.
pub const DEFAULT_RECORDS: [usize; 2] = [100_000, 1_000_000];

/// Reads `--records N` (repeatable) over [`DEFAULT_RECORDS`]; `--no-redis` skips Redis.
/// Arguments cargo adds to a benchmark's (`--bench`) are ignored.
pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<(Vec<usize>, bool)> {
    let mut records = Vec::new();
    let mut redis = true;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--records" => {
                let n: usize = args
                    .next()
                    .context("--records needs a value")?
                    .parse()
                    .context("--records takes a whole number")?;
                if n < 3 {
                    bail!("--records must be at least 3 (one per caller collection)");
                }
                records.push(n);
            }
            "--no-redis" => redis = false,
            "--bench" => {}
            other => bail!("unknown argument {other:?}; use [--records N]... [--no-redis]"),
        }
    }
    if records.is_empty() {
        records = DEFAULT_RECORDS.to_vec();
    }
    Ok((records, redis))
}

/// Latency percentiles of one kind of lookup.
#[derive(Debug, Clone)]
pub struct Lookups {
    /// Sorted.
    pub samples: Vec<Duration>,
}

impl fmt::Display for Lookups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |q: f64| {
            quantile(&self.samples, q).map_or_else(
                || "-".into(),
                |d| format!("{:.1} µs", d.as_secs_f64() * 1e6),
            )
        };
        write!(
            f,
            "n={} p50={} p99={} p99.9={} max={}",
            self.samples.len(),
            us(0.50),
            us(0.99),
            us(0.999),
            us(1.0)
        )
    }
}

/// The index in Redis.
#[derive(Debug, Clone)]
pub struct RedisFigures {
    /// Writing the whole generation (the relay's `replace`).
    pub store: Duration,
    /// redis-server's resident memory before and after the store, KiB.
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub lookups: Lookups,
}

/// A relay process that built the index and rebuilt it once.
#[derive(Debug, Clone)]
pub struct ProcessFigures {
    /// `memory` or `redis`.
    pub mode: &'static str,
    /// The process's peak resident memory (`VmHWM`) and its resident memory after the rebuild,
    /// KiB.
    pub peak_kib: u64,
    pub after_kib: u64,
    /// From the process's start to the end of its second build.
    pub elapsed: Duration,
}

impl fmt::Display for ProcessFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} mode: peak resident {:.0} MiB over a build and a rebuild, {:.0} MiB after ({:.0} s)",
            self.mode,
            self.peak_kib as f64 / 1024.0,
            self.after_kib as f64 / 1024.0,
            self.elapsed.as_secs_f64()
        )
    }
}

/// What one size measured.
#[derive(Debug, Clone)]
pub struct IndexReport {
    /// Records seeded over the three caller collections (accounts, contacts, individual
    /// customers), and the time the simulator took to seed them.
    pub seeded: usize,
    pub seed: Duration,
    /// What the build read and produced.
    pub records: usize,
    pub numbers: usize,
    pub requests: usize,
    pub build: Duration,
    /// This process's resident memory before the build (the simulator's tenant in it), with
    /// the built generation alive, and with the in-memory index holding a copy of it, KiB.
    pub rss_before_kib: u64,
    pub rss_built_kib: u64,
    pub rss_indexed_kib: u64,
    /// The generation's own heap bytes, as it counts them.
    pub index_bytes: usize,
    pub memory: Lookups,
    /// None when Redis was skipped; the error when it could not start.
    pub redis: Option<Result<RedisFigures, String>>,
    /// Release relay processes building the index (memory mode, and Redis mode unless skipped);
    /// the error when one could not be measured.
    pub processes: Vec<Result<ProcessFigures, String>>,
}

impl fmt::Display for IndexReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |kib: u64| kib as f64 / 1024.0;
        writeln!(
            f,
            "index, {} records: simulated tenant seeded in {:.1} s",
            self.seeded,
            self.seed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  build: {} records, {} numbers, {} V2 requests in {:.1} s ({:.0} records/s, {:.1} ms per page)",
            self.records,
            self.numbers,
            self.requests,
            self.build.as_secs_f64(),
            self.records as f64 / self.build.as_secs_f64().max(1e-9),
            self.build.as_secs_f64() * 1e3 / self.requests.max(1) as f64,
        )?;
        writeln!(
            f,
            "  resident memory: {:.0} MiB before the build, {:.0} MiB with the generation (+{:.0} MiB), \
             {:.0} MiB with the in-memory index too (+{:.0} MiB, {:.0} bytes per number)",
            mib(self.rss_before_kib),
            mib(self.rss_built_kib),
            mib(self.rss_built_kib.saturating_sub(self.rss_before_kib)),
            mib(self.rss_indexed_kib),
            mib(self.rss_indexed_kib.saturating_sub(self.rss_built_kib)),
            self.rss_indexed_kib.saturating_sub(self.rss_built_kib) as f64 * 1024.0
                / self.numbers.max(1) as f64,
        )?;
        writeln!(
            f,
            "  the index itself: {:.1} MiB on the heap ({:.0} bytes per record, {:.0} per number)",
            self.index_bytes as f64 / 1024.0 / 1024.0,
            self.index_bytes as f64 / self.records.max(1) as f64,
            self.index_bytes as f64 / self.numbers.max(1) as f64,
        )?;
        writeln!(f, "  lookup (memory): {}", self.memory)?;
        match &self.redis {
            None => writeln!(f, "  redis: skipped (--no-redis)")?,
            Some(Err(why)) => writeln!(f, "  redis: skipped: {why}")?,
            Some(Ok(r)) => {
                writeln!(
                    f,
                    "  redis: stored in {:.1} s; redis-server resident {:.0} MiB before, {:.0} MiB after (+{:.0} MiB)",
                    r.store.as_secs_f64(),
                    mib(r.rss_before_kib),
                    mib(r.rss_after_kib),
                    mib(r.rss_after_kib.saturating_sub(r.rss_before_kib)),
                )?;
                writeln!(f, "  lookup (redis, loopback): {}", r.lookups)?;
            }
        }
        for process in &self.processes {
            match process {
                Ok(p) => writeln!(f, "  relay process, {p}")?,
                Err(why) => writeln!(f, "  relay process: not measured: {why}")?,
            }
        }
        Ok(())
    }
}

async fn time_lookups(
    index: &dyn NumberIndex,
    numbers: &[String],
    count: usize,
) -> Result<Lookups> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        // A stride that is prime to any plausible count walks the numbers in scattered order.
        let number = &numbers[(i * 7919) % numbers.len()];
        let started = Instant::now();
        let hits = index.lookup("bench", number).await?;
        samples.push(started.elapsed());
        if hits.is_empty() {
            bail!("{number} is in the generation but the index found no record");
        }
    }
    samples.sort();
    Ok(Lookups { samples })
}

/// Builds the index of a simulated tenant of `records` records (split evenly over the three
/// caller collections) and times lookups in memory and, with `redis`, in Redis.
pub async fn run(records: usize, redis_wanted: bool) -> Result<IndexReport> {
    let per_collection = records.div_ceil(3);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let started = Instant::now();
    let sim = cti_sim::spawn_on(
        listener,
        SimConfig {
            records: per_collection,
            ..SimConfig::default()
        },
    )?;
    let seed = started.elapsed();
    let client = V2Client::new(
        &sim.url(),
        V2Auth::Basic {
            user: "demo".into(),
            password: cti_relay::secret::Secret::new("demo"),
        },
        Duration::from_secs(60),
    );
    let options = BuildOptions {
        region: DefaultRegion::parse("CH")?,
        // The simulated history runs to October 2026: read its last three months.
        activity_since: Some("2026-08-01T00:00:00Z".into()),
    };
    let budget = DailyBudget::new(None, Arc::new(SystemClock));
    let pid = std::process::id();
    let rss_before_kib = rss_kib(pid)?;
    let started = Instant::now();
    let (generation, stats) = build_generation(&client, &options, &budget).await?;
    let build = started.elapsed();
    let rss_built_kib = rss_kib(pid)?;
    let numbers: Vec<String> = generation.numbers().collect();
    let index_bytes = generation.heap_bytes();
    if numbers.is_empty() {
        bail!("the build indexed no number");
    }
    let index = MemoryIndex::default();
    index.replace("bench", generation.clone()).await?;
    let rss_indexed_kib = rss_kib(pid)?;
    let memory = time_lookups(&index, &numbers, MEMORY_LOOKUPS).await?;
    drop(index);
    let redis = match redis_wanted {
        false => None,
        true => Some(
            redis_figures(generation, &numbers)
                .await
                .map_err(|e| format!("{e:#}")),
        ),
    };
    // The in-process generation and index are gone; the relay processes read the same tenant.
    let mut processes = vec![
        relay_process_figures(&sim.url(), None)
            .await
            .map_err(|e| format!("{e:#}")),
    ];
    if redis_wanted {
        let figures = match RedisServer::start().await {
            Ok(mut server) => {
                let figures = relay_process_figures(&sim.url(), Some(&server.url())).await;
                server.stop();
                figures
            }
            Err(err) => Err(err.context("starting redis-server")),
        };
        processes.push(figures.map_err(|e| format!("{e:#}")));
    }
    drop(sim);
    Ok(IndexReport {
        seeded: per_collection * 3,
        seed,
        records: stats.records,
        numbers: stats.numbers,
        requests: stats.requests,
        build,
        rss_before_kib,
        rss_built_kib,
        rss_indexed_kib,
        index_bytes,
        memory,
        redis,
        processes,
    })
}

/// Starts a release relay process on the simulated tenant, waits for its first build and one
/// rebuild to succeed, and reads its memory.
async fn relay_process_figures(sim_url: &str, redis: Option<&str>) -> Result<ProcessFigures> {
    /// A build of a million records takes about a minute here; far longer is a failure.
    const PATIENCE: Duration = Duration::from_secs(20 * 60);
    let http = reqwest::Client::new();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = cti_relay::Config::demo(sim_url);
    // The shortest refresh period the relay takes: the rebuild follows the first build soon.
    let extra = [("CTI_INDEX_REFRESH_SECS", "10".to_string())];
    let started = Instant::now();
    let relay = RelayProcess::spawn_configured(relay_binary()?, &config, addr, redis, &extra)?;
    let pid = relay.pid().context("the relay process is not running")?;
    let deadline = started + PATIENCE;
    loop {
        if Instant::now() > deadline {
            bail!("no rebuild within {PATIENCE:?}");
        }
        // Polling a process's metrics: nothing else tells this process when a build ends.
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Not listening yet while it starts.
        let Ok(response) = http.get(format!("{}/metrics", relay.url())).send().await else {
            continue;
        };
        let metrics = response.text().await?;
        let builds = |outcome: &str| {
            crate::push_load::sample(
                &metrics,
                &format!("cti_index_builds_total{{tenant=\"demo\",outcome=\"{outcome}\"}}"),
            )
            .unwrap_or(0.0)
        };
        if builds("failed") > 0.0 {
            bail!("the relay's index build failed (run with CTI_TEST_LOG=info for its log)");
        }
        if builds("ok") >= 2.0 {
            break;
        }
    }
    let elapsed = started.elapsed();
    Ok(ProcessFigures {
        mode: if redis.is_some() { "redis" } else { "memory" },
        peak_kib: status_kib(pid, "VmHWM:")?,
        after_kib: rss_kib(pid)?,
        elapsed,
    })
}

/// The relay binary measured: `CTI_BENCH_RELAY` (`cargo xtask bench index` sets it to the
/// static musl build `cargo xtask dist` ships, whose allocator is not glibc's), else this
/// build's own `cti-relay`.
pub fn relay_binary() -> Result<std::path::PathBuf> {
    match std::env::var_os("CTI_BENCH_RELAY") {
        Some(path) => Ok(path.into()),
        None => crate::relay_process::relay_binary(),
    }
}

/// A `/proc/<pid>/status` memory line, KiB.
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

async fn redis_figures(
    generation: cti_relay::numbers::generation::Generation,
    numbers: &[String],
) -> Result<RedisFigures> {
    let mut server = RedisServer::start().await?;
    let pid = server.pid().context("redis-server is not running")?;
    let index = RedisIndex::connect(&server.url()).await?;
    let rss_before_kib = rss_kib(pid)?;
    let started = Instant::now();
    index.replace("bench", generation).await?;
    let store = started.elapsed();
    let rss_after_kib = rss_kib(pid)?;
    let lookups = time_lookups(&index, numbers, REDIS_LOOKUPS).await?;
    server.stop();
    Ok(RedisFigures {
        store,
        rss_before_kib,
        rss_after_kib,
        lookups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_default_to_both_sizes_and_can_be_named() {
        assert_eq!(
            from_args(Vec::new()).expect("defaults"),
            (DEFAULT_RECORDS.to_vec(), true)
        );
        let args = ["--records", "3000", "--bench", "--no-redis"].map(String::from);
        assert_eq!(from_args(args).expect("valid"), (vec![3_000], false));
        assert!(from_args(["--records".to_string()]).is_err());
        assert!(from_args(["--records", "2"].map(String::from)).is_err());
        assert!(from_args(["--fast".to_string()]).is_err());
    }
}
