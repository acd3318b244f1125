//! The deterministic rules stage: rejects what is decidable without a model.
//!
//! A house hunter's brief has hard limits (a price ceiling, a city, "no
//! shared ownership") that a few declarative rules decide exactly, cheaply
//! and reproducibly. Those must never reach the LLM, which costs money and
//! may get them wrong. Everything the rules cannot decide (a missing or
//! unreadable price, a missing location) passes through to the next stage
//! with a note: a rule never guesses, because a wrong reject here is a
//! listing the user never sees.
//!
//! The rule set is JSON, every key optional:
//!
//! ```json
//! {
//!   "price": {"min": 100000, "max": 425000},
//!   "require": ["garden|balcony|terrace|patio"],
//!   "forbid": ["shared ownership", "retirement", "\\bauction\\b"],
//!   "location": ["bristol"]
//! }
//! ```
//!
//! Patterns are case-insensitive regular expressions. `require` and `forbid`
//! look at the profile's `text` and `metadata.summary`; `location` at
//! `metadata.location`; `price` at `metadata.price` (see [`price`]).
//! All failures are reported, not just the first, so the user sees every
//! reason a listing was dropped.

pub(crate) mod price;

pub(crate) use price::{PriceRange, parse_price};

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use shortlist_contract::Profile;
use shortlist_contract::profile::json_type_name;

use crate::facts::{Facts, FactsError};
use price::Amount;

/// The top-level keys of a rule set, for "unknown field" messages.
const TOP_LEVEL_KEYS: &[&str] = &[
    "price",
    "require",
    "forbid",
    "location",
    "facts",
    "accept_on_facts",
];
/// The keys of the `price` object.
const PRICE_KEYS: &[&str] = &["min", "max"];
/// Forbidden matches are quoted up to this many characters: enough to show
/// what matched, short enough to keep a reason on one line.
const SNIPPET_CHARS: usize = 60;

/// Why a rule set was refused. Every message starts with the source name
/// (`ASSESSOR_RULES`, `config.json: ASSESSOR_RULES`) and names the field.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RulesError {
    #[error("{source_name}: is not valid JSON at line {line}, column {column}: {message}")]
    NotJson {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{source_name}: expected a JSON object of rules (keys \"price\", \"require\", \"forbid\", \"location\"), found {found}"
    )]
    NotAnObject {
        source_name: String,
        found: &'static str,
    },
    #[error("{source_name}: unknown field \"{field}\"; expected one of {expected}")]
    UnknownField {
        source_name: String,
        field: String,
        expected: String,
    },
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
    #[error("{source_name}: field \"{field}\": invalid regex {pattern:?}: {message}")]
    BadRegex {
        source_name: String,
        field: String,
        pattern: String,
        message: String,
    },
    #[error(transparent)]
    Facts(#[from] FactsError),
    #[error(
        "{source_name}: field \"price.min\" ({min}) is greater than field \"price.max\" ({max}), so no price could pass"
    )]
    MinAboveMax {
        source_name: String,
        min: String,
        max: String,
    },
}

/// One compiled pattern and the text it was written as (for messages).
#[derive(Debug, Clone)]
struct Pattern {
    written: String,
    regex: Regex,
}

/// A compiled rule set. The default is empty: nothing is checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    price_min: Option<f64>,
    price_max: Option<f64>,
    require: Vec<Pattern>,
    forbid: Vec<Pattern>,
    location: Vec<Pattern>,
    /// The typed facts and their conditions (the facts stage).
    facts: Facts,
}

/// What the rules decided about one profile.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RulesOutcome {
    /// At least one rule failed; `rules` lists the rule names that failed
    /// (e.g. `price.max`, `forbid[0]`), `reasons` the human sentences, in
    /// the same order.
    Reject {
        rules: Vec<String>,
        reasons: Vec<String>,
    },
    /// Nothing failed; `notes` says what was unknown and skipped (e.g.
    /// "price unknown: \"POA\" (no figure)").
    Pass { notes: Vec<String> },
}

