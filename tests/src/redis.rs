//! A real redis-server for one test, on a port the OS picked, gone when the test ends.

use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::eventually;

pub struct RedisServer {
    pub port: u16,
    process: Option<Child>,
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .finish()
    }
}

impl RedisServer {
    pub async fn start() -> Result<RedisServer> {
        // `--port 0` disables TCP in redis-server, so take a free port from the OS first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Self::start_on(port).await
    }

    /// Starts a fresh, empty server on the port this one had, as a Redis restarted without
    /// persistence comes back.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        let fresh = Self::start_on(self.port).await?;
        *self = fresh;
        Ok(())
    }

    async fn start_on(port: u16) -> Result<RedisServer> {
        let binary =
            std::env::var("REDIS_SERVER").unwrap_or_else(|_| "/usr/bin/redis-server".into());
        if !std::path::Path::new(&binary).exists() {
            bail!("{binary} not found (run `cargo xtask test`, which installs redis-server)");
        }
        let process = Command::new(&binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let server = RedisServer {
            port,
            process: Some(process),
        };
        let url = server.url();
        eventually("redis-server to answer PING", || async {
            let client = redis::Client::open(url.as_str()).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
            (pong == "PONG").then_some(())
        })
        .await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs (for its resident memory).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// Kills the server, as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
