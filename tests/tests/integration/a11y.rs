//! The widget for keyboard and screen-reader users, in headless Chromium: axe-core finds no
//! WCAG 2.2 A/AA violation in any state (idle, ringing, connected, held, wrap-up, disconnected,
//! signed out), light or dark, nothing overflows the narrowest side panel (320 px, also at 200 %
//! zoom), and a rep answers, holds, writes a note, picks an outcome and hangs up with the
//! keyboard alone.
//!
//! axe-core is not bundled: `cargo xtask test` downloads the pinned release, checks it against
//! its published integrity and names its `axe.min.js` in `CTI_AXE_CORE`. The tests inject the
//! file's text into the widget's frame through WebDriver, so no node or npm runs.
//!
//! `CTI_UPDATE_SCREENSHOTS=1` also writes the pictures in `docs/screenshots/` (each state, light
//! and dark, and one in German) that `docs/widget.md` shows.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use cti_tests::browser::{Browser, WIDGET_FRAME};
use cti_tests::{Provider, Stack, eventually, notes_in, summary_line};
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::{Value, json};

const AGENT: &str = "alice@example.com";

/// The side panel's narrowest width in V2, in CSS pixels.
const NARROWEST: u32 = 320;

/// The text of axe-core's browser build, from `CTI_AXE_CORE`.
fn axe_source() -> Result<String> {
    let Some(path) = std::env::var_os("CTI_AXE_CORE") else {
        bail!(
            "CTI_AXE_CORE is not set: it names axe-core's axe.min.js, which `cargo xtask setup` \
             downloads (and `cargo xtask test` passes); the accessibility tests cannot run without it"
        );
    };
    let path = PathBuf::from(path);
    std::fs::read_to_string(&path)
        .with_context(|| format!("reading CTI_AXE_CORE ({})", path.display()))
}

/// Where the pictures go when `CTI_UPDATE_SCREENSHOTS` is set.
fn screenshot_dir() -> Option<PathBuf> {
    std::env::var_os("CTI_UPDATE_SCREENSHOTS")
        .map(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"))
}

/// One rule axe found broken, and where.
#[derive(Debug)]
struct Violation {
    state: String,
    id: String,
    impact: String,
    help: String,
    targets: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {} ({}): {} at {}",
            self.state,
            self.id,
            self.impact,
            self.help,
            self.targets.join(", ")
        )
    }
}

/// Runs axe-core over the widget's document (the caller is in the widget's frame) with the
/// WCAG 2.0, 2.1 and 2.2 A and AA rules.
async fn axe(browser: &Browser, source: &str, state: &str) -> Result<Vec<Violation>> {
    let loaded = browser
        .client
        .execute(&format!("{source}\n;return typeof window.axe;"), Vec::new())
        .await
        .context("injecting axe-core")?;
    ensure!(loaded == json!("object"), "axe-core did not load: {loaded}");
    let outcome = browser
        .client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            window.axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
                resultTypes: ["violations"]
            }).then(
                (results) => done({violations: results.violations.map((v) => ({
                    id: v.id, impact: v.impact || "", help: v.help,
                    targets: v.nodes.map((n) => n.target.join(" "))
                }))}),
                (error) => done({error: String(error)})
            );"#,
            Vec::new(),
        )
        .await
        .context("running axe-core")?;
    if let Some(error) = outcome.get("error") {
        bail!("axe-core failed in state {state}: {error}");
    }
    let list = outcome["violations"]
        .as_array()
        .with_context(|| format!("axe-core's answer has no violations list: {outcome}"))?;
    Ok(list
        .iter()
        .map(|v| Violation {
            state: state.to_string(),
            id: text(&v["id"]),
            impact: text(&v["impact"]),
            help: text(&v["help"]),
            targets: v["targets"]
                .as_array()
                .map(|t| t.iter().map(text).collect())
                .unwrap_or_default(),
        })
        .collect())
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// Gives the widget's frame the side panel's width and its content's height, on top of the
/// host page, so what overflows shows and a screenshot of the frame is the whole panel.
async fn size_frame(browser: &Browser, width: u32) -> Result<()> {
    // Tall enough for the longest state, so a screenshot of the frame is never cut.
    browser.client.set_window_size(1280, 1600).await?;
    browser
        .client
        .execute(
            "const frame = document.querySelector(arguments[0]);
             frame.style.cssText = `position: fixed; top: 0; left: 0; z-index: 1000;
                 flex: none; border: 0; width: ${arguments[1]}px; height: 400px;`;
             return true;",
            vec![json!(WIDGET_FRAME), json!(width)],
        )
        .await?;
    fit_frame_height(browser).await
}

