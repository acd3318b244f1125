//! The Job template: the project's own rendered `deploy/` manifests, not a
//! second hand-written copy. `deploy/rendered/base.yaml` (kept equal to
//! `kubectl kustomize deploy/base` by scripts/check-deploy.sh) is embedded
//! at build time; `--template FILE` takes another rendered overlay.
//!
//! From it the runner needs: the one Job, the assessor container (the one
//! reading `PROFILE_PATH`), the volume mounted where that path points (a
//! ConfigMap volume) and that ConfigMap's other keys (`config.json`), so a
//! listing's ConfigMap is the template's with `profile.json` replaced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// `deploy/rendered/base.yaml` as built.
pub const EMBEDDED: &str = include_str!("../../deploy/rendered/base.yaml");
/// Where the embedded template came from, for messages.
pub const EMBEDDED_SOURCE: &str = "deploy/rendered/base.yaml (embedded)";

/// A template file larger than this is refused: a rendered overlay is a
/// few KiB.
const MAX_TEMPLATE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a template cannot be used. Each names the template and what was
/// expected of it.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path}: cannot read the template: {error}")]
    Unreadable {
        path: PathBuf,
        error: shortlist_contract::regular_file::ReadError,
    },
    #[error("{source_name}: not YAML: {error}")]
    NotYaml {
        source_name: String,
        error: serde_yaml_ng::Error,
    },
    #[error(
        "{source_name}: expected exactly one Job, found {found} (a batch overlay's Indexed Job is not a per-listing template)"
    )]
    JobCount { source_name: String, found: usize },
    #[error("{source_name}: {problem}")]
    Shape {
        source_name: String,
        problem: String,
    },
}

/// A usable Job template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The template's Job, as rendered.
    pub job: Value,
    /// The namespace its objects go to unless told otherwise.
    pub namespace: String,
    /// The container that judges (exit codes and the termination message
    /// are read from it).
    pub assessor_container: String,
    /// The pod volume the profile is mounted from.
    pub profile_volume: String,
    /// The key of that volume's ConfigMap that holds the profile.
    pub profile_key: String,
    /// The template ConfigMap's other keys (`config.json`), as text.
    pub other_keys: BTreeMap<String, String>,
    pub source_name: String,
}

impl Template {
    /// The template built into the binary.
    pub fn embedded() -> Result<Template, TemplateError> {
        Template::parse(EMBEDDED, EMBEDDED_SOURCE)
    }

