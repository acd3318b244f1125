//! Result v1: what an assessor writes and the relay reads.
//!
//! The relay's minimum is `{"verdict": "accept" | "reject"}`; every other
//! field is optional so that a one-line shell script can be a conforming
//! custom assessor. Our own assessor always fills every field.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ErrorKind;

/// The value of the `schema` field of every result this crate writes.
pub const RESULT_SCHEMA_ID: &str = "shortlist.result/v1";

/// The largest result file readers take (the relay, eval, a batch's
/// resume): a result embeds its profile (at most
/// [`crate::profile::MAX_PROFILE_BYTES`]) and a little more, so twice that.
pub const MAX_RESULT_BYTES: u64 = 2 * crate::profile::MAX_PROFILE_BYTES;

/// The judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Reject,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
        }
    }
}

/// Whether the assessment completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Error,
}

/// Which stage made the decision.
///
/// The stages this project's assessor has are variants; a custom assessor
/// may name stages of its own, kept as [`DecidedBy::Other`] and written back
/// unchanged, so the contract stays lenient (on the wire any string).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecidedBy {
    /// The deterministic rules stage (price bounds, keywords, location).
    Rules,
    /// A language model's structured reply.
    Llm,
    /// A language model's plain-text reply matched against a regex.
    Regex,
    /// An external command.
    Command,
    /// The `fixed` backend (always accept or always reject).
    Fixed,
    /// Rules over the facts stage's typed facts (bedrooms, outdoor space, ...).
    Facts,
    /// A stage this crate does not know (a custom assessor's own).
    Other(String),
}

impl DecidedBy {
    /// Every stage this crate knows, in documentation order.
    pub const KNOWN: &'static [DecidedBy] = &[
        DecidedBy::Rules,
        DecidedBy::Llm,
        DecidedBy::Regex,
        DecidedBy::Command,
        DecidedBy::Fixed,
        DecidedBy::Facts,
    ];

    /// The name as written in results (`rules`, `llm`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            DecidedBy::Rules => "rules",
            DecidedBy::Llm => "llm",
            DecidedBy::Regex => "regex",
            DecidedBy::Command => "command",
            DecidedBy::Fixed => "fixed",
            DecidedBy::Facts => "facts",
            DecidedBy::Other(text) => text,
        }
    }
}

impl From<String> for DecidedBy {
    fn from(text: String) -> Self {
        DecidedBy::KNOWN
            .iter()
            .find(|known| known.as_str() == text)
            .cloned()
            .unwrap_or(DecidedBy::Other(text))
    }
}

impl From<&str> for DecidedBy {
    fn from(text: &str) -> Self {
        DecidedBy::from(text.to_string())
    }
}

impl std::fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DecidedBy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DecidedBy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(DecidedBy::from(text.into_owned()))
    }
}

impl JsonSchema for DecidedBy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DecidedBy".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Lenient on purpose: custom assessors may name stages of their own.
        schemars::json_schema!({
            "type": "string",
            "description": "The stage that decided: `rules`, `facts`, `llm`, `regex`, `command` or `fixed` from this project's assessor; a custom assessor may write names of its own."
        })
    }
}

/// The backend that judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackendInfo {
    /// `openai`, `fixed`, `command`, ...
    pub kind: String,
    /// The model (or command) used, when there is one.
    #[serde(default)]
    pub model: Option<String>,
}

/// Tokens used, summed over every request of the assessment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Prompt evaluation speed, for in-process models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_per_second: Option<f64>,
    /// Generation speed, for in-process models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_tokens_per_second: Option<f64>,
}

/// Why an assessment did not complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorInfo {
    /// A stable, machine-readable kind: `profile_invalid`, `backend_unavailable`,
    /// `timeout`, ... (docs/contract.md lists every kind this assessor
    /// writes); a custom assessor may write kinds of its own.
    pub kind: ErrorKind,
    /// A human-readable message naming what failed (file, field, URL).
    pub message: String,
}

/// One image of the profile as the captions stage saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CaptionRecord {
    /// The source as the profile wrote it, with `data:` URIs shortened and
    /// any `user:password@` removed.
    pub image: String,
    /// What the vision model saw; `null` when the image failed.
    pub caption: Option<String>,
    /// Whether the caption came from `CACHE_DIR` instead of a request.
    pub cached: bool,
    /// Why this image has no caption (`image_refused`, `not_an_image`,
    /// `image_too_large`, `caption_failed`, ...); `null` when it has one.
    pub error: Option<ErrorInfo>,
    /// Wall time spent on this image (load + caption), in milliseconds.
    #[serde(default)]
    pub ms: u64,
}

