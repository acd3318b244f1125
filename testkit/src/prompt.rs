//! Reading the assessor's prompt as a judge receives it: the nonce-fenced
//! listing block and the datamarking of its text.

/// The listing block of a user message: (nonce, inner text). Panics if the
/// message has no well-formed block.
pub fn listing_block(user: &str) -> (String, String) {
    let open = regex::Regex::new(r"<<<LISTING-([0-9a-f]{16})>>>").expect("pattern compiles");
    // The real opening marker is the first one; its nonce names the end.
    let caps = open.captures(user).unwrap_or_else(|| {
        panic!("no <<<LISTING-{{16 hex}}>>> marker in the user message:\n{user}")
    });
    let nonce = caps[1].to_string();
    let start = caps.get(0).expect("group 0 always matches").end();
    let end_marker = format!("<<<END-LISTING-{nonce}>>>");
    let end = user[start..]
        .find(&end_marker)
        .map(|i| start + i)
        .unwrap_or_else(|| panic!("no {end_marker} in the user message:\n{user}"));
    (nonce, user[start..end].to_string())
}

/// The listing text as the assessor must datamark it: whitespace runs → `ˆ`.
pub fn datamark(text: &str) -> String {
    let ws = regex::Regex::new(r"\s+").expect("pattern compiles");
    ws.replace_all(text, "\u{02C6}").into_owned()
}
