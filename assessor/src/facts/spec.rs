//! The `facts` of a rule set: typed facts of a listing (bedrooms, outdoor
//! space, tenure, ...), each with a short question, optional patterns that
//! read it deterministically, and an optional condition the brief puts on
//! it. Parsed and compiled once at start-up; every error names the source
//! and the field (`facts[1].patterns.balcony[0]`).
//!
//! ```json
//! "facts": [
//!   {"name": "bedrooms", "type": "integer",
//!    "question": "How many bedrooms does the property have?",
//!    "patterns": ["\\b(\\d+|one|two|three)[- ]bed(room)?s?\\b"],
//!    "min": 2},
//!   {"name": "outdoor_space", "type": "enum",
//!    "values": ["private garden", "balcony", "terrace", "communal only", "none"],
//!    "question": "What outdoor space is for this property's own use?",
//!    "patterns": {"balcony": ["\\bbalcon(y|ies)\\b"]},
//!    "allowed": ["private garden", "balcony", "terrace"]}
//! ]
//! ```
//!
//! A list, not an object, so the declaration order is kept (it is the
//! order of the result's `facts`).

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use shortlist_contract::profile::json_type_name;

/// The keys of one fact.
const FACT_KEYS: &[&str] = &[
    "name",
    "type",
    "question",
    "values",
    "patterns",
    "ask",
    "min",
    "max",
    "allowed",
    "forbidden",
    "must_be",
];
/// The highest integer a model may answer (a listing with more is rare, and
/// every allowed answer costs grammar states).
pub(crate) const MAX_MODEL_INTEGER: i64 = 20;
/// The longest question, in characters: facts are narrow questions.
const MAX_QUESTION_CHARS: usize = 300;

/// Why a rule set's `facts` were refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FactsError {
    #[error("{source_name}: field \"{field}\" must be {expected}, found {found}")]
    WrongType {
        source_name: String,
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{source_name}: field \"{field}\" {problem}")]
    Invalid {
        source_name: String,
        field: String,
        problem: String,
    },
    #[error("{source_name}: unknown field \"{field}\"; expected one of {expected}")]
    UnknownField {
        source_name: String,
        field: String,
        expected: String,
    },
    #[error("{source_name}: field \"{field}\": invalid regex {pattern:?}: {message}")]
    BadRegex {
        source_name: String,
        field: String,
        pattern: String,
        message: String,
    },
}

/// A compiled pattern and the text it was written as.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) written: String,
    pub(crate) regex: Regex,
}

/// What a fact's value is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FactType {
    /// A whole number, 0 or more.
    Integer,
    /// One of these values, in priority order.
    Enum(Vec<String>),
    Boolean,
}

/// What the brief asks of a fact; a fact without one is only recorded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    Range { min: Option<i64>, max: Option<i64> },
    Allowed(Vec<String>),
    Forbidden(Vec<String>),
    MustBe(bool),
}

/// One declared fact.
#[derive(Debug, Clone)]
pub(crate) struct FactSpec {
    pub(crate) name: String,
    pub(crate) kind: FactType,
    pub(crate) question: String,
    /// Integer: patterns whose first capture group is the number. Enum and
    /// boolean: per value (`"true"`/`"false"` for booleans), in the value's
    /// priority order; the first value with a match wins.
    pub(crate) patterns: Vec<(String, Vec<Pattern>)>,
    /// Ask the judge when no pattern found it (default: when the fact has
    /// a condition, since only then can its answer decide anything).
    pub(crate) ask: bool,
    pub(crate) condition: Option<Condition>,
}

/// Parsing context: the source name every error starts with.
struct Ctx<'a> {
    source: &'a str,
}

