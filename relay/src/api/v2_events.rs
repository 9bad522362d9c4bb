//! `POST /v1/tenants/{tenant}/v2-events`: V2's change events, so the number index follows edits
//! within seconds instead of at the next full build.
//!
//! Two body shapes reach it: the CloudEvents envelope a tenant's event notification sends, and the
//! `{entity, currentImage}` payload SAP's sample shows for external hooks, since an administrator
//! may set up either. Delivery is authenticated as the tenant's outbound communication system is
//! set up: Basic, or OAuth 2.0 client credentials (see `identity::bearer`).
//!
//! The endpoint answers 202 at once (V2's asynchronous hooks expect that) and re-reads the entity
//! in the background; an event is only a hint of which entity to re-read (see `numbers::update`).
//! Events for entities the index does not hold (opportunities, cases, …) are acknowledged and
//! ignored, so a broadly configured event subscription does no harm.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cti_protocol::ws::RecordKind;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::identity::{basic, bearer};
use crate::metrics::BuildLabels;
use crate::numbers::update;
use crate::state::AppState;

/// Most events one request may carry (V2 sends one; a batch of CloudEvents is an array).
const MAX_EVENTS: usize = 100;

/// One event reduced to what the index needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    Entity {
        kind: RecordKind,
        id: String,
    },
    /// About something the index does not hold; the reason says what.
    Ignored(String),
}

pub(super) async fn receive(
    State(state): State<Arc<AppState>>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&state, &tenant_id, &headers, body).await {
        Ok(summary) => (StatusCode::ACCEPTED, Json(summary)).into_response(),
        Err(err) => {
            count(&state, &tenant_id, err.code());
            // The path's tenant id, not yet known to be configured, and a reason that may repeat
            // it: Debug-escaped, so a `%0A` in the URL cannot forge a log line.
            tracing::info!(tenant = ?tenant_id, code = err.code(), reason = ?err.to_string(), "V2 event rejected");
            let challenge = matches!(err, ApiError::Unauthorized(_));
            let mut response = err.into_response();
            if challenge {
                for scheme in [
                    "Basic realm=\"cti-relay v2-events\"",
                    "Bearer realm=\"cti-relay v2-events\"",
                ] {
                    response.headers_mut().append(
                        header::WWW_AUTHENTICATE,
                        header::HeaderValue::from_static(scheme),
                    );
                }
            }
            response
        }
    }
}

