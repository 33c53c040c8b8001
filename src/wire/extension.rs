//! The extension protocol (BEP 10) handshake and the metadata exchange
//! messages (BEP 9 `ut_metadata`).
//!
//! Both travel as payloads of [`PeerMessage::Extended`](super::peer::PeerMessage::Extended):
//! extended id 0 is the [`ExtendedHandshake`]; `ut_metadata` messages use the
//! id the *receiver* chose in its handshake's `m` dictionary.
//!
//! A ut_metadata `data` message is a bencoded dictionary followed by the raw
//! metadata piece in the same payload (BEP 9 "data"). The bounded scanner
//! finds where the dictionary ends; serde only ever sees the dictionary, and
//! the trailing bytes are taken as the piece. Every size that governs an
//! allocation is checked against [`METADATA_SIZE_MAX`] and
//! [`METADATA_PIECE_SIZE`]. Unknown keys are ignored; advisory handshake
//! fields with unusable values (`p`, `reqq`, `yourip`) are dropped rather
//! than failing the handshake.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use serde_bencode::value::Value;
use serde_bytes::ByteBuf;

use super::bencode::{self, BencodeError, BencodeLimits};
use super::byte_string::ByteString;
pub use super::metainfo::METADATA_SIZE_MAX;

/// Extended message id of the handshake (BEP 10).
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;
/// Name of the metadata extension in the `m` dictionary (BEP 9).
pub const UT_METADATA: &str = "ut_metadata";
/// Bytes per metadata piece; only the last piece may be shorter (BEP 9).
pub const METADATA_PIECE_SIZE: usize = 16 * 1024;
/// Most pieces any acceptable metadata has.
pub const METADATA_PIECE_COUNT_MAX: usize = METADATA_SIZE_MAX.div_ceil(METADATA_PIECE_SIZE);
/// Most entries accepted in a handshake's `m` dictionary (clients send about ten).
pub const EXTENSIONS_MAX: usize = 128;
/// Scanner limits for extension dictionaries: small and shallow, like KRPC's
/// (handshakes are depth 2, ut_metadata headers depth 1), with room for
/// unknown keys. The metadata piece after a `data` header is not scanned.
pub const EXTENSION_LIMITS: BencodeLimits = BencodeLimits {
    depth_max: 10,
    string_length_max: 16 * 1024,
    items_max: 1024,
};

/// ut_metadata `msg_type` values (BEP 9).
pub mod msg_type {
    /// Asks for one piece.
    pub const REQUEST: i64 = 0;
    /// Carries one piece.
    pub const DATA: i64 = 1;
    /// Refuses a request.
    pub const REJECT: i64 = 2;
}

