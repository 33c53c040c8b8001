//! Write tokens (BEP 5 get_peers / announce_peer).
//!
//! A token is a keyed SHA-1 of the requester's IP and a secret that rotates
//! every few minutes; the current and the previous secret are accepted, so a
//! token is valid for one to two rotation intervals. A keyed cryptographic
//! hash, unlike a CRC, cannot be turned from one IP's token into another's.

use std::net::IpAddr;

use sha1::{Digest, Sha1};

/// Bytes of a token we issue.
pub const TOKEN_LEN: usize = 8;

/// Issues and checks write tokens.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    current: [u8; 20],
    previous: [u8; 20],
}

impl TokenIssuer {
    /// A token issuer whose first secret is `secret`.
    pub fn new(secret: [u8; 20]) -> TokenIssuer {
        TokenIssuer {
            current: secret,
            previous: secret,
        }
    }

    /// Retires the previous secret and starts using `secret`.
    pub fn rotate(&mut self, secret: [u8; 20]) {
        self.previous = self.current;
        self.current = secret;
    }

    /// The token for a requester at `ip`.
    pub fn issue(&self, ip: &IpAddr) -> [u8; TOKEN_LEN] {
        token_for(&self.current, ip)
    }

    /// Whether `token` was issued to `ip` under the current or previous secret.
    pub fn check(&self, ip: &IpAddr, token: &[u8]) -> bool {
        token == token_for(&self.current, ip) || token == token_for(&self.previous, ip)
    }
}

fn token_for(secret: &[u8; 20], ip: &IpAddr) -> [u8; TOKEN_LEN] {
    let mut hasher = Sha1::new();
    hasher.update(secret);
    match ip {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
    hasher.update(secret);
    let digest = hasher.finalize();
    let mut out = [0u8; TOKEN_LEN];
    out.copy_from_slice(&digest[..TOKEN_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_ip_and_survive_one_rotation() {
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let mut issuer = TokenIssuer::new([1; 20]);
        let token = issuer.issue(&a);
        assert!(issuer.check(&a, &token));
        assert!(!issuer.check(&b, &token));
        assert!(!issuer.check(&a, &token[..4]));
        issuer.rotate([2; 20]);
        assert!(issuer.check(&a, &token), "valid for a second interval");
        issuer.rotate([3; 20]);
        assert!(!issuer.check(&a, &token), "expired after two rotations");
    }
}
