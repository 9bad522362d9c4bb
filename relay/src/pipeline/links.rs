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

use crate::adapters::connector::{Backoff, Supervision, channel, lease_key, supervise};
use crate::state::{AppState, Tenant};

/// The tenant's connector, if its adapter has one; returns at once for a provider that only
/// calls in, and when the relay stops.
pub async fn run(state: Arc<AppState>, tenant: Arc<Tenant>) {
    let provider = tenant.adapter.provider();
    let (link, mut inbox) = channel(
        &tenant.config.id,
        provider,
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
            let outcome = super::ingest(&state, &tenant, event, state.clock.now_ms()).await;
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
