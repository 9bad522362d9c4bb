//! Headless Chromium through chromedriver, for tests that must see what a rep sees.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::eventually;

/// The stand-in page's CTI iframe, where the widget runs.
pub const WIDGET_FRAME: &str = "#cti-frame";

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

    /// Opens the V2 stand-in page for `agent` and waits until its widget is connected.
    pub async fn open_host(&self, sim_url: &str, agent: &str) -> Result<()> {
        self.client
            .goto(&format!("{sim_url}/sim/host/?agent={agent}"))
            .await?;
        self.in_widget(|b| async move {
            b.wait_for("[data-testid=connection-status][data-state=connected]")
                .await
        })
        .await
    }

    /// Runs `steps` inside the widget's frame of the current page, then leaves it.
    pub async fn in_widget<'a, F, Fut>(&'a self, steps: F) -> Result<()>
    where
        F: FnOnce(&'a Browser) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        self.enter_frame(WIDGET_FRAME).await?;
        let outcome = steps(self).await;
        self.leave_frame().await?;
        outcome
    }

    /// Picks the panel's language from its picker (call it inside the widget's frame) and waits
    /// until the panel speaks it.
    pub async fn pick_language(&self, code: &str) -> Result<()> {
        self.client
            .execute(
                "const select = document.querySelector('[data-testid=language]');
                 select.value = arguments[0];
                 select.dispatchEvent(new Event('change', {bubbles: true}));
                 return true;",
                vec![json!(code)],
            )
            .await?;
        self.wait_language(code).await
    }

    /// Waits until the page in the current frame speaks `code` (its `<html lang>`).
    pub async fn wait_language(&self, code: &str) -> Result<()> {
        eventually(&format!("the panel in {code}"), || async {
            let lang = self
                .client
                .execute("return document.documentElement.lang;", Vec::new())
                .await
                .ok()?;
            (lang == json!(code)).then_some(())
        })
        .await
    }

    /// Waits until the widget shows a caller whose name contains `name`.
    pub async fn wait_caller(&self, name: &str) -> Result<()> {
        self.in_widget(|b| async move {
            b.wait_text(
                "[data-testid=caller-name]",
                &format!("caller {name:?}"),
                |t| t.contains(name),
            )
            .await
            .map(drop)
        })
        .await
    }

    /// In the widget's frame: picks another of the call's matches ("This is the caller") and
    /// waits until the card shows it.
    pub async fn choose_match(&self, record_id: &str, name: &str) -> Result<()> {
        self.click("[data-testid=other-matches] summary").await?;
        self.click(&format!(
            "li[data-record-id=\"{record_id}\"] button.choose-match"
        ))
        .await?;
        self.wait_text("[data-testid=caller-name]", "the chosen record", |t| {
            t.contains(name)
        })
        .await
        .map(drop)
    }

    /// Types `text` into the first element matching `css` once it exists.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        self.wait_for(css).await?;
        self.client
            .find(Locator::Css(css))
            .await?
            .send_keys(text)
            .await
            .with_context(|| format!("typing into {css}"))
    }

    /// Types into the notes of the (first) call on screen, in the widget's frame.
    pub async fn type_notes(&self, text: &str) -> Result<()> {
        self.client
            .find(Locator::Css("[data-testid=notes]"))
            .await?
            .send_keys(text)
            .await?;
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

    /// Emulates the operating system's light or dark preference (`prefers-color-scheme`) for
    /// the page and its frames.
    pub async fn set_color_scheme(&self, dark: bool) -> Result<()> {
        let value = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            serde_json::json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        )
        .await
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: serde_json::Value) -> Result<()> {
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
