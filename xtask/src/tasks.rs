//! The commands themselves: `demo`, `test`, `bench` and `fuzz`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::setup::{self, cargo, run, step, workspace_root};

const RELAY_ADDR: &str = "127.0.0.1:8080";
const SIM_ADDR: &str = "127.0.0.1:8090";
const DEMO_AGENT: &str = "alice@example.com";
/// The simulated Finesse's notification service (a Prosody the simulator starts): the relay's
/// demo tenant `demo-finesse` logs in here (its `finesse::DEMO_XMPP_PORT`).
const FINESSE_XMPP_ADDR: &str = "127.0.0.1:15222";

/// Builds the widget into `widget/dist` with trunk (offline: no downloads, exact tool versions).
pub(crate) fn build_widget() -> Result<()> {
    step("building the widget (trunk)");
    run(&mut setup::trunk_build(&[]))?;
    let index = workspace_root().join("widget/dist/index.html");
    if !index.exists() {
        bail!("trunk finished but {} is missing", index.display());
    }
    Ok(())
}

/// Builds the admin page into `admin/dist` with trunk, as the widget is built.
pub(crate) fn build_admin() -> Result<()> {
    step("building the admin page (trunk)");
    run(&mut setup::trunk_build_admin(setup::ADMIN_DIST, &[]))?;
    let index = workspace_root().join(setup::ADMIN_DIST).join("index.html");
    if !index.exists() {
        bail!("trunk finished but {} is missing", index.display());
    }
    Ok(())
}

fn ensure_free(addr: &str, what: &str) -> Result<()> {
    TcpListener::bind(addr)
        .map(drop)
        .with_context(|| format!("{addr} is in use; stop whatever listens there to run the {what}"))
}

/// A minimal HTTP GET so the orchestrator needs no HTTP client: the status code, if any answer.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

