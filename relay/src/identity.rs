//! The ids a delivery carries: the result's id (logged, and the input of
//! the idempotency key) and the Standard Webhooks `webhook-id` derived from
//! it, which every attempt, every restart and every target share so a
//! receiver can drop duplicates.

use std::path::{Path, PathBuf};

use serde_json::Value;
use shortlist_contract::AssessmentResult;
use shortlist_contract::atomic::{WriteError, write_atomic};

use crate::hex::sha256_prefix;

/// The file in the state directory holding this pod's salt.
const SALT_FILE: &str = "id-salt";

/// The result's own `id` when it has a non-blank one.
pub(crate) fn own_id(result: &AssessmentResult) -> Option<&str> {
    result.id.as_deref().filter(|id| !id.trim().is_empty())
}

/// The id of the result in file `name`: its own, else one derived the way
/// the assessor derives it from the profile (`metadata.id`, else a hash of
/// the profile), so results for different profiles never share a
/// `webhook-id`; without any profile, the file name and a hash of `salt`
/// and the result itself. The documented minimal result
/// `{"verdict":"accept"}` is byte-identical in every pod that writes it, so
/// without the salt (unique to the pod, see [`Identity`]) two listings
/// would share a `webhook-id` and a deduplicating receiver would drop one.
pub(crate) fn result_id(
    name: &str,
    result: &AssessmentResult,
    profile: Option<&Value>,
    salt: impl FnOnce() -> String,
) -> String {
    if let Some(id) = own_id(result) {
        return id.to_string();
    }
    match profile {
        Some(profile) => shortlist_contract::profile::stable_id(profile),
        None => {
            let mut input = salt().into_bytes();
            input.push(b'\n');
            input.extend(serde_json::to_vec(result).unwrap_or_default());
            let hash = sha256_prefix(&input, 8);
            format!("{}-{hash}", name.trim_end_matches(".json"))
        }
    }
}

/// Why the salt could not be kept in the state directory.
#[derive(Debug, thiserror::Error)]
enum SaltError {
    #[error("cannot read random bytes from /dev/urandom: {0}")]
    Random(#[source] std::io::Error),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Derives result ids, with the salt that keeps ids of results without an
/// id or profile unique to this pod.
///
/// The salt is random, made once and kept in the state directory
/// (RELAY_STATE_DIR, beside the outbox, in the pod's `emptyDir`): another
/// pod has another one, while a relay restarted in the same pod reads the
/// same one back and re-delivers with the `webhook-id` it used before. It
/// is only made when first needed, so results that carry an id or a
/// profile never touch it.
#[derive(Debug)]
pub(crate) struct Identity {
    state_dir: PathBuf,
    salt: Option<String>,
}

impl Identity {
    pub(crate) fn new(state_dir: impl Into<PathBuf>) -> Self {
        Identity {
            state_dir: state_dir.into(),
            salt: None,
        }
    }

    /// [`result_id`] with this pod's salt.
    pub(crate) fn result_id(
        &mut self,
        name: &str,
        result: &AssessmentResult,
        profile: Option<&Value>,
    ) -> String {
        result_id(name, result, profile, || self.salt())
    }

    /// The salt: read back, else made and stored. When it cannot be stored
    /// the run still gets a unique one (kept in memory), logged because a
    /// restart would then derive different ids.
    fn salt(&mut self) -> String {
        if let Some(salt) = &self.salt {
            return salt.clone();
        }
        let path = self.state_dir.join(SALT_FILE);
        let salt = match read_salt(&path) {
            Some(salt) => salt,
            None => {
                let made = make_salt();
                match &made {
                    Ok(salt) => match write_atomic(&path, salt.as_bytes()) {
                        Ok(()) => salt.clone(),
                        Err(e) => {
                            tracing::warn!(error = %SaltError::from(e), "cannot keep the id salt; ids of results without id or profile change if the relay restarts");
                            salt.clone()
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "no random id salt; using the time and process id");
                        fallback_salt()
                    }
                }
            }
        };
        self.salt = Some(salt.clone());
        salt
    }
}

/// The stored salt, when there is a usable one.
fn read_salt(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let salt = text.trim();
    (!salt.is_empty()).then(|| salt.to_string())
}

/// 16 random bytes, in hex.
fn make_salt() -> Result<String, SaltError> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(SaltError::Random)?;
    Ok(shortlist_contract::hex::encode(bytes))
}

/// Unique enough when /dev/urandom is missing: the clock and the process.
fn fallback_salt() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", now.as_nanos(), std::process::id())
}

