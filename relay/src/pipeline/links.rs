//! A provider's long-lived link (a notification socket, a CTI or SIP connection), fed into the
//! same ingest as its webhooks.
//!
//! The adapter keeps its link running and hands over what it hears through a channel; here the
//! other end of that channel is drained, one event at a time in the order the link sent them,
//! and each event's outcome goes back to the link so it acknowledges to its provider only what
//! the relay applied.

use std::sync::Arc;

use tracing::Instrument;

use crate::adapters::background::{Backoff, channel, supervise};
use crate::state::{AppState, Tenant};

/// The tenant's link, if its adapter has one; returns at once for a provider that only calls in.
pub async fn run(state: Arc<AppState>, tenant: Arc<Tenant>) {
    let (events, mut inbox) = channel();
    let Some(link) = supervise(tenant.adapter.clone(), events, Backoff::default()) else {
        return;
    };
    let apply = async {
        while let Some(delivery) = inbox.next().await {
            let event = delivery.event.clone();
            let outcome = super::ingest(&state, &tenant, event, state.clock.now_ms()).await;
            // The link may have stopped waiting; the event is applied either way.
            delivery.report(outcome.map(drop).map_err(Into::into));
        }
    };
    let span = tracing::info_span!("provider_link", tenant = %tenant.config.id);
    futures_util::future::join(link, apply)
        .instrument(span)
        .await;
}
