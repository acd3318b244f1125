//! Shortlist's runner: the third piece beside the assessor and the relay.
//! It launches one Kubernetes Job per listing from the project's own Job
//! template and reads the verdict back from the assessor's termination
//! message.
//!
//! - [`listing`]: the listing read and checked, its id and names;
//! - [`template`]: the Job template (deploy/rendered/base.yaml, built in);
//! - [`objects`]: the ConfigMap and Job a listing becomes;
//! - [`cluster`]: the Kubernetes API calls, retried under one policy;
//! - [`submit`]: ConfigMap, Job, owner reference, nothing left half-made;
//! - [`wait`] and [`status`]: until the Job ends, and what came of it;
//! - [`serve`]: the HTTP API;
//! - [`cli`] and [`exit`]: the command line and its exit codes.

pub mod cli;
pub mod cluster;
pub mod exit;
pub mod listing;
pub mod objects;
mod run;
pub mod serve;
pub mod status;
pub mod submit;
pub mod template;
pub mod wait;

pub use exit::Exit;
pub use run::run;
