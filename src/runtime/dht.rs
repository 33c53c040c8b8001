//! The tokio shell around [`DhtNode`]: one UDP socket, one task, and a
//! handle to command it.
//!
//! The task owns the socket and the node; nothing is shared or locked. It
//! waits for whichever comes first of a datagram, a command or the node's
//! next timer, feeds it to the node, then sends what the node wants sent and
//! routes its events to whoever asked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::state::{self, DhtState, StateError};
use crate::dht::{
    AnnouncePort, CommandError, Config, DhtNode, Event, LookupKind, LookupSummary, RequestId, Stats,
};
use crate::time::Timestamp;
use crate::wire::{Id, InfoHash, NodeContact, NodeId};

/// The public routers used when no bootstrap list is given.
pub const DEFAULT_ROUTERS: [&str; 4] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
    "dht.libtorrent.org:25401",
];

/// Commands queued to the node task; more wait in the caller.
const COMMAND_QUEUE_MAX: usize = 256;

/// Settings of a running DHT node.
#[derive(Debug, Clone)]
pub struct DhtSettings {
    /// UDP address to bind.
    pub bind: SocketAddr,
    /// `HOST:PORT` entry points. `None` means [`DEFAULT_ROUTERS`]; an explicit
    /// list (even an empty one) replaces them.
    pub bootstrap: Option<Vec<String>>,
    /// Where the node ID and routing table are kept between runs.
    pub state_file: Option<PathBuf>,
    /// How often the state file is rewritten while running (also on shutdown).
    pub state_save_interval: Duration,
    /// The protocol core's settings.
    pub node: Config,
}

impl DhtSettings {
    /// Settings for a node on `bind` with defaults elsewhere and a random seed.
    pub fn new(bind: SocketAddr) -> DhtSettings {
        DhtSettings {
            bind,
            bootstrap: None,
            state_file: None,
            state_save_interval: Duration::from_secs(5 * 60),
            node: Config {
                rng_seed: rand::random(),
                ..Config::default()
            },
        }
    }
}

/// Why a DHT operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DhtError {
    /// The UDP socket could not be bound.
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The state file could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// The node refused the command (a local limit).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The node task has stopped.
    #[error("the DHT node has stopped")]
    Stopped,
}

/// How a bootstrap round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapReport {
    /// Whether any node answered.
    pub reached: bool,
    /// Nodes in the routing table afterwards.
    pub nodes: usize,
    /// Entry points that resolved to an address.
    pub entry_points: usize,
}

/// What an announce achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceReport {
    /// The get_peers lookup before the announce (it also finds other peers).
    pub summary: LookupSummary,
    /// Nodes that acknowledged the announce.
    pub stored: usize,
    /// Nodes the announce was sent to.
    pub tried: usize,
}

/// One item of a lookup's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupEvent {
    /// A peer, reported once.
    Peer(SocketAddr),
    /// The lookup finished; nothing follows.
    Done(LookupSummary),
}

/// The peers of a running lookup, as they arrive.
pub struct LookupStream {
    events: mpsc::UnboundedReceiver<LookupEvent>,
}

impl LookupStream {
    /// The next peer or the final summary; `None` after the summary or if
    /// the node stopped.
    pub async fn next(&mut self) -> Option<LookupEvent> {
        self.events.recv().await
    }
}

/// A handle to a running DHT node. Dropping it (or [`Dht::shutdown`]) stops
/// the node and saves its state.
pub struct Dht {
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    id: NodeId,
    task: JoinHandle<()>,
}

