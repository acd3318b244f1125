//! `relay`: watches the shared results volume and forwards positive verdicts
//! to a notifier. Delivery lands with its own issue; until then this binary
//! only checks its arguments and says so, so a deployment that wires it in
//! fails loudly instead of silently dropping verdicts.

use std::process::ExitCode;

use clap::Parser;

/// Watches a results directory and delivers accepted verdicts (not yet implemented).
#[derive(Debug, Parser)]
#[command(name = "relay", version, about)]
struct Cli {
    /// One expected result file.
    #[arg(long = "result", env = "RESULT_PATH")]
    result_path: Option<std::path::PathBuf>,
    /// A directory of results.
    #[arg(long = "watch-dir", env = "WATCH_DIR")]
    watch_dir: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    eprintln!("relay: delivery is not implemented yet in this version; nothing was watched");
    ExitCode::from(2)
}
