//! Ring to screen pop in a real browser: the simulated V2 host page frames the widget, a call
//! rings, the rep answers and hangs up, and the host receives exactly the CTI payloads V2 needs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cti_protocol::host::{external_reference, is_v2_reference};
use cti_tests::browser::Browser;
use cti_tests::pop_load::{host_pop, ring_to_pop};
use cti_tests::{Provider, Stack, eventually};

const AGENT: &str = "alice@example.com";
use cti_tests::browser::WIDGET_FRAME as WIDGET;

/// The rep's newest ringing call as the relay holds it.
async fn ringing_call(stack: &Stack) -> Result<cti_relay::calls::Leg> {
    eventually("the relay to hold the ringing call", || async {
        stack
            .relay
            .state
            .calls
            .active_for_agent("demo", AGENT)
            .await
            .ok()?
            .pop()
    })
    .await
}

async fn ring_from(browser: &Browser, number: &str) -> Result<()> {
    let input = browser
        .client
        .find(fantoccini::Locator::Css("#caller-number"))
        .await?;
    input.clear().await?;
    input.send_keys(number).await?;
    browser.click("#ring-button").await
}

/// Where `cargo xtask test` wants the measured ring-to-pop (`CTI_RING_TO_POP_REPORT`, in its
/// target directory); a plain `cargo test` only prints it.
fn report_path() -> Option<PathBuf> {
    std::env::var_os("CTI_RING_TO_POP_REPORT").map(PathBuf::from)
}

fn screenshot_path() -> PathBuf {
    // `CTI_UPDATE_SCREENSHOT=1` refreshes the README's picture; otherwise it goes to target/.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::var_os("CTI_UPDATE_SCREENSHOT").is_some() {
        root.join("docs/widget-call.png")
    } else {
        root.join("target/widget-call.png")
    }
}

/// The payloads V2 would have refused, which should be none.
async fn refused(stack: &Stack) -> Result<Vec<serde_json::Value>> {
    Ok(stack
        .host_payloads()
        .await?
        .into_iter()
        .filter(|p| !p["refused"].is_null())
        .collect())
}

#[tokio::test]
async fn ring_pop_answer_hang_up_in_chromium() -> Result<()> {
    ring_pop_answer_hang_up(Provider::Generic).await
}

#[tokio::test]
async fn ring_pop_answer_hang_up_in_chromium_through_genesys_cloud() -> Result<()> {
    ring_pop_answer_hang_up(Provider::Genesys).await
}

#[tokio::test]
async fn ring_pop_answer_hang_up_in_chromium_through_ringcentral() -> Result<()> {
    ring_pop_answer_hang_up(Provider::RingCentral).await
}

