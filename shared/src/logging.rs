//! Log set-up shared by both binaries, in the linkerd2-proxy manner: the
//! format is chosen by an environment variable (`LOG_FORMAT=json|plain`), the
//! filter by `RUST_LOG`, and logs always go to stderr so that stdout stays
//! free for a result (`RESULT_PATH=-`).

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line: what a cluster's log pipeline wants.
    Json,
    /// Human-readable lines: what a terminal wants.
    Plain,
}

impl LogFormat {
    /// Plain when the logs' own stream, stderr, is a terminal (a person),
    /// JSON when it is not (a pod). Not stdout: `assessor … | jq` pipes
    /// stdout while the logs still reach the terminal.
    pub fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            LogFormat::Plain
        } else {
            LogFormat::Json
        }
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "plain" | "text" => Ok(LogFormat::Plain),
            other => Err(format!("expected json or plain, found {other:?}")),
        }
    }
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is
/// unset; an invalid `RUST_LOG` is reported by the caller's validation, here it
/// falls back to the default rather than silencing everything.
pub fn init(format: Option<LogFormat>, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format.unwrap_or_else(LogFormat::detect) {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Plain => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber; nothing to report.
    let _ = result;
}
