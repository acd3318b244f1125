//! Files that are not what they claim to be, against the real binary: a FIFO
//! (nothing ever writes to it, so reading it would block forever),
//! `/dev/zero` (never ends, so reading it to the end fills memory) and links
//! to both, named wherever the assessor reads a file: the profile, the
//! config file, a key file, the rules and criteria files, a local image, a
//! batch input and an eval's labels. Each must be refused at once, with an
//! error that names the file, the variable and what it is, and the
//! documented exit code. Every run is under a virtual-memory limit and a
//! time guard, so a regression fails instead of hanging or swapping.
//!
//! Also here: a streamed (FIFO) JSONL batch loses nothing, and a result
//! file name too long for a naive temp name is still written atomically.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

/// The virtual memory a run may map: a few times what one assessment needs
/// (under 100 MiB), far below what reading `/dev/zero` to the end takes.
const MEMORY_LIMIT_KIB: u64 = 512 * 1024;

/// The guard on one run; a refusal takes milliseconds.
const RUN_GUARD: Duration = Duration::from_secs(20);

/// What "at once" means here: generous for a loaded 2-core CI machine, far
/// below a hang.
const PROMPTLY: Duration = Duration::from_secs(5);

/// Makes a FIFO at `path` (with the system's `mkfifo`, as an operator would).
fn mkfifo(path: &Path) -> PathBuf {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
    path.to_path_buf()
}

fn symlink(target: &Path, link: &Path) -> PathBuf {
    std::os::unix::fs::symlink(target, link).unwrap();
    link.to_path_buf()
}

/// The hostile files of one test: `(label, path, what the error calls it)`.
fn hostile_files(dir: &Path) -> Vec<(&'static str, PathBuf, &'static str)> {
    let fifo = mkfifo(&dir.join("pipe.json"));
    vec![
        ("FIFO", fifo.clone(), "FIFO (named pipe)"),
        ("/dev/zero", PathBuf::from("/dev/zero"), "character device"),
        (
            "link to a FIFO",
            symlink(&fifo, &dir.join("link-to-pipe.json")),
            "FIFO (named pipe)",
        ),
        (
            "link to /dev/zero",
            symlink(Path::new("/dev/zero"), &dir.join("link-to-zero.json")),
            "character device",
        ),
    ]
}

/// Runs the assessor in `dir` with `envs` and `args` under
/// [`MEMORY_LIMIT_KIB`] of virtual memory and [`RUN_GUARD`].
async fn run_limited(dir: &Path, envs: &Envs, args: &[&str]) -> AssessorOutput {
    let result_path = envs
        .get("RESULT_PATH")
        .filter(|p| !p.is_empty() && *p != "-")
        .map(|p| dir.join(p));
    let mut cmd = command(
        "sh",
        dir,
        envs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    cmd.arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(ASSESSOR)
        .args(args);
    let out = Process::spawn(cmd, None).wait(RUN_GUARD).await;
    let result = result_path
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .map(|bytes| serde_json::from_slice::<Value>(&bytes).expect("the result is JSON"));
    AssessorOutput {
        code: out.code,
        stdout: out.stdout,
        stderr: out.stderr,
        result,
        result_path,
        elapsed: out.elapsed,
    }
}

/// Asserts a prompt exit with `code`, and says what was measured.
fn assert_prompt(out: &AssessorOutput, case: &str, code: i32) {
    out.assert_no_panic().assert_code(code);
    assert!(
        out.elapsed < PROMPTLY,
        "{case}: took {:?}\n{}",
        out.elapsed,
        out.ctx()
    );
    println!("{case}: exit {} in {:?}", out.code, out.elapsed);
}

#[tokio::test]
async fn a_profile_that_is_a_fifo_or_a_device_is_an_error_result_at_once() {
    let dir = tempdir();
    for (label, path, found) in hostile_files(dir.path()) {
        let _ = std::fs::remove_file(dir.path().join("result.json"));
        let out = run_limited(dir.path(), &fixed_env(dir.path(), &path), &[]).await;
        assert_prompt(&out, &format!("PROFILE_PATH = {label}"), 3);
        let r = out.assert_error_result("profile_unreadable");
        let message = r["error"]["message"].as_str().unwrap();
        let expected = format!(
            "{}: is a {found}, expected a regular profile JSON file",
            path.display()
        );
        assert_eq!(message, expected, "{label}\n{}", out.ctx());
        assert!(out.stderr_mentions(&expected), "{label}\n{}", out.ctx());
    }
}

#[tokio::test]
async fn start_up_files_that_are_not_regular_files_exit_2_naming_the_variable() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "profile.json", &simple_profile("p1", "a flat"));
    let hostile = hostile_files(dir.path());
    for (variable, value) in [
        ("CONFIG_PATH", ""),
        ("LLM_API_KEY_FILE", ""),
        ("ASSESSOR_RULES", "@"),
        ("ASSESSOR_CRITERIA_FILE", ""),
    ] {
        for (label, path, found) in &hostile {
            let _ = std::fs::remove_file(dir.path().join("result.json"));
            let envs =
                fixed_env(dir.path(), &profile).set(variable, format!("{value}{}", path.display()));
            let out = run_limited(dir.path(), &envs, &[]).await;
            assert_prompt(&out, &format!("{variable} = {label}"), 2);
            assert!(
                out.result.is_none(),
                "a start-up error writes no result\n{}",
                out.ctx()
            );
            for needle in [
                variable,
                &path.display().to_string(),
                &format!("is a {found}, not a regular file"),
            ] {
                assert!(
                    out.stderr.contains(needle),
                    "{variable} = {label}: stderr must say {needle:?}\n{}",
                    out.ctx()
                );
            }
        }
    }
}

