//! `assessor`: the thin shell, ripgrep style: `main` → [`run`] → `ExitCode`.

use std::process::ExitCode;

use assessor::Exit;
use assessor::config::{ConfigError, Settings};

fn main() -> ExitCode {
    run().into()
}

fn run() -> Exit {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(ConfigError::Display(text)) => {
            print!("{text}");
            return Exit::Assessed;
        }
        Err(error) => {
            eprintln!("assessor: {error}");
            return Exit::Usage;
        }
    };
    // A batch on a terminal draws a progress bar; per-profile lines would
    // scroll it away, so only warnings are logged unless RUST_LOG says more.
    let batch_on_terminal =
        settings.batch.is_some() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let default_filter = if batch_on_terminal { "warn" } else { "info" };
    shortlist_shared::logging::init(settings.log_format, default_filter);
    // One profile per process: a current-thread runtime starts fastest; a
    // batch overlaps many assessments and uses the cores it may.
    let runtime = if settings.batch.is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("assessor: cannot start the async runtime: {error}");
            return Exit::Usage;
        }
    };
    runtime.block_on(assessor::run(settings))
}
