//! The BEP 10 / BEP 9 decoders never panic, what they accept is within
//! their documented bounds, and it survives a round trip: decode, encode,
//! decode gives an equal value, and encoding again gives the same bytes.
//!
//! Input: the first byte picks the `metadata_size` passed to
//! `MetadataMessage::decode` (None, or a size read from the next bytes);
//! the rest is the payload, given to both decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackerless::wire::extension::{
    EXTENSIONS_MAX, ExtendedHandshake, METADATA_PIECE_COUNT_MAX, METADATA_PIECE_SIZE,
    METADATA_SIZE_MAX, MetadataMessage, metadata_piece_count, metadata_piece_len,
};

/// The `metadata_size` argument and the payload.
fn split(data: &[u8]) -> (Option<usize>, &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return (None, data);
    };
    let take = |n: usize| {
        let n = n.min(rest.len());
        let value = rest[..n]
            .iter()
            .fold(0usize, |v, &b| v << 8 | usize::from(b));
        (value, &rest[n..])
    };
    match mode % 8 {
        0 | 1 => (None, rest),
        // Small sizes: one or two pieces, piece boundaries.
        2 | 3 => {
            let (v, rest) = take(2);
            (Some(v), rest)
        }
        4 => {
            let (v, rest) = take(1);
            (Some(v * METADATA_PIECE_SIZE + usize::from(mode >> 3)), rest)
        }
        5 => {
            let (v, rest) = take(3);
            (Some(v), rest)
        }
        6 => (Some(METADATA_SIZE_MAX), rest),
        _ => (Some(METADATA_PIECE_SIZE), rest),
    }
}

fn check_handshake(payload: &[u8]) {
    let Ok(handshake) = ExtendedHandshake::decode(payload) else {
        return;
    };
    assert!(handshake.extensions.len() <= EXTENSIONS_MAX);
    if let Some(size) = handshake.metadata_size {
        assert!(
            size > 0 && size <= METADATA_SIZE_MAX,
            "metadata_size {size}"
        );
    }
    assert_ne!(handshake.listen_port, Some(0));
    assert_ne!(handshake.request_queue_len, Some(0));
    assert_ne!(handshake.ut_metadata_id(), Some(0));
    let bytes = handshake.encode();
    let again = match ExtendedHandshake::decode(&bytes) {
        Ok(again) => again,
        Err(error) => panic!(
            "re-encoded handshake does not decode ({error}): {handshake:?} -> {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(again, handshake, "round trip changed the handshake");
    assert_eq!(again.encode(), bytes, "encoding is not stable");
}

fn check_metadata(payload: &[u8], size: Option<usize>) {
    let Ok(message) = MetadataMessage::decode(payload, size) else {
        return;
    };
    let piece = message.piece();
    match &message {
        MetadataMessage::Request { .. } | MetadataMessage::Reject { .. } => {
            let count = size.map_or(METADATA_PIECE_COUNT_MAX, metadata_piece_count);
            assert!((piece as usize) < count, "piece {piece} of {count}");
        }
        MetadataMessage::Data {
            total_size, data, ..
        } => {
            assert!(*total_size > 0 && *total_size <= METADATA_SIZE_MAX);
            if let Some(size) = size {
                assert_eq!(*total_size, size, "total_size differs from the known size");
            }
            assert!((piece as usize) < metadata_piece_count(*total_size));
            assert_eq!(Some(data.len()), metadata_piece_len(*total_size, piece));
            assert!(data.len() <= METADATA_PIECE_SIZE);
            // The piece is the tail of the payload.
            assert!(payload.ends_with(data));
        }
    }
    // Knowing no size is never stricter than knowing one.
    if size.is_some() {
        assert_eq!(
            MetadataMessage::decode(payload, None),
            Ok(message.clone()),
            "accepted with a known size but not without"
        );
    }
    let bytes = message.encode();
    for known in [size, None] {
        match MetadataMessage::decode(&bytes, known) {
            Ok(again) => assert_eq!(again, message, "round trip changed the message"),
            Err(error) => {
                panic!("re-encoded message does not decode with {known:?} ({error}): {message:?}")
            }
        }
    }
    assert_eq!(
        MetadataMessage::decode(&bytes, size).map(|m| m.encode()),
        Ok(bytes),
        "encoding is not stable"
    );
}

fuzz_target!(|data: &[u8]| {
    let (size, payload) = split(data);
    check_handshake(payload);
    check_metadata(payload, size);
    // The whole input as a payload too, with no size known.
    check_handshake(data);
    check_metadata(data, None);
});
