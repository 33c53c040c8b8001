//! 160-bit identifiers: DHT node IDs and BitTorrent v1 info-hashes share one
//! type, because the DHT measures the distance between them with XOR (BEP 5).

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// Length in bytes of a node ID or info-hash.
pub const ID_LEN: usize = 20;

/// A 160-bit identifier in the DHT keyspace.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; ID_LEN]);

/// The ID a DHT node chooses for itself.
pub type NodeId = Id;
/// The SHA-1 of a torrent's `info` dictionary: the key peers are stored under.
pub type InfoHash = Id;

/// Why a string is not a 160-bit ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// Neither 40 hex digits nor 32 base32 characters.
    #[error("expected 40 hex digits or 32 base32 characters, got {0} characters")]
    BadLength(usize),
    /// A character outside the alphabet.
    #[error("invalid character {0:?}")]
    BadCharacter(char),
}

impl Id {
    /// Builds an ID from a byte slice of exactly [`ID_LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Id> {
        <[u8; ID_LEN]>::try_from(bytes).ok().map(Id)
    }

    /// A uniformly random ID.
    pub fn random(rng: &mut impl Rng) -> Id {
        let mut bytes = [0u8; ID_LEN];
        rng.fill_bytes(&mut bytes);
        Id(bytes)
    }

    /// A random ID sharing exactly the first `prefix_len` bits with `self`
    /// and differing at bit `prefix_len` (when `prefix_len < 160`): a target
    /// inside the routing-table bucket for that prefix length.
    pub fn random_with_prefix(&self, prefix_len: usize, rng: &mut impl Rng) -> Id {
        let mut out = Id::random(rng);
        for bit in 0..prefix_len.min(160) {
            out.set_bit(bit, self.bit(bit));
        }
        if prefix_len < 160 {
            out.set_bit(prefix_len, !self.bit(prefix_len));
        }
        out
    }

    /// The XOR distance between two IDs, itself an ID so it orders as a big-endian number.
    pub fn distance(&self, other: &Id) -> Id {
        let mut out = [0u8; ID_LEN];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Id(out)
    }

    /// Number of leading bits `self` and `other` have in common (160 when equal).
    pub fn common_prefix_len(&self, other: &Id) -> usize {
        for i in 0..ID_LEN {
            let x = self.0[i] ^ other.0[i];
            if x != 0 {
                return i * 8 + x.leading_zeros() as usize;
            }
        }
        160
    }

    /// Bit `index` counted from the most significant bit of byte 0.
    pub fn bit(&self, index: usize) -> bool {
        self.0[index / 8] & (0x80 >> (index % 8)) != 0
    }

    fn set_bit(&mut self, index: usize, value: bool) {
        let mask = 0x80 >> (index % 8);
        if value {
            self.0[index / 8] |= mask;
        } else {
            self.0[index / 8] &= !mask;
        }
    }

    /// Lower-case hexadecimal, 40 characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 40 hex digits or 32 RFC 4648 base32 characters (the two
    /// forms of `xt=urn:btih:` in magnet links).
    pub fn parse(text: &str) -> Result<Id, IdParseError> {
        match text.len() {
            40 => parse_hex(text),
            32 => parse_base32(text),
            other => Err(IdParseError::BadLength(other)),
        }
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.to_hex())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Id {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Id, IdParseError> {
        Id::parse(s)
    }
}

fn parse_hex(text: &str) -> Result<Id, IdParseError> {
    let mut out = [0u8; ID_LEN];
    let digit = |b: u8| {
        (b as char).to_digit(16).ok_or_else(|| {
            IdParseError::BadCharacter(
                text[..]
                    .chars()
                    .find(|c| !c.is_ascii_hexdigit())
                    .unwrap_or(b as char),
            )
        })
    };
    for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(Id(out))
}

fn parse_base32(text: &str) -> Result<Id, IdParseError> {
    let mut out = [0u8; ID_LEN];
    let mut buffer: u64 = 0;
    let mut bits = 0;
    let mut index = 0;
    for c in text.chars() {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return Err(IdParseError::BadCharacter(c)),
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[index] = (buffer >> bits) as u8;
            buffer &= (1 << bits) - 1;
            index += 1;
        }
    }
    Ok(Id(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn hex_and_base32_parse_to_the_same_id() {
        let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        let base32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";
        assert_eq!(Id::parse(hex).unwrap(), Id::parse(base32).unwrap());
        assert_eq!(Id::parse(hex).unwrap().to_hex(), hex);
        assert_eq!(Id::parse("abc"), Err(IdParseError::BadLength(3)));
        assert!(matches!(
            Id::parse(&"g".repeat(40)),
            Err(IdParseError::BadCharacter('g'))
        ));
        assert!(Id::parse("é".repeat(20).as_str()).is_err());
    }

    #[test]
    fn distance_and_prefix_agree() {
        let a = Id([0xff; 20]);
        let mut b = a;
        b.0[2] = 0xfe;
        assert_eq!(a.common_prefix_len(&b), 23);
        assert_eq!(a.distance(&b).common_prefix_len(&Id::default()), 23);
        assert_eq!(a.common_prefix_len(&a), 160);
    }

    #[test]
    fn random_with_prefix_lands_in_the_bucket() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let own = Id::random(&mut rng);
        for prefix in [0, 1, 7, 8, 100, 159] {
            let target = own.random_with_prefix(prefix, &mut rng);
            assert_eq!(own.common_prefix_len(&target), prefix);
        }
    }
}
