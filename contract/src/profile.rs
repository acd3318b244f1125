//! Profile v1: the document a Job mounts for the assessor to judge.
//!
//! Compatible with the original Shortlist schema: `text` is required and
//! non-empty; `images` and `metadata` are optional; unknown top-level fields
//! are kept (and written back into the result) rather than rejected, so older
//! and newer producers keep working.
//!
//! Parsing goes through [`Profile::from_slice`], which checks the shape by hand
//! before deserialising so that every error names the file, the field and what
//! was expected (`profile.json: field "text" must be a string, found number`)
//! instead of serde's positional messages.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::ErrorKind;

/// Profiles larger than this are refused before parsing: a listing is a few
/// KiB; 16 MiB leaves room for inline `data:` images without letting a bad
/// mount exhaust the pod's memory.
pub const MAX_PROFILE_BYTES: u64 = 16 * 1024 * 1024;

/// A profile as mounted: a listing, an application, an ad.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Shortlist profile v1", extend("$id" = "https://shortlist.dev/schema/profile.v1.json"))]
pub struct Profile {
    /// The free text to judge (the listing description). Required, non-empty.
    #[schemars(length(min = 1))]
    pub text: String,
    /// Images of the profile: https URLs, `data:` URIs, or paths relative to
    /// the profile file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Free-form facts; commonly `id`, `url`, `price`, `location`, `summary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Unknown top-level fields, kept as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why a profile could not be read or accepted. Every variant names the
/// source (a path, or `<stdin>`).
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{source_name}: no such file")]
    Missing { source_name: String },
    #[error("{source_name}: is a directory, expected a profile JSON file")]
    IsDirectory { source_name: String },
    #[error("{source_name}: cannot read: {error}")]
    Unreadable {
        source_name: String,
        error: std::io::Error,
    },
    /// A FIFO, a device, a socket: never opened for reading (a FIFO would
    /// block, a device may never end).
    #[error("{source_name}: is {found}, expected a regular profile JSON file")]
    NotRegular {
        source_name: String,
        found: &'static str,
    },
    /// `size` is unknown when the file did not say it up front (it grew, or
    /// a stream line was cut off).
    #[error("{source_name}: {}larger than the {limit}-byte limit for a profile", match .size { Some(size) => format!("is {size} bytes, "), None => "is ".to_string() })]
    TooLarge {
        source_name: String,
        size: Option<u64>,
        limit: u64,
    },
    #[error("{source_name}: is empty, expected a JSON object with a \"text\" field")]
    Empty { source_name: String },
    #[error("{source_name}: is not valid JSON at line {line}, column {column}: {message}")]
    NotJson {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{source_name}: expected a JSON object with a \"text\" field, found {found}")]
    NotAnObject { source_name: String, found: String },
    /// A plain-text listing that is not UTF-8.
    #[error("{source_name}: is not UTF-8 text (byte {offset}); a plain-text listing must be UTF-8")]
    NotUtf8 { source_name: String, offset: usize },
    #[error("{source_name}: field \"{field}\" {problem}")]
    Field {
        source_name: String,
        field: String,
        problem: String,
    },
}

impl ProfileError {
    /// The stable `error.kind` written into an error result.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProfileError::Missing { .. }
            | ProfileError::IsDirectory { .. }
            | ProfileError::NotRegular { .. }
            | ProfileError::Unreadable { .. } => ErrorKind::ProfileUnreadable,
            _ => ErrorKind::ProfileInvalid,
        }
    }
}

/// Whether a listing file is plain text (or Markdown) rather than a JSON
/// profile, by its name: `.txt`, `.md`, `.markdown` (any case).
pub fn is_text_listing(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| matches!(e.as_str(), "txt" | "md" | "markdown"))
}

