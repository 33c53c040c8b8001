//! A bounded bencode scanner that stands in front of `serde_bencode`.
//!
//! `serde_bencode` trusts its input: it recurses without a depth limit,
//! accepts non-canonical integers such as `i-0e` or `i03e`, and ignores
//! bytes after the first value. Every datagram and every peer-wire payload is
//! therefore scanned here first, iteratively and without allocating, and only
//! input that passes is handed to serde. The scanner also reports the exact
//! byte span of a top-level dictionary value (the `info` dictionary of a
//! torrent is hashed over its bytes exactly as received).

use std::ops::Range;

/// Limits applied while scanning one bencoded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BencodeLimits {
    /// Deepest nesting of lists and dictionaries accepted (the top level is depth 1).
    pub depth_max: usize,
    /// Longest byte string accepted.
    pub string_length_max: usize,
    /// Most items (list elements plus dictionary keys and values) in the whole value.
    pub items_max: usize,
}

impl BencodeLimits {
    /// Limits for one KRPC datagram, as libtorrent applies them (depth 10).
    pub const KRPC: BencodeLimits = BencodeLimits {
        depth_max: 10,
        string_length_max: 2048,
        items_max: 1024,
    };
}

/// Why a byte sequence is not acceptable bencode. Every variant is the sender's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    /// The input ended in the middle of a value.
    #[error("bencode truncated at byte {0}")]
    Truncated(usize),
    /// A byte that cannot start or continue a value at this position.
    #[error("unexpected byte {byte:#04x} at {at}")]
    UnexpectedByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the input.
        at: usize,
    },
    /// Lists and dictionaries nested deeper than [`BencodeLimits::depth_max`].
    #[error("bencode nested deeper than {0}")]
    TooDeep(usize),
    /// A byte string longer than allowed, or longer than the input.
    #[error("byte string of length {length} at {at} exceeds the limit or the input")]
    StringTooLong {
        /// The declared length.
        length: u64,
        /// Offset of the length prefix.
        at: usize,
    },
    /// More list or dictionary items than [`BencodeLimits::items_max`].
    #[error("more than {0} items")]
    TooManyItems(usize),
    /// An integer with leading zeros, `-0`, an empty body, or outside i64.
    #[error("non-canonical or out-of-range integer at {0}")]
    BadInteger(usize),
    /// A length prefix with leading zeros or not a number.
    #[error("bad string length prefix at {0}")]
    BadLength(usize),
    /// A dictionary key that is not a byte string.
    #[error("dictionary key at {0} is not a byte string")]
    KeyNotString(usize),
    /// Bytes left over after the top-level value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Checks that `input` is exactly one well-formed bencoded value within `limits`.
pub fn validate(input: &[u8], limits: &BencodeLimits) -> Result<(), BencodeError> {
    let end = scan_value(input, 0, limits)?;
    if end != input.len() {
        return Err(BencodeError::TrailingBytes(input.len() - end));
    }
    Ok(())
}

/// Validates `input` (a dictionary) and returns the byte span of the value
/// stored under `key` at the top level, if there is one.
pub fn top_level_value_span(
    input: &[u8],
    key: &[u8],
    limits: &BencodeLimits,
) -> Result<Option<Range<usize>>, BencodeError> {
    validate(input, limits)?;
    if input.first() != Some(&b'd') {
        return Ok(None);
    }
    let mut pos = 1;
    while input.get(pos) != Some(&b'e') {
        let (key_range, after_key) = read_string(input, pos, limits)?;
        let value_end = scan_value(input, after_key, limits)?;
        if &input[key_range] == key {
            return Ok(Some(after_key..value_end));
        }
        pos = value_end;
    }
    Ok(None)
}

