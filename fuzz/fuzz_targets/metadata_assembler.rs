//! A `MetadataAssembler` for a fixed small metadata follows a script read
//! from the input: peers announce sizes (true, wrong, hostile), announce
//! again, ask for requests, answer them (or stale ones, late) with the true
//! bytes, garbage or pieces of the wrong length, reject, disconnect, and
//! the clock moves. A model kept
//! here predicts every answer; the invariants below are checked after every
//! step.
//!
//! - `Completion::Verified` only with bytes whose SHA-1 (computed here with
//!   the `sha1` crate) is the info-hash, which are then the true metadata.
//!   When every piece held is true, the result is `Verified`, never a
//!   mismatch.
//! - `HashMismatch` names exactly the peer that sent every piece of the
//!   failed attempt alone, and nobody when several sent pieces. A peer
//!   named once is distrusted for good: `is_distrusted`, `add_peer` fails
//!   with `Distrusted`, `next_request` never returns a piece for it and
//!   `on_piece` never takes one from it (it refuses it, but for a stale
//!   answer, see below).
//! - `received_bytes()` is the sum of the distinct pieces accepted since
//!   the last (re)start and never exceeds the size limit; `size()` is what
//!   the model expects (after a mismatch: the size most remaining peers
//!   announced, the smaller on a tie).
//! - `add_peer` and `on_piece` return exactly the predicted result (a piece
//!   is accepted only if it was requested from that peer and has the right
//!   length). `add_peer` for a peer already known with the same size (a
//!   repeated extended handshake) changes nothing: its requests stay in
//!   flight and count against its limit; with another size, its requests
//!   are dropped first.
//! - Requests outstanding when an attempt (re)starts are stale: a late
//!   answer to one (a piece the peer is not asked for now), whatever its
//!   length, gives `Incomplete` and is not held against the sender, once;
//!   after that, or once the peer is forgotten, it is unexpected. A peer
//!   distrusted since is no exception: its stale answer is ignored too
//!   (but never taken).
//! - `next_request` returns only a piece that is missing, not rejected by
//!   that peer, not already requested from it, and not in flight elsewhere
//!   unless that request timed out; it asks only peers that announced the
//!   current size and have fewer than `requests_per_peer_max` requests
//!   outstanding, so no peer ever has more. Outside single-source mode it
//!   returns `None` only when no such piece exists.
//!
//! Script format: one operation byte (low 3 bits pick it, the rest the peer)
//! and its argument bytes; a script that runs out of bytes ends. The first
//! byte picks the metadata size (low 4 bits) and `requests_per_peer_max`.
//! Operations: 0 `add_peer` (size byte), 1 `next_request` until `None`, 2
//! `on_piece` (piece byte: one in flight or stale at the peer, or any
//! small number; data byte: true, flipped, long, short, empty), 3
//! `on_reject` (piece byte), 4 `remove_peer`, 5 clock jump (50 ms units),
//! 6 every peer requests what it can and the peer answers all truly, 7 the
//! peer answers all its requests (data byte).
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use trackerless::peer::{AssemblerLimits, AssemblyError, Completion, MetadataAssembler, PeerKey};
use trackerless::time::Timestamp;
use trackerless::wire::extension::{METADATA_PIECE_SIZE, metadata_piece_count, metadata_piece_len};
use trackerless::wire::{Id, InfoHash};

const PIECE: usize = METADATA_PIECE_SIZE;
/// The assembler's size limit here: four pieces.
const SIZE_MAX: usize = 4 * PIECE;
/// Peer keys 0..PEERS.
const PEERS: u64 = 6;
const TIMEOUT: Duration = Duration::from_secs(3);
const STEPS_MAX: usize = 512;

struct Metadata {
    bytes: Vec<u8>,
    hash: InfoHash,
}

