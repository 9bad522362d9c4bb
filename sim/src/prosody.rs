//! A real Prosody (the Debian package) for the simulated Finesse's notification service: its own
//! configuration, data and log in a fresh directory, XMPP client connections on a loopback port,
//! a pubsub component at `pubsub.<domain>`, and the accounts the simulated Finesse's agents,
//! supervisor and notifier log in with. Gone when its handle is dropped.
//!
//! One per test (on a port the OS picked), and one for `cargo xtask demo` (the simulator starts
//! it when `SIM_FINESSE_PROSODY` names a port): a Finesse's Openfire cannot be simulated more
//! faithfully than by a real XMPP server, and both use the same code so the demo is what the
//! tests prove.
//!
//! The component is configured as Finesse's Openfire behaves for its clients: nodes exist when
//! subscribed to or published to, and the notifier's account is an admin (owner of every node),
//! so it may publish into every agent's node.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::SimConfig;

const PROSODY: &str = "/usr/bin/prosody";
const PROSODYCTL: &str = "/usr/bin/prosodyctl";
/// How long Prosody may take to listen.
const STARTUP: std::time::Duration = std::time::Duration::from_secs(30);

pub struct Prosody {
    pub port: u16,
    pub domain: String,
    dir: PathBuf,
    process: Option<Child>,
}

impl std::fmt::Debug for Prosody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prosody")
            .field("port", &self.port)
            .field("domain", &self.domain)
            .finish()
    }
}

fn installed() -> Result<()> {
    for binary in [PROSODY, PROSODYCTL] {
        if !std::path::Path::new(binary).exists() {
            bail!(
                "{binary} not found: the simulated Finesse needs a real Prosody (the Debian package `prosody`); run `cargo xtask setup`, which installs it"
            );
        }
    }
    Ok(())
}

impl Prosody {
    /// A Prosody for the simulated Finesse on a free loopback port: its domain, and the
    /// accounts of its demo agents, supervisor and notifier (in SSO mode the agents' and the
    /// supervisor's sign in with their tokens).
    pub async fn for_finesse(sim: &SimConfig) -> Result<Prosody> {
        Self::for_finesse_on(sim, 0).await
    }

    /// The same on `port` of loopback (0: one the OS picks), as the demo wants it where the
    /// relay's demo tenant looks.
    pub async fn for_finesse_on(sim: &SimConfig, port: u16) -> Result<Prosody> {
        use crate::finesse::{AGENTS, NOTIFIER, SUPERVISOR, xmpp_secret_of};
        let prosody = Self::start_inner(&sim.finesse_xmpp_domain, &[NOTIFIER], false, port).await?;
        for (id, _, _) in AGENTS {
            prosody.register(id, &xmpp_secret_of(sim, id))?;
        }
        prosody.register(SUPERVISOR, &xmpp_secret_of(sim, SUPERVISOR))?;
        prosody.register(NOTIFIER, &sim.finesse_notifier_password)?;
        Ok(prosody)
    }

    /// A fresh server for `domain`, `admins` (local parts) owning every pubsub node.
    pub async fn start(domain: &str, admins: &[&str]) -> Result<Prosody> {
        Self::start_inner(domain, admins, false, 0).await
    }

    /// The same, requiring STARTTLS with a certificate for `localhost` issued by a CA made for
    /// the test ([`Prosody::ca_pem`]), as an on-premises Finesse with its own CA.
    pub async fn start_with_tls(domain: &str, admins: &[&str]) -> Result<Prosody> {
        Self::start_inner(domain, admins, true, 0).await
    }

    /// The test CA's certificate (PEM), for a server started with TLS.
    pub fn ca_pem(&self) -> Result<String> {
        std::fs::read_to_string(self.dir.join("ca.pem")).context("the test CA")
    }