    /// A rendered overlay file (`kubectl kustomize DIR > FILE`).
    pub fn read(path: &Path) -> Result<Template, TemplateError> {
        let text = shortlist_contract::regular_file::read_to_string(path, MAX_TEMPLATE_BYTES)
            .map_err(|error| TemplateError::Unreadable {
                path: path.to_path_buf(),
                error,
            })?;
        Template::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Template, TemplateError> {
        let mut objects = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            let value: Value = serde::Deserialize::deserialize(document).map_err(|error| {
                TemplateError::NotYaml {
                    source_name: source_name.to_string(),
                    error,
                }
            })?;
            if !value.is_null() {
                objects.push(value);
            }
        }
        let shape = |problem: String| TemplateError::Shape {
            source_name: source_name.to_string(),
            problem,
        };
        let jobs: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Job").collect();
        if jobs.len() != 1 {
            return Err(TemplateError::JobCount {
                source_name: source_name.to_string(),
                found: jobs.len(),
            });
        }
        let job = jobs[0].clone();
        let completions = job["spec"]["completions"].as_u64().unwrap_or(1);
        if completions != 1 || job["spec"]["completionMode"] == "Indexed" {
            return Err(shape(format!(
                "its Job runs {completions} completions{} (a batch overlay); a per-listing template runs one pod for one profile",
                if job["spec"]["completionMode"] == "Indexed" {
                    ", Indexed"
                } else {
                    ""
                }
            )));
        }
        let pod = &job["spec"]["template"]["spec"];
        let containers = pod["containers"].as_array().cloned().unwrap_or_default();
        let env_of = |c: &Value, name: &str| -> Option<String> {
            c["env"].as_array()?.iter().find_map(|e| {
                (e["name"] == name)
                    .then(|| e["value"].as_str().map(str::to_string))
                    .flatten()
            })
        };
        let (assessor, profile_path) = containers
            .iter()
            .find_map(|c| env_of(c, "PROFILE_PATH").map(|p| (c, p)))
            .ok_or_else(|| {
                shape("no container of the Job sets PROFILE_PATH (which container judges, and where does it read the profile?)".into())
            })?;
        let assessor_container = assessor["name"].as_str().unwrap_or_default().to_string();
        let mount = assessor["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let path = m["mountPath"].as_str()?.trim_end_matches('/');
                let rest = profile_path.strip_prefix(path)?.strip_prefix('/')?;
                Some((m["name"].as_str()?.to_string(), path.len(), rest.to_string()))
            })
            .max_by_key(|(_, len, _)| *len)
            .ok_or_else(|| {
                shape(format!(
                    "container {assessor_container}: PROFILE_PATH {profile_path} is under none of its volumeMounts"
                ))
            })?;
        let (profile_volume, _, profile_key) = mount;
        let volume = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == profile_volume.as_str())
            .ok_or_else(|| shape(format!("the pod has no volume {profile_volume}")))?;
        if volume["configMap"]["items"].is_array() {
            return Err(shape(format!(
                "volume {profile_volume}: configMap items are not supported (the listing's ConfigMap is mounted whole)"
            )));
        }
        let config_map_name = volume["configMap"]["name"].as_str().ok_or_else(|| {
            shape(format!(
                "volume {profile_volume} (where PROFILE_PATH {profile_path} is) is not a configMap volume"
            ))
        })?;
        let mut other_keys = BTreeMap::new();
        if let Some(config_map) = objects
            .iter()
            .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == config_map_name)
        {
            for (key, value) in config_map["data"].as_object().into_iter().flatten() {
                if key != &profile_key {
                    other_keys.insert(key.clone(), value.as_str().unwrap_or_default().to_string());
                }
            }
        }
        let namespace = job["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        Ok(Template {
            job,
            namespace,
            assessor_container,
            profile_volume,
            profile_key,
            other_keys,
            source_name: source_name.to_string(),
        })
    }

    /// The Job's `activeDeadlineSeconds`: no pod of it runs longer.
    pub fn active_deadline(&self) -> Option<std::time::Duration> {
        self.job["spec"]["activeDeadlineSeconds"]
            .as_u64()
            .map(std::time::Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_template_is_the_base_job_with_its_profile_configmap() {
        let t = Template::embedded().expect("deploy/rendered/base.yaml is a usable template");
        assert_eq!(t.namespace, "shortlist");
        assert_eq!(t.assessor_container, "assessor");
        assert_eq!(t.profile_volume, "profile");
        assert_eq!(t.profile_key, "profile.json");
        assert!(
            t.other_keys.contains_key("config.json"),
            "{:?}",
            t.other_keys.keys()
        );
        assert!(t.job["spec"]["ttlSecondsAfterFinished"].as_u64().is_some());
        assert!(t.active_deadline().is_some());
    }

    #[test]
    fn a_template_without_one_job_is_refused_with_its_name() {
        let batch = Template::parse(
            "kind: Job\nmetadata: {name: a}\n---\nkind: Job\nmetadata: {name: b}\n",
            "two.yaml",
        )
        .unwrap_err();
        assert!(
            batch
                .to_string()
                .contains("two.yaml: expected exactly one Job, found 2"),
            "{batch}"
        );
        let none = Template::parse("kind: ConfigMap\n", "none.yaml").unwrap_err();
        assert!(none.to_string().contains("found 0"));
        let no_profile = Template::parse(
            "kind: Job\nspec: {template: {spec: {containers: [{name: a}]}}}\n",
            "x.yaml",
        )
        .unwrap_err();
        assert!(
            no_profile.to_string().contains("PROFILE_PATH"),
            "{no_profile}"
        );
    }
}
