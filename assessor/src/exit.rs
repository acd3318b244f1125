//! Exit codes, chosen so a Job's `podFailurePolicy` can tell permanent
//! failures (a bad profile will stay bad: `FailJob`) from transient ones (a
//! backend outage: let `backoffLimit` retry). Documented in the README and
//! `docs/contract.md`; changing one is a breaking change of the contract.

use std::process::ExitCode;

use crate::shutdown::Signal;

/// How the assessor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: assessed (accept or reject); the result is written. A batch: every
    /// profile got a result (invalid ones an error result).
    Assessed,
    /// 2: usage or configuration error, found at start-up; no result written.
    Usage,
    /// 2 as well: a backend refused the configuration for good (a bad API
    /// key: 401/403; an unknown model or base URL: 404). No retry can fix
    /// it, so it fails the Job like any configuration error; an error result
    /// is written.
    BackendRefused,
    /// 3: the profile is missing or invalid (permanent); an error result is
    /// written. A batch: no profile at all could be read.
    InvalidProfile,
    /// 4: the backend failed after retries (transient); an error result is written.
    BackendFailed,
    /// 5: the result could not be written (it is printed to stdout instead).
    ResultUnwritable,
    /// 6: an accepted result is written, but the relay's receipt did not come
    /// within ASSESSOR_AWAIT_DELIVERY (transient: a new pod delivers again,
    /// with the same `webhook-id`).
    DeliveryUnconfirmed,
    /// 7: `eval --fail-under`: a metric is below its floor, or cannot be
    /// computed. The report is printed and written all the same.
    BelowFloor,
    /// 130 / 143: stopped by SIGINT / SIGTERM (128 + the signal number, the
    /// shell's convention). A single assessment writes no result; a batch
    /// writes the results of the profiles it let finish and says how many
    /// are left for the next run.
    Interrupted(Signal),
}

impl Exit {
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Assessed => 0,
            Exit::Usage | Exit::BackendRefused => 2,
            Exit::InvalidProfile => 3,
            Exit::BackendFailed => 4,
            Exit::ResultUnwritable => 5,
            Exit::DeliveryUnconfirmed => 6,
            Exit::BelowFloor => 7,
            Exit::Interrupted(Signal::Interrupt) => 130,
            Exit::Interrupted(Signal::Terminate) => 143,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_exits_follow_the_shell_convention() {
        assert_eq!(
            Exit::Interrupted(Signal::Interrupt).code() as i32,
            128 + libc::SIGINT
        );
        assert_eq!(
            Exit::Interrupted(Signal::Terminate).code() as i32,
            128 + libc::SIGTERM
        );
    }
}
