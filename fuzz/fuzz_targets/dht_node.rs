//! A `DhtNode` driven by a script read from the fuzz input: raw datagrams
//! from a few source addresses, well-formed queries, answers to the node's
//! own queries (with the right transaction ID, so lookups and announces
//! progress), commands, and clock jumps. After every step the node's
//! invariants are checked.
//!
//! Script format: a sequence of operations; the low 3 bits of an operation
//! byte pick it, the bytes after it are its arguments. A script that runs
//! out of bytes simply ends.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use trackerless::dht::{AnnouncePort, Config, DhtNode, Event, LookupKind, RequestId};
use trackerless::time::Timestamp;
use trackerless::wire::krpc::{self, Body, KrpcError, Message, Query, Response, Want};
use trackerless::wire::{Id, NodeContact};

fn main_config() -> Config {
    // Small limits, so the fuzzer reaches them quickly.
    Config {
        rng_seed: 0x00f0_220d,
        bucket_size: 8,
        replacement_cache_size: 2,
        lookup_parallelism: 3,
        lookup_candidates_max: 16,
        lookup_peers_max: 32,
        lookups_max: 4,
        transactions_max: 24,
        info_hashes_max: 4,
        peers_per_info_hash_max: 8,
        peers_per_reply_max: 8,
        verify_pings_max: 4,
        ..Config::default()
    }
}

/// The addresses raw datagrams and queries come from. One IPv6 address
/// (so IPv6 contacts and peers reach the table and the peer store), and two
/// ports on one IP (tokens are per IP).
const SOURCES: [&str; 6] = [
    "192.0.2.1:6881",
    "192.0.2.2:6881",
    "192.0.2.2:7000",
    "198.51.100.9:1",
    "10.0.0.1:65535",
    "[2001:db8::1]:6881",
];

/// Reads the script.
struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(first)
    }

    fn bytes(&mut self, len: usize) -> &'a [u8] {
        let len = len.min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }
}

/// A query the node sent, which the script may answer.
#[derive(Clone)]
struct Sent {
    to: SocketAddr,
    t: Vec<u8>,
}

struct Harness {
    node: DhtNode,
    config: Config,
    now: Timestamp,
    sources: Vec<SocketAddr>,
    /// Queries the node sent, oldest first (bounded).
    sent: Vec<Sent>,
    /// The last datagrams the node sent, for reflection back at it.
    recent: Vec<Vec<u8>>,
    /// Tokens the node gave each IP.
    tokens: HashMap<IpAddr, Vec<u8>>,
    /// Every address the node was told about; it must not send elsewhere.
    known: HashSet<SocketAddr>,
    /// Requests started by a command, and those that got their terminal
    /// event. The node also runs lookups of its own (bootstrap, refresh,
    /// re-announce) whose IDs the owner never sees.
    started: HashSet<RequestId>,
    /// Of those, the ones that look for peers (get_peers lookups, announces).
    wants_peers: HashSet<RequestId>,
    finished: HashSet<RequestId>,
    pings: HashSet<RequestId>,
    packets_in: u64,
    /// While a well-formed query is fed: the address families its reply
    /// may hold contacts of.
    want: Option<Want>,
}

impl Harness {
    fn new() -> Harness {
        let config = main_config();
        let now = Timestamp::from_micros(1_000_000);
        let sources: Vec<SocketAddr> = SOURCES.iter().map(|s| s.parse().unwrap()).collect();
        Harness {
            node: DhtNode::new(config.clone(), now),
            known: sources.iter().copied().collect(),
            config,
            now,
            sources,
            sent: Vec::new(),
            recent: Vec::new(),
            tokens: HashMap::new(),
            started: HashSet::new(),
            wants_peers: HashSet::new(),
            finished: HashSet::new(),
            pings: HashSet::new(),
            packets_in: 0,
            want: None,
        }
    }

    fn source(&self, byte: u8) -> SocketAddr {
        self.sources[usize::from(byte) % self.sources.len()]
    }

    /// A node ID from two script bytes: either near our own ID (sharing a
    /// chosen prefix, so buckets split) or a simple pattern.
    fn id(&self, a: u8, b: u8) -> Id {
        if a & 0x80 != 0 {
            let own = self.node.id();
            let prefix = usize::from(b) % 160;
            let mut out = Id([a.wrapping_mul(31) ^ b; 20]);
            for bit in 0..=prefix {
                let mask = 0x80u8 >> (bit % 8);
                let own_bit = own.0[bit / 8] & mask != 0;
                let set = if bit == prefix { !own_bit } else { own_bit };
                if set {
                    out.0[bit / 8] |= mask;
                } else {
                    out.0[bit / 8] &= !mask;
                }
            }
            out
        } else {
            let mut out = Id([b; 20]);
            out.0[19] = a;
            out
        }
    }

