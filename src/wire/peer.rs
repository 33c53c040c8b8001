//! The BitTorrent peer wire protocol (BEP 3, "peer protocol"): the 68-byte
//! handshake and the length-prefixed messages that follow it, with BEP 5's
//! `port` message and BEP 10's `extended` message.
//!
//! Decoding is incremental: [`decode_frame`] looks at whatever bytes have
//! arrived on the stream, returns `Ok(None)` until a whole frame is there, and
//! checks the 4-byte length prefix against [`MESSAGE_SIZE_MAX`] before the
//! caller waits for (or allocates) the body. No state, no I/O: the peer
//! session owns the buffer and drops the consumed bytes.

use super::id::{ID_LEN, Id, InfoHash};

/// The protocol string every handshake starts with (after its length byte, 19).
pub const PROTOCOL_NAME: &[u8; 19] = b"BitTorrent protocol";
/// Bytes in a handshake: 1 + 19 (protocol) + 8 (reserved) + 20 (info-hash) + 20 (peer id).
pub const HANDSHAKE_LEN: usize = 1 + PROTOCOL_NAME.len() + 8 + ID_LEN + PEER_ID_LEN;
/// Bytes in a peer id.
pub const PEER_ID_LEN: usize = 20;
/// Bytes in the big-endian length prefix of every message.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// The block size every current client requests (BEP 3: 2^14; larger
/// requests get the connection closed). The session enforces it; the wire
/// layer only bounds whole messages.
pub const BLOCK_SIZE: u32 = 16 * 1024;
/// Largest length prefix accepted (message id plus payload): 1 MiB plus one
/// 16 KiB block, as libtorrent allows. It covers a bitfield for 8 million
/// pieces and any `piece` message carrying one block; anything larger is
/// refused before a byte of it is buffered.
pub const MESSAGE_SIZE_MAX: usize = 1024 * 1024 + BLOCK_SIZE as usize;

/// A peer's self-chosen 20-byte identifier (not in the DHT keyspace).
pub type PeerId = [u8; PEER_ID_LEN];

/// Message ids (the byte after the length prefix).
pub mod message_id {
    /// BEP 3 `choke`.
    pub const CHOKE: u8 = 0;
    /// BEP 3 `unchoke`.
    pub const UNCHOKE: u8 = 1;
    /// BEP 3 `interested`.
    pub const INTERESTED: u8 = 2;
    /// BEP 3 `not interested`.
    pub const NOT_INTERESTED: u8 = 3;
    /// BEP 3 `have`.
    pub const HAVE: u8 = 4;
    /// BEP 3 `bitfield`.
    pub const BITFIELD: u8 = 5;
    /// BEP 3 `request`.
    pub const REQUEST: u8 = 6;
    /// BEP 3 `piece`.
    pub const PIECE: u8 = 7;
    /// BEP 3 `cancel`.
    pub const CANCEL: u8 = 8;
    /// BEP 5 `port`: the sender's DHT UDP port.
    pub const PORT: u8 = 9;
    /// BEP 10 `extended`.
    pub const EXTENDED: u8 = 20;
}

/// Index of the reserved byte holding the BEP 10 extension-protocol bit.
const EXTENSION_PROTOCOL_BYTE: usize = 5;
/// BEP 10: `reserved[5] & 0x10` (bit 20 from the right).
const EXTENSION_PROTOCOL_MASK: u8 = 0x10;
/// Index of the reserved byte holding the BEP 5 DHT bit.
const DHT_BYTE: usize = 7;
/// BEP 5: the last bit of the reserved bytes.
const DHT_MASK: u8 = 0x01;

