//! `krpc::decode` never panics, and whatever it accepts survives a round
//! trip: decode -> encode -> decode gives the same message, and encoding is
//! stable (encoding the re-decoded message gives the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackerless::wire::krpc::{self, Body};

fuzz_target!(|data: &[u8]| {
    let header = krpc::query_transaction_id(data);
    let Ok(message) = krpc::decode(data) else {
        return;
    };
    if matches!(message.body, Body::Query(_)) {
        assert_eq!(
            header,
            Some(message.transaction_id),
            "a decodable query's transaction id is found by query_transaction_id"
        );
    }
    let bytes = message.encode();
    assert!(!bytes.is_empty(), "encoding never fails");
    let again = match krpc::decode(&bytes) {
        Ok(again) => again,
        Err(error) => panic!(
            "re-encoded message does not decode ({error}): {:?} -> {:?}",
            message,
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(again, message, "round trip changed the message");
    assert_eq!(again.encode(), bytes, "encoding is not stable");
});
