//! SAP BTP's SaaS Provisioning service subscribing and unsubscribing customers: the callbacks
//! over HTTP with the simulated registry's client-credentials token, the tokens they refuse, and
//! an unsubscribed tenant's keys gone from a real redis-server.

use cti_relay::numbers::IndexedRecord;
use cti_relay::numbers::generation::Generation;
use cti_tests::eventually;
use cti_tests::redis::RedisServer;
use serde_json::{Value, json};

use super::subscribed::{
    TENANT, callback, error_of, registry_token, start, subscribe, subscription_body,
    tenant_settings,
};

#[tokio::test]
async fn the_registry_subscribes_a_tenant_and_learns_its_url_and_dependencies() {
    let stack = start(None).await;
    let token = registry_token(&stack).await;

    let response = subscribe(&stack, Some(&token), TENANT).await;
    assert_eq!(response.status(), 200);
    let url = response.text().await.expect("a text body");
    assert_eq!(url, "https://acme-cti.example.com");
    let stored = stack
        .relay
        .state
        .directory
        .get(TENANT)
        .await
        .expect("the directory reads")
        .expect("the subscription is stored");
    assert_eq!(stored.subdomain, "acme");
    assert_eq!(stored.url, url);

    let dependencies: Value = stack
        .http
        .get(format!("{}/callback/v1.0/dependencies", stack.relay.url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the relay answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        dependencies,
        json!([{"xsappname": "destination-xsappname!b404"}])
    );

    // The registry calls again after a timeout: the same answer.
    let again = subscribe(&stack, Some(&token), TENANT).await;
    assert_eq!(again.status(), 200);

    let gone = stack
        .http
        .delete(callback(&stack, TENANT))
        .bearer_auth(&token)
        .json(&subscription_body(TENANT, "acme"))
        .send()
        .await
        .expect("the relay answers");
    assert_eq!(gone.status(), 200);
    assert!(
        stack
            .relay
            .state
            .directory
            .get(TENANT)
            .await
            .expect("the directory reads")
            .is_none()
    );
}

#[tokio::test]
async fn tokens_that_are_not_the_registrys_are_refused() {
    let stack = start(None).await;
    let idp = &stack.sim.sim.idp;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let client = |aud: &str, scope: &str| {
        idp.sign_claims(&json!({
            "iss": cti_sim::idp::ISSUER, "aud": [aud], "sub": "sb-other", "cid": "sb-other",
            "grant_type": "client_credentials", "zid": "provider-zone", "scope": [scope],
            "iat": now, "exp": now + 300,
        }))
    };

    let (status, code, message) = error_of(subscribe(&stack, None, TENANT).await).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"), "{message}");
    assert!(message.contains("bearer token"), "{message}");

    // A client of this app without the callback scope.
    let no_scope = client(cti_sim::idp::AUDIENCE, "cti-relay.Agent");
    let (status, code, message) = error_of(subscribe(&stack, Some(&no_scope), TENANT).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "{message}");
    assert!(message.contains("cti-relay.Callback"), "{message}");

    // Another app's token, even with a scope of the same name.
    let other_app = client("other-app", "cti-relay.Callback");
    let (status, code, message) = error_of(subscribe(&stack, Some(&other_app), TENANT).await).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"), "{message}");

    // A rep's token is a user's, not the registry's client credentials.
    let rep = idp.issue("alice@example.com", TENANT, 300);
    let (status, code, message) = error_of(subscribe(&stack, Some(&rep), TENANT).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "{message}");
    assert!(message.contains("client-credentials"), "{message}");

    // Nothing was subscribed by any of them.
    assert!(
        stack
            .relay
            .state
            .directory
            .list()
            .await
            .expect("the directory reads")
            .is_empty()
    );

    // A tenant of the tenants file is not the registry's to change.
    let token = registry_token(&stack).await;
    let (status, code, message) = error_of(subscribe(&stack, Some(&token), "demo").await).await;
    assert_eq!((status, code.as_str()), (409, "conflict"), "{message}");
}

/// Every key of `tenant` in the relay's Redis.
async fn keys_of(server: &RedisServer, tenant: &str) -> Vec<String> {
    let client = redis::Client::open(server.url()).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("cti:{{{tenant}}}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn unsubscribing_leaves_nothing_of_the_tenant_in_redis() {
    let server = RedisServer::start().await.expect("redis-server");
    let stack = start(Some(&server)).await;
    let token = registry_token(&stack).await;
    let response = subscribe(&stack, Some(&token), TENANT).await;
    assert_eq!(response.status(), 200);

    // What the tenant's use leaves in the stores: an index, a rep's choice, a rep's sealed token.
    let state = &stack.relay.state;
    let generation = Generation::from_iter([(
        "+41441234567".to_string(),
        vec![IndexedRecord {
            kind: cti_protocol::ws::RecordKind::Contact,
            id: "c1".into(),
            display_id: "1".into(),
            name: "Anna".into(),
            account: None,
            owner_id: None,
            open_opportunities: 0,
            last_activity: None,
        }],
    )]);
    state
        .numbers
        .index
        .replace(TENANT, generation)
        .await
        .expect("indexed");
    state
        .numbers
        .choices
        .put(TENANT, "alice@example.com", "+41441234567", "c1")
        .await
        .expect("a choice");
    state
        .authority
        .vault
        .put(TENANT, "alice@example.com", b"sealed")
        .await
        .expect("a token");
    let before = keys_of(&server, TENANT).await;
    assert!(
        before.len() >= 4,
        "the tenant's keys before unsubscribing: {before:?}"
    );
    let demo_before = keys_of(&server, "demo").await;
    assert!(!demo_before.is_empty());

    let gone = stack
        .http
        .delete(callback(&stack, TENANT))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the relay answers");
    assert_eq!(gone.status(), 200);

    assert_eq!(keys_of(&server, TENANT).await, Vec::<String>::new());
    let client = redis::Client::open(server.url()).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let subscribed: Vec<String> = redis::cmd("SMEMBERS")
        .arg("cti:subscriptions")
        .query_async(&mut conn)
        .await
        .expect("SMEMBERS");
    assert!(subscribed.is_empty(), "{subscribed:?}");
    // Another tenant's keys stay.
    assert!(!keys_of(&server, "demo").await.is_empty());
}

#[tokio::test]
async fn a_configured_tenant_is_sealed_in_redis_and_served_by_every_instance() {
    let server = RedisServer::start().await.expect("redis-server");
    let stack = start(Some(&server)).await;
    let state = stack.relay.state.clone();

    // Not subscribed: nothing to configure.
    let refused = cti_relay::tenancy::configure(&state, TENANT, &tenant_settings(&stack, "demo"))
        .await
        .expect_err("an unsubscribed tenant is refused");
    assert!(refused.to_string().contains("not subscribed"), "{refused}");

    let token = registry_token(&stack).await;
    assert_eq!(subscribe(&stack, Some(&token), TENANT).await.status(), 200);
    // Subscribed, unconfigured: not served.
    assert!(state.tenant(TENANT).is_none());

    // Settings that do not check are refused and change nothing.
    let mut wrong = tenant_settings(&stack, "demo");
    wrong["default_region"] = json!("XX");
    let refused = cti_relay::tenancy::configure(&state, TENANT, &wrong)
        .await
        .expect_err("an unknown region is refused");
    assert!(refused.to_string().contains("XX"), "{refused}");
    assert!(state.tenant(TENANT).is_none());
    // Nor is another tenant's webhook secret (review F5): a request signed for one would be
    // taken for the other. Both are named.
    let mut shared = tenant_settings(&stack, "demo");
    shared["webhook_secret"] = json!("demo-webhook-secret");
    let refused = cti_relay::tenancy::configure(&state, TENANT, &shared)
        .await
        .expect_err("the demo tenant's secret is refused");
    let text = refused.to_string();
    assert!(
        text.contains("\"demo\"") && text.contains(&format!("{TENANT:?}")),
        "{text}"
    );
    assert!(!text.contains("demo-webhook-secret"), "{text}");
    assert!(state.tenant(TENANT).is_none());

    cti_relay::tenancy::configure(&state, TENANT, &tenant_settings(&stack, "demo"))
        .await
        .expect("configured");
    let served = state.tenant(TENANT).expect("served here at once");
    assert_eq!(served.config.dispositions, ["Sold", "Call back"]);
    // Its V2 may frame the widget from now on.
    let page = stack
        .http
        .get(format!("{}/widget/", stack.relay.url()))
        .send()
        .await
        .expect("the relay answers");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.contains("https://my000001.crm.cloud.sap"), "{csp}");

    // Stored sealed: no secret readable in Redis.
    let client = redis::Client::open(server.url()).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(format!("cti:{{{TENANT}}}:settings"))
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert!(!stored.is_empty());
    let text = String::from_utf8_lossy(&stored);
    for secret in [
        "tenant-v2-password-4711",
        "tenant-webhook-secret-0815",
        "v2_url",
    ] {
        assert!(!text.contains(secret), "{secret} readable in Redis");
    }

    // Another instance on the same Redis loads it at start...
    let second = cti_relay::AppState::from_config(state.config.clone())
        .await
        .expect("a second instance");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let second = cti_relay::spawn_on(listener, second).expect("the second instance serves");
    eventually("the second instance serves the tenant", || async {
        second.state.tenant(TENANT).map(|_| ())
    })
    .await
    .expect("loaded at start");

    // ...and follows a change made on the first.
    cti_relay::tenancy::configure(&state, TENANT, &tenant_settings(&stack, "changed-user"))
        .await
        .expect("configured again");
    eventually("the second instance takes the change", || async {
        second
            .state
            .tenant(TENANT)
            .filter(|t| t.config.v2_user == "changed-user")
            .map(|_| ())
    })
    .await
    .expect("the change heard");

    // Unsubscribed on the first: gone from both.
    let gone = stack
        .http
        .delete(callback(&stack, TENANT))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the relay answers");
    assert_eq!(gone.status(), 200);
    assert!(state.tenant(TENANT).is_none());
    eventually("the second instance forgets the tenant", || async {
        second.state.tenant(TENANT).is_none().then_some(())
    })
    .await
    .expect("forgotten");
    assert_eq!(keys_of(&server, TENANT).await, Vec::<String>::new());
    second.shutdown().await;
}

#[tokio::test]
async fn an_outbox_with_activities_not_in_v2_expires_instead_of_vanishing() {
    let server = RedisServer::start().await.expect("redis-server");
    let stack = start(Some(&server)).await;
    let token = registry_token(&stack).await;
    assert_eq!(subscribe(&stack, Some(&token), TENANT).await.status(), 200);
    let rep = "alice@example.com";
    let log = cti_relay::calls::log::CallLog {
        call_id: "saas-1".into(),
        direction: cti_relay::calls::log::LogDirection::Inbound,
        outcome: cti_protocol::event::EndReason::Completed,
        started_at: "2026-11-25T10:00:00Z".into(),
        answered_at: None,
        ended_at: "2026-11-25T10:01:00Z".into(),
        talk_secs: 0,
        total_secs: 60,
        from: "+41441234567".into(),
        to: "+41449990000".into(),
        remote: "+41441234567".into(),
        reps: vec![rep.into()],
        owner: rep.into(),
        record: None,
        notes: String::new(),
        disposition: None,
        recording_url: None,
        consent: None,
        from_mid_call: false,
    };
    let state = &stack.relay.state;
    state
        .activity
        .outbox
        .put(TENANT, &log, 1_000)
        .await
        .expect("queued");
    state
        .numbers
        .choices
        .put(TENANT, rep, "+41441234567", "c1")
        .await
        .expect("a choice");

    let gone = stack
        .http
        .delete(callback(&stack, TENANT))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the relay answers");
    assert_eq!(gone.status(), 200);

    let left = keys_of(&server, TENANT).await;
    assert!(
        !left.is_empty(),
        "the outbox was deleted under its activity"
    );
    let client = redis::Client::open(server.url()).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    for key in &left {
        assert!(
            key.contains(":outbox:"),
            "{key} outlived the unsubscription"
        );
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("TTL");
        assert!(
            ttl > 0 && ttl <= cti_relay::subscriptions::OUTBOX_GRACE.as_secs() as i64,
            "{key} expires in {ttl} s"
        );
    }
}
