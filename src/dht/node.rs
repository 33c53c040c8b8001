//! The DHT node: a sans-IO state machine that answers queries, keeps the
//! routing table and runs lookups and announces. See the crate docs for the
//! driving contract (`handle_*`, `poll_*`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use super::config::Config;
use super::lookup::{Lookup, LookupKind, LookupParams, Responder};
use super::peer_store::{PeerStore, PeerStoreLimits};
use super::routing::{InsertOutcome, RoutingLimits, RoutingTable};
use super::rtt::RttEstimator;
use super::stats::Stats;
use super::tokens::TokenIssuer;
use crate::time::Timestamp;
use crate::wire::compact::{NODE_V4_LEN, NODE_V6_LEN, PEER_V4_LEN, PEER_V6_LEN};
use crate::wire::krpc::{
    self, Body, DecodeError, KrpcError, Message, Query, Response, TransactionId, Want, error_code,
};
use crate::wire::{Id, InfoHash, NodeContact, NodeId};

/// Bytes of a get_peers reply besides its nodes and values: `t` (up to 16),
/// `y`, `r`, `id`, `token`, `ip` (IPv6), `v` and the bencode framing.
const REPLY_FIXED_BYTES_MAX: usize = 160;
/// Bencode framing of a `nodes` or `nodes6` key and its length prefix.
const NODES_KEY_OVERHEAD: usize = 12;

/// How often announced peers are swept for expiry.
const PEER_EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

/// Identifies a command given to the node (lookup, announce, ping); events
/// about it carry the same ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Which port an announce advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnouncePort {
    /// This TCP port.
    Explicit(u16),
    /// The UDP source port the DHT node sends from (`implied_port`, BEP 5).
    Implied,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// The encoded KRPC message.
    pub bytes: Vec<u8>,
}

/// What a finished lookup found and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupSummary {
    /// The target (node ID or info-hash).
    pub target: Id,
    /// The closest nodes that answered, closest first (at most k), with tokens.
    pub closest: Vec<Responder>,
    /// Distinct nodes queried (each once, so also the queries sent).
    pub queried: usize,
    /// Rounds: the round trips it took to learn of the closest responder.
    pub hops: usize,
    /// Answers received.
    pub responses: usize,
    /// Queries that timed out or got an error.
    pub failures: usize,
    /// Distinct peers found.
    pub peers: usize,
    /// From start to the first peer.
    pub time_to_first_peer: Option<Duration>,
    /// From start to completion.
    pub elapsed: Duration,
}

/// Something the node reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// New peers for a lookup or announce, as they arrive.
    Peers {
        /// The lookup or announce.
        request: RequestId,
        /// Peers not reported before for this request.
        peers: Vec<SocketAddr>,
    },
    /// A lookup finished.
    LookupDone {
        /// The lookup.
        request: RequestId,
        /// Its result.
        summary: LookupSummary,
    },
    /// An announce finished: its lookup ran and announce_peer went out.
    AnnounceDone {
        /// The announce.
        request: RequestId,
        /// The get_peers lookup that preceded the announce.
        summary: LookupSummary,
        /// Nodes that acknowledged our announce_peer.
        stored: usize,
        /// Nodes we sent announce_peer to.
        tried: usize,
    },
    /// A ping was answered (`Some` with the node's ID) or not (`None`).
    Pong {
        /// The ping.
        request: RequestId,
        /// Who was pinged.
        addr: SocketAddr,
        /// The node's ID if it answered.
        id: Option<NodeId>,
    },
    /// A bootstrap round finished and reached at least one node.
    Bootstrapped {
        /// Nodes in the routing table now.
        nodes: usize,
    },
    /// A bootstrap round reached nobody; another starts after `retry_in`.
    BootstrapFailed {
        /// Wait before the next attempt.
        retry_in: Duration,
    },
}

/// Why a command was refused. All are local limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `lookups_max` lookups are running.
    #[error("too many lookups running")]
    TooManyLookups,
    /// `transactions_max` queries are in flight.
    #[error("too many queries in flight")]
    TooManyTransactions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    User,
    Announce(AnnouncePort),
    Bootstrap,
    Refresh(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Searching,
    Announcing {
        pending: usize,
        stored: usize,
        tried: usize,
    },
}

