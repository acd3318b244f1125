//! The Shortlist relay: watches the results volume and delivers accepted
//! verdicts to notifiers, exactly once per target, and ends so the Job can
//! complete.
//!
//! [`config`] parses settings; [`watch`] turns inotify events (or polling)
//! into hints; [`run`] is the loop that reads and decides results;
//! [`deliver`] sends with retries through a [`sink`] adapter; [`outbox`]
//! remembers what was delivered across restarts; [`exit`] holds the codes.

pub mod config;
pub mod deliver;
pub mod exit;
pub mod outbox;
pub mod run;
pub mod sink;
pub mod watch;

pub use exit::Exit;
pub use run::run;
