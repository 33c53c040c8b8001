//! `cargo bench --bench magnet`: magnet link to verified metadata on a
//! loopback swarm of libtorrent nodes, ours measured in the same run as a
//! brand-new libtorrent session and aria2c resolving the same magnet.
//!
//! One harness swarm (`tests/interop/lt_dht.py`, python3-libtorrent): eight
//! libtorrent sessions on 127.0.30.1-8, session 0 seeding a 64 MiB torrent of
//! 16 KiB pieces (an info dictionary of about 80 KiB: six ut_metadata
//! pieces). Each of `ROUNDS` rounds (default 5), every client starts fresh on
//! an IP of its own that nothing in the swarm has seen:
//!
//! - ours (127.0.32.R): `Dht::start`, `start_bootstrap` off the eight
//!   libtorrent nodes and at once `fetch_metadata`; timed from before the
//!   start to verified metadata, as `trackerless metadata` does it;
//! - libtorrent (127.0.33.R): harness `fresh_session` (told the eight nodes
//!   with add_dht_node) then `find`; the harness's `elapsed_s` runs from the
//!   find command to `metadata_received_alert`, and "lt total" from sending
//!   `fresh_session` to reading the metadata event (session start and DHT
//!   bootstrap included);
//! - aria2c (127.0.31.R): DHT only, `--bt-metadata-only`, entry point one
//!   libtorrent node, fresh `--dht-file-path`; timed from spawn until a
//!   `.torrent` with the right info-hash is in its directory (polled every
//!   10 ms), then killed. A run that takes more than 60 s is reported and
//!   left out.
//!
//! Needs /usr/bin/python3 with libtorrent (python3-libtorrent); aria2c is
//! installed with apt-get if missing, and left out if that fails.

#[path = "../tests/common/libtorrent.rs"]
#[allow(dead_code)]
mod libtorrent;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use libtorrent::LibtorrentSwarm;
use trackerless::dht::Config;
use trackerless::runtime::{Dht, DhtSettings, FetchSettings, LookupEvent, fetch_metadata};
use trackerless::wire::Id;
use trackerless::wire::magnet::Magnet;
use trackerless::wire::metainfo::Metainfo;

/// Upper bound on any single await (the harness helpers use it too).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// aria2c gets this long per round before it is reported and left out.
const ARIA2_TIMEOUT: Duration = Duration::from_secs(60);
/// How often aria2c's output directory is checked for the .torrent.
const ARIA2_POLL: Duration = Duration::from_millis(10);
/// Libtorrent nodes in the swarm.
const SWARM_SIZE: u8 = 8;
/// The seeded torrent: 64 MiB in 16 KiB pieces.
const SEED_MIB: u32 = 64;
const SEED_PIECE_KIB: u32 = 16;

/// Runs `future` with [`STEP_TIMEOUT`], panicking with `what` if it hangs.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn ip(b: u8, c: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, b, c))
}

/// One round of ours, with machine-independent counts.
struct Ours {
    total: Duration,
    first_peer: Duration,
    peers_seen: usize,
    peers_connected: usize,
    queries_sent: u64,
    get_peers_sent: u64,
    responses: u64,
    /// Queries still unanswered when the metadata was verified (sent to
    /// nodes that are gone: earlier rounds' clients).
    unanswered: usize,
}

/// One round of the libtorrent session.
struct Lt {
    /// Harness `elapsed_s`: find command to metadata_received_alert.
    find_to_metadata: Duration,
    /// From sending `fresh_session` to reading the metadata event.
    total: Duration,
}

struct Round {
    ours: Ours,
    lt: Lt,
    aria2: Option<Duration>,
}

fn main() {
    let rounds: u8 = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(5)
        .clamp(1, 250);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(rounds));
}

