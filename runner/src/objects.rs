//! The two objects a listing becomes: its ConfigMap (the template's, with
//! the profile key replaced by the listing, byte for byte) and its Job (the
//! template's, its profile volume pointing at that ConfigMap), both with
//! `generateName`, the recommended labels and the listing's id.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::listing::Listing;
use crate::template::Template;

/// The label every object of a listing carries: [`Listing::label_value`].
pub const LISTING_LABEL: &str = "shortlist.dev/listing";
/// One `runner submit`'s objects: finds what an ambiguous failure (a
/// create whose answer was lost) may have created anyway.
pub const SUBMISSION_LABEL: &str = "shortlist.dev/submission";
/// The listing's id as given (a label value cannot hold every id).
pub const LISTING_ID_ANNOTATION: &str = "shortlist.dev/listing-id";
/// `app.kubernetes.io/managed-by` of what the runner creates.
pub const MANAGED_BY: &str = "shortlist-runner";

/// What Kubernetes accepts in one ConfigMap: 1 MiB of keys and values
/// (`MaxConfigMapSize`, checked by the API server on create).
pub const MAX_CONFIG_MAP_BYTES: usize = 1024 * 1024;

/// A listing too large to be mounted: refused before anything is created.
#[derive(Debug, thiserror::Error)]
#[error(
    "{source_name}: the listing's ConfigMap would hold {total} bytes ({profile_key}: {profile} bytes, the template's other keys: {other}), over Kubernetes' limit of {limit} bytes for a ConfigMap; nothing was created"
)]
pub struct TooLarge {
    pub source_name: String,
    pub profile_key: String,
    pub total: usize,
    pub profile: usize,
    pub other: usize,
    pub limit: usize,
}

/// A listing's objects, before the API server names them.
#[derive(Debug, Clone)]
pub struct Objects {
    pub namespace: String,
    pub config_map: Value,
    /// The Job, its profile volume naming no ConfigMap yet: see
    /// [`Objects::job_for`].
    pub job: Value,
    profile_volume: String,
}

impl Objects {
    /// Builds both; `submission` is this submission's random token.
    pub fn build(
        template: &Template,
        listing: &Listing,
        namespace: &str,
        submission: &str,
    ) -> Result<Objects, TooLarge> {
        let profile = String::from_utf8_lossy(&listing.profile_json).into_owned();
        let other: usize = template
            .other_keys
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        let total = other + template.profile_key.len() + profile.len();
        if total > MAX_CONFIG_MAP_BYTES {
            return Err(TooLarge {
                source_name: listing.source.clone(),
                profile_key: template.profile_key.clone(),
                total,
                profile: profile.len(),
                other,
                limit: MAX_CONFIG_MAP_BYTES,
            });
        }
        let mut data: BTreeMap<String, String> = template.other_keys.clone();
        data.insert(template.profile_key.clone(), profile);

        let mut labels: serde_json::Map<String, Value> = template.job["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let instance = format!("shortlist-{}", listing.slug());
        labels.insert("app.kubernetes.io/instance".into(), json!(instance));
        labels.insert("app.kubernetes.io/managed-by".into(), json!(MANAGED_BY));
        labels.insert(LISTING_LABEL.into(), json!(listing.label_value()));
        labels.insert(SUBMISSION_LABEL.into(), json!(submission));
        let annotations = json!({ LISTING_ID_ANNOTATION: listing.id });
        let metadata = json!({
            "generateName": listing.generate_name(),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        });

        let config_map = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": data,
        });

