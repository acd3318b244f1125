//! Notifier targets: what `NOTIFIER_URL` names, parsed once at start-up.
//!
//! The scheme picks the adapter, so one variable can fan out to a generic
//! webhook, an ntfy topic and a chat channel at once without per-adapter
//! settings. Target URLs often carry secrets (Slack and Discord put the
//! webhook secret in the path; any URL may have userinfo or a `?token=`), so
//! nothing here prints a raw entry: errors, [`Target::display`] and `Debug`
//! show redacted forms only.

use std::fmt;
use std::path::PathBuf;

use reqwest::Url;

use crate::hex::sha256_prefix;

/// What every parse error ends with, so a user sees every accepted form.
const EXPECTED: &str =
    "expected http(s)://, ntfy+https://, slack+https://, discord+https://, file:///path or stdout:";

/// Longest redacted entry shown in an error.
const MAX_SHOWN_ENTRY_CHARS: usize = 120;

/// Why `NOTIFIER_URL` was refused. Each variant names the entry by its
/// 1-based position and its redacted value (never the raw value: it may hold
/// a webhook secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("NOTIFIER_URL is empty; {EXPECTED} (several may be given, separated by commas)")]
    NoTargets,
    #[error(
        "NOTIFIER_URL entry {index} is empty (two commas in a row, or a trailing comma?); {EXPECTED}"
    )]
    EmptyEntry { index: usize },
    #[error("NOTIFIER_URL entry {index} {entry:?}: no scheme; {EXPECTED}")]
    MissingScheme { index: usize, entry: String },
    #[error("NOTIFIER_URL entry {index} {entry:?}: unsupported scheme {scheme:?}; {EXPECTED}")]
    UnsupportedScheme {
        index: usize,
        entry: String,
        scheme: String,
    },
    #[error("NOTIFIER_URL entry {index} {entry:?}: not a valid URL ({reason}); {expected}")]
    InvalidUrl {
        index: usize,
        entry: String,
        reason: String,
        expected: &'static str,
    },
    #[error("NOTIFIER_URL entry {index} {entry:?}: {problem}; expected {expected}")]
    Incomplete {
        index: usize,
        entry: String,
        /// What is missing or wrong, e.g. `no topic`.
        problem: &'static str,
        /// The form this scheme expects, e.g. `ntfy+https://host/topic`.
        expected: &'static str,
    },
    #[error(
        "NOTIFIER_URL entry {index} {entry:?}: the same target as entry {first}; each target must be listed once"
    )]
    Duplicate {
        index: usize,
        entry: String,
        first: usize,
    },
}

/// The adapter a target uses, with what it needs to render a request.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// Generic JSON webhook; the URL as given.
    Webhook(Url),
    /// ntfy; the `ntfy+` prefix already removed.
    Ntfy(Url),
    /// Slack or Mattermost incoming webhook; prefix removed.
    Slack(Url),
    /// Discord webhook; prefix removed.
    Discord(Url),
    /// JSON lines appended to an absolute path.
    File(PathBuf),
    /// JSON lines on standard output.
    Stdout,
}

/// One parsed notifier target.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Target {
    kind: Kind,
    /// The normalised full target, secrets included: the input of
    /// [`Target::key`] and of duplicate detection. Never shown.
    canonical: String,
}

/// Redacted, like [`Target::display`]: targets end up in logged structs.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({:?})", self.display())
    }
}

/// The redacted form, so `{}` in a log line is always safe.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// Parses `NOTIFIER_URL`: one or more comma-separated targets, blanks around
/// each ignored. Fails on the first bad entry, naming it.
pub(crate) fn parse_targets(list: &str) -> Result<Vec<Target>, TargetError> {
    if list.trim().is_empty() {
        return Err(TargetError::NoTargets);
    }
    let mut targets: Vec<Target> = Vec::new();
    for (i, entry) in list.split(',').enumerate() {
        let index = i + 1;
        let target = Target::parse_entry(index, entry.trim())?;
        if let Some(first) = targets.iter().position(|t| t.canonical == target.canonical) {
            return Err(TargetError::Duplicate {
                index,
                entry: redact_entry(entry.trim()),
                first: first + 1,
            });
        }
        targets.push(target);
    }
    Ok(targets)
}

