//! The tenant admin page's API, `/v1/admin/*`, for a tenant's administrators only.
//!
//! Every request carries the administrator's token (`Authorization: Bearer <JWT>`), checked as
//! a rep's is (the identity provider's keys, issuer, audience, expiry, origin) but for the
//! admin scope (`CTI_ADMIN_SCOPE`, XSUAA's `$XSAPPNAME.Admin` from the `Admin` role) instead of
//! the agent scope. The tenant is the token's (`app_tid`, else `zid`): an administrator only
//! ever sees and changes their own tenant, and no path or body names another.
//!
//! - `GET /v1/admin/tenant`: where the tenant's settings come from and the settings without
//!   their secrets (the names of the secrets that are set instead).
//! - `PUT /v1/admin/tenant/settings`: new settings for a subscribed tenant, checked field by
//!   field, secrets left out kept ([`settings::merge_secrets`]); a tenants-file tenant is
//!   read-only here (409).
//! - `POST /v1/admin/tenant/test`: the settings tried against V2 and the provider ([`probe`]).
//! - `GET /v1/admin/status`: the number index, the activity backlog and failed activities,
//!   the reps connected to this instance and the provider's connection.
//! - `POST /v1/admin/activities/{call_id}/retry`: a failed activity due again now.
//! - `GET /v1/admin/sign-in`: to the identity provider's sign-in, returning to `/admin/`.

pub(super) mod files;
mod probe;
mod settings;

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::activity::outbox::MAX_FAILURES_LISTED;
use crate::error::ApiError;
use crate::identity::AuthError;
use crate::numbers::IndexStatus;
use crate::reports::InstanceReport;
use crate::state::AppState;
use crate::tenancy::ConfigureError;

/// The administrator's tenant, from their token, once the token holds and carries the scope.
async fn tenant_of(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::identity::bearer::token)
        .ok_or_else(|| {
            ApiError::Unauthorized("the administrator's bearer token is missing".into())
        })?;
    let scope = state.config.jwt.admin_scope();
    match state.jwt.verify_scoped(token, &scope).await {
        Ok(identity) => Ok(identity.tenant),
        Err(err @ AuthError::MissingClientScope(_)) => Err(ApiError::Forbidden(format!(
            "{err}: the admin page is for the tenant's administrators (the Admin role)"
        ))),
        Err(err) if err.is_transient() => Err(ApiError::Unavailable(err.to_string())),
        Err(err) => {
            tracing::info!(%err, "admin request refused");
            Err(ApiError::Unauthorized(err.to_string()))
        }
    }
}

fn unavailable(err: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(err.to_string())
}

/// The tenant as the page shows it; 404 when it is neither in the tenants file nor subscribed.
async fn view(state: &AppState, tenant: &str) -> Result<Value, ApiError> {
    if let Some(config) = state.config.tenant(tenant) {
        let (settings, secrets_set) = file_settings(config);
        return Ok(json!({
            "tenant": tenant,
            "source": "file",
            "subdomain": null,
            "configured": true,
            "settings": settings,
            "secrets_set": secrets_set,
        }));
    }
    let subscription = state
        .directory
        .get(tenant)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::UnknownTenant(tenant.to_string()))?;
    let stored = crate::tenancy::stored_settings(state, tenant)
        .await
        .map_err(unavailable)?;
    let (settings, secrets_set) = settings::redact(stored.as_ref().unwrap_or(&json!({})));
    Ok(json!({
        "tenant": tenant,
        "source": "subscription",
        "subdomain": subscription.subdomain,
        "configured": stored.is_some(),
        "settings": settings,
        "secrets_set": secrets_set,
    }))
}

