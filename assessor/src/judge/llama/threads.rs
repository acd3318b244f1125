//! How many threads llama.cpp gets when `LLM_THREADS` is not set.
//!
//! llama.cpp's OpenMP threads meet at hundreds of barriers per token and
//! spin while they wait. When every thread has a core that is fine; when
//! one of them is descheduled (a CPU quota below the thread count, or busy
//! neighbours on the same cores) the others spin through the scheduler's
//! time slice at every barrier, and generation collapses (10× slower beside
//! one busy process with two threads, where one thread loses nothing). So:
//! - at most the CPUs this process may use: `available_parallelism`, which
//!   follows the cgroup's CPU quota (`cpu.max`) and the affinity mask
//!   (taskset, cpusets), not the host's cores;
//! - and no more than the CPU the machine really leaves us: while the model
//!   loads, `/proc/stat` shows how much of the host was idle and
//!   `/proc/self/stat` how much the loading itself used; their sum, rounded,
//!   is the thread count (at least 1).
//!
//! The probe sees the machine once, when the model loads; a batch keeps
//! that count for its whole run.

use std::time::{Duration, Instant};

/// The shortest window the probe looks at: with 100 ticks a second, a
/// shorter one is too coarse to tell one free core from two.
const PROBE_WINDOW: Duration = Duration::from_millis(80);

/// The CPUs this process may use (cgroup quota and affinity aware).
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// CPU counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    /// All CPUs' ticks, and the idle ones among them (idle + iowait).
    total: u64,
    idle: u64,
    /// This process's user + system ticks.
    own: u64,
    /// The host's CPUs, as `/proc/stat` lists them.
    cpus: u64,
}

impl Sample {
    fn take() -> Option<Sample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (total, idle, cpus) = parse_proc_stat(&stat)?;
        Some(Sample {
            at: Instant::now(),
            total,
            idle,
            own: parse_self_stat(&own)?,
            cpus,
        })
    }
}

/// Watches the machine while the model loads.
pub(super) struct CpuProbe {
    start: Option<Sample>,
}

impl CpuProbe {
    pub(super) fn start() -> Self {
        CpuProbe {
            start: Sample::take(),
        }
    }

    /// The thread count for at most `max` threads: what the host left idle
    /// plus what this process used since [`CpuProbe::start`] (waiting out the
    /// rest of an 80 ms window first). `max` when `/proc` cannot tell.
    pub(super) fn threads(self, max: usize) -> usize {
        let Some(start) = self.start else {
            return max;
        };
        if let Some(rest) = PROBE_WINDOW.checked_sub(start.at.elapsed()) {
            std::thread::sleep(rest);
        }
        let Some(end) = Sample::take() else {
            return max;
        };
        let chosen = threads_for(
            end.idle.saturating_sub(start.idle),
            end.own.saturating_sub(start.own),
            end.total.saturating_sub(start.total),
            end.cpus,
            max,
        );
        tracing::debug!(
            threads = chosen,
            of = max,
            "llama.cpp threads, from the CPU the machine left free while the model loaded"
        );
        chosen
    }
}

/// `idle` and `own` ticks out of `total` ticks over `cpus` CPUs: the CPUs
/// free for this process, rounded (a core 70 % free counts), within 1..=max.
fn threads_for(idle: u64, own: u64, total: u64, cpus: u64, max: usize) -> usize {
    if total == 0 || cpus == 0 {
        return max.max(1);
    }
    let free = (idle + own) as f64 / total as f64 * cpus as f64;
    ((free + 0.3).floor() as usize).clamp(1, max.max(1))
}

/// `/proc/stat`'s first line summed: (all ticks, idle + iowait ticks), and
/// the number of `cpuN` lines.
fn parse_proc_stat(text: &str) -> Option<(u64, u64, u64)> {
    let first = text.lines().next()?;
    let mut fields = first.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already
    // inside user and nice).
    let values: Vec<u64> = fields
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    if values.len() < 5 {
        return None;
    }
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as u64;
    Some((values.iter().sum(), values[3] + values[4], cpus))
}

/// `/proc/self/stat`: utime + stime (fields 14 and 15; the command name in
/// parentheses may hold spaces, so fields are counted after its `)`).
fn parse_self_stat(text: &str) -> Option<u64> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) is index 11 and stime 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_machine_gets_every_allowed_thread() {
        // 2 CPUs, 24 ticks: we used 10, the rest was idle.
        assert_eq!(threads_for(14, 10, 24, 2, 2), 2);
        // Capped by the quota or affinity...
        assert_eq!(threads_for(90, 6, 96, 8, 2), 2);
    }

    #[test]
    fn busy_neighbours_leave_one_thread() {
        // Two busy loops and us on 2 CPUs: nothing idle, we got a third.
        assert_eq!(threads_for(0, 8, 24, 2, 2), 1);
        // One busy loop: we had our one core, no more.
        assert_eq!(threads_for(1, 11, 24, 2, 2), 1);
        // Never fewer than one.
        assert_eq!(threads_for(0, 0, 24, 2, 2), 1);
    }

    #[test]
    fn proc_files_are_read_as_the_kernel_writes_them() {
        let stat = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 50 2 25 400 10 0 1 1 0 0\ncpu1 50 3 25 400 10 1 1 2 0 0\nintr 1\n";
        assert_eq!(parse_proc_stat(stat), Some((981, 820, 2)));
        let own = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 37 5 0 0 20 0 3 0 100 1000 200";
        assert_eq!(parse_self_stat(own), Some(42));
        assert_eq!(parse_proc_stat("intr 1\n"), None);
        // This machine's own files parse.
        assert!(Sample::take().is_some());
    }
}
