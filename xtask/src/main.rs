//! `cargo xtask <command>`: the project's set-up and orchestration, in Rust so it runs wherever
//! cargo does.
//!
//! - `demo`: installs what the widget build needs, builds everything, starts the simulator and
//!   the relay on their embedded defaults, prints the URL to open; Ctrl-C stops both. The demo
//!   tenants ring through the simulated generic PBX, Genesys Cloud, RingCentral, Microsoft Teams,
//!   Webex Calling and Cisco Finesse (whose notifications go through a Prosody the simulator
//!   starts; without Prosody the demo runs without Finesse and says why) (`--provider` picks
//!   the host page's first).
//! - `test`: installs what the tests need (browser, drivers, redis-server, the WASM toolchain),
//!   then runs every test: lint, unit and integration tests, the widget's and the admin page's
//!   browser tests, and the
//!   end-to-end tests in headless Chromium.
//! - `chaos`: the long chaos run: calls through two relay instances on one Redis while one is
//!   killed and started again, Redis restarts, V2 answers 500 and 429 and the widgets'
//!   connections are cut; prints lost and duplicated activities and pops, fails unless all are 0.
//! - `bench`: benchmarks in release mode, printing percentiles (`numbers`, `activities`, `push`,
//!   `index`, `pop`), and the sizes of the release relay binary and widget wasm (`sizes`).
//! - `fuzz`: the relay's parsers of untrusted input under fuzzing (`relay/src/fuzz`), by its own
//!   behaviour-guided driver or, with `--engine afl`, under AFL++ with instrumented coverage.
//! - `dist`: what `cf push` uploads, in `dist/` (a static relay and the release builds of the
//!   widget and the admin page).

mod afl;
mod dist;
mod setup;
mod sip;
mod tasks;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo xtask <command> --help` is the same text as `cargo xtask help`: no command runs.
    if args.iter().skip(1).any(|a| a == "--help" || a == "-h") {
        print_help();
        return ExitCode::SUCCESS;
    }
    let result = match args.first().map(String::as_str) {
        Some("demo") => tasks::demo(&args[1..]),
        Some("test") => tasks::test(&args[1..]),
        Some("bench") => tasks::bench(&args[1..]),
        Some("fuzz") => tasks::fuzz(&args[1..]),
        Some("chaos") => tasks::chaos(&args[1..]),
        Some("dist") => dist::dist(&args[1..]).map(drop),
        Some("setup") => match args.get(1) {
            None => setup::all(),
            Some(arg) => Err(anyhow::anyhow!(
                "setup takes no arguments ({arg:?}); run `cargo xtask help`"
            )),
        },
        Some("--version") | Some("-V") => {
            println!("xtask {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("help") | Some("--help") | Some("-h") | None => {
            print_help();
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?}; run `cargo xtask help`"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <command>\n\n\
         Commands:\n  \
         demo    build and run relay + simulator on embedded defaults, print the URL to open;\n          `--provider generic|genesys|ringcentral|teams|webex|finesse` picks the telephony the\n          host page rings through first (all are there, switchable on the page)\n  \
         test    install test prerequisites, then run every test (add --no-lint to skip fmt/clippy)\n  \
         chaos   calls through two relays while one is killed, Redis restarts, V2 fails and\n          widget connections are cut; prints lost/duplicated activities and pops, fails unless\n          all are 0 (CTI_CHAOS_SECS, default 120; CTI_CHAOS_RATE calls/s, default 2)\n  \
         bench   benchmarks with percentiles: `bench numbers` (normalization, index lookups, index\n          build of 100,000 simulated records; CTI_BENCH_RECORDS sets records per collection),\n          `bench activities` (finished calls to V2 activities per second; CTI_BENCH_CALLS),\n          `bench push` (webhook -> rep's socket latency, memory per connected rep, CPU per\n          1,000 calls, on release relay processes; `bench push -- --agents N --rate R --secs D\n          [--redis] [--instances 2]`), `bench pop` (webhook -> NOTIFY at the V2 host page in\n          headless Chromium; `bench pop -- --calls N`, default 100), `bench index` (index build\n          time, memory and lookup percentiles in memory and Redis at 100,000 and 1,000,000\n          records, and the shipped relay's peak memory over a build and a rebuild; `bench index\n          -- --records N`), `bench sizes` (relay binary and widget wasm\n          of the release builds); `bench` alone runs them all\n  \
         fuzz    fuzz the parsers of untrusted input: `fuzz` lists the targets, `fuzz <target>|all\n          --secs N` (or `--inputs N`, `--seed N`) runs them; a panic or hang saves the input\n          to target/fuzz-findings and prints it; `fuzz <target> --reproduce FILE` runs it again;\n          `--engine afl` fuzzes under AFL++ guided by instrumented coverage (installs cargo-afl,\n          needs a C compiler; `--secs N` per target, default 60, one core)\n  \
         dist    build what `cf push` uploads into dist/ (manifest.yml): the relay as a static\n          x86_64-unknown-linux-musl release binary and the release builds of the widget and the\n          admin page; prints sizes\n  \
         setup   only install prerequisites (wasm32 and musl targets, trunk, wasm-bindgen-cli,\n          chromium, chromium-driver, redis-server, prosody, kamailio,\n          kamailio-presence-modules, kamailio-tls-modules, sip-tester, musl-tools, and\n          the pinned axe-core the accessibility tests inject, checked against its integrity)\n  \
         help    this text (also `<command> --help`); `--version` prints the version"
    );
}
