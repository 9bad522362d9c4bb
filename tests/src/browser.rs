//! Headless Chromium through chromedriver, for tests that must see what a rep sees.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::eventually;

/// One chromedriver with one Chromium session; both end when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("profile", &self.profile)
            .finish()
    }
}

fn tool(var: &str, default: &str) -> Result<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if !path.exists() {
        bail!(
            "{} not found (set {var} or run `cargo xtask test`, which installs it)",
            path.display()
        );
    }
    Ok(path)
}

impl Browser {
    pub async fn start() -> Result<Browser> {
        let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver")?;
        let chromium = tool("CHROMIUM", "/usr/bin/chromium")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let profile =
            std::env::temp_dir().join(format!("cti-e2e-profile-{}-{port}", std::process::id()));
        let webdriver = format!("http://127.0.0.1:{port}");
        let status_url = format!("{webdriver}/status");
        let http = reqwest::Client::new();
        eventually("chromedriver to answer", || async {
            let response = http.get(&status_url).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1280,860",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .context("opening a Chromium session")?;
        Ok(Browser {
            client,
            driver,
            profile,
        })
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.attr(name).await.ok().flatten()
    }

    /// Waits until an element matching `css` exists.
    pub async fn wait_for(&self, css: &str) -> Result<()> {
        eventually(&format!("an element matching {css}"), || async {
            self.client.find(Locator::Css(css)).await.ok().map(|_| ())
        })
        .await
    }

    /// Waits until the element's text satisfies `pred`; returns the text.
    pub async fn wait_text(
        &self,
        css: &str,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        eventually(what, || async {
            let text = self.text(css).await?;
            pred(&text).then_some(text)
        })
        .await
    }

    /// Clicks the first element matching `css` once it exists and is enabled.
    pub async fn click(&self, css: &str) -> Result<()> {
        let element = eventually(&format!("a clickable {css}"), || async {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            element.is_enabled().await.ok()?.then_some(element)
        })
        .await?;
        element
            .click()
            .await
            .with_context(|| format!("clicking {css}"))
    }

    /// Switches into the iframe matching `css`.
    pub async fn enter_frame(&self, css: &str) -> Result<()> {
        self.wait_for(css).await?;
        let frame = self.client.find(Locator::Css(css)).await?;
        frame.enter_frame().await?;
        Ok(())
    }

    pub async fn leave_frame(&self) -> Result<()> {
        self.client.enter_parent_frame().await?;
        Ok(())
    }

    /// Takes the page off the network (or back on), as the browser's offline mode does: the
    /// page sees `offline` / `online` events and its connections fail.
    pub async fn set_offline(&self, offline: bool) -> Result<()> {
        self.cdp("Network.enable", serde_json::json!({})).await?;
        self.cdp(
            "Network.emulateNetworkConditions",
            serde_json::json!({"offline": offline, "latency": 0,
                "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    async fn cdp(&self, cmd: &str, params: serde_json::Value) -> Result<()> {
        self.client
            .issue_cmd(Cdp {
                cmd: cmd.to_string(),
                params,
            })
            .await
            .with_context(|| format!("DevTools command {cmd}"))?;
        Ok(())
    }

    /// Ends the browser session, then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        drop(self);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// chromedriver's passage to the DevTools protocol (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}
