//! What each adapter sends for one accepted result.
//!
//! Results and profiles come from any assessor, including one-line shell
//! scripts, so rendering takes whatever it is given: a missing profile,
//! metadata of the wrong type, a megabyte of text. It never fails and never
//! panics; human messages are capped to what each service accepts, and every
//! header value is made valid HTTP before it is built.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use shortlist_contract::Notification;

use super::target::Kind;
use super::{Auth, Delivery, HttpRequest, Rendered, Target};

/// `User-Agent` of every HTTP delivery, so receivers can tell relay
/// traffic apart (and its version) in their logs.
pub(crate) const USER_AGENT: &str = concat!("shortlist-relay/", env!("CARGO_PKG_VERSION"));

/// ntfy tags; ntfy shows a tag that is an emoji short code as the emoji.
const NTFY_TAGS: &str = "house,shortlist";

/// ntfy's default `message-size-limit` is 4096 bytes; a longer body becomes
/// an attachment instead of a notification.
const NTFY_MAX_BYTES: usize = 4000;
/// Slack shows long `text` collapsed and truncates past 40,000 characters;
/// a notification is not the place for more than this.
const SLACK_MAX_CHARS: usize = 4000;
/// Discord refuses `content` longer than 2000 characters, counted as
/// JavaScript does (UTF-16 code units), so that is what we count.
const DISCORD_MAX_UNITS: usize = 2000;

/// Summary (or first line of text) in a message body, in characters.
const SUMMARY_CHARS: usize = 200;
/// ntfy's `Title` when it comes from the text rather than a summary.
const TITLE_FROM_TEXT_CHARS: usize = 60;
/// ntfy's `Title` at most, in characters.
const TITLE_CHARS: usize = 120;
/// A price or location, in characters.
const FACT_CHARS: usize = 120;
/// One reason, in characters.
const REASON_CHARS: usize = 300;
/// Reasons shown; the rest are counted (`+2 more`).
const MAX_REASONS: usize = 3;
/// A listing URL longer than this is left out of messages: a cut URL is
/// worse than none.
const URL_MAX_CHARS: usize = 1000;
/// Text read from a field before any other processing, so a huge field
/// costs nothing.
const READ_CHARS: usize = 2000;
/// Encoded-word payload per RFC 2047: 45 bytes make 60 base64 characters,
/// keeping each `=?UTF-8?B?...?=` within the 75-character limit.
const RFC2047_CHUNK_BYTES: usize = 45;

/// Why a notifier token cannot be sent. The token is never quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BearerError {
    #[error("notifier token is empty")]
    Empty,
    #[error(
        "notifier token has a character at position {position} that cannot be sent in an HTTP header (a space, control character or non-ASCII); expected a bearer token of printable ASCII (the token is not shown)"
    )]
    InvalidCharacter { position: usize },
}

/// Checks a bearer token at start-up; [`Target::render`] leaves out a token
/// that fails this rather than sending a mangled one.
pub(crate) fn check_bearer_token(token: &str) -> Result<(), BearerError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(BearerError::Empty);
    }
    match token.chars().position(|c| !c.is_ascii_graphic()) {
        Some(i) => Err(BearerError::InvalidCharacter { position: i + 1 }),
        None => Ok(()),
    }
}

impl Target {
    /// The request (or line) for one delivery attempt.
    ///
    /// HTTP requests carry `content-type`, `user-agent`, `webhook-id`,
    /// `webhook-timestamp`, `webhook-signature` (with a signer) and
    /// `authorization` (with a bearer token), then the adapter's own headers.
    pub(crate) fn render(&self, delivery: &Delivery<'_>, auth: &Auth<'_>) -> Rendered {
        match self.adapter() {
            Kind::Webhook(url) => {
                let body = webhook_body(delivery).to_json_bytes();
                http(url, "application/json", body, Vec::new(), delivery, auth)
            }
            Kind::Ntfy(url) => {
                let facts = Facts::of(delivery);
                let body = human_message(Style::Plain, &facts).into_bytes();
                let headers = ntfy_headers(&facts);
                http(
                    url,
                    "text/plain; charset=utf-8",
                    body,
                    headers,
                    delivery,
                    auth,
                )
            }
            Kind::Slack(url) => {
                let facts = Facts::of(delivery);
                let mut body = Map::new();
                body.insert(
                    "text".into(),
                    Value::String(human_message(Style::Slack, &facts)),
                );
                let body = to_json_bytes(Value::Object(body));
                http(url, "application/json", body, Vec::new(), delivery, auth)
            }
            Kind::Discord(url) => {
                let facts = Facts::of(delivery);
                let mut body = Map::new();
                body.insert(
                    "content".into(),
                    Value::String(human_message(Style::Discord, &facts)),
                );
                // A listing that says "@everyone" must not ping a server.
                let mut mentions = Map::new();
                mentions.insert("parse".into(), Value::Array(Vec::new()));
                body.insert("allowed_mentions".into(), Value::Object(mentions));
                let body = to_json_bytes(Value::Object(body));
                http(url, "application/json", body, Vec::new(), delivery, auth)
            }
            Kind::File(path) => Rendered::FileLine {
                path: path.clone(),
                line: json_line(delivery),
            },
            Kind::Stdout => Rendered::StdoutLine(json_line(delivery)),
        }
    }
}

