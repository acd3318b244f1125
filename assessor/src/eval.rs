//! `assessor eval`: how well a batch's verdicts match a house hunter's
//! labels. Confusion matrix, accuracy, precision, recall and F1 for
//! "accept", split by the stage that decided, and every disagreement with
//! its reasons; `--against` puts a second run (another brief, model, or the
//! rules off) beside the first on the same labels.
//!
//! Labels are a JSON object mapping a profile id or result file stem to
//! `"accept"` or `"reject"` (the shape of `examples/samples/labels.json`).
//!
//! Besides the Markdown on stdout and the JSON `--report`, `--html` shows
//! the same as one self-contained page ([`crate::report::html`]) with the
//! precision/recall sweep over score thresholds ([`sweep`]), and
//! `--fail-under` turns the eval into a gate ([`floor`]).

pub(crate) mod floor;
pub(crate) mod sweep;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use shortlist_contract::{DecidedBy, Status, Verdict};

use self::floor::Floor;
use self::sweep::{Sample, Sweep};
use crate::listing::Listing;
use crate::result_files::{self, ResultFile};

/// Validated eval settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) labels: PathBuf,
    pub(crate) results: PathBuf,
    pub(crate) against: Option<PathBuf>,
    pub(crate) report: Option<PathBuf>,
    /// Where to write the HTML page, if anywhere.
    pub(crate) html: Option<PathBuf>,
    /// The least each metric of the first run may be.
    pub(crate) fail_under: Vec<Floor>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum EvalError {
    #[error("{}: cannot read the labels: {error}", path.display())]
    LabelsUnreadable {
        path: PathBuf,
        error: shortlist_contract::regular_file::ReadError,
    },
    #[error("{}: the labels must be a JSON object of id → \"accept\" | \"reject\": {message}", path.display())]
    LabelsInvalid { path: PathBuf, message: String },
    #[error("{}: cannot read the results directory: {error}", path.display())]
    ResultsUnreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: cannot write the report: {error}", path.display())]
    ReportUnwritable { path: PathBuf, error: String },
    #[error("{}: cannot write the HTML report (EVAL_HTML): {error}", path.display())]
    HtmlUnwritable { path: PathBuf, error: String },
}

/// Counts with "accept" as the positive class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Confusion {
    pub(crate) true_accept: u64,
    pub(crate) false_accept: u64,
    pub(crate) false_reject: u64,
    pub(crate) true_reject: u64,
}

impl Confusion {
    fn add(&mut self, label: Verdict, verdict: Verdict) {
        match (label, verdict) {
            (Verdict::Accept, Verdict::Accept) => self.true_accept += 1,
            (Verdict::Reject, Verdict::Accept) => self.false_accept += 1,
            (Verdict::Accept, Verdict::Reject) => self.false_reject += 1,
            (Verdict::Reject, Verdict::Reject) => self.true_reject += 1,
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.true_accept + self.false_accept + self.false_reject + self.true_reject
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        let precision = ratio(self.true_accept, self.true_accept + self.false_accept);
        let recall = ratio(self.true_accept, self.true_accept + self.false_reject);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        Metrics {
            accuracy: ratio(self.true_accept + self.true_reject, self.total()),
            precision,
            recall,
            f1,
        }
    }
}

/// Derived figures; `null` when undefined (no positives, ...).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Metrics {
    pub(crate) accuracy: Option<f64>,
    pub(crate) precision: Option<f64>,
    pub(crate) recall: Option<f64>,
    pub(crate) f1: Option<f64>,
}

/// One profile where the verdict and the label differ.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Disagreement {
    pub(crate) id: String,
    pub(crate) label: &'static str,
    pub(crate) verdict: &'static str,
    pub(crate) decided_by: Option<String>,
    pub(crate) score: Option<f64>,
    pub(crate) score_source: Option<String>,
    pub(crate) reasons: Vec<String>,
    /// The listing as the HTML page's card shows it.
    #[serde(skip)]
    pub(crate) listing: Listing,
}

