//! Magnet link to verified metadata: peers stream in from a DHT lookup (and
//! the magnet's `x.pe`), many connections fetch ut_metadata pieces in
//! parallel, the first verified info dictionary wins and everything else
//! is cancelled.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::dht::{Dht, DhtError, LookupEvent, LookupStream};
use super::peer_io::{self, PeerIoError, READ_CHUNK_SIZE};
use crate::peer::{
    AssemblerLimits, Completion, MetadataAssembler, PeerKey, PeerSession, SessionEvent,
};
use crate::time::Timestamp;
use crate::wire::InfoHash;
use crate::wire::magnet::{Magnet, PeerAddress};
use crate::wire::metainfo::{Metainfo, MetainfoError};

/// How a metadata fetch behaves.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Peer connections at once.
    pub connections_max: usize,
    /// Distinct peer addresses remembered; later ones are ignored (a swarm
    /// this large has long since delivered the metadata, or never will).
    pub peers_max: usize,
    /// A TCP connect slower than this is abandoned.
    pub connect_timeout: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// Local IP for peer connections (the DHT's IP, so loopback tests keep apart).
    pub bind_ip: Option<IpAddr>,
    /// Wait after a DHT lookup ends before looking up again.
    pub relookup_interval: Duration,
    /// Size cap, requests per peer, request timeout.
    pub assembler: AssemblerLimits,
}

impl Default for FetchSettings {
    fn default() -> FetchSettings {
        FetchSettings {
            connections_max: 32,
            peers_max: 5000,
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(60),
            bind_ip: None,
            relookup_interval: Duration::from_secs(2),
            assembler: AssemblerLimits::default(),
        }
    }
}

/// Verified metadata and how it was obtained.
#[derive(Debug, Clone)]
pub struct FetchedMetadata {
    /// The torrent, its info-hash checked.
    pub metainfo: Metainfo,
    /// From the start to the first peer address.
    pub time_to_first_peer: Option<Duration>,
    /// From the start to verified metadata.
    pub elapsed: Duration,
    /// Distinct peer addresses heard of.
    pub peers_seen: usize,
    /// Peers we connected to.
    pub peers_connected: usize,
    /// Peers whose data failed the hash check, or who broke the protocol.
    pub peers_dropped: usize,
}

/// Why no metadata came.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The DHT node failed.
    #[error(transparent)]
    Dht(#[from] DhtError),
    /// Nothing verified arrived in time.
    #[error(
        "no verified metadata within {timeout:?} ({peers_seen} peers found, {peers_connected} connected, {peers_dropped} dropped for lying)"
    )]
    Timeout {
        /// The time allowed.
        timeout: Duration,
        /// Peer addresses heard of.
        peers_seen: usize,
        /// Peers connected to.
        peers_connected: usize,
        /// Peers dropped for breaking the protocol or failing the hash check.
        peers_dropped: usize,
    },
    /// The verified metadata is not a valid info dictionary.
    #[error("metadata verified but invalid: {0}")]
    Invalid(#[from] MetainfoError),
}

/// What a peer task tells the fetcher.
enum Report {
    Connected,
    Size(Option<usize>),
    Piece(u32, Vec<u8>),
    Rejected(u32),
    Closed(PeerIoError),
}

