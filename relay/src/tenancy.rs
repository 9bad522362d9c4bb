//! A subscribed tenant's life in this instance: its settings configured (sealed and stored),
//! read again when another instance announces a change, and served with its own background work
//! (index refresh, provider link, activity writer). Tenants of the tenants file are started once
//! when the relay starts and never pass through here.
//!
//! Apart from [`crate::state`] because serving a tenant starts pipeline work, and the pipeline
//! itself depends on the state.

use std::sync::Arc;

use crate::authority::vault::Sealer;
use crate::config::TenantConfig;
use crate::pipeline;
use crate::state::{AppState, Tenant};

/// The associated data a subscribed tenant's settings are sealed with beside the tenant: no
/// rep id is empty (the rep id rule refuses it), so sealed settings never open as a rep's token
/// nor a token as settings.
const SETTINGS_OWNER: &str = "";

/// Why a subscribed tenant's settings were not taken.
#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    #[error("tenant {0:?} is not subscribed")]
    NotSubscribed(String),
    #[error("tenant {0:?} is configured in the tenants file")]
    FromFile(String),
    #[error(transparent)]
    Invalid(crate::config::ConfigError),
    #[error("CTI_TOKEN_KEY is required to keep a tenant's settings (and their secrets) in Redis")]
    NoKey,
    #[error("stored settings do not open with CTI_TOKEN_KEY (was the key changed?)")]
    Seal,
    #[error(transparent)]
    Store(#[from] crate::subscriptions::DirectoryError),
}

/// What seals a subscribed tenant's settings: `CTI_TOKEN_KEY` (with the previous key still
/// opening). Without a key, settings are kept only in memory (no Redis): see
/// [`configure`].
fn sealer(state: &AppState) -> Option<Sealer> {
    state
        .config
        .token_key
        .as_ref()
        .map(|key| Sealer::rotated(key, state.config.token_key_previous.as_ref()))
}

/// Configures a subscribed tenant: its settings (a tenants file entry's shape, checked as
/// the file is) are sealed whole with `CTI_TOKEN_KEY` and stored, and the tenant is served
/// with them from now on, here at once and on the other instances when they hear of it.
/// The admin page calls it (`PUT /v1/admin/tenant/settings`).
pub async fn configure(
    state: &Arc<AppState>,
    tenant: &str,
    settings: &serde_json::Value,
) -> Result<(), ConfigureError> {
    if state.config.tenant(tenant).is_some() {
        return Err(ConfigureError::FromFile(tenant.to_string()));
    }
    if state.directory.get(tenant).await?.is_none() {
        return Err(ConfigureError::NotSubscribed(tenant.to_string()));
    }
    let config = TenantConfig::from_json(tenant, settings).map_err(ConfigureError::Invalid)?;
    distinct_from_the_others(state, &config)?;
    let text = settings.to_string();
    let stored = match sealer(state) {
        Some(sealer) => sealer
            .seal(tenant, SETTINGS_OWNER, &text)
            .map_err(|_| ConfigureError::Seal)?,
        None if state.config.redis_url.is_some() => return Err(ConfigureError::NoKey),
        // In memory only: nothing leaves the process, so there is nothing to seal against.
        None => text.into_bytes(),
    };
    state.directory.put_settings(tenant, &stored).await?;
    let mut built = state.tenant_parts.build(&config);
    built.settings_text = Some(settings.to_string());
    serve(state, Arc::new(built));
    Ok(())
}

/// Refuses settings whose webhook proof another tenant (of the file, or served) takes too.
fn distinct_from_the_others(state: &AppState, config: &TenantConfig) -> Result<(), ConfigureError> {
    let served = state.tenants.all();
    let others: Vec<&TenantConfig> = state
        .config
        .tenants
        .iter()
        .chain(served.iter().map(|t| &t.config))
        .collect();
    crate::config::distinct_webhook_secrets(&[config], &others).map_err(ConfigureError::Invalid)
}

