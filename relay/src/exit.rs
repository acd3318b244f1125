//! The relay's exit codes. In a classic two-container Job the relay's exit
//! code is the pod's verdict on delivery; as a native sidecar it is ignored
//! at shutdown, but still logged. When several apply, the most actionable
//! wins, in this order: 1, 4, 5, 3.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every result handled, every accepted one delivered.
    Done,
    /// 1: a delivery failed permanently or ran out of its deadline (or the drain timeout).
    DeliveryFailed,
    /// 2: usage or configuration error.
    Usage,
    /// 3: the expected results did not all arrive (RELAY_WAIT_TIMEOUT ran out,
    /// or a shutdown came first).
    WaitTimedOut,
    /// 4: a result file stayed unparsable for RELAY_SETTLE_TIMEOUT.
    InvalidResult,
    /// 5: an assessor reported `status: "error"` (so the Job can retry).
    AssessorError,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::DeliveryFailed => 1,
            Exit::Usage => 2,
            Exit::WaitTimedOut => 3,
            Exit::InvalidResult => 4,
            Exit::AssessorError => 5,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