async fn run(rounds: u8) {
    let ips: Vec<String> = (1..=SWARM_SIZE).map(|c| ip(30, c).to_string()).collect();
    let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
    let mut swarm = LibtorrentSwarm::start(&ip_refs).await;
    let seeding = swarm.seed(0, SEED_MIB, SEED_PIECE_KIB).await;
    let expected = Metainfo::from_bytes(&std::fs::read(&seeding.torrent_file).unwrap())
        .expect("libtorrent's .torrent parses");
    let info_hash = expected.info_hash();
    assert_eq!(info_hash.to_hex(), seeding.info_hash);
    let aria2 = aria2_available();
    println!(
        "magnet to verified metadata: {} libtorrent 2.0 nodes on 127.0.30.1-{}, one seeding {} MiB in {} KiB pieces",
        SWARM_SIZE, SWARM_SIZE, SEED_MIB, SEED_PIECE_KIB
    );
    println!(
        "info-hash {}, info dictionary {} bytes ({} ut_metadata pieces), {} rounds, fresh IPs every round",
        info_hash.to_hex(),
        expected.raw_info().len(),
        expected.raw_info().len().div_ceil(16 * 1024),
        rounds
    );
    if !aria2 {
        println!("aria2c: not available (apt-get install -y aria2 failed); left out");
    }
    wait_for_seeder_announce(&swarm, info_hash, seeding.peer).await;

    let mut results = Vec::new();
    for round in 1..=rounds {
        let ours = ours_round(&swarm, &expected, ip(32, round)).await;
        let lt = libtorrent_round(&mut swarm, &seeding.info_hash, ip(33, round)).await;
        let aria2 = if aria2 {
            aria2_round(&swarm, &expected, ip(31, round)).await
        } else {
            None
        };
        results.push(Round { ours, lt, aria2 });
    }
    swarm.quit().await;
    print_report(&results, aria2);
}

