//! One vision request per image, in the OpenAI-compatible format every
//! server accepts: a user message whose content is the caption prompt and an
//! `image_url` part carrying the image as a base64 `data:` URI.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use shortlist_shared::retry::RetryPolicy;

use super::error::ImageError;
use crate::chat_http::{CallError, ChatHttp};
use crate::refusal::{self, Refusal};
use crate::verdict::excerpt;

/// Longest caption kept, in characters: enough for a detailed description,
/// bounded so eight photos cannot crowd the listing out of the judge's prompt.
const MAX_CAPTION_CHARS: usize = 1200;

pub(crate) struct VisionClient {
    pub(crate) http: ChatHttp,
    pub(crate) model: String,
    pub(crate) prompt: String,
    pub(crate) max_tokens: u32,
    pub(crate) policy: RetryPolicy,
    pub(crate) timeout: Duration,
}

/// A caption and the tokens it cost.
pub(crate) struct Captioned {
    pub(crate) caption: String,
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
}

impl VisionClient {
    /// A failed request as the image's error: 401/403/404 refuse the
    /// configuration (the key, the model, the URL), not this image.
    fn image_error(&self, error: CallError) -> ImageError {
        if let CallError::Status(e) = &error {
            if let Some(refusal) = Refusal::of(e.status) {
                return ImageError::BackendRefused {
                    kind: refusal.kind(),
                    message: refusal.message(
                        &self.http.endpoint,
                        refusal::CAPTIONS,
                        &excerpt(e.body.trim()),
                    ),
                };
            }
        }
        match error {
            CallError::Timeout => ImageError::CaptionTimeout {
                endpoint: self.http.endpoint.clone(),
                after: self.timeout,
            },
            other => ImageError::CaptionFailed(other.describe(&self.http.endpoint)),
        }
    }

    pub(crate) fn request_body(&self, media_type: &str, bytes: &[u8]) -> Value {
        let data_uri = format!(
            "data:{media_type};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
        json!({
            "model": self.model,
            "messages": [{
                "role": "user",
                "content": [
                    {"type": "text", "text": self.prompt},
                    {"type": "image_url", "image_url": {"url": data_uri}},
                ],
            }],
            "max_tokens": self.max_tokens,
            "temperature": 0,
        })
    }

    pub(crate) async fn caption(
        &self,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Captioned, ImageError> {
        let body = self.request_body(media_type, bytes);
        let logic = |e: &CallError| e.retry_decision();
        let (outcome, _attempts) = self.policy.run(&logic, || self.http.call(&body)).await;
        let response = outcome.map_err(|error| self.image_error(error))?;
        let (prompt_tokens, completion_tokens) = response
            .usage
            .as_ref()
            .map(|u| (u.prompt_tokens, u.completion_tokens))
            .unwrap_or_default();
        let message = response
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message)
            .unwrap_or_default();
        if let Some(refusal) = message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(ImageError::CaptionFailed(format!(
                "{}: the model refused: {}",
                self.http.endpoint,
                excerpt(refusal.trim())
            )));
        }
        let caption = message.content.unwrap_or_default();
        let caption = caption.split_whitespace().collect::<Vec<_>>().join(" ");
        if caption.is_empty() {
            return Err(ImageError::CaptionFailed(format!(
                "{}: the model returned an empty caption",
                self.http.endpoint
            )));
        }
        let caption = match caption.char_indices().nth(MAX_CAPTION_CHARS) {
            Some((cut, _)) => format!("{}…", &caption[..cut]),
            None => caption,
        };
        Ok(Captioned {
            caption,
            prompt_tokens,
            completion_tokens,
        })
    }
}