/// Where a result's `score` came from, so a threshold such as
/// `RELAY_MIN_SCORE` can be trusted as far as its source deserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScoreSource {
    /// The in-process model's own token distribution at the verdict:
    /// P(accept) normalised over accept and reject.
    TokenProbability,
    /// The server's `logprobs`/`top_logprobs` at the verdict token,
    /// normalised the same way.
    Logprobs,
    /// The number the model (or command) wrote in its reply.
    Stated,
    /// A source this crate does not know (a custom assessor's own).
    #[serde(other)]
    Other,
}

/// Where a fact's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FactSource {
    /// A deterministic pattern declared with the fact matched the listing.
    Pattern,
    /// The judge answered the fact's question under a constrained reply.
    Model,
    /// Neither found it: the value is `unknown`.
    None,
    /// A source this crate does not know (a custom assessor's own).
    #[serde(other)]
    Other,
}

/// One typed fact of the listing (`bedrooms`, `outdoor_space`, ...), as
/// the facts stage found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FactRecord {
    /// The fact's name as declared in the rules' `facts`.
    pub name: String,
    /// An integer, one of the declared values, `true`/`false`, or the
    /// string `"unknown"` when it could not be found.
    pub value: Value,
    pub source: FactSource,
    /// The words of the listing the value was read from (a pattern's match
    /// or the span the model's answer names); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// For a model's answer: its probability among the allowed answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub probability: Option<f64>,
}

/// The program that wrote the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AssessorInfo {
    pub name: String,
    pub version: String,
}

/// A result document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Shortlist result v1", extend("$id" = "https://shortlist.dev/schema/result.v1.json"))]
pub struct AssessmentResult {
    /// Always `shortlist.result/v1` when written by this assessor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Stable id: `metadata.id` if present, else a hash of the profile.
    /// Readers accept a string or a number; a number is read as its decimal
    /// text (`7` and `"7"` are the same id) and written back as a string.
    #[serde(default, deserialize_with = "string_or_number")]
    #[schemars(schema_with = "id_schema")]
    pub id: Option<String>,
    /// `ok` or `error`; a result without it is read as `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// The judgement; `null` when the assessment failed. The only required field.
    #[serde(deserialize_with = "required_nullable")]
    #[schemars(required, schema_with = "nullable_verdict_schema")]
    pub verdict: Option<Verdict>,
    /// Confidence that the profile matches the brief, in [0, 1]; a score
    /// outside it (or not a number) makes the whole result invalid, since a
    /// threshold like RELAY_MIN_SCORE would otherwise be fooled by it.
    #[serde(default, deserialize_with = "unit_score")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub score: Option<f64>,
    /// Short reasons for the verdict (or for a rule's rejection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    #[serde(default)]
    pub decided_by: Option<DecidedBy>,
    /// Where `score` came from; absent when there is no score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_source: Option<ScoreSource>,
    /// The facts stage's typed facts, in declaration order; absent when no
    /// facts are declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Vec<FactRecord>>,
    /// The profile as read.
    #[serde(default)]
    pub profile: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendInfo>,
    /// Token counts, when the backend reports them; `null` otherwise.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub usage: Option<Option<Usage>>,
    /// Wall time per stage in milliseconds: `total`, `rules`, `llm`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings_ms: Option<BTreeMap<String, u64>>,
    /// Whether the judge's decision came from the response cache
    /// (`CACHE_DIR/responses`) instead of a backend request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    /// The profile's images, described by the captions stage, in profile
    /// order; absent when the stage is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captions: Option<Vec<CaptionRecord>>,
    /// Backend requests made, including retries and the repair request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Why the assessment failed; `null` when it did not.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub error: Option<Option<ErrorInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessor: Option<AssessorInfo>,
    /// When the assessment finished, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessed_at: Option<String>,
    /// What decided the result, as `sha256-` and 16 hex digits: a hash of
    /// the judge (backend, model, server, sampling settings, reply schema),
    /// the brief, the rules, the prompts and the captions settings. A batch
    /// judges a result again when its fingerprint differs from its own run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Fields added by custom assessors or later versions, kept as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AssessmentResult {
    /// `status` with the contract's default: absent means `ok`.
    pub fn effective_status(&self) -> Status {
        self.status.unwrap_or(Status::Ok)
    }
}

/// For `Option<Option<T>>` fields: a present field (even `null`) is `Some`,
/// an absent one stays `None` (through `#[serde(default)]`), so `null`
/// round-trips instead of disappearing.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// For a field that must be present but may be `null`: serde would otherwise
/// read a missing `Option` as `None`.
fn required_nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// `id`: a string, or a number read as its decimal text (JSON has no NaN, so
/// every number has one).
fn string_or_number<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Option::<Id>::deserialize(deserializer)? {
        None => None,
        Some(Id::Text(text)) => Some(text),
        Some(Id::Number(number)) => Some(number.to_string()),
    })
}

