//! One iterative lookup (BEP 5 / Kademlia): find the k nodes closest to a
//! target, and for get_peers collect peers and write tokens on the way.
//!
//! The lookup is a pure state machine driven by its owner: [`Lookup::poll_query`]
//! says whom to query next, [`Lookup::on_response`] and [`Lookup::on_failure`]
//! feed answers back. Rules it enforces:
//! - at most `parallelism` queries are "fast" (in flight and younger than the
//!   soft timeout); a query past the soft timeout turns "slow", which frees its
//!   slot for the next candidate while a late answer is still used;
//! - no address is ever queried twice;
//! - it is done when the k closest candidates that have not failed (slow ones
//!   aside) have all answered.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::time::Timestamp;
use crate::wire::{Id, NodeContact};

/// What a lookup asks each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// `find_node`: only nodes.
    FindNode,
    /// `get_peers`: peers, nodes and write tokens.
    GetPeers,
}

/// The knobs one lookup runs with (copied from [`Config`](super::Config)).
#[derive(Debug, Clone, Copy)]
pub struct LookupParams {
    /// k: how many closest nodes must answer.
    pub bucket_size: usize,
    /// alpha: fast queries in flight.
    pub parallelism: usize,
    /// When a query turns slow.
    pub soft_timeout: Duration,
    /// When the lookup gives up on a slow node (its answer, if it comes
    /// later, still reaches the routing table).
    pub hard_timeout: Duration,
    /// Candidates remembered.
    pub candidates_max: usize,
    /// Peers reported.
    pub peers_max: usize,
    /// Count only queries to the current k closest candidates against
    /// `parallelism` (with at most twice that in flight overall), so queries
    /// to nodes that closer answers have made irrelevant do not hold up the
    /// next ones. When false, every fast query counts (libtorrent's rule).
    pub count_window_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CandidateState {
    Fresh,
    InFlight { sent_at: Timestamp },
    Slow { sent_at: Timestamp },
    Responded,
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    contact: NodeContact,
    distance: Id,
    state: CandidateState,
    token: Option<Vec<u8>>,
    /// Round trips needed to learn of this node: 1 for nodes we started
    /// with, one more than the answer that named it otherwise.
    hop: u8,
}

/// A node that answered, with the write token it gave (get_peers only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// Its ID and address.
    pub contact: NodeContact,
    /// Its write token, needed to announce to it.
    pub token: Option<Vec<u8>>,
}

/// The state of one lookup.
#[derive(Debug, Clone)]
pub struct Lookup {
    target: Id,
    kind: LookupKind,
    params: LookupParams,
    own_id: Id,
    started_at: Timestamp,
    candidates: Vec<Candidate>,
    seeds_pending: Vec<SocketAddr>,
    seeds_in_flight: HashMap<SocketAddr, Timestamp>,
    queried: HashSet<SocketAddr>,
    peers: HashSet<SocketAddr>,
    responses: usize,
    failures: usize,
    first_peer_at: Option<Timestamp>,
    done: bool,
}

impl Lookup {
    /// Starts a lookup from known nodes (sorted here) and from `seeds`,
    /// addresses whose IDs we do not know yet (bootstrap routers).
    pub fn new(
        now: Timestamp,
        own_id: Id,
        target: Id,
        kind: LookupKind,
        params: LookupParams,
        known: impl IntoIterator<Item = NodeContact>,
        seeds: impl IntoIterator<Item = SocketAddr>,
    ) -> Lookup {
        let mut lookup = Lookup {
            target,
            kind,
            params,
            own_id,
            started_at: now,
            candidates: Vec::new(),
            seeds_pending: Vec::new(),
            seeds_in_flight: HashMap::new(),
            queried: HashSet::new(),
            peers: HashSet::new(),
            responses: 0,
            failures: 0,
            first_peer_at: None,
            done: false,
        };
        for contact in known {
            lookup.add_candidate(contact, 1);
        }
        for seed in seeds {
            if !lookup.candidates.iter().any(|c| c.contact.addr == seed)
                && !lookup.seeds_pending.contains(&seed)
            {
                lookup.seeds_pending.push(seed);
            }
        }
        lookup.seeds_pending.reverse();
        lookup.update_done();
        lookup
    }

