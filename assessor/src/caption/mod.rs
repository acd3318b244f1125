//! The captions stage (rules → **captions** → judge): each image of the
//! profile is loaded (fetched through the address guard, decoded from a data
//! URI, or read beside the profile), sniffed, looked up in the cache, and
//! described by a vision model; the captions then enter the judge's prompt
//! inside the spotlighted listing block. See `docs/captions.md`.
//!
//! One image's failure is recorded on its record and never stops the others;
//! whether it fails the assessment is the assessor's call (`CAPTION_REQUIRED`).

pub(crate) mod cache;
pub(crate) mod error;
pub(crate) mod fetch;
pub(crate) mod guard;
pub(crate) mod source;
pub(crate) mod vision;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use shortlist_contract::{CaptionRecord, ErrorInfo, Usage};
use shortlist_shared::retry::RetryPolicy;

use self::cache::CaptionCache;
use self::error::ImageError;
use self::fetch::{FetchSettings, ImageFetcher};
use self::source::{ImageSource, decode_data_uri, display_source, read_local, sniff};
use self::vision::VisionClient;
use crate::chat_http::ChatHttp;
use crate::setting::SettingError;
use shortlist_shared::secret::Secret;

/// The default caption prompt: what a house hunter looks for in photos.
pub(crate) const DEFAULT_PROMPT: &str = "Describe this property listing photo for a house hunter in two to four factual sentences: which room or outside area it shows, its size and layout, the condition and finish (modern, dated, needs work, damp or damage), natural light, outdoor space, parking or views, and anything a buyer should notice. Quote any visible text exactly. Do not guess what is not visible.";

/// The longest wait between two vision request attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Validated settings of the stage (present only when it is on).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) base_url: String,
    pub(crate) model: String,
    pub(crate) api_key: Option<Secret>,
    pub(crate) prompt: String,
    pub(crate) max_tokens: u32,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) concurrency: usize,
    pub(crate) max_images: usize,
    pub(crate) required: bool,
    pub(crate) fetch: FetchSettings,
    pub(crate) max_attempts: u32,
    pub(crate) retry_base_delay: Duration,
    pub(crate) deadline: Duration,
    /// `CACHE_DIR`: captions are cached in its `captions/` directory.
    pub(crate) cache_dir: Option<PathBuf>,
}

/// What the stage produced.
#[derive(Debug, Default)]
pub(crate) struct CaptionOutcome {
    /// One record per image of the profile, in order.
    pub(crate) records: Vec<CaptionRecord>,
    /// Tokens of the vision requests.
    pub(crate) usage: Option<Usage>,
}

impl CaptionOutcome {
    /// The successful captions, in image order, for the prompt.
    pub(crate) fn captions(&self) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|r| r.caption.clone())
            .collect()
    }

    /// The records that have no caption.
    pub(crate) fn failures(&self) -> impl Iterator<Item = &CaptionRecord> {
        self.records.iter().filter(|r| r.error.is_some())
    }
}

pub(crate) struct Captioner {
    vision: VisionClient,
    /// Built on the first remote image: building it loads the system's CA
    /// certificates (~2 ms), wasted on profiles with local or cached images.
    fetcher: std::sync::OnceLock<Result<ImageFetcher, String>>,
    fetch_settings: FetchSettings,
    cache: Option<CaptionCache>,
    max_images: usize,
    concurrency: usize,
    max_bytes: u64,
    pub(crate) required: bool,
}

impl Captioner {
    pub(crate) fn new(settings: &Settings) -> Result<Self, SettingError> {
        let http = ChatHttp::new(
            &settings.base_url,
            settings.api_key.as_ref(),
            settings.connect_timeout,
            settings.timeout,
        )
        .map_err(|message| SettingError::Invalid {
            variable: "CAPTION_BASE_URL",
            value: crate::chat_http::redact_url(&settings.base_url),
            message,
        })?;
        Ok(Captioner {
            vision: VisionClient {
                http,
                model: settings.model.clone(),
                prompt: settings.prompt.clone(),
                max_tokens: settings.max_tokens,
                policy: RetryPolicy {
                    max_attempts: settings.max_attempts,
                    base_delay: settings.retry_base_delay,
                    max_delay: MAX_RETRY_DELAY,
                    deadline: settings.deadline,
                },
                timeout: settings.timeout,
            },
            fetcher: std::sync::OnceLock::new(),
            fetch_settings: settings.fetch.clone(),
            cache: settings.cache_dir.as_deref().map(CaptionCache::new),
            max_images: settings.max_images,
            concurrency: settings.concurrency.max(1),
            max_bytes: settings.fetch.max_bytes,
            required: settings.required,
        })
    }

