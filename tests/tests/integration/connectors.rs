//! A provider's connector across relay instances: with Redis, exactly one instance holds a
//! tenant's connection to its provider (a lease), the others stand by, and when the holder dies
//! another takes over without losing a call.

use std::time::Duration;

use anyhow::Result;
use cti_relay::secret::Secret;
use cti_tests::redis::RedisServer;
use cti_tests::{Provider, Stack, WsClient, eventually};
use serde_json::Value;

const AGENT: &str = "alice@example.com";

/// What `/readyz` says of the demo tenant's provider connector on the relay at `url`.
async fn connector(stack: &Stack, url: &str) -> Option<Value> {
    let body: Value = stack
        .http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(body["tenants"]["demo"]["provider"].clone())
}

async fn call_state(ws: &mut WsClient, call: &str, state: &str) -> Result<Value> {
    ws.recv_until(&format!("call {call} {state}"), |m| {
        m["type"] == "call" && m["call"]["id"] == call && m["call"]["state"] == state
    })
    .await
}

#[tokio::test]
async fn one_instance_holds_the_genesys_connection_and_another_takes_over_when_it_dies()
-> Result<()> {
    let provider = Provider::Genesys;
    let server = RedisServer::start().await?;
    let url = server.url();
    let mut stack = Stack::start_through(provider, |c| {
        c.redis_url = Some(Secret::new(url.clone()));
        c.connector_lease = Duration::from_secs(3);
    })
    .await?;
    let first = stack.relay.url();
    eventually("the first instance to hold the connection", || async {
        let c = connector(&stack, &first).await?;
        (c["connector"] == "holder" && c["connected"] == true).then_some(())
    })
    .await?;
    let second = stack.spawn_another_relay().await?;
    let second_url = second.url();
    eventually("the second instance to stand by", || async {
        let c = connector(&stack, &second_url).await?;
        (c["connector"] == "standby" && c["connected"] == false).then_some(())
    })
    .await?;
    let metrics = stack.metrics().await?;
    assert!(
        metrics.contains(r#"cti_provider_connected{tenant="demo",provider="genesys"} 1"#),
        "{metrics}"
    );

    // The rep's widget talks to the second instance; the call comes in through the first.
    let ws_url = format!("ws://{}/v1/agent/ws", second.addr);
    let (mut ws, _) = WsClient::signed_in_at(&stack, &ws_url, AGENT, None).await?;
    let (number, _, _) = stack.single_match_caller()?;
    let before = stack.ring_through(provider, &number, AGENT).await?;
    call_state(&mut ws, &before, "ringing").await?;

    // The holder dies without giving the lease back; the caller hangs up meanwhile.
    stack.crash_relay();
    stack.hang_up_through(provider, &before).await?;
    eventually(
        "the second instance to take the connection over",
        || async {
            let c = connector(&stack, &second_url).await?;
            (c["connector"] == "holder" && c["connected"] == true).then_some(())
        },
    )
    .await?;
    // The missed call ended while nobody was connected: the take-over's catch-up finds it.
    call_state(&mut ws, &before, "ended").await?;
    let after = stack.ring_through(provider, &number, AGENT).await?;
    call_state(&mut ws, &after, "ringing").await?;
    stack.hang_up_through(provider, &after).await?;
    call_state(&mut ws, &after, "ended").await?;
    for call in [&before, &after] {
        let logged = stack.wait_activity(call, "to be written", |_| true).await?;
        assert_eq!(stack.activities(call).await?.len(), 1, "{logged}");
    }
    second.abort();
    Ok(())
}

/// RingCentral posts to one public URL, the platform's router in front of the instances: any
/// instance takes a delivery, one holds the subscription, and when it dies another makes the
/// subscription its own and reads back what it missed.
#[tokio::test]
async fn one_instance_keeps_the_ringcentral_subscription_and_another_takes_over_when_it_dies()
-> Result<()> {
    use cti_relay::adapters::TelephonySettings;
    let provider = Provider::RingCentral;
    let server = RedisServer::start().await?;
    let url = server.url();
    let router = cti_tests::proxy::Router::start().await?;
    let hook = format!("{}/v1/tenants/demo/telephony/ringcentral", router.url());
    let mut stack = Stack::start_through(provider, |c| {
        c.redis_url = Some(Secret::new(url.clone()));
        c.connector_lease = Duration::from_secs(3);
        if let TelephonySettings::RingCentral(settings) = &mut c.tenants[0].telephony {
            settings.ringcentral_webhook_url = hook.clone();
            settings.ringcentral_watch_secs = Some(1);
        }
    })
    .await?;
    router.route_to(vec![stack.relay.addr]);
    let first = stack.relay.url();
    eventually("the first instance to hold the subscription", || async {
        let c = connector(&stack, &first).await?;
        (c["connector"] == "holder" && c["connected"] == true).then_some(())
    })
    .await?;
    let second = stack.spawn_another_relay().await?;
    router.route_to(vec![stack.relay.addr, second.addr]);
    let second_url = second.url();
    eventually("the second instance to stand by", || async {
        let c = connector(&stack, &second_url).await?;
        (c["connector"] == "standby").then_some(())
    })
    .await?;

    let ws_url = format!("ws://{}/v1/agent/ws", second.addr);
    let (mut ws, _) = WsClient::signed_in_at(&stack, &ws_url, AGENT, None).await?;
    let (number, _, _) = stack.single_match_caller()?;
    let before = stack.ring_through(provider, &number, AGENT).await?;
    call_state(&mut ws, &before, "ringing").await?;

    // The holder dies; the router sends the caller's hang-up to the survivor, which takes the
    // subscription over.
    stack.crash_relay();
    stack.hang_up_through(provider, &before).await?;
    call_state(&mut ws, &before, "ended").await?;
    eventually(
        "the second instance to take the subscription over",
        || async {
            let c = connector(&stack, &second_url).await?;
            (c["connector"] == "holder" && c["connected"] == true).then_some(())
        },
    )
    .await?;
    let after = stack.ring_through(provider, &number, AGENT).await?;
    call_state(&mut ws, &after, "ringing").await?;
    stack.hang_up_through(provider, &after).await?;
    call_state(&mut ws, &after, "ended").await?;
    for call in [&before, &after] {
        let logged = stack.wait_activity(call, "to be written", |_| true).await?;
        assert_eq!(stack.activities(call).await?.len(), 1, "{logged}");
    }
    let live: Value = stack
        .http
        .get(format!("{}/sim/ringcentral/subscriptions", stack.sim.url()))
        .send()
        .await?
        .json()
        .await?;
    // The first instance's, then the survivor's in its place: never one per instance.
    assert_eq!(live["live"].as_array().map(Vec::len), Some(1), "{live}");
    assert_eq!(live["created"], 2, "{live}");
    second.abort();
    Ok(())
}
