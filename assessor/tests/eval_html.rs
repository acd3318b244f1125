//! `assessor eval --html` and `--fail-under` end to end: the real binary on
//! a hand-made results directory whose scores and labels give known numbers
//! (worked out below by hand), hostile listing text, the unlabelled
//! warning, and the page rendered by a real headless Chromium.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

/// A small picture as a `data:` URI, so the page shows photos without any
/// network.
fn photo(colour: &str) -> String {
    let svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='320' height='180'><rect width='320' height='180' fill='{colour}'/>\
<polygon points='100,110 160,60 220,110' fill='#fff'/><rect x='120' y='110' width='80' height='50' fill='#fff'/></svg>"
    );
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

const SCRIPT: &str = "<script>alert('pwned')</script>";
const BREAKOUT: &str = "\"><img src=x onerror=alert(1)>";

/// One result as our assessor writes it, with a data-URI photo.
fn result(id: &str, verdict: &str, score: Option<f64>, decided_by: &str, colour: &str) -> Value {
    let mut profile = full_profile(id, &format!("Listing {id}: two bedrooms and a garden."));
    profile["images"] = json!([photo(colour)]);
    let mut r = assessor_result(id, &profile, verdict, score);
    r["decided_by"] = json!(decided_by);
    if score.is_some() {
        r["score_source"] = json!("token_probability");
    }
    r
}

/// The labels and results, with the numbers they must give:
///
/// | id  | label  | verdict | score | decided by |
/// |-----|--------|---------|-------|------------|
/// | e01 | accept | accept  | 0.9   | llm        |
/// | e02 | accept | accept  | 0.6   | llm        |
/// | e03 | reject | accept  | 0.5   | llm  (false accept; hostile listing) |
/// | e04 | accept | reject  | 0.3   | llm  (false reject; facts) |
/// | e05 | reject | reject  | 0.2   | rules      |
/// | e06 | accept | accept  | none  | command    |
///
/// Confusion: 3 true accepts (e01 e02 e06), 1 false accept (e03), 1 false
/// reject (e04), 1 true reject (e05): accuracy 4/6 = 66.7%, precision 3/4,
/// recall 3/4, F1 75.0%.
///
/// Sweep (accept at t = verdict accept and score >= t; e06 has no score and
/// stays accepted): t = 0.2, 0.3, 0.5 keep every verdict (F1 75%); at 0.6
/// e03 drops out: TP 3, FP 0, FN 1, precision 100%, recall 75%, F1 6/7 =
/// 85.7%; at 0.9 e02 drops too: TP 2, FN 2, F1 2/3. Best: 0.60.
fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let results = dir.join("results");
    std::fs::create_dir_all(&results).unwrap();
    write_json(
        &results,
        "e01.json",
        &result("e01", "accept", Some(0.9), "llm", "#3b7dd8"),
    );
    write_json(
        &results,
        "e02.json",
        &result("e02", "accept", Some(0.6), "llm", "#4caf50"),
    );

    let mut hostile = result("e03", "accept", Some(0.5), "llm", "#000");
    hostile["profile"]["images"] = json!(["javascript:alert(2)", " JAVASCRIPT:alert(3)"]);
    hostile["profile"]["metadata"]["url"] = json!("javascript:alert(4)");
    hostile["profile"]["metadata"]["location"] = json!(BREAKOUT);
    hostile["profile"]["metadata"]["price"] = json!(format!("£1 {SCRIPT}"));
    hostile["reasons"] = json!([format!("the listing says {SCRIPT}"), BREAKOUT]);
    write_json(&results, "e03.json", &hostile);

    let mut facts = result("e04", "reject", Some(0.3), "llm", "#e07b00");
    facts["facts"] = json!([
        {"name": "bedrooms", "value": 2, "source": "pattern", "evidence": "two bedrooms"},
        {"name": "outdoor_space", "value": "garden", "source": "model", "evidence": "a garden", "probability": 0.91},
        {"name": "parking", "value": "unknown", "source": "none"}
    ]);
    write_json(&results, "e04.json", &facts);
    write_json(
        &results,
        "e05.json",
        &result("e05", "reject", Some(0.2), "rules", "#777"),
    );
    write_json(
        &results,
        "e06.json",
        &result("e06", "accept", None, "command", "#9c27b0"),
    );

    let labels = write_json(
        dir,
        "labels.json",
        &json!({
            "e01": "accept", "e02": "accept", "e03": "reject",
            "e04": "accept", "e05": "reject", "e06": "accept"
        }),
    );
    (results, labels)
}