/// A tenants-file tenant's settings in the file's shape, as far as the checked configuration
/// keeps them: the common fields and the provider's name. The provider's own keys are not
/// shown (they are read from the file, which is where they are changed).
fn file_settings(config: &crate::config::TenantConfig) -> (Value, Vec<String>) {
    let auth = match &config.auth {
        crate::config::AuthMode::Basic => json!({"v2_auth": "basic"}),
        crate::config::AuthMode::Destination { name } => {
            json!({"v2_auth": "destination", "v2_destination": name})
        }
        crate::config::AuthMode::OAuth2 => json!({"v2_auth": "oauth2"}),
    };
    let mut settings = json!({
        "default_region": config.default_region,
        "provider": probe::provider_name(&config.telephony),
        "v2_url": config.v2_url,
        "v2_user": config.v2_user,
        "v2_events_user": config.v2_events_user,
        "v2_events_client_id": config.v2_events_client_id,
        "activity_fields": config.activity_fields,
        "dispositions": config.dispositions,
        "custom_1": if config.custom_1 { "display_id" } else { "off" },
        "host_origins": config.host_origins,
    });
    if let (Value::Object(settings), Value::Object(auth)) = (&mut settings, auth) {
        settings.extend(auth);
    }
    let mut secrets = vec!["v2_password".to_string()];
    if config.v2_events_password.is_some() {
        secrets.push("v2_events_password".into());
    }
    (settings, secrets)
}

pub(super) async fn get_tenant(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_of(&state, &headers).await?;
    view(&state, &tenant).await.map(Json)
}

/// The body as an object of settings, merged with the stored secrets, and the tenant it
/// configures once every field checks.
async fn checked(
    state: &AppState,
    tenant: &str,
    body: &[u8],
) -> Result<(serde_json::Map<String, Value>, crate::config::TenantConfig), ApiError> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let Value::Object(mut body) = body else {
        return Err(ApiError::InvalidSettings {
            field: "settings".into(),
            message: "the settings must be a JSON object".into(),
        });
    };
    // The tenant is the token's.
    body.remove("id");
    let stored = match state.config.tenant(tenant) {
        Some(_) => None,
        None => crate::tenancy::stored_settings(state, tenant)
            .await
            .map_err(unavailable)?,
    };
    settings::merge_secrets(&mut body, stored.as_ref());
    let config = settings::validate(tenant, &body).map_err(|e| ApiError::InvalidSettings {
        field: e.field,
        message: e.message,
    })?;
    Ok((body, config))
}

pub(super) async fn put_settings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_of(&state, &headers).await?;
    if state.config.tenant(&tenant).is_some() {
        return Err(ApiError::Conflict(format!(
            "tenant {tenant:?} is configured in the tenants file, which is where it is changed"
        )));
    }
    if state
        .directory
        .get(&tenant)
        .await
        .map_err(unavailable)?
        .is_none()
    {
        return Err(ApiError::UnknownTenant(tenant));
    }
    let (settings, _) = checked(&state, &tenant, &body).await?;
    match crate::tenancy::configure(&state, &tenant, &Value::Object(settings)).await {
        Ok(()) => {}
        Err(ConfigureError::NotSubscribed(t)) => return Err(ApiError::UnknownTenant(t)),
        Err(err @ ConfigureError::FromFile(_)) => return Err(ApiError::Conflict(err.to_string())),
        Err(ConfigureError::Invalid(err)) => {
            let named = settings::named(err);
            return Err(ApiError::InvalidSettings {
                field: named.field,
                message: named.message,
            });
        }
        Err(err) => {
            tracing::error!(%tenant, %err, "a tenant's settings could not be stored");
            return Err(unavailable(err));
        }
    }
    tracing::info!(%tenant, "tenant configured on the admin page");
    view(&state, &tenant).await.map(Json)
}