/// `score`: `null` or a number in [0, 1].
fn unit_score<'de, D>(deserializer: D) -> Result<Option<f64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Option::<f64>::deserialize(deserializer)? {
        Some(score) if !(0.0..=1.0).contains(&score) => Err(serde::de::Error::custom(
            format_args!("score {score} is outside [0, 1]"),
        )),
        score => Ok(score),
    }
}

/// `string | number | null`.
fn id_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["string", "number", "null"]
    })
}

/// `"accept" | "reject" | null`; schemars drops the `null` of a required
/// `Option`, so the verdict's schema is spelled out here.
fn nullable_verdict_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["string", "null"],
        "enum": ["accept", "reject", null]
    })
}

/// Now, as RFC 3339 in UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimal_result_parses() {
        let r: AssessmentResult = serde_json::from_str(r#"{"verdict":"accept"}"#).unwrap();
        assert_eq!(r.verdict, Some(Verdict::Accept));
        assert_eq!(r.effective_status(), Status::Ok);
        // Fields our assessor always writes come back as null; nothing else is added.
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"id":null,"verdict":"accept","score":null,"decided_by":null,"profile":null}"#
        );
    }

    #[test]
    fn decided_by_names_match_the_serialised_form() {
        for by in [
            DecidedBy::Rules,
            DecidedBy::Llm,
            DecidedBy::Regex,
            DecidedBy::Command,
            DecidedBy::Fixed,
        ] {
            assert_eq!(serde_json::to_value(&by).unwrap(), by.as_str());
            let back: DecidedBy = serde_json::from_value(by.as_str().into()).unwrap();
            assert_eq!(back, by);
        }
    }

    #[test]
    fn unknown_decided_by_values_are_kept() {
        let r: AssessmentResult =
            serde_json::from_str(r#"{"verdict":"accept","decided_by":"heuristic"}"#).unwrap();
        assert_eq!(r.decided_by, Some(DecidedBy::Other("heuristic".into())));
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""decided_by":"heuristic""#), "{text}");
    }

    #[test]
    fn a_numeric_id_is_read_as_its_text() {
        for (text, id) in [
            (r#"{"verdict":"accept","id":7}"#, "7"),
            (
                r#"{"verdict":"accept","id":12345678901234567890}"#,
                "12345678901234567890",
            ),
            (r#"{"verdict":"accept","id":1.5}"#, "1.5"),
            (r#"{"verdict":"accept","id":"s01"}"#, "s01"),
        ] {
            let r: AssessmentResult = serde_json::from_str(text).unwrap();
            assert_eq!(r.id.as_deref(), Some(id), "{text}");
        }
        let r: AssessmentResult =
            serde_json::from_str(r#"{"verdict":"accept","id":null}"#).unwrap();
        assert_eq!(r.id, None);
        for bad in [
            r#"{"verdict":"accept","id":true}"#,
            r#"{"verdict":"accept","id":{}}"#,
        ] {
            assert!(
                serde_json::from_str::<AssessmentResult>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_score_outside_the_unit_interval_is_refused() {
        for ok in ["0", "0.0", "0.5", "1", "1.0", "null"] {
            let text = format!(r#"{{"verdict":"accept","score":{ok}}}"#);
            assert!(
                serde_json::from_str::<AssessmentResult>(&text).is_ok(),
                "{text}"
            );
        }
        for bad in ["86", "-0.01", "1.0001", "1e300"] {
            let text = format!(r#"{{"verdict":"accept","score":{bad}}}"#);
            let err = serde_json::from_str::<AssessmentResult>(&text).unwrap_err();
            assert!(err.to_string().contains("outside [0, 1]"), "{text}: {err}");
        }
        // Past f64 (JSON has no NaN or infinity): refused by the parser.
        assert!(
            serde_json::from_str::<AssessmentResult>(r#"{"verdict":"accept","score":1e400}"#)
                .is_err()
        );
        let err = serde_json::from_str::<AssessmentResult>(r#"{"verdict":"accept","score":"0.5"}"#)
            .unwrap_err();
        assert!(err.is_data(), "{err}");
    }

    #[test]
    fn verdict_is_required() {
        let err = serde_json::from_str::<AssessmentResult>(r#"{"status":"ok"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `verdict`"), "{err}");
    }

    #[test]
    fn nulls_round_trip() {
        let text = r#"{"id":null,"status":"error","verdict":null,"score":null,"decided_by":null,"profile":null,"usage":null,"error":{"kind":"timeout","message":"m"}}"#;
        let r: AssessmentResult = serde_json::from_str(text).unwrap();
        assert_eq!(r.verdict, None);
        assert_eq!(r.error.clone().unwrap().unwrap().kind, "timeout");
        assert_eq!(serde_json::to_string(&r).unwrap(), text);
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert!(
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).is_ok()
        );
    }
}
