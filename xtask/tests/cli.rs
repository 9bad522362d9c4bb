//! `cargo xtask` as a user types it: help and version answer, and a mistyped flag stops before
//! anything is installed, built or started.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_xtask");

#[test]
fn help_and_version_answer() {
    for args in [
        &["help"][..],
        &["--help"],
        &["demo", "--help"],
        &["test", "-h"],
        &[],
    ] {
        let out = Command::new(BIN).args(args).output().expect("runs");
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("cargo xtask <command>"), "{args:?}: {help}");
    }
    let out = Command::new(BIN).arg("--version").output().expect("runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("xtask {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_commands_and_flags_are_refused_with_usage() {
    for (args, says) in [
        (&["tset"][..], "unknown command"),
        (&["test", "--nolint"], "usage: cargo xtask test"),
        (&["test", "--no-lint", "extra"], "usage: cargo xtask test"),
        (&["setup", "--all"], "setup takes no arguments"),
        (&["demo", "--provder", "teams"], "usage: cargo xtask demo"),
        (&["chaos", "--secs"], "chaos takes no arguments"),
    ] {
        let out = Command::new(BIN).args(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
