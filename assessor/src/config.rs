//! Settings: clap derive with an environment variable on every flag, an
//! optional JSON file (`CONFIG_PATH`) beneath them, and validation at start-up
//! so a bad value fails the pod at once with a message that names the
//! variable and the value, not minutes later inside a request.
//!
//! Precedence, highest first: command-line flag, environment variable,
//! `CONFIG_PATH` file, built-in default. The file's keys are the environment
//! variable names (`{"LLM_MODEL": "llama3.2", "ASSESSOR_RULES": {...}}`); the
//! long flag names (`"model"`) are accepted too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use regex::Regex;
use serde_json::Value;
use shortlist_shared::Verdict;
use shortlist_shared::duration::parse_duration;
use shortlist_shared::logging::LogFormat;

use crate::batch::BatchSettings;
use crate::batch::input::InputFormat;
use crate::batch::shard::Shard;
use crate::caption::CaptionSettings;
use crate::caption::fetch::FetchSettings;
use crate::caption::guard::AddressPolicy;
use crate::eval::EvalSettings;
use crate::rules::Rules;
use crate::secret::Secret;

/// Which judge decides once the rules pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp, LM Studio).
    Openai,
    /// Always the same verdict (`FIXED_VERDICT`): for wiring tests of a deployment.
    Fixed,
    /// An external program: JSON on stdin, verdict JSON on stdout.
    Command,
    /// A GGUF model run in-process by llama.cpp (LLM_MODEL_PATH): no server needed.
    #[cfg(feature = "llama")]
    Llama,
}

impl Default for BackendKind {
    /// The embedded model when this build has it, else a server.
    fn default() -> Self {
        #[cfg(feature = "llama")]
        return BackendKind::Llama;
        #[cfg(not(feature = "llama"))]
        return BackendKind::Openai;
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Openai => "openai",
            BackendKind::Fixed => "fixed",
            BackendKind::Command => "command",
            #[cfg(feature = "llama")]
            BackendKind::Llama => "llama",
        }
    }
}

/// How the `openai` backend asks for a structured reply; `auto` starts with
/// the strictest and falls back when a server refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StructuredOutput {
    /// json_schema, then json_object with the schema, then instructions only.
    Auto,
    /// `response_format: {"type": "json_schema", ...}` (strict).
    JsonSchema,
    /// `response_format: {"type": "json_object", "schema": ...}`.
    JsonObject,
    /// No `response_format`; the schema is in the instructions only.
    None,
}

/// What the assessor does with PROFILE_PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunMode {
    /// One profile, one result (RESULT_PATH).
    Assess,
    /// Every profile of a directory or JSONL file, results into RESULT_DIR.
    Batch,
    /// Score RESULT_DIR's verdicts against EVAL_LABELS (after a batch when PROFILE_PATH is given).
    Eval,
}

/// Whether and how the profile's images are captioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptionBackend {
    /// No captions stage.
    None,
    /// An OpenAI-compatible server with a vision model.
    Openai,
}

/// The fixed backend's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FixedVerdict {
    Accept,
    Reject,
}

impl From<FixedVerdict> for Verdict {
    fn from(v: FixedVerdict) -> Verdict {
        match v {
            FixedVerdict::Accept => Verdict::Accept,
            FixedVerdict::Reject => Verdict::Reject,
        }
    }
}

