//! The tenant admin page in headless Chromium: a subscribed customer's administrator opens
//! `/admin/` with their sign-in, is refused a value the relay cannot take (the error next to its
//! field), tests the connections to the simulated V2 and the generic webhook PBX, saves, and the
//! next call rung for that tenant pops at a rep with the saved configuration.

use anyhow::{Context, Result, ensure};
use cti_tests::browser::Browser;
use cti_tests::{Stack, WsClient, eventually};
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::subscribed::{self, TENANT};

const ADMIN: &str = "admin@example.com";
const REP: &str = "alice@example.com";
const WEBHOOK_SECRET: &str = "tenant-webhook-secret-0815";

/// The administrator's token from the simulated XSUAA, as its sign-in would hand it over.
async fn admin_token(stack: &Stack) -> Result<String> {
    let answer: Value = stack
        .http
        .get(format!("{}/sim/token", stack.sim.url()))
        .query(&[("agent", ADMIN), ("tenant", TENANT), ("role", "admin")])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    answer["token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no token in {answer}"))
}

/// Replaces the text of the input matching `css`.
async fn fill(browser: &Browser, css: &str, text: &str) -> Result<()> {
    browser.wait_for(css).await?;
    let input = browser.client.find(Locator::Css(css)).await?;
    input.clear().await?;
    input
        .send_keys(text)
        .await
        .with_context(|| format!("typing into {css}"))
}

/// The label text of the input with `id`: each input must have one (`<label for>`).
async fn label_of(browser: &Browser, id: &str) -> Option<String> {
    browser.text(&format!("label[for='{id}']")).await
}

