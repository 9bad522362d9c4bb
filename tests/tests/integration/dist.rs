//! What `cargo xtask dist` builds, run the way Cloud Foundry's binary buildpack runs it: the
//! contents of `dist/` copied into an app directory that is also the working directory, the
//! manifest's `command` and `env`, `PORT` and `VCAP_SERVICES` set by the platform (Redis from a
//! `redis-cache` binding), nothing else of the build machine's environment, and the platform's
//! HTTP health check on `/healthz`. A call rung on the simulator then pops at a rep connected to
//! that process.
//!
//! `cargo xtask test` builds `dist/` first and names it in `CTI_DIST_DIR`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use cti_relay::secret::Secret;
use cti_tests::browser::Browser;
use cti_tests::redis::RedisServer;
use cti_tests::relay_process::environment;
use cti_tests::{Stack, WsClient, eventually};
use serde_json::json;

const ALICE: &str = "alice@example.com";

/// The built `dist/`; the test cannot run without it.
fn dist_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("CTI_DIST_DIR")
        .map(PathBuf::from)
        .context("CTI_DIST_DIR is not set: run `cargo xtask dist` and point it at dist/ (cargo xtask test does both)")?;
    if !dir.join("cti-relay").exists()
        || !dir.join("widget/index.html").exists()
        || !dir.join("admin/index.html").exists()
    {
        bail!(
            "{} has no cti-relay, widget/ or admin/: run `cargo xtask dist`",
            dir.display()
        );
    }
    Ok(dir)
}

/// The manifest's `command` and its `env:` entries (the only YAML this test needs: one app,
/// `key: value` lines).
fn manifest() -> Result<(String, Vec<(String, String)>)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifest.yml"))?;
    let mut command = None;
    let mut env = Vec::new();
    let mut in_env = false;
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some(value) = trimmed.strip_prefix("command:") {
            command = Some(value.trim().to_string());
        }
        if in_env && indent > 4 {
            if let Some((key, value)) = trimmed.split_once(':') {
                env.push((key.trim().to_string(), value.trim().to_string()));
            }
            continue;
        }
        in_env = trimmed == "env:";
    }
    Ok((command.context("manifest.yml has no command")?, env))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dist_build_runs_as_cloud_foundry_starts_it_and_pops_a_call() -> Result<()> {
    let dist = dist_dir()?;
    let (command, manifest_env) = manifest()?;
    assert_eq!(
        command, "./cti-relay",
        "the manifest starts the binary dist/ holds"
    );
    assert!(
        manifest_env
            .iter()
            .any(|(k, v)| k == "CTI_WIDGET_DIR" && v == "./widget"),
        "{manifest_env:?}"
    );
    assert!(
        manifest_env
            .iter()
            .any(|(k, v)| k == "CTI_ADMIN_DIR" && v == "./admin"),
        "{manifest_env:?}"
    );

    let redis = RedisServer::start().await?;
    let redis_url = redis.url();
    let stack = Stack::start_with(|c| c.redis_url = Some(Secret::new(redis_url.clone()))).await?;

    // The droplet: dist/ as uploaded, unpacked into the app directory.
    let app = std::env::temp_dir().join(format!("cti-dist-app-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&app);
    copy_dir(&dist, &app)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let vcap = json!({
        "redis-cache": [{
            "label": "redis-cache",
            "name": "cti-redis",
            "credentials": {"hostname": "127.0.0.1", "port": redis.port, "password": "", "tls": false}
        }]
    });

    // The tenant's settings as an operator sets them with `cf set-env`; the listen address,
    // Redis and the directories of the widget and the admin page come from the platform and the
    // manifest instead.
    let operator: Vec<(String, String)> =
        environment(&stack.relay.state.config, stack.relay.addr, None)?
            .into_iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "CTI_LISTEN" | "REDIS_URL" | "CTI_WIDGET_DIR" | "CTI_ADMIN_DIR"
                )
            })
            .collect();
    let child = Command::new(app.join(command.trim_start_matches("./")))
        .current_dir(&app)
        .env_clear()
        .env("HOME", &app)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("PORT", port.to_string())
        .env("VCAP_SERVICES", vcap.to_string())
        .env(
            "VCAP_APPLICATION",
            json!({"application_name": "cti-relay", "instance_index": 0}).to_string(),
        )
        .env("CF_INSTANCE_INDEX", "0")
        .envs(manifest_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(operator.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", app.join(&command).display()))?;
    let _app = App(child);
    let base = format!("http://127.0.0.1:{port}");

    // Cloud Foundry's health check: the instance is up once /healthz answers 200.
    eventually("the health check on /healthz to pass", || async {
        let response = stack
            .http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(())
    })
    .await?;
    eventually("the relay to be ready", || async {
        let response = stack.http.get(format!("{base}/readyz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await?;

    // The release builds of the widget and the admin page, served from the app directory's
    // ./widget and ./admin.
    for page in ["widget", "admin"] {
        let index = stack.http.get(format!("{base}/{page}/")).send().await?;
        assert_eq!(index.status(), 200, "/{page}/");
        let html = index.text().await?;
        let wasm = html
            .split(['"', '\''])
            .find(|part| part.ends_with(".wasm"))
            .with_context(|| format!("the {page} page names no .wasm: {html}"))?
            .to_string();
        let wasm = stack
            .http
            .get(format!(
                "{base}{}",
                if wasm.starts_with('/') {
                    wasm.clone()
                } else {
                    format!("/{page}/{wasm}")
                }
            ))
            .send()
            .await?;
        assert_eq!(wasm.status(), 200, "/{page}/'s wasm");
        assert!(wasm.bytes().await?.starts_with(b"\0asm"));
    }
    // They run in a browser: the size-first release profile (stripped, panics abort) must
    // leave nothing out that the pages need. Opened without a token, each renders its
    // signed-out view.
    let browser = Browser::start().await?;
    for (page, rendered) in [
        ("widget", "[data-testid=connection-status]"),
        ("admin", "[data-testid=sign-in]"),
    ] {
        browser.client.goto(&format!("{base}/{page}/")).await?;
        browser
            .wait_for(rendered)
            .await
            .with_context(|| format!("the release build of /{page}/ did not render"))?;
    }
    browser.close().await;

    // A rep on the deployed instance gets a call the simulator rings: through Redis from the
    // binding, as one instance of a deployment with several.
    let (mut rep, _welcome) = WsClient::signed_in_at(
        &stack,
        &format!("ws://127.0.0.1:{port}/v1/agent/ws"),
        ALICE,
        None,
    )
    .await?;
    let (number, _, name) = stack.single_match_caller()?;
    let call = stack.place_call(&number, ALICE).await?;
    let frame = rep
        .recv_call(&call, "the call at the deployed instance", |_| true)
        .await?;
    assert!(frame.to_string().contains(&name), "{frame}");

    let _ = std::fs::remove_dir_all(&app);
    Ok(())
}
