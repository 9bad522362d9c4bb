//! `cti-fuzz-afl`: the relay's fuzz targets (`cti_relay::fuzz`) as AFL++ targets, guided by
//! coverage instrumented into the build (`cargo xtask fuzz <target> --engine afl` builds it with
//! `cargo afl build` and starts `afl-fuzz`).
//!
//! `cti-fuzz-afl <target>` runs the target in AFL++'s persistent mode: its state (a runtime and
//! a router, a tracker) is built once before the fork server starts, then each input from
//! afl-fuzz goes through the same target function as in `cti-fuzz`. A panic anywhere in the
//! process aborts it, which AFL++ records as a crash; an input running over afl-fuzz's `-t`
//! limit is a hang. `cti-fuzz-afl <target> --write-seeds DIR` writes the target's sample
//! payloads into DIR, the corpus afl-fuzz starts from; `cti-fuzz-afl --list` names the targets.
//!
//! Only `cargo afl build` sets `--cfg fuzzing` and links AFL++'s runtime; any other build is a
//! stub that says how to build the real one, so the workspace builds without AFL++.

#[cfg(fuzzing)]
fn main() -> std::process::ExitCode {
    use std::process::ExitCode;

    let args: Vec<String> = std::env::args().skip(1).collect();
    if args == ["--list"] {
        for target in cti_relay::fuzz::targets() {
            println!("{}", target.name);
        }
        return ExitCode::SUCCESS;
    }
    let target = match args.first().map(|name| cti_relay::fuzz::target(name)) {
        Some(Some(target)) => target,
        Some(None) | None => {
            eprintln!("usage: cti-fuzz-afl --list | <target> [--write-seeds DIR]; targets:");
            for target in cti_relay::fuzz::targets() {
                eprintln!("  {:<18} {}", target.name, target.about);
            }
            return ExitCode::FAILURE;
        }
    };
    match &args[1..] {
        [] => {}
        [flag, dir] if flag == "--write-seeds" => {
            return match cti_relay::fuzz::write_seeds(target, std::path::Path::new(dir)) {
                Ok(files) => {
                    println!("{}: {} samples in {dir}", target.name, files.len());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "cti-fuzz-afl: writing {}'s samples to {dir}: {e}",
                        target.name
                    );
                    ExitCode::FAILURE
                }
            };
        }
        other => {
            eprintln!("cti-fuzz-afl: unexpected arguments {other:?}");
            return ExitCode::FAILURE;
        }
    }
    // Built before the fork server starts: every child begins from this state.
    let mut runner = std::panic::AssertUnwindSafe(target.runner());
    afl::fuzz!(|data: &[u8]| {
        let run = &mut *runner;
        // The outcome guides only the behaviour-driven engine: here coverage does.
        let _ = run(data);
    });
    ExitCode::SUCCESS
}

#[cfg(not(fuzzing))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "cti-fuzz-afl holds fuzz targets only when built by `cargo afl build` (with coverage \
         instrumentation): run `cargo xtask fuzz <target> --engine afl`"
    );
    std::process::ExitCode::FAILURE
}
