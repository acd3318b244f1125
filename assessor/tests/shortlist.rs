//! `assessor shortlist` end to end: the real binary lists a results
//! directory's accepted listings, best score first, as a table, CSV, JSONL
//! or an HTML page; bad files are skipped with a warning each; an empty
//! directory is an empty list.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

/// An accepted (or not) result with a score, a price and a first reason.
fn result(id: &str, verdict: &str, score: Option<f64>) -> Value {
    let mut r = assessor_result(id, &full_profile(id, "A flat."), verdict, score);
    if score.is_some() {
        r["score_source"] = json!("logprobs");
    }
    r
}

/// s2 (0.95) before s1 and s5 (0.7 both: by id), then s4 (no score); s3
/// is rejected, s6 an error, `garbage.json` not a result at all.
fn fixture(dir: &Path) -> PathBuf {
    let results = dir.join("results");
    std::fs::create_dir_all(&results).unwrap();
    write_json(&results, "s1.json", &result("s1", "accept", Some(0.7)));
    let mut s2 = result("s2", "accept", Some(0.95));
    s2["profile"]["metadata"]["price"] = json!("=HYPERLINK(\"http://evil.example\",\"£1\")");
    s2["reasons"] = json!(["says \"garden\",\nsouth facing", "second"]);
    s2["facts"] =
        json!([{"name": "bedrooms", "value": 3, "source": "pattern", "evidence": "3 bed"}]);
    write_json(&results, "s2.json", &s2);
    write_json(&results, "s3.json", &result("s3", "reject", Some(0.9)));
    let mut s4 = result("s4", "accept", None);
    s4["profile"]["metadata"]["url"] = json!("javascript:alert(1)");
    s4["reasons"] = json!(["<script>alert(1)</script>"]);
    write_json(&results, "s4.json", &s4);
    write_json(&results, "s5.json", &result("s5", "accept", Some(0.7)));
    write_json(
        &results,
        "s6.json",
        &error_result(&full_profile("s6", "A flat.")),
    );
    write_bytes(&results, "garbage.json", b"{ not json");
    results
}

async fn shortlist(dir: &Path, results: &Path, extra: &[&str]) -> AssessorOutput {
    let mut args = vec!["shortlist", "--result-dir", results.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run_assessor::<&str, &str>(ASSESSOR, dir, &[], &args).await;
    out.assert_no_panic();
    out
}

const ORDER: [&str; 4] = ["s2", "s1", "s5", "s4"];

#[tokio::test]
async fn the_table_lists_accepted_listings_best_first() {
    let dir = tempdir();
    let results = fixture(dir.path());
    let out = shortlist(dir.path(), &results, &[]).await;
    out.assert_code(0);
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(rows, [&ORDER[..], &["4"]].concat(), "{}", out.ctx());
    let header = out.stdout.lines().next().unwrap_or_default();
    for column in ["id", "score", "price", "location", "link", "first reason"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        out.stdout.contains("https://listings.example/s1"),
        "{}",
        out.ctx()
    );
    assert!(out.stdout.contains("reason one for s1"), "{}", out.ctx());
    assert!(out.stdout.contains("4 accepted listings"), "{}", out.ctx());
    assert!(!out.stdout.contains("javascript:"), "{}", out.ctx());
    // One warning for the file that is not a result, naming it.
    assert_eq!(
        out.stderr.matches("garbage.json").count(),
        1,
        "{}",
        out.ctx()
    );
}

#[tokio::test]
async fn csv_is_quoted_and_holds_no_formulas() {
    let dir = tempdir();
    let results = fixture(dir.path());
    let out = shortlist(dir.path(), &results, &["--format", "csv"]).await;
    out.assert_code(0);
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "id",
            "score",
            "score_source",
            "price",
            "location",
            "url",
            "first_reason",
            "file"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids, ORDER, "{}", out.ctx());
    let s2 = &rows[0];
    assert_eq!(&s2[1], "0.95");
    assert_eq!(&s2[2], "logprobs");
    assert_eq!(&s2[3], "'=HYPERLINK(\"http://evil.example\",\"£1\")");
    assert_eq!(&s2[4], "Redland, Bristol");
    assert_eq!(&s2[6], "says \"garden\",\nsouth facing");
    assert!(s2[7].ends_with("s2.json"), "{:?}", &s2[7]);
    // s4: no score, and its javascript: URL is no URL.
    assert_eq!(&rows[3][1], "");
    assert_eq!(&rows[3][5], "");
}