/// One results directory judged against the labels.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunReport {
    pub(crate) results: PathBuf,
    pub(crate) confusion: Confusion,
    pub(crate) metrics: Metrics,
    pub(crate) by_decided_by: BTreeMap<String, (Confusion, Metrics)>,
    pub(crate) disagreements: Vec<Disagreement>,
    /// Labelled profiles with no result in the directory.
    pub(crate) missing: Vec<String>,
    /// Labelled profiles whose result is an error (no verdict).
    pub(crate) errors: Vec<String>,
    /// Results with no label (not scored).
    pub(crate) unlabelled: u64,
    /// Precision and recall of "accept" at each score threshold.
    pub(crate) threshold: Sweep,
    /// Each labelled id's verdict, for comparing runs.
    #[serde(skip)]
    verdicts: BTreeMap<String, Option<Verdict>>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) labels: PathBuf,
    pub(crate) labelled: u64,
    pub(crate) runs: Vec<RunReport>,
    /// With `--against`: profiles whose verdict differs between the runs.
    pub(crate) changed: Vec<Changed>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Changed {
    pub(crate) id: String,
    pub(crate) label: &'static str,
    pub(crate) first: Option<&'static str>,
    pub(crate) second: Option<&'static str>,
}

/// The most a labels file may hold: an id and a verdict per profile, so
/// 32 MiB is hundreds of thousands of labels.
const MAX_LABELS_BYTES: u64 = 32 * 1024 * 1024;

pub(crate) fn read_labels(path: &Path) -> Result<BTreeMap<String, Verdict>, EvalError> {
    let text = shortlist_contract::regular_file::read_to_string(path, MAX_LABELS_BYTES).map_err(
        |error| EvalError::LabelsUnreadable {
            path: path.to_path_buf(),
            error,
        },
    )?;
    let invalid = |message: String| EvalError::LabelsInvalid {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let object = value.as_object().ok_or_else(|| {
        invalid(format!(
            "found {}",
            shortlist_contract::profile::json_type_name(&value)
        ))
    })?;
    let mut labels = BTreeMap::new();
    for (id, label) in object {
        let verdict = match label
            .as_str()
            .map(str::trim)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("accept") => Verdict::Accept,
            Some("reject") => Verdict::Reject,
            _ => {
                return Err(invalid(format!(
                    "{id:?} is {label}, expected \"accept\" or \"reject\""
                )));
            }
        };
        labels.insert(id.clone(), verdict);
    }
    Ok(labels)
}

/// Reads every result of `dir` and scores it against `labels`.
pub(crate) fn evaluate(
    dir: &Path,
    labels: &BTreeMap<String, Verdict>,
) -> Result<RunReport, EvalError> {
    let files = result_files::read_dir(dir).map_err(|error| EvalError::ResultsUnreadable {
        path: dir.to_path_buf(),
        error,
    })?;
    // Label key → its result (by id first, then by file stem).
    let mut found: BTreeMap<String, ResultFile> = BTreeMap::new();
    let mut unlabelled: Vec<String> = Vec::new();
    let mut total = 0u64;
    for file in files {
        total += 1;
        let stem = file.stem();
        let key = file
            .result
            .id
            .clone()
            .filter(|id| labels.contains_key(id))
            .or_else(|| labels.contains_key(&stem).then_some(stem));
        match key {
            Some(key) => {
                found.insert(key, file);
            }
            None => unlabelled.push(file.id()),
        }
    }
    warn_unlabelled(dir, &unlabelled, total);
    let unlabelled = unlabelled.len() as u64;

    let mut report = RunReport {
        results: dir.to_path_buf(),
        confusion: Confusion::default(),
        metrics: Confusion::default().metrics(),
        by_decided_by: BTreeMap::new(),
        disagreements: Vec::new(),
        missing: Vec::new(),
        errors: Vec::new(),
        unlabelled,
        threshold: Sweep::default(),
        verdicts: BTreeMap::new(),
    };
    let mut samples: Vec<Sample> = Vec::new();
    let mut by_stage: BTreeMap<String, Confusion> = BTreeMap::new();
    for (id, label) in labels {
        let Some(file) = found.get(id) else {
            report.missing.push(id.clone());
            report.verdicts.insert(id.clone(), None);
            continue;
        };
        let result = &file.result;
        let verdict = match (result.effective_status(), result.verdict) {
            (Status::Ok, Some(verdict)) => verdict,
            _ => {
                report.errors.push(id.clone());
                report.verdicts.insert(id.clone(), None);
                continue;
            }
        };
        report.verdicts.insert(id.clone(), Some(verdict));
        report.confusion.add(*label, verdict);
        samples.push(Sample {
            label: *label,
            verdict,
            score: result.score,
        });
        let stage = result
            .decided_by
            .as_ref()
            .map_or("unknown", DecidedBy::as_str)
            .to_string();
        by_stage
            .entry(stage.clone())
            .or_default()
            .add(*label, verdict);
        if verdict != *label {
            let listing = Listing::from_result(file);
            report.disagreements.push(Disagreement {
                id: id.clone(),
                label: label.as_str(),
                verdict: verdict.as_str(),
                decided_by: Some(stage),
                score: result.score,
                score_source: listing.score_source.clone(),
                reasons: result.reasons.clone().unwrap_or_default(),
                listing,
            });
        }
    }
    report.metrics = report.confusion.metrics();
    report.threshold = sweep::sweep(&samples);
    report.by_decided_by = by_stage
        .into_iter()
        .map(|(stage, confusion)| (stage, (confusion, confusion.metrics())))
        .collect();
    Ok(report)
}

