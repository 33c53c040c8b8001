//! The routing table (BEP 5): buckets of at most k nodes, split as our own ID's
//! bucket fills, good / questionable / bad node states, and a replacement
//! cache per bucket.
//!
//! Representation: bucket `i` (for all but the last) holds nodes whose ID
//! shares exactly `i` leading bits with ours; the last bucket holds every node
//! sharing at least `buckets.len() - 1` bits. This is BEP 5's splitting table
//! (only the bucket covering our own ID ever splits), stored as a vector.
//! Every entry is unique by address and by ID.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::time::Timestamp;
use crate::wire::{NodeContact, NodeId};

/// The most buckets a 160-bit keyspace can need.
const BUCKETS_MAX: usize = 160;

/// The health of a routing-table entry (BEP 5 "Routing Table").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Answered one of our queries recently.
    Good,
    /// Not heard from recently, or never verified by an answer.
    Questionable,
    /// Failed to answer several queries in a row.
    Bad,
}

/// One node in the table.
#[derive(Debug, Clone)]
pub struct RoutingEntry {
    /// The node's ID and address.
    pub contact: NodeContact,
    /// When it last answered one of our queries.
    pub last_response: Option<Timestamp>,
    /// When it last sent us a query.
    pub last_query: Option<Timestamp>,
    /// Our queries it failed to answer since its last answer.
    pub failures: u8,
}

/// A bucket and the nodes waiting to take a place in it.
#[derive(Debug, Clone, Default)]
struct Bucket {
    entries: Vec<RoutingEntry>,
    replacements: VecDeque<NodeContact>,
    last_changed: Timestamp,
}

/// What happened to a node offered to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum InsertOutcome {
    /// It is now in the table (or was, and was updated).
    Inserted,
    /// Its bucket is full of live nodes; it waits in the replacement cache.
    /// The questionable node named here should be pinged: if it fails, the
    /// newcomer takes its place.
    Cached {
        /// The least recently seen questionable node in the bucket, if any.
        ping: Option<NodeContact>,
    },
    /// Refused: our own ID, or an ID a good node at another address holds.
    Rejected,
}

/// Thresholds the table needs to classify nodes.
#[derive(Debug, Clone)]
pub struct RoutingLimits {
    /// k: entries per bucket.
    pub bucket_size: usize,
    /// Larger capacities for the farthest buckets, index 0 first (the half
    /// of the keyspace sharing no bit with us). A lookup's first hop comes
    /// from these, so more choice there means fewer hops (Jimenez et al.,
    /// IEEE P2P 2011). Buckets past the list hold `bucket_size`.
    pub far_bucket_sizes: Vec<usize>,
    /// Entries per replacement cache.
    pub replacement_cache_size: usize,
    /// Silence after which a good node becomes questionable.
    pub node_questionable_after: Duration,
    /// Consecutive failures after which a node is bad.
    pub node_failures_max: u8,
}

/// The routing table of one node.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    own_id: NodeId,
    limits: RoutingLimits,
    buckets: Vec<Bucket>,
    by_addr: HashMap<SocketAddr, NodeId>,
}

impl RoutingTable {
    /// An empty table for a node with ID `own_id`.
    pub fn new(own_id: NodeId, limits: RoutingLimits) -> RoutingTable {
        RoutingTable {
            own_id,
            limits,
            buckets: vec![Bucket::default()],
            by_addr: HashMap::new(),
        }
    }

    /// The ID the table is organised around.
    pub fn own_id(&self) -> NodeId {
        self.own_id
    }

