//! Lower-case hex, the one encoding the contract uses for digests (stable
//! ids, cache keys, webhook ids): one helper instead of a `{:02x}` loop in
//! every module that hashes something.

/// `bytes` as lower-case hex, two characters per byte.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// The first `bytes` bytes of SHA-256 of `data`, as `2 * bytes` lower-case
/// hex digits (all 64 when `bytes` is 32 or more): the short digests in
/// derived names and ids (outbox records, receipts of long result names,
/// target keys, `webhook-id`s).
pub fn sha256_prefix(data: &[u8], bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data);
    encode(&digest[..bytes.min(digest.len())])
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_prefix_matches_sha256sum() {
        // `printf 'stdout:' | sha256sum`
        let full = "39aeeccf1d4edd75c55fd5c286f20cebeb347d2aad59913e72267a7780cce9f6";
        assert_eq!(super::sha256_prefix(b"stdout:", 6), &full[..12]);
        assert_eq!(super::sha256_prefix(b"stdout:", 32), full);
        assert_eq!(super::sha256_prefix(b"stdout:", 100), full);
        assert_eq!(super::sha256_prefix(b"stdout:", 0), "");
    }

    #[test]
    fn encodes_lower_case_two_digits_per_byte() {
        assert_eq!(super::encode([0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::encode([]), "");
        let expected: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
        assert_eq!(super::encode((0..=255u8).collect::<Vec<_>>()), expected);
    }
}
