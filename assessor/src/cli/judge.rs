//! `LLM_*`, `ASSESSOR_COMMAND`, `FIXED_VERDICT` → [`JudgeSettings`], and the
//! response cache in front of the judge.

use regex::Regex;
use sha2::{Digest, Sha256};
use shortlist_shared::secret::Secret;

use super::args::{Cli, JudgeArgs, JudgeKind};
use super::{Error, non_empty_key, parse_base_url, read_key};
use crate::caption;
use crate::judge::{JudgeSettings, cache, command, openai};
use crate::prompt::PromptBuilder;
use crate::rules::Rules;
use crate::setting::SettingError;

/// The judge's API key: `LLM_API_KEY`, else `LLM_API_KEY_FILE`, else
/// `OPENAI_API_KEY`.
pub(super) fn api_key(args: &JudgeArgs) -> Result<Option<Secret>, SettingError> {
    Ok(read_key(
        args.api_key.as_deref(),
        args.api_key_file.as_ref(),
        "LLM_API_KEY_FILE",
    )?
    .or_else(|| non_empty_key(args.openai_api_key.as_deref())))
}

/// The judge settings checked with the others, before the model file is
/// looked for.
pub(super) struct Checked {
    /// `LLM_MODEL`, when not blank.
    model: Option<String>,
    /// `LLM_BASE_URL` without its trailing slash (validated for openai).
    base_url: String,
    /// `ASSESSOR_COMMAND` split into program and arguments.
    command: Option<Vec<String>>,
}

/// Checks the server, model and command settings.
pub(super) fn check(cli: &Cli) -> Result<Checked, SettingError> {
    let args = &cli.judge;
    let model = args.model.clone().filter(|m| !m.trim().is_empty());
    let mut base_url = args.base_url.trim().trim_end_matches('/').to_string();
    if args.backend == JudgeKind::Openai {
        if model.is_none() {
            return Err(SettingError::Missing {
                variable: "LLM_MODEL",
                why: "for LLM_BACKEND=openai (the model name the server knows, e.g. gpt-4o-mini or llama3.2)",
            });
        }
        base_url = parse_base_url("LLM_BASE_URL", &base_url)?;
    }

    let command = match (args.backend, cli.command.command.as_deref()) {
        (JudgeKind::Command, None) | (JudgeKind::Command, Some("")) => {
            return Err(SettingError::Missing {
                variable: "ASSESSOR_COMMAND",
                why: "for LLM_BACKEND=command (the program to run, with its arguments)",
            });
        }
        (_, None) => None,
        (_, Some(line)) => {
            let words = shell_words::split(line).map_err(|e| SettingError::Invalid {
                variable: "ASSESSOR_COMMAND",
                value: line.to_string(),
                message: format!("cannot split into program and arguments: {e}"),
            })?;
            if words.is_empty() {
                return Err(SettingError::Invalid {
                    variable: "ASSESSOR_COMMAND",
                    value: line.to_string(),
                    message: "no program given".into(),
                });
            }
            Some(words)
        }
    };
    Ok(Checked {
        model,
        base_url,
        command,
    })
}

/// The judge and its response cache.
pub(super) struct Judge {
    pub(super) judge: JudgeSettings,
    pub(super) response_cache: Option<cache::Settings>,
    /// Every judge setting that changes a reply (see [`fingerprint`]).
    pub(super) fingerprint: String,
}