/// Fetches and verifies the metadata a magnet link names.
pub async fn fetch_metadata(
    dht: &Dht,
    magnet: &Magnet,
    settings: &FetchSettings,
) -> Result<FetchedMetadata, FetchError> {
    let started = Instant::now();
    let mut fetch = Fetch::new(magnet.info_hash, settings.clone(), started);
    for peer in &magnet.peers {
        match peer {
            PeerAddress::Ip(addr) => fetch.enqueue(*addr),
            PeerAddress::Host { name, port } => {
                if let Ok(addrs) = tokio::net::lookup_host((name.as_str(), *port)).await {
                    for addr in addrs {
                        fetch.enqueue(addr);
                    }
                }
            }
        }
    }
    let mut lookup: Option<LookupStream> = Some(dht.lookup(magnet.info_hash).await?);
    let mut relookup_at: Option<tokio::time::Instant> = None;
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        fetch.spawn_connections();
        tokio::select! {
            event = next_lookup_event(&mut lookup) => match event {
                Some(LookupEvent::Peer(addr)) => fetch.enqueue(addr),
                Some(LookupEvent::Done(_)) | None => {
                    lookup = None;
                    relookup_at = Some(tokio::time::Instant::now() + settings.relookup_interval);
                }
            },
            () = sleep_until_opt(relookup_at) => {
                relookup_at = None;
                lookup = Some(dht.lookup(magnet.info_hash).await?);
            }
            Some((key, report)) = fetch.reports.recv() => {
                if let Some(raw_info) = fetch.on_report(key, report) {
                    let metainfo = Metainfo::from_info_bytes(raw_info)?;
                    return Ok(fetch.finish(metainfo));
                }
            }
            _ = tick.tick() => fetch.refill_all(),
            () = tokio::time::sleep_until(deadline) => {
                return Err(FetchError::Timeout {
                    timeout: settings.timeout,
                    peers_seen: fetch.seen.len(),
                    peers_connected: fetch.connected,
                    peers_dropped: fetch.dropped,
                });
            }
        }
    }
}

