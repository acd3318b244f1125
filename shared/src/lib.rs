//! The file contract between Shortlist's `assessor` and `relay`.
//!
//! Everything a custom assessor image must agree on lives here: the profile it
//! reads ([`profile`]), the result it writes ([`result`]), how that result is
//! written so a watcher never sees half of it ([`atomic`]), and the small
//! conventions both binaries share (durations with units, log format).
//! `docs/contract.md` is the prose version of this crate; `schema/*.json` are
//! generated from these types ([`schema`]).

pub mod atomic;
pub mod cli;
pub mod duration;
pub mod error;
pub mod logging;
pub mod profile;
pub mod result;
pub mod retry;
pub mod schema;
pub mod secret;
pub mod size;

pub use profile::{Profile, ProfileError};
pub use result::{
    AssessmentResult, AssessorInfo, BackendInfo, CaptionRecord, DecidedBy, ErrorInfo,
    RESULT_SCHEMA_ID, Status, Usage, Verdict,
};
