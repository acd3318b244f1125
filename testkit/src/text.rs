//! Text helpers for assertion messages and log checks.

use serde_json::Value;

/// The first `max` bytes of `s` and how many more there were.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

/// The last `max` bytes (logs: the end is where the story is).
pub fn clip_tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("({} bytes before) …{}", start, &s[start..])
}

/// `haystack` contains `needle` raw or JSON-string-escaped (JSON logs escape
/// quotes).
pub fn mentions(haystack: &str, needle: &str) -> bool {
    if haystack.contains(needle) {
        return true;
    }
    let escaped = Value::String(needle.to_string()).to_string();
    haystack.contains(&escaped[1..escaped.len() - 1])
}

/// Parses `text` as exactly one JSON document (whitespace around allowed).
pub fn single_json_document(text: &str) -> Result<Value, String> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let first = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(format!("not JSON: {e}")),
        None => return Err("empty".into()),
    };
    match stream.next() {
        None => Ok(first),
        Some(Ok(_)) => Err("more than one JSON document".into()),
        Some(Err(e)) => Err(format!("trailing garbage after the JSON document: {e}")),
    }
}

/// Whether `value` holds the string `s` anywhere (any depth).
pub fn json_has_string(value: &Value, s: &str) -> bool {
    match value {
        Value::String(v) => v == s,
        Value::Array(items) => items.iter().any(|v| json_has_string(v, s)),
        Value::Object(map) => map.values().any(|v| json_has_string(v, s)),
        _ => false,
    }
}