enum Command {
    Bootstrap(oneshot::Sender<BootstrapReport>),
    Lookup {
        target: Id,
        kind: LookupKind,
        events: mpsc::UnboundedSender<LookupEvent>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    FindNode {
        target: Id,
        reply: oneshot::Sender<Result<LookupSummary, CommandError>>,
    },
    Announce {
        info_hash: InfoHash,
        port: AnnouncePort,
        repeat: bool,
        reply: oneshot::Sender<Result<AnnounceReport, CommandError>>,
    },
    Ping {
        addr: SocketAddr,
        reply: oneshot::Sender<Result<Option<NodeId>, CommandError>>,
    },
    Stats(oneshot::Sender<Stats>),
    Nodes(oneshot::Sender<Vec<NodeContact>>),
    Shutdown(oneshot::Sender<()>),
}

enum Waiter {
    Lookup(mpsc::UnboundedSender<LookupEvent>),
    FindNode(oneshot::Sender<Result<LookupSummary, CommandError>>),
    Announce(oneshot::Sender<Result<AnnounceReport, CommandError>>),
    Ping(oneshot::Sender<Result<Option<NodeId>, CommandError>>),
}

impl Dht {
    /// Binds the socket, loads the state file if there is one, and starts
    /// the node task. Call [`bootstrap`](Self::bootstrap) to join the network.
    pub async fn start(settings: DhtSettings) -> Result<Dht, DhtError> {
        let socket = UdpSocket::bind(settings.bind)
            .await
            .map_err(|source| DhtError::Bind {
                addr: settings.bind,
                source,
            })?;
        let local_addr = socket.local_addr().map_err(|source| DhtError::Bind {
            addr: settings.bind,
            source,
        })?;
        let saved = match &settings.state_file {
            Some(path) => state::load(path)?,
            None => None,
        };
        let mut config = settings.node.clone();
        if config.node_id.is_none() {
            config.node_id = saved.as_ref().map(|s| s.node_id);
        }
        let epoch = Instant::now();
        let mut node = DhtNode::new(config, Timestamp::ZERO);
        if let Some(saved) = saved {
            node.restore_nodes(Timestamp::ZERO, saved.nodes);
        }
        let id = node.id();
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE_MAX);
        let actor = Actor {
            node,
            socket,
            epoch,
            settings,
            commands: receiver,
            waiters: HashMap::new(),
            bootstrap_waiters: Vec::new(),
            entry_points: 0,
            next_save: epoch,
        };
        let task = tokio::spawn(actor.run());
        Ok(Dht {
            commands,
            local_addr,
            id,
            task,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our node ID.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Resolves the entry points and runs one bootstrap round. If nobody
    /// answers, the node keeps retrying in the background with backoff.
    pub async fn bootstrap(&self) -> Result<BootstrapReport, DhtError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Bootstrap(reply)).await?;
        answer.await.map_err(|_| DhtError::Stopped)
    }

    /// Starts a bootstrap round and returns at once. Lookups started
    /// meanwhile ask the entry points directly, so a one-shot command (a
    /// magnet, a lookup) need not wait for the whole round, whose end is set
    /// by its slowest or deadest node.
    pub async fn start_bootstrap(&self) -> Result<(), DhtError> {
        let (reply, _ignored) = oneshot::channel();
        self.send(Command::Bootstrap(reply)).await
    }

    /// Starts a get_peers lookup for `info_hash`; peers stream as they arrive.
    pub async fn lookup(&self, info_hash: InfoHash) -> Result<LookupStream, DhtError> {
        // Unbounded in type only: the node reports each peer once and at most
        // `lookup_peers_max` of them, plus one summary, and a bounded channel
        // would let a slow reader stall the node task.
        let (events, receiver) = mpsc::unbounded_channel();
        let (reply, answer) = oneshot::channel();
        self.send(Command::Lookup {
            target: info_hash,
            kind: LookupKind::GetPeers,
            events,
            reply,
        })
        .await?;
        answer.await.map_err(|_| DhtError::Stopped)??;
        Ok(LookupStream { events: receiver })
    }

