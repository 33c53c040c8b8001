//! Magnet links (BEP 9 "magnet URI format", BEP 53 `so`): parsing and writing.
//!
//! ```text
//! magnet:?xt=urn:btih:<info-hash>&dn=<name>&tr=<tracker>&x.pe=<peer>&so=0,2,4-6
//! ```
//! - `xt=urn:btih:` carries the v1 info-hash as 40 hex digits or 32 base32
//!   characters. `xt=urn:btmh:` (BEP 52 via BEP 9) carries a v2 multihash: a
//!   link with only that is refused with [`MagnetError::V2Only`]; a hybrid
//!   link with both keeps the btih and records the v2 hash. Other `xt`
//!   namespaces (ed2k, sha1, ...) are ignored. Numbered forms (`xt.1`,
//!   `tr.2`) are accepted.
//! - `dn` is percent-decoded with `+` as a space (form encoding, as links in
//!   the wild use it). `tr` and `x.pe` are percent-decoded, `+` kept.
//!   Text that is not UTF-8 after decoding is converted lossily: `dn` is
//!   display only and a mangled tracker URL fails on its own.
//! - `x.pe` peers are IPv4 `a.b.c.d:port`, IPv6 `[addr]:port`, or
//!   `hostname:port`. Hostnames are kept (as [`PeerAddress::Host`]) for the
//!   runtime to resolve, since BEP 9 allows them and this layer does no I/O;
//!   they must be valid DNS names whose last label is not numeric (so a
//!   mistyped IPv4 address is an error, not a hostname).
//! - Unknown parameters are ignored. Everything is bounded: the whole link
//!   by [`MAGNET_LENGTH_MAX`], repeated parameters by [`TRACKERS_MAX`],
//!   [`PEERS_MAX`] and [`SELECT_ONLY_RANGES_MAX`] (exceeding one is an
//!   error, not a silent truncation). Duplicate trackers and peers are kept
//!   once.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::str::FromStr;

use super::id::{IdParseError, InfoHash};

/// Longest magnet link accepted, in bytes.
pub const MAGNET_LENGTH_MAX: usize = 64 * 1024;
/// Most `tr` trackers accepted (links in the wild carry up to a few dozen).
pub const TRACKERS_MAX: usize = 128;
/// Most `x.pe` peers accepted.
pub const PEERS_MAX: usize = 128;
/// Most `so` ranges accepted (BEP 53), counted over all `so` parameters.
pub const SELECT_ONLY_RANGES_MAX: usize = 1024;
/// Longest hostname accepted in `x.pe` (the DNS limit).
pub const HOSTNAME_LEN_MAX: usize = 253;
/// Bytes in a v2 info-hash (SHA-256, BEP 52).
pub const V2_INFO_HASH_LEN: usize = 32;
/// Multihash prefix of a SHA-256 digest: function code 0x12, length 0x20.
const MULTIHASH_SHA256_PREFIX: &str = "1220";
/// Longest excerpt of offending input kept in an error.
const EXCERPT_LEN_MAX: usize = 64;

/// Why a string is not a magnet link we can use. All are the link's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    /// Longer than [`MAGNET_LENGTH_MAX`].
    #[error("magnet link of {0} bytes exceeds the maximum {MAGNET_LENGTH_MAX}")]
    TooLong(usize),
    /// Does not start with `magnet:?`.
    #[error("not a magnet link")]
    NotMagnet,
    /// No `xt` parameter at all.
    #[error("no exact topic (xt)")]
    MissingExactTopic,
    /// `xt` parameters, but none with a BitTorrent info-hash.
    #[error("no BitTorrent info-hash among the exact topics")]
    UnsupportedTopic,
    /// Only a v2 (`urn:btmh:`) info-hash: this client speaks v1.
    #[error("v2-only magnet link (urn:btmh) is not supported")]
    V2Only,
    /// A `urn:btih:` value that is not 40 hex or 32 base32 characters.
    #[error("bad btih info-hash: {0}")]
    BadInfoHash(IdParseError),
    /// A `urn:btmh:` value that is not a hex SHA-256 multihash.
    #[error("bad btmh info-hash")]
    BadV2InfoHash,
    /// Two different `urn:btih:` (or `urn:btmh:`) hashes.
    #[error("conflicting info-hashes")]
    ConflictingInfoHashes,
    /// A `%` not followed by two hex digits in the named parameter.
    #[error("bad percent-encoding in {0:?}")]
    BadPercentEncoding(&'static str),
    /// An `x.pe` value that is not `ip:port`, `[ipv6]:port` or `host:port`.
    #[error("bad peer address {0:?}")]
    BadPeer(String),
    /// An `so` value that is not a comma list of indices and `a-b` ranges.
    #[error("bad select-only list {0:?}")]
    BadSelectOnly(String),
    /// More repetitions of a parameter than its bound.
    #[error("more than {max} {what}")]
    TooMany {
        /// "trackers", "peers" or "select-only ranges".
        what: &'static str,
        /// The bound.
        max: usize,
    },
}