/// Why an extension payload is not acceptable. All are the remote peer's
/// fault; [`ExtensionError::UnknownMessageType`] alone should be ignored
/// rather than punished (BEP 9: unrecognised message types MUST be ignored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// Not acceptable bencode, or beyond [`EXTENSION_LIMITS`].
    #[error("bad bencode: {0}")]
    Bencode(#[from] BencodeError),
    /// Well-formed bencode with the wrong shape or types.
    #[error("bencode does not have the shape of an extension message")]
    Schema,
    /// A required key is absent.
    #[error("missing key {0:?}")]
    MissingKey(&'static str),
    /// `metadata_size` or `total_size` not in 1..=[`METADATA_SIZE_MAX`].
    #[error("metadata size {0} out of range")]
    BadMetadataSize(i64),
    /// More than [`EXTENSIONS_MAX`] entries in `m`.
    #[error("{0} extensions exceed the maximum {EXTENSIONS_MAX}")]
    TooManyExtensions(usize),
    /// A piece index beyond the metadata's last piece (or negative).
    #[error("metadata piece {piece} out of range ({piece_count} pieces)")]
    PieceOutOfRange {
        /// The index received.
        piece: i64,
        /// Pieces the metadata has.
        piece_count: usize,
    },
    /// A data piece larger than [`METADATA_PIECE_SIZE`].
    #[error("metadata piece of {0} bytes exceeds {METADATA_PIECE_SIZE}")]
    PieceTooLarge(usize),
    /// A data piece whose length is not what its index implies (every piece
    /// but the last is exactly [`METADATA_PIECE_SIZE`]).
    #[error("metadata piece of {length} bytes, expected {expected}")]
    WrongPieceLength {
        /// Bytes the piece must have.
        expected: usize,
        /// Bytes received.
        length: usize,
    },
    /// `total_size` differs from the size announced in the handshake.
    #[error("total_size {total_size} differs from the announced {expected}")]
    WrongTotalSize {
        /// The handshake's `metadata_size`.
        expected: usize,
        /// The message's `total_size`.
        total_size: usize,
    },
    /// A `msg_type` other than 0, 1 or 2.
    #[error("unknown ut_metadata msg_type {0}")]
    UnknownMessageType(i64),
    /// Bytes after the dictionary of a request or reject.
    #[error("{0} unexpected bytes after the dictionary")]
    UnexpectedData(usize),
}

/// The BEP 10 handshake dictionary (extended message 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtendedHandshake {
    /// `m`: extension name to the message id the sender wants to receive it
    /// under; 0 means disabled (meaningful in a repeated handshake).
    /// Entries whose id is not an integer in 0..=255 are dropped.
    pub extensions: BTreeMap<String, u8>,
    /// `metadata_size` (BEP 9): bytes of the info dictionary the sender can serve.
    pub metadata_size: Option<usize>,
    /// `v`: client name and version, for logs only.
    pub client: Option<String>,
    /// `p`: the sender's TCP listen port.
    pub listen_port: Option<u16>,
    /// `reqq`: how many outstanding requests the sender queues without dropping.
    pub request_queue_len: Option<u32>,
    /// `yourip`: the receiver's address as the sender sees it.
    pub your_ip: Option<IpAddr>,
}

impl ExtendedHandshake {
    /// The id to send extension `name` under, if the peer enabled it.
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.extensions.get(name).copied().filter(|&id| id != 0)
    }

    /// The id to send ut_metadata messages under, if the peer supports it.
    pub fn ut_metadata_id(&self) -> Option<u8> {
        self.extension_id(UT_METADATA)
    }

    /// Decodes a handshake payload (after the extended id byte). It must be
    /// exactly one dictionary.
    pub fn decode(payload: &[u8]) -> Result<ExtendedHandshake, ExtensionError> {
        bencode::validate(payload, &EXTENSION_LIMITS)?;
        let raw: RawHandshake =
            serde_bencode::from_bytes(payload).map_err(|_| ExtensionError::Schema)?;
        let mut extensions = BTreeMap::new();
        if let Some(m) = raw.m {
            if m.len() > EXTENSIONS_MAX {
                return Err(ExtensionError::TooManyExtensions(m.len()));
            }
            for (name, id) in m {
                if let Value::Int(id) = id
                    && let Ok(id) = u8::try_from(id)
                {
                    extensions.insert(String::from_utf8_lossy(&name).into_owned(), id);
                }
            }
        }
        let metadata_size = raw.metadata_size.map(checked_metadata_size).transpose()?;
        Ok(ExtendedHandshake {
            extensions,
            metadata_size,
            client: raw.v.map(|v| String::from_utf8_lossy(&v).into_owned()),
            listen_port: raw
                .p
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0),
            request_queue_len: raw
                .reqq
                .and_then(|q| u32::try_from(q).ok())
                .filter(|&q| q != 0),
            your_ip: raw.yourip.and_then(|ip| decode_ip(&ip)),
        })
    }

    /// Encodes the handshake payload (without the extended id byte).
    pub fn encode(&self) -> Vec<u8> {
        let raw = RawHandshakeOut {
            m: self
                .extensions
                .iter()
                .map(|(name, id)| (name.as_str(), i64::from(*id)))
                .collect(),
            metadata_size: self.metadata_size,
            p: self.listen_port,
            reqq: self.request_queue_len,
            v: self.client.as_deref(),
            yourip: self.your_ip.map(|ip| match ip {
                IpAddr::V4(v4) => ByteString::from(&v4.octets()[..]),
                IpAddr::V6(v6) => ByteString::from(&v6.octets()[..]),
            }),
        };
        // Plain structs of strings and integers always serialize.
        serde_bencode::to_bytes(&raw).unwrap_or_default()
    }
}

