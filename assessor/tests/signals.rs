//! SIGTERM, SIGINT and the command backend's children, against the real
//! binary: a command that leaves a grandchild (`sleep 300 &` under `sh`)
//! loses it on `COMMAND_TIMEOUT` and when the assessor is stopped; a single
//! assessment stopped by a signal exits 143 / 130 at once and writes
//! nothing; a batch stopped mid-way drains, prints its summary with what is
//! left, exits 143, and the next run resumes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

/// A shell script judge; `$here` is its directory.
fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let text = format!("#!/bin/sh\nhere=$(dirname \"$0\")\n{body}\n");
    let path = write_bytes(dir, name, text.as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A judge that starts a grandchild (`sleep 300`, its pid written to
/// `$here/pids/<shell pid>`), then waits for it: it never answers.
fn grandchild_script(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("pids")).unwrap();
    write_script(
        dir,
        "judge.sh",
        r#"cat >/dev/null
sleep 300 &
echo $! > "$here/pids/$$.tmp" && mv "$here/pids/$$.tmp" "$here/pids/$$"
wait"#,
    )
}

/// The grandchildren's pids written so far.
fn grandchildren(dir: &Path) -> Vec<i32> {
    std::fs::read_dir(dir.join("pids"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|text| text.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` is gone (no such process, or a zombie waiting for its
/// new parent to reap it: it runs no more).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// Asserts every pid is gone within a few seconds.
async fn assert_all_gone(pids: &[i32], ctx: &str) {
    assert!(!pids.is_empty(), "no grandchild was started\n{ctx}");
    let all_gone = wait_until(Duration::from_secs(5), || pids.iter().all(|p| gone(*p))).await;
    if !all_gone {
        for pid in pids {
            // SAFETY: kill(2) with plain integers; cleans up after a failed test.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }
    assert!(all_gone, "grandchildren {pids:?} survived\n{ctx}");
}

/// The command judge running `script`.
fn command_judge(envs: Envs, script: &Path) -> Envs {
    envs.set("LLM_BACKEND", "command")
        .set("ASSESSOR_COMMAND", format!("'{}'", script.display()))
        .set("COMMAND_TIMEOUT", "60s")
}

fn command_env(dir: &Path, profile: &Path, script: &Path) -> Envs {
    let envs = Envs::new()
        .set("PROFILE_PATH", profile.to_str().unwrap())
        .set("RESULT_PATH", dir.join("result.json").to_str().unwrap());
    command_judge(envs, script)
}

/// A batch of `input` into `results` with the command judge, two at a time.
fn command_batch_env(input: &Path, results: &Path, script: &Path, drain: &str) -> Envs {
    let envs = Envs::new()
        .set("PROFILE_PATH", input.to_str().unwrap())
        .set("RESULT_DIR", results.to_str().unwrap())
        .set("ASSESSOR_JOBS", "2")
        .set("ASSESSOR_DRAIN_TIMEOUT", drain);
    command_judge(envs, script)
}

fn spawn(dir: &Path, envs: &Envs) -> Process {
    let cmd = command(
        ASSESSOR,
        dir,
        envs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    Process::spawn(cmd, None)
}

#[tokio::test]
async fn command_timeout_ends_the_grandchild_too() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("sig1", "A flat."));
    let script = grandchild_script(dir.path());
    let envs = command_env(dir.path(), &profile, &script).set("COMMAND_TIMEOUT", "1s");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    out.assert_no_panic().assert_code(4);
    out.assert_error_result("timeout");
    // The grandchild holds stdout open: only ending the group ends the wait.
    assert!(
        out.elapsed < Duration::from_secs(5),
        "COMMAND_TIMEOUT=1s took {:?}\n{}",
        out.elapsed,
        out.ctx()
    );
    assert_all_gone(&grandchildren(dir.path()), &out.ctx()).await;
}

#[tokio::test]
async fn a_helper_left_running_does_not_hold_up_the_answer() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("pids")).unwrap();
    let profile = write_json(dir.path(), "p.json", &simple_profile("sig4", "A flat."));
    // The helper inherits stdout: the pipe closes only when it is gone.
    let script = write_script(
        dir.path(),
        "judge.sh",
        r#"cat >/dev/null
sleep 300 &
echo $! > "$here/pids/$$"
echo '{"verdict":"accept","reasons":["quick"]}'"#,
    );
    let envs = command_env(dir.path(), &profile, &script).set("COMMAND_TIMEOUT", "20s");
    let out = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    assert_ok(&out, "accept", "command");
    assert!(
        out.elapsed < Duration::from_secs(5),
        "the answer waited for the helper: {:?}\n{}",
        out.elapsed,
        out.ctx()
    );
    assert_all_gone(&grandchildren(dir.path()), &out.ctx()).await;
}

#[tokio::test]
async fn sigterm_stops_a_single_assessment_and_its_command_at_once() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("sig2", "A flat."));
    let script = grandchild_script(dir.path());
    let envs = command_env(dir.path(), &profile, &script);
    let process = spawn(dir.path(), &envs);
    let started = wait_until(GUARD, || !grandchildren(dir.path()).is_empty()).await;
    assert!(started, "the judge never started\n{}", process.ctx());
    let signalled = Instant::now();
    process.sigterm();
    let out = process.wait(GUARD).await;
    let took = signalled.elapsed();
    out.assert_code(143);
    assert!(
        took < Duration::from_secs(4),
        "SIGTERM took {took:?} to end it\n{}",
        out.ctx()
    );
    assert!(
        !dir.path().join("result.json").exists(),
        "a stopped assessment writes no result\n{}",
        out.ctx()
    );
    assert!(out.stderr.contains("SIGTERM"), "{}", out.ctx());
    assert_all_gone(&grandchildren(dir.path()), &out.ctx()).await;
}

#[tokio::test]
async fn sigint_stops_a_single_assessment_waiting_on_the_server() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "p.json", &simple_profile("sig3", "A flat."));
    let server = FakeOpenAi::start(vec![hang()]).await;
    let envs = llm_env(&server, dir.path(), &profile);
    let process = spawn(dir.path(), &envs);
    let asked = wait_until(GUARD, || server.count() >= 1).await;
    assert!(asked, "the judge was never asked\n{}", process.ctx());
    let signalled = Instant::now();
    process.sigint();
    let out = process.wait(GUARD).await;
    out.assert_code(130);
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "SIGINT took {:?}\n{}",
        signalled.elapsed(),
        out.ctx()
    );
    assert!(!dir.path().join("result.json").exists(), "{}", out.ctx());
    assert_eq!(server.count(), 1, "{}", out.ctx());
}

/// `n` profiles `b00`.. as a JSONL file.
fn jsonl(dir: &Path, n: usize) -> PathBuf {
    let lines: Vec<String> = (0..n)
        .map(|i| simple_profile(&format!("b{i:02}"), "A flat with a garden.").to_string())
        .collect();
    write_bytes(dir, "profiles.jsonl", (lines.join("\n") + "\n").as_bytes())
}

/// Result files in `dir` (not temp files).
fn result_files(dir: &Path) -> Vec<Value> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    !name.starts_with('.') && name.ends_with(".json")
                })
                .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The `N` of "stopped by SIGxxx: N left".
fn left_count(stderr: &str) -> u64 {
    let re = regex::Regex::new(r"stopped by SIG[A-Z]+: (\d+) left; run again to resume").unwrap();
    re.captures(stderr)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("no 'N left' line in stderr:\n{}", clip_tail(stderr, 4000)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stopped_mid_way_drains_reports_what_is_left_and_resumes() {
    const TOTAL: usize = 30;
    let dir = tempdir();
    let input = jsonl(dir.path(), TOTAL);
    let results = dir.path().join("results");
    let server = FakeOpenAi::answering(|_| {
        verdict("accept", 0.9, "garden").delayed(Duration::from_millis(200))
    })
    .await;
    let envs = Envs::new()
        .set("PROFILE_PATH", input.to_str().unwrap())
        .set("RESULT_DIR", results.to_str().unwrap())
        .set("LLM_BACKEND", "openai")
        .set("LLM_BASE_URL", server.base_url())
        .set("LLM_MODEL", "test-model")
        .set("ASSESSOR_JOBS", "2")
        .set("ASSESSOR_DRAIN_TIMEOUT", "10s");
    let process = spawn(dir.path(), &envs);
    let some_done = wait_until(GUARD, || result_files(&results).len() >= 4).await;
    assert!(some_done, "no progress\n{}", process.ctx());
    let signalled = Instant::now();
    process.sigterm();
    let out = process.wait(GUARD).await;
    let took = signalled.elapsed();
    out.assert_code(143);
    // In flight: two requests of 200 ms; nothing waits for the drain time.
    assert!(
        took < Duration::from_secs(3),
        "the drain took {took:?}\n{}",
        out.ctx()
    );
    assert!(out.stderr.contains("batch summary"), "{}", out.ctx());
    let left = left_count(&out.stderr);
    let written = result_files(&results);
    assert!(
        written.iter().all(|r| r["status"] == "ok"),
        "the drained profiles' results are whole and ok\n{}",
        out.ctx()
    );
    assert!(left > 0, "stopped too late to test anything\n{}", out.ctx());
    assert_eq!(
        written.len() as u64 + left,
        TOTAL as u64,
        "written + left = all\n{}",
        out.ctx()
    );
    assert_eq!(
        server.count(),
        written.len(),
        "every request in flight finished with its result\n{}",
        out.ctx()
    );

    // The next run judges exactly what was left.
    let before = server.count();
    let again = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    again.assert_no_panic().assert_code(0);
    assert_eq!((server.count() - before) as u64, left, "{}", again.ctx());
    assert_eq!(result_files(&results).len(), TOTAL, "{}", again.ctx());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_its_drain_time_abandons_its_commands_and_their_children() {
    let dir = tempdir();
    let input = jsonl(dir.path(), 6);
    let results = dir.path().join("results");
    let script = grandchild_script(dir.path());
    let envs = command_batch_env(&input, &results, &script, "500ms");
    let process = spawn(dir.path(), &envs);
    let started = wait_until(GUARD, || grandchildren(dir.path()).len() >= 2).await;
    assert!(started, "the judges never started\n{}", process.ctx());
    let signalled = Instant::now();
    process.sigterm();
    let out = process.wait(GUARD).await;
    let took = signalled.elapsed();
    out.assert_code(143);
    assert!(
        took < Duration::from_secs(5),
        "drain 500ms + grace took {took:?}\n{}",
        out.ctx()
    );
    assert_eq!(left_count(&out.stderr), 6, "{}", out.ctx());
    assert!(
        result_files(&results).is_empty(),
        "nothing is written for an abandoned judgement\n{}",
        out.ctx()
    );
    let pids = grandchildren(dir.path());
    assert_eq!(
        pids.len(),
        2,
        "only ASSESSOR_JOBS judges ran\n{}",
        out.ctx()
    );
    assert_all_gone(&pids, &out.ctx()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_ends_the_drain_at_once() {
    let dir = tempdir();
    let input = jsonl(dir.path(), 6);
    let results = dir.path().join("results");
    let script = grandchild_script(dir.path());
    let envs = command_batch_env(&input, &results, &script, "60s");
    let mut process = spawn(dir.path(), &envs);
    let started = wait_until(GUARD, || grandchildren(dir.path()).len() >= 2).await;
    assert!(started, "the judges never started\n{}", process.ctx());
    process.sigterm();
    let draining = process
        .wait_for_stderr(GUARD, |e| e.contains("those in flight may finish"))
        .await;
    assert!(draining, "no drain\n{}", process.ctx());
    let insisted = Instant::now();
    process.sigint();
    let out = process.wait(GUARD).await;
    out.assert_code(143);
    assert!(
        insisted.elapsed() < Duration::from_secs(5),
        "the second signal took {:?}\n{}",
        insisted.elapsed(),
        out.ctx()
    );
    assert_eq!(left_count(&out.stderr), 6, "{}", out.ctx());
    assert_all_gone(&grandchildren(dir.path()), &out.ctx()).await;
}
