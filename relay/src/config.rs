//! Relay settings: clap derive with an environment variable on every flag,
//! the same conventions as the assessor (durations with units, secrets from
//! files, validation at start-up naming the variable and the value).

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use shortlist_shared::duration::parse_duration;
use shortlist_shared::logging::LogFormat;
use shortlist_shared::secret::Secret;

use crate::sink::{Signer, Target, check_bearer_token, parse_targets};

/// Watches the results directory and delivers accepted verdicts to notifiers.
///
/// Every flag can also be set through the environment variable shown in
/// brackets. Exit codes: 0 all handled and delivered; 1 a delivery failed;
/// 2 usage error; 3 timed out waiting for results; 4 an invalid result file;
/// 5 an assessor reported status error.
#[derive(Debug, Parser)]
#[command(name = "relay", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// One expected result file; its directory is watched.
    #[arg(long = "result", env = "RESULT_PATH", value_name = "PATH")]
    pub result_path: Option<PathBuf>,

    /// A directory of results (`*.json`), e.g. a batch or an Indexed Job.
    #[arg(
        long = "watch-dir",
        env = "WATCH_DIR",
        value_name = "DIR",
        conflicts_with = "result_path"
    )]
    pub watch_dir: Option<PathBuf>,

    /// The profile, for results that carry none (a minimal custom assessor's).
    #[arg(long = "profile", env = "PROFILE_PATH", value_name = "PATH")]
    pub profile_path: Option<PathBuf>,

    /// Comma-separated targets: https://… (JSON webhook), ntfy+https://host/topic,
    /// slack+https://…, discord+https://…, file:///path.jsonl, stdout:.
    #[arg(
        long = "notifier",
        env = "NOTIFIER_URL",
        default_value = "stdout:",
        hide_env_values = true,
        value_name = "URLS"
    )]
    pub notifier_url: String,

    /// A file holding NOTIFIER_URL's value (a mounted Secret: chat webhook URLs are credentials);
    /// used when set, instead of NOTIFIER_URL.
    #[arg(long = "notifier-file", env = "NOTIFIER_URL_FILE", value_name = "PATH")]
    pub notifier_url_file: Option<PathBuf>,

    /// Standard Webhooks signing secret (`whsec_` + base64).
    #[arg(
        long = "webhook-secret",
        env = "WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub webhook_secret: Option<String>,

    /// A file holding the signing secret (a mounted Secret).
    #[arg(
        long = "webhook-secret-file",
        env = "WEBHOOK_SECRET_FILE",
        value_name = "PATH"
    )]
    pub webhook_secret_file: Option<PathBuf>,

    /// Bearer token sent to the notifier.
    #[arg(
        long = "notifier-token",
        env = "NOTIFIER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub notifier_token: Option<String>,

    /// A file holding the bearer token.
    #[arg(
        long = "notifier-token-file",
        env = "NOTIFIER_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub notifier_token_file: Option<PathBuf>,

    /// Forward only accepted results with a score at least this (0..1); results without a score pass.
    #[arg(long = "min-score", env = "RELAY_MIN_SCORE", value_parser = parse_score, value_name = "SCORE")]
    pub min_score: Option<f64>,

    /// Results to handle before exiting; 0 runs until SIGTERM (native sidecar).
    #[arg(
        long = "expect",
        env = "RELAY_EXPECT",
        default_value = "1",
        value_name = "N"
    )]
    pub expect: u64,

    /// How long to wait for the expected results (exit 3 when they never come).
    #[arg(long = "wait-timeout", env = "RELAY_WAIT_TIMEOUT", value_parser = parse_duration, default_value = "15m", value_name = "DURATION")]
    pub wait_timeout: Duration,

    /// How long a result may stay unparsable (a non-atomic writer) before it is reported invalid.
    #[arg(long = "settle-timeout", env = "RELAY_SETTLE_TIMEOUT", value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub settle_timeout: Duration,

    /// Poll the directory at this interval instead of using inotify.
    #[arg(long = "poll-interval", env = "RELAY_POLL_INTERVAL", value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Option<Duration>,

    /// Time limit of one delivery request.
    #[arg(long = "request-timeout", env = "RELAY_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "15s", value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Overall time limit for delivering one result to one target, retries included.
    #[arg(long = "delivery-deadline", env = "RELAY_DELIVERY_DEADLINE", value_parser = parse_duration, default_value = "10m", value_name = "DURATION")]
    pub delivery_deadline: Duration,

    /// First retry delay; doubles each retry (full jitter, capped at 60s).
    #[arg(long = "retry-base-delay", env = "RELAY_RETRY_BASE_DELAY", value_parser = parse_duration, default_value = "500ms", value_name = "DURATION")]
    pub retry_base_delay: Duration,

    /// On SIGTERM/SIGINT, how long pending deliveries may still run.
    #[arg(long = "drain-timeout", env = "RELAY_DRAIN_TIMEOUT", value_parser = parse_duration, default_value = "20s", value_name = "DURATION")]
    pub drain_timeout: Duration,

    /// Where delivery records are kept (default: `.relay` inside the watched directory).
    #[arg(long = "state-dir", env = "RELAY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Log format; json by default when stdout is not a terminal. RUST_LOG sets the filter.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_parser = parse_log_format, value_name = "json|plain")]
    pub log_format: Option<LogFormat>,
}

