//! Reading a UK sales listing's price string as an interval of amounts.
//!
//! Listings rarely state a bare number: "Offers over £360,000", "OIEO
//! £400,000", "£300k–£350k", "£1.2m", "POA". The price rule needs to know
//! what the listing *commits to*, so a price reads as an interval
//! `[low, high]` (either bound may be open: "Offers over £360,000" is
//! `[360000, open)`), and anything the parser is not sure about reads as
//! [`PriceRange::Unknown`]. The rules stage rejects without asking a model,
//! so a wrong reading here silently drops a listing the house hunter might
//! have wanted: when in doubt the answer is Unknown, never a guess, and the
//! profile goes on to the next stage.
//!
//! Supported: a figure with or without `£`, `$` or `€` and thousands
//! commas (`£385,000`, `385000`, `£385000.00`, `$1,250,000`); `k`/`m`/
//! `million` multipliers (`£350k`, `£1.2m`, `£1.2 million`); ranges joined
//! by `-`, an en or em dash, `to` or `and` (`£300,000 - £350,000`,
//! `£300k–£350k`, `between £300k and £350k`, and `£1-1.5m`, where the
//! multiplier of the second figure applies to a bare first one); and the
//! usual agents' wording before or after the figure (the `PHRASES` table).
//!
//! Deliberately Unknown:
//! - no figure at all: "POA", "Price on application", "TBC", "Auction guide
//!   TBC", "";
//! - rents ("£1,200 pcm", "£300 pw", "per month"): the price rule bounds a
//!   purchase price, and a monthly or weekly figure compared with a purchase
//!   bound would wrongly pass or reject;
//! - a `.` followed by exactly three digits without a multiplier ("€300.000"):
//!   European thousands separator or a decimal point cannot be told apart;
//! - a single figure below 1,000 without a multiplier ("£350"): no home sells
//!   for that, so it is a truncated "£350k", a rent or a typo;
//! - any word not in the `PHRASES` table (e.g. "£82,500 for a 25% share"), since an
//!   unknown word may change what the figure means.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// What a listing's price string commits to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PriceRange {
    /// Between `low` and `high` inclusive; `None` is an open bound. At least
    /// one bound is present, and `low <= high` when both are.
    Interval { low: Option<f64>, high: Option<f64> },
    /// The string does not say a sale price the parser is sure of.
    Unknown(UnknownPrice),
}

/// Why a price string reads as [`PriceRange::Unknown`], for notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnknownPrice {
    /// Nothing but whitespace.
    Empty,
    /// No figure: "POA", "Price on application", "TBC".
    NoFigure,
    /// A rent ("pcm", "pw", "per month"), not a sale price.
    Rent,
    /// A figure that could be read two ways ("€300.000").
    Ambiguous,
    /// A figure too small to be a sale price without a multiplier ("£350").
    Implausible,
    /// Wording or a layout the parser does not know.
    Unrecognised,
}

impl PriceRange {
    /// A single known amount.
    #[cfg(test)]
    pub(crate) fn exact(amount: f64) -> PriceRange {
        PriceRange::Interval {
            low: Some(amount),
            high: Some(amount),
        }
    }

    /// The lowest amount the listing allows; `None` when open or unknown.
    pub(crate) fn low(&self) -> Option<f64> {
        match self {
            PriceRange::Interval { low, .. } => *low,
            PriceRange::Unknown(_) => None,
        }
    }

    /// The highest amount the listing allows; `None` when open or unknown.
    pub(crate) fn high(&self) -> Option<f64> {
        match self {
            PriceRange::Interval { high, .. } => *high,
            PriceRange::Unknown(_) => None,
        }
    }

    /// Whether the string said something usable.
    #[cfg(test)]
    pub(crate) fn is_known(&self) -> bool {
        matches!(self, PriceRange::Interval { .. })
    }
}

impl fmt::Display for UnknownPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnknownPrice::Empty => "empty",
            UnknownPrice::NoFigure => "no figure",
            UnknownPrice::Rent => "a rent, not a sale price",
            UnknownPrice::Ambiguous => "ambiguous figure",
            UnknownPrice::Implausible => "too small for a sale price",
            UnknownPrice::Unrecognised => "unrecognised wording",
        })
    }
}

