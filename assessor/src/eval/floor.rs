//! `--fail-under METRIC=MIN`: the eval as a gate. A CI job (or a house
//! hunter trying a new brief) fails when the verdicts got worse than agreed,
//! instead of someone having to read the report.

use std::fmt;
use std::str::FromStr;

use super::Metrics;

/// A metric a floor can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
    Accuracy,
    Precision,
    Recall,
    F1,
}

impl Metric {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::F1 => "f1",
        }
    }

    fn of(self, metrics: &Metrics) -> Option<f64> {
        match self {
            Metric::Accuracy => metrics.accuracy,
            Metric::Precision => metrics.precision,
            Metric::Recall => metrics.recall,
            Metric::F1 => metrics.f1,
        }
    }
}

/// The least a metric may be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Floor {
    pub(crate) metric: Metric,
    pub(crate) min: f64,
}

const EXPECTED: &str = "expected METRIC=MIN, METRIC one of accuracy, precision, recall, f1 and MIN a number from 0 to 1 (e.g. accuracy=0.9)";

impl FromStr for Floor {
    type Err = String;

    fn from_str(text: &str) -> Result<Floor, String> {
        let (name, min) = text
            .split_once('=')
            .ok_or_else(|| format!("{EXPECTED}, found {text:?}"))?;
        let metric = match name.trim().to_ascii_lowercase().as_str() {
            "accuracy" => Metric::Accuracy,
            "precision" => Metric::Precision,
            "recall" => Metric::Recall,
            "f1" => Metric::F1,
            other => return Err(format!("unknown metric {other:?}; {EXPECTED}")),
        };
        let min = min
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|m| (0.0..=1.0).contains(m))
            .ok_or_else(|| format!("{EXPECTED}, found {:?} for {}", min.trim(), metric.as_str()))?;
        Ok(Floor { metric, min })
    }
}

impl fmt::Display for Floor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.metric.as_str(), self.min)
    }
}

/// A floor the run did not reach.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shortfall {
    pub(crate) floor: Floor,
    /// `None`: the metric could not be computed (no accept labels, no
    /// accept verdicts, nothing scored), which fails the floor: a gate that
    /// passes on no evidence is no gate.
    pub(crate) value: Option<f64>,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(value) => write!(
                f,
                "{} is {:.4}, below --fail-under {}",
                self.floor.metric.as_str(),
                value,
                self.floor
            ),
            None => write!(
                f,
                "{} cannot be computed (no labelled result it counts: no accept labels or verdicts), so --fail-under {} fails",
                self.floor.metric.as_str(),
                self.floor
            ),
        }
    }
}

/// The floors `metrics` does not reach, in the order given.
pub(crate) fn check(metrics: &Metrics, floors: &[Floor]) -> Vec<Shortfall> {
    floors
        .iter()
        .filter_map(|floor| {
            let value = floor.metric.of(metrics);
            match value {
                Some(v) if v >= floor.min => None,
                _ => Some(Shortfall {
                    floor: *floor,
                    value,
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_the_expectation() {
        assert_eq!(
            "F1 = 0.5".parse::<Floor>().unwrap(),
            Floor {
                metric: Metric::F1,
                min: 0.5
            }
        );
        for bad in [
            "accuracy",
            "speed=0.5",
            "recall=1.5",
            "recall=x",
            "precision=NaN",
        ] {
            let e = bad.parse::<Floor>().unwrap_err();
            assert!(e.contains("METRIC=MIN"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_undefined_metric_fails() {
        let metrics = Metrics {
            accuracy: Some(0.9),
            precision: None,
            recall: Some(0.5),
            f1: None,
        };
        let floors: Vec<Floor> = ["accuracy=0.9", "precision=0", "recall=0.6"]
            .iter()
            .map(|f| f.parse().unwrap())
            .collect();
        let short = check(&metrics, &floors);
        assert_eq!(short.len(), 2);
        assert_eq!(short[0].value, None);
        assert!(short[0].to_string().contains("cannot be computed"));
        assert_eq!(short[1].value, Some(0.5));
    }
}
