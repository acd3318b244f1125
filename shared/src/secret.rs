//! Secrets (API keys, webhook secrets, tokens): a string that must never be
//! logged or written, and the one way both binaries read one from a value
//! or a file.
//!
//! Precedence, the same for every `X` / `X_FILE` pair of both binaries:
//! **the file wins** when both are set. The file is what a mounted
//! Kubernetes Secret provides, and a plain value is more often an inherited
//! leftover (an `OPENAI_API_KEY` in a developer's shell) than a deliberate
//! override. Either is trimmed; a blank value counts as unset.

use std::fmt;
use std::path::Path;

/// The most a secret file may hold; secrets are short, and a file that is
/// not (or a `/dev/zero` given by mistake) must not be read to the end.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A secret given as a value or as a file (see the module documentation for
/// which wins). The error is the file's; callers add the variable's name.
pub fn read_secret(value: Option<&str>, file: Option<&Path>) -> std::io::Result<Option<Secret>> {
    if let Some(path) = file {
        let text = read_secret_file(path)?;
        let text = text.trim();
        return Ok((!text.is_empty()).then(|| Secret::new(text)));
    }
    Ok(value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(Secret::new))
}

/// Reads a secret file: a regular file (after following links, as a
/// mounted Secret's `..data` links are), at most [`MAX_SECRET_FILE_BYTES`],
/// UTF-8. A FIFO or a device would block or never end; the one capped
/// reader ([`shortlist_contract::regular_file`]) refuses both unread.
pub fn read_secret_file(path: &Path) -> std::io::Result<String> {
    use shortlist_contract::regular_file::{self, ReadError};
    use std::io::{Error, ErrorKind};
    let bytes = regular_file::read(path, MAX_SECRET_FILE_BYTES).map_err(|error| match error {
        ReadError::Missing => Error::new(ErrorKind::NotFound, "no such file"),
        ReadError::NotRegular { found } => Error::new(
            ErrorKind::InvalidInput,
            format!(
                "is {found}, not a regular file (a secret file must be a plain file, e.g. a mounted Secret's key)"
            ),
        ),
        ReadError::TooLarge { .. } => Error::new(
            ErrorKind::InvalidData,
            format!("larger than {MAX_SECRET_FILE_BYTES} bytes; is this really a secret?"),
        ),
        ReadError::Io(error) => error,
    })?;
    String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("sk-live-123");
        assert!(!format!("{s:?} {s}").contains("sk-live"));
        assert_eq!(s.expose(), "sk-live-123");
    }

    #[test]
    fn the_file_wins_and_blanks_are_unset() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, " from-file\n").unwrap();
        let read = |v: Option<&str>, f: Option<&Path>| {
            read_secret(v, f).unwrap().map(|s| s.expose().to_string())
        };
        assert_eq!(
            read(Some("value"), Some(&file)).as_deref(),
            Some("from-file")
        );
        assert_eq!(read(Some(" value "), None).as_deref(), Some("value"));
        assert_eq!(read(Some("  "), None), None);
        assert_eq!(read(None, None), None);
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(read(Some("value"), Some(&file)), None);
    }

    #[test]
    fn refuses_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_secret_file(dir.path()).is_err(), "a directory");
        assert!(
            read_secret_file(Path::new("/dev/zero")).is_err(),
            "a device"
        );
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        let error = read_secret_file(&big).unwrap_err();
        assert!(error.to_string().contains("larger than"), "{error}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read_secret_file(&fifo).is_err(), "a FIFO must not block");
    }
}
