//! The relay's shared state: one of each store, the hub, and each tenant's runtime parts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use crate::adapters::TelephonyAdapter;
use crate::adapters::generic::GenericAdapter;
use crate::auth::JwtVerifier;
use crate::calls::{CallStore, MemoryCallStore};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, TenantConfig};
use crate::metrics::Metrics;
use crate::numbers::live::MissCache;
use crate::numbers::redis_index::RedisIndex;
use crate::numbers::{DefaultRegion, MemoryIndex, NumberIndex};
use crate::push::Hub;
use crate::v2::V2Client;
use crate::v2::client::V2Auth;

/// Where a tenant's number index stands, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexStatus {
    Building,
    Ready { numbers: usize },
    Failed { error: String },
}

/// A tenant's configuration with the parts built from it.
#[derive(Debug)]
pub struct Tenant {
    pub config: TenantConfig,
    pub region: DefaultRegion,
    pub v2: V2Client,
    pub adapter: Arc<dyn TelephonyAdapter>,
    pub index_status: Mutex<IndexStatus>,
}

impl Tenant {
    pub fn index_status(&self) -> IndexStatus {
        self.index_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_index_status(&self, status: IndexStatus) {
        *self.index_status.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub tenants: HashMap<String, Arc<Tenant>>,
    pub index: Arc<dyn NumberIndex>,
    /// Live V2 answers for numbers the index missed.
    pub misses: MissCache,
    pub calls: Arc<dyn CallStore>,
    pub hub: Hub,
    pub metrics: Metrics,
    pub jwt: JwtVerifier,
    pub clock: SharedClock,
    /// Events of one call are applied one at a time; calls hash onto these stripes.
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl AppState {
    /// The stores the configuration asks for: Redis with `redis_url`, else in memory.
    pub async fn from_config(
        config: Config,
    ) -> Result<Arc<Self>, crate::numbers::index::IndexError> {
        let index: Arc<dyn NumberIndex> = match &config.redis_url {
            Some(url) => Arc::new(RedisIndex::connect(url.expose()).await?),
            None => Arc::new(MemoryIndex::default()),
        };
        Ok(Self::with_parts(
            config,
            index,
            Arc::new(MemoryCallStore::default()),
            Arc::new(SystemClock),
        ))
    }

    /// The embedded defaults: in-memory stores, the system clock.
    pub fn new(config: Config) -> Arc<Self> {
        Self::with_parts(
            config,
            Arc::new(MemoryIndex::default()),
            Arc::new(MemoryCallStore::default()),
            Arc::new(SystemClock),
        )
    }

    pub fn with_parts(
        config: Config,
        index: Arc<dyn NumberIndex>,
        calls: Arc<dyn CallStore>,
        clock: SharedClock,
    ) -> Arc<Self> {
        let generic: Arc<dyn TelephonyAdapter> = Arc::new(GenericAdapter::default());
        let tenants = config
            .tenants
            .iter()
            .map(|t| {
                let tenant = Tenant {
                    // Config validation already rejected unknown regions.
                    region: DefaultRegion::parse(&t.default_region)
                        .unwrap_or_else(|_| DefaultRegion::parse("US").expect("US is a region")),
                    v2: V2Client::new(
                        &t.v2_url,
                        V2Auth::Basic {
                            user: t.v2_user.clone(),
                            password: t.v2_password.clone(),
                        },
                        config.v2_timeout,
                    ),
                    adapter: generic.clone(),
                    index_status: Mutex::new(IndexStatus::Building),
                    config: t.clone(),
                };
                (t.id.clone(), Arc::new(tenant))
            })
            .collect();
        Arc::new(AppState {
            jwt: JwtVerifier::new(
                &config.jwt.jwks_url,
                &config.jwt.issuer,
                &config.jwt.audience,
            ),
            hub: Hub::new(config.replay_capacity, clock.clone()),
            metrics: Metrics::default(),
            stripes: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
            tenants,
            index,
            misses: MissCache::default(),
            calls,
            clock,
            config,
        })
    }

    pub fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.get(id)
    }

    /// The lock that serializes events of `call_id`.
    pub fn stripe(&self, tenant: &str, call_id: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (tenant, call_id).hash(&mut hasher);
        &self.stripes[(hasher.finish() as usize) % self.stripes.len()]
    }
}
