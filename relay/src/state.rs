//! The relay's shared state: one of each store, the hub, and each tenant's runtime parts.

use std::collections::HashMap;
use std::sync::Arc;

use crate::activity::{FallbackOutbox, MemoryOutbox, Outbox, RedisOutbox};
use crate::adapters::TelephonyAdapter;
use crate::adapters::call_state::{CallStateStore, MemoryCallState, RedisCallState};
use crate::adapters::connector::{ConnectorLeases, LinkStatus, RedisLeases, SoleInstance};
use crate::authority::Authority;
use crate::calls::consent::ConsentPolicy;
use crate::calls::{CallStore, FallbackCallStore, MemoryCallStore, RedisCallStore};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, TenantConfig};
use crate::identity::JwtVerifier;
use crate::metrics::Metrics;
use crate::numbers::budget::DailyBudget;
use crate::numbers::choices::{ChoiceStore, MemoryChoices};
use crate::numbers::coordination::{MemoryCoordination, RefreshCoordination};
use crate::numbers::live::MissCache;
use crate::numbers::rank::RankRules;
use crate::numbers::redis_index::RedisIndex;
use crate::numbers::{
    DefaultRegion, MemoryIndex, NumberIndex, Numbers, Settings as NumberSettings, TenantNumbers,
};
use crate::push::Hub;
use crate::v2::V2Client;
use crate::v2::client::V2Auth;

/// A tenant's configuration with the parts built from it.
#[derive(Debug)]
pub struct Tenant {
    pub config: TenantConfig,
    pub region: DefaultRegion,
    pub v2: V2Client,
    pub adapter: Arc<dyn TelephonyAdapter>,
    /// Where this instance stands with the provider's connector, for `/readyz`.
    pub link: Arc<LinkStatus>,
    pub rules: RankRules,
    /// Where recordings need the caller's consent.
    pub consent: ConsentPolicy,
    /// On whose authority activities are written.
    pub auth: crate::authority::AuthMode,
    /// The tenant's number index: its status, budget and what the last build learnt.
    pub numbers: Arc<TenantNumbers>,
    /// A subscribed tenant's settings as stored (None for the tenants file's): whether a change
    /// heard from another instance changes anything.
    pub settings_text: Option<String>,
}

/// What every tenant's runtime parts are built with: the process's HTTP client and clock, the
/// adapters' call-state store, the refresher's daily budget.
#[derive(Debug, Clone)]
pub struct TenantParts {
    http: reqwest::Client,
    clock: SharedClock,
    call_state: Arc<dyn CallStateStore>,
    refresh_budget: Option<u64>,
    /// This process's start, when nothing remembers webhook events across a restart (no
    /// Redis); see [`crate::adapters::Context::forgets_before_ms`].
    forgets_before_ms: Option<u64>,
}

impl TenantParts {
    /// A tenant's V2 client, number index side and telephony adapter, from its configuration.
    pub fn build(&self, t: &TenantConfig) -> Tenant {
        let v2 = V2Client::with_http(
            self.http.clone(),
            &t.v2_url,
            V2Auth::Basic {
                user: t.v2_user.clone(),
                password: t.v2_password.clone(),
            },
        );
        Tenant {
            region: t.region.clone(),
            numbers: Arc::new(TenantNumbers::new(
                &t.id,
                v2.clone(),
                t.region.clone(),
                DailyBudget::new(self.refresh_budget, self.clock.clone()),
            )),
            v2,
            adapter: crate::adapters::build(
                &t.telephony,
                crate::adapters::Context {
                    tenant: t.id.clone(),
                    http: self.http.clone(),
                    clock: self.clock.clone(),
                    forgets_before_ms: self.forgets_before_ms,
                },
                self.call_state.clone(),
            ),
            link: Arc::default(),
            rules: t.rank_rules.clone(),
            consent: t.recording_consent.clone().unwrap_or_default(),
            auth: t.auth.clone(),
            config: t.clone(),
            settings_text: None,
        }
    }
}