impl Target {
    /// Parses one entry; `index` is its 1-based position, for errors.
    fn parse_entry(index: usize, entry: &str) -> Result<Target, TargetError> {
        if entry.is_empty() {
            return Err(TargetError::EmptyEntry { index });
        }
        let shown = || redact_entry(entry);
        let Some((scheme, rest)) = entry
            .split_once(':')
            .filter(|(scheme, _)| is_scheme(scheme))
        else {
            return Err(TargetError::MissingScheme {
                index,
                entry: shown(),
            });
        };
        let scheme = scheme.to_ascii_lowercase();
        let incomplete = |problem, expected| TargetError::Incomplete {
            index,
            entry: shown(),
            problem,
            expected,
        };
        let (kind, canonical) = match scheme.as_str() {
            "http" | "https" => {
                let url = parse_http_url(index, entry, entry, "expected http(s)://host/path")?;
                let canonical = url.as_str().to_string();
                (Kind::Webhook(url), canonical)
            }
            "ntfy+http" | "ntfy+https" => {
                let expected = "ntfy+https://host/topic";
                let url = parse_http_url(
                    index,
                    entry,
                    strip_adapter(entry),
                    "expected ntfy+https://host/topic",
                )?;
                if url.path().trim_matches('/').is_empty() {
                    return Err(incomplete("no topic", expected));
                }
                let canonical = format!("ntfy+{url}");
                (Kind::Ntfy(url), canonical)
            }
            "slack+http" | "slack+https" => {
                let expected =
                    "slack+https://hooks.slack.com/services/... (the incoming webhook URL)";
                let url = parse_http_url(
                    index,
                    entry,
                    strip_adapter(entry),
                    "expected slack+https://hooks.slack.com/services/...",
                )?;
                if url.path().trim_matches('/').is_empty() {
                    return Err(incomplete("no webhook path", expected));
                }
                let canonical = format!("slack+{url}");
                (Kind::Slack(url), canonical)
            }
            "discord+http" | "discord+https" => {
                let expected = "discord+https://discord.com/api/webhooks/... (the webhook URL)";
                let url = parse_http_url(
                    index,
                    entry,
                    strip_adapter(entry),
                    "expected discord+https://discord.com/api/webhooks/...",
                )?;
                if url.path().trim_matches('/').is_empty() {
                    return Err(incomplete("no webhook path", expected));
                }
                let canonical = format!("discord+{url}");
                (Kind::Discord(url), canonical)
            }
            "file" => {
                let path = parse_file(rest).map_err(|problem| {
                    incomplete(problem, "file:///absolute/path/out.jsonl (three slashes)")
                })?;
                let canonical = format!("file://{}", path.display());
                (Kind::File(path), canonical)
            }
            "stdout" => {
                if !rest.trim().is_empty() {
                    return Err(incomplete(
                        "stdout: takes nothing after the colon",
                        "stdout:",
                    ));
                }
                (Kind::Stdout, "stdout:".to_string())
            }
            _ => {
                return Err(TargetError::UnsupportedScheme {
                    index,
                    entry: shown(),
                    scheme: truncate_chars(&scheme, 40),
                });
            }
        };
        Ok(Target { kind, canonical })
    }