/// Scans one value starting at `start` and returns the offset just after it.
///
/// Iterative: an explicit stack of open containers replaces recursion, so
/// hostile nesting costs one byte of stack per level and is cut at the limit.
fn scan_value(input: &[u8], start: usize, limits: &BencodeLimits) -> Result<usize, BencodeError> {
    // One entry per open container: true for a dictionary expecting a key next.
    let mut open: Vec<Container> = Vec::new();
    let mut pos = start;
    let mut items = 0usize;
    loop {
        // Inside a dictionary, a key (or the end) must come next.
        if let Some(Container::DictKey) = open.last() {
            match input.get(pos) {
                None => return Err(BencodeError::Truncated(pos)),
                Some(b'e') => {
                    open.pop();
                    pos += 1;
                    if !after_value(&mut open) {
                        return Ok(pos);
                    }
                    continue;
                }
                Some(b'0'..=b'9') => {
                    let (_, next) = read_string(input, pos, limits)?;
                    pos = next;
                    count_item(&mut items, limits)?;
                    if let Some(top) = open.last_mut() {
                        *top = Container::DictValue;
                    }
                }
                Some(_) => return Err(BencodeError::KeyNotString(pos)),
            }
        }
        let byte = *input.get(pos).ok_or(BencodeError::Truncated(pos))?;
        match byte {
            b'i' => {
                pos = read_integer(input, pos)?.1;
            }
            b'0'..=b'9' => {
                pos = read_string(input, pos, limits)?.1;
            }
            b'l' | b'd' => {
                if open.len() + 1 > limits.depth_max {
                    return Err(BencodeError::TooDeep(limits.depth_max));
                }
                open.push(if byte == b'l' {
                    Container::List
                } else {
                    Container::DictKey
                });
                pos += 1;
                continue;
            }
            b'e' if matches!(open.last(), Some(Container::List)) => {
                open.pop();
                pos += 1;
            }
            _ => return Err(BencodeError::UnexpectedByte { byte, at: pos }),
        }
        if !open.is_empty() {
            count_item(&mut items, limits)?;
        }
        if !after_value(&mut open) {
            return Ok(pos);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Container {
    List,
    DictKey,
    DictValue,
}

/// Records that a complete value was read; returns false when it was the top-level one.
fn after_value(open: &mut [Container]) -> bool {
    match open.last_mut() {
        None => false,
        Some(top) => {
            if let Container::DictValue = top {
                *top = Container::DictKey;
            }
            true
        }
    }
}

fn count_item(items: &mut usize, limits: &BencodeLimits) -> Result<(), BencodeError> {
    *items += 1;
    if *items > limits.items_max {
        return Err(BencodeError::TooManyItems(limits.items_max));
    }
    Ok(())
}

/// Reads `i<digits>e` at `start`; returns the value and the offset after it.
pub(crate) fn read_integer(input: &[u8], start: usize) -> Result<(i64, usize), BencodeError> {
    let body_start = start + 1;
    let end = input[body_start.min(input.len())..]
        .iter()
        .position(|&b| b == b'e')
        .map(|i| body_start + i)
        .ok_or(BencodeError::Truncated(input.len()))?;
    let body = &input[body_start..end];
    let digits = body.strip_prefix(b"-").unwrap_or(body);
    let canonical = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && !(digits[0] == b'0' && (digits.len() > 1 || body.len() != digits.len()));
    if !canonical {
        return Err(BencodeError::BadInteger(start));
    }
    let value = std::str::from_utf8(body)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(BencodeError::BadInteger(start))?;
    Ok((value, end + 1))
}

/// Reads `<length>:<bytes>` at `start`; returns the span of the bytes and the offset after them.
fn read_string(
    input: &[u8],
    start: usize,
    limits: &BencodeLimits,
) -> Result<(Range<usize>, usize), BencodeError> {
    let colon = input[start..]
        .iter()
        .take(21)
        .position(|&b| b == b':')
        .map(|i| start + i)
        .ok_or_else(|| {
            if input.len() - start < 21 {
                BencodeError::Truncated(input.len())
            } else {
                BencodeError::BadLength(start)
            }
        })?;
    let digits = &input[start..colon];
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && digits.len() > 1)
    {
        return Err(BencodeError::BadLength(start));
    }
    let length: u64 = digits
        .iter()
        .try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(BencodeError::BadLength(start))?;
    let available = (input.len() - colon - 1) as u64;
    if length > limits.string_length_max as u64 || length > available {
        return Err(BencodeError::StringTooLong { length, at: start });
    }
    let begin = colon + 1;
    let end = begin + length as usize;
    Ok((begin..end, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BencodeLimits = BencodeLimits::KRPC;

    #[test]
    fn accepts_well_formed_values() {
        for ok in [
            &b"i0e"[..],
            b"i-42e",
            b"4:spam",
            b"0:",
            b"le",
            b"de",
            b"l4:spami42ee",
            b"d3:bar4:spam3:fooi42ee",
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        ] {
            assert_eq!(
                validate(ok, &LIMITS),
                Ok(()),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
    }

    #[test]
    fn rejects_malformed_values() {
        let cases: &[(&[u8], BencodeError)] = &[
            (b"i-0e", BencodeError::BadInteger(0)),
            (b"i03e", BencodeError::BadInteger(0)),
            (b"ie", BencodeError::BadInteger(0)),
            (b"i99999999999999999999e", BencodeError::BadInteger(0)),
            (b"i1", BencodeError::Truncated(2)),
            (b"03:abc", BencodeError::BadLength(0)),
            (b"5:abc", BencodeError::StringTooLong { length: 5, at: 0 }),
            (b"l", BencodeError::Truncated(1)),
            (b"di1ei2ee", BencodeError::KeyNotString(1)),
            (b"i1ei2e", BencodeError::TrailingBytes(3)),
            (b"e", BencodeError::UnexpectedByte { byte: b'e', at: 0 }),
            (b"d1:ae", BencodeError::UnexpectedByte { byte: b'e', at: 4 }),
        ];
        for (input, expected) in cases {
            assert_eq!(
                validate(input, &LIMITS),
                Err(*expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn huge_length_prefix_is_rejected_without_allocating() {
        let input = b"99999999999999999999:x";
        assert!(matches!(
            validate(input, &LIMITS),
            Err(BencodeError::StringTooLong { .. } | BencodeError::BadLength(_))
        ));
        let input = b"18446744073709551616:x";
        assert_eq!(validate(input, &LIMITS), Err(BencodeError::BadLength(0)));
    }

    #[test]
    fn nesting_is_cut_at_the_depth_limit() {
        let deep_ok = format!("{}{}", "l".repeat(10), "e".repeat(10));
        assert_eq!(validate(deep_ok.as_bytes(), &LIMITS), Ok(()));
        let too_deep = format!("{}{}", "l".repeat(11), "e".repeat(11));
        assert_eq!(
            validate(too_deep.as_bytes(), &LIMITS),
            Err(BencodeError::TooDeep(10))
        );
        let hostile = "l".repeat(1_000_000);
        assert_eq!(
            validate(hostile.as_bytes(), &LIMITS),
            Err(BencodeError::TooDeep(10))
        );
    }

    #[test]
    fn item_count_is_bounded() {
        let many = format!("l{}e", "i1e".repeat(LIMITS.items_max + 1));
        assert_eq!(
            validate(many.as_bytes(), &LIMITS),
            Err(BencodeError::TooManyItems(LIMITS.items_max))
        );
    }

    #[test]
    fn finds_the_exact_span_of_a_top_level_value() {
        let input = b"d8:announce3:url4:infod6:lengthi1e4:name1:xe5:otheri1ee";
        let span = top_level_value_span(input, b"info", &LIMITS)
            .unwrap()
            .unwrap();
        assert_eq!(&input[span], b"d6:lengthi1e4:name1:xe");
        assert_eq!(top_level_value_span(input, b"missing", &LIMITS), Ok(None));
    }
}