    /// The next address to query now, if any. Call until it returns `None`.
    pub fn poll_query(&mut self, now: Timestamp) -> Option<SocketAddr> {
        if self.done {
            return None;
        }
        self.mark_slow(now);
        if let Some(seed) = self.seeds_pending.pop() {
            self.queried.insert(seed);
            self.seeds_in_flight.insert(seed, now);
            return Some(seed);
        }
        let k = self.params.bucket_size;
        let window_in_flight = self
            .candidates
            .iter()
            .filter(|c| {
                !matches!(
                    c.state,
                    CandidateState::Failed | CandidateState::Slow { .. }
                )
            })
            .take(k)
            .filter(|c| matches!(c.state, CandidateState::InFlight { .. }))
            .count();
        let fast = self.fast_in_flight();
        let limited = if self.params.count_window_only {
            window_in_flight >= self.params.parallelism || fast >= 2 * self.params.parallelism
        } else {
            fast >= self.params.parallelism
        };
        if limited {
            return None;
        }
        let next = self
            .candidates
            .iter_mut()
            .filter(|c| {
                !matches!(
                    c.state,
                    CandidateState::Failed | CandidateState::Slow { .. }
                )
            })
            .take(k)
            .find(|c| c.state == CandidateState::Fresh)?;
        next.state = CandidateState::InFlight { sent_at: now };
        let addr = next.contact.addr;
        self.queried.insert(addr);
        Some(addr)
    }

    /// Feeds an answer from `from`. Returns the peers not reported before.
    pub fn on_response(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        id: Id,
        nodes: &[NodeContact],
        values: &[SocketAddr],
        token: Option<Vec<u8>>,
    ) -> Vec<SocketAddr> {
        self.responses += 1;
        let from_seed = self.seeds_in_flight.remove(&from).is_some();
        let hop = self
            .candidates
            .iter()
            .find(|c| c.contact.addr == from)
            .map_or(1, |c| c.hop);
        match self.candidates.iter().position(|c| c.contact.addr == from) {
            Some(index) => {
                let candidate = &mut self.candidates[index];
                candidate.state = CandidateState::Responded;
                candidate.token = token;
                if candidate.contact.id != id {
                    // The node answered under another ID: believe the answer.
                    candidate.contact.id = id;
                    candidate.distance = id.distance(&self.target);
                    self.candidates.sort_by_key(|c| c.distance);
                }
            }
            None if from_seed || id != self.own_id => {
                let contact = NodeContact { id, addr: from };
                if self.add_candidate(contact, 1)
                    && let Some(c) = self.candidates.iter_mut().find(|c| c.contact.addr == from)
                {
                    c.state = CandidateState::Responded;
                    c.token = token;
                }
            }
            None => {}
        }
        for node in nodes {
            self.add_candidate(*node, hop.saturating_add(1));
        }
        let mut new_peers = Vec::new();
        // find_node answers carry no peers; anything there is noise.
        let values = if self.kind == LookupKind::GetPeers {
            values
        } else {
            &[]
        };
        for peer in values {
            if self.peers.len() >= self.params.peers_max {
                break;
            }
            if self.peers.insert(*peer) {
                new_peers.push(*peer);
            }
        }
        if !new_peers.is_empty() && self.first_peer_at.is_none() {
            self.first_peer_at = Some(now);
        }
        self.update_done();
        new_peers
    }

    /// Records that `from` did not answer (hard timeout) or answered with an error.
    pub fn on_failure(&mut self, from: SocketAddr) {
        // A node the lookup already gave up on (hard timeout) is not counted again.
        let mut counted = self.seeds_in_flight.remove(&from).is_some();
        if let Some(c) = self.candidates.iter_mut().find(|c| c.contact.addr == from)
            && !matches!(c.state, CandidateState::Failed | CandidateState::Responded)
        {
            c.state = CandidateState::Failed;
            counted = true;
        }
        if counted {
            self.failures += 1;
        }
        self.update_done();
    }

