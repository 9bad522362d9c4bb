//! A real Kamailio (the Debian packages `kamailio` and `kamailio-presence-modules`) for one
//! test, running the repository's sample configuration (`deploy/kamailio/kamailio.cfg`): the
//! PBX's registrar, proxy and dialog-event presence server on a loopback port the test picked
//! (UDP and TCP, and TLS with a throwaway test certificate), its db_text tables in a fresh directory, with the SIP accounts of the demo's
//! phones and of the relay. And SIPp (Debian's `sip-tester`) as the phones and the callers,
//! running the scenarios in `tests/sipp/`, so the NOTIFYs the relay reads are Kamailio's own.
//! Gone when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::eventually;

const KAMAILIO: &str = "/usr/sbin/kamailio";
const SIPP: &str = "/usr/bin/sipp";
/// Debian's empty db_text tables (with their column headers).
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

/// The SIP domain of the demo's addresses of record.
pub const DOMAIN: &str = cti_relay::adapters::sip::DEMO_DOMAIN;

/// The SIP accounts the server knows: (user, password). The phones' and the relay's.
pub fn accounts() -> Vec<(String, String)> {
    let mut accounts: Vec<(String, String)> = cti_relay::adapters::sip::DEMO_REPS
        .iter()
        .map(|(_, ext)| ((*ext).to_string(), phone_password(ext)))
        .collect();
    accounts.push(("cti-relay".into(), "demo-sip-relay".into()));
    accounts
}

/// A demo phone's SIP password.
pub fn phone_password(ext: &str) -> String {
    format!("demo-sip-{ext}")
}

pub struct Kamailio {
    pub port: u16,
    /// Its SIP-over-TLS port (TCP), with the test certificate of [`test_ca_pem`]'s CA.
    pub tls_port: u16,
    dir: PathBuf,
    process: Option<Child>,
}

/// The throwaway test CA (and the server certificate it signed for 127.0.0.1) of
/// `tests/testdata/sip-tls`.
fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sip-tls")
}

/// The PEM of the CA that signed the test Kamailio's TLS certificate: what a relay reaching it
/// over TLS trusts (`sip_tls_ca_pem`).
pub fn test_ca_pem() -> Result<String> {
    std::fs::read_to_string(tls_dir().join("ca.pem")).context("reading the test SIP CA")
}

impl std::fmt::Debug for Kamailio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kamailio")
            .field("port", &self.port)
            .finish()
    }
}

fn installed() -> Result<()> {
    for (binary, package) in [
        (KAMAILIO, "kamailio kamailio-presence-modules"),
        (SIPP, "sip-tester"),
        (
            "/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so",
            "kamailio-tls-modules",
        ),
    ] {
        if !Path::new(binary).exists() {
            bail!(
                "{binary} not found: these tests need the Debian packages {package}; run `cargo xtask setup`, which installs them"
            );
        }
    }
    Ok(())
}

/// The repository's sample configuration.
pub fn sample_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy/kamailio/kamailio.cfg")
}

/// A SIPp scenario of `tests/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

/// A loopback port free for both UDP and TCP (SIP listens on both).
pub fn free_port() -> Result<u16> {
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no loopback port free for both UDP and TCP")
}

