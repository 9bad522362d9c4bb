//! The tenant admin page's API over HTTP with the simulator's tokens: who may use it, a
//! subscribed tenant configured through it (and its next call popping at a rep), settings
//! refused by field, the connection test, and failed activities listed and retried.

use cti_relay::activity::outbox::Next;
use cti_relay::activity::{Outbox, RedisOutbox};
use cti_tests::redis::RedisServer;
use cti_tests::{Provider, Stack, WsClient, eventually};
use serde_json::{Value, json};

use super::subscribed::{TENANT, error_of, registry_token, start, subscribe};

/// A subscribed tenant's settings that reach the simulated V2 (its technical user
/// `demo`/`demo`) and PBX.
fn tenant_settings(stack: &Stack, v2_user: &str) -> Value {
    let mut settings = super::subscribed::tenant_settings(stack, v2_user);
    settings["v2_password"] = json!("demo");
    settings
}

const ADMIN: &str = "admin@example.com";

fn admin_token(stack: &Stack, tenant: &str) -> String {
    stack.sim.sim.idp.issue_admin(ADMIN, tenant, 3600)
}

fn url(stack: &Stack, path: &str) -> String {
    format!("{}/v1/admin/{path}", stack.relay.url())
}

async fn get(stack: &Stack, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = stack.http.get(url(stack, path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the relay answers")
}

async fn send(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    stack
        .http
        .request(method, url(stack, path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the relay answers")
}

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.expect("a body");
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON")
}

#[tokio::test]
async fn only_an_admin_of_the_tenant_gets_in_and_sees_only_their_tenant() {
    let stack = start(None).await;
    let registry = registry_token(&stack).await;
    const OTHER: &str = "7d1e0a55-0000-4000-8000-0000000000b2";
    for tenant in [TENANT, OTHER] {
        assert_eq!(
            subscribe(&stack, Some(&registry), tenant).await.status(),
            200
        );
    }

    let (status, code, message) = error_of(get(&stack, "tenant", None).await).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"), "{message}");
    let (status, code, _) = error_of(get(&stack, "tenant", Some("not.a.jwt")).await).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));

    // A rep's token carries the agent scope, not the admin's.
    let rep = stack.sim.sim.idp.issue("alice@example.com", TENANT, 300);
    let (status, code, message) = error_of(get(&stack, "tenant", Some(&rep)).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "{message}");
    assert!(message.contains("cti-relay.Admin"), "{message}");
    let (status, ..) = error_of(get(&stack, "status", Some(&rep)).await).await;
    assert_eq!(status, 403);

    // The simulator's admin token, over HTTP as the page fetches it.
    let issued: Value = stack
        .http
        .get(format!(
            "{}/sim/token?agent={ADMIN}&tenant={TENANT}&role=admin",
            stack.sim.url()
        ))
        .send()
        .await
        .expect("the simulator answers")
        .json()
        .await
        .expect("JSON");
    let admin_a = issued["token"].as_str().expect("a token").to_string();
    let configured = send(
        &stack,
        reqwest::Method::PUT,
        "tenant/settings",
        &admin_a,
        &tenant_settings(&stack, "demo"),
    )
    .await;
    assert_eq!(configured.status(), 200);

    let a = json_of(get(&stack, "tenant", Some(&admin_a)).await).await;
    assert_eq!(a["tenant"], TENANT);
    assert_eq!(a["configured"], true);
    assert_eq!(a["settings"]["v2_user"], "demo");

    // B's admin sees B, unconfigured, and nothing of A's.
    let admin_b = admin_token(&stack, OTHER);
    let b = json_of(get(&stack, "tenant", Some(&admin_b)).await).await;
    assert_eq!(b["tenant"], OTHER);
    assert_eq!(b["source"], "subscription");
    assert_eq!(b["subdomain"], "acme");
    assert_eq!(b["configured"], false);
    assert_eq!(b["settings"], json!({}));
    assert_eq!(b["secrets_set"], json!([]));
    // The status of an unconfigured tenant waits for its settings.
    let (status, code, _) = error_of(get(&stack, "status", Some(&admin_b)).await).await;
    assert_eq!((status, code.as_str()), (409, "conflict"));

    // Neither subscribed nor in the tenants file.
    let stranger = admin_token(&stack, "nobody-here");
    let (status, code, _) = error_of(get(&stack, "tenant", Some(&stranger)).await).await;
    assert_eq!((status, code.as_str()), (404, "unknown_tenant"));

    // A tenants-file tenant is shown, read-only.
    let demo = admin_token(&stack, "demo");
    let shown = json_of(get(&stack, "tenant", Some(&demo)).await).await;
    assert_eq!(shown["source"], "file");
    assert_eq!(shown["settings"]["provider"], "generic");
    assert!(
        !shown.to_string().contains("demo-webhook-secret"),
        "{shown}"
    );
    let (status, code, _) = error_of(
        send(
            &stack,
            reqwest::Method::PUT,
            "tenant/settings",
            &demo,
            &tenant_settings(&stack, "demo"),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "conflict"));
}

/// A rep of `tenant` signed in over the widget's WebSocket.
async fn rep_of(stack: &Stack, tenant: &str, rep: &str) -> WsClient {
    let mut ws = WsClient::connect(&stack.ws_url()).await.expect("connects");
    let token = stack.sim.sim.idp.issue(rep, tenant, 3600);
    ws.send_json(&json!({"type": "hello", "token": token}))
        .await
        .expect("hello sent");
    let welcome = ws.recv_json().await.expect("an answer");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws
}

#[tokio::test]
async fn settings_put_on_the_page_configure_the_tenant_and_its_next_call_pops() {
    let server = RedisServer::start().await.expect("redis-server");
    let stack = start(Some(&server)).await;
    let registry = registry_token(&stack).await;
    assert_eq!(
        subscribe(&stack, Some(&registry), TENANT).await.status(),
        200
    );
    let admin = admin_token(&stack, TENANT);

    let mut settings = tenant_settings(&stack, "demo");
    settings["id"] = json!("demo");
    let body = json_of(
        send(
            &stack,
            reqwest::Method::PUT,
            "tenant/settings",
            &admin,
            &settings,
        )
        .await,
    )
    .await;
    assert_eq!(
        body["tenant"], TENANT,
        "the token's tenant, not the body's id"
    );
    assert_eq!(body["configured"], true);
    assert_eq!(
        body["secrets_set"],
        json!(["v2_password", "webhook_secret"])
    );
    assert!(body["settings"].get("v2_password").is_none(), "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("tenant-webhook-secret-0815"),
        "shown: {text}"
    );
    assert_eq!(
        body["settings"]["dispositions"],
        json!(["Sold", "Call back"])
    );
    assert!(
        stack.relay.state.tenant("demo").is_some(),
        "the file's demo tenant untouched"
    );

    // The next ringing webhook for the tenant pops the caller's record at its rep.
    let rep = "alice@example.com";
    let mut ws = rep_of(&stack, TENANT, rep).await;
    let (number, _, name) = stack.single_match_caller().expect("a caller");
    let event = json!({"id": "adm-evt-1", "call_id": "adm-call-1", "type": "ringing",
        "direction": "inbound", "from": number, "to": "+41 44 999 00 00", "agent": rep,
        "at": cti_tests::now_rfc3339()})
    .to_string();
    let signed = cti_sim::pbx::sign_now("tenant-webhook-secret-0815", event.as_bytes());
    let posted = stack
        .http
        .post(format!(
            "{}/v1/tenants/{TENANT}/telephony/generic",
            stack.relay.url()
        ))
        .header("content-type", "application/json")
        .header("x-cti-timestamp", signed.0)
        .header("x-cti-signature", signed.1)
        .body(event)
        .send()
        .await
        .expect("the relay answers");
    assert_eq!(posted.status(), 202);
    let popped = ws
        .recv_until("the call to pop the caller's record", |m| {
            m["type"] == "call"
                && m["call"]["id"] == "adm-call-1"
                && m["call"]["pop"]["name"] == name.as_str()
        })
        .await
        .expect("popped");
    assert_eq!(popped["call"]["state"], "ringing");

    // A change without the secrets keeps them.
    let mut change = tenant_settings(&stack, "demo");
    let object = change.as_object_mut().expect("an object");
    object.remove("v2_password");
    object.remove("webhook_secret");
    object.insert("dispositions".into(), json!(["Won"]));
    let body = json_of(
        send(
            &stack,
            reqwest::Method::PUT,
            "tenant/settings",
            &admin,
            &change,
        )
        .await,
    )
    .await;
    assert_eq!(
        body["secrets_set"],
        json!(["v2_password", "webhook_secret"])
    );
    let served = stack.relay.state.tenant(TENANT).expect("served");
    assert_eq!(served.config.dispositions, ["Won"]);
    // The secrets left out are the stored ones.
    assert_eq!(served.config.v2_password.expose(), "demo");
}

#[tokio::test]
async fn a_bad_field_is_refused_by_name_and_changes_nothing() {
    let stack = start(None).await;
    let registry = registry_token(&stack).await;
    assert_eq!(
        subscribe(&stack, Some(&registry), TENANT).await.status(),
        200
    );
    let admin = admin_token(&stack, TENANT);

    let mut settings = tenant_settings(&stack, "demo");
    settings["default_region"] = json!("XX");
    let response = send(
        &stack,
        reqwest::Method::PUT,
        "tenant/settings",
        &admin,
        &settings,
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "invalid_settings", "{body}");
    assert_eq!(body["error"]["field"], "default_region", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("XX")),
        "{body}"
    );

    let mut settings = tenant_settings(&stack, "demo");
    settings["webhook_secret"] = json!("too-short");
    let response = send(
        &stack,
        reqwest::Method::PUT,
        "tenant/settings",
        &admin,
        &settings,
    )
    .await;
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "webhook_secret", "{body}");
    assert!(
        !body.to_string().contains("too-short"),
        "a secret echoed: {body}"
    );

    assert!(stack.relay.state.tenant(TENANT).is_none());
    let shown = json_of(get(&stack, "tenant", Some(&admin)).await).await;
    assert_eq!(shown["configured"], false);
}

