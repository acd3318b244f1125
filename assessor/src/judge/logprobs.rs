//! Probabilities from a server's `logprobs`: how sure the model was of the
//! word it wrote where a choice is made (the verdict, or a question's
//! answer), read from the alternatives it weighed at that token.
//!
//! A score a model *states* is a number it made up along with its reasons;
//! the distribution over `accept`/`reject` at the verdict token is what the
//! model actually computed, so it ranks listings better, and a threshold on
//! it (`RELAY_MIN_SCORE`) means something. The in-process backend reads the
//! same distribution directly (`score_source: token_probability`).
//!
//! Tokenizers split words arbitrarily (`"acc` + `ept`, or `":"` + `accept`),
//! so the position is found in the concatenated token text, and an
//! alternative counts for a choice when it could begin it: `a`, `acc` and
//! `accept` all count for `accept`.

use serde_json::Value;

/// One generated token and the alternatives the server reported for its
/// position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenChoices {
    /// The token as generated.
    pub(crate) token: String,
    /// Its own log probability, when given.
    pub(crate) logprob: Option<f64>,
    /// The most likely tokens at this position (`top_logprobs`), with their
    /// log probabilities.
    pub(crate) top: Vec<(String, f64)>,
}

/// Reads a choice's `logprobs` in the OpenAI wire format
/// (`{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}`).
/// None when absent (`null`, a server that ignores the parameter) or not in
/// that shape; an entry without a token makes the whole list unusable (the
/// positions would no longer add up), an alternative without a number is
/// skipped.
pub(crate) fn read(logprobs: Option<&Value>) -> Option<Vec<TokenChoices>> {
    let content = logprobs?.get("content")?.as_array()?;
    let mut tokens = Vec::with_capacity(content.len());
    for entry in content {
        let token = entry.get("token")?.as_str()?.to_string();
        let logprob = entry.get("logprob").and_then(Value::as_f64);
        let top = entry
            .get("top_logprobs")
            .and_then(Value::as_array)
            .map(|alternatives| {
                alternatives
                    .iter()
                    .filter_map(|a| {
                        Some((
                            a.get("token")?.as_str()?.to_string(),
                            a.get("logprob")?.as_f64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        tokens.push(TokenChoices {
            token,
            logprob,
            top,
        });
    }
    (!tokens.is_empty()).then_some(tokens)
}

/// Where a string value starts: the index of the token holding its first
/// character, and how many bytes of that token come before it (the `":"`
/// of a token `":"acc`). With `key`, the value of the first `"key"` in the
/// text (`"verdict": "accept"`); without, the first character that is
/// neither white space nor a quote (a bare answer).
pub(crate) fn value_start(tokens: &[TokenChoices], key: Option<&str>) -> Option<(usize, usize)> {
    let text: String = tokens.iter().map(|t| t.token.as_str()).collect();
    let rest = match key {
        Some(key) => {
            let needle = format!("\"{key}\"");
            let after_key = &text[text.find(&needle)? + needle.len()..];
            after_key
                .trim_start()
                .strip_prefix(':')?
                .trim_start()
                .strip_prefix('"')?
        }
        None => text.trim_start_matches(|c: char| c == '"' || c.is_whitespace()),
    };
    if rest.is_empty() {
        return None;
    }
    let position = text.len() - rest.len();
    let mut start = 0;
    for (index, token) in tokens.iter().enumerate() {
        let end = start + token.token.len();
        if position < end {
            return Some((index, position - start));
        }
        start = end;
    }
    None
}

/// The probability of `chosen` among `choices` at one position: the summed
/// probability of the alternatives that could begin `chosen`, over that of
/// the alternatives that could begin any choice. `lead` bytes of the token
/// precede the value (see [`value_start`]); alternatives that start the
/// same way are read after them. Case is ignored, as the reply's own
/// validation ignores it. The generated token counts even when the server
/// left it out of the list. None when no alternative could begin any
/// choice: the distribution says nothing about them.
pub(crate) fn choice_probability(
    at: &TokenChoices,
    lead: usize,
    chosen: &str,
    choices: &[&str],
) -> Option<f64> {
    let lead = at.token.get(..lead).unwrap_or("");
    let mut alternatives: Vec<(&str, f64)> = at.top.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    if let Some(own) = at.logprob
        && !alternatives.iter().any(|(t, _)| *t == at.token)
    {
        alternatives.push((&at.token, own));
    }
    let chosen = chosen.to_lowercase();
    let choices: Vec<String> = choices.iter().map(|c| c.to_lowercase()).collect();
    let (mut for_chosen, mut for_any) = (0.0_f64, 0.0_f64);
    for (text, logprob) in alternatives {
        let Some(word) = candidate_word(text, lead) else {
            continue;
        };
        let begins = |choice: &str| choice.starts_with(&word) || word.starts_with(choice);
        if !choices.iter().any(|c| begins(c)) {
            continue;
        }
        let p = logprob.exp();
        if !p.is_finite() {
            continue;
        }
        for_any += p;
        if begins(&chosen) {
            for_chosen += p;
        }
    }
    (for_any > 0.0).then(|| (for_chosen / for_any).clamp(0.0, 1.0))
}

/// The part of an alternative that would be the value's first characters:
/// after the token's lead (when it shares it), after any quote, colon or
/// space (an alternative lead such as `": "`),
/// up to a closing quote; lower-cased. None when nothing is left.
fn candidate_word(text: &str, lead: &str) -> Option<String> {
    let text = if lead.is_empty() {
        text
    } else {
        text.strip_prefix(lead).unwrap_or(text)
    };
    let word = text
        .trim_start_matches(|c: char| c == '"' || c == ':' || c.is_whitespace())
        .split('"')
        .next()
        .unwrap_or("");
    (!word.is_empty()).then(|| word.to_lowercase())
}

/// P(accept) at the verdict's first token, normalised over accept and
/// reject; None when the reply has no logprobs there or the alternatives
/// name neither.
pub(crate) fn verdict_probability(tokens: &[TokenChoices]) -> Option<f64> {
    let (index, lead) = value_start(tokens, Some("verdict"))?;
    choice_probability(&tokens[index], lead, "accept", &["accept", "reject"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(text: &str, top: &[(&str, f64)]) -> TokenChoices {
        TokenChoices {
            token: text.into(),
            logprob: Some(top.first().map(|(_, p)| p.ln()).unwrap_or(0.0)),
            top: top.iter().map(|(t, p)| (t.to_string(), p.ln())).collect(),
        }
    }

    fn plain(pieces: &[&str]) -> Vec<TokenChoices> {
        pieces.iter().map(|p| token(p, &[(p, 1.0)])).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn split_tokens_find_the_verdict_and_sum_its_prefixes() {
        let mut tokens = plain(&["{\"", "verdict", "\":", " \"", "acc", "ept", "\",", "}"]);
        tokens[4] = token(
            "acc",
            &[("acc", 0.5), ("a", 0.1), ("rej", 0.3), ("no", 0.1)],
        );
        assert_eq!(value_start(&tokens, Some("verdict")), Some((4, 0)));
        let p = verdict_probability(&tokens).unwrap();
        assert!(close(p, 0.6 / 0.9), "{p}");
    }

    #[test]
    fn a_token_that_starts_before_the_value_is_read_after_its_lead() {
        // The value starts inside `":"rej`: alternatives share the lead,
        // or have one of their own.
        let tokens = vec![
            token("{\"verdict", &[("{\"verdict", 1.0)]),
            token(
                "\":\"rej",
                &[("\":\"rej", 0.7), ("\":\"acc", 0.2), ("\": \"Accept", 0.1)],
            ),
            token("ect\"}", &[("ect\"}", 1.0)]),
        ];
        assert_eq!(value_start(&tokens, Some("verdict")), Some((1, 3)));
        let p = verdict_probability(&tokens).unwrap();
        assert!(close(p, 0.3), "{p}");
    }

    #[test]
    fn a_missing_side_counts_as_nothing_and_no_side_is_no_score() {
        let mut tokens = plain(&["{\"verdict\": \"", "accept", "\"}"]);
        tokens[1] = token("accept", &[("accept", 0.9), ("Acc", 0.05), ("maybe", 0.05)]);
        assert_eq!(verdict_probability(&tokens), Some(1.0));
        tokens[1] = token("accept", &[("maybe", 0.9), ("{", 0.1)]);
        // The generated token itself still counts.
        tokens[1].logprob = Some(0.01_f64.ln());
        assert_eq!(verdict_probability(&tokens), Some(1.0));
        tokens[1].logprob = None;
        assert_eq!(verdict_probability(&tokens), None);
    }

    #[test]
    fn both_sides_normalise_to_one() {
        let mut tokens = plain(&["{\"verdict\":\"", "re", "ject\"}"]);
        tokens[1] = token("re", &[("re", 0.6), ("ac", 0.3), ("x", 0.1)]);
        let p = verdict_probability(&tokens).unwrap();
        assert!(close(p, 1.0 / 3.0), "{p}");
    }

    #[test]
    fn no_logprobs_or_no_verdict_is_none() {
        assert_eq!(read(None), None);
        assert_eq!(read(Some(&Value::Null)), None);
        assert_eq!(read(Some(&json!({"content": null}))), None);
        assert_eq!(read(Some(&json!({"content": []}))), None);
        assert_eq!(read(Some(&json!({"content": [{"logprob": -1.0}]}))), None);
        let tokens = plain(&["{\"score\": 1}"]);
        assert_eq!(verdict_probability(&tokens), None);
        assert_eq!(verdict_probability(&plain(&["{\"verdict\": \""])), None);
    }

    #[test]
    fn reads_the_openai_wire_format() {
        let wire = json!({"content": [
            {"token": "{\"", "logprob": 0.0, "bytes": [123, 34], "top_logprobs": []},
            {"token": "accept", "logprob": -0.1, "bytes": null,
             "top_logprobs": [{"token": "accept", "logprob": -0.1, "bytes": null},
                              {"token": "reject", "logprob": null, "bytes": null}]}
        ], "refusal": null});
        let tokens = read(Some(&wire)).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[1].top, vec![("accept".to_string(), -0.1)]);
    }

    #[test]
    fn answers_normalise_over_the_choices() {
        let choices = ["balcony", "terrace", "none", "unknown"];
        let mut tokens = plain(&["{\"answer\": \"", "bal", "cony\"}"]);
        tokens[1] = token(
            "bal",
            &[
                ("bal", 0.4),
                ("b", 0.2),
                ("ter", 0.2),
                ("n", 0.1),
                ("x", 0.1),
            ],
        );
        let (i, lead) = value_start(&tokens, Some("answer")).unwrap();
        let p = choice_probability(&tokens[i], lead, "balcony", &choices).unwrap();
        assert!(close(p, 0.6 / 0.9), "{p}");
        // A bare answer: the first character that is not a quote or space.
        let bare = plain(&[" \"", "terrace"]);
        assert_eq!(value_start(&bare, None), Some((1, 0)));
    }
}
