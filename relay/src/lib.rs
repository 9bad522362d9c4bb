//! The CTI relay: the server half of the CTI for SAP Sales Cloud V2.
//!
//! Telephony providers post call events to the relay; it normalizes the numbers, matches the
//! caller against the tenant's V2 records, and pushes the call to the rep's widget over a
//! WebSocket. The widget's call controls come back the same way and the relay forwards them to the
//! provider. The widget lives in `widget/`, the shared wire types in `protocol/`, and everything
//! the relay talks to in tests and the demo (V2, the PBX, the identity provider) in `sim/`.
//!
//! The modules stand in layers; each calls only the layers below it, and only [`state`] knows
//! them all:
//!
//! - [`server`]: the accept loop under the routes (open connections capped, a header-read
//!   timeout, each request's peer address).
//! - [`api`]: the HTTP routes, the one place errors become responses.
//! - [`agent`]: the conversation with a rep's widget, one file per request the rep can make.
//! - [`pipeline`]: from a provider's event to a call on the rep's screen (ingest, matching,
//!   enrichment), and the one way a call leg changes outside an event.
//! - [`state`]: the wiring: builds every part from the configuration and hands each its pieces.
//! - the domains, which never read the state: [`activity`] (a finished call becomes exactly one
//!   activity in V2), [`authority`] (on whose behalf V2 is written), [`adapters`] (telephony
//!   providers), [`numbers`] (E.164, the number index and its refresh), [`calls`] (call legs,
//!   their state machine and store), [`push`] (per-rep sequence numbers, replay, fan-out between
//!   instances), [`v2`] (the V2 client and field mapping), [`subscriptions`] (the customers
//!   subscribed through SAP BTP's SaaS Provisioning service, and the removal of their data).
//! - [`config`]: typed settings, parsed once; it borrows plain value types (a region, ranking
//!   rules, a consent policy, a provider's settings) from the domains that define them and calls
//!   nothing.
//! - the ground: [`identity`] (who may talk to the relay: reps' tokens, V2's event
//!   credentials), [`admission`] (widget connections counted until they sign in), [`metrics`],
//!   [`clock`], [`secret`] (secrets, and numbers masked for logs), [`shared_store`] (the Redis
//!   connection), [`error`] (the HTTP error enum).

pub mod activity;
pub mod adapters;
pub mod admission;
pub mod agent;
pub mod api;
pub mod authority;
pub mod calls;
pub mod clock;
pub mod config;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod identity;
pub mod metrics;
pub mod numbers;
pub mod pipeline;
pub mod push;
pub mod reporting;
pub mod reports;
pub mod secret;
pub mod server;
pub mod shared_store;
pub mod state;
pub mod subscriptions;
pub mod tenancy;
pub mod v2;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::Config;
pub use state::AppState;

/// A running relay.
#[derive(Debug)]
pub struct RelayHandle {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RelayHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the way a deployment stops an instance: sessions close with 1012 (reconnect), the
    /// server finishes its open requests, background work ends. Returns once the address is free.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// [`RelayHandle::shutdown`] for a handle that stays around (a test restarting the relay).
    pub async fn stop(&mut self) {
        self.state.shut_down();
        if let Some(server) = self.tasks.pop() {
            let _ = server.await;
        }
        drain(&self.state).await;
        self.abort();
    }

    /// Stops serving and the background work.
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.state.stop_tenant_tasks();
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.abort();
    }
}

/// What a stopping relay does once it no longer serves: writes the activities that are due to V2
/// until the drain time is up, and names at error level those only this process held that are
/// not in V2 (see [`activity::writer::drain`]).
pub async fn drain(state: &AppState) {
    activity::writer::drain(&state.writer()).await;
}

/// Binds `state.config.listen` and serves in the background, with the index refreshers.
pub async fn spawn(state: Arc<AppState>) -> std::io::Result<RelayHandle> {
    let listener = tokio::net::TcpListener::bind(state.config.listen).await?;
    spawn_on(listener, state)
}

/// Serves on a listener bound beforehand (tests bind port 0 first to learn the address).
pub fn spawn_on(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
) -> std::io::Result<RelayHandle> {
    let addr = listener.local_addr()?;
    let mut tasks = start_background(&state);
    let stopping = state.clone();
    let serving = state.clone();
    tasks.push(tokio::spawn(async move {
        let serve = server::serve(listener, serving, async move { stopping.stopping().await });
        if let Err(err) = serve.await {
            tracing::error!(%err, "relay stopped serving");
        }
    }));
    Ok(RelayHandle { addr, state, tasks })
}

