//! The `fixed` judge: always the same verdict, no I/O. What the original
//! "optimistic" dummy assessor did; used to test a deployment's wiring (relay,
//! notifier, Job completion) without a model.

use shortlist_contract::{BackendInfo, DecidedBy, Verdict};

use super::{Decision, Judge, JudgeFuture, JudgeRequest, JudgeStats};

pub(crate) struct FixedJudge {
    verdict: Verdict,
}

impl FixedJudge {
    pub(crate) fn new(verdict: Verdict) -> Self {
        FixedJudge { verdict }
    }
}

impl Judge for FixedJudge {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "fixed".into(),
            model: Some(self.verdict.as_str().into()),
        }
    }

    fn timing_key(&self) -> &'static str {
        "fixed"
    }

    fn judge<'a>(&'a self, _request: &'a JudgeRequest<'a>) -> JudgeFuture<'a> {
        let decision = Decision {
            verdict: self.verdict,
            score: None,
            reasons: vec![format!("fixed backend: always {}", self.verdict.as_str())],
            score_source: None,
            decided_by: DecidedBy::Fixed,
        };
        Box::pin(async move { (Ok(decision), JudgeStats::default()) })
    }
}
