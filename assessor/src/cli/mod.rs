//! From the command line, the environment and `CONFIG_PATH` to validated
//! settings, once, at start-up: a bad value fails the pod at once with a
//! message that names the variable and the value, not minutes later inside a
//! request. This layer only parses ([`args`], [`config_file`]) and maps into
//! each component's own settings ([`judge`], [`caption`], [`batch`]); the
//! components never see the command line or each other's settings.
//!
//! Precedence, highest first: command-line flag, environment variable,
//! `CONFIG_PATH` file, built-in default.

mod args;
mod batch;
mod caption;
mod config_file;
mod judge;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, ValueEnum};
use regex::Regex;
use shortlist_shared::logging::LogFormat;
use shortlist_shared::secret::Secret;

use self::args::{CaptionKind, Cli, RunMode};
use crate::assess;
use crate::mode::Mode;
use crate::prompt::{PromptBuilder, ReplyStyle};
use crate::rules::{Rules, RulesError};
use crate::setting::SettingError;
use crate::single;

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// `--help` or `--version`: print this on stdout and exit 0.
    Display(String),
    /// Run with these settings.
    Run(Box<Settings>),
}

/// Everything the process needs, validated.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) log_format: Option<LogFormat>,
    pub(crate) mode: Mode,
}

/// A start-up error: exit code 2, no result written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// clap's own message (unknown flag, a value its parser refused).
    #[error("{0}")]
    Cli(String),
    #[error(transparent)]
    ConfigFile(#[from] config_file::Error),
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error("{0}")]
    Rules(#[from] RulesError),
    /// The first word is no mode, and no file of that name exists either:
    /// most likely a mistyped mode (or a boolean's value without `=`).
    #[error(
        "{word:?} is neither a mode (assess, batch, eval, shortlist) nor a profile file (no such file){hint}"
    )]
    NotModeOrProfile { word: String, hint: String },
    /// `assessor a.json b.json`: one profile per run (a batch reads a
    /// directory or a .jsonl).
    #[error(
        "two profiles given, {first:?} and {second:?}: give one (a directory or a .jsonl file runs a batch); {first:?} is no mode (assess, batch, eval, shortlist)"
    )]
    TwoProfiles { first: String, second: String },
    /// `--profile a.json b.json`.
    #[error("the profile is given twice, --profile {flag:?} and {word:?}: give one")]
    ProfileTwice { flag: String, word: String },
}

/// Parses and validates settings from `args` (the first is the program
/// name) and the process environment.
pub(crate) fn parse<I, T>(args: I) -> Result<Parsed, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
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
        for (id, value) in config_file::read(path, &command)? {
            command = command.mut_arg(id, |arg| arg.default_value(value));
        }
    }
    let matches: ArgMatches = match command.clone().try_get_matches_from(&args) {
        Ok(matches) => matches,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    Ok(Parsed::Display(e.render().to_string()))
                }
                _ => Err(Error::Cli(shortlist_shared::cli::explain_clap_error_in(
                    &e, &command, &args,
                ))),
            };
        }
    };
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| Error::Cli(e.to_string()))?;
    resolve_words(&mut cli, &matches, &args)?;
    validate(cli).map(|settings| Parsed::Run(Box::new(settings)))
}

/// The words after the flags, `assessor [MODE] [PROFILE]`, as `llm` or
/// `rg` read theirs: a first word that is a mode (`assess`, `batch`,
/// `eval`, `shortlist`) is the mode, and any other is the profile
/// (`assessor listing.json`; `./batch` for a file named like a mode). A
/// mode word beats ASSESSOR_MODE and a profile word beats PROFILE_PATH, as
/// flags do; a profile given both as a word and as `--profile` is refused.
fn resolve_words(cli: &mut Cli, matches: &ArgMatches, args: &[OsString]) -> Result<(), Error> {
    let first = cli.first_word.take();
    let second = cli.second_word.take();
    let profile = match first {
        None => None,
        Some(word) => match word.to_str().and_then(|w| RunMode::from_str(w, false).ok()) {
            Some(mode) => {
                cli.mode = Some(mode);
                second
            }
            None => {
                let path = PathBuf::from(&word);
                if let Some(second) = second {
                    return Err(Error::TwoProfiles {
                        first: path.display().to_string(),
                        second: second.display().to_string(),
                    });
                }
                Some(path)
            }
        },
    };
    let Some(path) = profile else {
        return Ok(());
    };
    if matches.value_source("profile_path") == Some(ValueSource::CommandLine) {
        if let Some(flag) = cli
            .input
            .profile_path
            .as_ref()
            .filter(|flag| **flag != path)
        {
            return Err(Error::ProfileTwice {
                flag: flag.display().to_string(),
                word: path.display().to_string(),
            });
        }
    }
    let text = path.to_string_lossy();
    let looks_like_a_word = !text.contains(['/', '.']) && text != "-";
    if looks_like_a_word && std::fs::symlink_metadata(&path).is_err() {
        return Err(Error::NotModeOrProfile {
            word: text.to_string(),
            hint: bool_hint(&text, args),
        });
    }
    cli.input.profile_path = Some(path);
    Ok(())
}

