//! Room tokens: HMAC-SHA256 of the room under the relay's secret, so a relay opens new
//! rooms without a restart or a list, and one room's token never opens another.
//!
//! A token is base64url (no padding) of the expiry (unix seconds, u64 big-endian; 0 for
//! none) followed by the 32-byte MAC of `"quiver-room\0" || room || "\0" || expiry`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

const CONTEXT: &[u8] = b"quiver-room\0";

/// The relay's secret, as an HMAC key.
pub struct Secret(hmac::Key);

impl Secret {
    pub fn new(bytes: &[u8]) -> Secret {
        Secret(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// A token for `room`, valid until `expiry` (unix seconds; 0 for ever).
    pub fn mint(&self, room: &str, expiry: u64) -> String {
        let mut token = expiry.to_be_bytes().to_vec();
        token.extend_from_slice(hmac::sign(&self.0, &Self::message(room, expiry)).as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Whether `token` opens `room` at `now` (unix seconds). The MAC is compared in
    /// constant time.
    pub fn verify(&self, room: &str, token: &str, now: u64) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        if bytes.len() != 8 + 32 {
            return false;
        }
        let expiry = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        hmac::verify(&self.0, &Self::message(room, expiry), &bytes[8..]).is_ok() && (expiry == 0 || now < expiry)
    }

    fn message(room: &str, expiry: u64) -> Vec<u8> {
        let mut m = CONTEXT.to_vec();
        m.extend_from_slice(room.as_bytes());
        m.push(0);
        m.extend_from_slice(&expiry.to_be_bytes());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_room_only_until_it_expires() {
        let s = Secret::new(b"relay secret");
        let t = s.mint("a", 0);
        assert!(s.verify("a", &t, 1 << 40));
        assert!(!s.verify("b", &t, 0), "room A's token opened room B");
        assert!(!Secret::new(b"other").verify("a", &t, 0), "another relay's secret");
        let timed = s.mint("a", 100);
        assert!(s.verify("a", &timed, 99));
        assert!(!s.verify("a", &timed, 100));
        let mut forged = URL_SAFE_NO_PAD.decode(&timed).unwrap();
        forged[7] = 200; // a later expiry under the old MAC
        assert!(!s.verify("a", &URL_SAFE_NO_PAD.encode(forged), 150));
        for bad in ["", "!!", &t[..t.len() - 2], "AAAA"] {
            assert!(!s.verify("a", bad, 0), "{bad}");
        }
    }
}
