//! Two `PeerSession`s, one outgoing (A) and one incoming (B), driven by a
//! script read from the input: raw byte chunks, well-formed messages
//! (handshakes, extended handshakes, ut_metadata requests, data and
//! rejects, other peer messages), optionally delivered one byte at a time
//! or split in two, the sessions' own output piped to each other (optionally
//! with a byte flipped), and the owner's calls (`accept`,
//! `request_metadata`, `send`). After every call, the session's events and
//! transmitted bytes are checked against what that call may produce:
//!
//! - Everything a session transmits is, from its first byte, its handshake
//!   (our torrent, our peer id, extension and DHT bits) followed by whole,
//!   valid frames; every transmitted buffer ends on a frame boundary. An
//!   incoming session sends nothing before `accept`.
//! - Exactly one extended handshake is sent: by an outgoing session when the
//!   peer's handshake (right torrent, extension bit) arrives, by an incoming
//!   one on `accept`, right behind its handshake. It offers ut_metadata
//!   under our id, the size of the metadata served (if any), our client
//!   name and port.
//! - `request_metadata` succeeds exactly when the peer's last extended
//!   handshake offered ut_metadata, and then sends one request for that
//!   piece; `send` sends exactly that message; `accept` on a session that is
//!   not waiting for it does nothing and returns `Ok`.
//! - Processing the peer's bytes (feeding them, or `accept`, which processes
//!   the frames that came right behind the peer's handshake) sends only
//!   ut_metadata data (one per `MetadataServed` event, the right slice of
//!   the metadata served) and rejects.
//! - Events: the peer's handshake first and once, only from feeding;
//!   nothing else from an incoming session before `accept`; extended
//!   handshakes within bounds and `peer_metadata_size()` agrees; metadata
//!   pieces only when not serving, of the length the announced size gives;
//!   `MetadataServed` only when serving, in range, at most
//!   `METADATA_REQUESTS_SERVED_MAX` times; extended messages never surface
//!   as `Message`. A peer handshake for another torrent ends an outgoing
//!   session with `WrongInfoHash`, and nothing else does; `Incompatible`
//!   comes only from `request_metadata`.
//! - Feeding no bytes after any call (`accept` included) does nothing: no
//!   complete frame is left unprocessed in the buffer.
//! - While an incoming session waits for `accept`, it buffers what follows
//!   the peer's handshake, and `handle_bytes` fails with `Misbehaved`
//!   exactly when the bytes buffered and the new ones together would exceed
//!   `AWAITING_ACCEPT_BUFFER_MAX`; otherwise it succeeds and does nothing.
//! - Bounded buffering ("burst", once per input, on a fresh session): a
//!   length prefix above `MESSAGE_SIZE_MAX` is refused by the call that
//!   delivers it (for a session waiting for `accept`, by `accept`), and
//!   while a large frame arrives in chunks, the session's heap (measured
//!   with a counting global allocator) grows by no more than twice the
//!   frame and the chunk together, plus 64 KiB. An incoming session fed a
//!   frame before `accept` refuses exactly the chunk that takes it past
//!   `AWAITING_ACCEPT_BUFFER_MAX`, and otherwise processes the frame on
//!   `accept`, leaving nothing behind.
//!
//! After a session returns an error it is closed: nothing more is fed to it.
//! Script format: the first byte's bit 0 makes A serve the metadata. Then
//! operations: one byte (low 4 bits pick it, bit 4 the session, B if set)
//! and its argument bytes:
//!
//! - 2: a well-formed message from the peer (`peer_bytes`), then a cut
//!   byte; bits 5-6 deliver it whole, byte by byte or in two parts.
//! - 3: pipe the other session's output (amount byte, 0 for all, else
//!   32-byte units); bit 5 flips a byte (position and xor bytes follow).
//! - 4: `request_metadata` (piece byte); 5: `accept` (metadata byte: none,
//!   three pieces, small); 6: `send` (a message); 7: feed nothing.
//! - 8: the burst (mode and size bytes), once per input.
//! - 9: a piece message (size byte: below 0xf0, 16 bytes to 3.75 KiB;
//!   from 0xf0, 64 KiB to 1 MiB; then a cut byte), whole or (bit 6) in two
//!   parts, at most `BIG_FRAMES_MAX` times.
//! - anything else: raw bytes (length byte, in 8s if bit 5 is set).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use trackerless::peer::session::{
    AWAITING_ACCEPT_BUFFER_MAX, METADATA_REQUESTS_SERVED_MAX, OUR_UT_METADATA_ID,
};
use trackerless::peer::{PeerSession, SessionConfig, SessionError, SessionEvent};
use trackerless::wire::extension::{
    ExtendedHandshake, METADATA_PIECE_COUNT_MAX, METADATA_PIECE_SIZE, METADATA_SIZE_MAX,
    MetadataMessage, UT_METADATA, metadata_piece_count, metadata_piece_len,
};
use trackerless::wire::peer::{
    HANDSHAKE_LEN, Handshake, LENGTH_PREFIX_LEN, MESSAGE_SIZE_MAX, PeerMessage, PeerWireError,
    decode_frame,
};
use trackerless::wire::{Id, InfoHash};