/// The page's "Test connection": what V2 and the provider said to `settings`.
async fn test_connection(stack: &Stack, admin: &str, settings: &Value) -> Value {
    json_of(send(stack, reqwest::Method::POST, "tenant/test", admin, settings).await).await
}

#[tokio::test]
async fn the_connection_test_says_what_worked_and_what_failed() {
    let stack = start(None).await;
    let registry = registry_token(&stack).await;
    assert_eq!(
        subscribe(&stack, Some(&registry), TENANT).await.status(),
        200
    );
    let admin = admin_token(&stack, TENANT);

    let result = test_connection(&stack, &admin, &tenant_settings(&stack, "demo")).await;
    assert_eq!(result["v2"]["ok"], true, "{result}");
    assert_eq!(result["provider"]["ok"], true, "{result}");
    let provider = result["provider"]["detail"].as_str().unwrap_or_default();
    assert!(
        provider.contains(&format!("/v1/tenants/{TENANT}/telephony/generic")),
        "{provider}"
    );
    // Nothing was stored by a test.
    assert!(stack.relay.state.tenant(TENANT).is_none());

    let mut wrong = tenant_settings(&stack, "demo");
    wrong["v2_password"] = json!("not-the-v2-password");
    let result = test_connection(&stack, &admin, &wrong).await;
    assert_eq!(result["v2"]["ok"], false, "{result}");
    let detail = result["v2"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("401"), "{detail}");
    assert!(
        !result.to_string().contains("not-the-v2-password"),
        "{result}"
    );
}

