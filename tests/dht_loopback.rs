//! Our nodes on real UDP sockets, each on its own 127.x address.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use common::{loopback, loopback_network, start_node, within};
use trackerless::dht::AnnouncePort;
use trackerless::runtime::{Dht, DhtSettings, LookupEvent};
use trackerless::wire::Id;

async fn lookup_peers(
    node: &Dht,
    info_hash: Id,
) -> (HashSet<SocketAddr>, trackerless::dht::LookupSummary) {
    let mut stream = node.lookup(info_hash).await.expect("start lookup");
    let mut peers = HashSet::new();
    loop {
        match within("lookup", stream.next())
            .await
            .expect("lookup stream ended early")
        {
            LookupEvent::Peer(peer) => {
                peers.insert(peer);
            }
            LookupEvent::Done(summary) => return (peers, summary),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_then_every_node_finds_the_peer() {
    let nodes = loopback_network(1, 1, 32, 1000).await;
    let info_hash = Id([0x5a; 20]);
    let peer = SocketAddr::new(nodes[7].local_addr().ip(), 51413);
    let report = within(
        "announce",
        nodes[7].announce(info_hash, AnnouncePort::Explicit(51413), false),
    )
    .await
    .expect("announce");
    assert!(
        report.stored >= 4,
        "announce stored on only {} of {} nodes",
        report.stored,
        report.tried
    );
    for (i, node) in nodes.iter().enumerate() {
        let (peers, summary) = lookup_peers(node, info_hash).await;
        assert!(
            peers.contains(&peer),
            "node {i} did not find the peer: {summary:?}"
        );
        assert_eq!(
            summary.closest.len(),
            8,
            "node {i} did not reach k responders"
        );
    }
    let stats = nodes[0].stats().await.unwrap();
    assert!(
        stats.routing_table_nodes >= 16,
        "entry node knows {} nodes",
        stats.routing_table_nodes
    );
    assert!(stats.queries_in.get_peers > 0);
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implied_port_announces_the_udp_source_port() {
    let nodes = loopback_network(1, 2, 12, 2000).await;
    let info_hash = Id([0x33; 20]);
    within(
        "announce",
        nodes[3].announce(info_hash, AnnouncePort::Implied, false),
    )
    .await
    .expect("announce");
    let (peers, _) = lookup_peers(&nodes[9], info_hash).await;
    assert!(peers.contains(&nodes[3].local_addr()), "peers: {peers:?}");
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rejoins_from_the_state_file_without_routers() {
    let nodes = loopback_network(1, 3, 16, 3000).await;
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("dht.json");

    let mut settings = DhtSettings::new(SocketAddr::new(loopback(1, 3, 100), 0));
    settings.bootstrap = Some(vec![nodes[0].local_addr().to_string()]);
    settings.state_file = Some(state_file.clone());
    let first = Dht::start(settings.clone()).await.unwrap();
    let first_id = first.id();
    assert!(
        within("bootstrap", first.bootstrap())
            .await
            .unwrap()
            .reached
    );
    first.shutdown().await;
    assert!(state_file.exists(), "state saved on shutdown");

    let info_hash = Id([0xc4; 20]);
    within(
        "announce",
        nodes[11].announce(info_hash, AnnouncePort::Explicit(6000), false),
    )
    .await
    .unwrap();

    // Same state file, no entry points at all.
    settings.bootstrap = Some(Vec::new());
    let second = Dht::start(settings).await.unwrap();
    assert_eq!(second.id(), first_id, "node ID kept across restarts");
    let report = within("bootstrap", second.bootstrap()).await.unwrap();
    assert_eq!(report.entry_points, 0);
    assert!(report.reached, "rejoined from saved nodes");
    let (peers, _) = lookup_peers(&second, info_hash).await;
    assert!(peers.contains(&SocketAddr::new(nodes[11].local_addr().ip(), 6000)));
    second.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_entry_points_are_silent_keeps_answering() {
    // An address nobody listens on: the bootstrap reaches nobody.
    let silent = SocketAddr::new(loopback(1, 4, 99), 9);
    let lonely = start_node(loopback(1, 4, 1), vec![silent], 4000).await;
    let report = within("bootstrap", lonely.bootstrap()).await.unwrap();
    assert!(!report.reached);
    // Still answers pings from others, who then find it.
    let other = start_node(loopback(1, 4, 2), vec![], 4001).await;
    assert_eq!(
        within("ping", other.ping(lonely.local_addr()))
            .await
            .unwrap(),
        Some(lonely.id())
    );
    lonely.shutdown().await;
    other.shutdown().await;
}