/// `--response-cache false`: the value of a boolean flag goes after `=`
/// (without it, `false` would be read as the profile); says so, naming
/// the flag typed just before the word.
fn bool_hint(word: &str, args: &[OsString]) -> String {
    if shortlist_shared::cli::parse_bool(word).is_err() {
        return String::new();
    }
    let flag = args
        .windows(2)
        .find(|pair| pair[1] == word)
        .map(|pair| pair[0].to_string_lossy().into_owned())
        .filter(|flag| flag.starts_with("--"));
    match flag {
        Some(flag) => format!("; a boolean flag takes its value after `=`: {flag}={word}"),
        None => "; a boolean flag takes its value after `=`: --flag=false".into(),
    }
}

/// Validates every setting, in a fixed order (so the first problem reported
/// is always the same one), and picks the mode.
fn validate(cli: Cli) -> Result<Settings, Error> {
    // A shortlist only reads results: no judge, rules or profile to check.
    if let Some(shortlist) = batch::shortlist_settings(&cli)? {
        return Ok(Settings {
            log_format: cli.input.log_format,
            mode: Mode::Shortlist(shortlist),
        });
    }
    let eval = batch::eval_settings(&cli)?;
    let plan = match (cli.input.profile_path.clone(), eval) {
        (Some(profile_path), eval) => Plan::Assess { profile_path, eval },
        // An eval of existing results needs no input.
        (None, Some(eval)) => Plan::EvalOnly(eval),
        (None, None) => {
            return Err(SettingError::Missing {
                variable: "PROFILE_PATH",
                why: "(the profile file to judge, or - for stdin)",
            }
            .into());
        }
    };
    // An eval of existing results reads results and labels only: like a
    // shortlist, it has no judge, rules or captions to check (a default
    // openai backend would otherwise demand an LLM_MODEL it never uses).
    let plan = match plan {
        Plan::EvalOnly(eval) => {
            return Ok(Settings {
                log_format: cli.input.log_format,
                mode: Mode::Eval(eval),
            });
        }
        assess => assess,
    };
    let result_path = cli
        .input
        .result_path
        .clone()
        .filter(|p| p.as_os_str() != "-");
    // 0 means no wait, so an overlay can switch it off.
    let await_delivery = cli.input.await_delivery.filter(|wait| !wait.is_zero());

    let api_key = judge::api_key(&cli.judge)?;

    let batch = match &plan {
        Plan::Assess { profile_path, .. } => batch::batch_settings(&cli, profile_path)?,
        Plan::EvalOnly(_) => None,
    };

    let captions = match cli.captions.caption_backend {
        CaptionKind::None => None,
        CaptionKind::Openai => Some(caption::settings(&cli, api_key.as_ref())?),
    };

    let criteria = match (cli.prompt.criteria.clone(), &cli.prompt.criteria_file) {
        (Some(c), _) if !c.trim().is_empty() => Some(c),
        (_, Some(path)) => Some(config_file::read_setting_file(
            "ASSESSOR_CRITERIA_FILE",
            path,
        )?),
        _ => None,
    };

    let rules = rules(cli.rules.rules.as_deref())?;

    let positive_regex =
        match &cli.prompt.positive_regex {
            None => None,
            Some(pattern) => Some(Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                SettingError::Invalid {
                    variable: "LLM_POSITIVE_RESPONSE_REGEX",
                    value: pattern.clone(),
                    message: e.to_string(),
                }
            })?),
        };

    let checked = judge::check(&cli)?;

    if let Some(dir) = &cli.input.cache_dir {
        if dir.exists() && !dir.is_dir() {
            return Err(SettingError::Invalid {
                variable: "CACHE_DIR",
                value: dir.display().to_string(),
                message: "exists and is not a directory".into(),
            }
            .into());
        }
    }

    if cli.judge.deadline.is_zero() {
        return Err(SettingError::Invalid {
            variable: "LLM_DEADLINE",
            value: shortlist_shared::duration::format_duration(cli.judge.deadline),
            message: "must be longer than zero".into(),
        }
        .into());
    }
    for (variable, value) in [
        ("LLM_TIMEOUT", cli.judge.timeout),
        ("LLM_CONNECT_TIMEOUT", cli.judge.connect_timeout),
        ("COMMAND_TIMEOUT", cli.command.command_timeout),
        ("CAPTION_TIMEOUT", cli.captions.caption_timeout),
        ("CAPTION_FETCH_TIMEOUT", cli.captions.caption_fetch_timeout),
    ] {
        if value.is_zero() {
            return Err(SettingError::Invalid {
                variable,
                value: "0s".into(),
                message: "must be longer than zero".into(),
            }
            .into());
        }
    }

    let log_format = cli.input.log_format;
    let mode = match plan {
        Plan::EvalOnly(eval) => Mode::Eval(eval),
        Plan::Assess { profile_path, eval } => {
            // Only now, with every setting valid and an assessment to make,
            // is the model file looked for (an eval never needs it).
            #[allow(unused_mut)]
            let mut judge = judge::settings(&cli, checked, api_key, positive_regex.clone())?;
            #[cfg(feature = "llama")]
            if let (crate::judge::JudgeSettings::Llama(llama), Some(batch)) =
                (&mut judge.judge, &batch)
            {
                // A batch's ASSESSOR_JOBS replies are decoded together.
                llama.parallel = Some(batch.jobs);
            }
            let prompt = PromptBuilder {
                criteria,
                instructions: cli.prompt.system_prompt.filter(|s| !s.trim().is_empty()),
                style: if positive_regex.is_some() {
                    ReplyStyle::PlainText
                } else {
                    ReplyStyle::Json
                },
                max_text_chars: cli.prompt.max_text_chars as usize,
                nonce_seed: cli.judge.seed,
                run_nonce: crate::prompt::run_nonce(cli.judge.seed),
            };
            let fingerprint =
                judge::result_fingerprint(&judge.fingerprint, &prompt, &rules, captions.as_ref());
            let assess = assess::Settings {
                rules,
                captions,
                prompt,
                judge: judge.judge,
                response_cache: judge.response_cache,
                fingerprint: Some(fingerprint),
            };
            match (batch, eval) {
                (None, _) if await_delivery.is_some() && result_path.is_none() => {
                    return Err(SettingError::Missing {
                        variable: "RESULT_PATH",
                        why: "with ASSESSOR_AWAIT_DELIVERY (the receipt is looked for next to the result file)",
                    }
                    .into());
                }
                (None, _) => Mode::Assess {
                    assess,
                    io: single::Settings {
                        profile_path,
                        text: cli.input.text,
                        result_path,
                        await_delivery,
                        termination_message: cli.input.termination_message.clone(),
                    },
                },
                (Some(batch), None) => Mode::Batch { assess, batch },
                (Some(batch), Some(eval)) => Mode::BatchThenEval {
                    assess,
                    batch,
                    eval,
                },
            }
        }
    };
    Ok(Settings { log_format, mode })
}

