//! `trackerless demo`: a whole DHT on loopback, built and used in one command.
//!
//! Starts N of our nodes on 127.0.0.2, 127.0.0.3, ..., joins them through the
//! first, announces a peer from one of them, then a fresh node bootstraps
//! from a single address and finds that peer. Every step is timed; then
//! every node looks the peer up too, to show the spread. Last, the
//! announcer serves a generated torrent and the fresh node resolves its
//! magnet link to verified metadata.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use rand::{Rng, SeedableRng};
use serde_json::json;
use trackerless::dht::{AnnouncePort, Config, LookupSummary};
use trackerless::runtime::{
    Dht, DhtSettings, FetchSettings, LookupEvent, PeerListener, fetch_metadata,
};
use trackerless::wire::Id;
use trackerless::wire::metainfo::{Info, Metainfo};

use super::output;

/// Arguments of `trackerless demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Nodes in the loopback DHT (at most 250).
    #[arg(long, default_value_t = 64)]
    nodes: u8,
    /// Print one JSON object with every measurement instead of text.
    #[arg(long)]
    json: bool,
}

/// The TCP port the demo peer announces.
const DEMO_PEER_PORT: u16 = 6881;
/// Size of the generated demo torrent's content.
const DEMO_TORRENT_SIZE: usize = 16 * 1024 * 1024;
/// Piece size of the generated torrent: small, so its metadata spans
/// several 16 KiB ut_metadata pieces.
const DEMO_PIECE_LENGTH: u64 = 16 * 1024;