    /// Whether the k closest have answered (or nobody is left to ask).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// When the oldest fast query turns slow: the lookup's next wake-up.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        if self.done {
            return None;
        }
        self.candidates
            .iter()
            .filter_map(|c| match c.state {
                CandidateState::InFlight { sent_at } => Some(sent_at + self.params.soft_timeout),
                CandidateState::Slow { sent_at } => Some(sent_at + self.params.hard_timeout),
                _ => None,
            })
            .chain(
                self.seeds_in_flight
                    .values()
                    .map(|sent_at| *sent_at + self.params.hard_timeout),
            )
            .min()
    }

    /// Changes the soft and hard timeouts, for owners that track the
    /// network's round-trip times while the lookup runs.
    pub fn set_timeouts(&mut self, soft: Duration, hard: Duration) {
        self.params.soft_timeout = soft;
        self.params.hard_timeout = hard;
    }

    /// Turns queries past the soft timeout slow, and finishes the lookup if
    /// that leaves nothing to wait for.
    pub fn on_tick(&mut self, now: Timestamp) {
        self.mark_slow(now);
        self.update_done();
    }

    /// The closest nodes that answered, closest first, at most k.
    pub fn closest_responders(&self) -> Vec<Responder> {
        self.candidates
            .iter()
            .filter(|c| c.state == CandidateState::Responded)
            .take(self.params.bucket_size)
            .map(|c| Responder {
                contact: c.contact,
                token: c.token.clone(),
            })
            .collect()
    }

    /// Candidates heard about but never queried: material for filling the
    /// routing table once verified.
    pub fn unqueried(&self) -> impl Iterator<Item = NodeContact> + '_ {
        self.candidates
            .iter()
            .filter(|c| c.state == CandidateState::Fresh)
            .map(|c| c.contact)
    }

    /// The lookup's target.
    pub fn target(&self) -> Id {
        self.target
    }

    /// What the lookup asks.
    pub fn kind(&self) -> LookupKind {
        self.kind
    }

    /// When the lookup started.
    pub fn started_at(&self) -> Timestamp {
        self.started_at
    }

    /// When the first peer arrived, if one did.
    pub fn first_peer_at(&self) -> Option<Timestamp> {
        self.first_peer_at
    }

    /// Round trips it took to learn of the closest node that answered: the
    /// lookup's depth in rounds (0 if nobody answered).
    pub fn hops(&self) -> usize {
        self.candidates
            .iter()
            .find(|c| c.state == CandidateState::Responded)
            .map_or(0, |c| usize::from(c.hop))
    }

    /// Distinct addresses queried so far.
    pub fn queried_count(&self) -> usize {
        self.queried.len()
    }

    /// Answers received.
    pub fn response_count(&self) -> usize {
        self.responses
    }

    /// Queries that timed out or were refused.
    pub fn failure_count(&self) -> usize {
        self.failures
    }

    /// Distinct peers reported.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Queries in flight that still count against the parallelism limit.
    pub fn fast_in_flight(&self) -> usize {
        self.candidates
            .iter()
            .filter(|c| matches!(c.state, CandidateState::InFlight { .. }))
            .count()
    }

    fn mark_slow(&mut self, now: Timestamp) {
        let (soft, hard) = (self.params.soft_timeout, self.params.hard_timeout);
        for c in &mut self.candidates {
            match c.state {
                CandidateState::InFlight { sent_at } if now.saturating_since(sent_at) >= soft => {
                    c.state = CandidateState::Slow { sent_at };
                }
                CandidateState::Slow { sent_at } if now.saturating_since(sent_at) >= hard => {
                    c.state = CandidateState::Failed;
                    self.failures += 1;
                }
                _ => {}
            }
        }
        let before = self.seeds_in_flight.len();
        self.seeds_in_flight
            .retain(|_, sent_at| now.saturating_since(*sent_at) < hard);
        self.failures += before - self.seeds_in_flight.len();
    }

    /// Adds a candidate unless it is us, already known by address or ID, or
    /// already queried. Keeps the list sorted and bounded.
    fn add_candidate(&mut self, contact: NodeContact, hop: u8) -> bool {
        if contact.id == self.own_id
            || self.queried.contains(&contact.addr)
            || self
                .candidates
                .iter()
                .any(|c| c.contact.addr == contact.addr || c.contact.id == contact.id)
        {
            return false;
        }
        let distance = contact.id.distance(&self.target);
        let index = self.candidates.partition_point(|c| c.distance < distance);
        if index >= self.params.candidates_max {
            return false;
        }
        self.candidates.insert(
            index,
            Candidate {
                contact,
                distance,
                state: CandidateState::Fresh,
                token: None,
                hop,
            },
        );
        self.candidates.truncate(self.params.candidates_max);
        true
    }

    fn update_done(&mut self) {
        if self.done {
            return;
        }
        let k = self.params.bucket_size;
        let window: Vec<CandidateState> = self
            .candidates
            .iter()
            .filter(|c| {
                !matches!(
                    c.state,
                    CandidateState::Failed | CandidateState::Slow { .. }
                )
            })
            .take(k)
            .map(|c| c.state)
            .collect();
        let all_answered = window.iter().all(|s| *s == CandidateState::Responded);
        let waiting_elsewhere = !self.seeds_pending.is_empty()
            || !self.seeds_in_flight.is_empty()
            || self
                .candidates
                .iter()
                .any(|c| matches!(c.state, CandidateState::Slow { .. }));
        // A get_peers lookup that found no peer yet also waits (until their
        // hard timeout) for slow nodes closer than its k-th responder: the
        // nodes that store the peers may just be slow to answer.
        let last_in_window = self
            .candidates
            .iter()
            .filter(|c| {
                !matches!(
                    c.state,
                    CandidateState::Failed | CandidateState::Slow { .. }
                )
            })
            .take(k)
            .last()
            .map(|c| c.distance);
        let slow_closer = self.kind == LookupKind::GetPeers
            && self.peers.is_empty()
            && self.candidates.iter().any(|c| {
                matches!(c.state, CandidateState::Slow { .. })
                    && last_in_window.is_none_or(|d| c.distance < d)
            });
        self.done = all_answered && !slow_closer && (window.len() == k || !waiting_elsewhere);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn params() -> LookupParams {
        LookupParams {
            bucket_size: 8,
            parallelism: 3,
            soft_timeout: Duration::from_millis(500),
            hard_timeout: Duration::from_millis(2000),
            count_window_only: false,
            candidates_max: 64,
            peers_max: 100,
        }
    }

    /// A lookup over `count` fresh nodes, for a random target from a random ID.
    fn small_lookup(
        seed: u64,
        count: u32,
        kind: LookupKind,
        params: LookupParams,
    ) -> (Vec<NodeContact>, Lookup) {
        let mut rng = StdRng::seed_from_u64(seed);
        let nodes: Vec<NodeContact> = (0..count).map(|i| node(&mut rng, i)).collect();
        let own = Id::random(&mut rng);
        let target = Id::random(&mut rng);
        let lookup = Lookup::new(
            Timestamp::ZERO,
            own,
            target,
            kind,
            params,
            nodes.clone(),
            [],
        );
        (nodes, lookup)
    }

    fn node(rng: &mut StdRng, i: u32) -> NodeContact {
        NodeContact {
            id: Id::random(rng),
            addr: SocketAddr::from(([127, 1, (i >> 8) as u8, i as u8], 6881)),
        }
    }

    /// A static network of `n` nodes, each with a full Kademlia table: up to
    /// 8 nodes for every shared-prefix length.
    struct Net {
        nodes: Vec<NodeContact>,
        knows: HashMap<SocketAddr, Vec<NodeContact>>,
    }

    impl Net {
        fn new(rng: &mut StdRng, n: u32) -> Net {
            let nodes: Vec<NodeContact> = (0..n).map(|i| node(rng, i)).collect();
            let mut knows = HashMap::new();
            for a in &nodes {
                let mut per_bucket: HashMap<usize, usize> = HashMap::new();
                let mut list = Vec::new();
                for b in nodes.iter().filter(|b| b.addr != a.addr) {
                    let count = per_bucket.entry(a.id.common_prefix_len(&b.id)).or_default();
                    if *count < 8 {
                        *count += 1;
                        list.push(*b);
                    }
                }
                knows.insert(a.addr, list);
            }
            Net { nodes, knows }
        }

        /// What `addr` answers to a query for `target`: its 8 closest.
        fn answer(&self, addr: &SocketAddr, target: &Id) -> Vec<NodeContact> {
            let mut list = self.knows[addr].clone();
            list.sort_by_key(|b| b.id.distance(target));
            list.truncate(8);
            list
        }

        fn closest(&self, target: &Id, k: usize) -> Vec<NodeContact> {
            let mut sorted = self.nodes.clone();
            sorted.sort_by_key(|b| b.id.distance(target));
            sorted.truncate(k);
            sorted
        }
    }

    #[test]
    fn converges_on_the_true_closest_and_respects_its_rules() {
        let mut rng = StdRng::seed_from_u64(42);
        let net = Net::new(&mut rng, 500);
        for round in 0..20 {
            let target = Id::random(&mut rng);
            let own = Id::random(&mut rng);
            let start = vec![net.nodes[round], net.nodes[round + 100]];
            let mut lookup = Lookup::new(
                Timestamp::ZERO,
                own,
                target,
                LookupKind::GetPeers,
                params(),
                start,
                [],
            );
            let mut queried = HashSet::new();
            let mut steps = 0;
            let now = Timestamp::ZERO;
            while !lookup.is_done() {
                let mut batch = Vec::new();
                while let Some(addr) = lookup.poll_query(now) {
                    assert!(queried.insert(addr), "queried {addr} twice");
                    batch.push(addr);
                }
                assert!(lookup.fast_in_flight() <= 3, "parallelism exceeded");
                assert!(!batch.is_empty(), "stalled without being done");
                for addr in batch {
                    let id = net.nodes.iter().find(|n| n.addr == addr).unwrap().id;
                    lookup.on_response(
                        now,
                        addr,
                        id,
                        &net.answer(&addr, &target),
                        &[],
                        Some(vec![1]),
                    );
                }
                steps += 1;
                assert!(steps < 200, "did not terminate");
            }
            let found: Vec<NodeContact> = lookup
                .closest_responders()
                .into_iter()
                .map(|r| r.contact)
                .collect();
            assert_eq!(found, net.closest(&target, 8), "round {round}");
        }
    }

    #[test]
    fn soft_timeout_frees_a_slot_and_hard_failure_ends_waiting() {
        let (nodes, mut lookup) = small_lookup(
            9,
            5,
            LookupKind::FindNode,
            LookupParams {
                parallelism: 1,
                ..params()
            },
        );
        let t0 = Timestamp::ZERO;
        let first = lookup.poll_query(t0).unwrap();
        assert_eq!(lookup.poll_query(t0), None, "one query at a time");
        assert_eq!(
            lookup.next_deadline(),
            Some(t0 + Duration::from_millis(500))
        );
        let t1 = t0 + Duration::from_millis(500);
        let second = lookup.poll_query(t1).unwrap();
        assert_ne!(first, second);
        // The slow first node still answers and counts.
        let id = nodes.iter().find(|n| n.addr == first).unwrap().id;
        lookup.on_response(t1, first, id, &[], &[], None);
        assert_eq!(lookup.response_count(), 1);
        // Everyone else fails: the lookup ends with the one responder.
        lookup.on_failure(second);
        while let Some(addr) = lookup.poll_query(t1) {
            lookup.on_failure(addr);
        }
        assert!(lookup.is_done());
        assert_eq!(lookup.closest_responders().len(), 1);
    }

    #[test]
    fn a_silent_node_is_given_up_at_the_hard_timeout() {
        let mut rng = StdRng::seed_from_u64(11);
        let nodes: Vec<NodeContact> = (0..3).map(|i| node(&mut rng, i)).collect();
        let t0 = Timestamp::ZERO;
        let mut lookup = Lookup::new(
            t0,
            Id::random(&mut rng),
            Id::random(&mut rng),
            LookupKind::FindNode,
            params(),
            nodes.clone(),
            [],
        );
        let sent: Vec<SocketAddr> = std::iter::from_fn(|| lookup.poll_query(t0)).collect();
        assert_eq!(sent.len(), 3);
        for addr in &sent[..2] {
            let id = nodes.iter().find(|n| n.addr == *addr).unwrap().id;
            lookup.on_response(t0, *addr, id, &[], &[], None);
        }
        assert!(!lookup.is_done(), "waits for the third node");
        lookup.on_tick(t0 + Duration::from_millis(500));
        assert!(!lookup.is_done(), "a slow node may still answer");
        assert_eq!(
            lookup.next_deadline(),
            Some(t0 + Duration::from_millis(2000))
        );
        lookup.on_tick(t0 + Duration::from_millis(2000));
        assert!(lookup.is_done(), "given up at the hard timeout");
        assert_eq!(
            (lookup.closest_responders().len(), lookup.failure_count()),
            (2, 1)
        );
    }

    #[test]
    fn peers_are_reported_once_and_bounded() {
        let (nodes, mut lookup) = small_lookup(
            5,
            2,
            LookupKind::GetPeers,
            LookupParams {
                peers_max: 3,
                ..params()
            },
        );
        let now = Timestamp::ZERO;
        let a = lookup.poll_query(now).unwrap();
        let b = lookup.poll_query(now).unwrap();
        let peers: Vec<SocketAddr> = (1..=5)
            .map(|p| SocketAddr::from(([10, 0, 0, 1], p)))
            .collect();
        let id_of = |addr| nodes.iter().find(|n| n.addr == addr).unwrap().id;
        assert_eq!(
            lookup
                .on_response(now, a, id_of(a), &[], &peers[..2], None)
                .len(),
            2
        );
        assert_eq!(
            lookup.on_response(now, b, id_of(b), &[], &peers, None),
            vec![peers[2]]
        );
        assert!(lookup.is_done());
        assert_eq!(lookup.first_peer_at(), Some(now));
    }

    #[test]
    fn a_lookup_with_nobody_to_ask_is_done_at_once() {
        let lookup = Lookup::new(
            Timestamp::ZERO,
            Id([0; 20]),
            Id([1; 20]),
            LookupKind::FindNode,
            params(),
            [],
            [],
        );
        assert!(lookup.is_done());
    }

    /// The parallelism rule, as documented on [`LookupParams`].
    fn assert_within_parallelism(lookup: &Lookup) {
        let alpha = lookup.params.parallelism;
        let window_in_flight = lookup
            .candidates
            .iter()
            .filter(|c| {
                !matches!(
                    c.state,
                    CandidateState::Failed | CandidateState::Slow { .. }
                )
            })
            .take(lookup.params.bucket_size)
            .filter(|c| matches!(c.state, CandidateState::InFlight { .. }))
            .count();
        assert!(
            window_in_flight <= alpha,
            "{window_in_flight} in flight to the k closest, alpha {alpha}"
        );
        assert!(
            lookup.fast_in_flight() <= 2 * alpha,
            "{} fast queries, alpha {alpha}",
            lookup.fast_in_flight()
        );
    }

    proptest::proptest! {
        /// Against any mix of answering, silent and late nodes and any order
        /// of events, a lookup stays within its parallelism, never queries an
        /// address twice, and terminates.
        #[test]
        fn lookup_properties_hold_under_any_schedule(
            seed in proptest::prelude::any::<u64>(),
            size in 1u32..300,
            alpha in 1usize..9,
            silent_percent in 0u32..90,
            window_only in proptest::prelude::any::<bool>(),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let net = Net::new(&mut rng, size);
            let silent: HashSet<SocketAddr> = net
                .nodes
                .iter()
                .filter(|_| rng.random_range(0..100) < silent_percent)
                .map(|n| n.addr)
                .collect();
            let params = LookupParams { parallelism: alpha, count_window_only: window_only, ..params() };
            let target = Id::random(&mut rng);
            let start: Vec<NodeContact> = net.nodes.iter().take(3).copied().collect();
            let mut now = Timestamp::ZERO;
            let mut lookup = Lookup::new(now, Id::random(&mut rng), target, LookupKind::GetPeers, params, start, []);
            let mut queried = HashSet::new();
            let mut pending: Vec<SocketAddr> = Vec::new();
            for _ in 0..100_000 {
                if lookup.is_done() {
                    break;
                }
                while let Some(addr) = lookup.poll_query(now) {
                    proptest::prop_assert!(queried.insert(addr), "queried {} twice", addr);
                    if !silent.contains(&addr) {
                        pending.push(addr);
                    }
                    assert_within_parallelism(&lookup);
                }
                assert_within_parallelism(&lookup);
                match rng.random_range(0..4) {
                    0 | 1 if !pending.is_empty() => {
                        let addr = pending.swap_remove(rng.random_range(0..pending.len()));
                        let id = net.nodes.iter().find(|n| n.addr == addr).map(|n| n.id).unwrap_or_default();
                        lookup.on_response(now, addr, id, &net.answer(&addr, &target), &[], None);
                    }
                    2 if !pending.is_empty() => {
                        let addr = pending.swap_remove(rng.random_range(0..pending.len()));
                        lookup.on_failure(addr);
                    }
                    _ => {
                        now += Duration::from_millis(rng.random_range(1..400));
                        lookup.on_tick(now);
                    }
                }
            }
            proptest::prop_assert!(lookup.is_done(), "did not terminate");
            proptest::prop_assert!(lookup.next_deadline().is_none());
        }
    }
}