/// The stores behind the traits, chosen by configuration (or by a test).
#[derive(Debug, Clone)]
pub struct Stores {
    pub index: Arc<dyn NumberIndex>,
    pub coordination: Arc<dyn RefreshCoordination>,
    pub choices: Arc<dyn ChoiceStore>,
    pub calls: Arc<dyn CallStore>,
    pub outbox: Arc<dyn Outbox>,
    pub vault: Arc<dyn crate::authority::vault::TokenVault>,
    /// Where the reps' sign-in tokens are shared between instances (sealed, with a token key).
    pub user_tokens: Option<Arc<dyn crate::authority::vault::TokenVault>>,
    /// A replay store shared by all instances (it publishes every message to them); None keeps
    /// replay in memory.
    pub shared_replay: Option<Arc<dyn crate::push::replay::ReplayStore>>,
    /// Who runs each tenant's provider connector.
    pub leases: Arc<dyn ConnectorLeases>,
    /// What adapters remember of a provider's calls between notifications.
    pub call_state: Arc<dyn CallStateStore>,
    /// The customers subscribed through the SaaS Provisioning service.
    pub directory: Arc<dyn crate::subscriptions::Directory>,
    /// Where instances leave their reports for each other's admin pages.
    pub reports: Arc<dyn crate::reports::ReportStore>,
    /// This process, as the holder of leases (rebuilds, activities): one name for all of them.
    pub instance_id: String,
}

impl Stores {
    /// The stores the configuration asks for: Redis with `redis_url`, else in memory (a test
    /// may wrap one of them before building the state with [`AppState::with_parts`]).
    pub async fn from_config(config: &Config, clock: SharedClock) -> Result<Stores, StartupError> {
        let instance_id = uuid::Uuid::new_v4().to_string();
        if config.redis_url.is_some()
            && config.token_key.is_none()
            && config
                .tenants
                .iter()
                .any(|t| matches!(t.auth, crate::authority::AuthMode::Destination { .. }))
        {
            tracing::warn!(
                "reps' sign-ins stay on the instance their widget talks to (set CTI_TOKEN_KEY to \
                 share them sealed through Redis): an activity claimed by another instance waits \
                 until the rep's instance takes it"
            );
        }
        let stores = match &config.redis_url {
            Some(url) => {
                // One multiplexed connection serves every store; only the fan-out listener,
                // which subscribes, has its own.
                let conn = crate::shared_store::connect(url.expose())
                    .await
                    .map_err(StartupError::Redis)?;
                let redis = Arc::new(RedisIndex::with_connection(conn.clone()));
                use crate::authority::vault::RedisVault;
                Stores {
                    index: redis.clone(),
                    coordination: redis.clone(),
                    choices: redis,
                    calls: Arc::new(FallbackCallStore::new(
                        RedisCallStore::with_connection(conn.clone()),
                        clock.clone(),
                    )),
                    outbox: Arc::new(FallbackOutbox::with_local(
                        RedisOutbox::with_connection(conn.clone(), &instance_id),
                        memory_outbox(config)?,
                    )),
                    vault: Arc::new(RedisVault::with_connection(conn.clone(), "vault")),
                    user_tokens: Some(Arc::new(RedisVault::with_connection(
                        conn.clone(),
                        "signin",
                    ))),
                    leases: Arc::new(RedisLeases::new(conn.clone())),
                    call_state: Arc::new(RedisCallState::with_connection(conn.clone())),
                    directory: Arc::new(crate::subscriptions::RedisDirectory::with_connection(
                        conn.clone(),
                    )),
                    reports: Arc::new(crate::reports::RedisReports::with_connection(conn.clone())),
                    shared_replay: Some(Arc::new(
                        crate::push::redis_replay::RedisReplay::with_connection(
                            conn,
                            config.replay_capacity,
                            clock.clone(),
                        ),
                    )),
                    instance_id,
                }
            }
            None => Stores {
                outbox: Arc::new(memory_outbox(config)?),
                ..Stores::memory(clock.clone())
            },
        };
        Ok(stores)
    }