    /// `"webhook"`, `"ntfy"`, `"slack"`, `"discord"`, `"file"` or `"stdout"`:
    /// how tests name the adapter a target picked.
    #[cfg(test)]
    pub(crate) fn kind(&self) -> &'static str {
        match self.kind {
            Kind::Webhook(_) => "webhook",
            Kind::Ntfy(_) => "ntfy",
            Kind::Slack(_) => "slack",
            Kind::Discord(_) => "discord",
            Kind::File(_) => "file",
            Kind::Stdout => "stdout",
        }
    }

    /// A form safe to log: never userinfo or a query; Slack and Discord
    /// show only scheme and host (their path is the secret); webhooks and
    /// ntfy keep the path, which tells targets apart.
    pub(crate) fn display(&self) -> String {
        match &self.kind {
            Kind::Webhook(url) => format!("{}://{}{}", url.scheme(), authority(url), url.path()),
            Kind::Ntfy(url) => format!("ntfy+{}://{}{}", url.scheme(), authority(url), url.path()),
            Kind::Slack(url) => format!("slack+{}://{}/…", url.scheme(), authority(url)),
            Kind::Discord(url) => format!("discord+{}://{}/…", url.scheme(), authority(url)),
            Kind::File(path) => format!("file://{}", path.display()),
            Kind::Stdout => "stdout:".to_string(),
        }
    }

    /// A stable short name for the outbox's file names: the first 12 hex
    /// digits of the SHA-256 of the full normalised target. The same target
    /// gets the same key across restarts (so pending deliveries are found
    /// again), different targets get different keys, and the key is a plain
    /// `[0-9a-f]{12}` that reveals nothing of a secret in the URL.
    pub(crate) fn key(&self) -> String {
        sha256_prefix(self.canonical.as_bytes(), 6)
    }

    /// Whether the URL carries `user:pass@` (or just `user@`): reqwest then
    /// sends HTTP Basic auth from it, which must not silently meet a
    /// NOTIFIER_TOKEN's bearer.
    pub(crate) fn has_userinfo(&self) -> bool {
        match &self.kind {
            Kind::Webhook(url) | Kind::Ntfy(url) | Kind::Slack(url) | Kind::Discord(url) => {
                !url.username().is_empty() || url.password().is_some()
            }
            Kind::File(_) | Kind::Stdout => false,
        }
    }

    /// Whether deliveries go out over HTTP (and so carry auth headers).
    pub(crate) fn is_http(&self) -> bool {
        !matches!(self.kind, Kind::File(_) | Kind::Stdout)
    }

    /// Whether delivering to this target may need TLS (an https URL).
    pub(crate) fn needs_tls(&self) -> bool {
        match &self.kind {
            Kind::Webhook(url) | Kind::Ntfy(url) | Kind::Slack(url) | Kind::Discord(url) => {
                url.scheme() == "https"
            }
            Kind::File(_) | Kind::Stdout => false,
        }
    }

    /// The adapter and what it needs, for rendering.
    pub(super) fn adapter(&self) -> &Kind {
        &self.kind
    }
}

/// `host[:port]`, without userinfo.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`. Anything else
/// before the first colon (`hooks.slack.com/x:y`, `//host`) is not a scheme,
/// and is reported as a missing one rather than quoted as a scheme.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `ntfy+https://x` → `https://x`: the adapter prefix goes, the transport
/// scheme stays.
fn strip_adapter(entry: &str) -> &str {
    entry.split_once('+').map_or(entry, |(_, rest)| rest)
}

/// Parses an http(s) URL that must have a host.
fn parse_http_url(
    index: usize,
    entry: &str,
    url: &str,
    expected: &'static str,
) -> Result<Url, TargetError> {
    let parsed = Url::parse(url).map_err(|e| TargetError::InvalidUrl {
        index,
        entry: redact_entry(entry),
        // url's messages ("empty host", "invalid port number") never
        // quote the input.
        reason: e.to_string(),
        expected,
    })?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(TargetError::Incomplete {
            index,
            entry: redact_entry(entry),
            problem: "no host",
            expected: "a URL with a host, such as https://example.com/hook",
        });
    }
    Ok(parsed)
}

/// The absolute path of a `file:` entry (`rest` is what follows `file:`).
///
/// Only `file:///abs` (and `file://localhost/abs`) are accepted: in
/// `file://out.jsonl` the name would be read as a host, and a relative path
/// would depend on the working directory of whatever started the relay.
fn parse_file(rest: &str) -> Result<PathBuf, &'static str> {
    let Some(after_slashes) = rest.strip_prefix("//") else {
        return Err("not an absolute path");
    };
    let (host, path) = after_slashes
        .find('/')
        .map_or((after_slashes, ""), |i| after_slashes.split_at(i));
    if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
        return Err("a relative path or a host (file://NAME reads NAME as a host)");
    }
    if path.is_empty() {
        return Err("no path");
    }
    if path.contains(['?', '#']) {
        return Err("a query or fragment in a file path");
    }
    let url = Url::parse(&format!("file://{path}")).map_err(|_| "not a valid file URL")?;
    let path = url
        .to_file_path()
        .map_err(|()| "not a local absolute path")?;
    if !path.is_absolute() {
        return Err("not an absolute path");
    }
    if path.file_name().is_none() || url.path().ends_with('/') {
        return Err("a directory, not a file");
    }
    Ok(path)
}