    /// An address for a contact in a response: a source, or one of 64 others.
    fn contact_addr(&self, byte: u8) -> SocketAddr {
        if byte & 0xc0 == 0 {
            self.source(byte)
        } else {
            SocketAddr::new(Ipv4Addr::new(10, 9, 0, byte & 0x3f).into(), 6881)
        }
    }

    fn feed(&mut self, from: SocketAddr, bytes: &[u8]) {
        // Addresses inside the datagram are ones the node may now contact.
        if let Ok(Message {
            body: Body::Response(response),
            ..
        }) = krpc::decode(bytes)
        {
            let contacts = response.nodes.iter().chain(&response.nodes6);
            self.known.extend(contacts.map(|c| c.addr));
        }
        self.packets_in += 1;
        self.node.handle_datagram(self.now, from, bytes);
        self.drain(Some(from));
    }

    fn answer(&mut self, script: &mut Script) {
        if self.sent.is_empty() {
            return;
        }
        let pick = usize::from(script.byte().unwrap_or(0)) % self.sent.len();
        let flags = script.byte().unwrap_or(0);
        let sent = if flags & 0x01 == 0 {
            // Each query is answered once (a replay is an unexpected response).
            self.sent.swap_remove(pick)
        } else {
            self.sent[pick].clone()
        };
        let from = if flags & 0x02 != 0 {
            self.source(script.byte().unwrap_or(0))
        } else {
            sent.to
        };
        let body = if flags & 0x04 != 0 {
            Body::Error(KrpcError {
                code: 201 + i64::from(flags >> 6),
                message: "fuzz".into(),
            })
        } else {
            let (a, b) = (script.byte().unwrap_or(0), script.byte().unwrap_or(0));
            let id = if flags & 0x08 != 0 {
                self.node.id()
            } else {
                self.id(a, b)
            };
            let node_count = usize::from(script.byte().unwrap_or(0) % 10);
            let (nodes, nodes6): (Vec<_>, Vec<_>) = (0..node_count)
                .map(|_| {
                    let (a, b, c) = (
                        script.byte().unwrap_or(0),
                        script.byte().unwrap_or(0),
                        script.byte().unwrap_or(0),
                    );
                    NodeContact {
                        id: self.id(a, b),
                        addr: self.contact_addr(c),
                    }
                })
                .partition(|c| c.addr.is_ipv4());
            let value_count = usize::from(script.byte().unwrap_or(0) % 6);
            let values = (0..value_count)
                .map(|_| {
                    let v = script.byte().unwrap_or(0);
                    SocketAddr::new(Ipv4Addr::new(172, 16, 0, v).into(), 6881)
                })
                .collect();
            let token = (flags & 0x10 != 0).then(|| script.bytes(8).to_vec());
            Body::Response(Response {
                id,
                nodes,
                nodes6,
                values,
                token,
            })
        };
        let message = Message {
            transaction_id: krpc::TransactionId::new(&sent.t).unwrap(),
            body,
            client_version: Some(b"FZ\x00\x01".to_vec()),
            requester_addr: None,
            read_only: flags & 0x20 != 0,
        };
        self.feed(from, &message.encode());
    }

    fn query(&mut self, script: &mut Script) {
        let from = self.source(script.byte().unwrap_or(0));
        let which = script.byte().unwrap_or(0);
        let (a, b) = (script.byte().unwrap_or(0), script.byte().unwrap_or(0));
        let id = if which & 0x80 != 0 {
            self.node.id()
        } else {
            self.id(a, b)
        };
        let target = self.id(b, a);
        // BEP 32 `want` (bits 5 and 6 only matter for announce_peer).
        let want = match which >> 5 & 0x03 {
            0 => None,
            n => Some(Want {
                ipv4: n & 0x01 != 0,
                ipv6: n & 0x02 != 0,
            }),
        };
        let query = match which % 5 {
            0 => Query::Ping { id },
            1 => Query::FindNode { id, target, want },
            2 => Query::GetPeers {
                id,
                info_hash: target,
                want,
            },
            3 => Query::AnnouncePeer {
                id,
                info_hash: target,
                port: u16::from_be_bytes([a, b]).max(1),
                implied_port: which & 0x40 != 0,
                token: if which & 0x20 != 0 {
                    script.bytes(8).to_vec()
                } else {
                    self.tokens.get(&from.ip()).cloned().unwrap_or_default()
                },
            },
            _ => Query::Unknown {
                method: b"vote".to_vec(),
                id: Some(id),
            },
        };
        let t_len = 1 + usize::from(which >> 4 & 0x07);
        let t = [a, b, which, 1, 2, 3, 4, 5];
        let message = Message {
            transaction_id: krpc::TransactionId::new(&t[..t_len]).unwrap(),
            body: Body::Query(query),
            client_version: None,
            requester_addr: None,
            read_only: which & 0x08 != 0,
        };
        // The reply's contacts are of the families asked for (by default
        // the family the query came over).
        self.want = Some(want.unwrap_or(Want {
            ipv4: from.is_ipv4(),
            ipv6: from.is_ipv6(),
        }));
        self.feed(from, &message.encode());
        self.want = None;
    }

