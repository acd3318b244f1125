//! Batch exit codes that fit an Indexed Job: a batch whose every profile
//! got a result (ok, or an error result for an invalid one) exits 0 and
//! reports the invalid ones; exit 3 only when no profile at all could be
//! read. The real binary, the `fixed` judge.

use std::path::Path;

use serde_json::Value;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

fn batch(dir: &Path, lines: &[String]) -> Envs {
    let input = write_bytes(dir, "in.jsonl", (lines.join("\n") + "\n").as_bytes());
    Envs::new()
        .set("PROFILE_PATH", input.to_str().unwrap())
        .set("RESULT_DIR", dir.join("results").to_str().unwrap())
        .set("LLM_BACKEND", "fixed")
}

fn results(dir: &Path) -> Vec<Value> {
    std::fs::read_dir(dir.join("results"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_line_among_many_exits_0_and_is_reported() {
    const TOTAL: usize = 200;
    let dir = tempdir();
    let lines: Vec<String> = (0..TOTAL)
        .map(|i| match i {
            117 => "{not json".to_string(),
            _ => simple_profile(&format!("x{i:03}"), "A flat.").to_string(),
        })
        .collect();
    let out = run_assessor(ASSESSOR, dir.path(), &batch(dir.path(), &lines), &[]).await;
    out.assert_no_panic().assert_code(0);
    assert!(
        out.stderr
            .contains("| invalid profiles (error results written) | 1 |"),
        "{}",
        out.ctx()
    );
    assert!(
        out.stderr.contains("| error profile_invalid | 1 |"),
        "{}",
        out.ctx()
    );
    let all = results(dir.path());
    assert_eq!(all.len(), TOTAL, "one result per line\n{}", out.ctx());
    let errors: Vec<&Value> = all.iter().filter(|r| r["status"] == "error").collect();
    assert_eq!(errors.len(), 1, "{}", out.ctx());
    assert_eq!(errors[0]["error"]["kind"], "profile_invalid");
    assert!(
        errors[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 118"),
        "{}",
        errors[0]
    );
}

#[tokio::test]
async fn a_batch_with_no_readable_profile_exits_3() {
    let dir = tempdir();
    let lines = vec!["{oops".to_string(), "[]".to_string(), "42".to_string()];
    let out = run_assessor(ASSESSOR, dir.path(), &batch(dir.path(), &lines), &[]).await;
    out.assert_no_panic().assert_code(3);
    let all = results(dir.path());
    assert_eq!(
        all.len(),
        3,
        "each bad line has its error result\n{}",
        out.ctx()
    );
    assert!(all.iter().all(|r| r["status"] == "error"));
}

#[tokio::test]
async fn an_empty_batch_exits_0() {
    let dir = tempdir();
    let out = run_assessor(ASSESSOR, dir.path(), &batch(dir.path(), &[]), &[]).await;
    out.assert_no_panic().assert_code(0);
}
