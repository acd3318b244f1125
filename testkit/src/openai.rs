//! [`FakeOpenAi`]: a real HTTP server on `127.0.0.1:0` speaking the OpenAI
//! chat-completions wire format, recording every request. It answers from a
//! script of replies (in order), or per request from a handler closure (a
//! judge whose answer depends on the listing), then with
//! [`DEFAULT_CONTENT`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{Recorded, Reply};
use crate::server::Server;

/// The reply content when neither the script nor a handler decides.
pub const DEFAULT_CONTENT: &str = r#"{"verdict":"accept","score":0.9,"reasons":["default"]}"#;

/// An OpenAI-compatible chat-completions server.
pub struct FakeOpenAi {
    server: Server,
}

impl FakeOpenAi {
    /// Starts on `127.0.0.1:0` on the current tokio runtime, answering from
    /// `script` in order, then [`DEFAULT_CONTENT`].
    pub async fn start(script: Vec<Reply>) -> FakeOpenAi {
        let listener = crate::net::loopback_listener().await;
        FakeOpenAi {
            server: Server::serve(listener, script, completion(DEFAULT_CONTENT)),
        }
    }

    /// Starts on `127.0.0.1:0`, answering each request with `handler(request)`.
    pub async fn answering(
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> FakeOpenAi {
        let server = FakeOpenAi::start(Vec::new()).await;
        server.set_handler(handler);
        server
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.server.addr())
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    pub fn count(&self) -> usize {
        self.server.count()
    }

    /// Appends replies to the script (they come before any handler).
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.server.push(replies);
    }

    /// Scripted replies not yet consumed.
    pub fn remaining(&self) -> usize {
        self.server.remaining()
    }

    /// Answers every request the script does not with `handler(request)`.
    pub fn set_handler(&self, handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        self.server.set_handler(Arc::new(handler));
    }
}

/// The full wire shape of a chat completion whose message content is `content`.
pub fn completion_body(content: Value, finish_reason: &str) -> String {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": finish_reason
        }],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    })
    .to_string()
}

/// A 200 completion with `finish_reason: "stop"`.
pub fn completion(content: &str) -> Reply {
    completion_with_finish(content, "stop")
}

/// A 200 completion with the given finish reason (`"length"` for truncation).
pub fn completion_with_finish(content: &str, finish_reason: &str) -> Reply {
    Reply::raw(
        200,
        "application/json",
        &completion_body(Value::String(content.to_string()), finish_reason),
    )
}

/// A 200 completion whose content is the verdict JSON a judge gives.
pub fn verdict(verdict: &str, score: f64, reason: &str) -> Reply {
    completion(&json!({"verdict": verdict, "score": score, "reasons": [reason]}).to_string())
}

/// One generated token with the alternatives the server reports for its
/// position, as `choices[].logprobs.content[]` carries it.
#[derive(Debug, Clone)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    /// `(token, logprob)` of the most likely tokens at this position.
    pub top: Vec<(String, f64)>,
}

impl TokenLogprob {
    /// A token the model was sure of: logprob 0, itself its only alternative.
    pub fn sure(token: &str) -> TokenLogprob {
        TokenLogprob {
            token: token.into(),
            logprob: 0.0,
            top: vec![(token.into(), 0.0)],
        }
    }

    /// A token with these alternatives, given as probabilities; the token's
    /// own logprob is its alternative's, if listed.
    pub fn weighing(token: &str, alternatives: &[(&str, f64)]) -> TokenLogprob {
        let top: Vec<(String, f64)> = alternatives
            .iter()
            .map(|(t, p)| (t.to_string(), p.ln()))
            .collect();
        let logprob = top
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, lp)| *lp)
            .unwrap_or(-20.0);
        TokenLogprob {
            token: token.into(),
            logprob,
            top,
        }
    }

    fn wire(&self) -> Value {
        let entry = |token: &str, logprob: f64| json!({"token": token, "logprob": logprob, "bytes": token.as_bytes()});
        let mut value = entry(&self.token, self.logprob);
        value["top_logprobs"] = self
            .top
            .iter()
            .map(|(t, lp)| entry(t, *lp))
            .collect::<Vec<_>>()
            .into();
        value
    }
}

/// Splits `content` into tokens at `cuts` (texts, in order, that each
/// start a new token), every token [`TokenLogprob::sure`]. The pieces
/// concatenate to `content`.
pub fn tokens_at(content: &str, cuts: &[&str]) -> Vec<TokenLogprob> {
    let mut tokens = Vec::new();
    let mut rest = content;
    for cut in cuts {
        let at = rest
            .find(cut)
            .unwrap_or_else(|| panic!("{cut:?} is not in what is left of the content: {rest:?}"));
        if at > 0 {
            tokens.push(TokenLogprob::sure(&rest[..at]));
        }
        rest = &rest[at..];
        let end = cut.len().min(rest.len());
        tokens.push(TokenLogprob::sure(&rest[..end]));
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        tokens.push(TokenLogprob::sure(rest));
    }
    tokens
}

/// A 200 completion whose content is the tokens' text, with `logprobs` in
/// the OpenAI wire format (`{"content": [{"token", "logprob", "bytes",
/// "top_logprobs"}], "refusal": null}`).
pub fn completion_with_logprobs(tokens: &[TokenLogprob]) -> Reply {
    let content: String = tokens.iter().map(|t| t.token.as_str()).collect();
    let mut body: Value = serde_json::from_str(&completion_body(Value::String(content), "stop"))
        .expect("a completion body is JSON");
    body["choices"][0]["logprobs"] = json!({
        "content": tokens.iter().map(TokenLogprob::wire).collect::<Vec<_>>(),
        "refusal": null
    });
    Reply::raw(200, "application/json", &body.to_string())
}

/// An error answer: `body` is sent as is (an OpenAI error JSON, or text).
pub fn error_reply(status: u16, body: &str) -> Reply {
    let content_type = if serde_json::from_str::<Value>(body).is_ok() {
        "application/json"
    } else {
        "text/plain"
    };
    Reply::raw(status, content_type, body)
}

/// An OpenAI-shaped error body.
pub fn openai_error(message: &str, kind: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}}).to_string()
}

/// A reply that never comes (within any test's lifetime).
pub fn hang() -> Reply {
    completion(DEFAULT_CONTENT).delayed(Duration::from_secs(3600))
}

/// The text of a message's content: a string, or the text parts of an array.
pub fn message_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// Reading a chat-completions request.
impl Recorded {
    /// The `messages` array; panics (with the raw body) when there is none.
    pub fn messages(&self) -> &Vec<Value> {
        self.json()["messages"].as_array().unwrap_or_else(|| {
            panic!(
                "request has no messages array: {}",
                crate::text::clip(&self.text(), 2000)
            )
        })
    }

    /// Content of the first message with `role`, as text; panics when none.
    pub fn message(&self, role: &str) -> String {
        self.try_message(role).unwrap_or_else(|| {
            panic!(
                "no {role} message in {}",
                crate::text::clip(&self.text(), 2000)
            )
        })
    }

    /// Content of the first message with `role`, as text.
    pub fn try_message(&self, role: &str) -> Option<String> {
        self.try_json()?["messages"]
            .as_array()?
            .iter()
            .find(|m| m["role"] == role)
            .map(|m| message_text(&m["content"]))
    }

    pub fn response_format(&self) -> Option<&Value> {
        self.json().get("response_format")
    }
}
