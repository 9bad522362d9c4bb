//! One rep, several V2 tabs: exactly one widget leads (holds the WebSocket and tells its host
//! page about calls), the others mirror it and their buttons work, and closing the leader hands
//! over without a second pop.

use anyhow::{Context, Result};
use cti_tests::browser::Browser;
use cti_tests::{Stack, eventually};
use fantoccini::wd::WindowHandle;
use serde_json::Value;

const AGENT: &str = "alice@example.com";
const WIDGET: &str = "#cti-frame";

/// Opens the host page in a new tab; returns its window and page id.
async fn open_tab(browser: &Browser, stack: &Stack, first: bool) -> Result<(WindowHandle, String)> {
    let handle = if first {
        browser.client.window().await?
    } else {
        let opened = browser.client.new_window(true).await?;
        browser
            .client
            .switch_to_window(opened.handle.clone())
            .await?;
        opened.handle
    };
    browser
        .client
        .goto(&format!("{}/sim/host/?agent={AGENT}", stack.sim.url()))
        .await?;
    browser.wait_for("body[data-page-id]").await?;
    let page = browser
        .attr("body", "data-page-id")
        .await
        .context("page id")?;
    browser.enter_frame(WIDGET).await?;
    browser
        .wait_for("[data-testid=connection-status][data-state=connected]")
        .await?;
    browser.leave_frame().await?;
    Ok((handle, page))
}

/// (action, page id) of every payload the host pages received for `call_id`.
async fn payloads(stack: &Stack, call_id: &str) -> Result<Vec<(String, String)>> {
    Ok(stack
        .host_payloads()
        .await?
        .into_iter()
        .filter(|p| p["payload"]["ExternalReferenceID"] == call_id)
        .map(|p| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (text(&p["payload"]["Action"]), text(&p["page_id"]))
        })
        .collect())
}

async fn wait_payload(stack: &Stack, call_id: &str, action: &str) -> Result<()> {
    eventually(&format!("{action} for {call_id}"), || async {
        payloads(stack, call_id)
            .await
            .ok()?
            .iter()
            .any(|(a, _)| a == action)
            .then_some(())
    })
    .await
}

async fn shows_caller(browser: &Browser, tab: &WindowHandle, name: &str) -> Result<()> {
    browser.client.switch_to_window(tab.clone()).await?;
    browser.enter_frame(WIDGET).await?;
    browser
        .wait_text("[data-testid=caller-name]", "the caller in this tab", |t| {
            t.contains(name)
        })
        .await?;
    browser.leave_frame().await
}

