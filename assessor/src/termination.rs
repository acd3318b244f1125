//! The container's termination message: a short summary of the result
//! (id, status, verdict, score, what decided, the first reasons, the error
//! kind) written where Kubernetes reads it (`terminationMessagePath`,
//! `/dev/termination-log` by default), so whoever launched the Job reads the
//! verdict from the pod's status without a volume or the logs: the
//! Kubernetes-native way for a pod to return a small result.
//!
//! The kubelet keeps at most 4096 bytes of it, so the summary is built to
//! fit: reasons are shortened, then dropped, until it does.

use std::path::Path;

use serde_json::{Value, json};
use shortlist_contract::AssessmentResult;

/// What the kubelet keeps of a termination message.
pub(crate) use shortlist_contract::termination::{MAX_BYTES, SCHEMA};
/// Reasons in the summary, at most.
const MAX_REASONS: usize = 3;
/// Characters of one reason, at most.
const MAX_REASON_CHARS: usize = 200;

/// The summary of `result`, as one JSON object of at most [`MAX_BYTES`].
pub(crate) fn summary(result: &AssessmentResult) -> String {
    let error = result.error.clone().flatten().map(|e| {
        let message: String = e.message.chars().take(MAX_REASON_CHARS).collect();
        json!({"kind": e.kind, "message": message})
    });
    let mut reasons: Vec<String> = result
        .reasons
        .clone()
        .unwrap_or_default()
        .into_iter()
        .take(MAX_REASONS)
        .map(|r| r.chars().take(MAX_REASON_CHARS).collect())
        .collect();
    loop {
        let text = json!({
            "schema": SCHEMA,
            "id": result.id,
            "status": result.effective_status(),
            "verdict": result.verdict,
            "score": result.score,
            "score_source": result.score_source,
            "decided_by": result.decided_by,
            "reasons": reasons,
            "error": error,
        })
        .to_string();
        if text.len() <= MAX_BYTES || reasons.is_empty() {
            return cut(text);
        }
        reasons.pop();
    }
}

/// Writes the summary to `path` (the file the kubelet mounted). A failure
/// is logged, never fatal: the result file is the contract, this a
/// convenience.
pub(crate) fn write(path: &Path, result: &AssessmentResult) {
    if let Err(error) = std::fs::write(path, summary(result)) {
        tracing::warn!(path = %path.display(), %error, "cannot write the termination message (ASSESSOR_TERMINATION_MESSAGE)");
    }
}

/// A last resort for an id longer than the whole budget: keeps the JSON
/// valid by dropping to the bare verdict.
fn cut(text: String) -> String {
    if text.len() <= MAX_BYTES {
        return text;
    }
    let value: Value = serde_json::from_str(&text).unwrap_or_default();
    json!({
        "schema": SCHEMA,
        "status": value["status"],
        "verdict": value["verdict"],
        "score": value["score"],
        "truncated": true,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(value: Value) -> AssessmentResult {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_summary_carries_the_verdict_and_the_first_reasons() {
        let r = result(json!({
            "id": "s01", "status": "ok", "verdict": "accept", "score": 0.82,
            "score_source": "token_probability", "decided_by": "llm",
            "reasons": ["a", "b", "c", "d"], "error": null
        }));
        let s: Value = serde_json::from_str(&summary(&r)).unwrap();
        assert_eq!(s["id"], "s01");
        assert_eq!(s["verdict"], "accept");
        assert_eq!(s["score"], 0.82);
        assert_eq!(s["decided_by"], "llm");
        assert_eq!(s["reasons"], json!(["a", "b", "c"]));
        assert!(s["error"].is_null());
        // What the runner reads back.
        let read = shortlist_contract::termination::TerminationSummary::parse(&summary(&r))
            .expect("the contract's reader takes the summary");
        assert_eq!(read.verdict.as_deref(), Some("accept"));
        assert_eq!(read.first_reason(), Some("a"));
    }

    #[test]
    fn an_error_names_its_kind_and_long_reasons_fit_the_kubelets_limit() {
        let r = result(json!({
            "id": "x", "status": "error", "verdict": null,
            "error": {"kind": "backend_unavailable", "message": "m".repeat(10_000)}
        }));
        let s: Value = serde_json::from_str(&summary(&r)).unwrap();
        assert_eq!(s["error"]["kind"], "backend_unavailable");
        assert_eq!(s["status"], "error");

        let long = result(json!({"id": "y", "verdict": "reject",
                                  "reasons": ["é".repeat(5_000), "b", "c"]}));
        let text = summary(&long);
        assert!(text.len() <= MAX_BYTES, "{}", text.len());
        let huge_id = result(json!({"id": "i".repeat(9_000), "verdict": "reject"}));
        let text = summary(&huge_id);
        assert!(text.len() <= MAX_BYTES);
        let s: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(s["verdict"], "reject");
        assert_eq!(s["truncated"], true);
    }
}
