//! The model file: found and checked at start-up (exists, is GGUF, fits
//! in memory), so a wrong path fails before any profile is read.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::setting::SettingError;

/// The demo model's file name, looked up in `CACHE_DIR` when no model is named.
pub(crate) const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Memory a context and its buffers need beyond the weights, for the
/// start-up "does it fit" check (a 2k context of a small model is far less;
/// this errs on the side of refusing early rather than being OOM-killed late).
const CONTEXT_OVERHEAD_BYTES: u64 = 64 * 1024 * 1024;

/// What was checked at start-up.
#[derive(Debug, Clone)]
pub(crate) struct ModelFile {
    pub(crate) path: PathBuf,
}

/// Finds and checks the model file: `LLM_MODEL_PATH`, else `LLM_MODEL` (or
/// the demo model's name) inside `CACHE_DIR` or `CACHE_DIR/models`.
pub(crate) fn locate_model(
    model_path: Option<&Path>,
    model_name: Option<&str>,
    cache_dir: Option<&Path>,
) -> Result<ModelFile, SettingError> {
    let path = match model_path {
        Some(path) => path.to_path_buf(),
        None => {
            let name = model_name.unwrap_or(DEFAULT_MODEL_FILE);
            let Some(cache) = cache_dir else {
                return Err(SettingError::Missing {
                    variable: "LLM_MODEL_PATH",
                    why: "for LLM_BACKEND=llama (a .gguf file), or set CACHE_DIR to a directory holding LLM_MODEL; scripts/fetch-model.sh fetches the demo model",
                });
            };
            let candidates = [cache.join(name), cache.join("models").join(name)];
            match candidates.iter().find(|p| p.is_file()) {
                Some(found) => found.clone(),
                None => {
                    return Err(SettingError::Invalid {
                        variable: "LLM_MODEL",
                        value: name.to_string(),
                        message: format!(
                            "no such model in CACHE_DIR ({} or {}); run scripts/fetch-model.sh or set LLM_MODEL_PATH",
                            candidates[0].display(),
                            candidates[1].display()
                        ),
                    });
                }
            }
        }
    };
    let invalid = |message: String| SettingError::Invalid {
        variable: "LLM_MODEL_PATH",
        value: path.display().to_string(),
        message,
    };
    let meta = std::fs::metadata(&path)
        .map_err(|e| invalid(format!("cannot read the model file: {e}")))?;
    if !meta.is_file() {
        return Err(invalid("is not a file".into()));
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| invalid(format!("cannot read the model file: {e}")))?;
    if &magic != b"GGUF" {
        return Err(invalid(format!(
            "is not a GGUF model (its first bytes are {magic:02x?}, expected \"GGUF\")"
        )));
    }
    if let Some(available) = available_memory() {
        let needed = meta.len() + CONTEXT_OVERHEAD_BYTES;
        if needed > available {
            return Err(invalid(format!(
                "the model needs about {} MiB of memory but only {} MiB is available (container limit or free memory); use a smaller quantisation or raise the limit",
                needed >> 20,
                available >> 20
            )));
        }
    }
    Ok(ModelFile { path })
}

/// Memory this process may still use: the cgroup's limit minus its usage
/// when there is one (a pod's `resources.limits.memory`), else the host's
/// `MemAvailable`; the smaller of the two.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
    let cgroup = (|| {
        let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
        let max: u64 = max.trim().parse().ok()?; // "max" = no limit
        let current: u64 = std::fs::read_to_string("/sys/fs/cgroup/memory.current")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(max.saturating_sub(current))
    })();
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
