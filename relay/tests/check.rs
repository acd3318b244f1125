//! `relay check FILE...`: what the relay would do with each file, said by
//! the real binary: one line per file, exit 0 / 4 / 2, `--json`,
//! `--payload`, hostile names answered at once, the contract's leniency and
//! strictness as the running relay has them, and a run of the real relay
//! on the same files doing exactly what check said.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use testkit::*;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// Far above what check needs (it reads a few small files); a check that
/// waited on a FIFO or read /dev/zero would blow it.
const QUICK: Duration = Duration::from_secs(5);

/// The guard on the binary: a hang fails the test instead of CI.
const CHECK_GUARD: Duration = Duration::from_secs(15);

async fn check(envs: &Envs, args: &[&str]) -> Output {
    let args: Vec<&str> = std::iter::once("check")
        .chain(args.iter().copied())
        .collect();
    let out = spawn_relay_with_args(RELAY, envs, &args)
        .wait(CHECK_GUARD)
        .await;
    assert!(
        out.elapsed < QUICK,
        "relay check took {:?}\n{}",
        out.elapsed,
        out.ctx()
    );
    out
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// `relay check --json`'s lines, by file name.
fn json_lines(out: &Output) -> BTreeMap<String, Value> {
    out.stdout_lines()
        .into_iter()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line: {e}: {line}\n{}", out.ctx()));
            let file = value["file"].as_str().expect("file").to_string();
            let name = Path::new(&file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(file);
            (name, value)
        })
        .collect()
}

/// The text line for `name`.
fn line_for<'o>(out: &'o Output, name: &str) -> &'o str {
    out.stdout_lines()
        .into_iter()
        .find(|line| line.contains(&format!("/{name} ")))
        .unwrap_or_else(|| panic!("no line for {name}\n{}", out.ctx()))
}