#[tokio::test]
async fn one_leader_among_tabs_mirrors_to_the_others_and_hands_over() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start().await?;
    let (first, first_page) = open_tab(&browser, &stack, true).await?;
    let (second, _) = open_tab(&browser, &stack, false).await?;
    let (third, _) = open_tab(&browser, &stack, false).await?;

    // A call shows in every tab and pops once, in the leader's host page.
    let (number, _, name) = stack.single_match_caller()?;
    let call = stack.place_call(&number, AGENT).await?;
    for tab in [&first, &second, &third] {
        shows_caller(&browser, tab, &name).await?;
    }
    wait_payload(&stack, &call, "NOTIFY").await?;

    // The rep answers in a follower tab: the leader carries it out.
    browser.client.switch_to_window(second.clone()).await?;
    browser.enter_frame(WIDGET).await?;
    browser.click("[data-testid=btn-answer]").await?;
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;
    // Notes typed in this tab show in the others.
    browser
        .client
        .find(fantoccini::Locator::Css("[data-testid=notes]"))
        .await?
        .send_keys("Wants 40 units")
        .await?;
    browser.leave_frame().await?;
    browser.client.switch_to_window(third.clone()).await?;
    browser.enter_frame(WIDGET).await?;
    eventually("the notes in another tab", || async {
        let element = browser
            .client
            .find(fantoccini::Locator::Css("[data-testid=notes]"))
            .await
            .ok()?;
        let value = element.prop("value").await.ok()??;
        (value == "Wants 40 units").then_some(())
    })
    .await?;
    browser.leave_frame().await?;
    wait_payload(&stack, &call, "ACCEPT").await?;
    stack
        .http
        .post(format!("{}/sim/calls/{call}/hangup", stack.sim.url()))
        .send()
        .await?;
    wait_payload(&stack, &call, "END").await?;
    let seen = payloads(&stack, &call).await?;
    let actions: Vec<&str> = seen.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["NOTIFY", "ACCEPT", "END"], "{seen:?}");
    assert!(
        seen.iter().all(|(_, page)| *page == first_page),
        "only the leader (the first tab) talks to its host: {seen:?}"
    );

    // The leader's tab closes; another takes over, and the next call pops once, there.
    browser.client.switch_to_window(first.clone()).await?;
    browser.client.close_window().await?;
    browser.client.switch_to_window(second.clone()).await?;
    browser.enter_frame(WIDGET).await?;
    browser
        .wait_for("[data-testid=connection-status][data-state=connected]")
        .await?;
    browser.leave_frame().await?;
    let next = stack.place_call(&number, AGENT).await?;
    for tab in [&second, &third] {
        shows_caller(&browser, tab, &name).await?;
    }
    wait_payload(&stack, &next, "NOTIFY").await?;
    stack
        .http
        .post(format!("{}/sim/calls/{next}/hangup", stack.sim.url()))
        .send()
        .await?;
    wait_payload(&stack, &next, "END").await?;
    let seen = payloads(&stack, &next).await?;
    let actions: Vec<&str> = seen.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["NOTIFY", "END"], "{seen:?}");
    let leader_page = &seen[0].1;
    assert!(seen.iter().all(|(_, page)| page == leader_page));
    assert_ne!(leader_page, &first_page, "the closed tab is gone");
    assert_eq!(
        payloads(&stack, &call).await?.len(),
        3,
        "the new leader did not pop the earlier call again"
    );
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn a_reload_during_a_call_brings_back_the_panel_and_the_chosen_record_without_a_second_pop()
-> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start().await?;
    let (tab, _) = open_tab(&browser, &stack, true).await?;
    // A main line shared by an account and its contacts; the rep will pick the account.
    let (number, account) = stack
        .sim
        .sim
        .v2
        .records("accounts")
        .into_iter()
        .find_map(|account| {
            let number = account["defaultCommunication"]["phoneNormalisedNumber"]
                .as_str()?
                .to_string();
            (stack.sim.sim.v2.lookup_phone(&number).len() >= 2).then_some((number, account))
        })
        .context("a shared main line")?;
    let account_id = account["id"].as_str().context("id")?;
    let account_name = account["formattedName"].as_str().context("name")?;
    let call = stack.place_call(&number, AGENT).await?;
    wait_payload(&stack, &call, "NOTIFY").await?;
    browser.enter_frame(WIDGET).await?;
    browser.click("[data-testid=other-matches] summary").await?;
    browser
        .click(&format!(
            "li[data-record-id=\"{account_id}\"] button.choose-match"
        ))
        .await?;
    browser
        .wait_text("[data-testid=caller-name]", "the chosen account", |t| {
            t.contains(account_name)
        })
        .await?;
    browser
        .client
        .find(fantoccini::Locator::Css("[data-testid=notes]"))
        .await?
        .send_keys("Asked about the fleet renewal")
        .await?;
    browser.leave_frame().await?;

    // The rep reloads V2 mid-call.
    browser.client.switch_to_window(tab.clone()).await?;
    browser.client.refresh().await?;
    browser.enter_frame(WIDGET).await?;
    browser
        .wait_for("[data-testid=connection-status][data-state=connected]")
        .await?;
    browser
        .wait_text(
            "[data-testid=caller-name]",
            "the call panel with the chosen record after the reload",
            |t| t.contains(account_name),
        )
        .await?;
    let notes = browser
        .client
        .find(fantoccini::Locator::Css("[data-testid=notes]"))
        .await?
        .prop("value")
        .await?;
    assert_eq!(
        notes.as_deref(),
        Some("Asked about the fleet renewal"),
        "the draft survived"
    );
    browser.leave_frame().await?;
    stack
        .http
        .post(format!("{}/sim/calls/{call}/hangup", stack.sim.url()))
        .send()
        .await?;
    wait_payload(&stack, &call, "END").await?;
    let actions: Vec<String> = payloads(&stack, &call)
        .await?
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(actions, ["NOTIFY", "END"], "the reload did not pop again");
    browser.close().await;
    Ok(())
}