/// Reads a subscribed tenant's state from the directory again and serves what it says: its
/// settings when it has some, nothing when it is unconfigured or no longer subscribed.
pub async fn reload(state: &Arc<AppState>, tenant: &str) -> Result<(), ConfigureError> {
    if state.config.tenant(tenant).is_some() {
        return Ok(());
    }
    let subscribed = state.directory.get(tenant).await?.is_some();
    let sealed = match subscribed {
        true => state.directory.settings(tenant).await?,
        false => None,
    };
    let Some(sealed) = sealed else {
        state.forget(tenant);
        if !subscribed {
            // Unsubscribed at another instance: what this one holds of it goes too.
            state.forget_data(tenant).await;
        }
        return Ok(());
    };
    let settings = open(state, tenant, sealed)?;
    let config = TenantConfig::from_json(tenant, &settings).map_err(ConfigureError::Invalid)?;
    // Checked where the settings were saved, and again here: two tenants saved at two
    // instances at once could each have passed there with one secret.
    distinct_from_the_others(state, &config)?;
    let unchanged = state
        .tenants
        .get(tenant)
        .is_some_and(|t| t.settings_text.as_deref() == Some(settings.to_string().as_str()));
    if !unchanged {
        let mut built = state.tenant_parts.build(&config);
        built.settings_text = Some(settings.to_string());
        serve(state, Arc::new(built));
    }
    Ok(())
}

/// A subscribed tenant's settings as stored (secrets included), or None while it is
/// unconfigured: what the admin page shows (without the secrets) and merges a change into.
pub async fn stored_settings(
    state: &AppState,
    tenant: &str,
) -> Result<Option<serde_json::Value>, ConfigureError> {
    match state.directory.settings(tenant).await? {
        Some(sealed) => open(state, tenant, sealed).map(Some),
        None => Ok(None),
    }
}

/// Sealed settings opened (or read as they are, kept in memory without a key).
fn open(
    state: &AppState,
    tenant: &str,
    sealed: Vec<u8>,
) -> Result<serde_json::Value, ConfigureError> {
    let text = match sealer(state) {
        Some(sealer) => sealer
            .open(tenant, SETTINGS_OWNER, &sealed)
            .map_err(|_| ConfigureError::Seal)?
            .expose()
            .to_string(),
        None => String::from_utf8(sealed).map_err(|_| ConfigureError::Seal)?,
    };
    serde_json::from_str(&text).map_err(|_| ConfigureError::Seal)
}

/// Every subscribed tenant with settings, served: what an instance does at start.
pub async fn load_subscribed(state: &Arc<AppState>) -> Result<(), ConfigureError> {
    for subscription in state.directory.list().await? {
        if let Err(err) = reload(state, &subscription.tenant).await {
            tracing::error!(tenant = %subscription.tenant, %err, "a subscribed tenant's settings do not load");
        }
    }
    Ok(())
}

/// Serves `tenant` (replacing the one with its id) with its own background work.
fn serve(state: &Arc<AppState>, tenant: Arc<Tenant>) {
    let id = tenant.config.id.clone();
    let mut handles = vec![
        tokio::spawn(crate::numbers::refresh::run(
            state.numbers.clone(),
            tenant.numbers.clone(),
        ))
        .abort_handle(),
        tokio::spawn(pipeline::links::run(state.clone(), tenant.clone())).abort_handle(),
    ];
    let mut writer = state.writer();
    writer.tenants = vec![crate::activity::writer::WriterTenant {
        config: tenant.config.clone(),
        v2: tenant.v2.clone(),
        numbers: tenant.numbers.clone(),
    }];
    let stopping = state.clone();
    handles.push(
        tokio::spawn(crate::activity::writer::run(writer, async move {
            stopping.stopping().await
        }))
        .abort_handle(),
    );
    state.run_tenant(tenant, handles);
    tracing::info!(tenant = %id, "subscribed tenant served with its settings");
}