/// The whole story in a browser, the host page's "Ring me" ringing through `provider`'s
/// simulator over that provider's own protocol.
pub(crate) async fn ring_pop_answer_hang_up(provider: Provider) -> Result<()> {
    let stack = Stack::start_through(provider, |_| {}).await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;

    // A known caller.
    let (dialled, e164, name) = stack.single_match_caller()?;
    ring_from(&browser, &dialled).await?;
    browser.enter_frame(WIDGET).await?;
    browser
        .wait_text(
            "[data-testid=caller-name]",
            &format!("caller name {name:?}"),
            |t| t.contains(&name),
        )
        .await?;
    let rendered_at: u64 = browser
        .attr("[data-testid=caller-name]", "data-rendered-at")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let call = ringing_call(&stack).await?;
    assert!(
        rendered_at >= call.received_at_ms,
        "the widget stamps when it rendered the caller (data-rendered-at)"
    );
    browser.leave_frame().await?;
    // Ring-to-pop as `cargo xtask bench pop` takes it, from the relay receiving the webhook
    // (the simulated PBX sent it).
    let pop = host_pop(&stack, &call.id).await?;
    let line = format!(
        "ring-to-pop: {} ms (webhook received -> NOTIFY at the V2 host page)",
        ring_to_pop(call.received_at_ms, &pop).as_millis()
    );
    println!("{} {line}", provider.name());
    if provider == Provider::Generic
        && let Some(path) = report_path()
    {
        // `cargo xtask test` prints this after the run (test output is captured when tests pass).
        std::fs::write(path, format!("{line}\n"))?;
    }
    let notify = pop.entry;
    assert_eq!(notify["payload"]["ANI"], e164.as_str());
    assert_eq!(notify["payload"]["EventType"], "INBOUND");
    assert_eq!(notify["ani_ok"], true);
    // The simulators' ids (`call-<hex>`, Genesys's UUIDs, RingCentral's `s-<hex>`, Webex's
    // base64 callSessionIds of 48 characters) are not ids V2 takes: they arrive mapped. Finesse's
    // dialog ids are digits, which V2 takes as they are.
    assert!(
        !is_v2_reference(&call.id) || provider == Provider::Finesse,
        "{}",
        call.id
    );
    let reference = notify["payload"]["ExternalReferenceID"]
        .as_str()
        .context("a reference")?;
    assert_eq!(reference, external_reference(&call.id));
    assert!(is_v2_reference(reference), "{reference}");
    assert_eq!(
        notify["payload"]["ExternalOriginalReferenceID"],
        serde_json::Value::Null
    );
    browser
        .wait_text("#pop-target", "the host to name the record V2 pops", |t| {
            t.contains(&name)
        })
        .await?;

    browser.enter_frame(WIDGET).await?;
    if provider == Provider::Teams {
        // The rep answers in the Teams client: Graph answers no user's call for them.
        let answered = stack
            .http
            .post(format!(
                "{}/sim/teams/calls/{}/answer",
                stack.sim.url(),
                call.id
            ))
            .send()
            .await?;
        anyhow::ensure!(answered.status() == 204, "{}", answered.status());
    } else {
        browser.click("[data-testid=btn-answer]").await?;
    }
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;
    browser.leave_frame().await?;
    stack.wait_host_action(&call.id, "ACCEPT").await?;
    if provider == Provider::Generic {
        let png = browser.client.screenshot().await?;
        let path = screenshot_path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, png)?;
    }

    browser.enter_frame(WIDGET).await?;
    browser.click("[data-testid=btn-hangup]").await?;
    browser
        .wait_for("[data-testid=call-state][data-state=ended]")
        .await?;
    browser.leave_frame().await?;
    let end = stack.wait_host_action(&call.id, "END").await?;
    assert_eq!(end["payload"]["EventType"], "UPDATEACTIVITY");
    let actions = stack.host_action_names(&call.id).await?;
    assert_eq!(
        actions,
        ["NOTIFY", "ACCEPT", "END"],
        "one payload per moment, in order"
    );
    assert_eq!(refused(&stack).await?, Vec::<serde_json::Value>::new());

    // An unknown caller: the card says so and the host still gets E.164.
    ring_from(&browser, "+41 31 555 01 99").await?;
    browser.enter_frame(WIDGET).await?;
    browser
        .wait_text(
            "[data-testid=caller-name]",
            "the unknown caller card",
            |t| t.contains("Unknown caller"),
        )
        .await?;
    browser.leave_frame().await?;
    let unknown = ringing_call(&stack).await?;
    let notify = stack.wait_host_action(&unknown.id, "NOTIFY").await?;
    assert_eq!(notify["payload"]["ANI"], "+41315550199");

    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn the_rep_picks_another_match_and_v2_is_told_which_record() -> Result<()> {
    let stack = Stack::start().await?;
    // A main line shared by an account and some of its contacts.
    let (number, account) = stack.shared_main_line(|_| false)?;
    let account_id = account["id"].as_str().context("account id")?;
    let account_name = account["formattedName"].as_str().context("name")?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;

    ring_from(&browser, &number).await?;
    let call = ringing_call(&stack).await?;
    let first = call.pop.clone().context("a ranked first match")?;
    assert_ne!(first.id, account_id, "the person comes before the company");
    let notify = stack.wait_host_action(&call.id, "NOTIFY").await?;
    assert_eq!(notify["payload"]["Custom_1"], first.display_id.as_str());
    browser
        .wait_text("#pop-target", "the host to pop the ranked record", |t| {
            t.contains(&first.name)
        })
        .await?;

    browser.enter_frame(WIDGET).await?;
    browser.choose_match(account_id, account_name).await?;
    browser.click("[data-testid=btn-answer]").await?;
    browser.leave_frame().await?;
    let accept = stack.wait_host_action(&call.id, "ACCEPT").await?;
    assert_eq!(
        accept["payload"]["Custom_1"], account["displayId"],
        "V2 identifies the chosen record on ACCEPT"
    );
    let remembered = stack
        .relay
        .state
        .numbers
        .choices
        .get("demo", AGENT, &number)
        .await?;
    assert_eq!(remembered.as_deref(), Some(account_id));
    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn the_rep_connects_v2_from_the_widget_in_a_new_window() -> Result<()> {
    let mut stack = Stack::start().await?;
    stack.use_own_v2_sign_in().await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;
    let host = browser.client.window().await?;

    // The widget says her calls wait for her V2 sign-in, and starts it in a new window.
    browser
        .in_widget(|b| async move { b.click("[data-testid=btn-v2-connect]").await })
        .await?;
    let sign_in = eventually("the V2 sign-in window", || async {
        let windows = browser.client.windows().await.ok()?;
        windows.into_iter().find(|w| *w != host)
    })
    .await?;
    browser.client.switch_to_window(sign_in).await?;
    // The identity provider knows her (the simulator signs her in at once) and returns to the
    // relay, which keeps her sign-in.
    browser
        .wait_text(
            "[data-testid=v2-connect-result]",
            "the relay to say V2 is connected",
            |t| t.contains("V2 is connected for alice@example.com"),
        )
        .await?;
    browser.client.close_window().await?;
    browser.client.switch_to_window(host).await?;

    // Back in V2, the widget drops its notice without a reload.
    browser
        .in_widget(|b| async move {
            eventually("the Connect V2 notice to go", || async {
                let notice = b
                    .client
                    .find(fantoccini::Locator::Css("[data-testid=v2-connect]"))
                    .await;
                notice.is_err().then_some(())
            })
            .await
        })
        .await?;
    assert!(
        stack
            .relay
            .state
            .authority
            .vault
            .get("demo", AGENT)
            .await?
            .is_some()
    );
    browser.close().await;
    Ok(())
}
