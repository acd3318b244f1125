//! `relay`: the thin shell. Settings from flags and env, logs per
//! `LOG_FORMAT`, a current-thread runtime (one core's worth of work is
//! plenty), and SIGTERM/SIGINT as the shutdown signal, linkerd2-proxy style.
//! Every start-up error is printed here, once. `relay check` runs without
//! a runtime: it reads files and prints, nothing more.

use std::process::ExitCode;

use relay::{CheckOptions, ConfigError, Exit, Invocation};

fn main() -> ExitCode {
    run().into()
}

fn run() -> Exit {
    let settings = match Invocation::from_env() {
        Ok(Invocation::Run(settings)) => *settings,
        Ok(Invocation::Check(options)) => return check(&options),
        Err(ConfigError::Display(text)) => {
            print!("{text}");
            return Exit::Done;
        }
        Err(error) => {
            eprintln!("relay: {error}");
            return Exit::Usage;
        }
    };
    shortlist_shared::logging::init(settings.log_format(), "info");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("relay: cannot start the async runtime: {error}");
            return Exit::Usage;
        }
    };
    runtime.block_on(async {
        let shutdown = match shutdown_signal() {
            Ok(signal) => signal,
            Err(error) => {
                eprintln!("relay: cannot install signal handlers: {error}");
                return Exit::Usage;
            }
        };
        match relay::run(settings, shutdown).await {
            Ok(exit) => exit,
            Err(error) => {
                eprintln!("relay: {error}");
                Exit::Usage
            }
        }
    })
}

/// `relay check`: the report on stdout; warnings (an unreadable
/// PROFILE_PATH) are logged on stderr, as the running relay logs them.
fn check(options: &CheckOptions) -> Exit {
    shortlist_shared::logging::init(Some(options.log_format()), "warn");
    let stdout = std::io::stdout();
    match relay::check(options, &mut stdout.lock()) {
        Ok(exit) => exit,
        Err(error) => {
            eprintln!("relay check: cannot write the report: {error}");
            Exit::Usage
        }
    }
}

/// Completes on the first SIGTERM (the kubelet stopping a sidecar) or SIGINT (Ctrl-C).
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "received"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "received"),
        }
    })
}
