//! The daemon's counters, served in the Prometheus text format at `/metrics`.
//!
//! libp2p's own swarm metrics (connections, dial errors, listen addresses) are registered
//! beside the node's under the `libp2p_` prefix.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels for the per-outcome counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// What happened.
    pub outcome: String,
}

/// Labels for the API counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    /// The route's pattern.
    pub route: String,
    /// The HTTP status.
    pub status: u16,
}

/// The node's metrics. Each handle is cheap to clone and shares its value.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Changes received from peers (new or already held).
    pub changes_received: Counter,
    /// Changes sent to peers.
    pub changes_sent: Counter,
    /// Sync bytes received.
    pub bytes_received: Counter,
    /// Sync bytes sent.
    pub bytes_sent: Counter,
    /// Sync sessions by how they ended: `opened`, `reconciled`, `refused`, `closed`.
    pub sessions: Family<Outcome, Counter>,
    /// Records written on this node.
    pub local_writes: Counter,
    /// API requests by route and status.
    pub api_requests: Family<Route, Counter>,
    /// Peers with an open session.
    pub peers: Gauge,
    /// Records held.
    pub records: Gauge,
    /// Changes held.
    pub changes: Gauge,
    /// Changes waiting for their dependencies.
    pub pending: Gauge,
    /// Validly signed changes refused by reason (`quarantine`), kept aside or dropped.
    pub quarantined: Family<Outcome, Counter>,
    /// Changes kept aside.
    pub quarantine_held: Gauge,
}

impl Metrics {
    /// Registers the node's metrics in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("guihe");
        r.register(
            "changes_received",
            "Changes received from peers",
            self.changes_received.clone(),
        );
        r.register(
            "changes_sent",
            "Changes sent to peers",
            self.changes_sent.clone(),
        );
        r.register(
            "sync_bytes_received",
            "Sync bytes received",
            self.bytes_received.clone(),
        );
        r.register(
            "sync_bytes_sent",
            "Sync bytes sent",
            self.bytes_sent.clone(),
        );
        r.register(
            "sessions",
            "Sync sessions by outcome",
            self.sessions.clone(),
        );
        r.register(
            "local_writes",
            "Events recorded on this node",
            self.local_writes.clone(),
        );
        r.register(
            "api_requests",
            "API requests by route and status",
            self.api_requests.clone(),
        );
        r.register("peers", "Peers with an open session", self.peers.clone());
        r.register("records", "Records held", self.records.clone());
        r.register("changes", "Changes held", self.changes.clone());
        r.register(
            "pending_changes",
            "Changes waiting for their dependencies",
            self.pending.clone(),
        );
        r.register(
            "changes_quarantined",
            "Validly signed changes refused, by reason",
            self.quarantined.clone(),
        );
        r.register(
            "quarantined_changes",
            "Refused changes kept aside",
            self.quarantine_held.clone(),
        );
    }

    /// Counts a refused change by its reason's code.
    pub fn quarantined(&self, code: &str) {
        self.quarantined
            .get_or_create(&Outcome {
                outcome: code.into(),
            })
            .inc();
    }

    /// Counts a session outcome.
    pub fn session(&self, outcome: &str) {
        self.sessions
            .get_or_create(&Outcome {
                outcome: outcome.into(),
            })
            .inc();
    }
}

/// Sets a gauge from a count.
pub fn set(gauge: &Gauge, n: usize) {
    gauge.set(i64::try_from(n).unwrap_or(i64::MAX));
}
