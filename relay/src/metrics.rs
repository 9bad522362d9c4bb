//! What the relay counts, exposed at `GET /metrics` in the Prometheus text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub provider: String,
    /// `accepted`, `duplicate`, or the error code.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub tenant: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    pub tenant: String,
    /// `opportunities`, `phone_calls` or `employees`.
    pub signal: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub tenant: String,
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub action: String,
    pub outcome: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub webhook_requests: Family<WebhookLabels, Counter>,
    pub ws_connections: Gauge,
    pub ws_closed: Family<ReasonLabels, Counter>,
    /// Connections and widget actions turned away by a limit (`max_connections`,
    /// `pending_hellos`, `pending_hellos_per_client`, `actions`, `dials`).
    pub refused: Family<ReasonLabels, Counter>,
    pub calls_pushed: Counter,
    /// Webhook received -> call message handed to the rep's connections.
    pub event_to_push_seconds: Histogram,
    /// Telephony event received -> call frame written to a widget's socket, on the instance
    /// that received the event (what a rep waits for, less the network).
    pub push_seconds: Histogram,
    pub index_numbers: Family<TenantLabels, Gauge>,
    pub index_builds: Family<BuildLabels, Counter>,
    pub commands: Family<CommandLabels, Counter>,
    /// Unix seconds of the last successful full build.
    pub index_last_success: Family<TenantLabels, Gauge>,
    /// 1 for the refresher's current phase, 0 for the others.
    pub refresh_phase: Family<PhaseLabels, Gauge>,
    pub refresh_requests_today: Family<TenantLabels, Gauge>,
    pub v2_events: Family<BuildLabels, Counter>,
    /// Attempts to write phone-call activities, by tenant and outcome (`created`, `updated`,
    /// `unchanged`, `retry`, `parked`).
    pub activity_writes: Family<BuildLabels, Counter>,
    /// Activities not yet in V2 (due or being written).
    pub activity_backlog: Family<TenantLabels, Gauge>,
    /// Ranking-signal reads V2 refused (the index was built or updated without them).
    pub index_signal_refusals: Family<SignalLabels, Counter>,
    /// 1 while this instance's connector to the tenant's provider is connected (and subscribed),
    /// 0 otherwise (also on an instance standing by while another holds the connector).
    pub provider_connected: Family<ProviderLabels, Gauge>,
    /// Events a provider's connector handed to the relay.
    pub provider_events: Family<ProviderLabels, Counter>,
    /// Times a connector was started again after its connection ended.
    pub provider_reconnects: Family<ProviderLabels, Counter>,
    /// Errors a connector met (a refused request, a lost socket, a renewal that failed).
    pub provider_errors: Family<ProviderLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub tenant: String,
    pub phase: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cti");
        let webhook_requests = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_requests",
            "Telephony webhook requests by provider and outcome",
            webhook_requests.clone(),
        );
        let ws_connections = Gauge::default();
        registry.register(
            "ws_connections",
            "Widget sessions connected (signed in with hello) on this instance",
            ws_connections.clone(),
        );
        let ws_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "ws_closed",
            "Widget WebSocket connections closed, by reason",
            ws_closed.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "refused",
            "Connections and widget actions turned away by a limit, by limit",
            refused.clone(),
        );
        let calls_pushed = Counter::default();
        registry.register(
            "calls_pushed",
            "Call messages published to reps",
            calls_pushed.clone(),
        );
        let event_to_push_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "event_to_push_seconds",
            "Time from receiving a telephony event to publishing the call to the rep",
            event_to_push_seconds.clone(),
        );
        // From 0.1 ms: a push on a healthy instance takes about a millisecond.
        let push_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "push_seconds",
            "Time from receiving a telephony event to writing the changed call to a widget's \
             WebSocket (widgets on the instance that received the event)",
            push_seconds.clone(),
        );
        let index_numbers = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "index_numbers",
            "Distinct phone numbers in the tenant's number index",
            index_numbers.clone(),
        );
        let index_builds = Family::<BuildLabels, Counter>::default();
        registry.register(
            "index_builds",
            "Number index builds by tenant and outcome",
            index_builds.clone(),
        );
        let commands = Family::<CommandLabels, Counter>::default();
        registry.register(
            "call_commands",
            "Call controls forwarded to providers, by action and outcome",
            commands.clone(),
        );
        let index_last_success = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "index_last_success_timestamp_seconds",
            "When the tenant's number index was last built completely",
            index_last_success.clone(),
        );
        let refresh_phase = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "index_refresh_phase",
            "The index refresher's phase per tenant (1 = current)",
            refresh_phase.clone(),
        );
        let refresh_requests_today = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "index_refresh_requests_today",
            "V2 requests the index refresher spent today (UTC), against its daily budget",
            refresh_requests_today.clone(),
        );
        let v2_events = Family::<BuildLabels, Counter>::default();
        registry.register(
            "v2_events",
            "V2 change events received, by tenant and outcome",
            v2_events.clone(),
        );
        let activity_writes = Family::<BuildLabels, Counter>::default();
        registry.register(
            "activity_writes",
            "Attempts to write phone-call activities to V2, by tenant and outcome",
            activity_writes.clone(),
        );
        let activity_backlog = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "activity_backlog",
            "Phone-call activities waiting to be written to V2",
            activity_backlog.clone(),
        );
        let index_signal_refusals = Family::<SignalLabels, Counter>::default();
        registry.register(
            "index_signal_refusals",
            "Ranking-signal reads V2 refused, by tenant and signal; the index goes without them",
            index_signal_refusals.clone(),
        );
        let provider_connected = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "provider_connected",
            "Whether this instance's connector to the tenant's provider is connected (1) or not (0)",
            provider_connected.clone(),
        );
        let provider_events = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "provider_events",
            "Events a provider connector handed to the relay",
            provider_events.clone(),
        );
        let provider_reconnects = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "provider_reconnects",
            "Times a provider connector was started again after its connection ended",
            provider_reconnects.clone(),
        );
        let provider_errors = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "provider_errors",
            "Errors provider connectors met",
            provider_errors.clone(),
        );
        Metrics {
            provider_connected,
            provider_events,
            provider_reconnects,
            provider_errors,
            index_signal_refusals,
            activity_writes,
            activity_backlog,
            index_last_success,
            refresh_phase,
            refresh_requests_today,
            v2_events,
            registry,
            webhook_requests,
            ws_connections,
            ws_closed,
            refused,
            calls_pushed,
            event_to_push_seconds,
            push_seconds,
            index_numbers,
            index_builds,
            commands,
        }
    }
}

impl Metrics {
    pub fn webhook(&self, provider: &str, outcome: &str) {
        self.webhook_requests
            .get_or_create(&WebhookLabels {
                provider: provider.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn ws_closed(&self, reason: &str) {
        self.ws_closed
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// A limit turned a connection or an action away.
    pub fn connection_refused(&self, limit: &str) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: limit.into(),
            })
            .inc();
    }

    pub fn command(&self, action: &str, outcome: &str) {
        self.commands
            .get_or_create(&CommandLabels {
                action: action.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn activity_write(&self, tenant: &str, outcome: &str) {
        self.activity_writes
            .get_or_create(&BuildLabels {
                tenant: tenant.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%err, "encoding metrics failed");
        }
        out
    }
}
