//! The forward-or-skip decision for one parsed result: a pure function of
//! the result and the [`Policy`], so every case is a unit test and the event
//! loop only acts on the answer.

use shortlist_contract::{AssessmentResult, ErrorKind, Status, Verdict};

/// What the relay forwards.
///
/// Only `accept` verdicts are forwarded (a missing or `null` verdict, or
/// `reject`, is not); of those, a result with a score below `min_score` is
/// held back, and a result without a score always passes (a minimal custom
/// assessor writes none).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Policy {
    /// RELAY_MIN_SCORE, in 0..=1 (checked at start-up).
    pub(crate) min_score: Option<f64>,
}

/// Why a result is not forwarded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Skip {
    /// The verdict is `reject`, or `null`/missing (`None`).
    NotAccepted { verdict: Option<Verdict> },
    /// Accepted, but scored below RELAY_MIN_SCORE.
    BelowMinScore { score: f64, min_score: f64 },
}

/// What to do with one result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Deliver it to every target.
    Forward,
    /// Log it and count it as rejected.
    Skip(Skip),
    /// The assessor reported `status: "error"`: nothing to deliver, and the
    /// relay's exit code says so (the Job may retry). `kind` and `message`
    /// are the result's `error`, when it has one.
    AssessorError {
        kind: Option<ErrorKind>,
        message: Option<String>,
    },
}

/// Decides one result. An error status wins over any verdict it carries.
pub(crate) fn decide(result: &AssessmentResult, policy: &Policy) -> Decision {
    if result.effective_status() == Status::Error {
        let error = result.error.clone().flatten();
        return Decision::AssessorError {
            kind: error.as_ref().map(|e| e.kind.clone()),
            message: error.map(|e| e.message),
        };
    }
    if result.verdict != Some(Verdict::Accept) {
        return Decision::Skip(Skip::NotAccepted {
            verdict: result.verdict,
        });
    }
    if let (Some(min_score), Some(score)) = (policy.min_score, result.score) {
        if score < min_score {
            return Decision::Skip(Skip::BelowMinScore { score, min_score });
        }
    }
    Decision::Forward
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: serde_json::Value) -> AssessmentResult {
        serde_json::from_value(value).unwrap()
    }

    fn policy(min_score: Option<f64>) -> Policy {
        Policy { min_score }
    }

    #[test]
    fn an_accepted_result_is_forwarded() {
        let accepted = result(json!({"verdict": "accept"}));
        assert_eq!(decide(&accepted, &Policy::default()), Decision::Forward);
        let ok = result(json!({"verdict": "accept", "status": "ok", "score": 0.1}));
        assert_eq!(decide(&ok, &Policy::default()), Decision::Forward);
    }

    #[test]
    fn rejected_and_null_verdicts_are_skipped() {
        for (value, verdict) in [
            (json!({"verdict": "reject"}), Some(Verdict::Reject)),
            (
                json!({"verdict": "reject", "score": 0.99}),
                Some(Verdict::Reject),
            ),
            (json!({"verdict": null}), None),
            (json!({"verdict": null, "status": "ok"}), None),
        ] {
            assert_eq!(
                decide(&result(value.clone()), &policy(Some(0.0))),
                Decision::Skip(Skip::NotAccepted { verdict }),
                "{value}"
            );
        }
    }

    #[test]
    fn min_score_holds_back_low_scores_only() {
        let min = policy(Some(0.7));
        let at = result(json!({"verdict": "accept", "score": 0.7}));
        assert_eq!(decide(&at, &min), Decision::Forward);
        let above = result(json!({"verdict": "accept", "score": 1.0}));
        assert_eq!(decide(&above, &min), Decision::Forward);
        let below = result(json!({"verdict": "accept", "score": 0.69}));
        assert_eq!(
            decide(&below, &min),
            Decision::Skip(Skip::BelowMinScore {
                score: 0.69,
                min_score: 0.7
            })
        );
        let zero = result(json!({"verdict": "accept", "score": 0.0}));
        assert!(matches!(
            decide(&zero, &policy(Some(0.01))),
            Decision::Skip(Skip::BelowMinScore { .. })
        ));
    }

    #[test]
    fn a_result_without_a_score_passes_any_min_score() {
        let unscored = result(json!({"verdict": "accept"}));
        assert_eq!(decide(&unscored, &policy(Some(1.0))), Decision::Forward);
        let null_score = result(json!({"verdict": "accept", "score": null}));
        assert_eq!(decide(&null_score, &policy(Some(1.0))), Decision::Forward);
    }

    #[test]
    fn without_min_score_any_score_passes() {
        let low = result(json!({"verdict": "accept", "score": 0.0}));
        assert_eq!(decide(&low, &policy(None)), Decision::Forward);
    }

    #[test]
    fn an_error_status_wins_over_the_verdict() {
        let error = result(json!({
            "verdict": "accept",
            "score": 0.9,
            "status": "error",
            "error": {"kind": "timeout", "message": "the judge did not answer"}
        }));
        assert_eq!(
            decide(&error, &Policy::default()),
            Decision::AssessorError {
                kind: Some(ErrorKind::Timeout),
                message: Some("the judge did not answer".into()),
            }
        );
        for value in [
            json!({"verdict": null, "status": "error"}),
            json!({"verdict": null, "status": "error", "error": null}),
        ] {
            assert_eq!(
                decide(&result(value.clone()), &Policy::default()),
                Decision::AssessorError {
                    kind: None,
                    message: None
                },
                "{value}"
            );
        }
    }

    #[test]
    fn an_error_object_without_an_error_status_is_not_an_error() {
        // `status` absent means ok: the contract's default.
        let value = json!({
            "verdict": "accept",
            "error": {"kind": "timeout", "message": "stale"}
        });
        assert_eq!(
            decide(&result(value), &Policy::default()),
            Decision::Forward
        );
    }
}
