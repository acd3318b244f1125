//! The rendered manifests (`deploy/rendered/*.yaml`, written by
//! `scripts/check-deploy.sh` from the kustomize overlays), read as JSON
//! values: the harness runs what the cluster would run, not a hand-copied
//! env list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

/// Every object of one rendered overlay.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub path: PathBuf,
    pub objects: Vec<Value>,
}

impl Manifests {
    /// `deploy/rendered/<name>.yaml` of this workspace.
    pub fn rendered(name: &str) -> Manifests {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/rendered")
            .join(format!("{name}.yaml"));
        Manifests::load(&path)
    }

    pub fn load(path: &Path) -> Manifests {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
            panic!(
                "{}: cannot read: {e} (run scripts/check-deploy.sh --update)",
                path.display()
            )
        });
        let mut objects = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
            if !value.is_null() {
                objects.push(value);
            }
        }
        Manifests {
            path: path.to_path_buf(),
            objects,
        }
    }

    fn find(&self, kind: &str, name: Option<&str>) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && name.is_none_or(|n| o["metadata"]["name"] == n))
    }

    /// The one Job.
    pub fn job(&self) -> &Value {
        self.find("Job", None)
            .unwrap_or_else(|| panic!("{}: no Job", self.path.display()))
    }

    pub fn job_mut(&mut self) -> &mut Value {
        let path = self.path.clone();
        self.objects
            .iter_mut()
            .find(|o| o["kind"] == "Job")
            .unwrap_or_else(|| panic!("{}: no Job", path.display()))
    }

    /// A ConfigMap's `data` and `binaryData`, as bytes.
    pub fn config_map(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        let object = self
            .find("ConfigMap", Some(name))
            .unwrap_or_else(|| panic!("{}: no ConfigMap {name}", self.path.display()));
        let mut data = BTreeMap::new();
        for (key, value) in object["data"].as_object().into_iter().flatten() {
            data.insert(
                key.clone(),
                value.as_str().unwrap_or_default().as_bytes().to_vec(),
            );
        }
        for (key, value) in object["binaryData"].as_object().into_iter().flatten() {
            data.insert(key.clone(), decode(value));
        }
        data
    }

    /// A Secret's `data` (base64) and `stringData`, as bytes.
    pub fn secret(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        let object = self
            .find("Secret", Some(name))
            .unwrap_or_else(|| panic!("{}: no Secret {name}", self.path.display()));
        let mut data = BTreeMap::new();
        for (key, value) in object["data"].as_object().into_iter().flatten() {
            data.insert(key.clone(), decode(value));
        }
        for (key, value) in object["stringData"].as_object().into_iter().flatten() {
            data.insert(
                key.clone(),
                value.as_str().unwrap_or_default().as_bytes().to_vec(),
            );
        }
        data
    }

    /// Replaces one key of a Secret, as a deployment replaces the base's
    /// placeholders with its own secrets.
    pub fn set_secret_key(&mut self, name: &str, key: &str, value: &str) {
        let object = self
            .objects
            .iter_mut()
            .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Secret {name}"));
        if let Some(data) = object["stringData"].as_object_mut() {
            data.remove(key);
        }
        object["data"][key] =
            Value::String(base64::engine::general_purpose::STANDARD.encode(value));
    }

    /// Replaces one key of a ConfigMap (e.g. the profile under test).
    pub fn set_config_map_key(&mut self, name: &str, key: &str, value: &str) {
        let object = self
            .objects
            .iter_mut()
            .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no ConfigMap {name}"));
        object["data"][key] = Value::String(value.to_string());
    }
}

fn decode(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .expect("valid base64 in the manifest")
}
