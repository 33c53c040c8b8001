//! Counters for everything the node does, so operators and tests can see it.

use serde::Serialize;

/// Counts per KRPC method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MethodCounts {
    /// ping.
    pub ping: u64,
    /// find_node.
    pub find_node: u64,
    /// get_peers.
    pub get_peers: u64,
    /// announce_peer.
    pub announce_peer: u64,
    /// Any other method.
    pub unknown: u64,
}

impl MethodCounts {
    /// Adds one to the counter of `method` (a name from `Query::method_name`).
    pub fn bump(&mut self, method: &str) {
        match method {
            "ping" => self.ping += 1,
            "find_node" => self.find_node += 1,
            "get_peers" => self.get_peers += 1,
            "announce_peer" => self.announce_peer += 1,
            _ => self.unknown += 1,
        }
    }

    /// The sum over all methods.
    pub fn total(&self) -> u64 {
        self.ping + self.find_node + self.get_peers + self.announce_peer + self.unknown
    }
}

/// Datagrams dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DropCounts {
    /// Longer than `datagram_size_max`.
    pub oversized: u64,
    /// Not acceptable bencode (depth, lengths, integers, trailing bytes).
    pub bad_bencode: u64,
    /// Bencode, but not a valid KRPC message.
    pub bad_message: u64,
    /// A response or error matching none of our transactions.
    pub unexpected_response: u64,
    /// A response to our transaction from another address than we asked.
    pub address_mismatch: u64,
    /// A message carrying our own node ID.
    pub own_id: u64,
    /// Queries we could not send because `transactions_max` were in flight.
    pub transactions_full: u64,
    /// announce_peer with a token we did not issue to that IP.
    pub bad_token: u64,
}

/// A snapshot of the node's counters and table sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Datagrams received.
    pub packets_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Queries received, by method.
    pub queries_in: MethodCounts,
    /// Queries sent, by method.
    pub queries_out: MethodCounts,
    /// Responses received to our queries.
    pub responses_in: u64,
    /// KRPC errors received.
    pub errors_in: u64,
    /// KRPC errors sent.
    pub errors_out: u64,
    /// Our queries that were never answered.
    pub timeouts: u64,
    /// Datagrams dropped, by reason.
    pub dropped: DropCounts,
    /// Nodes in the routing table.
    pub routing_table_nodes: usize,
    /// Of those, good ones.
    pub routing_table_good: usize,
    /// Buckets in the routing table.
    pub routing_table_buckets: usize,
    /// Info-hashes we store peers for.
    pub info_hashes_stored: usize,
    /// Peers stored over all info-hashes.
    pub peers_stored: usize,
    /// Lookups started (user, announce, bootstrap and refresh).
    pub lookups_started: u64,
    /// Lookups finished.
    pub lookups_done: u64,
    /// Queries awaiting an answer now.
    pub transactions_in_flight: usize,
}
