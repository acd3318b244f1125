//! A batch's input, streamed: a directory of profile files (`*.json`, in
//! name order; hidden files and ConfigMap `..data` entries skipped) or a
//! JSONL file (one profile per line, blank lines skipped). Entries are read
//! and parsed one at a time on a blocking thread and sent through a bounded
//! channel, so memory stays flat however large the input.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;
use shortlist_contract::profile::{MAX_PROFILE_BYTES, stable_id};
use shortlist_contract::{Profile, ProfileError};
use tokio::sync::mpsc;

use super::shard::Shard;

/// What kind of input a batch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputFormat {
    Directory,
    Jsonl,
}

impl InputFormat {
    /// A directory, or a file whose name ends in `.jsonl` / `.ndjson`.
    pub(crate) fn detect(path: &Path) -> Option<InputFormat> {
        if path.is_dir() {
            return Some(InputFormat::Directory);
        }
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        (name.ends_with(".jsonl") || name.ends_with(".ndjson")).then_some(InputFormat::Jsonl)
    }
}

/// One entry of the input, read and parsed.
#[derive(Debug)]
pub(crate) struct Item {
    /// Where it came from: a file path, or `file.jsonl line N`.
    pub(crate) source: String,
    /// The profile's id when it parsed (the result's name and shard key).
    pub(crate) id: Option<String>,
    pub(crate) parsed: Result<(Profile, Value), ProfileError>,
    /// The directory its local images are relative to.
    pub(crate) dir: PathBuf,
}

impl Item {
    /// The key that decides the shard.
    pub(crate) fn shard_key(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.source)
    }
}

/// Counts from reading the input.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct InputStats {
    /// Entries seen (every shard).
    pub(crate) entries: u64,
    /// Entries this shard owns.
    pub(crate) owned: u64,
}

/// The JSON documents of a directory, in name order: entries named
/// `*.json` (or links to them, as in a ConfigMap volume) that are not
/// directories, without hidden ones (temp files of an atomic writer, the
/// kubelet's `..data`). Batch inputs and result directories are both read
/// this way. A FIFO or a device named `*.json` is listed, not skipped: its
/// reader refuses it with an error that names it
/// ([`shortlist_contract::regular_file`]), so it is not silently lost.
pub(crate) fn json_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    files_named(dir, |name| name.ends_with(".json"))
}

/// A batch directory's profiles: as [`json_files`], plus plain-text and
/// Markdown listings (`*.txt`, `*.md`, `*.markdown`: each file's content is
/// one profile's text). Only a batch input is read this way; a results
/// directory holds only JSON.
pub(crate) fn profile_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    files_named(dir, |name| {
        name.ends_with(".json") || shortlist_contract::profile::is_text_listing(Path::new(name))
    })
}

/// The entries of `dir` whose names `wanted` accepts, in name order,
/// without hidden ones and directories.
fn files_named(dir: &Path, wanted: impl Fn(&str) -> bool) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                !n.starts_with('.') && wanted(&n)
            }) && std::fs::metadata(p).is_ok_and(|m| !m.is_dir())
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The input as a whole could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    #[error("{}: cannot read the batch input: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{}: is {found}; a JSONL batch input must be a regular file or a FIFO (named pipe)",
        path.display()
    )]
    NotAStream { path: PathBuf, found: &'static str },
}

/// Opens a JSONL input: a regular file, or a FIFO that a producer streams
/// into (opening it waits for the writer, as a reader of a pipe should). A
/// device (`/dev/zero` never ends, and its one "line" would be skipped
/// forever), a socket or a directory is refused before it is opened.
fn open_stream(path: &Path) -> Result<std::fs::File, InputError> {
    let unreadable = |error| InputError::Unreadable {
        path: path.to_path_buf(),
        error,
    };
    let is_stream = |m: &std::fs::Metadata| {
        use std::os::unix::fs::FileTypeExt;
        m.is_file() || m.file_type().is_fifo()
    };
    let refused = |m: &std::fs::Metadata| InputError::NotAStream {
        path: path.to_path_buf(),
        found: shortlist_contract::regular_file::describe_type(m),
    };
    let before = std::fs::metadata(path).map_err(unreadable)?;
    if !is_stream(&before) {
        return Err(refused(&before));
    }
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let opened = file.metadata().map_err(unreadable)?;
    if !is_stream(&opened) {
        return Err(refused(&opened));
    }
    Ok(file)
}

/// Consumes the reader up to and including the next `\n` (or the end),
/// holding no more than one buffer; returns how many bytes were skipped.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buffer.is_empty() {
            return Ok(skipped);
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(skipped + end as u64 + 1);
            }
            None => {
                let all = buffer.len();
                reader.consume(all);
                skipped += all as u64;
            }
        }
    }
}