fn sha1(bytes: &[u8]) -> InfoHash {
    let mut out = [0u8; 20];
    out.copy_from_slice(&Sha1::digest(bytes)[..]);
    Id(out)
}

/// The metadata sizes to assemble: one piece or several, on and off piece
/// boundaries.
fn metadatas() -> &'static [Metadata] {
    static ALL: OnceLock<Vec<Metadata>> = OnceLock::new();
    ALL.get_or_init(|| {
        [1, 100, PIECE, PIECE + 1, 2 * PIECE + 77, SIZE_MAX]
            .into_iter()
            .map(|len| {
                let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
                let hash = sha1(&bytes);
                Metadata { bytes, hash }
            })
            .collect()
    })
}

struct Script<'a> {
    data: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&first, rest)) => {
                self.data = rest;
                first
            }
            None => 0,
        }
    }
}

/// What the assembler should hold, kept by following its documented rules.
#[derive(Default)]
struct Model {
    size: Option<usize>,
    /// Peers the assembler knows and the size each announced.
    claims: BTreeMap<PeerKey, usize>,
    rejected: HashMap<PeerKey, HashSet<u32>>,
    in_flight: BTreeMap<u32, Vec<(PeerKey, Timestamp)>>,
    /// Requests outstanding when the attempt (re)started, not answered since.
    stale: BTreeSet<(PeerKey, u32)>,
    /// Distinct pieces accepted since the last (re)start, and their sender.
    received: BTreeMap<u32, (PeerKey, Vec<u8>)>,
    distrusted: HashSet<PeerKey>,
    single_source: bool,
}

impl Model {
    fn outstanding(&self, peer: PeerKey) -> usize {
        self.in_flight
            .values()
            .flatten()
            .filter(|(p, _)| *p == peer)
            .count()
    }

    /// Mirrors `take_request`: whether `peer` had asked-for `piece`.
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
        asked
    }

    /// Mirrors `remove_peer`: its requests, stale ones and state go.
    fn forget(&mut self, peer: PeerKey) {
        for requests in self.in_flight.values_mut() {
            requests.retain(|(p, _)| *p != peer);
        }
        self.in_flight.retain(|_, r| !r.is_empty());
        self.stale.retain(|(p, _)| *p != peer);
        self.claims.remove(&peer);
        self.rejected.remove(&peer);
    }

    /// A peer (re)announcing `size`: kept as it is if it already announced
    /// that size, else forgotten and known afresh.
    fn announce(&mut self, peer: PeerKey, size: usize) {
        if self.claims.get(&peer) == Some(&size) {
            return;
        }
        self.forget(peer);
        self.claims.insert(peer, size);
        self.rejected.insert(peer, HashSet::new());
    }

    /// Pieces `next_request` may hand `peer` now.
    fn candidates(&self, now: Timestamp, peer: PeerKey) -> Vec<u32> {
        let Some(size) = self.size else {
            return Vec::new();
        };
        let empty = HashSet::new();
        let rejected = self.rejected.get(&peer).unwrap_or(&empty);
        (0..metadata_piece_count(size) as u32)
            .filter(|index| !self.received.contains_key(index) && !rejected.contains(index))
            .filter(|index| match self.in_flight.get(index) {
                None => true,
                Some(requests) => {
                    requests.iter().all(|(p, _)| *p != peer)
                        && requests
                            .iter()
                            .all(|(_, at)| now.saturating_since(*at) >= TIMEOUT)
                }
            })
            .collect()
    }

    fn eligible(&self, peer: PeerKey, cap: usize) -> bool {
        self.size.is_some()
            && self.claims.get(&peer) == self.size.as_ref()
            && self.outstanding(peer) < cap
    }

    /// A (re)start: what was in flight becomes stale.
    fn start(&mut self, size: usize) {
        for (piece, requests) in std::mem::take(&mut self.in_flight) {
            for (peer, _) in requests {
                self.stale.insert((peer, piece));
            }
        }
        self.size = Some(size);
        self.received.clear();
    }

    /// After a failed check: drop the distrusted, restart with the most
    /// announced size (smaller on a tie), or with none if nobody is left.
    fn restart(&mut self) {
        let distrusted = &self.distrusted;
        self.claims.retain(|peer, _| !distrusted.contains(peer));
        self.rejected.retain(|peer, _| !distrusted.contains(peer));
        for set in self.rejected.values_mut() {
            set.clear();
        }
        let mut votes: BTreeMap<usize, usize> = BTreeMap::new();
        for size in self.claims.values() {
            *votes.entry(*size).or_default() += 1;
        }
        let best = votes
            .into_iter()
            .max_by_key(|(size, count)| (*count, std::cmp::Reverse(*size)));
        match best {
            Some((size, _)) => self.start(size),
            None => {
                // Nobody left to answer: nothing becomes stale.
                self.size = None;
                self.in_flight.clear();
                self.received.clear();
            }
        }
    }
}