/// `385000`, `300000 to 350000`, `360000 or more`, `up to 350000`,
/// `unknown (a rent, not a sale price)`.
impl fmt::Display for PriceRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PriceRange::Interval {
                low: Some(low),
                high: Some(high),
            } if low == high => write!(f, "{}", Amount(low)),
            PriceRange::Interval {
                low: Some(low),
                high: Some(high),
            } => write!(f, "{} to {}", Amount(low), Amount(high)),
            PriceRange::Interval {
                low: Some(low),
                high: None,
            } => write!(f, "{} or more", Amount(low)),
            PriceRange::Interval {
                low: None,
                high: Some(high),
            } => write!(f, "up to {}", Amount(high)),
            PriceRange::Interval {
                low: None,
                high: None,
            } => f.write_str("any amount"),
            PriceRange::Unknown(why) => write!(f, "unknown ({why})"),
        }
    }
}

/// Prints an amount without a spurious `.0` (`425000`, `385000.5`), so
/// messages show the figures as a person would write them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Amount(pub(crate) f64);

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            write!(f, "{:.0}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// How a known phrase around the figure changes its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    /// Says nothing about the bounds: "Guide price", "OIRO", "Freehold".
    Neutral,
    /// The figure is a floor: "Offers over", "OIEO", "+".
    AtLeast,
    /// A floor for one figure ("From £250,000"), but only the start of a
    /// range in "From £250,000 to £300,000".
    From,
    /// Only meaningful before a range: "Between £X and £Y".
    Between,
}

/// The agents' phrases the parser knows, as lower-case words with the
/// punctuation removed. Anything else around a figure makes it Unknown.
///
/// "Offers in the region of" and "or nearest offer" read as the figure
/// itself: the seller expects about that much, and treating them as open
/// bounds would make the rule unable to reject anything. Auction guide
/// prices read as a floor because the reserve may sit above the guide and
/// lots usually sell above it.
const PHRASES: &[(&str, Qualifier)] = &[
    ("offers in excess of", Qualifier::AtLeast),
    ("offers invited in excess of", Qualifier::AtLeast),
    ("offers invited over", Qualifier::AtLeast),
    ("offers over", Qualifier::AtLeast),
    ("offers above", Qualifier::AtLeast),
    ("offers from", Qualifier::AtLeast),
    ("in excess of", Qualifier::AtLeast),
    ("upwards of", Qualifier::AtLeast),
    ("oieo", Qualifier::AtLeast),
    ("oeo", Qualifier::AtLeast),
    ("ovo", Qualifier::AtLeast),
    ("+", Qualifier::AtLeast),
    ("auction guide price", Qualifier::AtLeast),
    ("auction guide", Qualifier::AtLeast),
    ("starting bid", Qualifier::AtLeast),
    ("opening bid", Qualifier::AtLeast),
    ("from", Qualifier::From),
    ("prices from", Qualifier::From),
    ("priced from", Qualifier::From),
    ("starting from", Qualifier::From),
    ("between", Qualifier::Between),
    ("offers in the region of", Qualifier::Neutral),
    ("offers in region of", Qualifier::Neutral),
    ("in the region of", Qualifier::Neutral),
    ("oiro", Qualifier::Neutral),
    ("or nearest offer", Qualifier::Neutral),
    ("ono", Qualifier::Neutral),
    ("offers around", Qualifier::Neutral),
    ("offers", Qualifier::Neutral),
    ("guide price", Qualifier::Neutral),
    ("guide", Qualifier::Neutral),
    ("asking price", Qualifier::Neutral),
    ("asking", Qualifier::Neutral),
    ("fixed price", Qualifier::Neutral),
    ("price", Qualifier::Neutral),
    ("approximately", Qualifier::Neutral),
    ("approx", Qualifier::Neutral),
    ("circa", Qualifier::Neutral),
    ("c", Qualifier::Neutral),
    ("around", Qualifier::Neutral),
    ("freehold", Qualifier::Neutral),
    ("leasehold", Qualifier::Neutral),
    ("share of freehold", Qualifier::Neutral),
];

/// A figure: optional currency symbol, digits with optional thousands
/// commas and decimals, optional multiplier. The trailing `\b` keeps
/// "350 km" from reading as "350k".
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?P<cur>[£$€])?\s?\b(?P<num>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?)(?:\s?(?P<mult>million|mill|mil|mn|m|thousand|k))?\b",
    )
    .expect("AMOUNT is a valid regex")
});

/// Rent wording, matched after dots and slashes are removed so that
/// "p.c.m." and "p/w" read as "pcm" and "pw".
static RENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:pcm|pw|ppw|pppw|pa|pm|per (?:calendar )?(?:month|week|annum|year|day|night)|a (?:month|week|year)|monthly|weekly|annually|rent|to let)\b",
    )
    .expect("RENT is a valid regex")
});