struct LookupTask {
    lookup: Lookup,
    purpose: Purpose,
    phase: Phase,
    summary: Option<LookupSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransactionPurpose {
    Lookup(RequestId),
    Announce(RequestId),
    Ping(Option<RequestId>),
}

struct Transaction {
    to: SocketAddr,
    sent_at: Timestamp,
    deadline: Timestamp,
    purpose: TransactionPurpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BootstrapState {
    Idle,
    Running(RequestId),
    Waiting(Timestamp),
}

struct Announcement {
    port: AnnouncePort,
    next_at: Timestamp,
}

/// A Mainline DHT node (BEP 5) as a pure state machine.
pub struct DhtNode {
    config: Config,
    id: NodeId,
    rng: StdRng,
    routing: RoutingTable,
    tokens: TokenIssuer,
    next_token_rotation: Timestamp,
    peer_store: PeerStore,
    next_peer_expiry: Timestamp,
    transactions: HashMap<u32, Transaction>,
    deadlines: BinaryHeap<Reverse<(Timestamp, u32)>>,
    lookups: BTreeMap<RequestId, LookupTask>,
    next_request: u64,
    routers: Vec<SocketAddr>,
    bootstrap_state: BootstrapState,
    bootstrap_backoff: Duration,
    announcements: BTreeMap<InfoHash, Announcement>,
    verifying: HashSet<SocketAddr>,
    rtt: RttEstimator,
    next_maintenance: Timestamp,
    outbox: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl DhtNode {
    /// A node with an empty routing table.
    pub fn new(config: Config, now: Timestamp) -> DhtNode {
        let mut rng = StdRng::seed_from_u64(config.rng_seed);
        let id = config.node_id.unwrap_or_else(|| Id::random(&mut rng));
        let routing = RoutingTable::new(
            id,
            RoutingLimits {
                bucket_size: config.bucket_size,
                far_bucket_sizes: config.far_bucket_sizes.clone(),
                replacement_cache_size: config.replacement_cache_size,
                node_questionable_after: config.node_questionable_after,
                node_failures_max: config.node_failures_max,
            },
        );
        let tokens = TokenIssuer::new(random_secret(&mut rng));
        let peer_store = PeerStore::new(PeerStoreLimits {
            info_hashes_max: config.info_hashes_max,
            peers_per_info_hash_max: config.peers_per_info_hash_max,
            peer_ttl: config.peer_ttl,
        });
        DhtNode {
            next_token_rotation: now + config.token_rotation_interval,
            next_peer_expiry: now + PEER_EXPIRY_INTERVAL,
            next_maintenance: now + config.maintenance_interval,
            bootstrap_backoff: config.bootstrap_retry_min,
            config,
            id,
            rng,
            routing,
            tokens,
            peer_store,
            transactions: HashMap::new(),
            deadlines: BinaryHeap::new(),
            lookups: BTreeMap::new(),
            next_request: 1,
            routers: Vec::new(),
            bootstrap_state: BootstrapState::Idle,
            announcements: BTreeMap::new(),
            verifying: HashSet::new(),
            rtt: RttEstimator::default(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Our node ID.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The routing table, for inspection and for saving its nodes.
    pub fn routing_table(&self) -> &RoutingTable {
        &self.routing
    }

    /// Counters and table sizes now.
    pub fn stats(&self, now: Timestamp) -> Stats {
        let mut stats = self.stats.clone();
        stats.routing_table_nodes = self.routing.len();
        stats.routing_table_good = self.routing.good_count(now);
        stats.routing_table_buckets = self.routing.bucket_count();
        stats.info_hashes_stored = self.peer_store.info_hash_count();
        stats.peers_stored = self.peer_store.peer_count();
        stats.transactions_in_flight = self.transactions.len();
        stats
    }

    /// Adds nodes remembered from an earlier run. They count as questionable
    /// until they answer; the next bootstrap queries them first.
    pub fn restore_nodes(&mut self, now: Timestamp, nodes: impl IntoIterator<Item = NodeContact>) {
        for node in nodes {
            let _ = self.routing.insert(now, node, false);
        }
    }

    /// Joins the network: a lookup of our own ID seeded with the routing
    /// table and `routers`, then a refresh of every bucket. If nobody
    /// answers, it is retried with exponential backoff. `routers` replaces
    /// any earlier list.
    pub fn bootstrap(&mut self, now: Timestamp, routers: Vec<SocketAddr>) {
        self.routers = routers;
        self.bootstrap_backoff = self.config.bootstrap_retry_min;
        if !matches!(self.bootstrap_state, BootstrapState::Running(_)) {
            self.start_bootstrap(now);
        }
    }

    /// Starts a lookup for `target`. Peers (get_peers) stream as
    /// [`Event::Peers`], the end comes as [`Event::LookupDone`].
    pub fn start_lookup(
        &mut self,
        now: Timestamp,
        target: Id,
        kind: LookupKind,
    ) -> Result<RequestId, CommandError> {
        self.start_lookup_task(now, target, kind, Purpose::User)
    }

    /// Announces that we have peers for `info_hash` on `port`: a get_peers
    /// lookup, then announce_peer to the closest nodes that gave a token.
    /// With `repeat`, the node announces again every `reannounce_interval`
    /// until [`stop_announcing`](Self::stop_announcing).
    pub fn start_announce(
        &mut self,
        now: Timestamp,
        info_hash: InfoHash,
        port: AnnouncePort,
        repeat: bool,
    ) -> Result<RequestId, CommandError> {
        if repeat {
            self.announcements.insert(
                info_hash,
                Announcement {
                    port,
                    next_at: now + self.config.reannounce_interval,
                },
            );
        }
        self.start_lookup_task(
            now,
            info_hash,
            LookupKind::GetPeers,
            Purpose::Announce(port),
        )
    }

    /// Stops re-announcing `info_hash`.
    pub fn stop_announcing(&mut self, info_hash: &InfoHash) {
        self.announcements.remove(info_hash);
    }

    /// Pings `addr`; the answer comes as [`Event::Pong`]. A node that answers
    /// is added to the routing table.
    pub fn ping(&mut self, now: Timestamp, addr: SocketAddr) -> Result<RequestId, CommandError> {
        let request = self.next_request_id();
        let query = Query::Ping { id: self.id };
        self.send_query(now, addr, query, TransactionPurpose::Ping(Some(request)))
            .ok_or(CommandError::TooManyTransactions)?;
        Ok(request)
    }

    /// Feeds one received datagram. Never fails: bad input is counted and dropped.
    pub fn handle_datagram(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) {
        self.stats.packets_in += 1;
        self.stats.bytes_in += datagram.len() as u64;
        if datagram.len() > self.config.datagram_size_max {
            self.stats.dropped.oversized += 1;
            return;
        }
        let message = match krpc::decode(datagram) {
            Ok(message) => message,
            Err(error) => {
                self.count_decode_error(&error);
                if let Some(transaction_id) = krpc::query_transaction_id(datagram) {
                    self.send_error(
                        from,
                        transaction_id,
                        error_code::PROTOCOL,
                        &error.to_string(),
                    );
                }
                return;
            }
        };
        match message.body {
            Body::Query(query) => {
                self.handle_query(now, from, message.transaction_id, query, message.read_only)
            }
            Body::Response(response) => {
                self.handle_response(now, from, message.transaction_id, response)
            }
            Body::Error(error) => self.handle_error(now, from, message.transaction_id, error),
        }
    }

    /// Advances timers: query timeouts, soft timeouts of lookups, maintenance.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(Reverse((deadline, key))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let expired = self
                .transactions
                .get(&key)
                .is_some_and(|t| t.deadline == deadline);
            if expired && let Some(transaction) = self.transactions.remove(&key) {
                self.stats.timeouts += 1;
                if let Some(replacement) = self.routing.record_failure(&transaction.to) {
                    self.verify(now, replacement);
                }
                self.fail_transaction(now, transaction);
            }
        }
        let running: Vec<RequestId> = self.lookups.keys().copied().collect();
        let (soft, hard) = self.lookup_timeouts();
        for request in running {
            if let Some(task) = self.lookups.get_mut(&request) {
                if self.config.adaptive_timeouts {
                    task.lookup.set_timeouts(soft, hard);
                }
                task.lookup.on_tick(now);
            }
            self.drive_lookup(now, request);
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now + self.config.maintenance_interval;
            self.maintain(now);
        }
    }

    /// The next datagram to send, if any. Drain after every input.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next event, if any. Drain after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Timestamp {
        let mut next = self.next_maintenance;
        if let Some(Reverse((deadline, _))) = self.deadlines.peek() {
            next = next.min(*deadline);
        }
        for task in self.lookups.values() {
            if let Some(deadline) = task.lookup.next_deadline() {
                next = next.min(deadline);
            }
        }
        next
    }

    fn handle_query(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        transaction_id: TransactionId,
        query: Query,
        read_only: bool,
    ) {
        self.stats.queries_in.bump(query.method_name());
        if let Some(sender) = query.sender_id() {
            if sender == self.id {
                self.stats.dropped.own_id += 1;
                return;
            }
            let contact = NodeContact {
                id: sender,
                addr: from,
            };
            // Only nodes that answer our own queries enter the table: a node
            // that merely queried us is pinged first if it would fit.
            if !read_only
                && !self.routing.record_query(now, &contact)
                && self.routing.has_room_for(&contact)
            {
                self.verify(now, contact);
            }
        }
        let response = match query {
            Query::Ping { .. } => Response {
                id: self.id,
                ..Response::default()
            },
            Query::FindNode { target, want, .. } => {
                let (nodes, nodes6) = self.nodes_for_reply(now, &target, from, want);
                Response {
                    id: self.id,
                    nodes,
                    nodes6,
                    ..Response::default()
                }
            }
            Query::GetPeers {
                info_hash, want, ..
            } => {
                let (nodes, nodes6) = self.nodes_for_reply(now, &info_hash, from, want);
                let values = self.peers_for_reply(now, &info_hash, from, nodes.len(), nodes6.len());
                Response {
                    id: self.id,
                    nodes,
                    nodes6,
                    values,
                    token: Some(self.tokens.issue(&from.ip()).to_vec()),
                }
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                ..
            } => {
                if !self.tokens.check(&from.ip(), &token) {
                    self.stats.dropped.bad_token += 1;
                    self.send_error(from, transaction_id, error_code::PROTOCOL, "bad token");
                    return;
                }
                let port = if implied_port { from.port() } else { port };
                self.peer_store
                    .announce(now, info_hash, SocketAddr::new(from.ip(), port));
                Response {
                    id: self.id,
                    ..Response::default()
                }
            }
            Query::Unknown { .. } => {
                self.send_error(
                    from,
                    transaction_id,
                    error_code::METHOD_UNKNOWN,
                    "method unknown",
                );
                return;
            }
        };
        self.send_message(
            from,
            Message {
                transaction_id,
                body: Body::Response(response),
                client_version: Some(self.config.client_version.to_vec()),
                requester_addr: Some(from),
                read_only: false,
            },
        );
    }

    /// The closest nodes for a reply: IPv4 ones for `nodes`, IPv6 ones for
    /// `nodes6` (BEP 32), for the families the querier wants (by default
    /// the family it asked over).
    fn nodes_for_reply(
        &self,
        now: Timestamp,
        target: &Id,
        from: SocketAddr,
        want: Option<Want>,
    ) -> (Vec<NodeContact>, Vec<NodeContact>) {
        let want = want.unwrap_or(Want {
            ipv4: from.is_ipv4(),
            ipv6: from.is_ipv6(),
        });
        let k = self.config.bucket_size;
        let family = |ipv6: bool| {
            self.routing
                .closest_matching(now, target, k, |c| c.addr.is_ipv6() == ipv6)
        };
        let nodes = if want.ipv4 { family(false) } else { Vec::new() };
        let nodes6 = if want.ipv6 { family(true) } else { Vec::new() };
        (nodes, nodes6)
    }

    /// Stored peers of the querier's address family, as many as fit in one
    /// datagram next to the nodes (and at most `peers_per_reply_max`).
    fn peers_for_reply(
        &mut self,
        now: Timestamp,
        info_hash: &InfoHash,
        from: SocketAddr,
        nodes: usize,
        nodes6: usize,
    ) -> Vec<SocketAddr> {
        let ipv6 = from.is_ipv6();
        let node_bytes = nodes * NODE_V4_LEN + nodes6 * NODE_V6_LEN + 2 * NODES_KEY_OVERHEAD;
        let value_bytes = if ipv6 {
            PEER_V6_LEN + 3
        } else {
            PEER_V4_LEN + 2
        };
        let room = self
            .config
            .datagram_size_max
            .saturating_sub(REPLY_FIXED_BYTES_MAX + node_bytes)
            / value_bytes;
        let count = room.min(self.config.peers_per_reply_max);
        self.peer_store
            .peers(now, info_hash, count, ipv6, &mut self.rng)
    }

    fn handle_response(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        transaction_id: TransactionId,
        response: Response,
    ) {
        let Some(transaction) = self.take_transaction(from, transaction_id) else {
            return;
        };
        self.stats.responses_in += 1;
        self.rtt.record(now.saturating_since(transaction.sent_at));
        if response.id == self.id {
            self.stats.dropped.own_id += 1;
            self.fail_transaction(now, transaction);
            return;
        }
        let contact = NodeContact {
            id: response.id,
            addr: from,
        };
        if let InsertOutcome::Cached {
            ping: Some(questionable),
        } = self.routing.record_response(now, contact)
        {
            self.verify(now, questionable);
        }
        match transaction.purpose {
            TransactionPurpose::Lookup(request) => {
                let Some(task) = self.lookups.get_mut(&request) else {
                    return;
                };
                // IPv6 nodes are only reachable if we asked over IPv6.
                let mut nodes = response.nodes;
                if from.is_ipv6() {
                    nodes.extend(response.nodes6);
                }
                let peers = task.lookup.on_response(
                    now,
                    from,
                    response.id,
                    &nodes,
                    &response.values,
                    response.token,
                );
                if !peers.is_empty() {
                    self.events.push_back(Event::Peers { request, peers });
                }
                self.drive_lookup(now, request);
            }
            TransactionPurpose::Announce(request) => self.announce_answered(request, true),
            TransactionPurpose::Ping(Some(request)) => self.events.push_back(Event::Pong {
                request,
                addr: from,
                id: Some(response.id),
            }),
            TransactionPurpose::Ping(None) => {
                self.verifying.remove(&from);
            }
        }
    }

    fn handle_error(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        transaction_id: TransactionId,
        error: KrpcError,
    ) {
        let Some(transaction) = self.take_transaction(from, transaction_id) else {
            return;
        };
        self.stats.errors_in += 1;
        tracing::debug!(%from, code = error.code, message = %error.message, "KRPC error");
        self.fail_transaction(now, transaction);
    }

    /// Removes and returns the transaction a response belongs to, checking
    /// that it came from the address we asked.
    fn take_transaction(
        &mut self,
        from: SocketAddr,
        transaction_id: TransactionId,
    ) -> Option<Transaction> {
        let key = <[u8; 4]>::try_from(transaction_id.as_bytes())
            .ok()
            .map(u32::from_be_bytes);
        let Some(key) = key.filter(|k| self.transactions.contains_key(k)) else {
            self.stats.dropped.unexpected_response += 1;
            return None;
        };
        if self.transactions.get(&key).is_some_and(|t| t.to != from) {
            self.stats.dropped.address_mismatch += 1;
            return None;
        }
        self.transactions.remove(&key)
    }

    fn fail_transaction(&mut self, now: Timestamp, transaction: Transaction) {
        match transaction.purpose {
            TransactionPurpose::Lookup(request) => {
                if let Some(task) = self.lookups.get_mut(&request) {
                    task.lookup.on_failure(transaction.to);
                    self.drive_lookup(now, request);
                }
            }
            TransactionPurpose::Announce(request) => self.announce_answered(request, false),
            TransactionPurpose::Ping(Some(request)) => self.events.push_back(Event::Pong {
                request,
                addr: transaction.to,
                id: None,
            }),
            TransactionPurpose::Ping(None) => {
                self.verifying.remove(&transaction.to);
            }
        }
    }

    fn start_lookup_task(
        &mut self,
        now: Timestamp,
        target: Id,
        kind: LookupKind,
        purpose: Purpose,
    ) -> Result<RequestId, CommandError> {
        if self.lookups.len() >= self.config.lookups_max {
            return Err(CommandError::TooManyLookups);
        }
        let request = self.next_request_id();
        let known = self
            .routing
            .closest(now, &target, self.config.lookup_candidates_max);
        let seeds = if purpose == Purpose::Bootstrap {
            self.routers.clone()
        } else if known.is_empty() {
            // Nothing in the table yet: ask the routers rather than nobody.
            self.routers.clone()
        } else {
            Vec::new()
        };
        let (soft_timeout, hard_timeout) = self.lookup_timeouts();
        let params = LookupParams {
            bucket_size: self.config.bucket_size,
            parallelism: self.config.lookup_parallelism,
            soft_timeout,
            hard_timeout,
            count_window_only: self.config.lookup_count_window_only,
            candidates_max: self.config.lookup_candidates_max,
            peers_max: self.config.lookup_peers_max,
        };
        let lookup = Lookup::new(now, self.id, target, kind, params, known, seeds);
        self.stats.lookups_started += 1;
        self.lookups.insert(
            request,
            LookupTask {
                lookup,
                purpose,
                phase: Phase::Searching,
                summary: None,
            },
        );
        self.drive_lookup(now, request);
        Ok(request)
    }

    /// The soft and hard timeouts for a lookup starting now.
    fn lookup_timeouts(&self) -> (Duration, Duration) {
        let config = &self.config;
        let fixed = (config.lookup_soft_timeout, config.lookup_hard_timeout);
        if !config.adaptive_timeouts {
            return fixed;
        }
        let Some(rtt) = self.rtt.quantile(config.lookup_soft_timeout_quantile) else {
            return fixed;
        };
        let soft_max = config
            .lookup_soft_timeout_max
            .max(config.lookup_soft_timeout_min);
        let soft = rtt.clamp(config.lookup_soft_timeout_min, soft_max);
        let hard = (soft * 4).min(config.lookup_hard_timeout).max(soft);
        (soft, hard)
    }

    /// Sends the queries a lookup wants now and finishes it when it is done.
    fn drive_lookup(&mut self, now: Timestamp, request: RequestId) {
        if self.config.adaptive_timeouts {
            let (soft, hard) = self.lookup_timeouts();
            if let Some(task) = self.lookups.get_mut(&request) {
                task.lookup.set_timeouts(soft, hard);
            }
        }
        loop {
            let Some(task) = self.lookups.get_mut(&request) else {
                return;
            };
            if task.phase != Phase::Searching {
                return;
            }
            if self.transactions.len() >= self.config.transactions_max {
                // The lookup resumes on the next timeout, when slots free up.
                self.stats.dropped.transactions_full += 1;
                break;
            }
            let Some(addr) = task.lookup.poll_query(now) else {
                break;
            };
            let target = task.lookup.target();
            let query = match task.lookup.kind() {
                LookupKind::FindNode => Query::FindNode {
                    id: self.id,
                    target,
                    want: None,
                },
                LookupKind::GetPeers => Query::GetPeers {
                    id: self.id,
                    info_hash: target,
                    want: None,
                },
            };
            if self
                .send_query(now, addr, query, TransactionPurpose::Lookup(request))
                .is_none()
                && let Some(task) = self.lookups.get_mut(&request)
            {
                task.lookup.on_failure(addr);
            }
        }
        if self
            .lookups
            .get(&request)
            .is_some_and(|t| t.lookup.is_done())
        {
            self.finish_lookup(now, request);
        }
    }

    fn finish_lookup(&mut self, now: Timestamp, request: RequestId) {
        let Some(task) = self.lookups.get(&request) else {
            return;
        };
        let lookup = &task.lookup;
        let summary = LookupSummary {
            target: lookup.target(),
            closest: lookup.closest_responders(),
            queried: lookup.queried_count(),
            hops: lookup.hops(),
            responses: lookup.response_count(),
            failures: lookup.failure_count(),
            peers: lookup.peer_count(),
            time_to_first_peer: lookup
                .first_peer_at()
                .map(|t| t.saturating_since(lookup.started_at())),
            elapsed: now.saturating_since(lookup.started_at()),
        };
        let purpose = task.purpose;
        match purpose {
            Purpose::Announce(port) => {
                self.begin_announcing(now, request, summary, port);
                return;
            }
            Purpose::User => self
                .events
                .push_back(Event::LookupDone { request, summary }),
            Purpose::Bootstrap => self.finish_bootstrap(now, &summary),
            Purpose::Refresh(bucket) => self.routing.touch_bucket(now, bucket),
        }
        if matches!(purpose, Purpose::Bootstrap | Purpose::Refresh(_)) {
            // Nodes heard of but never asked: ping those that would fit, so
            // a joining node's table fills with verified nodes quickly.
            let heard: Vec<NodeContact> = self
                .lookups
                .get(&request)
                .map(|t| t.lookup.unqueried().collect())
                .unwrap_or_default();
            for contact in heard {
                if self.routing.has_room_for(&contact) {
                    self.verify(now, contact);
                }
            }
        }
        self.lookups.remove(&request);
        self.stats.lookups_done += 1;
    }

    fn begin_announcing(
        &mut self,
        now: Timestamp,
        request: RequestId,
        summary: LookupSummary,
        port: AnnouncePort,
    ) {
        let mut tried = 0;
        for responder in &summary.closest {
            let Some(token) = responder.token.clone() else {
                continue;
            };
            let query = Query::AnnouncePeer {
                id: self.id,
                info_hash: summary.target,
                port: match port {
                    AnnouncePort::Explicit(p) => p,
                    AnnouncePort::Implied => 0,
                },
                implied_port: port == AnnouncePort::Implied,
                token,
            };
            if self
                .send_query(
                    now,
                    responder.contact.addr,
                    query,
                    TransactionPurpose::Announce(request),
                )
                .is_some()
            {
                tried += 1;
            }
        }
        if let Some(task) = self.lookups.get_mut(&request) {
            task.phase = Phase::Announcing {
                pending: tried,
                stored: 0,
                tried,
            };
            task.summary = Some(summary);
        }
        self.announce_answered_check(request);
    }

    fn announce_answered(&mut self, request: RequestId, stored_ok: bool) {
        if let Some(task) = self.lookups.get_mut(&request)
            && let Phase::Announcing {
                pending, stored, ..
            } = &mut task.phase
        {
            *pending = pending.saturating_sub(1);
            if stored_ok {
                *stored += 1;
            }
        }
        self.announce_answered_check(request);
    }

    fn announce_answered_check(&mut self, request: RequestId) {
        let finished = matches!(
            self.lookups.get(&request).map(|t| t.phase),
            Some(Phase::Announcing { pending: 0, .. })
        );
        if !finished {
            return;
        }
        if let Some(task) = self.lookups.remove(&request) {
            self.stats.lookups_done += 1;
            if let (Phase::Announcing { stored, tried, .. }, Some(summary)) =
                (task.phase, task.summary)
            {
                self.events.push_back(Event::AnnounceDone {
                    request,
                    summary,
                    stored,
                    tried,
                });
            }
        }
    }

    fn start_bootstrap(&mut self, now: Timestamp) {
        match self.start_lookup_task(now, self.id, LookupKind::FindNode, Purpose::Bootstrap) {
            Ok(request) => {
                if self.lookups.contains_key(&request) {
                    self.bootstrap_state = BootstrapState::Running(request);
                }
            }
            Err(_) => self.bootstrap_state = BootstrapState::Waiting(now + self.bootstrap_backoff),
        }
    }

    fn finish_bootstrap(&mut self, now: Timestamp, summary: &LookupSummary) {
        if summary.responses == 0 {
            let retry_in = self.bootstrap_backoff;
            self.bootstrap_state = BootstrapState::Waiting(now + retry_in);
            self.bootstrap_backoff = (retry_in * 2).min(self.config.bootstrap_retry_max);
            self.events.push_back(Event::BootstrapFailed { retry_in });
            return;
        }
        self.bootstrap_state = BootstrapState::Idle;
        self.bootstrap_backoff = self.config.bootstrap_retry_min;
        self.events.push_back(Event::Bootstrapped {
            nodes: self.routing.len(),
        });
        // Fill the far buckets too: one lookup per bucket, except our own
        // (the bootstrap lookup just covered it).
        let buckets = self.routing.bucket_count();
        for bucket in 0..buckets.saturating_sub(1) {
            self.start_refresh(now, bucket);
        }
    }

    fn start_refresh(&mut self, now: Timestamp, bucket: usize) {
        let already = self
            .lookups
            .values()
            .any(|t| t.purpose == Purpose::Refresh(bucket));
        if already {
            return;
        }
        self.routing.touch_bucket(now, bucket);
        let target = self.id.random_with_prefix(bucket, &mut self.rng);
        let _ = self.start_lookup_task(now, target, LookupKind::FindNode, Purpose::Refresh(bucket));
    }

    fn maintain(&mut self, now: Timestamp) {
        if now >= self.next_token_rotation {
            self.tokens.rotate(random_secret(&mut self.rng));
            self.next_token_rotation = now + self.config.token_rotation_interval;
        }
        if now >= self.next_peer_expiry {
            self.peer_store.expire(now);
            self.next_peer_expiry = now + PEER_EXPIRY_INTERVAL;
        }
        if let BootstrapState::Waiting(at) = self.bootstrap_state
            && now >= at
        {
            self.start_bootstrap(now);
        }
        if self.bootstrap_state == BootstrapState::Idle && !self.routing.is_empty() {
            let stale_before = Timestamp::from_micros(
                now.as_micros()
                    .saturating_sub(self.config.bucket_refresh_interval.as_micros() as u64),
            );
            for bucket in self.routing.stale_buckets(stale_before) {
                self.start_refresh(now, bucket);
            }
        }
        let due: Vec<(InfoHash, AnnouncePort)> = self
            .announcements
            .iter()
            .filter(|(_, a)| now >= a.next_at)
            .map(|(h, a)| (*h, a.port))
            .collect();
        for (info_hash, port) in due {
            if let Some(a) = self.announcements.get_mut(&info_hash) {
                a.next_at = now + self.config.reannounce_interval;
            }
            let _ = self.start_lookup_task(
                now,
                info_hash,
                LookupKind::GetPeers,
                Purpose::Announce(port),
            );
        }
    }

    /// Pings a node we would like in the routing table; its answer puts it there.
    fn verify(&mut self, now: Timestamp, contact: NodeContact) {
        if self.verifying.len() >= self.config.verify_pings_max
            || !self.verifying.insert(contact.addr)
        {
            return;
        }
        let query = Query::Ping { id: self.id };
        if self
            .send_query(now, contact.addr, query, TransactionPurpose::Ping(None))
            .is_none()
        {
            self.verifying.remove(&contact.addr);
        }
    }

    fn send_query(
        &mut self,
        now: Timestamp,
        to: SocketAddr,
        query: Query,
        purpose: TransactionPurpose,
    ) -> Option<u32> {
        if self.transactions.len() >= self.config.transactions_max {
            self.stats.dropped.transactions_full += 1;
            return None;
        }
        let key = loop {
            let candidate: u32 = self.rng.random();
            if !self.transactions.contains_key(&candidate) {
                break candidate;
            }
        };
        let deadline = now + self.config.query_timeout;
        self.transactions.insert(
            key,
            Transaction {
                to,
                sent_at: now,
                deadline,
                purpose,
            },
        );
        self.deadlines.push(Reverse((deadline, key)));
        self.stats.queries_out.bump(query.method_name());
        let transaction_id = TransactionId::new(&key.to_be_bytes())?;
        self.send_message(
            to,
            Message {
                transaction_id,
                body: Body::Query(query),
                client_version: Some(self.config.client_version.to_vec()),
                requester_addr: None,
                read_only: false,
            },
        );
        Some(key)
    }

    fn send_error(
        &mut self,
        to: SocketAddr,
        transaction_id: TransactionId,
        code: i64,
        message: &str,
    ) {
        self.stats.errors_out += 1;
        self.send_message(
            to,
            Message {
                transaction_id,
                body: Body::Error(KrpcError {
                    code,
                    message: message.to_string(),
                }),
                client_version: Some(self.config.client_version.to_vec()),
                requester_addr: Some(to),
                read_only: false,
            },
        );
    }

    fn send_message(&mut self, to: SocketAddr, message: Message) {
        let bytes = message.encode();
        self.stats.packets_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        self.outbox.push_back(Transmit { to, bytes });
    }

    fn count_decode_error(&mut self, error: &DecodeError) {
        match error {
            DecodeError::Bencode(_) => self.stats.dropped.bad_bencode += 1,
            _ => self.stats.dropped.bad_message += 1,
        }
    }

    fn next_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }
}

fn random_secret(rng: &mut impl Rng) -> [u8; 20] {
    let mut secret = [0u8; 20];
    rng.fill_bytes(&mut secret);
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_peers_sent(node: &mut DhtNode) -> usize {
        let mut count = 0;
        while let Some(transmit) = node.poll_transmit() {
            if let Ok(Message {
                body: Body::Query(Query::GetPeers { .. }),
                ..
            }) = krpc::decode(&transmit.bytes)
            {
                count += 1;
            }
        }
        count
    }

    /// Advances time in maintenance-sized steps, as a runtime would.
    fn run_until(node: &mut DhtNode, now: &mut Timestamp, until: Timestamp) -> usize {
        let mut sent = 0;
        while *now < until {
            *now = node
                .poll_timeout()
                .min(until)
                .max(*now + Duration::from_millis(1));
            node.handle_timeout(*now);
            sent += get_peers_sent(node);
            while node.poll_event().is_some() {}
        }
        sent
    }

    #[test]
    fn repeated_announces_are_renewed_until_stopped() {
        let config = Config {
            rng_seed: 5,
            ..Config::default()
        };
        let interval = config.reannounce_interval;
        let mut now = Timestamp::ZERO;
        let mut node = DhtNode::new(config, now);
        node.restore_nodes(
            now,
            [NodeContact {
                id: Id([0x42; 20]),
                addr: "127.0.0.2:6881".parse().unwrap(),
            }],
        );
        let info_hash = Id([0x99; 20]);
        node.start_announce(now, info_hash, AnnouncePort::Explicit(7000), true)
            .unwrap();
        assert_eq!(
            get_peers_sent(&mut node),
            1,
            "the first announce looks up the info-hash"
        );
        let almost = now + (interval - Duration::from_secs(10));
        assert_eq!(
            run_until(&mut node, &mut now, almost),
            0,
            "nothing before the interval"
        );
        let after = now + Duration::from_secs(20);
        assert_eq!(
            run_until(&mut node, &mut now, after),
            1,
            "announced again after the interval"
        );
        node.stop_announcing(&info_hash);
        let much_later = now + interval * 2;
        assert_eq!(run_until(&mut node, &mut now, much_later), 0, "stopped");
    }

    #[test]
    fn a_bootstrap_that_reaches_nobody_is_retried_with_growing_backoff() {
        let config = Config {
            rng_seed: 9,
            ..Config::default()
        };
        let mut now = Timestamp::ZERO;
        let mut node = DhtNode::new(config, now);
        let router: SocketAddr = "127.0.0.9:6881".parse().unwrap();
        node.bootstrap(now, vec![router]);
        let mut retries = Vec::new();
        let mut queries_to_router = 0;
        while now < Timestamp::ZERO + Duration::from_secs(60) {
            while let Some(transmit) = node.poll_transmit() {
                queries_to_router += usize::from(transmit.to == router);
            }
            while let Some(event) = node.poll_event() {
                if let Event::BootstrapFailed { retry_in } = event {
                    retries.push(retry_in);
                }
            }
            now = node.poll_timeout().max(now + Duration::from_millis(1));
            node.handle_timeout(now);
        }
        assert_eq!(
            retries[..3],
            [
                Duration::from_secs(5),
                Duration::from_secs(10),
                Duration::from_secs(20)
            ],
            "backoff doubles"
        );
        assert_eq!(
            queries_to_router,
            retries.len(),
            "one query to the router per round"
        );
        // Meanwhile the node still answers.
        let ping = Message {
            transaction_id: TransactionId::new(b"pp").unwrap(),
            body: Body::Query(Query::Ping { id: Id([1; 20]) }),
            client_version: None,
            requester_addr: None,
            read_only: false,
        };
        node.handle_datagram(now, "127.0.0.7:7000".parse().unwrap(), &ping.encode());
        let answered = std::iter::from_fn(|| node.poll_transmit()).any(|t| {
            matches!(
                krpc::decode(&t.bytes),
                Ok(Message {
                    body: Body::Response(_),
                    ..
                })
            )
        });
        assert!(answered, "the ping got a response");
    }
}
