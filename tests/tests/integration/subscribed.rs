//! What the tests of subscribed tenants share: a stack taking SaaS subscriptions (with Redis
//! when given one), the simulated registry's token, a subscription over HTTP, and the settings
//! an administrator gives a subscribed tenant.

use cti_relay::config::SaasConfig;
use cti_relay::secret::Secret;
use cti_tests::redis::RedisServer;
use cti_tests::{Stack, test_token_key};
use serde_json::{Value, json};

/// A subscriber's zone id, as XSUAA names subaccounts.
pub const TENANT: &str = "2c8b3f2e-6f1a-4c1e-9d55-5c1b0f6d7a10";

pub fn saas() -> SaasConfig {
    SaasConfig {
        tenant_url: "https://{subdomain}-cti.example.com".into(),
        callback_scope: cti_sim::btp::CALLBACK_SCOPE.into(),
        dependencies: vec!["destination-xsappname!b404".into()],
    }
}

pub async fn start(redis: Option<&RedisServer>) -> Stack {
    Stack::start_with(|c| {
        c.saas = Some(saas());
        if let Some(server) = redis {
            c.redis_url = Some(Secret::new(server.url()));
            c.token_key = Some(test_token_key());
        }
    })
    .await
    .expect("stack starts")
}

/// The token the registry fetches from the relay's (simulated) XSUAA with its client credentials.
pub async fn registry_token(stack: &Stack) -> String {
    let sim = &stack.sim.sim.config;
    let answer: Value = stack
        .http
        .post(format!(
            "{}/sim/btp/saas-registry/oauth/token",
            stack.sim.url()
        ))
        .basic_auth(&sim.saas_client_id, Some(&sim.saas_client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("the simulated XSUAA answers")
        .error_for_status()
        .expect("a token")
        .json()
        .await
        .expect("JSON");
    answer["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

pub fn subscription_body(tenant: &str, subdomain: &str) -> Value {
    json!({
        "subscriptionAppName": "cti-relay",
        "subscribedTenantId": tenant,
        "subscribedSubdomain": subdomain,
        "globalAccountGUID": "9f1c0c8e-0000-4000-8000-000000000001",
        "subscriptionGUID": "5a0e7c1d-0000-4000-8000-000000000002",
        "userId": "admin@example.com",
    })
}

pub fn callback(stack: &Stack, tenant: &str) -> String {
    format!("{}/callback/v1.0/tenants/{tenant}", stack.relay.url())
}

pub async fn subscribe(stack: &Stack, token: Option<&str>, tenant: &str) -> reqwest::Response {
    let mut request = stack
        .http
        .put(callback(stack, tenant))
        .json(&subscription_body(tenant, "acme"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the relay answers")
}

pub async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("an error body");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// A subscribed tenant's settings as its administrator would give them.
pub fn tenant_settings(stack: &Stack, v2_user: &str) -> Value {
    let sim = stack.sim.url();
    json!({
        "default_region": "CH",
        "v2_url": sim,
        "v2_user": v2_user,
        "v2_password": "tenant-v2-password-4711",
        "webhook_secret": "tenant-webhook-secret-0815",
        "control_url": format!("{sim}/pbx/control"),
        "dispositions": ["Sold", "Call back"],
        "host_origins": ["https://my000001.crm.cloud.sap"],
    })
}
