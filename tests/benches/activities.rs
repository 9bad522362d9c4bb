//! `cargo xtask bench activities`: how many finished calls per second become phone-call
//! activities in the simulated V2, and how long each waits, with percentiles.
//!
//! A relay and the simulator run in this process on loopback. Each call is two signed webhook
//! events (ringing, then ended); the clock for a call starts when the relay acknowledged its
//! `ended` (the activity is durably queued then) and stops when the simulated V2 holds the
//! activity. Runs once with the in-memory outbox and once with Redis (when redis-server is
//! installed, as `cargo xtask test` does). `CTI_BENCH_CALLS` sets the number of calls.
//!
//! Numbers vary between machines and runs; read them as orders of magnitude and trends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cti_relay::secret::Secret;
use cti_relay::{AppState, Config};
use cti_sim::SimConfig;
use futures_util::StreamExt;
use serde_json::json;
use tokio::net::TcpListener;

/// Webhook requests in flight at once (a busy PBX).
const CONCURRENCY: usize = 32;

async fn run(label: &str, calls: usize, redis_url: Option<String>) {
    let sim_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let relay_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim_url = format!("http://{}", sim_listener.local_addr().expect("addr"));
    let relay_url = format!("http://{}", relay_listener.local_addr().expect("addr"));
    let sim = cti_sim::spawn_on(
        sim_listener,
        SimConfig {
            relay_url: relay_url.clone(),
            relay_public_url: relay_url.clone(),
            records: 2_000,
            ..SimConfig::default()
        },
    )
    .expect("sim");
    let mut config = Config::demo(&sim_url);
    config.listen = relay_listener.local_addr().expect("addr");
    config.redis_url = redis_url.map(Secret::new);
    let state = AppState::from_config(config).await.expect("state");
    let relay = cti_relay::spawn_on(relay_listener, state).expect("relay");
    let http = reqwest::Client::new();
    let ready = format!("{relay_url}/readyz");
    while http
        .get(&ready)
        .send()
        .await
        .map_or(true, |r| r.status() != 200)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let webhook = format!("{relay_url}/v1/tenants/demo/telephony/generic");
    let post = |body: String| {
        let (http, webhook) = (http.clone(), webhook.clone());
        async move {
            let signed = cti_sim::pbx::sign_now("demo-webhook-secret", body.as_bytes());
            let status = http
                .post(&webhook)
                .header("content-type", "application/json")
                .header("x-cti-timestamp", signed.0)
                .header("x-cti-signature", signed.1)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16());
            assert!(matches!(status, Ok(202)), "webhook answered {status:?}");
        }
    };
    let run_id = uuid_like();
    let started = Instant::now();
    let acknowledged: Vec<(String, Instant)> = futures_util::stream::iter(0..calls)
        .map(|i| {
            let call = format!("bench-{run_id}-{i}");
            let event = |kind: &str, at: &str| {
                json!({"id": format!("{call}-{kind}"), "call_id": call, "type": kind,
                    "direction": "inbound", "from": format!("+4179{:07}", 5_000_000 + i),
                    "to": "+41449990000", "agent": "alice@example.com", "at": at})
                .to_string()
            };
            let (ringing, ended) = (
                event("ringing", &cti_tests::recent("2026-11-25T10:00:00Z")),
                event("ended", &cti_tests::recent("2026-11-25T10:00:30Z")),
            );
            async move {
                post(ringing).await;
                post(ended).await;
                (call, Instant::now())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let posted = started.elapsed();
    let mut waiting: HashMap<String, Instant> = acknowledged.into_iter().collect();
    let mut latencies = Vec::with_capacity(calls);
    let deadline = Instant::now() + Duration::from_secs(600);
    while !waiting.is_empty() && Instant::now() < deadline {
        let now = Instant::now();
        for record in sim.sim.v2.records("phoneCalls") {
            if let Some(id) = record
                .pointer("/externalId/displayId")
                .and_then(|v| v.as_str())
                && let Some(acked) = waiting.remove(id)
            {
                latencies.push(now.saturating_duration_since(acked));
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    println!(
        "activities ({label}): {} calls, webhooks done in {:.2} s, all logged in {:.2} s: \
         {:.0} activities/s sustained{}",
        calls,
        posted.as_secs_f64(),
        total.as_secs_f64(),
        latencies.len() as f64 / total.as_secs_f64(),
        if waiting.is_empty() {
            String::new()
        } else {
            format!(" ({} NOT logged within the deadline)", waiting.len())
        }
    );
    cti_tests::print_percentiles(
        &format!("ended acknowledged -> activity in V2 ({label})"),
        latencies,
    );
    let duplicates = sim
        .sim
        .v2
        .records("phoneCalls")
        .iter()
        .filter_map(|r| r.pointer("/externalId/displayId").and_then(|v| v.as_str()))
        .filter(|id| id.starts_with("bench-"))
        .fold(HashMap::<String, usize>::new(), |mut seen, id| {
            *seen.entry(id.to_string()).or_default() += 1;
            seen
        })
        .values()
        .filter(|n| **n > 1)
        .count();
    println!("duplicates ({label}): {duplicates}");
    relay.shutdown().await;
    drop(sim);
}

/// Call ids must not collide with an earlier run's activities in a shared Redis.
fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

fn main() {
    let calls: usize = std::env::var("CTI_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async move {
            run("memory", calls, None).await;
            match cti_tests::redis::RedisServer::start().await {
                Ok(mut redis) => {
                    run("redis", calls, Some(redis.url())).await;
                    redis.stop();
                }
                Err(err) => println!("activities (redis): skipped: {err}"),
            }
        });
}