#[tokio::test]
async fn the_connection_test_asks_genesys_cloud_for_a_token() {
    let stack = start(None).await;
    let registry = registry_token(&stack).await;
    assert_eq!(
        subscribe(&stack, Some(&registry), TENANT).await.status(),
        200
    );
    let admin = admin_token(&stack, TENANT);
    let sim = stack.sim.url();
    let mut settings = tenant_settings(&stack, "demo");
    let object = settings.as_object_mut().expect("an object");
    object.remove("webhook_secret");
    object.remove("control_url");
    object.insert("provider".into(), json!("genesys"));
    object.insert(
        "genesys_api_url".into(),
        json!(format!("{sim}/sim/genesys")),
    );
    object.insert(
        "genesys_login_url".into(),
        json!(format!("{sim}/sim/genesys/login")),
    );
    object.insert("genesys_client_id".into(), json!("cti-relay-genesys"));
    object.insert("genesys_client_secret".into(), json!("demo-genesys-secret"));
    let result = test_connection(&stack, &admin, &settings).await;
    assert_eq!(result["provider"]["ok"], true, "{result}");

    settings["genesys_client_secret"] = json!("not-the-genesys-secret");
    let result = test_connection(&stack, &admin, &settings).await;
    assert_eq!(result["provider"]["ok"], false, "{result}");
    assert_eq!(result["v2"]["ok"], true, "{result}");
    assert!(
        !result.to_string().contains("not-the-genesys-secret"),
        "{result}"
    );
}

