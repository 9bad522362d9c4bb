//! The panel's language in a real browser: it follows the language V2 passes (the host page
//! opened with `sap-language`), the rep can change it in the panel, and the rep's choice then
//! outlives a reload that passes V2's language again.

use anyhow::Result;
use cti_tests::Stack;
use cti_tests::browser::{Browser, WIDGET_FRAME};

const AGENT: &str = "alice@example.com";
const STATUS: &str = "[data-testid=connection-status][data-state=connected]";

/// Waits until the connection status reads `word` (in the panel's language).
async fn status_reads(browser: &Browser, word: &str) -> Result<()> {
    browser
        .wait_text(STATUS, &format!("the status to read {word:?}"), |text| {
            text.contains(word)
        })
        .await
        .map(drop)
}

#[tokio::test]
async fn the_panel_speaks_v2s_language_until_the_rep_picks_another() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start().await?;
    let host = format!(
        "{}/sim/host/?agent={AGENT}&sap-language=DE",
        stack.sim.url()
    );

    browser.client.goto(&host).await?;
    browser.enter_frame(WIDGET_FRAME).await?;
    browser.wait_for(STATUS).await?;
    browser.wait_language("de").await?;
    status_reads(&browser, "Verbunden").await?;

    browser.pick_language("fr").await?;
    status_reads(&browser, "Connecté").await?;
    browser.leave_frame().await?;

    // V2 passes its language again; the rep's pick stays.
    browser.client.goto(&host).await?;
    browser.enter_frame(WIDGET_FRAME).await?;
    browser.wait_for(STATUS).await?;
    browser.wait_language("fr").await?;
    status_reads(&browser, "Connecté").await?;
    browser.leave_frame().await?;
    browser.close().await;
    Ok(())
}
