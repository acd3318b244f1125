//! The command line: one clap `Args` struct per component, flattened into
//! [`Cli`] under its own `--help` heading. Every flag has an environment
//! variable (a pod is configured through its env section) and may be a key
//! of the `CONFIG_PATH` file. These types only parse; [`super`] validates
//! them and maps them into each component's settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, ValueEnum};
use shortlist_contract::Verdict;
use shortlist_shared::cli::parse_bool;
use shortlist_shared::duration::parse_duration;
use shortlist_shared::logging::LogFormat;

use crate::eval::floor::Floor;
use crate::judge::openai::StructuredOutput;
use crate::shortlist;

/// Which judge decides once the rules pass (`LLM_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum JudgeKind {
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

impl Default for JudgeKind {
    /// The embedded model when this build has it, else a server.
    fn default() -> Self {
        #[cfg(feature = "llama")]
        return JudgeKind::Llama;
        #[cfg(not(feature = "llama"))]
        return JudgeKind::Openai;
    }
}

impl std::fmt::Display for JudgeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JudgeKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JudgeKind::Openai => "openai",
            JudgeKind::Fixed => "fixed",
            JudgeKind::Command => "command",
            #[cfg(feature = "llama")]
            JudgeKind::Llama => "llama",
        }
    }
}

/// What the assessor does with PROFILE_PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RunMode {
    /// One profile, one result (RESULT_PATH).
    Assess,
    /// Every profile of a directory or JSONL file, results into RESULT_DIR.
    Batch,
    /// Score RESULT_DIR's verdicts against EVAL_LABELS (after a batch when PROFILE_PATH is given).
    Eval,
    /// List RESULT_DIR's accepted listings, best score first (SHORTLIST_FORMAT).
    Shortlist,
}

/// How `shortlist` writes the accepted listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShortlistFormat {
    /// Aligned columns for a terminal: id, score, price, location, link, first reason.
    Table,
    /// One row per listing, quoted, with a header (formula-like cells get a leading ').
    Csv,
    /// One JSON object per line: id, score, score_source, price, location, url, reasons, facts, result_file.
    Jsonl,
    /// One self-contained HTML page of cards (photo, price, link, score, facts, reasons).
    Html,
}

impl From<ShortlistFormat> for shortlist::Format {
    fn from(format: ShortlistFormat) -> shortlist::Format {
        match format {
            ShortlistFormat::Table => shortlist::Format::Table,
            ShortlistFormat::Csv => shortlist::Format::Csv,
            ShortlistFormat::Jsonl => shortlist::Format::Jsonl,
            ShortlistFormat::Html => shortlist::Format::Html,
        }
    }
}

/// Whether and how the profile's images are captioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CaptionKind {
    /// No captions stage.
    None,
    /// An OpenAI-compatible server with a vision model.
    Openai,
}

/// The fixed backend's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FixedVerdict {
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

/// Under `-h`: where the rest is.
const SHORT_AFTER_HELP: &str =
    "The common options only; --help lists every option, with examples and the exit codes.";

/// Under `--help`: examples, then the exit codes, as in the README's "Exit
/// codes" table (a unit test keeps the two and [`crate::exit::Exit`] in step).
pub(crate) const LONG_AFTER_HELP: &str = "\
Examples:
  # One listing (JSON, or .txt/.md plain text) against a local Ollama; the result on stdout
  LLM_BACKEND=openai LLM_BASE_URL=http://localhost:11434/v1 LLM_MODEL=llama3.2 \\
    assessor --criteria 'Two bedrooms in Bristol with a garden' listing.json
  # A batch: every profile of a directory (or a .jsonl), 8 at a time, resumable
  assessor --result-dir out/week-47 --jobs 8 listings/
  # Score a batch against labels, with a self-contained HTML page
  assessor eval --labels labels.json --result-dir out/week-47 --html out/eval.html
  # The accepted listings, best score first
  assessor shortlist --result-dir out/week-47
  # Any OpenAI-compatible server, the key from a mounted file
  assessor --backend openai --base-url https://api.openai.com/v1 --model gpt-4o-mini \\
    --api-key-file /run/secrets/openai listing.json

