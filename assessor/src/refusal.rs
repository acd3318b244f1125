//! A server's answer that says the configuration is wrong, not the moment:
//! 401/403 (the API key) and 404 (the model or the base URL). Retrying
//! cannot fix them, so they are not retried and end the assessment with
//! exit 2 (a Job's `FailJob`), with an error kind that says which. Used by
//! the `openai` judge and the vision captioner.

use shortlist_contract::ErrorKind;

/// The settings a refusal points at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Variables {
    pub(crate) key: &'static str,
    pub(crate) model: &'static str,
    pub(crate) base_url: &'static str,
}

/// The judge's settings.
pub(crate) const JUDGE: Variables = Variables {
    key: "LLM_API_KEY",
    model: "LLM_MODEL",
    base_url: "LLM_BASE_URL",
};

/// The captioner's settings.
pub(crate) const CAPTIONS: Variables = Variables {
    key: "CAPTION_API_KEY",
    model: "CAPTION_MODEL",
    base_url: "CAPTION_BASE_URL",
};

/// A refusal of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 401 or 403: the key is wrong, missing, or not allowed.
    Unauthorized { status: u16 },
    /// 404: no such model, or the base URL is not the API's.
    NotFound,
}

impl Refusal {
    /// The refusal an HTTP status means, if any.
    pub(crate) fn of(status: u16) -> Option<Refusal> {
        match status {
            401 | 403 => Some(Refusal::Unauthorized { status }),
            404 => Some(Refusal::NotFound),
            _ => None,
        }
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Refusal::Unauthorized { .. } => ErrorKind::BackendUnauthorized,
            Refusal::NotFound => ErrorKind::BackendNotFound,
        }
    }

    /// What to tell the operator: the endpoint (without secrets), what to
    /// check, and the server's own words.
    pub(crate) fn message(&self, endpoint: &str, variables: Variables, detail: &str) -> String {
        match self {
            Refusal::Unauthorized { status } => format!(
                "{endpoint}: HTTP {status}: the server refused the API key (check {}): {detail}",
                variables.key
            ),
            Refusal::NotFound => {
                let hint = v1_hint(endpoint)
                    .map(|url| format!("; did you mean {}={url}?", variables.base_url))
                    .unwrap_or_default();
                format!(
                    "{endpoint}: HTTP 404: the server has no such model or endpoint (check {} and {}){hint}: {detail}",
                    variables.model, variables.base_url
                )
            }
        }
    }
}

/// For an endpoint `{base}/chat/completions` whose base path has no `v1`
/// segment (`http://host:11434` for Ollama's `http://host:11434/v1`): the
/// base URL with `/v1` appended, query kept.
pub(crate) fn v1_hint(endpoint: &str) -> Option<String> {
    let mut url = url::Url::parse(endpoint).ok()?;
    let base_path = url.path().strip_suffix("/chat/completions")?.to_string();
    if base_path.split('/').any(|segment| segment == "v1") {
        return None;
    }
    url.set_path(&format!("{}/v1", base_path.trim_end_matches('/')));
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_that_refuse_the_configuration() {
        assert_eq!(
            Refusal::of(401).map(|r| r.kind()),
            Some(ErrorKind::BackendUnauthorized)
        );
        assert_eq!(
            Refusal::of(403).map(|r| r.kind()),
            Some(ErrorKind::BackendUnauthorized)
        );
        assert_eq!(
            Refusal::of(404).map(|r| r.kind()),
            Some(ErrorKind::BackendNotFound)
        );
        for status in [400, 408, 409, 422, 429, 500, 503] {
            assert_eq!(Refusal::of(status), None, "{status}");
        }
        assert!(!ErrorKind::BackendUnauthorized.is_transient());
        assert!(!ErrorKind::BackendNotFound.is_transient());
    }

    #[test]
    fn a_base_url_without_v1_gets_a_hint() {
        assert_eq!(
            v1_hint("http://localhost:11434/chat/completions").as_deref(),
            Some("http://localhost:11434/v1")
        );
        assert_eq!(
            v1_hint("http://proxy/openai/chat/completions?tenant=a").as_deref(),
            Some("http://proxy/openai/v1?tenant=a")
        );
        assert_eq!(v1_hint("http://localhost:11434/v1/chat/completions"), None);
        assert_eq!(v1_hint("https://api.example/api/v1/chat/completions"), None);
    }
}
