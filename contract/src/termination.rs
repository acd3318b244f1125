//! The termination message: the short summary of a result (id, status,
//! verdict, score, what decided, the first reasons, the error) that an
//! assessor writes to its container's `terminationMessagePath`, so whoever
//! launched the Job (the runner, `kubectl get pod -o json`) reads the
//! verdict from the pod's status without a volume or the logs.
//!
//! The kubelet keeps at most [`MAX_BYTES`] of it. The reader is lenient on
//! purpose: a custom assessor may write fewer fields, or a plain-text
//! message; [`TerminationSummary::parse`] says `None` for anything that is
//! not this schema, and the caller shows the text as it is.

use serde::{Deserialize, Serialize};

/// The value of the summary's `schema` field.
pub const SCHEMA: &str = "shortlist.termination/v1";

/// What the kubelet keeps of a termination message, in bytes.
pub const MAX_BYTES: usize = 4096;

/// A result's summary as written to the termination message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TerminationSummary {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The profile's id (`metadata.id`, or its content hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `ok` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `accept` or `reject`, when the assessment completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_source: Option<String>,
    /// The stage that decided (`rules`, `facts`, `llm`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The first reasons (at most three, each cut to 200 characters).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The error of an error result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TerminationError>,
    /// Set when even the reasons and id did not fit in [`MAX_BYTES`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// An error result's kind and message, as summarised.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TerminationError {
    /// The stable `error.kind` (docs/contract.md).
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

impl TerminationSummary {
    /// The summary in `message`, when it is one: a JSON object whose
    /// `schema` is [`SCHEMA`]. Anything else (a custom assessor's own
    /// text, the log tail `FallbackToLogsOnError` puts there) is `None`.
    pub fn parse(message: &str) -> Option<TerminationSummary> {
        let summary: TerminationSummary = serde_json::from_str(message.trim()).ok()?;
        (summary.schema == SCHEMA).then_some(summary)
    }

    /// The first reason, or the error's message for an error result.
    pub fn first_reason(&self) -> Option<&str> {
        self.reasons
            .first()
            .map(String::as_str)
            .or_else(|| self.error.as_ref().map(|e| e.message.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_is_read_and_anything_else_is_not() {
        let text = r#"{"schema":"shortlist.termination/v1","id":"s01","status":"ok","verdict":"accept","score":0.9,"score_source":null,"decided_by":"facts","reasons":["two bedrooms"],"error":null}"#;
        let summary = TerminationSummary::parse(text).expect("a summary");
        assert_eq!(summary.verdict.as_deref(), Some("accept"));
        assert_eq!(summary.first_reason(), Some("two bedrooms"));
        assert!(TerminationSummary::parse("panicked at main.rs").is_none());
        assert!(TerminationSummary::parse(r#"{"schema":"other/v1"}"#).is_none());
    }

    #[test]
    fn an_error_summary_gives_its_message_as_the_reason() {
        let text = r#"{"schema":"shortlist.termination/v1","status":"error","reasons":[],"error":{"kind":"profile_invalid","message":"field \"text\" is required"}}"#;
        let summary = TerminationSummary::parse(text).unwrap();
        assert_eq!(summary.first_reason(), Some("field \"text\" is required"));
    }
}
