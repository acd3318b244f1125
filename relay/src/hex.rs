//! Short lowercase hex digests: the relay's ids and file-name keys (target
//! keys, `webhook-id`s, ids derived for results without one) are all a
//! prefix of a SHA-256 digest spelled in hex, so they are spelled here once.

use sha2::{Digest, Sha256};

/// The first `bytes` bytes of SHA-256 of `data`, as `2 * bytes` lowercase hex
/// digits (all 64 when `bytes` is 32 or more).
pub(crate) fn sha256_prefix(data: &[u8], bytes: usize) -> String {
    let digest = Sha256::digest(data);
    shortlist_contract::hex::encode(&digest[..bytes.min(digest.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha256sum() {
        // `printf 'stdout:' | sha256sum`
        let full = "39aeeccf1d4edd75c55fd5c286f20cebeb347d2aad59913e72267a7780cce9f6";
        assert_eq!(sha256_prefix(b"stdout:", 6), &full[..12]);
        assert_eq!(sha256_prefix(b"stdout:", 32), full);
        assert_eq!(sha256_prefix(b"stdout:", 100), full);
        assert_eq!(sha256_prefix(b"stdout:", 0), "");
    }
}
