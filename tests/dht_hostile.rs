//! One `DhtNode` driven purely in memory by hostile and well-behaved peers:
//! no sockets, no sleeps, a fixed RNG seed. Every datagram goes in through
//! `handle_datagram` and every answer is read back with `krpc::decode`, so
//! these tests see exactly what a remote peer would see.

use std::net::SocketAddr;
use std::time::Duration;

use trackerless::dht::{Config, DhtNode, Event, Stats};
use trackerless::time::Timestamp;
use trackerless::wire::krpc::{
    self, Body, KrpcError, Message, Query, Response, TransactionId, Want, error_code,
};
use trackerless::wire::{Id, NodeContact};

const SEED: u64 = 0x7ac3_e55d_4854_0001;

/// A valid BEP 5 ping query (the spec's example).
const PING: &[u8] = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";

/// The node under test, a clock, and helpers to talk to it.
struct Harness {
    node: DhtNode,
    config: Config,
    now: Timestamp,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(Config {
            rng_seed: SEED,
            ..Config::default()
        })
    }

    fn with_config(config: Config) -> Harness {
        let now = Timestamp::from_micros(1_000_000);
        Harness {
            node: DhtNode::new(config.clone(), now),
            config,
            now,
        }
    }

    fn stats(&self) -> Stats {
        self.node.stats(self.now)
    }

    /// Every datagram the node wants to send now, decoded. The node's own
    /// output must always be decodable KRPC.
    fn drain(&mut self) -> Vec<(SocketAddr, Message)> {
        let mut out = Vec::new();
        while let Some(transmit) = self.node.poll_transmit() {
            let message = krpc::decode(&transmit.bytes).unwrap_or_else(|e| {
                panic!(
                    "node sent an undecodable datagram ({e}): {:?}",
                    String::from_utf8_lossy(&transmit.bytes)
                )
            });
            out.push((transmit.to, message));
        }
        out
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.node.poll_event()).collect()
    }

    /// Feeds one datagram from `from` and returns everything the node sends.
    fn send(&mut self, from: SocketAddr, bytes: &[u8]) -> Vec<(SocketAddr, Message)> {
        self.node.handle_datagram(self.now, from, bytes);
        self.drain()
    }

    /// Feeds one datagram and returns the responses and errors sent back to
    /// `from`. The node may also ping an unknown querier to verify it; those
    /// queries are not replies and are left out.
    fn replies(&mut self, from: SocketAddr, bytes: &[u8]) -> Vec<Message> {
        let sent = self.send(from, bytes);
        for (to, message) in &sent {
            let is_query = matches!(message.body, Body::Query(_));
            assert!(
                *to == from || is_query,
                "reply sent to {to} instead of {from}: {message:?}"
            );
        }
        sent.into_iter()
            .filter(|(to, m)| *to == from && !matches!(m.body, Body::Query(_)))
            .map(|(_, m)| m)
            .collect()
    }

    /// Feeds one datagram that must get exactly one reply.
    fn reply(&mut self, from: SocketAddr, bytes: &[u8]) -> Message {
        let mut replies = self.replies(from, bytes);
        assert_eq!(
            replies.len(),
            1,
            "expected one reply to {:?}, got {replies:?}",
            String::from_utf8_lossy(bytes)
        );
        replies.remove(0)
    }

    /// Sends a well-formed query and returns its single reply.
    fn query(&mut self, from: SocketAddr, t: &[u8], query: Query) -> Message {
        let reply = self.reply(from, &encode_query(t, query));
        assert_eq!(reply.transaction_id.as_bytes(), t, "transaction id echoed");
        reply
    }

    /// Moves the clock forward and runs the node's timers.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.node.handle_timeout(self.now);
        self.drain();
    }

    /// Has the node ping `contact.addr` and answers as `contact`, so that it
    /// enters the routing table as a good node.
    fn add_node(&mut self, contact: NodeContact) {
        self.node
            .ping(self.now, contact.addr)
            .expect("ping accepted");
        let sent = self.drain();
        assert_eq!(sent.len(), 1, "one ping goes out: {sent:?}");
        let (to, message) = &sent[0];
        assert_eq!(*to, contact.addr);
        assert!(matches!(message.body, Body::Query(Query::Ping { id }) if id == self.node.id()));
        let t = message.transaction_id.as_bytes().to_vec();
        assert_eq!(t.len(), 4, "the node uses 4-byte transaction ids");
        let answer = encode_response(
            &t,
            Response {
                id: contact.id,
                ..Response::default()
            },
        );
        assert!(self.send(contact.addr, &answer).is_empty());
        let events = self.events();
        assert!(
            matches!(events.as_slice(), [Event::Pong { addr, id: Some(id), .. }]
                if *addr == contact.addr && *id == contact.id),
            "{events:?}"
        );
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn tid(bytes: &[u8]) -> TransactionId {
    TransactionId::new(bytes).unwrap()
}

fn encode_query(t: &[u8], query: Query) -> Vec<u8> {
    Message {
        transaction_id: tid(t),
        body: Body::Query(query),
        client_version: Some(b"XX\x00\x01".to_vec()),
        requester_addr: None,
        read_only: false,
    }
    .encode()
}

fn encode_response(t: &[u8], response: Response) -> Vec<u8> {
    Message {
        transaction_id: tid(t),
        body: Body::Response(response),
        client_version: None,
        requester_addr: None,
        read_only: false,
    }
    .encode()
}

fn expect_response(message: &Message) -> &Response {
    match &message.body {
        Body::Response(response) => response,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn expect_error(message: &Message) -> &KrpcError {
    match &message.body {
        Body::Error(error) => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The ID of a well-behaved querier: every byte `n`.
fn querier_id(n: u8) -> Id {
    Id([n; 20])
}

/// A tiny deterministic generator (xorshift64*) for IDs and junk bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn id(&mut self) -> Id {
        Id::from_slice(&self.bytes(20)).unwrap()
    }
}

/// An ID sharing exactly `prefix` leading bits with `own` (bit `prefix`
/// differs, later bits random): a node that lands in bucket `prefix`.
fn id_with_prefix(own: &Id, prefix: usize, rng: &mut XorShift) -> Id {
    let mut out = rng.id();
    for bit in 0..=prefix {
        let mask = 0x80u8 >> (bit % 8);
        let own_bit = own.0[bit / 8] & mask != 0;
        let value = if bit == prefix { !own_bit } else { own_bit };
        if value {
            out.0[bit / 8] |= mask;
        } else {
            out.0[bit / 8] &= !mask;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

/// Which drop counter a hostile datagram must move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dropped {
    /// `dropped.bad_bencode`; no reply at all.
    Bencode,
    /// `dropped.bad_message`; error 203 echoing this `t` when the header is readable.
    Message(Option<&'static [u8]>),
    /// `dropped.oversized`; no reply at all.
    Oversized,
}

fn hostile_cases(config: &Config) -> Vec<(String, Vec<u8>, Dropped)> {
    let mut cases: Vec<(String, Vec<u8>, Dropped)> = Vec::new();
    let mut case =
        |name: &str, bytes: Vec<u8>, drop: Dropped| cases.push((name.into(), bytes, drop));

    // Every proper prefix of a valid query, the empty datagram included.
    for len in 0..PING.len() {
        case(
            &format!("prefix {len}"),
            PING[..len].to_vec(),
            Dropped::Bencode,
        );
    }
    // Deep nesting. 10,000 bytes is over the datagram limit, so it never
    // reaches the scanner (see `deep_nesting_is_cut_by_the_scanner`).
    case("10k l", vec![b'l'; 10_000], Dropped::Oversized);
    case("1400 l", vec![b'l'; 1_400], Dropped::Bencode);
    case("1400 d", vec![b'd'; 1_400], Dropped::Bencode);
    let balanced = format!("{}{}", "l".repeat(700), "e".repeat(700));
    case(
        "balanced 700 lists",
        balanced.into_bytes(),
        Dropped::Bencode,
    );
    let nested_args = b"d1:ad2:idllllllllllleeeeeeeeeeee1:q4:ping1:t2:aa1:y1:qe".to_vec();
    case("depth 13 inside args", nested_args, Dropped::Bencode);
    // Huge length prefixes.
    case(
        "11-digit length",
        b"99999999999:".to_vec(),
        Dropped::Bencode,
    );
    case(
        "11-digit length + byte",
        b"99999999999:x".to_vec(),
        Dropped::Bencode,
    );
    case(
        "20-digit length",
        b"99999999999999999999:".to_vec(),
        Dropped::Bencode,
    );
    case(
        "u64 overflow length",
        b"18446744073709551616:x".to_vec(),
        Dropped::Bencode,
    );
    case(
        "21-digit length",
        b"999999999999999999999:x".to_vec(),
        Dropped::Bencode,
    );
    case(
        "huge length as t",
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t99999999999999999999:aa1:y1:qe".to_vec(),
        Dropped::Bencode,
    );
    case(
        "length prefix with leading zero",
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t02:aa1:y1:qe".to_vec(),
        Dropped::Bencode,
    );
    case(
        "string longer than the limit",
        [&b"3000:"[..], &[b'x'; 1400]].concat(),
        Dropped::Bencode,
    );
    // Wrong types.
    case(
        "id as integer",
        b"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe".to_vec(),
        Dropped::Message(Some(b"aa")),
    );
    case(
        "a as list",
        b"d1:al20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe".to_vec(),
        Dropped::Message(Some(b"aa")),
    );
    case(
        "a as integer",
        b"d1:ai0e1:q4:ping1:t2:aa1:y1:qe".to_vec(),
        Dropped::Message(Some(b"aa")),
    );
    case(
        "q as integer",
        b"d1:ad2:id20:abcdefghij0123456789e1:qi1e1:t2:aa1:y1:qe".to_vec(),
        Dropped::Message(Some(b"aa")),
    );
    case(
        "t as dict",
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:td1:xi1ee1:y1:qe".to_vec(),
        Dropped::Message(None),
    );
    case(
        "t as integer",
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:ti7e1:y1:qe".to_vec(),
        Dropped::Message(None),
    );
    case(
        "y as integer",
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:yi1ee".to_vec(),
        Dropped::Message(None),
    );
    case(
        "top level is a list",
        b"l1:ad2:id20:abcdefghij0123456789ee".to_vec(),
        Dropped::Message(None),
    );
    case(
        "top level is a string",
        b"4:ping".to_vec(),
        Dropped::Message(None),
    );
    case(
        "top level is an integer",
        b"i42e".to_vec(),
        Dropped::Message(None),
    );
    case(
        "empty transaction id",
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t0:1:y1:qe".to_vec(),
        Dropped::Message(None),
    );
    case(
        "17-byte transaction id",
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t17:aaaaaaaaaaaaaaaaa1:y1:qe".to_vec(),
        Dropped::Message(None),
    );
    case(
        "response with a 19-byte id",
        b"d1:rd2:id19:mnopqrstuvwxyz12345e1:t2:aa1:y1:re".to_vec(),
        Dropped::Message(None),
    );
    case(
        "error without a list",
        b"d1:ei201e1:t2:aa1:y1:ee".to_vec(),
        Dropped::Message(None),
    );
    case(
        "unknown y",
        b"d1:t2:aa1:y1:xe".to_vec(),
        Dropped::Message(None),
    );
    // Non-canonical integers.
    case("i-0e", b"i-0e".to_vec(), Dropped::Bencode);
    case("i03e", b"i03e".to_vec(), Dropped::Bencode);
    case(
        "announce_peer with port i03e",
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti03e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe".to_vec(),
        Dropped::Bencode,
    );
    case(
        "announce_peer with implied_port i-0e",
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti-0e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe".to_vec(),
        Dropped::Bencode,
    );
    case(
        "integer beyond i64",
        b"d1:ad2:id20:abcdefghij01234567894:porti99999999999999999999ee1:q4:ping1:t2:aa1:y1:qe"
            .to_vec(),
        Dropped::Bencode,
    );
    case(
        "dictionary key that is an integer",
        b"d1:ad2:id20:abcdefghij0123456789ei1ei2e1:q4:ping1:t2:aa1:y1:qe".to_vec(),
        Dropped::Bencode,
    );
    // Trailing bytes after a valid message.
    case("ping + x", [PING, b"x"].concat(), Dropped::Bencode);
    case("ping + NUL", [PING, b"\0"].concat(), Dropped::Bencode);
    case("ping + ping", [PING, PING].concat(), Dropped::Bencode);
    // Oversized: an otherwise valid ping padded with an unknown key.
    let oversized = padded_ping(b"ov", config.datagram_size_max + 1);
    assert!(
        krpc::decode(&oversized).is_ok(),
        "valid apart from its size"
    );
    case("oversized valid ping", oversized, Dropped::Oversized);
    case("64 KiB of zeros", vec![0; 65_536], Dropped::Oversized);
    cases
}

/// A valid ping of exactly `len` bytes, padded with an unknown top-level key.
fn padded_ping(t: &'static [u8], len: usize) -> Vec<u8> {
    let build = |pad: usize| {
        let mut bytes = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t".to_vec();
        bytes.extend_from_slice(format!("{}:", t.len()).as_bytes());
        bytes.extend_from_slice(t);
        bytes.extend_from_slice(format!("1:y1:q1:z{pad}:").as_bytes());
        bytes.extend(std::iter::repeat_n(b'.', pad));
        bytes.push(b'e');
        bytes
    };
    let mut pad = len.saturating_sub(build(0).len());
    while build(pad).len() > len {
        pad -= 1;
    }
    let bytes = build(pad);
    assert_eq!(bytes.len(), len, "cannot pad to exactly {len} bytes");
    bytes
}

/// Feeds one hostile datagram and checks that exactly the expected counter
/// moved and that nothing but (possibly) an error 203 was sent back.
fn assert_dropped(h: &mut Harness, from: SocketAddr, name: &str, bytes: &[u8], drop: Dropped) {
    let before = h.stats();
    let sent = h.send(from, bytes);
    let after = h.stats();
    assert_eq!(
        after.packets_in,
        before.packets_in + 1,
        "{name}: packets_in"
    );
    assert_eq!(
        after.bytes_in,
        before.bytes_in + bytes.len() as u64,
        "{name}: bytes_in"
    );
    let moved = |f: fn(&Stats) -> u64| f(&after) - f(&before);
    let (bencode, message, oversized) = (
        moved(|s| s.dropped.bad_bencode),
        moved(|s| s.dropped.bad_message),
        moved(|s| s.dropped.oversized),
    );
    let expected = match drop {
        Dropped::Bencode => (1, 0, 0),
        Dropped::Message(_) => (0, 1, 0),
        Dropped::Oversized => (0, 0, 1),
    };
    assert_eq!(
        (bencode, message, oversized),
        expected,
        "{name}: (bad_bencode, bad_message, oversized) deltas"
    );
    assert_eq!(after.queries_in, before.queries_in, "{name}: not a query");
    assert_eq!(after.responses_in, before.responses_in, "{name}");
    match drop {
        Dropped::Message(Some(t)) => {
            assert_eq!(sent.len(), 1, "{name}: one error reply, got {sent:?}");
            let (to, reply) = &sent[0];
            assert_eq!(*to, from, "{name}");
            assert_eq!(reply.transaction_id.as_bytes(), t, "{name}: t echoed");
            assert_eq!(expect_error(reply).code, error_code::PROTOCOL, "{name}");
            assert_eq!(after.errors_out, before.errors_out + 1, "{name}");
        }
        _ => assert!(sent.is_empty(), "{name}: nothing sent, got {sent:?}"),
    }
}

#[test]
fn hostile_datagrams_are_dropped_counted_and_the_node_still_answers() {
    let mut h = Harness::new();
    let hostile = addr("203.0.113.66:6666");
    let cases = hostile_cases(&h.config);
    for (name, bytes, drop) in &cases {
        assert_dropped(&mut h, hostile, name, bytes, *drop);
    }

    // Random junk: dropped as bad bencode or bad message, never answered
    // with anything but error 203.
    let mut rng = XorShift(SEED);
    let junk_count = 512u64;
    let before = h.stats();
    for round in 0..junk_count {
        let len = (rng.next() % 200) as usize;
        let mut bytes = rng.bytes(len);
        // Half of them start like a dictionary so the scanner goes deeper.
        if round % 2 == 0 && !bytes.is_empty() {
            bytes[0] = b'd';
        }
        for (to, message) in h.send(hostile, &bytes) {
            assert_eq!(to, hostile);
            assert!(
                matches!(&message.body, Body::Error(e) if e.code == error_code::PROTOCOL),
                "junk answered with {message:?}"
            );
        }
    }
    let after = h.stats();
    assert_eq!(after.packets_in - before.packets_in, junk_count);
    assert_eq!(
        (after.dropped.bad_bencode + after.dropped.bad_message)
            - (before.dropped.bad_bencode + before.dropped.bad_message),
        junk_count,
        "every junk datagram dropped and counted once"
    );

    // Totals over the whole run.
    let stats = h.stats();
    let count = |wanted: fn(&Dropped) -> bool| cases.iter().filter(|c| wanted(&c.2)).count() as u64;
    assert_eq!(stats.packets_in, cases.len() as u64 + junk_count);
    assert_eq!(stats.dropped.oversized, count(|d| *d == Dropped::Oversized));
    assert!(stats.dropped.bad_bencode >= count(|d| *d == Dropped::Bencode));
    assert!(stats.dropped.bad_message >= count(|d| matches!(d, Dropped::Message(_))));
    assert_eq!(stats.queries_in.total(), 0);
    assert_eq!(
        stats.routing_table_nodes, 0,
        "no hostile sender in the table"
    );
    assert_eq!(
        stats.transactions_in_flight, 0,
        "hostile input starts no query"
    );

    // The node is unharmed: a valid ping gets a pong with the exact t.
    let friend = addr("198.51.100.7:6881");
    let reply = h.query(friend, b"\xde\xad", Query::Ping { id: querier_id(7) });
    assert_eq!(expect_response(&reply).id, h.node.id());
    assert_eq!(reply.requester_addr, Some(friend));
    assert_eq!(h.stats().queries_in.ping, 1);
    assert_eq!(h.stats().packets_in, cases.len() as u64 + junk_count + 1);
}

#[test]
fn deep_nesting_is_cut_by_the_scanner() {
    // With the size limit lifted, 10,000 nested lists reach the bencode
    // scanner, which must refuse them without recursing.
    let mut h = Harness::with_config(Config {
        rng_seed: SEED,
        datagram_size_max: 65_536,
        ..Config::default()
    });
    let from = addr("203.0.113.9:9");
    for (name, bytes) in [
        ("10k l", vec![b'l'; 10_000]),
        ("10k d1:a", b"d1:a".repeat(10_000)),
        (
            "10k balanced",
            [vec![b'l'; 10_000], vec![b'e'; 10_000]].concat(),
        ),
    ] {
        assert_dropped(&mut h, from, name, &bytes, Dropped::Bencode);
    }
    assert_eq!(h.stats().dropped.oversized, 0);
    let reply = h.query(from, b"ok", Query::Ping { id: querier_id(9) });
    expect_response(&reply);
}

#[test]
fn datagram_of_exactly_the_size_limit_is_answered() {
    let mut h = Harness::new();
    let from = addr("198.51.100.8:6881");
    let bytes = padded_ping(b"ok", h.config.datagram_size_max);
    let reply = h.reply(from, &bytes);
    assert_eq!(reply.transaction_id.as_bytes(), b"ok");
    expect_response(&reply);
    assert_eq!(h.stats().dropped.oversized, 0);

    let bytes = padded_ping(b"no", h.config.datagram_size_max + 1);
    assert!(h.replies(from, &bytes).is_empty());
    assert_eq!(h.stats().dropped.oversized, 1);
}

#[test]
fn malformed_query_with_readable_header_gets_error_203_echoing_t() {
    let mut h = Harness::new();
    let from = addr("192.0.2.10:4000");
    let cases: &[(&[u8], &[u8])] = &[
        (b"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", b"aa"),
        (b"d1:al2:ide1:q4:ping1:t3:xyz1:y1:qe", b"xyz"),
        (b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t1:\x001:y1:qe", b"\x00"),
        (b"d1:ade1:q4:ping1:t4:\x01\x02\x03\x041:y1:qe", b"\x01\x02\x03\x04"),
        (b"d1:q4:ping1:t2:nA1:y1:qe", b"nA"),
        (b"d1:ad2:id20:abcdefghij0123456789e1:t2:nq1:y1:qe", b"nq"),
        (
            b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t8:ABCDEFGH1:y1:qe",
            b"ABCDEFGH",
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash3:abce1:q9:get_peers1:t2:gp1:y1:qe",
            b"gp",
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:ap1:y1:qe",
            b"ap",
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e5:token1:xe1:q13:announce_peer1:t2:a01:y1:qe",
            b"a0",
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881ee1:q13:announce_peer1:t2:nt1:y1:qe",
            b"nt",
        ),
    ];
    for (i, (bytes, t)) in cases.iter().enumerate() {
        assert!(krpc::decode(bytes).is_err());
        let reply = h.reply(from, bytes);
        assert_eq!(reply.transaction_id.as_bytes(), *t, "case {i}");
        let error = expect_error(&reply);
        assert_eq!(error.code, error_code::PROTOCOL, "case {i}");
        assert_eq!(
            reply.client_version.as_deref(),
            Some(&h.config.client_version[..])
        );
        assert_eq!(reply.requester_addr, Some(from));
        assert_eq!(h.stats().dropped.bad_message, i as u64 + 1);
    }
    assert_eq!(h.stats().errors_out, cases.len() as u64);
    assert_eq!(h.stats().queries_in.total(), 0);

    // Malformed responses and errors are never answered, whatever their t.
    for bytes in [
        &b"d1:rd2:id3:abce1:t2:aa1:y1:re"[..],
        b"d1:rde1:t2:aa1:y1:re",
        b"d1:e4:oops1:t2:aa1:y1:ee",
    ] {
        assert!(h.replies(from, bytes).is_empty());
    }
    assert_eq!(h.stats().errors_out, cases.len() as u64);
}

// ---------------------------------------------------------------------------
// Transaction IDs, `v` and `ip`
// ---------------------------------------------------------------------------

#[test]
fn transaction_ids_of_every_length_are_echoed_with_version_and_requester_addr() {
    let mut h = Harness::new();
    let senders = [addr("192.0.2.1:6881"), addr("[2001:db8::1]:51413")];
    let mut n = 0u8;
    for from in senders {
        for len in [1usize, 2, 4, 8, 16] {
            let t: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(97) ^ 0x5a).collect();
            n += 1;
            let id = querier_id(n);
            let target = Id([0x33; 20]);
            let queries = [
                Query::Ping { id },
                Query::FindNode {
                    id,
                    target,
                    want: None,
                },
                Query::GetPeers {
                    id,
                    info_hash: target,
                    want: None,
                },
            ];
            for query in queries {
                let method = query.method_name();
                let reply = h.query(from, &t, query);
                assert_eq!(reply.transaction_id.as_bytes(), t.as_slice(), "{method}");
                assert_eq!(
                    reply.client_version.as_deref(),
                    Some(&h.config.client_version[..]),
                    "{method}: v"
                );
                assert_eq!(reply.requester_addr, Some(from), "{method}: ip");
                assert!(!reply.read_only);
                let response = expect_response(&reply);
                assert_eq!(response.id, h.node.id(), "{method}: our id");
                assert_eq!(response.token.is_some(), method == "get_peers", "{method}");
            }
        }
    }
    let stats = h.stats();
    assert_eq!(stats.queries_in.ping, 10);
    assert_eq!(stats.queries_in.find_node, 10);
    assert_eq!(stats.queries_in.get_peers, 10);
}

#[test]
fn unknown_method_gets_error_204_with_the_same_transaction_id() {
    let mut h = Harness::new();
    let from = addr("192.0.2.20:7000");
    for (t, bytes) in [
        (
            &b"u1"[..],
            &b"d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:u11:y1:qe"[..],
        ),
        // No id at all: still an unknown method, not a malformed query.
        (b"\x00\xff\x10", b"d1:ade1:q3:put1:t3:\x00\xff\x101:y1:qe"),
        // The BEP 44 `get` we do not implement, with an 8-byte t.
        (
            b"12345678",
            b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q3:get1:t8:123456781:y1:qe",
        ),
    ] {
        let reply = h.reply(from, bytes);
        assert_eq!(reply.transaction_id.as_bytes(), t);
        assert_eq!(expect_error(&reply).code, error_code::METHOD_UNKNOWN);
        assert_eq!(reply.requester_addr, Some(from));
    }
    let stats = h.stats();
    assert_eq!(stats.queries_in.unknown, 3);
    assert_eq!(stats.errors_out, 3);
    assert_eq!(stats.dropped.bad_message, 0);
}

// ---------------------------------------------------------------------------
// get_peers / announce_peer and write tokens
// ---------------------------------------------------------------------------

fn get_peers(h: &mut Harness, from: SocketAddr, n: u8, info_hash: Id) -> Response {
    let reply = h.query(
        from,
        &[b'g', n],
        Query::GetPeers {
            id: querier_id(n),
            info_hash,
            want: None,
        },
    );
    expect_response(&reply).clone()
}

fn announce(
    h: &mut Harness,
    from: SocketAddr,
    n: u8,
    info_hash: Id,
    port: u16,
    implied_port: bool,
    token: &[u8],
) -> Message {
    h.query(
        from,
        &[b'a', n],
        Query::AnnouncePeer {
            id: querier_id(n),
            info_hash,
            port,
            implied_port,
            token: token.to_vec(),
        },
    )
}

#[test]
fn announce_with_token_from_get_peers_is_stored_and_served() {
    let mut h = Harness::new();
    let info_hash = Id([0x42; 20]);
    let a = addr("192.0.2.1:6881");
    let b = addr("198.51.100.2:6882");

    let first = get_peers(&mut h, a, 1, info_hash);
    assert!(first.values.is_empty(), "nothing stored yet");
    let token = first.token.expect("get_peers returns a token");
    assert!(!token.is_empty());

    let reply = announce(&mut h, a, 1, info_hash, 7000, false, &token);
    assert_eq!(expect_response(&reply).id, h.node.id());
    let stats = h.stats();
    assert_eq!((stats.info_hashes_stored, stats.peers_stored), (1, 1));
    assert_eq!(stats.dropped.bad_token, 0);

    let second = get_peers(&mut h, b, 2, info_hash);
    assert_eq!(second.values, vec![addr("192.0.2.1:7000")]);
    assert_ne!(second.token, Some(token), "tokens are bound to the IP");

    // Other info-hashes stay empty.
    assert!(get_peers(&mut h, b, 2, Id([0x43; 20])).values.is_empty());
}

#[test]
fn implied_port_stores_the_udp_source_port() {
    let mut h = Harness::new();
    let info_hash = Id([0x17; 20]);
    let a = addr("192.0.2.1:51413");
    let token = get_peers(&mut h, a, 1, info_hash).token.unwrap();
    let reply = announce(&mut h, a, 1, info_hash, 9999, true, &token);
    expect_response(&reply);
    let values = get_peers(&mut h, addr("198.51.100.2:6881"), 2, info_hash).values;
    assert_eq!(values, vec![a], "UDP source port, not the port argument");

    // implied_port with port 0 (as BEP 5 clients behind NAT send) is fine too.
    let info_hash = Id([0x18; 20]);
    let bytes = format!(
        "d1:ad2:id20:{}12:implied_porti1e9:info_hash20:{}4:porti0e5:token{}:",
        "n".repeat(20),
        "\x18".repeat(20),
        token.len()
    );
    let mut bytes = bytes.into_bytes();
    bytes.extend_from_slice(&token);
    bytes.extend_from_slice(b"e1:q13:announce_peer1:t2:ip1:y1:qe");
    expect_response(&h.reply(a, &bytes));
    let values = get_peers(&mut h, addr("198.51.100.2:6881"), 2, info_hash).values;
    assert_eq!(values, vec![a]);
}

#[test]
fn bad_or_foreign_tokens_get_error_203_and_store_nothing() {
    let mut h = Harness::new();
    let info_hash = Id([0x99; 20]);
    let a = addr("192.0.2.1:6881");
    let c = addr("192.0.2.3:6881");
    let token = get_peers(&mut h, a, 1, info_hash).token.unwrap();

    let mut flipped = token.clone();
    flipped[0] ^= 1;
    let bad_tokens: Vec<(SocketAddr, Vec<u8>)> = vec![
        (a, b"aoeusnth".to_vec()),
        (a, flipped),
        (a, token[..token.len() / 2].to_vec()),
        (a, [token.as_slice(), b"x"].concat()),
        (a, Vec::new()),
        // A's token presented from another IP (same port).
        (c, token.clone()),
        (addr("[::ffff:192.0.2.1]:6881"), token.clone()),
    ];
    for (i, (from, bad)) in bad_tokens.iter().enumerate() {
        let reply = announce(&mut h, *from, 3, info_hash, 7000, false, bad);
        assert_eq!(reply.transaction_id.as_bytes(), b"a\x03", "case {i}");
        assert_eq!(expect_error(&reply).code, error_code::PROTOCOL, "case {i}");
        let stats = h.stats();
        assert_eq!(stats.dropped.bad_token, i as u64 + 1, "case {i}");
        assert_eq!(stats.peers_stored, 0, "case {i}");
        assert_eq!(stats.info_hashes_stored, 0, "case {i}");
    }
    assert!(get_peers(&mut h, c, 3, info_hash).values.is_empty());

    // The token is bound to the IP, not the port: A from another port may use it.
    let a_other_port = addr("192.0.2.1:7777");
    expect_response(&announce(
        &mut h,
        a_other_port,
        1,
        info_hash,
        7001,
        false,
        &token,
    ));
    assert_eq!(
        get_peers(&mut h, c, 3, info_hash).values,
        vec![addr("192.0.2.1:7001")]
    );
}

#[test]
fn tokens_survive_one_rotation_and_expire_after_two() {
    let mut h = Harness::new();
    let interval = h.config.token_rotation_interval;
    let a = addr("192.0.2.1:6881");
    let ih = |n: u8| Id([n; 20]);
    let token = get_peers(&mut h, a, 1, ih(1)).token.unwrap();

    expect_response(&announce(&mut h, a, 1, ih(1), 7000, false, &token));

    // After one rotation interval the secret has changed; the old token lives.
    h.advance(interval);
    let fresh = get_peers(&mut h, a, 1, ih(2)).token.unwrap();
    assert_ne!(fresh, token, "the secret rotated");
    expect_response(&announce(&mut h, a, 1, ih(2), 7000, false, &token));
    assert_eq!(h.stats().peers_stored, 2);

    // After the second rotation the first token is dead, the fresh one lives.
    h.advance(interval);
    let reply = announce(&mut h, a, 1, ih(3), 7000, false, &token);
    assert_eq!(expect_error(&reply).code, error_code::PROTOCOL);
    assert_eq!(h.stats().dropped.bad_token, 1);
    expect_response(&announce(&mut h, a, 1, ih(3), 7000, false, &fresh));

    // And after a third, the fresh one is dead too.
    h.advance(interval);
    let reply = announce(&mut h, a, 1, ih(4), 7000, false, &fresh);
    assert_eq!(expect_error(&reply).code, error_code::PROTOCOL);
    assert_eq!(h.stats().dropped.bad_token, 2);
    assert_eq!(h.stats().peers_stored, 3);
}

// ---------------------------------------------------------------------------
// find_node from a filled routing table
// ---------------------------------------------------------------------------

#[test]
fn find_node_returns_the_k_closest_sorted_by_xor_distance() {
    let mut h = Harness::new();
    let own = h.node.id();
    let mut rng = XorShift(SEED ^ 0xf1);
    let mut contacts = Vec::new();
    // One node per bucket for the first 24 buckets, then a crowd of 6 in
    // bucket 3 and 6 in bucket 12: every one fits without evicting anyone.
    let prefixes = (0..24).chain([3; 6]).chain([12; 6]);
    for (i, prefix) in prefixes.enumerate() {
        let contact = NodeContact {
            id: id_with_prefix(&own, prefix, &mut rng),
            addr: SocketAddr::new([10, 1, (i / 250) as u8, (i % 250) as u8 + 1].into(), 6881),
        };
        h.add_node(contact);
        contacts.push(contact);
    }
    let stats = h.stats();
    assert_eq!(stats.routing_table_nodes, contacts.len(), "all nodes fit");
    assert_eq!(stats.routing_table_good, contacts.len());

    let k = h.config.bucket_size;
    let mut targets = vec![
        own,
        contacts[5].id,
        contacts[27].id,
        Id([0; 20]),
        Id([0xff; 20]),
    ];
    targets.extend((0..8).map(|_| rng.id()));
    let querier = addr("192.0.2.200:6881");
    for (i, target) in targets.into_iter().enumerate() {
        let mut expected = contacts.clone();
        expected.sort_by_key(|c| c.id.distance(&target));
        expected.truncate(k);

        let reply = h.query(
            querier,
            &[b'f', i as u8],
            Query::FindNode {
                id: querier_id(200),
                target,
                want: None,
            },
        );
        let nodes = &expect_response(&reply).nodes;
        assert_eq!(nodes, &expected, "target {target:?}");
        assert!(
            nodes
                .windows(2)
                .all(|w| w[0].id.distance(&target) < w[1].id.distance(&target)),
            "sorted by XOR distance"
        );
        if contacts.iter().any(|c| c.id == target) {
            assert_eq!(nodes[0].id, target, "an exact match comes first");
        }

        // get_peers for an unknown info-hash falls back to the same nodes.
        let reply = h.query(
            querier,
            &[b'p', i as u8],
            Query::GetPeers {
                id: querier_id(200),
                info_hash: target,
                want: None,
            },
        );
        let response = expect_response(&reply);
        assert_eq!(response.nodes, expected);
        assert!(response.values.is_empty());
    }
}

// ---------------------------------------------------------------------------
// Responses that do not match our queries
// ---------------------------------------------------------------------------

#[test]
fn response_from_another_address_is_dropped() {
    let mut h = Harness::new();
    let asked = addr("192.0.2.50:6881");
    let impostor = addr("192.0.2.51:6881");
    let request = h.node.ping(h.now, asked).unwrap();
    let sent = h.drain();
    assert_eq!(sent.len(), 1);
    let t = sent[0].1.transaction_id.as_bytes().to_vec();
    let answer = |id: u8| {
        encode_response(
            &t,
            Response {
                id: querier_id(id),
                ..Response::default()
            },
        )
    };

    // Same transaction id, wrong address (and, separately, right IP but wrong port).
    for from in [impostor, addr("192.0.2.50:6882")] {
        assert!(h.send(from, &answer(0x51)).is_empty());
    }
    let stats = h.stats();
    assert_eq!(stats.dropped.address_mismatch, 2);
    assert_eq!(stats.responses_in, 0);
    assert_eq!(
        stats.transactions_in_flight, 1,
        "still waiting for the real one"
    );
    assert_eq!(stats.routing_table_nodes, 0, "the impostor is not added");
    assert!(h.events().is_empty());

    // The real answer still counts.
    assert!(h.send(asked, &answer(0x50)).is_empty());
    assert_eq!(
        h.events(),
        vec![Event::Pong {
            request,
            addr: asked,
            id: Some(querier_id(0x50)),
        }]
    );
    let stats = h.stats();
    assert_eq!(stats.responses_in, 1);
    assert_eq!(stats.transactions_in_flight, 0);
    assert_eq!(stats.routing_table_nodes, 1);

    // A replay of the same answer is now unexpected.
    assert!(h.send(asked, &answer(0x50)).is_empty());
    assert_eq!(h.stats().dropped.unexpected_response, 1);
    assert_eq!(h.stats().responses_in, 1);
}

#[test]
fn response_with_unknown_transaction_id_is_dropped() {
    let mut h = Harness::new();
    let from = addr("192.0.2.60:6881");
    // One real query in flight, so the table of transactions is not empty.
    h.node.ping(h.now, from).unwrap();
    let sent = h.drain();
    let real = sent[0].1.transaction_id.as_bytes().to_vec();
    let mut unknown = real.clone();
    unknown[3] ^= 0xff;

    let response = |t: &[u8]| {
        encode_response(
            t,
            Response {
                id: querier_id(0x60),
                nodes: vec![NodeContact {
                    id: querier_id(0x61),
                    addr: addr("192.0.2.61:6881"),
                }],
                ..Response::default()
            },
        )
    };
    let ts: Vec<Vec<u8>> = vec![
        b"zz".to_vec(),
        b"z".to_vec(),
        unknown.clone(),
        [real.as_slice(), b"\x00"].concat(),
        real[..3].to_vec(),
        vec![0; 16],
    ];
    for (i, t) in ts.iter().enumerate() {
        assert!(h.send(from, &response(t)).is_empty());
        assert_eq!(h.stats().dropped.unexpected_response, i as u64 + 1);
    }
    // An error with an unknown t is dropped the same way.
    let error = Message {
        transaction_id: tid(&unknown),
        body: Body::Error(KrpcError {
            code: 201,
            message: "nope".into(),
        }),
        client_version: None,
        requester_addr: None,
        read_only: false,
    }
    .encode();
    assert!(h.send(from, &error).is_empty());

    let stats = h.stats();
    assert_eq!(stats.dropped.unexpected_response, ts.len() as u64 + 1);
    assert_eq!(stats.responses_in, 0);
    assert_eq!(stats.errors_in, 0);
    assert_eq!(stats.routing_table_nodes, 0);
    assert_eq!(
        stats.transactions_in_flight, 1,
        "the real query is untouched"
    );
    assert!(h.events().is_empty());
}

// ---------------------------------------------------------------------------
// Regressions: bugs the hostile tests and the `dht_node` fuzz target found,
// each pinned down by the smallest input that showed it
// ---------------------------------------------------------------------------

/// A bencoded list of small integers such as `li97ei97ee` is not a byte
/// string, even though `serde_bytes::ByteBuf` would read it as `aa`. KRPC
/// byte strings (`t`, `id`, `token`, ...) accept only real bencode strings,
/// so such a `t` makes the query undecodable: the node drops it as a
/// `bad_message` and sends nothing back.
#[test]
fn list_of_integers_is_not_a_byte_string() {
    let mut h = Harness::new();
    let from = addr("192.0.2.70:6881");
    let bytes = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:tli97ei97ee1:y1:qe";
    assert!(krpc::decode(bytes).is_err(), "t is a list, not a string");
    assert!(h.replies(from, bytes).is_empty());
    assert_eq!(h.stats().dropped.bad_message, 1);
}

/// `nodes` holds 26-byte IPv4 entries only (BEP 5); IPv6 contacts, 38 bytes
/// each, belong in `nodes6` (BEP 32). A node with an IPv6 contact in its
/// table, asked over IPv4 without `want`, must still send a reply that
/// decodes, by this crate's own decoder too: the IPv6 contact must not be
/// written into `nodes`.
#[test]
fn find_node_reply_never_puts_ipv6_contacts_in_nodes() {
    let mut h = Harness::new();
    h.add_node(NodeContact {
        id: querier_id(0x66),
        addr: addr("[2001:db8::66]:6881"),
    });
    let from = addr("192.0.2.1:6881");
    let bytes = encode_query(
        b"fn",
        Query::FindNode {
            id: querier_id(1),
            target: querier_id(2),
            want: None,
        },
    );
    h.node.handle_datagram(h.now, from, &bytes);
    while let Some(transmit) = h.node.poll_transmit() {
        assert!(
            krpc::decode(&transmit.bytes).is_ok(),
            "undecodable reply: {:?}",
            krpc::decode(&transmit.bytes)
        );
    }
}

/// BEP 32: a querier that sets `want` to both `n4` and `n6` gets IPv4
/// contacts in `nodes` and IPv6 contacts in `nodes6`, whichever family it
/// asked over. Here an IPv4 sender asks a node whose table has three IPv4
/// and two IPv6 contacts; each list holds exactly its own family, closest
/// to the target first.
#[test]
fn find_node_with_want_both_fills_nodes_and_nodes6_by_family() {
    let mut h = Harness::new();
    let v4: Vec<NodeContact> = (1..=3u8)
        .map(|n| NodeContact {
            id: querier_id(0x40 + n),
            addr: SocketAddr::new([10, 4, 0, n].into(), 6881),
        })
        .collect();
    let v6: Vec<NodeContact> = (1..=2u16)
        .map(|n| NodeContact {
            id: querier_id(0x60 + n as u8),
            addr: SocketAddr::new(
                std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 6, n).into(),
                6881,
            ),
        })
        .collect();
    for contact in v4.iter().chain(&v6) {
        h.add_node(*contact);
    }
    assert_eq!(h.stats().routing_table_nodes, 5);

    let target = querier_id(0x50);
    let reply = h.query(
        addr("192.0.2.3:6881"),
        b"fw",
        Query::FindNode {
            id: querier_id(3),
            target,
            want: Some(Want {
                ipv4: true,
                ipv6: true,
            }),
        },
    );
    let response = expect_response(&reply);
    let by_distance = |mut contacts: Vec<NodeContact>| {
        contacts.sort_by_key(|c| c.id.distance(&target));
        contacts
    };
    assert!(
        response.nodes.iter().all(|c| c.addr.is_ipv4()),
        "{response:?}"
    );
    assert!(
        response.nodes6.iter().all(|c| c.addr.is_ipv6()),
        "{response:?}"
    );
    assert_eq!(response.nodes, by_distance(v4), "IPv4 contacts in nodes");
    assert_eq!(response.nodes6, by_distance(v6), "IPv6 contacts in nodes6");
}

/// A get_peers reply stays within `datagram_size_max` (1,500 bytes), which
/// a node of this crate enforces on what it receives. With 100 IPv6 peers
/// stored (`peers_per_reply_max` = 100, 18-byte compact peers) a reply
/// carrying all of them would be about 2,200 bytes; the node only returns
/// peers of the querier's address family, and no more than fit in one
/// datagram.
#[test]
fn get_peers_reply_fits_in_one_datagram() {
    let mut h = Harness::new();
    let info_hash = Id([0x88; 20]);
    for i in 0..100u16 {
        let from = SocketAddr::new(
            std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i).into(),
            6881,
        );
        let token = get_peers(&mut h, from, 1, info_hash).token.unwrap();
        expect_response(&announce(&mut h, from, 1, info_hash, 7000, false, &token));
    }
    assert_eq!(h.stats().peers_stored, 100);
    let bytes = encode_query(
        b"gp",
        Query::GetPeers {
            id: querier_id(2),
            info_hash,
            want: None,
        },
    );
    h.node
        .handle_datagram(h.now, addr("192.0.2.2:6881"), &bytes);
    while let Some(transmit) = h.node.poll_transmit() {
        assert!(
            transmit.bytes.len() <= h.config.datagram_size_max,
            "reply of {} bytes",
            transmit.bytes.len()
        );
    }
}

/// A lookup gives up on a silent node at `lookup_hard_timeout` and counts a
/// failure. When that node's query later reaches `query_timeout` while the
/// lookup still runs, the failure must not be counted again: here only B
/// never answers, so the summary says exactly one failure.
#[test]
fn lookup_counts_a_silent_node_as_one_failure() {
    let mut h = Harness::with_config(Config {
        rng_seed: SEED,
        lookup_soft_timeout: Duration::from_millis(600),
        lookup_hard_timeout: Duration::from_secs(2),
        query_timeout: Duration::from_secs(5),
        ..Config::default()
    });
    let contact = |n: u8| NodeContact {
        id: querier_id(n),
        addr: SocketAddr::new([10, 2, 0, n].into(), 6881),
    };
    let (a, b, c, d) = (contact(0xa0), contact(0xb0), contact(0xc0), contact(0xd0));
    h.add_node(a);
    h.add_node(b);
    let request = h
        .node
        .start_lookup(
            h.now,
            Id([0x11; 20]),
            trackerless::dht::LookupKind::FindNode,
        )
        .unwrap();
    let mut pending: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
    fn collect(pending: &mut Vec<(SocketAddr, Vec<u8>)>, sent: Vec<(SocketAddr, Message)>) {
        for (to, message) in sent {
            if matches!(message.body, Body::Query(Query::FindNode { .. })) {
                pending.push((to, message.transaction_id.as_bytes().to_vec()));
            }
        }
    }
    collect(&mut pending, h.drain());
    // Who answers when (ms after the start), and with which nodes.
    let script = [(1_500, a, vec![c]), (3_400, c, vec![d]), (5_300, d, vec![])];
    let mut summary = None;
    for step in 1..=80u64 {
        h.now += Duration::from_millis(100);
        h.node.handle_timeout(h.now);
        collect(&mut pending, h.drain());
        for (at, node, nodes) in &script {
            if step * 100 == *at {
                let index = pending.iter().position(|(to, _)| *to == node.addr).unwrap();
                let (_, t) = pending.remove(index);
                let answer = encode_response(
                    &t,
                    Response {
                        id: node.id,
                        nodes: nodes.clone(),
                        ..Response::default()
                    },
                );
                collect(&mut pending, h.send(node.addr, &answer));
            }
        }
        for event in h.events() {
            if let Event::LookupDone {
                request: r,
                summary: s,
            } = event
            {
                assert_eq!(r, request);
                summary = Some(s);
            }
        }
        if summary.is_some() {
            break;
        }
    }
    let summary = summary.expect("the lookup finishes once D answers");
    assert_eq!((summary.queried, summary.responses), (4, 3), "{summary:?}");
    assert_eq!(summary.failures, 1, "only B never answered: {summary:?}");
}