    pub fn memory(clock: SharedClock) -> Self {
        Stores {
            index: Arc::new(MemoryIndex::default()),
            coordination: Arc::new(MemoryCoordination::new(clock.clone())),
            choices: Arc::new(MemoryChoices::default()),
            calls: Arc::new(MemoryCallStore::new(clock.clone())),
            outbox: Arc::new(MemoryOutbox::default()),
            vault: Arc::new(crate::authority::vault::MemoryVault::default()),
            user_tokens: None,
            shared_replay: None,
            leases: Arc::new(SoleInstance),
            call_state: Arc::new(MemoryCallState::new(clock.clone())),
            directory: Arc::new(crate::subscriptions::MemoryDirectory::default()),
            reports: Arc::new(crate::reports::SoleInstance),
            instance_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// Why the relay could not start with its configuration.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("Redis at REDIS_URL is unavailable: {0}")]
    Redis(#[source] redis::RedisError),
    #[error("the HTTP client cannot be built: {0}")]
    Http(#[source] reqwest::Error),
    #[error("the activity journal in CTI_OUTBOX_DIR cannot be used: {0}")]
    Journal(#[source] crate::activity::OutboxError),
}

/// The memory outbox the configuration asks for: journalled in `CTI_OUTBOX_DIR`, or only in
/// memory, which is said at start-up (with Redis it holds only what is queued during an outage).
fn memory_outbox(config: &Config) -> Result<MemoryOutbox, StartupError> {
    if let Some(dir) = &config.outbox_dir {
        let outbox = MemoryOutbox::durable(dir).map_err(StartupError::Journal)?;
        tracing::info!(dir = %dir.display(), "activities waiting for V2 are journalled on disk");
        return Ok(outbox);
    }
    let production = config
        .tenants
        .iter()
        .any(|t| !crate::adapters::is_loopback(&t.v2_url));
    let what = if config.redis_url.is_some() {
        "activities queued while Redis is unreachable are held only in this process's memory: a \
         crash or restart during a Redis outage loses those not yet in V2"
    } else {
        "activities waiting for V2 (an outage, a rep not signed in yet) are held only in memory: \
         a crash or restart loses them although the phone system was told they were taken. Set \
         REDIS_URL, or CTI_OUTBOX_DIR to a directory on a disk that outlives the process"
    };
    if production && config.redis_url.is_none() {
        tracing::error!("{what}");
    } else {
        tracing::warn!("{what}");
    }
    Ok(MemoryOutbox::default())
}

/// The tenants this relay serves, by id: those of the tenants file from the start, and with
/// the SaaS Provisioning service those subscribed (and configured) while it runs. Every lookup
/// goes through here, so a tenant added or removed is seen by the next request.
///
/// A read takes the lock only to clone an `Arc`: no lock is held across an await.
#[derive(Debug, Default)]
pub struct Tenants {
    by_id: parking_lot::RwLock<HashMap<String, Arc<Tenant>>>,
}

impl Tenants {
    pub fn new(tenants: impl IntoIterator<Item = Arc<Tenant>>) -> Self {
        Tenants {
            by_id: parking_lot::RwLock::new(
                tenants
                    .into_iter()
                    .map(|t| (t.config.id.clone(), t))
                    .collect(),
            ),
        }
    }

    fn read(&self) -> parking_lot::RwLockReadGuard<'_, HashMap<String, Arc<Tenant>>> {
        self.by_id.read()
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, HashMap<String, Arc<Tenant>>> {
        self.by_id.write()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Tenant>> {
        self.read().get(id).cloned()
    }

    /// Every tenant now, sorted by id (so what lists them is stable).
    pub fn all(&self) -> Vec<Arc<Tenant>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.config.id.cmp(&b.config.id));
        all
    }

    /// Adds a tenant or replaces the one with its id; the one replaced.
    pub fn insert(&self, tenant: Arc<Tenant>) -> Option<Arc<Tenant>> {
        self.write().insert(tenant.config.id.clone(), tenant)
    }

    /// Removes a tenant; the one removed.
    pub fn remove(&self, id: &str) -> Option<Arc<Tenant>> {
        self.write().remove(id)
    }
}

#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub tenants: Tenants,
    /// Callers' numbers: the index, the reps' choices, live answers.
    pub numbers: Arc<Numbers>,
    pub calls: Arc<dyn CallStore>,
    /// Finished calls on their way to V2 as activities.
    pub activity: Arc<crate::activity::Activities>,
    /// On whose authority activities are written: the reps' tokens and what turns them into V2
    /// access.
    pub authority: Arc<Authority>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub jwt: JwtVerifier,
    pub clock: SharedClock,
    /// Events of one call are applied one at a time; calls hash onto these stripes.
    pub stripes: Arc<crate::calls::Stripes>,
    /// Who runs each tenant's provider connector, and this instance's name as a holder.
    pub leases: Arc<dyn ConnectorLeases>,
    pub instance_id: String,
    /// The customers subscribed through the SaaS Provisioning service.
    pub directory: Arc<dyn crate::subscriptions::Directory>,
    /// The other instances' reports, and where this one leaves its own.
    pub reports: Arc<dyn crate::reports::ReportStore>,
    /// What a tenant configured at run time is built with.
    pub tenant_parts: TenantParts,
    /// The background work of each tenant configured at run time (its index refresher,
    /// provider link and activity writer), stopped when it is removed or replaced.
    tenant_tasks: parking_lot::Mutex<HashMap<String, Vec<tokio::task::AbortHandle>>>,
    /// With Redis: whether this instance hears the other instances' call messages.
    pub fanout: crate::push::Fanout,
    /// Widget connections still waiting for their `hello`, counted against the limits.
    pub pending_hellos: crate::admission::PendingHellos,
    /// Flips to true when the relay stops: WebSocket sessions close with 1012 so widgets
    /// reconnect (to this relay once restarted, or to another instance) at once.
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// The stores the configuration asks for: Redis with `redis_url`, else in memory.
    pub async fn from_config(config: Config) -> Result<Arc<Self>, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let stores = Stores::from_config(&config, clock.clone()).await?;
        Self::with_parts(config, stores, clock).map_err(StartupError::Http)
    }

    /// The embedded defaults: in-memory stores, the system clock.
    pub fn new(config: Config) -> Result<Arc<Self>, reqwest::Error> {
        let clock: SharedClock = Arc::new(SystemClock);
        Self::with_parts(config, Stores::memory(clock.clone()), clock)
    }

    /// Fails only when no HTTP client can be built (no TLS backend).
    pub fn with_parts(
        config: Config,
        stores: Stores,
        clock: SharedClock,
    ) -> Result<Arc<Self>, reqwest::Error> {
        // One connection pool for everything the relay asks over HTTP (V2, the providers, the
        // identity provider, the Destination service); a client that cannot be built (no TLS
        // backend) stops the start instead of running without its timeouts.
        let http = reqwest::Client::builder()
            .timeout(config.v2_timeout)
            .connect_timeout(config.v2_timeout.min(std::time::Duration::from_secs(5)))
            .build()?;
        let metrics = Arc::new(Metrics::default());
        let parts = TenantParts {
            http: http.clone(),
            clock: clock.clone(),
            call_state: stores.call_state.clone(),
            refresh_budget: config.refresh_budget,
            // Without Redis the ids of events seen die with the process (review F5).
            forgets_before_ms: config.redis_url.is_none().then(|| clock.now_ms()),
        };
        let tenants = config
            .tenants
            .iter()
            .map(|t| Arc::new(parts.build(t)))
            .collect::<Vec<_>>();
        let authority = Authority::new(
            &config,
            http.clone(),
            stores.vault,
            stores.user_tokens,
            clock.clone(),
            &stores.instance_id,
        );
        Ok(Arc::new(AppState {
            jwt: JwtVerifier::new(
                http,
                &config.jwt.jwks_url,
                &config.jwt.issuer,
                &config.jwt.audience,
                config.jwt.agent_scope(),
            )
            .with_origin(config.jwt.origin.clone())
            .with_clock(clock.clone()),
            hub: Arc::new(match stores.shared_replay {
                Some(store) => Hub::with_store(store, true, config.replay_capacity, clock.clone()),
                None => Hub::new(config.replay_capacity, clock.clone()),
            }),
            numbers: Arc::new(Numbers {
                index: stores.index,
                coordination: stores.coordination,
                choices: stores.choices,
                misses: MissCache::default(),
                settings: NumberSettings {
                    index_refresh: config.index_refresh,
                    index_check: config.index_check,
                    activity_days: config.activity_days,
                },
                clock: clock.clone(),
                metrics: metrics.clone(),
                instance_id: stores.instance_id.clone(),
            }),
            leases: stores.leases,
            instance_id: stores.instance_id,
            directory: stores.directory,
            reports: stores.reports,
            tenant_parts: parts,
            tenant_tasks: parking_lot::Mutex::default(),
            metrics,
            stripes: Arc::default(),
            shutdown: tokio::sync::watch::channel(false).0,
            fanout: crate::push::Fanout::default(),
            pending_hellos: crate::admission::PendingHellos::new(
                config.limits.pending_hellos,
                config.limits.pending_hellos_per_client,
            ),
            tenants: Tenants::new(tenants),
            calls: stores.calls,
            activity: Arc::new(crate::activity::Activities::new(stores.outbox)),
            authority: Arc::new(authority),
            clock,
            config,
        }))
    }

    /// Starts stopping: open sessions say goodbye, the server stops accepting.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Stops the background work of every tenant configured at run time.
    pub fn stop_tenant_tasks(&self) {
        let mut tasks = self.tenant_tasks.lock();
        for (_, handles) in tasks.drain() {
            handles.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }

    /// Serves `tenant` (replacing the one with its id) with its background work, which stops
    /// when the tenant is forgotten or replaced.
    pub(crate) fn run_tenant(&self, tenant: Arc<Tenant>, work: Vec<tokio::task::AbortHandle>) {
        let id = tenant.config.id.clone();
        self.tenants.insert(tenant);
        let old = self.tenant_tasks.lock().insert(id, work);
        old.iter()
            .flatten()
            .for_each(tokio::task::AbortHandle::abort);
    }

    /// Stops serving a tenant configured at run time, and its background work.
    pub fn forget(&self, tenant: &str) {
        if self.config.tenant(tenant).is_some() {
            return;
        }
        self.tenants.remove(tenant);
        let old = self.tenant_tasks.lock().remove(tenant);
        old.iter()
            .flatten()
            .for_each(tokio::task::AbortHandle::abort);
    }

    /// Forgets what this process holds of an unsubscribed tenant in memory: its number index,
    /// calls, tokens, replay buffers, adapters' call state and the activities V2 holds (with
    /// Redis, the directory's purge deletes the shared copies). Activities not in V2 yet stay:
    /// they are the customer's call logs, written if the tenant subscribes again.
    pub async fn forget_data(&self, tenant: &str) {
        if self.config.tenant(tenant).is_some() {
            return;
        }
        if let Err(err) = self.activity.outbox.forget_written(tenant).await {
            tracing::warn!(%tenant, %err, "the unsubscribed tenant's written activities stay in the outbox");
        }
        self.numbers.forget_tenant(tenant).await;
        self.calls.forget_tenant(tenant).await;
        self.authority.forget_tenant(tenant).await;
        self.hub.forget_tenant(tenant).await;
        self.tenant_parts.call_state.forget_tenant(tenant).await;
    }

    /// Resolves once [`AppState::shut_down`] was called (at once if it already was).
    pub async fn stopping(&self) {
        let mut rx = self.shutdown.subscribe();
        // An error means the sender is gone, which only happens with the state itself.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// The activity writer's parts, for running it beside the server.
    pub fn writer(&self) -> crate::activity::writer::Writer {
        use crate::activity::writer::{Writer, WriterSettings, WriterTenant};
        Writer {
            activity: self.activity.clone(),
            authority: self.authority.clone(),
            calls: self.calls.clone(),
            stripes: self.stripes.clone(),
            hub: self.hub.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            settings: WriterSettings::from_config(&self.config),
            tenants: self
                .tenants
                .all()
                .iter()
                .map(|t| WriterTenant {
                    config: t.config.clone(),
                    v2: t.v2.clone(),
                    numbers: t.numbers.clone(),
                })
                .collect(),
        }
    }

    pub fn tenant(&self, id: &str) -> Option<Arc<Tenant>> {
        self.tenants.get(id)
    }

    /// The lock that serializes events of `call_id`.
    pub fn stripe(&self, tenant: &str, call_id: &str) -> &tokio::sync::Mutex<()> {
        self.stripes.of(tenant, call_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::outbox::{Next, tests::log};
    use crate::calls::leg::fixtures::ringing;
    use crate::numbers::IndexedRecord;
    use crate::secret::Secret;
    use cti_protocol::ws::RecordKind;

    const NUMBER: &str = "+41441234567";

    /// What this process holds of a tenant, store by store.
    #[derive(Debug, PartialEq, Eq)]
    struct Held {
        index: bool,
        choice: bool,
        live_answer: bool,
        leg: bool,
        refresh_token: bool,
        access_token: bool,
        call_state: bool,
        written_activity: bool,
        unwritten_activity: bool,
    }

    async fn fill(state: &AppState, tenant: &str) {
        let record = IndexedRecord {
            kind: RecordKind::Contact,
            id: "r1".into(),
            display_id: "1".into(),
            name: "Anna".into(),
            account: None,
            owner_id: None,
            open_opportunities: 0,
            last_activity: None,
        };
        let numbers = &state.numbers;
        let generation = crate::numbers::generation::Generation::from_iter([(
            NUMBER.to_string(),
            vec![record.clone()],
        )]);
        numbers
            .index
            .replace(tenant, generation)
            .await
            .expect("index");
        numbers
            .choices
            .put(tenant, "alice", NUMBER, "r1")
            .await
            .expect("choice");
        numbers
            .misses
            .put(tenant, "+41449990000", vec![record], u64::MAX);
        state
            .calls
            .save(tenant, &ringing("c1", "alice"), "e1")
            .await
            .expect("leg");
        state
            .authority
            .vault
            .put(tenant, "alice", b"sealed")
            .await
            .expect("vault");
        state.authority.access_tokens.lock().insert(
            (tenant.into(), "alice".into()),
            (Secret::new("at"), u64::MAX),
        );
        let call_state = &state.tenant_parts.call_state;
        call_state
            .write(tenant, "webex", "c1", &[("held", "yes")])
            .await
            .expect("call state");
        let outbox = &state.activity.outbox;
        outbox
            .put(tenant, &log("written", ""), 1)
            .await
            .expect("put");
        for mut entry in outbox
            .claim_due(tenant, 1, 60_000, 10)
            .await
            .expect("claim")
        {
            entry.progress.written_version = entry.version;
            outbox
                .finish(tenant, &entry, Next::Done, 2)
                .await
                .expect("finish");
        }
        outbox
            .put(tenant, &log("unwritten", ""), 3)
            .await
            .expect("put");
    }

    async fn held(state: &AppState, tenant: &str) -> Held {
        let numbers = &state.numbers;
        let outbox = &state.activity.outbox;
        let access_token = state
            .authority
            .access_tokens
            .lock()
            .contains_key(&(tenant.to_string(), "alice".to_string()));
        Held {
            index: numbers.index.len(tenant).await.expect("index") > 0,
            choice: numbers
                .choices
                .get(tenant, "alice", NUMBER)
                .await
                .expect("c")
                .is_some(),
            live_answer: numbers.misses.get(tenant, "+41449990000", 0).is_some(),
            leg: state
                .calls
                .get(tenant, "c1", "alice")
                .await
                .expect("leg")
                .is_some(),
            refresh_token: state
                .authority
                .vault
                .get(tenant, "alice")
                .await
                .expect("v")
                .is_some(),
            access_token,
            call_state: !state
                .tenant_parts
                .call_state
                .read(tenant, "webex", "c1")
                .await
                .expect("call state")
                .is_empty(),
            written_activity: outbox.get(tenant, "written").await.expect("o").is_some(),
            unwritten_activity: outbox.get(tenant, "unwritten").await.expect("o").is_some(),
        }
    }

    /// Without Redis, an unsubscribed tenant leaves nothing in the process but its activities
    /// not in V2 yet; another tenant keeps everything.
    #[tokio::test]
    async fn an_unsubscribed_tenant_leaves_nothing_in_memory_but_unwritten_activities() {
        let state = AppState::new(Config::demo("http://127.0.0.1:9")).expect("state");
        for tenant in ["gone", "kept"] {
            fill(&state, tenant).await;
        }
        let everything = Held {
            index: true,
            choice: true,
            live_answer: true,
            leg: true,
            refresh_token: true,
            access_token: true,
            call_state: true,
            written_activity: true,
            unwritten_activity: true,
        };
        assert_eq!(held(&state, "gone").await, everything, "filled");
        state.forget_data("gone").await;
        let nothing_but_unwritten = Held {
            index: false,
            choice: false,
            live_answer: false,
            leg: false,
            refresh_token: false,
            access_token: false,
            call_state: false,
            written_activity: false,
            unwritten_activity: true,
        };
        assert_eq!(held(&state, "gone").await, nothing_but_unwritten);
        assert_eq!(held(&state, "kept").await, everything);
        // A tenant of the tenants file is never forgotten this way.
        fill(&state, "demo").await;
        state.forget_data("demo").await;
        assert_eq!(held(&state, "demo").await, everything);
    }
}