/// A BEP 9 ut_metadata message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: send me piece `piece`.
    Request {
        /// Piece index.
        piece: u32,
    },
    /// `msg_type` 1: piece `piece` of metadata `total_size` bytes long.
    Data {
        /// Piece index.
        piece: u32,
        /// Bytes in the whole metadata.
        total_size: usize,
        /// The piece: [`METADATA_PIECE_SIZE`] bytes, or fewer for the last.
        data: Vec<u8>,
    },
    /// `msg_type` 2: I will not send piece `piece`.
    Reject {
        /// Piece index.
        piece: u32,
    },
}

/// Number of pieces metadata of `metadata_size` bytes is split into.
pub fn metadata_piece_count(metadata_size: usize) -> usize {
    metadata_size.div_ceil(METADATA_PIECE_SIZE)
}

/// Length of piece `piece` of metadata of `metadata_size` bytes, or `None`
/// when there is no such piece.
pub fn metadata_piece_len(metadata_size: usize, piece: u32) -> Option<usize> {
    let start = (piece as usize).checked_mul(METADATA_PIECE_SIZE)?;
    let remaining = metadata_size.checked_sub(start).filter(|&r| r > 0)?;
    Some(remaining.min(METADATA_PIECE_SIZE))
}

impl MetadataMessage {
    /// The piece index the message is about.
    pub fn piece(&self) -> u32 {
        match self {
            MetadataMessage::Request { piece }
            | MetadataMessage::Data { piece, .. }
            | MetadataMessage::Reject { piece } => *piece,
        }
    }

    /// Decodes a ut_metadata payload (after the extended id byte).
    ///
    /// `metadata_size` is the size the peer announced in its handshake (when
    /// fetching) or the size of the metadata we hold (when serving); when
    /// known, piece indices are checked against it and a `data` message's
    /// `total_size` must equal it. Without it, indices are checked against
    /// [`METADATA_PIECE_COUNT_MAX`] and a `data` piece against its own
    /// `total_size`.
    pub fn decode(
        payload: &[u8],
        metadata_size: Option<usize>,
    ) -> Result<MetadataMessage, ExtensionError> {
        // The dictionary ends where the scanner reports trailing bytes; for
        // a data message those bytes are the piece.
        let dict_end = match bencode::validate(payload, &EXTENSION_LIMITS) {
            Ok(()) => payload.len(),
            Err(BencodeError::TrailingBytes(trailing)) => payload.len() - trailing,
            Err(error) => return Err(error.into()),
        };
        let (dict, trailing) = payload.split_at(dict_end);
        let raw: RawMetadataHeader =
            serde_bencode::from_bytes(dict).map_err(|_| ExtensionError::Schema)?;
        let kind = raw.msg_type.ok_or(ExtensionError::MissingKey("msg_type"))?;
        let piece = raw.piece.ok_or(ExtensionError::MissingKey("piece"))?;
        match kind {
            msg_type::REQUEST | msg_type::REJECT => {
                if !trailing.is_empty() {
                    return Err(ExtensionError::UnexpectedData(trailing.len()));
                }
                let piece_count = metadata_size
                    .map(metadata_piece_count)
                    .unwrap_or(METADATA_PIECE_COUNT_MAX);
                let piece = checked_piece(piece, piece_count)?;
                Ok(if kind == msg_type::REQUEST {
                    MetadataMessage::Request { piece }
                } else {
                    MetadataMessage::Reject { piece }
                })
            }
            msg_type::DATA => {
                let total_size = checked_metadata_size(
                    raw.total_size
                        .ok_or(ExtensionError::MissingKey("total_size"))?,
                )?;
                if let Some(expected) = metadata_size
                    && expected != total_size
                {
                    return Err(ExtensionError::WrongTotalSize {
                        expected,
                        total_size,
                    });
                }
                let piece = checked_piece(piece, metadata_piece_count(total_size))?;
                if trailing.len() > METADATA_PIECE_SIZE {
                    return Err(ExtensionError::PieceTooLarge(trailing.len()));
                }
                let expected = metadata_piece_len(total_size, piece).unwrap_or(0);
                if trailing.len() != expected {
                    return Err(ExtensionError::WrongPieceLength {
                        expected,
                        length: trailing.len(),
                    });
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: trailing.to_vec(),
                })
            }
            other => Err(ExtensionError::UnknownMessageType(other)),
        }
    }

    /// Encodes the payload (without the extended id byte): the dictionary,
    /// then for `Data` the piece bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, piece, total_size, data) = match self {
            MetadataMessage::Request { piece } => (msg_type::REQUEST, *piece, None, &[][..]),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => (msg_type::DATA, *piece, Some(*total_size), &data[..]),
            MetadataMessage::Reject { piece } => (msg_type::REJECT, *piece, None, &[][..]),
        };
        let header = RawMetadataHeaderOut {
            msg_type: kind,
            piece,
            total_size,
        };
        // Plain structs of integers always serialize.
        let mut out = serde_bencode::to_bytes(&header).unwrap_or_default();
        out.extend_from_slice(data);
        out
    }
}

