//! The runner's exit codes. With `submit --wait` the runner's code follows
//! the assessor's (0, 2–6, as docs/contract.md lists them), so a script
//! treats `runner submit --wait` like running the assessor itself; the
//! runner's own failures use codes from 20 up, which no assessor uses.

use std::process::ExitCode;

/// How `runner` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: objects created (or rendered, or the server stopped), or the
    /// Job succeeded.
    Ok,
    /// A bad flag or setting, or no cluster configured.
    Usage,
    /// The listing is not a valid profile, or too large for a ConfigMap
    /// (the assessor's exit 3 for an invalid profile, too).
    InvalidListing,
    /// The assessor's own exit code, passed through (4 backend failed, 6
    /// delivery not confirmed, ...).
    Assessor(u8),
    /// The Kubernetes API refused or could not be reached (after retries).
    Cluster,
    /// `--wait` ran out before the Job finished (the Job is left running).
    WaitTimedOut,
    /// The Job failed without an assessor exit code to pass on (its
    /// deadline passed, its pod never started, it was deleted).
    JobFailed,
    /// SIGINT or SIGTERM: before the listing's ConfigMap exists (the API
    /// server away, its retries waiting), at once; later, once the
    /// submission is complete (it is never cut in half), and the Job runs on.
    Interrupted,
}

impl Exit {
    pub const CLUSTER: u8 = 20;
    pub const WAIT_TIMED_OUT: u8 = 21;
    pub const JOB_FAILED: u8 = 22;

    /// The code for an assessor's exit code: 0 and 3 by their names, any
    /// other passed on as it is (a signal's 128+n included).
    pub fn from_assessor(code: i32) -> Exit {
        match code {
            0 => Exit::Ok,
            3 => Exit::InvalidListing,
            1..=255 => Exit::Assessor(code as u8),
            _ => Exit::JobFailed,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Usage => 2,
            Exit::InvalidListing => 3,
            Exit::Assessor(code) => code,
            Exit::Cluster => Self::CLUSTER,
            Exit::WaitTimedOut => Self::WAIT_TIMED_OUT,
            Exit::JobFailed => Self::JOB_FAILED,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
