//! The workspace's one test kit: what the assessor's, the relay's and the
//! pod suites share, held once. Every item is re-exported at the root so a
//! suite says `use testkit::*;`.
//!
//! * Running binaries: [`Envs`], [`binary`] lookup, [`Process`] (cleared
//!   environment, drained output, killed on drop, bounded waits),
//!   [`assessor`] and [`relay`] runners.
//! * Peers on `127.0.0.1:0`, each serving on the listener the kit bound:
//!   [`FakeOpenAi`] (chat completions, scripted or per request),
//!   [`Notifier`] (webhook receiver; Standard Webhooks signatures checked
//!   on what it recorded), [`BlackHole`]. A peer that is down at first uses
//!   [`net::unbound_port`], the one documented exception.
//! * Fixtures: the [`samples`] of `examples/samples`, [`profiles`],
//!   [`results`] (schema checks and assessor-shaped results), [`files`].

use std::path::PathBuf;

pub mod assessor;
pub mod binary;
pub mod blackhole;
pub mod drain;
pub mod env;
pub mod files;
pub mod http;
pub mod net;
pub mod notifier;
pub mod openai;
pub mod process;
pub mod profiles;
pub mod prompt;
pub mod receipts;
pub mod relay;
pub mod results;
pub mod samples;
mod server;
pub mod text;
pub mod wait;
pub mod webhook;

pub use assessor::{
    Output as AssessorOutput, RUN_GUARD, TEST_KEY, assert_ok, fixed_env, llm_env, run_assessor,
    run_assessor_with_stdin,
};
pub use blackhole::BlackHole;
pub use env::Envs;
pub use files::{
    tempdir, to_bytes, write_atomic, write_atomic_bytes, write_bytes, write_in_halves, write_json,
};
pub use http::{Recorded, Reply};
pub use httpdate::fmt_http_date;
pub use net::unbound_port;
pub use notifier::Notifier;
pub use openai::{
    DEFAULT_CONTENT, FakeOpenAi, TokenLogprob, completion, completion_body, completion_with_finish,
    completion_with_logprobs, error_reply, hang, message_text, openai_error, tokens_at, verdict,
};
pub use process::{GUARD, Output, Process, command};
pub use profiles::{full_profile, profile_id, simple_profile};
pub use prompt::{datamark, listing_block};
pub use receipts::{assert_receipt_valid, receipt_of};
pub use relay::{
    assert_webhook_body, assert_webhook_headers, dir_env, fast, outbox_records, result_env,
    spawn_relay, spawn_relay_with_args, unix_now,
};
pub use results::{
    accept, assert_complete_result, assert_schema_valid, assessor_result, error_result, reject,
};
pub use samples::{SAMPLE_COUNT, example_rules, labels, sample, sample_path, samples, samples_dir};
pub use text::{clip, clip_tail, json_has_string, mentions, single_json_document};
pub use wait::wait_until;
pub use webhook::random_secret;

/// The workspace root (where `examples/`, `schema/` and `target/` are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ is inside the workspace")
        .to_path_buf()
}
