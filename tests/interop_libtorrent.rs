//! Interop with libtorrent 2.0 (Debian's python3-libtorrent) on loopback.
//! Run with `cargo test --features interop`; CI does, inside `unshare -n`.
#![cfg(feature = "interop")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::libtorrent::LibtorrentSwarm;
use common::{loopback, start_node, within};
use serde_json::json;
use tokio::io::AsyncReadExt;
use trackerless::dht::AnnouncePort;
use trackerless::runtime::LookupEvent;
use trackerless::wire::Id;

/// Between lookups while waiting for libtorrent's own announce to land:
/// libtorrent announces on its own schedule (the harness forces it every second).
const RETRY_INTERVAL: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_node_bootstraps_off_libtorrent_and_finds_its_peer() {
    let mut swarm = LibtorrentSwarm::start(&["127.0.20.1", "127.0.20.2", "127.0.20.3"]).await;
    let ours = start_node(loopback(0, 20, 10), swarm.nodes.clone(), 20).await;
    let report = within("bootstrap", ours.bootstrap()).await.unwrap();
    assert!(report.reached, "no libtorrent node answered our bootstrap");
    let stats = ours.stats().await.unwrap();
    assert_eq!(
        stats.routing_table_nodes, 3,
        "all three libtorrent nodes in our table"
    );

    swarm.send(json!({"cmd": "seed", "session": 0})).await;
    let seeding = swarm.expect_event("seeding").await;
    let info_hash = Id::parse(seeding["info_hash"].as_str().unwrap()).unwrap();
    let peer: SocketAddr = seeding["peer"].as_str().unwrap().parse().unwrap();

    let found = within("finding libtorrent's peer", async {
        loop {
            let mut stream = ours.lookup(info_hash).await.unwrap();
            while let Some(event) = stream.next().await {
                match event {
                    LookupEvent::Peer(p) if p == peer => return p,
                    LookupEvent::Peer(_) => {}
                    LookupEvent::Done(_) => break,
                }
            }
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
    })
    .await;
    assert_eq!(found, peer);
    let stats = ours.stats().await.unwrap();
    assert_eq!(
        stats.dropped.bad_message + stats.dropped.bad_bencode,
        0,
        "libtorrent's packets all decoded"
    );
    ours.shutdown().await;
    swarm.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_finds_a_peer_our_node_announced() {
    let mut swarm = LibtorrentSwarm::start(&["127.0.21.1", "127.0.21.2", "127.0.21.3"]).await;
    let ours = start_node(loopback(0, 21, 10), swarm.nodes.clone(), 21).await;
    swarm.add_node(ours.local_addr()).await;
    assert!(within("bootstrap", ours.bootstrap()).await.unwrap().reached);

    // The "peer" we announce: a TCP listener on our IP.
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(loopback(0, 21, 10), 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let info_hash = Id([0x7e; 20]);
    let report = within(
        "announce",
        ours.announce(info_hash, AnnouncePort::Explicit(port), false),
    )
    .await
    .unwrap();
    assert!(
        report.stored >= 2,
        "libtorrent accepted our announce_peer (with its token) on {} of {} nodes",
        report.stored,
        report.tried
    );

    swarm
        .send(json!({"cmd": "find", "session": 1, "info_hash": info_hash.to_hex()}))
        .await;
    swarm.expect_event("ok").await;
    // libtorrent looks the info-hash up in its DHT, gets our peer, and dials it
    // with a BitTorrent handshake for that info-hash.
    let (mut stream, from) = within("libtorrent dialling our peer", listener.accept())
        .await
        .unwrap();
    assert_eq!(from.ip(), "127.0.21.2".parse::<std::net::IpAddr>().unwrap());
    let mut handshake = [0u8; 68];
    within("handshake", stream.read_exact(&mut handshake))
        .await
        .unwrap();
    assert_eq!(&handshake[..20], b"\x13BitTorrent protocol");
    assert_eq!(
        &handshake[28..48],
        &info_hash.0,
        "handshake names our info-hash"
    );
    let peer_event = swarm.expect_event("peer").await;
    assert_eq!(peer_event["peer"], format!("127.0.21.10:{port}"));
    ours.shutdown().await;
    swarm.quit().await;
}