struct Harness {
    assembler: MetadataAssembler,
    model: Model,
    metadata: &'static Metadata,
    cap: usize,
    now: Timestamp,
    verified: bool,
}

impl Harness {
    fn announced_size(&self, choice: u8) -> usize {
        let truth = self.metadata.bytes.len();
        let others: Vec<usize> = metadatas().iter().map(|m| m.bytes.len()).collect();
        match choice % 16 {
            0..=5 => truth,
            6 => 0,
            7 => truth - 1,
            8 => truth + 1,
            9 => PIECE,
            10 => SIZE_MAX,
            11 => SIZE_MAX + 1,
            12 => usize::MAX,
            n => others[usize::from(n) % others.len()],
        }
    }

    fn add_peer(&mut self, peer: PeerKey, size: usize) {
        let result = self.assembler.add_peer(peer, size);
        let model = &mut self.model;
        let expected = if model.distrusted.contains(&peer) {
            Err(AssemblyError::Distrusted)
        } else if size == 0 || size > SIZE_MAX {
            Err(AssemblyError::BadSize(size))
        } else {
            match model.size {
                None => {
                    model.start(size);
                    model.announce(peer, size);
                    Ok(())
                }
                Some(expected) if expected != size => {
                    // Remembered afresh: if the current size fails, this
                    // claim may be the honest one.
                    model.forget(peer);
                    model.announce(peer, size);
                    Err(AssemblyError::SizeMismatch {
                        announced: size,
                        expected,
                    })
                }
                Some(_) => {
                    model.announce(peer, size);
                    Ok(())
                }
            }
        };
        assert_eq!(result, expected, "add_peer({peer}, {size})");
    }

    fn next_requests(&mut self, peer: PeerKey) {
        for _ in 0..=self.cap {
            let candidates = self.model.candidates(self.now, peer);
            let eligible = self.model.eligible(peer, self.cap);
            let Some(piece) = self.assembler.next_request(self.now, peer) else {
                if eligible && !self.model.single_source {
                    assert!(
                        candidates.is_empty(),
                        "peer {peer} starved: pieces {candidates:?} are available"
                    );
                }
                return;
            };
            assert!(
                !self.model.distrusted.contains(&peer),
                "distrusted peer {peer} got a request"
            );
            assert!(eligible, "peer {peer} is not eligible for a request");
            assert!(
                candidates.contains(&piece),
                "peer {peer} was given piece {piece}, not one of {candidates:?}"
            );
            self.model
                .in_flight
                .entry(piece)
                .or_default()
                .push((peer, self.now));
            let outstanding = self.model.outstanding(peer);
            assert!(
                outstanding <= self.cap,
                "peer {peer} has {outstanding} requests outstanding, limit {}",
                self.cap
            );
        }
        panic!("peer {peer} got more than {} requests in a row", self.cap);
    }

