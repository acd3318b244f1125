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
    shortlist_shared::logging::init(settings.log_format, "info");
    // One profile per process: a current-thread runtime starts fastest.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("assessor: cannot start the async runtime: {error}");
            return Exit::Usage;
        }
    };
    runtime.block_on(assessor::run(settings))
}
