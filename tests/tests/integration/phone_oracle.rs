//! Differential test: our E.164 normalization against Google's libphonenumber (the `phonenumbers`
//! Python port, pinned to the metadata release our Rust port carries), on thousands of inputs
//! over dozens of regions, in every format users and PBXs produce.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use cti_relay::numbers::{DefaultRegion, normalize};

/// Inputs where we knowingly answer differently from the oracle, with the reason. Empty: full
/// agreement is the bar.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[];

fn oracle_python() -> PathBuf {
    std::env::var_os("CTI_PHONE_ORACLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3"))
}

#[test]
fn normalization_agrees_with_libphonenumber() {
    let python = oracle_python();
    assert!(
        python.exists(),
        "{} not found: `cargo xtask test` installs the phonenumbers oracle into .venv",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oracle/phone_cases.py");
    let output = Command::new(&python)
        .arg(&script)
        .output()
        .expect("running the oracle");
    assert!(
        output.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");

    let mut total = 0;
    let mut regions = BTreeMap::new();
    let mut mismatches = Vec::new();
    for line in text.lines() {
        let mut fields = line.split('\t');
        let (Some(region), Some(input), Some(expected)) =
            (fields.next(), fields.next(), fields.next())
        else {
            panic!("malformed oracle line {line:?}");
        };
        total += 1;
        *regions.entry(region.to_string()).or_insert(0) += 1;
        let region_parsed = DefaultRegion::parse(region).expect("oracle regions are real");
        let ours = match normalize(input, &region_parsed) {
            Ok(n) => n.e164,
            Err(e) => format!("invalid:{}", e.code()),
        };
        let known = KNOWN_DIFFERENCES
            .iter()
            .any(|(r, i, _)| *r == region && *i == input);
        if ours != expected && !known {
            mismatches.push(format!(
                "{region}\t{input:?}\toracle {expected}\tours {ours}"
            ));
        }
    }
    assert!(total >= 5_000, "only {total} cases");
    assert!(regions.len() >= 40, "only {} regions", regions.len());
    assert!(
        mismatches.is_empty(),
        "{} of {total} inputs disagree with libphonenumber:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