/// An entry made safe to print: userinfo, queries and fragments go; the
/// path stays only for schemes whose path is not a secret (generic webhooks,
/// ntfy topics, file paths). Works on text that did not parse, since errors
/// are exactly where that happens.
fn redact_entry(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("file:") || lower.starts_with("stdout") {
        return truncate_chars(raw, MAX_SHOWN_ENTRY_CHARS);
    }
    let (prefix, rest) = match raw.find("://") {
        Some(i) => raw.split_at(i + 3),
        None => ("", raw),
    };
    let scheme = prefix.trim_end_matches("://").to_ascii_lowercase();
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = after.split(['?', '#']).next().unwrap_or("");
    let keep_path = matches!(
        scheme.as_str(),
        "http" | "https" | "ntfy+http" | "ntfy+https"
    );
    let tail = if keep_path {
        path
    } else if after.is_empty() {
        ""
    } else {
        "/…"
    };
    truncate_chars(&format!("{prefix}{host}{tail}"), MAX_SHOWN_ENTRY_CHARS)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn http_url(target: &Target) -> Option<&Url> {
        match target.adapter() {
            Kind::Webhook(url) | Kind::Ntfy(url) | Kind::Slack(url) | Kind::Discord(url) => {
                Some(url)
            }
            Kind::File(_) | Kind::Stdout => None,
        }
    }

    fn file_path(target: &Target) -> Option<&PathBuf> {
        match target.adapter() {
            Kind::File(path) => Some(path),
            _ => None,
        }
    }

    fn one(entry: &str) -> Target {
        let mut targets = parse_targets(entry).unwrap();
        assert_eq!(targets.len(), 1);
        targets.remove(0)
    }

    fn err(list: &str) -> TargetError {
        parse_targets(list).unwrap_err()
    }

    #[test]
    fn parses_every_kind_from_one_list() {
        let targets = parse_targets(
            " https://example.com/hook , ntfy+https://ntfy.sh/flats,ntfy+http://localhost:8080/t,\
             slack+https://hooks.slack.com/services/T000/B000/XXXXSECRET,\
             discord+https://discord.com/api/webhooks/1/tok, file:///var/log/out.jsonl, stdout:",
        )
        .unwrap();
        let kinds: Vec<_> = targets.iter().map(Target::kind).collect();
        assert_eq!(
            kinds,
            [
                "webhook", "ntfy", "ntfy", "slack", "discord", "file", "stdout"
            ]
        );
        let urls: Vec<_> = targets
            .iter()
            .map(|t| http_url(t).map(|u| u.as_str().to_string()))
            .collect();
        assert_eq!(
            urls,
            [
                Some("https://example.com/hook".to_string()),
                Some("https://ntfy.sh/flats".to_string()),
                Some("http://localhost:8080/t".to_string()),
                Some("https://hooks.slack.com/services/T000/B000/XXXXSECRET".to_string()),
                Some("https://discord.com/api/webhooks/1/tok".to_string()),
                None,
                None,
            ]
        );
        assert_eq!(
            file_path(&targets[5]),
            Some(&PathBuf::from("/var/log/out.jsonl"))
        );
    }

    #[test]
    fn schemes_are_case_insensitive_and_file_paths_are_decoded() {
        assert_eq!(one("HTTPS://Example.com/x").kind(), "webhook");
        assert_eq!(one("NTFY+HTTPS://ntfy.sh/t").kind(), "ntfy");
        assert_eq!(
            file_path(&one("file:///tmp/my%20dir/out.jsonl")),
            Some(&PathBuf::from("/tmp/my dir/out.jsonl"))
        );
        assert_eq!(
            file_path(&one("file://localhost/tmp/out.jsonl")),
            Some(&PathBuf::from("/tmp/out.jsonl"))
        );
    }

    #[test]
    fn unsupported_scheme_message_names_entry_and_expectations() {
        assert_eq!(
            err("https://a.example/x, gopher://x").to_string(),
            "NOTIFIER_URL entry 2 \"gopher://x\": unsupported scheme \"gopher\"; expected http(s)://, ntfy+https://, slack+https://, discord+https://, file:///path or stdout:"
        );
    }

    #[test]
    fn every_bad_form_is_refused() {
        assert_eq!(err(""), TargetError::NoTargets);
        assert_eq!(err("  "), TargetError::NoTargets);
        assert_eq!(
            err("https://a.example/x,"),
            TargetError::EmptyEntry { index: 2 }
        );
        assert_eq!(
            err("https://a.example/x,,stdout:"),
            TargetError::EmptyEntry { index: 2 }
        );
        assert!(matches!(
            err("hooks.slack.com/services/x"),
            TargetError::MissingScheme { index: 1, .. }
        ));
        assert!(matches!(
            err("localhost:8080/x"),
            TargetError::UnsupportedScheme { .. }
        ));
        assert!(matches!(err("http://"), TargetError::InvalidUrl { .. }));
        assert!(matches!(
            err("https://:80/x"),
            TargetError::InvalidUrl { .. }
        ));
        assert!(matches!(
            err("ntfy+https://"),
            TargetError::InvalidUrl { .. }
        ));
        assert!(matches!(
            err("ntfy+https://ntfy.sh"),
            TargetError::Incomplete {
                problem: "no topic",
                ..
            }
        ));
        assert!(matches!(
            err("ntfy+https://ntfy.sh/"),
            TargetError::Incomplete {
                problem: "no topic",
                ..
            }
        ));
        assert!(matches!(
            err("slack+https://hooks.slack.com"),
            TargetError::Incomplete { .. }
        ));
        assert!(matches!(
            err("discord+https://discord.com/"),
            TargetError::Incomplete { .. }
        ));
        assert!(matches!(err("stdout:x"), TargetError::Incomplete { .. }));
        assert!(matches!(err("stdout"), TargetError::MissingScheme { .. }));
        assert!(matches!(
            err("ntfy://ntfy.sh/t"),
            TargetError::UnsupportedScheme { .. }
        ));
        assert!(matches!(
            err("slack://hooks.slack.com/x"),
            TargetError::UnsupportedScheme { .. }
        ));
        let dup = err("https://a.example/x, stdout:, HTTPS://A.example/x").to_string();
        assert!(dup.starts_with("NOTIFIER_URL entry 3 "), "{dup}");
        assert!(dup.contains("same target as entry 1"), "{dup}");
    }

    #[test]
    fn file_targets_need_an_absolute_path() {
        for bad in [
            "file:out.jsonl",
            "file:./out.jsonl",
            "file://out.jsonl",
            "file://relative/out.jsonl",
            "file:/",
            "file://",
            "file:///",
            "file:///tmp/",
            "file:///tmp/x.jsonl?x=1",
            "file://example.com/tmp/x.jsonl",
        ] {
            let e = err(bad);
            assert!(matches!(e, TargetError::Incomplete { .. }), "{bad}: {e:?}");
            let message = e.to_string();
            assert!(message.contains("file:///absolute/path"), "{message}");
            assert!(message.starts_with("NOTIFIER_URL entry 1 "), "{message}");
        }
        let message = err("file:out.jsonl").to_string();
        assert!(message.contains("\"file:out.jsonl\""), "{message}");
        assert!(message.contains("not an absolute path"), "{message}");
    }

    #[test]
    fn display_never_shows_secrets() {
        let slack = one("slack+https://hooks.slack.com/services/T000/B000/XXXXSECRET");
        assert_eq!(slack.display(), "slack+https://hooks.slack.com/…");
        assert!(!slack.display().contains("XXXXSECRET"));
        assert!(!slack.display().contains("T000"));
        assert_eq!(
            one("discord+https://discord.com/api/webhooks/123/tok").display(),
            "discord+https://discord.com/…"
        );
        assert_eq!(
            one("https://user:pw@example.com:8443/hooks/in?token=abc#frag").display(),
            "https://example.com:8443/hooks/in"
        );
        assert_eq!(
            one("ntfy+https://u:p@ntfy.example/flats?auth=abc").display(),
            "ntfy+https://ntfy.example/flats"
        );
        assert_eq!(
            one("file:///tmp/out.jsonl").display(),
            "file:///tmp/out.jsonl"
        );
        assert_eq!(one("stdout:").display(), "stdout:");
        let debug = format!("{slack:?} {slack}");
        assert!(
            !debug.contains("XXXXSECRET") && !debug.contains("T000"),
            "{debug}"
        );
    }

    #[test]
    fn errors_never_show_secrets() {
        for (list, secrets) in [
            (
                "slak+https://hooks.slack.com/services/T000/B000/XXXXSECRET",
                &["XXXXSECRET", "T000"][..],
            ),
            (
                "https://user:hunter2@:99999/x?token=tok123",
                &["hunter2", "tok123"],
            ),
            (
                "ntfy+https://user:hunter2@ntfy.sh?token=tok123",
                &["hunter2", "tok123"],
            ),
            (
                "slack+https://user:hunter2@/T000/XXXXSECRET",
                &["hunter2", "XXXXSECRET", "T000"],
            ),
            ("user:hunter2@example.com/x", &["hunter2"]),
            (
                "hooks.slack.com/services/T000/B000/XXXXSECRET",
                &["XXXXSECRET", "T000"],
            ),
            (
                "stdout:, slack+https://hooks.slack.com/services/T000/B/XXXXSECRET, slack+https://hooks.slack.com/services/T000/B/XXXXSECRET",
                &["XXXXSECRET", "T000"],
            ),
        ] {
            let e = err(list);
            let message = format!("{e} {e:?}");
            for secret in secrets {
                assert!(!message.contains(secret), "{list}: {message}");
            }
        }
    }

    #[test]
    fn keys_are_stable_distinct_and_opaque() {
        let list = "https://example.com/hook?token=SECRETTOKEN, https://example.com/hook?token=OTHER, \
                    ntfy+https://example.com/hook, file:///tmp/a.jsonl, stdout:";
        let first: Vec<String> = parse_targets(list)
            .unwrap()
            .iter()
            .map(Target::key)
            .collect();
        let again: Vec<String> = parse_targets(list)
            .unwrap()
            .iter()
            .map(Target::key)
            .collect();
        assert_eq!(first, again);
        let mut unique = first.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), first.len(), "{first:?}");
        for key in &first {
            assert_eq!(key.len(), 12);
            assert!(
                key.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
                "{key}"
            );
        }
        // Pinned: changing the derivation would orphan every outbox on upgrade.
        // `printf 'stdout:' | sha256sum`, first 12 digits.
        assert_eq!(one("stdout:").key(), "39aeeccf1d4e");
        // Normalisation: the same URL spelled differently is the same target.
        assert_eq!(
            one("HTTPS://Example.COM/hook").key(),
            one("https://example.com/hook").key()
        );
    }

    #[test]
    fn redaction_of_unparsed_entries() {
        assert_eq!(redact_entry("gopher://x"), "gopher://x");
        assert_eq!(redact_entry("gopher://u:p@x/secret?q"), "gopher://x/…");
        assert_eq!(redact_entry("https://u:p@x/path?q=1"), "https://x/path");
        assert_eq!(redact_entry("example.com/secret"), "example.com/…");
        assert_eq!(redact_entry(""), "");
        assert!(
            redact_entry(&format!("https://x/{}", "a".repeat(500)))
                .chars()
                .count()
                <= 120
        );
    }

    #[test]
    fn only_https_targets_need_tls() {
        let targets = parse_targets(
            "http://127.0.0.1:9/x,ntfy+http://127.0.0.1:9/t,file:///tmp/o.jsonl,stdout:",
        )
        .unwrap();
        assert!(targets.iter().all(|t| !t.needs_tls()));
        let targets =
            parse_targets("slack+https://hooks.slack.test/services/a,https://example.test/h")
                .unwrap();
        assert!(targets.iter().all(|t| t.needs_tls()));
    }
}