/// Reads one listing (a profile), judges it, and writes one verdict file.
///
/// Every flag can also be set through the environment variable shown in
/// brackets, or as a key of the JSON file given by CONFIG_PATH.
#[derive(Debug, Parser)]
#[command(name = "assessor", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// `batch` judges every profile of a directory or JSONL file (automatic when PROFILE_PATH is one).
    #[arg(env = "ASSESSOR_MODE", value_enum, value_name = "MODE")]
    pub mode: Option<RunMode>,

    /// The profile to judge (JSON: text, images, metadata); `-` reads stdin; a directory
    /// of *.json or a .jsonl file runs a batch.
    #[arg(long = "profile", env = "PROFILE_PATH", value_name = "PATH")]
    pub profile_path: Option<PathBuf>,

    /// Batch: the directory results are written to, one `<id>.json` per profile.
    #[arg(long = "result-dir", env = "RESULT_DIR", value_name = "DIR")]
    pub result_dir: Option<PathBuf>,

    /// Batch: also append every result as one line to this JSONL file.
    #[arg(long = "results-jsonl", env = "RESULTS_JSONL", value_name = "PATH")]
    pub results_jsonl: Option<PathBuf>,

    /// Batch: profiles assessed at once; default 1 for llama, 4 for command, 16 for openai.
    #[arg(long = "jobs", short = 'j', env = "ASSESSOR_JOBS", value_parser = clap::value_parser!(u32).range(1..=1024), value_name = "N")]
    pub jobs: Option<u32>,

    /// Batch: judge only this share of the input, INDEX/COUNT (0-based), e.g. 0/3.
    #[arg(long = "shard", env = "ASSESSOR_SHARD", value_name = "I/N")]
    pub shard: Option<String>,

    /// Batch: the number of shards when the index comes from JOB_COMPLETION_INDEX (an Indexed Job's completions).
    #[arg(long = "shard-count", env = "ASSESSOR_SHARD_COUNT", value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub shard_count: Option<u32>,

    /// Batch: this shard's index; Kubernetes sets it in Indexed Jobs.
    #[arg(long = "shard-index", env = "JOB_COMPLETION_INDEX", value_name = "I")]
    pub shard_index: Option<u32>,

    /// Eval: the labels, a JSON object of profile id (or result file stem) → "accept" | "reject".
    #[arg(long = "labels", env = "EVAL_LABELS", value_name = "PATH")]
    pub labels: Option<PathBuf>,

    /// Eval: a second results directory to compare with RESULT_DIR on the same labels.
    #[arg(long = "against", env = "EVAL_AGAINST", value_name = "DIR")]
    pub against: Option<PathBuf>,

    /// Eval: also write the report as JSON to this file.
    #[arg(long = "report", env = "EVAL_REPORT", value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Batch: judge profiles again even when their result exists and is ok.
    #[arg(long = "force", env = "ASSESSOR_FORCE", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub force: bool,

    /// Where to write the result; unset or `-` prints it on stdout.
    #[arg(long = "result", env = "RESULT_PATH", value_name = "PATH")]
    pub result_path: Option<PathBuf>,

    /// A JSON file holding any of these settings, keyed by environment variable name.
    #[arg(long = "config", env = "CONFIG_PATH", value_name = "PATH")]
    pub config_path: Option<PathBuf>,

    /// A writable directory for caches (models, captions) used by later stages.
    #[arg(long = "cache-dir", env = "CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Reuse a judge's decision for an identical request from CACHE_DIR/responses (needs CACHE_DIR).
    #[arg(long = "response-cache", env = "LLM_RESPONSE_CACHE", value_parser = clap::builder::BoolishValueParser::new(), default_value = "true", value_name = "BOOL")]
    pub response_cache: bool,

    /// The judge used when the rules pass.
    #[arg(
        long = "backend",
        env = "LLM_BACKEND",
        value_enum,
        default_value_t = BackendKind::default()
    )]
    pub backend: BackendKind,

    /// Base URL of the OpenAI-compatible server (requests go to {base}/chat/completions).
    #[arg(
        long = "base-url",
        env = "LLM_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub base_url: String,

    /// The model name the server knows (required for openai); for llama, a
    /// .gguf file name looked up in CACHE_DIR.
    #[arg(long = "model", env = "LLM_MODEL")]
    pub model: Option<String>,

    /// The GGUF model file for the llama backend.
    #[arg(long = "model-path", env = "LLM_MODEL_PATH", value_name = "PATH")]
    pub model_path: Option<PathBuf>,

    /// CPU threads for the llama backend; default: the cores this process may use (cgroup-aware).
    #[arg(long = "threads", env = "LLM_THREADS", value_parser = clap::value_parser!(u32).range(1..=256), value_name = "N")]
    pub threads: Option<u32>,

    /// Context size in tokens for the llama backend (prompt + reply).
    #[arg(long = "context-size", env = "LLM_CONTEXT_SIZE", default_value = "2048", value_parser = clap::value_parser!(u32).range(256..=131072), value_name = "N")]
    pub context_size: u32,

    /// API key sent as a Bearer token; OPENAI_API_KEY is used when unset.
    #[arg(
        long = "api-key",
        env = "LLM_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

    /// A file holding the API key (e.g. a mounted Secret); read once at start-up.
    #[arg(long = "api-key-file", env = "LLM_API_KEY_FILE", value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// Fallback API key, as the official OpenAI clients read it.
    #[arg(
        long = "openai-api-key",
        env = "OPENAI_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub openai_api_key: Option<String>,

    /// The house hunter's brief in plain words (goes in the system message).
    #[arg(long = "criteria", env = "ASSESSOR_CRITERIA", value_name = "TEXT")]
    pub criteria: Option<String>,

    /// A file holding the brief, when it is too long for an environment variable.
    #[arg(
        long = "criteria-file",
        env = "ASSESSOR_CRITERIA_FILE",
        value_name = "PATH"
    )]
    pub criteria_file: Option<PathBuf>,

    /// Deterministic rules as JSON, or @PATH of a JSON file: {"price":{"min":..,"max":..},
    /// "require":[regex..], "forbid":[regex..], "location":[regex..]}.
    #[arg(long = "rules", env = "ASSESSOR_RULES", value_name = "JSON")]
    pub rules: Option<String>,

    /// Replaces the opening instructions of the system message (original Shortlist setting).
    #[arg(long = "system-prompt", env = "LLM_SYSTEM_PROMPT", value_name = "TEXT")]
    pub system_prompt: Option<String>,

    /// Regex mode: the reply is plain text and the verdict is accept iff the whole
    /// (trimmed) reply matches this regex (original Shortlist setting).
    #[arg(
        long = "positive-regex",
        env = "LLM_POSITIVE_RESPONSE_REGEX",
        value_name = "REGEX"
    )]
    pub positive_regex: Option<String>,

    /// Time limit of one request to the LLM server.
    #[arg(long = "timeout", env = "LLM_TIMEOUT", value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub timeout: Duration,

    /// Time limit for connecting to the LLM server.
    #[arg(long = "connect-timeout", env = "LLM_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Requests per assessment at most, retries included (1-20).
    #[arg(long = "max-attempts", env = "LLM_MAX_ATTEMPTS", default_value = "4", value_parser = clap::value_parser!(u32).range(1..=20), value_name = "N")]
    pub max_attempts: u32,

    /// Overall time limit of the judge stage, retries and waits included.
    #[arg(long = "deadline", env = "LLM_DEADLINE", value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    pub deadline: Duration,

    /// First retry delay; doubles each retry (full jitter, capped at 30s).
    #[arg(long = "retry-base-delay", env = "LLM_RETRY_BASE_DELAY", value_parser = parse_duration, default_value = "500ms", value_name = "DURATION")]
    pub retry_base_delay: Duration,

    /// Sampling temperature; 0 makes verdicts repeatable.
    #[arg(long = "temperature", env = "LLM_TEMPERATURE", default_value = "0", value_parser = parse_temperature, value_name = "T")]
    pub temperature: f32,

    /// Most tokens the model may generate per reply.
    #[arg(long = "max-tokens", env = "LLM_MAX_TOKENS", default_value = "300", value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_tokens: u32,

    /// Sampling seed, for servers that honour it.
    #[arg(long = "seed", env = "LLM_SEED", value_name = "N")]
    pub seed: Option<i64>,

    /// How to ask for a structured reply.
    #[arg(
        long = "structured-output",
        env = "LLM_STRUCTURED_OUTPUT",
        value_enum,
        default_value = "auto"
    )]
    pub structured_output: StructuredOutput,

    /// Longest listing text sent to the model, in characters; longer text is cut with a note in `reasons`.
    #[arg(long = "max-text-chars", env = "LLM_MAX_TEXT_CHARS", default_value = "20000", value_parser = clap::value_parser!(u32).range(100..), value_name = "N")]
    pub max_text_chars: u32,

    /// The fixed backend's verdict.
    #[arg(
        long = "fixed-verdict",
        env = "FIXED_VERDICT",
        value_enum,
        default_value = "accept"
    )]
    pub fixed_verdict: FixedVerdict,

    /// The command backend's program and arguments (split like a shell would, no shell run).
    #[arg(long = "command", env = "ASSESSOR_COMMAND", value_name = "COMMAND")]
    pub command: Option<String>,

    /// Time limit of the command backend's program.
    #[arg(long = "command-timeout", env = "COMMAND_TIMEOUT", value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub command_timeout: Duration,

    /// Caption the profile's images with a vision model before judging (`openai`), or not (`none`).
    #[arg(
        long = "caption-backend",
        env = "CAPTION_BACKEND",
        value_enum,
        default_value = "none"
    )]
    pub caption_backend: CaptionBackend,

    /// The vision server's base URL; default: LLM_BASE_URL.
    #[arg(
        long = "caption-base-url",
        env = "CAPTION_BASE_URL",
        value_name = "URL"
    )]
    pub caption_base_url: Option<String>,

    /// The vision model; default: LLM_MODEL when LLM_BACKEND=openai.
    #[arg(long = "caption-model", env = "CAPTION_MODEL", value_name = "NAME")]
    pub caption_model: Option<String>,

    /// API key for the vision server; default: the judge's key, only when the server is the judge's.
    #[arg(
        long = "caption-api-key",
        env = "CAPTION_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub caption_api_key: Option<String>,

    /// A file holding the vision server's API key.
    #[arg(
        long = "caption-api-key-file",
        env = "CAPTION_API_KEY_FILE",
        value_name = "PATH"
    )]
    pub caption_api_key_file: Option<PathBuf>,

    /// The instruction sent with each image; the default asks what a buyer cares about.
    #[arg(long = "caption-prompt", env = "CAPTION_PROMPT", value_name = "TEXT")]
    pub caption_prompt: Option<String>,

    /// Most tokens per caption.
    #[arg(long = "caption-max-tokens", env = "CAPTION_MAX_TOKENS", default_value = "200", value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub caption_max_tokens: u32,

    /// Time limit of one vision request (retries follow LLM_MAX_ATTEMPTS).
    #[arg(long = "caption-timeout", env = "CAPTION_TIMEOUT", value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub caption_timeout: Duration,

    /// Images captioned at once.
    #[arg(long = "caption-concurrency", env = "CAPTION_CONCURRENCY", default_value = "8", value_parser = clap::value_parser!(u32).range(1..=64), value_name = "N")]
    pub caption_concurrency: u32,

    /// Images captioned per profile; the rest are recorded as too_many_images.
    #[arg(long = "caption-max-images", env = "CAPTION_MAX_IMAGES", default_value = "8", value_parser = clap::value_parser!(u32).range(0..=256), value_name = "N")]
    pub caption_max_images: u32,

    /// Largest image accepted (10MiB, 512KiB, or bytes).
    #[arg(long = "caption-max-image-bytes", env = "CAPTION_MAX_IMAGE_BYTES", default_value = "10MiB", value_parser = shortlist_shared::size::parse_size, value_name = "SIZE")]
    pub caption_max_image_bytes: u64,

    /// Time limit of one image fetch, redirects and body included.
    #[arg(long = "caption-fetch-timeout", env = "CAPTION_FETCH_TIMEOUT", value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub caption_fetch_timeout: Duration,

    /// Redirects followed per image fetch; each hop is checked again.
    #[arg(long = "caption-max-redirects", env = "CAPTION_MAX_REDIRECTS", default_value = "3", value_parser = clap::value_parser!(u32).range(0..=20), value_name = "N")]
    pub caption_max_redirects: u32,

    /// Also fetch plain http:// image URLs.
    #[arg(long = "caption-allow-http", env = "CAPTION_ALLOW_HTTP", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false", value_name = "BOOL")]
    pub caption_allow_http: bool,

    /// Fetch images from any address, the pod's own network included (turns the SSRF guard off).
    #[arg(long = "caption-allow-private", env = "CAPTION_ALLOW_PRIVATE", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false", value_name = "BOOL")]
    pub caption_allow_private: bool,

    /// Exceptions to the SSRF guard: host names, *.suffixes, IPs or CIDRs, comma-separated.
    #[arg(
        long = "caption-allow-hosts",
        env = "CAPTION_ALLOW_HOSTS",
        value_name = "LIST"
    )]
    pub caption_allow_hosts: Option<String>,

    /// Fail the assessment (exit 4) when any image cannot be captioned.
    #[arg(long = "caption-required", env = "CAPTION_REQUIRED", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false", value_name = "BOOL")]
    pub caption_required: bool,

    /// Prices per 1000 tokens as PROMPT,COMPLETION (e.g. 0.00015,0.0006), for a batch's cost estimate.
    #[arg(long = "price-per-1k", env = "LLM_PRICE_PER_1K", value_parser = parse_prices, value_name = "PROMPT,COMPLETION")]
    pub prices: Option<(f64, f64)>,

    /// Log format; json by default when stdout is not a terminal. RUST_LOG sets the filter.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_parser = parse_log_format, value_name = "json|plain")]
    pub log_format: Option<LogFormat>,
}

