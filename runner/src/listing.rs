//! One listing to submit: the profile as the bytes the pod will mount, its
//! id, and the names and label values derived from that id.
//!
//! The id is the assessor's own ([`stable_id`]: `metadata.id`, else a
//! content hash), so the runner, the result file and the relay's
//! idempotency key all speak of the same listing.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};
use shortlist_contract::profile::stable_id;
use shortlist_contract::{Profile, ProfileError};

/// Where every object of a listing's Job starts its name.
pub const NAME_PREFIX: &str = "shortlist-";
/// Kubernetes appends this many random characters to a `generateName`.
const GENERATED_SUFFIX: usize = 5;
/// A Job's name must fit the `job-name` label of its pods: 63 characters.
const MAX_JOB_NAME: usize = 63;

/// A validated listing.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The profile's id, as the assessor will report it.
    pub id: String,
    /// The bytes of the mounted `profile.json`.
    pub profile_json: Vec<u8>,
    /// Where it came from, for messages (a path, or "request body").
    pub source: String,
}

impl Listing {
    /// Reads and validates a listing file (a JSON profile, or a `.txt` /
    /// `.md` listing), with the assessor's own checks and cap: a FIFO or a
    /// device is refused, not read.
    pub fn read(path: &Path) -> Result<Listing, ProfileError> {
        let (_, value, bytes) = Profile::read_listing_as_json(path)?;
        Ok(Listing::from_parts(
            &value,
            bytes,
            path.display().to_string(),
        ))
    }

    /// Validates a profile sent as JSON (the HTTP API's request body).
    pub fn from_json(bytes: &[u8], source: &str) -> Result<Listing, ProfileError> {
        let (_, value) = Profile::from_slice(bytes, source)?;
        Ok(Listing::from_parts(
            &value,
            bytes.to_vec(),
            source.to_string(),
        ))
    }

    fn from_parts(value: &Value, profile_json: Vec<u8>, source: String) -> Listing {
        Listing {
            id: stable_id(value),
            profile_json,
            source,
        }
    }

    /// `generateName` of the listing's ConfigMap and Job:
    /// `shortlist-<slug>-`, short enough that the generated name fits 63
    /// characters.
    pub fn generate_name(&self) -> String {
        format!("{NAME_PREFIX}{}-", self.slug())
    }

    /// The id as a DNS-1123 label part: lower-case alphanumerics and `-`,
    /// cut to what a Job name leaves room for; `listing-<hash>` when the id
    /// has no usable character.
    pub fn slug(&self) -> String {
        let room = MAX_JOB_NAME - GENERATED_SUFFIX - 1 - NAME_PREFIX.len();
        let mut slug = String::new();
        for c in self.id.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        slug.truncate(room);
        let slug = slug.trim_end_matches('-').to_string();
        if slug.is_empty() {
            format!("listing-{}", short_hash(&self.id))
        } else {
            slug
        }
    }

    /// The value of the `shortlist.dev/listing` label, by which the
    /// listing's Jobs are found: the id itself when it is a valid label
    /// value (most ids are), else its slug and a hash of it, so two ids
    /// never share a label.
    pub fn label_value(&self) -> String {
        label_value(&self.id)
    }
}

/// See [`Listing::label_value`]; also used to look a listing up by id.
pub fn label_value(id: &str) -> String {
    if is_label_value(id) {
        return id.to_string();
    }
    let mut slug: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    slug.truncate(40);
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        format!("h-{}", short_hash(id))
    } else {
        format!("{slug}-{}", short_hash(id))
    }
}

/// A Kubernetes label value: at most 63 characters, alphanumerics, `-`,
/// `_` and `.`, starting and ending with an alphanumeric.
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    shortlist_contract::hex::encode(&digest[..5])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(id: &str) -> Listing {
        Listing {
            id: id.into(),
            profile_json: vec![],
            source: "t".into(),
        }
    }

    #[test]
    fn names_fit_kubernetes_limits_whatever_the_id() {
        for id in [
            "s01",
            "Redland Flat #12",
            "---",
            "日本語",
            &"x".repeat(500),
            "a.b_c",
            "sha256-0123456789abcdef",
        ] {
            let l = listing(id);
            let name = l.generate_name();
            assert!(name.len() + 5 <= 63, "{id}: {name}");
            assert!(name.starts_with("shortlist-"));
            assert!(
                name.trim_end_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.contains("--"), "{name}");
            assert!(
                is_label_value(&l.label_value()),
                "{id}: {}",
                l.label_value()
            );
        }
        assert_eq!(listing("Redland Flat #12").slug(), "redland-flat-12");
        assert_eq!(listing("s01").label_value(), "s01");
    }

    #[test]
    fn ids_that_are_no_label_values_keep_distinct_labels() {
        assert_ne!(label_value("a b"), label_value("a/b"));
        assert!(listing("---").slug().starts_with("listing-"));
    }
}