fn checked_metadata_size(size: i64) -> Result<usize, ExtensionError> {
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0 && s <= METADATA_SIZE_MAX)
        .ok_or(ExtensionError::BadMetadataSize(size))
}

fn checked_piece(piece: i64, piece_count: usize) -> Result<u32, ExtensionError> {
    usize::try_from(piece)
        .ok()
        .filter(|&p| p < piece_count)
        .and_then(|p| u32::try_from(p).ok())
        .ok_or(ExtensionError::PieceOutOfRange { piece, piece_count })
}

fn decode_ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => {
            let octets: [u8; 4] = bytes.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// Mirror of the handshake dictionary: every key we read.
#[derive(Deserialize)]
struct RawHandshake {
    // Keys may stay `ByteBuf`: the scanner already refused non-string keys.
    #[serde(default)]
    m: Option<BTreeMap<ByteBuf, Value>>,
    #[serde(default)]
    metadata_size: Option<i64>,
    #[serde(default)]
    p: Option<i64>,
    #[serde(default)]
    reqq: Option<i64>,
    #[serde(default)]
    v: Option<ByteString>,
    #[serde(default)]
    yourip: Option<ByteString>,
}

/// The handshake dictionary as written (serde_bencode sorts the keys).
#[derive(Serialize)]
struct RawHandshakeOut<'a> {
    m: BTreeMap<&'a str, i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reqq: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    yourip: Option<ByteString>,
}

/// Mirror of a ut_metadata dictionary.
#[derive(Deserialize)]
struct RawMetadataHeader {
    #[serde(default)]
    msg_type: Option<i64>,
    #[serde(default)]
    piece: Option<i64>,
    #[serde(default)]
    total_size: Option<i64>,
}