#[tokio::test]
async fn oversized_setting_files_are_refused_by_their_cap() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "profile.json", &simple_profile("p1", "a flat"));
    // Valid JSON padded past the 1 MiB cap: refused by size, not by parsing.
    let mut padded = vec![b' '; 1024 * 1024 + 1];
    padded.extend_from_slice(b"{}");
    let big = write_bytes(dir.path(), "big.json", &padded);
    for (variable, value) in [
        ("CONFIG_PATH", big.display().to_string()),
        ("ASSESSOR_RULES", format!("@{}", big.display())),
        ("ASSESSOR_CRITERIA_FILE", big.display().to_string()),
    ] {
        let envs = fixed_env(dir.path(), &profile).set(variable, &value);
        let out = run_limited(dir.path(), &envs, &[]).await;
        assert_prompt(&out, &format!("{variable} = 1 MiB + 3 bytes"), 2);
        assert!(
            out.stderr.contains(variable)
                && out
                    .stderr
                    .contains("is 1048579 bytes, larger than the 1048576-byte limit"),
            "{variable}\n{}",
            out.ctx()
        );
    }
}

#[tokio::test]
async fn eval_labels_that_are_a_fifo_or_a_device_exit_2() {
    let dir = tempdir();
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    for (label, path, found) in hostile_files(dir.path()) {
        let args = [
            "eval",
            "--labels",
            path.to_str().unwrap(),
            "--result-dir",
            results.to_str().unwrap(),
        ];
        let envs = Envs::new().set("LLM_BACKEND", "fixed");
        let out = run_limited(dir.path(), &envs, &args).await;
        assert_prompt(&out, &format!("EVAL_LABELS = {label}"), 2);
        assert!(
            out.stderr_mentions(&format!(
                "{}: cannot read the labels: is a {found}, not a regular file",
                path.display()
            )),
            "{label}\n{}",
            out.ctx()
        );
    }
}

#[tokio::test]
async fn a_local_image_that_is_a_fifo_gets_a_caption_error_and_the_assessment_completes() {
    let dir = tempdir();
    mkfifo(&dir.path().join("pipe.png"));
    let server = FakeOpenAi::start(Vec::new()).await;
    let mut profile = simple_profile("fifo-image", "a flat with a garden");
    profile["images"] = json!(["pipe.png"]);
    let profile = write_json(dir.path(), "profile.json", &profile);
    let envs = llm_env(&server, dir.path(), &profile)
        .set("CAPTION_BACKEND", "openai")
        .set("CAPTION_MODEL", "vision-test");
    let out = run_limited(dir.path(), &envs, &[]).await;
    assert_prompt(&out, "a local image = FIFO", 0);
    let r = out.result();
    assert_eq!(r["status"], "ok", "{}", out.ctx());
    let record = &r["captions"][0];
    assert_eq!(record["image"], "pipe.png", "{}", out.ctx());
    assert_eq!(record["error"]["kind"], "image_unreadable", "{}", out.ctx());
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is a FIFO (named pipe), not a regular file"),
        "{}",
        out.ctx()
    );
    assert_eq!(
        server.count(),
        1,
        "only the judge was asked, not the vision model"
    );
}