    /// Finds the nodes closest to `target`.
    pub async fn find_node(&self, target: Id) -> Result<LookupSummary, DhtError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::FindNode { target, reply }).await?;
        Ok(answer.await.map_err(|_| DhtError::Stopped)??)
    }

    /// Announces `info_hash` with `port`; with `repeat`, the node re-announces
    /// every `reannounce_interval` for as long as it runs.
    pub async fn announce(
        &self,
        info_hash: InfoHash,
        port: AnnouncePort,
        repeat: bool,
    ) -> Result<AnnounceReport, DhtError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Announce {
            info_hash,
            port,
            repeat,
            reply,
        })
        .await?;
        Ok(answer.await.map_err(|_| DhtError::Stopped)??)
    }

    /// Pings `addr`; `Some(id)` if it answered within the query timeout.
    pub async fn ping(&self, addr: SocketAddr) -> Result<Option<NodeId>, DhtError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Ping { addr, reply }).await?;
        Ok(answer.await.map_err(|_| DhtError::Stopped)??)
    }

    /// The node's counters now.
    pub async fn stats(&self) -> Result<Stats, DhtError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Stats(reply)).await?;
        answer.await.map_err(|_| DhtError::Stopped)
    }

    /// The routing table's nodes now.
    pub async fn nodes(&self) -> Result<Vec<NodeContact>, DhtError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Nodes(reply)).await?;
        answer.await.map_err(|_| DhtError::Stopped)
    }

    /// Stops the node, saving its state file first.
    pub async fn shutdown(self) {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = answer.await;
        }
        let _ = self.task.await;
    }

    async fn send(&self, command: Command) -> Result<(), DhtError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| DhtError::Stopped)
    }
}

struct Actor {
    node: DhtNode,
    socket: UdpSocket,
    epoch: Instant,
    settings: DhtSettings,
    commands: mpsc::Receiver<Command>,
    waiters: HashMap<RequestId, Waiter>,
    bootstrap_waiters: Vec<oneshot::Sender<BootstrapReport>>,
    entry_points: usize,
    next_save: Instant,
}

