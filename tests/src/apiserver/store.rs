//! What the test API server holds, like etcd behind a real one: the objects
//! by kind, namespace and name; one resourceVersion counter across kinds,
//! bumped on every change; and a bounded history of changes, so a watch can
//! resume from a resourceVersion until the history is compacted past it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The kinds the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    ConfigMap,
    Job,
    Pod,
}

impl Kind {
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::ConfigMap | Kind::Pod => "v1",
            Kind::Job => "batch/v1",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Job => "Job",
            Kind::Pod => "Pod",
        }
    }

    /// The resource as errors name it (`jobs.batch "x" not found`).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmaps",
            Kind::Job => "jobs.batch",
            Kind::Pod => "pods",
        }
    }

    /// The kind as validation errors name it (`Job.batch "x" is invalid`).
    pub fn qualified(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Job => "Job.batch",
            Kind::Pod => "Pod",
        }
    }
}

/// A watch event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as the history keeps it and watches receive it.
#[derive(Debug, Clone)]
pub struct Change {
    pub resource_version: u64,
    pub kind: Kind,
    pub namespace: String,
    pub event: EventType,
    /// The object after the change (for DELETED: its last state, with the
    /// deletion's resourceVersion).
    pub object: Value,
    /// The object before it (none for ADDED): a watch with a selector turns
    /// a MODIFIED that enters or leaves the selection into ADDED or DELETED.
    pub previous: Option<Value>,
}

/// How many changes the history keeps before it forgets the oldest.
const HISTORY: usize = 10_000;

type Key = (Kind, String, String);

pub struct Store {
    resource_version: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    /// Changes at or below this resourceVersion are forgotten: a watch
    /// from before it gets 410 Expired.
    compacted: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

/// The changes after a resourceVersion, and a receiver of the later ones.
pub type Since = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// A watch from a resourceVersion the history no longer covers.
#[derive(Debug)]
pub struct Expired {
    pub oldest: u64,
}

impl Store {
    pub fn new() -> Store {
        Store {
            resource_version: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted: 1,
            changes: broadcast::channel(4096).0,
        }
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(kind, namespace.to_string(), name.to_string()))
    }

    /// The objects of `kind` in `namespace`, by name.
    pub fn list(&self, kind: Kind, namespace: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, ns, _), _)| *k == kind && ns == namespace)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Stores a new object (its metadata already complete but for the
    /// resourceVersion); `None` when one by that name exists.
    pub fn insert(&mut self, kind: Kind, namespace: &str, mut object: Value) -> Option<Value> {
        let name = object["metadata"]["name"].as_str()?.to_string();
        let key = (kind, namespace.to_string(), name);
        if self.objects.contains_key(&key) {
            return None;
        }
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects.insert(key, object.clone());
        self.record(rv, kind, namespace, EventType::Added, object.clone(), None);
        Some(object)
    }

    /// Changes a stored object with `change`; `None` when there is none.
    /// A change that leaves the object as it was is no change (no new
    /// resourceVersion, no event), as on a real server.
    pub fn update(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let key = (kind, namespace.to_string(), name.to_string());
        let previous = self.objects.get(&key)?.clone();
        let mut object = previous.clone();
        change(&mut object);
        object["metadata"]["resourceVersion"] = previous["metadata"]["resourceVersion"].clone();
        if object == previous {
            return Some(object);
        }
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects.insert(key, object.clone());
        self.record(
            rv,
            kind,
            namespace,
            EventType::Modified,
            object.clone(),
            Some(previous),
        );
        Some(object)
    }

    /// Deletes a stored object and returns its last state.
    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let mut object = self
            .objects
            .remove(&(kind, namespace.to_string(), name.to_string()))?;
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(
            rv,
            kind,
            namespace,
            EventType::Deleted,
            object.clone(),
            None,
        );
        Some(object)
    }

    /// The changes after `resource_version` still in the history, and a
    /// receiver of every later one (taken together, so none falls between).
    pub fn since(&self, resource_version: u64) -> Result<Since, Expired> {
        if resource_version < self.compacted {
            return Err(Expired {
                oldest: self.compacted,
            });
        }
        let changes = self
            .history
            .iter()
            .filter(|c| c.resource_version > resource_version)
            .cloned()
            .collect();
        Ok((changes, self.changes.subscribe()))
    }

    /// A receiver of every later change.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// Forgets the whole history, as etcd compaction does: a watch from any
    /// resourceVersion before now gets 410 Expired.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.resource_version;
    }

    fn bump(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    fn record(
        &mut self,
        rv: u64,
        kind: Kind,
        namespace: &str,
        event: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        let change = Arc::new(Change {
            resource_version: rv,
            kind,
            namespace: namespace.to_string(),
            event,
            object,
            previous,
        });
        if self.history.len() == HISTORY {
            if let Some(oldest) = self.history.pop_front() {
                self.compacted = oldest.resource_version;
            }
        }
        self.history.push_back(change.clone());
        // No receiver is fine: nobody watches.
        let _ = self.changes.send(change);
    }
}

/// The alphabet of generated name suffixes (the API server's: no vowels,
/// no look-alikes).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five random characters, as `generateName` and the Job controller append.
pub fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..5)
        .map(|_| SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())] as char)
        .collect()
}

/// A name from `generateName`: the base cut to 58 characters (so the name
/// fits 63) and a random suffix, as the API server's name generator does.
pub fn generate_name(base: &str) -> String {
    let cut = base
        .char_indices()
        .nth(58)
        .map(|(at, _)| &base[..at])
        .unwrap_or(base);
    format!("{cut}{}", random_suffix())
}

/// A random version-4 UUID.
pub fn uid() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][usize::from(bytes[8] & 3)],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Now, as Kubernetes writes times (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// `at` as Kubernetes writes times.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_fit_a_label_and_use_the_servers_alphabet() {
        let name = generate_name(&"x".repeat(80));
        assert_eq!(name.len(), 63);
        let short = generate_name("shortlist-");
        assert_eq!(short.len(), 15);
        assert!(short[10..].bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
    }

    #[test]
    fn uids_look_like_uuids() {
        let id = uid();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
    }

    #[test]
    fn the_history_replays_and_compaction_expires_it() {
        let mut store = Store::new();
        let cm = json!({"metadata": {"name": "a"}});
        let added = store.insert(Kind::ConfigMap, "ns", cm.clone()).unwrap();
        assert!(store.insert(Kind::ConfigMap, "ns", cm).is_none());
        let rv: u64 = added["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        store.update(Kind::ConfigMap, "ns", "a", |o| {
            o["data"] = json!({"k": "v"})
        });
        let (changes, _) = store.since(rv - 1).unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].event, EventType::Modified);
        store.compact();
        assert!(store.since(rv).is_err());
        assert!(store.since(store.resource_version()).is_ok());
    }

    #[test]
    fn times_are_whole_seconds() {
        let at = now();
        assert!(at.ends_with('Z') && !at.contains('.'), "{at}");
    }
}