/// Why bytes on a peer connection are not acceptable. Every variant is the
/// remote peer's fault; the session should close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerWireError {
    /// The handshake does not start with `\x13BitTorrent protocol` (peer
    /// incompatible: another protocol, or an encrypted stream).
    #[error("not a BitTorrent handshake")]
    BadProtocol,
    /// A length prefix above [`MESSAGE_SIZE_MAX`] (peer misbehaved).
    #[error("message length {length} exceeds the maximum {MESSAGE_SIZE_MAX}")]
    MessageTooLarge {
        /// The length prefix as received.
        length: u32,
    },
    /// A message whose payload length is wrong for its id (malformed input).
    #[error("message id {id} with invalid payload length {length}")]
    BadLength {
        /// The message id.
        id: u8,
        /// The payload length received (without the id byte).
        length: usize,
    },
}

/// The first 68 bytes each side sends (BEP 3 "peer protocol").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Feature bits; see the `supports_*` and `set_*` helpers.
    pub reserved: [u8; 8],
    /// The torrent this connection is for.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// A handshake with no reserved bits set.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Handshake {
        Handshake {
            reserved: [0; 8],
            info_hash,
            peer_id,
        }
    }

    /// Whether the sender speaks the BEP 10 extension protocol.
    pub fn supports_extension_protocol(&self) -> bool {
        self.reserved[EXTENSION_PROTOCOL_BYTE] & EXTENSION_PROTOCOL_MASK != 0
    }

    /// Advertises (or withdraws) the BEP 10 extension protocol.
    pub fn set_extension_protocol(&mut self, on: bool) {
        set_bit(
            &mut self.reserved[EXTENSION_PROTOCOL_BYTE],
            EXTENSION_PROTOCOL_MASK,
            on,
        );
    }

    /// Whether the sender runs a DHT node (BEP 5) and may send a `port` message.
    pub fn supports_dht(&self) -> bool {
        self.reserved[DHT_BYTE] & DHT_MASK != 0
    }

    /// Advertises (or withdraws) DHT support.
    pub fn set_dht(&mut self, on: bool) {
        set_bit(&mut self.reserved[DHT_BYTE], DHT_MASK, on);
    }

    /// The handshake as sent on the wire.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = PROTOCOL_NAME.len() as u8;
        out[1..20].copy_from_slice(PROTOCOL_NAME);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }

    /// Decodes a handshake from the start of `buf`. Returns `Ok(None)` while
    /// fewer than [`HANDSHAKE_LEN`] bytes have arrived, but fails as soon as
    /// the bytes present cannot start a BitTorrent handshake. On success the
    /// caller consumes exactly [`HANDSHAKE_LEN`] bytes.
    pub fn decode(buf: &[u8]) -> Result<Option<Handshake>, PeerWireError> {
        let mut expected = [0u8; 20];
        expected[0] = PROTOCOL_NAME.len() as u8;
        expected[1..].copy_from_slice(PROTOCOL_NAME);
        let present = buf.len().min(expected.len());
        if buf[..present] != expected[..present] {
            return Err(PeerWireError::BadProtocol);
        }
        let Some(bytes) = buf.get(..HANDSHAKE_LEN) else {
            return Ok(None);
        };
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        let mut info_hash = [0u8; ID_LEN];
        info_hash.copy_from_slice(&bytes[28..48]);
        let mut peer_id = [0u8; PEER_ID_LEN];
        peer_id.copy_from_slice(&bytes[48..68]);
        Ok(Some(Handshake {
            reserved,
            info_hash: Id(info_hash),
            peer_id,
        }))
    }
}

fn set_bit(byte: &mut u8, mask: u8, on: bool) {
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
}

