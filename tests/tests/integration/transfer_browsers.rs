//! A blind transfer between two reps, each in their own browser: the second rep's widget shows
//! the same caller, record and the first rep's notes; their V2 pops the same record; and the call
//! ends as one activity that lists both reps, which both widgets show as logged.

use anyhow::Result;
use cti_protocol::host::{external_reference, is_v2_reference};
use cti_tests::browser::Browser;
use cti_tests::{Stack, agents_on, eventually};
use fantoccini::Locator;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

#[tokio::test]
async fn the_caller_context_follows_a_transfer_into_the_other_reps_browser() -> Result<()> {
    let stack = Stack::start_with(|c| {
        c.activity_retry_base = std::time::Duration::from_millis(50);
    })
    .await?;
    let (number, _, name) = stack.single_match_caller()?;
    let alice = Browser::start().await?;
    let bob = Browser::start().await?;
    alice.open_host(&stack.sim.url(), ALICE).await?;
    bob.open_host(&stack.sim.url(), BOB).await?;

    let call = stack.place_call(&number, ALICE).await?;
    alice.wait_caller(&name).await?;
    let alice_notify = stack.wait_host_action(&call, "NOTIFY").await?;
    alice
        .in_widget(|b| async move {
            b.click("[data-testid=btn-answer]").await?;
            b.wait_for("[data-testid=call-state][data-state=connected]")
                .await?;
            b.type_notes("Asks about the March invoice").await?;
            b.click("[data-testid=btn-save-notes]").await?;
            b.wait_for("[data-testid=notes-status][data-saved=true]")
                .await?;
            b.client
                .find(Locator::Css("[data-testid=transfer-target]"))
                .await?
                .send_keys(BOB)
                .await?;
            b.click("[data-testid=btn-transfer]").await?;
            b.wait_for("[data-testid=call-state][data-state=transferred]")
                .await
        })
        .await?;

    // Bob's widget rings with the same caller and Alice's notes; his V2 pops the same record.
    bob.wait_caller(&name).await?;
    bob.in_widget(|b| async move {
        b.wait_text("[data-testid=handover-from]", "who handed it over", |t| {
            t == ALICE
        })
        .await?;
        b.wait_text("[data-testid=handover-notes]", "alice's notes", |t| {
            t.contains("March invoice")
        })
        .await?;
        b.click("[data-testid=btn-answer]").await?;
        b.wait_for("[data-testid=call-state][data-state=connected]")
            .await?;
        b.type_notes("Sent a corrected invoice").await?;
        b.click("[data-testid=btn-save-notes]").await?;
        b.wait_for("[data-testid=notes-status][data-saved=true]")
            .await?;
        b.click("[data-testid=btn-hangup]").await?;
        b.wait_for("[data-testid=activity][data-state=logged]")
            .await
    })
    .await?;
    let pops: Vec<_> = stack
        .host_actions(&call)
        .await?
        .into_iter()
        .filter(|p| p.action == "NOTIFY")
        .collect();
    assert_eq!(pops.len(), 2, "one pop per rep: {pops:?}");
    assert_ne!(
        pops[0].page_id, pops[1].page_id,
        "each on the rep's own page"
    );
    assert_eq!(
        pops[1].entry["payload"]["Custom_1"], alice_notify["payload"]["Custom_1"],
        "the same record"
    );
    // Bob's leg is an interaction of its own in V2, announced as a transfer of Alice's.
    let original = external_reference(&call);
    assert_eq!(pops[0].entry["payload"]["EventType"], "INBOUND");
    assert_eq!(
        pops[0].entry["payload"]["ExternalReferenceID"],
        original.as_str()
    );
    let transfer = &pops[1].entry["payload"];
    assert_eq!(transfer["EventType"], "TRANSFER", "{pops:?}");
    assert_eq!(transfer["ExternalOriginalReferenceID"], original.as_str());
    let leg = transfer["ExternalReferenceID"].as_str().unwrap_or_default();
    assert!(is_v2_reference(leg) && leg != original, "{pops:?}");
    let refused: Vec<_> = stack
        .host_payloads()
        .await?
        .into_iter()
        .filter(|p| !p["refused"].is_null())
        .collect();
    assert!(refused.is_empty(), "V2 would refuse {refused:?}");
    alice
        .in_widget(|b| async move {
            b.wait_for("[data-testid=activity][data-state=logged]")
                .await
        })
        .await?;

    let activity = stack.wait_activity(&call, "written", |_| true).await?;
    assert_eq!(agents_on(&activity), [ALICE, BOB]);
    // The phone call is the one Agent Desktop kept when Alice's widget announced the call; the
    // relay updated it and created none.
    assert_eq!(activity["adminData"]["createdBy"], "Agent Desktop");
    let writes = stack.sim.sim.v2.phone_call_writes();
    assert!(writes.iter().all(|w| w.method == "PATCH"), "{writes:?}");
    let notes = eventually("both reps' notes on the activity", || async {
        let activity = stack.activities(&call).await.ok()?.pop()?;
        let notes = cti_tests::notes_in(&activity)?;
        (notes.contains("March invoice") && notes.contains("corrected invoice")).then_some(notes)
    })
    .await?;
    assert!(notes.starts_with(ALICE), "{notes}");
    alice.close().await;
    bob.close().await;
    Ok(())
}
