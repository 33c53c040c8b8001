//! Helpers shared by the loopback integration tests.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use trackerless::dht::Config;
use trackerless::runtime::{Dht, DhtSettings};
use trackerless::wire::metainfo::{FileLayout, Info, Metainfo};

/// Upper bound on any single await in a test: a safety net against hangs,
/// never a synchronisation device.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// `127.a.b.c` as an IP.
pub fn loopback(a: u8, b: u8, c: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, a, b, c))
}

/// Starts one of our nodes on `ip` (ephemeral port) with the given entry
/// points and a fixed seed, so failures replay.
pub async fn start_node(ip: IpAddr, bootstrap: Vec<SocketAddr>, seed: u64) -> Dht {
    let mut settings = DhtSettings::new(SocketAddr::new(ip, 0));
    settings.bootstrap = Some(bootstrap.iter().map(|a| a.to_string()).collect());
    settings.node = Config {
        rng_seed: seed,
        ..Config::default()
    };
    Dht::start(settings).await.expect("bind loopback node")
}

/// Runs `future` with [`STEP_TIMEOUT`], panicking with `what` if it hangs.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Starts `count` nodes on `127.a.b.1..=count`, each bootstrapping off the
/// first, one after another. Returns them in order.
pub async fn loopback_network(a: u8, b: u8, count: u8, seed: u64) -> Vec<Dht> {
    let mut nodes: Vec<Dht> = Vec::new();
    for i in 1..=count {
        let entry = nodes
            .first()
            .map(|n| vec![n.local_addr()])
            .unwrap_or_default();
        let node = start_node(loopback(a, b, i), entry, seed + u64::from(i)).await;
        if i > 1 {
            let report = within("bootstrap", node.bootstrap())
                .await
                .expect("bootstrap");
            assert!(report.reached, "node {i} reached nobody");
        }
        nodes.push(node);
    }
    nodes
}

/// A torrent of `pieces` 16 KiB pieces with random piece hashes: for a
/// metadata transfer only the info dictionary matters, and 3,000 pieces
/// make one of several 16 KiB ut_metadata pieces.
pub fn random_torrent(seed: u64, pieces: usize) -> Metainfo {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let hashes = (0..pieces)
        .map(|_| {
            let mut h = [0u8; 20];
            rng.fill_bytes(&mut h);
            h
        })
        .collect();
    let info = Info {
        name: format!("random-{seed}.bin"),
        piece_length: 16 * 1024,
        pieces: hashes,
        files: FileLayout::Single {
            length: pieces as u64 * 16 * 1024,
        },
        private: false,
    };
    Metainfo::new(info).expect("a valid generated torrent")
}

#[cfg(feature = "interop")]
pub mod libtorrent;
