//! Changing a provider's webhook secret without losing deliveries, end to end through the
//! simulators: while the relay holds the new secret and the previous one, the simulator still
//! proving its deliveries with the old one (a webhook or subscription made before the change)
//! is taken; once the previous one is removed, the same deliveries are refused and counted
//! (docs/security.md, "Secrets"). One test per provider with a previous-secret setting.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cti_relay::adapters::TelephonySettings;
use cti_relay::secret::Secret;
use cti_tests::{Provider, Stack, eventually};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";

/// The count of `provider`'s webhook requests that ended in `outcome`, from `/metrics`.
async fn refusals(stack: &Stack, provider: &str, outcome: &str) -> u64 {
    let metrics = stack.metrics().await.expect("metrics");
    let labels = format!("provider=\"{provider}\",outcome=\"{outcome}\"}}");
    metrics
        .lines()
        .filter(|l| l.starts_with("cti_webhook_requests_total") && l.contains(&labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Until `provider` has refused at least one request as `outcome`.
async fn refused(stack: &Stack, provider: &str, outcome: &str) {
    eventually(
        &format!("{provider}'s refusal ({outcome}) counted"),
        || async { (refusals(stack, provider, outcome).await > 0).then_some(()) },
    )
    .await
    .expect("counted");
}

/// Restarts the relay with its configuration changed by `change` (an operator's edit).
async fn restart_with(stack: &mut Stack, change: impl FnOnce(&mut TelephonySettings)) {
    let mut config = stack.relay.state.config.clone();
    change(&mut config.tenants[0].telephony);
    stack.stop_relay().await;
    stack.start_relay_with(config).await.expect("restarted");
}

/// Until the relay holds a live call of Alice's with this id.
async fn alice_has(stack: &Stack, call: &str) {
    eventually(&format!("{call} at the relay"), || async {
        stack
            .relay
            .state
            .calls
            .active_for_agent("demo", ALICE)
            .await
            .ok()?
            .into_iter()
            .find(|c| c.id == call)
    })
    .await
    .expect("the call");
}

/// Until the org has had `created` webhooks and exactly one is live.
async fn webex_registered(stack: &Stack, created: u64) {
    let webex = &stack.sim.sim.webex;
    eventually("the relay's webhook", || async {
        let made = webex.created_webhooks.load(Ordering::Relaxed);
        (made >= created && webex.webhooks().len() == 1).then_some(())
    })
    .await
    .expect("registered");
}

/// Until the account has made `created` subscriptions and exactly one is live.
async fn ringcentral_subscribed(stack: &Stack, created: u64) {
    let rc = &stack.sim.sim.ringcentral;
    eventually("the relay's subscription", || async {
        let made = rc.created_subscriptions.load(Ordering::Relaxed);
        (made >= created && rc.subscriptions().len() == 1).then_some(())
    })
    .await
    .expect("subscribed");
}

/// Until Graph has made `created` subscriptions and exactly one is live.
async fn teams_subscribed(stack: &Stack, created: u64) {
    let teams = &stack.sim.sim.teams;
    eventually("the relay's subscription", || async {
        let made = teams.created_subscriptions.load(Ordering::Relaxed);
        (made >= created && teams.subscriptions().len() == 1).then_some(())
    })
    .await
    .expect("subscribed");
}

/// The relay's answers (HTTP statuses) to a callRecords notification Graph sends each
/// subscription with `client_state`.
async fn notify_with(stack: &Stack, client_state: &str) -> Vec<u16> {
    let answer: Value = stack
        .http
        .post(format!("{}/sim/teams/faults", stack.sim.url()))
        .json(&json!({"client_state": client_state}))
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("statuses");
    serde_json::from_value(answer["client_state_statuses"].clone()).expect("statuses")
}

/// Whether the one subscription's notification was taken (a 2xx).
fn taken(statuses: &[u16]) -> bool {
    matches!(statuses, [status] if (200..300).contains(status))
}

fn quick(c: &mut cti_relay::Config) {
    c.miss_budget = Duration::from_secs(5);
}

/// The generic PBX keeps signing with the secret it has (the demo's) while the relay moves to a
/// new one: taken while the old one is `webhook_secret_previous`, refused once it is removed.
#[tokio::test]
async fn generic_events_signed_with_the_previous_secret_are_taken_until_it_is_removed() {
    const OLD: &str = "demo-webhook-secret";
    let mut stack = Stack::start_with(|c| {
        quick(c);
        if let TelephonySettings::Generic(g) = &mut c.tenants[0].telephony {
            g.webhook_secret = Secret::new("the-new-webhook-secret-of-demo");
            g.webhook_secret_previous = Some(Secret::new(OLD));
        }
    })
    .await
    .expect("stack");
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let call = stack
        .place_call(&number, ALICE)
        .await
        .expect("taken during the overlap");
    alice_has(&stack, &call).await;
    assert_eq!(refusals(&stack, "generic", "bad_signature").await, 0);

    restart_with(&mut stack, |t| {
        if let TelephonySettings::Generic(g) = t {
            g.webhook_secret_previous = None;
        }
    })
    .await;
    let err = stack
        .place_call(&number, ALICE)
        .await
        .expect_err("the old secret is refused");
    assert!(err.to_string().contains("401"), "{err}");
    refused(&stack, "generic", "bad_signature").await;
}

/// A Webex webhook registered with the old secret (before the change) signs its deliveries
/// with it: taken while it is `webex_webhook_secret_previous`, refused once it is removed.
#[tokio::test]
async fn webex_deliveries_signed_with_the_previous_secret_are_taken_until_it_is_removed() {
    const OLD: &str = "demo-webex-webhook-secret";
    let mut stack = Stack::start_through(Provider::Webex, |c| {
        quick(c);
        if let TelephonySettings::Webex(w) = &mut c.tenants[0].telephony {
            w.webex_webhook_secret = Secret::new("the-new-webex-secret-of-demo");
            w.webex_webhook_secret_previous = Some(Secret::new(OLD));
        }
    })
    .await
    .expect("stack");
    webex_registered(&stack, 1).await;
    assert_eq!(stack.sim.sim.webex.sign_webhooks_with(OLD), 1);
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let call = stack
        .ring_through(Provider::Webex, &number, ALICE)
        .await
        .expect("taken during the overlap");
    alice_has(&stack, &call).await;
    assert_eq!(refusals(&stack, "webex", "unauthorized").await, 0);

    restart_with(&mut stack, |t| {
        if let TelephonySettings::Webex(w) = t {
            w.webex_webhook_secret_previous = None;
        }
    })
    .await;
    webex_registered(&stack, 2).await;
    assert_eq!(stack.sim.sim.webex.sign_webhooks_with(OLD), 1);
    stack
        .ring_through(Provider::Webex, &number, ALICE)
        .await
        .expect_err("the old secret is refused");
    refused(&stack, "webex", "unauthorized").await;
}

/// A RingCentral subscription made with the old verification token carries it: taken while it
/// is `ringcentral_verification_token_previous`, refused once it is removed.
#[tokio::test]
async fn ringcentral_deliveries_with_the_previous_token_are_taken_until_it_is_removed() {
    const OLD: &str = "demo-ringcentral-verification";
    let mut stack = Stack::start_through(Provider::RingCentral, |c| {
        quick(c);
        if let TelephonySettings::RingCentral(r) = &mut c.tenants[0].telephony {
            r.ringcentral_verification_token = Secret::new("the-new-ringcentral-token-of-demo");
            r.ringcentral_verification_token_previous = Some(Secret::new(OLD));
        }
    })
    .await
    .expect("stack");
    ringcentral_subscribed(&stack, 1).await;
    assert_eq!(stack.sim.sim.ringcentral.verify_subscriptions_with(OLD), 1);
    let (number, _, _) = stack.single_match_caller().expect("caller");
    let call = stack
        .ring_through(Provider::RingCentral, &number, ALICE)
        .await
        .expect("taken during the overlap");
    alice_has(&stack, &call).await;
    assert_eq!(refusals(&stack, "ringcentral", "unauthorized").await, 0);

    restart_with(&mut stack, |t| {
        if let TelephonySettings::RingCentral(r) = t {
            r.ringcentral_verification_token_previous = None;
        }
    })
    .await;
    ringcentral_subscribed(&stack, 2).await;
    assert_eq!(stack.sim.sim.ringcentral.verify_subscriptions_with(OLD), 1);
    stack
        .ring_through(Provider::RingCentral, &number, ALICE)
        .await
        .expect_err("the old token is refused");
    refused(&stack, "ringcentral", "unauthorized").await;
}

/// Graph's callRecords subscription made with the old `clientState` notifies with it: taken
/// while it is `teams_client_state_previous`, refused once it is removed.
#[tokio::test]
async fn teams_notifications_with_the_previous_client_state_are_taken_until_it_is_removed() {
    const OLD: &str = "demo-teams-client-state";
    const NEW: &str = "the-new-teams-client-state-of-demo";
    let mut stack = Stack::start_through(Provider::Teams, |c| {
        quick(c);
        if let TelephonySettings::Teams(t) = &mut c.tenants[0].telephony {
            t.teams_client_state = Secret::new(NEW);
            t.teams_client_state_previous = Some(Secret::new(OLD));
        }
    })
    .await
    .expect("stack");
    teams_subscribed(&stack, 1).await;
    let during = notify_with(&stack, OLD).await;
    assert!(taken(&during), "during the overlap: {during:?}");
    let new = notify_with(&stack, NEW).await;
    assert!(taken(&new), "{new:?}");
    assert_eq!(refusals(&stack, "teams", "unauthorized").await, 0);

    restart_with(&mut stack, |t| {
        if let TelephonySettings::Teams(t) = t {
            t.teams_client_state_previous = None;
        }
    })
    .await;
    teams_subscribed(&stack, 2).await;
    assert_eq!(notify_with(&stack, OLD).await, [401], "after the overlap");
    let new = notify_with(&stack, NEW).await;
    assert!(taken(&new), "{new:?}");
    assert_eq!(refusals(&stack, "teams", "unauthorized").await, 1);
}