struct Children(Vec<(&'static str, Child)>);

impl Children {
    fn exited(&mut self) -> Option<&'static str> {
        self.0
            .iter_mut()
            .find_map(|(name, child)| matches!(child.try_wait(), Ok(Some(_))).then_some(*name))
    }

    /// SIGINT first (both binaries shut down gracefully on it), SIGKILL after 5 s.
    fn stop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, child) in &mut self.0 {
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !matches!(child.try_wait(), Ok(Some(_))) {
                eprintln!("{name} did not stop in time; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The demo's telephony: each provider's simulator with the relay tenant configured for it.
const DEMO_PROVIDERS: &[(&str, &str)] = &[
    ("generic", "demo"),
    ("genesys", "demo-genesys"),
    ("ringcentral", "demo-ringcentral"),
    ("teams", "demo-teams"),
    ("webex", "demo-webex"),
    ("asterisk", "demo-asterisk"),
    ("freeswitch", "demo-freeswitch"),
    ("finesse", "demo-finesse"),
    // A real Kamailio with SIPp phones (`crate::sip`), when its packages are installed.
    ("sip", "demo-sip"),
];

/// Whether the demo can offer Finesse: its notifications need a real XMPP server, Prosody,
/// installed (set-up installs it when running as root) and its port free. Why not, otherwise.
fn finesse_offerable() -> Result<(), String> {
    setup::prosody().map_err(|e| format!("{e:#}"))?;
    ensure_free(
        FINESSE_XMPP_ADDR,
        "simulated Finesse's XMPP server (Prosody)",
    )
    .map_err(|e| format!("{e:#}"))
}

pub(crate) fn demo(args: &[String]) -> Result<()> {
    let provider = match args {
        [] => "generic".to_string(),
        [flag, name] if flag == "--provider" => name.clone(),
        [flag] if flag.starts_with("--provider=") => flag["--provider=".len()..].to_string(),
        _ => bail!(
            "usage: cargo xtask demo [--provider {}]",
            DEMO_PROVIDERS
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join("|")
        ),
    };
    if !DEMO_PROVIDERS.iter().any(|(name, _)| *name == provider) {
        bail!(
            "unknown provider {provider:?}; expected one of {}",
            DEMO_PROVIDERS
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    setup::widget_toolchain()?;
    let finesse = finesse_offerable();
    if let Err(why) = &finesse {
        if provider == "finesse" {
            bail!("the demo cannot offer Finesse: {why}");
        }
        step(&format!("Finesse is not offered in this demo: {why}"));
    }
    build_widget()?;
    build_admin()?;
    step("building the relay and the simulator");
    run(&mut cargo(&[
        "build",
        "--bin",
        "cti-relay",
        "--bin",
        "cti-sim",
    ]))?;
    ensure_free(RELAY_ADDR, "relay")?;
    ensure_free(SIM_ADDR, "simulator")?;

    let mut children = Children(Vec::new());
    step("starting the SIP PBX (Kamailio) and the demo reps' SIP phones");
    let sip = match crate::sip::start() {
        Ok(sip_children) => {
            children.0.extend(sip_children);
            true
        }
        Err(e) if provider == "sip" => bail!("the demo cannot offer SIP: {e:#}"),
        Err(e) => {
            step(&format!("SIP is not offered in this demo: {e:#}"));
            false
        }
    };
    let offered: Vec<(&str, &str)> = DEMO_PROVIDERS
        .iter()
        .copied()
        .filter(|(name, _)| *name != "finesse" || finesse.is_ok())
        .filter(|(name, _)| *name != "sip" || sip)
        .collect();
    let sim_providers = offered
        .iter()
        .map(|(name, tenant)| format!("{name}={tenant}"))
        .collect::<Vec<_>>()
        .join(",");
    // The relay's demo tenants besides the generic one (`demo-<name>`).
    let relay_providers = offered
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| *name != "generic")
        .collect::<Vec<_>>()
        .join(",");

    let bin = |name: &str| setup::target_dir().join("debug").join(name);
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("installing the Ctrl-C handler")?;

    step("starting the simulator and the relay");
    let mut sim = Command::new(bin("cti-sim"));
    sim.env("SIM_LISTEN", SIM_ADDR)
        .env("SIM_RELAY_URL", format!("http://{RELAY_ADDR}"))
        .env("SIM_PROVIDERS", &sim_providers)
        .env("SIM_PROVIDER", &provider);
    if sip {
        // The host page's SIP calls: SIPp callers through the demo's Kamailio.
        sim.env("SIM_SIP_PROXY", crate::sip::ADDR)
            .env("SIM_SIPP_SCENARIOS", crate::sip::scenarios());
    }
    if finesse.is_ok() {
        // The simulator starts Prosody there and publishes Finesse's Dialog updates into it.
        let port = FINESSE_XMPP_ADDR.rsplit(':').next().unwrap_or_default();
        sim.env("SIM_FINESSE_PROSODY", port);
    }
    children
        .0
        .push(("simulator", sim.spawn().context("starting cti-sim")?));
    children.0.push((
        "relay",
        Command::new(bin("cti-relay"))
            .env("CTI_LISTEN", RELAY_ADDR)
            .env("CTI_WIDGET_DIR", workspace_root().join("widget/dist"))
            .env("CTI_ADMIN_DIR", workspace_root().join(setup::ADMIN_DIST))
            .env("CTI_DEMO_PROVIDERS", &relay_providers)
            .spawn()
            .context("starting cti-relay")?,
    ));

    let deadline = Instant::now() + Duration::from_secs(60);
    while http_status(RELAY_ADDR, "/readyz") != Some(200) {
        if let Some(name) = children.exited() {
            children.stop();
            bail!("the {name} exited during start-up; its log is above");
        }
        if Instant::now() > deadline || stop_rx.try_recv().is_ok() {
            children.stop();
            bail!("the relay did not become ready within 60 s (see the log above)");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if finesse.is_ok() && TcpStream::connect(FINESSE_XMPP_ADDR).is_err() {
        println!(
            "  Finesse is not offered: the simulator could not start Prosody (its log above says why)."
        );
    }
    println!();
    println!("  CTI demo is running. Open:");
    println!();
    println!("      http://{SIM_ADDR}/sim/host/?agent={DEMO_AGENT}&provider={provider}");
    println!();
    println!("  (simulated V2 Agent Desktop with the widget; place a call from its panel,");
    println!(
        "  through the telephony chosen on the page: generic PBX, Genesys Cloud, RingCentral,"
    );
    println!(
        "  Microsoft Teams, Webex Calling, Asterisk, FreeSWITCH{}{})",
        if finesse.is_ok() {
            ", Cisco Finesse"
        } else {
            ""
        },
        if sip {
            ", a SIP PBX (a real Kamailio; the reps' SIPp phones answer after 4 s)"
        } else {
            ""
        }
    );
    println!();
    println!("  The tenant admin page (status, backlog, failed activities, connected reps):");
    println!();
    println!("      http://{RELAY_ADDR}/admin/");
    println!();
    println!("  (\"Sign in\" goes through the simulated identity provider; the demo tenants come");
    println!("  from the embedded tenants file, so their settings are shown, not changed, there)");
    println!();
    println!("  Press Ctrl-C to stop.");
    println!();
    loop {
        if stop_rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            step("stopping");
            children.stop();
            return Ok(());
        }
        if let Some(name) = children.exited() {
            children.stop();
            bail!("the {name} stopped unexpectedly; its log is above");
        }
    }
}

pub(crate) fn test(args: &[String]) -> Result<()> {
    let lint = match args {
        [] => true,
        [flag] if flag == "--no-lint" => false,
        _ => bail!("usage: cargo xtask test [--no-lint] (got {args:?})"),
    };
    let started = Instant::now();
    setup::all()?;
    let axe = setup::axe_core()?;
    if lint {
        step("checking formatting");
        run(&mut cargo(&["fmt", "--all", "--check"]))?;
        step("clippy (native crates)");
        run(&mut cargo(&[
            "clippy",
            "--all-targets",
            // The fuzz driver (`cti-fuzz`) builds only with the relay's `fuzzing` feature.
            "--features",
            "cti-relay/fuzzing",
            "--",
            "-D",
            "warnings",
        ]))?;
        step("clippy (widget and admin page, wasm32)");
        run(&mut cargo(&[
            "clippy",
            "-p",
            "cti-widget",
            "-p",
            "cti-admin",
            "--target",
            "wasm32-unknown-unknown",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    build_widget()?;
    build_admin()?;
    // Tests that kill a relay for real run it as a process of its own: the binary of this tree.
    step("building the relay binary");
    run(&mut cargo(&[
        "build",
        "-p",
        "cti-relay",
        "--bin",
        "cti-relay",
    ]))?;
    // What `cf push` uploads, so a test runs it the way Cloud Foundry does.
    let dist = crate::dist::dist(&[])?;
    step("unit, integration and end-to-end tests");
    let root = workspace_root();
    let report = setup::target_dir().join("ring-to-pop.txt");
    let _ = std::fs::remove_file(&report);
    run(cargo(&["test", "--no-fail-fast"])
        .env("CTI_RING_TO_POP_REPORT", &report)
        .env("CTI_WIDGET_DIST", root.join("widget/dist"))
        .env("CTI_ADMIN_DIST", root.join(setup::ADMIN_DIST))
        .env("CTI_DIST_DIR", &dist)
        .env("CTI_PHONE_ORACLE_PYTHON", root.join(".venv/bin/python3"))
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("CHROMIUM", "/usr/bin/chromium")
        .env("CTI_AXE_CORE", &axe))?;
    step("widget and admin page tests in headless Chromium");
    run(cargo(&[
        "test",
        "-p",
        "cti-widget",
        "-p",
        "cti-admin",
        "--target",
        "wasm32-unknown-unknown",
    ])
    .env("CHROMEDRIVER", "/usr/bin/chromedriver")
    .env(
        "WASM_BINDGEN_TEST_WEBDRIVER_JSON",
        Path::new(&root).join("widget/webdriver.json"),
    ))?;
    if let Ok(line) = std::fs::read_to_string(&report) {
        step(&format!("measured {}", line.trim()));
    }
    step(&format!(
        "all tests passed in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// `cargo xtask fuzz [<target>|all] [--secs N] [--inputs N] [--seed N] [--reproduce FILE]`: the
/// relay's fuzz driver, built in release mode (throughput is the point). No target lists them.
/// Findings go to `target/fuzz-findings` unless `--out` says otherwise. `--engine afl` runs the
/// same targets under AFL++ instead (`crate::afl`); `--engine builtin` is the default. A
/// `--reproduce` always goes through the builtin driver: both engines' findings are raw inputs to
/// the same target functions.
pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    let engine = match args.iter().position(|a| a == "--engine") {
        None => "builtin",
        Some(at) => args
            .get(at + 1)
            .map(String::as_str)
            .context("--engine needs a name: builtin or afl")?,
    };
    let reproducing = args.iter().any(|a| a == "--reproduce");
    let args: Vec<String> = match engine {
        "afl" if !reproducing => return crate::afl::fuzz(args),
        "afl" | "builtin" => {
            let mut rest = Vec::with_capacity(args.len());
            let mut skip = false;
            for arg in args {
                if std::mem::take(&mut skip) {
                    continue;
                }
                skip = arg == "--engine";
                if !skip {
                    rest.push(arg.clone());
                }
            }
            rest
        }
        other => bail!("no engine {other:?}: builtin (the default) or afl"),
    };
    let root = workspace_root();
    let here = std::env::current_dir().context("the current directory")?;
    let mut forwarded: Vec<String> = Vec::new();
    let mut paths_next = false;
    for arg in &args {
        // Paths are the caller's, relative to where they stand; cargo runs from the root.
        if paths_next {
            forwarded.push(here.join(arg).display().to_string());
        } else {
            forwarded.push(arg.clone());
        }
        paths_next = arg == "--reproduce" || arg == "--out";
    }
    if !args.iter().any(|a| a == "--out") {
        forwarded.push("--out".into());
        forwarded.push(root.join("target/fuzz-findings").display().to_string());
    }
    let mut command = cargo(&[
        "run",
        "--quiet",
        "--release",
        "-p",
        "cti-relay",
        "--features",
        "fuzzing",
        "--bin",
        "cti-fuzz",
        "--",
    ]);
    command.args(&forwarded);
    run(&mut command)
}

/// The long chaos run (`tests/tests/integration/chaos.rs`): calls through two relay instances
/// while one is killed, Redis restarts, V2 fails and the widgets' connections are cut; prints the
/// lost and duplicated activities and pops and fails when any is not 0. Sized by
/// `CTI_CHAOS_SECS` and `CTI_CHAOS_RATE`.
pub(crate) fn chaos(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("chaos takes no arguments ({arg:?}); size it with CTI_CHAOS_SECS and CTI_CHAOS_RATE");
    }
    setup::redis_server()?;
    step("building the relay binary and the integration tests");
    run(&mut cargo(&[
        "build",
        "-p",
        "cti-relay",
        "--bin",
        "cti-relay",
    ]))?;
    run(&mut cargo(&[
        "test",
        "-p",
        "cti-tests",
        "--test",
        "integration",
        "--no-run",
    ]))?;
    step("chaos");
    let mut command = cargo(&[
        "test",
        "-p",
        "cti-tests",
        "--test",
        "integration",
        "chaos::chaos_end_to_end",
        "--",
        "--ignored",
        "--exact",
        "--nocapture",
    ]);
    // The relays' warnings about the faults the run causes on purpose would bury the progress.
    if std::env::var_os("CTI_TEST_LOG").is_none() {
        command.env("CTI_TEST_LOG", "error");
    }
    run(&mut command).context("the chaos run lost or duplicated something (counts above)")?;
    step("chaos: nothing lost, nothing duplicated");
    Ok(())
}

/// Benchmarks run in release mode; timing belongs here, never in tests.
pub(crate) fn bench(args: &[String]) -> Result<()> {
    let suites = ["numbers", "activities", "push", "index", "pop", "sizes"];
    // `bench push -- --agents 10000 ...`: what follows `--` goes to the benchmarks.
    let (names, passed) = match args.iter().position(|a| a == "--") {
        Some(at) => (&args[..at], &args[at + 1..]),
        None => (args, &[][..]),
    };
    let wanted: Vec<&str> = if names.is_empty() {
        suites.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    if let Some(unknown) = wanted.iter().find(|s| !suites.contains(s)) {
        bail!(
            "unknown benchmark {unknown:?}; available: {}",
            suites.join(", ")
        );
    }
    let mut widget = None;
    for suite in wanted {
        if matches!(suite, "push" | "sizes") {
            // The load generator starts release relay processes of its own.
            build_release_relay()?;
        }
        let mut static_relay = None;
        if suite == "index" {
            setup::redis_server()?;
            // Its relay processes are the binary that ships: musl's allocator, not glibc's,
            // decides how much of a build's memory stays resident.
            static_relay = Some(crate::dist::build_static_relay()?);
        }
        if matches!(suite, "pop" | "sizes") && widget.is_none() {
            widget = Some(build_release_widget()?);
        }
        if suite == "sizes" {
            let relay = setup::target_dir().join("release/cti-relay");
            let widget = widget.as_deref().context("the widget was built above")?;
            step(&format!(
                "sizes (release builds): {}",
                crate::dist::Sizes::of(&relay, widget)?
            ));
            continue;
        }
        step(&format!("benchmark: {suite} (release build)"));
        let mut command = cargo(&["bench", "-p", "cti-tests", "--bench", suite, "--"]);
        command.args(passed);
        if let Some(relay) = &static_relay {
            command.env("CTI_BENCH_RELAY", relay);
        }
        if let Some(widget) = &widget {
            // The pop benchmark's relay serves the widget that ships: the release build.
            command.env("CTI_WIDGET_DIST", widget);
        }
        run(&mut command)?;
    }
    Ok(())
}

fn build_release_relay() -> Result<()> {
    step("building the relay (release)");
    run(&mut cargo(&[
        "build",
        "--release",
        "-p",
        "cti-relay",
        "--bin",
        "cti-relay",
    ]))
}

/// The widget's release build (what `dist` ships), into the target directory; its path.
fn build_release_widget() -> Result<std::path::PathBuf> {
    setup::widget_toolchain()?;
    step("building the widget (trunk build --release)");
    let dir = setup::target_dir().join("bench-widget");
    let dir_arg = dir.to_string_lossy();
    run(setup::trunk_build(setup::RELEASE_WASM).args(["--dist", &dir_arg]))?;
    Ok(dir)
}
