//! The `cti-sim` binary as a user runs it: it answers `--help` and `--version` and refuses a
//! mistyped flag, instead of starting a simulator on its defaults.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cti-sim");

#[test]
fn help_lists_the_variables_and_nothing_starts() {
    let out = Command::new(BIN).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "SIM_LISTEN",
        "SIM_PROVIDERS",
        "SIM_FINESSE_PROSODY",
        "RUST_LOG",
    ] {
        assert!(
            help.contains(&format!("\n  {var}")),
            "{var} not in:\n{help}"
        );
    }
    assert!(!help.contains("listening on"), "{help}");

    let out = Command::new(BIN).arg("--version").output().expect("runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("cti-sim {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_flags_are_refused_with_usage() {
    for wrong in [&["--port", "8090"][..], &["demo"]] {
        let out = Command::new(BIN).args(wrong).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{wrong:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Usage: cti-sim"), "{wrong:?}: {err}");
    }
}