/// A peer address from `x.pe`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddress {
    /// A literal IPv4 or IPv6 address and port.
    Ip(SocketAddr),
    /// A DNS name and port, to be resolved by the runtime.
    Host {
        /// The hostname, as written (a valid DNS name).
        name: String,
        /// The TCP port (non-zero).
        port: u16,
    },
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddress::Ip(addr) => write!(f, "{addr}"),
            PeerAddress::Host { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

impl FromStr for PeerAddress {
    type Err = MagnetError;

    /// Parses `a.b.c.d:port`, `[v6]:port` or `hostname:port`; port 0 is refused.
    fn from_str(text: &str) -> Result<PeerAddress, MagnetError> {
        let bad = || MagnetError::BadPeer(excerpt(text));
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port = parse_decimal::<u16>(port)
            .filter(|&p| p != 0)
            .ok_or_else(bad)?;
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let ip: Ipv6Addr = v6.parse().map_err(|_| bad())?;
            return Ok(PeerAddress::Ip(SocketAddr::new(IpAddr::V6(ip), port)));
        }
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return Ok(PeerAddress::Ip(SocketAddr::new(IpAddr::V4(ip), port)));
        }
        if is_hostname(host) {
            return Ok(PeerAddress::Host {
                name: host.to_string(),
                port,
            });
        }
        Err(bad())
    }
}

/// A parsed magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info-hash (`xt=urn:btih:`): what the DHT is asked for.
    pub info_hash: InfoHash,
    /// The v2 info-hash of a hybrid torrent (`xt=urn:btmh:`), if given.
    pub info_hash_v2: Option<[u8; V2_INFO_HASH_LEN]>,
    /// `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// `tr`: tracker URLs, in order, without duplicates.
    pub trackers: Vec<String>,
    /// `x.pe`: peers to try directly, in order, without duplicates.
    pub peers: Vec<PeerAddress>,
    /// BEP 53 `so`: file indices to download (inclusive ranges, in the
    /// order given); empty means all files.
    pub select_only: Vec<RangeInclusive<u32>>,
}

impl Magnet {
    /// A link with only an info-hash.
    pub fn new(info_hash: InfoHash) -> Magnet {
        Magnet {
            info_hash,
            info_hash_v2: None,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            select_only: Vec::new(),
        }
    }