    fn command(&mut self, script: &mut Script) {
        let which = script.byte().unwrap_or(0);
        let (a, b) = (script.byte().unwrap_or(0), script.byte().unwrap_or(0));
        let target = self.id(a, b);
        let result = match which % 6 {
            0 => {
                let addr = self.contact_addr(a);
                self.known.insert(addr);
                let result = self.node.ping(self.now, addr);
                if let Ok(request) = result {
                    self.pings.insert(request);
                }
                result
            }
            1 => self
                .node
                .start_lookup(self.now, target, LookupKind::FindNode),
            2 => self
                .node
                .start_lookup(self.now, target, LookupKind::GetPeers),
            3 => {
                let port = if which & 0x80 != 0 {
                    AnnouncePort::Implied
                } else {
                    AnnouncePort::Explicit(u16::from(b) + 1)
                };
                self.node
                    .start_announce(self.now, target, port, which & 0x40 != 0)
            }
            4 => {
                let routers: Vec<SocketAddr> =
                    (0..a % 4).map(|i| self.source(b.wrapping_add(i))).collect();
                self.node.bootstrap(self.now, routers);
                self.drain(None);
                return;
            }
            _ => {
                self.node.stop_announcing(&target);
                return;
            }
        };
        if let Ok(request) = result {
            assert!(self.started.insert(request), "request id reused");
            if matches!(which % 6, 2 | 3) {
                self.wants_peers.insert(request);
            }
        }
        self.drain(None);
    }

    fn advance(&mut self, byte: u8) {
        // Quadratic: small steps around the soft and hard timeouts, big
        // ones (up to ~11 minutes) across token rotations and expiry.
        let millis = u64::from(byte) * u64::from(byte) * 10;
        self.now += Duration::from_millis(millis);
        self.node.handle_timeout(self.now);
        self.drain(None);
        assert!(
            self.node.poll_timeout() > self.now,
            "poll_timeout {:?} not after now {:?} right after handle_timeout",
            self.node.poll_timeout(),
            self.now
        );
    }

    /// Drains transmits and events, checking each. `from` is the sender of
    /// the datagram just fed, if any: the only address a reply may go to.
    fn drain(&mut self, from: Option<SocketAddr>) {
        let mut replies = 0;
        while let Some(transmit) = self.node.poll_transmit() {
            assert!(
                self.known.contains(&transmit.to),
                "sent to {} which nobody mentioned",
                transmit.to
            );
            let message = krpc::decode(&transmit.bytes).unwrap_or_else(|error| {
                panic!(
                    "node sent an undecodable datagram ({error}): {:?}",
                    String::from_utf8_lossy(&transmit.bytes)
                )
            });
            assert!(
                transmit.bytes.len() <= self.config.datagram_size_max,
                "node sent {} bytes",
                transmit.bytes.len()
            );
            match &message.body {
                Body::Query(query) => {
                    assert_eq!(query.sender_id(), Some(self.node.id()));
                    assert_eq!(message.transaction_id.as_bytes().len(), 4);
                    if self.sent.len() >= 64 {
                        self.sent.remove(0);
                    }
                    self.sent.push(Sent {
                        to: transmit.to,
                        t: message.transaction_id.as_bytes().to_vec(),
                    });
                }
                Body::Response(response) => {
                    replies += 1;
                    assert_eq!(Some(transmit.to), from, "unsolicited response");
                    assert_eq!(message.requester_addr, Some(transmit.to));
                    assert_eq!(response.id, self.node.id());
                    assert!(response.nodes.len() <= self.config.bucket_size);
                    assert!(response.nodes6.len() <= self.config.bucket_size);
                    assert!(
                        response.nodes.iter().all(|c| c.addr.is_ipv4()),
                        "IPv6 contact in nodes: {response:?}"
                    );
                    assert!(
                        response.nodes6.iter().all(|c| c.addr.is_ipv6()),
                        "IPv4 contact in nodes6: {response:?}"
                    );
                    if let Some(want) = self.want {
                        assert!(want.ipv4 || response.nodes.is_empty(), "{response:?}");
                        assert!(want.ipv6 || response.nodes6.is_empty(), "{response:?}");
                    }
                    assert!(response.values.len() <= self.config.peers_per_reply_max);
                    assert!(
                        response
                            .values
                            .iter()
                            .all(|p| p.is_ipv6() == transmit.to.is_ipv6()),
                        "peers of another family than the querier's: {response:?}"
                    );
                    if let Some(token) = &response.token {
                        self.tokens.insert(transmit.to.ip(), token.clone());
                    }
                }
                Body::Error(_) => {
                    replies += 1;
                    assert_eq!(Some(transmit.to), from, "unsolicited error");
                    assert_eq!(message.requester_addr, Some(transmit.to));
                }
            }
            if self.recent.len() >= 8 {
                self.recent.remove(0);
            }
            self.recent.push(transmit.bytes);
        }
        assert!(replies <= 1, "{replies} replies to one datagram");
        while let Some(event) = self.node.poll_event() {
            let terminal = match &event {
                Event::Pong { request, .. } => {
                    assert!(self.pings.contains(request), "pong for no ping");
                    Some(*request)
                }
                Event::LookupDone { request, summary } => {
                    assert!(summary.closest.len() <= self.config.bucket_size);
                    assert!(summary.responses <= summary.queried, "{summary:?}");
                    assert!(summary.failures <= summary.queried, "{summary:?}");
                    Some(*request)
                }
                Event::AnnounceDone {
                    request,
                    stored,
                    tried,
                    ..
                } => {
                    assert!(stored <= tried);
                    Some(*request)
                }
                Event::Peers { request, peers } => {
                    assert!(!peers.is_empty());
                    assert!(!self.finished.contains(request), "peers after the end");
                    if !self.wants_peers.contains(request) {
                        let started = self.started.contains(request);
                        panic!("peers for a find_node lookup (started by us: {started})");
                    }
                    None
                }
                Event::Bootstrapped { .. } | Event::BootstrapFailed { .. } => None,
            };
            if let Some(request) = terminal {
                assert!(self.finished.insert(request), "request ended twice");
            }
        }
        self.check();
    }

