//! Reading a directory of result files, as `eval` and `shortlist` both do:
//! every `*.json` (hidden temp files of an atomic write left out), each
//! capped at [`MAX_RESULT_BYTES`] and read only when it is a regular file,
//! so a FIFO or `/dev/zero` named `*.json` among the results cannot hang or
//! exhaust the reader. A file that cannot be read or is not a result is
//! skipped with one warning naming it: one bad file must not hide the rest.

use std::path::{Path, PathBuf};

use shortlist_contract::AssessmentResult;
use shortlist_contract::result::MAX_RESULT_BYTES;

/// One result and the file it was read from.
#[derive(Debug, Clone)]
pub(crate) struct ResultFile {
    pub(crate) path: PathBuf,
    pub(crate) result: AssessmentResult,
}

impl ResultFile {
    /// The file name without `.json`: the key a label may use instead of
    /// the id.
    pub(crate) fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The result's id, or the file stem for a result without one (a
    /// custom assessor's minimal `{"verdict": ...}`).
    pub(crate) fn id(&self) -> String {
        self.result.id.clone().unwrap_or_else(|| self.stem())
    }
}

/// The results of `dir`, in file name order. Only listing the directory can
/// fail; files that cannot be used are logged and skipped.
pub(crate) fn read_dir(dir: &Path) -> std::io::Result<impl Iterator<Item = ResultFile>> {
    let files = crate::batch::input::json_files(dir)?;
    Ok(files.into_iter().filter_map(read_file))
}

fn read_file(path: PathBuf) -> Option<ResultFile> {
    let bytes = match shortlist_contract::regular_file::read(&path, MAX_RESULT_BYTES) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "cannot read; ignored");
            return None;
        }
    };
    match serde_json::from_slice::<AssessmentResult>(&bytes) {
        Ok(result) => Some(ResultFile { path, result }),
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "not a result; ignored");
            None
        }
    }
}
