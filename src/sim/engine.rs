//! The discrete-event engine: one heap of events ordered by (time, sequence),
//! our unchanged sans-IO [`DhtNode`]s, and a seeded network model.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::config::SimConfig;
use super::network::LinkModel;
use super::report::{BootstrapRecord, LookupRecord, Percentiles, SimReport, millis};
use crate::dht::{AnnouncePort, DhtNode, Event, LookupKind, RequestId};
use crate::time::Timestamp;
use crate::wire::{Id, NodeContact};

/// The measured lookups start once every swarm's announce finished, and
/// at the latest this long after the start.
const ANNOUNCE_PHASE_MAX: Duration = Duration::from_secs(60);
/// Virtual time between two measured joins.
const BOOTSTRAP_INTERVAL: Duration = Duration::from_millis(500);
/// Port every simulated node listens on.
const SIM_PORT: u16 = 6881;
/// Good routing-table entries a joining node should reach.
const BOOTSTRAP_GOOD_TARGET: usize = 100;

/// One simulation run.
pub struct Simulation {
    config: SimConfig,
    rng: StdRng,
    links: LinkModel,
    nodes: Vec<SimNode>,
    by_addr: HashMap<SocketAddr, u32>,
    queue: BinaryHeap<Reverse<Queued>>,
    sequence: u64,
    now: Timestamp,
    trace: u64,
    swarms: Vec<Swarm>,
    lookups: Vec<LookupRecord>,
    pending_lookups: HashMap<(u32, RequestId), (usize, usize)>,
    pending_announces: HashSet<(u32, RequestId)>,
    measure_end: Option<Timestamp>,
    bootstraps: Vec<BootstrapRecord>,
    joining: HashMap<u32, JoinState>,
    dead_at_start: usize,
    /// Nodes running the profile under test (all live nodes without a
    /// network profile); measured lookups and joins start at these.
    clients: Vec<u32>,
    datagrams: u64,
    events: u64,
}

struct SimNode {
    /// `None` once the node is dead (or for nodes that never lived).
    node: Option<Box<DhtNode>>,
    contact: NodeContact,
    /// For NAT-like nodes: the addresses they have sent to, the only ones
    /// whose datagrams get through.
    nat: Option<HashSet<SocketAddr>>,
    wake_generation: u64,
    wake_at: Option<Timestamp>,
}

struct Swarm {
    info_hash: Id,
    peer: SocketAddr,
}

struct JoinState {
    record: usize,
    started: Timestamp,
    swarm: usize,
}

enum Action {
    Deliver {
        to: u32,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    Wake {
        node: u32,
        generation: u64,
    },
    Announce {
        node: u32,
        swarm: usize,
    },
    Lookup {
        record: usize,
    },
    Join {
        record: usize,
    },
    Churn,
    StartMeasuring,
}

struct Queued {
    at: Timestamp,
    sequence: u64,
    action: Action,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Queued) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Queued) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Queued) -> Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

impl Simulation {
    /// Builds the network: live and dead nodes with routing tables filled as
    /// a long-running DHT's would be, and the workload scheduled.
    pub fn new(config: SimConfig) -> Simulation {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let links = LinkModel::new(rng.random(), config.rtt_median, config.rtt_sigma);
        let dead_share = config.dead_share.clamp(0.0, 0.95);
        let dead = ((config.nodes as f64) * dead_share / (1.0 - dead_share)).round() as usize;
        let mut sim = Simulation {
            rng,
            links,
            nodes: Vec::with_capacity(config.nodes + dead + config.bootstraps),
            by_addr: HashMap::new(),
            queue: BinaryHeap::new(),
            sequence: 0,
            now: Timestamp::ZERO,
            trace: 0xcbf2_9ce4_8422_2325,
            swarms: Vec::new(),
            lookups: Vec::new(),
            pending_lookups: HashMap::new(),
            pending_announces: HashSet::new(),
            measure_end: None,
            bootstraps: Vec::new(),
            joining: HashMap::new(),
            dead_at_start: dead,
            clients: Vec::new(),
            datagrams: 0,
            events: 0,
            config,
        };
        let clients = match sim.config.network_profile {
            Some(_) => sim.config.clients.clamp(1, sim.config.nodes.max(1)),
            None => sim.config.nodes,
        };
        for i in 0..sim.config.nodes + dead {
            let alive = i < sim.config.nodes;
            let nat = alive && sim.rng.random::<f64>() < sim.config.nat_share;
            sim.add_node(alive, nat, alive && i < clients);
        }
        sim.fill_routing_tables();
        sim.schedule_workload();
        sim
    }