/// How many results without a label make the eval say so: more than
/// [`UNLABELLED_FEW`], or more than a tenth of the results. A few are
/// normal (a listing added after labelling); more usually means the labels
/// are keyed by something else than the ids (a URL, a file name).
const UNLABELLED_FEW: usize = 2;

/// Warns once when many results have no label, with the count and the
/// first few ids so the mismatch can be seen.
fn warn_unlabelled(dir: &Path, unlabelled: &[String], total: u64) {
    let count = unlabelled.len() as u64;
    if unlabelled.len() > UNLABELLED_FEW || count * 10 > total {
        let first: Vec<&str> = unlabelled.iter().take(5).map(String::as_str).collect();
        tracing::warn!(
            results = %dir.display(),
            count,
            of = total,
            first = %first.join(", "),
            "{count} of {total} results have no label and are not scored (first: {})",
            first.join(", ")
        );
    }
}

/// Runs the eval: reads labels and results, writes the JSON report when
/// asked. (The HTML page is the caller's: [`crate::report`] shows what this
/// module computes, so eval does not depend on it.)
pub(crate) fn run(settings: &Settings) -> Result<Report, EvalError> {
    let labels = read_labels(&settings.labels)?;
    let mut runs = vec![evaluate(&settings.results, &labels)?];
    if let Some(other) = &settings.against {
        runs.push(evaluate(other, &labels)?);
    }
    let changed = match runs.as_slice() {
        [first, second] => labels
            .iter()
            .filter_map(|(id, label)| {
                let a = first.verdicts.get(id).copied().flatten();
                let b = second.verdicts.get(id).copied().flatten();
                (a != b).then(|| Changed {
                    id: id.clone(),
                    label: label.as_str(),
                    first: a.map(Verdict::as_str),
                    second: b.map(Verdict::as_str),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let report = Report {
        labels: settings.labels.clone(),
        labelled: labels.len() as u64,
        runs,
        changed,
    };
    if let Some(path) = &settings.report {
        let mut bytes = serde_json::to_vec_pretty(&report).expect("a report serialises");
        bytes.push(b'\n');
        shortlist_contract::atomic::write_atomic(path, &bytes).map_err(|e| {
            EvalError::ReportUnwritable {
                path: path.clone(),
                error: e.to_string(),
            }
        })?;
    }
    Ok(report)
}

fn pct(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}

/// The report as Markdown tables.
pub(crate) fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Eval against {} ({} labels)\n",
        report.labels.display(),
        report.labelled
    );
    let header: Vec<String> = report
        .runs
        .iter()
        .map(|r| format!("`{}`", r.results.display()))
        .collect();
    let _ = writeln!(out, "| | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}|", vec!["---:"; report.runs.len()].join("|"));
    let row = |name: &str, f: &dyn Fn(&RunReport) -> String| {
        let cells: Vec<String> = report.runs.iter().map(f).collect();
        format!("| {name} | {} |\n", cells.join(" | "))
    };
    out.push_str(&row("accuracy", &|r| pct(r.metrics.accuracy)));
    out.push_str(&row("precision (accept)", &|r| pct(r.metrics.precision)));
    out.push_str(&row("recall (accept)", &|r| pct(r.metrics.recall)));
    out.push_str(&row("F1 (accept)", &|r| pct(r.metrics.f1)));
    out.push_str(&row("true accept / false accept", &|r| {
        format!("{} / {}", r.confusion.true_accept, r.confusion.false_accept)
    }));
    out.push_str(&row("false reject / true reject", &|r| {
        format!("{} / {}", r.confusion.false_reject, r.confusion.true_reject)
    }));
    out.push_str(&row("best-F1 score threshold", &|r| {
        r.threshold.best_point().map_or("–".into(), |b| {
            format!(
                "{} (F1 {})",
                crate::listing::score_text(b.threshold),
                pct(b.metrics.f1)
            )
        })
    }));
    out.push_str(&row("scored / errors / missing", &|r| {
        format!(
            "{} / {} / {}",
            r.confusion.total(),
            r.errors.len(),
            r.missing.len()
        )
    }));
    for (i, run) in report.runs.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n## {} `{}`\n",
            if i == 0 { "Run" } else { "Against" },
            run.results.display()
        );
        let _ = writeln!(
            out,
            "| decided by | scored | accuracy | precision | recall | F1 |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for (stage, (confusion, metrics)) in &run.by_decided_by {
            let _ = writeln!(
                out,
                "| {stage} | {} | {} | {} | {} | {} |",
                confusion.total(),
                pct(metrics.accuracy),
                pct(metrics.precision),
                pct(metrics.recall),
                pct(metrics.f1)
            );
        }
        if !run.disagreements.is_empty() {
            let _ = writeln!(out, "\n| id | label | verdict | decided by | reasons |");
            let _ = writeln!(out, "|---|---|---|---|---|");
            for d in &run.disagreements {
                let reasons = d.reasons.join("; ").replace('|', "\\|").replace('\n', " ");
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    d.id,
                    d.label,
                    d.verdict,
                    d.decided_by.as_deref().unwrap_or("–"),
                    reasons
                );
            }
        }
        if !run.errors.is_empty() {
            let _ = writeln!(
                out,
                "\nno verdict (error results): {}",
                run.errors.join(", ")
            );
        }
        if !run.missing.is_empty() {
            let _ = writeln!(out, "\nno result: {}", run.missing.join(", "));
        }
    }
    if report.runs.len() == 2 {
        let _ = writeln!(
            out,
            "\n## Changed between the runs ({})\n",
            report.changed.len()
        );
        if !report.changed.is_empty() {
            let _ = writeln!(out, "| id | label | run | against |\n|---|---|---|---|");
            for c in &report.changed {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    c.id,
                    c.label,
                    c.first.unwrap_or("none"),
                    c.second.unwrap_or("none")
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        // 3 TA, 1 FA, 2 FR, 4 TR.
        let c = Confusion {
            true_accept: 3,
            false_accept: 1,
            false_reject: 2,
            true_reject: 4,
        };
        let m = c.metrics();
        assert_eq!(m.accuracy, Some(0.7));
        assert_eq!(m.precision, Some(0.75));
        assert_eq!(m.recall, Some(0.6));
        let f1 = m.f1.unwrap();
        assert!((f1 - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12);
        let none = Confusion::default().metrics();
        assert_eq!((none.accuracy, none.precision, none.f1), (None, None, None));
    }
}