fn parse_score(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if (0.0..=1.0).contains(&s) => Ok(s),
        _ => Err(format!("expected a number from 0 to 1, found {value:?}")),
    }
}

fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    value.parse()
}

/// What the relay watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// One file, `RESULT_PATH`: only that name in its directory counts.
    File { dir: PathBuf, name: String },
    /// Every `*.json` in `WATCH_DIR`.
    Dir(PathBuf),
}

impl Watch {
    pub fn dir(&self) -> &std::path::Path {
        match self {
            Watch::File { dir, .. } | Watch::Dir(dir) => dir,
        }
    }

    /// Whether a file name in the directory is a result to read.
    pub fn wants(&self, name: &str) -> bool {
        if shortlist_shared::atomic::is_temp_name(name) {
            return false;
        }
        match self {
            Watch::File { name: wanted, .. } => name == wanted,
            Watch::Dir(_) => name.ends_with(".json"),
        }
    }
}

/// A start-up error: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Display(String),
    #[error("{0}")]
    Cli(String),
    #[error("set RESULT_PATH (one result file) or WATCH_DIR (a directory of results)")]
    NothingToWatch,
    #[error("{variable}={value:?} is invalid: {message}")]
    Invalid {
        variable: &'static str,
        value: String,
        message: String,
    },
    #[error("{variable} is invalid: {message}")]
    InvalidSecret {
        variable: &'static str,
        message: String,
    },
    #[error("{variable}: cannot read {path}: {source}")]
    FileUnreadable {
        variable: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    pub watch: Watch,
    pub profile_path: Option<PathBuf>,
    pub targets: Vec<Target>,
    pub signer: Option<Signer>,
    pub bearer: Option<Secret>,
    pub min_score: Option<f64>,
    pub expect: u64,
    pub wait_timeout: Duration,
    pub settle_timeout: Duration,
    pub poll_interval: Option<Duration>,
    pub request_timeout: Duration,
    pub delivery_deadline: Duration,
    pub retry_base_delay: Duration,
    pub drain_timeout: Duration,
    pub state_dir: PathBuf,
    pub log_format: Option<LogFormat>,
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_args(std::env::args_os())
    }

    pub fn from_args<I, T>(args: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = Cli::command();
        let matches = command.clone().try_get_matches_from(args).map_err(|e| {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    ConfigError::Display(e.render().to_string())
                }
                _ => ConfigError::Cli(shortlist_shared::cli::explain_clap_error(&e, &command)),
            }
        })?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| ConfigError::Cli(e.to_string()))?;
        Settings::validate(cli)
    }

    fn validate(cli: Cli) -> Result<Settings, ConfigError> {
        let watch = match (&cli.result_path, &cli.watch_dir) {
            (Some(path), _) if path.as_os_str() != "-" => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| ConfigError::Invalid {
                        variable: "RESULT_PATH",
                        value: path.display().to_string(),
                        message: "expected a file path".into(),
                    })?;
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                Watch::File { dir, name }
            }
            (_, Some(dir)) => Watch::Dir(dir.clone()),
            _ => return Err(ConfigError::NothingToWatch),
        };
        let dir = watch.dir();
        if !dir.is_dir() {
            let (variable, value) = match &cli.watch_dir {
                Some(d) => ("WATCH_DIR", d.display().to_string()),
                None => (
                    "RESULT_PATH",
                    cli.result_path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                ),
            };
            return Err(ConfigError::Invalid {
                variable,
                value,
                message: format!(
                    "the directory {} does not exist (mount the shared volume there)",
                    dir.display()
                ),
            });
        }

        let (notifier_url, notifier_variable) = match &cli.notifier_url_file {
            // Read like the other secret files; an empty file is no targets.
            Some(path) => (
                read_secret(None, Some(path), "NOTIFIER_URL_FILE")?
                    .map(|url| url.expose().to_string())
                    .unwrap_or_default(),
                "NOTIFIER_URL_FILE",
            ),
            None => (cli.notifier_url.clone(), "NOTIFIER_URL"),
        };
        let targets = parse_targets(&notifier_url).map_err(|e| ConfigError::InvalidSecret {
            variable: notifier_variable,
            message: e.to_string(),
        })?;

        let secret = read_secret(
            cli.webhook_secret.as_deref(),
            cli.webhook_secret_file.as_ref(),
            "WEBHOOK_SECRET_FILE",
        )?;
        let signer =
            match secret {
                None => None,
                Some(secret) => Some(Signer::parse(secret.expose()).map_err(|e| {
                    ConfigError::InvalidSecret {
                        variable: "WEBHOOK_SECRET",
                        message: e.to_string(),
                    }
                })?),
            };
        let bearer = read_secret(
            cli.notifier_token.as_deref(),
            cli.notifier_token_file.as_ref(),
            "NOTIFIER_TOKEN_FILE",
        )?;
        if let Some(token) = &bearer {
            check_bearer_token(token.expose()).map_err(|e| ConfigError::InvalidSecret {
                variable: "NOTIFIER_TOKEN",
                message: e.to_string(),
            })?;
        }

        for (variable, value) in [
            ("RELAY_REQUEST_TIMEOUT", cli.request_timeout),
            ("RELAY_DELIVERY_DEADLINE", cli.delivery_deadline),
            ("RELAY_SETTLE_TIMEOUT", cli.settle_timeout),
            ("RELAY_WAIT_TIMEOUT", cli.wait_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid {
                    variable,
                    value: "0s".into(),
                    message: "must be longer than zero".into(),
                });
            }
        }
        if let Some(interval) = cli.poll_interval {
            if interval < Duration::from_millis(10) {
                return Err(ConfigError::Invalid {
                    variable: "RELAY_POLL_INTERVAL",
                    value: shortlist_shared::duration::format_duration(interval),
                    message: "must be at least 10ms".into(),
                });
            }
        }

        let state_dir = cli.state_dir.unwrap_or_else(|| watch.dir().join(".relay"));
        std::fs::create_dir_all(&state_dir).map_err(|e| ConfigError::Invalid {
            variable: "RELAY_STATE_DIR",
            value: state_dir.display().to_string(),
            message: format!("cannot create the delivery-record directory (the relay needs the volume writable): {e}"),
        })?;

        Ok(Settings {
            watch,
            profile_path: cli.profile_path,
            targets,
            signer,
            bearer,
            min_score: cli.min_score,
            expect: cli.expect,
            wait_timeout: cli.wait_timeout,
            settle_timeout: cli.settle_timeout,
            poll_interval: cli.poll_interval,
            request_timeout: cli.request_timeout,
            delivery_deadline: cli.delivery_deadline,
            retry_base_delay: cli.retry_base_delay,
            drain_timeout: cli.drain_timeout,
            state_dir,
            log_format: cli.log_format,
        })
    }
}

/// A secret given directly or through a file; the file wins if both are set
/// (the file is what a mounted Secret provides).
fn read_secret(
    value: Option<&str>,
    file: Option<&PathBuf>,
    file_variable: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::FileUnreadable {
            variable: file_variable,
            path: path.clone(),
            source,
        })?;
        let text = text.trim();
        return Ok((!text.is_empty()).then(|| Secret::new(text)));
    }
    Ok(value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(Secret::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_has_an_env_var() {
        let command = Cli::command();
        for arg in command.get_arguments() {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            assert!(
                arg.get_env().is_some(),
                "--{:?} has no env var",
                arg.get_long()
            );
        }
        command.debug_assert();
    }

    #[test]
    fn watch_filters_names() {
        let file = Watch::File {
            dir: ".".into(),
            name: "result.json".into(),
        };
        assert!(file.wants("result.json"));
        assert!(!file.wants("other.json"));
        assert!(!file.wants(".result.json.x.tmp"));
        let dir = Watch::Dir(".".into());
        assert!(dir.wants("a.json"));
        assert!(!dir.wants("..data"));
        assert!(!dir.wants("a.json.tmp"));
        assert!(!dir.wants("notes.txt"));
    }
}
