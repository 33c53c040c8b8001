//! The bounded bencode scanner never panics, agrees with itself across
//! entry points and limits, and only passes input serde_bencode can parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_bencode::value::Value;
use trackerless::wire::bencode::{self, BencodeLimits};

/// Looser limits, as for a .torrent file. Everything valid under KRPC
/// limits must be valid under these.
const LOOSE: BencodeLimits = BencodeLimits {
    depth_max: 64,
    string_length_max: 1 << 24,
    items_max: 1 << 20,
};

fuzz_target!(|data: &[u8]| {
    let limits = BencodeLimits::KRPC;
    let valid = bencode::validate(data, &limits);

    match bencode::top_level_value_span(data, b"info", &limits) {
        Ok(Some(span)) => {
            assert!(valid.is_ok(), "span found in invalid input");
            assert!(
                span.start < span.end && span.end <= data.len(),
                "span {span:?} out of bounds (len {})",
                data.len()
            );
            assert_eq!(data.first(), Some(&b'd'));
            assert!(
                data[..span.start].ends_with(b"4:info"),
                "span {span:?} does not follow the key"
            );
            // The value alone is one complete, valid value.
            assert_eq!(bencode::validate(&data[span], &limits), Ok(()));
        }
        Ok(None) => assert!(valid.is_ok(), "Ok(None) for invalid input"),
        Err(error) => assert_eq!(
            Err(error),
            valid,
            "top_level_value_span and validate disagree"
        ),
    }

    if valid.is_ok() {
        assert_eq!(
            bencode::validate(data, &LOOSE),
            Ok(()),
            "looser limits reject what KRPC limits accept"
        );
        // Depth is bounded, so serde_bencode's recursion is safe here.
        if let Err(error) = serde_bencode::from_bytes::<Value>(data) {
            panic!(
                "validated input rejected by serde_bencode ({error}): {:?}",
                String::from_utf8_lossy(data)
            );
        }
    }
});