/// Counts live heap bytes, for the bounded-buffering check.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const HASH: InfoHash = Id([0x11; 20]);
const OTHER_HASH: InfoHash = Id([0x22; 20]);
const STEPS_MAX: usize = 256;
/// Bytes kept in flight between the two sessions; beyond, output is dropped.
const WIRE_MAX: usize = 256 * 1024;
/// Heap a session may take beyond its buffer (events, handshake, slack).
const BURST_SLACK: isize = 64 * 1024;
/// Large frames per input, and the largest block one carries (the frame
/// stays under `MESSAGE_SIZE_MAX`; two overflow the buffer before accept).
const BIG_FRAMES_MAX: usize = 8;
const BIG_FRAME_BLOCK_MAX: usize = 1024 * 1024;

/// Metadata the sessions serve: three pieces, and a small one.
fn metadata() -> &'static Arc<Vec<u8>> {
    static META: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    META.get_or_init(|| {
        Arc::new(
            (0..2 * METADATA_PIECE_SIZE + 300)
                .map(|i| (i * 13 % 251) as u8)
                .collect(),
        )
    })
}

fn small_metadata() -> &'static Arc<Vec<u8>> {
    static META: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    META.get_or_init(|| Arc::new(b"d4:name1:xe".repeat(9)))
}

/// Zeros to feed in bursts and large frames.
fn zeros() -> &'static [u8] {
    static ZEROS: OnceLock<Vec<u8>> = OnceLock::new();
    ZEROS.get_or_init(|| vec![0; BIG_FRAME_BLOCK_MAX])
}

struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&first, rest)) => {
                self.data = rest;
                first
            }
            None => 0,
        }
    }

    fn bytes(&mut self, len: usize) -> &'a [u8] {
        let len = len.min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
}

/// The owner's call whose output is being checked.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Create,
    Feed,
    Accept { effective: bool },
    Request { piece: u32, ok: bool },
    Send(PeerMessage),
}

impl Call {
    /// Whether the call processes bytes from the peer (so events and
    /// answers may come out of it).
    fn processes_peer_bytes(&self) -> bool {
        matches!(self, Call::Feed | Call::Accept { effective: true })
    }
}

/// The last extended handshake a session reported.
#[derive(Debug, Clone, Copy)]
struct PeerExtended {
    metadata_size: Option<usize>,
    ut_metadata: bool,
}

struct Side {
    name: &'static str,
    session: PeerSession,
    config: SessionConfig,
    outgoing: bool,
    alive: bool,
    /// The torrent: given (outgoing) or learnt from the peer (incoming).
    torrent: Option<InfoHash>,
    serving: Option<Arc<Vec<u8>>>,
    accepted: bool,
    handshake_event: bool,
    peer_extended: Option<PeerExtended>,
    sent_handshake: bool,
    sent_extended_handshake: bool,
    served: usize,
    /// Bytes fed successfully so far (the handshake included).
    fed: usize,
    /// Bytes sent and not yet piped to the other side.
    wire: Vec<u8>,
    wire_open: bool,
}

impl Side {
    fn new(
        name: &'static str,
        config: SessionConfig,
        outgoing: bool,
        serving: Option<Arc<Vec<u8>>>,
    ) -> Side {
        let session = if outgoing {
            PeerSession::outgoing(config.clone(), HASH, serving.clone())
        } else {
            PeerSession::incoming(config.clone())
        };
        let mut side = Side {
            name,
            session,
            config,
            outgoing,
            alive: true,
            torrent: outgoing.then_some(HASH),
            serving,
            accepted: false,
            handshake_event: false,
            peer_extended: None,
            sent_handshake: false,
            sent_extended_handshake: false,
            served: 0,
            fed: 0,
            wire: Vec::new(),
            wire_open: true,
        };
        side.drain(&Call::Create, &Ok(()));
        side
    }

    /// Open for messages: handshakes exchanged (incoming: accepted).
    fn open(&self) -> bool {
        self.alive && self.handshake_event && (self.outgoing || self.accepted)
    }

