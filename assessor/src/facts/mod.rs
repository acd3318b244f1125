//! The facts stage: the brief's checkable criteria as typed facts of the
//! listing (bedrooms, outdoor space, tenure, ...), read first by the
//! declared patterns where a listing says it plainly ("2 bed", "south-facing
//! balcony"), then asked of the judge one narrow, constrained question at a
//! time; the conditions on them then decide.
//!
//! Why: a small model cannot weigh a whole brief (the demo model accepts
//! nearly everything it is asked to judge), but it can pick one of six
//! words, and a pattern cannot get "two bedroom" wrong. So the holistic
//! judge is asked only when the facts cannot decide:
//! - a known fact that fails its condition rejects (`decided_by: "facts"`);
//! - every fact with a condition known and passing accepts, unless the rule
//!   set says `"accept_on_facts": false` (then the judge decides);
//! - otherwise (something unknown, nothing failed) the judge decides.
//!
//! A fact is never guessed: what neither a pattern nor a confident answer
//! gives is `unknown`, and an unknown never rejects.

mod calibration;
pub(crate) mod question;
pub(crate) mod spec;

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use shortlist_contract::{FactRecord, FactSource, Profile};

use crate::judge::{Judge, JudgeError, JudgeStats};

pub(crate) use spec::FactsError;
use spec::{Condition, FactSpec, FactType};

/// The version of how facts are asked and decided (the question's wording,
/// calibration, the confidence bar), in every result's fingerprint: a
/// change re-judges results decided the old way.
pub(crate) const FACTS_METHOD: u32 = 1;

/// A model's answer counts only at this probability or more (among the
/// allowed answers, from its own token distribution); below it the fact
/// stays unknown. An answer whose probability the judge cannot tell (a
/// server without logprobs) counts as given.
pub(crate) const MIN_ANSWER_PROBABILITY: f64 = 0.5;
/// Evidence is quoted up to this many characters.
const EVIDENCE_CHARS: usize = 80;

/// The words an integer pattern may capture instead of digits.
const NUMBER_WORDS: [&str; 13] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];

/// A fact's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FactValue {
    Integer(i64),
    Choice(String),
    Boolean(bool),
    Unknown,
}

impl FactValue {
    fn to_json(&self) -> Value {
        match self {
            FactValue::Integer(n) => Value::from(*n),
            FactValue::Choice(s) => Value::from(s.as_str()),
            FactValue::Boolean(b) => Value::from(*b),
            FactValue::Unknown => Value::from("unknown"),
        }
    }

    fn shown(&self) -> String {
        match self {
            FactValue::Choice(s) => format!("{s:?}"),
            other => other.to_json().to_string(),
        }
    }
}

/// One fact as found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub(crate) value: FactValue,
    pub(crate) source: FactSource,
    pub(crate) evidence: Option<String>,
    pub(crate) probability: Option<f64>,
    /// Why it is unknown when patterns disagreed, for the notes.
    pub(crate) note: Option<String>,
}

impl Finding {
    fn unknown(note: Option<String>) -> Self {
        Finding {
            value: FactValue::Unknown,
            source: FactSource::None,
            evidence: None,
            probability: None,
            note,
        }
    }
}

/// What the facts decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FactsOutcome {
    /// A known fact failed its condition; one reason per failure.
    Reject(Vec<String>),
    /// Every fact with a condition is known and passes.
    Accept(Vec<String>),
    /// The judge decides; the notes say what was unknown.
    Undecided(Vec<String>),
}

/// Each fact question's content-free answer distribution, measured once per
/// run (see [`Facts::ask`]).
#[derive(Debug, Default)]
pub(crate) struct Priors(Mutex<HashMap<String, Vec<f64>>>);

impl Priors {
    fn get(&self, fact: &str) -> Option<Vec<f64>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(fact)
            .cloned()
    }

    fn put(&self, fact: &str, prior: Vec<f64>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fact.to_string(), prior);
    }
}

