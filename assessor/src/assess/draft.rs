//! The result of one assessment as its stages fill it in: timings, tokens,
//! attempts and captions are known before the outcome, and go into the
//! result whatever the outcome is.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;
use shortlist_contract::profile::stable_id;
use shortlist_contract::result::now_rfc3339;
use shortlist_contract::{
    AssessmentResult, AssessorInfo, BackendInfo, CaptionRecord, DecidedBy, ErrorInfo, ErrorKind,
    FactRecord, RESULT_SCHEMA_ID, ScoreSource, Status, Usage, Verdict,
};

use crate::exit::Exit;

/// How an assessment ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ending {
    /// A stage decided.
    Decided {
        verdict: Verdict,
        score: Option<f64>,
        score_source: Option<ScoreSource>,
        reasons: Vec<String>,
        decided_by: DecidedBy,
    },
    /// It could not be decided: an error result and this exit code.
    Failed {
        kind: ErrorKind,
        message: String,
        exit: Exit,
    },
}

/// The parts of a result known before the outcome.
pub(crate) struct Draft {
    started: Instant,
    backend: BackendInfo,
    timings: BTreeMap<String, u64>,
    pub(crate) attempts: u32,
    usage: Option<Usage>,
    pub(crate) captions: Option<Vec<CaptionRecord>>,
    pub(crate) cached: Option<bool>,
    /// The facts stage's findings, when facts are declared.
    pub(crate) facts: Option<Vec<FactRecord>>,
}

impl Draft {
    pub(crate) fn new(backend: BackendInfo, started: Instant) -> Self {
        Draft {
            started,
            backend,
            timings: BTreeMap::new(),
            attempts: 0,
            usage: None,
            captions: None,
            cached: None,
            facts: None,
        }
    }

    /// Adds a stage's tokens (the vision requests', the judge's); the judge's
    /// speed figures are kept as it reported them.
    pub(crate) fn add_usage(&mut self, usage: Option<Usage>) {
        let Some(usage) = usage else { return };
        match &mut self.usage {
            None => self.usage = Some(usage),
            Some(total) => {
                total.prompt_tokens += usage.prompt_tokens;
                total.completion_tokens += usage.completion_tokens;
                total.prompt_tokens_per_second = usage
                    .prompt_tokens_per_second
                    .or(total.prompt_tokens_per_second);
                total.generation_tokens_per_second = usage
                    .generation_tokens_per_second
                    .or(total.generation_tokens_per_second);
            }
        }
    }

    /// Records how long a stage took, from `since` to now.
    pub(crate) fn time(&mut self, stage: &str, since: Instant) {
        self.timings
            .insert(stage.to_string(), since.elapsed().as_millis() as u64);
    }

    /// Records a timing a stage measured itself.
    pub(crate) fn timing(&mut self, stage: &str, ms: u64) {
        self.timings.insert(stage.to_string(), ms);
    }

    /// The result and the exit code; `profile` is `None` when it could not
    /// be read.
    pub(crate) fn finish(
        mut self,
        profile: Option<Value>,
        ending: Ending,
    ) -> (AssessmentResult, Exit) {
        self.time("total", self.started);
        let mut result = AssessmentResult {
            schema: Some(RESULT_SCHEMA_ID.to_string()),
            id: profile.as_ref().map(stable_id),
            status: Some(Status::Ok),
            verdict: None,
            score: None,
            reasons: Some(Vec::new()),
            decided_by: None,
            score_source: None,
            facts: self.facts,
            profile,
            backend: Some(self.backend),
            usage: Some(self.usage),
            timings_ms: Some(self.timings),
            captions: self.captions,
            cached: self.cached,
            attempts: Some(self.attempts),
            error: Some(None),
            assessor: Some(assessor_info()),
            assessed_at: Some(now_rfc3339()),
            fingerprint: None,
            extra: Default::default(),
        };
        match ending {
            Ending::Decided {
                verdict,
                score,
                score_source,
                reasons,
                decided_by,
            } => {
                result.verdict = Some(verdict);
                result.score = score;
                result.score_source = score.and(score_source);
                result.reasons = Some(reasons);
                result.decided_by = Some(decided_by);
                (result, Exit::Assessed)
            }
            Ending::Failed {
                kind,
                message,
                exit,
            } => {
                result.status = Some(Status::Error);
                result.error = Some(Some(ErrorInfo { kind, message }));
                (result, exit)
            }
        }
    }
}

/// Name and version written into every result's `assessor` field.
fn assessor_info() -> AssessorInfo {
    AssessorInfo {
        name: env!("CARGO_PKG_NAME").to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}