async fn handle(
    state: &Arc<AppState>,
    tenant_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    let tenant = state
        .tenant(tenant_id)
        .ok_or_else(|| ApiError::UnknownTenant(tenant_id.to_string()))?;
    let basic_credentials = tenant
        .config
        .v2_events_user
        .as_deref()
        .zip(tenant.config.v2_events_password.as_ref());
    let client_id = tenant.config.v2_events_client_id.as_deref();
    if basic_credentials.is_none() && client_id.is_none() {
        return Err(ApiError::UnknownTenant(format!(
            "{tenant_id}: V2 change events are not enabled (no V2 events credentials configured)"
        )));
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match (authorization, client_id, basic_credentials) {
        (Some(value), Some(client_id), _) if bearer::token(value).is_some() => {
            bearer::verify(&state.jwt, value, tenant_id, client_id)
                .await
                .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        }
        (_, _, Some((user, password))) => basic::verify(authorization, user, password.expose())
            .map_err(|e| ApiError::Unauthorized(e.to_string()))?,
        _ => {
            return Err(ApiError::Unauthorized(
                "a Bearer token from the identity provider is expected".into(),
            ));
        }
    }
    let limit = state.config.webhook_max_bytes;
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let events = parse(&bytes)?;
    let now = state.clock.now_ms();
    let mut accepted = Vec::new();
    let mut ignored = Vec::new();
    for event in events {
        match event {
            Parsed::Entity { kind, id } => {
                let key = update::entity_key(kind, &id);
                // Noted first: a rebuild swapping in meanwhile re-applies it.
                state
                    .numbers
                    .coordination
                    .note_change(tenant_id, &key, now)
                    .await
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
                accepted.push((kind, id));
            }
            Parsed::Ignored(reason) => ignored.push(reason),
        }
    }
    for (kind, id) in &accepted {
        count(state, tenant_id, "accepted");
        let (state, tenant, kind, id) = (state.clone(), tenant.clone(), *kind, id.clone());
        tokio::spawn(async move {
            let tid = tenant.config.id.clone();
            match update::apply(&state.numbers, &tenant.numbers, kind, &id).await {
                Ok(updated) => {
                    count(&state, &tid, "applied");
                    tracing::info!(tenant = %tid, ?kind, ?updated, "index updated from a V2 change");
                }
                Err(err) => {
                    count(&state, &tid, "failed");
                    // The next full build picks the change up.
                    tracing::warn!(%err, tenant = %tid, ?kind, "applying a V2 change failed");
                }
            }
        });
    }
    for _ in &ignored {
        count(state, tenant_id, "ignored");
    }
    Ok(json!({"accepted": accepted.len(), "ignored": ignored}))
}

fn count(state: &AppState, tenant: &str, outcome: &str) {
    // Unknown tenants share one label, so a scan of random paths cannot grow the metrics.
    let tenant = if state.tenant(tenant).is_some() {
        tenant
    } else {
        "(unknown)"
    };
    state
        .metrics
        .v2_events
        .get_or_create(&BuildLabels {
            tenant: tenant.into(),
            outcome: outcome.into(),
        })
        .inc();
}

/// Reads one CloudEvent or an array of them.
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<Parsed>, ApiError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    match value {
        Value::Array(items) if items.len() > MAX_EVENTS => Err(ApiError::InvalidEvent(format!(
            "{} events in one request; at most {MAX_EVENTS}",
            items.len()
        ))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, e)| parse_one(e).map_err(|m| ApiError::InvalidEvent(format!("[{i}]: {m}"))))
            .collect(),
        other => Ok(vec![parse_one(&other).map_err(ApiError::InvalidEvent)?]),
    }
}

fn parse_one(event: &Value) -> Result<Parsed, String> {
    if !event.is_object() {
        return Err("an event must be a JSON object".into());
    }
    let text = |path: &str| event.pointer(path).and_then(Value::as_str).map(str::trim);
    // An external hook's payload names the entity instead of an event type, and has no envelope.
    let hook = event.get("specversion").is_none()
        && event.get("currentImage").is_some_and(Value::is_object);
    let (event_type, images) = if hook {
        let entity = text("/entity").ok_or("missing `entity` (an external hook's payload)")?;
        (entity, "")
    } else {
        text("/specversion").ok_or(
            "missing `specversion` (a CloudEvents envelope or an external hook's `{entity, currentImage}` is expected)",
        )?;
        (text("/type").ok_or("missing `type`")?, "/data")
    };
    let Some(kind) = kind_of(event_type) else {
        return Ok(Parsed::Ignored(format!(
            "type {event_type:?} is not about a caller record"
        )));
    };
    // The image is the entity itself; `subject` is only seen holding the id in one tenant's
    // events, so it comes second.
    let id = text(&format!("{images}/currentImage/id"))
        .filter(|id| !id.is_empty())
        .or_else(|| text("/subject").filter(|id| !id.is_empty()))
        .or_else(|| text(&format!("{images}/beforeImage/id")))
        .filter(|id| !id.is_empty())
        .ok_or("no entity id: `currentImage.id` and `subject` are both missing")?;
    if id.len() > 100 || id.chars().any(|c| c.is_control()) {
        return Err("the entity id is not a V2 id".into());
    }
    Ok(Parsed::Entity {
        kind,
        id: id.to_string(),
    })
}

