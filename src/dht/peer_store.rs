//! Peers that others announced to us (BEP 5 announce_peer), kept for get_peers.
//!
//! Bounded in both directions: at most `info_hashes_max` swarms (the least
//! recently announced swarm is evicted for a new one) and at most
//! `peers_per_info_hash_max` peers per swarm (the oldest announcement is
//! replaced). Entries expire after `peer_ttl`.

use std::net::SocketAddr;
use std::time::Duration;

use lru::LruCache;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::time::Timestamp;
use crate::wire::InfoHash;

/// Bounds of the store.
#[derive(Debug, Clone, Copy)]
pub struct PeerStoreLimits {
    /// Swarms kept.
    pub info_hashes_max: usize,
    /// Peers kept per swarm.
    pub peers_per_info_hash_max: usize,
    /// Lifetime of an announcement.
    pub peer_ttl: Duration,
}

/// Announced peers, by info-hash.
pub struct PeerStore {
    limits: PeerStoreLimits,
    swarms: LruCache<InfoHash, Vec<(SocketAddr, Timestamp)>>,
    peers_total: usize,
}

impl PeerStore {
    /// An empty store.
    pub fn new(limits: PeerStoreLimits) -> PeerStore {
        PeerStore {
            limits,
            swarms: LruCache::unbounded(),
            peers_total: 0,
        }
    }

    /// Records (or refreshes) `peer` in the swarm of `info_hash`.
    pub fn announce(&mut self, now: Timestamp, info_hash: InfoHash, peer: SocketAddr) {
        if !self.swarms.contains(&info_hash)
            && self.swarms.len() >= self.limits.info_hashes_max
            && let Some((_, evicted)) = self.swarms.pop_lru()
        {
            self.peers_total -= evicted.len();
        }
        let peers = self.swarms.get_or_insert_mut(info_hash, Vec::new);
        if let Some(entry) = peers.iter_mut().find(|(addr, _)| *addr == peer) {
            entry.1 = now;
            return;
        }
        if peers.len() >= self.limits.peers_per_info_hash_max {
            if let Some(oldest) = peers.iter_mut().min_by_key(|(_, at)| *at) {
                *oldest = (peer, now);
            }
            return;
        }
        peers.push((peer, now));
        self.peers_total += 1;
    }

    /// Up to `count` live peers of `info_hash` of one address family
    /// (IPv6 when `ipv6`), a random sample when there are more.
    pub fn peers(
        &self,
        now: Timestamp,
        info_hash: &InfoHash,
        count: usize,
        ipv6: bool,
        rng: &mut impl Rng,
    ) -> Vec<SocketAddr> {
        let Some(peers) = self.swarms.peek(info_hash) else {
            return Vec::new();
        };
        let mut live: Vec<SocketAddr> = peers
            .iter()
            .filter(|(addr, at)| {
                addr.is_ipv6() == ipv6 && now.saturating_since(*at) < self.limits.peer_ttl
            })
            .map(|(addr, _)| *addr)
            .collect();
        if live.len() > count {
            live.shuffle(rng);
            live.truncate(count);
        }
        live
    }

    /// Drops expired announcements and empty swarms.
    pub fn expire(&mut self, now: Timestamp) {
        let ttl = self.limits.peer_ttl;
        let mut empty = Vec::new();
        let mut removed = 0;
        for (info_hash, peers) in self.swarms.iter_mut() {
            let before = peers.len();
            peers.retain(|(_, at)| now.saturating_since(*at) < ttl);
            removed += before - peers.len();
            if peers.is_empty() {
                empty.push(*info_hash);
            }
        }
        self.peers_total -= removed;
        for info_hash in empty {
            self.swarms.pop(&info_hash);
        }
    }

    /// Number of swarms stored.
    pub fn info_hash_count(&self) -> usize {
        self.swarms.len()
    }

    /// Number of peers stored over all swarms.
    pub fn peer_count(&self) -> usize {
        self.peers_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Id;
    use rand::SeedableRng;

    #[test]
    fn bounded_in_swarms_and_peers_and_expiring() {
        let limits = PeerStoreLimits {
            info_hashes_max: 3,
            peers_per_info_hash_max: 5,
            peer_ttl: Duration::from_secs(60),
        };
        let mut store = PeerStore::new(limits);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let t0 = Timestamp::ZERO;
        for swarm in 0..10u8 {
            for port in 0..20u16 {
                store.announce(
                    t0,
                    Id([swarm; 20]),
                    SocketAddr::from(([127, 0, 0, 1], 1000 + port)),
                );
            }
        }
        assert_eq!(store.info_hash_count(), 3);
        assert_eq!(store.peer_count(), 15);
        assert!(
            store
                .peers(t0, &Id([0; 20]), 100, false, &mut rng)
                .is_empty(),
            "evicted"
        );
        assert_eq!(store.peers(t0, &Id([9; 20]), 100, false, &mut rng).len(), 5);
        assert_eq!(store.peers(t0, &Id([9; 20]), 2, false, &mut rng).len(), 2);
        assert!(
            store
                .peers(t0, &Id([9; 20]), 100, true, &mut rng)
                .is_empty(),
            "no IPv6 peers"
        );
        let later = t0 + Duration::from_secs(61);
        assert!(
            store
                .peers(later, &Id([9; 20]), 100, false, &mut rng)
                .is_empty()
        );
        store.expire(later);
        assert_eq!((store.info_hash_count(), store.peer_count()), (0, 0));
    }
}
