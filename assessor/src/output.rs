//! Writing the result: atomically to `RESULT_PATH`, or to stdout when it is
//! unset or `-`. When the file cannot be written the result is printed on
//! stdout anyway, so it survives in the pod's log even when the volume
//! does not.

use std::io::Write;
use std::path::Path;

use shortlist_contract::AssessmentResult;
use shortlist_contract::atomic::{WriteError, write_atomic};

/// The result as written: pretty JSON with a trailing newline.
pub(crate) fn render(result: &AssessmentResult) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(result).expect("a result always serialises");
    bytes.push(b'\n');
    bytes
}

/// Writes `result` to `path`, or stdout when `path` is `None`.
pub(crate) fn write_result(
    path: Option<&Path>,
    result: &AssessmentResult,
) -> Result<(), WriteError> {
    let bytes = render(result);
    match path {
        Some(path) => write_atomic(path, &bytes),
        None => print_stdout(&bytes).map_err(|source| WriteError::Write {
            path: "<stdout>".into(),
            source,
        }),
    }
}

/// Prints bytes on stdout and flushes.
pub(crate) fn print_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Prints a report for people (a batch's summary table) on stderr, beside
/// the logs, so stdout stays free for results.
pub(crate) fn print_stderr(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stderr().lock();
    out.write_all(bytes)?;
    out.flush()
}
