//! One rep, several V2 tabs: exactly one widget leads (holds the WebSocket and tells its host
//! page about calls), the others mirror it and their buttons work, and closing the leader hands
//! over without a second pop.

use anyhow::{Context, Result};
use cti_tests::browser::Browser;
use cti_tests::{Stack, eventually};
use fantoccini::wd::WindowHandle;

const AGENT: &str = "alice@example.com";
use cti_tests::browser::WIDGET_FRAME as WIDGET;

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
    browser.open_host(&stack.sim.url(), AGENT).await?;
    let page = browser
        .attr("body", "data-page-id")
        .await
        .context("page id")?;
    Ok((handle, page))
}

async fn shows_caller(browser: &Browser, tab: &WindowHandle, name: &str) -> Result<()> {
    browser.client.switch_to_window(tab.clone()).await?;
    browser.wait_caller(name).await
}

/// (action, page id) of every payload the host pages received for `call_id`.
async fn payloads(stack: &Stack, call_id: &str) -> Result<Vec<(String, String)>> {
    Ok(stack
        .host_actions(call_id)
        .await?
        .into_iter()
        .map(|p| (p.action, p.page_id))
        .collect())
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
    stack.wait_host_action(&call, "NOTIFY").await?;

    // The rep answers in a follower tab: the leader carries it out.
    browser.client.switch_to_window(second.clone()).await?;
    browser.enter_frame(WIDGET).await?;
    browser.click("[data-testid=btn-answer]").await?;
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;
    // Notes typed in this tab show in the others.
    browser.type_notes("Wants 40 units").await?;
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
    stack.wait_host_action(&call, "ACCEPT").await?;
    stack
        .http
        .post(format!("{}/sim/calls/{call}/hangup", stack.sim.url()))
        .send()
        .await?;
    stack.wait_host_action(&call, "END").await?;
    let seen = payloads(&stack, &call).await?;
    let actions: Vec<&str> = seen.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["NOTIFY", "ACCEPT", "END"], "{seen:?}");
    assert!(
        seen.iter().all(|(_, page)| *page == first_page),
        "only the leader (the first tab) talks to its host: {seen:?}"
    );
    let refused: Vec<_> = stack
        .host_payloads()
        .await?
        .into_iter()
        .filter(|p| !p["refused"].is_null())
        .collect();
    assert!(refused.is_empty(), "V2 would refuse {refused:?}");

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
    stack.wait_host_action(&next, "NOTIFY").await?;
    stack
        .http
        .post(format!("{}/sim/calls/{next}/hangup", stack.sim.url()))
        .send()
        .await?;
    stack.wait_host_action(&next, "END").await?;
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
    let (number, account) = stack.shared_main_line(|_| false)?;
    let account_id = account["id"].as_str().context("id")?;
    let account_name = account["formattedName"].as_str().context("name")?;
    let call = stack.place_call(&number, AGENT).await?;
    stack.wait_host_action(&call, "NOTIFY").await?;
    browser.enter_frame(WIDGET).await?;
    browser.choose_match(account_id, account_name).await?;
    browser.type_notes("Asked about the fleet renewal").await?;
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
    stack.wait_host_action(&call, "END").await?;
    let actions: Vec<String> = payloads(&stack, &call)
        .await?
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(actions, ["NOTIFY", "END"], "the reload did not pop again");
    browser.close().await;
    Ok(())
}
