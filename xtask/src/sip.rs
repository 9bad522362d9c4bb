//! The demo's SIP PBX: a real Kamailio running the repository's sample configuration
//! (`deploy/kamailio/kamailio.cfg`) on `127.0.0.1:5060`, and a SIPp phone per demo rep
//! registered with it, answering its calls after a few seconds of ringing (SIP has no remote
//! answer). The relay's demo tenant `demo-sip` subscribes to the reps' dialog events there;
//! the simulator places the host page's calls through it with SIPp.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::setup::workspace_root;

const KAMAILIO: &str = "/usr/sbin/kamailio";
const SIPP: &str = "/usr/bin/sipp";
const DBTEXT_TEMPLATES: &str = "/usr/share/kamailio/dbtext/kamailio";
const TABLES: [&str; 10] = [
    "version",
    "subscriber",
    "location",
    "presentity",
    "active_watchers",
    "watchers",
    "pua",
    "xcap",
    "dialog",
    "dialog_vars",
];
/// Where the relay's demo SIP tenant expects its PBX (`sip::Settings::demo`).
pub(crate) const ADDR: &str = "127.0.0.1:5060";
/// The demo's SIP domain and phones (the relay's `sip::DEMO_DOMAIN` and `DEMO_REPS`).
const DOMAIN: &str = "pbx.test";
const EXTENSIONS: [&str; 2] = ["1001", "1002"];
/// How long a demo phone rings before it answers.
const RING_MS: &str = "4000";

/// The directory of the SIPp scenarios (the simulator's `SIM_SIPP_SCENARIOS`).
pub(crate) fn scenarios() -> PathBuf {
    workspace_root().join("tests/sipp")
}

/// Starts Kamailio and the phones, or says why the demo runs without SIP.
pub(crate) fn start() -> Result<Vec<(&'static str, Child)>> {
    for (binary, package) in [
        (KAMAILIO, "kamailio kamailio-presence-modules"),
        (SIPP, "sip-tester"),
    ] {
        if !Path::new(binary).exists() {
            bail!("{binary} is missing (Debian packages {package}; `cargo xtask setup`)");
        }
    }
    TcpListener::bind(ADDR).with_context(|| format!("{ADDR} (TCP) is in use"))?;
    UdpSocket::bind(ADDR).with_context(|| format!("{ADDR} (UDP) is in use"))?;
    let dir = workspace_root().join("target/demo-kamailio");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("db")).context("creating Kamailio's directory")?;
    for table in TABLES {
        std::fs::copy(
            Path::new(DBTEXT_TEMPLATES).join(table),
            dir.join("db").join(table),
        )
        .with_context(|| format!("copying the db_text table {table}"))?;
    }
    // db_text rows: id:username:domain:password:ha1:ha1b (ha1 unused: computed).
    let mut subscribers = std::fs::read_to_string(dir.join("db/subscriber"))?;
    let accounts = EXTENSIONS
        .iter()
        .map(|ext| ((*ext).to_string(), format!("demo-sip-{ext}")))
        .chain([("cti-relay".to_string(), "demo-sip-relay".to_string())]);
    for (id, (user, password)) in accounts.enumerate() {
        subscribers.push_str(&format!("{}:{user}:{DOMAIN}:{password}:-:-\n", id + 1));
    }
    std::fs::write(dir.join("db/subscriber"), subscribers)?;

    let kamailio = |check: bool| -> Result<Command> {
        let mut command = Command::new(KAMAILIO);
        command
            .env(
                "KAMAILIO_DB_URL",
                format!("text://{}", dir.join("db").display()),
            )
            .env("KAMAILIO_DOMAIN", DOMAIN)
            .env("KAMAILIO_SELF", format!("sip:{ADDR}"))
            .arg("-f")
            .arg(workspace_root().join("deploy/kamailio/kamailio.cfg"))
            .args(["-l", &format!("udp:{ADDR}"), "-l", &format!("tcp:{ADDR}")]);
        if check {
            command.arg("-c");
        } else {
            command
                .args(["-DD", "-E", "-m", "32", "-M", "8"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("kamailio.log"))?);
        }
        Ok(command)
    };
    let checked = kamailio(true)?.output().context("running kamailio -c")?;
    if !checked.status.success() {
        bail!(
            "kamailio -c refused the sample configuration: {}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
    let mut children = vec![(
        "kamailio",
        kamailio(false)?.spawn().context("starting Kamailio")?,
    )];
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(ADDR).is_err() {
        if Instant::now() > deadline {
            stop(&mut children);
            bail!(
                "Kamailio did not accept SIP on {ADDR} within 15 s; its log: {}",
                dir.join("kamailio.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for ext in EXTENSIONS {
        if let Err(e) = phone(&dir, ext, &mut children) {
            stop(&mut children);
            return Err(e);
        }
    }
    Ok(children)
}

/// A SIPp phone for `ext` taking any number of calls, registered with Kamailio.
fn phone(dir: &Path, ext: &str, children: &mut Vec<(&'static str, Child)>) -> Result<()> {
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let sipp = |scenario: &str| {
        let mut command = Command::new(SIPP);
        command
            .arg("-sf")
            .arg(scenarios().join(scenario))
            .args(["-s", ext, "-key", "domain", DOMAIN, "-i", "127.0.0.1"])
            .arg("-nostdin")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    children.push((
        "SIP phone",
        sipp("answer.xml")
            .args(["-p", &port.to_string(), "-d", RING_MS])
            .spawn()
            .context("starting a SIPp phone")?,
    ));
    let registered = sipp("register.xml")
        .arg(ADDR)
        .args(["-au", ext, "-ap", &format!("demo-sip-{ext}")])
        .args(["-key", "contact_port", &port.to_string()])
        .args(["-m", "1", "-timeout", "10s", "-timeout_error"])
        .status()
        .context("registering a SIPp phone")?;
    if !registered.success() {
        bail!("the SIP phone {ext} could not register with Kamailio ({registered})");
    }
    Ok(())
}

fn stop(children: &mut Vec<(&'static str, Child)>) {
    for (_, child) in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    children.clear();
}
