//! Assembling a torrent's info dictionary from ut_metadata pieces (BEP 9),
//! fetched from several peers at once and trusted only after its SHA-1
//! equals the info-hash.
//!
//! Pure state: the owner reports what peers announce and send, asks which
//! piece to request from whom, and gets the verified bytes at the end.
//! Peers are named by a [`PeerKey`] the owner chooses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use crate::time::Timestamp;
use crate::wire::InfoHash;
use crate::wire::extension::{METADATA_PIECE_SIZE, metadata_piece_count, metadata_piece_len};
use crate::wire::metainfo::{METADATA_SIZE_MAX, info_hash};

/// The owner's name for a peer connection.
pub type PeerKey = u64;

/// Bounds and timers of one assembly.
#[derive(Debug, Clone, Copy)]
pub struct AssemblerLimits {
    /// Largest metadata accepted (libtorrent's default: 30 MiB).
    pub metadata_size_max: usize,
    /// Pieces requested from one peer at a time.
    pub requests_per_peer_max: usize,
    /// A piece not received this long after its request is asked of another peer.
    pub request_timeout: Duration,
}

impl Default for AssemblerLimits {
    fn default() -> AssemblerLimits {
        AssemblerLimits {
            metadata_size_max: METADATA_SIZE_MAX,
            requests_per_peer_max: 8,
            request_timeout: Duration::from_secs(3),
        }
    }
}

/// Why a peer's contribution was refused. The peer is not asked again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// It announced a size of zero or above the limit.
    #[error("metadata size {0} is zero or above the limit")]
    BadSize(usize),
    /// It announced a size other than the one being assembled.
    #[error("metadata size {announced} differs from {expected}")]
    SizeMismatch {
        /// What the peer announced.
        announced: usize,
        /// What is being assembled.
        expected: usize,
    },
    /// It sent a piece we did not ask it for, or with the wrong length.
    #[error("unrequested or malformed metadata piece {0}")]
    UnexpectedPiece(u32),
    /// It contributed to metadata whose SHA-1 did not match the info-hash.
    #[error("peer sent data of metadata that failed the hash check")]
    Distrusted,
}

/// What a piece completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// More pieces are needed.
    Incomplete,
    /// All pieces arrived and their SHA-1 is the info-hash: the info dictionary.
    Verified(Vec<u8>),
    /// All pieces arrived but the hash did not match, and the assembly
    /// starts over, one peer at a time. A peer that sent every piece alone
    /// is distrusted; pieces from several peers blame nobody yet.
    HashMismatch {
        /// The peers now distrusted (empty when several peers contributed).
        distrusted: Vec<PeerKey>,
    },
}

#[derive(Debug, Default)]
struct PeerState {
    size: usize,
    in_flight: usize,
    rejected: HashSet<u32>,
}

/// One metadata download.
pub struct MetadataAssembler {
    info_hash: InfoHash,
    limits: AssemblerLimits,
    size: Option<usize>,
    pieces: Vec<Option<Vec<u8>>>,
    senders: Vec<Option<PeerKey>>,
    in_flight: BTreeMap<u32, Vec<(PeerKey, Timestamp)>>,
    peers: HashMap<PeerKey, PeerState>,
    distrusted: HashSet<PeerKey>,
    received_bytes: usize,
    /// After a check failed on pieces from several peers, nobody can be
    /// blamed; from then on each attempt takes every piece from one peer,
    /// so a second failure names the liar.
    single_source: bool,
    source: Option<PeerKey>,
    /// Requests outstanding when an attempt was restarted: their late
    /// answers are ignored, not held against the (possibly honest) sender.
    stale: HashSet<(PeerKey, u32)>,
}

impl MetadataAssembler {
    /// Starts assembling the metadata of `info_hash`.
    pub fn new(info_hash: InfoHash, limits: AssemblerLimits) -> MetadataAssembler {
        MetadataAssembler {
            info_hash,
            limits,
            size: None,
            pieces: Vec::new(),
            senders: Vec::new(),
            in_flight: BTreeMap::new(),
            peers: HashMap::new(),
            distrusted: HashSet::new(),
            received_bytes: 0,
            single_source: false,
            source: None,
            stale: HashSet::new(),
        }
    }