    /// Offers a node. `verified` is true when it just answered our query: only
    /// such nodes are inserted into a full bucket's place or counted good.
    pub fn insert(
        &mut self,
        now: Timestamp,
        contact: NodeContact,
        verified: bool,
    ) -> InsertOutcome {
        if contact.id == self.own_id {
            return InsertOutcome::Rejected;
        }
        // One entry per address: a node that changed its ID replaces itself.
        if let Some(old_id) = self.by_addr.get(&contact.addr).copied() {
            if old_id == contact.id {
                if verified {
                    let bucket = self.bucket_index(&contact.id);
                    if let Some(entry) = self.entry_mut(&contact.id) {
                        entry.last_response = Some(now);
                        entry.failures = 0;
                    }
                    self.buckets[bucket].last_changed = now;
                }
                return InsertOutcome::Inserted;
            }
            self.remove_id(&old_id);
        }
        // One entry per ID: a good node keeps its place against an impostor.
        if let Some(existing) = self.get(&contact.id) {
            if self.status(now, existing) == NodeStatus::Good {
                return InsertOutcome::Rejected;
            }
            let id = contact.id;
            self.remove_id(&id);
        }
        loop {
            let index = self.bucket_index(&contact.id);
            let capacity = self.capacity(index);
            let bucket = &mut self.buckets[index];
            if bucket.entries.len() < capacity {
                bucket.entries.push(new_entry(now, contact, verified));
                bucket.last_changed = now;
                bucket.replacements.retain(|c| c.addr != contact.addr);
                self.by_addr.insert(contact.addr, contact.id);
                return InsertOutcome::Inserted;
            }
            if index == self.buckets.len() - 1 && self.buckets.len() < BUCKETS_MAX {
                self.split_last();
                continue;
            }
            return self.insert_into_full(now, index, contact, verified);
        }
    }

    /// Records that the node at `addr` answered one of our queries.
    pub fn record_response(&mut self, now: Timestamp, contact: NodeContact) -> InsertOutcome {
        self.insert(now, contact, true)
    }

    /// Records that `contact` sent us a query: it stays good if it ever answered.
    pub fn record_query(&mut self, now: Timestamp, contact: &NodeContact) -> bool {
        if self.by_addr.get(&contact.addr) != Some(&contact.id) {
            return false;
        }
        if let Some(entry) = self.entry_mut(&contact.id) {
            entry.last_query = Some(now);
        }
        true
    }

    /// Records that the node at `addr` did not answer. When it turns bad and a
    /// replacement waits, the replacement takes its place; returns that
    /// replacement so the caller can verify it.
    pub fn record_failure(&mut self, addr: &SocketAddr) -> Option<NodeContact> {
        let id = *self.by_addr.get(addr)?;
        let failures_max = self.limits.node_failures_max;
        let index = self.bucket_index(&id);
        let bucket = &mut self.buckets[index];
        let position = bucket.entries.iter().position(|e| e.contact.id == id)?;
        let entry = &mut bucket.entries[position];
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures < failures_max {
            return None;
        }
        // Bad. Swap in a replacement if one waits; a bad node with nobody to
        // replace it stays, as BEP 5 keeps it until something better comes.
        let replacement = bucket.replacements.pop_back()?;
        bucket.entries.remove(position);
        self.by_addr.remove(addr);
        Some(replacement)
    }

    /// Whether a node at `addr` with `id` would get a place without evicting
    /// anyone: worth verifying with a ping.
    pub fn has_room_for(&self, contact: &NodeContact) -> bool {
        if contact.id == self.own_id || self.by_addr.contains_key(&contact.addr) {
            return false;
        }
        let index = self.bucket_index(&contact.id);
        self.buckets[index].entries.len() < self.capacity(index)
            || (index == self.buckets.len() - 1 && self.buckets.len() < BUCKETS_MAX)
    }

    /// The node with this ID, if present.
    pub fn get(&self, id: &NodeId) -> Option<&RoutingEntry> {
        let index = self.bucket_index(id);
        self.buckets[index]
            .entries
            .iter()
            .find(|e| e.contact.id == *id)
    }

