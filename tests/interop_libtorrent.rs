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
use trackerless::runtime::{FetchSettings, LookupEvent, PeerListener, fetch_metadata};
use trackerless::wire::Id;
use trackerless::wire::extension::METADATA_PIECE_SIZE;
use trackerless::wire::magnet::Magnet;
use trackerless::wire::metainfo::Metainfo;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_node_fetches_metadata_from_a_libtorrent_seeder() {
    let mut swarm = LibtorrentSwarm::start(&["127.0.22.1", "127.0.22.2", "127.0.22.3"]).await;
    // 64 MiB in 16 KiB pieces: 4096 piece hashes, an info dictionary of
    // about 80 KiB, so six ut_metadata pieces.
    let seeding = swarm.seed(0, 64, 16).await;
    let theirs = Metainfo::from_bytes(&std::fs::read(&seeding.torrent_file).unwrap()).unwrap();
    assert_eq!(theirs.info_hash().to_hex(), seeding.info_hash);
    assert!(
        theirs.raw_info().len() > 4 * METADATA_PIECE_SIZE,
        "several metadata pieces"
    );

    let ip = loopback(0, 22, 10);
    let ours = start_node(ip, swarm.nodes.clone(), 22).await;
    assert!(within("bootstrap", ours.bootstrap()).await.unwrap().reached);
    let settings = FetchSettings {
        bind_ip: Some(ip),
        ..FetchSettings::default()
    };
    let magnet = Magnet::new(Id::parse(&seeding.info_hash).unwrap());
    // fetch_metadata looks up again until libtorrent's announce has landed.
    let fetched = within(
        "fetching libtorrent's metadata",
        fetch_metadata(&ours, &magnet, &settings),
    )
    .await
    .expect("metadata from libtorrent");
    let metainfo = fetched.metainfo;
    assert_eq!(metainfo.info_hash().to_hex(), seeding.info_hash);
    assert_eq!(
        metainfo.raw_info(),
        theirs.raw_info(),
        "the info dictionary libtorrent wrote"
    );
    assert_eq!(metainfo.info(), theirs.info());
    assert!(fetched.peers_connected >= 1);

    // Our .torrent reads back with the same info-hash.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.torrent");
    std::fs::write(&path, metainfo.to_bytes()).unwrap();
    let reread = Metainfo::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(reread.info_hash(), metainfo.info_hash());
    assert_eq!(reread.raw_info(), theirs.raw_info());

    ours.shutdown().await;
    swarm.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_fetches_metadata_for_a_magnet_from_us() {
    let mut swarm = LibtorrentSwarm::start(&["127.0.23.1", "127.0.23.2", "127.0.23.3"]).await;
    let ip = loopback(0, 23, 10);
    let ours = start_node(ip, swarm.nodes.clone(), 23).await;
    swarm.add_node(ours.local_addr()).await;
    assert!(within("bootstrap", ours.bootstrap()).await.unwrap().reached);

    let metainfo = common::random_torrent(23, 3000);
    assert!(
        metainfo.raw_info().len() > 3 * METADATA_PIECE_SIZE,
        "several metadata pieces"
    );
    let listener = PeerListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    listener.add_torrent(&metainfo);
    let port = listener.local_addr().port();
    let info_hash = metainfo.info_hash();
    within("announcing to libtorrent", async {
        loop {
            let report = ours
                .announce(info_hash, AnnouncePort::Explicit(port), false)
                .await
                .unwrap();
            if report.stored >= 2 {
                return;
            }
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
    })
    .await;

    let hex = info_hash.to_hex();
    swarm.find(1, &hex).await;
    // libtorrent finds our listener through the DHT, fetches the info
    // dictionary with ut_metadata and checks it against the info-hash; only
    // then does it post metadata_received_alert.
    let elapsed = swarm.expect_metadata(&hex).await;
    assert!(elapsed >= 0.0);
    ours.shutdown().await;
    listener.shutdown();
    swarm.quit().await;
}
