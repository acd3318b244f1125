//! The one way Shortlist reads a file it was pointed at (a profile, a config
//! file, a rule set, a secret, a local image, a labels file): it must be a
//! regular file after following links, and it is read with a hard cap.
//!
//! Both checks guard against a path that names something else than what the
//! operator meant. A FIFO would block the reader forever (nothing ever
//! writes to it) and `/dev/zero` or `/dev/urandom` never end, so "read it to
//! the end" would grow memory until the pod is killed. `metadata().len()` is
//! not trusted alone: a device reports 0, and a file may grow between the
//! look and the read, so the read itself stops one byte past the cap.
//!
//! The look happens twice, on purpose: `stat` on the path first, so a FIFO
//! or a device is never even opened (opening a FIFO can wake its writer, and
//! opening some devices has side effects); then `fstat` on what was opened
//! (with `O_NONBLOCK`, so a FIFO swapped in between cannot block the open),
//! so what is read is what was checked.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file could not be read. The messages name no path: every caller
/// prefixes what it knows (the path, the variable that named it).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no such file")]
    Missing,
    /// `found` is what the path names instead, e.g. `"a FIFO (named pipe)"`.
    #[error("is {found}, not a regular file")]
    NotRegular { found: &'static str },
    /// `size` is known when the file said so up front; a file that grew past
    /// the cap while it was read has none.
    #[error("{}larger than the {limit}-byte limit", match .size { Some(size) => format!("is {size} bytes, "), None => "is ".to_string() })]
    TooLarge { size: Option<u64>, limit: u64 },
    #[error("{0}")]
    Io(#[source] std::io::Error),
}

impl ReadError {
    fn from_io(error: std::io::Error) -> ReadError {
        match error.kind() {
            std::io::ErrorKind::NotFound => ReadError::Missing,
            _ => ReadError::Io(error),
        }
    }
}

/// What a file that is not a regular one is, for messages: "is a FIFO
/// (named pipe), not a regular file" says what to fix.
pub fn describe_type(metadata: &Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading when it is a regular file after following
/// links, and returns it with its metadata (taken from the open file).
pub fn open(path: &Path) -> Result<(File, Metadata), ReadError> {
    let before = std::fs::metadata(path).map_err(ReadError::from_io)?;
    if !before.is_file() {
        return Err(ReadError::NotRegular {
            found: describe_type(&before),
        });
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(ReadError::from_io)?;
    let metadata = file.metadata().map_err(ReadError::Io)?;
    if !metadata.is_file() {
        return Err(ReadError::NotRegular {
            found: describe_type(&metadata),
        });
    }
    // A regular file ignores O_NONBLOCK on Linux, but a network or FUSE
    // filesystem might not: reads should block as usual.
    // SAFETY: F_GETFL/F_SETFL on a descriptor `file` keeps open.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok((file, metadata))
}

/// Reads all of `path`, a regular file (after following links) of at most
/// `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (file, metadata) = open(path)?;
    read_open(file, &metadata, limit)
}

/// Reads a file [`open`] returned, refusing more than `limit` bytes.
pub fn read_open(file: File, metadata: &Metadata, limit: u64) -> Result<Vec<u8>, ReadError> {
    if metadata.len() > limit {
        return Err(ReadError::TooLarge {
            size: Some(metadata.len()),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { size: None, limit });
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read(path, limit)?).map_err(|_| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn reads_a_regular_file_and_links_to_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.json");
        std::fs::write(&file, b"{}").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read(&file, 2).unwrap(), b"{}");
        assert_eq!(read(&link, 2).unwrap(), b"{}");
        assert_eq!(read_to_string(&link, 2).unwrap(), "{}");
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        let zero_link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero_link).unwrap();
        for (path, found) in [
            (fifo.as_path(), "a FIFO (named pipe)"),
            (link.as_path(), "a FIFO (named pipe)"),
            (Path::new("/dev/zero"), "a character device"),
            (zero_link.as_path(), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let error = read(path, 1024).unwrap_err();
            assert!(
                matches!(error, ReadError::NotRegular { found: f } if f == found),
                "{}: {error}",
                path.display()
            );
            assert_eq!(error.to_string(), format!("is {found}, not a regular file"));
        }
        assert!(matches!(
            read(&dir.path().join("missing"), 1).unwrap_err(),
            ReadError::Missing
        ));
    }

    #[test]
    fn the_cap_is_hard() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![b'a'; 11]).unwrap();
        assert_eq!(read(&file, 11).unwrap().len(), 11);
        let error = read(&file, 10).unwrap_err();
        assert_eq!(
            error.to_string(),
            "is 11 bytes, larger than the 10-byte limit"
        );
        // A file that grows after its size was looked at is still cut off.
        let (handle, metadata) = open(&file).unwrap();
        std::fs::write(&file, vec![b'a'; 100]).unwrap();
        let error = read_open(handle, &metadata, 20).unwrap_err();
        assert!(
            matches!(
                error,
                ReadError::TooLarge {
                    size: None,
                    limit: 20
                }
            ),
            "{error}"
        );
    }
}
