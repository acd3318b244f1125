//! What a batch did: counts per verdict and per deciding stage, errors by
//! kind, latency percentiles and tokens; logged as one structured event and
//! printed as a table on stderr at the end.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use shortlist_contract::{AssessmentResult, ErrorKind, Status, Verdict};

use super::input::InputStats;
use crate::await_delivery::Awaited;
use crate::exit::Exit;
use crate::shutdown::Signal;

/// One profile's outcome.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Its result already existed (resume).
    Skipped,
    /// Assessed, successfully or not; the result is written.
    Assessed {
        result: Box<AssessmentResult>,
        /// Where the result was written.
        path: std::path::PathBuf,
        exit: Exit,
        ms: u64,
        /// Its earlier result was decided by other settings.
        stale: bool,
    },
    /// Assessed, but the result could not be written.
    Unwritable,
}

/// What a stopped batch left for the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Left {
    /// Profiles not judged: abandoned in flight, or never started.
    pub(crate) count: u64,
    /// False when the rest of the input was not counted to its end (then
    /// `count` is a lower bound).
    pub(crate) exact: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// The accepted results this run wrote (ASSESSOR_AWAIT_DELIVERY waits
    /// for their receipts).
    pub(crate) written_accepted: Vec<Awaited>,
    pub(crate) accepted: u64,
    pub(crate) rejected: u64,
    pub(crate) skipped: u64,
    /// Judged again: their results were decided by other settings.
    pub(crate) stale: u64,
    pub(crate) unwritable: u64,
    pub(crate) errors_by_kind: BTreeMap<String, u64>,
    pub(crate) by_decided_by: BTreeMap<String, u64>,
    /// Exit codes of failed assessments: 3 (the profile) or 4 (the backend).
    pub(crate) invalid_profiles: u64,
    pub(crate) backend_failures: u64,
    /// Of `invalid_profiles`, those that could not be read at all
    /// (`profile_invalid`, `profile_unreadable`).
    pub(crate) unreadable_profiles: u64,
    /// The batch stopped on this signal (after draining).
    pub(crate) interrupted: Option<Signal>,
    /// The batch stopped because a server refused the configuration (this kind).
    pub(crate) refused: Option<ErrorKind>,
    /// What a stopped batch left for the next run.
    pub(crate) left: Option<Left>,
    /// Latency in milliseconds → how many profiles took it: exact
    /// percentiles in memory bounded by the distinct values, not the count
    /// of profiles (a batch's RSS must not grow with its input).
    pub(crate) latencies_ms: BTreeMap<u64, u64>,
    pub(crate) latency_count: u64,
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) cached_captions: u64,
    pub(crate) cached_responses: u64,
    pub(crate) input: Option<InputStats>,
    pub(crate) input_error: Option<String>,
    pub(crate) elapsed: Duration,
    /// Prices per 1000 prompt / completion tokens, for the cost estimate.
    pub(crate) prices: Option<(f64, f64)>,
}

