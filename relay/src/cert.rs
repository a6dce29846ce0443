//! The relay's WebTransport certificate: self-signed ECDSA P-256, valid at most 14
//! days, as browsers require of a certificate they trust by its hash
//! (`serverCertificateHashes`), and replaced halfway through its life.
//!
//! The hashes of every certificate still valid are kept, newest first, so a client that
//! fetched them before a rotation still connects.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use wtransport::Identity;

/// The longest validity a browser accepts for a certificate trusted by its hash.
pub const MAX_DAYS: u32 = 14;

pub struct Certs {
    days: u32,
    /// Hex SHA-256 of each valid certificate's DER, with its expiry; newest first.
    valid: Mutex<Vec<(String, SystemTime)>>,
}

impl Certs {
    /// Certificates valid for `days` (1 to [`MAX_DAYS`]).
    pub fn new(days: u32) -> Certs {
        Certs {
            days: days.clamp(1, MAX_DAYS),
            valid: Mutex::new(Vec::new()),
        }
    }

    /// A new identity, whose hash is served from now on.
    pub fn issue(&self) -> Identity {
        let identity = Identity::self_signed_builder()
            .subject_alt_names(["localhost", "127.0.0.1", "::1"])
            .from_now_utc()
            .validity_days(self.days)
            .build()
            .expect("fixed, valid subject names");
        let digest = identity.certificate_chain().as_slice()[0].hash();
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let now = SystemTime::now();
        let mut valid = self.valid.lock().unwrap_or_else(|p| p.into_inner());
        valid.retain(|(_, expiry)| *expiry > now);
        valid.insert(0, (hex, now + self.lifetime()));
        identity
    }

    /// How long a certificate lives.
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.days) * 86_400)
    }

    /// When to replace the current certificate: halfway through its life, so the old
    /// one outlives every session that began under it by days.
    pub fn rotate_after(&self) -> Duration {
        self.lifetime() / 2
    }

    /// The hex hashes of the valid certificates, newest first.
    pub fn hashes(&self) -> Vec<String> {
        let now = SystemTime::now();
        let valid = self.valid.lock().unwrap_or_else(|p| p.into_inner());
        valid.iter().filter(|(_, e)| *e > now).map(|(h, _)| h.clone()).collect()
    }

    /// The hashes as the relay serves them over HTTP.
    pub fn json(&self) -> String {
        let list: Vec<String> = self.hashes().iter().map(|h| format!("\"{h}\"")).collect();
        format!("{{\"algorithm\":\"sha-256\",\"hashes\":[{}]}}", list.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_p256_short_lived_and_listed_newest_first() {
        let certs = Certs::new(30);
        assert_eq!(certs.lifetime(), Duration::from_secs(14 * 86_400), "clamped to 14 days");
        let first = certs.issue();
        let der = first.certificate_chain().as_slice()[0].der().to_vec();
        // id-ecPublicKey (1.2.840.10045.2.1) with the prime256v1 curve (1.2.840.10045.3.1.7).
        let p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        assert!(der.windows(p256.len()).any(|w| w == p256), "not a P-256 key");
        let one = certs.hashes();
        certs.issue();
        let two = certs.hashes();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1], one[0]);
        assert_ne!(two[0], two[1]);
        assert!(certs.json().contains(&two[0]));
    }
}