fn parse_temperature(value: &str) -> Result<f32, String> {
    match value.trim().parse::<f32>() {
        Ok(t) if (0.0..=2.0).contains(&t) => Ok(t),
        _ => Err(format!("expected a number from 0 to 2, found {value:?}")),
    }
}

fn parse_prices(value: &str) -> Result<(f64, f64), String> {
    let parse = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p >= 0.0)
    };
    match value.split_once(',') {
        Some((p, c)) => match (parse(p), parse(c)) {
            (Some(p), Some(c)) => Ok((p, c)),
            _ => Err(format!(
                "expected two prices per 1000 tokens, PROMPT,COMPLETION, found {value:?}"
            )),
        },
        None => match parse(value) {
            Some(p) => Ok((p, p)),
            None => Err(format!(
                "expected a price per 1000 tokens or PROMPT,COMPLETION, found {value:?}"
            )),
        },
    }
}

fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    value.parse()
}

/// A start-up error: exit code 2, no result written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--help` or `--version`: print and exit 0.
    #[error("{0}")]
    Display(String),
    #[error("{0}")]
    Cli(String),
    #[error("{path}: cannot read the config file: {source}")]
    ConfigUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the config file is not a JSON object: {message}")]
    ConfigNotObject { path: PathBuf, message: String },
    #[error(
        "{path}: unknown setting {key:?}; keys are the environment variable names listed by --help"
    )]
    ConfigUnknownKey { path: PathBuf, key: String },
    #[error("{path}: setting {key:?} must be a string, number or boolean, found {found}")]
    ConfigBadValue {
        path: PathBuf,
        key: String,
        found: &'static str,
    },
    #[error("{variable} is required {why}")]
    Missing {
        variable: &'static str,
        why: &'static str,
    },
    #[error("{variable}={value:?} is invalid: {message}")]
    Invalid {
        variable: &'static str,
        value: String,
        message: String,
    },
    #[error("{variable}: cannot read {path}: {source}")]
    FileUnreadable {
        variable: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Rules(#[from] crate::rules::RulesError),
}

/// Validated settings, ready to use.
#[derive(Debug)]
pub struct Settings {
    pub profile_path: PathBuf,
    /// `None` means stdout.
    pub result_path: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub response_cache: bool,
    pub backend: BackendKind,
    pub base_url: String,
    pub model: Option<String>,
    pub model_path: Option<PathBuf>,
    pub threads: usize,
    pub context_size: u32,
    pub api_key: Option<Secret>,
    pub criteria: Option<String>,
    pub rules: Rules,
    pub system_prompt: Option<String>,
    pub positive_regex: Option<Regex>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_attempts: u32,
    pub deadline: Duration,
    pub retry_base_delay: Duration,
    pub temperature: f32,
    pub max_tokens: u32,
    pub seed: Option<i64>,
    pub structured_output: StructuredOutput,
    pub max_text_chars: usize,
    pub fixed_verdict: Verdict,
    pub command: Option<Vec<String>>,
    pub command_timeout: Duration,
    pub log_format: Option<LogFormat>,
    /// Prices per 1000 prompt / completion tokens.
    pub prices: Option<(f64, f64)>,
    /// The captions stage, when on.
    pub caption: Option<CaptionSettings>,
    /// Batch mode, when PROFILE_PATH is a directory or JSONL file (or `batch` is asked for).
    pub batch: Option<BatchSettings>,
    /// `eval`: score results against labels (after the batch, if any).
    pub eval: Option<EvalSettings>,
}

impl Settings {
    /// Parses and validates settings from the process's arguments and environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_args(std::env::args_os())
    }

    /// Parses and validates settings from `args` (the first is the program name)
    /// and the process environment.
    pub fn from_args<I, T>(args: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        // First pass, lenient: only to find CONFIG_PATH.
        let first = Cli::command()
            .ignore_errors(true)
            .try_get_matches_from(&args)
            .ok();
        let config_path = first
            .as_ref()
            .and_then(|m| m.get_one::<PathBuf>("config_path").cloned());
        let mut command = Cli::command();
        if let Some(path) = &config_path {
            for (id, value) in read_config_file(path, &command)? {
                command = command.mut_arg(id, |arg| arg.default_value(value));
            }
        }
        let matches: ArgMatches = command.clone().try_get_matches_from(&args).map_err(|e| {
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
        let eval = eval_settings(&cli)?;
        let profile_path = match (cli.profile_path.clone(), &eval) {
            (Some(path), _) => path,
            // An eval of existing results needs no input.
            (None, Some(_)) => PathBuf::new(),
            (None, None) => {
                return Err(ConfigError::Missing {
                    variable: "PROFILE_PATH",
                    why: "(the profile file to judge, or - for stdin)",
                });
            }
        };
        let result_path = cli.result_path.clone().filter(|p| p.as_os_str() != "-");

        let api_key = read_key(
            cli.api_key.as_deref(),
            cli.api_key_file.as_ref(),
            "LLM_API_KEY_FILE",
        )?
        .or_else(|| non_empty_key(cli.openai_api_key.as_deref()));

        let batch = if eval.is_some() && profile_path.as_os_str().is_empty() {
            None
        } else {
            batch_settings(&cli, &profile_path)?
        };

        let caption = match cli.caption_backend {
            CaptionBackend::None => None,
            CaptionBackend::Openai => Some(caption_settings(&cli, api_key.as_ref())?),
        };

        let criteria = match (cli.criteria, &cli.criteria_file) {
            (Some(c), _) if !c.trim().is_empty() => Some(c),
            (_, Some(path)) => Some(std::fs::read_to_string(path).map_err(|source| {
                ConfigError::FileUnreadable {
                    variable: "ASSESSOR_CRITERIA_FILE",
                    path: path.clone(),
                    source,
                }
            })?),
            _ => None,
        };

        let rules = match cli.rules.as_deref().map(str::trim) {
            None | Some("") => Rules::default(),
            Some(spec) => match spec.strip_prefix('@') {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|source| {
                        ConfigError::FileUnreadable {
                            variable: "ASSESSOR_RULES",
                            path: PathBuf::from(path),
                            source,
                        }
                    })?;
                    Rules::parse(&text, &format!("ASSESSOR_RULES ({path})"))?
                }
                None => Rules::parse(spec, "ASSESSOR_RULES")?,
            },
        };

        let positive_regex =
            match cli.positive_regex {
                None => None,
                Some(pattern) => Some(Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                    ConfigError::Invalid {
                        variable: "LLM_POSITIVE_RESPONSE_REGEX",
                        value: pattern.clone(),
                        message: e.to_string(),
                    }
                })?),
            };

        let model = cli.model.filter(|m| !m.trim().is_empty());
        let mut base_url = cli.base_url.trim().trim_end_matches('/').to_string();
        if cli.backend == BackendKind::Openai {
            if model.is_none() {
                return Err(ConfigError::Missing {
                    variable: "LLM_MODEL",
                    why: "for LLM_BACKEND=openai (the model name the server knows, e.g. gpt-4o-mini or llama3.2)",
                });
            }
            base_url = parse_base_url("LLM_BASE_URL", &base_url)?;
        }

        let command = match (cli.backend, cli.command.as_deref()) {
            (BackendKind::Command, None) | (BackendKind::Command, Some("")) => {
                return Err(ConfigError::Missing {
                    variable: "ASSESSOR_COMMAND",
                    why: "for LLM_BACKEND=command (the program to run, with its arguments)",
                });
            }
            (_, None) => None,
            (_, Some(line)) => {
                let words = shell_words::split(line).map_err(|e| ConfigError::Invalid {
                    variable: "ASSESSOR_COMMAND",
                    value: line.to_string(),
                    message: format!("cannot split into program and arguments: {e}"),
                })?;
                if words.is_empty() {
                    return Err(ConfigError::Invalid {
                        variable: "ASSESSOR_COMMAND",
                        value: line.to_string(),
                        message: "no program given".into(),
                    });
                }
                Some(words)
            }
        };

        if let Some(dir) = &cli.cache_dir {
            if dir.exists() && !dir.is_dir() {
                return Err(ConfigError::Invalid {
                    variable: "CACHE_DIR",
                    value: dir.display().to_string(),
                    message: "exists and is not a directory".into(),
                });
            }
        }

        if cli.deadline.is_zero() {
            return Err(ConfigError::Invalid {
                variable: "LLM_DEADLINE",
                value: shortlist_shared::duration::format_duration(cli.deadline),
                message: "must be longer than zero".into(),
            });
        }
        for (variable, value) in [
            ("LLM_TIMEOUT", cli.timeout),
            ("LLM_CONNECT_TIMEOUT", cli.connect_timeout),
            ("COMMAND_TIMEOUT", cli.command_timeout),
            ("CAPTION_TIMEOUT", cli.caption_timeout),
            ("CAPTION_FETCH_TIMEOUT", cli.caption_fetch_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid {
                    variable,
                    value: "0s".into(),
                    message: "must be longer than zero".into(),
                });
            }
        }

        Ok(Settings {
            profile_path,
            result_path,
            cache_dir: cli.cache_dir,
            response_cache: cli.response_cache,
            backend: cli.backend,
            base_url,
            model,
            model_path: cli.model_path,
            threads: cli.threads.map(|t| t as usize).unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            }),
            context_size: cli.context_size,
            api_key,
            criteria,
            rules,
            system_prompt: cli.system_prompt.filter(|s| !s.trim().is_empty()),
            positive_regex,
            timeout: cli.timeout,
            connect_timeout: cli.connect_timeout,
            max_attempts: cli.max_attempts,
            deadline: cli.deadline,
            retry_base_delay: cli.retry_base_delay,
            temperature: cli.temperature,
            max_tokens: cli.max_tokens,
            seed: cli.seed,
            structured_output: cli.structured_output,
            max_text_chars: cli.max_text_chars as usize,
            fixed_verdict: cli.fixed_verdict.into(),
            command,
            command_timeout: cli.command_timeout,
            log_format: cli.log_format,
            prices: cli.prices,
            caption,
            batch,
            eval,
        })
    }

    /// The model (or command) named in the result's `backend` field.
    pub fn backend_model(&self) -> Option<String> {
        match self.backend {
            BackendKind::Openai => self.model.clone(),
            BackendKind::Fixed => Some(self.fixed_verdict.as_str().to_string()),
            BackendKind::Command => self.command.as_ref().and_then(|c| c.first().cloned()),
            #[cfg(feature = "llama")]
            BackendKind::Llama => self
                .model_path
                .as_ref()
                .map(|p| p.display().to_string())
                .or_else(|| self.model.clone()),
        }
    }
}

