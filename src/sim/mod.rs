//! A deterministic discrete-event simulator of a Mainline DHT.
//!
//! It runs our real sans-IO [`DhtNode`](crate::dht::DhtNode), unchanged, for
//! thousands of nodes in virtual time on one thread: latency from a seeded
//! log-normal model, loss, dead nodes in routing tables, churn and NAT-like
//! nodes. The same seed gives the same event trace; every report carries the
//! command that replays it.

pub mod config;
pub mod engine;
pub mod network;
pub mod report;

pub use config::{Profile, SimConfig};
pub use engine::Simulation;
pub use report::{Percentiles, SimReport};

/// Runs one simulation.
pub fn run(config: SimConfig) -> SimReport {
    Simulation::new(config).run()
}
