//! Installing what builds and tests need, skipping whatever is already there.
//!
//! Versions come from the places that decide them: trunk is pinned here (newer releases need a
//! newer rustc), wasm-bindgen-cli must equal the `wasm-bindgen` version in Cargo.lock.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

pub(crate) const TRUNK_VERSION: &str = "0.21.14";
const SYSTEM_PACKAGES: &[(&str, &str)] = &[
    ("chromium", "/usr/bin/chromium"),
    // Fetches axe-core from the npm registry for the accessibility tests.
    ("curl", "/usr/bin/curl"),
    ("chromium-driver", "/usr/bin/chromedriver"),
    ("redis-server", "/usr/bin/redis-server"),
    // A real XMPP server for the Cisco Finesse tests (its notification service is XMPP pubsub).
    ("prosody", "/usr/bin/prosody"),
    // A real SIP PBX (registrar, proxy, RFC 4235 dialog-event presence server) for the SIP
    // tests, and SIPp as its phones and callers.
    ("kamailio", "/usr/sbin/kamailio"),
    (
        "kamailio-presence-modules",
        "/usr/share/doc/kamailio-presence-modules",
    ),
    ("sip-tester", "/usr/bin/sipp"),
    // The C compiler for the static (musl) relay of `cargo xtask dist`: ring compiles C.
    ("musl-tools", "/usr/bin/musl-gcc"),
    // Kamailio's TLS module, for SIP over TLS.
    (
        "kamailio-tls-modules",
        "/usr/share/doc/kamailio-tls-modules",
    ),
];

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR` (relative to the workspace root, where
/// [`cargo`] runs), else the workspace's `target/`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

pub(crate) fn step(message: &str) {
    println!("==> {message}");
}

/// Runs a command, streaming its output; fails with the command line when it fails.
pub(crate) fn run(command: &mut Command) -> Result<()> {
    let line = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("could not start {line}"))?;
    if !status.success() {
        bail!("{line} failed with {status}");
    }
    Ok(())
}

/// A cargo command from the workspace root, with RUSTFLAGS removed: it would silently replace
/// the wasm32 rustflags of `.cargo/config.toml`.
pub(crate) fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new("cargo");
    command
        .args(args)
        .current_dir(workspace_root())
        .env_remove("RUSTFLAGS")
        .env("PATH", path_with_cargo_bin());
    command
}

/// A `trunk build` of the widget from the workspace root (Trunk.toml), offline and with the
/// wasm-bindgen set-up installs: what the tests serve and what `dist` ships are one build recipe.
/// trunk's arguments for the widget's and admin page's release builds: the size-first profile
/// of the root Cargo.toml (`widget-release`).
pub(crate) const RELEASE_WASM: &[&str] = &["--release", "--cargo-profile", "widget-release"];

pub(crate) fn trunk_build(args: &[&str]) -> Command {
    let mut command = Command::new(tool("trunk"));
    command
        .args(["build", "--offline"])
        .args(args)
        .current_dir(workspace_root())
        .env_remove("RUSTFLAGS")
        .env("TRUNK_SKIP_VERSION_CHECK", "true")
        .env("PATH", path_with_cargo_bin());
    command
}

/// Where trunk writes the admin page for the tests and the demo, from the workspace root.
pub(crate) const ADMIN_DIST: &str = "admin/dist";

/// A `trunk build` of the admin page (`admin/index.html`) into `dist`, served at `/admin/`: the
/// widget's recipe (Trunk.toml, offline, the same tools) with the page, output and URL of its own.
pub(crate) fn trunk_build_admin(dist: &str, args: &[&str]) -> Command {
    // The page comes after the options: right after `--offline` it would be read as its value.
    let mut command = trunk_build(&[
        "--dist",
        dist,
        "--public-url",
        "/admin/",
        "admin/index.html",
    ]);
    command.args(args);
    command
}

fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin").join(name)
}

/// The tool on PATH, else in cargo's bin directory.
pub(crate) fn tool(name: &str) -> PathBuf {
    let installed = cargo_bin(name);
    if installed.exists() {
        installed
    } else {
        PathBuf::from(name)
    }
}

pub(crate) fn wasm_target() -> Result<()> {
    rust_target("wasm32-unknown-unknown")
}

/// A rustup target, added when it is not installed yet.
fn rust_target(target: &str) -> Result<()> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == target) {
        return Ok(());
    }
    step(&format!("installing the {target} target"));
    run(Command::new("rustup").args(["target", "add", target]))
}

/// The target whose binaries need no C library at run time (`cargo xtask dist`).
pub(crate) const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// The musl target and its C compiler, for the static relay `cargo xtask dist` builds.
pub(crate) fn musl_toolchain() -> Result<()> {
    rust_target(MUSL_TARGET)?;
    install_package("musl-tools")
}

pub(crate) fn trunk() -> Result<()> {
    let version = output(Command::new(tool("trunk")).arg("--version")).unwrap_or_default();
    if version.split_whitespace().nth(1) == Some(TRUNK_VERSION) {
        return Ok(());
    }
    step(&format!(
        "installing trunk {TRUNK_VERSION} (several minutes, once per machine)"
    ));
    run(Command::new("cargo").args(["install", "--locked", &format!("trunk@{TRUNK_VERSION}")]))
}

/// The `wasm-bindgen` version Cargo.lock resolved; the CLI must match it exactly.
pub(crate) fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock"))
        .context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
        {
            return Ok(version.trim_end_matches('"').to_string());
        }
    }
    bail!("Cargo.lock has no wasm-bindgen package")
}

pub(crate) fn wasm_bindgen_cli() -> Result<()> {
    let wanted = locked_wasm_bindgen()?;
    let have = output(Command::new(tool("wasm-bindgen")).arg("--version")).unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(wanted.as_str()) {
        return Ok(());
    }
    step(&format!(
        "installing wasm-bindgen-cli {wanted} to match Cargo.lock (several minutes, once per machine)"
    ));
    // Its own lock file pins a crate release the registry no longer serves, so no --locked.
    run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", &wanted]))
}

/// Debian packages for the browser tests, Redis and Prosody; installed with apt-get when running as root.
pub(crate) fn system_packages() -> Result<()> {
    install_missing(SYSTEM_PACKAGES)
}

/// Prosody alone: the demo's simulated Finesse notifies through it.
pub(crate) fn prosody() -> Result<()> {
    install_package("prosody")
}

/// redis-server alone: the chaos run needs nothing else installed.
pub(crate) fn redis_server() -> Result<()> {
    install_package("redis-server")
}

/// One of [`SYSTEM_PACKAGES`], when missing.
fn install_package(name: &str) -> Result<()> {
    let package: Vec<(&str, &str)> = SYSTEM_PACKAGES
        .iter()
        .copied()
        .filter(|(package, _)| *package == name)
        .collect();
    install_missing(&package)
}

fn install_missing(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, path)| !Path::new(path).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = output(Command::new("id").arg("-u")).as_deref() == Some("0");
    if !is_root {
        bail!(
            "missing system packages: {}; install them with `sudo apt-get install -y {}`",
            missing.join(", "),
            missing.join(" ")
        );
    }
    step(&format!("installing {} with apt-get", missing.join(", ")));
    run(Command::new("apt-get")
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Everything the widget build needs.
pub(crate) fn widget_toolchain() -> Result<()> {
    wasm_target()?;
    trunk()?;
    wasm_bindgen_cli()
}

/// The phonenumbers release whose metadata matches the Rust port's (9.0.42): the oracle of the
/// differential normalization test.
const PHONENUMBERS_VERSION: &str = "9.0.42";

/// A virtualenv at `.venv` with Google libphonenumber's Python port, pinned.
pub(crate) fn phone_oracle() -> Result<()> {
    let venv = workspace_root().join(".venv");
    let python = venv.join("bin/python3");
    let have = output(
        Command::new(&python).args(["-c", "import phonenumbers; print(phonenumbers.__version__)"]),
    );
    if have.as_deref() == Some(PHONENUMBERS_VERSION) {
        return Ok(());
    }
    step(&format!(
        "installing the phone-number oracle (phonenumbers {PHONENUMBERS_VERSION}) into .venv"
    ));
    if !python.exists() {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        if !matches!(created, Ok(s) if s.success()) {
            // Debian's python3 ships venv separately.
            if output(Command::new("id").arg("-u")).as_deref() != Some("0") {
                bail!(
                    "python3 -m venv failed; install python3-venv (`sudo apt-get install -y python3-venv`)"
                );
            }
            run(Command::new("apt-get")
                .args(["install", "-y", "-qq", "python3-venv"])
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
            run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        }
    }
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        &format!("phonenumbers=={PHONENUMBERS_VERSION}"),
    ]))
}

/// The axe-core release the accessibility tests inject into the widget (MPL-2.0; not bundled).
const AXE_CORE_VERSION: &str = "4.14.1";
/// The registry's `dist.integrity` of that release's tarball: a download that differs is refused.
const AXE_CORE_INTEGRITY: &str = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==";

/// axe-core's browser build (`axe.min.js`) in the target directory, downloaded from the npm
/// registry and checked against [`AXE_CORE_INTEGRITY`] once; its path. The tests read the file
/// and inject its text into the page, so no node or npm is needed at run time.
pub(crate) fn axe_core() -> Result<PathBuf> {
    let dir = target_dir().join(format!("axe-core-{AXE_CORE_VERSION}"));
    let script = dir.join("axe.min.js");
    if script.exists() {
        return Ok(script);
    }
    step(&format!(
        "fetching axe-core {AXE_CORE_VERSION} for the accessibility tests"
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tarball = dir.join(format!("axe-core-{AXE_CORE_VERSION}.tgz"));
    let url = format!("https://registry.npmjs.org/axe-core/-/axe-core-{AXE_CORE_VERSION}.tgz");
    run(Command::new("curl")
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--output",
        ])
        .arg(&tarball)
        .arg(&url))
    .context("downloading axe-core (needs curl and the npm registry)")?;
    let bytes =
        std::fs::read(&tarball).with_context(|| format!("reading {}", tarball.display()))?;
    let integrity = sri_sha512(&bytes);
    if integrity != AXE_CORE_INTEGRITY {
        let _ = std::fs::remove_file(&tarball);
        bail!(
            "{url} does not match its pinned integrity: expected {AXE_CORE_INTEGRITY}, got {integrity}"
        );
    }
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir)
        .args(["--strip-components=1", "package/axe.min.js"]))
    .context("extracting axe.min.js")?;
    let _ = std::fs::remove_file(&tarball);
    if !script.exists() {
        bail!("the axe-core tarball held no package/axe.min.js");
    }
    Ok(script)
}

/// A Subresource Integrity string (`sha512-<base64>`), the form npm publishes.
fn sri_sha512(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha512::digest(bytes);
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

pub(crate) fn all() -> Result<()> {
    widget_toolchain()?;
    musl_toolchain()?;
    system_packages()?;
    phone_oracle()?;
    axe_core()?;
    step("set-up complete");
    Ok(())
}

/// PATH with cargo's bin directory first, so trunk finds the wasm-bindgen we installed.
pub(crate) fn path_with_cargo_bin() -> std::ffi::OsString {
    let bin = cargo_bin("");
    let mut paths = vec![bin];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_default()
}
