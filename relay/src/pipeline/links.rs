//! A provider's connector (a notification socket, a CTI or SIP link, a subscription's life), fed
//! into the same ingest as its webhooks.
//!
//! The adapter keeps its connector running and hands over what it hears through a channel; here
//! the other end of that channel is drained, one event at a time in the order the connector sent
//! them, and each event's outcome goes back so the connector acknowledges to its provider only
//! what the relay applied. When the relay stops, the connector's lease is given back so another
//! instance takes over at once instead of after the lease expired.

use std::sync::Arc;

use tracing::Instrument;

use async_trait::async_trait;

use crate::adapters::connector::{Backoff, LiveCalls, Supervision, channel, lease_key, supervise};
use crate::calls::CallStore;
use crate::state::{AppState, Tenant};
use cti_protocol::ws::CallState;

/// The tenant's live calls as its call store has them (shared by all instances with Redis, so
/// an instance taking a connector over knows the calls its predecessor had).
#[derive(Debug)]
struct StoredCalls {
    calls: Arc<dyn CallStore>,
    tenant: String,
}

#[async_trait]
impl LiveCalls for StoredCalls {
    async fn of_rep(&self, rep: &str) -> Vec<String> {
        match self.calls.active_for_agent(&self.tenant, rep).await {
            Ok(legs) => legs
                .into_iter()
                .filter(|leg| leg.state != CallState::Ended)
                .map(|leg| leg.id)
                .collect(),
            Err(err) => {
                tracing::warn!(%err, "the live calls could not be read for a connector's catch-up");
                Vec::new()
            }
        }
    }
}

/// The tenant's connector, if its adapter has one; returns at once for a provider that only
/// calls in, and when the relay stops.
pub async fn run(state: Arc<AppState>, tenant: Arc<Tenant>) {
    let provider = tenant.adapter.provider();
    let live = Arc::new(StoredCalls {
        calls: state.calls.clone(),
        tenant: tenant.config.id.clone(),
    });
    let (link, mut inbox) = channel(
        &tenant.config.id,
        provider,
        live,
        tenant.link.clone(),
        state.metrics.clone(),
    );
    let supervision = Supervision {
        adapter: tenant.adapter.clone(),
        link,
        leases: state.leases.clone(),
        holder: state.instance_id.clone(),
        backoff: Backoff::default(),
        lease_ttl: state.config.connector_lease,
    };
    let Some(connector) = supervise(supervision) else {
        return;
    };
    let apply = async {
        while let Some(delivery) = inbox.next().await {
            let event = delivery.event.clone();
            let outcome = super::ingest(
                &state,
                &tenant,
                event,
                state.clock.now_ms(),
                std::time::Instant::now(),
            )
            .await;
            // The connector may have stopped waiting; the event is applied either way.
            delivery.report(outcome.map(drop).map_err(Into::into));
        }
    };
    let span = tracing::info_span!("provider_connector", tenant = %tenant.config.id, provider);
    tokio::select! {
        _ = futures_util::future::join(connector, apply).instrument(span) => {}
        () = state.stopping() => {
            let key = lease_key(&tenant.config.id, provider);
            if let Err(err) = state.leases.release(&key, &state.instance_id).await {
                tracing::warn!(%err, "the connector's lease could not be given back");
            }
        }
    }
}
