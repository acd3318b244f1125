//! The file contract between Shortlist's `assessor` and `relay`, and the
//! public API for anyone writing their own assessor.
//!
//! Everything a custom assessor must agree on lives here: the profile it
//! reads ([`profile`]), the result it writes ([`result`]) with its error
//! kinds ([`error_kind`]), the notification body the relay sends
//! ([`notification`]), how that result is written so a watcher never
//! sees half of it ([`atomic`]), and the JSON Schemas generated from these
//! types ([`schema`]), the receipt a relay writes once an accepted result
//! is delivered ([`receipt`]), and the one capped regular-file reader every
//! side uses ([`regular_file`]), and the summary an assessor leaves in its
//! container's termination message ([`termination`]). It depends on no async runtime and no CLI
//! parser, so a Rust assessor that only wants these types pulls in serde
//! and little else. `docs/contract.md` is the prose version of this crate.

pub mod atomic;
pub mod error_kind;
pub mod hex;
pub mod notification;
pub mod profile;
pub mod receipt;
pub mod regular_file;
pub mod result;
pub mod schema;
pub mod termination;

pub use error_kind::ErrorKind;
pub use notification::{Assessment, Notification};
pub use profile::{Profile, ProfileError};
pub use result::{
    AssessmentResult, AssessorInfo, BackendInfo, CaptionRecord, DecidedBy, ErrorInfo, FactRecord,
    FactSource, RESULT_SCHEMA_ID, ScoreSource, Status, Usage, Verdict,
};