/// Sale prices below this, without a multiplier, are not plausible.
const MIN_PLAUSIBLE: f64 = 1000.0;

/// One figure as found in the string.
#[derive(Debug, Clone, Copy)]
struct Figure {
    value: f64,
    currency: Option<char>,
    /// The bare number (no multiplier, no thousands commas), e.g. the "1"
    /// of "£1-1.5m".
    bare: bool,
    multiplier: f64,
}

/// Reads a listing's price string. Never panics; anything it is not sure
/// of is [`PriceRange::Unknown`].
pub(crate) fn parse_price(raw: &str) -> PriceRange {
    match parse(raw) {
        Ok(range) => range,
        Err(why) => PriceRange::Unknown(why),
    }
}

fn parse(raw: &str) -> Result<PriceRange, UnknownPrice> {
    let text = normalise(raw);
    if text.is_empty() {
        return Err(UnknownPrice::Empty);
    }
    let undotted: String = text.chars().filter(|c| !matches!(c, '.' | '/')).collect();
    if RENT.is_match(&undotted) {
        return Err(UnknownPrice::Rent);
    }
    if !text.chars().any(|c| c.is_ascii_digit()) {
        return Err(UnknownPrice::NoFigure);
    }

    let matches: Vec<regex::Captures<'_>> = AMOUNT.captures_iter(&text).collect();
    let (first, second) = match matches.as_slice() {
        [one] => (one, None),
        [one, two] => (one, Some(two)),
        _ => return Err(UnknownPrice::Unrecognised),
    };
    let whole = |c: &regex::Captures<'_>| c.get(0).map(|m| (m.start(), m.end()));
    let (first_start, first_end) = whole(first).ok_or(UnknownPrice::Unrecognised)?;
    let mut first_figure = figure(first)?;

    let Some(second) = second else {
        let quals = qualifiers(&text[..first_start])?
            .into_iter()
            .chain(qualifiers(&text[first_end..])?)
            .collect::<Vec<_>>();
        if quals.contains(&Qualifier::Between) {
            return Err(UnknownPrice::Unrecognised);
        }
        let value = plausible(first_figure.value)?;
        let at_least = quals
            .iter()
            .any(|q| matches!(q, Qualifier::AtLeast | Qualifier::From));
        return Ok(PriceRange::Interval {
            low: Some(value),
            high: if at_least { None } else { Some(value) },
        });
    };

    let (second_start, second_end) = whole(second).ok_or(UnknownPrice::Unrecognised)?;
    let second_figure = figure(second)?;
    let joiner = text[first_end..second_start].trim();
    if !matches!(joiner, "-" | "to" | "and") {
        return Err(UnknownPrice::Unrecognised);
    }
    let quals = qualifiers(&text[..first_start])?
        .into_iter()
        .chain(qualifiers(&text[second_end..])?)
        .collect::<Vec<_>>();
    // "Offers over £300k-£350k" says two different things; not a range we
    // can bound.
    if quals.contains(&Qualifier::AtLeast) {
        return Err(UnknownPrice::Unrecognised);
    }
    if matches!(
        (first_figure.currency, second_figure.currency),
        (Some(a), Some(b)) if a != b
    ) {
        return Err(UnknownPrice::Unrecognised);
    }
    // "£1-1.5m", "£300-350k": the multiplier is written once, after the
    // second figure. Only a bare first figure that would otherwise be an
    // implausible price takes it, and only if the result is still a range.
    if first_figure.bare && first_figure.value < MIN_PLAUSIBLE && second_figure.multiplier > 1.0 {
        let scaled = first_figure.value * second_figure.multiplier;
        if scaled <= second_figure.value {
            first_figure.value = scaled;
        }
    }
    let low = plausible(first_figure.value)?;
    let high = plausible(second_figure.value)?;
    if low > high {
        return Err(UnknownPrice::Unrecognised);
    }
    Ok(PriceRange::Interval {
        low: Some(low),
        high: Some(high),
    })
}

