//! V2's outbound change events: after an account, contact person or individual customer is
//! created, changed or deleted, V2 calls the configured endpoint with a CloudEvents 0.2 envelope
//! (shared/reference/sap-v2.md section 5: the envelope a real tenant sent; the `type` names for
//! other entities and operations follow the `updateAccount` pattern), or, set up as an external
//! hook, with the `{entity, currentImage}` payload of SAP's sample. Delivery is asynchronous and
//! authenticated as an outbound communication system can be set up: Basic credentials, or a
//! client-credentials token (issued here by the simulated identity provider; which provider a
//! real tenant's token URL points at is the tenant's choice).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::SimConfig;
use crate::idp::Idp;

/// The body shape events are sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    #[default]
    CloudEvent,
    /// `{entity: "sap.ssc.<service>.entity.<entity>", currentImage}`.
    ExternalHook,
}

/// How deliveries authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// The configured events user and password.
    #[default]
    Basic,
    /// A fresh token for this client per delivery, naming `tenant`.
    ClientCredentials { client_id: String, tenant: String },
}

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

/// The entity name an external hook carries (`.crm.` replaced by `.ssc.`, as SAP's sample notes).
fn hook_entity(collection: &str) -> Option<&'static str> {
    match collection {
        "accounts" => Some("sap.ssc.accountservice.entity.account"),
        "contactPersons" => Some("sap.ssc.contactpersonservice.entity.contactPerson"),
        "individualCustomers" => {
            Some("sap.ssc.individualcustomerservice.entity.individualCustomer")
        }
        _ => None,
    }
}

/// The body of one event in `shape`.
fn body(
    shape: Shape,
    op: Operation,
    collection: &str,
    source: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Option<Value> {
    let id = after
        .or(before)
        .and_then(|r| r.get("id"))
        .and_then(Value::as_str)?;
    match shape {
        Shape::CloudEvent => {
            let entity = entity(collection)?;
            let now = super::now_stamp();
            Some(json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "specversion": "0.2",
                "type": format!("sap.crm.custom.event.{}{entity}", op.word()),
                "source": source,
                "subject": id,
                "time": now,
                "datacontenttype": "application/json",
                "data": {
                    "beforeImage": before.cloned().unwrap_or(Value::Null),
                    "currentImage": after.cloned().unwrap_or(Value::Null),
                    "dataContext": {"requestedByUser": "api", "requestProcessedOn": now}
                }
            }))
        }
        // A hook after a delete has no current image; the deleted one stands in, so the
        // receiver still learns the id (inferred: no delete hook payload is published).
        Shape::ExternalHook => Some(json!({
            "entity": hook_entity(collection)?,
            "currentImage": after.or(before).cloned().unwrap_or(Value::Null),
        })),
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
    delivery: parking_lot::Mutex<(Shape, Auth)>,
    idp: std::sync::Arc<Idp>,
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
            delivery: Default::default(),
            idp: std::sync::Arc::new(Idp::new(config)),
            delivered: Default::default(),
        }
    }

    /// Sends later events in `shape`, authenticated with `auth`.
    pub fn set_delivery(&self, shape: Shape, auth: Auth) {
        *self.delivery.lock() = (shape, auth);
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
        let Some(url) = self.url.clone() else {
            return;
        };
        let (shape, auth) = self.delivery.lock().clone();
        let Some(event) = body(shape, op, collection, &self.source, before, after) else {
            return;
        };
        let (http, user, password, idp, delivered) = (
            self.http.clone(),
            self.user.clone(),
            self.password.clone(),
            self.idp.clone(),
            self.delivered.clone(),
        );
        tokio::spawn(async move {
            for attempt in 0..3u32 {
                let request = match &auth {
                    Auth::Basic => http.post(&url).basic_auth(&user, Some(&password)),
                    Auth::ClientCredentials { client_id, tenant } => {
                        let token = match idp.try_issue(client_id, tenant, 300) {
                            Ok(issued) => issued.token,
                            Err(err) => {
                                tracing::warn!(%err, "no token for a V2 change event");
                                return;
                            }
                        };
                        http.post(&url).bearer_auth(token)
                    }
                };
                let sent = request.json(&event).send().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_carry_the_entity_and_its_id() {
        let record = json!({"id": "a1", "displayId": "1000"});
        let cloud = body(
            Shape::CloudEvent,
            Operation::Update,
            "accounts",
            "s",
            None,
            Some(&record),
        )
        .expect("an event");
        assert_eq!(cloud["type"], "sap.crm.custom.event.updateAccount");
        assert_eq!(cloud["data"]["currentImage"]["id"], "a1");
        let hook = body(
            Shape::ExternalHook,
            Operation::Delete,
            "contactPersons",
            "s",
            Some(&record),
            None,
        )
        .expect("a hook");
        assert_eq!(
            hook,
            json!({"entity": "sap.ssc.contactpersonservice.entity.contactPerson",
                   "currentImage": record})
        );
        assert!(
            body(
                Shape::ExternalHook,
                Operation::Create,
                "cases",
                "s",
                None,
                Some(&record)
            )
            .is_none()
        );
    }
}
