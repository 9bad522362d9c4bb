//! `cargo xtask fuzz <target>|all --engine afl --secs N`: the relay's fuzz targets under AFL++,
//! guided by coverage instrumented at build time, on stable Rust.
//!
//! `cargo afl build` (crates.io's `cargo-afl`) compiles the `cti-fuzz-afl` crate and the relay
//! under it with LLVM's SanitizerCoverage pass (`-C passes=sancov-module`, edge guards and
//! comparison tracing) and links AFL++'s runtime, which it builds from source with the C compiler.
//! Both are installed here when missing. The build goes to its own target directory
//! (`<target>/afl`): its flags differ from every other build's, and sharing one directory would
//! rebuild the workspace each time one or the other runs.
//!
//! Per target: its sample payloads are written as the starting corpus, `afl-fuzz` runs for
//! `--secs` seconds on one core (`-V`), a line of progress is printed every ten seconds from its
//! `plot_data`, and the final `fuzzer_stats` give executions, corpus, edges, crashes and hangs.
//! Crashing and hanging inputs are copied to `target/fuzz-findings/<target>/`, with the command
//! that runs them again through the same target function (`--reproduce`, either engine's files).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::setup::{self, cargo, run, step, workspace_root};

/// Seconds per target unless `--secs` says otherwise.
const DEFAULT_SECS: u64 = 60;
/// An input running longer than this many milliseconds is a hang (the builtin engine's limit).
const HANG_MS: &str = "1000";
/// Inputs one forked child runs before the fork server starts a fresh one. The trackers keep
/// state across inputs; a bounded run keeps their memory and AFL++'s stability in check.
const LOOP_COUNT: &str = "10000";
/// How often progress is printed.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// What `afl-fuzz` reported for one target.
#[derive(Debug, Clone, Default)]
struct Stats {
    execs: u64,
    execs_per_sec: f64,
    corpus: u64,
    edges: u64,
    /// Edges in the instrumented binary's map (`total_edges`), for the coverage's share.
    total_edges: u64,
    crashes: u64,
    hangs: u64,
    secs: u64,
}

pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    let mut target: Option<&str> = None;
    let mut secs = DEFAULT_SECS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secs" => {
                let value = args.next().context("--secs needs a number of seconds")?;
                secs = value
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .with_context(|| format!("--secs {value:?}: not a positive number"))?;
            }
            // Checked by the caller: this is `afl`.
            "--engine" => {
                args.next();
            }
            flag if flag.starts_with("--") => {
                bail!(
                    "{flag} is not an option of the afl engine (it takes <target>|all and \
                     --secs N; --reproduce runs through the builtin engine's driver)"
                )
            }
            name => {
                if let Some(first) = target {
                    bail!("one target (or `all`), not {first:?} and {name:?}");
                }
                target = Some(name);
            }
        }
    }
    let Some(target) = target else {
        bail!("--engine afl needs a target or `all`; `cargo xtask fuzz` lists them");
    };
    ensure_afl()?;
    let afl_target_dir = setup::target_dir().join("afl");
    step("building the fuzz targets with coverage instrumentation (cargo afl build --release)");
    run(cargo(&[
        "afl",
        "build",
        "--release",
        "-p",
        "cti-fuzz-afl",
        "--bin",
        "cti-fuzz-afl",
        "--target-dir",
    ])
    .arg(&afl_target_dir))?;
    let binary = afl_target_dir.join("release/cti-fuzz-afl");
    let names = target_names(&binary)?;
    let chosen: Vec<String> = if target == "all" {
        names
    } else if names.iter().any(|n| n == target) {
        vec![target.to_string()]
    } else {
        bail!("no target {target:?}; run `cargo xtask fuzz` for the list");
    };
    let mut results = Vec::new();
    for name in &chosen {
        let stats = fuzz_one(&binary, name, secs)?;
        results.push((name.clone(), stats));
    }
    println!();
    println!(
        "{:<18} {:>12} {:>9} {:>7} {:>13} {:>8} {:>6}",
        "target", "execs", "execs/s", "corpus", "edges", "crashes", "hangs"
    );
    for (name, s) in &results {
        println!(
            "{:<18} {:>12} {:>9.0} {:>7} {:>13} {:>8} {:>6}",
            name,
            s.execs,
            s.execs_per_sec,
            s.corpus,
            format!("{}/{}", s.edges, s.total_edges),
            s.crashes,
            s.hangs
        );
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, s)| s.crashes > 0 || s.hangs > 0)
        .map(|(name, _)| name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "crashes or hangs in {}; the inputs are under target/fuzz-findings/",
            failed.join(", ")
        );
    }
    let total: u64 = results.iter().map(|(_, s)| s.execs).sum();
    println!("total: {total} executions, no crash, no hang");
    Ok(())
}

