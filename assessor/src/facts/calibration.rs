//! Contextual calibration (Zhao et al. 2021, "Calibrate Before Use"): a
//! small model asked to pick one of several answers leans to some of them
//! whatever the listing says (the first listed, the most frequent word).
//! Asking the same question about a content-free listing ("N/A") measures
//! that lean; dividing it out of the real answer's distribution leaves what
//! the listing itself moved. A model with no real evidence then ends up
//! near uniform, below the facts stage's confidence bar, so its guess stays
//! `unknown` instead of deciding.

/// The calibrated distribution: `observed[i] / prior[i]`, renormalised. A
/// prior share is floored at `PRIOR_FLOOR` so a choice the content-free
/// question never picks cannot explode.
pub(crate) fn calibrate(observed: &[f64], prior: &[f64]) -> Vec<f64> {
    const PRIOR_FLOOR: f64 = 0.01;
    let weights: Vec<f64> = observed
        .iter()
        .zip(prior)
        .map(|(o, p)| o / p.max(PRIOR_FLOOR))
        .collect();
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return observed.to_vec();
    }
    weights.iter().map(|w| w / total).collect()
}

/// The most probable choice's index and probability.
pub(crate) fn best(distribution: &[f64]) -> Option<(usize, f64)> {
    distribution
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lean_the_listing_did_not_cause_is_divided_out() {
        // The model says "garden" 60 % of the time whatever it reads.
        let prior = [0.6, 0.2, 0.2];
        let same = calibrate(&[0.6, 0.2, 0.2], &prior);
        for share in &same {
            assert!((share - 1.0 / 3.0).abs() < 1e-9, "{same:?}");
        }
        // The listing moved it towards "balcony".
        let moved = calibrate(&[0.3, 0.6, 0.1], &prior);
        assert_eq!(best(&moved).unwrap().0, 1);
        assert!(best(&moved).unwrap().1 > 0.7, "{moved:?}");
        let total: f64 = moved.iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_choice_the_prior_never_picks_is_floored_not_infinite() {
        let c = calibrate(&[0.5, 0.5], &[1.0, 0.0]);
        assert!(c.iter().all(|x| x.is_finite()));
        assert!(c[1] > 0.9, "{c:?}");
        assert_eq!(calibrate(&[0.0, 0.0], &[0.5, 0.5]), vec![0.0, 0.0]);
    }
}