    /// Incoming, handshake received, not yet accepted.
    fn awaiting_accept(&self) -> bool {
        self.alive && !self.outgoing && self.handshake_event && !self.accepted
    }

    fn feed(&mut self, bytes: &[u8]) {
        if !self.alive {
            return;
        }
        // Waiting for accept, the session holds everything fed after the
        // peer's handshake, which was the first HANDSHAKE_LEN bytes (any
        // other start would have closed it).
        let awaiting = self.awaiting_accept();
        let buffered = self.fed.saturating_sub(HANDSHAKE_LEN);
        let result = self.session.handle_bytes(bytes);
        if awaiting {
            let over = buffered + bytes.len() > AWAITING_ACCEPT_BUFFER_MAX;
            assert!(buffered <= AWAITING_ACCEPT_BUFFER_MAX);
            match &result {
                Err(SessionError::Misbehaved(_)) => assert!(
                    over,
                    "{}: {} bytes refused before accept with {buffered} buffered",
                    self.name,
                    bytes.len()
                ),
                Ok(()) => assert!(
                    !over,
                    "{}: {} bytes taken before accept with {buffered} buffered",
                    self.name,
                    bytes.len()
                ),
                Err(error) => panic!("{}: {error:?} before accept", self.name),
            }
        }
        if result.is_ok() {
            self.fed += bytes.len();
        }
        self.drain(&Call::Feed, &result);
    }

    /// Feeding nothing must do nothing.
    fn probe(&mut self) {
        if !self.alive {
            return;
        }
        let result = self.session.handle_bytes(&[]);
        assert_eq!(result, Ok(()), "{}: feeding nothing failed", self.name);
        assert_eq!(
            self.session.poll_event(),
            None,
            "{}: event from nothing",
            self.name
        );
        assert_eq!(
            self.session.poll_transmit(),
            None,
            "{}: sent for nothing",
            self.name
        );
    }

    fn accept(&mut self, metadata: Option<Arc<Vec<u8>>>) {
        if !self.alive {
            return;
        }
        let effective = self.awaiting_accept();
        let result = self.session.accept(metadata.clone());
        if effective {
            self.accepted = true;
            self.serving = metadata;
        } else {
            assert_eq!(result, Ok(()), "{}: accept when not waiting", self.name);
        }
        self.drain(&Call::Accept { effective }, &result);
    }

    fn request(&mut self, piece: u32) {
        if !self.alive {
            return;
        }
        let result = self.session.request_metadata(piece);
        let expected_ok = self.peer_extended.is_some_and(|p| p.ut_metadata);
        assert_eq!(
            result.is_ok(),
            expected_ok,
            "{}: request_metadata gave {result:?}",
            self.name
        );
        if let Err(error) = &result {
            assert!(matches!(error, SessionError::Incompatible(_)), "{error:?}");
        }
        self.drain(
            &Call::Request {
                piece,
                ok: expected_ok,
            },
            &Ok(()),
        );
    }

    fn send(&mut self, message: PeerMessage) {
        if !self.open() {
            return;
        }
        self.session.send(&message);
        self.drain(&Call::Send(message), &Ok(()));
    }