Exit codes:
  0        assessed (accept or reject); a batch: every profile got a result
           (invalid ones an error result)
  2        usage or configuration error, at start-up (no result written), or a server
           refused the configuration: bad API key, unknown model or base URL (error result)
  3        the profile is missing or invalid, or CAPTION_REQUIRED and an image is refused
           (permanent; a batch: no profile at all could be read)
  4        the backend failed after retries, or CAPTION_REQUIRED and an image could not be
           fetched or captioned (transient: retry)
  5        the result could not be written (it is printed on stdout instead)
  6        ASSESSOR_AWAIT_DELIVERY: the relay's receipt did not come in time (transient)
  7        eval --fail-under: a metric is below its floor or cannot be computed
  130/143  stopped by SIGINT/SIGTERM; a batch lets profiles in flight finish for
           ASSESSOR_DRAIN_TIMEOUT, prints its summary, and a new run resumes
";

/// Reads one listing (a profile), judges it, and writes one verdict file.
///
/// Every flag can also be set through the environment variable shown in
/// brackets, or as a key of the JSON file given by CONFIG_PATH (flags beat
/// variables, variables beat the file).
#[derive(Debug, Parser)]
#[command(
    name = "assessor",
    version,
    about = "Judges property listings: one profile in, one verdict file out (or a batch, an eval, a shortlist).",
    long_about = "Judges property listings: one profile in, one verdict file out (or a batch of them, \
the score of a batch against labels, or the list of accepted ones). Rules decide what they can, \
then a judge (an in-process GGUF model, an OpenAI-compatible server, a command or a fixed \
verdict) decides the rest.\n\nEvery flag can also be set through the environment variable \
shown in brackets, or as a key of the JSON file given by CONFIG_PATH (flags beat variables, \
variables beat the file).",
    max_term_width = 100,
    after_help = SHORT_AFTER_HELP,
    after_long_help = LONG_AFTER_HELP
)]
pub(crate) struct Cli {
    /// assess, batch, eval or shortlist; any other first word is the PROFILE.
    ///
    /// `assess` judges one profile; `batch` every profile of a directory or
    /// JSONL file (automatic when the profile is one); `eval` scores
    /// RESULT_DIR against EVAL_LABELS (after a batch when a profile is
    /// given); `shortlist` lists RESULT_DIR's accepted listings. Without a
    /// mode word, ASSESSOR_MODE (--mode) applies.
    #[arg(value_name = "MODE")]
    pub(crate) first_word: Option<std::ffi::OsString>,

    /// A profile file, `-` (stdin), a directory or .jsonl (batch); beats PROFILE_PATH.
    #[arg(value_name = "PROFILE")]
    pub(crate) second_word: Option<PathBuf>,

    /// The mode when no MODE word is given.
    #[arg(
        long = "mode",
        env = "ASSESSOR_MODE",
        value_enum,
        value_name = "MODE",
        hide_short_help = true,
        hide_possible_values = true
    )]
    pub(crate) mode: Option<RunMode>,

    #[command(flatten)]
    pub(crate) input: InputArgs,

    #[command(flatten)]
    pub(crate) batch: BatchArgs,

    #[command(flatten)]
    pub(crate) eval: EvalArgs,

    #[command(flatten)]
    pub(crate) shortlist: ShortlistArgs,

    #[command(flatten)]
    pub(crate) rules: RulesArgs,

    #[command(flatten)]
    pub(crate) prompt: PromptArgs,

    #[command(flatten)]
    pub(crate) judge: JudgeArgs,

    #[command(flatten)]
    pub(crate) llama: LlamaArgs,

    #[command(flatten)]
    pub(crate) command: CommandArgs,

    #[command(flatten)]
    pub(crate) captions: CaptionArgs,
}

/// Where the profile comes from, where the result goes, and the process's own settings.
#[derive(Debug, Args)]
#[command(next_help_heading = "Input and output")]
pub(crate) struct InputArgs {
    /// The profile to judge (the PROFILE word beats it).
    ///
    /// JSON ({"text", "images", "metadata"}), or a plain-text or Markdown
    /// listing (`.txt`, `.md`: the whole file is the text); `-` reads stdin;
    /// a directory (of *.json, *.txt, *.md) or a .jsonl file runs a batch.
    #[arg(long = "profile", env = "PROFILE_PATH", value_name = "PATH")]
    pub(crate) profile_path: Option<PathBuf>,

