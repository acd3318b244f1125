//! JSON Schemas of the contract, generated from the Rust types so the
//! documents in `schema/` can never disagree with what the code accepts (a
//! test in this crate fails when the committed files drift).

use schemars::schema_for;

use crate::receipt::Receipt;
use crate::{AssessmentResult, Notification, Profile};

/// The JSON Schema of profile v1, pretty-printed with a trailing newline.
pub fn profile_schema() -> String {
    pretty(serde_json::to_value(schema_for!(Profile)).expect("schema serialises"))
}

/// The JSON Schema of result v1, pretty-printed with a trailing newline.
pub fn result_schema() -> String {
    pretty(serde_json::to_value(schema_for!(AssessmentResult)).expect("schema serialises"))
}

/// The JSON Schema of the relay's delivery receipt v1.
pub fn receipt_schema() -> String {
    pretty(serde_json::to_value(schema_for!(Receipt)).expect("schema serialises"))
}

/// The JSON Schema of notification v1 (the body the relay sends), with
/// the serialisation contract: the relay writes these documents, so every
/// field it always writes is `required` (nullable where it may be `null`).
pub fn notification_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    pretty(
        serde_json::to_value(generator.into_root_schema_for::<Notification>())
            .expect("schema serialises"),
    )
}

fn pretty(value: serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(&value).expect("schema serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn committed(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../schema")
            .join(name)
    }

    /// Fails when `schema/*.json` drift from the types. Regenerate with
    /// `UPDATE_SCHEMAS=1 cargo test -p shortlist-contract schema`.
    #[test]
    fn committed_schemas_match_the_types() {
        for (name, generated) in [
            ("profile.v1.json", profile_schema()),
            ("result.v1.json", result_schema()),
            ("receipt.v1.json", receipt_schema()),
            ("notification.v1.json", notification_schema()),
        ] {
            let path = committed(name);
            if std::env::var_os("UPDATE_SCHEMAS").is_some() {
                std::fs::write(&path, &generated).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; run UPDATE_SCHEMAS=1 cargo test -p shortlist-contract",
                    path.display()
                )
            });
            assert_eq!(
                on_disk,
                generated,
                "{} drifted from the Rust types; run UPDATE_SCHEMAS=1 cargo test -p shortlist-contract",
                path.display()
            );
        }
    }

    #[test]
    fn schemas_accept_and_refuse_what_the_contract_says() {
        let result: serde_json::Value = serde_json::from_str(&result_schema()).unwrap();
        let v = jsonschema::validator_for(&result).unwrap();
        assert!(v.is_valid(&serde_json::json!({"verdict": "accept"})));
        assert!(v.is_valid(&serde_json::json!({"verdict": null, "status": "error", "error": {"kind": "timeout", "message": "m"}})));
        assert!(!v.is_valid(&serde_json::json!({"verdict": "maybe"})));
        assert!(!v.is_valid(&serde_json::json!({"status": "ok"})));
        assert!(!v.is_valid(&serde_json::json!({"verdict": "accept", "score": 1.5})));

        let profile: serde_json::Value = serde_json::from_str(&profile_schema()).unwrap();
        let v = jsonschema::validator_for(&profile).unwrap();
        assert!(v.is_valid(&serde_json::json!({"text": "x", "extra": 1})));
        assert!(!v.is_valid(&serde_json::json!({"text": ""})));
        assert!(!v.is_valid(&serde_json::json!({"images": []})));
    }

    #[test]
    fn the_notification_schema_describes_what_is_sent() {
        let schema: serde_json::Value = serde_json::from_str(&notification_schema()).unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        let minimal: crate::AssessmentResult =
            serde_json::from_str(r#"{"verdict":"accept"}"#).unwrap();
        let body = Notification::new(&minimal, None);
        let sent: serde_json::Value = serde_json::from_slice(&body.to_json_bytes()).unwrap();
        assert!(v.is_valid(&sent), "{sent}");
        let line = body.with_delivery("msg_1", "2026-01-01T00:00:00Z".into());
        let sent: serde_json::Value = serde_json::from_slice(&line.to_json_bytes()).unwrap();
        assert!(v.is_valid(&sent), "{sent}");
        // Every field is always there, of its type.
        for bad in [
            serde_json::json!({"text": "", "metadata": {}, "images": []}),
            serde_json::json!({"text": null, "metadata": {}, "images": [], "assessment": sent["assessment"]}),
            serde_json::json!({"text": "", "metadata": {}, "images": [], "assessment": {"verdict": "accept"}}),
        ] {
            assert!(!v.is_valid(&bad), "{bad}");
        }
    }
}