async fn eval(dir: &Path, envs: &[(&str, &str)], extra: &[&str]) -> AssessorOutput {
    let results = dir.join("results");
    let labels = dir.join("labels.json");
    let mut args = vec![
        "eval",
        "--labels",
        labels.to_str().unwrap(),
        "--result-dir",
        results.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run_assessor(ASSESSOR, dir, envs, &args).await;
    out.assert_no_panic();
    out
}

fn read(path: &Path, ctx: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}\n{ctx}", path.display()))
}

/// Writes the page and returns it.
async fn html_page(dir: &Path) -> (PathBuf, String) {
    fixture(dir);
    let page = dir.join("eval.html");
    let out = eval(dir, &[], &["--html", page.to_str().unwrap()]).await;
    out.assert_code(0);
    let html = read(&page, &out.ctx());
    (page, html)
}

#[tokio::test]
async fn the_html_page_holds_the_matrix_and_the_best_threshold() {
    let dir = tempdir();
    let (_, html) = html_page(dir.path()).await;
    for (cell, n) in [
        ("true_accept", 3),
        ("false_accept", 1),
        ("false_reject", 1),
        ("true_reject", 1),
    ] {
        let needle = format!("data-cell=\"{cell}\">{n}<");
        assert!(html.contains(&needle), "{needle} not in the page:\n{html}");
    }
    for (metric, value) in [
        ("accuracy", "66.7%"),
        ("precision", "75.0%"),
        ("recall", "75.0%"),
        ("f1", "75.0%"),
    ] {
        let needle = format!("data-metric=\"{metric}\">{value}<");
        assert!(html.contains(&needle), "{needle} not in the page");
    }
    assert!(
        html.contains(
            "data-threshold=\"0.60\">Best F1 85.7% at threshold 0.60 (precision 100.0%, recall 75.0%)"
        ),
        "the best-F1 threshold, stated:\n{html}"
    );
    // The chart: inline SVG with the best threshold marked.
    assert!(html.contains("<svg"), "no inline SVG");
    assert!(html.contains("class=\"best-threshold\""), "no marker");
    assert!(html.contains("best F1 at 0.60"), "no marker label");
    // Accuracy by deciding stage: llm 2 of 4 right, rules 1 of 1, command 1 of 1.
    for row in [
        "<td>llm</td><td class=\"n\">4</td><td class=\"n\">50.0%</td>",
        "<td>rules</td><td class=\"n\">1</td><td class=\"n\">100.0%</td>",
        "<td>command</td><td class=\"n\">1</td><td class=\"n\">100.0%</td>",
    ] {
        assert!(html.contains(row), "{row} not in the page");
    }
    // Every disagreement is a card, the others are not.
    assert_eq!(html.matches("<article class=\"card\">").count(), 2);
    assert!(html.contains("<h3>Disagreements (2)</h3>"));
    // The false reject's card: photo as the listing has it, link, score and
    // its source, facts with source and evidence, reasons.
    assert!(html.contains(&format!("<img src=\"{}\"", photo("#e07b00"))));
    assert!(html.contains("href=\"https://listings.example/e04\""));
    assert!(html.contains("score <b>0.30</b> (token_probability)"));
    assert!(html.contains(
        "<li><b>bedrooms</b> = 2 <span class=\"src\">pattern</span> <q>two bedrooms</q></li>"
    ));
    assert!(html.contains("<b>outdoor_space</b> = garden <span class=\"src\">model p=0.91</span>"));
    assert!(html.contains("<b>parking</b> = unknown <span class=\"src\">none</span>"));
    assert!(html.contains("<li>reason one for e04</li>"));
    assert!(html.contains("£300,000"));
    // Self-contained: no script, stylesheet, font or frame of its own; the
    // only image sources are the listings' data URIs.
    for banned in [
        "<script",
        "<link",
        "@import",
        "<iframe",
        "url(",
        "@font-face",
    ] {
        assert!(
            !html.to_ascii_lowercase().contains(banned),
            "{banned} in the page"
        );
    }
    for src in html.split("src=\"").skip(1) {
        assert!(
            src.starts_with("data:image/"),
            "an image source that is not the listing's: {}",
            clip(src, 80)
        );
    }
}

