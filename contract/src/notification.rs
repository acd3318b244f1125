//! Notification v1: the JSON body the relay sends for an accepted result.
//!
//! A plain `https://` webhook target receives it as the request body; a
//! `file://` target gets it appended as one line, and `stdout:` prints it as
//! one line, both with [`Notification::webhook_id`] and
//! [`Notification::delivered_at`] added so a line can be matched to a
//! delivery. (ntfy, Slack and Discord targets get a human message instead.)
//!
//! The relay builds every body through this type, so `schema/
//! notification.v1.json`, generated from it, cannot drift from what is
//! sent. Receivers may deserialise into it: unknown profile fields land in
//! [`Notification::profile_extra`].
//!
//! The shape is the original Shortlist notifier's: the profile as read,
//! with `text`, `metadata` and `images` always present and of their types
//! (a profile that lacks them, or has them of another type, gets the empty
//! forms), plus an `assessment` object copied from the result.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::result::{AssessmentResult, BackendInfo, Verdict};

/// The `$id` of `schema/notification.v1.json`.
pub const NOTIFICATION_SCHEMA_URI: &str = "https://shortlist.dev/schema/notification.v1.json";

/// Fields of the body that are not the profile's: a profile field of the
/// same name is replaced, never sent beside it.
const OWN_FIELDS: [&str; 4] = ["text", "metadata", "images", "assessment"];

/// The JSON body the Shortlist relay sends for an accepted result: the
/// request body of a plain `https://` webhook, and (with `webhook_id` and
/// `delivered_at` added) one line of a `file://` or `stdout:` target.
/// Other top-level fields are the profile's own, passed through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "Shortlist notification v1",
    extend("$id" = NOTIFICATION_SCHEMA_URI)
)]
pub struct Notification {
    /// The profile's `text`; `""` when the profile has none (or not a string).
    pub text: String,
    /// The profile's `metadata` (`id`, `url`, `price`, `location`,
    /// `summary`, ... as the profile has them); `{}` when it has none.
    pub metadata: Map<String, Value>,
    /// The profile's `images` as listed (image URLs or `data:` URIs); `[]`
    /// when it has none.
    pub images: Vec<Value>,
    /// What the assessor decided.
    pub assessment: Assessment,
    /// `file://` and `stdout:` lines only: the Standard Webhooks message id
    /// an HTTP target gets as the `webhook-id` header (the same for every
    /// attempt, restart and target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub webhook_id: Option<String>,
    /// `file://` and `stdout:` lines only: when the line was written, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub delivered_at: Option<String>,
    /// Every other top-level field of the profile (`source`, ...), as read.
    #[serde(flatten)]
    pub profile_extra: Map<String, Value>,
}

/// The result's decision, copied field by field: `null` where the result
/// has nothing, `[]` for no reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Assessment {
    /// `accept` for every notification the relay sends (only accepted
    /// results are forwarded).
    pub verdict: Option<Verdict>,
    /// The result's score in [0, 1], or `null` when it has none.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub score: Option<f64>,
    /// The result's reasons, in order.
    pub reasons: Vec<String>,
    /// The result's own `id` as written (a number is sent as its text);
    /// `null` when it has none. The delivery's id is `webhook-id`.
    pub id: Option<String>,
    /// When the assessment finished, as the result says (RFC 3339).
    pub assessed_at: Option<String>,
    /// The backend that judged, when the result names one.
    pub backend: Option<BackendInfo>,
}

impl Assessment {
    /// Copies the decision out of a result.
    pub fn of(result: &AssessmentResult) -> Assessment {
        Assessment {
            verdict: result.verdict,
            score: result.score.filter(|s| s.is_finite()),
            reasons: result.reasons.clone().unwrap_or_default(),
            id: result.id.clone(),
            assessed_at: result.assessed_at.clone(),
            backend: result.backend.clone(),
        }
    }
}

