//! Fetching remote images through the address guard: no proxy, redirects
//! followed by hand (each hop's scheme and host checked again), the body
//! read in chunks up to the size limit, one deadline for the whole fetch.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ACCEPT, LOCATION};
use shortlist_shared::error::error_chain;

use super::error::ImageError;
use super::guard::{AddressPolicy, GuardedResolver, Refusal};

/// What a fetcher needs from the settings.
#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    pub(crate) policy: AddressPolicy,
    pub(crate) allow_http: bool,
    pub(crate) max_bytes: u64,
    pub(crate) max_redirects: u32,
    pub(crate) timeout: Duration,
}

pub(crate) struct ImageFetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    settings: FetchSettings,
}

impl ImageFetcher {
    pub(crate) fn new(settings: FetchSettings) -> Result<Self, String> {
        let policy = Arc::new(settings.policy.clone());
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
            }))
            // A proxy would connect on our behalf to an address we never see.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout)
            .user_agent(concat!("shortlist-assessor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the image HTTP client: {e}"))?;
        Ok(ImageFetcher {
            client,
            policy,
            settings,
        })
    }

    /// The image at `url`, within `CAPTION_FETCH_TIMEOUT`.
    pub(crate) async fn fetch(&self, url: Url) -> Result<Vec<u8>, ImageError> {
        match tokio::time::timeout(self.settings.timeout, self.fetch_following(url)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ImageError::Timeout(self.settings.timeout)),
        }
    }

    async fn fetch_following(&self, mut url: Url) -> Result<Vec<u8>, ImageError> {
        let mut redirects = 0;
        loop {
            self.check_url(&url)?;
            let response = self
                .client
                .get(url.clone())
                .header(ACCEPT, "image/*")
                .send()
                .await
                .map_err(|e| self.request_error(&url, e))?;
            let status = response.status();
            if status.is_redirection() {
                let Some(location) = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                else {
                    return Err(ImageError::FetchFailed(format!(
                        "{}: HTTP {status} without a Location",
                        shown(&url)
                    )));
                };
                redirects += 1;
                if redirects > self.settings.max_redirects {
                    return Err(ImageError::TooManyRedirects(self.settings.max_redirects));
                }
                let next = url.join(location).map_err(|e| {
                    ImageError::FetchFailed(format!(
                        "{}: redirect to an invalid URL {location:?} ({e})",
                        shown(&url)
                    ))
                })?;
                tracing::debug!(from = %shown(&url), to = %shown(&next), "following a redirect");
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(ImageError::FetchFailed(format!(
                    "{}: HTTP {status}",
                    shown(&url)
                )));
            }
            return self.read_body(&url, response).await;
        }
    }

    /// The scheme, and the host when it is an IP literal (the resolver is
    /// not asked for those).
    fn check_url(&self, url: &Url) -> Result<(), ImageError> {
        match url.scheme() {
            "https" => {}
            "http" if self.settings.allow_http => {}
            "http" => {
                return Err(ImageError::SourceInvalid(format!(
                    "{}: plain http:// images are fetched only with CAPTION_ALLOW_HTTP=true",
                    shown(url)
                )));
            }
            other => {
                return Err(ImageError::SourceInvalid(format!(
                    "{}: {other}: URLs are not fetched",
                    shown(url)
                )));
            }
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => {
                return Err(ImageError::SourceInvalid(format!(
                    "{}: no host",
                    shown(url)
                )));
            }
        };
        let host = url.host_str().unwrap_or_default();
        self.policy.check(host, ip).map_err(ImageError::Refused)
    }

    fn request_error(&self, url: &Url, error: reqwest::Error) -> ImageError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(e) = source {
            if let Some(refusal) = e.downcast_ref::<Refusal>() {
                return ImageError::Refused(refusal.0.clone());
            }
            source = e.source();
        }
        if error.is_timeout() {
            return ImageError::Timeout(self.settings.timeout);
        }
        ImageError::FetchFailed(format!("{}: {}", shown(url), error_chain(&error)))
    }

    async fn read_body(
        &self,
        url: &Url,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, ImageError> {
        let limit = self.settings.max_bytes;
        if let Some(length) = response.content_length() {
            if length > limit {
                return Err(ImageError::TooLarge {
                    limit,
                    size: Some(length),
                });
            }
        }
        let mut bytes = Vec::with_capacity(response.content_length().unwrap_or(64 * 1024) as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.request_error(url, e))?
        {
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(ImageError::TooLarge { limit, size: None });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// A URL for messages: without credentials (as the result shows sources).
fn shown(url: &Url) -> String {
    super::source::display_source(url.as_str())
}
