//! Reading a model's reply, shared by every backend that talks to a model
//! (`openai`, `llama`): regex mode, truncation, schema validation, and the
//! wording of the one repair request an unusable reply gets.

use regex::Regex;
use shortlist_contract::{DecidedBy, ScoreSource, Verdict};

use super::{Decision, JudgeError};
use crate::prompt::DATAMARK;
use crate::verdict::{excerpt, parse_reply};

/// Why a reply could not be used.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReplyProblem {
    /// Not a valid verdict.
    Invalid(String),
    /// Cut off at the token limit.
    Truncated(String),
}

impl ReplyProblem {
    /// The user message asking the model to try again.
    pub(crate) fn repair_message(&self) -> String {
        let (what, hint) = match self {
            ReplyProblem::Invalid(detail) => (detail.as_str(), ""),
            ReplyProblem::Truncated(detail) => (detail.as_str(), " Keep the reasons short."),
        };
        format!(
            "Your reply could not be used: {what}. Reply again with only one JSON object of the form \
             {{\"verdict\": \"accept\" or \"reject\", \"score\": a number from 0 to 1, \"reasons\": [short strings]}} \
             and nothing else.{hint}"
        )
    }

    /// The error once the repair did not help either.
    pub(crate) fn into_error(self) -> JudgeError {
        match self {
            ReplyProblem::Invalid(detail) => JudgeError::ReplyInvalid { detail },
            ReplyProblem::Truncated(detail) => JudgeError::ReplyTruncated { detail },
        }
    }
}

/// Turns a reply into a decision, or says what is wrong with it.
/// `truncated` is set when generation stopped at `max_tokens`.
pub(crate) fn interpret(
    content: &str,
    truncated: bool,
    max_tokens: u32,
    positive_regex: Option<&Regex>,
) -> Result<Decision, ReplyProblem> {
    if let Some(regex) = positive_regex {
        let reply = content.trim();
        let verdict = if regex.is_match(reply) {
            Verdict::Accept
        } else {
            Verdict::Reject
        };
        let matched = if verdict == Verdict::Accept {
            "matches"
        } else {
            "does not match"
        };
        return Ok(Decision {
            verdict,
            score: None,
            score_source: None,
            reasons: vec![format!(
                "reply {} {matched} LLM_POSITIVE_RESPONSE_REGEX",
                excerpt(reply)
            )],
            decided_by: DecidedBy::Regex,
        });
    }
    if truncated {
        return Err(ReplyProblem::Truncated(format!(
            "generation stopped at the limit of {max_tokens} tokens; reply so far: {}",
            excerpt(content.trim())
        )));
    }
    let reply = parse_reply(content).map_err(ReplyProblem::Invalid)?;
    Ok(Decision {
        verdict: reply.verdict,
        score: Some(reply.score),
        score_source: Some(ScoreSource::Stated),
        // Models quote the datamarked listing back; show it as plain text.
        reasons: reply
            .reasons
            .into_iter()
            .map(|r| r.replace(DATAMARK, " "))
            .collect(),
        decided_by: DecidedBy::Llm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_mode_matches_the_whole_trimmed_reply() {
        let re = Regex::new("^(?:(?i)yes.*)$").unwrap();
        assert_eq!(
            interpret(" Yes, fine\n", false, 10, Some(&re))
                .unwrap()
                .verdict,
            Verdict::Accept
        );
        assert_eq!(
            interpret("well, yes", false, 10, Some(&re))
                .unwrap()
                .verdict,
            Verdict::Reject
        );
    }

    #[test]
    fn truncation_and_invalid_replies_are_problems() {
        assert!(matches!(
            interpret("{\"verdict\":", true, 5, None),
            Err(ReplyProblem::Truncated(_))
        ));
        assert!(matches!(
            interpret("nope", false, 5, None),
            Err(ReplyProblem::Invalid(_))
        ));
        let d = interpret(
            r#"{"verdict":"reject","score":0.1,"reasons":["x"]}"#,
            false,
            5,
            None,
        )
        .unwrap();
        assert_eq!(d.decided_by, DecidedBy::Llm);
        assert!(
            ReplyProblem::Truncated("t".into())
                .repair_message()
                .contains("Keep the reasons short")
        );
    }

    #[test]
    fn datamarks_quoted_back_are_undone_in_reasons() {
        let d = interpret(
            r#"{"verdict":"accept","score":0.5,"reasons":["twoˆbedroomˆflat"]}"#,
            false,
            5,
            None,
        )
        .unwrap();
        assert_eq!(d.reasons, vec!["two bedroom flat".to_string()]);
    }
}
