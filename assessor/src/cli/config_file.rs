//! `CONFIG_PATH`: a JSON file beneath the flags and environment variables.
//! Its keys are the environment variable names (`{"LLM_MODEL": "llama3.2",
//! "ASSESSOR_RULES": {...}}`) or the long flag names (`"model"`), so the file
//! reads like the pod's env section; its values become the arguments'
//! defaults, so a flag or a variable still wins.

use std::path::{Path, PathBuf};

use serde_json::Value;
use shortlist_contract::regular_file::{self, ReadError};

use crate::setting::SettingError;

/// The most a config file (or a rules or criteria file) may hold: it is a
/// page of settings; a larger one is a mistake, and `/dev/zero` must not be
/// read to the end.
pub(crate) const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a file a setting names (`ASSESSOR_RULES=@file`,
/// `ASSESSOR_CRITERIA_FILE`): a regular file after following links, UTF-8,
/// at most [`MAX_CONFIG_FILE_BYTES`]. The error names the variable and the
/// file, and says what the file is instead ("is a FIFO (named pipe), not a
/// regular file").
pub(super) fn read_setting_file(
    variable: &'static str,
    path: &Path,
) -> Result<String, SettingError> {
    regular_file::read_to_string(path, MAX_CONFIG_FILE_BYTES).map_err(|error| {
        SettingError::FileUnreadable {
            variable,
            path: path.to_path_buf(),
            source: std::io::Error::other(error),
        }
    })
}

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Missing, not a regular file (a FIFO would block start-up, a device
    /// never end), over [`MAX_CONFIG_FILE_BYTES`], or not UTF-8.
    #[error("{path}: cannot read the config file (CONFIG_PATH): {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: ReadError,
    },
    #[error("{path}: the config file is not a JSON object: {message}")]
    NotObject { path: PathBuf, message: String },
    #[error(
        "{path}: unknown setting {key:?}; keys are the environment variable names listed by --help"
    )]
    UnknownKey { path: PathBuf, key: String },
    #[error("{path}: setting {key:?} must be a string, number or boolean, found {found}")]
    BadValue {
        path: PathBuf,
        key: String,
        found: &'static str,
    },
}

/// Reads `CONFIG_PATH` into `(arg id, value)` pairs. Keys are matched against
/// each argument's environment variable name (case-insensitively) or its long
/// flag name, so the file reads like the pod's env section.
pub(super) fn read(path: &Path, command: &clap::Command) -> Result<Vec<(String, String)>, Error> {
    let text = regular_file::read_to_string(path, MAX_CONFIG_FILE_BYTES).map_err(|source| {
        Error::Unreadable {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::NotObject {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(Error::NotObject {
            path: path.to_path_buf(),
            message: format!(
                "found {}",
                shortlist_contract::profile::json_type_name(&value)
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
            return Err(Error::UnknownKey {
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
                return Err(Error::BadValue {
                    path: path.to_path_buf(),
                    key,
                    found: shortlist_contract::profile::json_type_name(&other),
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