        let mut job = template.job.clone();
        job["metadata"] = metadata;
        if let Some(pod_labels) = job["spec"]["template"]["metadata"]["labels"].as_object_mut() {
            pod_labels.insert("app.kubernetes.io/instance".into(), json!(instance));
            pod_labels.insert("app.kubernetes.io/managed-by".into(), json!(MANAGED_BY));
            pod_labels.insert(LISTING_LABEL.into(), json!(listing.label_value()));
        }
        Ok(Objects {
            namespace: namespace.to_string(),
            config_map,
            job,
            profile_volume: template.profile_volume.clone(),
        })
    }

    /// The Job with its profile volume naming `config_map`.
    pub fn job_for(&self, config_map: &str) -> Value {
        let mut job = self.job.clone();
        for volume in job["spec"]["template"]["spec"]["volumes"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if volume["name"] == self.profile_volume.as_str() {
                volume["configMap"]["name"] = json!(config_map);
            }
        }
        job
    }

    /// Both objects as YAML documents (`runner render`). The ConfigMap's
    /// name is the API server's to choose, so the Job shows the
    /// `generateName` with `xxxxx` in its place.
    pub fn to_yaml(&self) -> String {
        let generate_name = self.config_map["metadata"]["generateName"]
            .as_str()
            .unwrap_or_default();
        let placeholder = format!("{generate_name}xxxxx");
        let mut out = String::from(
            "# What `runner submit` creates, in this order: the ConfigMap, then the Job\n\
             # (its profile volume names the ConfigMap; `xxxxx` is the API server's\n\
             # generated suffix), then the ConfigMap's ownerReference to the Job.\n",
        );
        for object in [&self.config_map, &self.job_for(&placeholder)] {
            out.push_str("---\n");
            out.push_str(&serde_yaml_ng::to_string(object).unwrap_or_default());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(bytes: &[u8]) -> Listing {
        Listing::from_json(bytes, "l.json").unwrap()
    }

    #[test]
    fn the_configmap_holds_the_listing_byte_for_byte_and_the_templates_config() {
        let template = Template::embedded().unwrap();
        let bytes = b"{\"text\": \"Two bed flat\",  \"metadata\": {\"id\": \"Flat 9\"}}\n";
        let objects = Objects::build(&template, &listing(bytes), "ns1", "tok").unwrap();
        let data = &objects.config_map["data"];
        assert_eq!(data["profile.json"].as_str().unwrap().as_bytes(), bytes);
        assert_eq!(
            data["config.json"].as_str(),
            template.other_keys.get("config.json").map(|s| s.as_str())
        );
        let meta = &objects.config_map["metadata"];
        assert_eq!(meta["generateName"], "shortlist-flat-9-");
        assert_eq!(meta["namespace"], "ns1");
        assert_eq!(
            meta["labels"][LISTING_LABEL],
            crate::listing::label_value("Flat 9")
        );
        assert_eq!(meta["annotations"][LISTING_ID_ANNOTATION], "Flat 9");
        assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], MANAGED_BY);

        let job = objects.job_for("shortlist-flat-9-abcde");
        assert!(job["metadata"].get("name").is_none());
        let volumes = job["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap();
        let profile = volumes.iter().find(|v| v["name"] == "profile").unwrap();
        assert_eq!(profile["configMap"]["name"], "shortlist-flat-9-abcde");
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"][LISTING_LABEL],
            meta["labels"][LISTING_LABEL]
        );
        // The rest of the pod template is the template's.
        let mut expected = template.job["spec"]["template"]["spec"].clone();
        for v in expected["volumes"].as_array_mut().unwrap() {
            if v["name"] == "profile" {
                v["configMap"]["name"] = json!("shortlist-flat-9-abcde");
            }
        }
        assert_eq!(job["spec"]["template"]["spec"], expected);
    }

    #[test]
    fn a_listing_over_the_configmap_limit_is_refused_naming_the_sizes() {
        let template = Template::embedded().unwrap();
        let text = "x".repeat(MAX_CONFIG_MAP_BYTES);
        let bytes = serde_json::to_vec(&json!({"text": text})).unwrap();
        let error = Objects::build(&template, &listing(&bytes), "ns", "t").unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("l.json: the listing's ConfigMap would hold"),
            "{message}"
        );
        assert!(message.contains("nothing was created"));
        assert!(message.contains(&format!("{MAX_CONFIG_MAP_BYTES} bytes")));
    }
}