    /// Runs to the end of the workload and summarises it.
    pub fn run(mut self) -> SimReport {
        let wall = Instant::now();
        while let Some(Reverse(next)) = self.queue.pop() {
            if self.measure_end.is_some_and(|end| next.at > end) {
                break;
            }
            self.now = next.at;
            self.events += 1;
            self.step(next.action);
        }
        self.report(wall.elapsed())
    }

    /// Schedules the measured lookups and joins from now on.
    fn start_measuring(&mut self) {
        if self.measure_end.is_some() {
            return;
        }
        let start = self.now;
        for record in 0..self.lookups.len() {
            let at = start + self.config.lookup_interval * record as u32;
            self.lookups[record].started_us = at.as_micros();
            self.push(at, Action::Lookup { record });
        }
        for record in 0..self.bootstraps.len() {
            let at = start + BOOTSTRAP_INTERVAL * record as u32;
            self.push(at, Action::Join { record });
        }
        let lookups = self.config.lookup_interval * self.lookups.len() as u32;
        let joins = BOOTSTRAP_INTERVAL * self.bootstraps.len() as u32;
        self.measure_end = Some(start + lookups.max(joins) + self.config.lookup_deadline);
    }

    fn add_node(&mut self, alive: bool, nat: bool, client: bool) -> u32 {
        let index = self.nodes.len() as u32;
        let addr = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(
                127,
                (index >> 16) as u8,
                (index >> 8) as u8,
                index as u8,
            )),
            SIM_PORT,
        );
        let id = Id::random(&mut self.rng);
        let node = alive.then(|| {
            let mut config = self.config.node_config(client, self.rng.random());
            config.node_id = Some(id);
            Box::new(DhtNode::new(config, self.now))
        });
        self.nodes.push(SimNode {
            node,
            contact: NodeContact { id, addr },
            nat: nat.then(HashSet::new),
            wake_generation: 0,
            wake_at: None,
        });
        self.by_addr.insert(addr, index);
        if client {
            self.clients.push(index);
        }
        if alive {
            self.reschedule(index);
        }
        index
    }

    /// Gives every live node the routing table a long-running node would
    /// have: up to k random nodes (live or dead) for every shared-prefix length.
    fn fill_routing_tables(&mut self) {
        let mut sorted: Vec<(Id, u32)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.contact.id, i as u32))
            .collect();
        sorted.sort();
        let client_config = self.config.node_config(true, 0);
        let network_config = self.config.node_config(false, 0);
        let capacity = |client: bool, depth: usize| {
            let dht = if client {
                &client_config
            } else {
                &network_config
            };
            dht.far_bucket_sizes
                .get(depth)
                .copied()
                .unwrap_or(0)
                .max(dht.bucket_size)
        };
        let is_client: HashSet<u32> = self.clients.iter().copied().collect();
        for index in 0..self.nodes.len() {
            if self.nodes[index].node.is_none() {
                continue;
            }
            let own = self.nodes[index].contact.id;
            let mut contacts = Vec::new();
            for depth in 0..160 {
                let (low, high) = prefix_range(&own, depth, false);
                let shared = range_of(&sorted, &low, &high);
                if shared.len() <= 1 {
                    break;
                }
                let (low, high) = prefix_range(&own, depth, true);
                let bucket = range_of(&sorted, &low, &high);
                let take = bucket
                    .len()
                    .min(capacity(is_client.contains(&(index as u32)), depth));
                for offset in rand::seq::index::sample(&mut self.rng, bucket.len(), take) {
                    let member = sorted[bucket.start + offset].1;
                    contacts.push(self.nodes[member as usize].contact);
                }
            }
            let now = self.now;
            if let Some(node) = self.nodes[index].node.as_mut() {
                node.restore_nodes(now, contacts);
            }
        }
    }

    fn schedule_workload(&mut self) {
        let swarms = self.config.swarms.max(1);
        for swarm in 0..swarms {
            let node = self.random_live_node();
            let peer = SocketAddr::new(self.nodes[node as usize].contact.addr.ip(), SIM_PORT);
            self.swarms.push(Swarm {
                info_hash: Id::random(&mut self.rng),
                peer,
            });
            let at = Timestamp::ZERO + Duration::from_millis(10) * swarm as u32;
            self.push(at, Action::Announce { node, swarm });
        }
        self.lookups = vec![LookupRecord::default(); self.config.lookups];
        self.bootstraps = vec![BootstrapRecord::default(); self.config.bootstraps];
        self.push(Timestamp::ZERO + ANNOUNCE_PHASE_MAX, Action::StartMeasuring);
        if self.config.churn_per_hour > 0.0 {
            let at = self.next_churn_at();
            self.push(at, Action::Churn);
        }
    }

    fn step(&mut self, action: Action) {
        match action {
            Action::Deliver { to, from, bytes } => {
                self.mix(1, to, &bytes);
                let target = &mut self.nodes[to as usize];
                if let Some(nat) = &target.nat
                    && !nat.contains(&from)
                {
                    return;
                }
                let Some(node) = target.node.as_mut() else {
                    return;
                };
                self.datagrams += 1;
                node.handle_datagram(self.now, from, &bytes);
                self.after_input(to);
            }
            Action::Wake { node, generation } => {
                let entry = &mut self.nodes[node as usize];
                if entry.wake_generation != generation {
                    return;
                }
                entry.wake_at = None;
                if entry.node.is_none() {
                    return;
                }
                self.mix(2, node, &[]);
                if let Some(dht) = self.nodes[node as usize].node.as_mut() {
                    dht.handle_timeout(self.now);
                }
                self.after_input(node);
            }
            Action::StartMeasuring => self.start_measuring(),
            Action::Announce { node, swarm } => {
                self.mix(3, node, &[]);
                let info_hash = self.swarms[swarm].info_hash;
                if let Some(dht) = self.nodes[node as usize].node.as_mut()
                    && let Ok(request) = dht.start_announce(
                        self.now,
                        info_hash,
                        AnnouncePort::Explicit(SIM_PORT),
                        false,
                    )
                {
                    self.pending_announces.insert((node, request));
                }
                self.after_input(node);
            }
            Action::Lookup { record } => {
                let node = self.random_live_client();
                let swarm = self.rng.random_range(0..self.swarms.len());
                self.mix(4, node, &[]);
                self.start_measured_lookup(node, swarm, record);
                self.after_input(node);
            }
            Action::Join { record } => {
                let entry = self.random_live_node();
                let node = self.add_node(true, false, true);
                let swarm = self.rng.random_range(0..self.swarms.len());
                self.mix(5, node, &[]);
                self.joining.insert(
                    node,
                    JoinState {
                        record,
                        started: self.now,
                        swarm,
                    },
                );
                let entry_addr = self.nodes[entry as usize].contact.addr;
                if let Some(dht) = self.nodes[node as usize].node.as_mut() {
                    dht.bootstrap(self.now, vec![entry_addr]);
                }
                self.after_input(node);
            }
            Action::Churn => {
                let leaving = self.random_live_node();
                self.mix(6, leaving, &[]);
                if !self.joining.contains_key(&leaving) {
                    self.nodes[leaving as usize].node = None;
                }
                let entry = self.random_live_node();
                let client = self.config.network_profile.is_none();
                let node = self.add_node(true, false, client);
                let entry_addr = self.nodes[entry as usize].contact.addr;
                if let Some(dht) = self.nodes[node as usize].node.as_mut() {
                    dht.bootstrap(self.now, vec![entry_addr]);
                }
                self.after_input(node);
                let at = self.next_churn_at();
                self.push(at, Action::Churn);
            }
        }
    }

    fn start_measured_lookup(&mut self, node: u32, swarm: usize, record: usize) {
        let info_hash = self.swarms[swarm].info_hash;
        if let Some(dht) = self.nodes[node as usize].node.as_mut()
            && let Ok(request) = dht.start_lookup(self.now, info_hash, LookupKind::GetPeers)
        {
            self.pending_lookups
                .insert((node, request), (record, swarm));
        }
    }

    /// Sends what a node wants sent, records its events, and schedules its next wake-up.
    fn after_input(&mut self, index: u32) {
        let mut transmits = Vec::new();
        let mut events = Vec::new();
        if let Some(node) = self.nodes[index as usize].node.as_mut() {
            while let Some(transmit) = node.poll_transmit() {
                transmits.push(transmit);
            }
            while let Some(event) = node.poll_event() {
                events.push(event);
            }
        }
        for transmit in transmits {
            if let Some(nat) = self.nodes[index as usize].nat.as_mut() {
                nat.insert(transmit.to);
            }
            let Some(&to) = self.by_addr.get(&transmit.to) else {
                continue;
            };
            if self.rng.random::<f64>() < self.config.loss {
                continue;
            }
            let delay = self.links.one_way_delay(index, to, self.rng.random());
            let from = self.nodes[index as usize].contact.addr;
            self.push(
                self.now + delay,
                Action::Deliver {
                    to,
                    from,
                    bytes: transmit.bytes,
                },
            );
        }
        for event in events {
            self.observe(index, event);
        }
        if let Some(join) = self.joining.get(&index)
            && self.bootstraps[join.record].hundred_good.is_none()
            && let Some(node) = self.nodes[index as usize].node.as_ref()
            && node.routing_table().good_count(self.now) >= BOOTSTRAP_GOOD_TARGET
        {
            self.bootstraps[join.record].hundred_good =
                Some(self.now.saturating_since(join.started));
        }
        self.reschedule(index);
    }

    fn observe(&mut self, index: u32, event: Event) {
        match event {
            Event::Peers { request, peers } => {
                if let Some(&(record, swarm)) = self.pending_lookups.get(&(index, request)) {
                    let wanted = self.swarms[swarm].peer;
                    let started = Timestamp::from_micros(self.lookups[record].started_us);
                    let entry = &mut self.lookups[record];
                    if entry.first_peer.is_none() && peers.contains(&wanted) {
                        entry.first_peer = Some(self.now.saturating_since(started));
                    }
                } else if let Some(join) = self.joining.get(&index) {
                    let wanted = self.swarms[join.swarm].peer;
                    let entry = &mut self.bootstraps[join.record];
                    if entry.first_peer.is_none() && peers.contains(&wanted) {
                        entry.first_peer = Some(self.now.saturating_since(join.started));
                    }
                }
            }
            Event::LookupDone { request, summary } => {
                if let Some((record, _)) = self.pending_lookups.remove(&(index, request)) {
                    let entry = &mut self.lookups[record];
                    entry.completed = Some(summary.elapsed);
                    entry.queries = summary.queried;
                    entry.rounds = summary.hops;
                }
            }
            Event::Bootstrapped { .. } => {
                if let Some(join) = self.joining.get(&index) {
                    let info_hash = self.swarms[join.swarm].info_hash;
                    if let Some(node) = self.nodes[index as usize].node.as_mut() {
                        let _ = node.start_lookup(self.now, info_hash, LookupKind::GetPeers);
                    }
                }
            }
            Event::AnnounceDone { request, .. } => {
                if self.pending_announces.remove(&(index, request))
                    && self.pending_announces.is_empty()
                {
                    // Every swarm is announced: measure from the next instant.
                    self.start_measuring();
                }
            }
            Event::Pong { .. } | Event::BootstrapFailed { .. } => {}
        }
    }

    fn reschedule(&mut self, index: u32) {
        let entry = &mut self.nodes[index as usize];
        let Some(node) = entry.node.as_ref() else {
            return;
        };
        let wake = node.poll_timeout().max(self.now);
        if entry.wake_at == Some(wake) {
            return;
        }
        entry.wake_generation += 1;
        entry.wake_at = Some(wake);
        let generation = entry.wake_generation;
        self.push(
            wake,
            Action::Wake {
                node: index,
                generation,
            },
        );
    }

    fn push(&mut self, at: Timestamp, action: Action) {
        self.sequence += 1;
        self.queue.push(Reverse(Queued {
            at,
            sequence: self.sequence,
            action,
        }));
    }

    fn random_live_node(&mut self) -> u32 {
        let all: Vec<u32> = Vec::new();
        self.random_live_among(&all)
    }

    fn random_live_client(&mut self) -> u32 {
        let clients = std::mem::take(&mut self.clients);
        let chosen = self.random_live_among(&clients);
        self.clients = clients;
        chosen
    }

    /// A random live node from `candidates` (every node when empty). Churn
    /// can kill every candidate, so after a bounded number of draws it falls
    /// back to any live node; churn always keeps some alive.
    fn random_live_among(&mut self, candidates: &[u32]) -> u32 {
        for _ in 0..1000 {
            let index = if candidates.is_empty() {
                self.rng.random_range(0..self.nodes.len()) as u32
            } else {
                candidates[self.rng.random_range(0..candidates.len())]
            };
            if self.nodes[index as usize].node.is_some() {
                return index;
            }
        }
        (0..self.nodes.len() as u32)
            .find(|&i| self.nodes[i as usize].node.is_some())
            .unwrap_or(0)
    }

    fn next_churn_at(&mut self) -> Timestamp {
        let per_second = self.config.churn_per_hour * self.config.nodes as f64 / 3600.0;
        let gap = -(1.0 - self.rng.random::<f64>()).ln() / per_second;
        self.now + Duration::from_secs_f64(gap.min(3600.0))
    }

    /// Folds one event into the trace hash (FNV-1a).
    fn mix(&mut self, tag: u8, node: u32, bytes: &[u8]) {
        let mut feed = |byte: u8| {
            self.trace ^= u64::from(byte);
            self.trace = self.trace.wrapping_mul(0x0100_0000_01b3);
        };
        for b in self.now.as_micros().to_le_bytes() {
            feed(b);
        }
        feed(tag);
        for b in node.to_le_bytes() {
            feed(b);
        }
        for &b in bytes {
            feed(b);
        }
    }

    fn report(&mut self, wall: Duration) -> SimReport {
        let deadline = self.config.lookup_deadline;
        for record in &mut self.lookups {
            record.success = record.first_peer.is_some_and(|t| t <= deadline);
        }
        let successes = self.lookups.iter().filter(|r| r.success).count();
        let complete: Vec<f64> = self
            .lookups
            .iter()
            .filter_map(|r| r.completed.map(millis))
            .collect();
        let first_peer: Vec<f64> = self
            .lookups
            .iter()
            .filter_map(|r| r.first_peer.map(millis))
            .collect();
        let queries: Vec<f64> = self
            .lookups
            .iter()
            .filter(|r| r.completed.is_some())
            .map(|r| r.queries as f64)
            .collect();
        let rounds: Vec<f64> = self
            .lookups
            .iter()
            .filter(|r| r.completed.is_some())
            .map(|r| r.rounds as f64)
            .collect();
        for (&index, join) in &self.joining {
            if let Some(node) = self.nodes[index as usize].node.as_ref() {
                self.bootstraps[join.record].good_at_end =
                    node.routing_table().good_count(self.now);
            }
        }
        let hundred: Vec<f64> = self
            .bootstraps
            .iter()
            .filter_map(|b| b.hundred_good.map(millis))
            .collect();
        let boot_peer: Vec<f64> = self
            .bootstraps
            .iter()
            .filter_map(|b| b.first_peer.map(millis))
            .collect();
        let boot_ok = self
            .bootstraps
            .iter()
            .filter(|b| b.hundred_good.is_some() && b.first_peer.is_some())
            .count();
        SimReport {
            profile: self.config.profile.name().to_string(),
            seed: self.config.seed,
            nodes: self.config.nodes,
            dead_nodes: self.dead_at_start,
            lookups: self.lookups.len(),
            success_rate: ratio(successes, self.lookups.len()),
            completed_without_peer: self
                .lookups
                .iter()
                .filter(|r| !r.success && r.completed.is_some())
                .count(),
            unfinished: self
                .lookups
                .iter()
                .filter(|r| !r.success && r.completed.is_none())
                .count(),
            time_to_complete_ms: Percentiles::of(complete),
            time_to_first_peer_ms: Percentiles::of(first_peer),
            queries: Percentiles::of(queries),
            rounds: Percentiles::of(rounds),
            bootstraps: self.bootstraps.len(),
            bootstrap_to_100_good_ms: Percentiles::of(hundred),
            bootstrap_to_first_peer_ms: Percentiles::of(boot_peer),
            bootstrap_success_rate: ratio(boot_ok, self.bootstraps.len()),
            datagrams: self.datagrams,
            events: self.events,
            virtual_ms: self.now.as_micros() / 1000,
            wall_ms: wall.as_millis() as u64,
            trace_hash: format!("{:016x}", self.trace),
            replay: self.config.replay_command(),
        }
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The lowest and highest IDs sharing the first `depth` bits with `id`;
/// with `flip`, bit `depth` is the opposite of `id`'s (the bucket at that depth).
fn prefix_range(id: &Id, depth: usize, flip: bool) -> (Id, Id) {
    let mut low = [0u8; 20];
    let mut high = [0xffu8; 20];
    let fixed = if flip { depth + 1 } else { depth };
    for bit in 0..fixed.min(160) {
        let value = if bit == depth {
            !id.bit(bit)
        } else {
            id.bit(bit)
        };
        let mask = 0x80u8 >> (bit % 8);
        if value {
            low[bit / 8] |= mask;
        } else {
            high[bit / 8] &= !mask;
        }
    }
    (Id(low), Id(high))
}

fn range_of(sorted: &[(Id, u32)], low: &Id, high: &Id) -> std::ops::Range<usize> {
    let start = sorted.partition_point(|(id, _)| id < low);
    let end = sorted.partition_point(|(id, _)| id <= high);
    start..end.max(start)
}