/// Installs `cargo-afl` from crates.io when `cargo afl` is missing, and builds AFL++ (from the
/// source `cargo-afl` carries, with the C compiler) when `cargo afl --version` names none.
fn ensure_afl() -> Result<()> {
    let version = || {
        cargo(&["afl", "--version"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    if version().is_none() {
        step("installing cargo-afl (cargo install cargo-afl --locked)");
        run(&mut cargo(&["install", "cargo-afl", "--locked"]))?;
    }
    let Some(version) = version() else {
        bail!("`cargo afl --version` fails even after `cargo install cargo-afl`");
    };
    if !version.contains("AFL++ version") {
        step("building AFL++ (cargo afl config --build)");
        run(&mut cargo(&["afl", "config", "--build"]))?;
    }
    Ok(())
}

fn target_names(binary: &Path) -> Result<Vec<String>> {
    let out = Command::new(binary)
        .arg("--list")
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} --list failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

fn fuzz_one(binary: &Path, name: &str, secs: u64) -> Result<Stats> {
    let work = setup::target_dir().join("fuzz-afl").join(name);
    let seeds = work.join("seeds");
    let out = work.join("out");
    // A fresh run each time: afl-fuzz refuses to start over an earlier run's output.
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    run(Command::new(binary)
        .arg(name)
        .arg("--write-seeds")
        .arg(&seeds)
        .stdout(Stdio::null()))?;
    step(&format!("{name}: afl-fuzz for {secs} s on one core"));
    let log_path = work.join("afl-fuzz.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut child = cargo(&["afl", "fuzz"])
        .arg("-i")
        .arg(&seeds)
        .arg("-o")
        .arg(&out)
        .args(["-V", &secs.to_string(), "-t", HANG_MS, "-m", "none", "--"])
        .arg(binary)
        .arg(name)
        // A container run as root: no CPU frequency governor to check, no core-dump handler to
        // configure, no cores to pin to (the machine is shared), no curses screen.
        .env("AFL_SKIP_CPUFREQ", "1")
        .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
        .env("AFL_NO_AFFINITY", "1")
        .env("AFL_NO_UI", "1")
        .env("AFL_FUZZER_LOOPCOUNT", LOOP_COUNT)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("the log file")?)
        .stderr(log)
        .spawn()
        .context("starting afl-fuzz (cargo afl fuzz)")?;
    let started = Instant::now();
    // -V counts fuzzing time only: calibration and the build's start-up come on top.
    let give_up = Duration::from_secs(secs + 300);
    let mut last_report = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for afl-fuzz")? {
            break status;
        }
        if started.elapsed() > give_up {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{name}: afl-fuzz still running {} s after its -V {secs}; its log: {}",
                give_up.as_secs(),
                log_path.display()
            );
        }
        if last_report.elapsed() >= REPORT_EVERY {
            last_report = Instant::now();
            if let Some(line) = progress(&out) {
                println!("  {:>5.0}s {line}", started.elapsed().as_secs_f64());
            }
        }
        // Polling a child process, not standing in for synchronisation: afl-fuzz writes its
        // figures to files and says nothing else.
        std::thread::sleep(Duration::from_millis(250));
    };
    let stats_file = out.join("default/fuzzer_stats");
    if !status.success() || !stats_file.exists() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        for line in tail.into_iter().rev() {
            eprintln!("  | {line}");
        }
        bail!(
            "{name}: afl-fuzz failed ({status}); its log: {}",
            log_path.display()
        );
    }
    let stats = read_stats(&stats_file)?;
    println!(
        "{name}: {} executions in {} s ({:.0}/s), corpus {}, edges {} of {}, crashes {}, hangs {}",
        stats.execs,
        stats.secs,
        stats.execs_per_sec,
        stats.corpus,
        stats.edges,
        stats.total_edges,
        stats.crashes,
        stats.hangs
    );
    let findings = workspace_root().join("target/fuzz-findings").join(name);
    for (dir, kind) in [("crashes", "crash"), ("hangs", "hang")] {
        for file in saved_inputs(&out.join("default").join(dir))? {
            std::fs::create_dir_all(&findings)
                .with_context(|| format!("creating {}", findings.display()))?;
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().replace([':', ','], "_"))
                .unwrap_or_default();
            let copy = findings.join(format!("afl-{kind}-{file_name}"));
            std::fs::copy(&file, &copy)
                .with_context(|| format!("copying {} to {}", file.display(), copy.display()))?;
            eprintln!(
                "{name}: {kind} saved to {}\n  reproduce: cargo xtask fuzz {name} --reproduce {}",
                copy.display(),
                copy.display()
            );
        }
    }
    Ok(stats)
}