/// Builds the judge's settings; for llama this finds and checks the model
/// file.
pub(super) fn settings(
    cli: &Cli,
    checked: Checked,
    api_key: Option<Secret>,
    positive_regex: Option<Regex>,
) -> Result<Judge, Error> {
    let args = &cli.judge;
    let fingerprint = fingerprint(cli, &checked, positive_regex.as_ref());
    let response_cache = response_cache(cli, &fingerprint);
    let judge = match args.backend {
        JudgeKind::Fixed => JudgeSettings::Fixed(cli.command.fixed_verdict.into()),
        JudgeKind::Command => {
            let mut words = checked.command.unwrap_or_default().into_iter();
            // `check` refused a missing or empty command.
            let Some(program) = words.next() else {
                return Err(SettingError::Missing {
                    variable: "ASSESSOR_COMMAND",
                    why: "for LLM_BACKEND=command (the program to run, with its arguments)",
                }
                .into());
            };
            JudgeSettings::Command(command::Settings {
                program,
                args: words.collect(),
                timeout: cli.command.command_timeout,
                api_key: if cli.command.pass_api_key {
                    api_key.clone()
                } else {
                    None
                },
            })
        }
        JudgeKind::Openai => JudgeSettings::Openai(openai::Settings {
            base_url: checked.base_url,
            api_key,
            model: checked.model.unwrap_or_default(),
            connect_timeout: args.connect_timeout,
            timeout: args.timeout,
            max_attempts: args.max_attempts,
            retry_base_delay: args.retry_base_delay,
            deadline: args.deadline,
            temperature: args.temperature,
            max_tokens: args.max_tokens,
            seed: args.seed,
            structured_output: args.structured_output,
            positive_regex,
        }),
        #[cfg(feature = "llama")]
        JudgeKind::Llama => {
            use crate::judge::llama;
            let model = llama::locate_model(
                cli.llama.model_path.as_deref(),
                checked.model.as_deref(),
                cli.input.cache_dir.as_deref(),
            )?;
            JudgeSettings::Llama(llama::Settings {
                model,
                threads: cli.llama.threads.map(|t| t as usize),
                parallel: None,
                context_size: cli.llama.context_size,
                max_tokens: args.max_tokens,
                temperature: args.temperature,
                seed: args.seed,
                positive_regex,
            })
        }
    };
    Ok(Judge {
        judge,
        response_cache,
        fingerprint,
    })
}

/// The response cache, when `CACHE_DIR` is set and `LLM_RESPONSE_CACHE` is
/// on (the fixed judge is never cached: it costs nothing).
fn response_cache(cli: &Cli, fingerprint: &str) -> Option<cache::Settings> {
    let args = &cli.judge;
    match (&cli.input.cache_dir, args.response_cache, args.backend) {
        (Some(dir), true, kind) if kind != JudgeKind::Fixed => Some(cache::Settings {
            cache_dir: dir.clone(),
            fingerprint: fingerprint.to_string(),
        }),
        _ => None,
    }
}

/// Every setting that changes a reply for the same messages. Made from the
/// settings as given, exactly as earlier versions made it, so entries
/// cached before stay valid.
fn fingerprint(cli: &Cli, checked: &Checked, positive_regex: Option<&Regex>) -> String {
    let args = &cli.judge;
    let model_file = cli
        .llama
        .model_path
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());
    let model = match args.backend {
        JudgeKind::Openai => checked.model.clone(),
        JudgeKind::Fixed => Some(
            shortlist_contract::Verdict::from(cli.command.fixed_verdict)
                .as_str()
                .to_string(),
        ),
        JudgeKind::Command => checked.command.as_ref().and_then(|c| c.first().cloned()),
        #[cfg(feature = "llama")]
        JudgeKind::Llama => cli
            .llama
            .model_path
            .as_ref()
            .map(|p| p.display().to_string())
            .or_else(|| checked.model.clone()),
    };
    serde_json::json!({
        "backend": args.backend.as_str(),
        "model": model,
        "model_file_bytes": model_file,
        "base_url": checked.base_url,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "seed": args.seed,
        "structured_output": format!("{:?}", args.structured_output),
        "positive_regex": positive_regex.map(|r| r.as_str().to_string()),
        "command": checked.command,
        "reply_schema": crate::verdict::reply_schema(),
    })
    .to_string()
}

/// The result's `fingerprint`: what decides a result. The judge's settings
/// (the response cache's key, [`fingerprint`]), the brief and the framing
/// of the prompt, the rules and the captions stage, hashed. The response
/// cache is keyed on the judge's part and the full request, which holds the
/// brief, the framing and the captions: the same inputs.
pub(super) fn result_fingerprint(
    judge: &str,
    prompt: &PromptBuilder,
    rules: &Rules,
    captions: Option<&caption::Settings>,
) -> String {
    let text = serde_json::json!({
        "judge": judge,
        "criteria": prompt.criteria,
        "instructions": prompt.instructions,
        "reply_style": format!("{:?}", prompt.style),
        "max_text_chars": prompt.max_text_chars,
        "prompt_layout": crate::prompt::PROMPT_LAYOUT,
        "facts_method": crate::facts::FACTS_METHOD,
        // Compiled rules, as written (bounds and patterns).
        "rules": format!("{rules:?}"),
        "captions": captions.map(|c| serde_json::json!({
            "model": c.model,
            "prompt": c.prompt,
            "max_tokens": c.max_tokens,
            "max_images": c.max_images,
        })),
    })
    .to_string();
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256-{hex}")
}
