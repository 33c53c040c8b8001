//! The peer-wire decoders (`Handshake::decode`, `decode_frame`) never panic
//! and keep their incremental contract: a whole handshake or frame is
//! reported with the bytes it used (never more than the input, exactly the
//! length prefix's worth), every shorter prefix of it asks for more bytes,
//! an oversize length prefix is refused from its 4 bytes alone, and what
//! decodes re-encodes to the same bytes.
//!
//! The input is read twice: as a stream that starts with a handshake, and as
//! a stream of frames from its first byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackerless::wire::peer::{
    self, HANDSHAKE_LEN, Handshake, LENGTH_PREFIX_LEN, MESSAGE_SIZE_MAX, PROTOCOL_NAME,
    PeerMessage, PeerWireError, decode_frame,
};

/// Ids `decode_frame` maps to a named variant: never `Unknown`.
const KNOWN_IDS: [u8; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20];

fn check_handshake(data: &[u8]) -> Option<usize> {
    let mut header = [0u8; 20];
    header[0] = 19;
    header[1..].copy_from_slice(PROTOCOL_NAME);
    let present = data.len().min(header.len());
    let header_ok = data[..present] == header[..present];
    match Handshake::decode(data) {
        Ok(Some(handshake)) => {
            assert!(data.len() >= HANDSHAKE_LEN && header_ok);
            assert_eq!(
                handshake.encode()[..],
                data[..HANDSHAKE_LEN],
                "re-encoding differs"
            );
            assert_eq!(
                handshake.supports_extension_protocol(),
                data[25] & 0x10 != 0
            );
            assert_eq!(handshake.supports_dht(), data[27] & 0x01 != 0);
            // Feature bits round trip through the setters.
            let mut copy = handshake;
            copy.set_extension_protocol(!handshake.supports_extension_protocol());
            copy.set_dht(!handshake.supports_dht());
            assert_ne!(
                copy.supports_extension_protocol(),
                handshake.supports_extension_protocol()
            );
            assert_ne!(copy.supports_dht(), handshake.supports_dht());
            copy.set_extension_protocol(handshake.supports_extension_protocol());
            copy.set_dht(handshake.supports_dht());
            assert_eq!(copy, handshake, "setters touched other bits");
            // Incremental: every shorter prefix waits for more bytes.
            for cut in [0, 1, 19, 20, 27, 47, HANDSHAKE_LEN - 1] {
                assert_eq!(Handshake::decode(&data[..cut]), Ok(None), "prefix of {cut}");
            }
            Some(HANDSHAKE_LEN)
        }
        Ok(None) => {
            assert!(
                data.len() < HANDSHAKE_LEN && header_ok,
                "Ok(None) for {data:?}"
            );
            None
        }
        Err(PeerWireError::BadProtocol) => {
            assert!(!header_ok, "BadProtocol for a good header");
            None
        }
        Err(other) => panic!("handshake decode returned {other:?}"),
    }
}

/// Decodes frames until the input runs out or one fails.
fn check_frames(mut rest: &[u8]) {
    loop {
        let result = decode_frame(rest);
        let prefix = rest
            .get(..LENGTH_PREFIX_LEN)
            .map(|p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
        match result {
            Ok(Some((message, used))) => {
                let length = prefix.expect("a frame without a length prefix") as usize;
                assert!(used <= rest.len(), "used {used} of {} bytes", rest.len());
                assert_eq!(
                    used,
                    LENGTH_PREFIX_LEN + length,
                    "used is not the prefix's length"
                );
                assert!(length <= MESSAGE_SIZE_MAX);
                let mut encoded = Vec::new();
                message.encode(&mut encoded);
                assert_eq!(encoded, rest[..used], "{message:?} re-encodes differently");
                match message.id() {
                    None => assert_eq!(message, PeerMessage::KeepAlive),
                    Some(id) => assert_eq!(id, rest[LENGTH_PREFIX_LEN]),
                }
                if let PeerMessage::Unknown { id, .. } = message {
                    assert!(!KNOWN_IDS.contains(&id), "known id {id} decoded as Unknown");
                }
                // Every shorter prefix of the frame asks for more bytes.
                for cut in [0, 3, 4, used / 2, used - 1] {
                    if cut < used {
                        assert_eq!(decode_frame(&rest[..cut]), Ok(None), "prefix of {cut}");
                    }
                }
                rest = &rest[used..];
            }
            Ok(None) => {
                if let Some(length) = prefix {
                    let length = length as usize;
                    assert!(
                        length <= MESSAGE_SIZE_MAX,
                        "oversize prefix {length} awaited"
                    );
                    assert!(
                        rest.len() < LENGTH_PREFIX_LEN + length,
                        "whole frame not decoded"
                    );
                }
                return;
            }
            Err(PeerWireError::MessageTooLarge { length }) => {
                assert_eq!(Some(length), prefix);
                assert!(length as usize > MESSAGE_SIZE_MAX);
                // Refused from the prefix alone.
                assert_eq!(decode_frame(&rest[..LENGTH_PREFIX_LEN]), result);
                return;
            }
            Err(PeerWireError::BadLength { id, length }) => {
                let frame_len = prefix.expect("BadLength without a prefix") as usize;
                assert!(rest.len() >= LENGTH_PREFIX_LEN + frame_len);
                assert_eq!(id, rest[LENGTH_PREFIX_LEN]);
                assert_eq!(length + 1, frame_len);
                return;
            }
            Err(PeerWireError::BadProtocol) => panic!("decode_frame returned BadProtocol"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(used) = check_handshake(data) {
        check_frames(&data[used..]);
    }
    check_frames(data);
    // The constants agree with each other.
    assert_eq!(HANDSHAKE_LEN, 68);
    assert!(peer::BLOCK_SIZE as usize + 9 <= MESSAGE_SIZE_MAX);
});
