//! Byte sizes as settings write them: `10MiB`, `512KiB`, `2MB` or a bare
//! number of bytes. Unlike durations a bare number is unambiguous (bytes).

/// Parses a byte size for clap's `value_parser`.
pub fn parse_size(value: &str) -> Result<u64, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(
            "expected a size such as 10MiB, 512KiB or 1048576; found an empty value".into(),
        );
    }
    trimmed
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| {
            format!("expected a size such as 10MiB, 512KiB or 1048576; found {trimmed:?} ({e})")
        })
}

/// Formats a size the way [`parse_size`] reads it back (binary units).
pub fn format_size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units_and_bare_bytes() {
        assert_eq!(parse_size("10MiB").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_size("1048576").unwrap(), 1_048_576);
        assert!(parse_size("ten megs").unwrap_err().contains("\"ten megs\""));
        assert!(parse_size("").is_err());
    }

    #[test]
    fn formats_in_binary_units() {
        assert_eq!(format_size(10 * 1024 * 1024), "10.0 MiB");
    }
}