    /// Checks the events and transmits one call produced.
    fn drain(&mut self, call: &Call, result: &Result<(), SessionError>) {
        let name = self.name;
        let mut served: VecDeque<u32> = VecDeque::new();
        let mut handshake_now: Option<(InfoHash, bool)> = None;
        let mut events = 0;
        while let Some(event) = self.session.poll_event() {
            events += 1;
            assert!(
                call.processes_peer_bytes(),
                "{name}: event {event:?} from {call:?}"
            );
            if !matches!(event, SessionEvent::Handshake { .. }) {
                assert!(
                    self.handshake_event,
                    "{name}: {event:?} before the handshake"
                );
                assert!(
                    self.outgoing || self.accepted,
                    "{name}: {event:?} before accept"
                );
            }
            match event {
                SessionEvent::Handshake {
                    info_hash,
                    extensions,
                    ..
                } => {
                    assert_eq!(call, &Call::Feed, "{name}: handshake event from {call:?}");
                    assert!(!self.handshake_event, "{name}: second handshake event");
                    self.handshake_event = true;
                    handshake_now = Some((info_hash, extensions));
                    if !self.outgoing {
                        self.torrent = Some(info_hash);
                    }
                }
                SessionEvent::ExtendedHandshake {
                    metadata_size,
                    ut_metadata,
                    ..
                } => {
                    if let Some(size) = metadata_size {
                        assert!(size > 0 && size <= METADATA_SIZE_MAX, "{name}: size {size}");
                    }
                    self.peer_extended = Some(PeerExtended {
                        metadata_size,
                        ut_metadata,
                    });
                }
                SessionEvent::MetadataPiece { piece, data } => {
                    assert!(
                        self.serving.is_none(),
                        "{name}: metadata piece while serving"
                    );
                    let peer = self
                        .peer_extended
                        .expect("piece before the extended handshake");
                    match peer.metadata_size {
                        Some(size) => assert_eq!(
                            Some(data.len()),
                            metadata_piece_len(size, piece),
                            "{name}: piece {piece} of the wrong length"
                        ),
                        None => assert!(!data.is_empty() && data.len() <= METADATA_PIECE_SIZE),
                    }
                }
                SessionEvent::MetadataRejected { piece } => {
                    let peer = self
                        .peer_extended
                        .expect("reject before the extended handshake");
                    let count = match (&self.serving, peer.metadata_size) {
                        (None, Some(size)) => metadata_piece_count(size),
                        _ => METADATA_PIECE_COUNT_MAX,
                    };
                    assert!((piece as usize) < count, "{name}: reject of piece {piece}");
                }
                SessionEvent::MetadataServed { piece } => {
                    let serving = self.serving.as_ref().expect("served without metadata");
                    assert!(metadata_piece_len(serving.len(), piece).is_some());
                    self.served += 1;
                    assert!(
                        self.served <= METADATA_REQUESTS_SERVED_MAX,
                        "{name}: served too much"
                    );
                    served.push_back(piece);
                }
                SessionEvent::Message(message) => {
                    assert!(
                        !matches!(message, PeerMessage::Extended { .. }),
                        "{name}: extended message surfaced"
                    );
                }
            }
        }
        if let Some(extended) = self.peer_extended {
            assert_eq!(self.session.peer_metadata_size(), extended.metadata_size);
        }

        // A handshake for another torrent ends an outgoing session.
        let wrong_hash = self.outgoing && handshake_now.is_some_and(|(hash, _)| hash != HASH);
        assert_eq!(
            wrong_hash,
            result == &Err(SessionError::WrongInfoHash),
            "{name}: {result:?} after handshake {handshake_now:?}"
        );
        assert!(
            !matches!(result, Err(SessionError::Incompatible(_))),
            "{name}: {result:?} from {call:?}"
        );
        if result.is_err() {
            self.alive = false;
        }
        let _ = events;

        // What this call may send.
        let mut sent_handshake = false;
        let mut sent_extended = false;
        let mut requests: Vec<u32> = Vec::new();
        let mut others: Vec<PeerMessage> = Vec::new();
        // Frames this call sent, its handshake not counted.
        let mut frames = 0;
        while let Some(bytes) = self.session.poll_transmit() {
            assert!(!bytes.is_empty(), "{name}: empty transmit");
            // Kept for piping to the other side; past the bound the stream
            // is cut for good (the peer sees it end).
            if self.wire_open && self.wire.len() + bytes.len() <= WIRE_MAX {
                self.wire.extend_from_slice(&bytes);
            } else {
                self.wire_open = false;
            }
            let mut rest = &bytes[..];
            if !self.sent_handshake {
                let handshake = match Handshake::decode(rest) {
                    Ok(Some(handshake)) => handshake,
                    other => panic!("{name}: first bytes sent are not a handshake: {other:?}"),
                };
                assert_eq!(
                    Some(handshake.info_hash),
                    self.torrent,
                    "{name}: handshake torrent"
                );
                assert_eq!(handshake.peer_id, self.config.peer_id);
                assert!(handshake.supports_extension_protocol() && handshake.supports_dht());
                self.sent_handshake = true;
                sent_handshake = true;
                rest = &rest[HANDSHAKE_LEN..];
            }
            while !rest.is_empty() {
                let (message, used) = match decode_frame(rest) {
                    Ok(Some(frame)) => frame,
                    other => panic!("{name}: sent an invalid or partial frame: {other:?}"),
                };
                rest = &rest[used..];
                frames += 1;
                match message {
                    PeerMessage::Extended { id: 0, payload } => {
                        if matches!(call, Call::Accept { .. }) {
                            assert_eq!(
                                frames, 1,
                                "{name}: extended handshake not right behind the handshake"
                            );
                        }
                        let handshake = ExtendedHandshake::decode(&payload)
                            .unwrap_or_else(|e| panic!("{name}: bad extended handshake: {e}"));
                        assert!(
                            !self.sent_extended_handshake,
                            "{name}: second extended handshake"
                        );
                        self.sent_extended_handshake = true;
                        sent_extended = true;
                        assert_eq!(handshake.ut_metadata_id(), Some(OUR_UT_METADATA_ID));
                        assert_eq!(handshake.extensions.len(), 1);
                        assert!(handshake.extensions.contains_key(UT_METADATA));
                        assert_eq!(
                            handshake.metadata_size,
                            self.serving.as_ref().map(|m| m.len()),
                            "{name}: announced size"
                        );
                        assert_eq!(
                            handshake.client.as_deref(),
                            Some(self.config.client.as_str())
                        );
                        assert_eq!(handshake.listen_port, self.config.listen_port);
                    }
                    PeerMessage::Extended { id, payload } => {
                        let message = MetadataMessage::decode(&payload, None)
                            .unwrap_or_else(|e| panic!("{name}: bad ut_metadata message: {e}"));
                        assert_ne!(id, 0);
                        match message {
                            MetadataMessage::Request { piece } => requests.push(piece),
                            MetadataMessage::Data {
                                piece,
                                total_size,
                                data,
                            } => {
                                assert!(
                                    call.processes_peer_bytes(),
                                    "{name}: data sent from {call:?}"
                                );
                                let serving =
                                    self.serving.as_ref().expect("data sent, not serving");
                                assert_eq!(total_size, serving.len());
                                let start = piece as usize * METADATA_PIECE_SIZE;
                                assert_eq!(data, serving[start..start + data.len()]);
                                assert_eq!(
                                    served.pop_front(),
                                    Some(piece),
                                    "{name}: unannounced data"
                                );
                            }
                            MetadataMessage::Reject { .. } => {
                                assert!(
                                    call.processes_peer_bytes(),
                                    "{name}: reject sent from {call:?}"
                                );
                            }
                        }
                    }
                    other => others.push(other),
                }
            }
        }
        assert!(
            served.is_empty(),
            "{name}: served {served:?} but sent no data"
        );

        // Exactly what the call should have sent.
        match call {
            Call::Create => {
                assert_eq!(
                    sent_handshake, self.outgoing,
                    "{name}: handshake at creation"
                );
                assert!(!sent_extended);
            }
            Call::Accept { effective } => {
                assert_eq!(sent_handshake, *effective, "{name}: handshake on accept");
                assert_eq!(
                    sent_extended, *effective,
                    "{name}: extended handshake on accept"
                );
            }
            Call::Feed => {
                assert!(!sent_handshake, "{name}: handshake sent while fed");
                let expect_extended =
                    self.outgoing && handshake_now.is_some_and(|(hash, ext)| hash == HASH && ext);
                assert_eq!(
                    sent_extended, expect_extended,
                    "{name}: extended handshake when fed"
                );
            }
            Call::Request { .. } | Call::Send(_) => {
                assert!(
                    !sent_handshake && !sent_extended,
                    "{name}: handshake from {call:?}"
                );
            }
        }
        let expected_requests = match call {
            Call::Request { piece, ok: true } => vec![*piece],
            _ => Vec::new(),
        };
        assert_eq!(
            requests, expected_requests,
            "{name}: requests sent for {call:?}"
        );
        let expected_others = match call {
            Call::Send(message) => vec![message.clone()],
            _ => Vec::new(),
        };
        assert_eq!(
            others, expected_others,
            "{name}: messages sent for {call:?}"
        );
        if !sent_handshake && !self.sent_handshake {
            assert!(!self.outgoing);
        }
    }
}

