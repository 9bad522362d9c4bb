//! `cti-fuzz`: runs the relay's fuzz targets (`cargo xtask fuzz` builds and starts it).
//!
//! `cti-fuzz` lists the targets; `cti-fuzz <target>|all [--secs N | --inputs N]` fuzzes them,
//! printing progress every second and a summary; a panic or a hang stops the run with the input
//! saved under `--out` and printed, and the command that reproduces it;
//! `cti-fuzz <target> --reproduce FILE` runs one saved input again.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use cti_relay::fuzz::{self, Finding, Options, Target};

#[derive(Debug, Parser)]
#[command(about = "Fuzzes the relay's parsers of untrusted input")]
struct Args {
    /// A target's name, or `all`; none lists the targets.
    target: Option<String>,
    /// Seconds per target (default 10 unless --inputs is given).
    #[arg(long)]
    secs: Option<u64>,
    /// Inputs per target (deterministic with --seed).
    #[arg(long)]
    inputs: Option<u64>,
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// An input running longer than this many milliseconds is a hang.
    #[arg(long, default_value_t = 1000)]
    hang_ms: u64,
    /// Where a crashing or hanging input is saved.
    #[arg(long, default_value = "target/fuzz-findings")]
    out: PathBuf,
    /// Runs the input in this file once through the target, instead of fuzzing.
    #[arg(long)]
    reproduce: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cti-fuzz: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(name) = args.target.as_deref() else {
        println!("fuzz targets (`cargo xtask fuzz <target>|all --secs N`):");
        for target in fuzz::targets() {
            println!("  {:<18} {}", target.name, target.about);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let chosen: Vec<&'static Target> = if name == "all" {
        fuzz::targets().iter().collect()
    } else {
        let Some(target) = fuzz::target(name) else {
            bail!("no target {name:?}; run `cargo xtask fuzz` for the list");
        };
        vec![target]
    };
    if let Some(file) = &args.reproduce {
        let [target] = chosen.as_slice() else {
            bail!("--reproduce needs one target, not `all`");
        };
        let input = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        println!("input: b\"{}\"", fuzz::escaped(&input));
        return Ok(match fuzz::reproduce(target, &input) {
            Ok(outcome) => {
                println!("{}: no panic; outcome {outcome}", target.name);
                ExitCode::SUCCESS
            }
            Err(message) => {
                println!("{}: panicked: {message}", target.name);
                ExitCode::FAILURE
            }
        });
    }
    let options = Options {
        seed: args.seed,
        max_inputs: args.inputs,
        max_time: match (args.secs, args.inputs) {
            (Some(secs), _) => Some(Duration::from_secs(secs)),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(10)),
        },
        hang_after: Duration::from_millis(args.hang_ms),
        ..Options::default()
    };
    let mut total = 0;
    for target in chosen {
        println!("{}: {}", target.name, target.about);
        let result = fuzz::run(target, &options, |p| {
            println!(
                "  {:>6.0}s {:>10} inputs {:>9.0}/s  corpus {:>5}  outcomes {:>5}",
                p.elapsed.as_secs_f64(),
                p.inputs,
                p.per_sec(),
                p.corpus,
                p.outcomes
            );
        });
        match result {
            Ok(summary) => {
                let p = summary.progress;
                total += p.inputs;
                println!(
                    "{}: {} inputs in {:.1}s ({:.0}/s), {} distinct outcomes, no panic, no hang",
                    target.name,
                    p.inputs,
                    p.elapsed.as_secs_f64(),
                    p.per_sec(),
                    summary.outcomes.len()
                );
            }
            Err(finding) => {
                report(target, &finding, &args.out)?;
                // A hang leaves its thread running: only the process's end stops it.
                std::process::exit(1);
            }
        }
    }
    println!("total: {total} inputs, no panic, no hang");
    Ok(ExitCode::SUCCESS)
}

fn report(target: &Target, finding: &Finding, out: &std::path::Path) -> anyhow::Result<()> {
    use sha2::Digest as _;
    let input = finding.input();
    let hash = hex::encode(&sha2::Sha256::digest(input)[..8]);
    let kind = match finding {
        Finding::Panic { .. } => "crash",
        Finding::Hang { .. } => "hang",
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let file = out.join(format!("{}-{kind}-{hash}", target.name));
    std::fs::write(&file, input).with_context(|| format!("writing {}", file.display()))?;
    eprintln!("{}: {finding}", target.name);
    eprintln!(
        "input ({} bytes): b\"{}\"",
        input.len(),
        fuzz::escaped(input)
    );
    eprintln!("saved to {}", file.display());
    eprintln!(
        "reproduce: cargo xtask fuzz {} --reproduce {}",
        target.name,
        file.display()
    );
    Ok(())
}
