//! Batch progress: a progress bar (indicatif: done/total, accepted /
//! rejected / errors, rate, ETA) when stderr is a terminal; a plain log line
//! every few seconds otherwise (a pod's log, CI). Until the first result
//! the bar says what it waits for (with llama: the model loading, which
//! takes seconds to minutes), so a bar at 0 does not look stuck.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::summary::Summary;

/// How often a progress line is logged when there is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub(crate) enum Progress {
    Bar(ProgressBar),
    Log { started: Instant, last: Instant },
}

/// A rate for people: `2,014/s` (whole numbers from 100), `12.3/s`,
/// `4.0/min` below one a second (an in-process model on a small CPU).
pub(crate) fn rate_text(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0/s".into();
    }
    if per_sec >= 99.95 {
        format!("{}/s", thousands(per_sec.round() as u64))
    } else if per_sec >= 0.995 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{:.1}/min", per_sec * 60.0)
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Time left, in whole units: `42s`, `3m 05s`, `2h 10m`.
pub(crate) fn eta_text(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

impl Progress {
    /// A bar when stderr is a terminal, else log lines. `total` is the
    /// number of profiles when known up front; `waiting` is shown on the bar
    /// until the first result ("loading the model" for llama).
    pub(crate) fn new(total: Option<u64>, waiting: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            let now = Instant::now();
            return Progress::Log {
                started: now,
                last: now,
            };
        }
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = if total.is_some() {
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {rate} {eta_text} {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {pos} done {rate} {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .with_key(
                    "rate",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        if state.pos() > 0 {
                            let _ = w.write_str(&rate_text(state.per_sec()));
                        }
                    },
                )
                .with_key(
                    "eta_text",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        if state.pos() > 0 {
                            let eta = state.eta().as_secs();
                            let _ = write!(w, "ETA {}", eta_text(eta));
                        }
                    },
                )
                .progress_chars("=> "),
        );
        bar.set_message(waiting.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress::Bar(bar)
    }

    pub(crate) fn update(&mut self, summary: &Summary) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(summary.done());
                bar.set_message(format!(
                    "accept {} reject {} errors {} skipped {}",
                    summary.accepted,
                    summary.rejected,
                    summary.errors(),
                    summary.skipped
                ));
            }
            Progress::Log { started, last } => {
                if last.elapsed() < LOG_EVERY {
                    return;
                }
                *last = Instant::now();
                tracing::info!(
                    done = summary.done(),
                    accepted = summary.accepted,
                    rejected = summary.rejected,
                    errors = summary.errors(),
                    skipped = summary.skipped,
                    rate_per_s = format!(
                        "{:.1}",
                        summary.done() as f64 / started.elapsed().as_secs_f64()
                    ),
                    "batch progress"
                );
            }
        }
    }

    pub(crate) fn finish(self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rounded_for_people() {
        assert_eq!(rate_text(2014.5099), "2,015/s");
        assert_eq!(rate_text(1_234_567.0), "1,234,567/s");
        assert_eq!(rate_text(100.0), "100/s");
        assert_eq!(rate_text(99.99), "100/s");
        assert_eq!(rate_text(12.34), "12.3/s");
        assert_eq!(rate_text(1.0), "1.0/s");
        assert_eq!(rate_text(0.0667), "4.0/min");
        assert_eq!(rate_text(0.0), "0/s");
        assert_eq!(rate_text(f64::NAN), "0/s");
    }

    #[test]
    fn eta_in_whole_units() {
        assert_eq!(eta_text(42), "42s");
        assert_eq!(eta_text(185), "3m 05s");
        assert_eq!(eta_text(7800), "2h 10m");
    }
}
