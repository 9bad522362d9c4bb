//! A relay instance as a process of its own (the `cti-relay` binary), for tests that kill one
//! the way the platform or the kernel does: SIGKILL, no goodbye, no draining, every connection
//! reset by the kernel. An instance started in the test process ([`crate::Stack`]'s relay) can
//! only have its tasks aborted, and its open connections outlive it.
//!
//! The process is configured through the environment, as a deployment configures it, with what
//! the stack's in-process relay uses (same simulator, same Redis, same retry pacing), so both
//! are instances of one deployment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use cti_relay::Config;

use crate::{Stack, eventually};

/// The `cti-relay` binary of this build: next to the test executable's directory
/// (`<target>/<profile>/cti-relay`), where `cargo build -p cti-relay` puts it. `cargo xtask test`
/// and `cargo xtask chaos` build it first.
pub fn relay_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test executable has no <target>/<profile> directory")?;
    let binary = profile_dir.join("cti-relay");
    if !binary.exists() {
        bail!(
            "{} is missing: build it with `cargo build -p cti-relay --bin cti-relay` (cargo xtask test does)",
            binary.display()
        );
    }
    Ok(binary)
}

/// One `cti-relay` process; killed when dropped.
#[derive(Debug)]
pub struct RelayProcess {
    pub addr: SocketAddr,
    binary: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl RelayProcess {
    /// Starts another instance of `stack`'s deployment (its relay's configuration, which must
    /// use Redis to share state) as a process on a port of its own; ready when this returns.
    pub async fn start(stack: &Stack) -> Result<RelayProcess> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let config = &stack.relay.state.config;
        let redis = config
            .redis_url
            .as_ref()
            .context("instances of one deployment share Redis")?;
        let env = environment(config, addr, Some(redis.expose()))?;
        let mut relay = RelayProcess {
            addr,
            binary: relay_binary()?,
            env,
            child: None,
        };
        relay.start_again(stack).await?;
        Ok(relay)
    }

    /// Starts an instance configured like `config` (the demo tenant on a simulator), with Redis
    /// when given, listening on `addr`, with `extra` variables on top; ready when this returns.
    /// For a relay that runs without a [`Stack`] (the push load generator).
    pub async fn start_configured(
        config: &Config,
        addr: SocketAddr,
        redis: Option<&str>,
        extra: &[(&str, String)],
        http: &reqwest::Client,
    ) -> Result<RelayProcess> {
        let mut env = environment(config, addr, redis)?;
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut relay = RelayProcess {
            addr,
            binary: relay_binary()?,
            env,
            child: None,
        };
        relay.launch(http).await?;
        Ok(relay)
    }

    /// Starts `binary` configured as [`RelayProcess::start_configured`] does, without waiting
    /// for it to be ready: for a benchmark that watches the process itself (readiness waits
    /// for a whole index build, which takes longer than a test waits on a large tenant).
    pub fn spawn_configured(
        binary: PathBuf,
        config: &Config,
        addr: SocketAddr,
        redis: Option<&str>,
        extra: &[(&str, String)],
    ) -> Result<RelayProcess> {
        let mut env = environment(config, addr, redis)?;
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut relay = RelayProcess {
            addr,
            binary,
            env,
            child: None,
        };
        relay.spawn()?;
        Ok(relay)
    }

    /// The process id while it runs (for reading its memory and CPU time under /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/agent/ws", self.addr)
    }

    /// SIGKILL: the process ends wherever it was.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing the relay process")?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the process (again) on its address; ready when this returns.
    pub async fn start_again(&mut self, stack: &Stack) -> Result<()> {
        self.launch(&stack.http).await
    }

    async fn launch(&mut self, http: &reqwest::Client) -> Result<()> {
        self.spawn()?;
        let url = format!("{}/readyz", self.url());
        eventually("the relay process to become ready", || async {
            let response = http.get(&url).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await
    }
}

impl RelayProcess {
    fn spawn(&mut self) -> Result<()> {
        self.kill()?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// The environment that configures a `cti-relay` process like `config` (the demo tenant on the
/// stack's simulator), listening on `addr`, with Redis at `redis` if any.
pub fn environment(
    config: &Config,
    addr: SocketAddr,
    redis: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let tenant = config.tenants.first().context("no tenant configured")?;
    let mut env = vec![
        ("CTI_LISTEN", addr.to_string()),
        ("CTI_TENANT", tenant.id.clone()),
        ("CTI_V2_URL", tenant.v2_url.clone()),
        ("CTI_CONTROL_URL", format!("{}/sim/pbx", tenant.v2_url)),
        ("CTI_JWKS_URL", config.jwt.jwks_url.clone()),
        ("CTI_JWT_ISSUER", config.jwt.issuer.clone()),
        ("CTI_JWT_AUDIENCE", config.jwt.audience.clone()),
        ("CTI_WIDGET_DIR", config.widget_dir.display().to_string()),
        ("CTI_ADMIN_DIR", config.admin_dir.display().to_string()),
        (
            "CTI_ACTIVITY_RETRY_BASE_MS",
            config.activity_retry_base.as_millis().to_string(),
        ),
        (
            "CTI_ACTIVITY_RETRY_MAX_SECS",
            config.activity_retry_max.as_secs().max(1).to_string(),
        ),
        (
            "CTI_MISS_BUDGET_MS",
            config.miss_budget.as_millis().to_string(),
        ),
        (
            "CTI_CONNECTOR_LEASE_SECS",
            config.connector_lease.as_secs().to_string(),
        ),
        ("CTI_DRAIN_SECS", "0".to_string()),
        // The process writes to the test's terminal, which the test harness does not capture:
        // only errors, unless asked for more.
        (
            "CTI_LOG",
            std::env::var("CTI_TEST_LOG").unwrap_or_else(|_| "error".into()),
        ),
    ];
    if let Some(redis) = redis {
        env.push(("REDIS_URL", redis.to_string()));
    }
    if let Some(signin) = &config.signin_url {
        env.push(("CTI_SIGNIN_URL", signin.clone()));
    }
    Ok(env.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}