/// Runs the demo; exit code 0 when the fresh node found the peer.
pub async fn run(args: DemoArgs) -> Result<i32> {
    ensure!(
        (2..=250).contains(&args.nodes),
        "--nodes must be between 2 and 250"
    );
    let say = |line: String| {
        if !args.json {
            println!("{line}");
        }
    };
    let total = Instant::now();

    let started = Instant::now();
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        nodes.push(start(2 + i, &[]).await?);
    }
    let start_time = started.elapsed();
    say(format!(
        "started {} DHT nodes on 127.0.0.2-{} in {}",
        nodes.len(),
        1 + args.nodes,
        output::duration(start_time)
    ));

    let started = Instant::now();
    let entry = nodes[0].local_addr();
    for node in &nodes[1..] {
        node_bootstrap(node, entry).await?;
    }
    let join_time = started.elapsed();
    let table_sizes: Vec<usize> = {
        let mut sizes = Vec::new();
        for node in &nodes {
            sizes.push(node.stats().await?.routing_table_nodes);
        }
        sizes
    };
    say(format!(
        "joined them through {entry} in {} (routing tables: {} to {} nodes)",
        output::duration(join_time),
        table_sizes.iter().min().unwrap_or(&0),
        table_sizes.iter().max().unwrap_or(&0),
    ));

    let info_hash = Id::random(&mut rand::rng());
    let announcer = &nodes[nodes.len() / 3];
    let peer = SocketAddr::new(announcer.local_addr().ip(), DEMO_PEER_PORT);
    let started = Instant::now();
    let announce = announcer
        .announce(info_hash, AnnouncePort::Explicit(DEMO_PEER_PORT), false)
        .await?;
    let announce_time = started.elapsed();
    say(format!(
        "{} announced peer {peer} for {info_hash}: stored on {} of {} closest nodes in {} ({} nodes queried)",
        announcer.local_addr(),
        announce.stored,
        announce.tried,
        output::duration(announce_time),
        announce.summary.queried,
    ));

    let fresh = start(2 + args.nodes, &[]).await?;
    let started = Instant::now();
    node_bootstrap(&fresh, entry).await?;
    let fresh_join = started.elapsed();
    let (found, summary) = find(&fresh, info_hash, peer).await?;
    say(format!(
        "fresh node {} joined from one address in {}, then found {} in {} (first peer after {}, {} nodes queried, {} answered)",
        fresh.local_addr(),
        output::duration(fresh_join),
        if found { "the peer" } else { "NOT the peer" },
        output::duration(summary.elapsed),
        summary
            .time_to_first_peer
            .map(output::duration)
            .unwrap_or_else(|| "-".into()),
        summary.queried,
        summary.responses,
    ));

    let mut times = Vec::new();
    let mut queried = Vec::new();
    let mut successes = 0;
    for node in &nodes {
        let (ok, s) = find(node, info_hash, peer).await?;
        successes += usize::from(ok);
        times.push(s.elapsed);
        queried.push(s.queried);
    }
    times.sort();
    queried.sort();
    let median_time = times[times.len() / 2];
    let p90_time = times[times.len() * 9 / 10];
    let median_queried = queried[queried.len() / 2];
    let max_queried = queried[queried.len() - 1];
    say(format!(
        "all {} nodes looked it up: {successes} found the peer; lookup median {} (p90 {}), nodes queried median {median_queried} (max {max_queried})",
        nodes.len(),
        output::duration(median_time),
        output::duration(p90_time),
    ));
    // Magnet links: the announcer serves a generated torrent's metadata, the
    // fresh node resolves its magnet through the DHT.
    let mut content = vec![0u8; DEMO_TORRENT_SIZE];
    rand::rngs::StdRng::seed_from_u64(rand::random()).fill_bytes(&mut content);
    let metainfo = Metainfo::new(Info::single_file(
        "trackerless-demo.bin",
        &content,
        DEMO_PIECE_LENGTH,
    )?)?;
    let listener = PeerListener::bind(SocketAddr::new(announcer.local_addr().ip(), 0)).await?;
    listener.add_torrent(&metainfo);
    announcer
        .announce(
            metainfo.info_hash(),
            AnnouncePort::Explicit(listener.local_addr().port()),
            false,
        )
        .await?;
    let magnet = metainfo.to_magnet();
    let settings = FetchSettings {
        bind_ip: Some(fresh.local_addr().ip()),
        timeout: Duration::from_secs(30),
        ..FetchSettings::default()
    };
    let fetched = fetch_metadata(&fresh, &magnet, &settings).await?;
    let magnet_ok = fetched.metainfo.info_hash() == metainfo.info_hash()
        && fetched.metainfo.raw_info() == metainfo.raw_info();
    say(format!(
        "{} serves {} ({}, {} pieces, {} of metadata); the fresh node resolved\n  {}\n  to verified metadata in {} (first peer after {}, {} peer connected)",
        listener.local_addr(),
        metainfo.info().name,
        output::bytes(DEMO_TORRENT_SIZE as u64),
        metainfo.info().piece_count(),
        output::bytes(metainfo.raw_info().len() as u64),
        magnet.to_uri(),
        output::duration(fetched.elapsed),
        fetched
            .time_to_first_peer
            .map(output::duration)
            .unwrap_or_else(|| "-".into()),
        fetched.peers_connected,
    ));
    say(format!(
        "demo finished in {}",
        output::duration(total.elapsed())
    ));

    if args.json {
        output::json_line(&json!({
            "nodes": nodes.len(),
            "start_ms": output::millis(start_time),
            "join_ms": output::millis(join_time),
            "announce": {
                "ms": output::millis(announce_time),
                "stored": announce.stored,
                "tried": announce.tried,
                "nodes_queried": announce.summary.queried,
            },
            "fresh_node": {
                "join_ms": output::millis(fresh_join),
                "found_peer": found,
                "lookup_ms": output::millis(summary.elapsed),
                "time_to_first_peer_ms": summary.time_to_first_peer.map(output::millis),
                "nodes_queried": summary.queried,
                "responses": summary.responses,
            },
            "all_nodes": {
                "found_peer": successes,
                "lookup_ms_p50": output::millis(median_time),
                "lookup_ms_p90": output::millis(p90_time),
                "nodes_queried_p50": median_queried,
                "nodes_queried_max": max_queried,
            },
            "magnet": {
                "uri": magnet.to_uri(),
                "metadata_bytes": metainfo.raw_info().len(),
                "verified": magnet_ok,
                "ms": output::millis(fetched.elapsed),
                "time_to_first_peer_ms": fetched.time_to_first_peer.map(output::millis),
                "peers_connected": fetched.peers_connected,
            },
            "total_ms": output::millis(total.elapsed()),
        }));
    }
    fresh.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
    Ok(if found && successes == usize::from(args.nodes) {
        0
    } else {
        1
    })
}

async fn start(last_octet: u8, bootstrap: &[SocketAddr]) -> Result<Dht> {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet));
    let mut settings = DhtSettings::new(SocketAddr::new(ip, 0));
    settings.bootstrap = Some(bootstrap.iter().map(|a| a.to_string()).collect());
    settings.node = Config {
        rng_seed: rand::random(),
        ..Config::default()
    };
    Dht::start(settings)
        .await
        .with_context(|| format!("binding a node on {ip}"))
}

async fn node_bootstrap(node: &Dht, entry: SocketAddr) -> Result<()> {
    // The entry point is pinged first, which also puts it in the table, so
    // the bootstrap lookup starts from a known node.
    if node.ping(entry).await?.is_none() {
        bail!("entry node {entry} did not answer");
    }
    let report = tokio::time::timeout(Duration::from_secs(30), node.bootstrap())
        .await
        .context("bootstrap took over 30 s")??;
    ensure!(report.reached, "{} reached nobody", node.local_addr());
    Ok(())
}

async fn find(node: &Dht, info_hash: Id, peer: SocketAddr) -> Result<(bool, LookupSummary)> {
    let mut stream = node.lookup(info_hash).await?;
    let mut found = false;
    loop {
        match stream.next().await {
            Some(LookupEvent::Peer(p)) => found |= p == peer,
            Some(LookupEvent::Done(summary)) => return Ok((found, summary)),
            None => bail!("node stopped during the lookup"),
        }
    }
}