    /// Classifies an entry at time `now`.
    pub fn status(&self, now: Timestamp, entry: &RoutingEntry) -> NodeStatus {
        if entry.failures >= self.limits.node_failures_max {
            return NodeStatus::Bad;
        }
        let recent = |t: Option<Timestamp>| {
            t.is_some_and(|t| now.saturating_since(t) < self.limits.node_questionable_after)
        };
        if recent(entry.last_response)
            || (entry.last_response.is_some() && recent(entry.last_query))
        {
            NodeStatus::Good
        } else {
            NodeStatus::Questionable
        }
    }

    /// Up to `count` non-bad nodes closest to `target`, closest first.
    pub fn closest(&self, now: Timestamp, target: &NodeId, count: usize) -> Vec<NodeContact> {
        self.closest_matching(now, target, count, |_| true)
    }

    /// Like [`closest`](Self::closest), among nodes for which `keep` is true
    /// (replies carry IPv4 and IPv6 nodes in separate keys).
    pub fn closest_matching(
        &self,
        now: Timestamp,
        target: &NodeId,
        count: usize,
        keep: impl Fn(&NodeContact) -> bool,
    ) -> Vec<NodeContact> {
        let mut all: Vec<&RoutingEntry> = self
            .entries()
            .filter(|e| keep(&e.contact) && self.status(now, e) != NodeStatus::Bad)
            .collect();
        all.sort_by_key(|e| e.contact.id.distance(target));
        all.into_iter().take(count).map(|e| e.contact).collect()
    }

    /// Every entry, bucket by bucket.
    pub fn entries(&self) -> impl Iterator<Item = &RoutingEntry> {
        self.buckets.iter().flat_map(|b| b.entries.iter())
    }

    /// Number of nodes in the table.
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether the table holds no node.
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// Number of nodes that are good at `now`.
    pub fn good_count(&self, now: Timestamp) -> usize {
        self.entries()
            .filter(|e| self.status(now, e) == NodeStatus::Good)
            .count()
    }

    /// Number of buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Buckets (by index, which is also the prefix length they cover) not
    /// changed since `before`.
    pub fn stale_buckets(&self, before: Timestamp) -> Vec<usize> {
        (0..self.buckets.len())
            .filter(|&i| self.buckets[i].last_changed < before)
            .collect()
    }

    /// Marks bucket `index` as just refreshed.
    pub fn touch_bucket(&mut self, now: Timestamp, index: usize) {
        if let Some(bucket) = self.buckets.get_mut(index) {
            bucket.last_changed = now;
        }
    }

    fn insert_into_full(
        &mut self,
        now: Timestamp,
        index: usize,
        contact: NodeContact,
        verified: bool,
    ) -> InsertOutcome {
        let failures_max = self.limits.node_failures_max;
        let bucket = &mut self.buckets[index];
        if verified
            && let Some(position) = bucket
                .entries
                .iter()
                .position(|e| e.failures >= failures_max)
        {
            let old = bucket.entries.remove(position);
            bucket.entries.push(new_entry(now, contact, verified));
            bucket.last_changed = now;
            self.by_addr.remove(&old.contact.addr);
            self.by_addr.insert(contact.addr, contact.id);
            return InsertOutcome::Inserted;
        }
        let cache_size = self.limits.replacement_cache_size;
        let bucket = &mut self.buckets[index];
        bucket
            .replacements
            .retain(|c| c.addr != contact.addr && c.id != contact.id);
        if bucket.replacements.len() >= cache_size {
            bucket.replacements.pop_front();
        }
        bucket.replacements.push_back(contact);
        let bucket = &self.buckets[index];
        let ping = bucket
            .entries
            .iter()
            .filter(|e| self.status(now, e) == NodeStatus::Questionable)
            .min_by_key(|e| e.last_response.max(e.last_query))
            .map(|e| e.contact);
        InsertOutcome::Cached { ping }
    }