    fn check(&mut self) {
        let stats = self.node.stats(self.now);
        let config = &self.config;
        assert_eq!(stats.packets_in, self.packets_in);
        assert!(stats.routing_table_buckets >= 1 && stats.routing_table_buckets <= 160);
        assert!(
            stats.routing_table_nodes <= stats.routing_table_buckets * config.bucket_size,
            "{} nodes in {} buckets",
            stats.routing_table_nodes,
            stats.routing_table_buckets
        );
        assert!(stats.routing_table_good <= stats.routing_table_nodes);
        assert!(stats.transactions_in_flight <= config.transactions_max);
        assert!(stats.info_hashes_stored <= config.info_hashes_max);
        assert!(stats.peers_stored <= stats.info_hashes_stored * config.peers_per_info_hash_max);
        assert!(stats.lookups_done <= stats.lookups_started);
        let table = self.node.routing_table();
        assert_eq!(table.entries().count(), stats.routing_table_nodes);
        let mut addrs = HashSet::new();
        let mut ids = HashSet::new();
        for entry in table.entries() {
            assert_ne!(entry.contact.id, self.node.id(), "own id in the table");
            assert!(
                addrs.insert(entry.contact.addr),
                "address twice in the table"
            );
            assert!(ids.insert(entry.contact.id), "id twice in the table");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut h = Harness::new();
    let mut script = Script { data };
    let mut steps = 0;
    while let Some(op) = script.byte() {
        steps += 1;
        if steps > 256 {
            break;
        }
        match op & 0x07 {
            0 | 1 => {
                // A raw datagram. Bit 3 makes it long (for the size limit).
                let from = h.source(op >> 4);
                let len = usize::from(script.byte().unwrap_or(0));
                let len = if op & 0x08 != 0 { len * 8 } else { len };
                let bytes = script.bytes(len).to_vec();
                h.feed(from, &bytes);
            }
            2 => h.advance(script.byte().unwrap_or(0)),
            3 => h.command(&mut script),
            4 | 5 => h.answer(&mut script),
            6 => h.query(&mut script),
            _ => {
                // Reflect one of the node's own datagrams back at it,
                // possibly with one byte changed.
                if h.recent.is_empty() {
                    continue;
                }
                let pick = usize::from(op >> 3) % h.recent.len();
                let mut bytes = h.recent[pick].clone();
                let (at, xor) = (script.byte().unwrap_or(0), script.byte().unwrap_or(0));
                if !bytes.is_empty() {
                    let at = usize::from(at) % bytes.len();
                    bytes[at] ^= xor;
                }
                let from = h.source(at);
                h.feed(from, &bytes);
            }
        }
    }
});
