//! The SAP BTP SaaS Provisioning service's callbacks (mta.yaml's `cti-saas-registry`):
//!
//! - `PUT /callback/v1.0/tenants/{tenantId}`: a subaccount subscribed. The body names it
//!   (`subscribedTenantId`, `subscribedSubdomain`, `globalAccountGUID`, ...); the answer is the
//!   subscriber's relay URL as text, from `CTI_SAAS_TENANT_URL`. The tenant exists from now on,
//!   unconfigured until its administrator gives it a V2 tenant and a telephony provider.
//! - `DELETE /callback/v1.0/tenants/{tenantId}`: it unsubscribed; the subscription and the
//!   tenant's stored data are deleted ([`crate::subscriptions`]).
//! - `GET /callback/v1.0/dependencies`: the reuse services a subscriber needs
//!   (`CTI_SAAS_DEPENDENCIES`), as `[{"xsappname": ...}]`.
//!
//! Each needs the registry's client-credentials token from the relay's own XSUAA, carrying
//! `$XSAPPNAME.Callback` (xs-security.json grants it to the registry as an authority): checked
//! like every token the relay takes (its JWKS, issuer, audience, expiry), and then for the grant
//! and the scope. The paths, the body's field names and the text answer are those SAP's samples
//! use (reference: SAP V2 notes 6.5); the registry's retries make both callbacks idempotent here.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::identity::AuthError;
use crate::state::AppState;
use crate::subscriptions::{Subscription, valid_subdomain, valid_tenant_id};

/// The subscription body's fields the relay reads; the registry sends more (`subscriptionAppName`,
/// `subscriptionGUID`, `userId`, ...), which are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    subscribed_tenant_id: Option<String>,
    subscribed_subdomain: Option<String>,
    #[serde(rename = "globalAccountGUID")]
    global_account_guid: Option<String>,
}

/// The settings, or 404 when this deployment takes no subscriptions.
fn settings(state: &AppState) -> Result<&crate::config::SaasConfig, ApiError> {
    state.config.saas.as_ref().ok_or_else(|| {
        ApiError::NotEnabled(
            "this relay takes no SaaS subscriptions (set CTI_SAAS_TENANT_URL)".into(),
        )
    })
}

/// The registry's token, checked for the callback scope.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let saas = settings(state)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::identity::bearer::token)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "the SaaS registry's bearer token (XSUAA client credentials) is missing".into(),
            )
        })?;
    match state.jwt.verify_service(token, &saas.callback_scope).await {
        Ok(_) => Ok(()),
        Err(err @ (AuthError::MissingClientScope(_) | AuthError::NotClientCredentials(_))) => {
            tracing::warn!(%err, "subscription callback refused");
            Err(ApiError::Forbidden(err.to_string()))
        }
        Err(err) if err.is_transient() => Err(ApiError::Unavailable(err.to_string())),
        Err(err) => {
            tracing::warn!(%err, "subscription callback refused");
            Err(ApiError::Unauthorized(err.to_string()))
        }
    }
}

/// A path's tenant id, checked; a tenant of the tenants file is not the registry's to change.
fn tenant_id(state: &AppState, id: &str) -> Result<String, ApiError> {
    if !valid_tenant_id(id) {
        return Err(ApiError::InvalidRequest(format!(
            "tenant id {id:?}: letters, digits, '-', '_' or '.', up to 64"
        )));
    }
    if state.config.tenant(id).is_some() {
        return Err(ApiError::Conflict(format!(
            "tenant {id:?} is configured in the tenants file, not through subscriptions"
        )));
    }
    Ok(id.to_string())
}

pub(super) async fn subscribe(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers).await?;
    let tenant = tenant_id(&state, &id)?;
    let payload: Payload =
        serde_json::from_slice(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    if let Some(named) = &payload.subscribed_tenant_id
        && *named != tenant
    {
        return Err(ApiError::InvalidRequest(format!(
            "subscribedTenantId {named:?} is not the path's tenant {tenant:?}"
        )));
    }
    let subdomain = payload
        .subscribed_subdomain
        .map(|s| s.trim().to_ascii_lowercase())
        .ok_or_else(|| ApiError::InvalidRequest("subscribedSubdomain is missing".into()))?;
    if !valid_subdomain(&subdomain) {
        return Err(ApiError::InvalidRequest(format!(
            "subscribedSubdomain {subdomain:?} is not one DNS label"
        )));
    }
    let url = settings(&state)?.tenant_url(&tenant, &subdomain);
    let subscription = Subscription {
        tenant: tenant.clone(),
        subdomain,
        url: url.clone(),
        global_account: payload.global_account_guid,
        subscribed_at_ms: state.clock.now_ms(),
    };
    state
        .directory
        .put(&subscription)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    tracing::info!(%tenant, %url, "tenant subscribed");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        url,
    )
        .into_response())
}

pub(super) async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers).await?;
    let tenant = tenant_id(&state, &id)?;
    // Gone for new requests first, with its background work, so nothing writes its data again
    // while it is deleted.
    state.forget(&tenant);
    // Activities not in V2 yet keep their outbox until it expires; when the count cannot be
    // read, the outbox is kept as though it held some.
    let backlog = match state.activity.outbox.backlog(&tenant).await {
        Ok(backlog) => backlog,
        Err(err) => {
            tracing::warn!(%tenant, %err, "the unsubscribed tenant's outbox is kept: its backlog does not read");
            1
        }
    };
    let purged = state
        .directory
        .remove(&tenant, backlog)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    state.forget_data(&tenant).await;
    tracing::info!(
        %tenant,
        deleted = purged.deleted,
        expiring = purged.expiring,
        backlog,
        "tenant unsubscribed; its stored data deleted"
    );
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn dependencies(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers).await?;
    let list: Vec<_> = settings(&state)?
        .dependencies
        .iter()
        .map(|xsappname| json!({"xsappname": xsappname}))
        .collect();
    Ok(Json(list).into_response())
}
