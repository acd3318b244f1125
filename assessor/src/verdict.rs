//! The verdict a model must reply with, its JSON Schema, and local validation
//! of every reply: servers differ in how (and whether) they enforce a schema,
//! so nothing a model says is trusted until it has been checked here.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};
use shortlist_contract::Verdict;

/// The schema sent to servers. Strict-mode compatible (OpenAI): every
/// property required, no additional properties, no numeric bounds (those are
/// checked locally by [`validation_schema`]).
pub(crate) fn reply_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["accept", "reject"]},
            "score": {"type": "number"},
            "reasons": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["verdict", "score", "reasons"],
        "additionalProperties": false
    })
}

/// The schema replies are validated against locally: the sent schema plus
/// the bounds strict mode cannot express everywhere.
fn validation_schema() -> Value {
    let mut schema = reply_schema();
    schema["properties"]["score"] = json!({"type": "number", "minimum": 0, "maximum": 1});
    schema["properties"]["reasons"]["maxItems"] = json!(20);
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
