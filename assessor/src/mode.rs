//! What the assessor does with its settings, decided once at start-up:
//! assess one profile, run a batch, score results (eval), a batch and
//! then its score, or list the accepted results (shortlist). Each mode ends in an exit code or an error, which `main`
//! prints.

use std::sync::Arc;

use shortlist_contract::atomic::WriteError;

use crate::assess::{self, Assessor};
use crate::await_delivery::await_receipts;
use crate::exit::Exit;
use crate::output::{print_stderr, print_stdout};
use crate::setting::SettingError;
use crate::shutdown::Shutdown;
use crate::{batch, eval, process_group, report, shortlist, single};

/// The mode and its settings.
#[derive(Debug)]
pub(crate) enum Mode {
    /// One profile, one result (RESULT_PATH).
    Assess {
        assess: assess::Settings,
        io: single::Settings,
    },
    /// Every profile of a directory or JSONL file, results into RESULT_DIR.
    Batch {
        assess: assess::Settings,
        batch: batch::Settings,
    },
    /// Score RESULT_DIR's verdicts against EVAL_LABELS.
    Eval(eval::Settings),
    /// The accepted results of RESULT_DIR, best first.
    Shortlist(shortlist::Settings),
    /// A batch, then the score of its results.
    BatchThenEval {
        assess: assess::Settings,
        batch: batch::Settings,
        eval: eval::Settings,
    },
}

impl Mode {
    /// Whether many profiles are assessed at once (a multi-threaded runtime
    /// and a progress bar pay off).
    pub(crate) fn is_batch(&self) -> bool {
        matches!(self, Mode::Batch { .. } | Mode::BatchThenEval { .. })
    }
}

/// Why a mode stopped without its normal outcome.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A stage could not be built (exit 2).
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The eval could not read its inputs or write its report (exit 2).
    #[error(transparent)]
    Eval(#[from] eval::EvalError),
    /// The shortlist could not read its results or write its output (exit 2).
    #[error(transparent)]
    Shortlist(#[from] shortlist::Error),
    /// The batch had nowhere to write results (exit 5).
    #[error(transparent)]
    Batch(#[from] batch::Error),
    /// The result could not be written; it was printed on stdout (exit 5).
    #[error(transparent)]
    ResultUnwritable(#[from] WriteError),
    /// The result is written, but its delivery was not confirmed (exit 6).
    #[error(transparent)]
    DeliveryUnconfirmed(#[from] crate::await_delivery::NotConfirmed),
}

impl From<single::Error> for Error {
    fn from(error: single::Error) -> Error {
        match error {
            single::Error::ResultUnwritable(error) => Error::ResultUnwritable(error),
            single::Error::DeliveryUnconfirmed(error) => Error::DeliveryUnconfirmed(error),
        }
    }
}

impl Error {
    pub(crate) fn exit(&self) -> Exit {
        match self {
            Error::Setting(_) | Error::Eval(_) | Error::Shortlist(_) => Exit::Usage,
            Error::Batch(_) | Error::ResultUnwritable(_) => Exit::ResultUnwritable,
            Error::DeliveryUnconfirmed(_) => Exit::DeliveryUnconfirmed,
        }
    }
}

/// Runs the mode. From here on SIGTERM and SIGINT stop an assessment or
/// a batch the documented way (exit 143 / 130) instead of killing it.
pub(crate) async fn run(mode: Mode) -> Result<Exit, Error> {
    match mode {
        Mode::Assess { assess, io } => {
            let shutdown = listen();
            let assessor = Assessor::new(assess)?;
            run_single(&assessor, &io, &shutdown).await
        }
        Mode::Batch { assess, batch } => run_batch(assess, &batch, &listen()).await,
        Mode::Eval(eval) => run_eval(&eval),
        Mode::Shortlist(settings) => {
            let count = shortlist::run(&settings)?;
            tracing::debug!(count, "shortlist written");
            Ok(Exit::Assessed)
        }
        Mode::BatchThenEval {
            assess,
            batch,
            eval,
        } => {
            let exit = run_batch(assess, &batch, &listen()).await?;
            if matches!(
                exit,
                Exit::ResultUnwritable | Exit::Interrupted(_) | Exit::BackendRefused
            ) {
                return Ok(exit);
            }
            // The batch's own failure says more than the eval's floors.
            let eval_exit = run_eval(&eval)?;
            Ok(if exit == Exit::Assessed {
                eval_exit
            } else {
                exit
            })
        }
    }
}

/// The shutdown signals; without them (they cannot be installed) a
/// signal keeps its default action and ends the process at once.
fn listen() -> Shutdown {
    Shutdown::listen().unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot install the SIGTERM/SIGINT handlers");
        Shutdown::never()
    })
}

/// One profile. A signal drops the assessment where it is: whatever the
/// judge was doing is abandoned (a command's process group is ended),
/// and no result is written; a result already written stays (it is whole:
/// the write is atomic and not interrupted).
async fn run_single(
    assessor: &Assessor,
    io: &single::Settings,
    shutdown: &Shutdown,
) -> Result<Exit, Error> {
    let finished = {
        let assessment = single::run(assessor, io);
        tokio::pin!(assessment);
        tokio::select! {
            biased;
            outcome = &mut assessment => Ok(outcome),
            signal = shutdown.requested() => Err(signal),
        }
    };
    match finished {
        Ok(outcome) => Ok(outcome?),
        Err(signal) => {
            process_group::end_abandoned(process_group::GRACE).await;
            tracing::warn!(
                signal = signal.name(),
                "stopped before the assessment finished; no result written"
            );
            Ok(Exit::Interrupted(signal))
        }
    }
}

/// Runs the batch and prints its summary table on stderr.
async fn run_batch(
    assess: assess::Settings,
    settings: &batch::Settings,
    shutdown: &Shutdown,
) -> Result<Exit, Error> {
    let assessor = Arc::new(Assessor::new(assess)?);
    let summary = batch::run(assessor, settings, shutdown).await?;
    let _ = print_stderr(summary.table().as_bytes());
    let exit = summary.exit();
    // Only a batch that otherwise succeeded waits: any other exit fails
    // the pod anyway, and its retry delivers again.
    if let (Some(wait), Exit::Assessed) = (settings.await_delivery, exit) {
        await_receipts(&summary.written_accepted, wait).await?;
    }
    Ok(exit)
}

/// Scores results against labels and prints the report on stdout; exit 7
/// when the first run is below a `--fail-under` floor (each shortfall is
/// logged as an error).
fn run_eval(settings: &eval::Settings) -> Result<Exit, Error> {
    let report = eval::run(settings)?;
    if let Some(path) = &settings.html {
        let page = report::html::eval_page(&report);
        shortlist_contract::atomic::write_atomic(path, page.as_bytes()).map_err(|e| {
            eval::EvalError::HtmlUnwritable {
                path: path.clone(),
                error: e.to_string(),
            }
        })?;
    }
    let _ = print_stdout(eval::markdown(&report).as_bytes());
    let Some(run) = report.runs.first() else {
        return Ok(Exit::Assessed);
    };
    let shortfalls = eval::floor::check(&run.metrics, &settings.fail_under);
    for shortfall in &shortfalls {
        tracing::error!(results = %run.results.display(), "eval: {shortfall}");
    }
    Ok(if shortfalls.is_empty() {
        Exit::Assessed
    } else {
        Exit::BelowFloor
    })
}
