//! KRPC messages (BEP 5): typed queries, responses and errors.
//!
//! Two layers, as in the rest of `wire`: private serde structs that mirror
//! the bencoded bytes, and the public [`Message`] that the DHT core works
//! with. Decoding first passes the datagram through the bounded
//! [`bencode`](super::bencode::validate) scanner, so serde only ever sees input of
//! bounded depth, size and canonical form. Unknown keys are ignored, missing
//! required keys are a typed [`DecodeError`].

use std::net::SocketAddr;

use super::byte_string::ByteString;
use serde::{Deserialize, Serialize};

use super::bencode::{self, BencodeError, BencodeLimits};
use super::compact::{self, NODE_V4_LEN, NODE_V6_LEN, NodeContact};
use super::id::Id;

/// Longest transaction ID we accept and echo. BEP 5 suggests 2 bytes; real
/// clients send 2 (libtorrent, rqbit) or 4 (the `mainline` crate, ours).
pub const TRANSACTION_ID_LEN_MAX: usize = 16;

/// Standard KRPC error codes (BEP 5).
pub mod error_code {
    /// A generic error.
    pub const GENERIC: i64 = 201;
    /// Something went wrong on the server side.
    pub const SERVER: i64 = 202;
    /// Malformed packet, invalid arguments or a bad token.
    pub const PROTOCOL: i64 = 203;
    /// The query's method is not known.
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// The opaque transaction ID a querier chose; echoed byte for byte in the reply.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId {
    bytes: [u8; TRANSACTION_ID_LEN_MAX],
    len: u8,
}

impl TransactionId {
    /// Wraps 1 to [`TRANSACTION_ID_LEN_MAX`] bytes.
    pub fn new(bytes: &[u8]) -> Option<TransactionId> {
        if bytes.is_empty() || bytes.len() > TRANSACTION_ID_LEN_MAX {
            return None;
        }
        let mut out = [0u8; TRANSACTION_ID_LEN_MAX];
        out[..bytes.len()].copy_from_slice(bytes);
        Some(TransactionId {
            bytes: out,
            len: bytes.len() as u8,
        })
    }

    /// The ID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TransactionId({:02x?})", self.as_bytes())
    }
}

/// One KRPC message, as sent or received in one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chosen by the querier, echoed by the responder.
    pub transaction_id: TransactionId,
    /// What the message is.
    pub body: Body,
    /// The sender's client version (`v`): two letters of client, two of version.
    pub client_version: Option<Vec<u8>>,
    /// The requester's address as the responder saw it (top-level `ip`,
    /// BEP 42); set on responses so a node can learn its external address.
    pub requester_addr: Option<SocketAddr>,
    /// The sender is read-only (BEP 43 `ro`): do not add it to routing tables.
    pub read_only: bool,
}

/// The three kinds of KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `y = q`.
    Query(Query),
    /// `y = r`.
    Response(Response),
    /// `y = e`.
    Error(KrpcError),
}

/// Which address families a querier wants nodes for (BEP 32 `want`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// `n4`: IPv4 nodes in `nodes`.
    pub ipv4: bool,
    /// `n6`: IPv6 nodes in `nodes6`.
    pub ipv6: bool,
}

/// A KRPC query (`y = q`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Are you there?
    Ping {
        /// The querier's node ID.
        id: Id,
    },
    /// Send me the nodes you know closest to `target`.
    FindNode {
        /// The querier's node ID.
        id: Id,
        /// The ID to find nodes near.
        target: Id,
        /// Requested address families, if stated.
        want: Option<Want>,
    },
    /// Send me peers for `info_hash`, or the closest nodes, and a write token.
    GetPeers {
        /// The querier's node ID.
        id: Id,
        /// The torrent whose peers are wanted.
        info_hash: Id,
        /// Requested address families, if stated.
        want: Option<Want>,
    },
    /// Store my address as a peer for `info_hash`.
    AnnouncePeer {
        /// The querier's node ID.
        id: Id,
        /// The torrent being announced.
        info_hash: Id,
        /// The peer's TCP port (ignored when `implied_port` is set).
        port: u16,
        /// Use the UDP source port instead of `port` (for peers behind NAT).
        implied_port: bool,
        /// The write token this node gave the querier in a get_peers reply.
        token: Vec<u8>,
    },
    /// A method we do not implement; answered with error 204.
    Unknown {
        /// The method name as sent.
        method: Vec<u8>,
        /// The querier's node ID, if it sent a well-formed one.
        id: Option<Id>,
    },
}