    /// Read the profile as plain text (stdin too).
    ///
    /// The whole input becomes the profile's `text`; its id is the content's
    /// hash. Files named *.txt or *.md are read this way without it.
    #[arg(long = "text", env = "PROFILE_TEXT", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = parse_bool, action = ArgAction::Set, default_value = "false", value_name = "BOOL")]
    pub(crate) text: bool,

    /// Where the result goes; unset or `-`: stdout.
    #[arg(long = "result", env = "RESULT_PATH", value_name = "PATH")]
    pub(crate) result_path: Option<PathBuf>,

    /// After writing an accepted result, wait this long for the relay's receipt
    /// (RESULT_PATH + `.receipt`); exit 6 when none comes. Needs RESULT_PATH.
    #[arg(long = "await-delivery", env = "ASSESSOR_AWAIT_DELIVERY", value_parser = parse_duration, value_name = "DURATION", hide_short_help = true)]
    pub(crate) await_delivery: Option<Duration>,

    /// Also write a short summary of the result (id, verdict, score, first
    /// reasons; at most 4 KiB) to this file: in a pod, `/dev/termination-log`,
    /// which Kubernetes puts in the pod's status for whoever launched the Job.
    #[arg(
        long = "termination-message",
        env = "ASSESSOR_TERMINATION_MESSAGE",
        value_name = "PATH",
        hide_short_help = true
    )]
    pub(crate) termination_message: Option<PathBuf>,

    /// A JSON file of these settings, keyed by variable name.
    #[arg(long = "config", env = "CONFIG_PATH", value_name = "PATH")]
    pub(crate) config_path: Option<PathBuf>,

    /// Caches: models, captions, judge replies.
    #[arg(long = "cache-dir", env = "CACHE_DIR", value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,

    /// Logs on stderr: json, or plain on a terminal.
    ///
    /// RUST_LOG sets the filter (default `info`; llama.cpp's own log is off
    /// unless asked: `RUST_LOG=info,llama-cpp-2=debug`).
    #[arg(long = "log-format", env = "LOG_FORMAT", value_parser = parse_log_format, value_name = "json|plain", help_heading = "Logging")]
    pub(crate) log_format: Option<LogFormat>,
}

/// Batch mode: many profiles, one result file each.
#[derive(Debug, Args)]
#[command(next_help_heading = "Batch")]
pub(crate) struct BatchArgs {
    /// Batch: where results go, one `<id>.json` each.
    #[arg(long = "result-dir", env = "RESULT_DIR", value_name = "DIR")]
    pub(crate) result_dir: Option<PathBuf>,

    /// Batch: also append every result as one line to this JSONL file.
    #[arg(
        hide_short_help = true,
        long = "results-jsonl",
        env = "RESULTS_JSONL",
        value_name = "PATH"
    )]
    pub(crate) results_jsonl: Option<PathBuf>,

    /// Batch: profiles at once (default 4; 16 for openai).
    ///
    /// Default 4 for llama (their replies are decoded together) and command,
    /// 16 for openai and fixed.
    #[arg(long = "jobs", short = 'j', env = "ASSESSOR_JOBS", value_parser = clap::value_parser!(u32).range(1..=1024), value_name = "N")]
    pub(crate) jobs: Option<u32>,

    /// Batch: judge only this share of the input, INDEX/COUNT (0-based), e.g. 0/3.
    #[arg(
        hide_short_help = true,
        long = "shard",
        env = "ASSESSOR_SHARD",
        value_name = "I/N"
    )]
    pub(crate) shard: Option<String>,

    /// Batch: the number of shards when the index comes from JOB_COMPLETION_INDEX (an Indexed Job's completions).
    #[arg(hide_short_help = true, long = "shard-count", env = "ASSESSOR_SHARD_COUNT", value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub(crate) shard_count: Option<u32>,

    /// Batch: this shard's index; Kubernetes sets it in Indexed Jobs.
    #[arg(
        hide_short_help = true,
        long = "shard-index",
        env = "JOB_COMPLETION_INDEX",
        value_name = "I"
    )]
    pub(crate) shard_index: Option<u32>,

    /// Batch: judge again even when an ok result exists.
    #[arg(long = "force", env = "ASSESSOR_FORCE", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = parse_bool, action = ArgAction::Set, default_value = "false", value_name = "BOOL")]
    pub(crate) force: bool,

    /// Batch: on SIGTERM/SIGINT, how long profiles in flight may finish (no new ones start; a
    /// second signal cuts it short); then the batch exits 143/130 with its summary, and a new
    /// run resumes.
    #[arg(hide_short_help = true, long = "drain-timeout", env = "ASSESSOR_DRAIN_TIMEOUT", value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub(crate) drain_timeout: Duration,

    /// Prices per 1000 tokens as PROMPT,COMPLETION (e.g. 0.00015,0.0006), for a batch's cost estimate.
    #[arg(hide_short_help = true, long = "price-per-1k", env = "LLM_PRICE_PER_1K", value_parser = parse_prices, value_name = "PROMPT,COMPLETION")]
    pub(crate) prices: Option<(f64, f64)>,
}

