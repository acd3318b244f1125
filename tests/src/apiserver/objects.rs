//! Admission: what the server checks and fills in when an object is created
//! or patched (names, `generateName`, uid, timestamps, the Job defaults the
//! real server adds), and RFC 7386 merge patches.

use serde_json::{Map, Value, json};

use super::status::ApiError;
use super::store::{self, Kind};

/// A client's new object made ready to store: validated, named, with its
/// uid and creationTimestamp (the store sets the resourceVersion).
pub fn admit(kind: Kind, namespace: &str, body: Value) -> Result<Value, ApiError> {
    let Value::Object(_) = body else {
        return Err(ApiError::bad_request("the body is not a JSON object"));
    };
    let mut object = body;
    for (field, expected) in [("kind", kind.name()), ("apiVersion", kind.api_version())] {
        match object.get(field) {
            None | Some(Value::Null) => object[field] = json!(expected),
            Some(Value::String(s)) if s == expected => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "the {field} of the body is {other}, this endpoint takes {expected}"
                )));
            }
        }
    }
    if object.get("metadata").is_none_or(Value::is_null) {
        object["metadata"] = json!({});
    }
    if !object["metadata"].is_object() {
        return Err(ApiError::bad_request("metadata is not an object"));
    }
    match &object["metadata"]["namespace"] {
        Value::Null => object["metadata"]["namespace"] = json!(namespace),
        Value::String(ns) if ns == namespace => {}
        _ => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let name = match (
        &object["metadata"]["name"],
        &object["metadata"]["generateName"],
    ) {
        (Value::String(name), _) if !name.is_empty() => name.clone(),
        (Value::Null | Value::String(_), Value::String(base)) if !base.is_empty() => {
            store::generate_name(base)
        }
        _ => {
            return Err(ApiError::invalid(
                kind,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        }
    };
    object["metadata"]["name"] = json!(name);
    let uid = store::uid();
    let metadata = &mut object["metadata"];
    metadata["uid"] = json!(uid);
    metadata["creationTimestamp"] = json!(store::now());
    if let Some(m) = metadata.as_object_mut() {
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        m.remove("managedFields");
    }
    if kind == Kind::Job {
        metadata["generation"] = json!(1);
        default_job(&mut object, &name, &uid)?;
    }
    validate(kind, &object)?;
    Ok(object)
}

/// What the real server adds to a new Job: its defaults, the selector and
/// the template labels tying its pods to it, an empty status.
fn default_job(job: &mut Value, name: &str, uid: &str) -> Result<(), ApiError> {
    if !job["spec"].is_object() {
        return Err(ApiError::invalid(Kind::Job, name, "spec", "Required value"));
    }
    if !job["spec"]["template"]["spec"]["containers"].is_array() {
        return Err(ApiError::invalid(
            Kind::Job,
            name,
            "spec.template.spec.containers",
            "Required value",
        ));
    }
    let spec = &mut job["spec"];
    for (field, default) in [
        ("backoffLimit", json!(6)),
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("manualSelector", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        if spec[field].is_null() {
            spec[field] = default;
        }
    }
    let tie = json!({
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    });
    if spec["selector"].is_null() {
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    }
    let template_metadata = &mut spec["template"]["metadata"];
    if !template_metadata.is_object() {
        *template_metadata = json!({});
    }
    if !template_metadata["labels"].is_object() {
        template_metadata["labels"] = json!({});
    }
    merge(&mut template_metadata["labels"], &tie);
    // A Job without labels takes its template's.
    if job["metadata"]["labels"]
        .as_object()
        .is_none_or(Map::is_empty)
    {
        job["metadata"]["labels"] = job["spec"]["template"]["metadata"]["labels"].clone();
    }
    job["status"] = json!({});
    Ok(())
}

/// The checks a real server would refuse an object for, as far as the
/// tests need them: names, labels, owner references, ConfigMap data.
pub fn validate(kind: Kind, object: &Value) -> Result<(), ApiError> {
    let metadata = &object["metadata"];
    let name = metadata["name"].as_str().unwrap_or_default();
    if let Err(why) = dns_subdomain(name) {
        return Err(ApiError::invalid(
            kind,
            name,
            "metadata.name",
            &format!("Invalid value: \"{name}\": {why}"),
        ));
    }
    if kind == Kind::Job && name.len() > 63 {
        return Err(ApiError::invalid(
            kind,
            name,
            "metadata.name",
            &format!("Invalid value: \"{name}\": must be no more than 63 characters"),
        ));
    }
    for field in ["labels", "annotations"] {
        match &metadata[field] {
            Value::Null => {}
            Value::Object(map) if map.values().all(Value::is_string) => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "metadata.{field} must be a map of strings"
                )));
            }
        }
    }
    match &metadata["ownerReferences"] {
        Value::Null => {}
        Value::Array(references) => {
            for (at, reference) in references.iter().enumerate() {
                for field in ["apiVersion", "kind", "name", "uid"] {
                    if reference[field].as_str().is_none_or(str::is_empty) {
                        return Err(ApiError::invalid(
                            kind,
                            name,
                            &format!("metadata.ownerReferences[{at}].{field}"),
                            "Required value",
                        ));
                    }
                }
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "metadata.ownerReferences must be a list",
            ));
        }
    }
    if kind == Kind::ConfigMap {
        for field in ["data", "binaryData"] {
            match &object[field] {
                Value::Null => {}
                Value::Object(map) if map.values().all(Value::is_string) => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "ConfigMap {field} must be a map of strings"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// An RFC 1123 subdomain: what most objects' names must be.
fn dns_subdomain(name: &str) -> Result<(), &'static str> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ends = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if name.len() > 253 {
        Err("must be no more than 253 characters")
    } else if !valid_chars || !ends(name.bytes().next()) || !ends(name.bytes().last()) {
        Err(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        )
    } else {
        Ok(())
    }
}

/// Applies a merge patch to a stored object: the fields the server owns
/// (name, namespace, uid, creationTimestamp) stay; a `resourceVersion` in
/// the patch is a precondition.
pub fn patch(kind: Kind, current: &Value, patch: &Value) -> Result<Value, ApiError> {
    let name = current["metadata"]["name"].as_str().unwrap_or_default();
    if !patch.is_object() {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    }
    if let Some(wanted) = patch["metadata"]["resourceVersion"].as_str() {
        if Some(wanted) != current["metadata"]["resourceVersion"].as_str() {
            return Err(ApiError::conflict(
                kind,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
    }
    let mut object = current.clone();
    merge(&mut object, patch);
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "resourceVersion",
        "generation",
    ] {
        object["metadata"][field] = current["metadata"][field].clone();
        if current["metadata"][field].is_null() {
            if let Some(m) = object["metadata"].as_object_mut() {
                m.remove(field);
            }
        }
    }
    object["kind"] = current["kind"].clone();
    object["apiVersion"] = current["apiVersion"].clone();
    validate(kind, &object)?;
    Ok(object)
}

/// RFC 7386: objects merge key by key, `null` deletes, anything else
/// (arrays included) replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(fields) = target {
        for (key, value) in changes {
            if value.is_null() {
                fields.remove(key);
            } else {
                merge(fields.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_follow_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge(
            &mut target,
            &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"o": 1}}),
        );
        assert_eq!(
            target,
            json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"o": 1}})
        );
    }

    #[test]
    fn generate_name_and_the_job_defaults_are_filled_in() {
        let job = json!({"metadata": {"generateName": "assess-"},
            "spec": {"template": {"spec": {"containers": []}}}});
        let admitted = admit(Kind::Job, "ns", job).unwrap();
        let name = admitted["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("assess-") && name.len() == 12, "{name}");
        assert_eq!(admitted["spec"]["backoffLimit"], 6);
        assert_eq!(admitted["apiVersion"], "batch/v1");
        assert_eq!(
            admitted["spec"]["template"]["metadata"]["labels"]["job-name"],
            name
        );
    }

    #[test]
    fn bad_objects_are_refused_with_the_real_codes() {
        let long = json!({"metadata": {"name": "x".repeat(64)},
            "spec": {"template": {"spec": {"containers": []}}}});
        assert_eq!(admit(Kind::Job, "ns", long).unwrap_err().code, 422);
        assert_eq!(
            admit(Kind::ConfigMap, "ns", json!([])).unwrap_err().code,
            400
        );
        assert_eq!(
            admit(Kind::ConfigMap, "ns", json!({})).unwrap_err().code,
            422
        );
        let elsewhere = json!({"metadata": {"name": "a", "namespace": "other"}});
        assert_eq!(
            admit(Kind::ConfigMap, "ns", elsewhere).unwrap_err().code,
            400
        );
        let bad_data = json!({"metadata": {"name": "a"}, "data": {"k": 1}});
        assert_eq!(
            admit(Kind::ConfigMap, "ns", bad_data).unwrap_err().code,
            400
        );
        let bad_name = json!({"metadata": {"name": "A_b"}});
        assert_eq!(
            admit(Kind::ConfigMap, "ns", bad_name).unwrap_err().code,
            422
        );
    }

    #[test]
    fn patches_keep_what_the_server_owns() {
        let current = admit(Kind::ConfigMap, "ns", json!({"metadata": {"name": "a"}})).unwrap();
        let patched = patch(
            Kind::ConfigMap,
            &current,
            &json!({"metadata": {"name": "b", "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u"}]}}),
        )
        .unwrap();
        assert_eq!(patched["metadata"]["name"], "a");
        assert_eq!(patched["metadata"]["ownerReferences"][0]["uid"], "u");
        let missing_uid = json!({"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Job", "name": "j"}]}});
        assert_eq!(
            patch(Kind::ConfigMap, &current, &missing_uid)
                .unwrap_err()
                .code,
            422
        );
    }
}
