//! Magnet to verified metadata on loopback: through our DHT from our own
//! seeder, and against hostile peers that lie about the metadata.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{loopback, loopback_network, start_node, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use trackerless::dht::AnnouncePort;
use trackerless::runtime::{FetchSettings, PeerListener, fetch_metadata};
use trackerless::wire::extension::{METADATA_PIECE_SIZE, MetadataMessage};
use trackerless::wire::magnet::{Magnet, PeerAddress};
use trackerless::wire::peer::{Handshake, PeerMessage, decode_frame};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_comes_through_our_dht_from_our_seeder() {
    let nodes = loopback_network(3, 1, 10, 5000).await;
    let metainfo = common::random_torrent(1, 3000);
    assert!(
        metainfo.raw_info().len() > 3 * METADATA_PIECE_SIZE,
        "several metadata pieces"
    );
    let seeder_ip = nodes[4].local_addr().ip();
    let listener = PeerListener::bind(SocketAddr::new(seeder_ip, 0))
        .await
        .unwrap();
    listener.add_torrent(&metainfo);
    let port = listener.local_addr().port();
    let report = within(
        "announce",
        nodes[4].announce(metainfo.info_hash(), AnnouncePort::Explicit(port), false),
    )
    .await
    .unwrap();
    assert!(report.stored > 0);

    let fetcher_ip = nodes[8].local_addr().ip();
    let settings = FetchSettings {
        bind_ip: Some(fetcher_ip),
        ..FetchSettings::default()
    };
    let magnet = Magnet::new(metainfo.info_hash());
    let fetched = within("fetch", fetch_metadata(&nodes[8], &magnet, &settings))
        .await
        .unwrap();
    assert_eq!(fetched.metainfo.info_hash(), metainfo.info_hash());
    assert_eq!(fetched.metainfo.raw_info(), metainfo.raw_info());
    assert_eq!(fetched.metainfo.info(), metainfo.info());
    assert_eq!(fetched.peers_connected, 1);
    for node in nodes {
        node.shutdown().await;
    }
}

/// How a hostile peer lies.
#[derive(Debug, Clone, Copy)]
enum Lie {
    SizeZero,
    SizeNegative,
    SizeAboveCap,
    WrongTotalSize,
    OversizedPiece,
    WrongBytes,
}

/// Every kind of liar, each tested against the fetcher.
const LIES: [Lie; 6] = [
    Lie::SizeZero,
    Lie::SizeNegative,
    Lie::SizeAboveCap,
    Lie::WrongTotalSize,
    Lie::OversizedPiece,
    Lie::WrongBytes,
];

/// A peer that completes the handshakes and then lies as told.
async fn hostile_peer(ip: std::net::IpAddr, lie: Lie, metadata: Arc<Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let metadata = metadata.clone();
            tokio::spawn(async move {
                let mut handshake = [0u8; 68];
                if stream.read_exact(&mut handshake).await.is_err() {
                    return;
                }
                let theirs = Handshake::decode(&handshake).unwrap().unwrap();
                let mut ours = Handshake::new(theirs.info_hash, [0x66; 20]);
                ours.set_extension_protocol(true);
                let mut out = ours.encode().to_vec();
                let size = match lie {
                    Lie::SizeZero => "i0e".to_string(),
                    Lie::SizeNegative => "i-16384e".to_string(),
                    Lie::SizeAboveCap => format!("i{}e", 64 * 1024 * 1024),
                    _ => format!("i{}e", metadata.len()),
                };
                let payload = format!("d1:md11:ut_metadatai3ee13:metadata_size{size}e");
                PeerMessage::Extended {
                    id: 0,
                    payload: payload.into_bytes(),
                }
                .encode(&mut out);
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(read) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Ok(Some((message, used))) = decode_frame(&buffer) {
                        buffer.drain(..used);
                        let PeerMessage::Extended { id: 3, payload } = message else {
                            continue;
                        };
                        let Ok(MetadataMessage::Request { piece }) =
                            MetadataMessage::decode(&payload, None)
                        else {
                            continue;
                        };
                        let start = piece as usize * METADATA_PIECE_SIZE;
                        let end = (start + METADATA_PIECE_SIZE).min(metadata.len());
                        let (total_size, data) = match lie {
                            Lie::WrongTotalSize => {
                                (metadata.len() + 1, metadata[start..end].to_vec())
                            }
                            Lie::OversizedPiece => {
                                (metadata.len(), vec![0xaa; METADATA_PIECE_SIZE + 1])
                            }
                            Lie::WrongBytes => (metadata.len(), vec![0xbb; end - start]),
                            _ => (metadata.len(), metadata[start..end].to_vec()),
                        };
                        let reply = MetadataMessage::Data {
                            piece,
                            total_size,
                            data,
                        }
                        .encode();
                        let mut out = Vec::new();
                        PeerMessage::Extended {
                            id: 1,
                            payload: reply,
                        }
                        .encode(&mut out);
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_metadata_peers_are_dropped_and_an_honest_one_delivers() {
    let metainfo = common::random_torrent(2, 2000);
    let metadata = Arc::new(metainfo.raw_info().to_vec());
    let ip = loopback(3, 2, 1);
    let mut peers = Vec::new();
    for lie in LIES {
        peers.push(PeerAddress::Ip(
            hostile_peer(ip, lie, metadata.clone()).await,
        ));
    }
    let honest = PeerListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    honest.add_torrent(&metainfo);
    // The honest peer comes last, so every liar is tried first.
    peers.push(PeerAddress::Ip(honest.local_addr()));

    let dht = start_node(loopback(3, 2, 2), vec![], 6000).await;
    let mut magnet = Magnet::new(metainfo.info_hash());
    magnet.peers = peers;
    let settings = FetchSettings {
        bind_ip: Some(loopback(3, 2, 2)),
        timeout: Duration::from_secs(30),
        ..FetchSettings::default()
    };
    let fetched = within("fetch", fetch_metadata(&dht, &magnet, &settings))
        .await
        .unwrap();
    assert_eq!(fetched.metainfo.raw_info(), metainfo.raw_info());
    assert_eq!(fetched.metainfo.info_hash(), metainfo.info_hash());
    dht.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_liar_is_dropped_and_nothing_unverified_is_returned() {
    let metainfo = common::random_torrent(3, 2000);
    let metadata = Arc::new(metainfo.raw_info().to_vec());
    let ip = loopback(3, 3, 1);
    let mut magnet = Magnet::new(metainfo.info_hash());
    for lie in LIES {
        magnet.peers.push(PeerAddress::Ip(
            hostile_peer(ip, lie, metadata.clone()).await,
        ));
    }
    let dht = start_node(loopback(3, 3, 2), vec![], 7000).await;
    let settings = FetchSettings {
        bind_ip: Some(loopback(3, 3, 2)),
        timeout: Duration::from_secs(3),
        ..FetchSettings::default()
    };
    let error = within("fetch", fetch_metadata(&dht, &magnet, &settings))
        .await
        .unwrap_err();
    match error {
        trackerless::runtime::FetchError::Timeout {
            peers_connected,
            peers_dropped,
            ..
        } => {
            assert_eq!(peers_connected, LIES.len());
            assert_eq!(peers_dropped, LIES.len(), "every liar dropped");
        }
        other => panic!("expected a timeout, got {other}"),
    }
    dht.shutdown().await;
}