/// The Standard Webhooks `webhook-id` of a result: derived from its id only,
/// so every attempt, every restart and every target see the same key.
pub(crate) fn webhook_id(result_id: &str) -> String {
    let hash = sha256_prefix(format!("shortlist-result:{result_id}").as_bytes(), 16);
    format!("msg_{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: Value) -> AssessmentResult {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn webhook_ids_are_stable_and_distinct() {
        assert_eq!(webhook_id("s01"), webhook_id("s01"));
        assert_ne!(webhook_id("s01"), webhook_id("s02"));
        assert!(webhook_id("s01").starts_with("msg_"));
        assert_eq!(webhook_id("s01").len(), 4 + 32);
    }

    #[test]
    fn webhook_id_is_pinned() {
        // Changing the derivation would re-notify every receiver that
        // de-duplicates on it: `printf 'shortlist-result:s01' | sha256sum`.
        assert_eq!(webhook_id("s01"), format!("msg_{}", &PINNED_S01[..32]));
    }

    const PINNED_S01: &str = "1968acf444672254d1b5c77b8baf7cceb5638a947ad00d06a9c62d53c636be5a";

    #[test]
    fn a_result_id_wins() {
        let r = result(json!({"verdict": "accept", "id": "abc"}));
        let profile = json!({"metadata": {"id": "other"}});
        assert_eq!(result_id("r.json", &r, Some(&profile), no_salt), "abc");
        let numeric = result(json!({"verdict": "accept", "id": 7}));
        assert_eq!(result_id("r.json", &numeric, None, no_salt), "7");
        assert_eq!(own_id(&r), Some("abc"));
    }

    #[test]
    fn without_an_id_the_profile_gives_it() {
        for value in [
            json!({"verdict": "accept"}),
            json!({"verdict": "accept", "id": null}),
            json!({"verdict": "accept", "id": "  "}),
        ] {
            let r = result(value);
            assert_eq!(own_id(&r), None);
            let profile = json!({"metadata": {"id": "s07"}});
            assert_eq!(result_id("r.json", &r, Some(&profile), no_salt), "s07");
            let anonymous = json!({"text": "a flat"});
            assert_eq!(
                result_id("r.json", &r, Some(&anonymous), no_salt),
                shortlist_contract::profile::stable_id(&anonymous)
            );
        }
    }

    #[test]
    fn without_id_or_profile_the_file_name_and_a_hash_give_it() {
        let accept = result(json!({"verdict": "accept"}));
        let reject = result(json!({"verdict": "reject"}));
        let a = result_id("r.json", &accept, None, salt("pod-a"));
        assert!(a.starts_with("r-"), "{a}");
        assert_eq!(a.len(), 2 + 16);
        assert_eq!(a, result_id("r.json", &accept, None, salt("pod-a")));
        assert_ne!(a, result_id("r.json", &reject, None, salt("pod-a")));
        assert_ne!(a, result_id("q.json", &accept, None, salt("pod-a")));
        // Another pod: the same bytes, another id.
        assert_ne!(a, result_id("r.json", &accept, None, salt("pod-b")));
    }

    fn salt(text: &str) -> impl FnOnce() -> String + '_ {
        move || text.to_string()
    }

    fn no_salt() -> String {
        panic!("the salt is only needed without an id or a profile")
    }

    #[test]
    fn the_salt_is_made_once_and_kept_in_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let accept = result(json!({"verdict": "accept"}));
        let mut ids = Identity::new(dir.path());
        let first = ids.result_id("r.json", &accept, None);
        let salt = std::fs::read_to_string(dir.path().join(SALT_FILE)).unwrap();
        assert_eq!(salt.len(), 32, "{salt}");
        assert_eq!(first, ids.result_id("r.json", &accept, None));
        // A restart in the same pod: the same state dir, the same id.
        assert_eq!(
            first,
            Identity::new(dir.path()).result_id("r.json", &accept, None)
        );
        // Another pod: another state dir, another id.
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            first,
            Identity::new(other.path()).result_id("r.json", &accept, None)
        );
    }

    #[test]
    fn results_with_an_id_or_a_profile_never_touch_the_salt() {
        let dir = tempfile::tempdir().unwrap();
        let mut ids = Identity::new(dir.path());
        let own = result(json!({"verdict": "accept", "id": "s01"}));
        assert_eq!(ids.result_id("r.json", &own, None), "s01");
        let bare = result(json!({"verdict": "accept"}));
        let profile = json!({"metadata": {"id": "s07"}});
        assert_eq!(ids.result_id("r.json", &bare, Some(&profile)), "s07");
        assert_eq!(result_id("r.json", &own, None, no_salt), "s01");
        assert!(!dir.path().join(SALT_FILE).exists());
    }

    #[test]
    fn an_unwritable_state_dir_still_gives_unique_ids() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let accept = result(json!({"verdict": "accept"}));
        let mut ids = Identity::new(&missing);
        let a = ids.result_id("r.json", &accept, None);
        assert_eq!(a, ids.result_id("r.json", &accept, None));
        assert_ne!(
            a,
            Identity::new(&missing).result_id("r.json", &accept, None)
        );
    }
}
