//! BEP 5's example packets decode to the right typed messages and encode back
//! byte for byte; transaction IDs of every length round-trip exactly.

use trackerless::wire::NodeContact;
use trackerless::wire::id::Id;
use trackerless::wire::krpc::{
    self, Body, DecodeError, KrpcError, Message, Query, Response, TransactionId,
};

fn id(text: &[u8; 20]) -> Id {
    Id(*text)
}

fn message(t: &[u8], body: Body) -> Message {
    Message {
        transaction_id: TransactionId::new(t).unwrap(),
        body,
        client_version: None,
        requester_addr: None,
        read_only: false,
    }
}

fn assert_round_trip(bytes: &[u8], expected: Message) {
    let decoded =
        krpc::decode(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)));
    assert_eq!(decoded, expected);
    assert_eq!(
        String::from_utf8_lossy(&expected.encode()),
        String::from_utf8_lossy(bytes)
    );
}

#[test]
fn bep5_error_example() {
    assert_round_trip(
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        message(
            b"aa",
            Body::Error(KrpcError {
                code: 201,
                message: "A Generic Error Ocurred".into(),
            }),
        ),
    );
}

#[test]
fn bep5_ping_examples() {
    assert_round_trip(
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        message(
            b"aa",
            Body::Query(Query::Ping {
                id: id(b"abcdefghij0123456789"),
            }),
        ),
    );
    assert_round_trip(
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        message(
            b"aa",
            Body::Response(Response {
                id: id(b"mnopqrstuvwxyz123456"),
                ..Response::default()
            }),
        ),
    );
}

#[test]
fn bep5_find_node_examples() {
    assert_round_trip(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        message(
            b"aa",
            Body::Query(Query::FindNode {
                id: id(b"abcdefghij0123456789"),
                target: id(b"mnopqrstuvwxyz123456"),
                want: None,
            }),
        ),
    );
    // The spec's "def456..." stands for compact nodes; use one real node.
    let node = NodeContact {
        id: id(b"mnopqrstuvwxyz123456"),
        addr: "127.0.0.2:6881".parse().unwrap(),
    };
    let mut bytes = b"d1:rd2:id20:0123456789abcdefghij5:nodes26:".to_vec();
    bytes.extend_from_slice(b"mnopqrstuvwxyz123456\x7f\x00\x00\x02\x1a\xe1");
    bytes.extend_from_slice(b"e1:t2:aa1:y1:re");
    assert_round_trip(
        &bytes,
        message(
            b"aa",
            Body::Response(Response {
                id: id(b"0123456789abcdefghij"),
                nodes: vec![node],
                ..Response::default()
            }),
        ),
    );
}

#[test]
fn bep5_get_peers_examples() {
    assert_round_trip(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        message(
            b"aa",
            Body::Query(Query::GetPeers {
                id: id(b"abcdefghij0123456789"),
                info_hash: id(b"mnopqrstuvwxyz123456"),
                want: None,
            }),
        ),
    );
    assert_round_trip(
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        message(
            b"aa",
            Body::Response(Response {
                id: id(b"abcdefghij0123456789"),
                values: vec![
                    "97.120.106.101:11893".parse().unwrap(),
                    "105.100.104.116:28269".parse().unwrap(),
                ],
                token: Some(b"aoeusnth".to_vec()),
                ..Response::default()
            }),
        ),
    );
}

#[test]
fn bep5_announce_peer_examples() {
    assert_round_trip(
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        message(
            b"aa",
            Body::Query(Query::AnnouncePeer {
                id: id(b"abcdefghij0123456789"),
                info_hash: id(b"mnopqrstuvwxyz123456"),
                port: 6881,
                implied_port: true,
                token: b"aoeusnth".to_vec(),
            }),
        ),
    );
}

#[test]
fn version_ip_and_read_only_keys_round_trip() {
    let mut expected = message(
        b"\x00\x01\x02\x03",
        Body::Response(Response {
            id: id(b"mnopqrstuvwxyz123456"),
            ..Response::default()
        }),
    );
    expected.client_version = Some(b"TL\x00\x01".to_vec());
    expected.requester_addr = Some("127.0.0.9:4000".parse().unwrap());
    let bytes = expected.encode();
    assert_eq!(
        bytes,
        b"d2:ip6:\x7f\x00\x00\x09\x0f\xa01:rd2:id20:mnopqrstuvwxyz123456e1:t4:\x00\x01\x02\x031:v4:TL\x00\x011:y1:re"
    );
    assert_eq!(krpc::decode(&bytes).unwrap(), expected);
}

#[test]
fn transaction_ids_of_every_length_round_trip() {
    for len in [1usize, 2, 4, 8, 16] {
        let t: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
        let mut bytes = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t".to_vec();
        bytes.extend_from_slice(format!("{len}:").as_bytes());
        bytes.extend_from_slice(&t);
        bytes.extend_from_slice(b"1:y1:qe");
        let decoded = krpc::decode(&bytes).unwrap();
        assert_eq!(decoded.transaction_id.as_bytes(), t.as_slice());
        assert_eq!(decoded.encode(), bytes);
    }
    let too_long = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t17:aaaaaaaaaaaaaaaaa1:y1:qe";
    assert_eq!(
        krpc::decode(too_long),
        Err(DecodeError::BadLength {
            key: "t",
            length: 17
        })
    );
}

#[test]
fn unknown_keys_are_ignored_and_unknown_methods_kept() {
    let bytes = b"d1:ad2:id20:abcdefghij01234567895:extrald1:xi1eee6:target20:mnopqrstuvwxyz123456e1:q8:vote_abc1:t2:aa5:zzzzzi0e1:y1:qe";
    let decoded = krpc::decode(bytes).unwrap();
    assert_eq!(
        decoded.body,
        Body::Query(Query::Unknown {
            method: b"vote_abc".to_vec(),
            id: Some(id(b"abcdefghij0123456789"))
        })
    );
}

#[test]
fn malformed_queries_are_typed_errors() {
    let cases: &[(&[u8], DecodeError)] = &[
        (b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe", DecodeError::BadLength { key: "id", length: 19 }),
        (b"d1:ade1:q4:ping1:t2:aa1:y1:qe", DecodeError::MissingKey("id")),
        (b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe", DecodeError::MissingKey("target")),
        (b"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", DecodeError::Schema),
        (b"d1:t2:aa1:y1:xe", DecodeError::UnknownType),
        (b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe", DecodeError::OutOfRange("port")),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            &krpc::decode(bytes).unwrap_err(),
            expected,
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    // The transaction ID of a malformed query is still found, so it can get error 203.
    assert_eq!(
        krpc::query_transaction_id(b"d1:ade1:q4:ping1:t3:xyz1:y1:qe")
            .map(|t| t.as_bytes().to_vec()),
        Some(b"xyz".to_vec())
    );
}