impl Ctx<'_> {
    fn wrong_type(&self, field: &str, expected: &'static str, found: &Value) -> FactsError {
        FactsError::WrongType {
            source_name: self.source.to_string(),
            field: field.to_string(),
            expected,
            found: json_type_name(found),
        }
    }

    fn invalid(&self, field: &str, problem: impl Into<String>) -> FactsError {
        FactsError::Invalid {
            source_name: self.source.to_string(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    fn string<'v>(&self, value: &'v Value, field: &str) -> Result<&'v str, FactsError> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_type(field, "a string", other)),
        }
    }

    fn strings(&self, value: &Value, field: &str) -> Result<Vec<String>, FactsError> {
        let Value::Array(items) = value else {
            return Err(self.wrong_type(field, "an array of strings", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                self.string(item, &format!("{field}[{i}]"))
                    .map(str::to_string)
            })
            .collect()
    }

    fn pattern(&self, value: &Value, field: &str) -> Result<Pattern, FactsError> {
        let written = self.string(value, field)?;
        let regex = RegexBuilder::new(written)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| FactsError::BadRegex {
                source_name: self.source.to_string(),
                field: field.to_string(),
                pattern: written.to_string(),
                message: e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string(),
            })?;
        if regex.is_match("") {
            return Err(self.invalid(
                field,
                format!("{written:?} matches the empty string, so it cannot tell listings apart"),
            ));
        }
        Ok(Pattern {
            written: written.to_string(),
            regex,
        })
    }

    fn patterns(&self, value: &Value, field: &str) -> Result<Vec<Pattern>, FactsError> {
        let Value::Array(items) = value else {
            return Err(self.wrong_type(field, "an array of strings (regexes)", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.pattern(item, &format!("{field}[{i}]")))
            .collect()
    }

    fn integer(&self, value: &Value, field: &str) -> Result<i64, FactsError> {
        match value.as_i64() {
            Some(n) if n >= 0 => Ok(n),
            _ => Err(self.invalid(
                field,
                format!("must be a whole number of 0 or more, found {value}"),
            )),
        }
    }
}

/// Parses the `facts` list of a rule set; `source` names where it came
/// from and starts every error.
pub(crate) fn parse(value: &Value, source: &str) -> Result<Vec<FactSpec>, FactsError> {
    let ctx = Ctx { source };
    let Value::Array(items) = value else {
        return Err(ctx.wrong_type("facts", "an array of fact objects", value));
    };
    let mut facts: Vec<FactSpec> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("facts[{i}]");
        let Value::Object(object) = item else {
            return Err(ctx.wrong_type(&prefix, "an object", item));
        };
        let fact = parse_one(&ctx, object, &prefix)?;
        if facts.iter().any(|f| f.name == fact.name) {
            return Err(ctx.invalid(
                &format!("{prefix}.name"),
                format!("{:?} is declared twice", fact.name),
            ));
        }
        facts.push(fact);
    }
    Ok(facts)
}