    /// Parses a magnet link. Leading and trailing whitespace is ignored.
    pub fn parse(text: &str) -> Result<Magnet, MagnetError> {
        if text.len() > MAGNET_LENGTH_MAX {
            return Err(MagnetError::TooLong(text.len()));
        }
        let text = text.trim();
        let query = text
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("magnet:?"))
            .and_then(|_| text.get(8..))
            .ok_or(MagnetError::NotMagnet)?;
        let mut saw_topic = false;
        let mut v1: Option<InfoHash> = None;
        let mut v2: Option<[u8; V2_INFO_HASH_LEN]> = None;
        let mut display_name = None;
        let mut trackers: Vec<String> = Vec::new();
        let mut peers: Vec<PeerAddress> = Vec::new();
        let mut select_only = Vec::new();
        for parameter in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match base_key(key) {
                "xt" => {
                    saw_topic = true;
                    let topic = percent_decode_text(value, false, "xt")?;
                    if let Some(hash) = strip_prefix_ignore_case(&topic, "urn:btih:") {
                        let hash = InfoHash::parse(hash).map_err(MagnetError::BadInfoHash)?;
                        if v1.replace(hash).is_some_and(|old| old != hash) {
                            return Err(MagnetError::ConflictingInfoHashes);
                        }
                    } else if let Some(hash) = strip_prefix_ignore_case(&topic, "urn:btmh:") {
                        let hash = parse_multihash(hash)?;
                        if v2.replace(hash).is_some_and(|old| old != hash) {
                            return Err(MagnetError::ConflictingInfoHashes);
                        }
                    }
                }
                "dn" => {
                    let name = percent_decode_text(value, true, "dn")?;
                    if display_name.is_none() && !name.is_empty() {
                        display_name = Some(name);
                    }
                }
                "tr" => {
                    let url = percent_decode_text(value, false, "tr")?;
                    if !url.is_empty() && !trackers.contains(&url) {
                        if trackers.len() == TRACKERS_MAX {
                            return Err(MagnetError::TooMany {
                                what: "trackers",
                                max: TRACKERS_MAX,
                            });
                        }
                        trackers.push(url);
                    }
                }
                "x.pe" => {
                    let peer: PeerAddress = percent_decode_text(value, false, "x.pe")?.parse()?;
                    if !peers.contains(&peer) {
                        if peers.len() == PEERS_MAX {
                            return Err(MagnetError::TooMany {
                                what: "peers",
                                max: PEERS_MAX,
                            });
                        }
                        peers.push(peer);
                    }
                }
                "so" => {
                    let list = percent_decode_text(value, false, "so")?;
                    parse_select_only(&list, &mut select_only)?;
                }
                _ => {}
            }
        }
        let info_hash = match (v1, v2) {
            (Some(hash), _) => hash,
            (None, Some(_)) => return Err(MagnetError::V2Only),
            (None, None) if saw_topic => return Err(MagnetError::UnsupportedTopic),
            (None, None) => return Err(MagnetError::MissingExactTopic),
        };
        Ok(Magnet {
            info_hash,
            info_hash_v2: v2,
            display_name,
            trackers,
            peers,
            select_only,
        })
    }

    /// Writes the link: `xt` first (btih, then btmh for a hybrid), then
    /// `dn`, `tr`, `x.pe` and `so`, each value percent-encoded.
    pub fn to_uri(&self) -> String {
        let mut out = format!("magnet:?xt=urn:btih:{}", self.info_hash.to_hex());
        if let Some(v2) = &self.info_hash_v2 {
            out.push_str("&xt=urn:btmh:");
            out.push_str(MULTIHASH_SHA256_PREFIX);
            for byte in v2 {
                out.push_str(&format!("{byte:02x}"));
            }
        }
        if let Some(name) = &self.display_name {
            out.push_str("&dn=");
            percent_encode(name, &mut out);
        }
        for tracker in &self.trackers {
            out.push_str("&tr=");
            percent_encode(tracker, &mut out);
        }
        for peer in &self.peers {
            out.push_str("&x.pe=");
            percent_encode(&peer.to_string(), &mut out);
        }
        if !self.select_only.is_empty() {
            out.push_str("&so=");
            let items: Vec<String> = self
                .select_only
                .iter()
                .map(|range| {
                    if range.start() == range.end() {
                        range.start().to_string()
                    } else {
                        format!("{}-{}", range.start(), range.end())
                    }
                })
                .collect();
            out.push_str(&items.join(","));
        }
        out
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(text: &str) -> Result<Magnet, MagnetError> {
        Magnet::parse(text)
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

/// `xt.1` -> `xt`, `tr.2` -> `tr`; other keys unchanged.
fn base_key(key: &str) -> &str {
    for base in ["xt", "tr"] {
        if let Some(suffix) = key.strip_prefix(base).and_then(|k| k.strip_prefix('.'))
            && !suffix.is_empty()
            && suffix.bytes().all(|b| b.is_ascii_digit())
        {
            return base;
        }
    }
    key
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Hex SHA-256 multihash (`1220` + 64 hex digits) to the 32-byte digest.
fn parse_multihash(text: &str) -> Result<[u8; V2_INFO_HASH_LEN], MagnetError> {
    let digest = strip_prefix_ignore_case(text, MULTIHASH_SHA256_PREFIX)
        .filter(|d| d.len() == 2 * V2_INFO_HASH_LEN)
        .ok_or(MagnetError::BadV2InfoHash)?;
    let mut out = [0u8; V2_INFO_HASH_LEN];
    for (byte, pair) in out.iter_mut().zip(digest.as_bytes().chunks_exact(2)) {
        *byte = hex_value(pair[0])
            .zip(hex_value(pair[1]))
            .map(|(high, low)| high << 4 | low)
            .ok_or(MagnetError::BadV2InfoHash)?;
    }
    Ok(out)
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes `value` (and `+` to a space when `plus_is_space`), then
/// converts to text, replacing bytes that are not UTF-8.
fn percent_decode_text(
    value: &str,
    plus_is_space: bool,
    key: &'static str,
) -> Result<String, MagnetError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let decoded = bytes
                    .get(i + 1)
                    .and_then(|&h| hex_value(h))
                    .zip(bytes.get(i + 2).and_then(|&l| hex_value(l)))
                    .map(|(high, low)| high << 4 | low)
                    .ok_or(MagnetError::BadPercentEncoding(key))?;
                out.push(decoded);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// Parses a BEP 53 list such as `0,2,4-6` into `ranges`.
fn parse_select_only(list: &str, ranges: &mut Vec<RangeInclusive<u32>>) -> Result<(), MagnetError> {
    let bad = || MagnetError::BadSelectOnly(excerpt(list));
    for item in list.split(',') {
        let range = match item.split_once('-') {
            Some((first, last)) => {
                let first = parse_decimal::<u32>(first).ok_or_else(bad)?;
                let last = parse_decimal::<u32>(last).ok_or_else(bad)?;
                if first > last {
                    return Err(bad());
                }
                first..=last
            }
            None => {
                let index = parse_decimal::<u32>(item).ok_or_else(bad)?;
                index..=index
            }
        };
        if ranges.len() == SELECT_ONLY_RANGES_MAX {
            return Err(MagnetError::TooMany {
                what: "select-only ranges",
                max: SELECT_ONLY_RANGES_MAX,
            });
        }
        ranges.push(range);
    }
    Ok(())
}

/// Plain ASCII digits only (no sign, no whitespace), within the type's range.
fn parse_decimal<T: FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A DNS name: dot-separated labels of letters, digits and inner hyphens,
/// 1 to 63 bytes each, 253 in all, the last label not all digits.
fn is_hostname(host: &str) -> bool {
    if host.is_empty() || host.len() > HOSTNAME_LEN_MAX {
        return false;
    }
    let labels_ok = host.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    let last_numeric = host
        .rsplit('.')
        .next()
        .is_some_and(|label| label.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !last_numeric
}

fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_LEN_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Id;
    use proptest::prelude::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    const BASE32: &str = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";
    const BTMH: &str = "1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";

    fn hash() -> InfoHash {
        Id::parse(HEX).unwrap()
    }

    #[test]
    fn hex_and_base32_hashes() {
        for link in [
            format!("magnet:?xt=urn:btih:{HEX}"),
            format!("magnet:?xt=urn:btih:{}", HEX.to_uppercase()),
            format!("magnet:?xt=urn:btih:{BASE32}"),
            format!("magnet:?xt=urn:btih:{}", BASE32.to_lowercase()),
            format!("MAGNET:?XT=urn:BTIH:{HEX}"),
            format!("  magnet:?xt=urn%3Abtih%3A{HEX}\n"),
            format!("magnet:?xt.1=urn:btih:{HEX}"),
        ] {
            let magnet = Magnet::parse(&link);
            // Upper-case keys are not the same parameter: "XT" is unknown.
            if link.contains("XT=") {
                assert_eq!(magnet, Err(MagnetError::MissingExactTopic));
                continue;
            }
            assert_eq!(magnet.unwrap(), Magnet::new(hash()), "{link}");
        }
    }

    #[test]
    fn all_parameters() {
        let link = format!(
            "magnet:?xt=urn:btih:{HEX}&dn=Big+Buck%20Bunny%2B&tr=udp%3A%2F%2Ftracker.example%3A1337\
             &tr=http://t.example/announce?a=1+2&x.pe=10.0.0.1:6881&x.pe=%5B2001:db8::1%5D:51413\
             &x.pe=peer.example.org:6881&so=0,2,4-6&so=9&tr.1=udp://other:1&unknown=1&&ws=http://x"
        );
        let magnet = Magnet::parse(&link).unwrap();
        assert_eq!(magnet.info_hash, hash());
        assert_eq!(magnet.display_name.as_deref(), Some("Big Buck Bunny+"));
        assert_eq!(
            magnet.trackers,
            vec![
                "udp://tracker.example:1337",
                "http://t.example/announce?a=1+2",
                "udp://other:1"
            ]
        );
        assert_eq!(
            magnet.peers,
            vec![
                PeerAddress::Ip("10.0.0.1:6881".parse().unwrap()),
                PeerAddress::Ip("[2001:db8::1]:51413".parse().unwrap()),
                PeerAddress::Host {
                    name: "peer.example.org".into(),
                    port: 6881
                },
            ]
        );
        assert_eq!(magnet.select_only, vec![0..=0, 2..=2, 4..=6, 9..=9]);
        assert_eq!(Magnet::parse(&magnet.to_uri()), Ok(magnet));
    }

    #[test]
    fn duplicates_are_kept_once() {
        let link = format!(
            "magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{BASE32}&tr=udp://a:1&tr=udp://a:1\
             &x.pe=1.2.3.4:5&x.pe=1.2.3.4:5&dn=first&dn=second"
        );
        let magnet = Magnet::parse(&link).unwrap();
        assert_eq!(magnet.trackers.len(), 1);
        assert_eq!(magnet.peers.len(), 1);
        assert_eq!(magnet.display_name.as_deref(), Some("first"));
    }

    #[test]
    fn v2_links() {
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btmh:{BTMH}&dn=x")),
            Err(MagnetError::V2Only)
        );
        let hybrid =
            Magnet::parse(&format!("magnet:?xt=urn:btmh:{BTMH}&xt=urn:btih:{HEX}")).unwrap();
        assert_eq!(hybrid.info_hash, hash());
        let v2 = hybrid.info_hash_v2.unwrap();
        assert_eq!(v2[0], 0xca);
        assert_eq!(v2[31], 0x2e);
        assert_eq!(Magnet::parse(&hybrid.to_uri()), Ok(hybrid));
        for bad in ["1220abc", "1320", &BTMH.replace('c', "g"), &BTMH[..66]] {
            assert_eq!(
                Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btmh:{bad}")),
                Err(MagnetError::BadV2InfoHash),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_links() {
        let too_long = format!(
            "magnet:?xt=urn:btih:{HEX}&dn={}",
            "a".repeat(MAGNET_LENGTH_MAX)
        );
        let many_trackers: String = (0..=TRACKERS_MAX)
            .map(|i| format!("&tr=udp://t{i}:1"))
            .collect();
        let many_peers: String = (0..=PEERS_MAX)
            .map(|i| format!("&x.pe=10.0.0.1:{}", i + 1))
            .collect();
        let many_ranges = vec!["1"; SELECT_ONLY_RANGES_MAX + 1].join(",");
        let cases: Vec<(String, MagnetError)> = vec![
            (
                "http://example.com/?xt=urn:btih:x".into(),
                MagnetError::NotMagnet,
            ),
            ("magnet:".into(), MagnetError::NotMagnet),
            ("".into(), MagnetError::NotMagnet),
            ("magnet:?dn=name".into(), MagnetError::MissingExactTopic),
            (
                "magnet:?xt=urn:sha1:ABCDEF".into(),
                MagnetError::UnsupportedTopic,
            ),
            (
                "magnet:?xt=urn:btih:abc".into(),
                MagnetError::BadInfoHash(IdParseError::BadLength(3)),
            ),
            (
                format!("magnet:?xt=urn:btih:{}", "z".repeat(40)),
                MagnetError::BadInfoHash(IdParseError::BadCharacter('z')),
            ),
            (
                format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}", "0".repeat(40)),
                MagnetError::ConflictingInfoHashes,
            ),
            (
                format!("magnet:?xt=urn:btih:{HEX}&dn=100%"),
                MagnetError::BadPercentEncoding("dn"),
            ),
            (
                format!("magnet:?xt=urn:btih:{HEX}&tr=%zz"),
                MagnetError::BadPercentEncoding("tr"),
            ),
            (
                format!("magnet:?xt=urn%3Gbtih:{HEX}"),
                MagnetError::BadPercentEncoding("xt"),
            ),
            (too_long.clone(), MagnetError::TooLong(too_long.len())),
            (
                format!("magnet:?xt=urn:btih:{HEX}{many_trackers}"),
                MagnetError::TooMany {
                    what: "trackers",
                    max: TRACKERS_MAX,
                },
            ),
            (
                format!("magnet:?xt=urn:btih:{HEX}{many_peers}"),
                MagnetError::TooMany {
                    what: "peers",
                    max: PEERS_MAX,
                },
            ),
            (
                format!("magnet:?xt=urn:btih:{HEX}&so={many_ranges}"),
                MagnetError::TooMany {
                    what: "select-only ranges",
                    max: SELECT_ONLY_RANGES_MAX,
                },
            ),
        ];
        for (link, expected) in cases {
            assert_eq!(Magnet::parse(&link), Err(expected), "{}", excerpt(&link));
        }
    }

    #[test]
    fn bad_peers() {
        for bad in [
            "1.2.3.4",
            "1.2.3.4:0",
            "1.2.3.4:65536",
            "1.2.3.4:-1",
            "1.2.3.256:80",
            "999.1.1.1:80",
            "[::1:80",
            "[not-v6]:80",
            "::1:80",
            "host_name:80",
            "-host:80",
            ":80",
            "a..b:80",
        ] {
            let link = format!("magnet:?xt=urn:btih:{HEX}&x.pe={bad}");
            assert_eq!(
                Magnet::parse(&link),
                Err(MagnetError::BadPeer(bad.into())),
                "{bad}"
            );
        }
        let scoped = "[fe80::1%eth0]:80".parse::<PeerAddress>();
        assert_eq!(
            scoped,
            Err(MagnetError::BadPeer("[fe80::1%eth0]:80".into()))
        );
        let long_host = format!("{}.com:80", "a.".repeat(130));
        assert!(matches!(
            long_host.parse::<PeerAddress>(),
            Err(MagnetError::BadPeer(_))
        ));
    }

    #[test]
    fn bad_select_only() {
        for bad in [
            "",
            "1,,2",
            "3-1",
            "a",
            "-1",
            "1-",
            "1-2-3",
            " 1",
            "+1",
            "4294967296",
        ] {
            let link = format!("magnet:?xt=urn:btih:{HEX}&so={bad}");
            assert_eq!(
                Magnet::parse(&link),
                Err(MagnetError::BadSelectOnly(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn writes_a_canonical_link() {
        let mut magnet = Magnet::new(hash());
        magnet.display_name = Some("a b/c".into());
        magnet.trackers = vec!["udp://t:1/announce".into()];
        magnet.peers = vec![PeerAddress::Ip("[::1]:6881".parse().unwrap())];
        magnet.select_only = vec![0..=0, 3..=5];
        assert_eq!(
            magnet.to_uri(),
            format!(
                "magnet:?xt=urn:btih:{HEX}&dn=a%20b%2Fc&tr=udp%3A%2F%2Ft%3A1%2Fannounce\
                 &x.pe=%5B%3A%3A1%5D%3A6881&so=0,3-5"
            )
        );
        assert_eq!(magnet.to_string().parse::<Magnet>(), Ok(magnet));
    }

    fn any_peer() -> impl Strategy<Value = PeerAddress> {
        prop_oneof![
            (any::<[u8; 4]>(), 1u16..).prop_map(|(ip, port)| PeerAddress::Ip(SocketAddr::new(
                IpAddr::V4(ip.into()),
                port
            ))),
            (any::<[u8; 16]>(), 1u16..).prop_map(|(ip, port)| PeerAddress::Ip(SocketAddr::new(
                IpAddr::V6(ip.into()),
                port
            ))),
            ("[a-z0-9]{1,10}(\\.[a-z][a-z0-9-]{0,8}[a-z0-9])?", 1u16..)
                .prop_filter("hostname", |(name, _)| is_hostname(name))
                .prop_map(|(name, port)| PeerAddress::Host { name, port }),
        ]
    }

    fn any_magnet() -> impl Strategy<Value = Magnet> {
        (
            any::<[u8; 20]>(),
            proptest::option::of(any::<[u8; 32]>()),
            proptest::option::of(".{1,20}"),
            proptest::collection::btree_set("[ -~]{1,30}", 0..5),
            proptest::collection::vec(any_peer(), 0..5),
            proptest::collection::vec((0u32..100, 0u32..5), 0..5),
        )
            .prop_map(|(hash, v2, name, trackers, peers, ranges)| {
                let mut unique: Vec<PeerAddress> = Vec::new();
                for peer in peers {
                    if !unique.contains(&peer) {
                        unique.push(peer);
                    }
                }
                Magnet {
                    info_hash: Id(hash),
                    info_hash_v2: v2,
                    display_name: name,
                    trackers: trackers.into_iter().collect(),
                    peers: unique,
                    select_only: ranges.into_iter().map(|(a, n)| a..=a + n).collect(),
                }
            })
    }

    proptest! {
        #[test]
        fn links_round_trip(magnet in any_magnet()) {
            prop_assert_eq!(Magnet::parse(&magnet.to_uri()), Ok(magnet));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "magnet:\\?.{0,200}") {
            let _ = Magnet::parse(&text);
        }
    }
}