/// Reads every entry, keeps this shard's, and sends them. Stops early when
/// the receiver is gone (the batch was cancelled).
pub(crate) fn read_into(
    format: InputFormat,
    path: &Path,
    shard: Option<Shard>,
    sender: mpsc::Sender<Item>,
) -> Result<InputStats, InputError> {
    let mut stats = InputStats::default();
    let mut send = |item: Item| -> bool {
        stats.entries += 1;
        if shard.is_some_and(|s| !s.owns(item.shard_key())) {
            return true;
        }
        stats.owned += 1;
        sender.blocking_send(item).is_ok()
    };
    let unreadable = |error| InputError::Unreadable {
        path: path.to_path_buf(),
        error,
    };
    match format {
        InputFormat::Directory => {
            for file in profile_files(path).map_err(unreadable)? {
                let parsed = Profile::read_listing(&file);
                let item = Item {
                    source: file.display().to_string(),
                    id: parsed.as_ref().ok().map(|(_, v)| stable_id(v)),
                    parsed,
                    dir: path.to_path_buf(),
                };
                if !send(item) {
                    break;
                }
            }
        }
        InputFormat::Jsonl => {
            let file = open_stream(path)?;
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let name = path.display().to_string();
            let mut reader = BufReader::with_capacity(256 * 1024, file);
            let mut line = Vec::new();
            let mut number = 0u64;
            loop {
                line.clear();
                // One byte over the limit tells a too-long line from a full one.
                let read = (&mut reader)
                    .take(MAX_PROFILE_BYTES + 1)
                    .read_until(b'\n', &mut line)
                    .map_err(unreadable)?;
                if read == 0 {
                    break;
                }
                number += 1;
                let source = format!("{name} line {number}");
                let parsed = if line.last() != Some(&b'\n') && read as u64 > MAX_PROFILE_BYTES {
                    // Skip the rest of the over-long line without keeping it:
                    // a line may be endless (a stream that never sends '\n').
                    let rest = skip_line(&mut reader).map_err(unreadable)?;
                    Err(ProfileError::TooLarge {
                        source_name: source.clone(),
                        size: Some(read as u64 + rest),
                        limit: MAX_PROFILE_BYTES,
                    })
                } else {
                    if line.trim_ascii().is_empty() {
                        continue;
                    }
                    Profile::from_slice(line.trim_ascii(), &source)
                };
                let item = Item {
                    id: parsed.as_ref().ok().map(|(_, v)| stable_id(v)),
                    source,
                    parsed,
                    dir: dir.clone(),
                };
                if !send(item) {
                    break;
                }
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(format: InputFormat, path: &Path, shard: Option<Shard>) -> (Vec<Item>, InputStats) {
        let (tx, mut rx) = mpsc::channel(1024);
        let stats = read_into(format, path, shard, tx).unwrap();
        let mut items = Vec::new();
        while let Ok(item) = rx.try_recv() {
            items.push(item);
        }
        (items, stats)
    }

    #[test]
    fn jsonl_lines_are_numbered_and_bad_lines_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(
            &path,
            "{\"text\":\"a\",\"metadata\":{\"id\":\"a\"}}\n\n{oops\n{\"text\":\"b\"}",
        )
        .unwrap();
        let (items, stats) = collect(InputFormat::Jsonl, &path, None);
        assert_eq!(stats.entries, 3);
        assert_eq!(items[0].id.as_deref(), Some("a"));
        assert!(
            items[1].source.ends_with("p.jsonl line 3"),
            "{}",
            items[1].source
        );
        let error = items[1].parsed.as_ref().unwrap_err().to_string();
        assert!(error.contains("line 3"), "{error}");
        assert!(items[2].id.as_deref().unwrap().starts_with("sha256-"));
    }

    #[test]
    fn an_over_long_line_is_reported_and_the_next_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let mut bytes = vec![b'x'; MAX_PROFILE_BYTES as usize + 100];
        bytes.extend_from_slice(b"\n{\"text\":\"after\",\"metadata\":{\"id\":\"b\"}}\n");
        std::fs::write(&path, bytes).unwrap();
        let (items, stats) = collect(InputFormat::Jsonl, &path, None);
        assert_eq!(stats.entries, 2);
        let error = items[0].parsed.as_ref().unwrap_err();
        assert!(
            matches!(error, ProfileError::TooLarge { size: Some(size), .. } if *size == MAX_PROFILE_BYTES + 101),
            "{error}"
        );
        assert_eq!(items[1].id.as_deref(), Some("b"));
    }

    #[test]
    fn directories_are_read_in_name_order_skipping_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.json", "a.json", ".hidden.json", "notes.csv", ".x.txt"] {
            std::fs::write(dir.path().join(name), format!("{{\"text\":\"{name}\"}}")).unwrap();
        }
        std::fs::write(dir.path().join("c.md"), "# Flat\nTwo bedrooms.").unwrap();
        std::fs::write(dir.path().join("d.txt"), "A cottage.").unwrap();
        let (items, _) = collect(InputFormat::Directory, dir.path(), None);
        let names: Vec<&str> = items
            .iter()
            .map(|i| i.source.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(names, ["a.json", "b.json", "c.md", "d.txt"]);
        let (text, _) = items[2].parsed.as_ref().unwrap();
        assert_eq!(text.text, "# Flat\nTwo bedrooms.");
        assert!(items[3].id.as_deref().unwrap().starts_with("sha256-"));
    }

    #[test]
    fn shards_split_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let lines: String = (0..90)
            .map(|n| format!("{{\"text\":\"t\",\"metadata\":{{\"id\":\"p{n}\"}}}}\n"))
            .collect();
        std::fs::write(&path, lines).unwrap();
        let mut seen = Vec::new();
        for index in 0..3 {
            let (items, stats) = collect(
                InputFormat::Jsonl,
                &path,
                Some(Shard::new(index, 3).unwrap()),
            );
            assert_eq!(stats.entries, 90);
            assert_eq!(stats.owned as usize, items.len());
            seen.extend(items.into_iter().map(|i| i.id.unwrap()));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 90);
    }
}
