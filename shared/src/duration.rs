//! Durations as every setting of both binaries writes them: a number with a
//! unit (`500ms`, `15s`, `10m`, `1h 30m`).
//!
//! A bare number is refused on purpose: `LLM_TIMEOUT=30` could mean seconds or
//! milliseconds, and guessing wrong makes a Job hang or fail in ways that are
//! hard to trace back to the setting.

use std::time::Duration;

/// Parses a duration with an explicit unit, for clap's `value_parser`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(
            "expected a duration with a unit, e.g. 500ms, 15s, 10m; found an empty value".into(),
        );
    }
    if trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "expected a duration with a unit, e.g. {trimmed}s or {trimmed}ms; found a bare number {trimmed:?}"
        ));
    }
    humantime::parse_duration(trimmed).map_err(|e| {
        format!("expected a duration with a unit, e.g. 500ms, 15s, 10m; found {trimmed:?} ({e})")
    })
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(
            parse_duration(" 1h 30m ").unwrap(),
            Duration::from_secs(5400)
        );
    }

    #[test]
    fn refuses_bare_numbers_and_junk() {
        assert!(parse_duration("30").unwrap_err().contains("bare number"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
    }

    #[test]
    fn round_trips() {
        let d = Duration::from_millis(1500);
        assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
    }
}