/// A peer-wire message (not extended) from script bytes.
fn any_message(script: &mut Script) -> PeerMessage {
    let kind = script.byte();
    match (kind & 0x0f) % 12 {
        0 => PeerMessage::KeepAlive,
        1 => PeerMessage::Choke,
        2 => PeerMessage::Unchoke,
        3 => PeerMessage::Interested,
        4 => PeerMessage::NotInterested,
        5 => PeerMessage::Have {
            index: script.u32(),
        },
        6 => PeerMessage::Bitfield(script.bytes(usize::from(kind >> 4)).to_vec()),
        7 => PeerMessage::Request {
            index: u32::from(script.byte()),
            begin: u32::from(script.byte()) << 8,
            length: 16384,
        },
        8 => PeerMessage::Piece {
            index: u32::from(script.byte()),
            begin: 0,
            block: script.bytes(usize::from(kind >> 3)).to_vec(),
        },
        9 => PeerMessage::Cancel {
            index: u32::from(script.byte()),
            begin: 0,
            length: 16384,
        },
        10 => PeerMessage::Port(u16::from_be_bytes([script.byte(), script.byte()])),
        // Ids no variant names (BEP 6 fast extension, or made up).
        _ => PeerMessage::Unknown {
            id: [10, 13, 14, 15, 16, 17, 21, 255][usize::from(kind >> 4) % 8],
            payload: script.bytes(usize::from(kind >> 5)).to_vec(),
        },
    }
}