/// Eval: scoring results against labels.
#[derive(Debug, Args)]
#[command(next_help_heading = "Eval and shortlist")]
pub(crate) struct EvalArgs {
    /// Eval: the labels, {"<id>": "accept" | "reject", ...}.
    ///
    /// Keyed by profile id or result file stem.
    #[arg(long = "labels", env = "EVAL_LABELS", value_name = "PATH")]
    pub(crate) labels: Option<PathBuf>,

    /// Eval: a second results directory to compare with RESULT_DIR on the same labels.
    #[arg(
        hide_short_help = true,
        long = "against",
        env = "EVAL_AGAINST",
        value_name = "DIR"
    )]
    pub(crate) against: Option<PathBuf>,

    /// Eval: also write the report as JSON to this file.
    #[arg(
        hide_short_help = true,
        long = "report",
        env = "EVAL_REPORT",
        value_name = "PATH"
    )]
    pub(crate) report: Option<PathBuf>,

    /// Eval: also write the report as one HTML page.
    ///
    /// Self-contained (no script, font or stylesheet of its own): the
    /// confusion matrix, precision/recall against the score threshold, every
    /// disagreement as a card.
    #[arg(long = "html", env = "EVAL_HTML", value_name = "PATH")]
    pub(crate) html: Option<PathBuf>,

    /// Eval: exit 7 when a metric of RESULT_DIR is below MIN (or cannot be computed);
    /// METRIC is accuracy, precision, recall or f1. Repeatable; comma-separated in the variable.
    #[arg(hide_short_help = true, long = "fail-under", env = "EVAL_FAIL_UNDER", value_delimiter = ',', value_parser = parse_floor, value_name = "METRIC=MIN")]
    pub(crate) fail_under: Vec<Floor>,
}

/// Shortlist: the accepted listings of RESULT_DIR.
#[derive(Debug, Args)]
#[command(next_help_heading = "Eval and shortlist")]
pub(crate) struct ShortlistArgs {
    /// Shortlist: the output's format.
    #[arg(
        long = "format",
        env = "SHORTLIST_FORMAT",
        value_enum,
        default_value = "table"
    )]
    pub(crate) format: ShortlistFormat,

    /// Shortlist: write this file, not stdout.
    #[arg(long = "output", env = "SHORTLIST_OUTPUT", value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
}

/// The deterministic rules, checked before anything is asked.
#[derive(Debug, Args)]
#[command(next_help_heading = "Rules and brief")]
pub(crate) struct RulesArgs {
    /// Rules as JSON, or @PATH of a JSON file.
    ///
    /// {"price":{"min":..,"max":..}, "require":[regex..], "forbid":[regex..],
    /// "location":[regex..], "facts":[..]}: see the README.
    #[arg(long = "rules", env = "ASSESSOR_RULES", value_name = "JSON")]
    pub(crate) rules: Option<String>,
}

/// What the judge is told: the brief and the framing of the listing.
#[derive(Debug, Args)]
#[command(next_help_heading = "Rules and brief")]
pub(crate) struct PromptArgs {
    /// The house hunter's brief, in plain words.
    ///
    /// It goes in the system message.
    #[arg(long = "criteria", env = "ASSESSOR_CRITERIA", value_name = "TEXT")]
    pub(crate) criteria: Option<String>,