#[tokio::test]
async fn a_batch_directory_entry_that_is_a_fifo_gets_an_error_result() {
    let dir = tempdir();
    let input = dir.path().join("input");
    std::fs::create_dir(&input).unwrap();
    write_json(&input, "a.json", &simple_profile("a", "a flat"));
    mkfifo(&input.join("b.json"));
    symlink(Path::new("/dev/zero"), &input.join("c.json"));
    let results = dir.path().join("results");
    let envs = Envs::new()
        .set("PROFILE_PATH", input.to_str().unwrap())
        .set("RESULT_DIR", results.to_str().unwrap())
        .set("LLM_BACKEND", "fixed");
    let out = run_limited(dir.path(), &envs, &[]).await;
    // The batch exit code for invalid entries is the batch's business (0 or
    // 3); what matters here is that nothing hangs and nothing is lost.
    out.assert_no_panic();
    assert!(
        matches!(out.code, 0 | 3),
        "exit code {}\n{}",
        out.code,
        out.ctx()
    );
    assert!(out.elapsed < PROMPTLY, "{:?}\n{}", out.elapsed, out.ctx());
    println!(
        "a batch directory with a FIFO and a link to /dev/zero: exit {} in {:?}",
        out.code, out.elapsed
    );
    let mut errors = Vec::new();
    let mut ok = 0;
    for file in std::fs::read_dir(&results).unwrap() {
        let r: Value =
            serde_json::from_slice(&std::fs::read(file.unwrap().path()).unwrap()).unwrap();
        match r["status"].as_str() {
            Some("ok") => ok += 1,
            _ => errors.push(r["error"]["message"].as_str().unwrap().to_string()),
        }
    }
    errors.sort();
    assert_eq!(ok, 1, "{errors:?}\n{}", out.ctx());
    assert_eq!(errors.len(), 2, "{errors:?}\n{}", out.ctx());
    assert!(
        errors[0].ends_with("b.json: is a FIFO (named pipe), expected a regular profile JSON file"),
        "{errors:?}"
    );
    assert!(
        errors[1].ends_with("c.json: is a character device, expected a regular profile JSON file"),
        "{errors:?}"
    );
}

/// One JSONL line per profile, `p000` … .
fn jsonl_lines(count: usize) -> String {
    (0..count)
        .map(|n| {
            let profile = simple_profile(&format!("p{n:03}"), "a flat with a garden");
            format!("{profile}\n")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_jsonl_of_200_lines_gives_200_results() {
    const COUNT: usize = 200;
    let dir = tempdir();
    let input = mkfifo(&dir.path().join("input.jsonl"));
    let results = dir.path().join("results");
    // The producer: opening a FIFO for writing waits for its reader, so it
    // runs beside the assessor; it ends when everything is written (or the
    // reader is gone: EPIPE).
    let producer = {
        let input = input.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut pipe = std::fs::OpenOptions::new().write(true).open(&input)?;
            // In pieces, as a producer streaming a large input would.
            for line in jsonl_lines(COUNT).lines() {
                pipe.write_all(line.as_bytes())?;
                pipe.write_all(b"\n")?;
            }
            Ok(())
        })
    };
    let envs = Envs::new()
        .set("PROFILE_PATH", input.to_str().unwrap())
        .set("RESULT_DIR", results.to_str().unwrap())
        .set("LLM_BACKEND", "fixed");
    let out = run_limited(dir.path(), &envs, &[]).await;
    assert_prompt(&out, "a FIFO JSONL of 200 lines", 0);
    producer
        .join()
        .expect("the producer thread")
        .expect("the producer wrote every line");
    let mut ids: Vec<String> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    ids.sort();
    let expected: Vec<String> = (0..COUNT).map(|n| format!("p{n:03}.json")).collect();
    assert_eq!(ids, expected, "one result per line\n{}", out.ctx());
}

#[tokio::test]
async fn a_jsonl_input_that_is_a_device_is_refused_at_once() {
    let dir = tempdir();
    let input = symlink(Path::new("/dev/zero"), &dir.path().join("input.jsonl"));
    let results = dir.path().join("results");
    let envs = Envs::new()
        .set("PROFILE_PATH", input.to_str().unwrap())
        .set("RESULT_DIR", results.to_str().unwrap())
        .set("LLM_BACKEND", "fixed");
    let out = run_limited(dir.path(), &envs, &[]).await;
    assert_prompt(&out, "a JSONL input = link to /dev/zero", 3);
    assert!(
        out.stderr_mentions(&format!(
            "{}: is a character device; a JSONL batch input must be a regular file or a FIFO (named pipe)",
            input.display()
        )),
        "{}",
        out.ctx()
    );
}

#[tokio::test]
async fn a_result_name_of_250_bytes_is_written_atomically() {
    let dir = tempdir();
    let profile = write_json(dir.path(), "profile.json", &simple_profile("p1", "a flat"));
    let name = format!("{}.json", "r".repeat(245));
    assert_eq!(name.len(), 250);
    let envs = fixed_env(dir.path(), &profile).set("RESULT_PATH", &name);
    let out = run_limited(dir.path(), &envs, &[]).await;
    assert_prompt(&out, "RESULT_PATH with a 250-byte name", 0);
    assert_eq!(out.result()["status"], "ok", "{}", out.ctx());
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temp files left behind: {left:?}");
}