fn frame(message: &PeerMessage) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode(&mut out);
    out
}

fn extended(id: u8, payload: Vec<u8>) -> Vec<u8> {
    frame(&PeerMessage::Extended { id, payload })
}

/// A metadata size a peer might announce or put in `total_size`.
fn any_size(choice: u8) -> usize {
    match choice % 10 {
        0..=3 => metadata().len(),
        4 => small_metadata().len(),
        5 => 1,
        6 => METADATA_PIECE_SIZE,
        7 => METADATA_PIECE_SIZE + 1,
        8 => METADATA_SIZE_MAX,
        _ => 40_000,
    }
}

/// Well-formed (mostly) bytes from a peer, from script bytes.
fn peer_bytes(script: &mut Script) -> Vec<u8> {
    let kind = script.byte();
    match (kind & 0x0f) % 10 {
        0 => {
            let hash = if kind & 0x10 != 0 { OTHER_HASH } else { HASH };
            let mut handshake = Handshake::new(hash, [kind; 20]);
            handshake.set_extension_protocol(kind & 0x20 == 0);
            handshake.set_dht(kind & 0x40 != 0);
            handshake.encode().to_vec()
        }
        1 => {
            let mut handshake = ExtendedHandshake::default();
            let id = script.byte();
            match id % 4 {
                0 => {}
                1 => {
                    handshake
                        .extensions
                        .insert(UT_METADATA.into(), OUR_UT_METADATA_ID);
                }
                2 => {
                    handshake.extensions.insert(UT_METADATA.into(), 0);
                }
                _ => {
                    handshake.extensions.insert(UT_METADATA.into(), id);
                }
            }
            handshake.extensions.insert("ut_pex".into(), 2);
            let size = script.byte();
            handshake.metadata_size = match size % 12 {
                10 => None,
                11 => Some(if size & 0x80 != 0 {
                    0
                } else {
                    METADATA_SIZE_MAX + 1
                }),
                n => Some(any_size(n)),
            };
            handshake.client = (kind & 0x10 != 0).then(|| "fuzz peer".into());
            handshake.listen_port = (kind & 0x20 != 0).then_some(6881);
            handshake.your_ip = (kind & 0x40 != 0).then(|| "192.0.2.7".parse().unwrap());
            extended(0, handshake.encode())
        }
        2 => {
            let piece = u32::from(script.byte() % 5);
            let id = if kind & 0x10 != 0 {
                script.byte()
            } else {
                OUR_UT_METADATA_ID
            };
            extended(id, MetadataMessage::Request { piece }.encode())
        }
        3 => {
            let piece = u32::from(script.byte() % 4);
            let total_size = any_size(script.byte());
            let len_choice = script.byte();
            let mut len = metadata_piece_len(total_size, piece).unwrap_or(0);
            match len_choice % 6 {
                4 => len += 1,
                5 => len = len.saturating_sub(1),
                _ => {}
            }
            let start = piece as usize * METADATA_PIECE_SIZE;
            let data = match metadata().get(start..start + len) {
                Some(slice) if total_size == metadata().len() => slice.to_vec(),
                _ => vec![len_choice; len],
            };
            let message = MetadataMessage::Data {
                piece,
                total_size,
                data,
            };
            extended(OUR_UT_METADATA_ID, message.encode())
        }
        4 => {
            let piece = u32::from(script.byte() % 5);
            extended(
                OUR_UT_METADATA_ID,
                MetadataMessage::Reject { piece }.encode(),
            )
        }
        5 => extended(OUR_UT_METADATA_ID, b"d8:msg_typei7e5:piecei0ee".to_vec()),
        6 => frame(&any_message(script)),
        7 => {
            let id = script.byte().max(2);
            let len = usize::from(script.byte() % 16);
            extended(id, script.bytes(len).to_vec())
        }
        8 => {
            let count = 1 + kind / 16;
            (0..count)
                .flat_map(|_| frame(&any_message(script)))
                .collect()
        }
        _ => {
            // A length prefix alone: the start of a frame, maybe too long.
            let length: u32 = match script.byte() % 6 {
                0 => 0,
                1 => 1,
                2 => MESSAGE_SIZE_MAX as u32,
                3 => MESSAGE_SIZE_MAX as u32 + 1,
                4 => u32::MAX,
                _ => 16384 + 9,
            };
            length.to_be_bytes().to_vec()
        }
    }
}