/// Makes the frame as tall as what it shows.
async fn fit_frame_height(browser: &Browser) -> Result<()> {
    browser.enter_frame(WIDGET_FRAME).await?;
    let height = browser
        .client
        .execute(
            "return Math.ceil(document.querySelector('.widget').getBoundingClientRect().height);",
            Vec::new(),
        )
        .await;
    browser.leave_frame().await?;
    let height = height?.as_u64().unwrap_or(400).max(120);
    browser
        .client
        .execute(
            "document.querySelector(arguments[0]).style.height = arguments[1] + 'px'; return true;",
            vec![json!(WIDGET_FRAME), json!(height)],
        )
        .await?;
    Ok(())
}

/// What is wider than the frame (in the frame): nothing, when the panel reflows.
async fn overflow(browser: &Browser) -> Result<Option<String>> {
    let found = browser
        .client
        .execute(
            "const root = document.documentElement;
             if (root.scrollWidth <= root.clientWidth) { return null; }
             const wide = [...document.querySelectorAll('body *')]
                 .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 0.5)
                 .map((e) => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : ''))
                 .slice(0, 5);
             return `scrollWidth ${root.scrollWidth} > clientWidth ${root.clientWidth}: ${wide.join(', ')}`;",
            Vec::new(),
        )
        .await?;
    Ok(found.as_str().map(str::to_string))
}

/// Everything checked in one state: axe in light and in dark, no horizontal overflow at 320 px
/// (and at 200 % zoom of the same panel), and the screenshots when asked for.
struct Checker {
    axe: String,
    violations: Vec<Violation>,
    overflows: Vec<String>,
    shots: Option<PathBuf>,
}

impl Checker {
    async fn check(&mut self, browser: &Browser, state: &str) -> Result<()> {
        for dark in [false, true] {
            let scheme = if dark { "dark" } else { "light" };
            browser.set_color_scheme(dark).await?;
            fit_frame_height(browser).await?;
            browser.enter_frame(WIDGET_FRAME).await?;
            let applied = browser
                .client
                .execute(
                    "return matchMedia('(prefers-color-scheme: dark)').matches;",
                    Vec::new(),
                )
                .await;
            let found = match applied {
                Ok(applied) if applied == json!(dark) => {
                    axe(browser, &self.axe, &format!("{state}, {scheme}")).await
                }
                Ok(applied) => Err(anyhow::anyhow!(
                    "the frame's prefers-color-scheme: dark is {applied}, wanted {dark}"
                )),
                Err(e) => Err(e.into()),
            };
            let wide = if dark {
                Ok(None)
            } else {
                overflow(browser).await
            };
            browser.leave_frame().await?;
            self.violations.extend(found?);
            if let Some(wide) = wide? {
                self.overflows
                    .push(format!("[{state}, {NARROWEST} px] {wide}"));
            }
            if let Some(dir) = &self.shots {
                let png = browser
                    .client
                    .find(Locator::Css(WIDGET_FRAME))
                    .await?
                    .screenshot()
                    .await?;
                std::fs::create_dir_all(dir)?;
                std::fs::write(dir.join(format!("{state}-{scheme}.png")), png)?;
            }
        }
        browser.set_color_scheme(false).await?;
        // 200 % zoom: a panel twice as wide in device pixels shows the same CSS pixels.
        browser
            .client
            .execute(
                "document.querySelector(arguments[0]).style.width = arguments[1] + 'px'; return true;",
                vec![json!(WIDGET_FRAME), json!(NARROWEST * 2)],
            )
            .await?;
        browser.enter_frame(WIDGET_FRAME).await?;
        browser
            .client
            .execute(
                "document.documentElement.style.zoom = '2'; return true;",
                Vec::new(),
            )
            .await?;
        let wide = overflow(browser).await;
        browser
            .client
            .execute(
                "document.documentElement.style.zoom = ''; return true;",
                Vec::new(),
            )
            .await?;
        browser.leave_frame().await?;
        browser
            .client
            .execute(
                "document.querySelector(arguments[0]).style.width = arguments[1] + 'px'; return true;",
                vec![json!(WIDGET_FRAME), json!(NARROWEST)],
            )
            .await?;
        if let Some(wide) = wide? {
            self.overflows.push(format!("[{state}, 200 % zoom] {wide}"));
        }
        Ok(())
    }