/// The inputs afl-fuzz saved in `dir` (its `README.txt` aside).
fn saved_inputs(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("id:"))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The last line of `plot_data` as a progress line. afl-fuzz writes it every five seconds, but
/// only from its first minute on: before, the corpus on disk is all there is to show.
fn progress(out: &Path) -> Option<String> {
    plot_line(out).or_else(|| {
        let queued = saved_inputs(&out.join("default/queue")).ok()?.len();
        Some(format!(
            "corpus {queued:>5} (executions are reported after the first minute)"
        ))
    })
}

fn plot_line(out: &Path) -> Option<String> {
    let text = std::fs::read_to_string(out.join("default/plot_data")).ok()?;
    let header = text.lines().next()?.trim_start_matches('#');
    let last = text.lines().last().filter(|l| !l.starts_with('#'))?;
    let columns: HashMap<&str, &str> = header
        .split(',')
        .map(str::trim)
        .zip(last.split(',').map(str::trim))
        .collect();
    let get = |key: &str| columns.get(key).copied().unwrap_or("?");
    Some(format!(
        "{:>10} execs {:>7}/s  corpus {:>5}  edges {:>6}  crashes {}  hangs {}",
        get("total_execs"),
        get("execs_per_sec"),
        get("corpus_count"),
        get("edges_found"),
        get("saved_crashes"),
        get("saved_hangs")
    ))
}

/// Reads afl-fuzz's `fuzzer_stats` (`key : value` lines).
fn read_stats(file: &Path) -> Result<Stats> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    parse_stats(&text).with_context(|| format!("reading {}", file.display()))
}

fn parse_stats(text: &str) -> Result<Stats> {
    let fields: HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let number = |key: &str| -> Result<u64> {
        let value = fields
            .get(key)
            .with_context(|| format!("no {key} in fuzzer_stats"))?;
        value
            .parse()
            .with_context(|| format!("{key} is {value:?}, not a number"))
    };
    Ok(Stats {
        execs: number("execs_done")?,
        execs_per_sec: fields
            .get("execs_per_sec")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        corpus: number("corpus_count")?,
        edges: number("edges_found")?,
        total_edges: number("total_edges").unwrap_or(0),
        crashes: number("saved_crashes")?,
        hangs: number("saved_hangs")?,
        secs: number("run_time").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzer_stats_are_read() {
        let text = "start_time        : 1764758000\nrun_time          : 61\nexecs_done        : 1234567\nexecs_per_sec     : 20238.14\ncorpus_count      : 412\nedges_found       : 3150\ntotal_edges       : 65536\nsaved_crashes     : 0\nsaved_hangs       : 1\nbitmap_cvg        : 4.81%\n";
        let stats = parse_stats(text).expect("stats");
        assert_eq!(stats.execs, 1_234_567);
        assert_eq!(stats.corpus, 412);
        assert_eq!(stats.edges, 3150);
        assert_eq!(stats.total_edges, 65536);
        assert_eq!((stats.crashes, stats.hangs), (0, 1));
        assert_eq!(stats.secs, 61);
    }

    #[test]
    fn fuzzer_stats_without_executions_are_refused() {
        assert!(parse_stats("corpus_count : 3\n").is_err());
    }
}