/// One message after the handshake (BEP 3 "peer messages").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage {
    /// A zero-length frame; keeps the connection open.
    KeepAlive,
    /// The sender will not serve requests.
    Choke,
    /// The sender will serve requests.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants nothing the receiver has.
    NotInterested,
    /// The sender completed and verified piece `index`.
    Have {
        /// Piece index.
        index: u32,
    },
    /// The pieces the sender has, high bit of byte 0 first; only valid as
    /// the first message. The session checks its length against the torrent.
    Bitfield(Vec<u8>),
    /// Asks for `length` bytes of piece `index` starting at `begin`.
    Request {
        /// Piece index.
        index: u32,
        /// Byte offset in the piece.
        begin: u32,
        /// Bytes wanted (normally [`BLOCK_SIZE`]).
        length: u32,
    },
    /// A block of piece `index` starting at `begin`.
    Piece {
        /// Piece index.
        index: u32,
        /// Byte offset in the piece.
        begin: u32,
        /// The data.
        block: Vec<u8>,
    },
    /// Withdraws an earlier request with the same fields.
    Cancel {
        /// Piece index.
        index: u32,
        /// Byte offset in the piece.
        begin: u32,
        /// Bytes that were requested.
        length: u32,
    },
    /// BEP 5: the sender's DHT node listens on this UDP port.
    Port(u16),
    /// BEP 10: an extension message; `id` 0 is the extended handshake, other
    /// ids are those the receiver assigned in its own handshake.
    Extended {
        /// Extended message id.
        id: u8,
        /// The extension's payload (bencoded, possibly followed by raw bytes).
        payload: Vec<u8>,
    },
    /// A well-framed message with an id this layer does not know (for
    /// example BEP 6 fast-extension messages). The session decides whether
    /// to ignore it or to drop the peer. Built with a known id, it encodes
    /// as that message's frame and decodes as the known variant.
    Unknown {
        /// The message id.
        id: u8,
        /// The payload after the id.
        payload: Vec<u8>,
    },
}

impl PeerMessage {
    /// The message id, or `None` for a keep-alive.
    pub fn id(&self) -> Option<u8> {
        use message_id::*;
        Some(match self {
            PeerMessage::KeepAlive => return None,
            PeerMessage::Choke => CHOKE,
            PeerMessage::Unchoke => UNCHOKE,
            PeerMessage::Interested => INTERESTED,
            PeerMessage::NotInterested => NOT_INTERESTED,
            PeerMessage::Have { .. } => HAVE,
            PeerMessage::Bitfield(_) => BITFIELD,
            PeerMessage::Request { .. } => REQUEST,
            PeerMessage::Piece { .. } => PIECE,
            PeerMessage::Cancel { .. } => CANCEL,
            PeerMessage::Port(_) => PORT,
            PeerMessage::Extended { .. } => EXTENDED,
            PeerMessage::Unknown { id, .. } => *id,
        })
    }

    /// Appends the framed message (length prefix included) to `out`.
    ///
    /// Messages built locally must stay within [`MESSAGE_SIZE_MAX`]; a
    /// larger one is still written but every peer will refuse it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let Some(id) = self.id() else {
            out.extend_from_slice(&0u32.to_be_bytes());
            return;
        };
        let payload_len = self.payload_len();
        let frame_len = u32::try_from(payload_len + 1).unwrap_or(u32::MAX);
        out.reserve(LENGTH_PREFIX_LEN + 1 + payload_len);
        out.extend_from_slice(&frame_len.to_be_bytes());
        out.push(id);
        match self {
            PeerMessage::KeepAlive
            | PeerMessage::Choke
            | PeerMessage::Unchoke
            | PeerMessage::Interested
            | PeerMessage::NotInterested => {}
            PeerMessage::Have { index } => out.extend_from_slice(&index.to_be_bytes()),
            PeerMessage::Bitfield(bits) => out.extend_from_slice(bits),
            PeerMessage::Request {
                index,
                begin,
                length,
            }
            | PeerMessage::Cancel {
                index,
                begin,
                length,
            } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(&length.to_be_bytes());
            }
            PeerMessage::Piece {
                index,
                begin,
                block,
            } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(block);
            }
            PeerMessage::Port(port) => out.extend_from_slice(&port.to_be_bytes()),
            PeerMessage::Extended { id, payload } => {
                out.push(*id);
                out.extend_from_slice(payload);
            }
            PeerMessage::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
    }

    /// Bytes after the message id.
    fn payload_len(&self) -> usize {
        match self {
            PeerMessage::KeepAlive
            | PeerMessage::Choke
            | PeerMessage::Unchoke
            | PeerMessage::Interested
            | PeerMessage::NotInterested => 0,
            PeerMessage::Have { .. } => 4,
            PeerMessage::Bitfield(bits) => bits.len(),
            PeerMessage::Request { .. } | PeerMessage::Cancel { .. } => 12,
            PeerMessage::Piece { block, .. } => 8 + block.len(),
            PeerMessage::Port(_) => 2,
            PeerMessage::Extended { payload, .. } => 1 + payload.len(),
            PeerMessage::Unknown { payload, .. } => payload.len(),
        }
    }
}