impl Query {
    /// The querier's node ID, if the query carries one.
    pub fn sender_id(&self) -> Option<Id> {
        match self {
            Query::Ping { id }
            | Query::FindNode { id, .. }
            | Query::GetPeers { id, .. }
            | Query::AnnouncePeer { id, .. } => Some(*id),
            Query::Unknown { id, .. } => *id,
        }
    }

    /// The method name, as a short static label for counters and logs.
    pub fn method_name(&self) -> &'static str {
        match self {
            Query::Ping { .. } => "ping",
            Query::FindNode { .. } => "find_node",
            Query::GetPeers { .. } => "get_peers",
            Query::AnnouncePeer { .. } => "announce_peer",
            Query::Unknown { .. } => "unknown",
        }
    }
}

/// A KRPC response (`y = r`). KRPC responses do not say which query they
/// answer, so every field but `id` is optional and the querier interprets
/// them through its transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The responder's node ID.
    pub id: Id,
    /// IPv4 nodes (`nodes`).
    pub nodes: Vec<NodeContact>,
    /// IPv6 nodes (`nodes6`, BEP 32).
    pub nodes6: Vec<NodeContact>,
    /// Peers for the requested info-hash (`values`).
    pub values: Vec<SocketAddr>,
    /// Write token for a later announce_peer.
    pub token: Option<Vec<u8>>,
}

/// A KRPC error (`y = e`): a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrpcError {
    /// One of [`error_code`], or another number a peer sent.
    pub code: i64,
    /// Free text; lossily decoded as UTF-8.
    pub message: String,
}

