//! A child process in a process group of its own, so that everything a
//! program starts (`sh -c 'helper & ...'`) can be ended at once. tokio's
//! `kill_on_drop` reaches only the direct child: a grandchild would outlive
//! the time limit, the judgement and the assessor itself.
//!
//! Ending a group is SIGTERM to the whole group, a short grace for the
//! program to exit (at most [`GRACE`]), then SIGKILL for whatever is left of
//! it. A group whose judgement is abandoned (its future dropped by a
//! shutdown) gets SIGTERM at once and is finished by [`end_abandoned`],
//! which the mode calls before it exits.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

/// Between SIGTERM and SIGKILL: long enough for a program to clean up,
/// short against a pod's 30 s termination grace period.
pub(crate) const GRACE: Duration = Duration::from_secs(2);

/// How often a group's dying members are looked at.
const POLL: Duration = Duration::from_millis(20);

/// How long killed members of a group we inherited are waited for.
const REAP_FOR: Duration = Duration::from_secs(1);

/// A spawned child leading its own process group.
pub(crate) struct ProcessGroup {
    /// `None` once the group was finished or ended.
    child: Option<Child>,
    pgid: libc::pid_t,
}

impl ProcessGroup {
    /// Spawns `command` as the leader of a new process group.
    pub(crate) fn spawn(command: &mut Command) -> std::io::Result<ProcessGroup> {
        command.process_group(0);
        let mut child = command.spawn()?;
        let Some(pid) = child.id() else {
            // Cannot happen right after a spawn; never leave it unreaped.
            let _ = child.start_kill();
            return Err(std::io::Error::other("the spawned child has no pid"));
        };
        Ok(ProcessGroup {
            child: Some(child),
            pgid: pid as libc::pid_t,
        })
    }

    /// The leader, and the group's id for [`kill_strays`].
    pub(crate) fn child(&mut self) -> (&mut Child, libc::pid_t) {
        let child = self
            .child
            .as_mut()
            .expect("the child is there until the group is finished or ended");
        (child, self.pgid)
    }

    /// The leader exited by itself and was reaped: whatever it left running
    /// in its group (a background helper) is killed, since nobody will read
    /// what it does.
    pub(crate) fn finish(mut self) {
        self.child = None;
        signal_group(self.pgid, libc::SIGKILL);
        tokio::spawn(reap_group(self.pgid));
    }

    /// Ends the group: SIGTERM, up to `grace` for it to go, then SIGKILL.
    pub(crate) async fn end(mut self, grace: Duration) {
        if let Some(child) = self.child.take() {
            end(self.pgid, child, grace).await;
        }
    }
}

impl Drop for ProcessGroup {
    /// Dropped while running (the assessment was abandoned): SIGTERM now;
    /// [`end_abandoned`] waits for the group and kills what is left.
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            signal_group(self.pgid, libc::SIGTERM);
            ABANDONED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((self.pgid, child));
        }
    }
}

/// Groups whose judgement was dropped, with their leaders (to be reaped).
/// Process-wide, like the signals that cause it.
static ABANDONED: Mutex<Vec<(libc::pid_t, Child)>> = Mutex::new(Vec::new());

/// Ends every group abandoned so far, all within one `grace`.
pub(crate) async fn end_abandoned(grace: Duration) {
    let groups = std::mem::take(&mut *ABANDONED.lock().unwrap_or_else(PoisonError::into_inner));
    if groups.is_empty() {
        return;
    }
    tracing::info!(
        groups = groups.len(),
        "ending the processes of abandoned judgements"
    );
    futures_util::future::join_all(
        groups
            .into_iter()
            .map(|(pgid, child)| end(pgid, child, grace)),
    )
    .await;
}

async fn end(pgid: libc::pid_t, mut child: Child, grace: Duration) {
    signal_group(pgid, libc::SIGTERM);
    // The leader is ours to reap: a zombie would keep the group alive.
    let leader_gone = tokio::time::timeout(grace, child.wait()).await.is_ok();
    if !leader_gone {
        tracing::warn!(pgid, "still running {grace:?} after SIGTERM; killing");
    }
    // The rest of the group had as long as the leader to go. (Waiting for
    // the group to vanish would also wait for whoever inherited its members
    // to reap them, which some init processes do only now and then.)
    if group_exists(pgid) {
        signal_group(pgid, libc::SIGKILL);
    }
    if leader_gone || tokio::time::timeout(GRACE, child.wait()).await.is_ok() {
        reap_group(pgid).await;
    }
}

/// When the assessor is PID 1 (a container without an init), the group's
/// other members were reparented to it when the leader died: reap them, so
/// that ended judgements leave no zombies behind. Anyone else gets ECHILD at
/// once. Only called once the leader is reaped: the group then holds no
/// child that tokio waits for.
async fn reap_group(pgid: libc::pid_t) {
    if pgid <= 1 {
        return;
    }
    let deadline = Instant::now() + REAP_FOR;
    loop {
        // SAFETY: waitpid(2) with a null status pointer writes nothing.
        let reaped = unsafe { libc::waitpid(-pgid, std::ptr::null_mut(), libc::WNOHANG) };
        match reaped {
            // One reaped: there may be more.
            pid if pid > 0 => continue,
            // Members of ours still dying (SIGKILL is not instant).
            0 if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            // None of ours (ECHILD), or out of time.
            _ => return,
        }
    }
}

/// Kills what the leader of group `pgid` left running once it exited by
/// itself: a background helper may hold its stdout open, and nobody will
/// read what it does.
pub(crate) fn kill_strays(pgid: libc::pid_t) {
    signal_group(pgid, libc::SIGKILL);
}

/// Sends `signal` to every process of the group; a group that is gone
/// already is no error.
fn signal_group(pgid: libc::pid_t, signal: libc::c_int) {
    // 0 and 1 would mean "our own group" and "every process we may signal".
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Whether any process (a zombie included) is still in the group.
fn group_exists(pgid: libc::pid_t) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: as above; signal 0 only checks.
    let alive = unsafe { libc::kill(-pgid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