/// A ut_metadata dictionary as written.
#[derive(Serialize)]
struct RawMetadataHeaderOut {
    msg_type: i64,
    piece: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_size: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_examples_decode() {
        // BEP 10's example (with the non-ASCII name shortened to ASCII).
        let handshake = ExtendedHandshake::decode(
            b"d1:md11:LT_metadatai1e6:ut_pexi2ee1:pi6881e1:v13:uTorrent 1.2.e",
        )
        .unwrap();
        assert_eq!(handshake.extension_id("LT_metadata"), Some(1));
        assert_eq!(handshake.extension_id("ut_pex"), Some(2));
        assert_eq!(handshake.ut_metadata_id(), None);
        assert_eq!(handshake.listen_port, Some(6881));
        assert_eq!(handshake.client.as_deref(), Some("uTorrent 1.2."));
        // BEP 9's examples.
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei0e5:piecei0ee", None),
            Ok(MetadataMessage::Request { piece: 0 })
        );
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei2e5:piecei0ee", Some(31235)),
            Ok(MetadataMessage::Reject { piece: 0 })
        );
        let mut data = b"d8:msg_typei1e5:piecei0e10:total_sizei3425ee".to_vec();
        data.extend(vec![b'x'; 3425]);
        assert_eq!(
            MetadataMessage::decode(&data, Some(3425)),
            Ok(MetadataMessage::Data {
                piece: 0,
                total_size: 3425,
                data: vec![b'x'; 3425]
            })
        );
    }

    #[test]
    fn handshake_round_trips() {
        let handshake = ExtendedHandshake {
            extensions: BTreeMap::from([("ut_metadata".into(), 3), ("ut_pex".into(), 0)]),
            metadata_size: Some(31235),
            client: Some("trackerless 0.1".into()),
            listen_port: Some(51413),
            request_queue_len: Some(250),
            your_ip: Some("2001:db8::7".parse().unwrap()),
        };
        let bytes = handshake.encode();
        assert!(bytes.starts_with(b"d1:md11:ut_metadatai3e6:ut_pexi0ee13:metadata_sizei31235e"));
        let decoded = ExtendedHandshake::decode(&bytes).unwrap();
        assert_eq!(decoded, handshake);
        assert_eq!(decoded.ut_metadata_id(), Some(3));
        assert_eq!(decoded.extension_id("ut_pex"), None);
        let empty = ExtendedHandshake::default();
        assert_eq!(empty.encode(), b"d1:mdee");
        assert_eq!(ExtendedHandshake::decode(b"de"), Ok(empty));
    }

    #[test]
    fn handshake_tolerates_odd_advisory_values_and_unknown_keys() {
        let bytes =
            b"d1:ai1e1:md11:ut_metadatai300e6:ut_pex1:x2:xxi7ee1:pi70000e4:reqqi-1e6:yourip3:abce";
        let handshake = ExtendedHandshake::decode(bytes).unwrap();
        assert_eq!(handshake.extensions, BTreeMap::from([("xx".into(), 7)]));
        assert_eq!(handshake.listen_port, None);
        assert_eq!(handshake.request_queue_len, None);
        assert_eq!(handshake.your_ip, None);
        let v4 = ExtendedHandshake::decode(b"d6:yourip4:\x7f\x00\x00\x01e").unwrap();
        assert_eq!(v4.your_ip, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn hostile_handshakes_are_rejected() {
        for (bytes, expected) in [
            (
                &b"d13:metadata_sizei0ee"[..],
                ExtensionError::BadMetadataSize(0),
            ),
            (
                b"d13:metadata_sizei-5ee",
                ExtensionError::BadMetadataSize(-5),
            ),
            (
                b"d13:metadata_sizei31457281ee",
                ExtensionError::BadMetadataSize(31_457_281),
            ),
            (b"d1:m3:abce", ExtensionError::Schema),
            (b"l1:me", ExtensionError::Schema),
            (
                b"d1:mdee1:x",
                ExtensionError::Bencode(BencodeError::TrailingBytes(3)),
            ),
        ] {
            assert_eq!(
                ExtendedHandshake::decode(bytes),
                Err(expected),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(
            ExtendedHandshake::decode(
                format!("d13:metadata_sizei{METADATA_SIZE_MAX}ee").as_bytes()
            )
            .map(|h| h.metadata_size),
            Ok(Some(METADATA_SIZE_MAX))
        );
        let many: String = (0..=EXTENSIONS_MAX)
            .map(|i| format!("{}:e{i:05}i1e", 6))
            .collect();
        assert_eq!(
            ExtendedHandshake::decode(format!("d1:md{many}ee").as_bytes()),
            Err(ExtensionError::TooManyExtensions(EXTENSIONS_MAX + 1))
        );
        let deep = format!("d1:x{}{}e", "l".repeat(20), "e".repeat(20));
        assert!(matches!(
            ExtendedHandshake::decode(deep.as_bytes()),
            Err(ExtensionError::Bencode(BencodeError::TooDeep(10)))
        ));
    }

    #[test]
    fn metadata_messages_round_trip_with_trailing_data() {
        let size = 2 * METADATA_PIECE_SIZE + 100;
        let messages = [
            MetadataMessage::Request { piece: 2 },
            MetadataMessage::Reject { piece: 1 },
            MetadataMessage::Data {
                piece: 0,
                total_size: size,
                data: vec![0x65; METADATA_PIECE_SIZE],
            },
            MetadataMessage::Data {
                piece: 2,
                total_size: size,
                // Starts with bytes that look like bencode: they must be data.
                data: [&b"d1:ai1ee"[..], &[0; 92]].concat(),
            },
        ];
        for message in messages {
            let bytes = message.encode();
            assert_eq!(
                MetadataMessage::decode(&bytes, Some(size)),
                Ok(message.clone())
            );
            assert_eq!(MetadataMessage::decode(&bytes, None), Ok(message));
        }
        assert_eq!(
            MetadataMessage::Data {
                piece: 0,
                total_size: 3,
                data: b"abc".to_vec()
            }
            .encode(),
            b"d8:msg_typei1e5:piecei0e10:total_sizei3eeabc"
        );
    }

    #[test]
    fn hostile_metadata_messages_are_rejected() {
        let size = METADATA_PIECE_SIZE + 10;
        let data_header = |piece: i64, total: i64| {
            format!("d8:msg_typei1e5:piecei{piece}e10:total_sizei{total}ee").into_bytes()
        };
        let with = |header: Vec<u8>, len: usize| [header, vec![0; len]].concat();
        let cases: Vec<(Vec<u8>, Option<usize>, ExtensionError)> = vec![
            (
                b"d8:msg_typei0e5:piecei2ee".to_vec(),
                Some(size),
                ExtensionError::PieceOutOfRange {
                    piece: 2,
                    piece_count: 2,
                },
            ),
            (
                b"d8:msg_typei0e5:piecei-1ee".to_vec(),
                None,
                ExtensionError::PieceOutOfRange {
                    piece: -1,
                    piece_count: METADATA_PIECE_COUNT_MAX,
                },
            ),
            (
                b"d8:msg_typei2e5:piecei4294967296ee".to_vec(),
                None,
                ExtensionError::PieceOutOfRange {
                    piece: 1 << 32,
                    piece_count: METADATA_PIECE_COUNT_MAX,
                },
            ),
            (
                b"d8:msg_typei0e5:piecei0eexx".to_vec(),
                None,
                ExtensionError::UnexpectedData(2),
            ),
            (
                b"d8:msg_typei7e5:piecei0ee".to_vec(),
                None,
                ExtensionError::UnknownMessageType(7),
            ),
            (
                b"d5:piecei0ee".to_vec(),
                None,
                ExtensionError::MissingKey("msg_type"),
            ),
            (
                b"d8:msg_typei0ee".to_vec(),
                None,
                ExtensionError::MissingKey("piece"),
            ),
            (
                b"d8:msg_typei1e5:piecei0ee".to_vec(),
                None,
                ExtensionError::MissingKey("total_size"),
            ),
            (b"d8:msg_type1:0e".to_vec(), None, ExtensionError::Schema),
            (data_header(0, 0), None, ExtensionError::BadMetadataSize(0)),
            (
                data_header(0, -1),
                None,
                ExtensionError::BadMetadataSize(-1),
            ),
            (
                data_header(0, METADATA_SIZE_MAX as i64 + 1),
                None,
                ExtensionError::BadMetadataSize(METADATA_SIZE_MAX as i64 + 1),
            ),
            (
                with(data_header(0, 99), 99),
                Some(100),
                ExtensionError::WrongTotalSize {
                    expected: 100,
                    total_size: 99,
                },
            ),
            (
                with(data_header(2, size as i64), 10),
                Some(size),
                ExtensionError::PieceOutOfRange {
                    piece: 2,
                    piece_count: 2,
                },
            ),
            (
                with(data_header(0, 1 << 20), METADATA_PIECE_SIZE + 1),
                None,
                ExtensionError::PieceTooLarge(METADATA_PIECE_SIZE + 1),
            ),
            (
                with(data_header(0, size as i64), 10),
                Some(size),
                ExtensionError::WrongPieceLength {
                    expected: METADATA_PIECE_SIZE,
                    length: 10,
                },
            ),
            (
                with(data_header(1, size as i64), 11),
                Some(size),
                ExtensionError::WrongPieceLength {
                    expected: 10,
                    length: 11,
                },
            ),
            (
                b"d8:msg_typei0e5:piece".to_vec(),
                None,
                ExtensionError::Bencode(BencodeError::Truncated(21)),
            ),
        ];
        for (bytes, known, expected) in cases {
            assert_eq!(
                MetadataMessage::decode(&bytes, known),
                Err(expected),
                "{}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
            );
        }
    }

    #[test]
    fn piece_arithmetic() {
        assert_eq!(metadata_piece_count(1), 1);
        assert_eq!(metadata_piece_count(METADATA_PIECE_SIZE), 1);
        assert_eq!(metadata_piece_count(METADATA_PIECE_SIZE + 1), 2);
        assert_eq!(
            metadata_piece_len(METADATA_PIECE_SIZE + 1, 0),
            Some(METADATA_PIECE_SIZE)
        );
        assert_eq!(metadata_piece_len(METADATA_PIECE_SIZE + 1, 1), Some(1));
        assert_eq!(metadata_piece_len(METADATA_PIECE_SIZE, 1), None);
        assert_eq!(metadata_piece_len(0, 0), None);
        assert_eq!(METADATA_PIECE_COUNT_MAX, 1920);
    }

    fn any_handshake() -> impl Strategy<Value = ExtendedHandshake> {
        (
            proptest::collection::btree_map("[a-zA-Z_]{1,16}", any::<u8>(), 0..8),
            proptest::option::of(1..=METADATA_SIZE_MAX),
            proptest::option::of("[ -~]{0,20}"),
            proptest::option::of(1u16..),
            proptest::option::of(1u32..),
            proptest::option::of(prop_oneof![
                any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())),
                any::<[u8; 16]>().prop_map(|o| IpAddr::V6(o.into())),
            ]),
        )
            .prop_map(
                |(extensions, metadata_size, client, listen_port, request_queue_len, your_ip)| {
                    ExtendedHandshake {
                        extensions,
                        metadata_size,
                        client,
                        listen_port,
                        request_queue_len,
                        your_ip,
                    }
                },
            )
    }

    fn any_metadata_message() -> impl Strategy<Value = (MetadataMessage, usize)> {
        (
            1..=METADATA_SIZE_MAX,
            any::<u8>(),
            any::<prop::sample::Index>(),
            0u8..3,
        )
            .prop_map(|(size, fill, index, kind)| {
                let piece = index.index(metadata_piece_count(size)) as u32;
                let message = match kind {
                    0 => MetadataMessage::Request { piece },
                    1 => MetadataMessage::Reject { piece },
                    _ => MetadataMessage::Data {
                        piece,
                        total_size: size,
                        data: vec![fill; metadata_piece_len(size, piece).unwrap_or(0)],
                    },
                };
                (message, size)
            })
    }

    proptest! {
        #[test]
        fn handshakes_round_trip(handshake in any_handshake()) {
            prop_assert_eq!(ExtendedHandshake::decode(&handshake.encode()), Ok(handshake));
        }

        #[test]
        fn metadata_messages_round_trip((message, size) in any_metadata_message()) {
            let bytes = message.encode();
            prop_assert_eq!(MetadataMessage::decode(&bytes, Some(size)), Ok(message));
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128), known in proptest::option::of(0usize..100_000)) {
            let _ = ExtendedHandshake::decode(&bytes);
            let _ = MetadataMessage::decode(&bytes, known);
        }
    }
}
