//! Every tunable of the DHT node, with the bound it enforces in its name.

use std::time::Duration;

use crate::wire::NodeId;

/// Settings of one [`DhtNode`](super::DhtNode). Defaults follow BEP 5 and,
/// where BEP 5 is silent, libtorrent's choices.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our node ID; random when `None`.
    pub node_id: Option<NodeId>,
    /// Seed of the node's private random number generator (transaction IDs,
    /// token secrets, refresh targets). The runtime draws it from the OS.
    pub rng_seed: u64,
    /// Client version sent as `v` in every message: two letters, two version bytes.
    pub client_version: [u8; 4],
    /// Nodes per routing-table bucket and the number of closest nodes a lookup
    /// waits for (Kademlia's k).
    pub bucket_size: usize,
    /// Larger capacities for the farthest routing-table buckets, farthest
    /// first; the rest hold `bucket_size`.
    pub far_bucket_sizes: Vec<usize>,
    /// Entries in each bucket's replacement cache.
    pub replacement_cache_size: usize,
    /// A node not heard from for this long becomes questionable.
    pub node_questionable_after: Duration,
    /// Consecutive unanswered queries after which a node is bad.
    pub node_failures_max: u8,
    /// A bucket untouched for this long is refreshed with a lookup.
    pub bucket_refresh_interval: Duration,
    /// Queries in flight at once in one lookup (Kademlia's alpha).
    pub lookup_parallelism: usize,
    /// After this long without an answer, a lookup stops waiting for a node
    /// and queries the next candidate; the slow node may still answer. With
    /// `adaptive_timeouts`, this is only the value used until enough RTTs
    /// have been measured.
    pub lookup_soft_timeout: Duration,
    /// The adaptive soft timeout never goes above this.
    pub lookup_soft_timeout_max: Duration,
    /// After this long without an answer, a lookup gives up on a node. A
    /// later answer still reaches the routing table until `query_timeout`.
    pub lookup_hard_timeout: Duration,
    /// Derive the soft and hard lookup timeouts from measured round-trip
    /// times: the soft timeout becomes `lookup_soft_timeout_quantile` of
    /// recent RTTs, kept between `lookup_soft_timeout_min` and
    /// `lookup_soft_timeout_max`; the hard timeout four times that, at most
    /// `lookup_hard_timeout`.
    pub adaptive_timeouts: bool,
    /// Which quantile of recent RTTs the adaptive soft timeout follows.
    pub lookup_soft_timeout_quantile: f64,
    /// The adaptive soft timeout never goes below this.
    pub lookup_soft_timeout_min: Duration,
    /// Count only queries to the current k closest candidates against the
    /// parallelism limit (see [`LookupParams`](super::lookup::LookupParams)).
    pub lookup_count_window_only: bool,
    /// After this long without an answer, a query has failed.
    pub query_timeout: Duration,
    /// Candidates one lookup remembers, closest first.
    pub lookup_candidates_max: usize,
    /// Distinct peers one lookup reports; more are ignored.
    pub lookup_peers_max: usize,
    /// Lookups running at once (user lookups, announces, refreshes).
    pub lookups_max: usize,
    /// Our queries awaiting an answer at once.
    pub transactions_max: usize,
    /// How often the write-token secret changes. Tokens stay valid for one to
    /// two rotations (5 to 10 minutes with the default).
    pub token_rotation_interval: Duration,
    /// Info-hashes whose peers we store for others.
    pub info_hashes_max: usize,
    /// Peers stored per info-hash.
    pub peers_per_info_hash_max: usize,
    /// Peers returned in one get_peers reply (100 compact peers and 8 nodes
    /// fit one 1,500-byte datagram).
    pub peers_per_reply_max: usize,
    /// How long an announced peer is kept without a new announce.
    pub peer_ttl: Duration,
    /// How often our own announcements are repeated.
    pub reannounce_interval: Duration,
    /// First wait before retrying a bootstrap that reached nobody; doubled
    /// after each failure up to `bootstrap_retry_max`.
    pub bootstrap_retry_min: Duration,
    /// Longest wait between bootstrap retries.
    pub bootstrap_retry_max: Duration,
    /// How often the node does housekeeping (expiry, refresh, re-announce).
    pub maintenance_interval: Duration,
    /// Nodes that queried us, still unknown, pinged per maintenance round.
    pub verify_pings_max: usize,
    /// Longest datagram accepted; longer ones are dropped and counted.
    pub datagram_size_max: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            node_id: None,
            rng_seed: 0,
            client_version: *b"TL\x00\x01",
            bucket_size: 8,
            far_bucket_sizes: vec![128, 64, 32, 16],
            replacement_cache_size: 8,
            node_questionable_after: Duration::from_secs(15 * 60),
            node_failures_max: 2,
            bucket_refresh_interval: Duration::from_secs(15 * 60),
            lookup_parallelism: 6,
            lookup_soft_timeout: Duration::from_millis(150),
            lookup_soft_timeout_max: Duration::from_secs(1),
            lookup_hard_timeout: Duration::from_secs(2),
            adaptive_timeouts: true,
            lookup_soft_timeout_quantile: 0.5,
            lookup_soft_timeout_min: Duration::from_millis(50),
            lookup_count_window_only: true,
            query_timeout: Duration::from_secs(5),
            lookup_candidates_max: 64,
            lookup_peers_max: 10_000,
            lookups_max: 64,
            transactions_max: 1024,
            token_rotation_interval: Duration::from_secs(5 * 60),
            info_hashes_max: 2000,
            peers_per_info_hash_max: 500,
            peers_per_reply_max: 100,
            peer_ttl: Duration::from_secs(30 * 60),
            reannounce_interval: Duration::from_secs(15 * 60),
            bootstrap_retry_min: Duration::from_secs(5),
            bootstrap_retry_max: Duration::from_secs(5 * 60),
            maintenance_interval: Duration::from_secs(5),
            verify_pings_max: 64,
            datagram_size_max: 1500,
        }
    }
}
