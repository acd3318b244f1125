//! Self-contained HTML pages: the eval's report and the shortlist. One file
//! with its CSS inline and no script, font, stylesheet or other load of its
//! own; the only images are the listings' own photos (their `http(s)` URL or
//! `data:image/` URI). Every text from a result or a profile is escaped,
//! and a Content-Security-Policy forbids scripts, so even a listing that
//! slipped markup past the escaping could run nothing.

use std::fmt::Write;
use std::path::Path;

use super::chart;
use crate::eval::{Report, RunReport};
use crate::listing::{Listing, percent, score_text};

/// `text` escaped for an HTML text node or a quoted attribute value.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1d2430; --muted: #5d6878; --line: #d9dee6; --accept: #17803d; --reject: #b42318; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 8px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 24px 0 8px; }
.sub { color: var(--muted); margin: 0 0 16px; overflow-wrap: anywhere; }
.row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { padding: 6px 12px; border: 1px solid var(--line); text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.matrix td.n { font-size: 20px; font-weight: 600; min-width: 80px; text-align: center; }
.matrix td.good { background: #e7f5ec; }
.matrix td.bad { background: #fdeceb; }
.chart { background: #fff; border: 1px solid var(--line); padding: 8px; }
.best { font-weight: 600; }
.note { color: var(--muted); font-size: 13px; max-width: 70em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; display: flex; flex-direction: column; }
.photo { height: 180px; background: #e9ecf1; display: flex; align-items: center; justify-content: center; color: var(--muted); }
.photo img { width: 100%; height: 100%; object-fit: cover; display: block; }
.body { padding: 12px 14px; overflow-wrap: anywhere; }
.body h4 { margin: 0 0 4px; font-size: 16px; }
.price { font-size: 18px; font-weight: 600; }
.meta { color: var(--muted); margin: 2px 0 8px; }
.tag { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px; font-weight: 600; color: #fff; }
.tag.accept { background: var(--accept); }
.tag.reject { background: var(--reject); }
.facts, .reasons { margin: 6px 0; padding-left: 20px; }
.facts .src { color: var(--muted); font-size: 12px; }
.facts q { color: var(--muted); }
.file { color: var(--muted); font-size: 12px; margin: 8px 0 0; }
"#;

/// A whole page around `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// The verdict as a coloured tag.
fn tag(verdict: &str) -> String {
    let class = if verdict == "accept" {
        "accept"
    } else {
        "reject"
    };
    format!("<span class=\"tag {class}\">{}</span>", escape(verdict))
}

/// One listing as a card; `label` is the house hunter's, for an eval's
/// disagreement.
pub(crate) fn card(listing: &Listing, label: Option<&str>) -> String {
    let mut out = String::from("<article class=\"card\">\n<div class=\"photo\">");
    match &listing.photo {
        Some(src) => {
            let _ = write!(
                out,
                "<img src=\"{}\" alt=\"photo of {}\" loading=\"lazy\" referrerpolicy=\"no-referrer\">",
                escape(src),
                escape(&listing.id)
            );
        }
        None => out.push_str("no photo"),
    }
    out.push_str("</div>\n<div class=\"body\">\n");
    let title = escape(&listing.id);
    match &listing.url {
        Some(url) => {
            let _ = writeln!(
                out,
                "<h4><a href=\"{}\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">{title}</a></h4>",
                escape(url)
            );
        }
        None => {
            let _ = writeln!(out, "<h4>{title}</h4>");
        }
    }
    if let Some(price) = &listing.price {
        let _ = writeln!(out, "<div class=\"price\">{}</div>", escape(price));
    }
    let place: Vec<String> = [&listing.location, &listing.summary]
        .into_iter()
        .flatten()
        .map(|t| escape(t))
        .collect();
    if !place.is_empty() {
        let _ = writeln!(out, "<p class=\"meta\">{}</p>", place.join(" · "));
    }
    out.push_str("<p>");
    if let Some(label) = label {
        let _ = write!(out, "label {} · ", tag(label));
    }
    let _ = write!(
        out,
        "verdict {}",
        listing.verdict.map_or("none".into(), tag)
    );
    if let Some(stage) = &listing.decided_by {
        let _ = write!(out, " · decided by {}", escape(stage));
    }
    out.push_str("<br>");
    match listing.score {
        Some(score) => {
            let _ = write!(
                out,
                "score <b>{}</b> ({})",
                score_text(score),
                escape(
                    listing
                        .score_source
                        .as_deref()
                        .unwrap_or("source not given")
                )
            );
        }
        None => out.push_str("no score"),
    }
    out.push_str("</p>\n");
    if !listing.facts.is_empty() {
        out.push_str("<ul class=\"facts\">\n");
        for fact in &listing.facts {
            let _ = write!(
                out,
                "<li><b>{}</b> = {} <span class=\"src\">{}",
                escape(&fact.name),
                escape(&fact.value_text()),
                escape(&fact.source)
            );
            if let Some(p) = fact.probability {
                let _ = write!(out, " p={}", score_text(p));
            }
            out.push_str("</span>");
            if let Some(evidence) = &fact.evidence {
                let _ = write!(out, " <q>{}</q>", escape(evidence));
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }
    if !listing.reasons.is_empty() {
        out.push_str("<ol class=\"reasons\">\n");
        for reason in &listing.reasons {
            let _ = writeln!(out, "<li>{}</li>", escape(reason));
        }
        out.push_str("</ol>\n");
    }
    let _ = writeln!(
        out,
        "<p class=\"file\">{}</p>\n</div>\n</article>",
        escape(&listing.file.display().to_string())
    );
    out
}

fn cards<'a>(items: impl Iterator<Item = (&'a Listing, Option<&'a str>)>) -> String {
    let mut out = String::from("<div class=\"cards\">\n");
    for (listing, label) in items {
        out.push_str(&card(listing, label));
    }
    out.push_str("</div>\n");
    out
}

/// The eval's report as one page.
pub(crate) fn eval_page(report: &Report) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>Eval against the labels</h1>\n<p class=\"sub\">{} · {} labels</p>",
        escape(&report.labels.display().to_string()),
        report.labelled
    );
    for (i, run) in report.runs.iter().enumerate() {
        body.push_str(&run_section(run, i == 0));
    }
    if report.runs.len() == 2 {
        let _ = writeln!(
            body,
            "<h2>Changed between the runs ({})</h2>",
            report.changed.len()
        );
        if !report.changed.is_empty() {
            body.push_str(
                "<table>\n<tr><th>id</th><th>label</th><th>run</th><th>against</th></tr>\n",
            );
            for c in &report.changed {
                let _ = writeln!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&c.id),
                    c.label,
                    c.first.unwrap_or("none"),
                    c.second.unwrap_or("none")
                );
            }
            body.push_str("</table>\n");
        }
    }
    page("Shortlist eval", &body)
}

fn run_section(run: &RunReport, first: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<section class=\"run\">\n<h2>{} <code>{}</code></h2>",
        if first { "Run" } else { "Against" },
        escape(&run.results.display().to_string())
    );
    let m = &run.metrics;
    let c = &run.confusion;
    out.push_str("<div class=\"row\">\n<table class=\"metrics\">\n");
    for (name, key, value) in [
        ("accuracy", "accuracy", m.accuracy),
        ("precision (accept)", "precision", m.precision),
        ("recall (accept)", "recall", m.recall),
        ("F1 (accept)", "f1", m.f1),
    ] {
        let _ = writeln!(
            out,
            "<tr><th>{name}</th><td class=\"n\" data-metric=\"{key}\">{}</td></tr>",
            percent(value)
        );
    }
    let _ = writeln!(
        out,
        "<tr><th>scored / errors / missing / unlabelled</th><td class=\"n\">{} / {} / {} / {}</td></tr>\n</table>",
        c.total(),
        run.errors.len(),
        run.missing.len(),
        run.unlabelled
    );
    let _ = writeln!(
        out,
        "<table class=\"matrix\">\n<tr><th>label ↓ verdict →</th><th>accept</th><th>reject</th></tr>\n\
<tr><th>accept</th><td class=\"n good\" data-cell=\"true_accept\">{}</td><td class=\"n bad\" data-cell=\"false_reject\">{}</td></tr>\n\
<tr><th>reject</th><td class=\"n bad\" data-cell=\"false_accept\">{}</td><td class=\"n good\" data-cell=\"true_reject\">{}</td></tr>\n</table>\n</div>",
        c.true_accept, c.false_reject, c.false_accept, c.true_reject
    );

    out.push_str("<h3>Precision and recall against the score threshold</h3>\n");
    if run.threshold.points.is_empty() {
        out.push_str("<p>No labelled result has a score: there is no threshold to sweep.</p>\n");
    } else {
        out.push_str(&chart::threshold_svg(&run.threshold));
        match run.threshold.best_point() {
            Some(best) => {
                let t = score_text(best.threshold);
                let _ = writeln!(
                    out,
                    "<p class=\"best\" data-threshold=\"{t}\">Best F1 {} at threshold {t} (precision {}, recall {}).</p>",
                    percent(best.metrics.f1),
                    percent(best.metrics.precision),
                    percent(best.metrics.recall)
                );
            }
            None => out.push_str(
                "<p class=\"best\">No threshold has an F1 (no accept label, or no accept verdict).</p>\n",
            ),
        }
    }
    out.push_str(
        "<p class=\"note\">At threshold t a result counts as accepted when its verdict is accept and its score is at least t; \
a result without a score keeps its verdict at every threshold. The thresholds are the distinct scores of the labelled results; \
among equal F1s the highest threshold is marked.</p>\n",
    );

    out.push_str("<h3>By deciding stage</h3>\n<table class=\"stages\">\n<tr><th>decided by</th><th>scored</th><th>accuracy</th><th>precision</th><th>recall</th><th>F1</th></tr>\n");
    for (stage, (confusion, metrics)) in &run.by_decided_by {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(stage),
            confusion.total(),
            percent(metrics.accuracy),
            percent(metrics.precision),
            percent(metrics.recall),
            percent(metrics.f1)
        );
    }
    out.push_str("</table>\n");

    let _ = writeln!(out, "<h3>Disagreements ({})</h3>", run.disagreements.len());
    if run.disagreements.is_empty() {
        out.push_str("<p>Every verdict matches its label.</p>\n");
    } else {
        out.push_str(&cards(
            run.disagreements
                .iter()
                .map(|d| (&d.listing, Some(d.label))),
        ));
    }
    for (what, ids) in [
        ("No verdict (error results)", &run.errors),
        ("No result", &run.missing),
    ] {
        if !ids.is_empty() {
            let ids: Vec<String> = ids.iter().map(|id| escape(id)).collect();
            let _ = writeln!(out, "<p>{what}: {}</p>", ids.join(", "));
        }
    }
    out.push_str("</section>\n");
    out
}

/// The accepted listings of a results directory, best first.
pub(crate) fn shortlist_page(dir: &Path, listings: &[Listing]) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>Shortlist: {} accepted listing{}</h1>\n<p class=\"sub\">{} · best score first</p>",
        listings.len(),
        if listings.len() == 1 { "" } else { "s" },
        escape(&dir.display().to_string())
    );
    if listings.is_empty() {
        body.push_str("<p>No accepted listing yet.</p>\n");
    } else {
        body.push_str(&cards(listings.iter().map(|l| (l, None))));
    }
    page("Shortlist", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            escape("\"><img src=x onerror=alert(1)>&'"),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;&#39;"
        );
    }
}