    /// How many entries bucket `index` may hold. The last bucket (the one
    /// that splits) always holds k, so splitting works as BEP 5 describes.
    fn capacity(&self, index: usize) -> usize {
        if index + 1 == self.buckets.len() {
            return self.limits.bucket_size;
        }
        self.limits
            .far_bucket_sizes
            .get(index)
            .copied()
            .unwrap_or(self.limits.bucket_size)
            .max(self.limits.bucket_size)
    }

    fn bucket_index(&self, id: &NodeId) -> usize {
        self.own_id
            .common_prefix_len(id)
            .min(self.buckets.len() - 1)
    }

    fn entry_mut(&mut self, id: &NodeId) -> Option<&mut RoutingEntry> {
        let index = self.bucket_index(id);
        self.buckets[index]
            .entries
            .iter_mut()
            .find(|e| e.contact.id == *id)
    }

    fn remove_id(&mut self, id: &NodeId) {
        let index = self.bucket_index(id);
        let bucket = &mut self.buckets[index];
        if let Some(position) = bucket.entries.iter().position(|e| e.contact.id == *id) {
            let entry = bucket.entries.remove(position);
            self.by_addr.remove(&entry.contact.addr);
        }
    }

    /// Splits the last bucket: nodes sharing more bits with us move to a new last bucket.
    fn split_last(&mut self) {
        let depth = self.buckets.len() - 1;
        let own_id = self.own_id;
        let last = self
            .buckets
            .last_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let (stay, go): (Vec<_>, Vec<_>) = last
            .entries
            .into_iter()
            .partition(|e| own_id.common_prefix_len(&e.contact.id) == depth);
        let (stay_r, go_r): (VecDeque<_>, VecDeque<_>) = last
            .replacements
            .into_iter()
            .partition(|c| own_id.common_prefix_len(&c.id) == depth);
        let index = self.buckets.len() - 1;
        self.buckets[index] = Bucket {
            entries: stay,
            replacements: stay_r,
            last_changed: last.last_changed,
        };
        self.buckets.push(Bucket {
            entries: go,
            replacements: go_r,
            last_changed: last.last_changed,
        });
    }
}

