//! Runtime helpers shared by Shortlist's `assessor` and `relay` binaries:
//! CLI plumbing ([`cli`]), durations and sizes with units ([`duration`],
//! [`size`]), log set-up ([`logging`]), retries with backoff and
//! `Retry-After` ([`retry`]), secrets ([`secret`]) and error chains
//! ([`error`]).
//!
//! The file contract itself (profile, result, schemas, atomic writes) is in
//! the `shortlist-contract` crate, which has no async runtime and no CLI
//! dependencies, so a custom assessor can use it alone.

pub mod cli;
pub mod duration;
pub mod error;
pub mod logging;
pub mod retry;
pub mod secret;
pub mod size;