/// Assembles an HTTP request: the common headers, then the adapter's.
fn http(
    url: &Url,
    content_type: &'static str,
    body: Vec<u8>,
    adapter_headers: Vec<(HeaderName, HeaderValue)>,
    delivery: &Delivery<'_>,
    auth: &Auth<'_>,
) -> Rendered {
    let mut headers = vec![
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        ),
    ];
    // The signature must cover the id exactly as sent.
    let id = header_token(delivery.webhook_id);
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.push((HeaderName::from_static("webhook-id"), value));
    }
    headers.push((
        HeaderName::from_static("webhook-timestamp"),
        HeaderValue::from(delivery.timestamp),
    ));
    let signature = auth.signer.and_then(|signer| {
        HeaderValue::from_str(&signer.sign(&id, delivery.timestamp, &body)).ok()
    });
    if let Some(mut value) = signature {
        value.set_sensitive(true);
        headers.push((HeaderName::from_static("webhook-signature"), value));
    }
    let bearer = auth
        .bearer
        .filter(|token| check_bearer_token(token).is_ok())
        .and_then(|token| HeaderValue::from_str(&format!("Bearer {}", token.trim())).ok());
    if let Some(mut value) = bearer {
        value.set_sensitive(true);
        headers.push((AUTHORIZATION, value));
    }
    headers.extend(adapter_headers);
    Rendered::Http(HttpRequest {
        url: url.clone(),
        headers,
        body,
    })
}

/// The generic webhook body: the original Shortlist notifier's shape (the
/// profile as read, with `text`, `metadata` and `images` always present so
/// consumers can rely on their types) plus an `assessment` object. Built as
/// the contract's typed [`Notification`], whose schema is published as
/// `schema/notification.v1.json`, so the two cannot drift.
fn webhook_body(delivery: &Delivery<'_>) -> Notification {
    Notification::new(delivery.result, delivery.profile)
}

/// One JSON line for file and stdout targets: the webhook body plus
/// `webhook_id` and `delivered_at`, so a line can be matched to a delivery.
fn json_line(delivery: &Delivery<'_>) -> Vec<u8> {
    let body =
        webhook_body(delivery).with_delivery(delivery.webhook_id, rfc3339(delivery.timestamp));
    // Compact JSON escapes every newline inside strings, so this is one line.
    let mut line = body.to_json_bytes();
    line.push(b'\n');
    line
}

/// Serialising a `Value` cannot fail (its map keys are strings); the
/// fallback only keeps this free of panics.
fn to_json_bytes(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
}

/// Unix seconds as RFC 3339 UTC; now for a timestamp out of range.
fn rfc3339(timestamp: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(timestamp)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(shortlist_contract::result::now_rfc3339)
}

/// What a human message says, gathered once from the profile and result.
#[derive(Debug, Default)]
struct Facts {
    /// `metadata.summary`, else the first non-blank line of the text, else a
    /// fallback naming the result id.
    heading: String,
    /// ntfy's title: the summary, else the start of the text.
    title: String,
    price: Option<String>,
    location: Option<String>,
    /// At most [`MAX_REASONS`], single-line, non-empty.
    reasons: Vec<String>,
    /// Reasons beyond those shown.
    more_reasons: usize,
    score: Option<f64>,
    /// `metadata.url` when it is an http(s) URL.
    url: Option<Url>,
}

