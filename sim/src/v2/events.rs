//! V2's outbound change events: after an account, contact person or individual customer is
//! created, changed or deleted, V2 calls the configured endpoint with a CloudEvents 0.2 envelope
//! (shared/reference/sap-v2.md section 5: the envelope a real tenant sent; the `type` names for
//! other entities and operations follow the `updateAccount` pattern). Delivery is asynchronous
//! and authenticated with Basic credentials, as an outbound communication system can be set up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::SimConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    fn word(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// The entity name V2 uses in event types, for the collections that emit events.
fn entity(collection: &str) -> Option<&'static str> {
    match collection {
        "accounts" => Some("Account"),
        "contactPersons" => Some("ContactPerson"),
        "individualCustomers" => Some("IndividualCustomer"),
        _ => None,
    }
}

#[derive(Debug)]
pub struct Emitter {
    http: reqwest::Client,
    /// None: events are off.
    url: Option<String>,
    user: String,
    password: String,
    source: String,
    delivered: std::sync::Arc<AtomicU64>,
}

impl Emitter {
    pub fn new(config: &SimConfig) -> Self {
        Emitter {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            url: config.v2_events.then(|| {
                format!(
                    "{}/v1/tenants/{}/v2-events",
                    config.relay_url.trim_end_matches('/'),
                    config.tenant
                )
            }),
            user: config.v2_events_user.clone(),
            password: config.v2_events_password.clone(),
            source: format!("sim-tenant-{}", config.tenant),
            delivered: Default::default(),
        }
    }

    /// Events the endpoint accepted so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::SeqCst)
    }

    /// Sends the event for a change in the background (a few attempts; V2's own retry policy is
    /// not documented).
    pub fn emit(
        &self,
        op: Operation,
        collection: &str,
        before: Option<&Value>,
        after: Option<&Value>,
    ) {
        let (Some(url), Some(entity)) = (self.url.clone(), entity(collection)) else {
            return;
        };
        let Some(id) = after
            .or(before)
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
        else {
            return;
        };
        let now = super::now_stamp();
        let event = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "specversion": "0.2",
            "type": format!("sap.crm.custom.event.{}{entity}", op.word()),
            "source": self.source,
            "subject": id,
            "time": now,
            "datacontenttype": "application/json",
            "data": {
                "beforeImage": before.cloned().unwrap_or(Value::Null),
                "currentImage": after.cloned().unwrap_or(Value::Null),
                "dataContext": {"requestedByUser": "api", "requestProcessedOn": now}
            }
        });
        let (http, user, password, delivered) = (
            self.http.clone(),
            self.user.clone(),
            self.password.clone(),
            self.delivered.clone(),
        );
        tokio::spawn(async move {
            for attempt in 0..3u32 {
                let sent = http
                    .post(&url)
                    .basic_auth(&user, Some(&password))
                    .json(&event)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        delivered.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    Ok(r) => {
                        tracing::warn!(status = %r.status(), attempt, "V2 change event refused")
                    }
                    Err(err) => tracing::warn!(%err, attempt, "V2 change event not delivered"),
                }
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        });
    }
}