fn new_entry(now: Timestamp, contact: NodeContact, verified: bool) -> RoutingEntry {
    RoutingEntry {
        contact,
        last_response: verified.then_some(now),
        last_query: None,
        failures: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Id;
    use rand::SeedableRng;

    fn limits() -> RoutingLimits {
        RoutingLimits {
            bucket_size: 8,
            far_bucket_sizes: Vec::new(),
            replacement_cache_size: 4,
            node_questionable_after: Duration::from_secs(900),
            node_failures_max: 2,
        }
    }

    fn contact(id: Id, last_octet: u8, port: u16) -> NodeContact {
        NodeContact {
            id,
            addr: SocketAddr::from(([127, 0, 0, last_octet], port)),
        }
    }

    #[test]
    fn splits_own_bucket_and_keeps_entries_unique() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let own = Id::random(&mut rng);
        let mut table = RoutingTable::new(own, limits());
        let now = Timestamp::ZERO;
        for i in 0..2000u32 {
            let id = Id::random(&mut rng);
            let _ = table.insert(now, contact(id, (i % 250) as u8 + 1, 1000 + i as u16), true);
        }
        // Every bucket within k, addresses unique, and the close buckets exist.
        assert!(table.bucket_count() > 5);
        for bucket in &table.buckets {
            assert!(bucket.entries.len() <= 8);
            assert!(bucket.replacements.len() <= 4);
        }
        let entries: Vec<_> = table.entries().collect();
        assert_eq!(entries.len(), table.len());
        let mut addrs: Vec<_> = entries.iter().map(|e| e.contact.addr).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), entries.len());
        // Far buckets are full: half the random IDs land in bucket 0.
        assert_eq!(table.buckets[0].entries.len(), 8);
    }

    #[test]
    fn a_node_that_changes_its_id_replaces_itself() {
        let own = Id([0; 20]);
        let mut table = RoutingTable::new(own, limits());
        let now = Timestamp::ZERO;
        let addr_node = contact(Id([0x80; 20]), 2, 6881);
        assert_eq!(table.insert(now, addr_node, true), InsertOutcome::Inserted);
        let renamed = contact(Id([0x40; 20]), 2, 6881);
        assert_eq!(table.insert(now, renamed, true), InsertOutcome::Inserted);
        assert_eq!(table.len(), 1);
        assert_eq!(table.entries().next().unwrap().contact, renamed);
    }

    #[test]
    fn a_good_node_keeps_its_id_against_another_address() {
        let own = Id([0; 20]);
        let mut table = RoutingTable::new(own, limits());
        let now = Timestamp::ZERO;
        let original = contact(Id([0x80; 20]), 2, 6881);
        let _ = table.insert(now, original, true);
        let impostor = contact(Id([0x80; 20]), 3, 6881);
        assert_eq!(table.insert(now, impostor, true), InsertOutcome::Rejected);
        assert_eq!(table.get(&Id([0x80; 20])).unwrap().contact, original);
    }

    #[test]
    fn full_bucket_caches_and_replaces_bad_nodes() {
        let own = Id([0; 20]);
        let mut table = RoutingTable::new(own, limits());
        let now = Timestamp::ZERO;
        // Fill bucket 0 (IDs starting with bit 1) while keeping our own bucket
        // from splitting past it: all these share 0 bits with us.
        let mut far = Vec::new();
        for i in 0..8u8 {
            let mut id = Id([0xff; 20]);
            id.0[19] = i;
            far.push(contact(id, 10 + i, 6881));
            assert_eq!(
                table.insert(now, far[i as usize], true),
                InsertOutcome::Inserted
            );
        }
        // Split happens once something close to us arrives.
        let _ = table.insert(now, contact(Id([0x01; 20]), 50, 6881), true);
        let mut newcomer_id = Id([0xff; 20]);
        newcomer_id.0[19] = 100;
        let newcomer = contact(newcomer_id, 60, 6881);
        let later = now + Duration::from_secs(1000);
        match table.insert(later, newcomer, true) {
            InsertOutcome::Cached { ping: Some(q) } => assert!(far.contains(&q)),
            other => panic!("expected Cached with a ping, got {other:?}"),
        }
        assert_eq!(table.record_failure(&far[0].addr), None);
        assert_eq!(table.record_failure(&far[0].addr), Some(newcomer));
        assert!(table.get(&far[0].id).is_none());
        // The replacement comes back unverified to the caller, which pings it.
        assert!(table.has_room_for(&newcomer) || table.get(&newcomer.id).is_none());
    }

    #[test]
    fn status_follows_responses_and_queries() {
        let own = Id([0; 20]);
        let mut table = RoutingTable::new(own, limits());
        let t0 = Timestamp::ZERO;
        let node = contact(Id([0x80; 20]), 2, 6881);
        let _ = table.insert(t0, node, false);
        let entry = table.get(&node.id).unwrap().clone();
        assert_eq!(table.status(t0, &entry), NodeStatus::Questionable);
        let _ = table.record_response(t0, node);
        let entry = table.get(&node.id).unwrap().clone();
        assert_eq!(table.status(t0, &entry), NodeStatus::Good);
        let t1 = t0 + Duration::from_secs(901);
        assert_eq!(table.status(t1, &entry), NodeStatus::Questionable);
        assert!(table.record_query(t1, &node));
        let entry = table.get(&node.id).unwrap().clone();
        assert_eq!(table.status(t1, &entry), NodeStatus::Good);
        table.record_failure(&node.addr);
        table.record_failure(&node.addr);
        let entry = table.get(&node.id).unwrap().clone();
        assert_eq!(table.status(t1, &entry), NodeStatus::Bad);
    }
}