/// Decodes the first frame in `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or the message and the
/// number of bytes it occupied (prefix included). A length prefix above
/// [`MESSAGE_SIZE_MAX`] is an error as soon as its 4 bytes are present,
/// before the body is awaited or allocated.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(PeerMessage, usize)>, PeerWireError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX_LEN) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let frame_len = length as usize;
    if frame_len > MESSAGE_SIZE_MAX {
        return Err(PeerWireError::MessageTooLarge { length });
    }
    let consumed = LENGTH_PREFIX_LEN + frame_len;
    let Some(frame) = buf.get(LENGTH_PREFIX_LEN..consumed) else {
        return Ok(None);
    };
    let Some((&id, payload)) = frame.split_first() else {
        return Ok(Some((PeerMessage::KeepAlive, consumed)));
    };
    Ok(Some((decode_message(id, payload)?, consumed)))
}

fn decode_message(id: u8, payload: &[u8]) -> Result<PeerMessage, PeerWireError> {
    use message_id::*;
    let bad_length = || PeerWireError::BadLength {
        id,
        length: payload.len(),
    };
    let exact = |n: usize| {
        if payload.len() == n {
            Ok(())
        } else {
            Err(bad_length())
        }
    };
    let message = match id {
        CHOKE => exact(0).map(|()| PeerMessage::Choke)?,
        UNCHOKE => exact(0).map(|()| PeerMessage::Unchoke)?,
        INTERESTED => exact(0).map(|()| PeerMessage::Interested)?,
        NOT_INTERESTED => exact(0).map(|()| PeerMessage::NotInterested)?,
        HAVE => {
            exact(4)?;
            PeerMessage::Have {
                index: be_u32(payload, 0),
            }
        }
        BITFIELD => PeerMessage::Bitfield(payload.to_vec()),
        REQUEST | CANCEL => {
            exact(12)?;
            let (index, begin, length) =
                (be_u32(payload, 0), be_u32(payload, 4), be_u32(payload, 8));
            if id == REQUEST {
                PeerMessage::Request {
                    index,
                    begin,
                    length,
                }
            } else {
                PeerMessage::Cancel {
                    index,
                    begin,
                    length,
                }
            }
        }
        PIECE => {
            let block = payload.get(8..).ok_or_else(bad_length)?;
            PeerMessage::Piece {
                index: be_u32(payload, 0),
                begin: be_u32(payload, 4),
                block: block.to_vec(),
            }
        }
        PORT => {
            exact(2)?;
            PeerMessage::Port(u16::from_be_bytes([payload[0], payload[1]]))
        }
        EXTENDED => {
            let (&extended_id, rest) = payload.split_first().ok_or_else(bad_length)?;
            PeerMessage::Extended {
                id: extended_id,
                payload: rest.to_vec(),
            }
        }
        other => PeerMessage::Unknown {
            id: other,
            payload: payload.to_vec(),
        },
    };
    Ok(message)
}