#[tokio::test]
async fn an_admin_configures_a_subscribed_tenant_in_chromium_and_its_next_call_pops() -> Result<()>
{
    let stack = subscribed::start(None).await;
    let registry = subscribed::registry_token(&stack).await;
    let subscribed = subscribed::subscribe(&stack, Some(&registry), TENANT).await;
    ensure!(subscribed.status() == 200, "subscription: {subscribed:?}");

    let browser = Browser::start().await?;
    let token = admin_token(&stack).await?;
    browser
        .client
        .goto(&format!("{}/admin/#token={token}", stack.relay.url()))
        .await?;
    browser.wait_for("#field-v2_url").await?;
    // The token is kept by the tab, not left in the address bar.
    let address = browser.client.current_url().await?;
    ensure!(
        !address.as_str().contains(&token),
        "the token is still in the address bar: {address}"
    );
    for id in [
        "field-v2_url",
        "field-v2_password",
        "field-provider",
        "field-default_region",
    ] {
        ensure!(label_of(&browser, id).await.is_some(), "{id} has no label");
    }

    let sim = stack.sim.url();
    let sim_config = &stack.sim.sim.config;
    fill(&browser, "#field-v2_url", &sim).await?;
    fill(&browser, "#field-v2_user", &sim_config.v2_user).await?;
    fill(&browser, "#field-v2_password", &sim_config.v2_password).await?;
    fill(&browser, "#field-dispositions", "Sold\nCall back").await?;
    // The generic webhook PBX is the provider a new tenant starts with.
    let provider = browser
        .client
        .find(Locator::Css("#field-provider"))
        .await?
        .prop("value")
        .await?;
    ensure!(
        provider.as_deref() == Some("generic"),
        "{provider:?} preselected"
    );
    fill(&browser, "#field-webhook_secret", WEBHOOK_SECRET).await?;
    fill(&browser, "#field-control_url", &format!("{sim}/sim/pbx")).await?;

    // A region the relay does not know: refused, and said next to the region's input.
    fill(&browser, "#field-default_region", "XX").await?;
    browser.click("[data-testid=save]").await?;
    let said = browser
        .wait_text("#field-default_region-error", "the region's error", |t| {
            !t.is_empty()
        })
        .await?;
    ensure!(said.contains("XX"), "the region's error: {said}");
    ensure!(
        browser
            .attr("#field-default_region", "aria-invalid")
            .await
            .as_deref()
            == Some("true"),
        "the region's input is not marked invalid"
    );
    ensure!(
        stack.relay.state.tenant(TENANT).is_none(),
        "a refused save configured the tenant"
    );

    fill(&browser, "#field-default_region", "CH").await?;
    browser.click("[data-testid=test]").await?;
    for check in ["v2", "provider"] {
        let css = format!("[data-testid=check-{check}]");
        browser.wait_for(&css).await?;
        let text = browser.text(&css).await.unwrap_or_default();
        ensure!(
            browser.attr(&css, "data-ok").await.as_deref() == Some("true"),
            "the {check} test failed: {text}"
        );
    }

    browser.click("[data-testid=save]").await?;
    browser
        .wait_text("[data-testid=saved]", "the save to be confirmed", |t| {
            t.starts_with("Saved")
        })
        .await?;
    // Saved secrets are shown as stored, never as themselves.
    let placeholder = browser.attr("#field-webhook_secret", "placeholder").await;
    ensure!(
        placeholder.as_deref() == Some("stored"),
        "the stored secret shows as {placeholder:?}"
    );
    // (The V2 password here is the simulator's short `demo`, a word pages hold anyway.)
    let page = browser.client.source().await?;
    ensure!(
        !page.contains(WEBHOOK_SECRET),
        "the webhook secret is in the page"
    );

    // The next call for the tenant pops at its rep with that configuration: the record comes
    // from the configured V2, the dispositions are the saved ones.
    let mut rep = WsClient::connect(&stack.ws_url()).await?;
    rep.send_json(&json!({
        "type": "hello",
        "token": stack.sim.sim.idp.issue(REP, TENANT, 3600),
    }))
    .await?;
    let welcome = rep.recv_json().await?;
    ensure!(welcome["type"] == "welcome", "{welcome}");
    ensure!(
        welcome.to_string().contains("Call back"),
        "the saved dispositions are not the rep's: {welcome}"
    );
    let (number, _, name) = stack.single_match_caller()?;
    let call = "admin-page-1";
    let event = json!({
        "id": "admin-page-1-ringing", "call_id": call, "type": "ringing",
        "direction": "inbound", "from": number, "to": "+41 44 999 00 00", "agent": REP,
        "at": cti_tests::now_rfc3339(),
    })
    .to_string();
    let (timestamp, signature) = cti_sim::pbx::sign_now(WEBHOOK_SECRET, event.as_bytes());
    let accepted = stack
        .http
        .post(format!(
            "{}/v1/tenants/{TENANT}/telephony/generic",
            stack.relay.url()
        ))
        .header("content-type", "application/json")
        .header("x-cti-timestamp", timestamp)
        .header("x-cti-signature", signature)
        .body(event)
        .send()
        .await?;
    ensure!(
        accepted.status().is_success(),
        "the tenant's webhook was refused: {}",
        accepted.status()
    );
    let popped = rep
        .recv_call(call, "the call to pop at the tenant's rep", |c| {
            c["state"] == "ringing"
        })
        .await?;
    ensure!(
        popped.to_string().contains(&name),
        "the pop does not name {name}: {popped}"
    );

    // The status shows the rep connected.
    browser.click("[data-testid=refresh]").await?;
    eventually("the status to list the rep", || async {
        let reps = browser.text("[data-testid=reps]").await?;
        reps.contains(REP).then_some(())
    })
    .await?;
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn without_a_sign_in_the_admin_page_offers_one() -> Result<()> {
    let stack = subscribed::start(None).await;
    let browser = Browser::start().await?;
    browser
        .client
        .goto(&format!("{}/admin/", stack.relay.url()))
        .await?;
    browser.wait_for("[data-testid=sign-in]").await?;
    let href = browser.attr("[data-testid=sign-in]", "href").await;
    ensure!(
        href.as_deref() == Some("/v1/admin/sign-in"),
        "the sign-in link goes to {href:?}"
    );
    // A rep's token is no admin's: the page says so in words instead of showing nothing.
    let rep_token = stack.sim.sim.idp.issue(REP, TENANT, 3600);
    browser
        .client
        .goto(&format!("{}/admin/#token={rep_token}", stack.relay.url()))
        .await?;
    browser.client.refresh().await?;
    let said = browser
        .wait_text(
            "[data-testid=settings-error]",
            "the refusal in words",
            |t| !t.is_empty(),
        )
        .await?;
    ensure!(said.contains("Admin"), "the refusal says {said:?}");
    browser.close().await;
    Ok(())
}