pub(super) async fn test_connection(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_of(&state, &headers).await?;
    if state.config.tenant(&tenant).is_none()
        && state
            .directory
            .get(&tenant)
            .await
            .map_err(unavailable)?
            .is_none()
    {
        return Err(ApiError::UnknownTenant(tenant));
    }
    let (_, config) = checked(&state, &tenant, &body).await?;
    let limit = state.config.v2_timeout;
    let webhook = format!(
        "{}/v1/tenants/{tenant}/telephony/{}",
        super::sign_in::public_base(&state, &headers),
        probe::provider_name(&config.telephony)
    );
    // V2's own timeout says which step was slow; the bound is the backstop for the whole.
    let bound = limit + std::time::Duration::from_secs(1);
    let (v2, provider) = tokio::join!(
        probe::bounded(bound, "V2", probe::v2(&config, limit)),
        probe::bounded(
            bound,
            "the provider",
            probe::provider(&config, &webhook, limit)
        ),
    );
    Ok(Json(json!({"v2": v2, "provider": provider})))
}

pub(super) async fn status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let id = tenant_of(&state, &headers).await?;
    let Some(tenant) = state.tenant(&id) else {
        // Subscribed but not configured yet, or unknown.
        view(&state, &id).await?;
        return Err(ApiError::Conflict(format!(
            "tenant {id:?} is not configured yet: its settings come first"
        )));
    };
    let index = match tenant.numbers.index_status() {
        IndexStatus::Ready { numbers } => {
            json!({"state": "ready", "numbers": numbers, "error": null})
        }
        IndexStatus::Building => json!({"state": "building", "numbers": null, "error": null}),
        IndexStatus::Failed { error } => {
            json!({"state": "failed", "numbers": null, "error": error})
        }
    };
    // The whole deployment's view: this instance now, the others as they last reported.
    let others = state
        .reports
        .others(&id, &state.instance_id)
        .await
        .map_err(unavailable)?;
    let all = InstanceReport::merged(crate::reporting::report_of(&state, &id), others);
    let mut index = index;
    index["last_build"] = match all.last_build {
        Some(build) => json!({
            "finished_at_ms": build.finished_at_ms,
            "duration_ms": build.duration_ms,
            "records": build.records,
        }),
        None => Value::Null,
    };
    let outbox = &state.activity.outbox;
    let backlog = outbox.backlog(&id).await.map_err(unavailable)?;
    let failed: Vec<Value> = outbox
        .failed(&id, MAX_FAILURES_LISTED)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|f| {
            json!({"call_id": f.call_id, "reason": f.reason, "attempts": f.attempts,
                   "parked": f.parked})
        })
        .collect();
    let reps: Vec<Value> = all
        .reps
        .into_iter()
        .map(|(rep, sessions)| json!({"rep": rep, "sessions": sessions}))
        .collect();
    let link = tenant.link.get();
    let (link_state, detail, reconnects) = match (link.role, all.link) {
        (crate::adapters::connector::Role::None, _) => (
            "webhook",
            Some("the provider pushes its events; there is no connection to hold".to_string()),
            link.reconnects,
        ),
        // The holder's view, this instance's or the one another instance reported.
        (_, Some(held)) => (
            if held.connected {
                "connected"
            } else {
                "disconnected"
            },
            held.detail,
            held.reconnects,
        ),
        (_, None) => (
            "disconnected",
            Some(link.last_error.unwrap_or_else(|| {
                "no instance reports holding the connection (it is being taken over, or \
                 the holder stopped)"
                    .into()
            })),
            link.reconnects,
        ),
    };
    Ok(Json(json!({
        "index": index,
        "activities": {"backlog": backlog, "failed": failed},
        "reps": reps,
        "provider": {
            "kind": tenant.adapter.provider(),
            "state": link_state,
            "detail": detail,
            "reconnects": reconnects,
        },
    })))
}

pub(super) async fn retry(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_of(&state, &headers).await?;
    let retried = state
        .activity
        .outbox
        .retry(&tenant, &call_id, state.clock.now_ms())
        .await
        .map_err(unavailable)?;
    if !retried {
        return Err(ApiError::NotFound(format!(
            "no activity of call {call_id:?} is waiting"
        )));
    }
    state.activity.wake();
    tracing::info!(%tenant, call = %call_id, "activity retried on the admin page");
    Ok(Json(json!({"retried": true})))
}

pub(super) async fn sign_in(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    super::sign_in::start(&state, &headers, crate::authority::SignInPage::Admin).await
}
