//! What connectors share to verify webhook deliveries: HMAC-SHA256 signatures compared in
//! constant time (a shared token is compared by `Secret::matches`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Whether `signature_hex` (the hex digest a vendor sends, without its `sha256=` prefix) is the
/// HMAC-SHA256 of `body` under `secret`. The digests are compared in constant time.
pub fn hmac_sha256_matches(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Some(expected) = unhex(signature_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The HMAC-SHA256 of `body` under `secret`, as lower-case hex (what a vendor would send).
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes a key of any length; this cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_matches_only_its_body_and_secret() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let sig = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(hmac_sha256_matches(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            sig
        ));
        assert_eq!(
            hmac_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!"),
            sig
        );
        assert!(!hmac_sha256_matches(
            b"another secret",
            b"Hello, World!",
            sig
        ));
        assert!(!hmac_sha256_matches(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            sig
        ));
        for bad in ["", "zz", "757107", &sig[1..]] {
            assert!(!hmac_sha256_matches(
                b"It's a Secret to Everybody",
                b"Hello, World!",
                bad
            ));
        }
    }
}
