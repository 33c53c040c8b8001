//! `cargo bench --bench dht`: KRPC codec cost and simulated lookup quality.
//!
//! Prints machine-independent counts (bytes per message, queries per
//! lookup, virtual milliseconds) next to wall-clock rates, and compares our
//! lookup configuration with the libtorrent-like and plain alpha-3 ones on
//! the same simulated networks.

use std::hint::black_box;
use std::time::{Duration, Instant};

use trackerless::sim::{self, Profile, SimConfig};
use trackerless::wire::krpc::{self, Body, Message, Query, Response, TransactionId};
use trackerless::wire::{Id, NodeContact};

fn main() {
    codec();
    let sizes: Vec<usize> = std::env::var("SIM_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]);
    println!("\nsimulated get_peers lookups (45% dead, RTT median 100 ms, 5% loss, seed 1)");
    println!(
        "{:>7} {:<11} {:>8} {:>20} {:>20} {:>10} {:>9}",
        "nodes",
        "profile",
        "success",
        "complete p50/p99 ms",
        "1st peer p50/p99 ms",
        "queries",
        "wall s"
    );
    for nodes in sizes {
        for profile in Profile::ALL {
            let report = sim::run(SimConfig {
                nodes,
                profile,
                ..SimConfig::default()
            });
            println!(
                "{:>7} {:<11} {:>7.2}% {:>20} {:>20} {:>10} {:>9.1}",
                nodes,
                profile.name(),
                report.success_rate * 100.0,
                format!(
                    "{:.0}/{:.0}",
                    report.time_to_complete_ms.p50, report.time_to_complete_ms.p99
                ),
                format!(
                    "{:.0}/{:.0}",
                    report.time_to_first_peer_ms.p50, report.time_to_first_peer_ms.p99
                ),
                format!("{:.0}", report.queries.p50),
                report.wall_ms as f64 / 1000.0
            );
        }
    }
}

fn codec() {
    let id = Id([7; 20]);
    let nodes: Vec<NodeContact> = (0..8u8)
        .map(|i| NodeContact {
            id: Id([i; 20]),
            addr: format!("127.0.0.{}:6881", i + 1).parse().unwrap(),
        })
        .collect();
    let message = |body| Message {
        transaction_id: TransactionId::new(b"abcd").unwrap(),
        body,
        client_version: Some(b"TL\x00\x01".to_vec()),
        requester_addr: Some("127.0.0.9:6881".parse().unwrap()),
        read_only: false,
    };
    let cases = [
        ("ping query", message(Body::Query(Query::Ping { id }))),
        (
            "get_peers query",
            message(Body::Query(Query::GetPeers {
                id,
                info_hash: id,
                want: None,
            })),
        ),
        (
            "find_node reply (8 nodes)",
            message(Body::Response(Response {
                id,
                nodes: nodes.clone(),
                ..Response::default()
            })),
        ),
        (
            "get_peers reply (8 nodes, 50 peers)",
            message(Body::Response(Response {
                id,
                nodes,
                values: (0..50u16)
                    .map(|p| format!("127.0.1.1:{}", 1000 + p).parse().unwrap())
                    .collect(),
                token: Some(vec![1; 8]),
                ..Response::default()
            })),
        ),
    ];
    println!("KRPC codec");
    println!(
        "{:<36} {:>7} {:>12} {:>12}",
        "message", "bytes", "encode ns", "decode ns"
    );
    for (name, message) in cases {
        let bytes = message.encode();
        let encode = time_per_op(|| {
            black_box(black_box(&message).encode());
        });
        let decode = time_per_op(|| {
            black_box(krpc::decode(black_box(&bytes)).ok());
        });
        println!(
            "{:<36} {:>7} {:>12.0} {:>12.0}",
            name,
            bytes.len(),
            encode.as_nanos() as f64,
            decode.as_nanos() as f64
        );
    }
}

fn time_per_op(mut op: impl FnMut()) -> Duration {
    let rounds = 20_000u32;
    for _ in 0..1000 {
        op();
    }
    let started = Instant::now();
    for _ in 0..rounds {
        op();
    }
    started.elapsed() / rounds
}
