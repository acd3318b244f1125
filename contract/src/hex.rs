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

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_lower_case_two_digits_per_byte() {
        assert_eq!(super::encode([0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::encode([]), "");
        let expected: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
        assert_eq!(super::encode((0..=255u8).collect::<Vec<_>>()), expected);
    }
}