/// Lower case, dashes and minus signs as `-`, all whitespace as single
/// spaces, trimmed.
fn normalise(raw: &str) -> String {
    let mapped: String = raw
        .chars()
        .map(|c| match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect::<String>()
        .to_lowercase();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn figure(caps: &regex::Captures<'_>) -> Result<Figure, UnknownPrice> {
    let num = caps.name("num").ok_or(UnknownPrice::Unrecognised)?.as_str();
    let multiplier = match caps.name("mult").map(|m| m.as_str()) {
        None => 1.0,
        Some("k" | "thousand") => 1_000.0,
        Some(_) => 1_000_000.0,
    };
    let fraction = num.split_once('.').map(|(_, f)| f.len());
    if multiplier == 1.0 {
        match fraction {
            // "300.000": a European thousands separator or a decimal point.
            Some(3) => return Err(UnknownPrice::Ambiguous),
            // Pence are fine; more decimals than that on a bare price are
            // not something agents write.
            Some(n) if n > 2 => return Err(UnknownPrice::Unrecognised),
            _ => {}
        }
    }
    let digits: String = num.chars().filter(|c| *c != ',').collect();
    let parsed: f64 = digits.parse().map_err(|_| UnknownPrice::Unrecognised)?;
    let mut value = parsed * multiplier;
    if multiplier > 1.0 {
        // 1.2 * 1e6 must print as 1200000, not 1199999.9999999998.
        value = value.round();
    }
    if !value.is_finite() {
        return Err(UnknownPrice::Unrecognised);
    }
    Ok(Figure {
        value,
        currency: caps.name("cur").and_then(|m| m.as_str().chars().next()),
        bare: multiplier == 1.0 && !num.contains(','),
        multiplier,
    })
}

fn plausible(value: f64) -> Result<f64, UnknownPrice> {
    if value < MIN_PLAUSIBLE {
        Err(UnknownPrice::Implausible)
    } else {
        Ok(value)
    }
}

/// Reads the words around a figure as known phrases, longest first. Any
/// word that is not part of a known phrase makes the price Unknown. A `-`
/// is not punctuation here: "-£500,000" must not read as 500000, and the
/// only dash that belongs in a price joins a range.
fn qualifiers(words: &str) -> Result<Vec<Qualifier>, UnknownPrice> {
    let cleaned: String = words
        .chars()
        .map(|c| match c {
            ':' | ',' | '.' | '(' | ')' | '*' | '!' | ';' | '\'' | '"' => ' ',
            c => c,
        })
        .collect::<String>()
        .replace('+', " + ");
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let mut found = Vec::new();
    let mut at = 0;
    while at < words.len() {
        let best = PHRASES
            .iter()
            .filter_map(|(phrase, qualifier)| {
                let phrase_words: Vec<&str> = phrase.split(' ').collect();
                let end = at + phrase_words.len();
                (words.get(at..end) == Some(phrase_words.as_slice()))
                    .then_some((phrase_words.len(), *qualifier))
            })
            .max_by_key(|(len, _)| *len);
        let (len, qualifier) = best.ok_or(UnknownPrice::Unrecognised)?;
        found.push(qualifier);
        at += len;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(v: f64) -> PriceRange {
        PriceRange::exact(v)
    }

    fn at_least(v: f64) -> PriceRange {
        PriceRange::Interval {
            low: Some(v),
            high: None,
        }
    }

    fn range(low: f64, high: f64) -> PriceRange {
        PriceRange::Interval {
            low: Some(low),
            high: Some(high),
        }
    }

    #[track_caller]
    fn check(raw: &str, want: PriceRange) {
        assert_eq!(parse_price(raw), want, "parsing {raw:?}");
    }

    #[test]
    fn plain_figures() {
        check("£385,000", exact(385_000.0));
        check("385000", exact(385_000.0));
        check("£385000.00", exact(385_000.0));
        check("£385,000.50", exact(385_000.5));
        check("$1,250,000", exact(1_250_000.0));
        check("€300,000", exact(300_000.0));
        check("  £ 385,000 ", exact(385_000.0));
        check("£385,000.", exact(385_000.0));
        check("£2,950,000", exact(2_950_000.0));
    }

    #[test]
    fn multipliers() {
        check("£1.2m", exact(1_200_000.0));
        check("£1.2M", exact(1_200_000.0));
        check("£1.2 million", exact(1_200_000.0));
        check("£1.25 Million", exact(1_250_000.0));
        check("£350k", exact(350_000.0));
        check("£350K", exact(350_000.0));
        check("£1.250m", exact(1_250_000.0));
    }

    #[test]
    fn floors() {
        check("Offers in excess of £410,000", at_least(410_000.0));
        check("Offers over £360,000", at_least(360_000.0));
        check("OIEO £400,000", at_least(400_000.0));
        check("£400,000 OIEO", at_least(400_000.0));
        check("From £250,000", at_least(250_000.0));
        check("£300,000+", at_least(300_000.0));
        check("Guide price: offers over £300k", at_least(300_000.0));
        check("Auction guide £120,000", at_least(120_000.0));
    }

    #[test]
    fn figures_as_stated() {
        check("OIRO £300,000", exact(300_000.0));
        check("Offers in the region of £300,000", exact(300_000.0));
        check("Guide price £320,000", exact(320_000.0));
        check("Guide Price £320,000", exact(320_000.0));
        check("Asking price £300,000", exact(300_000.0));
        check("Fixed price £275,000", exact(275_000.0));
        check("Fixed Price: £275,000", exact(275_000.0));
        check("£250,000 ONO", exact(250_000.0));
        check("£450,000 (Share of Freehold)", exact(450_000.0));
    }

    #[test]
    fn ranges() {
        let want = range(300_000.0, 350_000.0);
        check("£300,000 - £350,000", want);
        check("£300,000-£350,000", want);
        check("£300,000 to £350,000", want);
        check("£300k–£350k", want);
        check("£300k—£350k", want);
        check("Between £300,000 and £350,000", want);
        check("From £300,000 to £350,000", want);
        check("Guide price £300,000 - £350,000", want);
        check("£300-350k", want);
        check("£1-1.5m", range(1_000_000.0, 1_500_000.0));
        check("£950,000 - £1.1m", range(950_000.0, 1_100_000.0));
    }

    #[test]
    fn no_figure_is_unknown() {
        for raw in [
            "POA",
            "Price on application",
            "Price on request",
            "TBC",
            "Auction guide TBC",
        ] {
            check(raw, PriceRange::Unknown(UnknownPrice::NoFigure));
        }
        check("", PriceRange::Unknown(UnknownPrice::Empty));
        check("   ", PriceRange::Unknown(UnknownPrice::Empty));
    }

    #[test]
    fn rents_are_unknown() {
        for raw in [
            "£1,200 pcm",
            "£1,200 PCM",
            "£1,200 p.c.m.",
            "£300 pw",
            "£300 p/w",
            "£1,200 per month",
            "£300 per week",
            "£14,400 per annum",
            "£1,200 a month",
            "per month",
        ] {
            check(raw, PriceRange::Unknown(UnknownPrice::Rent));
        }
    }

    #[test]
    fn doubtful_figures_are_unknown() {
        check("€300.000", PriceRange::Unknown(UnknownPrice::Ambiguous));
        check("£350", PriceRange::Unknown(UnknownPrice::Implausible));
        check("£1.2", PriceRange::Unknown(UnknownPrice::Implausible));
        for raw in [
            "€1.250.000",
            "£82,500 for a 25% share",
            "£82,500 (25% share)",
            "£350 km",
            "1,25,000",
            "£385,000,00",
            "£300,000 / £350,000",
            "£350,000 - £300,000",
            "£300,000 - $350,000",
            "£1 - £2 - £3",
            "Offers over £300k-£350k",
            "Between £300,000",
            "£385,000.1234",
            "-£500,000",
            "Guide price -£500,000",
            "Sold STC £385,000",
            "1e400",
        ] {
            assert!(
                !parse_price(raw).is_known(),
                "{raw:?} should be unknown, got {:?}",
                parse_price(raw)
            );
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let long = "9".repeat(400);
        for raw in [
            long.as_str(),
            "£",
            "££££",
            "-",
            "k",
            "m",
            "£,000",
            ".5m",
            "£0.000001m",
            "\u{0}£1\u{feff}",
            "£３８５,０００",
        ] {
            let _ = parse_price(raw);
        }
        assert!(!parse_price(&long).is_known());
    }

    #[test]
    fn bounds_and_display() {
        let p = parse_price("Offers over £360,000");
        assert_eq!(p.low(), Some(360_000.0));
        assert_eq!(p.high(), None);
        assert_eq!(p.to_string(), "360000 or more");
        assert_eq!(parse_price("£385,000").to_string(), "385000");
        assert_eq!(parse_price("£385,000.50").to_string(), "385000.5");
        assert_eq!(parse_price("£300k - £350k").to_string(), "300000 to 350000");
        let unknown = parse_price("£1,200 pcm");
        assert_eq!(unknown.low(), None);
        assert_eq!(unknown.high(), None);
        assert_eq!(unknown.to_string(), "unknown (a rent, not a sale price)");
        let upper = PriceRange::Interval {
            low: None,
            high: Some(1.0),
        };
        assert_eq!(upper.to_string(), "up to 1");
    }
}
