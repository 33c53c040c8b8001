//! `Magnet::parse` never panics, refuses a link over `MAGNET_LENGTH_MAX`
//! with `TooLong` (and only such a link), what it accepts is within its
//! bounds, and `to_uri` writes a link that parses back to an equal `Magnet`
//! (and writes the same link again). The one exception: `to_uri`
//! percent-encodes, so an accepted link near `MAGNET_LENGTH_MAX` can be
//! written longer than the limit, and then (exactly then) parsing it fails
//! with `TooLong`. `PeerAddress` parsing and display round trip too.
//!
//! Links that long are out of reach at libFuzzer's default `-max_len`
//! (4096), and a link near 64 KiB takes tens of milliseconds here (with
//! sanitizers), so the exception is checked once per process, at start:
//! names of spaces (`+` read, `%20` written) whose written link is just
//! under, at and just over the limit.
//!
//! Input: text (converted lossily if not UTF-8). If it starts with
//! `magnet:` or whitespace it is the whole link. Otherwise the first byte
//! picks a shortcut: even, the rest follows `magnet:?xt=urn:btih:<hash>&`
//! (so the fuzzer need not find a valid hash); odd, the rest is an `x.pe`
//! peer address, parsed alone and inside a link.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use trackerless::wire::magnet::{
    MAGNET_LENGTH_MAX, Magnet, MagnetError, PEERS_MAX, PeerAddress, SELECT_ONLY_RANGES_MAX,
    TRACKERS_MAX,
};

const PREFIX: &str = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&";

/// Checks one link; returns what `to_uri` wrote, if it parsed.
fn check_link(text: &str) -> Option<String> {
    let parsed = Magnet::parse(text);
    if text.len() > MAGNET_LENGTH_MAX {
        assert_eq!(parsed, Err(MagnetError::TooLong(text.len())));
        return None;
    }
    assert!(
        !matches!(parsed, Err(MagnetError::TooLong(_))),
        "a link of {} bytes refused as too long",
        text.len()
    );
    let Ok(magnet) = parsed else {
        return None;
    };
    assert!(magnet.trackers.len() <= TRACKERS_MAX);
    assert!(magnet.peers.len() <= PEERS_MAX);
    assert!(magnet.select_only.len() <= SELECT_ONLY_RANGES_MAX);
    assert!(magnet.trackers.iter().all(|t| !t.is_empty()));
    let unique: HashSet<&String> = magnet.trackers.iter().collect();
    assert_eq!(unique.len(), magnet.trackers.len(), "duplicate trackers");
    let unique: HashSet<&PeerAddress> = magnet.peers.iter().collect();
    assert_eq!(unique.len(), magnet.peers.len(), "duplicate peers");
    for peer in &magnet.peers {
        let port = match peer {
            PeerAddress::Ip(addr) => addr.port(),
            PeerAddress::Host { port, .. } => *port,
        };
        assert_ne!(port, 0);
    }
    assert!(magnet.select_only.iter().all(|r| r.start() <= r.end()));
    assert_ne!(magnet.display_name.as_deref(), Some(""));

    let uri = magnet.to_uri();
    assert_eq!(magnet.to_string(), uri);
    if uri.len() > MAGNET_LENGTH_MAX {
        // Percent-encoding made it longer than parse accepts.
        assert_eq!(
            Magnet::parse(&uri),
            Err(MagnetError::TooLong(uri.len())),
            "a link of {} bytes written from one of {}",
            uri.len(),
            text.len()
        );
        return Some(uri);
    }
    match Magnet::parse(&uri) {
        Ok(again) => assert_eq!(again, magnet, "round trip changed the link: {uri}"),
        Err(error) => panic!("to_uri wrote a link that does not parse ({error}): {uri}"),
    }
    assert_eq!(
        uri.parse::<Magnet>().map(|m| m.to_uri()),
        Ok(uri.clone()),
        "to_uri is not stable"
    );
    Some(uri)
}

/// Links within the limit whose written form is just under, at and just
/// over it: each space of the name (`+`) is written `%20`.
fn check_near_limit() {
    // `to_uri` writes the same head: `xt`, then `&dn=`.
    let head = format!("{PREFIX}dn=");
    let spaces = (MAGNET_LENGTH_MAX - head.len()) / 3;
    let mut lengths = Vec::new();
    for n in spaces - 1..=spaces + 1 {
        let link = format!("{head}{}", "+".repeat(n));
        assert!(link.len() <= MAGNET_LENGTH_MAX);
        let uri = check_link(&link).expect("a name of spaces parses");
        lengths.push(uri.len());
    }
    assert!(
        lengths.first().is_some_and(|&l| l <= MAGNET_LENGTH_MAX)
            && lengths.last().is_some_and(|&l| l > MAGNET_LENGTH_MAX),
        "written lengths {lengths:?} do not straddle {MAGNET_LENGTH_MAX}"
    );
}

fn check_peer(text: &str) {
    let Ok(peer) = text.parse::<PeerAddress>() else {
        return;
    };
    let written = peer.to_string();
    assert_eq!(
        written.parse::<PeerAddress>(),
        Ok(peer),
        "{text:?} -> {written:?}"
    );
}

fuzz_target!(init: check_near_limit(), |data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let starts_as_link = text
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
        || text.starts_with(char::is_whitespace);
    match data.split_first() {
        Some((&mode, rest)) if !starts_as_link => {
            let rest = String::from_utf8_lossy(rest);
            if mode % 2 == 0 {
                check_link(&format!("{PREFIX}{rest}"));
            } else {
                check_peer(&rest);
                check_link(&format!("{PREFIX}x.pe={rest}"));
            }
        }
        _ => {
            check_link(&text);
        }
    }
    check_peer(&text);
});