/// Finesse and a SIP PBX are tried over their own protocols against real servers: Finesse's
/// REST API and a login to the XMPP server its notifications come through (Prosody), and a
/// fetch of a rep's dialog state from Kamailio with the relay's digest account. A wrong
/// password fails each, and the page is told so without the password.
#[tokio::test]
async fn the_connection_test_logs_in_to_finesse_and_to_a_sip_pbx() {
    let wrong = "not-the-password-4711";
    for provider in [Provider::Finesse, Provider::Sip] {
        let stack = Stack::start_through(provider, |_| {})
            .await
            .expect("the stack starts");
        let admin = admin_token(&stack, "demo");
        let sim = stack.sim.url();
        let mut settings = tenant_settings(&stack, "demo");
        let object = settings.as_object_mut().expect("an object");
        object.remove("webhook_secret");
        object.remove("control_url");
        let (own, password, says) = match provider {
            Provider::Finesse => (
                json!({
                    "provider": "finesse",
                    "finesse_url": format!("{sim}/sim/finesse"),
                    "finesse_xmpp_host": "127.0.0.1",
                    "finesse_xmpp_port": stack.prosody.as_ref().expect("Prosody").port,
                    "finesse_xmpp_tls": false,
                    "finesse_agents": {
                        "1001": {"rep": "alice@example.com", "password": "demo-finesse-1001"},
                    },
                }),
                "/finesse_agents/1001/password",
                "accepted the same account's login",
            ),
            _ => (
                json!({
                    "provider": "sip",
                    "sip_server": stack.kamailio.as_ref().expect("Kamailio").addr(),
                    "sip_reps": {"alice@example.com": "sip:1001@pbx.test"},
                    "sip_username": "cti-relay",
                    "sip_password": "demo-sip-relay",
                }),
                "/sip_password",
                "accepted the account \"cti-relay\" and a dialog subscription",
            ),
        };
        for (key, value) in own.as_object().expect("an object") {
            object.insert(key.clone(), value.clone());
        }
        let result = test_connection(&stack, &admin, &settings).await;
        assert_eq!(result["provider"]["ok"], true, "{result}");
        let detail = result["provider"]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{detail}");

        *settings.pointer_mut(password).expect("the password") = json!(wrong);
        let result = test_connection(&stack, &admin, &settings).await;
        assert_eq!(result["provider"]["ok"], false, "{result}");
        assert_eq!(result["v2"]["ok"], true, "{result}");
        assert!(!result.to_string().contains(wrong), "{result}");
    }
}

/// With two instances behind one Redis, the status shows the whole deployment whichever
/// instance answers: reps signed in at the other instance, the provider connection the other
/// holds and the last index build; a rep who leaves drops out.
#[tokio::test]
async fn the_status_shows_every_instance_of_the_deployment() {
    let redis = RedisServer::start().await.expect("Redis starts");
    let url = redis.url();
    let stack = Stack::start_through(Provider::Genesys, |c| {
        c.redis_url = Some(cti_relay::secret::Secret::new(url.clone()));
        c.report_interval = std::time::Duration::from_millis(100);
    })
    .await
    .expect("the stack starts");
    let second = stack
        .spawn_another_relay()
        .await
        .expect("a second instance");
    let admin = admin_token(&stack, "demo");
    let first_status = format!("{}/v1/admin/status", stack.relay.url());
    let second_status = format!("{}/v1/admin/status", second.url());
    let status = |url: String| {
        let (http, admin) = (stack.http.clone(), admin.clone());
        async move {
            let response = http.get(url).bearer_auth(admin).send().await.ok()?;
            (response.status() == 200).then_some(response.json::<Value>().await.ok()?)
        }
    };
    let ws_url = format!("ws://{}/v1/agent/ws", second.addr);
    let (alice, _) = WsClient::signed_in_at(&stack, &ws_url, "alice@example.com", None)
        .await
        .expect("alice signs in at the second instance");

    for url in [&first_status, &second_status] {
        let seen = eventually("the whole deployment in the status", || {
            let status = status(url.clone());
            async move {
                let status = status.await?;
                let alice_there = status["reps"]
                    .as_array()?
                    .iter()
                    .any(|r| r["rep"] == "alice@example.com" && r["sessions"] == 1);
                (alice_there
                    && status["provider"]["state"] == "connected"
                    && status["index"]["last_build"]["records"].as_u64().is_some())
                .then_some(status)
            }
        })
        .await
        .expect("both instances show alice, the connection and the last build");
        assert_eq!(seen["provider"]["kind"], "genesys", "{seen}");
    }

    drop(alice);
    eventually("alice gone from the other instance's view", || {
        let status = status(first_status.clone());
        async move {
            let status = status.await?;
            status["reps"].as_array()?.is_empty().then_some(())
        }
    })
    .await
    .expect("a rep who left drops out");
}

