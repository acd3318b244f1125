//! `CAPTION_*` → [`caption::Settings`]. The judge's server, model and key
//! are the defaults, which is why this mapping reads the judge's arguments
//! (the captions stage itself never sees them).

use shortlist_shared::secret::Secret;

use super::args::{Cli, JudgeKind};
use super::{parse_base_url, read_key};
use crate::caption::{self, fetch::FetchSettings, guard::AddressPolicy};
use crate::setting::SettingError;

/// The captions stage's settings. The judge's server, model and key are the
/// defaults, but the key only goes to the judge's own server: a vision
/// server elsewhere gets `CAPTION_API_KEY` or nothing.
pub(super) fn settings(
    cli: &Cli,
    judge_key: Option<&Secret>,
) -> Result<caption::Settings, SettingError> {
    let args = &cli.captions;
    let judge_url = parse_base_url(
        "LLM_BASE_URL",
        cli.judge.base_url.trim().trim_end_matches('/'),
    )?;
    let judge_model = cli
        .judge
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let base_url = match args.caption_base_url.as_deref().map(str::trim) {
        Some(url) if !url.is_empty() => {
            parse_base_url("CAPTION_BASE_URL", url.trim_end_matches('/'))?
        }
        _ => judge_url.clone(),
    };
    let model = match args.caption_model.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => match (cli.judge.backend, judge_model) {
            (JudgeKind::Openai, Some(m)) => m.to_string(),
            _ => {
                return Err(SettingError::Missing {
                    variable: "CAPTION_MODEL",
                    why: "for CAPTION_BACKEND=openai (a vision model the server knows, e.g. gpt-4o-mini, llava or qwen2.5vl)",
                });
            }
        },
    };
    let api_key = match read_key(
        args.caption_api_key.as_deref(),
        args.caption_api_key_file.as_ref(),
        "CAPTION_API_KEY_FILE",
    )? {
        Some(key) => Some(key),
        None if base_url == judge_url => judge_key.cloned(),
        None => None,
    };
    let policy = AddressPolicy::parse(
        args.caption_allow_hosts.as_deref().unwrap_or(""),
        args.caption_allow_private,
    )
    .map_err(|message| SettingError::Invalid {
        variable: "CAPTION_ALLOW_HOSTS",
        value: args.caption_allow_hosts.clone().unwrap_or_default(),
        message,
    })?;
    if args.caption_max_image_bytes == 0 {
        return Err(SettingError::Invalid {
            variable: "CAPTION_MAX_IMAGE_BYTES",
            value: "0".into(),
            message: "must be more than zero".into(),
        });
    }
    Ok(caption::Settings {
        base_url,
        model,
        api_key,
        prompt: args
            .caption_prompt
            .clone()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| caption::DEFAULT_PROMPT.to_string()),
        max_tokens: args.caption_max_tokens,
        timeout: args.caption_timeout,
        connect_timeout: cli.judge.connect_timeout,
        concurrency: args.caption_concurrency as usize,
        max_images: args.caption_max_images as usize,
        required: args.caption_required,
        fetch: FetchSettings {
            policy,
            allow_http: args.caption_allow_http,
            max_bytes: args.caption_max_image_bytes,
            max_redirects: args.caption_max_redirects,
            timeout: args.caption_fetch_timeout,
        },
        max_attempts: cli.judge.max_attempts,
        retry_base_delay: cli.judge.retry_base_delay,
        deadline: cli.judge.deadline,
        cache_dir: cli.input.cache_dir.clone(),
    })
}