/// Reads a big-endian u32 at `at`; callers have checked the length.
fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        word.copy_from_slice(src);
    }
    u32::from_be_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_messages() -> Vec<PeerMessage> {
        vec![
            PeerMessage::KeepAlive,
            PeerMessage::Choke,
            PeerMessage::Unchoke,
            PeerMessage::Interested,
            PeerMessage::NotInterested,
            PeerMessage::Have { index: 7 },
            PeerMessage::Bitfield(vec![0xff, 0x80]),
            PeerMessage::Bitfield(Vec::new()),
            PeerMessage::Request {
                index: 1,
                begin: 16384,
                length: 16384,
            },
            PeerMessage::Piece {
                index: 1,
                begin: 0,
                block: vec![9; 100],
            },
            PeerMessage::Piece {
                index: 2,
                begin: 3,
                block: Vec::new(),
            },
            PeerMessage::Cancel {
                index: 1,
                begin: 16384,
                length: 16384,
            },
            PeerMessage::Port(6881),
            PeerMessage::Extended {
                id: 0,
                payload: b"d1:md11:ut_metadatai3eee".to_vec(),
            },
            PeerMessage::Extended {
                id: 3,
                payload: Vec::new(),
            },
            PeerMessage::Unknown {
                id: 14,
                payload: Vec::new(),
            },
        ]
    }

    fn encoded(message: &PeerMessage) -> Vec<u8> {
        let mut out = Vec::new();
        message.encode(&mut out);
        out
    }

    #[test]
    fn every_message_round_trips() {
        for message in sample_messages() {
            let bytes = encoded(&message);
            assert_eq!(
                decode_frame(&bytes),
                Ok(Some((message.clone(), bytes.len()))),
                "{message:?}"
            );
        }
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encoded(&PeerMessage::KeepAlive), [0, 0, 0, 0]);
        assert_eq!(encoded(&PeerMessage::Interested), [0, 0, 0, 1, 2]);
        assert_eq!(
            encoded(&PeerMessage::Have { index: 0x0102_0304 }),
            [0, 0, 0, 5, 4, 1, 2, 3, 4]
        );
        assert_eq!(
            encoded(&PeerMessage::Port(0x1ae1)),
            [0, 0, 0, 3, 9, 0x1a, 0xe1]
        );
    }

    #[test]
    fn partial_frames_need_more_bytes() {
        for message in sample_messages() {
            let bytes = encoded(&message);
            for cut in 0..bytes.len() {
                assert_eq!(
                    decode_frame(&bytes[..cut]),
                    Ok(None),
                    "{message:?} at {cut}"
                );
            }
        }
    }

    #[test]
    fn decodes_only_the_first_of_several_frames() {
        let mut bytes = encoded(&PeerMessage::Choke);
        bytes.extend(encoded(&PeerMessage::Have { index: 3 }));
        let (first, used) = decode_frame(&bytes).unwrap().unwrap();
        assert_eq!((first, used), (PeerMessage::Choke, 5));
        let (second, _) = decode_frame(&bytes[used..]).unwrap().unwrap();
        assert_eq!(second, PeerMessage::Have { index: 3 });
    }

    #[test]
    fn oversize_length_prefix_is_rejected_from_the_prefix_alone() {
        // Only the 4 prefix bytes are present: the error comes before any
        // body is awaited, so nothing proportional to the claim is allocated.
        assert_eq!(
            decode_frame(&u32::MAX.to_be_bytes()),
            Err(PeerWireError::MessageTooLarge { length: u32::MAX })
        );
        let just_over = (MESSAGE_SIZE_MAX as u32 + 1).to_be_bytes();
        assert!(matches!(
            decode_frame(&just_over),
            Err(PeerWireError::MessageTooLarge { .. })
        ));
        let at_limit = (MESSAGE_SIZE_MAX as u32).to_be_bytes();
        assert_eq!(decode_frame(&at_limit), Ok(None));
    }

    #[test]
    fn wrong_fixed_lengths_are_rejected() {
        let cases: &[(&[u8], u8, usize)] = &[
            (&[0, 0, 0, 2, 0, 0], 0, 1),
            (&[0, 0, 0, 2, 3, 1], 3, 1),
            (&[0, 0, 0, 4, 4, 0, 0, 1], 4, 3),
            (&[0, 0, 0, 6, 4, 0, 0, 0, 1, 0], 4, 5),
            (&[0, 0, 0, 12, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 6, 11),
            (
                &[0, 0, 0, 14, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                8,
                13,
            ),
            (&[0, 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0], 7, 7),
            (&[0, 0, 0, 2, 9, 1], 9, 1),
            (&[0, 0, 0, 1, 20], 20, 0),
        ];
        for (bytes, id, length) in cases {
            assert_eq!(
                decode_frame(bytes),
                Err(PeerWireError::BadLength {
                    id: *id,
                    length: *length
                }),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn handshake_round_trips_with_feature_bits() {
        let mut handshake = Handshake::new(Id([0xab; 20]), *b"-TL0001-abcdefghijkl");
        assert!(!handshake.supports_extension_protocol() && !handshake.supports_dht());
        handshake.set_extension_protocol(true);
        handshake.set_dht(true);
        let bytes = handshake.encode();
        assert_eq!(bytes.len(), HANDSHAKE_LEN);
        assert_eq!(&bytes[..20], b"\x13BitTorrent protocol");
        assert_eq!(bytes[25], 0x10);
        assert_eq!(bytes[27], 0x01);
        let decoded = Handshake::decode(&bytes).unwrap().unwrap();
        assert_eq!(decoded, handshake);
        assert!(decoded.supports_extension_protocol() && decoded.supports_dht());
        handshake.set_dht(false);
        assert!(!handshake.supports_dht() && handshake.supports_extension_protocol());
    }

    #[test]
    fn handshake_is_incremental_and_fails_early() {
        let bytes = Handshake::new(Id([1; 20]), [2; 20]).encode();
        for cut in 0..HANDSHAKE_LEN {
            assert_eq!(Handshake::decode(&bytes[..cut]), Ok(None));
        }
        assert_eq!(
            Handshake::decode(b"\x13BitTorrent protocoX"),
            Err(PeerWireError::BadProtocol)
        );
        assert_eq!(
            Handshake::decode(b"GET / HTTP/1.1"),
            Err(PeerWireError::BadProtocol)
        );
        assert_eq!(Handshake::decode(b"\x13Bit"), Ok(None));
    }

    fn any_message() -> impl Strategy<Value = PeerMessage> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..64);
        prop_oneof![
            Just(PeerMessage::KeepAlive),
            Just(PeerMessage::Choke),
            Just(PeerMessage::Unchoke),
            Just(PeerMessage::Interested),
            Just(PeerMessage::NotInterested),
            any::<u32>().prop_map(|index| PeerMessage::Have { index }),
            bytes().prop_map(PeerMessage::Bitfield),
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(index, begin, length)| {
                PeerMessage::Request {
                    index,
                    begin,
                    length,
                }
            }),
            (any::<u32>(), any::<u32>(), bytes()).prop_map(|(index, begin, block)| {
                PeerMessage::Piece {
                    index,
                    begin,
                    block,
                }
            }),
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(index, begin, length)| {
                PeerMessage::Cancel {
                    index,
                    begin,
                    length,
                }
            }),
            any::<u16>().prop_map(PeerMessage::Port),
            (any::<u8>(), bytes()).prop_map(|(id, payload)| PeerMessage::Extended { id, payload }),
            ((10u8..20), bytes()).prop_map(|(id, payload)| PeerMessage::Unknown { id, payload }),
        ]
    }

    proptest! {
        #[test]
        fn messages_round_trip(messages in proptest::collection::vec(any_message(), 1..8)) {
            let mut stream = Vec::new();
            for message in &messages {
                message.encode(&mut stream);
            }
            let mut at = 0;
            for message in &messages {
                let (decoded, used) = decode_frame(&stream[at..]).unwrap().unwrap();
                prop_assert_eq!(&decoded, message);
                at += used;
            }
            prop_assert_eq!(at, stream.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_frame(&bytes);
            let _ = Handshake::decode(&bytes);
        }

        #[test]
        fn handshakes_round_trip(reserved in any::<[u8; 8]>(), hash in any::<[u8; 20]>(), peer in any::<[u8; 20]>()) {
            let handshake = Handshake { reserved, info_hash: Id(hash), peer_id: peer };
            prop_assert_eq!(Handshake::decode(&handshake.encode()), Ok(Some(handshake)));
        }
    }
}