    /// Fails with every violation and overflow found, each on a line of its own.
    fn finish(self) -> Result<()> {
        if self.violations.is_empty() && self.overflows.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = self
            .violations
            .iter()
            .map(ToString::to_string)
            .chain(self.overflows)
            .collect();
        bail!(
            "{} accessibility violation(s), {} overflow(s):\n{}",
            self.violations.len(),
            lines.len() - self.violations.len(),
            lines.join("\n")
        )
    }
}

async fn in_state(browser: &Browser, css: &str) -> Result<()> {
    browser
        .in_widget(|b| async move { b.wait_for(css).await })
        .await
}

#[tokio::test]
async fn axe_finds_no_violation_in_any_state_light_or_dark() -> Result<()> {
    let mut checker = Checker {
        axe: axe_source()?,
        violations: Vec::new(),
        overflows: Vec::new(),
        shots: screenshot_dir(),
    };
    let stack = Stack::start().await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;
    size_frame(&browser, NARROWEST).await?;
    in_state(&browser, "[data-testid=idle]").await?;
    checker.check(&browser, "idle").await?;

    let (number, _, name) = stack.single_match_caller()?;
    let call = stack.place_call(&number, AGENT).await?;
    browser.wait_caller(&name).await?;
    in_state(&browser, "[data-testid=call-state][data-state=ringing]").await?;
    browser
        .in_widget(|b| async move {
            let said = b
                .wait_text(
                    "[data-testid=announcer]",
                    "the ringing call announced",
                    |t| !t.is_empty(),
                )
                .await?;
            ensure!(
                said.contains(&name),
                "the announcement names the caller: {said:?}"
            );
            Ok(())
        })
        .await?;
    checker.check(&browser, "ringing").await?;

    browser
        .in_widget(|b| async move {
            b.click("[data-testid=btn-answer]").await?;
            b.wait_for("[data-testid=call-state][data-state=connected]")
                .await
        })
        .await?;
    checker.check(&browser, "connected").await?;

    if let Some(dir) = &checker.shots {
        // One picture in German, of the call in progress.
        browser
            .in_widget(|b| async move { b.pick_language("de").await })
            .await?;
        fit_frame_height(&browser).await?;
        let png = browser
            .client
            .find(Locator::Css(WIDGET_FRAME))
            .await?
            .screenshot()
            .await?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("connected-de-light.png"), png)?;
        browser
            .in_widget(|b| async move { b.pick_language("en").await })
            .await?;
    }

    browser
        .in_widget(|b| async move {
            b.click("[data-testid=btn-hold]").await?;
            b.wait_for("[data-testid=call-state][data-state=held]")
                .await
        })
        .await?;
    checker.check(&browser, "held").await?;

    browser
        .in_widget(|b| async move {
            b.click("[data-testid=btn-resume]").await?;
            b.wait_for("[data-testid=call-state][data-state=connected]")
                .await?;
            b.click("[data-testid=btn-hangup]").await?;
            b.wait_for("[data-testid=call-state][data-state=ended]")
                .await?;
            b.type_notes("Asked for the renewal offer").await?;
            b.wait_for("[data-testid=activity][data-state=logged]")
                .await
        })
        .await?;
    stack
        .wait_activity(&call, "logged", |_| true)
        .await
        .context("the ended call's activity")?;
    checker.check(&browser, "wrap-up").await?;

    // A connection problem: the browser goes offline, the status line says so.
    browser.set_offline(true).await?;
    in_state(
        &browser,
        "[data-testid=connection-status][data-state=reconnecting]",
    )
    .await?;
    checker.check(&browser, "disconnected").await?;
    browser.set_offline(false).await?;
    in_state(
        &browser,
        "[data-testid=connection-status][data-state=connected]",
    )
    .await?;

    // A caller no record matches: the panel offers to create one or search, here with the
    // contact form open.
    let unknown = stack.place_call("+41 79 555 31 09", AGENT).await?;
    browser
        .in_widget(|b| async move {
            b.wait_for("[data-testid=not-in-v2]").await?;
            b.click("[data-testid=create-contact]").await?;
            b.wait_for("[data-testid=create-form]").await
        })
        .await?;
    checker.check(&browser, "unknown-caller").await?;
    stack.hang_up_through(Provider::Generic, &unknown).await?;
    in_state(&browser, "[data-testid=call-state][data-state=ended]").await?;

    // Signed out: the frame opened with a token the relay refuses.
    browser
        .client
        .execute(
            "document.querySelector(arguments[0]).src = arguments[1]; return true;",
            vec![
                json!(WIDGET_FRAME),
                json!(format!(
                    "{}/widget/?again=1#token=not-a-token",
                    stack.relay.url()
                )),
            ],
        )
        .await?;
    in_state(&browser, "[data-testid=signed-out]").await?;
    checker.check(&browser, "signed-out").await?;

    browser.close().await;
    checker.finish()
}