impl Rules {
    /// Parses and compiles a rule set. `source` names where it came from
    /// (e.g. "ASSESSOR_RULES" or "config.json: ASSESSOR_RULES") and starts
    /// every error message.
    pub(crate) fn parse(json: &str, source: &str) -> Result<Rules, RulesError> {
        let value: Value = serde_json::from_str(json).map_err(|e| RulesError::NotJson {
            source_name: source.to_string(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        let ctx = Ctx { source };
        let object = match &value {
            Value::Object(map) => map,
            other => {
                return Err(RulesError::NotAnObject {
                    source_name: source.to_string(),
                    found: json_type_name(other),
                });
            }
        };
        ctx.only_keys(object, "", TOP_LEVEL_KEYS)?;

        let mut rules = Rules::default();
        match present(object, "price") {
            None => {}
            Some(Value::Object(price)) => {
                ctx.only_keys(price, "price.", PRICE_KEYS)?;
                rules.price_min = ctx.bound(price, "min")?;
                rules.price_max = ctx.bound(price, "max")?;
                if let (Some(min), Some(max)) = (rules.price_min, rules.price_max) {
                    if min > max {
                        return Err(RulesError::MinAboveMax {
                            source_name: source.to_string(),
                            min: Amount(min).to_string(),
                            max: Amount(max).to_string(),
                        });
                    }
                }
            }
            Some(other) => {
                return Err(ctx.wrong_type("price", "an object", other));
            }
        }
        rules.require = ctx.patterns(object, "require")?;
        rules.forbid = ctx.patterns(object, "forbid")?;
        rules.location = ctx.patterns(object, "location")?;
        if present(object, "location").is_some() && rules.location.is_empty() {
            // An empty list would reject every profile that has a location.
            return Err(RulesError::Invalid {
                source_name: source.to_string(),
                field: "location".into(),
                problem: "must list at least one pattern (leave it out to accept any location)"
                    .into(),
            });
        }
        let accept_on_facts = match present(object, "accept_on_facts") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(ctx.wrong_type("accept_on_facts", "true or false", other)),
        };
        if let Some(facts) = present(object, "facts") {
            rules.facts = Facts::parse(facts, accept_on_facts, source)?;
        }
        Ok(rules)
    }

    /// The declared facts (empty when none).
    pub(crate) fn facts(&self) -> &Facts {
        &self.facts
    }

    /// True when there is nothing to check.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.price_min.is_none()
            && self.price_max.is_none()
            && self.require.is_empty()
            && self.forbid.is_empty()
            && self.location.is_empty()
            && self.facts.is_empty()
    }

    /// Evaluates the rules against a profile, in the order price, location,
    /// forbid, require, collecting every failure. Pure, no I/O.
    pub(crate) fn evaluate(&self, profile: &Profile) -> RulesOutcome {
        let mut failures = Failures::default();
        let mut notes = Vec::new();
        self.check_price(profile, &mut failures, &mut notes);
        self.check_location(profile, &mut failures, &mut notes);

        let mut haystack = profile.text.clone();
        if let Some(summary) = profile.metadata_text("summary") {
            haystack.push('\n');
            haystack.push_str(&summary);
        }
        for (i, pattern) in self.forbid.iter().enumerate() {
            // An empty match (from `\b`, `^`) forbids nothing.
            if let Some(found) = pattern
                .regex
                .find_iter(&haystack)
                .find(|m| !m.as_str().is_empty())
            {
                failures.push(
                    format!("forbid[{i}]"),
                    format!(
                        "rule forbid[{i}] {:?}: matched {:?}",
                        pattern.written,
                        snippet(found.as_str())
                    ),
                );
            }
        }
        for (i, pattern) in self.require.iter().enumerate() {
            if !pattern.regex.is_match(&haystack) {
                failures.push(
                    format!("require[{i}]"),
                    format!(
                        "rule require[{i}] {:?}: no match in text or summary",
                        pattern.written
                    ),
                );
            }
        }

        if failures.rules.is_empty() {
            RulesOutcome::Pass { notes }
        } else {
            RulesOutcome::Reject {
                rules: failures.rules,
                reasons: failures.reasons,
            }
        }
    }

    /// Rejects on `max` only when the whole interval is above it, and on
    /// `min` only when the whole interval is below it: "Offers over
    /// £410,000" may still sell within a £425,000 budget.
    fn check_price(&self, profile: &Profile, failures: &mut Failures, notes: &mut Vec<String>) {
        if self.price_min.is_none() && self.price_max.is_none() {
            return;
        }
        let raw = match profile.metadata.as_ref().and_then(|m| m.get("price")) {
            None | Some(Value::Null) => {
                notes.push("price unknown: no metadata.price".into());
                return;
            }
            Some(Value::String(s)) => s.clone(),
            // Printed and read like a string, so a JSON number goes through
            // the same plausibility checks as "385000".
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                notes.push(format!(
                    "price unknown: metadata.price is {}, expected a string or a number",
                    json_type_name(other)
                ));
                return;
            }
        };
        let range = parse_price(&raw);
        if let PriceRange::Unknown(why) = range {
            notes.push(format!("price unknown: {raw:?} ({why})"));
            return;
        }
        // The price as the listing wrote it, on one line, then as read.
        let written = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let shown = range.to_string();
        let stated = if shown == written {
            written
        } else {
            format!("{written} ({shown})")
        };
        if let (Some(min), Some(high)) = (self.price_min, range.high()) {
            if high < min {
                failures.push(
                    "price.min".into(),
                    format!(
                        "rule price.min: price {stated} is below the minimum {}",
                        Amount(min)
                    ),
                );
            }
        }
        if let (Some(max), Some(low)) = (self.price_max, range.low()) {
            if low > max {
                failures.push(
                    "price.max".into(),
                    format!(
                        "rule price.max: price {stated} is above the maximum {}",
                        Amount(max)
                    ),
                );
            }
        }
    }

