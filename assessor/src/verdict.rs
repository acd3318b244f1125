//! The verdict a model must reply with, its JSON Schema, and local validation
//! of every reply: servers differ in how (and whether) they enforce a schema,
//! so nothing a model says is trusted until it has been checked here.
//!
//! The bounds a constraining server (or the in-process grammar) enforces are
//! defined once, here: they keep a small model's reply short enough to end
//! before `LLM_MAX_TOKENS` rather than ramble until it is cut off.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};
use shortlist_contract::Verdict;

/// The longest reason, in characters, a constraining server or the
/// in-process grammar lets a model write.
pub(crate) const REASON_MAX_CHARS: u32 = 80;
/// The fewest reasons a constrained reply gives: a verdict always says why.
pub(crate) const REASONS_MIN_ITEMS: u32 = 1;
/// The most reasons a constrained reply gives: two short ones fit well
/// inside the default token limit, a free list does not.
pub(crate) const REASONS_MAX_ITEMS: u32 = 2;
/// The in-process grammar's score is one of `0, 1/STEPS, ..., 1` (0.05
/// apart): a free-form number lets a small model write digits forever.
pub(crate) const SCORE_STEPS: u32 = 20;

/// The scores a constrained reply may give: `0, 0.05, ..., 1`
/// ([`SCORE_STEPS`]), as JSON numbers.
pub(crate) fn score_steps() -> Value {
    (0..=SCORE_STEPS)
        .map(|i| match i {
            0 => json!(0),
            i if i == SCORE_STEPS => json!(1),
            i => json!(f64::from(i) / f64::from(SCORE_STEPS)),
        })
        .collect()
}

/// Which JSON Schema dialect a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemaDialect {
    /// `response_format: json_schema` with `strict: true`: OpenAI's strict
    /// subset ("Supported schemas" in its Structured Outputs guide) has
    /// `minimum`/`maximum` and `minItems`/`maxItems` but not
    /// `minLength`/`maxLength`, so the reasons' length is not sent; a
    /// strict-mode server refuses a schema with a keyword it does not know,
    /// and a refusal would cost OpenAI its enforced schema (the fallback,
    /// `json_object`, only promises JSON there). llama.cpp's `llama-server`
    /// takes `json_schema` too and so gets this subset;
    /// `LLM_STRUCTURED_OUTPUT=json_object` gives it [`SchemaDialect::Full`].
    Strict,
    /// `response_format: json_object` with a `schema` (llama-cpp-python,
    /// llama.cpp): every bound, `maxLength` included, which their grammar
    /// converters enforce. Their converters ignore `minimum`/`maximum` on a
    /// `number` (llama-cpp-python 0.3.36 with SmolLM2 wrote `"score": 2`),
    /// so the score is also the in-process grammar's `enum` of
    /// [`score_steps`], which they do enforce (an `enum` takes precedence
    /// over `type` there).
    Full,
}

/// The schema sent to servers, as JSON text with its keys in the prompt's
/// order (`verdict`, `score`, `reasons`): llama.cpp-family servers turn a
/// schema into a grammar that emits properties in the order written, and a
/// `serde_json::Value` would sort them (`reasons` first: the model would
/// write its reasons before its verdict, against the prompt's example).
/// Strict-mode compatible in both dialects: every property required, no
/// additional properties.
pub(crate) fn reply_schema_json(dialect: SchemaDialect) -> String {
    let (reason_bound, score_bound) = match dialect {
        SchemaDialect::Strict => (String::new(), String::new()),
        SchemaDialect::Full => (
            format!(r#","maxLength":{REASON_MAX_CHARS}"#),
            format!(r#","enum":{}"#, score_steps()),
        ),
    };
    format!(
        concat!(
            r#"{{"type":"object","properties":{{"#,
            r#""verdict":{{"type":"string","enum":["accept","reject"]}},"#,
            r#""score":{{"type":"number"{score_bound},"minimum":0,"maximum":1}},"#,
            r#""reasons":{{"type":"array","items":{{"type":"string"{reason_bound}}},"minItems":{min},"maxItems":{max}}}"#,
            r#"}},"required":["verdict","score","reasons"],"additionalProperties":false}}"#
        ),
        reason_bound = reason_bound,
        score_bound = score_bound,
        min = REASONS_MIN_ITEMS,
        max = REASONS_MAX_ITEMS,
    )
}

/// The sent schema (the full dialect) as a value, for code that reads its
/// parts rather than sends it.
pub(crate) fn reply_schema() -> Value {
    serde_json::from_str(&reply_schema_json(SchemaDialect::Full))
        .expect("the verdict schema is valid JSON")
}

/// The schema replies are validated against locally: the sent shape and
/// the score's bounds, but not the reasons' count or length: a server that
/// does not enforce them (strict mode has no `maxLength`, instructions-only
/// mode nothing) may return three reasons or a long one, and such a reply
/// is still a usable verdict, not worth a repair request.
fn validation_schema() -> Value {
    let mut schema = reply_schema();
    schema["properties"]["reasons"] =
        json!({"type": "array", "items": {"type": "string"}, "maxItems": 20});
    schema
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::validator_for(&validation_schema()).expect("the verdict schema is valid")
    })
}