fn parse_one(ctx: &Ctx, object: &Map<String, Value>, prefix: &str) -> Result<FactSpec, FactsError> {
    if let Some(key) = object.keys().find(|k| !FACT_KEYS.contains(&k.as_str())) {
        return Err(FactsError::UnknownField {
            source_name: ctx.source.to_string(),
            field: format!("{prefix}.{key}"),
            expected: FACT_KEYS
                .iter()
                .map(|k| format!("\"{k}\""))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let field = |key: &str| format!("{prefix}.{key}");
    let required = |key: &str| {
        object
            .get(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| ctx.invalid(&field(key), "is required"))
    };
    let name = ctx.string(required("name")?, &field("name"))?.to_string();
    let well_formed = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !well_formed {
        return Err(ctx.invalid(
            &field("name"),
            format!("{name:?} must be 1 to 64 of a-z, 0-9 and _, not starting with a digit"),
        ));
    }
    let question = ctx
        .string(required("question")?, &field("question"))?
        .trim();
    if question.is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
        return Err(ctx.invalid(
            &field("question"),
            format!("must be a question of 1 to {MAX_QUESTION_CHARS} characters"),
        ));
    }
    let kind = match ctx.string(required("type")?, &field("type"))? {
        "integer" => FactType::Integer,
        "boolean" => FactType::Boolean,
        "enum" => {
            let values = ctx.strings(required("values")?, &field("values"))?;
            let values: Vec<String> = values.iter().map(|v| v.trim().to_lowercase()).collect();
            if values.is_empty() {
                return Err(ctx.invalid(&field("values"), "must list at least one value"));
            }
            for (i, v) in values.iter().enumerate() {
                if v.is_empty() || v == "unknown" || values[..i].contains(v) {
                    return Err(ctx.invalid(
                        &format!("{prefix}.values[{i}]"),
                        format!(
                            "{v:?} is empty, repeated or \"unknown\" (which every fact allows already)"
                        ),
                    ));
                }
            }
            FactType::Enum(values)
        }
        other => {
            return Err(ctx.invalid(
                &field("type"),
                format!("is {other:?}; expected \"integer\", \"enum\" or \"boolean\""),
            ));
        }
    };

    let patterns = match (object.get("patterns").filter(|v| !v.is_null()), &kind) {
        (None, _) => Vec::new(),
        (Some(value), FactType::Integer) => {
            let patterns = ctx.patterns(value, &field("patterns"))?;
            for (i, p) in patterns.iter().enumerate() {
                if p.regex.captures_len() < 2 {
                    return Err(ctx.invalid(
                        &format!("{prefix}.patterns[{i}]"),
                        format!(
                            "{:?} has no capture group; an integer fact's pattern captures the number, e.g. \"(\\\\d+) bed\"",
                            p.written
                        ),
                    ));
                }
            }
            vec![(String::new(), patterns)]
        }
        (Some(Value::Object(map)), FactType::Enum(values)) => {
            value_patterns(ctx, map, &field("patterns"), values)?
        }
        (Some(Value::Object(map)), FactType::Boolean) => {
            let values = ["true".to_string(), "false".to_string()];
            value_patterns(ctx, map, &field("patterns"), &values)?
        }
        (Some(other), _) => {
            return Err(ctx.wrong_type(
                &field("patterns"),
                "an object of value → [regexes]",
                other,
            ));
        }
    };

    let condition = condition(ctx, object, prefix, &kind)?;
    let ask = match object.get("ask").filter(|v| !v.is_null()) {
        None => condition.is_some(),
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(ctx.wrong_type(&field("ask"), "true or false", other)),
    };
    Ok(FactSpec {
        name,
        kind,
        question: question.to_string(),
        patterns,
        ask,
        condition,
    })
}

/// `patterns` of an enum or boolean fact, in the values' priority order.
fn value_patterns(
    ctx: &Ctx,
    map: &Map<String, Value>,
    field: &str,
    values: &[String],
) -> Result<Vec<(String, Vec<Pattern>)>, FactsError> {
    if let Some(key) = map.keys().find(|k| !values.contains(k)) {
        return Err(ctx.invalid(
            &format!("{field}.{key}"),
            format!("names no value of this fact; expected one of {values:?}"),
        ));
    }
    values
        .iter()
        .filter_map(|v| map.get(v).map(|p| (v, p)))
        .map(|(v, p)| Ok((v.clone(), ctx.patterns(p, &format!("{field}.{v}"))?)))
        .collect()
}

fn condition(
    ctx: &Ctx,
    object: &Map<String, Value>,
    prefix: &str,
    kind: &FactType,
) -> Result<Option<Condition>, FactsError> {
    let get = |key: &str| object.get(key).filter(|v| !v.is_null());
    let field = |key: &str| format!("{prefix}.{key}");
    let misplaced = |key: &str, for_type: &str| {
        ctx.invalid(&field(key), format!("applies to {for_type} facts only"))
    };
    match kind {
        FactType::Integer => {
            for key in ["allowed", "forbidden", "must_be"] {
                if get(key).is_some() {
                    return Err(misplaced(key, "enum or boolean"));
                }
            }
            let min = get("min")
                .map(|v| ctx.integer(v, &field("min")))
                .transpose()?;
            let max = get("max")
                .map(|v| ctx.integer(v, &field("max")))
                .transpose()?;
            if let (Some(lo), Some(hi)) = (min, max) {
                if lo > hi {
                    return Err(ctx.invalid(
                        &field("min"),
                        format!("({lo}) is greater than {prefix}.max ({hi})"),
                    ));
                }
            }
            Ok((min.is_some() || max.is_some()).then_some(Condition::Range { min, max }))
        }
        FactType::Enum(values) => {
            for key in ["min", "max", "must_be"] {
                if get(key).is_some() {
                    return Err(misplaced(key, "integer or boolean"));
                }
            }
            let list = |key: &str| -> Result<Option<Vec<String>>, FactsError> {
                let Some(value) = get(key) else {
                    return Ok(None);
                };
                let items = ctx.strings(value, &field(key))?;
                let items: Vec<String> = items.iter().map(|v| v.trim().to_lowercase()).collect();
                if let Some(bad) = items.iter().find(|v| !values.contains(v)) {
                    return Err(ctx.invalid(
                        &field(key),
                        format!("names {bad:?}, which is not one of the fact's values {values:?}"),
                    ));
                }
                Ok(Some(items))
            };
            match (list("allowed")?, list("forbidden")?) {
                (Some(_), Some(_)) => Err(ctx.invalid(
                    &field("allowed"),
                    "and \"forbidden\" cannot both be given; list one of them",
                )),
                (Some(allowed), None) => Ok(Some(Condition::Allowed(allowed))),
                (None, Some(forbidden)) => Ok(Some(Condition::Forbidden(forbidden))),
                (None, None) => Ok(None),
            }
        }
        FactType::Boolean => {
            for key in ["min", "max", "allowed", "forbidden"] {
                if get(key).is_some() {
                    return Err(misplaced(key, "integer or enum"));
                }
            }
            match get("must_be") {
                None => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(Condition::MustBe(*b))),
                Some(other) => Err(ctx.wrong_type(&field("must_be"), "true or false", other)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(value: Value) -> String {
        parse(&value, "ASSESSOR_RULES").unwrap_err().to_string()
    }

    #[test]
    fn a_valid_declaration_keeps_its_order_and_conditions() {
        let facts = parse(
            &json!([
                {"name": "bedrooms", "type": "integer", "question": "How many bedrooms?",
                 "patterns": ["(\\d+) bed"], "min": 2},
                {"name": "outdoor", "type": "enum", "values": ["Garden", "balcony", "none"],
                 "question": "What outdoor space?", "patterns": {"balcony": ["balcon"]},
                 "allowed": ["garden", "balcony"]},
                {"name": "retirement", "type": "boolean", "question": "Retirement only?",
                 "must_be": false},
                {"name": "view", "type": "boolean", "question": "A view?"}
            ]),
            "rules",
        )
        .unwrap();
        let names: Vec<&str> = facts.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["bedrooms", "outdoor", "retirement", "view"]);
        assert_eq!(
            facts[0].condition,
            Some(Condition::Range {
                min: Some(2),
                max: None
            })
        );
        assert_eq!(
            facts[1].kind,
            FactType::Enum(vec!["garden".into(), "balcony".into(), "none".into()])
        );
        assert_eq!(facts[1].patterns[0].0, "balcony");
        assert!(facts[2].ask, "a fact with a condition is asked by default");
        assert!(!facts[3].ask, "a fact without one is only recorded");
    }

    #[test]
    fn errors_name_the_field_and_what_was_expected() {
        let e = err(json!({"bedrooms": {}}));
        assert!(e.contains("field \"facts\" must be an array"), "{e}");
        let e = err(
            json!([{"name": "b", "type": "integer", "question": "q", "patterns": ["\\d+ bed"]}]),
        );
        assert!(
            e.contains("facts[0].patterns[0]") && e.contains("capture group"),
            "{e}"
        );
        let e = err(
            json!([{"name": "o", "type": "enum", "values": ["a"], "question": "q",
                              "allowed": ["b"]}]),
        );
        assert!(e.contains("facts[0].allowed") && e.contains("\"b\""), "{e}");
        let e = err(
            json!([{"name": "o", "type": "enum", "values": ["a"], "question": "q",
                              "patterns": {"c": ["x"]}}]),
        );
        assert!(e.contains("facts[0].patterns.c"), "{e}");
        let e = err(json!([{"name": "o", "type": "colour", "question": "q"}]));
        assert!(
            e.contains("facts[0].type") && e.contains("\"colour\""),
            "{e}"
        );
        let e = err(json!([{"name": "Bad Name", "type": "boolean", "question": "q"}]));
        assert!(e.contains("facts[0].name"), "{e}");
        let e = err(json!([{"name": "a", "type": "boolean", "question": "q", "min": 1}]));
        assert!(
            e.contains("facts[0].min") && e.contains("integer or enum"),
            "{e}"
        );
        let e = err(json!([{"name": "a", "type": "boolean", "question": "q", "colour": 1}]));
        assert!(e.contains("unknown field \"facts[0].colour\""), "{e}");
        let e = err(json!([{"name": "a", "type": "boolean", "question": "q"},
                           {"name": "a", "type": "boolean", "question": "q"}]));
        assert!(e.contains("declared twice"), "{e}");
        let e = err(
            json!([{"name": "a", "type": "enum", "values": ["x", "unknown"], "question": "q"}]),
        );
        assert!(e.contains("facts[0].values[1]"), "{e}");
        let e = err(json!([{"name": "a", "type": "integer", "question": "q", "min": 3, "max": 2}]));
        assert!(e.contains("facts[0].min"), "{e}");
        let e = err(json!([{"name": "a", "type": "boolean", "question": "q",
                            "patterns": {"true": ["x|"]}}]));
        assert!(
            e.contains("facts[0].patterns.true[0]") && e.contains("empty string"),
            "{e}"
        );
    }
}
