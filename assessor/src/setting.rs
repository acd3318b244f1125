//! The one start-up error every component uses for a setting that is
//! missing or wrong. Its messages name the environment variable (and the
//! value), because that is what an operator edits: `LLM_MODEL is required
//! for ...`, `LLM_BASE_URL="x" is invalid: ...`.

use std::path::PathBuf;

/// A setting that is missing or wrong: exit 2, no result written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingError {
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
}
