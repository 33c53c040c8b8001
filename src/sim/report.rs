//! Measurements of one simulation and their summary.

use std::time::Duration;

use serde::Serialize;

/// What one measured lookup did.
#[derive(Debug, Clone, Default)]
pub struct LookupRecord {
    /// Virtual start time, µs.
    pub started_us: u64,
    /// From start to the first peer, if one came.
    pub first_peer: Option<Duration>,
    /// From start to completion (the k closest answered), if it completed.
    pub completed: Option<Duration>,
    /// Distinct nodes queried (each exactly once).
    pub queries: usize,
    /// Rounds to reach the closest responder.
    pub rounds: usize,
    /// Whether the announced peer was found within the deadline.
    pub success: bool,
}

/// What one measured bootstrap did.
#[derive(Debug, Clone, Default)]
pub struct BootstrapRecord {
    /// Until the routing table held 100 good nodes.
    pub hundred_good: Option<Duration>,
    /// Until a get_peers started right after joining found the peer.
    pub first_peer: Option<Duration>,
    /// Good routing-table entries at the end of the run.
    pub good_at_end: usize,
}

/// p50, p90 and p99 of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (zeros when empty).
    pub fn of(mut values: Vec<f64>) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[index]
        };
        Percentiles {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
        }
    }
}

/// The summary of one simulation, as `trackerless sim --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// The profile that ran.
    pub profile: String,
    /// Seed of the run.
    pub seed: u64,
    /// Live nodes at the start.
    pub nodes: usize,
    /// Dead nodes sitting in routing tables.
    pub dead_nodes: usize,
    /// Measured lookups.
    pub lookups: usize,
    /// Share of lookups that found the announced peer in time (0..1).
    pub success_rate: f64,
    /// Lookups that finished (the k closest answered) without the peer.
    pub completed_without_peer: usize,
    /// Lookups that neither finished nor found the peer in time.
    pub unfinished: usize,
    /// Virtual ms from start to completion (completed lookups).
    pub time_to_complete_ms: Percentiles,
    /// Virtual ms from start to the first peer (successful lookups).
    pub time_to_first_peer_ms: Percentiles,
    /// Nodes queried per lookup (each once, so also queries sent).
    pub queries: Percentiles,
    /// Rounds per lookup: round trips to learn of the closest responder.
    pub rounds: Percentiles,
    /// Measured bootstraps.
    pub bootstraps: usize,
    /// Virtual ms until a joining node held 100 good nodes (those that did).
    pub bootstrap_to_100_good_ms: Percentiles,
    /// Virtual ms until a joining node's first get_peers found the peer.
    pub bootstrap_to_first_peer_ms: Percentiles,
    /// Share of bootstraps that reached 100 good nodes and found the peer.
    pub bootstrap_success_rate: f64,
    /// Datagrams delivered.
    pub datagrams: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time simulated, ms.
    pub virtual_ms: u64,
    /// Wall-clock time, ms (machine-dependent; everything else is not).
    pub wall_ms: u64,
    /// Hash of every event in order: equal seeds give equal hashes.
    pub trace_hash: String,
    /// The command that replays this run.
    pub replay: String,
}

pub(crate) fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}