impl Actor {
    async fn run(mut self) {
        let mut buffer = vec![0u8; self.settings.node.datagram_size_max + 1];
        self.next_save = Instant::now() + self.settings.state_save_interval;
        let mut shutdown_reply = None;
        loop {
            let wake = self.epoch + Duration::from_micros(self.node.poll_timeout().as_micros());
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok((length, from)) => {
                        let now = self.now();
                        self.node.handle_datagram(now, from, &buffer[..length]);
                    }
                    // ICMP port unreachable from an earlier send surfaces here on Linux.
                    Err(error) => tracing::debug!(%error, "UDP receive error"),
                },
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(command) => self.handle_command(command).await,
                    None => break,
                },
                () = tokio::time::sleep_until(wake.into()) => {
                    let now = self.now();
                    self.node.handle_timeout(now);
                }
            }
            self.flush().await;
            self.dispatch_events();
            if Instant::now() >= self.next_save {
                self.next_save = Instant::now() + self.settings.state_save_interval;
                self.save_state();
            }
        }
        self.save_state();
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    async fn handle_command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Bootstrap(reply) => {
                let routers = self.resolve_entry_points().await;
                self.entry_points = routers.len();
                self.bootstrap_waiters.push(reply);
                let now = self.now();
                self.node.bootstrap(now, routers);
            }
            Command::Lookup {
                target,
                kind,
                events,
                reply,
            } => {
                let started = self.node.start_lookup(now, target, kind);
                if let Ok(request) = started {
                    self.waiters.insert(request, Waiter::Lookup(events));
                }
                let _ = reply.send(started.map(|_| ()));
            }
            Command::FindNode { target, reply } => {
                match self.node.start_lookup(now, target, LookupKind::FindNode) {
                    Ok(request) => {
                        self.waiters.insert(request, Waiter::FindNode(reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Announce {
                info_hash,
                port,
                repeat,
                reply,
            } => match self.node.start_announce(now, info_hash, port, repeat) {
                Ok(request) => {
                    self.waiters.insert(request, Waiter::Announce(reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Ping { addr, reply } => match self.node.ping(now, addr) {
                Ok(request) => {
                    self.waiters.insert(request, Waiter::Ping(reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Stats(reply) => {
                let _ = reply.send(self.node.stats(now));
            }
            Command::Nodes(reply) => {
                let nodes = self
                    .node
                    .routing_table()
                    .entries()
                    .map(|e| e.contact)
                    .collect();
                let _ = reply.send(nodes);
            }
            Command::Shutdown(_) => {}
        }
    }

    /// Resolves `HOST:PORT` entry points to addresses of the socket's family.
    async fn resolve_entry_points(&self) -> Vec<SocketAddr> {
        let names: Vec<String> = match &self.settings.bootstrap {
            Some(list) => list.clone(),
            None => DEFAULT_ROUTERS.iter().map(|s| s.to_string()).collect(),
        };
        let want_v4 = self.settings.bind.is_ipv4();
        let mut out = Vec::new();
        for name in names {
            match tokio::net::lookup_host(name.as_str()).await {
                Ok(addrs) => out.extend(addrs.filter(|a| a.is_ipv4() == want_v4)),
                Err(error) => {
                    tracing::warn!(entry_point = %name, %error, "cannot resolve bootstrap entry point")
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    async fn flush(&mut self) {
        while let Some(transmit) = self.node.poll_transmit() {
            if let Err(error) = self.socket.send_to(&transmit.bytes, transmit.to).await {
                tracing::debug!(to = %transmit.to, %error, "UDP send failed");
            }
        }
    }

    fn dispatch_events(&mut self) {
        while let Some(event) = self.node.poll_event() {
            match event {
                Event::Peers { request, peers } => {
                    if let Some(Waiter::Lookup(events)) = self.waiters.get(&request) {
                        for peer in peers {
                            let _ = events.send(LookupEvent::Peer(peer));
                        }
                    }
                }
                Event::LookupDone { request, summary } => match self.waiters.remove(&request) {
                    Some(Waiter::Lookup(events)) => {
                        let _ = events.send(LookupEvent::Done(summary));
                    }
                    Some(Waiter::FindNode(reply)) => {
                        let _ = reply.send(Ok(summary));
                    }
                    _ => {}
                },
                Event::AnnounceDone {
                    request,
                    summary,
                    stored,
                    tried,
                } => {
                    if let Some(Waiter::Announce(reply)) = self.waiters.remove(&request) {
                        let _ = reply.send(Ok(AnnounceReport {
                            summary,
                            stored,
                            tried,
                        }));
                    }
                }
                Event::Pong { request, id, .. } => {
                    if let Some(Waiter::Ping(reply)) = self.waiters.remove(&request) {
                        let _ = reply.send(Ok(id));
                    }
                }
                Event::Bootstrapped { nodes } => self.finish_bootstrap(true, nodes),
                Event::BootstrapFailed { retry_in } => {
                    tracing::info!(
                        retry_in_s = retry_in.as_secs(),
                        "bootstrap reached nobody; retrying later"
                    );
                    self.finish_bootstrap(false, self.node.routing_table().len());
                }
            }
        }
    }

    fn finish_bootstrap(&mut self, reached: bool, nodes: usize) {
        for waiter in self.bootstrap_waiters.drain(..) {
            let _ = waiter.send(BootstrapReport {
                reached,
                nodes,
                entry_points: self.entry_points,
            });
        }
    }

    fn save_state(&self) {
        let Some(path) = &self.settings.state_file else {
            return;
        };
        let state = DhtState {
            node_id: self.node.id(),
            nodes: self
                .node
                .routing_table()
                .entries()
                .map(|e| e.contact)
                .collect(),
        };
        if let Err(error) = state::save(path, &state) {
            tracing::warn!(%error, "cannot save DHT state");
        }
    }
}
