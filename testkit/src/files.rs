//! Temp dirs and the ways tests write files: plainly, atomically (temp +
//! rename, as the assessor does) and non-atomically in two halves (a slow
//! writer the relay must wait out).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Writes `value` as `dir/name` (pretty JSON) and returns the path.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    write_bytes(
        dir,
        name,
        serde_json::to_string_pretty(value)
            .expect("a Value serialises")
            .as_bytes(),
    )
}

/// Writes `bytes` as `dir/name` and returns the path.
pub fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// Pretty JSON and a final newline, as a result file holds it.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("a Value serialises");
    bytes.push(b'\n');
    bytes
}

/// Writes `dir/name` atomically: a hidden `.name.x.tmp` beside it, then a rename.
pub fn write_atomic(dir: &Path, name: &str, value: &Value) -> PathBuf {
    write_atomic_bytes(dir, name, &to_bytes(value))
}

pub fn write_atomic_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let temp = dir.join(format!(".{name}.x.tmp"));
    let path = dir.join(name);
    {
        let mut file = std::fs::File::create(&temp).unwrap();
        file.write_all(bytes).unwrap();
        file.sync_all().unwrap();
    }
    std::fs::rename(&temp, &path).unwrap();
    path
}

/// Writes `path` in place, non-atomically: the first half, a pause with the
/// file open and incomplete, then the rest (a shell's `echo > file` writer
/// that is slow).
pub async fn write_in_halves(path: &Path, bytes: &[u8], pause: Duration) {
    let half = bytes.len() / 2;
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&bytes[..half]).unwrap();
    file.flush().unwrap();
    tokio::time::sleep(pause).await;
    file.write_all(&bytes[half..]).unwrap();
    file.flush().unwrap();
}
