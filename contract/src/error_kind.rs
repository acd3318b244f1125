//! `error.kind`: why an assessment (or one image of it) did not complete,
//! as a stable, machine-readable word.
//!
//! The kinds this project's assessor writes are variants, so a typo is a
//! compile error and "could a retry fix it?" is one method
//! ([`ErrorKind::is_transient`]) rather than string matching in every
//! consumer. A custom assessor may write kinds of its own: they are kept as
//! [`ErrorKind::Other`] and round-trip unchanged, so the contract stays
//! lenient (on the wire `kind` is any non-empty string).

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, transient = $transient:literal; )*) => {
        /// A stable `error.kind`; see the module documentation.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant, )*
            /// A kind this crate does not know (a custom assessor's own).
            Other(String),
        }

        impl ErrorKind {
            /// Every kind this crate knows, in documentation order.
            pub const KNOWN: &'static [ErrorKind] = &[$( ErrorKind::$variant, )*];

            /// The word written into results.
            pub fn as_str(&self) -> &str {
                match self {
                    $( ErrorKind::$variant => $text, )*
                    ErrorKind::Other(text) => text,
                }
            }

            /// Whether the same request could succeed if tried again later
            /// (a server down, a timeout, a rate limit): such failures are
            /// worth a Job's retries; the others would fail the same way.
            /// Unknown kinds count as permanent.
            pub fn is_transient(&self) -> bool {
                match self {
                    $( ErrorKind::$variant => $transient, )*
                    ErrorKind::Other(_) => false,
                }
            }

            fn parse(text: &str) -> ErrorKind {
                match text {
                    $( $text => ErrorKind::$variant, )*
                    other => ErrorKind::Other(other.to_string()),
                }
            }
        }
    };
}

error_kinds! {
    // The profile.
    /// The profile file is missing, a directory, or cannot be read.
    ProfileUnreadable = "profile_unreadable", transient = false;
    /// The profile is not a valid profile (JSON, shape, fields, size).
    ProfileInvalid = "profile_invalid", transient = false;
    // The judge.
    /// The judge's server could not be reached or answered 5xx.
    BackendUnavailable = "backend_unavailable", transient = true;
    /// The judge's server refused the request (4xx other than 429).
    BackendRejected = "backend_rejected", transient = false;
    /// The server refused the API key (HTTP 401 or 403): a configuration
    /// error (exit 2), for the judge's server or the vision server.
    BackendUnauthorized = "backend_unauthorized", transient = false;
    /// The server has no such model or endpoint (HTTP 404): the model name
    /// or the base URL is wrong (exit 2).
    BackendNotFound = "backend_not_found", transient = false;
    /// The judge's server asked to slow down (429) past the retries.
    RateLimited = "rate_limited", transient = true;
    /// The model is not (yet) available on the server (loading, unknown).
    ModelUnavailable = "model_unavailable", transient = true;
    /// The prompt does not fit the model's context.
    ContextOverflow = "context_overflow", transient = false;
    /// A request or the judge stage's deadline timed out.
    Timeout = "timeout", transient = true;
    /// The reply was not a valid verdict, even after a repair turn.
    ReplyInvalid = "reply_invalid", transient = false;
    /// The reply hit the token limit before it was complete.
    ReplyTruncated = "reply_truncated", transient = false;
    /// The model refused to answer.
    Refused = "refused", transient = false;
    /// The command backend's program failed or timed out.
    CommandFailed = "command_failed", transient = false;
    // The captions stage (the result's `error`, then each image's).
    /// Some images could not be captioned and captions are required.
    CaptionsFailed = "captions_failed", transient = false;
    /// An image source is not an https URL, a data: URI or a local path.
    ImageSourceInvalid = "image_source_invalid", transient = false;
    /// An image's address is refused by the address policy (SSRF guard).
    ImageRefused = "image_refused", transient = false;
    /// A local image does not exist.
    ImageNotFound = "image_not_found", transient = false;
    /// An image could not be read (I/O error, connection cut).
    ImageUnreadable = "image_unreadable", transient = true;
    /// An image is larger than the limit.
    ImageTooLarge = "image_too_large", transient = false;
    /// An image fetch timed out.
    ImageTimeout = "image_timeout", transient = true;
    /// An image fetch failed (connection, HTTP status).
    ImageFetchFailed = "image_fetch_failed", transient = true;
    /// An image fetch was redirected too often.
    TooManyRedirects = "too_many_redirects", transient = false;
    /// A `data:` URI is malformed.
    DataUriInvalid = "data_uri_invalid", transient = false;
    /// The bytes are not an image.
    NotAnImage = "not_an_image", transient = false;
    /// An image type the vision model is not sent (not JPEG/PNG/GIF/WebP).
    ImageTypeUnsupported = "image_type_unsupported", transient = false;
    /// More images than the limit; the rest were not fetched.
    TooManyImages = "too_many_images", transient = false;
    /// The vision model failed on an image.
    CaptionFailed = "caption_failed", transient = true;
    /// The vision model timed out on an image.
    CaptionTimeout = "caption_timeout", transient = true;
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorKind {
    fn from(text: &str) -> Self {
        ErrorKind::parse(text)
    }
}

impl From<String> for ErrorKind {
    fn from(text: String) -> Self {
        match ErrorKind::parse(&text) {
            ErrorKind::Other(_) => ErrorKind::Other(text),
            known => known,
        }
    }
}

impl PartialEq<str> for ErrorKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ErrorKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(ErrorKind::from(text.into_owned()))
    }
}

impl JsonSchema for ErrorKind {
    fn schema_name() -> Cow<'static, str> {
        "ErrorKind".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Lenient on purpose: custom assessors may write kinds of their own.
        schemars::json_schema!({ "type": "string" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_round_trip_and_unknown_ones_are_kept() {
        for kind in ErrorKind::KNOWN {
            let json = serde_json::to_string(kind).unwrap();
            let back: ErrorKind = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, kind);
            assert!(!matches!(back, ErrorKind::Other(_)), "{json}");
        }
        let custom: ErrorKind = serde_json::from_str("\"gpu_on_fire\"").unwrap();
        assert_eq!(custom, ErrorKind::Other("gpu_on_fire".into()));
        assert_eq!(serde_json::to_string(&custom).unwrap(), "\"gpu_on_fire\"");
        assert!(!custom.is_transient());
    }

    #[test]
    fn kinds_are_distinct_words() {
        let mut words: Vec<&str> = ErrorKind::KNOWN.iter().map(ErrorKind::as_str).collect();
        let n = words.len();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), n);
        assert!(
            words
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
    }

    #[test]
    fn what_a_retry_could_fix() {
        for transient in [
            "backend_unavailable",
            "timeout",
            "rate_limited",
            "image_timeout",
            "caption_failed",
        ] {
            assert!(ErrorKind::from(transient).is_transient(), "{transient}");
        }
        for permanent in [
            "profile_invalid",
            "reply_invalid",
            "image_refused",
            "not_an_image",
            "captions_failed",
            "backend_unauthorized",
            "backend_not_found",
        ] {
            assert!(!ErrorKind::from(permanent).is_transient(), "{permanent}");
        }
    }
}
