//! Atomic result writes: a reader (the relay, or `cat` in a debugging
//! session) sees either no result or a complete one, never a prefix.
//!
//! The recipe is the classic one: write a hidden temp file in the *same*
//! directory (rename is only atomic within one filesystem), fsync it, rename it
//! over the target, then fsync the directory so the rename itself survives a
//! node crash. Temp names start with `.` and end with `.tmp` so that watchers
//! skip them.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a result could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: cannot create a temp file in the result directory: {source}")]
    TempFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot write the result: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot rename the temp file over the result: {source}")]
    Rename {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot sync the result directory: {source}")]
    SyncDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `contents` to `path` atomically and durably.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    write_atomic_with(path, contents, Durability::Sync)
}

/// When a write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and the directory before returning (one result per
    /// process: the pod may be gone a moment later).
    Sync,
    /// Atomic (temp file + rename) but left to the page cache; the caller
    /// syncs the filesystem later ([`sync_filesystem`]). For batches, where
    /// two fsyncs per result cost more than the rest of the work and a crash
    /// only means re-judging the last few seconds (resume re-reads results).
    Deferred,
}

/// Flushes the filesystem holding `dir` (`syncfs(2)`): every deferred write
/// in it reaches the disk.
pub fn sync_filesystem(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let handle = File::open(dir)?;
    // SAFETY: syncfs only reads the descriptor, which `handle` keeps open.
    let rc = unsafe { libc::syncfs(handle.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Writes `contents` to `path` atomically, as durably as asked.
pub fn write_atomic_with(
    path: &Path,
    contents: &[u8],
    durability: Durability,
) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "result".into());
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(temp_stem_os(&file_name));
    prefix.push(".");
    // 0644, not tempfile's 0600: in a pod the reader (the relay) may run as
    // another user than the writer.
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(TEMP_RANDOM_CHARS)
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(&dir)
        .map_err(|source| WriteError::TempFile {
            path: path.to_path_buf(),
            source,
        })?;
    let write_err = |source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    };
    temp.write_all(contents).map_err(write_err)?;
    if durability == Durability::Sync {
        temp.as_file().sync_all().map_err(write_err)?;
    }
    temp.persist(path).map_err(|e| WriteError::Rename {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    if durability == Durability::Deferred {
        return Ok(());
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| WriteError::SyncDir {
            path: dir.clone(),
            source,
        })?;
    Ok(())
}

/// The longest file name most filesystems take (ext4, xfs, btrfs, tmpfs:
/// `NAME_MAX`, in bytes).
const NAME_MAX: usize = 255;

/// The random part of a temp name (tempfile's default).
const TEMP_RANDOM_CHARS: usize = 6;

/// What a temp name adds around its stem: `.`, `.`, the random part, `.tmp`.
const TEMP_OVERHEAD: usize = 1 + 1 + TEMP_RANDOM_CHARS + ".tmp".len();

/// How much of a long name its shortened stem keeps (the rest is a hash).
const LONG_NAME_KEPT: usize = 200;

/// The stem of the temp names for a target named `name`: the name itself
/// when `.{name}.XXXXXX.tmp` fits in [`NAME_MAX`] bytes, else its first
/// bytes, `~` and 16 hex digits of its SHA-256 (so two long names with the
/// same beginning still get different stems). Any name a filesystem takes
/// can thus be written atomically: a 250-byte `RESULT_PATH` name would
/// otherwise need a 262-byte temp name, which the filesystem refuses.
pub fn temp_stem(name: &str) -> std::borrow::Cow<'_, str> {
    match temp_stem_os(std::ffi::OsStr::new(name)) {
        std::borrow::Cow::Borrowed(_) => std::borrow::Cow::Borrowed(name),
        std::borrow::Cow::Owned(stem) => {
            std::borrow::Cow::Owned(stem.to_string_lossy().into_owned())
        }
    }
}

/// [`temp_stem`] for a name that may not be UTF-8.
fn temp_stem_os(name: &std::ffi::OsStr) -> std::borrow::Cow<'_, std::ffi::OsStr> {
    use sha2::{Digest, Sha256};
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = name.as_bytes();
    if bytes.len() + TEMP_OVERHEAD <= NAME_MAX {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut kept = LONG_NAME_KEPT;
    // Cut a UTF-8 name on a character boundary, so the stem stays readable.
    if let Ok(text) = std::str::from_utf8(bytes) {
        while !text.is_char_boundary(kept) {
            kept -= 1;
        }
    }
    let digest = Sha256::digest(bytes);
    let mut stem = bytes[..kept].to_vec();
    stem.push(b'~');
    stem.extend_from_slice(crate::hex::encode(&digest[..8]).as_bytes());
    std::borrow::Cow::Owned(std::ffi::OsString::from_vec(stem))
}

/// The stem a temp file of [`write_atomic`] was named after:
/// `.result.json.a1B2c3.tmp` → `result.json`; `None` for other names. For
/// every name short enough (see [`temp_stem`]) that is the target's name,
/// which lets a later writer of the same name clean up after one that was
/// killed mid-write.
pub fn temp_target(name: &str) -> Option<&str> {
    name.strip_prefix('.')?
        .strip_suffix(".tmp")?
        .rsplit_once('.')
        .map(|(target, _random)| target)
        .filter(|target| !target.is_empty())
}

/// True for names a writer uses while a file is incomplete: hidden files
/// (our `.name.XXXX.tmp`, kubelet's `..data`) and common temp suffixes.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with('~')
        || name.ends_with(".swp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_lead_back_to_their_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("result.json");
        let temp = tempfile::Builder::new()
            .prefix(".result.json.")
            .suffix(".tmp")
            .tempfile_in(dir.path())
            .unwrap();
        let name = temp.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_target(name), target.file_name().unwrap().to_str());
        assert_eq!(temp_target("result.json"), None);
        assert_eq!(temp_target(".hidden.json"), None);
        assert_eq!(temp_target("..data"), None);
    }

    #[test]
    fn writes_and_replaces_without_leaving_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("result.json");
        write_atomic(&target, b"{\"verdict\":\"reject\"}").unwrap();
        write_atomic(&target, b"{\"verdict\":\"accept\"}").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{\"verdict\":\"accept\"}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["result.json".to_string()]);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&target).unwrap().permissions(),
        );
        assert_eq!(
            mode & 0o777,
            0o644,
            "readable by a relay running as another user"
        );
    }

    #[test]
    fn reports_a_missing_directory_with_its_path() {
        let err = write_atomic(Path::new("/nonexistent-dir-xyz/result.json"), b"{}").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir-xyz/result.json"),
            "{err}"
        );
    }

    #[test]
    fn any_valid_name_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        for len in [6, 200, 243, 244, 250, 255] {
            let name = format!("{}.json", "r".repeat(len - ".json".len()));
            let target = dir.path().join(&name);
            write_atomic(&target, b"{}").unwrap_or_else(|e| panic!("{len} bytes: {e}"));
            assert_eq!(std::fs::read(&target).unwrap(), b"{}");
        }
        // Multi-byte names are cut on a character boundary.
        let name = "é".repeat(127);
        assert_eq!(name.len(), 254);
        write_atomic(&dir.path().join(&name), b"{}").unwrap();
        let stem = temp_stem(&name);
        assert!(stem.len() + TEMP_OVERHEAD <= NAME_MAX, "{stem}");
        assert!(stem.starts_with("éé") && stem.contains('~'), "{stem}");
        assert_ne!(temp_stem(&"a".repeat(250)), temp_stem(&"a".repeat(251)));
        assert_eq!(temp_stem("result.json"), "result.json");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "temp files left: {names:?}");
    }

    #[test]
    fn temp_names() {
        assert!(is_temp_name(".result.json.abc.tmp"));
        assert!(is_temp_name("..data"));
        assert!(is_temp_name("x.json.part"));
        assert!(!is_temp_name("result.json"));
    }
}