    /// The true bytes of `piece` for the size being assembled (a stand-in
    /// pattern of the right length when that size is wrong).
    fn true_piece(&self, piece: u32) -> Vec<u8> {
        let size = self.model.size.unwrap_or(self.metadata.bytes.len());
        let len = metadata_piece_len(size, piece).unwrap_or(1);
        let start = piece as usize * PIECE;
        match self.metadata.bytes.get(start..start + len) {
            Some(slice) if size == self.metadata.bytes.len() => slice.to_vec(),
            _ => vec![0x5a; len],
        }
    }

    fn piece_data(&self, piece: u32, choice: u8) -> Vec<u8> {
        let mut data = self.true_piece(piece);
        match choice % 8 {
            0..=3 => {}
            4 => data[0] ^= 0xff,
            5 => data.push(0),
            6 => {
                data.pop();
            }
            _ => data.clear(),
        }
        data
    }

    /// A piece number: one in flight or stale at `peer`, or any small number.
    fn pick_piece(&self, peer: PeerKey, choice: u8) -> u32 {
        let model = &self.model;
        let mine: Vec<u32> = model
            .in_flight
            .iter()
            .filter(|(_, requests)| requests.iter().any(|(p, _)| *p == peer))
            .map(|(piece, _)| *piece)
            .chain(
                model
                    .stale
                    .iter()
                    .filter(|(p, _)| *p == peer)
                    .map(|(_, piece)| *piece),
            )
            .collect::<BTreeSet<u32>>()
            .into_iter()
            .collect();
        if choice & 0x80 == 0 && !mine.is_empty() {
            mine[usize::from(choice) % mine.len()]
        } else {
            u32::from(choice % 8)
        }
    }

    fn on_piece(&mut self, peer: PeerKey, piece: u32, data: Vec<u8>) {
        let result = self.assembler.on_piece(peer, piece, data.clone());
        let expected = self.expect_piece(peer, piece, data);
        assert_eq!(result, expected, "on_piece({peer}, {piece})");
        if let Ok(Completion::Verified(bytes)) = &result {
            // The core promise, checked without the model.
            assert_eq!(sha1(bytes), self.metadata.hash, "verified bytes fail SHA-1");
            assert_eq!(bytes, &self.metadata.bytes);
            self.verified = true;
        }
    }

    fn expect_piece(
        &mut self,
        peer: PeerKey,
        piece: u32,
        data: Vec<u8>,
    ) -> Result<Completion, AssemblyError> {
        let model = &mut self.model;
        let Some(size) = model.size else {
            return Err(AssemblyError::UnexpectedPiece(piece));
        };
        let asked = model.take_request(peer, piece);
        if !asked && model.stale.remove(&(peer, piece)) {
            // A late answer to a request from before the (re)start.
            return Ok(Completion::Incomplete);
        }
        if !asked || metadata_piece_len(size, piece) != Some(data.len()) {
            return Err(AssemblyError::UnexpectedPiece(piece));
        }
        assert!(
            !model.distrusted.contains(&peer),
            "distrusted peer had a request"
        );
        if model.received.contains_key(&piece) {
            return Ok(Completion::Incomplete);
        }
        model.received.insert(piece, (peer, data));
        if model.received.len() < metadata_piece_count(size) {
            return Ok(Completion::Incomplete);
        }
        let bytes: Vec<u8> = model
            .received
            .values()
            .flat_map(|(_, data)| data.iter().copied())
            .collect();
        if sha1(&bytes) == self.metadata.hash {
            return Ok(Completion::Verified(bytes));
        }
        let senders: HashSet<PeerKey> = model.received.values().map(|(p, _)| *p).collect();
        let distrusted: Vec<PeerKey> = if senders.len() == 1 {
            senders.into_iter().collect()
        } else {
            Vec::new()
        };
        model.distrusted.extend(distrusted.iter().copied());
        model.single_source = true;
        model.restart();
        Ok(Completion::HashMismatch { distrusted })
    }