    /// A file holding the brief, when it is too long for an environment variable.
    #[arg(
        hide_short_help = true,
        long = "criteria-file",
        env = "ASSESSOR_CRITERIA_FILE",
        value_name = "PATH"
    )]
    pub(crate) criteria_file: Option<PathBuf>,

    /// Replaces the opening instructions of the system message (original Shortlist setting).
    #[arg(
        hide_short_help = true,
        long = "system-prompt",
        env = "LLM_SYSTEM_PROMPT",
        value_name = "TEXT"
    )]
    pub(crate) system_prompt: Option<String>,

    /// Regex mode: the reply is plain text and the verdict is accept iff the whole
    /// (trimmed) reply matches this regex (original Shortlist setting).
    #[arg(
        hide_short_help = true,
        long = "positive-regex",
        env = "LLM_POSITIVE_RESPONSE_REGEX",
        value_name = "REGEX"
    )]
    pub(crate) positive_regex: Option<String>,

    /// Longest listing text sent to the model, in characters; longer text is cut with a note in `reasons`.
    #[arg(hide_short_help = true, long = "max-text-chars", env = "LLM_MAX_TEXT_CHARS", default_value = "20000", value_parser = clap::value_parser!(u32).range(100..), value_name = "N")]
    pub(crate) max_text_chars: u32,
}

/// Which judge decides, and how the LLM judges (openai, llama) are asked.
#[derive(Debug, Args)]
#[command(next_help_heading = "Judge")]
pub(crate) struct JudgeArgs {
    /// The judge once the rules pass.
    #[arg(
        long = "backend",
        env = "LLM_BACKEND",
        value_enum,
        default_value_t = JudgeKind::default()
    )]
    pub(crate) backend: JudgeKind,

    /// The OpenAI-compatible server.
    ///
    /// Requests go to {base}/chat/completions; a query (`?api-key=...`) is
    /// kept on every request and shown redacted.
    #[arg(
        value_name = "URL",
        long = "base-url",
        env = "LLM_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub(crate) base_url: String,

    /// The server's model (openai: required).
    ///
    /// For llama, a .gguf file name looked up in CACHE_DIR and
    /// CACHE_DIR/models.
    #[arg(long = "model", env = "LLM_MODEL", value_name = "NAME")]
    pub(crate) model: Option<String>,

    /// API key sent as a Bearer token; OPENAI_API_KEY is used when unset.
    #[arg(
        hide_short_help = true,
        long = "api-key",
        env = "LLM_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) api_key: Option<String>,

    /// A file holding the API key (a mounted Secret).
    ///
    /// Read once at start-up; it wins over LLM_API_KEY.
    #[arg(long = "api-key-file", env = "LLM_API_KEY_FILE", value_name = "PATH")]
    pub(crate) api_key_file: Option<PathBuf>,

    /// Fallback API key, as the official OpenAI clients read it.
    #[arg(
        hide_short_help = true,
        long = "openai-api-key",
        env = "OPENAI_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) openai_api_key: Option<String>,

    /// Time limit of one request to the LLM server.
    #[arg(hide_short_help = true, long = "timeout", env = "LLM_TIMEOUT", value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub(crate) timeout: Duration,

    /// Time limit for connecting to the LLM server.
    #[arg(hide_short_help = true, long = "connect-timeout", env = "LLM_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub(crate) connect_timeout: Duration,

    /// Requests per assessment at most, retries included (1-20).
    #[arg(hide_short_help = true, long = "max-attempts", env = "LLM_MAX_ATTEMPTS", default_value = "4", value_parser = clap::value_parser!(u32).range(1..=20), value_name = "N")]
    pub(crate) max_attempts: u32,

    /// Overall time limit of the judge stage, retries and waits included.
    #[arg(hide_short_help = true, long = "deadline", env = "LLM_DEADLINE", value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    pub(crate) deadline: Duration,

    /// First retry delay; doubles each retry (full jitter, capped at 30s).
    #[arg(hide_short_help = true, long = "retry-base-delay", env = "LLM_RETRY_BASE_DELAY", value_parser = parse_duration, default_value = "500ms", value_name = "DURATION")]
    pub(crate) retry_base_delay: Duration,

    /// Sampling temperature; 0 makes verdicts repeatable.
    #[arg(hide_short_help = true, long = "temperature", env = "LLM_TEMPERATURE", default_value = "0", value_parser = parse_temperature, value_name = "T")]
    pub(crate) temperature: f32,

    /// Most tokens the model may generate per reply.
    #[arg(hide_short_help = true, long = "max-tokens", env = "LLM_MAX_TOKENS", default_value = "300", value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub(crate) max_tokens: u32,

    /// Sampling seed, for servers that honour it.
    #[arg(
        hide_short_help = true,
        long = "seed",
        env = "LLM_SEED",
        value_name = "N"
    )]
    pub(crate) seed: Option<i64>,

    /// How to ask for a structured reply.
    #[arg(
        hide_short_help = true,
        long = "structured-output",
        env = "LLM_STRUCTURED_OUTPUT",
        value_enum,
        default_value = "auto"
    )]
    pub(crate) structured_output: StructuredOutput,

    /// Reuse a judge's decision for an identical request from CACHE_DIR/responses (needs CACHE_DIR).
    #[arg(hide_short_help = true, long = "response-cache", env = "LLM_RESPONSE_CACHE", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = parse_bool, action = ArgAction::Set, default_value = "true", value_name = "BOOL")]
    pub(crate) response_cache: bool,
}