    async fn start_inner(domain: &str, admins: &[&str], tls: bool, port: u16) -> Result<Prosody> {
        installed()?;
        let port = std::net::TcpListener::bind(("127.0.0.1", port))
            .and_then(|l| l.local_addr())
            .with_context(|| format!("loopback port {port} for Prosody"))?
            .port();
        let dir = std::env::temp_dir().join(format!("cti-prosody-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).context("creating Prosody's directory")?;
        let tls_config = if tls {
            certificates(&dir)?;
            let d = dir.display();
            format!(
                "c2s_require_encryption = true\nssl = {{ key = \"{d}/server.key\"; certificate = \"{d}/server.pem\"; }}\n"
            )
        } else {
            "c2s_require_encryption = false\n".to_string()
        };
        let admins: Vec<String> = admins.iter().map(|a| format!("\"{a}@{domain}\"")).collect();
        let d = dir.display();
        let config = format!(
            r#"-- Generated for the simulated Finesse (a test or the demo): loopback only.
run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}"
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "posix"; {tls_module} }}
modules_disabled = {{ "s2s"; {no_tls_module} }}
c2s_ports = {{ {port} }}
c2s_interfaces = {{ "127.0.0.1" }}
c2s_direct_tls_ports = {{}}
s2s_ports = {{}}
component_ports = {{}}
http_ports = {{}}
https_ports = {{}}
{tls_config}allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
admins = {{ {admins} }}
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{d}/prosody.log" }} }}
VirtualHost "{domain}"
Component "pubsub.{domain}" "pubsub"
  autocreate_on_publish = true
  autocreate_on_subscribe = true
"#,
            admins = admins.join("; "),
            // Without TLS, no STARTTLS offered at all (as a plain loopback server).
            tls_module = if tls { "\"tls\";" } else { "" },
            no_tls_module = if tls { "" } else { "\"tls\";" },
        );
        std::fs::write(dir.join("prosody.cfg.lua"), config)?;
        let mut prosody = Prosody {
            port,
            domain: domain.to_string(),
            dir,
            process: None,
        };
        prosody.launch().await?;
        Ok(prosody)
    }

    fn config(&self) -> String {
        self.dir.join("prosody.cfg.lua").display().to_string()
    }

    async fn launch(&mut self) -> Result<()> {
        let process = Command::new(PROSODY)
            .args(["--config", &self.config(), "-F"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {PROSODY}"))?;
        self.process = Some(process);
        // Prosody needs a moment to load its modules; it either listens or has exited.
        let addr = self.addr();
        let deadline = tokio::time::Instant::now() + STARTUP;
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return Ok(());
            }
            let exited = self
                .process
                .as_mut()
                .is_some_and(|p| matches!(p.try_wait(), Ok(Some(_))));
            if exited || tokio::time::Instant::now() > deadline {
                self.stop();
                bail!(
                    "Prosody did not accept XMPP connections on {addr}; its log: {}",
                    self.log()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Creates an account (`prosodyctl register`; the server reads it from its data directory).
    pub fn register(&self, user: &str, password: &str) -> Result<()> {
        let status = Command::new(PROSODYCTL)
            .args([
                "--config",
                &self.config(),
                "register",
                user,
                &self.domain,
                password,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {PROSODYCTL}"))?;
        if !status.success() {
            bail!(
                "prosodyctl register {user}@{} failed: {status}",
                self.domain
            );
        }
        Ok(())
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the server logged (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prosody.log")).unwrap_or_default()
    }

    /// Kills the server, as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it again on the same port with the same accounts.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch().await
    }
}

/// Starts the Prosody `SIM_FINESSE_PROSODY` asks for (the demo's) and points the simulated
/// Finesse at it. Without it Finesse cannot notify anyone, so the host page stops offering
/// Finesse and says why in the log; the rest of the simulator serves on.
pub async fn for_configured_finesse(config: &mut SimConfig) -> Option<Prosody> {
    let port = config.finesse_prosody_port?;
    match Prosody::for_finesse_on(config, port).await {
        Ok(prosody) => {
            tracing::info!(addr = %prosody.addr(), domain = %prosody.domain, "Prosody started for the simulated Finesse");
            config.finesse_xmpp = Some(prosody.addr());
            Some(prosody)
        }
        Err(err) => {
            tracing::error!(
                "Finesse is not offered: its notification service (Prosody) did not start: {err:#}"
            );
            config.providers.retain(|p| p.name != "finesse");
            None
        }
    }
}

/// A CA and a `localhost` certificate it issued, with openssl.
fn certificates(dir: &std::path::Path) -> Result<()> {
    let openssl = |args: &[&str]| -> Result<()> {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running openssl")?;
        if !status.success() {
            bail!("openssl {args:?} failed: {status}");
        }
        Ok(())
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=CTI test CA",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ])?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    Ok(())
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DemoProvider;

    fn demo_config(port: u16) -> SimConfig {
        let mut config = SimConfig::from_lookup(|name| {
            (name == "SIM_FINESSE_PROSODY").then(|| port.to_string().into())
        })
        .expect("valid");
        config.providers = ["generic", "finesse"]
            .iter()
            .map(|name| DemoProvider {
                name: (*name).into(),
                tenant: format!("demo-{name}"),
            })
            .collect();
        config
    }

    #[test]
    fn the_port_comes_from_sim_finesse_prosody() {
        assert_eq!(demo_config(15222).finesse_prosody_port, Some(15222));
        assert_eq!(SimConfig::default().finesse_prosody_port, None);
        for bad in ["0", "x", "70000"] {
            let err =
                SimConfig::from_lookup(|name| (name == "SIM_FINESSE_PROSODY").then(|| bad.into()))
                    .expect_err(bad);
            assert!(err.to_string().contains("SIM_FINESSE_PROSODY"), "{err}");
        }
    }

    #[tokio::test]
    async fn the_configured_prosody_serves_the_simulated_finesse() -> Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut config = demo_config(port);
        let prosody = for_configured_finesse(&mut config)
            .await
            .context("Prosody started")?;
        assert_eq!(prosody.port, port);
        assert_eq!(
            config.finesse_xmpp.as_deref(),
            Some(prosody.addr().as_str())
        );
        assert!(config.providers.iter().any(|p| p.name == "finesse"));
        // An agent's account is there: the relay's login is what the tests prove further.
        tokio::net::TcpStream::connect(prosody.addr()).await?;
        Ok(())
    }

    #[tokio::test]
    async fn without_its_prosody_finesse_is_not_offered() -> Result<()> {
        // The port is taken (a server of the machine's own, say).
        let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut config = demo_config(taken.local_addr()?.port());
        assert!(for_configured_finesse(&mut config).await.is_none());
        assert_eq!(config.finesse_xmpp, None);
        let offered: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(offered, ["generic"]);
        Ok(())
    }
}
