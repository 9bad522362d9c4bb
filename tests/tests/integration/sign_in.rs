//! The relay's own sign-in through XSUAA (authorization code) for subscribers: each signs in at
//! its own identity zone, found from the host it opened the CTI at, through the simulated XSUAA
//! (zones under `/sim/xsuaa/{zone}`), and lands on the admin page or the widget with a token of
//! its zone. Hosts are `<subdomain>.localhost` (the subscription URL pattern), which browsers
//! take for this machine and the HTTP tests send as `Host` to the relay's loopback address.

use anyhow::{Context, Result, ensure};
use cti_relay::config::{SaasConfig, XsuaaSignIn};
use cti_relay::secret::Secret;
use cti_relay::subscriptions::Subscription;
use cti_tests::browser::Browser;
use cti_tests::{Stack, test_token_key};
use reqwest::header::{COOKIE, HOST, LOCATION, SET_COOKIE};
use serde_json::Value;

/// Two subscribers: their tenant (zone) ids and subdomains.
const TENANT_A: &str = "0a0a0a0a-1111-4000-8000-00000000000a";
const TENANT_B: &str = "0b0b0b0b-2222-4000-8000-00000000000b";
const ADMIN_B: &str = "boss@beta.example";

/// A relay taking subscriptions at `http://<subdomain>.localhost`, trusting every zone of the
/// simulated XSUAA and signing users in there; acme (A) and beta (B) subscribed, each with its
/// zone.
async fn start() -> Stack {
    let sim_xsuaa = cti_sim::SimConfig::default();
    let stack = Stack::start_with(|c| {
        let sim = c
            .jwt
            .jwks_url
            .trim_end_matches("/sim/jwks.json")
            .to_string();
        c.saas = Some(SaasConfig {
            tenant_url: "http://{subdomain}.localhost".into(),
            callback_scope: cti_sim::btp::CALLBACK_SCOPE.into(),
            dependencies: Vec::new(),
        });
        c.token_key = Some(test_token_key());
        c.jwt.issuer = format!("{sim}/sim/xsuaa/*/oauth/token");
        c.jwt.jwks_url = format!("{sim}/sim/xsuaa/*/token_keys");
        c.signin_url = None;
        c.xsuaa_sign_in = Some(XsuaaSignIn {
            client_id: sim_xsuaa.xsuaa_client_id.clone(),
            client_secret: Secret::new(sim_xsuaa.xsuaa_client_secret.clone()),
            authorize_url: format!("{sim}/sim/xsuaa/{{zone}}/oauth/authorize"),
            token_url: format!("{sim}/sim/xsuaa/{{zone}}/oauth/token"),
            zone: None,
            zones_by_host: true,
        });
    })
    .await
    .expect("stack starts");
    for (tenant, subdomain) in [(TENANT_A, "acme"), (TENANT_B, "beta")] {
        stack
            .relay
            .state
            .directory
            .put(&Subscription {
                tenant: tenant.into(),
                subdomain: subdomain.into(),
                url: format!("http://{subdomain}.localhost"),
                global_account: None,
                subscribed_at_ms: 0,
            })
            .await
            .expect("subscribed");
        stack.sim.sim.xsuaa.add_zone(subdomain, tenant);
    }
    stack
}

/// A browser that does not follow redirects, so each step is seen.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