    /// Records the metadata size `peer` announced in its extended handshake.
    pub fn add_peer(&mut self, peer: PeerKey, size: usize) -> Result<(), AssemblyError> {
        if self.distrusted.contains(&peer) {
            return Err(AssemblyError::Distrusted);
        }
        if size == 0 || size > self.limits.metadata_size_max {
            return Err(AssemblyError::BadSize(size));
        }
        match self.size {
            None => self.start(size),
            Some(expected) if expected != size => {
                // Remember the claim: if the current size turns out wrong,
                // this peer may be the honest one.
                self.remove_peer(peer);
                self.peers.insert(
                    peer,
                    PeerState {
                        size,
                        ..PeerState::default()
                    },
                );
                return Err(AssemblyError::SizeMismatch {
                    announced: size,
                    expected,
                });
            }
            Some(_) => {}
        }
        match self.peers.get(&peer) {
            // A repeated extended handshake: keep its requests and counts.
            Some(state) if state.size == size => {}
            _ => {
                self.remove_peer(peer);
                self.peers.insert(
                    peer,
                    PeerState {
                        size,
                        ..PeerState::default()
                    },
                );
            }
        }
        Ok(())
    }

    /// The next piece to request from `peer` now, if any. Call until `None`.
    /// Missing pieces nobody is fetching come first; then pieces whose
    /// request timed out elsewhere.
    pub fn next_request(&mut self, now: Timestamp, peer: PeerKey) -> Option<u32> {
        let size = self.size?;
        let state = self.peers.get(&peer)?;
        if state.size != size || state.in_flight >= self.limits.requests_per_peer_max {
            return None;
        }
        let timeout = self.limits.request_timeout;
        if self.single_source
            && let Some(source) = self.source.filter(|&source| source != peer)
        {
            // Another peer is the source; take over only if it stalled.
            let stalled = self
                .in_flight
                .values()
                .flatten()
                .filter(|(p, _)| *p == source)
                .all(|(_, at)| now.saturating_since(*at) >= timeout);
            if !stalled {
                return None;
            }
            self.source = None;
        }
        let mut choice = None;
        for (index, piece) in self.pieces.iter().enumerate() {
            let index = index as u32;
            if piece.is_some() || state.rejected.contains(&index) {
                continue;
            }
            let requests = self.in_flight.get(&index);
            if requests.is_some_and(|r| r.iter().any(|(p, _)| *p == peer)) {
                continue;
            }
            match requests {
                None => {
                    choice = Some(index);
                    break;
                }
                Some(r)
                    if choice.is_none()
                        && r.iter().all(|(_, at)| now.saturating_since(*at) >= timeout) =>
                {
                    choice = Some(index);
                }
                Some(_) => {}
            }
        }
        let index = choice?;
        if self.single_source {
            self.source = Some(peer);
        }
        self.in_flight.entry(index).or_default().push((peer, now));
        if let Some(state) = self.peers.get_mut(&peer) {
            state.in_flight += 1;
        }
        Some(index)
    }

    /// Records a piece from `peer`.
    pub fn on_piece(
        &mut self,
        peer: PeerKey,
        piece: u32,
        data: Vec<u8>,
    ) -> Result<Completion, AssemblyError> {
        let size = self.size.ok_or(AssemblyError::UnexpectedPiece(piece))?;
        let asked = self.take_request(peer, piece);
        if !asked && self.stale.remove(&(peer, piece)) {
            return Ok(Completion::Incomplete);
        }
        if !asked || metadata_piece_len(size, piece) != Some(data.len()) {
            return Err(AssemblyError::UnexpectedPiece(piece));
        }
        let index = piece as usize;
        if self.pieces[index].is_some() {
            return Ok(Completion::Incomplete);
        }
        self.received_bytes += data.len();
        self.pieces[index] = Some(data);
        self.senders[index] = Some(peer);
        if self.pieces.iter().any(Option::is_none) {
            return Ok(Completion::Incomplete);
        }
        let mut bytes = Vec::with_capacity(size);
        for piece in self.pieces.iter().flatten() {
            bytes.extend_from_slice(piece);
        }
        if info_hash(&bytes) == self.info_hash {
            return Ok(Completion::Verified(bytes));
        }
        let mut senders: Vec<PeerKey> = self.senders.iter().flatten().copied().collect();
        senders.sort_unstable();
        senders.dedup();
        let distrusted = if senders.len() == 1 {
            self.distrusted.extend(senders.iter().copied());
            senders
        } else {
            Vec::new()
        };
        self.single_source = true;
        self.source = None;
        self.restart();
        Ok(Completion::HashMismatch { distrusted })
    }