/// A profile file's bytes: a regular file (after following links) of at
/// most [`MAX_PROFILE_BYTES`], read with that cap (see
/// [`crate::regular_file`]).
fn read_capped(path: &Path, source_name: &str) -> Result<Vec<u8>, ProfileError> {
    use crate::regular_file::{self, ReadError};
    let source_name = source_name.to_string();
    regular_file::read(path, MAX_PROFILE_BYTES).map_err(|error| match error {
        ReadError::Missing => ProfileError::Missing {
            source_name: source_name.clone(),
        },
        ReadError::NotRegular {
            found: "a directory",
        } => ProfileError::IsDirectory {
            source_name: source_name.clone(),
        },
        ReadError::NotRegular { found } => ProfileError::NotRegular {
            source_name: source_name.clone(),
            found,
        },
        ReadError::TooLarge { size, limit } => ProfileError::TooLarge {
            source_name: source_name.clone(),
            size,
            limit,
        },
        ReadError::Io(error) => ProfileError::Unreadable {
            source_name: source_name.clone(),
            error,
        },
    })
}

/// The JSON type name of a value, for error messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Profile {
    /// Reads and validates a profile file: a regular file (after following
    /// links) of at most [`MAX_PROFILE_BYTES`], read with that cap (see
    /// [`crate::regular_file`]), so a FIFO or `/dev/zero` mounted as the
    /// profile is refused at once instead of blocking or filling memory.
    pub fn read_file(path: &Path) -> Result<(Profile, Value), ProfileError> {
        let source_name = path.display().to_string();
        let bytes = read_capped(path, &source_name)?;
        Profile::from_slice(&bytes, &source_name)
    }

    /// Reads a listing file by its name: a plain-text or Markdown one
    /// ([`is_text_listing`]: `.txt`, `.md`) becomes the profile's `text`
    /// ([`Profile::from_text`]); anything else is a JSON profile
    /// ([`Profile::read_file`]). The same checks and cap apply to both.
    pub fn read_listing(path: &Path) -> Result<(Profile, Value), ProfileError> {
        if is_text_listing(path) {
            Profile::read_text_file(path)
        } else {
            Profile::read_file(path)
        }
    }

    /// Like [`Profile::read_listing`], and also the bytes a mounted
    /// `profile.json` should hold for it: a JSON profile's own bytes, byte
    /// for byte (what the assessor will read is what was checked), or a
    /// plain-text listing's profile as JSON.
    pub fn read_listing_as_json(path: &Path) -> Result<(Profile, Value, Vec<u8>), ProfileError> {
        let source_name = path.display().to_string();
        let bytes = read_capped(path, &source_name)?;
        if is_text_listing(path) {
            let (profile, value) = Profile::from_text(&bytes, &source_name)?;
            let json = serde_json::to_vec_pretty(&value).unwrap_or_default();
            Ok((profile, value, json))
        } else {
            let (profile, value) = Profile::from_slice(&bytes, &source_name)?;
            Ok((profile, value, bytes))
        }
    }

    /// Reads a file as a plain-text listing, whatever its name.
    pub fn read_text_file(path: &Path) -> Result<(Profile, Value), ProfileError> {
        let source_name = path.display().to_string();
        let bytes = read_capped(path, &source_name)?;
        Profile::from_text(&bytes, &source_name)
    }

    /// A plain-text (or Markdown) listing as a profile: `{"text": <the
    /// whole text>}`, its id the hash of that, like any profile without
    /// `metadata.id`. UTF-8 (a byte-order mark is dropped), at most
    /// [`MAX_PROFILE_BYTES`]; blank text is refused with the error an empty
    /// `text` field gets.
    pub fn from_text(bytes: &[u8], source_name: &str) -> Result<(Profile, Value), ProfileError> {
        if bytes.len() as u64 > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge {
                source_name: source_name.to_string(),
                size: Some(bytes.len() as u64),
                limit: MAX_PROFILE_BYTES,
            });
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| ProfileError::NotUtf8 {
            source_name: source_name.to_string(),
            offset: e.valid_up_to(),
        })?;
        if text.trim().is_empty() {
            return Err(ProfileError::Field {
                source_name: source_name.to_string(),
                field: "text".into(),
                problem: "must not be empty".into(),
            });
        }
        let value = serde_json::json!({ "text": text });
        let profile = Profile {
            text: text.to_string(),
            images: None,
            metadata: None,
            extra: Map::new(),
        };
        Ok((profile, value))
    }

    /// Validates `bytes` as a profile. Returns the typed profile and the JSON
    /// value as read (what the result echoes back).
    pub fn from_slice(bytes: &[u8], source_name: &str) -> Result<(Profile, Value), ProfileError> {
        let name = || source_name.to_string();
        if bytes.len() as u64 > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge {
                source_name: name(),
                size: Some(bytes.len() as u64),
                limit: MAX_PROFILE_BYTES,
            });
        }
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ProfileError::Empty {
                source_name: name(),
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ProfileError::NotJson {
            source_name: name(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        let object = match &value {
            Value::Object(map) => map,
            other => {
                return Err(ProfileError::NotAnObject {
                    source_name: name(),
                    found: json_type_name(other).to_string(),
                });
            }
        };
        let field = |field: &str, problem: String| ProfileError::Field {
            source_name: name(),
            field: field.to_string(),
            problem,
        };
        match object.get("text") {
            None => return Err(field("text", "is required".into())),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(field("text", "must not be empty".into()));
            }
            Some(Value::String(_)) => {}
            Some(other) => {
                return Err(field(
                    "text",
                    format!("must be a string, found {}", json_type_name(other)),
                ));
            }
        }
        match object.get("images") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        return Err(field(
                            &format!("images[{i}]"),
                            format!(
                                "must be a string (an https URL, a data: URI or a relative path), found {}",
                                json_type_name(item)
                            ),
                        ));
                    }
                }
            }
            Some(other) => {
                return Err(field(
                    "images",
                    format!(
                        "must be an array of strings, found {}",
                        json_type_name(other)
                    ),
                ));
            }
        }
        match object.get("metadata") {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(other) => {
                return Err(field(
                    "metadata",
                    format!("must be an object, found {}", json_type_name(other)),
                ));
            }
        }
        let mut profile: Profile =
            serde_json::from_value(value.clone()).map_err(|e| field("(profile)", e.to_string()))?;
        // `"images": null` / `"metadata": null` read as absent.
        profile.extra.remove("images");
        profile.extra.remove("metadata");
        Ok((profile, value))
    }

    /// A metadata field as text: strings as they are, numbers printed.
    pub fn metadata_text(&self, key: &str) -> Option<String> {
        match self.metadata.as_ref()?.get(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The images listed, or none.
    pub fn images(&self) -> &[String] {
        self.images.as_deref().unwrap_or(&[])
    }
}

/// The stable id of a profile: `metadata.id` when present (a string or a
/// number), else `sha256-` and the first 16 hex digits of the SHA-256 of the
/// profile's canonical JSON (keys sorted), so the same profile always gets
/// the same id: the relay's idempotency key depends on it.
pub fn stable_id(profile_value: &Value) -> String {
    if let Some(id) = profile_value.get("metadata").and_then(|m| m.get("id")) {
        match id {
            Value::String(s) if !s.trim().is_empty() => return s.trim().to_string(),
            Value::Number(n) => return n.to_string(),
            _ => {}
        }
    }
    // serde_json's Map is a BTreeMap here (no preserve_order), so this
    // serialisation is canonical.
    let canonical = serde_json::to_vec(profile_value).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    format!("sha256-{}", crate::hex::encode(&digest[..8]))
}

/// A display name for a profile source: the path, or `<stdin>` for `-`.
pub fn source_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        PathBuf::from(path).display().to_string()
    }
}

