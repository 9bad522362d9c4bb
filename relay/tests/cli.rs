//! The `cti-relay` binary's data tools, run as a user runs them.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cti-relay");

#[test]
fn normalize_streams_answers_line_by_line() {
    let mut child = Command::new(BIN)
        .args(["numbers", "normalize", "--region", "CH"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"044 123 45 67\nhello\n")
        .expect("write");
    let out = child.wait_with_output().expect("exits");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "044 123 45 67\t+41441234567\nhello\tinvalid:not_a_number\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 numbers, 1 invalid"));

    let out = Command::new(BIN)
        .args(["numbers", "normalize", "--region", "Atlantis"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an ISO 3166 region"));
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_writes_a_csv_report_of_the_configured_tenant() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = cti_sim::spawn_on(
        listener,
        cti_sim::SimConfig {
            records: 30,
            v2_events: false,
            ..cti_sim::SimConfig::default()
        },
    )
    .expect("simulator");
    let dir = std::env::temp_dir().join(format!("cti-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let report = dir.join("report.csv");
    let url = format!("http://{}", sim.addr);
    let out = tokio::task::spawn_blocking({
        let report = report.clone();
        move || {
            Command::new(BIN)
                .args(["numbers", "audit", "--out"])
                .arg(&report)
                .env("CTI_V2_URL", url)
                .env("CTI_LOG", "warn")
                .output()
                .expect("runs")
        }
    })
    .await
    .expect("joined");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("90 records"), "{stderr}");
    let csv = std::fs::read_to_string(&report).expect("report written");
    assert!(csv.starts_with(
        "collection,id,display_id,field,typed,stored_normalised,expected_e164,problem,action"
    ));

    let out = Command::new(BIN)
        .args(["numbers", "audit", "--tenant", "nobody"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant \"nobody\""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_and_version_answer_and_unknown_flags_are_refused() {
    let out = Command::new(BIN).arg("--version").output().expect("runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("cti-relay {}", env!("CARGO_PKG_VERSION"))
    );

    let out = Command::new(BIN).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("serve") && help.contains("numbers"), "{help}");

    // Every variable the relay reads is in the README's table (a unit test of the config
    // module), and the table is what `serve --help` prints.
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "CTI_LISTEN",
        "PORT",
        "REDIS_URL",
        "VCAP_SERVICES",
        "CTI_TOKEN_KEY",
        "CTI_LOG",
    ] {
        assert!(
            help.contains(&format!("\n  {var}")),
            "{var} not in:\n{help}"
        );
    }

    // A typo must not start a relay on the demo's defaults.
    for wrong in [&["--port", "80"][..], &["serve", "--verbose"], &["sever"]] {
        let out = Command::new(BIN).args(wrong).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{wrong:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Usage: cti-relay"), "{wrong:?}: {err}");
    }
}
