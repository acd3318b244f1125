//! The garbage collector, as far as deletions go: deleting an object with
//! its dependents (every object whose `ownerReferences` name its uid), or
//! orphaning them. Deleting a Job also stops its controller task, which
//! kills its running pod.

use serde_json::Value;

use super::store::Kind;
use super::{Shared, lock};

/// A deletion's `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Dependents lose their owner reference and stay.
    Orphan,
    /// Dependents are deleted after the owner.
    Background,
    /// Dependents are deleted before the owner (here: at once too).
    Foreground,
}

/// Deletes `name` as `policy` says; its last state, or `None` when it was
/// not there.
pub fn delete(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    name: &str,
    policy: Policy,
) -> Option<Value> {
    let removed = shared.store().remove(kind, namespace, name)?;
    let uid = removed["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if policy == Policy::Orphan {
        orphan(shared, namespace, &uid);
        return Some(removed);
    }
    let mut owners = vec![uid];
    while let Some(owner) = owners.pop() {
        if let Some(run) = lock(&shared.runs).remove(&owner) {
            run.abort();
        }
        let mut store = shared.store();
        for dependent_kind in [Kind::Pod, Kind::ConfigMap, Kind::Job] {
            for dependent in store.list(dependent_kind, namespace) {
                if owned_by(&dependent, &owner) {
                    let name = dependent["metadata"]["name"].as_str().unwrap_or_default();
                    if let Some(gone) = store.remove(dependent_kind, namespace, name) {
                        owners.push(
                            gone["metadata"]["uid"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        );
                    }
                }
            }
        }
    }
    Some(removed)
}

fn owned_by(object: &Value, owner_uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner_uid))
}

/// Removes the owner reference to `owner_uid` from every dependent.
fn orphan(shared: &Shared, namespace: &str, owner_uid: &str) {
    let mut store = shared.store();
    for kind in [Kind::Pod, Kind::ConfigMap, Kind::Job] {
        for dependent in store.list(kind, namespace) {
            if !owned_by(&dependent, owner_uid) {
                continue;
            }
            let name = dependent["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            store.update(kind, namespace, &name, |object| {
                if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != owner_uid);
                }
            });
        }
    }
}