    fn check_location(&self, profile: &Profile, failures: &mut Failures, notes: &mut Vec<String>) {
        if self.location.is_empty() {
            return;
        }
        let Some(location) = profile.metadata_text("location") else {
            notes.push("location unknown: no metadata.location".into());
            return;
        };
        if self.location.iter().any(|p| p.regex.is_match(&location)) {
            return;
        }
        let written: Vec<String> = self
            .location
            .iter()
            .map(|p| format!("{:?}", p.written))
            .collect();
        failures.push(
            "location".into(),
            format!(
                "rule location: {location:?} matches none of [{}]",
                written.join(", ")
            ),
        );
    }
}

/// The failed rule names and their reasons, kept in step.
#[derive(Default)]
struct Failures {
    rules: Vec<String>,
    reasons: Vec<String>,
}

impl Failures {
    fn push(&mut self, rule: String, reason: String) {
        self.rules.push(rule);
        self.reasons.push(reason);
    }
}

/// Parsing context: the source name every error starts with.
struct Ctx<'a> {
    source: &'a str,
}

impl Ctx<'_> {
    fn wrong_type(&self, field: &str, expected: &'static str, found: &Value) -> RulesError {
        RulesError::WrongType {
            source_name: self.source.to_string(),
            field: field.to_string(),
            expected,
            found: json_type_name(found),
        }
    }

    /// Refuses keys outside `allowed`, naming the first one (in key order)
    /// so a typo such as "prices" is caught instead of silently ignored.
    fn only_keys(
        &self,
        object: &Map<String, Value>,
        prefix: &str,
        allowed: &[&str],
    ) -> Result<(), RulesError> {
        match object.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(key) => Err(RulesError::UnknownField {
                source_name: self.source.to_string(),
                field: format!("{prefix}{key}"),
                expected: allowed
                    .iter()
                    .map(|k| format!("\"{prefix}{k}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// `price.min` / `price.max`: a finite number, zero or more.
    fn bound(&self, price: &Map<String, Value>, key: &str) -> Result<Option<f64>, RulesError> {
        let field = format!("price.{key}");
        match present(price, key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                _ => Err(RulesError::Invalid {
                    source_name: self.source.to_string(),
                    field,
                    problem: format!("must be a number of 0 or more, found {n}"),
                }),
            },
            Some(other) => Err(self.wrong_type(&field, "a number", other)),
        }
    }

    /// A list of case-insensitive regexes. A pattern that matches the empty
    /// string is refused: in `forbid` it would be meaningless and in
    /// `require` or `location` it would pass everything, so it is a mistake
    /// either way (e.g. a trailing `|`).
    fn patterns(&self, object: &Map<String, Value>, key: &str) -> Result<Vec<Pattern>, RulesError> {
        let items = match present(object, key) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(self.wrong_type(key, "an array of strings", other)),
        };
        let mut patterns = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let field = format!("{key}[{i}]");
            let written = match item {
                Value::String(s) => s,
                other => return Err(self.wrong_type(&field, "a string (a regex)", other)),
            };
            let regex = RegexBuilder::new(written)
                .case_insensitive(true)
                .build()
                .map_err(|e| RulesError::BadRegex {
                    source_name: self.source.to_string(),
                    field: field.clone(),
                    pattern: written.clone(),
                    message: regex_message(&e),
                })?;
            if regex.is_match("") {
                return Err(RulesError::Invalid {
                    source_name: self.source.to_string(),
                    field,
                    problem: format!(
                        "{written:?} matches the empty string, so it cannot tell listings apart"
                    ),
                });
            }
            patterns.push(Pattern {
                written: written.clone(),
                regex,
            });
        }
        Ok(patterns)
    }
}

/// A key's value, with `null` read as absent (templated configs often write
/// `"price": null` for "no price rule").
fn present<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

/// The one-line cause of a regex error. The crate's message spans several
/// lines (the pattern, a caret, then "error: ..."); a rules error is one
/// line in a log or a result file.
fn regex_message(error: &regex::Error) -> String {
    let full = error.to_string();
    full.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| full.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// serde_json's message without its trailing " at line L column C", which
/// the error already states.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The matched text on one line, cut to [`SNIPPET_CHARS`] characters.
fn snippet(matched: &str) -> String {
    let one_line = matched.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= SNIPPET_CHARS {
        one_line
    } else {
        let cut: String = one_line.chars().take(SNIPPET_CHARS).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(text: &str, metadata: Value) -> Profile {
        let value = json!({"text": text, "metadata": metadata});
        let bytes = serde_json::to_vec(&value).expect("serialises");
        Profile::from_slice(&bytes, "test.json")
            .expect("valid profile")
            .0
    }

    fn rules(json: &str) -> Rules {
        Rules::parse(json, "ASSESSOR_RULES").expect("valid rules")
    }

    fn parse_err(json: &str) -> String {
        Rules::parse(json, "ASSESSOR_RULES")
            .expect_err("rules should be refused")
            .to_string()
    }

    fn rejected(outcome: &RulesOutcome) -> Vec<String> {
        match outcome {
            RulesOutcome::Reject { rules, .. } => rules.clone(),
            RulesOutcome::Pass { .. } => Vec::new(),
        }
    }

    fn reasons(outcome: &RulesOutcome) -> Vec<String> {
        match outcome {
            RulesOutcome::Reject { reasons, .. } => reasons.clone(),
            RulesOutcome::Pass { .. } => Vec::new(),
        }
    }

    fn notes(outcome: &RulesOutcome) -> Vec<String> {
        match outcome {
            RulesOutcome::Pass { notes } => notes.clone(),
            RulesOutcome::Reject { .. } => Vec::new(),
        }
    }

    fn priced(price: Value) -> Profile {
        profile("A flat.", json!({ "price": price }))
    }

    #[test]
    fn empty_rules_pass_everything() {
        let r = rules("{}");
        assert!(r.is_empty());
        assert!(Rules::default().is_empty());
        assert!(rules(r#"{"price": {}, "require": [], "forbid": []}"#).is_empty());
        assert!(rules(r#"{"price": null}"#).is_empty());
        let outcome = r.evaluate(&priced(json!("£9,999,999")));
        assert_eq!(outcome, RulesOutcome::Pass { notes: vec![] });
        assert!(!rules(r#"{"price": {"max": 1}}"#).is_empty());
        assert!(!rules(r#"{"forbid": ["x"]}"#).is_empty());
    }

    #[test]
    fn price_max_rejects_only_whole_interval_above() {
        let r = rules(r#"{"price": {"max": 425000}}"#);
        let out = r.evaluate(&priced(json!("£2,950,000")));
        assert_eq!(rejected(&out), ["price.max"]);
        assert_eq!(
            reasons(&out),
            ["rule price.max: price £2,950,000 (2950000) is above the maximum 425000"]
        );
        assert_eq!(
            r.evaluate(&priced(json!("£425,000"))),
            RulesOutcome::Pass { notes: vec![] }
        );
        assert_eq!(
            r.evaluate(&priced(json!("£400k - £450k"))),
            RulesOutcome::Pass { notes: vec![] }
        );
        let over = r.evaluate(&priced(json!("£450k - £500k")));
        assert_eq!(
            reasons(&over),
            ["rule price.max: price £450k - £500k (450000 to 500000) is above the maximum 425000"]
        );
    }

    #[test]
    fn offers_over_is_a_floor() {
        let p = priced(json!("Offers in excess of £410,000"));
        let loose = rules(r#"{"price": {"max": 425000}}"#);
        assert_eq!(loose.evaluate(&p), RulesOutcome::Pass { notes: vec![] });
        let tight = rules(r#"{"price": {"max": 400000}}"#);
        let out = tight.evaluate(&p);
        assert_eq!(rejected(&out), ["price.max"]);
        assert_eq!(
            reasons(&out),
            [
                "rule price.max: price Offers in excess of £410,000 (410000 or more) is above the maximum 400000"
            ]
        );
        // With an open top, a minimum can never be failed.
        let min = rules(r#"{"price": {"min": 900000}}"#);
        assert_eq!(min.evaluate(&p), RulesOutcome::Pass { notes: vec![] });
    }

    #[test]
    fn price_min() {
        let r = rules(r#"{"price": {"min": 100000.5, "max": 425000}}"#);
        let out = r.evaluate(&priced(json!("£82,500")));
        assert_eq!(rejected(&out), ["price.min"]);
        assert_eq!(
            reasons(&out),
            ["rule price.min: price £82,500 (82500) is below the minimum 100000.5"]
        );
        assert_eq!(
            r.evaluate(&priced(json!("£90k-£110k"))),
            RulesOutcome::Pass { notes: vec![] }
        );
    }

    #[test]
    fn numeric_json_price() {
        let r = rules(r#"{"price": {"max": 425000}}"#);
        assert_eq!(
            r.evaluate(&priced(json!(385000))),
            RulesOutcome::Pass { notes: vec![] }
        );
        let out = r.evaluate(&priced(json!(875000)));
        assert_eq!(
            reasons(&out),
            ["rule price.max: price 875000 is above the maximum 425000"]
        );
        let multiline = r.evaluate(&priced(json!("Offers over\n£450,000")));
        assert_eq!(
            reasons(&multiline),
            [
                "rule price.max: price Offers over £450,000 (450000 or more) is above the maximum 425000"
            ]
        );
        let float = r.evaluate(&priced(json!(875000.0)));
        assert_eq!(rejected(&float), ["price.max"]);
        // Negative or tiny numbers are not plausible sale prices: unknown.
        assert!(matches!(
            r.evaluate(&priced(json!(-5))),
            RulesOutcome::Pass { .. }
        ));
    }

    #[test]
    fn unknown_or_missing_price_passes_with_a_note() {
        let r = rules(r#"{"price": {"max": 425000}}"#);
        assert_eq!(
            notes(&r.evaluate(&priced(json!("POA")))),
            ["price unknown: \"POA\" (no figure)"]
        );
        assert_eq!(
            notes(&r.evaluate(&priced(json!("£1,200 pcm")))),
            ["price unknown: \"£1,200 pcm\" (a rent, not a sale price)"]
        );
        assert_eq!(
            notes(&r.evaluate(&profile("A flat.", json!({})))),
            ["price unknown: no metadata.price"]
        );
        assert_eq!(
            notes(&r.evaluate(&priced(json!(true)))),
            ["price unknown: metadata.price is boolean, expected a string or a number"]
        );
        let no_metadata = Profile::from_slice(br#"{"text": "A flat."}"#, "t.json")
            .expect("valid")
            .0;
        assert_eq!(
            notes(&r.evaluate(&no_metadata)),
            ["price unknown: no metadata.price"]
        );
        // No price rule, no note.
        assert_eq!(
            notes(&rules("{}").evaluate(&priced(json!("POA")))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn location() {
        let r = rules(r#"{"location": ["bristol", "^bath\\b"]}"#);
        let ok = profile("x", json!({"location": "Southville, BRISTOL"}));
        assert_eq!(r.evaluate(&ok), RulesOutcome::Pass { notes: vec![] });
        let bath = profile("x", json!({"location": "Bath, Somerset"}));
        assert_eq!(r.evaluate(&bath), RulesOutcome::Pass { notes: vec![] });
        let away = profile("x", json!({"location": "Bibury, Gloucestershire"}));
        let out = r.evaluate(&away);
        assert_eq!(rejected(&out), ["location"]);
        assert_eq!(
            reasons(&out),
            [r#"rule location: "Bibury, Gloucestershire" matches none of ["bristol", "^bath\\b"]"#]
        );
        let missing = profile("x", json!({}));
        assert_eq!(
            notes(&r.evaluate(&missing)),
            ["location unknown: no metadata.location"]
        );
        let blank = profile("x", json!({"location": "  "}));
        assert_eq!(
            notes(&r.evaluate(&blank)),
            ["location unknown: no metadata.location"]
        );
    }

    #[test]
    fn forbid() {
        let r = rules(r#"{"forbid": ["shared ownership", "\\bauction\\b"]}"#);
        let so = profile("Shared ownership: buy a 25% share.", json!({}));
        let out = r.evaluate(&so);
        assert_eq!(rejected(&out), ["forbid[0]"]);
        assert_eq!(
            reasons(&out),
            [r#"rule forbid[0] "shared ownership": matched "Shared ownership""#]
        );
        // The summary counts too.
        let in_summary = profile(
            "A house.",
            json!({"summary": "3 bed house for sale by Auction"}),
        );
        assert_eq!(rejected(&r.evaluate(&in_summary)), ["forbid[1]"]);
        // Word boundaries hold: "auctioneer" is not "auction".
        let fine = profile("Sold by a local auctioneer last year.", json!({}));
        assert_eq!(r.evaluate(&fine), RulesOutcome::Pass { notes: vec![] });
    }

    #[test]
    fn forbid_snippet_is_short_and_one_line() {
        let r = rules(r#"{"forbid": ["needs.*work"]}"#);
        let long = format!("It needs {}\t work.", "a lot of ".repeat(20));
        let out = r.evaluate(&profile(&long, json!({})));
        let reason = &reasons(&out)[0];
        assert!(reason.starts_with(r#"rule forbid[0] "needs.*work": matched "needs a lot"#));
        assert!(reason.ends_with("…\""), "{reason}");
        assert!(!reason.contains('\t'));
        assert!(reason.chars().count() < 120, "{reason}");
    }

    #[test]
    fn forbid_never_matches_empty() {
        // `\b` passes the empty-string check but only ever matches empty.
        let r = rules(r#"{"forbid": ["\\b"]}"#);
        assert_eq!(
            r.evaluate(&profile("Anything at all.", json!({}))),
            RulesOutcome::Pass { notes: vec![] }
        );
    }

    #[test]
    fn require() {
        let r = rules(r#"{"require": ["garden|balcony", "two bed|2 bed"]}"#);
        let ok = profile(
            "Flat with a Balcony.",
            json!({"summary": "2 bedroom flat for sale"}),
        );
        assert_eq!(r.evaluate(&ok), RulesOutcome::Pass { notes: vec![] });
        let none = profile("Basement flat.", json!({"summary": "1 bedroom flat"}));
        let out = r.evaluate(&none);
        assert_eq!(rejected(&out), ["require[0]", "require[1]"]);
        assert_eq!(
            reasons(&out),
            [
                r#"rule require[0] "garden|balcony": no match in text or summary"#,
                r#"rule require[1] "two bed|2 bed": no match in text or summary"#,
            ]
        );
    }

    #[test]
    fn all_failures_are_collected_in_order() {
        let r = rules(
            r#"{
                "require": ["garden"],
                "forbid": ["retirement", "over 55s?"],
                "location": ["bristol"],
                "price": {"min": 150000, "max": 425000}
            }"#,
        );
        let p = profile(
            "Retirement flat for the over 55s.",
            json!({"price": "£125,000", "location": "Bibury, Gloucestershire"}),
        );
        let out = r.evaluate(&p);
        assert_eq!(
            rejected(&out),
            [
                "price.min",
                "location",
                "forbid[0]",
                "forbid[1]",
                "require[0]"
            ]
        );
        assert_eq!(
            reasons(&out),
            [
                "rule price.min: price £125,000 (125000) is below the minimum 150000",
                r#"rule location: "Bibury, Gloucestershire" matches none of ["bristol"]"#,
                r#"rule forbid[0] "retirement": matched "Retirement""#,
                r#"rule forbid[1] "over 55s?": matched "over 55s""#,
                r#"rule require[0] "garden": no match in text or summary"#,
            ]
        );
    }

    #[test]
    fn bad_rules_are_refused_with_the_field() {
        assert_eq!(
            parse_err(r#"{"prices": {}}"#),
            r#"ASSESSOR_RULES: unknown field "prices"; expected one of "price", "require", "forbid", "location", "facts", "accept_on_facts""#
        );
        assert_eq!(
            parse_err(r#"{"price": {"maximum": 1}}"#),
            r#"ASSESSOR_RULES: unknown field "price.maximum"; expected one of "price.min", "price.max""#
        );
        assert_eq!(
            parse_err(r#"{"price": {"max": "425000"}}"#),
            r#"ASSESSOR_RULES: field "price.max" must be a number, found string"#
        );
        assert_eq!(
            parse_err(r#"{"price": {"min": -1}}"#),
            r#"ASSESSOR_RULES: field "price.min" must be a number of 0 or more, found -1"#
        );
        assert_eq!(
            parse_err(r#"{"price": 425000}"#),
            r#"ASSESSOR_RULES: field "price" must be an object, found number"#
        );
        assert_eq!(
            parse_err(r#"{"price": {"min": 500000, "max": 425000}}"#),
            r#"ASSESSOR_RULES: field "price.min" (500000) is greater than field "price.max" (425000), so no price could pass"#
        );
        assert_eq!(
            parse_err(r#"{"forbid": ["a", "b", "("]}"#),
            r#"ASSESSOR_RULES: field "forbid[2]": invalid regex "(": unclosed group"#
        );
        assert_eq!(
            parse_err(r#"{"require": "garden"}"#),
            r#"ASSESSOR_RULES: field "require" must be an array of strings, found string"#
        );
        assert_eq!(
            parse_err(r#"{"location": ["bristol", 5]}"#),
            r#"ASSESSOR_RULES: field "location[1]" must be a string (a regex), found number"#
        );
        assert_eq!(
            parse_err(r#"{"location": []}"#),
            r#"ASSESSOR_RULES: field "location" must list at least one pattern (leave it out to accept any location)"#
        );
        assert_eq!(
            parse_err(r#"{"forbid": ["auction|"]}"#),
            r#"ASSESSOR_RULES: field "forbid[0]" "auction|" matches the empty string, so it cannot tell listings apart"#
        );
        assert_eq!(
            parse_err(r#"{"require": [""]}"#),
            r#"ASSESSOR_RULES: field "require[0]" "" matches the empty string, so it cannot tell listings apart"#
        );
        assert_eq!(
            parse_err("[]"),
            r#"ASSESSOR_RULES: expected a JSON object of rules (keys "price", "require", "forbid", "location"), found array"#
        );
        assert_eq!(
            parse_err("{\"price\": "),
            "ASSESSOR_RULES: is not valid JSON at line 1, column 10: EOF while parsing a value"
        );
        let other_source = Rules::parse("{\"x\": 1}", "config.json: ASSESSOR_RULES")
            .expect_err("unknown key")
            .to_string();
        assert!(
            other_source.starts_with("config.json: ASSESSOR_RULES: unknown field \"x\""),
            "{other_source}"
        );
    }

    /// The sample profiles in examples/samples, judged with the rules a user
    /// would derive from BRIEF.md. Labelled "accept" must never be rejected
    /// by rules; rejects that need judgement (s03: no outside space) must
    /// reach the next stage.
    #[test]
    fn sample_profiles() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/samples"));
        let r = rules(
            r#"{"price":{"max":425000},"location":["bristol"],"forbid":["shared ownership","retirement","over 55","\\bauction\\b","total renovation","complete renovation"]}"#,
        );
        let labels: Map<String, Value> = serde_json::from_slice(
            &std::fs::read(dir.join("labels.json"))
                .unwrap_or_else(|e| panic!("reading {}/labels.json: {e}", dir.display())),
        )
        .expect("labels.json is an object");
        let expected: &[(&str, &[&str])] = &[
            ("s01", &[]),
            ("s02", &["price.max"]),
            ("s03", &[]),
            ("s04", &[]),
            ("s05", &["forbid[0]"]),
            ("s06", &[]),
            ("s07", &["forbid[1]", "forbid[2]"]),
            ("s08", &["location"]),
            ("s09", &["forbid[3]", "forbid[4]"]),
            ("s10", &[]),
            ("s11", &["price.max"]),
            ("s12", &[]),
        ];
        assert_eq!(
            labels.len(),
            expected.len(),
            "labels.json covers every sample"
        );
        for (name, want) in expected {
            let path = dir.join(format!("{name}.json"));
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let (p, _) = Profile::from_slice(&bytes, name).expect("sample profile is valid");
            let outcome = r.evaluate(&p);
            assert_eq!(rejected(&outcome), *want, "{name}: {outcome:?}");
            if labels.get(*name).and_then(Value::as_str) == Some("accept") {
                assert!(
                    matches!(outcome, RulesOutcome::Pass { .. }),
                    "{name} is labelled accept but rules rejected it: {outcome:?}"
                );
            }
        }
        let s11 = std::fs::read(dir.join("s11.json")).expect("s11.json");
        let (p, _) = Profile::from_slice(&s11, "s11").expect("valid");
        assert_eq!(
            reasons(&r.evaluate(&p)),
            ["rule price.max: price £875,000 (875000) is above the maximum 425000"]
        );
    }
}