    /// Records that `peer` refused `piece`: ask someone else.
    pub fn on_reject(&mut self, peer: PeerKey, piece: u32) {
        self.take_request(peer, piece);
        if self.source == Some(peer) {
            self.source = None;
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.rejected.insert(piece);
        }
    }

    /// Forgets `peer` (disconnected): its requests go to others.
    pub fn remove_peer(&mut self, peer: PeerKey) {
        for requests in self.in_flight.values_mut() {
            requests.retain(|(p, _)| *p != peer);
        }
        self.in_flight.retain(|_, r| !r.is_empty());
        self.stale.retain(|(p, _)| *p != peer);
        self.peers.remove(&peer);
        if self.source == Some(peer) {
            self.source = None;
        }
    }

    /// The size being assembled, once a peer announced one.
    pub fn size(&self) -> Option<usize> {
        self.size
    }

    /// Bytes of metadata held now (never more than the size limit).
    pub fn received_bytes(&self) -> usize {
        self.received_bytes
    }

    /// Whether `peer` sent data of metadata that failed the hash check.
    pub fn is_distrusted(&self, peer: PeerKey) -> bool {
        self.distrusted.contains(&peer)
    }

    fn start(&mut self, size: usize) {
        for (piece, requests) in std::mem::take(&mut self.in_flight) {
            for (peer, _) in requests {
                // Bounded: at most requests_per_peer_max per connected peer.
                self.stale.insert((peer, piece));
            }
        }
        let count = metadata_piece_count(size);
        debug_assert!(count * METADATA_PIECE_SIZE >= size);
        self.size = Some(size);
        self.pieces = vec![None; count];
        self.senders = vec![None; count];
        self.in_flight.clear();
        self.received_bytes = 0;
    }

    /// After a failed hash check: start over with the size most trusted
    /// peers announced.
    fn restart(&mut self) {
        self.peers.retain(|peer, _| !self.distrusted.contains(peer));
        let mut votes: BTreeMap<usize, usize> = BTreeMap::new();
        for state in self.peers.values() {
            *votes.entry(state.size).or_default() += 1;
        }
        for state in self.peers.values_mut() {
            state.in_flight = 0;
            state.rejected.clear();
        }
        match votes
            .into_iter()
            .max_by_key(|(size, count)| (*count, std::cmp::Reverse(*size)))
        {
            Some((size, _)) => self.start(size),
            None => {
                self.size = None;
                self.pieces.clear();
                self.senders.clear();
                self.in_flight.clear();
                self.received_bytes = 0;
            }
        }
    }