/// The in-process model (LLM_BACKEND=llama).
#[derive(Debug, Args)]
#[command(next_help_heading = "Llama judge")]
pub(crate) struct LlamaArgs {
    /// The GGUF model file for llama.
    #[arg(long = "model-path", env = "LLM_MODEL_PATH", value_name = "PATH")]
    pub(crate) model_path: Option<PathBuf>,

    /// CPU threads for the llama backend; default: the CPUs this process may use (CPU quota, affinity), fewer when busy neighbours leave less free at start-up.
    #[arg(hide_short_help = true, long = "threads", env = "LLM_THREADS", value_parser = clap::value_parser!(u32).range(1..=256), value_name = "N")]
    pub(crate) threads: Option<u32>,

    /// Context size in tokens for the llama backend (prompt + reply).
    #[arg(hide_short_help = true, long = "context-size", env = "LLM_CONTEXT_SIZE", default_value = "2048", value_parser = clap::value_parser!(u32).range(256..=131072), value_name = "N")]
    pub(crate) context_size: u32,
}

/// The command judge (LLM_BACKEND=command) and the fixed one (LLM_BACKEND=fixed).
#[derive(Debug, Args)]
#[command(next_help_heading = "Command and fixed judges")]
pub(crate) struct CommandArgs {
    /// The command backend's program and arguments (split like a shell would, no shell run).
    #[arg(
        hide_short_help = true,
        long = "command",
        env = "ASSESSOR_COMMAND",
        value_name = "COMMAND"
    )]
    pub(crate) command: Option<String>,

    /// Time limit of the command backend's program.
    #[arg(hide_short_help = true, long = "command-timeout", env = "COMMAND_TIMEOUT", value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub(crate) command_timeout: Duration,

    /// Pass the judge's API key to the command backend's program as LLM_API_KEY; off, the
    /// program's environment holds none of the assessor's keys.
    #[arg(hide_short_help = true, long = "command-pass-api-key", env = "COMMAND_PASS_API_KEY", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = parse_bool, action = ArgAction::Set, default_value = "false", value_name = "BOOL")]
    pub(crate) pass_api_key: bool,

    /// The fixed backend's verdict.
    #[arg(
        hide_short_help = true,
        long = "fixed-verdict",
        env = "FIXED_VERDICT",
        value_enum,
        default_value = "accept"
    )]
    pub(crate) fixed_verdict: FixedVerdict,
}