/// Presses keys on whatever has the focus, as a keyboard does.
async fn press(browser: &Browser, keys: &str) -> Result<()> {
    browser
        .client
        .active_element()
        .await?
        .send_keys(keys)
        .await
        .with_context(|| format!("pressing {keys:?}"))
}

/// Alt+Shift and a letter: the widget's shortcuts.
fn shortcut(letter: char) -> String {
    format!("{}{}{letter}", char::from(Key::Alt), char::from(Key::Shift))
}

/// The `data-testid` of the focused element.
async fn focused(browser: &Browser) -> Result<String> {
    let id = browser
        .client
        .execute(
            "return document.activeElement && document.activeElement.getAttribute('data-testid');",
            Vec::new(),
        )
        .await?;
    Ok(id.as_str().unwrap_or_default().to_string())
}

/// Tabs until the element with `test_id` has the focus; fails if it is not reached in a
/// sensible number of presses (it is not in the tab order).
async fn tab_to(browser: &Browser, test_id: &str) -> Result<()> {
    for _ in 0..15 {
        if focused(browser).await? == test_id {
            return Ok(());
        }
        press(browser, &char::from(Key::Tab).to_string()).await?;
    }
    bail!("{test_id} is not reached with Tab")
}

#[tokio::test]
async fn a_rep_handles_a_call_with_the_keyboard_alone() -> Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start().await?;
    browser.open_host(&stack.sim.url(), AGENT).await?;
    let (number, _, name) = stack.single_match_caller()?;
    let call = stack.place_call(&number, AGENT).await?;
    browser.wait_caller(&name).await?;
    browser.enter_frame(WIDGET_FRAME).await?;
    // The rep's focus is in the panel (as after a click into it, or F6 from V2's page).
    browser
        .client
        .execute(
            "window.focus(); document.body.focus(); return true;",
            Vec::new(),
        )
        .await?;

    // Answer: Tab to the button, Enter.
    tab_to(&browser, "btn-answer").await?;
    let keys = browser
        .attr("[data-testid=btn-answer]", "aria-keyshortcuts")
        .await;
    assert_eq!(
        keys.as_deref(),
        Some("Alt+Shift+P"),
        "the button names its shortcut"
    );
    press(&browser, &char::from(Key::Enter).to_string()).await?;
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;

    // Hold and back, with the shortcut.
    press(&browser, &shortcut('o')).await?;
    browser
        .wait_for("[data-testid=call-state][data-state=held]")
        .await?;
    press(&browser, &shortcut('o')).await?;
    browser
        .wait_for("[data-testid=call-state][data-state=connected]")
        .await?;

    // The notes, by their shortcut; then Tab to the outcome and pick one with the arrow keys.
    press(&browser, &shortcut('n')).await?;
    ensure!(
        focused(&browser).await? == "notes",
        "Alt+Shift+N moves the focus to the notes"
    );
    press(&browser, "Wants the renewal offer by mail").await?;
    tab_to(&browser, "disposition").await?;
    press(&browser, &char::from(Key::Down).to_string()).await?;
    let picked = eventually("an outcome picked", || async {
        let value = browser
            .client
            .execute(
                "return document.querySelector('[data-testid=disposition]').value;",
                Vec::new(),
            )
            .await
            .ok()?;
        value.as_str().filter(|v| !v.is_empty()).map(str::to_string)
    })
    .await?;
    browser
        .wait_for("[data-testid=notes-status][data-saved=true]")
        .await?;

    // Hang up with the shortcut.
    press(&browser, &shortcut('h')).await?;
    browser
        .wait_for("[data-testid=call-state][data-state=ended]")
        .await?;
    browser.leave_frame().await?;

    let activity = stack
        .wait_activity(&call, "with the note and the outcome", |a| {
            notes_in(a).as_deref() == Some("Wants the renewal offer by mail")
                && summary_line(a, "Disposition: ") == Some(picked.as_str())
        })
        .await?;
    assert!(
        notes_in(&activity).is_some(),
        "the activity carries the note: {activity}"
    );
    browser.close().await;
    Ok(())
}
