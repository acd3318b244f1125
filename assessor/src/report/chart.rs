//! The eval's precision/recall curve against the score threshold as an
//! inline SVG: no script, no font or stylesheet of its own, so the page
//! stays one self-contained file.

use std::fmt::Write;

use crate::eval::sweep::{Point, Sweep};
use crate::listing::score_text;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

fn x(threshold: f64) -> f64 {
    LEFT + threshold.clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
}

fn y(value: f64) -> f64 {
    TOP + (1.0 - value.clamp(0.0, 1.0)) * (HEIGHT - TOP - BOTTOM)
}

/// One curve: a polyline through the thresholds where the metric is
/// defined, and a dot with a tooltip at each.
fn curve(
    out: &mut String,
    points: &[Point],
    name: &str,
    colour: &str,
    dash: &str,
    value: impl Fn(&Point) -> Option<f64>,
) {
    let coords: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| value(p).map(|v| (p.threshold, v)))
        .collect();
    let path: Vec<String> = coords
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    let _ = writeln!(
        out,
        "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
        path.join(" ")
    );
    for (t, v) in coords {
        let _ = writeln!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\"><title>{name} {:.1}% at threshold {}</title></circle>",
            x(t),
            y(v),
            v * 100.0,
            score_text(t)
        );
    }
}

/// The chart of `sweep`: precision, recall and F1 against the threshold,
/// the best-F1 threshold marked with a vertical line.
pub(crate) fn threshold_svg(sweep: &Sweep) -> String {
    let mut out = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"precision and recall against the score threshold\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    // Axes, grid and ticks.
    for i in 0..=4 {
        let v = f64::from(i) / 4.0;
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e3e7ee\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5d6878\">{:.0}%</text>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#5d6878\">{v:.2}</text>",
            x(0.0),
            y(v),
            x(1.0),
            y(v),
            x(0.0) - 6.0,
            y(v) + 4.0,
            v * 100.0,
            x(v),
            y(0.0) + 16.0
        );
    }
    let _ = writeln!(
        out,
        "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#5d6878\"/>\
<line x1=\"{0:.1}\" y1=\"{2:.1}\" x2=\"{3:.1}\" y2=\"{2:.1}\" stroke=\"#5d6878\"/>\
<text x=\"{4:.1}\" y=\"{5:.1}\" text-anchor=\"middle\" fill=\"#1d2430\">score threshold</text>",
        x(0.0),
        y(1.0),
        y(0.0),
        x(1.0),
        x(0.5),
        HEIGHT - 4.0
    );
    if let Some(best) = sweep.best_point() {
        let bx = x(best.threshold);
        let _ = writeln!(
            out,
            "<line class=\"best-threshold\" x1=\"{bx:.1}\" y1=\"{:.1}\" x2=\"{bx:.1}\" y2=\"{:.1}\" stroke=\"#b42318\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#b42318\" font-weight=\"bold\">best F1 at {}</text>",
            y(1.0),
            y(0.0),
            (bx + 4.0).min(WIDTH - RIGHT - 90.0),
            y(0.0) - 8.0,
            score_text(best.threshold)
        );
    }
    curve(&mut out, &sweep.points, "precision", "#1f6fd1", "", |p| {
        p.metrics.precision
    });
    curve(&mut out, &sweep.points, "recall", "#e07b00", "", |p| {
        p.metrics.recall
    });
    curve(
        &mut out,
        &sweep.points,
        "F1",
        "#2f9e44",
        " stroke-dasharray=\"6 4\"",
        |p| p.metrics.f1,
    );
    // Legend.
    for (i, (name, colour)) in [
        ("precision", "#1f6fd1"),
        ("recall", "#e07b00"),
        ("F1", "#2f9e44"),
    ]
    .into_iter()
    .enumerate()
    {
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let lx = WIDTH - RIGHT + 16.0;
        let _ = writeln!(
            out,
            "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#1d2430\">{name}</text>",
            lx + 20.0,
            lx + 26.0,
            ly + 4.0
        );
    }
    out.push_str("</svg>\n");
    out
}
