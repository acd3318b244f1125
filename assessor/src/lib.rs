//! The Shortlist assessor: one profile in, one verdict file out (or a batch
//! of them, or the score of a batch against labels).
//!
//! The binary calls [`main`], ripgrep style: `main` → `run` → `ExitCode`,
//! with every error returned up to `main` and printed there, once. `run`
//! validates the settings ([`cli`]), picks the [`mode`], and the mode runs
//! the assessment ([`assess`]: rules → captions → [`judge`]) for one
//! profile ([`single`]) or many ([`batch`]), scores results ([`eval`]), or
//! lists the accepted ones ([`shortlist`]); both read results through
//! [`result_files`] and render pages through [`report`].
//! Exit codes ([`exit`]) tell a Job's `podFailurePolicy` permanent failures
//! from transient ones.

mod assess;
mod await_delivery;
mod batch;
mod cache_entry;
mod caption;
mod chat_http;
mod cli;
mod eval;
mod exit;
mod facts;
mod judge;
mod listing;
mod mode;
mod output;
mod process_group;
mod prompt;
mod refusal;
mod report;
mod result_files;
mod rules;
mod setting;
mod shortlist;
mod shutdown;
mod single;
mod termination;
mod verdict;

use std::process::ExitCode;

use crate::exit::Exit;

/// The assessor's whole life: exit code 0 to 7 (130 / 143 when stopped by
/// SIGINT / SIGTERM), with at most one error
/// message on stderr.
pub fn main() -> ExitCode {
    match run() {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("assessor: {error}");
            error.exit().into()
        }
    }
}

/// Why the assessor stopped without its normal outcome.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// A setting is missing or invalid (exit 2).
    #[error(transparent)]
    Startup(#[from] cli::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Mode(#[from] mode::Error),
}

impl Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Startup(_) | Error::Runtime(_) => Exit::Usage,
            Error::Mode(error) => error.exit(),
        }
    }
}

fn run() -> Result<Exit, Error> {
    let settings = match cli::parse(std::env::args_os())? {
        cli::Parsed::Display(text) => {
            // `--help` | head may close stdout early; that is no failure.
            let _ = output::print_stdout(text.as_bytes());
            return Ok(Exit::Assessed);
        }
        cli::Parsed::Run(settings) => settings,
    };
    let batch = settings.mode.is_batch();
    // A batch on a terminal draws a progress bar; per-profile lines would
    // scroll it away, so only warnings are logged unless RUST_LOG says more.
    let batch_on_terminal = batch && std::io::IsTerminal::is_terminal(&std::io::stderr());
    // llama.cpp's own log (~140 lines per model load: every GGUF key, the
    // tensor layout) would bury the one verdict line: off unless RUST_LOG
    // asks for it (`RUST_LOG=info,llama-cpp-2=debug`).
    let default_filter = if batch_on_terminal {
        "warn,llama-cpp-2=off"
    } else {
        "info,llama-cpp-2=off"
    };
    shortlist_shared::logging::init(settings.log_format, default_filter);
    // One profile per process: a current-thread runtime starts fastest; a
    // batch overlaps many assessments and uses the cores it may.
    let runtime = if batch {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = runtime.map_err(Error::Runtime)?;
    let outcome = runtime.block_on(mode::run(settings.mode));
    // A blocking thread still busy (an input read after a stop, an
    // in-process model generating for an abandoned assessment) must not
    // hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(outcome?)
}