/// A key given as a value (`*_API_KEY`, wins when not blank) or as a file
/// (`*_API_KEY_FILE`, a mounted Secret, read once and trimmed).
fn read_key(
    value: Option<&str>,
    file: Option<&PathBuf>,
    file_variable: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(key) = non_empty_key(value) {
        return Ok(Some(key));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let key = std::fs::read_to_string(path).map_err(|source| ConfigError::FileUnreadable {
        variable: file_variable,
        path: path.clone(),
        source,
    })?;
    Ok(Some(Secret::new(key.trim())))
}

fn non_empty_key(value: Option<&str>) -> Option<Secret> {
    value
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(Secret::new)
}

/// Batch mode's settings, or `None` for a single profile. Batch mode is
/// `batch` given explicitly, or a PROFILE_PATH that is a directory or a
/// `.jsonl` file.
fn batch_settings(cli: &Cli, profile_path: &Path) -> Result<Option<BatchSettings>, ConfigError> {
    let format = InputFormat::detect(profile_path);
    let format = match (cli.mode, format) {
        (Some(RunMode::Assess), _) | (None, None) => return Ok(None),
        (Some(RunMode::Batch | RunMode::Eval), None) => {
            return Err(ConfigError::Invalid {
                variable: "PROFILE_PATH",
                value: profile_path.display().to_string(),
                message: if profile_path.exists() {
                    "batch mode reads a directory of *.json profiles or a .jsonl file".into()
                } else {
                    "no such directory or file".into()
                },
            });
        }
        (_, Some(format)) => format,
    };
    let result_dir = match (&cli.result_dir, &cli.result_path) {
        (Some(dir), _) => dir.clone(),
        (None, Some(path)) if path.is_dir() => path.clone(),
        _ => {
            return Err(ConfigError::Missing {
                variable: "RESULT_DIR",
                why: "in batch mode (the directory results are written to, one <id>.json per profile)",
            });
        }
    };
    if result_dir.exists() && !result_dir.is_dir() {
        return Err(ConfigError::Invalid {
            variable: "RESULT_DIR",
            value: result_dir.display().to_string(),
            message: "exists and is not a directory".into(),
        });
    }
    let shard = match (&cli.shard, cli.shard_index, cli.shard_count) {
        (Some(spec), _, _) if !spec.trim().is_empty() => {
            Some(Shard::parse(spec).map_err(|message| ConfigError::Invalid {
                variable: "ASSESSOR_SHARD",
                value: spec.clone(),
                message,
            })?)
        }
        (_, Some(index), Some(count)) => {
            Some(
                Shard::new(index, count).map_err(|message| ConfigError::Invalid {
                    variable: "JOB_COMPLETION_INDEX",
                    value: index.to_string(),
                    message: format!("{message} (ASSESSOR_SHARD_COUNT={count})"),
                })?,
            )
        }
        (_, Some(_), None) => {
            return Err(ConfigError::Missing {
                variable: "ASSESSOR_SHARD_COUNT",
                why: "when JOB_COMPLETION_INDEX is set in batch mode (the Indexed Job's completions, which Kubernetes does not pass to the pod)",
            });
        }
        (_, None, Some(_)) => {
            return Err(ConfigError::Missing {
                variable: "JOB_COMPLETION_INDEX",
                why: "when ASSESSOR_SHARD_COUNT is set (or give ASSESSOR_SHARD=INDEX/COUNT)",
            });
        }
        _ => None,
    };
    let jobs = cli.jobs.map(|j| j as usize).unwrap_or(match cli.backend {
        BackendKind::Openai | BackendKind::Fixed => 16,
        BackendKind::Command => 4,
        #[cfg(feature = "llama")]
        BackendKind::Llama => 1,
    });
    Ok(Some(BatchSettings {
        input: profile_path.to_path_buf(),
        format,
        result_dir,
        results_jsonl: cli.results_jsonl.clone(),
        jobs,
        shard,
        force: cli.force,
    }))
}

/// `eval`'s settings: the labels and the results to score.
fn eval_settings(cli: &Cli) -> Result<Option<EvalSettings>, ConfigError> {
    if cli.mode != Some(RunMode::Eval) {
        return Ok(None);
    }
    let labels = cli.labels.clone().ok_or(ConfigError::Missing {
        variable: "EVAL_LABELS",
        why: "for eval (a JSON object of profile id -> \"accept\" | \"reject\")",
    })?;
    let results = cli.result_dir.clone().ok_or(ConfigError::Missing {
        variable: "RESULT_DIR",
        why: "for eval (the directory of results to score)",
    })?;
    Ok(Some(EvalSettings {
        labels,
        results,
        against: cli.against.clone(),
        report: cli.report.clone(),
    }))
}

/// An http(s) base URL without its trailing slash.
fn parse_base_url(variable: &'static str, value: &str) -> Result<String, ConfigError> {
    let parsed = reqwest::Url::parse(value).map_err(|e| ConfigError::Invalid {
        variable,
        value: value.to_string(),
        message: format!("expected an http(s) URL such as http://localhost:11434/v1 ({e})"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            variable,
            value: value.to_string(),
            message: "expected an http or https URL".into(),
        });
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// The captions stage's settings. The judge's server, model and key are the
/// defaults, but the key only goes to the judge's own server: a vision
/// server elsewhere gets `CAPTION_API_KEY` or nothing.
fn caption_settings(cli: &Cli, judge_key: Option<&Secret>) -> Result<CaptionSettings, ConfigError> {
    let judge_url = parse_base_url("LLM_BASE_URL", cli.base_url.trim().trim_end_matches('/'))?;
    let judge_model = cli
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let base_url = match cli.caption_base_url.as_deref().map(str::trim) {
        Some(url) if !url.is_empty() => {
            parse_base_url("CAPTION_BASE_URL", url.trim_end_matches('/'))?
        }
        _ => judge_url.clone(),
    };
    let model = match cli.caption_model.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => match (cli.backend, judge_model) {
            (BackendKind::Openai, Some(m)) => m.to_string(),
            _ => {
                return Err(ConfigError::Missing {
                    variable: "CAPTION_MODEL",
                    why: "for CAPTION_BACKEND=openai (a vision model the server knows, e.g. gpt-4o-mini, llava or qwen2.5vl)",
                });
            }
        },
    };
    let api_key = match read_key(
        cli.caption_api_key.as_deref(),
        cli.caption_api_key_file.as_ref(),
        "CAPTION_API_KEY_FILE",
    )? {
        Some(key) => Some(key),
        None if base_url == judge_url => judge_key.cloned(),
        None => None,
    };
    let policy = AddressPolicy::parse(
        cli.caption_allow_hosts.as_deref().unwrap_or(""),
        cli.caption_allow_private,
    )
    .map_err(|message| ConfigError::Invalid {
        variable: "CAPTION_ALLOW_HOSTS",
        value: cli.caption_allow_hosts.clone().unwrap_or_default(),
        message,
    })?;
    if cli.caption_max_image_bytes == 0 {
        return Err(ConfigError::Invalid {
            variable: "CAPTION_MAX_IMAGE_BYTES",
            value: "0".into(),
            message: "must be more than zero".into(),
        });
    }
    Ok(CaptionSettings {
        base_url,
        model,
        api_key,
        prompt: cli
            .caption_prompt
            .clone()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| crate::caption::DEFAULT_PROMPT.to_string()),
        max_tokens: cli.caption_max_tokens,
        timeout: cli.caption_timeout,
        connect_timeout: cli.connect_timeout,
        concurrency: cli.caption_concurrency as usize,
        max_images: cli.caption_max_images as usize,
        required: cli.caption_required,
        fetch: FetchSettings {
            policy,
            allow_http: cli.caption_allow_http,
            max_bytes: cli.caption_max_image_bytes,
            max_redirects: cli.caption_max_redirects,
            timeout: cli.caption_fetch_timeout,
        },
        max_attempts: cli.max_attempts,
        retry_base_delay: cli.retry_base_delay,
        deadline: cli.deadline,
    })
}

/// Reads `CONFIG_PATH` into `(arg id, value)` pairs. Keys are matched against
/// each argument's environment variable name (case-insensitively) or its long
/// flag name, so the file reads like the pod's env section.
fn read_config_file(
    path: &Path,
    command: &clap::Command,
) -> Result<Vec<(String, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ConfigUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| ConfigError::ConfigNotObject {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(ConfigError::ConfigNotObject {
            path: path.to_path_buf(),
            message: format!(
                "found {}",
                shortlist_shared::profile::json_type_name(&value)
            ),
        });
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (key, value) in map {
        let normalized = key.trim().to_ascii_lowercase().replace('-', "_");
        let arg = command.get_arguments().find(|arg| {
            let env = arg
                .get_env()
                .map(|e| e.to_string_lossy().to_ascii_lowercase());
            let long = arg.get_long().map(|l| l.replace('-', "_"));
            env.as_deref() == Some(normalized.as_str())
                || long.as_deref() == Some(normalized.as_str())
        });
        let Some(arg) = arg.filter(|a| a.get_id() != "config_path") else {
            return Err(ConfigError::ConfigUnknownKey {
                path: path.to_path_buf(),
                key,
            });
        };
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            // Rules are naturally written as an object in a JSON file.
            Value::Object(_) | Value::Array(_) if arg.get_id() == "rules" => value.to_string(),
            Value::Null => continue,
            other => {
                return Err(ConfigError::ConfigBadValue {
                    path: path.to_path_buf(),
                    key,
                    found: shortlist_shared::profile::json_type_name(&other),
                });
            }
        };
        let text = resolve_relative(path, arg.get_id().as_str(), text);
        pairs.push((arg.get_id().to_string(), text));
    }
    Ok(pairs)
}

/// Path settings in a config file are relative to the file's directory (as
/// a user writing `"ASSESSOR_RULES": "@rules.json"` beside it expects), not
/// to wherever the assessor happens to be started.
fn resolve_relative(config_path: &Path, id: &str, value: String) -> String {
    let base = config_path.parent().unwrap_or(Path::new(""));
    let join = |p: &str| -> String {
        if p == "-" || Path::new(p).is_absolute() {
            p.to_string()
        } else {
            base.join(p).display().to_string()
        }
    };
    match id {
        "profile_path"
        | "result_path"
        | "cache_dir"
        | "api_key_file"
        | "criteria_file"
        | "model_path"
        | "caption_api_key_file"
        | "result_dir"
        | "results_jsonl"
        | "labels"
        | "against"
        | "report" => join(&value),
        "rules" => match value.strip_prefix('@') {
            Some(p) => format!("@{}", join(p)),
            None => value,
        },
        _ => value,
    }
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
}
