//! The README's assessor commands work as written. Every ```sh block after a
//! `<!-- tested: readme -->` comment is run, command by command, in one
//! temporary directory holding the files the commands name (`listing.json`,
//! `listing.md`, `listings.jsonl`, `labels.json`, the results `eval`
//! compares), against a fake OpenAI-compatible judge: `LLM_BASE_URL` (any
//! `*_BASE_URL`) points at it, `~` is a temporary home, and
//! `target/release/assessor` is the binary under test. Each command must
//! exit 0, and a result it writes must be a complete, valid one.

use std::path::Path;

use serde_json::{Value, json};
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");
const MARK: &str = "<!-- tested: readme";

/// One command of a block: its environment (`VAR=value` words before it,
/// and the block's `export`s) and its words after the program.
#[derive(Debug)]
struct Command {
    line: String,
    env: Vec<(String, String)>,
    program: String,
    args: Vec<String>,
    /// What is piped into it (`cat FILE | ...`).
    stdin_file: Option<String>,
}

/// The marked ```sh blocks of `readme`, each as its lines.
fn marked_blocks(readme: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with(MARK) {
            continue;
        }
        let opening = lines.next().unwrap_or_default();
        assert_eq!(opening.trim(), "```sh", "a marked block must follow {MARK}");
        let block: Vec<String> = lines
            .by_ref()
            .take_while(|l| l.trim() != "```")
            .map(str::to_string)
            .collect();
        blocks.push(block);
    }
    blocks
}

/// A line without its trailing `# comment` (outside quotes, after a space).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'\'' | b'"') => quote = Some(b),
            (Some(q), c) if c == q => quote = None,
            (None, b'#') if i == 0 || bytes[i - 1] == b' ' => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The block's commands: continuation lines joined, comments dropped,
/// `export` lines carried into every later command.
fn commands(block: &[String]) -> Vec<Command> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in block {
        let line = strip_comment(line).trim_end();
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    joined.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    let mut exported: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for line in joined {
        let (stdin_file, rest) = match line.split_once(" | ") {
            Some((head, rest)) => {
                let words = shell_words::split(head).expect("shell words");
                assert_eq!(words[0], "cat", "only `cat FILE |` is supported: {line}");
                (Some(words[1].clone()), rest.to_string())
            }
            None => (None, line.clone()),
        };
        let words = shell_words::split(&rest).unwrap_or_else(|e| panic!("{line}: {e}"));
        let is_assignment = |w: &str| {
            w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            })
        };
        if words.first().map(String::as_str) == Some("export") {
            for word in &words[1..] {
                let (k, v) = word.split_once('=').expect("export VAR=value");
                exported.push((k.to_string(), v.to_string()));
            }
            continue;
        }
        let split = words
            .iter()
            .position(|w| !is_assignment(w))
            .expect("a program");
        let mut env = exported.clone();
        env.extend(words[..split].iter().map(|w| {
            let (k, v) = w.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        }));
        out.push(Command {
            line: line.clone(),
            env,
            program: words[split].clone(),
            args: words[split + 1..].to_vec(),
            stdin_file,
        });
    }
    out
}

/// The files the README's commands name.
fn fixtures(dir: &Path) {
    let profiles: Vec<Value> = (1..=3)
        .map(|n| {
            json!({
                "text": format!("Listing {n}: a two-bedroom flat in Bristol with a garden."),
                "metadata": {"id": format!("s0{n}"), "price": "£350,000", "location": "Bristol"}
            })
        })
        .collect();
    write_json(dir, "listing.json", &profiles[0]);
    std::fs::write(
        dir.join("listing.md"),
        "# Two-bed flat, Bristol\n\nA balcony and a garden. £350,000.\n",
    )
    .unwrap();
    let jsonl: String = profiles.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(dir.join("listings.jsonl"), jsonl).unwrap();
    write_json(
        dir,
        "labels.json",
        &json!({"s01": "accept", "s02": "reject", "s03": "accept"}),
    );
    std::fs::create_dir_all(dir.join("home")).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
}

/// Results for `eval` to compare, written by the fixed judge.
async fn results_for_eval(dir: &Path) {
    for (name, verdict) in [("out/brief-a", "accept"), ("out/brief-b", "reject")] {
        let envs = Envs::new()
            .set("LLM_BACKEND", "fixed")
            .set("FIXED_VERDICT", verdict)
            .set("RESULT_DIR", name);
        let out = run_assessor(ASSESSOR, dir, &envs, &["listings.jsonl"]).await;
        out.assert_no_panic().assert_code(0);
    }
}

#[tokio::test]
async fn the_readmes_assessor_commands_work_as_written() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let blocks = marked_blocks(&readme);
    assert!(
        blocks.len() >= 5,
        "expected the README's marked blocks (single, words, batch, eval, shortlist), found {}",
        blocks.len()
    );
    let server = FakeOpenAi::start(Vec::new()).await;
    let dir = tempdir();
    fixtures(dir.path());
    results_for_eval(dir.path()).await;
    let home = dir.path().join("home");
    let mut ran = 0;
    for command in blocks.iter().flat_map(|b| commands(b)) {
        assert_eq!(
            command.program, "target/release/assessor",
            "a tested block runs the assessor: {}",
            command.line
        );
        let mut envs = Envs::new().set("HOME", home.to_str().unwrap());
        let mut result_path = None;
        for (key, value) in &command.env {
            let value = if key.ends_with("_BASE_URL") {
                server.base_url()
            } else if let Some(rest) = value.strip_prefix("~/") {
                home.join(rest).display().to_string()
            } else {
                value.clone()
            };
            if key == "RESULT_PATH" {
                result_path = Some(dir.path().join(&value));
            }
            envs = envs.set(key, value);
        }
        let args: Vec<&str> = command.args.iter().map(String::as_str).collect();
        if let Some(i) = args.iter().position(|a| *a == "--result") {
            result_path = Some(dir.path().join(args[i + 1]));
        }
        let stdin = command
            .stdin_file
            .as_ref()
            .map(|f| std::fs::read(dir.path().join(f)).unwrap());
        let out = run_assessor_with_stdin(ASSESSOR, dir.path(), &envs, &args, stdin).await;
        out.assert_no_panic();
        assert_eq!(out.code, 0, "`{}` failed\n{}", command.line, out.ctx());
        let result = match &result_path {
            Some(path) => Some(
                serde_json::from_slice::<Value>(&std::fs::read(path).unwrap_or_else(|e| {
                    panic!("`{}` wrote no {}: {e}", command.line, path.display())
                }))
                .unwrap(),
            ),
            // A single assessment without RESULT_PATH prints its result.
            None if !args.iter().any(|a| matches!(*a, "eval" | "shortlist"))
                && !command.env.iter().any(|(k, _)| k == "RESULT_DIR") =>
            {
                Some(out.stdout_json())
            }
            None => None,
        };
        if let Some(result) = result {
            assert_complete_result(&result);
            assert_eq!(result["status"], "ok", "`{}`: {result}", command.line);
        }
        ran += 1;
    }
    assert!(ran >= 8, "only {ran} commands ran");
    // What the commands were to leave behind.
    for path in [
        "out/result.json",
        "out/flat.json",
        "out/week-47/s01.json",
        "out/eval.json",
        "shortlist.html",
    ] {
        assert!(dir.path().join(path).is_file(), "{path} missing");
    }
    assert!(server.count() > 0, "the fake judge was never asked");
}