    fn take_request(&mut self, peer: PeerKey, piece: u32) -> bool {
        let Some(requests) = self.in_flight.get_mut(&piece) else {
            return false;
        };
        let before = requests.len();
        requests.retain(|(p, _)| *p != peer);
        let asked = requests.len() < before;
        if requests.is_empty() {
            self.in_flight.remove(&piece);
        }
        if asked && let Some(state) = self.peers.get_mut(&peer) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
        asked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(len: usize) -> (Vec<u8>, InfoHash) {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let hash = info_hash(&bytes);
        (bytes, hash)
    }

    /// Lets `peer` honestly deliver every piece it is asked for; the last result.
    fn deliver_all(
        assembler: &mut MetadataAssembler,
        now: Timestamp,
        peer: PeerKey,
        bytes: &[u8],
    ) -> Completion {
        let mut result = Completion::Incomplete;
        while let Some(piece) = assembler.next_request(now, peer) {
            result = assembler
                .on_piece(peer, piece, piece_of(bytes, piece))
                .unwrap();
        }
        result
    }

    fn piece_of(bytes: &[u8], piece: u32) -> Vec<u8> {
        let start = piece as usize * METADATA_PIECE_SIZE;
        bytes[start..(start + METADATA_PIECE_SIZE).min(bytes.len())].to_vec()
    }

    #[test]
    fn assembles_from_several_peers_and_verifies() {
        let (bytes, hash) = metadata(3 * METADATA_PIECE_SIZE + 100);
        let mut assembler = MetadataAssembler::new(hash, AssemblerLimits::default());
        let now = Timestamp::ZERO;
        assembler.add_peer(1, bytes.len()).unwrap();
        assembler.add_peer(2, bytes.len()).unwrap();
        let a = assembler.next_request(now, 1).unwrap();
        let b = assembler.next_request(now, 2).unwrap();
        assert_ne!(a, b, "different pieces from different peers");
        let mut requested = vec![(1, a), (2, b)];
        while let Some(p) = assembler.next_request(now, 1) {
            requested.push((1, p));
        }
        let mut result = Completion::Incomplete;
        for (peer, piece) in requested {
            result = assembler
                .on_piece(peer, piece, piece_of(&bytes, piece))
                .unwrap();
        }
        assert_eq!(result, Completion::Verified(bytes));
    }

    #[test]
    fn hostile_sizes_are_refused() {
        let (_, hash) = metadata(100);
        let mut assembler = MetadataAssembler::new(hash, AssemblerLimits::default());
        assert_eq!(assembler.add_peer(1, 0), Err(AssemblyError::BadSize(0)));
        assert_eq!(
            assembler.add_peer(2, METADATA_SIZE_MAX + 1),
            Err(AssemblyError::BadSize(METADATA_SIZE_MAX + 1))
        );
        assembler.add_peer(3, 100).unwrap();
        assert_eq!(
            assembler.add_peer(4, 200),
            Err(AssemblyError::SizeMismatch {
                announced: 200,
                expected: 100
            })
        );
        assert_eq!(assembler.next_request(Timestamp::ZERO, 4), None);
    }

    #[test]
    fn unrequested_and_misshapen_pieces_are_refused() {
        let (bytes, hash) = metadata(METADATA_PIECE_SIZE + 10);
        let mut assembler = MetadataAssembler::new(hash, AssemblerLimits::default());
        assembler.add_peer(1, bytes.len()).unwrap();
        assert_eq!(
            assembler.on_piece(1, 0, piece_of(&bytes, 0)),
            Err(AssemblyError::UnexpectedPiece(0))
        );
        let piece = assembler.next_request(Timestamp::ZERO, 1).unwrap();
        assert_eq!(
            assembler.on_piece(1, piece, vec![0; 5]),
            Err(AssemblyError::UnexpectedPiece(piece))
        );
    }

    #[test]
    fn a_lying_peer_is_distrusted_and_an_honest_one_still_delivers() {
        let (bytes, hash) = metadata(2 * METADATA_PIECE_SIZE);
        let limits = AssemblerLimits::default();
        let mut assembler = MetadataAssembler::new(hash, limits);
        let now = Timestamp::ZERO;
        assembler.add_peer(66, bytes.len()).unwrap();
        while let Some(piece) = assembler.next_request(now, 66) {
            let garbage = vec![0xee; piece_of(&bytes, piece).len()];
            let result = assembler.on_piece(66, piece, garbage).unwrap();
            if let Completion::HashMismatch { distrusted } = result {
                assert_eq!(distrusted, vec![66]);
            }
        }
        assert!(assembler.is_distrusted(66));
        assert_eq!(
            assembler.add_peer(66, bytes.len()),
            Err(AssemblyError::Distrusted)
        );
        assembler.add_peer(7, bytes.len()).unwrap();
        assert_eq!(
            deliver_all(&mut assembler, now, 7, &bytes),
            Completion::Verified(bytes)
        );
    }

    #[test]
    fn a_mixed_failure_blames_nobody_and_then_fetches_from_one_peer_at_a_time() {
        let (bytes, hash) = metadata(2 * METADATA_PIECE_SIZE);
        let mut assembler = MetadataAssembler::new(hash, AssemblerLimits::default());
        let now = Timestamp::ZERO;
        assembler.add_peer(1, bytes.len()).unwrap();
        assembler.add_peer(2, bytes.len()).unwrap();
        let honest_piece = assembler.next_request(now, 1).unwrap();
        let lying_piece = assembler.next_request(now, 2).unwrap();
        assembler
            .on_piece(1, honest_piece, piece_of(&bytes, honest_piece))
            .unwrap();
        let garbage = vec![0; piece_of(&bytes, lying_piece).len()];
        assert_eq!(
            assembler.on_piece(2, lying_piece, garbage),
            Ok(Completion::HashMismatch { distrusted: vec![] })
        );
        // One source at a time now: the liar goes first and is caught alone.
        let first = assembler.next_request(now, 2).unwrap();
        assert_eq!(assembler.next_request(now, 1), None, "single source");
        let second = assembler.next_request(now, 2).unwrap();
        assembler
            .on_piece(2, first, vec![0; piece_of(&bytes, first).len()])
            .unwrap();
        assert_eq!(
            assembler.on_piece(2, second, vec![0; piece_of(&bytes, second).len()]),
            Ok(Completion::HashMismatch {
                distrusted: vec![2]
            })
        );
        assert_eq!(
            deliver_all(&mut assembler, now, 1, &bytes),
            Completion::Verified(bytes)
        );
    }

    #[test]
    fn a_repeated_handshake_keeps_the_request_limit() {
        let (bytes, hash) = metadata(4 * METADATA_PIECE_SIZE);
        let limits = AssemblerLimits {
            requests_per_peer_max: 1,
            ..AssemblerLimits::default()
        };
        let mut assembler = MetadataAssembler::new(hash, limits);
        assembler.add_peer(1, bytes.len()).unwrap();
        assert!(assembler.next_request(Timestamp::ZERO, 1).is_some());
        assembler.add_peer(1, bytes.len()).unwrap();
        assert_eq!(
            assembler.next_request(Timestamp::ZERO, 1),
            None,
            "still one in flight"
        );
    }

    #[test]
    fn a_late_piece_from_before_a_restart_is_ignored_not_held_against_its_sender() {
        let (bytes, hash) = metadata(3 * METADATA_PIECE_SIZE);
        let limits = AssemblerLimits::default();
        let mut assembler = MetadataAssembler::new(hash, limits);
        let t0 = Timestamp::ZERO;
        assembler.add_peer(1, bytes.len()).unwrap();
        assembler.add_peer(2, bytes.len()).unwrap();
        let asked: Vec<u32> = std::iter::from_fn(|| assembler.next_request(t0, 1)).collect();
        assert_eq!(asked, vec![0, 1, 2]);
        for piece in [0, 1] {
            assert_eq!(
                assembler.on_piece(1, piece, piece_of(&bytes, piece)),
                Ok(Completion::Incomplete)
            );
        }
        // Piece 2 times out at peer 1 and goes to peer 2, who lies.
        let later = t0 + limits.request_timeout;
        assert_eq!(assembler.next_request(later, 2), Some(2));
        let garbage = vec![0; piece_of(&bytes, 2).len()];
        assert_eq!(
            assembler.on_piece(2, 2, garbage),
            Ok(Completion::HashMismatch { distrusted: vec![] })
        );
        // Peer 1's answer to the request from before the restart comes late:
        // ignored, not a protocol violation.
        assert_eq!(
            assembler.on_piece(1, 2, piece_of(&bytes, 2)),
            Ok(Completion::Incomplete)
        );
        assert_eq!(
            assembler.on_piece(1, 2, piece_of(&bytes, 2)),
            Err(AssemblyError::UnexpectedPiece(2))
        );
    }

    #[test]
    fn a_lying_size_is_replaced_by_the_honest_one_after_the_hash_fails() {
        let (bytes, hash) = metadata(METADATA_PIECE_SIZE + 1);
        let mut assembler = MetadataAssembler::new(hash, AssemblerLimits::default());
        let now = Timestamp::ZERO;
        assembler.add_peer(1, 10).unwrap();
        assert!(
            assembler.add_peer(2, bytes.len()).is_err(),
            "conflicts with the first claim"
        );
        let piece = assembler.next_request(now, 1).unwrap();
        assert!(matches!(
            assembler.on_piece(1, piece, vec![1; 10]),
            Ok(Completion::HashMismatch { .. })
        ));
        assert_eq!(
            assembler.size(),
            Some(bytes.len()),
            "restarted with the other claim"
        );
        assert_eq!(
            deliver_all(&mut assembler, now, 2, &bytes),
            Completion::Verified(bytes)
        );
    }

    #[test]
    fn rejected_and_timed_out_pieces_go_to_another_peer() {
        let (bytes, hash) = metadata(METADATA_PIECE_SIZE);
        let limits = AssemblerLimits::default();
        let mut assembler = MetadataAssembler::new(hash, limits);
        let t0 = Timestamp::ZERO;
        assembler.add_peer(1, bytes.len()).unwrap();
        assembler.add_peer(2, bytes.len()).unwrap();
        assert_eq!(assembler.next_request(t0, 1), Some(0));
        assert_eq!(assembler.next_request(t0, 2), None, "in flight elsewhere");
        let later = t0 + limits.request_timeout;
        assert_eq!(
            assembler.next_request(later, 2),
            Some(0),
            "timed out at peer 1"
        );
        assembler.on_reject(2, 0);
        assert_eq!(assembler.next_request(later, 2), None, "peer 2 refused it");
        assert_eq!(
            assembler.on_piece(1, 0, bytes.clone()),
            Ok(Completion::Verified(bytes))
        );
    }
}
