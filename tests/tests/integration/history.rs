//! The rep's recent calls in the widget: a call that rang out unanswered is listed as missed,
//! stays listed across a reload (the relay's snapshot after a reload holds only calls in
//! progress, so the row comes from the widget's own storage), and its Call back places the call.

use anyhow::Result;
use cti_tests::browser::{Browser, WIDGET_FRAME};
use cti_tests::{Provider, Stack, eventually};

const AGENT: &str = "alice@example.com";

#[tokio::test]
async fn a_missed_call_is_called_back_from_the_history() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;
    let (number, e164, name) = stack.single_match_caller()?;

    // The caller gives up before the rep answers.
    let missed = stack.place_call(&number, AGENT).await?;
    browser.wait_caller(&name).await?;
    stack.hang_up_through(Provider::Generic, &missed).await?;
    let row = format!("[data-testid=history-row][data-call-id=\"{missed}\"]");
    browser
        .in_widget(|b| async move {
            b.wait_for("[data-testid=call-state][data-state=ended]")
                .await?;
            b.wait_for(&format!("{row}[data-outcome=missed]")).await
        })
        .await?;

    // A reload: the ended call is no part of the relay's snapshot, the history still has it.
    browser.client.refresh().await?;
    browser.enter_frame(WIDGET_FRAME).await?;
    browser
        .wait_for("[data-testid=connection-status][data-state=connected]")
        .await?;
    let row = format!("[data-testid=history-row][data-call-id=\"{missed}\"]");
    browser
        .wait_for(&format!("{row}[data-outcome=missed]"))
        .await?;
    assert!(
        browser.text("[data-testid=history-missed]").await.is_some(),
        "the closed section says a call was missed"
    );
    browser.click("[data-testid=history-toggle]").await?;
    let caller = browser
        .text(&format!("{row} [data-testid=history-caller]"))
        .await
        .unwrap_or_default();
    assert!(caller.contains(&name), "the row names {name:?}: {caller:?}");
    let button = format!("{row} [data-testid=btn-call-back]");
    assert_eq!(
        browser.attr(&button, "data-number").await.as_deref(),
        Some(e164.as_str())
    );
    let label = browser
        .attr(&button, "aria-label")
        .await
        .unwrap_or_default();
    assert!(
        label.contains(&name),
        "the button names whom it calls: {label:?}"
    );
    browser.click(&button).await?;

    // The simulated PBX is asked to place the call to that number, for this rep.
    let back = eventually("the PBX to place the call back", || async {
        stack
            .sim
            .sim
            .pbx
            .calls()
            .into_iter()
            .find(|c| c.call_id != missed && c.to == e164)
    })
    .await?;
    assert_eq!(back.agent, AGENT, "the call back is the rep's own");
    browser
        .wait_for("[data-testid=call-card] [data-testid=call-state][data-state=ringing]")
        .await?;
    browser.leave_frame().await?;
    browser.close().await;
    Ok(())
}