impl Notification {
    /// The body for `result`, with `profile` (the result's own, or the one
    /// the relay read from PROFILE_PATH). Takes whatever it is given: a
    /// missing profile, a profile that is not an object, fields of the
    /// wrong type; it never fails.
    pub fn new(result: &AssessmentResult, profile: Option<&Value>) -> Notification {
        let mut profile = match profile {
            Some(Value::Object(profile)) => profile.clone(),
            _ => Map::new(),
        };
        let text = match profile.remove("text") {
            Some(Value::String(text)) => text,
            _ => String::new(),
        };
        let metadata = match profile.remove("metadata") {
            Some(Value::Object(metadata)) => metadata,
            _ => Map::new(),
        };
        let images = match profile.remove("images") {
            Some(Value::Array(images)) => images,
            _ => Vec::new(),
        };
        for field in OWN_FIELDS {
            profile.remove(field);
        }
        Notification {
            text,
            metadata,
            images,
            assessment: Assessment::of(result),
            webhook_id: None,
            delivered_at: None,
            profile_extra: profile,
        }
    }

    /// The line form (`file://`, `stdout:`): the body plus the delivery's
    /// `webhook_id` and `delivered_at`, which replace profile fields of
    /// those names.
    pub fn with_delivery(mut self, webhook_id: &str, delivered_at: String) -> Notification {
        self.profile_extra.remove("webhook_id");
        self.profile_extra.remove("delivered_at");
        self.webhook_id = Some(webhook_id.to_string());
        self.delivered_at = Some(delivered_at);
        self
    }

    /// The bytes the relay sends: compact JSON with the keys of every
    /// object in sorted order (serde_json's map order), whatever order the
    /// profile had. Deterministic, so a body can be compared byte for byte.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Through a `Value`, whose maps sort their keys: the struct's field
        // order and the flattened profile fields end up in one order.
        // Serialising a `Value` cannot fail (its keys are strings); the
        // fallback only keeps this free of panics.
        serde_json::to_value(self)
            .and_then(|value| serde_json::to_vec(&value))
            .unwrap_or_else(|_| b"{}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: Value) -> AssessmentResult {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_minimal_result_without_profile_has_every_key() {
        let n = Notification::new(&result(json!({"verdict": "accept"})), None);
        assert_eq!(
            String::from_utf8(n.to_json_bytes()).unwrap(),
            r#"{"assessment":{"assessed_at":null,"backend":null,"id":null,"reasons":[],"score":null,"verdict":"accept"},"images":[],"metadata":{},"text":""}"#
        );
    }

    #[test]
    fn profile_fields_are_kept_and_own_fields_replace_theirs() {
        let r = result(
            json!({"verdict": "accept", "id": 7, "score": 0.5, "reasons": ["a"],
            "backend": {"kind": "fixed"}, "assessed_at": "2026-01-01T00:00:00Z"}),
        );
        let profile = json!({"text": 5, "metadata": {"id": "m"}, "images": ["i.jpg"],
            "assessment": "theirs", "source": "x", "webhook_id": "theirs"});
        let n = Notification::new(&r, Some(&profile));
        let body: Value = serde_json::from_slice(&n.to_json_bytes()).unwrap();
        assert_eq!(
            body,
            json!({"text": "", "metadata": {"id": "m"}, "images": ["i.jpg"], "source": "x",
                "webhook_id": "theirs",
                "assessment": {"verdict": "accept", "score": 0.5, "reasons": ["a"], "id": "7",
                    "assessed_at": "2026-01-01T00:00:00Z", "backend": {"kind": "fixed", "model": null}}})
        );
        let line = n.with_delivery("msg_1", "2026-01-01T00:00:01Z".into());
        let body: Value = serde_json::from_slice(&line.to_json_bytes()).unwrap();
        assert_eq!(body["webhook_id"], "msg_1");
        assert_eq!(body["delivered_at"], "2026-01-01T00:00:01Z");
        // A receiver reading a body back gets the same notification.
        let back: Notification = serde_json::from_value(body).unwrap();
        assert_eq!(back, line);
        assert_eq!(back.to_json_bytes(), line.to_json_bytes());
    }
}