#[tokio::test]
async fn jsonl_is_one_object_per_line_into_a_file() {
    let dir = tempdir();
    let results = fixture(dir.path());
    let output = dir.path().join("shortlist.jsonl");
    let out = shortlist(
        dir.path(),
        &results,
        &["--format", "jsonl", "--output", output.to_str().unwrap()],
    )
    .await;
    out.assert_code(0);
    assert!(out.stdout.is_empty(), "{}", out.ctx());
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ORDER);
    let s2 = &lines[0];
    assert_eq!(s2["score"], 0.95);
    assert_eq!(s2["score_source"], "logprobs");
    assert_eq!(s2["url"], "https://listings.example/s2");
    assert_eq!(s2["location"], "Redland, Bristol");
    assert_eq!(s2["reasons"][1], "second");
    assert_eq!(s2["facts"][0]["name"], "bedrooms");
    assert_eq!(s2["facts"][0]["value"], 3);
    assert_eq!(s2["facts"][0]["source"], "pattern");
    assert!(s2["result_file"].as_str().unwrap().ends_with("s2.json"));
    assert!(lines[3]["score"].is_null() && lines[3]["url"].is_null());
}

#[tokio::test]
async fn html_is_one_page_of_cards_best_first() {
    let dir = tempdir();
    let results = fixture(dir.path());
    let output = dir.path().join("shortlist.html");
    let out = run_assessor(
        ASSESSOR,
        dir.path(),
        &[
            ("ASSESSOR_MODE", "shortlist"),
            ("RESULT_DIR", results.to_str().unwrap()),
            ("SHORTLIST_FORMAT", "html"),
            ("SHORTLIST_OUTPUT", output.to_str().unwrap()),
        ],
        &[],
    )
    .await;
    out.assert_no_panic();
    out.assert_code(0);
    let html = std::fs::read_to_string(&output).unwrap();
    assert_eq!(html.matches("<article class=\"card\">").count(), 4);
    let positions: Vec<usize> = ORDER
        .iter()
        .map(|id| {
            html.find(&format!(
                "<img src=\"https://images.example/{id}/front.jpg\""
            ))
            .unwrap_or_else(|| panic!("no photo of {id}"))
        })
        .collect();
    assert!(positions.is_sorted(), "cards out of order: {positions:?}");
    assert!(html.contains("<h1>Shortlist: 4 accepted listings</h1>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("javascript:"));
    assert!(html.contains("<b>bedrooms</b> = 3"));
}

#[tokio::test]
async fn an_empty_directory_is_an_empty_list_and_a_missing_one_exit_2() {
    let dir = tempdir();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = shortlist(dir.path(), &empty, &[]).await;
    out.assert_code(0);
    assert!(out.stdout.contains("0 accepted listings"), "{}", out.ctx());
    let out = shortlist(dir.path(), &empty, &["--format", "csv"]).await;
    out.assert_code(0);
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "the header only\n{}",
        out.ctx()
    );
    let out = shortlist(dir.path(), &empty, &["--format", "jsonl"]).await;
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    let out = shortlist(dir.path(), &empty, &["--format", "html"]).await;
    out.assert_code(0);
    assert!(
        out.stdout.contains("No accepted listing yet."),
        "{}",
        out.ctx()
    );

    let out = shortlist(dir.path(), &dir.path().join("nowhere"), &[]).await;
    out.assert_code(2);
    assert!(out.stderr.contains("RESULT_DIR"), "{}", out.ctx());
    let out = run_assessor::<&str, &str>(ASSESSOR, dir.path(), &[], &["shortlist"]).await;
    out.assert_code(2);
    assert!(out.stderr.contains("RESULT_DIR"), "{}", out.ctx());
}