/// What PROFILE_PATH and the mode ask for, before the settings for it are built.
enum Plan {
    /// Score existing results only.
    EvalOnly(crate::eval::Settings),
    /// Assess PROFILE_PATH (one profile or a batch), then maybe score.
    Assess {
        profile_path: PathBuf,
        eval: Option<crate::eval::Settings>,
    },
}

/// `ASSESSOR_RULES`: inline JSON, or `@PATH` of a JSON file.
fn rules(spec: Option<&str>) -> Result<Rules, Error> {
    Ok(match spec.map(str::trim) {
        None | Some("") => Rules::default(),
        Some(spec) => match spec.strip_prefix('@') {
            Some(path) => {
                let text = config_file::read_setting_file("ASSESSOR_RULES", Path::new(path))?;
                Rules::parse(&text, &format!("ASSESSOR_RULES ({path})"))?
            }
            None => Rules::parse(spec, "ASSESSOR_RULES")?,
        },
    })
}

/// A key given as a value (`*_API_KEY`) or as a file (`*_API_KEY_FILE`, a
/// mounted Secret), by the one rule both binaries follow
/// (`shortlist_shared::secret`: the file wins; blank is unset); the error
/// names the `*_FILE` variable.
fn read_key(
    value: Option<&str>,
    file: Option<&PathBuf>,
    file_variable: &'static str,
) -> Result<Option<Secret>, SettingError> {
    shortlist_shared::secret::read_secret(value, file.map(PathBuf::as_path)).map_err(|source| {
        SettingError::FileUnreadable {
            variable: file_variable,
            path: file.cloned().unwrap_or_default(),
            source,
        }
    })
}

fn non_empty_key(value: Option<&str>) -> Option<Secret> {
    value
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(Secret::new)
}

/// An http(s) base URL without its trailing slash.
/// The value is shown redacted in errors (a key may be in its query).
fn parse_base_url(variable: &'static str, value: &str) -> Result<String, SettingError> {
    let parsed = reqwest::Url::parse(value).map_err(|e| SettingError::Invalid {
        variable,
        value: crate::chat_http::redact_url(value),
        message: format!("expected an http(s) URL such as http://localhost:11434/v1 ({e})"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SettingError::Invalid {
            variable,
            value: crate::chat_http::redact_url(value),
            message: "expected an http or https URL".into(),
        });
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}
