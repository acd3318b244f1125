//! Relay settings: clap derive with an environment variable on every flag,
//! the same conventions as the assessor (durations with units, secrets from
//! files, validation at start-up naming the variable and the value).
//!
//! This is the only place that knows the command line. It validates
//! everything once, at start-up, and maps the flags into each component's
//! own settings ([`watch::Settings`], the settle timeout, [`Policy`],
//! [`deliver::Settings`], [`Lifetime`]), so no component sees another's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use shortlist_shared::duration::parse_duration;
use shortlist_shared::logging::LogFormat;
use shortlist_shared::secret::Secret;

use crate::check::CheckOptions;
use crate::decide::Policy;
use crate::deliver;
use crate::notifier::{Signer, Target, check_bearer_token, parse_targets};
use crate::watch::{self, Watch};

/// Under `relay --help`: examples, then the exit codes ([`crate::Exit`]; the
/// README's "Relay exit codes" say the same, and a test keeps them in step).
pub(crate) const LONG_AFTER_HELP: &str = "\
Examples:
  # Deliver a batch's accepted results to a signed webhook, then exit
  relay --watch-dir out/week-47 --expect 6 --notifier https://hooks.example/shortlist \\
    --webhook-secret-file /run/secrets/webhook
  # As a native sidecar: run until SIGTERM, delivering to ntfy
  RELAY_EXPECT=0 WATCH_DIR=/results NOTIFIER_URL=ntfy+https://ntfy.sh/my-topic relay
  # What would the relay do with these files? Nothing is sent
  relay check out/week-47/*.json --payload

Exit codes (when several apply: 1, then 4, 5, 3):
  0  every result handled, every accepted one delivered
  1  a delivery failed permanently or ran out of its deadline (or the drain timeout)
  2  usage or configuration error
  3  the expected results did not all arrive (RELAY_WAIT_TIMEOUT, or SIGTERM came first)
  4  an invalid result file (relay check: any file invalid)
  5  an assessor reported status: \"error\"
";

/// Watches the results directory and delivers accepted verdicts to notifiers.
///
/// Every flag can also be set through the environment variable shown in
/// brackets.
#[derive(Debug, Parser)]
#[command(
    name = "relay",
    version,
    about,
    max_term_width = 100,
    disable_help_subcommand = true,
    after_help = "--help shows examples and the exit codes.",
    after_long_help = LONG_AFTER_HELP
)]
struct Cli {
    /// Without a command the relay runs (watches and delivers).
    #[command(subcommand)]
    command: Option<Command>,

    /// One expected result file; its directory is watched.
    #[arg(long = "result", env = "RESULT_PATH", value_name = "PATH")]
    result_path: Option<PathBuf>,

    /// A directory of results (`*.json`), e.g. a batch or an Indexed Job.
    #[arg(
        long = "watch-dir",
        env = "WATCH_DIR",
        value_name = "DIR",
        conflicts_with = "result_path"
    )]
    watch_dir: Option<PathBuf>,

    /// The profile, for results that carry none (a minimal custom assessor's).
    #[arg(
        long = "profile",
        env = "PROFILE_PATH",
        value_name = "PATH",
        global = true
    )]
    profile_path: Option<PathBuf>,

    /// Comma-separated targets: https://… (JSON webhook), ntfy+https://host/topic,
    /// slack+https://…, discord+https://…, file:///path.jsonl, stdout:.
    #[arg(
        long = "notifier",
        env = "NOTIFIER_URL",
        default_value = "stdout:",
        hide_env_values = true,
        value_name = "URLS"
    )]
    notifier_url: String,

    /// A file holding NOTIFIER_URL's value (a mounted Secret: chat webhook URLs are credentials);
    /// used when set, instead of NOTIFIER_URL.
    #[arg(long = "notifier-file", env = "NOTIFIER_URL_FILE", value_name = "PATH")]
    notifier_url_file: Option<PathBuf>,

    /// Standard Webhooks signing secret (`whsec_` + base64).
    #[arg(
        long = "webhook-secret",
        env = "WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    webhook_secret: Option<String>,

    /// A file holding the signing secret (a mounted Secret).
    #[arg(
        long = "webhook-secret-file",
        env = "WEBHOOK_SECRET_FILE",
        value_name = "PATH"
    )]
    webhook_secret_file: Option<PathBuf>,

    /// Bearer token sent to the notifier.
    #[arg(
        long = "notifier-token",
        env = "NOTIFIER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    notifier_token: Option<String>,

    /// A file holding the bearer token.
    #[arg(
        long = "notifier-token-file",
        env = "NOTIFIER_TOKEN_FILE",
        value_name = "PATH"
    )]
    notifier_token_file: Option<PathBuf>,

    /// Forward only accepted results with a score at least this (0..1); results without a score pass.
    #[arg(long = "min-score", env = "RELAY_MIN_SCORE", value_parser = parse_score, value_name = "SCORE", global = true)]
    min_score: Option<f64>,

    /// Results to handle before exiting; 0 runs until SIGTERM (native sidecar).
    #[arg(
        long = "expect",
        env = "RELAY_EXPECT",
        default_value = "1",
        value_name = "N"
    )]
    expect: u64,

    /// How long to wait for the expected results (exit 3 when they never come).
    #[arg(long = "wait-timeout", env = "RELAY_WAIT_TIMEOUT", value_parser = parse_duration, default_value = "15m", value_name = "DURATION")]
    wait_timeout: Duration,

    /// How long a result may stay unparsable (a non-atomic writer) before it is reported invalid.
    #[arg(long = "settle-timeout", env = "RELAY_SETTLE_TIMEOUT", value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    settle_timeout: Duration,

    /// Poll the directory at this interval instead of using inotify.
    #[arg(long = "poll-interval", env = "RELAY_POLL_INTERVAL", value_parser = parse_duration, value_name = "DURATION")]
    poll_interval: Option<Duration>,

    /// Time limit of one delivery request.
    #[arg(long = "request-timeout", env = "RELAY_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "15s", value_name = "DURATION")]
    request_timeout: Duration,

    /// Overall time limit for delivering one result to one target, retries included.
    #[arg(long = "delivery-deadline", env = "RELAY_DELIVERY_DEADLINE", value_parser = parse_duration, default_value = "10m", value_name = "DURATION")]
    delivery_deadline: Duration,

    /// First retry delay; doubles each retry (full jitter, capped at 60s).
    #[arg(long = "retry-base-delay", env = "RELAY_RETRY_BASE_DELAY", value_parser = parse_duration, default_value = "500ms", value_name = "DURATION")]
    retry_base_delay: Duration,

    /// On SIGTERM/SIGINT, how long pending deliveries may still run.
    #[arg(long = "drain-timeout", env = "RELAY_DRAIN_TIMEOUT", value_parser = parse_duration, default_value = "20s", value_name = "DURATION")]
    drain_timeout: Duration,

    /// Where delivery records are kept (default: `.relay` inside the watched directory).
    #[arg(long = "state-dir", env = "RELAY_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Log format; json by default when stdout is not a terminal. RUST_LOG sets the filter.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_parser = parse_log_format, value_name = "json|plain")]
    log_format: Option<LogFormat>,
}

/// Commands besides running.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check result files the way the relay reads them and say what it would do
    /// with each: forward, skip or invalid, and why. Nothing is sent. Exit 0 when
    /// every file is a valid result, 4 when any is invalid.
    ///
    /// Uses PROFILE_PATH (--profile) and RELAY_MIN_SCORE (--min-score) as the
    /// running relay does.
    Check(CheckArgs),
}

/// `relay check`'s own arguments. A person (or CI) runs it against files,
/// so these are not settings of a pod and have no environment variables;
/// the settings it shares with the running relay are the global
/// `--profile` and `--min-score`, which keep theirs.
#[derive(Debug, Args)]
struct CheckArgs {
    /// Result files to check, in order.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,

    /// One JSON object per line: file, action, reason, field, verdict, score,
    /// status, id, id_source, webhook_id, note.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = shortlist_shared::cli::parse_bool, action = ArgAction::Set, default_value = "false", value_name = "BOOL")]
    json: bool,

    /// Also print the body a plain https webhook receives for each forwarded
    /// result (schema/notification.v1.json).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = shortlist_shared::cli::parse_bool, action = ArgAction::Set, default_value = "false", value_name = "BOOL")]
    payload: bool,
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

/// Why the relay does not start: exit code 2 (except [`ConfigError::Display`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--help` or `--version`: print this text to stdout and exit 0.
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
    #[error(
        "NOTIFIER_TOKEN (bearer) and a NOTIFIER_URL with user:pass@ (basic auth) are both set; use one"
    )]
    TwoAuths,
    #[error(
        "{variable} holds a published placeholder webhook secret (deploy/base's, or the Standard Webhooks example), which anyone can sign with; put a real one in the Secret, e.g. printf 'whsec_%s' \"$(head -c 32 /dev/urandom | base64)\" (the secret is not shown)"
    )]
    PlaceholderSecret { variable: &'static str },
    #[error("{variable}: cannot read {path}: {source}")]
    FileUnreadable {
        variable: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// When the relay stops: after `expect` results are handled (0: never, a
/// native sidecar ended by SIGTERM), or when they have not all arrived
/// within `wait_timeout`; either way pending deliveries then get
/// `drain_timeout` to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifetime {
    pub(crate) expect: u64,
    pub(crate) wait_timeout: Duration,
    pub(crate) drain_timeout: Duration,
}

/// What the command line asks for: run the relay, or check result files.
#[derive(Debug)]
pub enum Invocation {
    /// `relay` (no command): watch and deliver.
    Run(Box<Settings>),
    /// `relay check FILE...`.
    Check(CheckOptions),
}

impl Invocation {
    /// Reads the process's arguments and environment.
    pub fn from_env() -> Result<Invocation, ConfigError> {
        Invocation::from_args(std::env::args_os())
    }

    /// Reads `args` (the program name first) and the process's environment.
    pub fn from_args<I, T>(args: I) -> Result<Invocation, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let command = Cli::command();
        let matches = command.clone().try_get_matches_from(&args).map_err(|e| {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    ConfigError::Display(e.render().to_string())
                }
                _ => ConfigError::Cli(shortlist_shared::cli::explain_clap_error_in(
                    &e, &command, &args,
                )),
            }
        })?;
        let mut cli =
            Cli::from_arg_matches(&matches).map_err(|e| ConfigError::Cli(e.to_string()))?;
        match cli.command.take() {
            None => Settings::validate(cli).map(|settings| Invocation::Run(Box::new(settings))),
            // Only what check uses is read: a pod's other settings (its
            // WATCH_DIR, its secrets) are not checked.
            Some(Command::Check(args)) => Ok(Invocation::Check(CheckOptions {
                files: args.files,
                json: args.json,
                payload: args.payload,
                policy: Policy {
                    min_score: cli.min_score,
                },
                profile_path: cli.profile_path,
                log_format: cli.log_format,
            })),
        }
    }
}

/// Validated settings, one part per component.
#[derive(Debug)]
pub struct Settings {
    pub(crate) watch: watch::Settings,
    /// RELAY_SETTLE_TIMEOUT: how long a result may stay unparsable.
    pub(crate) settle_timeout: Duration,
    pub(crate) policy: Policy,
    /// PROFILE_PATH: the profile for results that carry none.
    pub(crate) profile_path: Option<PathBuf>,
    pub(crate) delivery: deliver::Settings,
    pub(crate) lifetime: Lifetime,
    log_format: Option<LogFormat>,
}

impl Settings {
    /// LOG_FORMAT, for the binary's logging set-up (None: pick by terminal).
    pub fn log_format(&self) -> Option<LogFormat> {
        self.log_format
    }

    /// Reads the process's arguments and environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_args(std::env::args_os())
    }

    /// Reads `args` (the program name first) and the process's
    /// environment, for running the relay (`relay check` is refused).
    pub fn from_args<I, T>(args: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match Invocation::from_args(args)? {
            Invocation::Run(settings) => Ok(*settings),
            Invocation::Check(_) => Err(ConfigError::Cli(
                "`relay check` checks files; it does not run the relay".into(),
            )),
        }
    }

    /// Checks everything, in the order the errors are reported, and maps
    /// the flags into each component's settings.
    fn validate(cli: Cli) -> Result<Settings, ConfigError> {
        let watch = watched(&cli)?;
        let targets = targets(&cli)?;
        let signer = signer(&cli, &targets)?;
        let bearer = bearer(&cli)?;
        check_one_auth(&targets, bearer.is_some())?;
        check_durations(&cli)?;
        let state_dir = state_dir(cli.state_dir, watch.dir())?;
        let ignore = cli
            .profile_path
            .as_deref()
            .and_then(|profile| name_in_dir(profile, watch.dir()));
        Ok(Settings {
            watch: watch::Settings {
                watch,
                ignore,
                poll_interval: cli.poll_interval,
            },
            settle_timeout: cli.settle_timeout,
            policy: Policy {
                min_score: cli.min_score,
            },
            profile_path: cli.profile_path,
            delivery: deliver::Settings {
                targets,
                signer,
                bearer,
                request_timeout: cli.request_timeout,
                deadline: cli.delivery_deadline,
                retry_base_delay: cli.retry_base_delay,
                state_dir,
            },
            lifetime: Lifetime {
                expect: cli.expect,
                wait_timeout: cli.wait_timeout,
                drain_timeout: cli.drain_timeout,
            },
            log_format: cli.log_format,
        })
    }
}

/// RESULT_PATH or WATCH_DIR, whose directory must exist.
fn watched(cli: &Cli) -> Result<Watch, ConfigError> {
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
    Ok(watch)
}

/// NOTIFIER_URL, or NOTIFIER_URL_FILE's contents when that is set.
fn targets(cli: &Cli) -> Result<Vec<Target>, ConfigError> {
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
    parse_targets(&notifier_url).map_err(|e| ConfigError::InvalidSecret {
        variable: notifier_variable,
        message: e.to_string(),
    })
}

/// WEBHOOK_SECRET (or its file), when set. A published placeholder
/// (`PLACEHOLDER_SECRETS` in `notifier/signing.rs`) is refused when any target is
/// HTTP, i.e. would get signatures made with it: re-applying `deploy/base`
/// resets the Secret to its placeholder, and receivers must not be handed
/// signatures anyone can forge. With only `stdout:` and `file://` targets
/// (the base as shipped) nothing is signed, so the placeholder is harmless.
fn signer(cli: &Cli, targets: &[Target]) -> Result<Option<Signer>, ConfigError> {
    let secret = read_secret(
        cli.webhook_secret.as_deref(),
        cli.webhook_secret_file.as_ref(),
        "WEBHOOK_SECRET_FILE",
    )?;
    let Some(secret) = secret else {
        return Ok(None);
    };
    let signer = Signer::parse(secret.expose()).map_err(|e| ConfigError::InvalidSecret {
        variable: "WEBHOOK_SECRET",
        message: e.to_string(),
    })?;
    if signer.is_placeholder() && targets.iter().any(Target::is_http) {
        // The file wins when both are set (shortlist_shared::secret).
        let variable = if cli.webhook_secret_file.is_some() {
            "WEBHOOK_SECRET_FILE"
        } else {
            "WEBHOOK_SECRET"
        };
        return Err(ConfigError::PlaceholderSecret { variable });
    }
    Ok(Some(signer))
}

/// NOTIFIER_TOKEN (or its file), when set: checked to be sendable.
fn bearer(cli: &Cli) -> Result<Option<Secret>, ConfigError> {
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
    Ok(bearer)
}

/// NOTIFIER_TOKEN and a URL with `user:pass@` are two credentials for one
/// request: reqwest would send the URL's Basic auth and the bearer would be
/// lost without a word. Refused, so the operator picks one.
fn check_one_auth(targets: &[Target], bearer: bool) -> Result<(), ConfigError> {
    if bearer && targets.iter().any(Target::has_userinfo) {
        return Err(ConfigError::TwoAuths);
    }
    Ok(())
}

/// The longest duration any setting may have. Far beyond any sensible
/// value, and small enough that `Instant + duration` never overflows.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Timeouts of zero would fail everything at once; a poll interval under
/// 10ms would spin; anything over [`MAX_DURATION`] is a typo (and would
/// overflow deadline arithmetic).
fn check_durations(cli: &Cli) -> Result<(), ConfigError> {
    for (variable, value) in [
        ("RELAY_REQUEST_TIMEOUT", Some(cli.request_timeout)),
        ("RELAY_DELIVERY_DEADLINE", Some(cli.delivery_deadline)),
        ("RELAY_SETTLE_TIMEOUT", Some(cli.settle_timeout)),
        ("RELAY_WAIT_TIMEOUT", Some(cli.wait_timeout)),
        ("RELAY_DRAIN_TIMEOUT", Some(cli.drain_timeout)),
        ("RELAY_RETRY_BASE_DELAY", Some(cli.retry_base_delay)),
        ("RELAY_POLL_INTERVAL", cli.poll_interval),
    ] {
        if let Some(value) = value.filter(|v| *v > MAX_DURATION) {
            return Err(ConfigError::Invalid {
                variable,
                value: shortlist_shared::duration::format_duration(value),
                message: "must be at most 366d".into(),
            });
        }
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
    Ok(())
}

/// RELAY_STATE_DIR (default `.relay` in the watched directory), created now
/// so a read-only volume is a start-up error, not a failed record later.
fn state_dir(configured: Option<PathBuf>, watched: &Path) -> Result<PathBuf, ConfigError> {
    let state_dir = configured.unwrap_or_else(|| watched.join(".relay"));
    std::fs::create_dir_all(&state_dir).map_err(|e| ConfigError::Invalid {
        variable: "RELAY_STATE_DIR",
        value: state_dir.display().to_string(),
        message: format!(
            "cannot create the delivery-record directory (the relay needs the volume writable): {e}"
        ),
    })?;
    Ok(state_dir)
}

/// The file name of `path` when it sits in `dir`: a profile mounted in the
/// watched directory is not a result.
fn name_in_dir(path: &Path, dir: &Path) -> Option<String> {
    let parent = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let same_dir = std::fs::canonicalize(parent).ok()? == std::fs::canonicalize(dir).ok()?;
    same_dir.then(|| path.file_name()?.to_str().map(str::to_string))?
}

/// A secret given directly or through a file, by the one rule both binaries
/// follow (`shortlist_shared::secret`: the file wins); the error names the
/// `*_FILE` variable.
fn read_secret(
    value: Option<&str>,
    file: Option<&PathBuf>,
    file_variable: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    shortlist_shared::secret::read_secret(value, file.map(PathBuf::as_path)).map_err(|source| {
        ConfigError::FileUnreadable {
            variable: file_variable,
            path: file.cloned().unwrap_or_default(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_has_an_env_var() {
        let command = Cli::command();
        let missing = shortlist_shared::cli::flags_without_env(&command);
        assert!(missing.is_empty(), "flags without an env var: {missing:?}");
        command.debug_assert();
    }

    /// `relay check` is run by a person or CI against files, never as a
    /// pod's container: its FILE arguments and its output switches are not
    /// settings and have no env var on purpose. What it shares with the
    /// running relay (PROFILE_PATH, RELAY_MIN_SCORE) are global flags that
    /// keep theirs. Any other flag added to it must have one.
    #[test]
    fn check_has_env_vars_for_every_setting() {
        let mut command = Cli::command();
        command.build();
        let check = command.find_subcommand("check").expect("relay check");
        let missing = shortlist_shared::cli::flags_without_env(check);
        assert_eq!(missing, ["json", "payload"]);
        let globals: Vec<_> = check
            .get_arguments()
            .filter(|arg| arg.is_global_set())
            .filter_map(|arg| arg.get_env())
            .collect();
        assert_eq!(globals, ["PROFILE_PATH", "RELAY_MIN_SCORE"]);
    }

    /// Every exit code of [`Exit`] is in `relay --help`, with the README's
    /// words for each.
    #[test]
    fn help_lists_every_exit_code() {
        use crate::Exit;
        let all = [
            Exit::Done,
            Exit::DeliveryFailed,
            Exit::Usage,
            Exit::WaitTimedOut,
            Exit::InvalidResult,
            Exit::AssessorError,
        ];
        // A new variant fails to compile here until it is listed above.
        for exit in all {
            match exit {
                Exit::Done
                | Exit::DeliveryFailed
                | Exit::Usage
                | Exit::WaitTimedOut
                | Exit::InvalidResult
                | Exit::AssessorError => {}
            }
            let line = format!("\n  {}  ", exit.code());
            assert!(
                LONG_AFTER_HELP.contains(&line),
                "exit {} missing",
                exit.code()
            );
        }
        let readme = include_str!("../../README.md");
        let section = readme
            .split("Relay exit codes")
            .nth(1)
            .expect("the README's relay exit codes");
        for exit in all {
            assert!(
                section.contains(&format!("{} ", exit.code())),
                "README: relay exit {}",
                exit.code()
            );
        }
        let help = Cli::command().render_long_help().to_string();
        assert!(
            help.contains("Exit codes") && help.contains("Examples"),
            "{help}"
        );
    }

    #[test]
    fn check_booleans_take_an_optional_value() {
        for (args, json) in [
            (&["relay", "check", "a.json", "--json"][..], true),
            (&["relay", "check", "a.json", "--json=false"][..], false),
            (&["relay", "check", "a.json", "--json=yes"][..], true),
            (&["relay", "check", "a.json"][..], false),
        ] {
            let Ok(Invocation::Check(options)) = Invocation::from_args(args.iter().copied()) else {
                panic!("{args:?}");
            };
            assert_eq!(options.json, json, "{args:?}");
        }
        let Err(ConfigError::Cli(message)) =
            Invocation::from_args(["relay", "check", "a.json", "--payload=maybe"])
        else {
            panic!("--payload=maybe accepted");
        };
        assert!(message.contains("--payload"), "{message}");
    }

    #[test]
    fn check_takes_files_and_the_shared_settings() {
        let invocation = Invocation::from_args([
            "relay",
            "--min-score",
            "0.5",
            "check",
            "a.json",
            "--json",
            "b.json",
            "--profile",
            "p.json",
        ]);
        let Ok(Invocation::Check(options)) = invocation else {
            panic!("{invocation:?}");
        };
        assert_eq!(
            options,
            CheckOptions {
                files: vec!["a.json".into(), "b.json".into()],
                json: true,
                payload: false,
                policy: Policy {
                    min_score: Some(0.5)
                },
                profile_path: Some("p.json".into()),
                log_format: None,
            }
        );
        // Nothing to watch is fine for check, and no file is a usage error.
        assert!(matches!(
            Invocation::from_args(["relay", "check"]),
            Err(ConfigError::Cli(_))
        ));
        assert!(matches!(
            Invocation::from_args(["relay", "check", "a.json", "--min-score", "86"]),
            Err(ConfigError::Cli(_))
        ));
        assert!(matches!(
            Settings::from_args(["relay", "check", "a.json"]),
            Err(ConfigError::Cli(_))
        ));
    }

    fn parse(args: &[&str]) -> Settings {
        match Settings::from_args(std::iter::once("relay").chain(args.iter().copied())) {
            Ok(settings) => settings,
            Err(error) => panic!("{args:?}: {error}"),
        }
    }

    #[test]
    fn flags_map_into_each_components_settings() {
        let dir = tempfile::tempdir().unwrap();
        let watched = dir.path().to_str().unwrap();
        let profile = dir.path().join("profile.json");
        let settings = parse(&[
            "--watch-dir",
            watched,
            "--profile",
            profile.to_str().unwrap(),
            "--notifier",
            "stdout:,file:///tmp/relay-config-test.jsonl",
            "--min-score",
            "0.25",
            "--expect",
            "4",
            "--wait-timeout",
            "2m",
            "--settle-timeout",
            "3s",
            "--poll-interval",
            "250ms",
            "--request-timeout",
            "5s",
            "--delivery-deadline",
            "1m",
            "--retry-base-delay",
            "100ms",
            "--drain-timeout",
            "7s",
            "--log-format",
            "plain",
        ]);
        assert_eq!(
            settings.watch,
            watch::Settings {
                watch: Watch::Dir(dir.path().to_path_buf()),
                ignore: Some("profile.json".into()),
                poll_interval: Some(Duration::from_millis(250)),
            }
        );
        assert_eq!(settings.settle_timeout, Duration::from_secs(3));
        assert_eq!(
            settings.policy,
            Policy {
                min_score: Some(0.25)
            }
        );
        assert_eq!(settings.profile_path, Some(profile));
        let delivery = &settings.delivery;
        assert_eq!(delivery.targets.len(), 2);
        assert!(delivery.signer.is_none() && delivery.bearer.is_none());
        assert_eq!(delivery.request_timeout, Duration::from_secs(5));
        assert_eq!(delivery.deadline, Duration::from_secs(60));
        assert_eq!(delivery.retry_base_delay, Duration::from_millis(100));
        assert_eq!(delivery.state_dir, dir.path().join(".relay"));
        assert!(delivery.state_dir.is_dir());
        assert_eq!(
            settings.lifetime,
            Lifetime {
                expect: 4,
                wait_timeout: Duration::from_secs(120),
                drain_timeout: Duration::from_secs(7),
            }
        );
        assert_eq!(settings.log_format(), Some(LogFormat::Plain));
    }

    #[test]
    fn result_path_watches_its_directory_for_its_name_only() {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("result.json");
        let state = dir.path().join("state");
        let settings = parse(&[
            "--result",
            result.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--profile",
            "/nonexistent/profile.json",
        ]);
        assert_eq!(
            settings.watch.watch,
            Watch::File {
                dir: dir.path().to_path_buf(),
                name: "result.json".into()
            }
        );
        // A profile outside the watched directory hides nothing.
        assert_eq!(settings.watch.ignore, None);
        assert_eq!(settings.delivery.state_dir, state);
        assert!(state.is_dir());
    }
}