/// The captions stage: photos described by a vision model before judging.
#[derive(Debug, Args)]
#[command(next_help_heading = "Captions")]
pub(crate) struct CaptionArgs {
    /// Describe the photos with a vision model first.
    #[arg(
        value_name = "KIND",
        long = "caption-backend",
        env = "CAPTION_BACKEND",
        value_enum,
        default_value = "none"
    )]
    pub(crate) caption_backend: CaptionKind,

    /// The vision server's base URL; default: LLM_BASE_URL.
    #[arg(
        hide_short_help = true,
        long = "caption-base-url",
        env = "CAPTION_BASE_URL",
        value_name = "URL"
    )]
    pub(crate) caption_base_url: Option<String>,

    /// The vision model; default: LLM_MODEL when LLM_BACKEND=openai.
    #[arg(
        hide_short_help = true,
        long = "caption-model",
        env = "CAPTION_MODEL",
        value_name = "NAME"
    )]
    pub(crate) caption_model: Option<String>,

    /// API key for the vision server; default: the judge's key, only when the server is the judge's.
    #[arg(
        hide_short_help = true,
        long = "caption-api-key",
        env = "CAPTION_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) caption_api_key: Option<String>,

    /// A file holding the vision server's API key.
    #[arg(
        hide_short_help = true,
        long = "caption-api-key-file",
        env = "CAPTION_API_KEY_FILE",
        value_name = "PATH"
    )]
    pub(crate) caption_api_key_file: Option<PathBuf>,

    /// The instruction sent with each image; the default asks what a buyer cares about.
    #[arg(
        hide_short_help = true,
        long = "caption-prompt",
        env = "CAPTION_PROMPT",
        value_name = "TEXT"
    )]
    pub(crate) caption_prompt: Option<String>,

    /// Most tokens per caption.
    #[arg(hide_short_help = true, long = "caption-max-tokens", env = "CAPTION_MAX_TOKENS", default_value = "200", value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub(crate) caption_max_tokens: u32,

    /// Time limit of one vision request (retries follow LLM_MAX_ATTEMPTS).
    #[arg(hide_short_help = true, long = "caption-timeout", env = "CAPTION_TIMEOUT", value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub(crate) caption_timeout: Duration,

    /// Images captioned at once.
    #[arg(hide_short_help = true, long = "caption-concurrency", env = "CAPTION_CONCURRENCY", default_value = "8", value_parser = clap::value_parser!(u32).range(1..=64), value_name = "N")]
    pub(crate) caption_concurrency: u32,

    /// Images captioned per profile; the rest are recorded as too_many_images.
    #[arg(hide_short_help = true, long = "caption-max-images", env = "CAPTION_MAX_IMAGES", default_value = "8", value_parser = clap::value_parser!(u32).range(0..=256), value_name = "N")]
    pub(crate) caption_max_images: u32,

    /// Largest image accepted (10MiB, 512KiB, or bytes).
    #[arg(hide_short_help = true, long = "caption-max-image-bytes", env = "CAPTION_MAX_IMAGE_BYTES", default_value = "10MiB", value_parser = shortlist_shared::size::parse_size, value_name = "SIZE")]
    pub(crate) caption_max_image_bytes: u64,

    /// Time limit of one image fetch, redirects and body included.
    #[arg(hide_short_help = true, long = "caption-fetch-timeout", env = "CAPTION_FETCH_TIMEOUT", value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub(crate) caption_fetch_timeout: Duration,

    /// Redirects followed per image fetch; each hop is checked again.
    #[arg(hide_short_help = true, long = "caption-max-redirects", env = "CAPTION_MAX_REDIRECTS", default_value = "3", value_parser = clap::value_parser!(u32).range(0..=20), value_name = "N")]
    pub(crate) caption_max_redirects: u32,

    /// Also fetch plain http:// image URLs.
    #[arg(hide_short_help = true, long = "caption-allow-http", env = "CAPTION_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = parse_bool, action = ArgAction::Set, default_value = "false", value_name = "BOOL")]
    pub(crate) caption_allow_http: bool,

    /// Fetch images from any address, the pod's own network included (turns the SSRF guard off).
    #[arg(hide_short_help = true, long = "caption-allow-private", env = "CAPTION_ALLOW_PRIVATE", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = parse_bool, action = ArgAction::Set, default_value = "false", value_name = "BOOL")]
    pub(crate) caption_allow_private: bool,

    /// Exceptions to the SSRF guard: host names, *.suffixes, IPs or CIDRs, comma-separated.
    #[arg(
        hide_short_help = true,
        long = "caption-allow-hosts",
        env = "CAPTION_ALLOW_HOSTS",
        value_name = "LIST"
    )]
    pub(crate) caption_allow_hosts: Option<String>,

    /// Fail the assessment (exit 4) when any image cannot be captioned.
    #[arg(hide_short_help = true, long = "caption-required", env = "CAPTION_REQUIRED", num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = parse_bool, action = ArgAction::Set, default_value = "false", value_name = "BOOL")]
    pub(crate) caption_required: bool,
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

