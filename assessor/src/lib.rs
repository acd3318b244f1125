//! The Shortlist assessor: one profile in, one verdict file out.
//!
//! The binary (`main.rs`) is a thin shell around [`run`]: it parses settings
//! ([`config`]), reads the profile, runs the pipeline ([`pipeline`]: rules
//! first, then one judge [`backend`]), and writes the result ([`output`]).
//! Exit codes ([`exit`]) tell a Job's `podFailurePolicy` permanent failures
//! from transient ones.

pub mod backend;
pub mod batch;
pub mod cache_entry;
pub mod caption;
pub mod config;
pub mod eval;
pub mod exit;
pub mod output;
pub mod pipeline;
pub mod prompt;
pub mod rules;
pub mod verdict;

pub use exit::Exit;
pub use pipeline::run;
/// Retry policy shared with the relay.
pub use shortlist_shared::retry;
pub use shortlist_shared::secret;

/// Name and version written into every result's `assessor` field.
pub fn assessor_info() -> shortlist_shared::AssessorInfo {
    shortlist_shared::AssessorInfo {
        name: env!("CARGO_PKG_NAME").to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}