#[tokio::test]
async fn hostile_listing_text_is_escaped_and_javascript_urls_are_dropped() {
    let dir = tempdir();
    let (_, html) = html_page(dir.path()).await;
    assert!(!html.contains(SCRIPT), "raw <script> in the page");
    assert!(
        !html.contains(BREAKOUT),
        "raw attribute breakout in the page"
    );
    assert!(
        !html.contains("<img src=x"),
        "the injected img became markup"
    );
    assert!(
        html.contains("the listing says &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"),
        "the reason, escaped"
    );
    assert!(
        html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
        "the location, escaped"
    );
    assert!(html.contains("£1 &lt;script&gt;"), "the price, escaped");
    assert!(
        !html.to_ascii_lowercase().contains("javascript:"),
        "a javascript: URL reached the page"
    );
    // The hostile card has no photo and no link, but still its id.
    assert!(
        html.contains("no photo</div>\n<div class=\"body\">\n<h4>e03</h4>"),
        "{html}"
    );
}

#[tokio::test]
async fn fail_under_passes_and_fails_with_exit_7() {
    let dir = tempdir();
    fixture(dir.path());

    // accuracy 0.667 and F1 0.75 are above these.
    let out = eval(
        dir.path(),
        &[],
        &["--fail-under", "accuracy=0.6", "--fail-under", "f1=0.75"],
    )
    .await;
    out.assert_code(0);

    let out = eval(dir.path(), &[], &["--fail-under", "accuracy=0.9"]).await;
    out.assert_code(7);
    assert!(
        out.stderr_mentions("accuracy is 0.6667, below --fail-under accuracy=0.9"),
        "{}",
        out.ctx()
    );
    // The report is printed all the same.
    assert!(out.stdout.contains("66.7%"), "{}", out.ctx());

    // From the environment, comma-separated: recall passes, precision fails.
    let out = eval(
        dir.path(),
        &[("EVAL_FAIL_UNDER", "recall=0.75,precision=0.8")],
        &[],
    )
    .await;
    out.assert_code(7);
    assert!(out.stderr_mentions("precision is 0.7500"), "{}", out.ctx());
    assert!(!out.stderr_mentions("recall is"), "{}", out.ctx());

    // A bad floor is a usage error naming the flag and the expectation.
    let out = eval(dir.path(), &[], &["--fail-under", "speed=1"]).await;
    out.assert_code(2);
    assert!(out.stderr.contains("--fail-under"), "{}", out.ctx());
    assert!(out.stderr.contains("METRIC=MIN"), "{}", out.ctx());
    let out = eval(dir.path(), &[], &["--fail-under", "f1=1.5"]).await;
    out.assert_code(2);
    assert!(out.stderr.contains("from 0 to 1"), "{}", out.ctx());
}

