//! The ids a delivery carries: the result's id (logged, and the input of
//! the idempotency key) and the Standard Webhooks `webhook-id` derived from
//! it, which every attempt, every restart and every target share so a
//! receiver can drop duplicates.

use serde_json::Value;
use shortlist_contract::AssessmentResult;

use crate::hex::sha256_prefix;

/// The result's own `id` when it has a non-blank one.
pub(crate) fn own_id(result: &AssessmentResult) -> Option<&str> {
    result.id.as_deref().filter(|id| !id.trim().is_empty())
}

/// The id of the result in file `name`: its own, else one derived the way
/// the assessor derives it from the profile (`metadata.id`, else a hash of
/// the profile), so results for different profiles never share a
/// `webhook-id`; without any profile, the file name and a hash of the
/// result itself.
pub(crate) fn result_id(name: &str, result: &AssessmentResult, profile: Option<&Value>) -> String {
    if let Some(id) = own_id(result) {
        return id.to_string();
    }
    match profile {
        Some(profile) => shortlist_contract::profile::stable_id(profile),
        None => {
            let canonical = serde_json::to_vec(result).unwrap_or_default();
            let hash = sha256_prefix(&canonical, 8);
            format!("{}-{hash}", name.trim_end_matches(".json"))
        }
    }
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
        assert_eq!(result_id("r.json", &r, Some(&profile)), "abc");
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
            assert_eq!(result_id("r.json", &r, Some(&profile)), "s07");
            let anonymous = json!({"text": "a flat"});
            assert_eq!(
                result_id("r.json", &r, Some(&anonymous)),
                shortlist_contract::profile::stable_id(&anonymous)
            );
        }
    }

    #[test]
    fn without_id_or_profile_the_file_name_and_a_hash_give_it() {
        let accept = result(json!({"verdict": "accept"}));
        let reject = result(json!({"verdict": "reject"}));
        let a = result_id("r.json", &accept, None);
        assert!(a.starts_with("r-"), "{a}");
        assert_eq!(a.len(), 2 + 16);
        assert_eq!(a, result_id("r.json", &accept, None));
        assert_ne!(a, result_id("r.json", &reject, None));
        assert_ne!(a, result_id("q.json", &accept, None));
    }
}