/// Why a datagram is not a KRPC message we can use. All are the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not acceptable bencode.
    #[error("bad bencode: {0}")]
    Bencode(#[from] BencodeError),
    /// Well-formed bencode whose shape is not a KRPC message (wrong types).
    #[error("bencode does not have the shape of a KRPC message")]
    Schema,
    /// A required key is absent.
    #[error("missing key {0:?}")]
    MissingKey(&'static str),
    /// A key whose value has the wrong length (IDs, compact addresses, tokens).
    #[error("key {key:?} has an invalid length {length}")]
    BadLength {
        /// The key.
        key: &'static str,
        /// The length received.
        length: usize,
    },
    /// A value out of its range (ports, flags).
    #[error("key {0:?} has an out-of-range value")]
    OutOfRange(&'static str),
    /// `y` is not `q`, `r` or `e`.
    #[error("unknown message type")]
    UnknownType,
}

/// Decodes one datagram. Never panics; every failure is a [`DecodeError`].
pub fn decode(datagram: &[u8]) -> Result<Message, DecodeError> {
    bencode::validate(datagram, &BencodeLimits::KRPC)?;
    let raw: RawMessage = serde_bencode::from_bytes(datagram).map_err(|_| DecodeError::Schema)?;
    raw.into_message()
}

/// For a datagram that failed [`decode`]: its transaction ID if it looks
/// like a query, so the sender can be told with error 203 what went wrong.
pub fn query_transaction_id(datagram: &[u8]) -> Option<TransactionId> {
    bencode::validate(datagram, &BencodeLimits::KRPC).ok()?;
    let header: RawHeader = serde_bencode::from_bytes(datagram).ok()?;
    if header.y.as_slice() != b"q" {
        return None;
    }
    TransactionId::new(&header.t)
}

impl Message {
    /// Encodes the message as one bencoded datagram.
    pub fn encode(&self) -> Vec<u8> {
        let raw = RawMessage::from_message(self);
        // Serializing plain structs of byte strings and integers into a
        // Vec cannot fail; an empty datagram would be dropped by the peer.
        serde_bencode::to_bytes(&raw).unwrap_or_default()
    }
}

/// Mirror of the bytes on the wire: every key we read or write.
#[derive(Serialize, Deserialize, Default)]
struct RawMessage {
    t: ByteString,
    y: ByteString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<RawBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<RawBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<(i64, ByteString)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ro: Option<i64>,
}

/// Only the keys needed to answer an undecodable query with an error.
#[derive(Deserialize)]
struct RawHeader {
    t: ByteString,
    y: ByteString,
}

/// Mirror of the `a` (arguments) and `r` (response) dictionaries.
#[derive(Serialize, Deserialize, Default)]
struct RawBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    implied_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    info_hash: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nodes: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nodes6: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<ByteString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    values: Option<Vec<ByteString>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    want: Option<Vec<ByteString>>,
}

/// Longest write token accepted from a peer (libtorrent sends 4, others 8 to 20).
const TOKEN_LEN_MAX: usize = 64;

impl RawMessage {
    fn into_message(self) -> Result<Message, DecodeError> {
        let transaction_id = TransactionId::new(&self.t).ok_or(DecodeError::BadLength {
            key: "t",
            length: self.t.len(),
        })?;
        let body = match self.y.as_slice() {
            b"q" => {
                let method = self.q.ok_or(DecodeError::MissingKey("q"))?;
                let args = self.a.ok_or(DecodeError::MissingKey("a"))?;
                Body::Query(decode_query(method.into_vec(), args)?)
            }
            b"r" => Body::Response(decode_response(
                self.r.ok_or(DecodeError::MissingKey("r"))?,
            )?),
            b"e" => {
                let (code, message) = self.e.ok_or(DecodeError::MissingKey("e"))?;
                Body::Error(KrpcError {
                    code,
                    message: String::from_utf8_lossy(&message).into_owned(),
                })
            }
            _ => return Err(DecodeError::UnknownType),
        };
        let requester_addr = match self.ip {
            Some(ip) => Some(compact::decode_peer(&ip).ok_or(DecodeError::BadLength {
                key: "ip",
                length: ip.len(),
            })?),
            None => None,
        };
        Ok(Message {
            transaction_id,
            body,
            client_version: self.v.map(ByteString::into_vec),
            requester_addr,
            read_only: self.ro == Some(1),
        })
    }

    fn from_message(message: &Message) -> RawMessage {
        let mut raw = RawMessage {
            t: ByteString::from(message.transaction_id.as_bytes()),
            v: message.client_version.clone().map(ByteString::from),
            ip: message.requester_addr.map(|addr| {
                let mut out = Vec::with_capacity(compact::PEER_V6_LEN);
                compact::encode_peer(&addr, &mut out);
                ByteString::from(out)
            }),
            ro: message.read_only.then_some(1),
            ..RawMessage::default()
        };
        match &message.body {
            Body::Query(query) => {
                raw.y = ByteString::from(b"q".to_vec());
                let (method, args) = encode_query(query);
                raw.q = Some(ByteString::from(method));
                raw.a = Some(args);
            }
            Body::Response(response) => {
                raw.y = ByteString::from(b"r".to_vec());
                raw.r = Some(encode_response(response));
            }
            Body::Error(error) => {
                raw.y = ByteString::from(b"e".to_vec());
                raw.e = Some((error.code, ByteString::from(error.message.as_bytes())));
            }
        }
        raw
    }
}

fn decode_query(method: Vec<u8>, args: RawBody) -> Result<Query, DecodeError> {
    let id = required_id(&args.id, "id");
    let query = match method.as_slice() {
        b"ping" => Query::Ping { id: id? },
        b"find_node" => Query::FindNode {
            id: id?,
            target: required_id(&args.target, "target")?,
            want: decode_want(args.want.as_deref()),
        },
        b"get_peers" => Query::GetPeers {
            id: id?,
            info_hash: required_id(&args.info_hash, "info_hash")?,
            want: decode_want(args.want.as_deref()),
        },
        b"announce_peer" => {
            let port = args.port.unwrap_or(0);
            let implied_port = args.implied_port.unwrap_or(0) != 0;
            if !implied_port && !(1..=i64::from(u16::MAX)).contains(&port) {
                return Err(DecodeError::OutOfRange("port"));
            }
            let token = args.token.ok_or(DecodeError::MissingKey("token"))?;
            if token.len() > TOKEN_LEN_MAX {
                return Err(DecodeError::BadLength {
                    key: "token",
                    length: token.len(),
                });
            }
            Query::AnnouncePeer {
                id: id?,
                info_hash: required_id(&args.info_hash, "info_hash")?,
                port: u16::try_from(port).unwrap_or(0),
                implied_port,
                token: token.into_vec(),
            }
        }
        _ => Query::Unknown {
            id: id.ok(),
            method,
        },
    };
    Ok(query)
}

fn decode_response(body: RawBody) -> Result<Response, DecodeError> {
    let nodes = match &body.nodes {
        Some(bytes) => compact::decode_nodes(bytes, NODE_V4_LEN).ok_or(DecodeError::BadLength {
            key: "nodes",
            length: bytes.len(),
        })?,
        None => Vec::new(),
    };
    let nodes6 = match &body.nodes6 {
        Some(bytes) => compact::decode_nodes(bytes, NODE_V6_LEN).ok_or(DecodeError::BadLength {
            key: "nodes6",
            length: bytes.len(),
        })?,
        None => Vec::new(),
    };
    // A malformed entry among the values costs only that entry: libtorrent
    // and others have been seen padding lists, and the rest are still peers.
    let values = body
        .values
        .iter()
        .flatten()
        .filter_map(|value| compact::decode_peer(value))
        .collect();
    if body.token.as_ref().is_some_and(|t| t.len() > TOKEN_LEN_MAX) {
        return Err(DecodeError::OutOfRange("token"));
    }
    Ok(Response {
        id: required_id(&body.id, "id")?,
        nodes,
        nodes6,
        values,
        token: body.token.map(ByteString::into_vec),
    })
}

fn required_id(bytes: &Option<ByteString>, key: &'static str) -> Result<Id, DecodeError> {
    let bytes = bytes.as_ref().ok_or(DecodeError::MissingKey(key))?;
    Id::from_slice(bytes).ok_or(DecodeError::BadLength {
        key,
        length: bytes.len(),
    })
}

fn decode_want(want: Option<&[ByteString]>) -> Option<Want> {
    want.map(|items| Want {
        ipv4: items.iter().any(|w| w.as_slice() == b"n4"),
        ipv6: items.iter().any(|w| w.as_slice() == b"n6"),
    })
}

fn encode_want(want: Option<Want>) -> Option<Vec<ByteString>> {
    want.map(|w| {
        let mut items = Vec::new();
        if w.ipv4 {
            items.push(ByteString::from(b"n4".to_vec()));
        }
        if w.ipv6 {
            items.push(ByteString::from(b"n6".to_vec()));
        }
        items
    })
}

fn id_buf(id: &Id) -> Option<ByteString> {
    Some(ByteString::from(id.0.to_vec()))
}

fn encode_query(query: &Query) -> (Vec<u8>, RawBody) {
    match query {
        Query::Ping { id } => (
            b"ping".to_vec(),
            RawBody {
                id: id_buf(id),
                ..RawBody::default()
            },
        ),
        Query::FindNode { id, target, want } => (
            b"find_node".to_vec(),
            RawBody {
                id: id_buf(id),
                target: id_buf(target),
                want: encode_want(*want),
                ..RawBody::default()
            },
        ),
        Query::GetPeers {
            id,
            info_hash,
            want,
        } => (
            b"get_peers".to_vec(),
            RawBody {
                id: id_buf(id),
                info_hash: id_buf(info_hash),
                want: encode_want(*want),
                ..RawBody::default()
            },
        ),
        Query::AnnouncePeer {
            id,
            info_hash,
            port,
            implied_port,
            token,
        } => (
            b"announce_peer".to_vec(),
            RawBody {
                id: id_buf(id),
                info_hash: id_buf(info_hash),
                port: Some(i64::from(*port)),
                implied_port: Some(i64::from(*implied_port)),
                token: Some(ByteString::from(token.clone())),
                ..RawBody::default()
            },
        ),
        Query::Unknown { method, id } => (
            method.clone(),
            RawBody {
                id: id.as_ref().and_then(id_buf),
                ..RawBody::default()
            },
        ),
    }
}

fn encode_response(response: &Response) -> RawBody {
    let non_empty = |bytes: Vec<u8>| (!bytes.is_empty()).then(|| ByteString::from(bytes));
    RawBody {
        id: id_buf(&response.id),
        nodes: non_empty(compact::encode_nodes(&response.nodes)),
        nodes6: non_empty(compact::encode_nodes(&response.nodes6)),
        values: (!response.values.is_empty()).then(|| {
            response
                .values
                .iter()
                .map(|addr| {
                    let mut out = Vec::with_capacity(compact::PEER_V6_LEN);
                    compact::encode_peer(addr, &mut out);
                    ByteString::from(out)
                })
                .collect()
        }),
        token: response.token.clone().map(ByteString::from),
        ..RawBody::default()
    }
}