#[tokio::test]
async fn a_metric_that_cannot_be_computed_fails_the_floor() {
    let dir = tempdir();
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    // Only rejections: no accept verdict, so precision is undefined.
    write_json(
        &results,
        "n1.json",
        &result("n1", "reject", Some(0.1), "llm", "#777"),
    );
    write_json(dir.path(), "labels.json", &json!({"n1": "reject"}));
    let out = eval(dir.path(), &[], &["--fail-under", "precision=0"]).await;
    out.assert_code(7);
    assert!(
        out.stderr_mentions("precision cannot be computed"),
        "{}",
        out.ctx()
    );
    let out = eval(dir.path(), &[], &["--fail-under", "accuracy=1"]).await;
    out.assert_code(0);
}

#[tokio::test]
async fn many_unlabelled_results_are_warned_about_once() {
    let dir = tempdir();
    let (results, _) = fixture(dir.path());
    let out = eval(dir.path(), &[], &[]).await;
    out.assert_code(0);
    assert!(!out.stderr_mentions("have no label"), "{}", out.ctx());

    for id in ["u1", "u2", "u3"] {
        write_json(
            &results,
            &format!("{id}.json"),
            &result(id, "accept", Some(0.5), "llm", "#777"),
        );
    }
    let out = eval(dir.path(), &[], &[]).await;
    out.assert_code(0);
    assert_eq!(
        out.stderr.matches("have no label").count(),
        1,
        "one warning\n{}",
        out.ctx()
    );
    assert!(
        out.stderr_mentions("3 of 9 results have no label and are not scored (first: u1, u2, u3)"),
        "{}",
        out.ctx()
    );
    // Still the same numbers.
    assert!(out.stdout.contains("66.7%"), "{}", out.ctx());
}

// ---------------------------------------------------------------------------
// The page in a real browser
// ---------------------------------------------------------------------------

/// Debian's Chromium on PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
}

/// Whether a missing browser is a failure: in CI, or when asked for.
fn browser_required() -> bool {
    std::env::var_os("SHORTLIST_BROWSER_TESTS").is_some()
        || std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let signature = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != signature || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

#[tokio::test]
async fn chromium_renders_the_eval_page_without_console_errors() {
    let Some(browser) = chromium() else {
        assert!(
            !browser_required(),
            "chromium is not installed, and CI or SHORTLIST_BROWSER_TESTS asks for the browser test (apt-get install chromium; scripts/install-build-deps.sh)"
        );
        println!(
            "SKIPPED: chromium is not installed (set SHORTLIST_BROWSER_TESTS=1 to make this a failure)"
        );
        return;
    };
    let dir = tempdir();
    let (page, _) = html_page(dir.path()).await;
    let profile = dir.path().join("chromium-profile");
    let png = dir.path().join("eval.png");
    let home = dir.path().to_str().unwrap();
    let mut cmd = command(&browser, dir.path(), [("HOME", home)]);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1200,2000",
    ]);
    cmd.arg(format!("--user-data-dir={}", profile.display()));
    cmd.arg(format!("--screenshot={}", png.display()));
    cmd.arg(format!("file://{}", page.display()));
    let out = Process::spawn(cmd, None)
        .wait(Duration::from_secs(120))
        .await;
    let ctx = out.ctx();
    // Keep a copy for people to look at (the test's dir is removed).
    if let Ok(keep) = std::env::var("SHORTLIST_BROWSER_PNG") {
        let _ = std::fs::copy(&png, keep);
    }
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot ({e})\n{ctx}"));
    assert_eq!(
        png_size(&bytes),
        Some((1200, 2000)),
        "not the PNG asked for\n{ctx}"
    );
    // A blank 1200x2000 page compresses to a few KiB; cards, photos, tables
    // and the chart make it far larger.
    assert!(
        bytes.len() > 30_000,
        "a near-empty screenshot ({} bytes)\n{ctx}",
        bytes.len()
    );
    // The page has no script, so any console line (an error, a blocked
    // resource, a CSP violation) is a fault.
    let console: Vec<&str> = out
        .stderr
        .lines()
        .filter(|line| {
            line.contains(":CONSOLE") || line.contains("Uncaught") || line.contains("Refused to")
        })
        .collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}\n{ctx}",
        console.join("\n")
    );
}