async fn next_lookup_event(lookup: &mut Option<LookupStream>) -> Option<LookupEvent> {
    match lookup {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct PeerLink {
    commands: mpsc::Sender<u32>,
}

struct Fetch {
    info_hash: InfoHash,
    settings: FetchSettings,
    started: Instant,
    assembler: MetadataAssembler,
    queue: VecDeque<SocketAddr>,
    seen: HashSet<SocketAddr>,
    links: HashMap<PeerKey, PeerLink>,
    tasks: JoinSet<()>,
    reports: mpsc::Receiver<(PeerKey, Report)>,
    report_sender: mpsc::Sender<(PeerKey, Report)>,
    next_key: PeerKey,
    first_peer: Option<Duration>,
    connected: usize,
    dropped: usize,
}

impl Fetch {
    fn new(info_hash: InfoHash, settings: FetchSettings, started: Instant) -> Fetch {
        let (report_sender, reports) = mpsc::channel(256);
        Fetch {
            info_hash,
            assembler: MetadataAssembler::new(info_hash, settings.assembler),
            settings,
            started,
            queue: VecDeque::new(),
            seen: HashSet::new(),
            links: HashMap::new(),
            tasks: JoinSet::new(),
            reports,
            report_sender,
            next_key: 1,
            first_peer: None,
            connected: 0,
            dropped: 0,
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.started.elapsed().as_micros() as u64)
    }

    fn enqueue(&mut self, addr: SocketAddr) {
        if self.first_peer.is_none() {
            self.first_peer = Some(self.started.elapsed());
        }
        if self.seen.len() < self.settings.peers_max && self.seen.insert(addr) {
            self.queue.push_back(addr);
        }
    }

    fn spawn_connections(&mut self) {
        while self.links.len() < self.settings.connections_max {
            let Some(addr) = self.queue.pop_front() else {
                return;
            };
            let key = self.next_key;
            self.next_key += 1;
            let (commands, receiver) = mpsc::channel(64);
            self.links.insert(key, PeerLink { commands });
            let reports = self.report_sender.clone();
            let info_hash = self.info_hash;
            let bind_ip = self.settings.bind_ip;
            let connect_timeout = self.settings.connect_timeout;
            self.tasks.spawn(async move {
                let result = run_peer(
                    addr,
                    info_hash,
                    bind_ip,
                    connect_timeout,
                    key,
                    &reports,
                    receiver,
                )
                .await;
                let error = result.err().unwrap_or(PeerIoError::Closed);
                let _ = reports.send((key, Report::Closed(error))).await;
            });
        }
    }

    /// Handles one report; returns the verified info dictionary when done.
    fn on_report(&mut self, key: PeerKey, report: Report) -> Option<Vec<u8>> {
        match report {
            Report::Connected => self.connected += 1,
            Report::Size(Some(size)) => match self.assembler.add_peer(key, size) {
                Ok(()) => self.refill(key),
                Err(error) => {
                    tracing::debug!(key, %error, "peer refused for metadata");
                    self.drop_peer(key);
                }
            },
            Report::Size(None) => self.drop_peer(key),
            Report::Piece(piece, data) => match self.assembler.on_piece(key, piece, data) {
                Ok(Completion::Verified(bytes)) => return Some(bytes),
                Ok(Completion::Incomplete) => self.refill(key),
                Ok(Completion::HashMismatch { distrusted }) => {
                    tracing::info!(
                        ?distrusted,
                        "metadata failed the hash check; distrusting its senders"
                    );
                    for peer in distrusted {
                        self.drop_peer(peer);
                    }
                    self.refill_all();
                }
                Err(error) => {
                    tracing::debug!(key, %error, "bad metadata piece");
                    self.drop_peer(key);
                }
            },
            Report::Rejected(piece) => {
                self.assembler.on_reject(key, piece);
                self.refill_all();
            }
            Report::Closed(error) => {
                tracing::debug!(key, %error, "peer connection ended");
                if matches!(error, PeerIoError::Session(_)) && self.links.contains_key(&key) {
                    // It broke the protocol (a lying handshake, a bad piece).
                    self.dropped += 1;
                }
                if self.links.remove(&key).is_some() {
                    self.assembler.remove_peer(key);
                    self.refill_all();
                }
            }
        }
        None
    }

    fn refill(&mut self, key: PeerKey) {
        let now = self.now();
        let Some(link) = self.links.get(&key) else {
            return;
        };
        while let Some(piece) = self.assembler.next_request(now, key) {
            if link.commands.try_send(piece).is_err() {
                self.assembler.on_reject(key, piece);
                break;
            }
        }
    }

    fn refill_all(&mut self) {
        let keys: Vec<PeerKey> = self.links.keys().copied().collect();
        for key in keys {
            self.refill(key);
        }
    }

    fn drop_peer(&mut self, key: PeerKey) {
        if self.links.remove(&key).is_some() {
            self.dropped += 1;
        }
        self.assembler.remove_peer(key);
    }

    fn finish(&mut self, metainfo: Metainfo) -> FetchedMetadata {
        self.tasks.abort_all();
        FetchedMetadata {
            metainfo,
            time_to_first_peer: self.first_peer,
            elapsed: self.started.elapsed(),
            peers_seen: self.seen.len(),
            peers_connected: self.connected,
            peers_dropped: self.dropped,
        }
    }
}

/// One connection: handshake, then request what the fetcher says and report what arrives.
async fn run_peer(
    addr: SocketAddr,
    info_hash: InfoHash,
    bind_ip: Option<IpAddr>,
    connect_timeout: Duration,
    key: PeerKey,
    reports: &mpsc::Sender<(PeerKey, Report)>,
    mut commands: mpsc::Receiver<u32>,
) -> Result<(), PeerIoError> {
    let mut stream: TcpStream = peer_io::connect(addr, bind_ip, connect_timeout).await?;
    let _ = reports.send((key, Report::Connected)).await;
    let mut session = PeerSession::outgoing(peer_io::session_config(None), info_hash, None);
    peer_io::flush(&mut stream, &mut session).await?;
    let mut buffer = vec![0u8; READ_CHUNK_SIZE];
    loop {
        tokio::select! {
            read = peer_io::read_into(&mut stream, &mut session, &mut buffer) => {
                read?;
                while let Some(event) = session.poll_event() {
                    let report = match event {
                        SessionEvent::ExtendedHandshake { metadata_size, ut_metadata, .. } => {
                            Report::Size(metadata_size.filter(|_| ut_metadata))
                        }
                        SessionEvent::MetadataPiece { piece, data } => Report::Piece(piece, data),
                        SessionEvent::MetadataRejected { piece } => Report::Rejected(piece),
                        SessionEvent::Handshake { extensions: false, .. } => Report::Size(None),
                        _ => continue,
                    };
                    if reports.send((key, report)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            command = commands.recv() => match command {
                Some(piece) => session.request_metadata(piece)?,
                None => return Ok(()),
            },
        }
        peer_io::flush(&mut stream, &mut session).await?;
    }
}
