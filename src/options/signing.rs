//! Signed URLs (imgproxy's scheme, adapted): `/s/{signature}/{rest}` where
//! `signature = base64url-nopad(HMAC-SHA256(key, rest))` and `rest` is the path after the signature
//! segment, leading `/` included, byte for byte as the client sent it (percent-encoding and all).
//!
//! Several keys may be configured for rotation: the first signs, any one verifying is enough. Comparison
//! is constant-time (`hmac`'s `verify_slice`), and a truncated signature never verifies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shortest key accepted, in bytes: an HMAC key shorter than the hash output weakens it.
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Clone, Default)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        write!(f, "Signer({} keys)", self.keys.len())
    }
}

impl Signer {
    /// Keys as hex strings (`openssl rand -hex 32`).
    pub fn from_hex(keys: &[String]) -> Result<Signer, String> {
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, hex)| {
                let bytes = decode_hex(hex)
                    .ok_or_else(|| format!("signing.keys[{i}] is not an even number of hex digits"))?;
                if bytes.len() < MIN_KEY_BYTES {
                    return Err(format!(
                        "signing.keys[{i}] is {} bytes; use at least {MIN_KEY_BYTES} (64 hex digits)",
                        bytes.len()
                    ));
                }
                Ok(bytes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Signer { keys })
    }

    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The signature of `rest` with the first key; `None` without keys.
    pub fn sign(&self, rest: &str) -> Option<String> {
        let key = self.keys.first()?;
        let mut mac = HmacSha256::new_from_slice(key).ok()?;
        mac.update(rest.as_bytes());
        Some(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Whether `signature` is `rest`'s under any configured key.
    pub fn verify(&self, signature: &str, rest: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        self.keys.iter().any(|key| {
            HmacSha256::new_from_slice(key).is_ok_and(|mut mac| {
                mac.update(rest.as_bytes());
                mac.verify_slice(&given).is_ok()
            })
        })
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's test vector: key = 32 bytes 0x00..0x1f.
    pub(crate) const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn signer(keys: &[&str]) -> Signer {
        Signer::from_hex(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn the_documented_test_vector() {
        let s = signer(&[KEY]);
        let sig = s.sign("/w/300/images/path.jpg").unwrap();
        assert_eq!(sig, "YecLzr7sOsdjr5oKcf5PV7TQOwL10VbJsbTjkf4IIQw");
        assert!(s.verify(&sig, "/w/300/images/path.jpg"));
    }

    #[test]
    fn any_configured_key_verifies_and_the_first_signs() {
        let old = "ff".repeat(32);
        let rotated = signer(&[KEY, &old]);
        let by_old = signer(&[&old]).sign("/w/1/a.jpg").unwrap();
        assert!(rotated.verify(&by_old, "/w/1/a.jpg"));
        assert_eq!(
            rotated.sign("/w/1/a.jpg"),
            signer(&[KEY]).sign("/w/1/a.jpg")
        );
    }

    #[test]
    fn tampering_truncation_and_re_encoding_fail() {
        let s = signer(&[KEY]);
        let sig = s.sign("/w/300/a%20b.jpg").unwrap();
        assert!(!s.verify(&sig, "/w/301/a%20b.jpg"));
        assert!(!s.verify(&sig, "/w/300/a%2520b.jpg"));
        assert!(!s.verify(&sig[..sig.len() - 1], "/w/300/a%20b.jpg"));
        assert!(!s.verify(&sig[..20], "/w/300/a%20b.jpg"));
        assert!(!s.verify("", "/w/300/a%20b.jpg"));
        assert!(!s.verify(&format!("{sig}="), "/w/300/a%20b.jpg"));
        assert!(!s.verify("not base64!", "/w/300/a%20b.jpg"));
        assert!(!Signer::default().verify(&sig, "/w/300/a%20b.jpg"));
    }

    #[test]
    fn short_or_malformed_keys_are_refused() {
        assert!(Signer::from_hex(&["abcd".into()]).is_err());
        assert!(Signer::from_hex(&["zz".repeat(32)]).is_err());
        assert!(Signer::from_hex(&["abc".into()]).is_err());
        assert!(format!("{:?}", signer(&[KEY])).contains("1 keys"));
    }
}
