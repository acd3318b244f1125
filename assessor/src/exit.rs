//! Exit codes, chosen so a Job's `podFailurePolicy` can tell permanent
//! failures (a bad profile will stay bad: `FailJob`) from transient ones (a
//! backend outage: let `backoffLimit` retry). Documented in the README and
//! `docs/contract.md`; changing one is a breaking change of the contract.

use std::process::ExitCode;

/// How the assessor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: assessed (accept or reject); the result is written.
    Assessed,
    /// 2: usage or configuration error, found at start-up; no result written.
    Usage,
    /// 3: the profile is missing or invalid (permanent); an error result is written.
    InvalidProfile,
    /// 4: the backend failed after retries (transient); an error result is written.
    BackendFailed,
    /// 5: the result could not be written (it is printed to stdout instead).
    ResultUnwritable,
    /// 6: an accepted result is written, but the relay's receipt did not come
    /// within ASSESSOR_AWAIT_DELIVERY (transient: a new pod delivers again,
    /// with the same `webhook-id`).
    DeliveryUnconfirmed,
}

impl Exit {
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Assessed => 0,
            Exit::Usage => 2,
            Exit::InvalidProfile => 3,
            Exit::BackendFailed => 4,
            Exit::ResultUnwritable => 5,
            Exit::DeliveryUnconfirmed => 6,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
