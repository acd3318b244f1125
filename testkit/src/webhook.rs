//! Standard Webhooks on the receiving side: secrets for a test, and
//! verification of a recorded delivery's signature with the
//! `standardwebhooks` crate (an implementation independent of the relay's).

use std::io::Read;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine as _;

use crate::http::Recorded;

/// `whsec_` + base64 of 32 random bytes.
pub fn random_secret() -> String {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("read /dev/urandom");
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

impl Recorded {
    /// The Standard Webhooks `webhook-id`.
    pub fn webhook_id(&self) -> String {
        self.must_header("webhook-id").to_string()
    }

    /// Whether the `webhook-signature` (one of its space-separated `v1,`
    /// entries) verifies with `secret` over `webhook-id`, a recent
    /// `webhook-timestamp` and the exact body.
    pub fn signature_valid(&self, secret: &str) -> bool {
        let Ok(hook) = standardwebhooks::Webhook::new(secret) else {
            return false;
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        hook.verify(&self.body, &headers).is_ok()
    }
}