impl Summary {
    pub(crate) fn record(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Skipped => self.skipped += 1,
            Outcome::Unwritable => self.unwritable += 1,
            Outcome::Assessed {
                result,
                path,
                exit,
                ms,
                stale,
            } => {
                if *stale {
                    self.stale += 1;
                }
                if result.effective_status() == Status::Ok
                    && result.verdict == Some(Verdict::Accept)
                {
                    self.written_accepted.push(Awaited {
                        result: path.clone(),
                        id: result.id.clone(),
                    });
                }
                *self.latencies_ms.entry(*ms).or_default() += 1;
                self.latency_count += 1;
                if let Some(Some(usage)) = &result.usage {
                    self.prompt_tokens += usage.prompt_tokens;
                    self.completion_tokens += usage.completion_tokens;
                }
                if result.cached == Some(true) {
                    self.cached_responses += 1;
                }
                self.cached_captions += result
                    .captions
                    .iter()
                    .flatten()
                    .filter(|c| c.cached)
                    .count() as u64;
                if result.effective_status() == Status::Error {
                    let kind = result
                        .error
                        .clone()
                        .flatten()
                        .map(|e| e.kind.as_str().to_string())
                        .unwrap_or_else(|| "unknown".into());
                    *self.errors_by_kind.entry(kind).or_default() += 1;
                    match exit {
                        Exit::InvalidProfile => {
                            self.invalid_profiles += 1;
                            let unread = result.error.clone().flatten().is_some_and(|e| {
                                matches!(
                                    e.kind,
                                    ErrorKind::ProfileInvalid | ErrorKind::ProfileUnreadable
                                )
                            });
                            if unread {
                                self.unreadable_profiles += 1;
                            }
                        }
                        _ => self.backend_failures += 1,
                    }
                    return;
                }
                match result.verdict {
                    Some(Verdict::Accept) => self.accepted += 1,
                    Some(Verdict::Reject) => self.rejected += 1,
                    None => {}
                }
                if let Some(by) = &result.decided_by {
                    *self
                        .by_decided_by
                        .entry(by.as_str().to_string())
                        .or_default() += 1;
                }
            }
        }
    }

    /// Profiles handled so far (skipped ones included).
    pub(crate) fn done(&self) -> u64 {
        self.accepted + self.rejected + self.errors() + self.skipped + self.unwritable
    }

    pub(crate) fn errors(&self) -> u64 {
        self.invalid_profiles + self.backend_failures
    }

    fn percentile(&self, p: f64) -> Option<u64> {
        if self.latency_count == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.latency_count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, count) in &self.latencies_ms {
            seen += count;
            if seen >= rank {
                return Some(*ms);
            }
        }
        self.latencies_ms.keys().next_back().copied()
    }

    /// Tokens priced with `LLM_PRICE_PER_1K` (prompt, completion).
    pub(crate) fn cost(&self) -> Option<f64> {
        let (prompt, completion) = self.prices?;
        Some(
            self.prompt_tokens as f64 / 1000.0 * prompt
                + self.completion_tokens as f64 / 1000.0 * completion,
        )
    }

    /// The exit code, the worst that applies: 5 (results could not be
    /// written); 2 (a server refused the configuration: no retry helps);
    /// 130/143 (stopped by a signal: run again to resume); 4 (a backend
    /// failure, or an input read only in part: retrying the Job may help,
    /// and resume skips what is done); 3 (no profile at all could be read);
    /// else 0, also when some profiles were invalid: each has its error
    /// result and a retry would not change it (an Indexed Job's index must
    /// not fail for one bad line among thousands).
    pub(crate) fn exit(&self) -> Exit {
        let readable = self.done() - self.unreadable_profiles;
        if self.unwritable > 0 {
            Exit::ResultUnwritable
        } else if self.refused.is_some() {
            Exit::BackendRefused
        } else if let Some(signal) = self.interrupted {
            Exit::Interrupted(signal)
        } else if self.backend_failures > 0 {
            Exit::BackendFailed
        } else if readable == 0 && (self.unreadable_profiles > 0 || self.input_error.is_some()) {
            Exit::InvalidProfile
        } else if self.input_error.is_some() {
            Exit::BackendFailed
        } else {
            Exit::Assessed
        }
    }

    pub(crate) fn log(&self) {
        let rate = self.done() as f64 / self.elapsed.as_secs_f64().max(1e-9);
        tracing::info!(
            entries = self.input.map(|i| i.entries),
            owned = self.input.map(|i| i.owned),
            accepted = self.accepted,
            rejected = self.rejected,
            errors = self.errors(),
            skipped = self.skipped,
            judged_again = self.stale,
            unwritable = self.unwritable,
            left = self.left.map(|l| l.count),
            stopped_by = self.interrupted.map(Signal::name),
            refused = self.refused.as_ref().map(ErrorKind::as_str),
            p50_ms = self.percentile(50.0),
            p95_ms = self.percentile(95.0),
            prompt_tokens = self.prompt_tokens,
            completion_tokens = self.completion_tokens,
            cached_responses = self.cached_responses,
            cost = self.cost(),
            elapsed_ms = self.elapsed.as_millis() as u64,
            rate_per_s = format!("{rate:.1}"),
            "batch finished"
        );
    }

    /// The end-of-run table (Markdown-ish, readable in a terminal and a log).
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let rate = self.done() as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(out, "\nbatch summary");
        let _ = writeln!(out, "| | count |\n|---|---:|");
        if let Some(input) = self.input {
            let _ = writeln!(out, "| entries in input | {} |", input.entries);
            if input.owned != input.entries {
                let _ = writeln!(out, "| this shard's | {} |", input.owned);
            }
        }
        for (label, value) in [
            ("accepted", self.accepted),
            ("rejected", self.rejected),
            ("errors", self.errors()),
            ("skipped (already assessed)", self.skipped),
        ] {
            let _ = writeln!(out, "| {label} | {value} |");
        }
        if self.stale > 0 {
            let _ = writeln!(
                out,
                "| judged again (brief, rules or judge changed) | {} |",
                self.stale
            );
        }
        if self.invalid_profiles > 0 {
            let _ = writeln!(
                out,
                "| invalid profiles (error results written) | {} |",
                self.invalid_profiles
            );
        }
        if self.unwritable > 0 {
            let _ = writeln!(out, "| results not written | {} |", self.unwritable);
        }
        if let Some(left) = self.left {
            let _ = writeln!(out, "| left for the next run | {} |", left.display());
        }
        for (by, n) in &self.by_decided_by {
            let _ = writeln!(out, "| decided by {by} | {n} |");
        }
        for (kind, n) in &self.errors_by_kind {
            let _ = writeln!(out, "| error {kind} | {n} |");
        }
        if let (Some(p50), Some(p95)) = (self.percentile(50.0), self.percentile(95.0)) {
            let _ = writeln!(out, "| latency p50 / p95 | {p50} ms / {p95} ms |");
        }
        if self.prompt_tokens + self.completion_tokens > 0 {
            let _ = writeln!(
                out,
                "| tokens prompt / completion | {} / {} |",
                self.prompt_tokens, self.completion_tokens
            );
        }
        if let Some(cost) = self.cost() {
            let _ = writeln!(
                out,
                "| cost estimate (LLM_PRICE_PER_1K's currency) | {} |",
                cost_text(cost)
            );
        }
        if self.cached_responses > 0 {
            let _ = writeln!(
                out,
                "| judge answers from cache | {} |",
                self.cached_responses
            );
        }
        if self.cached_captions > 0 {
            let _ = writeln!(out, "| captions from cache | {} |", self.cached_captions);
        }
        let _ = writeln!(
            out,
            "| wall time | {:.1} s ({rate:.1} profiles/s) |",
            self.elapsed.as_secs_f64()
        );
        if let Some(error) = &self.input_error {
            let _ = writeln!(out, "\ninput error: {error}");
        }
        let left = self.left.map(|l| l.display()).unwrap_or_else(|| "0".into());
        if let Some(kind) = &self.refused {
            let _ = writeln!(
                out,
                "\nstopped: the server refused the configuration ({kind}); {left} left; fix it and run again to resume"
            );
        } else if let Some(signal) = self.interrupted {
            let _ = writeln!(
                out,
                "\nstopped by {}: {left} left; run again to resume",
                signal.name()
            );
        }
        out
    }
}

