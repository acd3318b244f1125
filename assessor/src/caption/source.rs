//! Where an image comes from, and the checks every image's bytes pass
//! whatever the source: its size and what it really is (sniffed from the
//! bytes; a `Content-Type` header or a data URI's declared type is not
//! trusted).

use std::path::{Component, Path, PathBuf};

use base64::Engine;
use reqwest::Url;
use shortlist_contract::regular_file::{self, ReadError};
use shortlist_shared::size::format_size;

use super::error::ImageError;

/// One entry of `profile.images`, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageSource {
    /// An `http(s)` URL: fetched through the guard.
    Remote(Url),
    /// A `data:` URI: decoded.
    Inline(String),
    /// A path relative to the profile's directory.
    Local(PathBuf),
}

impl ImageSource {
    pub(crate) fn parse(source: &str) -> Result<ImageSource, ImageError> {
        let trimmed = source.trim();
        if trimmed.is_empty() {
            return Err(ImageError::SourceInvalid("an empty image source".into()));
        }
        if trimmed
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("data:"))
        {
            return Ok(ImageSource::Inline(trimmed.to_string()));
        }
        match Url::parse(trimmed) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(ImageError::SourceInvalid(format!(
                        "{trimmed:?} has no host"
                    )));
                }
                Ok(ImageSource::Remote(url))
            }
            Ok(url) => Err(ImageError::SourceInvalid(format!(
                "{}: URLs are not supported; use https://, a data: URI or a path relative to the profile",
                url.scheme()
            ))),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                Ok(ImageSource::Local(PathBuf::from(trimmed)))
            }
            Err(e) => Err(ImageError::SourceInvalid(format!(
                "{trimmed:?} is not a valid URL ({e})"
            ))),
        }
    }
}

/// The source as shown in the result: data URIs shortened to their first
/// characters and decoded size, credentials removed from URLs.
pub(crate) fn display_source(source: &str) -> String {
    let trimmed = source.trim();
    if trimmed
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("data:"))
    {
        let (head, payload) = trimmed.split_once(',').unwrap_or((trimmed, ""));
        if payload.len() <= 48 && head.len() <= 64 {
            return trimmed.to_string();
        }
        let head: String = head.chars().take(64).collect();
        let start: String = payload.chars().take(16).collect();
        let size = payload.len() as u64 / 4 * 3;
        return format!("{head},{start}…({})", format_size(size));
    }
    match Url::parse(trimmed) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => trimmed.to_string(),
    }
}

/// Standard base64 with or without padding, as data URIs are written.
const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Decodes a base64 `data:` URI, refusing it before decoding when its size
/// is already over the limit.
pub(crate) fn decode_data_uri(uri: &str, max_bytes: u64) -> Result<Vec<u8>, ImageError> {
    let rest = &uri[5..];
    let Some((meta, payload)) = rest.split_once(',') else {
        return Err(ImageError::DataUriInvalid(
            "no ',' separates the media type from the data".into(),
        ));
    };
    if !meta
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("base64"))
    {
        return Err(ImageError::DataUriInvalid(
            "only base64 data URIs are supported (data:image/png;base64,...)".into(),
        ));
    }
    let compact: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let estimate = compact.len() as u64 / 4 * 3;
    if estimate > max_bytes.saturating_add(3) {
        return Err(ImageError::TooLarge {
            limit: max_bytes,
            size: Some(estimate),
        });
    }
    let bytes = LENIENT_BASE64
        .decode(compact.as_bytes())
        .map_err(|e| ImageError::DataUriInvalid(format!("bad base64: {e}")))?;
    if bytes.len() as u64 > max_bytes {
        return Err(ImageError::TooLarge {
            limit: max_bytes,
            size: Some(bytes.len() as u64),
        });
    }
    Ok(bytes)
}

/// Reads a local image, which must stay inside `base` (the profile's
/// directory, already canonical): a profile must not be able to make the
/// assessor send `/var/run/secrets/...` or `../../etc/shadow` to a model.
/// Symlinks are followed and then checked, so a ConfigMap's `..data` links
/// (which stay inside the mount) work and a link pointing out does not.
pub(crate) fn read_local(
    base: &Path,
    relative: &Path,
    max_bytes: u64,
) -> Result<Vec<u8>, ImageError> {
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, Component::Prefix(_)))
    {
        return Err(ImageError::Refused(format!(
            "{}: absolute paths are not read; a local image is a path relative to the profile's directory",
            relative.display()
        )));
    }
    // Lexically first, so a path climbing out is refused without even
    // telling whether its target exists.
    let mut depth: usize = 0;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth == 0 => {
                return Err(ImageError::Refused(format!(
                    "{}: climbs out of the profile's directory",
                    relative.display()
                )));
            }
            Component::ParentDir => depth -= 1,
            _ => {}
        }
    }
    let joined = base.join(relative);
    let real = std::fs::canonicalize(&joined).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => ImageError::NotFound {
            path: joined.clone(),
        },
        _ => ImageError::Unreadable {
            path: joined.clone(),
            error,
        },
    })?;
    if !real.starts_with(base) {
        return Err(ImageError::Refused(format!(
            "{}: resolves to {}, outside the profile's directory {}",
            relative.display(),
            real.display(),
            base.display()
        )));
    }
    // The one capped reader: a FIFO or a device is refused before it is
    // opened (a FIFO would hang the stage), and the read stops one byte past
    // the limit whatever the file claims its size is.
    regular_file::read(&real, max_bytes).map_err(|error| match error {
        ReadError::Missing => ImageError::NotFound { path: joined },
        ReadError::TooLarge { size, limit } => ImageError::TooLarge { limit, size },
        ReadError::NotRegular { .. } => ImageError::Unreadable {
            path: joined,
            error: std::io::Error::other(error.to_string()),
        },
        ReadError::Io(error) => ImageError::Unreadable {
            path: joined,
            error,
        },
    })
}