/// serde_json appends " at line L column C"; we report those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        Profile::from_slice(input.as_bytes(), "profile.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_a_full_profile_and_keeps_unknown_fields() {
        let (p, v) = Profile::from_slice(
            br#"{"text":"2 bed flat","images":["a.jpg"],"metadata":{"id":"x1","price":"1"},"source":"rightmove"}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!(p.text, "2 bed flat");
        assert_eq!(p.images(), ["a.jpg".to_string()]);
        assert_eq!(p.extra.get("source").unwrap(), "rightmove");
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
        assert_eq!(stable_id(&v), "x1");
    }

    #[test]
    fn errors_name_file_field_and_expectation() {
        assert_eq!(err("{}"), "profile.json: field \"text\" is required");
        assert_eq!(
            err(r#"{"text":5}"#),
            "profile.json: field \"text\" must be a string, found number"
        );
        assert_eq!(
            err(r#"{"text":"  "}"#),
            "profile.json: field \"text\" must not be empty"
        );
        assert!(
            err(r#"{"text":"a","images":"x.jpg"}"#)
                .contains("field \"images\" must be an array of strings, found string")
        );
        assert!(
            err(r#"{"text":"a","images":[1]}"#).contains("field \"images[0]\" must be a string")
        );
        assert!(
            err(r#"{"text":"a","metadata":[]}"#)
                .contains("field \"metadata\" must be an object, found array")
        );
        assert_eq!(
            err(""),
            "profile.json: is empty, expected a JSON object with a \"text\" field"
        );
        assert!(err("[1,2]").contains("expected a JSON object with a \"text\" field, found array"));
        assert!(
            err("{\"text\": ").starts_with("profile.json: is not valid JSON at line 1, column 9")
        );
    }

    #[test]
    fn read_file_refuses_what_is_not_a_regular_file() {
        let error = Profile::read_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ProfileUnreadable);
        assert_eq!(
            error.to_string(),
            "/dev/zero: is a character device, expected a regular profile JSON file"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_PROFILE_BYTES as usize + 1]).unwrap();
        let error = Profile::read_file(&big).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ProfileInvalid);
        assert!(
            error
                .to_string()
                .ends_with("is 16777217 bytes, larger than the 16777216-byte limit for a profile"),
            "{error}"
        );
    }

    #[test]
    fn text_listings_are_the_profiles_text() {
        let (profile, value) =
            Profile::from_text("\u{feff}# Flat\n2 bed".as_bytes(), "l.md").unwrap();
        assert_eq!(profile.text, "# Flat\n2 bed");
        assert_eq!(value, serde_json::json!({"text": "# Flat\n2 bed"}));
        assert!(stable_id(&value).starts_with("sha256-"));
        let empty = Profile::from_text(b" \n", "l.txt").unwrap_err().to_string();
        assert_eq!(
            empty,
            err(r#"{"text":" "}"#).replace("profile.json", "l.txt")
        );
        let binary = Profile::from_text(b"ab\xff", "l.txt").unwrap_err();
        assert_eq!(binary.kind(), ErrorKind::ProfileInvalid);
        assert!(binary.to_string().contains("byte 2"), "{binary}");
        assert!(is_text_listing(Path::new("a/L.TXT")) && is_text_listing(Path::new("b.md")));
        assert!(!is_text_listing(Path::new("b.json")) && !is_text_listing(Path::new("txt")));
    }

    #[test]
    fn garbage_never_panics() {
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(Profile::from_slice(&garbage, "g").is_err());
    }

    #[test]
    fn hash_id_is_stable_and_order_independent() {
        let a: Value = serde_json::from_str(r#"{"text":"t","metadata":{"a":1,"b":2}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"metadata":{"b":2,"a":1},"text":"t"}"#).unwrap();
        assert_eq!(stable_id(&a), stable_id(&b));
        assert!(stable_id(&a).starts_with("sha256-"));
        assert_eq!(stable_id(&a).len(), "sha256-".len() + 16);
    }
}