fn parse_floor(value: &str) -> Result<Floor, String> {
    value.parse()
}

fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    value.parse()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every exit code of [`Exit`] is in `--help`'s table, and the README's
    /// "Exit codes" table has the same codes.
    #[test]
    fn help_lists_every_exit_code() {
        use crate::exit::Exit;
        use crate::shutdown::Signal;
        let all = [
            Exit::Assessed,
            Exit::Usage,
            Exit::BackendRefused,
            Exit::InvalidProfile,
            Exit::BackendFailed,
            Exit::ResultUnwritable,
            Exit::DeliveryUnconfirmed,
            Exit::BelowFloor,
            Exit::Interrupted(Signal::Interrupt),
            Exit::Interrupted(Signal::Terminate),
        ];
        for exit in all {
            // A new variant fails to compile here until it is listed above.
            match exit {
                Exit::Assessed
                | Exit::Usage
                | Exit::BackendRefused
                | Exit::InvalidProfile
                | Exit::BackendFailed
                | Exit::ResultUnwritable
                | Exit::DeliveryUnconfirmed
                | Exit::BelowFloor
                | Exit::Interrupted(_) => {}
            }
        }
        let codes_in = |text: &str, prefix: &str| -> Vec<u8> {
            let mut codes: Vec<u8> = text
                .lines()
                .filter_map(|line| line.strip_prefix(prefix))
                .flat_map(|rest| {
                    let head = rest.split([' ', '|']).next().unwrap_or_default();
                    head.split('/')
                        .filter_map(|c| c.trim().parse::<u8>().ok())
                        .collect::<Vec<_>>()
                })
                .collect();
            codes.sort();
            codes.dedup();
            codes
        };
        let mut expected: Vec<u8> = all.iter().map(|e| e.code()).collect();
        expected.sort();
        expected.dedup();
        let help = Cli::command().render_long_help().to_string();
        let table = help
            .split("Exit codes:")
            .nth(1)
            .expect("an exit code table");
        assert_eq!(codes_in(table, "  "), expected, "{table}");
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### Exit codes")
            .nth(1)
            .and_then(|s| s.split("\n#").next())
            .expect("the README's exit codes");
        let section = section.replace(" / ", "/");
        assert_eq!(codes_in(&section, "| "), expected, "README: {section}");
        assert!(help.contains("Examples:"), "{help}");
    }

    #[test]
    fn booleans_take_an_optional_value_after_equals() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("assessor").chain(args.iter().copied()))
        };
        assert!(parse(&["--force"]).unwrap().batch.force);
        assert!(!parse(&["--force=false"]).unwrap().batch.force);
        assert!(
            !parse(&["--response-cache=no"])
                .unwrap()
                .judge
                .response_cache
        );
        assert!(parse(&[]).unwrap().judge.response_cache);
        assert!(
            parse(&["--caption-required=1"])
                .unwrap()
                .captions
                .caption_required
        );
        assert!(parse(&["--caption-allow-http=maybe"]).is_err());
        // Without `=`, the value is a separate word (the profile), not the flag's.
        let cli = parse(&["--caption-allow-private", "false"]).unwrap();
        assert!(cli.captions.caption_allow_private);
        assert_eq!(
            cli.first_word.as_deref(),
            Some(std::ffi::OsStr::new("false"))
        );
    }

    #[test]
    fn every_flag_has_an_env_var() {
        let command = Cli::command();
        let missing = shortlist_shared::cli::flags_without_env(&command);
        assert!(missing.is_empty(), "flags without an env var: {missing:?}");
        command.debug_assert();
    }
}