impl Facts {
    fn of(delivery: &Delivery<'_>) -> Facts {
        let profile = delivery.profile.and_then(Value::as_object);
        let metadata = profile
            .and_then(|p| p.get("metadata"))
            .and_then(Value::as_object);
        let text = profile
            .and_then(|p| p.get("text"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let first_line = text
            .lines()
            .find(|line| !line.trim().is_empty())
            .map(|line| single_line(&take_chars(line, READ_CHARS)))
            .filter(|line| !line.is_empty());
        let summary = metadata_text(metadata, "summary");
        let fallback = match delivery.result.id.as_deref().map(single_line) {
            Some(id) if !id.is_empty() => {
                format!("Shortlist match {}", truncate_chars(&id, FACT_CHARS))
            }
            _ => "Shortlist match".to_string(),
        };
        let heading = summary
            .clone()
            .or_else(|| first_line.clone())
            .unwrap_or_else(|| fallback.clone());
        let title = match (&summary, &first_line) {
            (Some(summary), _) => truncate_chars(summary, TITLE_CHARS),
            (None, Some(line)) => truncate_chars(line, TITLE_FROM_TEXT_CHARS),
            (None, None) => fallback,
        };
        let all_reasons: Vec<String> = delivery
            .result
            .reasons
            .iter()
            .flatten()
            .map(|r| single_line(&take_chars(r, READ_CHARS)))
            .filter(|r| !r.is_empty())
            .collect();
        let more_reasons = all_reasons.len().saturating_sub(MAX_REASONS);
        let reasons = all_reasons.into_iter().take(MAX_REASONS).collect();
        let url = metadata
            .and_then(|m| m.get("url"))
            .and_then(Value::as_str)
            .and_then(|u| Url::parse(u.trim()).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        Facts {
            heading,
            title,
            price: metadata_text(metadata, "price"),
            location: metadata_text(metadata, "location"),
            reasons,
            more_reasons,
            score: delivery.result.score.filter(|s| s.is_finite()),
            url,
        }
    }
}

/// A metadata field as one line of text: strings and numbers; anything
/// else (objects, arrays, booleans) is treated as absent.
fn metadata_text(metadata: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    let text = match metadata?.get(key)? {
        Value::String(s) => single_line(&take_chars(s, READ_CHARS)),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// How a message is written and measured for one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// ntfy: plain UTF-8, limited in bytes.
    Plain,
    /// Slack mrkdwn (Mattermost reads it too): `&`, `<`, `>` escaped.
    Slack,
    /// Discord markdown: formatting characters backslash-escaped.
    Discord,
}

impl Style {
    fn limit(self) -> usize {
        match self {
            Style::Plain => NTFY_MAX_BYTES,
            Style::Slack => SLACK_MAX_CHARS,
            Style::Discord => DISCORD_MAX_UNITS,
        }
    }

    /// Length as the service counts it.
    fn measure(self, s: &str) -> usize {
        match self {
            Style::Plain => s.len(),
            Style::Slack => s.chars().count(),
            Style::Discord => s.encode_utf16().count(),
        }
    }

    /// Appends `c` so that the service shows it literally: listing text must
    /// not turn into links, mentions (`<!channel>`) or formatting.
    fn escape_into(self, c: char, out: &mut String) {
        match (self, c) {
            (Style::Slack, '&') => out.push_str("&amp;"),
            (Style::Slack, '<') => out.push_str("&lt;"),
            (Style::Slack, '>') => out.push_str("&gt;"),
            (Style::Discord, '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '[' | ']') => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }

    fn escape(self, raw: &str) -> String {
        let mut out = String::with_capacity(raw.len());
        for c in raw.chars() {
            self.escape_into(c, &mut out);
        }
        out
    }

    fn bullet(self) -> &'static str {
        match self {
            Style::Plain => "- ",
            Style::Slack | Style::Discord => "• ",
        }
    }
}

/// `raw` escaped for `style` and cut to `budget` (in the style's measure),
/// ending in `…` when cut; cuts fall between escaped characters so no
/// half escape (`&am`, a lone `\`) is left.
fn fit(style: Style, raw: &str, budget: usize) -> String {
    let full = style.escape(raw);
    if style.measure(&full) <= budget {
        return full;
    }
    let ellipsis = style.measure("…");
    let mut out = String::new();
    let mut used = 0;
    let mut piece = String::new();
    for c in raw.chars() {
        piece.clear();
        style.escape_into(c, &mut piece);
        let n = style.measure(&piece);
        if used + n + ellipsis > budget {
            break;
        }
        out.push_str(&piece);
        used += n;
    }
    if used + ellipsis <= budget {
        out.push('…');
    }
    out
}

/// The human message for ntfy, Slack or Discord: heading, price,
/// location, up to three reasons, score, listing URL.
///
/// Every part but the reasons is capped on its own, and the reasons get
/// what room is left under the service's limit, so the heading and the
/// listing URL survive a long reason; a final cut guards the limit anyway.
fn human_message(style: Style, facts: &Facts) -> String {
    let summary = truncate_chars(&facts.heading, SUMMARY_CHARS);
    let url = facts
        .url
        .as_ref()
        .map(Url::as_str)
        .filter(|u| u.chars().count() <= URL_MAX_CHARS);
    let mut head = vec![match (style, url) {
        (Style::Plain, _) => summary,
        // `|` would end the URL part of a Slack link early.
        (Style::Slack, Some(url)) => {
            format!("<{}|{}>", url.replace('|', "%7C"), style.escape(&summary))
        }
        (Style::Slack, None) => format!("*{}*", style.escape(&summary)),
        (Style::Discord, _) => format!("**{}**", style.escape(&summary)),
    }];
    for (label, value) in [("Price", &facts.price), ("Location", &facts.location)] {
        if let Some(value) = value {
            let value = style.escape(&truncate_chars(value, FACT_CHARS));
            head.push(format!("{label}: {value}"));
        }
    }
    let mut tail = Vec::new();
    if let Some(score) = facts.score {
        tail.push(format!("Score: {score:.2}"));
    }
    if let Some(url) = url.filter(|_| style != Style::Slack) {
        tail.push(url.to_string());
    }

    let fixed: usize = head
        .iter()
        .chain(&tail)
        .map(|line| style.measure(line) + 1)
        .sum();
    let mut room = style.limit().saturating_sub(fixed);
    let mut reasons = Vec::new();
    for reason in &facts.reasons {
        let available = room.saturating_sub(style.measure(style.bullet()) + 1);
        if available < 16 {
            break;
        }
        let line = format!(
            "{}{}",
            style.bullet(),
            fit(style, &truncate_chars(reason, REASON_CHARS), available)
        );
        room = room.saturating_sub(style.measure(&line) + 1);
        reasons.push(line);
    }
    let hidden = facts.more_reasons + facts.reasons.len() - reasons.len();
    if hidden > 0 {
        let line = format!("(+{hidden} more)");
        if style.measure(&line) < room {
            reasons.push(line);
        }
    }

    let message = head
        .into_iter()
        .chain(reasons)
        .chain(tail)
        .collect::<Vec<_>>()
        .join("\n");
    truncate_measured(style, &message, style.limit())
}

/// ntfy's `Title`, `Click` and `Tags`.
fn ntfy_headers(facts: &Facts) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    if let Ok(title) = HeaderValue::from_str(&header_text(&facts.title)) {
        headers.push((HeaderName::from_static("title"), title));
    }
    let click = facts
        .url
        .as_ref()
        .filter(|url| url.as_str().chars().count() <= URL_MAX_CHARS)
        .and_then(|url| HeaderValue::from_str(url.as_str()).ok());
    if let Some(click) = click {
        headers.push((HeaderName::from_static("click"), click));
    }
    headers.push((
        HeaderName::from_static("tags"),
        HeaderValue::from_static(NTFY_TAGS),
    ));
    headers
}

/// Free text as a header value: one line of visible ASCII as is, anything
/// else as RFC 2047 encoded words (`=?UTF-8?B?...?=`), which ntfy decodes.
/// ASCII containing `=?` is encoded too, so listing text cannot smuggle in
/// an encoded word of its own.
fn header_text(text: &str) -> String {
    let text = single_line(text);
    if text.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) && !text.contains("=?") {
        return text;
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > RFC2047_CHUNK_BYTES {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encoded_word(&chunk));
    }
    words.join(" ")
}

fn encoded_word(chunk: &str) -> String {
    format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes()))
}

/// A header-safe form of a token such as the webhook id: visible ASCII but
/// `%` kept, every other byte percent-encoded. Distinct ids stay distinct,
/// and CR/LF can never reach a header.
fn header_token(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One line: control characters and line breaks become spaces, runs of
/// whitespace collapse, ends are trimmed.
fn single_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The first `max` characters, without marking a cut: for bounding work
/// before text is cleaned up.
fn take_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// At most `max` characters, the last one `…` when something was cut.
fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` in the style's measure, cut on a character boundary and
/// ending in `…` when cut.
fn truncate_measured(style: Style, s: &str, max: usize) -> String {
    if style.measure(s) <= max {
        return s.to_string();
    }
    let budget = max.saturating_sub(style.measure("…"));
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let n = match style {
            Style::Plain => c.len_utf8(),
            Style::Slack => 1,
            Style::Discord => c.len_utf16(),
        };
        if used + n > budget {
            break;
        }
        out.push(c);
        used += n;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};
    use serde_json::json;
    use sha2::Sha256;
    use shortlist_contract::AssessmentResult;

    use super::super::{Signer, parse_targets};
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn target(entry: &str) -> Target {
        parse_targets(entry).unwrap().remove(0)
    }

    fn full_result() -> AssessmentResult {
        serde_json::from_value(json!({
            "schema": "shortlist.result/v1",
            "id": "s01",
            "status": "ok",
            "verdict": "accept",
            "score": 0.86,
            "reasons": ["private rear garden", "two bedrooms, within budget", "quiet street", "near a park"],
            "decided_by": "llm",
            "backend": {"kind": "openai", "model": "llama3.2"},
            "assessed_at": "2026-11-22T10:00:00.123Z"
        }))
        .unwrap()
    }

    fn minimal_result() -> AssessmentResult {
        serde_json::from_value(json!({"verdict": "accept"})).unwrap()
    }

    fn profile() -> Value {
        json!({
            "text": "Two bedroom terrace with a garden.\nClose to the park.",
            "images": ["https://img.example/front.jpg"],
            "metadata": {
                "id": "s01",
                "url": "https://listings.example/s01?ref=x|y",
                "price": "£375,000",
                "location": "Southville, Bristol",
                "summary": "2 bedroom terraced house"
            },
            "source": "rightmove"
        })
    }

    fn delivery<'a>(result: &'a AssessmentResult, profile: Option<&'a Value>) -> Delivery<'a> {
        Delivery {
            result,
            profile,
            webhook_id: "msg_s01_abc",
            timestamp: 1_614_265_330,
        }
    }

    fn http_request(rendered: Rendered) -> HttpRequest {
        match rendered {
            Rendered::Http(request) => request,
            other => panic!("expected an HTTP request, got {other:?}"),
        }
    }

    fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
        let mut found = request.headers.iter().filter(|(n, _)| n.as_str() == name);
        let value = found.next().map(|(_, v)| v.to_str().unwrap());
        assert!(found.next().is_none(), "header {name} appears twice");
        value
    }

    fn header_names(request: &HttpRequest) -> Vec<&str> {
        request.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn body_json(request: &HttpRequest) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    /// Recomputes the signature with hmac directly, as a receiver would.
    fn verify(request: &HttpRequest, secret: &str) {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let id = header(request, "webhook-id").unwrap();
        let timestamp = header(request, "webhook-timestamp").unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&request.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(
            header(request, "webhook-signature"),
            Some(expected.as_str())
        );
    }

    fn all_targets() -> Vec<Target> {
        parse_targets(
            "https://example.com/hook, ntfy+https://ntfy.sh/flats, \
             slack+https://hooks.slack.com/services/T/B/X, \
             discord+https://discord.com/api/webhooks/1/t, file:///tmp/out.jsonl, stdout:",
        )
        .unwrap()
    }

    #[test]
    fn webhook_request_has_the_notifier_shape_and_standard_headers() {
        let result = full_result();
        let profile = profile();
        let signer = Signer::parse(SECRET).unwrap();
        let auth = Auth {
            signer: Some(&signer),
            bearer: Some(" tok_123 \n"),
        };
        let request = http_request(
            target("https://user:pw@example.com/hook?token=abc")
                .render(&delivery(&result, Some(&profile)), &auth),
        );
        assert_eq!(
            request.url.as_str(),
            "https://user:pw@example.com/hook?token=abc"
        );
        assert_eq!(
            header_names(&request),
            [
                "content-type",
                "user-agent",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "authorization"
            ]
        );
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(
            header(&request, "user-agent"),
            Some(concat!("shortlist-relay/", env!("CARGO_PKG_VERSION")))
        );
        assert_eq!(header(&request, "webhook-id"), Some("msg_s01_abc"));
        assert_eq!(header(&request, "webhook-timestamp"), Some("1614265330"));
        assert_eq!(header(&request, "authorization"), Some("Bearer tok_123"));
        for (name, value) in &request.headers {
            let secret = matches!(name.as_str(), "authorization" | "webhook-signature");
            assert_eq!(value.is_sensitive(), secret, "{name}");
        }
        verify(&request, SECRET);
        assert_eq!(
            body_json(&request),
            json!({
                "text": "Two bedroom terrace with a garden.\nClose to the park.",
                "images": ["https://img.example/front.jpg"],
                "metadata": {
                    "id": "s01",
                    "url": "https://listings.example/s01?ref=x|y",
                    "price": "£375,000",
                    "location": "Southville, Bristol",
                    "summary": "2 bedroom terraced house"
                },
                "source": "rightmove",
                "assessment": {
                    "verdict": "accept",
                    "score": 0.86,
                    "reasons": ["private rear garden", "two bedrooms, within budget", "quiet street", "near a park"],
                    "id": "s01",
                    "assessed_at": "2026-11-22T10:00:00.123Z",
                    "backend": {"kind": "openai", "model": "llama3.2"}
                }
            })
        );
        let debug = format!("{request:?}");
        assert!(
            !debug.contains("tok_123") && !debug.contains("pw@") && !debug.contains("token=abc"),
            "{debug}"
        );
    }

    /// The body is compact JSON with every object's keys sorted: the bytes
    /// of its own JSON value, as when it was built as a `Value` (receivers
    /// that compare or hash bodies see the same bytes as before the typed
    /// `Notification`).
    #[test]
    fn webhook_bodies_are_the_bytes_of_their_json_value() {
        let full = full_result();
        let minimal = minimal_result();
        let profile = profile();
        let odd = json!({"z": 1, "text": 5, "metadata": {"b": 1, "a": [2, {"d": 1, "c": 0}]}, "a": null, "assessment": "x"});
        for (result, profile) in [
            (&full, Some(&profile)),
            (&full, None),
            (&minimal, None),
            (&minimal, Some(&odd)),
        ] {
            let request = http_request(
                target("https://example.com/h")
                    .render(&delivery(result, profile), &Auth::default()),
            );
            let value: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(
                String::from_utf8(request.body).unwrap(),
                serde_json::to_string(&value).unwrap()
            );
        }
    }

    #[test]
    fn webhook_without_profile_or_fields_still_has_every_key() {
        let result = minimal_result();
        let request = http_request(
            target("http://localhost:9/h").render(&delivery(&result, None), &Auth::default()),
        );
        assert_eq!(
            header_names(&request),
            [
                "content-type",
                "user-agent",
                "webhook-id",
                "webhook-timestamp"
            ]
        );
        assert_eq!(
            body_json(&request),
            json!({
                "text": "",
                "metadata": {},
                "images": [],
                "assessment": {
                    "verdict": "accept", "score": null, "reasons": [], "id": null,
                    "assessed_at": null, "backend": null
                }
            })
        );
        // A profile of the wrong shape is treated like none; wrong-typed
        // fields are replaced by their empty forms.
        for odd in [
            json!("just a string"),
            json!([1, 2]),
            json!({"text": 5, "metadata": [], "images": "a.jpg"}),
        ] {
            let request = http_request(
                target("http://localhost:9/h")
                    .render(&delivery(&result, Some(&odd)), &Auth::default()),
            );
            let body = body_json(&request);
            assert_eq!(body["text"], "");
            assert_eq!(body["metadata"], json!({}));
            assert_eq!(body["images"], json!([]));
        }
    }

    #[test]
    fn ntfy_request_is_plain_text_with_title_click_and_tags() {
        let result = full_result();
        let profile = profile();
        let signer = Signer::parse(SECRET).unwrap();
        let auth = Auth {
            signer: Some(&signer),
            bearer: Some("tk_ntfy"),
        };
        let request = http_request(
            target("ntfy+https://ntfy.example/flats")
                .render(&delivery(&result, Some(&profile)), &auth),
        );
        assert_eq!(request.url.as_str(), "https://ntfy.example/flats");
        assert_eq!(
            header_names(&request),
            [
                "content-type",
                "user-agent",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "authorization",
                "title",
                "click",
                "tags"
            ]
        );
        assert_eq!(
            header(&request, "content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(header(&request, "title"), Some("2 bedroom terraced house"));
        assert_eq!(
            header(&request, "click"),
            Some("https://listings.example/s01?ref=x|y")
        );
        assert_eq!(header(&request, "tags"), Some("house,shortlist"));
        assert_eq!(header(&request, "authorization"), Some("Bearer tk_ntfy"));
        verify(&request, SECRET);
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "2 bedroom terraced house\n\
             Price: £375,000\n\
             Location: Southville, Bristol\n\
             - private rear garden\n\
             - two bedrooms, within budget\n\
             - quiet street\n\
             (+1 more)\n\
             Score: 0.86\n\
             https://listings.example/s01?ref=x|y"
        );
    }

    #[test]
    fn ntfy_title_is_rfc2047_encoded_when_not_ascii() {
        let result = minimal_result();
        let profile = json!({"text": "t", "metadata": {"summary": "2 bed flat, £300,000"}});
        let request = http_request(
            target("ntfy+http://localhost/t")
                .render(&delivery(&result, Some(&profile)), &Auth::default()),
        );
        let expected = format!("=?UTF-8?B?{}?=", STANDARD.encode("2 bed flat, £300,000"));
        assert_eq!(expected, "=?UTF-8?B?MiBiZWQgZmxhdCwgwqMzMDAsMDAw?=");
        assert_eq!(header(&request, "title"), Some(expected.as_str()));
        assert_eq!(request.url.as_str(), "http://localhost/t");
    }

    /// Decodes our own encoded words, as ntfy (Go's mime.WordDecoder) does.
    fn decode_rfc2047(value: &str) -> String {
        let mut bytes = Vec::new();
        for word in value.split(' ') {
            assert!(word.len() <= 75, "encoded word too long: {word}");
            let b64 = word
                .strip_prefix("=?UTF-8?B?")
                .unwrap()
                .strip_suffix("?=")
                .unwrap();
            bytes.extend(STANDARD.decode(b64).unwrap());
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn long_or_multiline_titles_stay_valid_headers() {
        let result = minimal_result();
        let summary = "Maison de ville à rénover — jardin privé, 3 chambres, proche écoles\r\nInjected: header";
        let profile = json!({"text": "t", "metadata": {"summary": summary}});
        let request = http_request(
            target("ntfy+https://ntfy.sh/t")
                .render(&delivery(&result, Some(&profile)), &Auth::default()),
        );
        let title = header(&request, "title").unwrap();
        assert!(!title.contains('\r') && !title.contains('\n'));
        assert_eq!(
            decode_rfc2047(title),
            "Maison de ville à rénover — jardin privé, 3 chambres, proche écoles Injected: header"
        );
        // ASCII with CR/LF: flattened, not encoded.
        let profile = json!({"text": "t", "metadata": {"summary": "a\r\nX-Evil: 1"}});
        let request = http_request(
            target("ntfy+https://ntfy.sh/t")
                .render(&delivery(&result, Some(&profile)), &Auth::default()),
        );
        assert_eq!(header(&request, "title"), Some("a X-Evil: 1"));
        // Text that looks like an encoded word is encoded itself.
        let profile = json!({"text": "t", "metadata": {"summary": "=?UTF-8?B?SGk=?="}});
        let request = http_request(
            target("ntfy+https://ntfy.sh/t")
                .render(&delivery(&result, Some(&profile)), &Auth::default()),
        );
        assert_eq!(
            decode_rfc2047(header(&request, "title").unwrap()),
            "=?UTF-8?B?SGk=?="
        );
    }

    #[test]
    fn ntfy_title_falls_back_to_the_text_then_the_id() {
        let result = full_result();
        let text = format!("\n\n  {}  \nsecond line", "word ".repeat(40));
        let profile = json!({"text": text, "metadata": {"url": "javascript:alert(1)", "price": 300000, "location": {"city": "Bristol"}}});
        let request = http_request(
            target("ntfy+https://ntfy.sh/t")
                .render(&delivery(&result, Some(&profile)), &Auth::default()),
        );
        // The ellipsis is not ASCII, so a cut title is always encoded.
        let title = decode_rfc2047(header(&request, "title").unwrap());
        assert_eq!(title.chars().count(), 60);
        assert!(
            title.starts_with("word word") && title.ends_with('…'),
            "{title}"
        );
        assert_eq!(
            header(&request, "click"),
            None,
            "only http(s) URLs are clickable"
        );
        let body = String::from_utf8(request.body).unwrap();
        assert!(body.contains("\nPrice: 300000\n"), "{body}");
        assert!(!body.contains("Location"), "{body}");
        assert!(!body.contains("javascript"), "{body}");

        let request = http_request(
            target("ntfy+https://ntfy.sh/t").render(&delivery(&result, None), &Auth::default()),
        );
        assert_eq!(header(&request, "title"), Some("Shortlist match s01"));
        let minimal = minimal_result();
        let request = http_request(
            target("ntfy+https://ntfy.sh/t").render(&delivery(&minimal, None), &Auth::default()),
        );
        assert_eq!(header(&request, "title"), Some("Shortlist match"));
        assert_eq!(String::from_utf8(request.body).unwrap(), "Shortlist match");
    }

    #[test]
    fn slack_request_is_mrkdwn_text_with_a_link() {
        let result = full_result();
        let mut profile = profile();
        profile["metadata"]["summary"] = json!("2 bed <!channel> & garden");
        let request = http_request(
            target("slack+https://hooks.slack.com/services/T000/B000/XXXX")
                .render(&delivery(&result, Some(&profile)), &Auth::default()),
        );
        assert_eq!(
            request.url.as_str(),
            "https://hooks.slack.com/services/T000/B000/XXXX"
        );
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(
            body_json(&request),
            json!({"text": "<https://listings.example/s01?ref=x%7Cy|2 bed &lt;!channel&gt; &amp; garden>\n\
                Price: £375,000\n\
                Location: Southville, Bristol\n\
                • private rear garden\n\
                • two bedrooms, within budget\n\
                • quiet street\n\
                (+1 more)\n\
                Score: 0.86"})
        );
        let minimal = minimal_result();
        let request = http_request(
            target("slack+https://hooks.slack.com/services/T/B/X")
                .render(&delivery(&minimal, None), &Auth::default()),
        );
        assert_eq!(body_json(&request), json!({"text": "*Shortlist match*"}));
    }

    #[test]
    fn discord_request_is_content_without_mentions() {
        let result = full_result();
        let mut profile = profile();
        profile["metadata"]["summary"] = json!("2_bed *flat* @everyone");
        let request = http_request(
            target("discord+https://discord.com/api/webhooks/1/tok")
                .render(&delivery(&result, Some(&profile)), &Auth::default()),
        );
        assert_eq!(
            request.url.as_str(),
            "https://discord.com/api/webhooks/1/tok"
        );
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(
            body_json(&request),
            json!({
                "content": "**2\\_bed \\*flat\\* @everyone**\n\
                    Price: £375,000\n\
                    Location: Southville, Bristol\n\
                    • private rear garden\n\
                    • two bedrooms, within budget\n\
                    • quiet street\n\
                    (+1 more)\n\
                    Score: 0.86\n\
                    https://listings.example/s01?ref=x|y",
                "allowed_mentions": {"parse": []}
            })
        );
    }

    #[test]
    fn discord_content_is_cut_to_2000_characters() {
        let mut result = full_result();
        result.reasons = Some(vec!["*".repeat(5000), "_".repeat(5000), "x".repeat(5000)]);
        let long_url = format!("https://listings.example/{}", "p".repeat(900));
        let profile = json!({"text": "t", "metadata": {
            "summary": "#".repeat(5000), "price": "[".repeat(500), "location": "|".repeat(500), "url": long_url
        }});
        let request = http_request(
            target("discord+https://discord.com/api/webhooks/1/tok")
                .render(&delivery(&result, Some(&profile)), &Auth::default()),
        );
        let content = body_json(&request)["content"].as_str().unwrap().to_string();
        assert!(content.encode_utf16().count() <= 2000, "{}", content.len());
        assert!(content.contains('…'));
        assert!(
            content.ends_with(&long_url),
            "the listing URL survives long reasons"
        );

        // The backstop itself: exactly 2000, ending in an ellipsis, on a char boundary.
        let cut = truncate_measured(Style::Discord, &"é".repeat(5000), 2000);
        assert_eq!(cut.chars().count(), 2000);
        assert!(cut.ends_with("é…"));
        let cut = truncate_measured(Style::Discord, &"😀".repeat(1500), 2000);
        assert!(cut.encode_utf16().count() <= 2000 && cut.ends_with('…'));
        assert_eq!(truncate_measured(Style::Discord, "short", 2000), "short");
    }

    #[test]
    fn file_and_stdout_lines_are_the_webhook_body_plus_delivery_fields() {
        let result = full_result();
        let mut profile = profile();
        profile["text"] = json!("line one\nline two\r\n");
        let d = delivery(&result, Some(&profile));
        let webhook = body_json(&http_request(
            target("https://example.com/h").render(&d, &Auth::default()),
        ));
        let mut expected = webhook.clone();
        expected["webhook_id"] = json!("msg_s01_abc");
        expected["delivered_at"] = json!("2021-02-25T15:02:10Z");

        let Rendered::FileLine { path, line } =
            target("file:///var/lib/relay/out.jsonl").render(&d, &Auth::default())
        else {
            panic!("expected a file line");
        };
        assert_eq!(path, std::path::PathBuf::from("/var/lib/relay/out.jsonl"));
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(serde_json::from_slice::<Value>(&line).unwrap(), expected);

        let Rendered::StdoutLine(stdout) = target("stdout:").render(&d, &Auth::default()) else {
            panic!("expected a stdout line");
        };
        assert_eq!(stdout, line);
    }

    #[test]
    fn every_adapter_copes_with_odd_input() {
        let huge = "a".repeat(1_000_000);
        let mut result = full_result();
        result.reasons = Some(vec![
            String::new(),
            "  \n ".into(),
            huge.clone(),
            "ok\u{7}".into(),
        ]);
        result.score = Some(f64::NAN);
        result.id = Some("id\r\nwith\u{0}junk".into());
        let profiles = [
            None,
            Some(json!(null)),
            Some(json!(42)),
            Some(json!({"text": huge})),
            Some(json!({"text": "", "metadata": null})),
            Some(
                json!({"text": "t", "metadata": {"summary": {"a": 1}, "price": [1], "url": 7, "location": true}}),
            ),
            Some(
                json!({"text": "t", "metadata": {"summary": huge, "url": format!("https://x.example/{huge}")}}),
            ),
            Some(
                json!({"text": "\u{2028}\u{202e}£\t", "metadata": {"summary": "\u{0}\u{1b}[31m"}}),
            ),
        ];
        let signer = Signer::parse(SECRET).unwrap();
        for target in all_targets() {
            for profile in &profiles {
                let d = Delivery {
                    result: &result,
                    profile: profile.as_ref(),
                    webhook_id: "id\r\n£%",
                    timestamp: i64::MAX,
                };
                let auth = Auth {
                    signer: Some(&signer),
                    bearer: Some("bad token\n"),
                };
                match target.render(&d, &auth) {
                    Rendered::Http(request) => {
                        assert!(
                            header(&request, "authorization").is_none(),
                            "an invalid token is left out"
                        );
                        assert_eq!(header(&request, "webhook-id"), Some("id%0D%0A%C2%A3%25"));
                        verify(&request, SECRET);
                        match target.kind() {
                            "ntfy" => {
                                assert!(request.body.len() <= NTFY_MAX_BYTES);
                                assert!(std::str::from_utf8(&request.body).is_ok());
                            }
                            "slack" => {
                                let text =
                                    body_json(&request)["text"].as_str().unwrap().to_string();
                                assert!(text.chars().count() <= SLACK_MAX_CHARS);
                            }
                            "discord" => {
                                let content =
                                    body_json(&request)["content"].as_str().unwrap().to_string();
                                assert!(content.encode_utf16().count() <= DISCORD_MAX_UNITS);
                            }
                            _ => {
                                body_json(&request);
                            }
                        }
                    }
                    Rendered::FileLine { line, .. } | Rendered::StdoutLine(line) => {
                        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
                        let value: Value = serde_json::from_slice(&line).unwrap();
                        assert_eq!(value["webhook_id"], "id\r\n£%");
                        assert_eq!(value["assessment"]["score"], Value::Null);
                    }
                }
            }
        }
    }

    #[test]
    fn bearer_tokens_are_checked_without_being_quoted() {
        assert_eq!(check_bearer_token("abc.DEF-123_~+/="), Ok(()));
        assert_eq!(check_bearer_token("  tok\n"), Ok(()));
        assert_eq!(check_bearer_token(" "), Err(BearerError::Empty));
        let err = check_bearer_token("sekrit token").unwrap_err();
        assert_eq!(err, BearerError::InvalidCharacter { position: 7 });
        assert!(!err.to_string().contains("sekrit"));
        assert!(check_bearer_token("t£k").is_err());
    }

    #[test]
    fn helpers_cut_on_character_boundaries() {
        assert_eq!(single_line(" a\r\n\tb\u{2028}c  \u{0}d "), "a b c d");
        assert_eq!(truncate_chars("£££££", 3), "££…");
        assert_eq!(fit(Style::Slack, "a&b", 3), "a…");
        assert_eq!(fit(Style::Slack, "a&b", 7), "a&amp;b");
        assert_eq!(fit(Style::Slack, "a&bc", 7), "a&amp;…");
        assert_eq!(fit(Style::Discord, "a*b", 2), "a…");
        assert_eq!(fit(Style::Plain, "£££", 5), "£…");
        let cut = truncate_measured(Style::Plain, &"£".repeat(3000), NTFY_MAX_BYTES);
        assert!(cut.len() <= NTFY_MAX_BYTES && cut.ends_with('…'));
        assert_eq!(header_token("msg_1-A.b"), "msg_1-A.b");
        assert_eq!(header_token("a b%"), "a%20b%25");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