/// Delivers `bytes` whole, one byte at a time, or in two parts.
fn deliver(side: &mut Side, bytes: &[u8], how: u8, cut: u8) {
    match how % 4 {
        1 => {
            for byte in bytes {
                side.feed(std::slice::from_ref(byte));
            }
        }
        2 => {
            let cut = usize::from(cut).min(bytes.len());
            side.feed(&bytes[..cut]);
            side.feed(&bytes[cut..]);
        }
        _ => side.feed(bytes),
    }
}

fn pipe(from: &mut Side, to: &mut Side, amount: u8, flip: Option<(u8, u8)>) {
    let len = match amount {
        0 => from.wire.len(),
        n => (usize::from(n) * 32).min(from.wire.len()),
    };
    let mut bytes: Vec<u8> = from.wire.drain(..len).collect();
    if let Some((at, xor)) = flip
        && !bytes.is_empty()
    {
        let at = usize::from(at) % bytes.len();
        bytes[at] ^= xor.max(1);
    }
    to.feed(&bytes);
}

/// Drops what a session reported; returns how many events there were.
fn discard_output(session: &mut PeerSession) -> usize {
    let mut events = 0;
    while session.poll_event().is_some() {
        events += 1;
    }
    while session.poll_transmit().is_some() {}
    events
}

/// A fresh session receives one large frame in chunks: an oversize length
/// prefix must be refused at once, and otherwise the session's heap grows
/// by at most twice the frame and the chunk together, plus 64 KiB.
///
/// `mode`: bit 0 incoming; bits 1-3 the length; bits 4-5 the message id;
/// bit 6 (incoming) feeds the frame before `accept`; bit 7 then accepts
/// right after an oversize prefix instead of feeding on.
fn burst(script: &mut Script) {
    let mode = script.byte();
    let incoming = mode & 1 == 1;
    let before_accept = incoming && mode & 0x40 != 0;
    let config = SessionConfig {
        peer_id: [0xcc; 20],
        client: "burst".into(),
        listen_port: None,
    };
    let mut session = if incoming {
        PeerSession::incoming(config)
    } else {
        PeerSession::outgoing(config, HASH, None)
    };
    let handshake = Handshake::new(HASH, [0xdd; 20]).encode();
    assert_eq!(session.handle_bytes(&handshake), Ok(()));
    discard_output(&mut session);
    if incoming && !before_accept {
        assert_eq!(session.accept(None), Ok(()), "accept with nothing buffered");
        assert_eq!(discard_output(&mut session), 0, "events from a bare accept");
    }
    let length: u32 = match mode >> 1 & 0x07 {
        0 => MESSAGE_SIZE_MAX as u32,
        1 => MESSAGE_SIZE_MAX as u32 + 1,
        2 => u32::MAX,
        3 => 1 << 20,
        4 => 9 + 16384,
        _ => script.u32() >> (script.byte() % 12),
    };
    let id = [7u8, 5, 99, 20][usize::from(mode >> 4) % 4];
    let chunk = 1024 * (1 + usize::from(script.byte()));
    let zeros = zeros();
    let base = live();
    let mut header = length.to_be_bytes().to_vec();
    header.push(id);
    let result = session.handle_bytes(&header);
    discard_output(&mut session);
    if before_accept {
        burst_before_accept(&mut session, length, &header, chunk, base, mode & 0x80 != 0);
        return;
    }
    if length as usize > MESSAGE_SIZE_MAX {
        assert_eq!(
            result,
            Err(SessionError::Wire(PeerWireError::MessageTooLarge {
                length
            })),
            "oversize prefix not refused at once"
        );
        return;
    }
    if result.is_err() {
        return;
    }
    let frame_len = LENGTH_PREFIX_LEN as isize + length as isize;
    let mut remaining = (length as usize).saturating_sub(1);
    while remaining > 0 {
        let take = remaining.min(chunk).min(zeros.len());
        remaining -= take;
        let result = session.handle_bytes(&zeros[..take]);
        discard_output(&mut session);
        let growth = live() - base;
        assert!(
            growth <= 2 * (frame_len + take as isize) + BURST_SLACK,
            "session holds {growth} bytes for a frame of {frame_len} (chunk {take})"
        );
        if result.is_err() {
            return;
        }
    }
}

