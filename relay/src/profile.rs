//! The profile a delivery carries: the result's own `profile`, else the one
//! at PROFILE_PATH (a minimal custom assessor writes results without it).
//! PROFILE_PATH is read once, on first need, and kept: it does not change
//! during a run.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use shortlist_contract::AssessmentResult;

/// Chooses a result's profile, reading PROFILE_PATH when it has none.
#[derive(Debug)]
pub(crate) struct ProfileFallback {
    path: Option<PathBuf>,
    /// PROFILE_PATH's contents, once read successfully.
    read: Option<Arc<Value>>,
}

impl ProfileFallback {
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        ProfileFallback { path, read: None }
    }

    /// The result's own profile when it has one (not `null`), else
    /// PROFILE_PATH's; `None` when neither is available (an unreadable
    /// PROFILE_PATH is logged and tried again next time).
    pub(crate) fn for_result(&mut self, result: &AssessmentResult) -> Option<Arc<Value>> {
        match &result.profile {
            Some(own) if !own.is_null() => Some(Arc::new(own.clone())),
            _ => self.fallback(),
        }
    }

    fn fallback(&mut self) -> Option<Arc<Value>> {
        if let Some(profile) = &self.read {
            return Some(profile.clone());
        }
        let path = self.path.as_ref()?;
        match read_capped(path)
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
        {
            Ok(profile) => {
                let profile = Arc::new(profile);
                self.read = Some(profile.clone());
                Some(profile)
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %error, "cannot read PROFILE_PATH; delivering without the profile");
                None
            }
        }
    }
}

/// PROFILE_PATH's bytes: a regular file (after links) of at most the
/// contract's profile limit. A FIFO would block the relay's only thread and
/// `/dev/zero` would fill its memory, so neither is opened for reading.
fn read_capped(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use shortlist_contract::profile::MAX_PROFILE_BYTES;
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(format!("larger than {MAX_PROFILE_BYTES} bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: Value) -> AssessmentResult {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_results_own_profile_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        std::fs::write(&path, r#"{"text":"from the file"}"#).unwrap();
        let mut profiles = ProfileFallback::new(Some(path));
        let own = result(json!({"verdict": "accept", "profile": {"text": "own"}}));
        assert_eq!(
            profiles.for_result(&own).as_deref(),
            Some(&json!({"text": "own"}))
        );
        for value in [
            json!({"verdict": "accept"}),
            json!({"verdict": "accept", "profile": null}),
        ] {
            assert_eq!(
                profiles.for_result(&result(value)).as_deref(),
                Some(&json!({"text": "from the file"}))
            );
        }
    }

    #[test]
    fn profile_path_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        std::fs::write(&path, r#"{"text":"first"}"#).unwrap();
        let mut profiles = ProfileFallback::new(Some(path.clone()));
        let bare = result(json!({"verdict": "accept"}));
        assert_eq!(
            profiles.for_result(&bare).as_deref(),
            Some(&json!({"text": "first"}))
        );
        std::fs::write(&path, r#"{"text":"second"}"#).unwrap();
        assert_eq!(
            profiles.for_result(&bare).as_deref(),
            Some(&json!({"text": "first"}))
        );
    }

    #[test]
    fn an_unreadable_profile_path_gives_none_until_it_is_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        let mut profiles = ProfileFallback::new(Some(path.clone()));
        let bare = result(json!({"verdict": "accept"}));
        assert_eq!(profiles.for_result(&bare), None);
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(profiles.for_result(&bare), None);
        std::fs::write(&path, r#"{"text":"now"}"#).unwrap();
        assert_eq!(
            profiles.for_result(&bare).as_deref(),
            Some(&json!({"text": "now"}))
        );
        assert_eq!(ProfileFallback::new(None).for_result(&bare), None);
    }

    #[test]
    fn a_fifo_or_device_profile_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("profile.fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        for path in [fifo, std::path::PathBuf::from("/dev/zero")] {
            let mut profiles = ProfileFallback::new(Some(path.clone()));
            assert_eq!(
                profiles.for_result(&result(json!({"verdict": "accept"}))),
                None,
                "{}",
                path.display()
            );
        }
    }
}
