//! Precision and recall of "accept" against a score threshold: how many
//! fewer listings a house hunter would read, and how many good ones would be
//! lost, if only accepted results scoring at least `t` counted.
//!
//! The rule, for each distinct score `t` of the labelled results that have
//! one: a result is predicted "accept" at `t` when its verdict is accept and
//! its score is at least `t`. A result without a score (a rule's rejection,
//! a command that gives none) keeps its verdict at every threshold: there is
//! nothing to compare, and dropping it would punish a judge for not
//! reporting a number.

use serde::Serialize;
use shortlist_contract::Verdict;

use super::{Confusion, Metrics};

/// One labelled, decided result as the sweep needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub(crate) label: Verdict,
    pub(crate) verdict: Verdict,
    pub(crate) score: Option<f64>,
}

/// The figures at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Point {
    pub(crate) threshold: f64,
    pub(crate) confusion: Confusion,
    pub(crate) metrics: Metrics,
}

/// Every threshold, lowest first, and the one with the best F1.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Sweep {
    pub(crate) points: Vec<Point>,
    /// Index into `points` of the highest F1; among equal F1s the highest
    /// threshold (the fewest listings to read for the same balance).
    /// `None` when no point has an F1 (no scores, or no accept labels).
    pub(crate) best: Option<usize>,
}

impl Sweep {
    pub(crate) fn best_point(&self) -> Option<&Point> {
        self.best.and_then(|i| self.points.get(i))
    }
}

/// Sweeps the distinct scores of `samples`.
pub(crate) fn sweep(samples: &[Sample]) -> Sweep {
    let mut thresholds: Vec<f64> = samples.iter().filter_map(|s| s.score).collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let points: Vec<Point> = thresholds
        .into_iter()
        .map(|threshold| {
            let mut confusion = Confusion::default();
            for s in samples {
                let predicted = match (s.verdict, s.score) {
                    (Verdict::Accept, Some(score)) if score < threshold => Verdict::Reject,
                    (verdict, _) => verdict,
                };
                confusion.add(s.label, predicted);
            }
            Point {
                threshold,
                confusion,
                metrics: confusion.metrics(),
            }
        })
        .collect();
    let mut best: Option<usize> = None;
    for (i, point) in points.iter().enumerate() {
        let Some(f1) = point.metrics.f1 else { continue };
        // `>=`: later points have higher thresholds, so ties go to them.
        if best
            .and_then(|b| points[b].metrics.f1)
            .is_none_or(|best_f1| f1 >= best_f1)
        {
            best = Some(i);
        }
    }
    Sweep { points, best }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Accept as A, Reject as R};

    fn s(label: Verdict, verdict: Verdict, score: Option<f64>) -> Sample {
        Sample {
            label,
            verdict,
            score,
        }
    }

    #[test]
    fn the_best_threshold_drops_a_low_scored_false_accept() {
        let samples = [
            s(A, A, Some(0.9)),
            s(A, A, Some(0.6)),
            s(R, A, Some(0.5)),
            s(A, R, Some(0.3)),
            s(R, R, Some(0.2)),
            s(A, A, None),
        ];
        let sweep = sweep(&samples);
        let thresholds: Vec<f64> = sweep.points.iter().map(|p| p.threshold).collect();
        assert_eq!(thresholds, [0.2, 0.3, 0.5, 0.6, 0.9]);
        let best = sweep.best_point().unwrap();
        assert_eq!(best.threshold, 0.6);
        assert_eq!(best.metrics.precision, Some(1.0));
        assert_eq!(best.metrics.recall, Some(0.75));
        // At 0.9 the unscored accept still counts.
        assert_eq!(sweep.points[4].confusion.true_accept, 2);
    }

    #[test]
    fn no_scores_no_points() {
        let sweep = sweep(&[s(A, A, None)]);
        assert!(sweep.points.is_empty());
        assert_eq!(sweep.best, None);
    }
}