fn host(stack: &Stack, subdomain: &str) -> String {
    format!("{subdomain}.localhost:{}", stack.relay.addr.port())
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A started sign-in: XSUAA's authorize URL and the cookie the relay set.
struct Started {
    authorize: String,
    cookie: String,
}

async fn start_sign_in(stack: &Stack, host: &str, path: &str) -> reqwest::Response {
    browser()
        .get(format!("{}{path}", stack.relay.url()))
        .header(HOST, host)
        .send()
        .await
        .expect("the relay answers")
}

async fn started(stack: &Stack, subdomain: &str, path: &str) -> Started {
    let response = start_sign_in(stack, &host(stack, subdomain), path).await;
    assert_eq!(response.status(), 303, "{response:?}");
    let set = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    assert!(
        set.contains("Path=/v1/sign-in/callback") && set.contains("HttpOnly"),
        "{set}"
    );
    let cookie = set.split(';').next().expect("name=value").to_string();
    Started {
        authorize: location(&response),
        cookie,
    }
}

/// Follows XSUAA's authorize step (with extra query parameters): where it sends the browser.
async fn authorize(started: &Started, extra: &str) -> String {
    let answer = browser()
        .get(format!("{}{extra}", started.authorize))
        .send()
        .await
        .expect("XSUAA answers");
    assert_eq!(answer.status(), 303, "{answer:?}");
    location(&answer)
}

/// The relay's callback as the browser reaches it, with or without the cookie.
async fn callback(stack: &Stack, back: &str, cookie: Option<&str>) -> reqwest::Response {
    let back = reqwest::Url::parse(back).expect("a URL");
    assert_eq!(back.path(), "/v1/sign-in/callback");
    let mut request = browser()
        .get(format!(
            "{}{}?{}",
            stack.relay.url(),
            back.path(),
            back.query().unwrap_or_default()
        ))
        .header(HOST, back.authority());
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("the relay answers")
}

async fn page_text(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_subscribers_admin_signs_in_at_their_own_zone_and_nowhere_else() {
    let stack = start().await;

    // Beta's administrator opens the admin page's sign-in at beta's address.
    let started = started(&stack, "beta", "/v1/admin/sign-in").await;
    let sim = stack.sim.url();
    assert!(
        started
            .authorize
            .starts_with(&format!("{sim}/sim/xsuaa/beta/oauth/authorize?")),
        "{}",
        started.authorize
    );
    let back = authorize(&started, &format!("&login_hint={ADMIN_B}&role=admin")).await;
    assert!(
        back.starts_with(&format!(
            "http://{}/v1/sign-in/callback?code=",
            host(&stack, "beta")
        )),
        "{back}"
    );
    let landed = callback(&stack, &back, Some(&started.cookie)).await;
    assert_eq!(landed.status(), 303, "{landed:?}");
    let target = location(&landed);
    let token = target
        .strip_prefix("/admin/#token=")
        .unwrap_or_else(|| panic!("not the admin page with a token: {target}"))
        .to_string();

    // A token of beta's zone, which the admin API takes for beta, and only beta.
    let tenant: Value = stack
        .http
        .get(format!("{}/v1/admin/tenant", stack.relay.url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the relay answers")
        .error_for_status()
        .expect("the admin API takes it")
        .json()
        .await
        .expect("JSON");
    assert_eq!(tenant["tenant"], TENANT_B, "{tenant}");
    assert_eq!(tenant["subdomain"], "beta", "{tenant}");
    assert_eq!(
        stack.relay.state.jwt.zone_of(&token).as_deref(),
        Some("beta")
    );

    // The same answer again: XSUAA takes a code once.
    let (status, text) = page_text(callback(&stack, &back, Some(&started.cookie)).await).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Invalid authorization code"), "{text}");

    // A made-up state, or a real one in a browser that did not start it.
    let forged = back.replace("state=", "state=x");
    let (status, text) = page_text(callback(&stack, &forged, Some(&started.cookie)).await).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("state is invalid"), "{text}");
    let other = self::started(&stack, "beta", "/v1/admin/sign-in").await;
    let back = authorize(&other, &format!("&login_hint={ADMIN_B}&role=admin")).await;
    for cookie in [None, Some(started.cookie.as_str())] {
        let (status, text) = page_text(callback(&stack, &back, cookie).await).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("this browser did not start"), "{text}");
    }

    // Beta's state taken to acme's zone: the code is acme's, the exchange beta's, XSUAA refuses.
    let moved = self::started(&stack, "beta", "/v1/admin/sign-in").await;
    let at_acme = Started {
        authorize: moved
            .authorize
            .replace("/sim/xsuaa/beta/", "/sim/xsuaa/acme/"),
        cookie: moved.cookie.clone(),
    };
    let back = authorize(&at_acme, "&role=admin").await;
    let (status, text) = page_text(callback(&stack, &back, Some(&moved.cookie)).await).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("invalid_grant") || text.contains("Invalid"),
        "{text}"
    );

    // Addresses that are no subscriber's have no zone to sign in at.
    for (host, said) in [
        ("evil.example".to_string(), "is not a subscriber's"),
        (host(&stack, "gamma"), "no subscriber has the subdomain"),
        (stack.relay.addr.to_string(), "is not a subscriber's"),
    ] {
        let (status, text) =
            page_text(start_sign_in(&stack, &host, "/v1/admin/sign-in").await).await;
        assert_eq!(status, 400, "{host}: {text}");
        assert!(text.contains(said), "{host}: {text}");
    }
}

#[tokio::test]
async fn a_rep_signs_in_to_the_widget_but_not_to_the_admin_page() {
    let stack = start().await;

    let started = started(&stack, "acme", "/v1/agent/sign-in").await;
    let back = authorize(&started, "&login_hint=alice@acme.example").await;
    let landed = callback(&stack, &back, Some(&started.cookie)).await;
    assert_eq!(landed.status(), 303, "{landed:?}");
    let target = location(&landed);
    let token = target.strip_prefix("/widget/#token=").expect("the widget");
    let identity = stack
        .relay
        .state
        .jwt
        .verify(token)
        .await
        .expect("a rep's token");
    assert_eq!(identity.tenant, TENANT_A);
    assert_eq!(identity.agent, "alice@acme.example");

    // The same rep at the admin page: not an administrator.
    let started = self::started(&stack, "acme", "/v1/admin/sign-in").await;
    let back = authorize(&started, "&login_hint=alice@acme.example").await;
    let (status, text) = page_text(callback(&stack, &back, Some(&started.cookie)).await).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("Admin role"), "{text}");

    // XSUAA refusing the user: said, not a blank page.
    stack.sim.sim.xsuaa.deny_next();
    let started = self::started(&stack, "acme", "/v1/agent/sign-in").await;
    let back = authorize(&started, "").await;
    let (status, text) = page_text(callback(&stack, &back, Some(&started.cookie)).await).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("access_denied"), "{text}");
}

#[tokio::test]
async fn a_subscribers_admin_opens_the_sign_in_in_chromium_and_lands_on_the_admin_page()
-> Result<()> {
    let stack = start().await;
    // The browser's session at beta's zone is its administrator's.
    stack.sim.sim.xsuaa.sign_in_as(ADMIN_B, true);
    let browser = Browser::start().await?;
    browser
        .client
        .goto(&format!("http://{}/v1/admin/sign-in", host(&stack, "beta")))
        .await?;
    browser
        .wait_for("#field-v2_url")
        .await
        .context("the admin page, signed in")?;
    let address = browser.client.current_url().await?;
    ensure!(
        address.host_str() == Some("beta.localhost") && address.path() == "/admin/",
        "landed at {address}"
    );
    ensure!(
        !address.as_str().contains("token="),
        "the token is still in the address bar: {address}"
    );
    Ok(())
}