fn documented_webhook_id(id: &str) -> String {
    let digest = Sha256::digest(format!("shortlist-result:{id}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// The mixed directory most tests check: every action, and the contract's
/// lenient and strict edges.
fn mixed(dir: &Path) -> Vec<PathBuf> {
    vec![
        write_atomic(dir, "accepted.json", &accept(&sample("s01"))),
        write_atomic(dir, "rejected.json", &reject(&sample("s02"))),
        write_bytes(
            dir,
            "heuristic.json",
            br#"{"verdict":"accept","decided_by":"heuristic","id":4711}"#,
        ),
        write_bytes(dir, "score86.json", br#"{"verdict":"accept","score":86}"#),
        write_bytes(dir, "maybe.json", br#"{"verdict":"maybe","id":"m1"}"#),
        write_bytes(dir, "half.json", br#"{"verdict":"acc"#),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_per_file_says_forward_skip_or_invalid_and_why() {
    let dir = tempdir();
    let files = mixed(dir.path());
    let args: Vec<&str> = files.iter().map(|p| path_str(p)).collect();
    let out = check(&Envs::new(), &args).await;
    out.assert_code(4);
    assert_eq!(out.stdout_lines().len(), files.len(), "{}", out.ctx());

    let accepted = line_for(&out, "accepted.json");
    let s01 = documented_webhook_id("s01");
    assert!(accepted.starts_with("forward "), "{accepted}");
    assert!(
        accepted.contains("accepted, score 0.86") && accepted.contains(r#"id "s01""#),
        "{accepted}"
    );
    assert!(accepted.contains(&s01), "{accepted}");

    let rejected = line_for(&out, "rejected.json");
    assert!(rejected.starts_with("skip "), "{rejected}");
    assert!(rejected.contains("verdict reject"), "{rejected}");

    // Lenient where the contract is: kept, and forwarded under its id.
    let heuristic = line_for(&out, "heuristic.json");
    assert!(heuristic.starts_with("forward "), "{heuristic}");
    assert!(heuristic.contains(r#"id "4711""#), "{heuristic}");
    assert!(
        heuristic.contains(&documented_webhook_id("4711")),
        "{heuristic}"
    );

    // Strict where the schema is: the relay's own reason, and the field.
    let score = line_for(&out, "score86.json");
    assert!(score.starts_with("invalid "), "{score}");
    assert!(
        score.contains("score 86 is outside [0, 1]") && score.contains(r#"(field "score")"#),
        "{score}"
    );
    let maybe = line_for(&out, "maybe.json");
    assert!(maybe.starts_with("invalid "), "{maybe}");
    assert!(
        maybe.contains("unknown variant `maybe`") && maybe.contains(r#"(field "verdict")"#),
        "{maybe}"
    );
    // Not complete JSON: invalid now, saying the relay would wait first.
    let half = line_for(&out, "half.json");
    assert!(half.starts_with("invalid "), "{half}");
    assert!(half.contains("RELAY_SETTLE_TIMEOUT"), "{half}");
    assert!(
        out.stderr.trim().is_empty(),
        "nothing on stderr\n{}",
        out.ctx()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_valid_exits_0_whatever_the_verdicts() {
    let dir = tempdir();
    let files = [
        write_atomic(dir.path(), "accepted.json", &accept(&sample("s01"))),
        write_atomic(dir.path(), "rejected.json", &reject(&sample("s02"))),
        write_atomic(dir.path(), "error.json", &error_result(&sample("s03"))),
        write_bytes(dir.path(), "minimal.json", br#"{"verdict":"accept"}"#),
        write_bytes(dir.path(), "null.json", br#"{"verdict":null}"#),
        write_bytes(
            dir.path(),
            "named.txt",
            br#"{"verdict":"accept","id":"t1"}"#,
        ),
    ];
    let args: Vec<&str> = files.iter().map(|p| path_str(p)).collect();
    let out = check(&Envs::new(), &args).await;
    out.assert_code(0);
    let error = line_for(&out, "error.json");
    assert!(
        error.starts_with("skip ") && error.contains("status error") && error.contains("exits 5"),
        "{error}"
    );
    // Without an id or a profile the webhook-id is made per pod: said, not guessed.
    let minimal = line_for(&out, "minimal.json");
    assert!(
        minimal.starts_with("forward ") && minimal.contains("per pod"),
        "{minimal}"
    );
    assert!(!minimal.contains("msg_"), "{minimal}");
    assert!(
        line_for(&out, "null.json").starts_with("skip "),
        "{}",
        out.ctx()
    );
    // Valid, but a WATCH_DIR relay would never read that name: said too.
    let named = line_for(&out, "named.txt");
    assert!(
        named.starts_with("forward ")
            && named.contains("note: a relay watching the directory (WATCH_DIR) skips this name"),
        "{named}"
    );
    assert!(!minimal.contains("note:"), "{minimal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let dir = tempdir();
    let file = write_bytes(dir.path(), "r.json", br#"{"verdict":"accept"}"#);
    let file = path_str(&file);
    for (envs, args, says) in [
        (Envs::new(), vec![], "<FILE>"),
        (Envs::new(), vec!["--bogus", file], "--bogus"),
        (
            Envs::new(),
            vec!["--min-score", "86", file],
            // The flag the user typed, not the variable.
            "--min-score",
        ),
        (
            Envs::new().set("RELAY_MIN_SCORE", "high"),
            vec![file],
            "RELAY_MIN_SCORE",
        ),
    ] {
        let out = check(&envs, &args).await;
        out.assert_code(2);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.ctx());
        assert!(out.stdout.is_empty(), "{}", out.ctx());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_action_reason_field_and_ids() {
    let dir = tempdir();
    let files = mixed(dir.path());
    let mut args = vec!["--json"];
    args.extend(files.iter().map(|p| path_str(p)));
    let out = check(&Envs::new(), &args).await;
    out.assert_code(4);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), files.len(), "{}", out.ctx());

    let accepted = &lines["accepted.json"];
    assert_eq!(accepted["file"], path_str(&files[0]));
    assert_eq!(accepted["action"], "forward");
    assert_eq!(accepted["verdict"], "accept");
    assert_eq!(accepted["score"], 0.86);
    assert_eq!(accepted["status"], "ok");
    assert_eq!(accepted["id"], "s01");
    assert_eq!(accepted["id_source"], "result");
    assert_eq!(accepted["webhook_id"], documented_webhook_id("s01"));
    assert_eq!(accepted["field"], Value::Null);
    assert_eq!(accepted["note"], Value::Null);
    assert!(accepted.get("payload").is_none(), "only with --payload");

    let rejected = &lines["rejected.json"];
    assert_eq!(rejected["action"], "skip");
    assert_eq!(rejected["verdict"], "reject");
    assert_eq!(rejected["id"], "s02");
    assert_eq!(rejected["webhook_id"], Value::Null, "not forwarded");

    let heuristic = &lines["heuristic.json"];
    assert_eq!(heuristic["action"], "forward");
    assert_eq!(heuristic["id"], "4711");
    assert_eq!(heuristic["webhook_id"], documented_webhook_id("4711"));

    for (name, field) in [("score86.json", "score"), ("maybe.json", "verdict")] {
        let line = &lines[name];
        assert_eq!(line["action"], "invalid", "{line}");
        assert_eq!(line["field"], field, "{line}");
        assert!(
            line["reason"]
                .as_str()
                .unwrap()
                .contains("is not a valid result")
        );
    }
    assert_eq!(lines["half.json"]["action"], "invalid");
    assert_eq!(lines["half.json"]["field"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_invalid_at_once() {
    let dir = tempdir();
    let fifo = dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    // Sparse: 64 MiB that cost nothing to make; check must not read them.
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let subdir = dir.path().join("dir.json");
    std::fs::create_dir(&subdir).unwrap();
    let missing = dir.path().join("missing.json");
    let empty = write_bytes(dir.path(), "empty.json", b"");
    let valid = write_bytes(dir.path(), "valid.json", br#"{"verdict":"reject"}"#);
    let args = [
        path_str(&fifo),
        "/dev/zero",
        path_str(&huge),
        path_str(&subdir),
        path_str(&missing),
        path_str(&empty),
        path_str(&valid),
    ];
    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let out = check(&Envs::new(), &json_args).await;
    out.assert_code(4);
    let lines = json_lines(&out);
    for (name, says) in [
        ("fifo.json", "a FIFO"),
        ("zero", "a character device"),
        ("huge.json", "larger than the 33554432-byte limit"),
        ("dir.json", "a directory"),
        ("missing.json", "No such file"),
        ("empty.json", "is empty"),
    ] {
        let line = &lines[name];
        assert_eq!(line["action"], "invalid", "{name}: {line}");
        let reason = line["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{name}: {reason}");
    }
    assert_eq!(lines["valid.json"]["action"], "skip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_score_and_profile_path_apply_as_in_the_relay() {
    let dir = tempdir();
    let profile = write_json(
        dir.path(),
        "profile.json",
        &json!({"text": "A flat", "metadata": {"id": "p7"}}),
    );
    let low = write_bytes(
        dir.path(),
        "low.json",
        br#"{"verdict":"accept","score":0.3,"id":"low"}"#,
    );
    let high = write_bytes(
        dir.path(),
        "high.json",
        br#"{"verdict":"accept","score":0.9,"id":"high"}"#,
    );
    let bare = write_bytes(dir.path(), "bare.json", br#"{"verdict":"accept"}"#);
    let envs = Envs::new()
        .set("RELAY_MIN_SCORE", "0.5")
        .set("PROFILE_PATH", path_str(&profile));
    let out = check(
        &envs,
        &["--json", path_str(&low), path_str(&high), path_str(&bare)],
    )
    .await;
    out.assert_code(0);
    let lines = json_lines(&out);
    assert_eq!(lines["low.json"]["action"], "skip");
    assert!(
        lines["low.json"]["reason"]
            .as_str()
            .unwrap()
            .contains("below RELAY_MIN_SCORE 0.5"),
        "{}",
        out.ctx()
    );
    assert_eq!(lines["high.json"]["action"], "forward");
    // No id of its own: PROFILE_PATH's metadata.id, as the relay derives it.
    assert_eq!(lines["bare.json"]["action"], "forward");
    assert_eq!(lines["bare.json"]["id"], "p7");
    assert_eq!(lines["bare.json"]["id_source"], "profile");
    assert_eq!(
        lines["bare.json"]["webhook_id"],
        documented_webhook_id("p7")
    );

    // The flags do the same, after the command.
    let out = check(
        &Envs::new(),
        &[
            "--min-score",
            "0.95",
            "--profile",
            path_str(&profile),
            "--json",
            path_str(&high),
        ],
    )
    .await;
    out.assert_code(0);
    assert_eq!(json_lines(&out)["high.json"]["action"], "skip");
}

/// The point of check: the running relay, given the same files, forwards
/// exactly what check says, under the same `webhook-id`, with the very
/// bytes `--payload` printed; and exits 4 because one is invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_does_what_check_said() {
    let dir = tempdir();
    let profile = write_json(
        dir.path(),
        "profile.json",
        &json!({"text": "A flat\nwith a garden", "metadata": {"id": "p9", "price": 1}, "source": "x"}),
    );
    let files = [
        write_atomic(dir.path(), "accepted.json", &accept(&sample("s01"))),
        write_atomic(dir.path(), "rejected.json", &reject(&sample("s02"))),
        write_bytes(
            dir.path(),
            "heuristic.json",
            br#"{"verdict":"accept","decided_by":"heuristic","id":4711,"score":0.9}"#,
        ),
        write_bytes(dir.path(), "bare.json", br#"{"verdict":"accept"}"#),
        write_bytes(
            dir.path(),
            "score86.json",
            br#"{"verdict":"accept","score":86}"#,
        ),
    ];
    let envs = Envs::new().set("PROFILE_PATH", path_str(&profile));
    let mut args = vec!["--json", "--payload"];
    args.extend(files.iter().map(|p| path_str(p)));
    let checked = check(&envs, &args).await;
    checked.assert_code(4);
    let said: BTreeMap<String, Value> = json_lines(&checked)
        .into_values()
        .filter(|line| line["action"] == "forward")
        .map(|line| (line["webhook_id"].as_str().unwrap().to_string(), line))
        .collect();
    assert_eq!(said.len(), 3, "{}", checked.ctx());

    let server = Notifier::start(vec![]).await;
    let envs = dir_env(dir.path(), &server.url("/hook"), files.len() as u64)
        .set("PROFILE_PATH", path_str(&profile));
    let out = spawn_relay(RELAY, &envs).wait(GUARD).await;
    out.assert_code(4);
    let requests = server.requests();
    assert_eq!(requests.len(), said.len(), "{}", server.describe());
    for request in &requests {
        let line = said.get(&request.webhook_id()).unwrap_or_else(|| {
            panic!(
                "delivered a webhook-id check did not predict\n{}",
                request.describe()
            )
        });
        let payload = serde_json::to_vec(&line["payload"]).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&payload),
            request.text(),
            "--payload is the body sent, byte for byte"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_prints_the_body_under_its_line() {
    let dir = tempdir();
    let file = write_atomic(dir.path(), "accepted.json", &accept(&sample("s01")));
    let rejected = write_atomic(dir.path(), "rejected.json", &reject(&sample("s02")));
    let out = check(
        &Envs::new(),
        &["--payload", path_str(&file), path_str(&rejected)],
    )
    .await;
    out.assert_code(0);
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 3, "{}", out.ctx());
    assert!(lines[0].starts_with("forward "), "{}", out.ctx());
    let body: Value = serde_json::from_str(lines[1]).expect("the body, as one JSON line");
    assert_webhook_body(&body, &accept(&sample("s01")));
    assert!(lines[2].starts_with("skip "), "{}", out.ctx());
}

#[tokio::test]
async fn help_lists_the_check_command() {
    let out = spawn_relay_with_args(RELAY, &Envs::new(), &["--help"])
        .wait(CHECK_GUARD)
        .await;
    out.assert_code(0);
    assert!(out.stdout.contains("check"), "{}", out.ctx());
    let out = spawn_relay_with_args(RELAY, &Envs::new(), &["check", "--help"])
        .wait(CHECK_GUARD)
        .await;
    out.assert_code(0);
    for needle in ["--json", "--payload", "PROFILE_PATH", "RELAY_MIN_SCORE"] {
        assert!(out.stdout.contains(needle), "{needle}\n{}", out.ctx());
    }
}
