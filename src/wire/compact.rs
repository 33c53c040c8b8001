//! Compact node and peer formats (BEP 5; IPv6 forms from BEP 32).
//!
//! IPv4 node info is 26 bytes (ID, address, port), IPv4 peer info 6 bytes
//! (address, port); the IPv6 forms are 38 and 18 bytes. The types carry a
//! `SocketAddr`, so IPv6 support is a matter of the `nodes6` key, not a
//! rewrite.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::id::{ID_LEN, Id};

/// Length of one IPv4 compact peer: 4 address bytes, 2 port bytes.
pub const PEER_V4_LEN: usize = 6;
/// Length of one IPv6 compact peer.
pub const PEER_V6_LEN: usize = 18;
/// Length of one IPv4 compact node: ID then compact peer.
pub const NODE_V4_LEN: usize = ID_LEN + PEER_V4_LEN;
/// Length of one IPv6 compact node.
pub const NODE_V6_LEN: usize = ID_LEN + PEER_V6_LEN;

/// A DHT node's contact: its ID and UDP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeContact {
    /// The node's self-chosen ID.
    pub id: Id,
    /// Where it receives datagrams.
    pub addr: SocketAddr,
}

/// Encodes an address as compact peer info (6 or 18 bytes).
pub fn encode_peer(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Decodes compact peer info of exactly 6 or 18 bytes.
pub fn decode_peer(bytes: &[u8]) -> Option<SocketAddr> {
    match bytes.len() {
        PEER_V4_LEN => {
            let ip = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([bytes[4], bytes[5]]),
            ))
        }
        PEER_V6_LEN => {
            let octets: [u8; 16] = bytes[..16].try_into().ok()?;
            Some(SocketAddr::new(
                Ipv6Addr::from(octets).into(),
                u16::from_be_bytes([bytes[16], bytes[17]]),
            ))
        }
        _ => None,
    }
}

/// Encodes nodes of one address family as a compact node string.
pub fn encode_nodes<'a>(nodes: impl IntoIterator<Item = &'a NodeContact>) -> Vec<u8> {
    let mut out = Vec::new();
    for node in nodes {
        out.extend_from_slice(&node.id.0);
        encode_peer(&node.addr, &mut out);
    }
    out
}

/// Decodes a compact node string whose entries are `entry_len` bytes
/// (26 for `nodes`, 38 for `nodes6`). Returns `None` when the length is not a
/// multiple of the entry size.
pub fn decode_nodes(bytes: &[u8], entry_len: usize) -> Option<Vec<NodeContact>> {
    if !bytes.len().is_multiple_of(entry_len) {
        return None;
    }
    bytes
        .chunks_exact(entry_len)
        .map(|chunk| {
            Some(NodeContact {
                id: Id::from_slice(&chunk[..ID_LEN])?,
                addr: decode_peer(&chunk[ID_LEN..])?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_round_trip_v4_and_v6() {
        let v4 = NodeContact {
            id: Id([1; 20]),
            addr: "127.0.0.2:6881".parse().unwrap(),
        };
        let bytes = encode_nodes([&v4]);
        assert_eq!(bytes.len(), NODE_V4_LEN);
        assert_eq!(&bytes[20..], &[127, 0, 0, 2, 0x1a, 0xe1]);
        assert_eq!(decode_nodes(&bytes, NODE_V4_LEN), Some(vec![v4]));

        let v6 = NodeContact {
            id: Id([2; 20]),
            addr: "[::1]:80".parse().unwrap(),
        };
        let bytes = encode_nodes([&v6]);
        assert_eq!(bytes.len(), NODE_V6_LEN);
        assert_eq!(decode_nodes(&bytes, NODE_V6_LEN), Some(vec![v6]));
        assert_eq!(decode_nodes(&bytes[1..], NODE_V6_LEN), None);
    }

    #[test]
    fn peer_lengths_are_checked() {
        assert_eq!(
            decode_peer(b"axje.u"),
            Some("97.120.106.101:11893".parse().unwrap())
        );
        assert_eq!(decode_peer(b"12345"), None);
    }
}
