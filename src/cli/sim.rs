//! `trackerless sim`: the deterministic DHT simulator.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use trackerless::sim::{self, Profile, SimConfig, SimReport};

/// Arguments of `trackerless sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// Live nodes.
    #[arg(long, default_value_t = 10_000)]
    nodes: usize,
    /// Seed of everything random; the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of the nodes a lookup hears about that never answer.
    #[arg(long, default_value_t = 0.45)]
    dead_share: f64,
    /// Median round-trip time, ms.
    #[arg(long, default_value_t = 100)]
    rtt_ms: u64,
    /// Spread of the log-normal RTT distribution.
    #[arg(long, default_value_t = 0.5)]
    rtt_sigma: f64,
    /// Probability that a datagram is lost.
    #[arg(long, default_value_t = 0.05)]
    loss: f64,
    /// Share of nodes replaced per hour.
    #[arg(long, default_value_t = 0.0)]
    churn_per_hour: f64,
    /// Share of nodes behind NAT (can query, cannot be reached first).
    #[arg(long, default_value_t = 0.0)]
    nat_share: f64,
    /// Info-hashes announced before the lookups.
    #[arg(long, default_value_t = 20)]
    swarms: usize,
    /// Measured get_peers lookups.
    #[arg(long, default_value_t = 1000)]
    lookups: usize,
    /// Virtual ms between lookup starts.
    #[arg(long, default_value_t = 20)]
    lookup_interval_ms: u64,
    /// Measured joins from a single entry point.
    #[arg(long, default_value_t = 20)]
    bootstraps: usize,
    /// Configuration to run: ours, libtorrent, alpha3, or all (same network for each).
    #[arg(long, default_value = "all")]
    profile: String,
    /// Run the network on this profile, and the profile(s) under test only
    /// on `--clients` nodes (where the measured lookups start): how a client
    /// fares among other implementations.
    #[arg(long, value_name = "PROFILE")]
    network_profile: Option<String>,
    /// Nodes running the profile under test with --network-profile.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Print one JSON object per profile instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the simulation(s) and prints the results.
pub fn run(args: SimArgs) -> Result<i32> {
    let profiles: Vec<Profile> = if args.profile == "all" {
        Profile::ALL.to_vec()
    } else {
        match Profile::from_name(&args.profile) {
            Some(p) => vec![p],
            None => bail!(
                "unknown profile {:?}: use ours, libtorrent, alpha3 or all",
                args.profile
            ),
        }
    };
    if !(0.0..1.0).contains(&args.dead_share) || !(0.0..=1.0).contains(&args.loss) {
        bail!("--dead-share must be in [0, 1) and --loss in [0, 1]");
    }
    let network_profile = match &args.network_profile {
        None => None,
        Some(name) => Some(Profile::from_name(name).ok_or_else(|| {
            anyhow::anyhow!("unknown network profile {name:?}: use ours, libtorrent or alpha3")
        })?),
    };
    let base = SimConfig {
        network_profile,
        clients: args.clients,
        seed: args.seed,
        nodes: args.nodes,
        dead_share: args.dead_share,
        rtt_median: Duration::from_millis(args.rtt_ms),
        rtt_sigma: args.rtt_sigma,
        loss: args.loss,
        churn_per_hour: args.churn_per_hour,
        nat_share: args.nat_share,
        swarms: args.swarms,
        lookups: args.lookups,
        lookup_interval: Duration::from_millis(args.lookup_interval_ms),
        bootstraps: args.bootstraps,
        ..SimConfig::default()
    };
    if !args.json {
        println!(
            "{} live nodes (+{:.0}% dead), RTT median {} ms, loss {:.0}%, churn {:.0}%/h, seed {}{}",
            args.nodes,
            args.dead_share * 100.0,
            args.rtt_ms,
            args.loss * 100.0,
            args.churn_per_hour * 100.0,
            args.seed,
            match network_profile {
                Some(p) => format!(
                    ", network runs {}, {} clients measured",
                    p.name(),
                    args.clients
                ),
                None => String::new(),
            }
        );
        println!(
            "{:<11} {:>8} {:>23} {:>23} {:>16} {:>12} {:>8}",
            "profile",
            "success",
            "complete ms p50/90/99",
            "1st peer ms p50/90/99",
            "queries/rounds",
            "boot 100",
            "wall"
        );
    }
    for profile in profiles {
        let report = sim::run(SimConfig {
            profile,
            ..base.clone()
        });
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_row(&report);
        }
    }
    Ok(0)
}

fn print_row(r: &SimReport) {
    println!(
        "{:<11} {:>7.2}% {:>23} {:>23} {:>16} {:>12} {:>7.1}s",
        r.profile,
        r.success_rate * 100.0,
        format!(
            "{:.0}/{:.0}/{:.0}",
            r.time_to_complete_ms.p50, r.time_to_complete_ms.p90, r.time_to_complete_ms.p99
        ),
        format!(
            "{:.0}/{:.0}/{:.0}",
            r.time_to_first_peer_ms.p50, r.time_to_first_peer_ms.p90, r.time_to_first_peer_ms.p99
        ),
        format!(
            "{:.0}/{:.0} {:.0}r",
            r.queries.p50, r.queries.p90, r.rounds.p50
        ),
        if r.bootstrap_success_rate > 0.0 {
            format!(
                "{:.0}ms {:.0}%",
                r.bootstrap_to_100_good_ms.p50,
                r.bootstrap_success_rate * 100.0
            )
        } else {
            "never".to_string()
        },
        r.wall_ms as f64 / 1000.0
    );
}
