//! The Shortlist relay: watches the results volume and delivers accepted
//! verdicts to notifiers, at least once per target with a stable
//! `webhook-id`, confirms each with a receipt, and ends so the Job can
//! complete.
//!
//! One way through: `config` turns flags and env into each component's
//! settings; `watch` turns inotify events (or polling) into names to look
//! at; `settle` says when a file is a complete result; `decide` says
//! whether to forward it (with the profile from `profile` and the ids from
//! `identity`); `deliver` sends it to each `notifier` target with retries
//! and records it in the `outbox`, which remembers deliveries across
//! restarts, and writes the `receipt` an awaiting assessor looks for;
//! [`run`] is the loop between them; `exit` holds the codes.
//! [`check()`] (`relay check FILE...`) runs one file at a time through the
//! same reading, deciding and rendering, and says what the loop would do.
//!
//! The public surface is what the binary (and an in-process test) needs:
//! an [`Invocation`] (or [`Settings`]) from arguments, [`run()`] with a
//! shutdown future or [`check()`], and the [`Exit`] code.

mod check;
mod config;
mod decide;
mod deliver;
mod exit;
mod hex;
mod identity;
mod notifier;
mod outbox;
mod profile;
mod receipt;
mod run;
mod settle;
mod watch;

pub use check::{CheckOptions, check};
pub use config::{ConfigError, Invocation, Settings};
pub use deliver::ClientError;
pub use exit::Exit;
pub use run::run;