impl Kamailio {
    /// A fresh server with the demo's accounts.
    pub async fn start() -> Result<Kamailio> {
        installed()?;
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("cti-kamailio-{}-{port}", std::process::id()));
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
        for (id, (user, password)) in accounts().iter().enumerate() {
            subscribers.push_str(&format!("{}:{user}:{DOMAIN}:{password}:-:-\n", id + 1));
        }
        std::fs::write(dir.join("db/subscriber"), subscribers)?;
        let tls_port = loop {
            let tls_port = free_port()?;
            if tls_port != port {
                break tls_port;
            }
        };
        let mut kamailio = Kamailio {
            port,
            tls_port,
            dir,
            process: None,
        };
        kamailio.check()?;
        kamailio.launch().await?;
        Ok(kamailio)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(KAMAILIO);
        command
            .env(
                "KAMAILIO_DB_URL",
                format!("text://{}", self.dir.join("db").display()),
            )
            .env("KAMAILIO_DOMAIN", DOMAIN)
            .env("KAMAILIO_SELF", format!("sip:127.0.0.1:{}", self.port))
            .arg("-f")
            .arg(sample_config())
            .args(["-l", &format!("udp:127.0.0.1:{}", self.port)])
            .args(["-l", &format!("tcp:127.0.0.1:{}", self.port)])
            .args(["-A", "WITH_TLS"])
            .env("KAMAILIO_TLS_CERTIFICATE", tls_dir().join("server.pem"))
            .env("KAMAILIO_TLS_PRIVATE_KEY", tls_dir().join("server.key"))
            .args(["-l", &format!("tls:127.0.0.1:{}", self.tls_port)]);
        command
    }

    /// `kamailio -c`: the sample configuration is valid.
    pub fn check(&self) -> Result<()> {
        let output = self
            .command()
            .arg("-c")
            .output()
            .context("running kamailio -c")?;
        if !output.status.success() {
            bail!(
                "kamailio -c refused the sample configuration: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    async fn launch(&mut self) -> Result<()> {
        let log = std::fs::File::create(self.dir.join("kamailio.log"))?;
        use std::os::unix::process::CommandExt;
        let process = self
            .command()
            // In the foreground, logging to stderr, in a process group of its own so stopping
            // it stops its workers too.
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {KAMAILIO}"))?;
        self.process = Some(process);
        let addr = self.addr();
        let tls = self.tls_addr();
        eventually("Kamailio to accept SIP over TCP and TLS", || async {
            tokio::net::TcpStream::connect(&addr).await.ok()?;
            tokio::net::TcpStream::connect(&tls).await.ok().map(drop)
        })
        .await
        .with_context(|| format!("Kamailio's log: {}", self.log()))?;
        Ok(())
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<tls port>`.
    pub fn tls_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    /// What the server logged (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }

    /// Stops the server (its whole process group), as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let group = format!("-{}", process.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Restarts it as an administrator does (SIGTERM, which writes its tables, then a new
    /// process on the same port and tables): calls and published dialog states carry over,
    /// registrations and subscriptions (in memory) do not.
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &process.id().to_string()])
                .status();
            let exited = eventually("Kamailio to shut down", || {
                let exited = process.try_wait().ok().flatten();
                async move { exited }
            })
            .await;
            if exited.is_err() {
                self.process = Some(process);
                self.stop();
            }
        }
        eventually("Kamailio's port to be free again", || async {
            std::net::UdpSocket::bind(("127.0.0.1", self.port))
                .ok()
                .map(drop)
        })
        .await?;
        self.launch().await
    }

    /// Registers a demo phone (`ext`) whose calls go to a SIPp at `contact_port`.
    pub async fn register(&self, ext: &str, contact_port: u16) -> Result<()> {
        let sipp = self.sipp_to_server(
            "register.xml",
            ext,
            &[
                ("-au", ext),
                ("-ap", &phone_password(ext)),
                ("-key", &format!("contact_port {contact_port}")),
            ],
        )?;
        sipp.finished().await
    }

    /// A phone of `ext` that rings for `ring_ms` and answers its next call: registered, listening.
    pub async fn answering_phone(&self, ext: &str, ring_ms: u64) -> Result<Sipp> {
        self.phone(ext, "answer.xml", ring_ms).await
    }

    /// A phone of `ext` that rings for `ring_ms`, answers, then holds the call for a second and
    /// resumes it, publishing its hold to the server as its own dialog state.
    pub async fn holding_phone(&self, ext: &str, ring_ms: u64) -> Result<Sipp> {
        self.phone(ext, "answer-hold.xml", ring_ms).await
    }

    /// A phone of `ext` that rings and is never picked up.
    pub async fn unanswered_phone(&self, ext: &str) -> Result<Sipp> {
        self.phone(ext, "no-answer.xml", 0).await
    }

    /// A phone of `ext` that rings for `ring_ms`, answers and transfers the call blind to
    /// `target` (a REFER to the caller), then waits for the caller to confirm and hang up.
    pub async fn transferring_phone(&self, ext: &str, target: &str, ring_ms: u64) -> Result<Sipp> {
        self.phone_with(
            ext,
            "answer-refer.xml",
            ring_ms,
            &["-key", "target", target],
        )
        .await
    }

    async fn phone(&self, ext: &str, scenario_name: &str, pause_ms: u64) -> Result<Sipp> {
        self.phone_with(ext, scenario_name, pause_ms, &[]).await
    }

    async fn phone_with(
        &self,
        ext: &str,
        scenario_name: &str,
        pause_ms: u64,
        extra: &[&str],
    ) -> Result<Sipp> {
        let port = free_port()?;
        let mut args = vec![
            "-p".to_string(),
            port.to_string(),
            "-d".into(),
            pause_ms.to_string(),
            "-s".into(),
            ext.to_string(),
            "-key".into(),
            "domain".into(),
            DOMAIN.into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_string()));
        let phone = Sipp::spawn(&self.dir, scenario_name, &args)?;
        self.register(ext, port).await?;
        Ok(phone)
    }

    /// `caller` rings `ext` through the server and, once answered, talks for `talk_ms` and
    /// hangs up.
    pub fn call(&self, caller: &str, ext: &str, talk_ms: u64) -> Result<Sipp> {
        self.sipp_to_server(
            "call.xml",
            ext,
            &[
                ("-key", &format!("caller {caller}")),
                ("-d", &talk_ms.to_string()),
            ],
        )
    }

    /// `caller` rings `ext` through the server, is transferred blind by the rep's phone (it
    /// follows the REFER with a new call to the target), talks there for `talk_ms` and hangs up.
    pub fn call_transferred(&self, caller: &str, ext: &str, talk_ms: u64) -> Result<Sipp> {
        self.sipp_to_server(
            "call-transferred.xml",
            ext,
            &[
                ("-key", &format!("caller {caller}")),
                ("-d", &talk_ms.to_string()),
            ],
        )
    }

    /// `caller` rings `ext` through the server and gives up after `ring_ms`.
    pub fn call_and_give_up(&self, caller: &str, ext: &str, ring_ms: u64) -> Result<Sipp> {
        self.sipp_to_server(
            "cancel.xml",
            ext,
            &[
                ("-key", &format!("caller {caller}")),
                ("-d", &ring_ms.to_string()),
            ],
        )
    }

    fn sipp_to_server(
        &self,
        scenario_name: &str,
        ext: &str,
        extra: &[(&str, &str)],
    ) -> Result<Sipp> {
        let mut args = vec![
            self.addr(),
            "-s".into(),
            ext.to_string(),
            "-key".into(),
            "domain".into(),
            DOMAIN.into(),
        ];
        for (flag, value) in extra {
            args.push((*flag).to_string());
            // `-key name value` takes two arguments.
            args.extend(value.split(' ').map(str::to_string));
        }
        Sipp::spawn(&self.dir, scenario_name, &args)
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One SIPp run of one call (`-m 1`), bounded by a global timeout that fails it.
pub struct Sipp {
    process: Option<Child>,
    scenario: String,
    messages: PathBuf,
}

impl std::fmt::Debug for Sipp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sipp")
            .field("scenario", &self.scenario)
            .finish()
    }
}

impl Sipp {
    fn spawn(dir: &Path, scenario_name: &str, args: &[String]) -> Result<Sipp> {
        let messages = dir.join(format!("sipp-{}-{}.log", scenario_name, crate_unique()));
        let process = Command::new(SIPP)
            .arg("-sf")
            .arg(scenario(scenario_name))
            .args(args)
            .args([
                "-i",
                "127.0.0.1",
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "60s",
                "-timeout_error",
            ])
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(&messages)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {SIPP}"))?;
        Ok(Sipp {
            process: Some(process),
            scenario: scenario_name.to_string(),
            messages,
        })
    }

    /// Waits until the scenario ran to its end; fails with the messages it exchanged if it
    /// did not succeed.
    pub async fn finished(mut self) -> Result<()> {
        let mut process = self.process.take().context("SIPp already waited for")?;
        let status = eventually(&format!("SIPp's {} to finish", self.scenario), || {
            let status = process.try_wait().ok().flatten();
            async move { status }
        })
        .await;
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                let _ = process.kill();
                let _ = process.wait();
                return Err(e.context(self.messages()));
            }
        };
        if !status.success() {
            bail!(
                "SIPp's {} failed ({status}): {}",
                self.scenario,
                self.messages()
            );
        }
        Ok(())
    }

    fn messages(&self) -> String {
        std::fs::read_to_string(&self.messages).unwrap_or_default()
    }

    /// Waits until this SIPp has received a request of `method` (from its message trace):
    /// a test that restarts the proxy mid-call first waits for the callee's ACK, since a
    /// restart between the 200 OK and the ACK is another story (a call not yet set up).
    pub async fn received(&self, method: &str) -> Result<()> {
        let line = format!("{method} sip:");
        eventually(
            &format!("SIPp's {} to receive {method}", self.scenario),
            || {
                let trace = self.messages();
                let seen = trace.split("message received").skip(1).any(|message| {
                    message
                        .lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty() && !l.starts_with('['))
                        .is_some_and(|first| first.starts_with(&line))
                });
                async move { seen.then_some(()) }
            },
        )
        .await
        .with_context(|| self.messages())
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// A number unique in this process, for log file names.
fn crate_unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