/// The burst's frame arrives at an incoming session that has not been
/// accepted: it is buffered, up to `AWAITING_ACCEPT_BUFFER_MAX` bytes, the
/// chunk that would take it past is refused, and `accept` processes what
/// was buffered (an oversize prefix is refused there).
fn burst_before_accept(
    session: &mut PeerSession,
    length: u32,
    header: &[u8],
    chunk: usize,
    base: isize,
    accept_at_once: bool,
) {
    let zeros = zeros();
    let mut buffered = header.len();
    if length as usize > MESSAGE_SIZE_MAX && accept_at_once {
        assert_eq!(
            session.accept(None),
            Err(SessionError::Wire(PeerWireError::MessageTooLarge {
                length
            })),
            "oversize prefix not refused by accept"
        );
        return;
    }
    let mut remaining = (length as usize).saturating_sub(1);
    while remaining > 0 {
        let take = remaining.min(chunk).min(zeros.len());
        remaining -= take;
        let result = session.handle_bytes(&zeros[..take]);
        assert_eq!(discard_output(session), 0, "burst: event before accept");
        let growth = live() - base;
        assert!(
            growth <= 2 * (buffered + take) as isize + BURST_SLACK,
            "session holds {growth} bytes with {buffered} buffered before accept (chunk {take})"
        );
        if buffered + take > AWAITING_ACCEPT_BUFFER_MAX {
            assert!(
                matches!(result, Err(SessionError::Misbehaved(_))),
                "{take} bytes after {buffered} before accept: {result:?}"
            );
            return;
        }
        assert_eq!(
            result,
            Ok(()),
            "{take} bytes after {buffered} before accept"
        );
        buffered += take;
    }
    // The whole frame waits in the buffer: accept processes it, and nothing
    // is left behind.
    let result = session.accept(None);
    let events = discard_output(session);
    if result.is_ok() {
        assert_eq!(events, 1, "frame of {length} processed by accept");
        assert_eq!(session.handle_bytes(&[]), Ok(()));
        assert_eq!(discard_output(session), 0, "frame left behind by accept");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script { data };
    let setup = script.byte();
    let a_serves = (setup & 1 != 0).then(|| metadata().clone());
    let mut a = Side::new(
        "A",
        SessionConfig {
            peer_id: [0xaa; 20],
            client: "fuzz A".into(),
            listen_port: Some(6881),
        },
        true,
        a_serves,
    );
    let mut b = Side::new(
        "B",
        SessionConfig {
            peer_id: [0xbb; 20],
            client: "fuzz B".into(),
            listen_port: None,
        },
        false,
        None,
    );
    let mut bursts = 0;
    let mut big_frames = 0;
    let mut steps = 0;
    while !script.data.is_empty() && steps < STEPS_MAX {
        steps += 1;
        let op = script.byte();
        let (side, other) = if op & 0x10 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        match op & 0x0f {
            2 => {
                let bytes = peer_bytes(&mut script);
                let cut = script.byte();
                deliver(side, &bytes, op >> 5, cut);
            }
            3 => {
                let amount = script.byte();
                let flip = (op & 0x20 != 0).then(|| (script.byte(), script.byte()));
                pipe(side, other, amount, flip);
            }
            4 => {
                let piece = u32::from(script.byte() % 5);
                side.request(piece);
            }
            5 => {
                let metadata = match script.byte() % 3 {
                    0 => None,
                    1 => Some(metadata().clone()),
                    _ => Some(small_metadata().clone()),
                };
                side.accept(metadata);
            }
            6 => {
                let message = any_message(&mut script);
                side.send(message);
            }
            7 => side.probe(),
            8 if bursts == 0 => {
                bursts += 1;
                burst(&mut script);
            }
            9 if big_frames < BIG_FRAMES_MAX => {
                // A piece message, whole or in two: mostly up to 4 KiB
                // (cheap), or 64 KiB to 1 MiB in 64 KiB steps.
                big_frames += 1;
                let len = match script.byte() {
                    size @ 0xf0.. => 64 * 1024 * usize::from(size - 0xef),
                    size => 16 * (1 + usize::from(size)),
                };
                let bytes = frame(&PeerMessage::Piece {
                    index: 0,
                    begin: 0,
                    block: zeros()[..len].to_vec(),
                });
                let cut = script.byte();
                deliver(side, &bytes, op >> 5 & 2, cut);
            }
            _ => {
                // Raw bytes; bit 5 makes the length count in 8s.
                let len = usize::from(script.byte());
                let len = if op & 0x20 != 0 { len * 8 } else { len };
                let bytes = script.bytes(len);
                side.feed(bytes);
            }
        }
        a.probe();
        b.probe();
    }
});