/// The record kind an event type is about: `sap.crm.custom.event.updateAccount`,
/// `…createContactPerson`, `…deleteIndividualCustomer`, or the entity names
/// `sap.ssc.accountservice.entity.account` style.
fn kind_of(event_type: &str) -> Option<RecordKind> {
    let last = event_type.rsplit('.').next()?.to_ascii_lowercase();
    let entity = ["create", "update", "delete", "change"]
        .iter()
        .find_map(|op| last.strip_prefix(op))
        .unwrap_or(&last);
    match entity {
        "account" | "corporateaccount" => Some(RecordKind::Account),
        "contact" | "contactperson" => Some(RecordKind::Contact),
        "individualcustomer" => Some(RecordKind::IndividualCustomer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = r#"{"id":"ec7e11d8","specversion":"0.2","type":"sap.crm.custom.event.updateAccount",
        "source":"63d2b99cd28c19121118a781","subject":"0197a1ea-0afb-711a-9b74-03460a24dff7",
        "time":"2026-01-13T13:59:32.934399888Z","datacontenttype":"application/json",
        "data":{"beforeImage":{"id":"0197a1ea-0afb-711a-9b74-03460a24dff7"},
                "currentImage":{"id":"0197a1ea-0afb-711a-9b74-03460a24dff7"}}}"#;

    #[test]
    fn the_published_envelope_names_an_account() {
        assert_eq!(
            parse(HOOK.as_bytes()).expect("valid"),
            [Parsed::Entity {
                kind: RecordKind::Account,
                id: "0197a1ea-0afb-711a-9b74-03460a24dff7".into()
            }]
        );
    }

    #[test]
    fn kinds_from_event_types() {
        assert_eq!(
            kind_of("sap.crm.custom.event.createContactPerson"),
            Some(RecordKind::Contact)
        );
        assert_eq!(
            kind_of("sap.crm.custom.event.deleteIndividualCustomer"),
            Some(RecordKind::IndividualCustomer)
        );
        assert_eq!(
            kind_of("sap.ssc.accountservice.entity.account"),
            Some(RecordKind::Account)
        );
        assert_eq!(kind_of("sap.crm.custom.event.updateOpportunity"), None);
    }

    #[test]
    fn id_falls_back_to_the_images_and_bad_events_say_why() {
        let no_subject = r#"{"specversion":"0.2","type":"x.updateContactPerson","data":{"beforeImage":{"id":"c1"}}}"#;
        assert_eq!(
            parse(no_subject.as_bytes()).expect("valid"),
            [Parsed::Entity {
                kind: RecordKind::Contact,
                id: "c1".into()
            }]
        );
        let err =
            parse(br#"{"type":"x.updateAccount","subject":"a"}"#).expect_err("no specversion");
        assert!(err.to_string().contains("specversion"), "{err}");
        let err = parse(br#"[{"specversion":"0.2","type":"x.updateAccount"}]"#).expect_err("no id");
        assert!(
            err.to_string().contains("[0]") && err.to_string().contains("subject"),
            "{err}"
        );
        assert!(matches!(parse(b"{"), Err(ApiError::MalformedJson(_))));
        let ignored = parse(br#"{"specversion":"0.2","type":"x.updateOpportunity","subject":"o"}"#)
            .expect("valid");
        assert!(matches!(&ignored[0], Parsed::Ignored(r) if r.contains("updateOpportunity")));
    }

    #[test]
    fn the_current_image_names_the_entity_before_the_subject() {
        let event = r#"{"specversion":"0.2","type":"sap.crm.custom.event.updateAccount",
            "subject":"not-the-id","data":{"currentImage":{"id":"a1"},"beforeImage":{"id":"a0"}}}"#;
        assert_eq!(
            parse(event.as_bytes()).expect("valid"),
            [Parsed::Entity {
                kind: RecordKind::Account,
                id: "a1".into()
            }]
        );
    }

    #[test]
    fn an_external_hook_payload_names_its_entity() {
        let hook = r#"[{"entity":"sap.ssc.contactpersonservice.entity.contactPerson",
            "currentImage":{"id":"c7","displayId":"1000290"}},
            {"entity":"sap.ssc.caseservice.entity.case","currentImage":{"id":"k1"}}]"#;
        let parsed = parse(hook.as_bytes()).expect("valid");
        assert_eq!(
            parsed[0],
            Parsed::Entity {
                kind: RecordKind::Contact,
                id: "c7".into()
            }
        );
        assert!(matches!(&parsed[1], Parsed::Ignored(r) if r.contains("case")));
        let err = parse(br#"{"currentImage":{"id":"c7"}}"#).expect_err("no entity");
        assert!(err.to_string().contains("entity"), "{err}");
    }
}
