//! `assessor shortlist`: the accepted listings of a results directory, best
//! score first, as the house hunter reads them at the end of a batch: a
//! table on the terminal, CSV for a spreadsheet, JSONL for a program, or
//! one self-contained HTML page of cards.
//!
//! Order: score descending, results without a score after every scored one,
//! ties by id; so the same directory always gives the same list.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;
use shortlist_contract::{Status, Verdict};

use crate::listing::{Listing, score_text};
use crate::report::html;
use crate::result_files::{self, ResultFile};

/// How the shortlist is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Csv,
    Jsonl,
    Html,
}

/// Validated shortlist settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) results: PathBuf,
    pub(crate) format: Format,
    /// `None`: stdout.
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{}: cannot read the results directory (RESULT_DIR): {error}", path.display())]
    ResultsUnreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: cannot write the shortlist (SHORTLIST_OUTPUT): {error}", path.display())]
    OutputUnwritable { path: PathBuf, error: String },
    #[error("cannot write the shortlist to stdout: {0}")]
    StdoutUnwritable(std::io::Error),
}

/// The accepted listings of `dir` (status ok, verdict accept), in shortlist
/// order.
pub(crate) fn accepted(dir: &Path) -> Result<Vec<Listing>, Error> {
    let files = result_files::read_dir(dir).map_err(|error| Error::ResultsUnreadable {
        path: dir.to_path_buf(),
        error,
    })?;
    let mut listings: Vec<Listing> = files
        .filter(|file: &ResultFile| {
            file.result.effective_status() == Status::Ok
                && file.result.verdict == Some(Verdict::Accept)
        })
        .map(|file| Listing::from_result(&file))
        .collect();
    listings.sort_by(order);
    Ok(listings)
}

/// Best score first, no score last, then by id (then by file, for two
/// results of the same id).
fn order(a: &Listing, b: &Listing) -> Ordering {
    match (a.score, b.score) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.id.cmp(&b.id))
    .then_with(|| a.file.cmp(&b.file))
}

/// Writes the shortlist as asked.
pub(crate) fn run(settings: &Settings) -> Result<usize, Error> {
    let listings = accepted(&settings.results)?;
    let text = match settings.format {
        Format::Table => table(&listings),
        Format::Csv => csv(&listings),
        Format::Jsonl => jsonl(&listings),
        Format::Html => html::shortlist_page(&settings.results, &listings),
    };
    match &settings.output {
        Some(path) => {
            shortlist_contract::atomic::write_atomic(path, text.as_bytes()).map_err(|e| {
                Error::OutputUnwritable {
                    path: path.clone(),
                    error: e.to_string(),
                }
            })?
        }
        None => crate::output::print_stdout(text.as_bytes()).map_err(Error::StdoutUnwritable)?,
    }
    Ok(listings.len())
}

/// Text for a terminal: control characters (an ANSI escape in a hostile
/// listing could rewrite the screen) become spaces, and long cells are cut.
fn cell(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() <= max {
        clean.to_string()
    } else {
        let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn table(listings: &[Listing]) -> String {
    let header = ["id", "score", "price", "location", "link", "first reason"];
    let rows: Vec<[String; 6]> = listings
        .iter()
        .map(|l| {
            [
                cell(&l.id, 24),
                l.score.map_or("–".into(), score_text),
                cell(l.price.as_deref().unwrap_or("–"), 20),
                cell(l.location.as_deref().unwrap_or("–"), 28),
                cell(l.url.as_deref().unwrap_or("–"), 48),
                cell(l.first_reason().unwrap_or("–"), 60),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&header.map(String::from));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    for row in &rows {
        out.push_str(&line(row));
    }
    let _ = writeln!(
        out,
        "{} accepted listing{}",
        listings.len(),
        if listings.len() == 1 { "" } else { "s" }
    );
    out
}

/// A cell a spreadsheet will not run: text starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return is a formula to Excel and LibreOffice,
/// so it gets a leading `'` (OWASP's advice for CSV injection).
fn inert(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

fn csv(listings: &[Listing]) -> String {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let mut write = |record: &[String]| {
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(record);
    };
    write(
        &[
            "id",
            "score",
            "score_source",
            "price",
            "location",
            "url",
            "first_reason",
            "file",
        ]
        .map(String::from),
    );
    for l in listings {
        write(&[
            inert(&l.id),
            l.score.map(|s| s.to_string()).unwrap_or_default(),
            l.score_source.clone().unwrap_or_default(),
            inert(l.price.as_deref().unwrap_or_default()),
            inert(l.location.as_deref().unwrap_or_default()),
            l.url.clone().unwrap_or_default(),
            inert(l.first_reason().unwrap_or_default()),
            inert(&l.file.display().to_string()),
        ]);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn jsonl(listings: &[Listing]) -> String {
    let mut out = String::new();
    for l in listings {
        let line = json!({
            "id": l.id,
            "score": l.score,
            "score_source": l.score_source,
            "price": l.price,
            "location": l.location,
            "url": l.url,
            "reasons": l.reasons,
            "facts": l.facts,
            "result_file": l.file.display().to_string(),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(id: &str, score: Option<f64>) -> Listing {
        Listing {
            id: id.into(),
            score,
            ..Listing::default()
        }
    }

    #[test]
    fn best_first_unscored_last_ties_by_id() {
        let mut l = [
            listing("d", None),
            listing("c", Some(0.5)),
            listing("b", Some(0.9)),
            listing("a", Some(0.5)),
            listing("0", None),
        ];
        l.sort_by(order);
        let ids: Vec<&str> = l.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "c", "0", "d"]);
    }

    #[test]
    fn terminal_cells_hold_no_escapes_and_csv_no_formulas() {
        assert_eq!(cell("a\u{1b}[2Jb\nc", 80), "a [2Jb c");
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(inert("£300,000"), "£300,000");
    }
}
