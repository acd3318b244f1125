//! What a result says about its listing, for a card or a table row (eval's
//! disagreements, the shortlist): id, price, place, link, first photo,
//! score, facts and reasons. Listings are
//! hostile input: only `http(s)` links and `http(s)` or `data:image/`
//! photos are kept (a `javascript:` URL must never become a link or an
//! image source), and nothing is fetched.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::result_files::ResultFile;

/// One fact as shown: `name = value (source)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Fact {
    pub(crate) name: String,
    pub(crate) value: Value,
    pub(crate) source: String,
    pub(crate) evidence: Option<String>,
    pub(crate) probability: Option<f64>,
}

impl Fact {
    /// The value as text: strings without their quotes.
    pub(crate) fn value_text(&self) -> String {
        text_of(&self.value).unwrap_or_else(|| self.value.to_string())
    }
}

/// A result's listing, ready to show.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Listing {
    pub(crate) id: String,
    pub(crate) file: PathBuf,
    pub(crate) verdict: Option<&'static str>,
    pub(crate) decided_by: Option<String>,
    pub(crate) score: Option<f64>,
    pub(crate) score_source: Option<String>,
    pub(crate) price: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) summary: Option<String>,
    /// `metadata.url` when it is an `http(s)` URL.
    pub(crate) url: Option<String>,
    /// The first photo that is an `http(s)` URL or a `data:image/` URI.
    pub(crate) photo: Option<String>,
    pub(crate) facts: Vec<Fact>,
    pub(crate) reasons: Vec<String>,
}

impl Listing {
    pub(crate) fn from_result(file: &ResultFile) -> Listing {
        let result = &file.result;
        let profile = result.profile.as_ref();
        let metadata = profile.and_then(|p| p.get("metadata"));
        let meta_text = |key: &str| metadata.and_then(|m| m.get(key)).and_then(text_of);
        let images = profile
            .and_then(|p| p.get("images"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(
                ["image", "photo", "thumbnail"]
                    .into_iter()
                    .filter_map(|key| metadata.and_then(|m| m.get(key))),
            );
        let photo = images.filter_map(Value::as_str).find_map(safe_image);
        Listing {
            id: file.id(),
            file: file.path.clone(),
            verdict: result.verdict.map(|v| v.as_str()),
            decided_by: result.decided_by.as_ref().map(|d| d.as_str().to_string()),
            score: result.score,
            score_source: result.score_source.as_ref().and_then(name_of),
            price: meta_text("price"),
            location: meta_text("location"),
            summary: meta_text("summary"),
            url: meta_text("url").as_deref().and_then(safe_link),
            photo,
            facts: result
                .facts
                .iter()
                .flatten()
                .map(|f| Fact {
                    name: f.name.clone(),
                    value: f.value.clone(),
                    source: name_of(&f.source).unwrap_or_default(),
                    evidence: f.evidence.clone(),
                    probability: f.probability,
                })
                .collect(),
            reasons: result.reasons.clone().unwrap_or_default(),
        }
    }

    pub(crate) fn first_reason(&self) -> Option<&str> {
        self.reasons.first().map(String::as_str)
    }
}

/// A score or threshold for people: at least two decimals, at most three
/// (`0.60`, `0.857`).
pub(crate) fn score_text(value: f64) -> String {
    let mut text = format!("{value:.3}");
    if text.ends_with('0') {
        text.pop();
    }
    text
}

/// A share as a percentage with one decimal; `–` when undefined.
pub(crate) fn percent(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}

/// A string as is, a number printed; anything else is not text.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The wire name of a contract enum (`token_probability`, `pattern`).
fn name_of<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => Some(name),
        _ => None,
    }
}

/// `url` when it parses as an absolute `http(s)` URL, in its normalised
/// form (spaces and quotes percent-encoded). Everything else, `javascript:`
/// and `data:` included, is no link.
pub(crate) fn safe_link(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https")
        .then(|| parsed.host().is_some())
        .filter(|has_host| *has_host)
        .map(|_| parsed.to_string())
}

/// An image source a page may show without fetching anything itself: an
/// `http(s)` URL (the browser loads it, as the listing site would), or a
/// `data:image/...` URI. An `<img>` runs no script, even an SVG's.
pub(crate) fn safe_image(source: &str) -> Option<String> {
    let source = source.trim();
    let is_data_image = source
        .get(..11)
        .is_some_and(|head| head.eq_ignore_ascii_case("data:image/"))
        && !source.contains(['"', '\'', '<', '>', '\n', '\r', ' ']);
    if is_data_image {
        return Some(source.to_string());
    }
    safe_link(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_links_and_data_images_survive() {
        assert_eq!(
            safe_link("https://x.example/a b").as_deref(),
            Some("https://x.example/a%20b")
        );
        for bad in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>",
            "//x.example/a",
            "file:///etc/passwd",
            "https://",
        ] {
            assert_eq!(safe_link(bad), None, "{bad:?}");
            assert_eq!(safe_image(bad), None, "{bad:?}");
        }
        assert!(safe_image("data:image/png;base64,iVBORw0K").is_some());
        assert!(safe_image("data:image/png;base64,x\"onerror=alert(1)").is_none());
    }
}
