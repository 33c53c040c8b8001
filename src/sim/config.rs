//! What a simulation runs: the network model, the workload, and the DHT
//! configuration under test.

use std::time::Duration;

use crate::dht::Config;

/// A DHT configuration to compare. All run the same core; only settings differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// trackerless's defaults.
    Ours,
    /// What libtorrent does: 5 parallel queries, 1 s soft timeout, 15 s hard
    /// timeout, no RTT awareness, k = 8 in every bucket.
    Libtorrent,
    /// Plain Kademlia: 3 parallel queries, no soft timeout, k = 8 in every bucket.
    Alpha3,
}

impl Profile {
    /// Every profile, in report order.
    pub const ALL: [Profile; 3] = [Profile::Ours, Profile::Libtorrent, Profile::Alpha3];

    /// The profile's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Ours => "ours",
            Profile::Libtorrent => "libtorrent",
            Profile::Alpha3 => "alpha3",
        }
    }

    /// Parses a name from [`Profile::name`].
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The DHT settings of this profile, with `seed` for the node's RNG.
    pub fn dht_config(self, seed: u64) -> Config {
        let base = Config {
            rng_seed: seed,
            ..Config::default()
        };
        match self {
            Profile::Ours => base,
            Profile::Libtorrent => Config {
                lookup_parallelism: 5,
                lookup_soft_timeout: Duration::from_secs(1),
                lookup_hard_timeout: Duration::from_secs(15),
                query_timeout: Duration::from_secs(15),
                adaptive_timeouts: false,
                lookup_count_window_only: false,
                far_bucket_sizes: Vec::new(),
                ..base
            },
            Profile::Alpha3 => Config {
                lookup_parallelism: 3,
                lookup_soft_timeout: Duration::from_secs(5),
                lookup_hard_timeout: Duration::from_secs(5),
                query_timeout: Duration::from_secs(5),
                adaptive_timeouts: false,
                lookup_count_window_only: false,
                far_bucket_sizes: Vec::new(),
                ..base
            },
        }
    }
}

/// One simulation: network, faults, workload and profile.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of everything random: IDs, latencies, loss, churn, workload.
    pub seed: u64,
    /// Live nodes at the start.
    pub nodes: usize,
    /// Share of the nodes a lookup hears about that never answer (0..1).
    /// Dead nodes sit in routing tables like stale entries on the live DHT.
    pub dead_share: f64,
    /// Median round-trip time of a link.
    pub rtt_median: Duration,
    /// Spread of the log-normal RTT distribution (sigma of the underlying normal).
    pub rtt_sigma: f64,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Share of live nodes replaced per hour (leave and new ones join).
    pub churn_per_hour: f64,
    /// Share of live nodes behind NAT: they can query, but only nodes they
    /// contacted can reach them.
    pub nat_share: f64,
    /// Info-hashes announced before the lookups start.
    pub swarms: usize,
    /// Measured get_peers lookups.
    pub lookups: usize,
    /// Virtual time between the starts of two measured lookups.
    pub lookup_interval: Duration,
    /// Measured joins of new nodes from a single entry point.
    pub bootstraps: usize,
    /// A lookup not finished this long after its start counts as failed.
    pub lookup_deadline: Duration,
    /// The DHT configuration under test.
    pub profile: Profile,
    /// Settings that replace the profile's (for tuning experiments); the
    /// RNG seed is still drawn per node.
    pub dht_override: Option<Config>,
    /// When set, the network runs this profile and only `clients` nodes run
    /// the profile under test; measured lookups and joins start at those.
    /// This is how our client fares among libtorrent-like nodes.
    pub network_profile: Option<Profile>,
    /// Nodes running the profile under test when `network_profile` is set.
    pub clients: usize,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 1,
            nodes: 10_000,
            dead_share: 0.45,
            rtt_median: Duration::from_millis(100),
            rtt_sigma: 0.5,
            loss: 0.05,
            churn_per_hour: 0.0,
            nat_share: 0.0,
            swarms: 20,
            lookups: 1000,
            lookup_interval: Duration::from_millis(20),
            bootstraps: 20,
            lookup_deadline: Duration::from_secs(30),
            profile: Profile::Ours,
            dht_override: None,
            network_profile: None,
            clients: 200,
        }
    }
}

impl SimConfig {
    /// The DHT settings of a node: the profile under test for clients (or
    /// everyone, without a `network_profile`), else the network's.
    pub fn node_config(&self, client: bool, seed: u64) -> Config {
        match self.network_profile {
            Some(network) if !client => network.dht_config(seed),
            _ => self.dht_config(seed),
        }
    }

    /// The DHT settings of the profile under test, its RNG seeded with `seed`.
    pub fn dht_config(&self, seed: u64) -> Config {
        match &self.dht_override {
            Some(config) => Config {
                rng_seed: seed,
                ..config.clone()
            },
            None => self.profile.dht_config(seed),
        }
    }

    /// The command line that replays this simulation exactly.
    pub fn replay_command(&self) -> String {
        format!(
            "trackerless sim --seed {} --nodes {} --dead-share {} --rtt-ms {} --rtt-sigma {} --loss {} \
             --churn-per-hour {} --nat-share {} --swarms {} --lookups {} --lookup-interval-ms {} \
             --bootstraps {} --profile {}{}",
            self.seed,
            self.nodes,
            self.dead_share,
            self.rtt_median.as_millis(),
            self.rtt_sigma,
            self.loss,
            self.churn_per_hour,
            self.nat_share,
            self.swarms,
            self.lookups,
            self.lookup_interval.as_millis(),
            self.bootstraps,
            self.profile.name(),
            match self.network_profile {
                Some(network) => format!(
                    " --network-profile {} --clients {}",
                    network.name(),
                    self.clients
                ),
                None => String::new(),
            }
        )
    }
}
