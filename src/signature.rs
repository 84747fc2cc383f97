//! HMAC-SHA256 signatures of request bodies, as hex: the ones Plane puts on its webhooks
//! (checked by `serve`) and the ones plane-orch puts on its own (notification webhooks).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The lowercase hex HMAC-SHA256 of `body` under `secret`.
#[must_use]
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` (hex) is the HMAC-SHA256 of `body` under `secret`; constant-time.
#[must_use]
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_rfc_4231_hmac_sha256_and_verify() {
        // RFC 4231, test case 2.
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", &sig));
        assert!(!verify(b"Jefe", b"x", "not hex"));
    }
}