/// The declared facts of a rule set; empty: the stage is off.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    specs: Vec<FactSpec>,
    accept_on_facts: bool,
}

impl Facts {
    /// Parses a rule set's `facts` list; `accept_on_facts` is the rule
    /// set's switch (default true).
    pub(crate) fn parse(
        value: &Value,
        accept_on_facts: bool,
        source: &str,
    ) -> Result<Facts, FactsError> {
        Ok(Facts {
            specs: spec::parse(value, source)?,
            accept_on_facts,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Every fact as the patterns read it, in declaration order.
    pub(crate) fn by_patterns(&self, profile: &Profile) -> Vec<Finding> {
        let mut haystack = String::new();
        if let Some(summary) = profile.metadata_text("summary") {
            haystack.push_str(&summary);
            haystack.push('\n');
        }
        haystack.push_str(&profile.text);
        self.specs
            .iter()
            .map(|spec| read_by_patterns(spec, &haystack))
            .collect()
    }

    /// The facts to ask the judge about: not found by a pattern, and
    /// declared to be asked.
    pub(crate) fn to_ask(&self, findings: &[Finding]) -> Vec<usize> {
        self.specs
            .iter()
            .zip(findings)
            .enumerate()
            .filter(|(_, (spec, found))| spec.ask && found.value == FactValue::Unknown)
            .map(|(i, _)| i)
            .collect()
    }

    /// Asks the judge fact `index`'s question about `profile`, and
    /// calibrates the answer when the judge gives every choice's
    /// probability: the same question about a content-free listing (asked
    /// once per fact and run, kept in `priors`) measures what the judge
    /// answers with no evidence, and that lean is divided out. Returns the
    /// finding (None: this judge does not answer questions) and the cost
    /// of every request made.
    pub(crate) async fn ask(
        &self,
        index: usize,
        judge: &dyn Judge,
        profile: &Profile,
        nonce: &str,
        priors: &Priors,
    ) -> (Result<Option<Finding>, JudgeError>, Vec<JudgeStats>) {
        let spec = &self.specs[index];
        let mut costs = Vec::new();
        let (answer, stats) = judge.ask(&question::build(spec, profile, nonce)).await;
        costs.push(stats);
        let mut answer = match answer {
            Ok(Some(answer)) => answer,
            other => return (other.map(|_| None), costs),
        };
        if let Some(observed) = answer.distribution.clone() {
            let prior = match priors.get(&spec.name) {
                Some(prior) => Some(prior),
                None => {
                    let (prior, stats) = judge.ask(&question::content_free(spec, nonce)).await;
                    costs.push(stats);
                    let prior = prior.ok().flatten().and_then(|a| a.distribution);
                    if let Some(prior) = &prior {
                        priors.put(&spec.name, prior.clone());
                    }
                    prior
                }
            };
            if let Some(prior) = prior.filter(|p| p.len() == observed.len()) {
                let calibrated = calibration::calibrate(&observed, &prior);
                if let Some((best, p)) = calibration::best(&calibrated) {
                    tracing::debug!(fact = %spec.name, ?observed, ?prior, ?calibrated, "answer calibrated");
                    answer.choice = question::choices(&spec.kind)[best].clone();
                    answer.probability = Some(p);
                }
            }
        }
        (Ok(Some(self.answered(index, &answer, profile))), costs)
    }

    /// A judge's answer to fact `index`'s question, as a finding: unknown
    /// when it says so, names no allowed answer, or is not confident.
    pub(crate) fn answered(
        &self,
        index: usize,
        answer: &crate::judge::Answer,
        profile: &Profile,
    ) -> Finding {
        let spec = &self.specs[index];
        let value = question::parse_answer(&spec.kind, &answer.choice);
        if value == FactValue::Unknown {
            return Finding::unknown(None);
        }
        if let Some(p) = answer.probability {
            if p < MIN_ANSWER_PROBABILITY {
                return Finding::unknown(Some(format!(
                    "{}: the judge's answer {} had probability {p:.2}, below {MIN_ANSWER_PROBABILITY}",
                    spec.name,
                    value.shown()
                )));
            }
        }
        Finding {
            evidence: question::evidence_for(&answer.choice, &profile.text).map(|e| evidence(&e)),
            value,
            source: FactSource::Model,
            probability: answer.probability.map(|p| (p * 1000.0).round() / 1000.0),
            note: None,
        }
    }

    /// The result's `facts`.
    pub(crate) fn records(&self, findings: &[Finding]) -> Vec<FactRecord> {
        self.specs
            .iter()
            .zip(findings)
            .map(|(spec, found)| FactRecord {
                name: spec.name.clone(),
                value: found.value.to_json(),
                source: found.source,
                evidence: found.evidence.clone(),
                probability: found.probability,
            })
            .collect()
    }

    /// What the facts decide (see the module's doc).
    pub(crate) fn decide(&self, findings: &[Finding]) -> FactsOutcome {
        let mut failures = Vec::new();
        let mut passes = Vec::new();
        let mut unknown = Vec::new();
        for (spec, found) in self.specs.iter().zip(findings) {
            let Some(condition) = &spec.condition else {
                continue;
            };
            let stated = |found: &Finding| {
                let from = match (&found.source, &found.evidence, found.probability) {
                    (FactSource::Pattern, Some(e), _) => format!(" (read from {e:?})"),
                    (FactSource::Model, _, Some(p)) => format!(" (the judge, p={p:.2})"),
                    (FactSource::Model, _, None) => " (the judge)".to_string(),
                    _ => String::new(),
                };
                format!("{} = {}{from}", spec.name, found.value.shown())
            };
            match passes_condition(condition, &found.value) {
                None => unknown.push(spec.name.clone()),
                Some(true) => passes.push(stated(found)),
                Some(false) => failures.push(format!(
                    "fact {}: the brief needs {}",
                    stated(found),
                    describe(condition)
                )),
            }
        }
        if !failures.is_empty() {
            return FactsOutcome::Reject(failures);
        }
        if unknown.is_empty() && !passes.is_empty() && self.accept_on_facts {
            return FactsOutcome::Accept(
                passes
                    .into_iter()
                    .map(|p| format!("fact {p}: as the brief needs"))
                    .collect(),
            );
        }
        // What is known is worth saying beside the judge's own reasons.
        let mut notes: Vec<String> = passes
            .into_iter()
            .map(|p| format!("{p}, as the brief needs"))
            .collect();
        notes.extend(findings.iter().filter_map(|f| f.note.clone()));
        if !unknown.is_empty() {
            notes.push(format!("facts unknown: {}", unknown.join(", ")));
        }
        FactsOutcome::Undecided(notes)
    }
}

/// Some(pass) for a known value, None for unknown.
fn passes_condition(condition: &Condition, value: &FactValue) -> Option<bool> {
    Some(match (condition, value) {
        (_, FactValue::Unknown) => return None,
        (Condition::Range { min, max }, FactValue::Integer(n)) => {
            min.is_none_or(|m| *n >= m) && max.is_none_or(|m| *n <= m)
        }
        (Condition::Allowed(list), FactValue::Choice(v)) => list.contains(v),
        (Condition::Forbidden(list), FactValue::Choice(v)) => !list.contains(v),
        (Condition::MustBe(b), FactValue::Boolean(v)) => b == v,
        // A value of another type than the condition's cannot be judged.
        _ => return None,
    })
}

fn describe(condition: &Condition) -> String {
    match condition {
        Condition::Range {
            min: Some(lo),
            max: Some(hi),
        } => format!("{lo} to {hi}"),
        Condition::Range { min: Some(lo), .. } => format!("at least {lo}"),
        Condition::Range { max: Some(hi), .. } => format!("at most {hi}"),
        Condition::Range { .. } => "any number".into(),
        Condition::Allowed(list) => format!("one of {}", quoted(list)),
        Condition::Forbidden(list) => format!("none of {}", quoted(list)),
        Condition::MustBe(b) => format!("{b}"),
    }
}

fn quoted(list: &[String]) -> String {
    list.iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fact as its patterns read it from `haystack` (summary, then text).
fn read_by_patterns(spec: &FactSpec, haystack: &str) -> Finding {
    match &spec.kind {
        FactType::Integer => {
            let mut seen: Vec<(i64, String)> = Vec::new();
            for pattern in spec.patterns.iter().flat_map(|(_, p)| p) {
                for captures in pattern.regex.captures_iter(haystack) {
                    let (Some(whole), Some(number)) = (captures.get(0), captures.get(1)) else {
                        continue;
                    };
                    if let Some(n) = read_number(number.as_str()) {
                        if !seen.iter().any(|(m, _)| *m == n) {
                            seen.push((n, whole.as_str().to_string()));
                        }
                    }
                }
            }
            match seen.as_slice() {
                [] => Finding::unknown(None),
                [(n, matched)] => Finding {
                    value: FactValue::Integer(*n),
                    source: FactSource::Pattern,
                    evidence: Some(evidence(matched)),
                    probability: None,
                    note: None,
                },
                several => Finding::unknown(Some(format!(
                    "{}: the listing states several values ({})",
                    spec.name,
                    several
                        .iter()
                        .map(|(_, m)| format!("{:?}", evidence(m)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        }
        FactType::Enum(_) | FactType::Boolean => {
            for (value, patterns) in &spec.patterns {
                let found = patterns
                    .iter()
                    .find_map(|p| p.regex.find(haystack).filter(|m| !m.as_str().is_empty()));
                if let Some(matched) = found {
                    let value = match spec.kind {
                        FactType::Boolean => FactValue::Boolean(value == "true"),
                        _ => FactValue::Choice(value.clone()),
                    };
                    return Finding {
                        value,
                        source: FactSource::Pattern,
                        evidence: Some(evidence(matched.as_str())),
                        probability: None,
                        note: None,
                    };
                }
            }
            Finding::unknown(None)
        }
    }
}

/// Digits or a number word ("two"), as an integer fact's capture.
fn read_number(captured: &str) -> Option<i64> {
    let captured = captured.trim().to_lowercase();
    if let Ok(n) = captured.parse::<i64>() {
        return (0..=1000).contains(&n).then_some(n);
    }
    NUMBER_WORDS
        .iter()
        .position(|w| *w == captured)
        .map(|n| n as i64)
}

/// Matched text on one line, cut to [`EVIDENCE_CHARS`].
fn evidence(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= EVIDENCE_CHARS {
        one_line
    } else {
        let cut: String = one_line.chars().take(EVIDENCE_CHARS).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> Facts {
        Facts::parse(
            &json!([
                {"name": "bedrooms", "type": "integer", "question": "How many bedrooms?",
                 "patterns": ["\\b(\\d+|one|two|three|four|five|six)[- ]?(?:double |single )?bed(?:room)?s?\\b"],
                 "min": 2},
                {"name": "outdoor_space", "type": "enum",
                 "values": ["private garden", "balcony", "terrace", "communal only", "none"],
                 "question": "What outdoor space?",
                 "patterns": {
                    "private garden": ["\\b(private|rear|own) garden\\b"],
                    "balcony": ["\\bbalcon(y|ies)\\b"],
                    "communal only": ["\\bcommunal gardens?\\b"],
                    "none": ["\\bno (outside|outdoor) space\\b"]},
                 "allowed": ["private garden", "balcony", "terrace"]},
                {"name": "lift", "type": "boolean", "question": "A lift?",
                 "patterns": {"true": ["\\blift\\b"]}}
            ]),
            true,
            "rules",
        )
        .unwrap()
    }

    fn profile(text: &str, summary: Option<&str>) -> Profile {
        let mut value = json!({"text": text});
        if let Some(s) = summary {
            value["metadata"] = json!({"summary": s});
        }
        Profile::from_slice(&serde_json::to_vec(&value).unwrap(), "p.json")
            .unwrap()
            .0
    }

    fn values(findings: &[Finding]) -> Vec<FactValue> {
        findings.iter().map(|f| f.value.clone()).collect()
    }

    #[test]
    fn patterns_read_numbers_words_and_values_by_priority() {
        let f = facts();
        let found = f.by_patterns(&profile(
            "Two bedroom flat with a shared communal garden and a private balcony, and a lift.",
            Some("2 bedroom flat for sale"),
        ));
        assert_eq!(
            values(&found),
            [
                FactValue::Integer(2),
                FactValue::Choice("balcony".into()),
                FactValue::Boolean(true)
            ]
        );
        assert_eq!(found[0].evidence.as_deref(), Some("2 bedroom"));
        assert_eq!(found[1].source, FactSource::Pattern);
        assert_eq!(
            f.decide(&found),
            FactsOutcome::Accept(vec![
                "fact bedrooms = 2 (read from \"2 bedroom\"): as the brief needs".into(),
                "fact outdoor_space = \"balcony\" (read from \"balcony\"): as the brief needs"
                    .into(),
            ])
        );
    }

    #[test]
    fn a_failing_fact_rejects_and_an_unknown_one_leaves_it_to_the_judge() {
        let f = facts();
        let one_bed = f.by_patterns(&profile(
            "One bedroom basement flat, no outside space.",
            None,
        ));
        match f.decide(&one_bed) {
            FactsOutcome::Reject(reasons) => {
                assert_eq!(reasons.len(), 2, "{reasons:?}");
                assert!(reasons[0].contains("at least 2"), "{reasons:?}");
                assert!(reasons[1].contains("\"none\""), "{reasons:?}");
            }
            other => panic!("{other:?}"),
        }
        let silent = f.by_patterns(&profile("Three bed house near the park.", None));
        assert_eq!(
            f.to_ask(&silent),
            [1],
            "only the unknown fact with a condition"
        );
        assert_eq!(
            f.decide(&silent),
            FactsOutcome::Undecided(vec![
                "bedrooms = 3 (read from \"Three bed\"), as the brief needs".into(),
                "facts unknown: outdoor_space".into()
            ])
        );
    }

    #[test]
    fn disagreeing_numbers_are_unknown_not_guessed() {
        let f = facts();
        let found = f.by_patterns(&profile("3 bed house with a 1 bedroom annexe", None));
        assert_eq!(found[0].value, FactValue::Unknown);
        assert!(found[0].note.as_deref().unwrap().contains("several values"));
    }

    #[test]
    fn a_confident_answer_counts_and_an_unsure_one_does_not() {
        let f = facts();
        let p = profile("Three bed house with a lovely sunny balcony.", None);
        let sure = crate::judge::Answer {
            choice: "balcony".into(),
            probability: Some(0.83),
            distribution: None,
        };
        let found = f.answered(1, &sure, &p);
        assert_eq!(found.value, FactValue::Choice("balcony".into()));
        assert_eq!(found.source, FactSource::Model);
        assert_eq!(
            found.evidence.as_deref(),
            Some("Three bed house with a lovely sunny balcony")
        );
        let unsure = crate::judge::Answer {
            choice: "none".into(),
            probability: Some(0.3),
            distribution: None,
        };
        assert_eq!(f.answered(1, &unsure, &p).value, FactValue::Unknown);
        let unknown = crate::judge::Answer {
            choice: "unknown".into(),
            probability: Some(0.9),
            distribution: None,
        };
        assert_eq!(f.answered(1, &unknown, &p).value, FactValue::Unknown);
    }

    #[test]
    fn accept_on_facts_false_leaves_a_pass_to_the_judge() {
        let mut f = facts();
        f.accept_on_facts = false;
        let found = f.by_patterns(&profile("Two bed flat with a balcony.", None));
        assert_eq!(
            f.decide(&found),
            FactsOutcome::Undecided(vec![
                "bedrooms = 2 (read from \"Two bed\"), as the brief needs".into(),
                "outdoor_space = \"balcony\" (read from \"balcony\"), as the brief needs".into()
            ])
        );
    }
}