/// An activity of `tenant` that V2 refused: queued, claimed and given back parked with V2's
/// reason, as the writer does. Queued in the future, so the tenant's own writer leaves it be.
async fn refused_activity(outbox: &dyn Outbox, tenant: &str, call_id: &str) {
    let later = 4_000_000_000_000;
    let mut log = cti_relay::calls::log::CallLog {
        call_id: call_id.into(),
        direction: cti_relay::calls::log::LogDirection::Inbound,
        outcome: cti_protocol::event::EndReason::Completed,
        started_at: "2026-12-03T08:00:00Z".into(),
        answered_at: None,
        ended_at: "2026-12-03T08:01:00Z".into(),
        talk_secs: 0,
        total_secs: 60,
        from: "+41441234567".into(),
        to: "+41449990000".into(),
        remote: "+41441234567".into(),
        reps: vec!["alice@example.com".into()],
        owner: "alice@example.com".into(),
        record: None,
        notes: String::new(),
        disposition: None,
        recording_url: None,
        consent: None,
        from_mid_call: false,
    };
    log.notes = "refused once".into();
    outbox.put(tenant, &log, later).await.expect("queued");
    let mut claimed = outbox
        .claim_due(tenant, later, 60_000, 10)
        .await
        .expect("claimed");
    let mut entry = claimed.pop().expect("the entry");
    entry.progress.attempts = 1;
    entry.progress.last_error = Some("V2 answered 400: the subject is too long".into());
    entry.progress.parked = true;
    assert!(
        outbox
            .finish(tenant, &entry, Next::Parked, later)
            .await
            .expect("given back")
    );
}

#[tokio::test]
async fn the_status_lists_a_failed_activity_and_a_retry_writes_it() {
    let stack = Stack::start().await.expect("stack starts");
    let admin = admin_token(&stack, "demo");
    let _rep = WsClient::signed_in(&stack, "alice@example.com", None)
        .await
        .expect("signed in");
    refused_activity(
        stack.relay.state.activity.outbox.as_ref(),
        "demo",
        "adm-failed-1",
    )
    .await;

    let status = json_of(get(&stack, "status", Some(&admin)).await).await;
    assert_eq!(status["index"]["state"], "ready", "{status}");
    assert!(
        status["index"]["numbers"].as_u64().is_some_and(|n| n > 0),
        "{status}"
    );
    assert!(
        status["index"]["last_build"]["records"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{status}"
    );
    assert_eq!(
        status["activities"]["failed"],
        json!([{"call_id": "adm-failed-1", "reason": "V2 answered 400: the subject is too long",
                "attempts": 1, "parked": true}]),
        "{status}"
    );
    assert_eq!(
        status["reps"],
        json!([{"rep": "alice@example.com", "sessions": 1}])
    );
    assert_eq!(status["provider"]["kind"], "generic");
    assert_eq!(status["provider"]["state"], "webhook");

    let (status_code, code, _) = error_of(
        send(
            &stack,
            reqwest::Method::POST,
            "activities/no-such-call/retry",
            &admin,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!((status_code, code.as_str()), (404, "not_found"));

    let retried = json_of(
        send(
            &stack,
            reqwest::Method::POST,
            "activities/adm-failed-1/retry",
            &admin,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(retried, json!({"retried": true}));
    // Due again: the writer takes it and V2 gets the activity.
    stack
        .wait_activity("adm-failed-1", "the retried activity in V2", |_| true)
        .await
        .expect("written");
    eventually("the failure to leave the list", || async {
        let status = json_of(get(&stack, "status", Some(&admin)).await).await;
        (status["activities"]["failed"] == json!([])).then_some(())
    })
    .await
    .expect("no longer failed");
}

#[tokio::test]
async fn a_redis_outbox_lists_its_failures() {
    let server = RedisServer::start().await.expect("redis-server");
    let outbox = RedisOutbox::connect(&server.url(), "instance-1")
        .await
        .expect("connects");
    refused_activity(&outbox, "t1", "redis-failed-1").await;
    let failed = outbox.failed("t1", 10).await.expect("listed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].call_id, "redis-failed-1");
    assert_eq!(failed[0].attempts, 1);
    assert!(failed[0].parked);
    assert!(failed[0].reason.contains("too long"));
    assert!(outbox.failed("t2", 10).await.expect("listed").is_empty());

    assert!(
        outbox
            .retry("t1", "redis-failed-1", 1)
            .await
            .expect("retried")
    );
    let entry = outbox
        .get("t1", "redis-failed-1")
        .await
        .expect("read")
        .expect("kept");
    assert!(entry.due, "due again after the retry");
}