/// The work that runs beside request handling: one index refresher per tenant, each tenant's
/// provider link (for providers that keep one), the activity writer, and with Redis
/// the listener that brings every instance's call messages to this instance's widgets.
pub fn start_background(state: &Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks: Vec<_> = state
        .tenants
        .all()
        .iter()
        .map(|tenant| {
            tokio::spawn(numbers::refresh::run(
                state.numbers.clone(),
                tenant.numbers.clone(),
            ))
        })
        .collect();
    for tenant in state.tenants.all() {
        tasks.push(tokio::spawn(pipeline::links::run(state.clone(), tenant)));
    }
    let stopping = state.clone();
    tasks.push(tokio::spawn(activity::writer::run(
        state.writer(),
        async move { stopping.stopping().await },
    )));
    if let Some(url) = state.config.redis_url.clone() {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            push::fanout::follow(url.expose(), &state.hub, &state.fanout).await;
        }));
    }
    tasks.push(tokio::spawn(follow_subscriptions(state.clone())));
    tasks.push(tokio::spawn(reporting::run(state.clone())));
    tasks
}

/// Serves the subscribed tenants' settings stored when this instance starts, then, with Redis,
/// each change another instance announces; after a break in listening everything is read again.
async fn follow_subscriptions(state: Arc<AppState>) {
    let Some(url) = state.config.redis_url.clone() else {
        if let Err(err) = tenancy::load_subscribed(&state).await {
            tracing::error!(%err, "the subscribed tenants do not load");
        }
        return;
    };
    loop {
        // `None`: read every tenant (once listening, so no change falls between the two).
        let (changed, mut heard) = tokio::sync::mpsc::unbounded_channel::<Option<String>>();
        let everything = changed.clone();
        let listening = subscriptions::listen(
            url.expose(),
            move || {
                let _ = everything.send(None);
            },
            move |tenant| {
                let _ = changed.send(Some(tenant));
            },
        );
        let applying = async {
            while let Some(change) = heard.recv().await {
                let result = match &change {
                    Some(tenant) => tenancy::reload(&state, tenant).await,
                    None => tenancy::load_subscribed(&state).await,
                };
                if let Err(err) = result {
                    tracing::error!(tenant = ?change, %err, "subscribed tenants' settings do not load");
                }
            }
        };
        let (result, ()) = tokio::join!(listening, applying);
        if let Err(err) = result {
            tracing::warn!(%err, "the tenants' change channel is unavailable; retrying");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The layers of the crate map above, held against the code: each room imports only the rooms
/// it may call, so an arrow back up (and with it an import circle) fails here, naming the file.
#[cfg(test)]
mod layers {
    use std::path::Path;

    /// What every room may use.
    const GROUND: &[&str] = &["clock", "secret", "shared_store", "metrics", "identity"];

    /// Room -> the other rooms it may import. The application layers above (`api`, `agent`,
    /// `pipeline`, `state`) may import any of these and are not listed.
    const ROOMS: &[(&str, &[&str])] = &[
        ("calls", &[]),
        ("push", &[]),
        ("identity", &[]),
        ("v2", &["calls"]),
        ("numbers", &["v2"]),
        ("adapters", &["calls"]),
        ("config", &["adapters", "calls", "numbers"]),
        ("authority", &["config", "v2"]),
        (
            "activity",
            &["authority", "calls", "config", "numbers", "push", "v2"],
        ),
        ("clock", &[]),
        ("secret", &[]),
        ("shared_store", &[]),
        ("metrics", &[]),
        ("error", &[]),
        ("subscriptions", &[]),
    ];

    fn sources(path: &Path, out: &mut Vec<std::path::PathBuf>) {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .expect("the source folder reads")
                .map(|e| e.expect("an entry").path())
                .collect();
            entries.sort();
            for entry in entries {
                sources(&entry, out);
            }
        } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
    }

    /// Every `crate::<room>` a file names.
    fn rooms_named(text: &str) -> Vec<String> {
        text.match_indices("crate::")
            .map(|(at, found)| {
                text[at + found.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_room_imports_only_the_rooms_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for (room, allowed) in ROOMS {
            let mut files = Vec::new();
            sources(&src.join(room), &mut files);
            sources(&src.join(format!("{room}.rs")), &mut files);
            assert!(!files.is_empty(), "room {room} has no source");
            for file in files {
                let text = std::fs::read_to_string(&file).expect("a source file reads");
                for named in rooms_named(&text) {
                    let fine = named == *room
                        || allowed.contains(&named.as_str())
                        || GROUND.contains(&named.as_str());
                    if !fine {
                        wrong.push(format!("{} uses crate::{named}", file.display()));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "imports against the layers:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn the_check_sees_an_import() {
        assert_eq!(
            rooms_named("use crate::state::AppState;\nuse crate::v2::V2Client;"),
            ["state", "v2"]
        );
    }
}
