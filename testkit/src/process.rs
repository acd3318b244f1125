//! Running a built binary the way every suite does: a cleared environment
//! (only `PATH`, `LOG_FORMAT=json` and what the test passes), stdout and
//! stderr drained while it runs, killed when the guard drops, and every wait
//! bounded so that a hung binary fails the test instead of hanging CI.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::drain::{self, Captured, drain};
use crate::http::Recorded;
use crate::notifier::Notifier;
use crate::text::{clip, clip_tail, mentions};
use crate::wait::POLL;

/// The guard on a single wait for a long-running binary: far above what a
/// test needs.
pub const GUARD: Duration = Duration::from_secs(30);

/// How long the readers may take to catch up after the exit: a grandchild
/// (a command backend's `sleep`) may hold the pipes open.
const READERS_GRACE: Duration = Duration::from_secs(3);

/// The command for `program` in `dir` with a cleared environment plus
/// `PATH`, `LOG_FORMAT=json` and `envs`; stdin closed, output discarded
/// until the caller says otherwise, killed when dropped.
pub fn command<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    program: impl AsRef<OsStr>,
    dir: &Path,
    envs: impl IntoIterator<Item = (K, V)>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// A running binary. Dropping it kills the process.
pub struct Process {
    /// The program's file name, for messages.
    name: String,
    child: tokio::process::Child,
    pid: u32,
    stdout: Captured,
    stderr: Captured,
    readers: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

impl Process {
    /// Spawns `cmd` (see [`command`]) with stdout and stderr captured and
    /// `stdin` fed to it (closed stdin when `None`).
    pub fn spawn(mut cmd: tokio::process::Command, stdin: Option<Vec<u8>>) -> Process {
        let name = Path::new(cmd.as_std().get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "binary".into());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn the {name} binary: {e}"));
        let pid = child.id().expect("a running child has a pid");
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                // The binary may exit without reading it all: ignore EPIPE.
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            });
        }
        let stdout = Captured::default();
        let stderr = Captured::default();
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(drain(out, stdout.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(drain(err, stderr.clone())));
        }
        Process {
            name,
            child,
            pid,
            stdout,
            stderr,
            readers,
            started,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn stdout_now(&self) -> String {
        drain::text(&self.stdout)
    }

    pub fn stderr_now(&self) -> String {
        drain::text(&self.stderr)
    }

    /// The output so far, for assertion messages while it runs.
    pub fn ctx(&self) -> String {
        format!(
            "{} pid {} running for {:?}\n--- stdout so far ---\n{}\n--- stderr so far ---\n{}",
            self.name,
            self.pid,
            self.started.elapsed(),
            clip(&self.stdout_now(), 4000),
            clip_tail(&self.stderr_now(), 8000)
        )
    }

    /// Whether the process has exited (without reaping its output).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the exit; a binary still running after `timeout` is killed
    /// and the test fails with its output.
    pub async fn wait(mut self, timeout: Duration) -> Output {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.unwrap_or_else(|e| panic!("wait for the {}: {e}", self.name)),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!(
                    "the {} did not exit within {timeout:?}\n{}",
                    self.name,
                    self.ctx()
                );
            }
        };
        self.finish(status).await
    }

    async fn finish(mut self, status: ExitStatus) -> Output {
        let elapsed = self.started.elapsed();
        let readers = std::mem::take(&mut self.readers);
        let _ = tokio::time::timeout(READERS_GRACE, async {
            for r in readers {
                let _ = r.await;
            }
        })
        .await;
        Output {
            program: self.name.clone(),
            code: status.code().unwrap_or(-1),
            stdout: self.stdout_now(),
            stderr: self.stderr_now(),
            elapsed,
        }
    }

    /// `kill -9`, then reaps it.
    pub async fn kill9(self) -> Output {
        self.signal("KILL");
        self.wait(GUARD).await
    }

    /// Sends SIGTERM (the kubelet stopping a sidecar).
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends SIGINT (Ctrl-C).
    pub fn sigint(&self) {
        self.signal("INT");
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid);
    }

    /// Waits until stderr satisfies `pred`; false on timeout or if the
    /// binary exits first.
    pub async fn wait_for_stderr(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.stderr_now()) {
                return true;
            }
            if Instant::now() >= deadline || self.has_exited() {
                // One last look: the readers may have caught up.
                tokio::time::sleep(POLL).await;
                return pred(&self.stderr_now());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `server` has at least `n` requests; panics with both
    /// sides' story on timeout or when the binary exits first.
    pub async fn expect_requests(
        &mut self,
        server: &Notifier,
        n: usize,
        timeout: Duration,
    ) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            if server.count() >= n {
                return server.requests();
            }
            let exited = self.has_exited();
            if exited || Instant::now() >= deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if server.count() >= n {
                    return server.requests();
                }
                panic!(
                    "expected {n} request(s) within {timeout:?}, got {}{}\n{}\n{}",
                    server.count(),
                    if exited {
                        format!(" (the {} exited)", self.name)
                    } else {
                        String::new()
                    },
                    server.describe(),
                    self.ctx()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// What a finished binary left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// The program's file name, for messages.
    pub program: String,
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Since the spawn.
    pub elapsed: Duration,
}

impl Output {
    /// Context for assertion messages.
    pub fn ctx(&self) -> String {
        format!(
            "exit code {} after {:?}\n--- stdout ({} bytes) ---\n{}\n--- stderr ({} bytes) ---\n{}",
            self.code,
            self.elapsed,
            self.stdout.len(),
            clip(&self.stdout, 4000),
            self.stderr.len(),
            clip_tail(&self.stderr, 8000),
        )
    }

    /// Asserts the exit code, and that nothing panicked.
    pub fn assert_code(&self, expected: i32) -> &Output {
        assert!(
            !self.stderr.contains("panicked") && !self.stdout.contains("panicked"),
            "the {} panicked\n{}",
            self.program,
            self.ctx()
        );
        assert_eq!(self.code, expected, "unexpected exit code\n{}", self.ctx());
        self
    }

    /// stdout or stderr contains `needle`, raw or JSON-escaped.
    pub fn mentions(&self, needle: &str) -> bool {
        mentions(&self.stdout, needle) || mentions(&self.stderr, needle)
    }

    /// Non-empty stdout lines.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}