/// A validated model reply.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ModelVerdict {
    pub(crate) verdict: Verdict,
    pub(crate) score: f64,
    pub(crate) reasons: Vec<String>,
}

/// Parses and validates a model's reply. Tolerates what servers without
/// schema enforcement commonly wrap around the object (code fences, a
/// sentence before or after) and a capitalised verdict; everything else must
/// match the schema. The error says what was wrong, for the repair request.
pub(crate) fn parse_reply(content: &str) -> Result<ModelVerdict, String> {
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return Err("the reply was empty".into());
    }
    let candidate = match (trimmed.find('{'), trimmed.rfind('}')) {
        (Some(start), Some(end)) if end > start => &trimmed[start..=end],
        _ => {
            return Err(format!(
                "the reply contains no JSON object: {}",
                excerpt(trimmed)
            ));
        }
    };
    let mut value: Value = serde_json::from_str(candidate)
        .map_err(|e| format!("the reply is not valid JSON ({e}): {}", excerpt(trimmed)))?;
    if let Some(Value::String(v)) = value.get_mut("verdict") {
        *v = v.trim().to_ascii_lowercase();
    }
    let errors: Vec<String> = validator()
        .iter_errors(&value)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect();
    if !errors.is_empty() {
        return Err(format!(
            "the reply does not match the verdict schema: {}",
            errors.join("; ")
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| format!("the reply does not match the verdict schema: {e}"))
}

/// At most 200 characters of a reply, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sent_schema_keeps_the_prompt_s_order_and_each_dialect_s_bounds() {
        for dialect in [SchemaDialect::Strict, SchemaDialect::Full] {
            let text = reply_schema_json(dialect);
            let at = |needle: &str| {
                text.find(needle)
                    .unwrap_or_else(|| panic!("{needle}: {text}"))
            };
            assert!(
                at("\"verdict\":{") < at("\"score\":{") && at("\"score\":{") < at("\"reasons\":{"),
                "{text}"
            );
            let schema: Value = serde_json::from_str(&text).unwrap();
            let p = &schema["properties"];
            assert_eq!(p["score"]["minimum"], 0);
            assert_eq!(p["score"]["maximum"], 1);
            assert_eq!(p["reasons"]["minItems"], REASONS_MIN_ITEMS);
            assert_eq!(p["reasons"]["maxItems"], REASONS_MAX_ITEMS);
            assert_eq!(schema["additionalProperties"], false);
            assert_eq!(schema["required"], json!(["verdict", "score", "reasons"]));
            let max_length = &p["reasons"]["items"]["maxLength"];
            match dialect {
                SchemaDialect::Strict => {
                    assert!(max_length.is_null(), "{text}");
                    assert!(p["score"]["enum"].is_null(), "{text}");
                }
                SchemaDialect::Full => {
                    assert_eq!(*max_length, REASON_MAX_CHARS);
                    assert_eq!(p["score"]["enum"], score_steps());
                }
            }
        }
        assert_eq!(
            reply_schema()["properties"]["reasons"]["items"]["maxLength"],
            REASON_MAX_CHARS
        );
    }

    #[test]
    fn score_steps_are_the_grammar_s() {
        let steps = score_steps();
        let steps = steps.as_array().unwrap();
        assert_eq!(steps.len(), 21);
        assert_eq!(steps[0], json!(0));
        assert_eq!(steps[1], json!(0.05));
        assert_eq!(steps[19], json!(0.95));
        assert_eq!(steps[20], json!(1));
    }

    #[test]
    fn local_validation_does_not_bound_the_reasons_a_server_did_not() {
        let long = "x".repeat(200);
        let reply = json!({"verdict": "accept", "score": 0.5, "reasons": ["a", "b", long]});
        assert!(parse_reply(&reply.to_string()).is_ok());
    }

    #[test]
    fn accepts_a_clean_reply_and_common_wrappings() {
        let v = parse_reply(r#"{"verdict":"accept","score":0.8,"reasons":["garden"]}"#).unwrap();
        assert_eq!(v.verdict, Verdict::Accept);
        let v = parse_reply("```json\n{\"verdict\":\"Reject\",\"score\":0,\"reasons\":[]}\n```")
            .unwrap();
        assert_eq!(v.verdict, Verdict::Reject);
    }

    #[test]
    fn refuses_what_the_schema_forbids() {
        assert!(parse_reply("").unwrap_err().contains("empty"));
        assert!(
            parse_reply("ACCEPT")
                .unwrap_err()
                .contains("no JSON object")
        );
        assert!(
            parse_reply(r#"{"verdict":"acc"#)
                .unwrap_err()
                .contains("no JSON object")
        );
        assert!(
            parse_reply(r#"{"verdict":"maybe","score":0.5,"reasons":[]}"#)
                .unwrap_err()
                .contains("/verdict")
        );
        assert!(
            parse_reply(r#"{"verdict":"accept","score":3,"reasons":[]}"#)
                .unwrap_err()
                .contains("/score")
        );
        assert!(
            parse_reply(r#"{"verdict":"accept","reasons":[]}"#)
                .unwrap_err()
                .contains("score")
        );
        assert!(parse_reply(r#"{"verdict":"accept","score":1,"reasons":[],"extra":1}"#).is_err());
    }
}