    /// Captions `images` (sources as the profile wrote them); local paths are
    /// relative to `profile_dir`.
    pub(crate) async fn run(&self, images: &[String], profile_dir: &Path) -> CaptionOutcome {
        // Canonical once, so containment checks compare real paths.
        let base = std::fs::canonicalize(profile_dir).unwrap_or_else(|_| profile_dir.to_path_buf());
        // The futures are made up front (not by a closure inside the
        // stream) so the whole stage stays `Send` for a spawned batch task.
        let pending: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(index, source)| self.one(index, source, &base))
            .collect();
        let results: Vec<(CaptionRecord, Option<(u64, u64)>)> = futures_util::stream::iter(pending)
            .buffered(self.concurrency)
            .collect()
            .await;
        let mut outcome = CaptionOutcome::default();
        for (record, tokens) in results {
            if let Some((prompt, completion)) = tokens {
                let usage = outcome.usage.get_or_insert_with(Usage::default);
                usage.prompt_tokens += prompt;
                usage.completion_tokens += completion;
            }
            outcome.records.push(record);
        }
        outcome
    }

    async fn one(
        &self,
        index: usize,
        source: &str,
        base: &Path,
    ) -> (CaptionRecord, Option<(u64, u64)>) {
        let started = Instant::now();
        let shown = display_source(source);
        let result = if index >= self.max_images {
            Err(ImageError::TooManyImages {
                max: self.max_images,
            })
        } else {
            self.caption(source, base).await
        };
        let ms = started.elapsed().as_millis() as u64;
        match result {
            Ok((caption, cached, tokens)) => {
                tracing::debug!(image = %shown, cached, ms, "captioned");
                (
                    CaptionRecord {
                        image: shown,
                        caption: Some(caption),
                        cached,
                        error: None,
                        ms,
                    },
                    tokens,
                )
            }
            Err(error) => {
                tracing::warn!(image = %shown, kind = %error.kind(), error = %error, "image not captioned");
                (
                    CaptionRecord {
                        image: shown,
                        caption: None,
                        cached: false,
                        error: Some(ErrorInfo {
                            kind: error.kind(),
                            message: error.to_string(),
                        }),
                        ms,
                    },
                    None,
                )
            }
        }
    }

    /// Load, check, look up, ask, store.
    async fn caption(
        &self,
        source: &str,
        base: &Path,
    ) -> Result<(String, bool, Option<(u64, u64)>), ImageError> {
        let bytes = match ImageSource::parse(source)? {
            ImageSource::Remote(url) => {
                let fetcher = self
                    .fetcher
                    .get_or_init(|| ImageFetcher::new(self.fetch_settings.clone()))
                    .as_ref()
                    .map_err(|e| ImageError::FetchFailed(e.clone()))?;
                fetcher.fetch(url).await?
            }
            ImageSource::Inline(uri) => decode_data_uri(&uri, self.max_bytes)?,
            ImageSource::Local(path) => {
                let base = base.to_path_buf();
                let max = self.max_bytes;
                tokio::task::spawn_blocking(move || read_local(&base, &path, max))
                    .await
                    .map_err(|e| ImageError::CaptionFailed(format!("the reader failed: {e}")))??
            }
        };
        let media_type = sniff(&bytes)?;
        let key = CaptionCache::key(&bytes, &self.vision.model, &self.vision.prompt);
        if let Some(cache) = &self.cache {
            if let Some(caption) = cache.get(&key).await {
                return Ok((caption, true, None));
            }
        }
        let captioned = self.vision.caption(media_type, &bytes).await?;
        if let Some(cache) = &self.cache {
            cache
                .put(&key, &self.vision.model, &captioned.caption)
                .await;
        }
        Ok((
            captioned.caption,
            false,
            Some((captioned.prompt_tokens, captioned.completion_tokens)),
        ))
    }
}