    fn on_reject(&mut self, peer: PeerKey, piece: u32) {
        self.assembler.on_reject(peer, piece);
        self.model.take_request(peer, piece);
        if self.model.claims.contains_key(&peer) {
            self.model.rejected.entry(peer).or_default().insert(piece);
        }
    }

    fn remove_peer(&mut self, peer: PeerKey) {
        self.assembler.remove_peer(peer);
        self.model.forget(peer);
    }

    /// Answers every request outstanding at `peer`, truly or not.
    fn answer_all(&mut self, peer: PeerKey, choice: u8) {
        loop {
            let piece = self
                .model
                .in_flight
                .iter()
                .find(|(_, requests)| requests.iter().any(|(p, _)| *p == peer))
                .map(|(piece, _)| *piece);
            let Some(piece) = piece else { return };
            let data = self.piece_data(piece, choice);
            self.on_piece(peer, piece, data);
        }
    }

    fn check(&mut self) {
        let model = &self.model;
        assert_eq!(self.assembler.size(), model.size, "size()");
        let held: usize = model.received.values().map(|(_, d)| d.len()).sum();
        assert_eq!(self.assembler.received_bytes(), held, "received_bytes()");
        assert!(held <= SIZE_MAX);
        if let Some(size) = model.size {
            assert!(held <= size);
        }
        for peer in 0..PEERS {
            assert_eq!(
                self.assembler.is_distrusted(peer),
                model.distrusted.contains(&peer),
                "is_distrusted({peer})"
            );
            let outstanding = model.outstanding(peer);
            assert!(
                outstanding <= self.cap,
                "peer {peer}: {outstanding} requests"
            );
            if outstanding > 0 {
                assert_eq!(model.claims.get(&peer), model.size.as_ref());
            }
        }
        let distrusted: Vec<PeerKey> = model.distrusted.iter().copied().collect();
        for peer in distrusted {
            assert_eq!(
                self.assembler.next_request(self.now, peer),
                None,
                "distrusted peer {peer} got a request"
            );
        }
        if self.verified {
            assert_eq!(
                model.received.len(),
                metadata_piece_count(model.size.unwrap_or(0))
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script { data };
    let setup = script.byte();
    let all = metadatas();
    let metadata = &all[usize::from(setup & 0x0f) % all.len()];
    let cap = 1 + usize::from(setup >> 4) % 3;
    let limits = AssemblerLimits {
        metadata_size_max: SIZE_MAX,
        requests_per_peer_max: cap,
        request_timeout: TIMEOUT,
    };
    let mut h = Harness {
        assembler: MetadataAssembler::new(metadata.hash, limits),
        model: Model::default(),
        metadata,
        cap,
        now: Timestamp::from_micros(1_000_000),
        verified: false,
    };
    let mut steps = 0;
    while !script.data.is_empty() && steps < STEPS_MAX {
        steps += 1;
        let op = script.byte();
        let peer = u64::from(op >> 3) % PEERS;
        match op & 0x07 {
            0 => {
                let size = h.announced_size(script.byte());
                h.add_peer(peer, size);
            }
            1 => h.next_requests(peer),
            2 => {
                let piece = h.pick_piece(peer, script.byte());
                let data = h.piece_data(piece, script.byte());
                h.on_piece(peer, piece, data);
            }
            3 => {
                let piece = h.pick_piece(peer, script.byte());
                h.on_reject(peer, piece);
            }
            4 => h.remove_peer(peer),
            5 => h.now += Duration::from_millis(50 * u64::from(script.byte())),
            6 => {
                // Everyone asks for what it can (as the runtime's refill
                // does), then one peer answers truly.
                for other in 0..PEERS {
                    h.next_requests(other);
                }
                h.answer_all(peer, 0);
            }
            _ => {
                let choice = script.byte();
                h.answer_all(peer, choice);
            }
        }
        h.check();
    }
});
