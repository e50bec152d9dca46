//! Format sniffing from the bytes themselves: the upstream's
//! `Content-Type` is not trusted.

use crate::error::Error;

/// A source format this build decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
}

impl SourceFormat {
    pub fn image_format(self) -> image::ImageFormat {
        match self {
            SourceFormat::Jpeg => image::ImageFormat::Jpeg,
            SourceFormat::Png => image::ImageFormat::Png,
            SourceFormat::Gif => image::ImageFormat::Gif,
            SourceFormat::Webp => image::ImageFormat::WebP,
            SourceFormat::Bmp => image::ImageFormat::Bmp,
        }
    }
}

pub fn sniff(bytes: &[u8]) -> Result<SourceFormat, Error> {
    if bytes.is_empty() {
        return Err(Error::NotAnImage);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(SourceFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(SourceFormat::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(SourceFormat::Gif);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(SourceFormat::Webp);
    }
    if bytes.starts_with(b"BM") && bytes.len() >= 26 {
        return Ok(SourceFormat::Bmp);
    }
    if looks_like_svg(bytes) {
        return Err(Error::UnsupportedFormat("svg".into()));
    }
    // Name what we recognise but do not decode; anything else is not an image.
    match image::guess_format(bytes) {
        Ok(f) => Err(Error::UnsupportedFormat(
            f.extensions_str()
                .first()
                .copied()
                .unwrap_or("unknown")
                .into(),
        )),
        Err(_) if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" => {
            Err(Error::UnsupportedFormat("heif/avif".into()))
        }
        Err(_) => Err(Error::NotAnImage),
    }
}

/// The MIME type and extension of an image served as it is (`raw`): any
/// raster format the `image` crate recognises (decoded here or not), AVIF
/// and HEIC by their brand. `None` for anything else, SVG included (it
/// has its own path).
pub fn image_type(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return match &bytes[8..12] {
            b"avif" | b"avis" => Some(("image/avif", "avif")),
            b"heic" | b"heix" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                Some(("image/heic", "heic"))
            }
            _ => None,
        };
    }
    let format = image::guess_format(bytes).ok()?;
    let ext = format.extensions_str().first().copied()?;
    Some((format.to_mime_type(), ext))
}

/// XML or `<svg` at the start (after a BOM and white space), with an
/// `<svg` element early on. HTML pages are not SVG.
pub fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    if !(head.starts_with(b"<?xml") || head.starts_with(b"<svg") || head.starts_with(b"<!--")) {
        return false;
    }
    head.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_magic() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest").unwrap(), SourceFormat::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest").unwrap(), SourceFormat::Png);
        assert_eq!(sniff(b"GIF89a....").unwrap(), SourceFormat::Gif);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(), SourceFormat::Webp);
        assert_eq!(
            sniff(&[
                b'B', b'M', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ])
            .unwrap(),
            SourceFormat::Bmp
        );
    }

    #[test]
    fn image_types_for_raw() {
        assert_eq!(
            image_type(b"\xFF\xD8\xFF\xE0rest"),
            Some(("image/jpeg", "jpg"))
        );
        assert_eq!(
            image_type(b"II*\x00\x08\x00\x00\x00"),
            Some(("image/tiff", "tiff"))
        );
        let avif = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00";
        assert_eq!(image_type(avif), Some(("image/avif", "avif")));
        for not in [
            &b"<!doctype html><p>hi"[..],
            b"{}",
            b"",
            b"\x00\x00\x00\x1cftypmp42",
        ] {
            assert_eq!(image_type(not), None);
        }
    }

    #[test]
    fn refuses_non_images_with_415() {
        for bytes in [
            &b""[..],
            b"<!doctype html><html><body>not found</body></html>",
            b"{\"error\": true}",
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"II*\x00\x08\x00\x00\x00",
            b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00",
        ] {
            let e = sniff(bytes).unwrap_err();
            assert_eq!(e.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE, "{e}");
        }
    }
}