/// The media type of `bytes` when they are an image a vision server takes.
pub(crate) fn sniff(bytes: &[u8]) -> Result<&'static str, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::NotAnImage("the image is empty".into()));
    }
    match infer::get(bytes) {
        Some(kind)
            if matches!(
                kind.mime_type(),
                "image/jpeg" | "image/png" | "image/gif" | "image/webp"
            ) =>
        {
            Ok(kind.mime_type())
        }
        Some(kind) if kind.matcher_type() == infer::MatcherType::Image => {
            Err(ImageError::TypeUnsupported(kind.mime_type()))
        }
        Some(kind) => Err(ImageError::NotAnImage(format!(
            "the bytes are {}",
            kind.mime_type()
        ))),
        None => Err(ImageError::NotAnImage(format!(
            "the bytes match no image format (they start {})",
            bytes
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];

    #[test]
    fn sources_are_classified() {
        assert!(matches!(
            ImageSource::parse("https://img.example/a.jpg").unwrap(),
            ImageSource::Remote(_)
        ));
        assert!(matches!(
            ImageSource::parse("DATA:image/png;base64,AAAA").unwrap(),
            ImageSource::Inline(_)
        ));
        assert_eq!(
            ImageSource::parse("photos/a.jpg").unwrap(),
            ImageSource::Local(PathBuf::from("photos/a.jpg"))
        );
        for bad in ["file:///etc/passwd", "ftp://x/a.jpg", "", "  ", "http://"] {
            assert_eq!(
                ImageSource::parse(bad).unwrap_err().kind(),
                "image_source_invalid",
                "{bad}"
            );
        }
    }

    #[test]
    fn data_uris_are_shortened_and_credentials_dropped() {
        let long = format!("data:image/png;base64,{}", "A".repeat(4000));
        let shown = display_source(&long);
        assert!(
            shown.starts_with("data:image/png;base64,AAAAAAAAAAAAAAAA…("),
            "{shown}"
        );
        assert!(shown.len() < 100);
        assert_eq!(
            display_source("https://user:pw@img.example/a.jpg"),
            "https://img.example/a.jpg"
        );
        assert_eq!(display_source("photos/a.jpg"), "photos/a.jpg");
    }

    #[test]
    fn data_uris_decode_and_fail_specifically() {
        let ok = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(PNG)
        );
        assert_eq!(decode_data_uri(&ok, 1024).unwrap(), PNG);
        assert_eq!(
            decode_data_uri(&ok, 8).unwrap_err().kind(),
            "image_too_large"
        );
        for bad in [
            "data:image/png;base64,!!!notbase64",
            "data:image/png;base64",
            "data:image/png,rawbytes",
        ] {
            assert_eq!(
                decode_data_uri(bad, 1024).unwrap_err().kind(),
                "data_uri_invalid",
                "{bad}"
            );
        }
    }

    #[test]
    fn bytes_are_sniffed_not_trusted() {
        assert_eq!(sniff(PNG).unwrap(), "image/png");
        assert_eq!(
            sniff(&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10]).unwrap(),
            "image/jpeg"
        );
        assert_eq!(sniff(b"GIF89a....").unwrap(), "image/gif");
        assert_eq!(sniff(b"<html><body>").unwrap_err().kind(), "not_an_image");
        assert_eq!(sniff(b"%PDF-1.7\n").unwrap_err().kind(), "not_an_image");
        assert_eq!(sniff(b"").unwrap_err().kind(), "not_an_image");
        assert_eq!(
            sniff(b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0")
                .unwrap_err()
                .kind(),
            "image_type_unsupported"
        );
    }

    #[test]
    fn local_images_stay_inside_the_profile_directory() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("profile");
        std::fs::create_dir_all(base.join("photos")).unwrap();
        std::fs::write(base.join("photos/a.png"), PNG).unwrap();
        std::fs::write(root.path().join("outside.png"), PNG).unwrap();
        std::os::unix::fs::symlink(root.path().join("outside.png"), base.join("link.png")).unwrap();
        // A FIFO nothing writes to: refused, not read (reading would block).
        let fifo = std::process::Command::new("mkfifo")
            .arg(base.join("photos/pipe.png"))
            .status()
            .unwrap();
        assert!(fifo.success());
        let base = std::fs::canonicalize(&base).unwrap();
        assert_eq!(
            read_local(&base, Path::new("photos/a.png"), 1024).unwrap(),
            PNG
        );
        assert_eq!(
            read_local(&base, Path::new("./photos/../photos/a.png"), 1024).unwrap(),
            PNG
        );
        for (path, kind) in [
            ("../outside.png", "image_refused"),
            ("../missing.png", "image_refused"),
            ("photos/../../outside.png", "image_refused"),
            ("link.png", "image_refused"),
            ("/etc/passwd", "image_refused"),
            ("photos/missing.png", "image_not_found"),
            ("photos", "image_unreadable"),
            ("photos/pipe.png", "image_unreadable"),
        ] {
            assert_eq!(
                read_local(&base, Path::new(path), 1024).unwrap_err().kind(),
                kind,
                "{path}"
            );
        }
        assert_eq!(
            read_local(&base, Path::new("photos/a.png"), 4)
                .unwrap_err()
                .kind(),
            "image_too_large"
        );
    }
}