/// A cost in the currency the prices were given in (`LLM_PRICE_PER_1K`
/// has no unit of its own: OpenAI's price list is in USD per 1000 tokens
/// when copied from it): cents from 1 up, four decimals below (a small
/// batch against a cheap model costs fractions of a cent).
pub(crate) fn cost_text(cost: f64) -> String {
    if cost >= 1.0 {
        format!("{cost:.2}")
    } else {
        format!("{cost:.4}")
    }
}

impl Left {
    /// `12`, or `at least 12` when the input was not counted to its end.
    pub(crate) fn display(self) -> String {
        if self.exact {
            self.count.to_string()
        } else {
            format!("at least {}", self.count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_has_its_unit_and_sensible_decimals() {
        assert_eq!(cost_text(0.00081), "0.0008");
        assert_eq!(cost_text(12.3456), "12.35");
        let summary = Summary {
            prompt_tokens: 4000,
            completion_tokens: 500,
            prices: Some((0.00015, 0.0006)),
            ..Summary::default()
        };
        let table = summary.table();
        assert!(
            table.contains("| cost estimate (LLM_PRICE_PER_1K's currency) | 0.0009 |"),
            "{table}"
        );
    }

    #[test]
    fn percentiles_from_the_histogram() {
        let mut s = Summary::default();
        for ms in 1..=100u64 {
            *s.latencies_ms.entry(ms).or_default() += 1;
            s.latency_count += 1;
        }
        assert_eq!(s.percentile(50.0), Some(50));
        assert_eq!(s.percentile(95.0), Some(95));
        assert_eq!(s.percentile(100.0), Some(100));
        assert_eq!(Summary::default().percentile(50.0), None);
    }

    #[test]
    fn exit_codes_fit_an_indexed_job() {
        let ok_and_invalid = Summary {
            accepted: 999,
            invalid_profiles: 1,
            unreadable_profiles: 1,
            ..Summary::default()
        };
        assert_eq!(ok_and_invalid.exit(), Exit::Assessed);
        let none_readable = Summary {
            invalid_profiles: 3,
            unreadable_profiles: 3,
            ..Summary::default()
        };
        assert_eq!(none_readable.exit(), Exit::InvalidProfile);
        let unreadable_input = Summary {
            input_error: Some("gone".into()),
            ..Summary::default()
        };
        assert_eq!(unreadable_input.exit(), Exit::InvalidProfile);
        let read_in_part = Summary {
            accepted: 5,
            input_error: Some("cut off".into()),
            ..Summary::default()
        };
        assert_eq!(read_in_part.exit(), Exit::BackendFailed);
        let stopped = Summary {
            accepted: 5,
            backend_failures: 1,
            interrupted: Some(Signal::Terminate),
            ..Summary::default()
        };
        assert_eq!(stopped.exit().code(), 143);
        let refused = Summary {
            backend_failures: 2,
            refused: Some(ErrorKind::BackendUnauthorized),
            interrupted: Some(Signal::Interrupt),
            ..Summary::default()
        };
        assert_eq!(refused.exit().code(), 2);
        let unwritable = Summary {
            unwritable: 1,
            refused: Some(ErrorKind::BackendNotFound),
            ..Summary::default()
        };
        assert_eq!(unwritable.exit(), Exit::ResultUnwritable);
        assert_eq!(Summary::default().exit(), Exit::Assessed);
    }
}
