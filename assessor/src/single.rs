//! One profile, one result: read PROFILE_PATH (or stdin), assess it, write
//! RESULT_PATH (or stdout).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use shortlist_contract::atomic::WriteError;
use shortlist_contract::profile::{MAX_PROFILE_BYTES, source_name};
use shortlist_contract::{Profile, ProfileError, Status, Verdict};

use crate::assess::Assessor;
use crate::await_delivery::{NotConfirmed, await_receipt, forget_old_receipt};
use crate::exit::Exit;
use crate::output::{print_stdout, render, write_result};
use crate::termination;

/// Where the profile comes from and where its result goes.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// A profile file, or `-` for stdin.
    pub(crate) profile_path: PathBuf,
    /// PROFILE_TEXT: the profile is a plain-text listing whatever its name
    /// (stdin included); `.txt` and `.md` files are read as one anyway.
    pub(crate) text: bool,
    /// `None` means stdout.
    pub(crate) result_path: Option<PathBuf>,
    /// ASSESSOR_AWAIT_DELIVERY: wait this long for the relay's receipt of an
    /// accepted result (only with a result path).
    pub(crate) await_delivery: Option<Duration>,
    /// ASSESSOR_TERMINATION_MESSAGE: where the result's summary goes too.
    pub(crate) termination_message: Option<PathBuf>,
}

/// Why one assessment ended without its normal exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The result could not be written; it was printed on stdout (exit 5).
    #[error(transparent)]
    ResultUnwritable(#[from] WriteError),
    /// Written and accepted, but not confirmed delivered in time (exit 6).
    #[error(transparent)]
    DeliveryUnconfirmed(#[from] NotConfirmed),
}

/// Assesses the profile and writes its result. A result that cannot be
/// written is printed on stdout anyway (it then survives in the pod's log)
/// and is the error: exit 5 wins over every other outcome, since a result
/// nobody can read is the worst one. With ASSESSOR_AWAIT_DELIVERY, an
/// accepted result then waits for the relay's receipt (exit 6 without one);
/// rejections and errors do not wait, nobody delivers them.
pub(crate) async fn run(assessor: &Assessor, settings: &Settings) -> Result<Exit, Error> {
    let read = read_profile(&settings.profile_path, settings.text);
    let (result, exit) = assessor
        .assess(read, &profile_dir(&settings.profile_path))
        .await;
    let awaited = match (settings.await_delivery, &settings.result_path) {
        (Some(wait), Some(path)) => Some((wait, path)),
        _ => None,
    };
    if let Some((_, path)) = awaited {
        // Before the result lands, so the relay's receipt for it is the
        // only one the wait can find.
        forget_old_receipt(path);
    }
    if let Some(path) = &settings.termination_message {
        // Before the result: a pod killed during a receipt wait still
        // reports its verdict.
        termination::write(path, &result);
    }
    if let Err(error) = write_result(settings.result_path.as_deref(), &result) {
        // Best effort: stdout may be what failed.
        let _ = print_stdout(&render(&result));
        return Err(error.into());
    }
    let accepted =
        result.effective_status() == Status::Ok && result.verdict == Some(Verdict::Accept);
    if let (Some((wait, path)), true) = (awaited, accepted) {
        await_receipt(path, result.id.as_deref(), wait).await?;
    }
    Ok(exit)
}

/// The directory local image paths are relative to: the profile file's, or
/// the working directory for a profile read from stdin.
fn profile_dir(profile_path: &Path) -> PathBuf {
    match profile_path.parent() {
        Some(dir) if profile_path.as_os_str() != "-" && !dir.as_os_str().is_empty() => {
            dir.to_path_buf()
        }
        _ => PathBuf::from("."),
    }
}

/// Reads the profile from a file or, for `-`, from stdin: JSON, or plain
/// text when `text` is set or the file is named `*.txt` / `*.md`.
fn read_profile(path: &Path, text: bool) -> Result<(Profile, Value), ProfileError> {
    if path.as_os_str() != "-" {
        return if text {
            Profile::read_text_file(path)
        } else {
            Profile::read_listing(path)
        };
    }
    let name = source_name(path);
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| ProfileError::Unreadable {
            source_name: name.clone(),
            error,
        })?;
    if text {
        Profile::from_text(&bytes, &name)
    } else {
        Profile::from_slice(&bytes, &name)
    }
}
