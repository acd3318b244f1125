//! Results that go stale when the brief changes: every result records a
//! `fingerprint` of what decided it, and a resumed batch judges again the
//! results whose fingerprint differs from its own run's, and says how many.
//! The real binary against the kit's fake OpenAI server (requests counted).

use std::path::Path;

use serde_json::Value;
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");
const TOTAL: usize = 5;

fn batch_env(dir: &Path, server: &FakeOpenAi, criteria: &str) -> Envs {
    let lines: Vec<String> = (0..TOTAL)
        .map(|i| simple_profile(&format!("st{i}"), "A flat with a garden.").to_string())
        .collect();
    let input = write_bytes(dir, "in.jsonl", lines.join("\n").as_bytes());
    Envs::new()
        .set("PROFILE_PATH", input.to_str().unwrap())
        .set("RESULT_DIR", dir.join("results").to_str().unwrap())
        .set("LLM_BACKEND", "openai")
        .set("LLM_BASE_URL", server.base_url())
        .set("LLM_MODEL", "test-model")
        .set("ASSESSOR_CRITERIA", criteria)
}

fn fingerprints(dir: &Path) -> Vec<String> {
    (0..TOTAL)
        .map(|i| {
            let path = dir.join("results").join(format!("st{i}.json"));
            let r: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            r["fingerprint"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

/// Runs the batch; returns the requests it made.
async fn run(dir: &Path, server: &FakeOpenAi, envs: &Envs) -> (usize, AssessorOutput) {
    let before = server.count();
    let out = run_assessor(ASSESSOR, dir, envs, &[]).await;
    out.assert_no_panic().assert_code(0);
    (server.count() - before, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_brief_makes_the_batch_judge_again() {
    let dir = tempdir();
    let server = FakeOpenAi::start(vec![]).await;
    let brief_a = batch_env(dir.path(), &server, "Two bedrooms in Bristol.");

    let (asked, out) = run(dir.path(), &server, &brief_a).await;
    assert_eq!(asked, TOTAL, "{}", out.ctx());
    let first = fingerprints(dir.path());
    let re = regex::Regex::new(r"^sha256-[0-9a-f]{16}$").unwrap();
    assert!(first.iter().all(|f| re.is_match(f)), "{first:?}");
    assert!(
        first.iter().all(|f| *f == first[0]),
        "one run, one fingerprint"
    );

    // The same settings: resume skips everything.
    let (asked, out) = run(dir.path(), &server, &brief_a).await;
    assert_eq!(asked, 0, "{}", out.ctx());
    assert!(!out.stderr.contains("judged again"), "{}", out.ctx());

    // A result from before fingerprints (none recorded) is kept as it is.
    let legacy = dir.path().join("results/st0.json");
    let mut value: Value = serde_json::from_slice(&std::fs::read(&legacy).unwrap()).unwrap();
    value.as_object_mut().unwrap().remove("fingerprint");
    write_json(dir.path(), "results/st0.json", &value);

    // Another brief: the others are judged again, and the summary says so.
    let brief_b = brief_a
        .clone()
        .set("ASSESSOR_CRITERIA", "Three bedrooms in Bath.");
    let (asked, out) = run(dir.path(), &server, &brief_b).await;
    assert_eq!(asked, TOTAL - 1, "{}", out.ctx());
    assert!(
        out.stderr.contains(&format!(
            "| judged again (brief, rules or judge changed) | {} |",
            TOTAL - 1
        )),
        "{}",
        out.ctx()
    );
    let second = fingerprints(dir.path());
    assert_eq!(second[0], "", "the legacy result was kept");
    assert!(second[1..].iter().all(|f| re.is_match(f) && *f != first[0]));

    // Rules are part of it too.
    let rules = brief_b
        .clone()
        .set("ASSESSOR_RULES", r#"{"forbid": ["\\bauction\\b"]}"#);
    let (asked, _) = run(dir.path(), &server, &rules).await;
    assert_eq!(asked, TOTAL - 1);

    // --force still judges everything.
    let (asked, out) = run(
        dir.path(),
        &server,
        &rules.clone().set("ASSESSOR_FORCE", "true"),
    )
    .await;
    assert_eq!(asked, TOTAL, "{}", out.ctx());
}

#[tokio::test]
async fn a_single_result_records_its_fingerprint() {
    let dir = tempdir();
    let server = FakeOpenAi::start(vec![]).await;
    let profile = write_json(dir.path(), "p.json", &simple_profile("fp1", "A flat."));
    let envs = llm_env(&server, dir.path(), &profile);
    let a = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let b = run_assessor(ASSESSOR, dir.path(), &envs, &[]).await;
    let c = run_assessor(
        ASSESSOR,
        dir.path(),
        &envs.clone().set("LLM_MODEL", "other-model"),
        &[],
    )
    .await;
    let fp = |out: &AssessorOutput| assert_ok(out, "accept", "llm")["fingerprint"].clone();
    assert!(fp(&a).is_string(), "{}", a.ctx());
    assert_eq!(fp(&a), fp(&b), "same settings, same fingerprint");
    assert_ne!(fp(&a), fp(&c), "another model, another fingerprint");
}
