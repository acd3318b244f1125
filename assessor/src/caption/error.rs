//! Why one image has no caption. Each variant has a stable `kind` for the
//! result's `captions[].error.kind` (documented in `docs/captions.md`) and a
//! message that says what to change.

use std::path::PathBuf;
use std::time::Duration;

use shortlist_contract::ErrorKind;
use shortlist_shared::duration::format_duration;
use shortlist_shared::size::format_size;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    #[error("{0}")]
    SourceInvalid(String),
    #[error("{0}")]
    Refused(String),
    #[error("{}: no such file", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: cannot read: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    FetchFailed(String),
    #[error("the fetch took longer than {} (CAPTION_FETCH_TIMEOUT)", format_duration(*.0))]
    Timeout(Duration),
    #[error("more than {0} redirects (CAPTION_MAX_REDIRECTS)")]
    TooManyRedirects(u32),
    #[error("{} is more than the {} allowed (CAPTION_MAX_IMAGE_BYTES)", match .size { Some(s) => format_size(*s), None => "the image".into() }, format_size(*.limit))]
    TooLarge { limit: u64, size: Option<u64> },
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("{0} images are not accepted by vision servers; JPEG, PNG, GIF and WebP are")]
    TypeUnsupported(&'static str),
    #[error("invalid data URI: {0}")]
    DataUriInvalid(String),
    #[error("the profile has more images than CAPTION_MAX_IMAGES={max}; this one was skipped")]
    TooManyImages { max: usize },
    #[error("{0}")]
    CaptionFailed(String),
    #[error("{endpoint}: no caption within {} (CAPTION_TIMEOUT)", format_duration(*after))]
    CaptionTimeout { endpoint: String, after: Duration },
    /// The vision server refused the configuration (401/403/404): the
    /// kind is `backend_unauthorized` or `backend_not_found`.
    #[error("{message}")]
    BackendRefused { kind: ErrorKind, message: String },
}

impl ImageError {
    /// The stable, machine-readable kind.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            ImageError::SourceInvalid(_) => ErrorKind::ImageSourceInvalid,
            ImageError::Refused(_) => ErrorKind::ImageRefused,
            ImageError::NotFound { .. } => ErrorKind::ImageNotFound,
            ImageError::Unreadable { .. } => ErrorKind::ImageUnreadable,
            ImageError::FetchFailed(_) => ErrorKind::ImageFetchFailed,
            ImageError::Timeout(_) => ErrorKind::ImageTimeout,
            ImageError::TooManyRedirects(_) => ErrorKind::TooManyRedirects,
            ImageError::TooLarge { .. } => ErrorKind::ImageTooLarge,
            ImageError::NotAnImage(_) => ErrorKind::NotAnImage,
            ImageError::TypeUnsupported(_) => ErrorKind::ImageTypeUnsupported,
            ImageError::DataUriInvalid(_) => ErrorKind::DataUriInvalid,
            ImageError::TooManyImages { .. } => ErrorKind::TooManyImages,
            ImageError::CaptionFailed(_) => ErrorKind::CaptionFailed,
            ImageError::CaptionTimeout { .. } => ErrorKind::CaptionTimeout,
            ImageError::BackendRefused { kind, .. } => kind.clone(),
        }
    }
}
