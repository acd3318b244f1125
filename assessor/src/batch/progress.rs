//! Batch progress: a progress bar (indicatif: done/total, accepted /
//! rejected / errors, rate, ETA) when stderr is a terminal; a plain log line
//! every few seconds otherwise (a pod's log, CI).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::summary::Summary;

/// How often a progress line is logged when there is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub(crate) enum Progress {
    Bar(ProgressBar),
    Log { started: Instant, last: Instant },
}

impl Progress {
    /// A bar when stderr is a terminal, else log lines. `total` is the
    /// number of profiles when known up front.
    pub(crate) fn new(total: Option<u64>) -> Progress {
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
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta} {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {pos} done {per_sec} {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> "),
        );
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