/// Waits (with a throwaway node) until the seeder's own announce is in the
/// DHT, so that round 1 does not race libtorrent's first announce.
async fn wait_for_seeder_announce(swarm: &LibtorrentSwarm, info_hash: Id, seeder: SocketAddr) {
    let node = start_dht(ip(30, 250), swarm).await;
    within("bootstrap of the warm-up node", node.bootstrap())
        .await
        .unwrap();
    within("the seeder's announce", async {
        loop {
            let mut stream = node.lookup(info_hash).await.unwrap();
            while let Some(event) = stream.next().await {
                match event {
                    LookupEvent::Peer(peer) if peer == seeder => return,
                    LookupEvent::Peer(_) => {}
                    LookupEvent::Done(_) => break,
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    node.shutdown().await;
}

async fn start_dht(ip: IpAddr, swarm: &LibtorrentSwarm) -> Dht {
    let mut settings = DhtSettings::new(SocketAddr::new(ip, 0));
    settings.bootstrap = Some(swarm.nodes.iter().map(|a| a.to_string()).collect());
    settings.node = Config {
        rng_seed: rand::random(),
        ..Config::default()
    };
    Dht::start(settings).await.expect("bind our node")
}

async fn ours_round(swarm: &LibtorrentSwarm, expected: &Metainfo, ip: IpAddr) -> Ours {
    let magnet = Magnet::new(expected.info_hash());
    let fetch_settings = FetchSettings {
        bind_ip: Some(ip),
        ..FetchSettings::default()
    };
    let started = Instant::now();
    let dht = start_dht(ip, swarm).await;
    dht.start_bootstrap().await.unwrap();
    let fetched = within("our fetch", fetch_metadata(&dht, &magnet, &fetch_settings))
        .await
        .expect("our fetch_metadata");
    let total = started.elapsed();
    let first_peer = (total - fetched.elapsed) + fetched.time_to_first_peer.unwrap_or_default();
    assert_eq!(fetched.metainfo.info_hash(), expected.info_hash());
    assert_eq!(fetched.metainfo.raw_info(), expected.raw_info());
    let stats = dht.stats().await.unwrap();
    dht.shutdown().await;
    Ours {
        total,
        first_peer,
        peers_seen: fetched.peers_seen,
        peers_connected: fetched.peers_connected,
        queries_sent: stats.queries_out.total(),
        get_peers_sent: stats.queries_out.get_peers,
        responses: stats.responses_in,
        unanswered: stats.transactions_in_flight,
    }
}

async fn libtorrent_round(swarm: &mut LibtorrentSwarm, info_hash: &str, ip: IpAddr) -> Lt {
    let started = Instant::now();
    let session = swarm.fresh_session(&ip.to_string()).await;
    swarm.find(session, info_hash).await;
    let elapsed_s = swarm.expect_metadata(info_hash).await;
    let total = started.elapsed();
    // It would go on to download the 64 MiB and seed; keep the swarm the
    // same for every round.
    swarm.remove(session, info_hash).await;
    Lt {
        find_to_metadata: Duration::from_secs_f64(elapsed_s),
        total,
    }
}

/// Whether aria2c runs, installing it with apt-get if it is missing.
fn aria2_available() -> bool {
    let runs = || {
        std::process::Command::new("aria2c")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs() {
        return true;
    }
    eprintln!("aria2c missing: apt-get install -y aria2");
    let _ = std::process::Command::new("apt-get")
        .args(["install", "-y", "aria2"])
        .stdout(Stdio::null())
        .status();
    runs()
}

/// A port free on `ip` now, for TCP and for UDP.
fn free_port(ip: IpAddr, udp: bool) -> u16 {
    let addr = SocketAddr::new(ip, 0);
    if udp {
        std::net::UdpSocket::bind(addr)
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind(addr)
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// A `.torrent` in `dir` that parses and has `expected`'s info-hash.
fn saved_torrent(dir: &Path, expected: &Metainfo) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "torrent") {
            let parsed = std::fs::read(&path)
                .ok()
                .and_then(|bytes| Metainfo::from_bytes(&bytes).ok());
            if parsed.is_some_and(|m| m.raw_info() == expected.raw_info()) {
                return Some(path);
            }
        }
    }
    None
}

async fn aria2_round(swarm: &LibtorrentSwarm, expected: &Metainfo, ip: IpAddr) -> Option<Duration> {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = std::fs::File::create(dir.path().join("aria2c.log")).expect("log file");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let magnet = format!("magnet:?xt=urn:btih:{}", expected.info_hash().to_hex());
    let args = [
        "--no-conf=true".to_string(),
        "--enable-dht=true".into(),
        "--enable-dht6=false".into(),
        format!("--dht-entry-point={}", swarm.nodes[1]),
        format!("--dht-file-path={}", dir.path().join("dht.dat").display()),
        format!("--dht-listen-port={}", free_port(ip, true)),
        format!("--listen-port={}", free_port(ip, false)),
        format!("--interface={ip}"),
        "--bt-enable-lpd=false".into(),
        "--enable-peer-exchange=false".into(),
        "--seed-time=0".into(),
        "--bt-metadata-only=true".into(),
        "--bt-save-metadata=true".into(),
        format!("--dir={}", out.display()),
        "--summary-interval=0".into(),
        "--console-log-level=warn".into(),
        magnet,
    ];
    let started = Instant::now();
    let mut child = tokio::process::Command::new("aria2c")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn aria2c");
    let found = tokio::time::timeout(ARIA2_TIMEOUT, async {
        loop {
            if saved_torrent(&out, expected).is_some() {
                return started.elapsed();
            }
            tokio::time::sleep(ARIA2_POLL).await;
        }
    })
    .await
    .ok();
    let _ = child.kill().await;
    if found.is_none() {
        let log = std::fs::read_to_string(dir.path().join("aria2c.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        println!(
            "aria2c on {ip}: no metadata within {} s; round left out (last output: {:?})",
            ARIA2_TIMEOUT.as_secs(),
            tail
        );
    }
    found
}

fn median(mut values: Vec<Duration>) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    })
}

fn median_u(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn ms_opt(d: Option<Duration>) -> String {
    d.map(ms).unwrap_or_else(|| "-".into())
}

/// One line of the table.
fn row(label: &str, cells: [String; 10]) {
    println!(
        "{:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9}",
        label,
        cells[0],
        cells[1],
        cells[2],
        cells[3],
        cells[4],
        cells[5],
        cells[6],
        cells[7],
        cells[8],
        cells[9]
    );
}

fn print_report(results: &[Round], aria2_ran: bool) {
    println!();
    println!(
        "{:>5} {:>29} {:>19} {:>9} {:>37}",
        "",
        "---------- ours ms ----------",
        "-- libtorrent ms --",
        "aria2c",
        "------------ ours counts ------------"
    );
    row(
        "round",
        [
            "total",
            "1st peer",
            "fetch",
            "find→meta",
            "total",
            "ms",
            "peers",
            "queries",
            "get_peers",
            "no answer",
        ]
        .map(String::from),
    );
    let counts = |o: &Ours| {
        [
            format!("{}/{}", o.peers_connected, o.peers_seen),
            o.queries_sent.to_string(),
            o.get_peers_sent.to_string(),
            o.unanswered.to_string(),
        ]
    };
    for (i, r) in results.iter().enumerate() {
        let [peers, queries, get_peers, unanswered] = counts(&r.ours);
        row(
            &(i + 1).to_string(),
            [
                ms(r.ours.total),
                ms(r.ours.first_peer),
                ms(r.ours.total - r.ours.first_peer),
                ms(r.lt.find_to_metadata),
                ms(r.lt.total),
                ms_opt(r.aria2),
                peers,
                queries,
                get_peers,
                unanswered,
            ],
        );
    }
    let med = |f: &dyn Fn(&Round) -> Duration| median(results.iter().map(f).collect()).unwrap();
    let med_u = |f: &dyn Fn(&Ours) -> u64| median_u(results.iter().map(|r| f(&r.ours)).collect());
    let ours = med(&|r| r.ours.total);
    let lt = med(&|r| r.lt.find_to_metadata);
    let lt_total = med(&|r| r.lt.total);
    let aria2 = median(results.iter().filter_map(|r| r.aria2).collect());
    row(
        "med",
        [
            ms(ours),
            ms(med(&|r| r.ours.first_peer)),
            ms(med(&|r| r.ours.total - r.ours.first_peer)),
            ms(lt),
            ms(lt_total),
            ms_opt(aria2),
            format!(
                "{}/{}",
                med_u(&|o| o.peers_connected as u64),
                med_u(&|o| o.peers_seen as u64)
            ),
            med_u(&|o| o.queries_sent).to_string(),
            med_u(&|o| o.get_peers_sent).to_string(),
            med_u(&|o| o.unanswered as u64).to_string(),
        ],
    );
    println!();
    println!(
        "ours: Dht::start + start_bootstrap + fetch_metadata at once (as `trackerless metadata` does), to \
         verified metadata; 1st peer = when the first peer address arrived. peers = connected/heard of; \
         queries = every KRPC query our node sent, bootstrap included (median {} answers); no answer = \
         queries still unanswered at the end",
        med_u(&|o| o.responses)
    );
    println!(
        "libtorrent: find→meta is the harness's elapsed_s (find command to metadata_received_alert); the \
         fresh session was started and told the {SWARM_SIZE} nodes just before, so most of its DHT \
         bootstrap is NOT in it. total = from sending fresh_session to reading the metadata event (session \
         start, DHT bootstrap and the JSON pipe included)"
    );
    let aria2_finished = results.iter().filter(|r| r.aria2.is_some()).count();
    if aria2_ran && aria2_finished < results.len() {
        println!(
            "aria2c: {} of {} rounds finished within {} s; the others are left out",
            aria2_finished,
            results.len(),
            ARIA2_TIMEOUT.as_secs()
        );
    }
    let (best, best_name) = match aria2 {
        Some(a) if a < lt => (a, "aria2c"),
        _ => (lt, "libtorrent find→meta"),
    };
    println!(
        "ratio ours/min(libtorrent, aria2) = {:.4} (target <= 0.50); the faster is {} at {} ms",
        ours.as_secs_f64() / best.as_secs_f64(),
        best_name,
        ms(best)
    );
    println!(
        "ratio ours/libtorrent total = {:.4}",
        ours.as_secs_f64() / lt_total.as_secs_f64()
    );
}
